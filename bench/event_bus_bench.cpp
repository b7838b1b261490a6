// Benchmarks for include/tandem/event_bus.hpp.
//
// Question: is tandem::event_bus at least as fast as the pub/sub a C++ user writes by hand, and
// at least twice as fast on fan-out and on publishing to absent topics?
//
// Baseline (namespace hand_written): one std::mutex guarding a std::unordered_map from topic
// to std::vector of mailboxes; each mailbox a std::mutex + std::deque + std::condition_variable;
// publish looks the topic up and pushes a copy into each mailbox under the map lock;
// subscriptions are RAII objects that erase themselves (and the topic when it empties).
//
// Workloads (each for both, same message type: a 32-byte trivially copyable event):
//  - publish_receive/same_thread: publish to a topic with 1 subscriber, then receive it.
//  - publish_receive/two_threads: one thread publishes, another receives (blocking receive).
//  - fan_out_8: publish to a topic with 8 subscribers, then receive on all 8.
//  - absent_topic: publish to a topic nobody subscribes to (100 other topics live); 1 and 2
//    threads.
//  - churn: subscribe + unsubscribe on a topic of one's own (created and erased each time);
//    1 and 2 threads.
// Compare items_per_second of tandem/... with hand_written/... for each workload.
#include <tandem/event_bus.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

struct event {
  std::uint64_t id = 0;
  std::array<std::uint64_t, 3> payload{};
};

// ---- the hand-written baseline ------------------------------------------------------------
namespace hand_written {

template <class M>
class mailbox {
 public:
  void push(const M& message) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(message);
    }
    ready_.notify_one();
  }
  std::optional<M> try_receive() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (queue_.empty()) return std::nullopt;
    M out = std::move(queue_.front());
    queue_.pop_front();
    return out;
  }
  M receive() {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [&] { return !queue_.empty(); });
    M out = std::move(queue_.front());
    queue_.pop_front();
    return out;
  }

 private:
  std::mutex mutex_;
  std::deque<M> queue_;
  std::condition_variable ready_;
};

template <class M>
class bus {
 public:
  class subscription {
   public:
    subscription(bus* owner, std::string topic, std::shared_ptr<mailbox<M>> box)
        : owner_(owner), topic_(std::move(topic)), box_(std::move(box)) {}
    subscription(const subscription&) = delete;
    subscription& operator=(const subscription&) = delete;
    ~subscription() { owner_->unsubscribe(topic_, box_.get()); }
    std::optional<M> try_receive() { return box_->try_receive(); }
    M receive() { return box_->receive(); }

   private:
    bus* owner_;
    std::string topic_;
    std::shared_ptr<mailbox<M>> box_;
  };

  std::unique_ptr<subscription> subscribe(const std::string& topic) {
    auto box = std::make_shared<mailbox<M>>();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      topics_[topic].push_back(box);
    }
    return std::make_unique<subscription>(this, topic, std::move(box));
  }

  std::size_t publish(const std::string& topic, const M& message) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = topics_.find(topic);
    if (it == topics_.end()) return 0;
    for (auto& box : it->second) box->push(message);
    return it->second.size();
  }

  std::size_t topic_count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return topics_.size();
  }

 private:
  void unsubscribe(const std::string& topic, const mailbox<M>* box) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = topics_.find(topic);
    if (it == topics_.end()) return;
    auto& list = it->second;
    list.erase(
        std::remove_if(list.begin(), list.end(), [&](const auto& b) { return b.get() == box; }),
        list.end());
    if (list.empty()) topics_.erase(it);
  }

  std::mutex mutex_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<mailbox<M>>>> topics_;
};

}  // namespace hand_written

// ---- adapters: one benchmark body for both ----------------------------------------------------
struct tandem_side {
  using bus_type = tandem::event_bus<event>;
  using subscription_type = std::unique_ptr<bus_type::subscription>;
  static subscription_type subscribe(bus_type& bus, const std::string& topic) {
    return std::make_unique<bus_type::subscription>(bus.subscribe(topic));
  }
};

struct hand_written_side {
  using bus_type = hand_written::bus<event>;
  using subscription_type = std::unique_ptr<bus_type::subscription>;
  static subscription_type subscribe(bus_type& bus, const std::string& topic) {
    return bus.subscribe(topic);
  }
};

template <class Side>
void publish_receive_same_thread(benchmark::State& state) {
  typename Side::bus_type bus;
  const std::string topic = "room:lobby";
  auto sub = Side::subscribe(bus, topic);
  event e;
  for (auto _ : state) {
    ++e.id;
    benchmark::DoNotOptimize(bus.publish(topic, e));
    benchmark::DoNotOptimize(sub->try_receive());
  }
  state.SetItemsProcessed(state.iterations());
}

template <class Side>
void publish_receive_two_threads(benchmark::State& state) {
  static std::optional<typename Side::bus_type> bus;
  static typename Side::subscription_type sub;
  static const std::string topic = "room:lobby";
  if (state.thread_index() == 0) {
    sub.reset();  // the previous run's, before its bus
    bus.emplace();
    sub = Side::subscribe(*bus, topic);
  }
  // Google Benchmark starts the timed loops of all threads together (a barrier), so the
  // subscription exists before the first publish. Both threads run the same iteration count.
  if (state.thread_index() == 0) {
    event e;
    for (auto _ : state) {
      ++e.id;
      benchmark::DoNotOptimize(bus->publish(topic, e));
    }
  } else {
    for (auto _ : state) benchmark::DoNotOptimize(sub->receive());
  }
  state.SetItemsProcessed(state.iterations());
  // Teardown happens in the next run's setup (thread 0), after both threads have finished.
}

template <class Side>
void fan_out_8(benchmark::State& state) {
  typename Side::bus_type bus;
  const std::string topic = "room:lobby";
  std::vector<typename Side::subscription_type> subs;
  for (int i = 0; i < 8; ++i) subs.push_back(Side::subscribe(bus, topic));
  event e;
  for (auto _ : state) {
    ++e.id;
    benchmark::DoNotOptimize(bus.publish(topic, e));
    for (auto& s : subs) benchmark::DoNotOptimize(s->try_receive());
  }
  state.SetItemsProcessed(state.iterations() * 8);
}

template <class Side>
void absent_topic(benchmark::State& state) {
  static std::optional<typename Side::bus_type> bus;
  static std::vector<typename Side::subscription_type> others;
  if (state.thread_index() == 0) {
    others.clear();
    bus.emplace();
    for (int i = 0; i < 100; ++i)
      others.push_back(Side::subscribe(*bus, "room:" + std::to_string(i)));
  }
  const std::string topic = "room:nobody-" + std::to_string(state.thread_index());
  const event e;
  for (auto _ : state) benchmark::DoNotOptimize(bus->publish(topic, e));
  state.SetItemsProcessed(state.iterations());
}

template <class Side>
void churn(benchmark::State& state) {
  static std::optional<typename Side::bus_type> bus;
  if (state.thread_index() == 0) bus.emplace();
  const std::string topic = "churn:" + std::to_string(state.thread_index());
  for (auto _ : state) {
    auto sub = Side::subscribe(*bus, topic);
    benchmark::DoNotOptimize(sub);
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(publish_receive_same_thread<tandem_side>)->Name("publish_receive/same_thread/tandem");
BENCHMARK(publish_receive_same_thread<hand_written_side>)
    ->Name("publish_receive/same_thread/hand_written");
BENCHMARK(publish_receive_two_threads<tandem_side>)
    ->Name("publish_receive/two_threads/tandem")
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(publish_receive_two_threads<hand_written_side>)
    ->Name("publish_receive/two_threads/hand_written")
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(fan_out_8<tandem_side>)->Name("fan_out_8/tandem");
BENCHMARK(fan_out_8<hand_written_side>)->Name("fan_out_8/hand_written");
BENCHMARK(absent_topic<tandem_side>)
    ->Name("absent_topic/tandem")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(absent_topic<hand_written_side>)
    ->Name("absent_topic/hand_written")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(churn<tandem_side>)->Name("churn/tandem")->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(churn<hand_written_side>)
    ->Name("churn/hand_written")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK_MAIN();
