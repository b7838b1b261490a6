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
// Compare items_per_second of tandem/... with hand_written/... for each workload. The process
// starts (and joins) one thread before any benchmark runs: see multithreaded_process.cpp.
//
// Issue 14 (tandem::inbox): does one inbox on N topics receive faster than one subscription
// per topic polled round-robin (what a user without inboxes writes)? inbox_vs_polling/N/...:
// one publisher thread publishes to the N topics (a fixed pseudo-random sequence) and stays at
// most 256 messages ahead of the receiver; the receiver is the benchmark thread: `inbox`
// receives with in.receive(), `polled_subscriptions` cycles over its N subscriptions with
// try_receive until one has a message. Items: messages received. N = 1, 8, 64. Both receivers
// outpace one publisher, so these rates are the publisher's (the rows show what each receiver
// costs it); how fast each receiver itself receives is inbox_backlog/N/...: the publisher
// thread publishes a burst of 256 messages (the most inbox_vs_polling lets it get ahead) to the
// N topics and goes to sleep, then the receiver takes all 256 the same way as above; only the
// receiving is timed (manual time, steady_clock), so the rate is the receiver's alone;
// the inbox_consume_all rows receive with in.consume_all(f) (and receive() when nothing is
// queued) instead of receive() alone.
#include <tandem/event_bus.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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

// ---- issue 14: one inbox on N topics vs N subscriptions polled round-robin ------------------

// The publisher of inbox_vs_polling: publishes to topics in a fixed pseudo-random order, at
// most `window` messages ahead of what the receiver has taken (so neither side's queues grow).
class paced_publisher {
 public:
  static constexpr std::uint64_t window = 256;

  paced_publisher(tandem::event_bus<event>& bus, const std::vector<std::string>& topics)
      : thread_([this, &bus, &topics] {
          std::uint64_t sequence = 0;
          std::uint32_t random = 12345;
          event e;
          while (!stop_.load(std::memory_order_relaxed)) {
            // relaxed: pacing only; the messages themselves synchronise through the mailboxes.
            if (sequence >= taken_.load(std::memory_order_relaxed) + window) {
              std::this_thread::yield();
              continue;
            }
            random = random * 1664525U + 1013904223U;
            e.id = ++sequence;
            bus.publish(topics[(random >> 8U) % topics.size()], e);
          }
        }) {}
  paced_publisher(const paced_publisher&) = delete;
  paced_publisher& operator=(const paced_publisher&) = delete;
  ~paced_publisher() {
    stop_.store(true, std::memory_order_relaxed);
    thread_.join();
  }
  void taken(std::uint64_t count) noexcept { taken_.store(count, std::memory_order_relaxed); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> taken_{0};
  std::thread thread_;  // last: starts after the members it uses exist
};

std::vector<std::string> topic_names(std::int64_t n) {
  std::vector<std::string> names;
  for (std::int64_t i = 0; i < n; ++i) names.push_back("room:" + std::to_string(i));
  return names;
}

// What a user without inboxes writes: cycles over the subscriptions from `next` with
// try_receive until one has a message, and returns that message's id.
std::uint64_t poll_round_robin(std::vector<tandem::event_bus<event>::subscription>& subs,
                               std::size_t& next) {
  for (;;) {
    std::optional<event> got = subs[next].try_receive();
    next = next + 1 == subs.size() ? 0 : next + 1;
    if (got) return got->id;
  }
}

void inbox_vs_polling_inbox(benchmark::State& state) {
  tandem::event_bus<event> bus;
  const std::vector<std::string> topics = topic_names(state.range(0));
  auto in = bus.inbox();
  for (const auto& t : topics) static_cast<void>(in.subscribe(t));
  std::uint64_t received = 0;
  {
    paced_publisher publisher(bus, topics);
    for (auto _ : state) {
      benchmark::DoNotOptimize(in.receive().message().id);
      if ((++received & 31U) == 0) publisher.taken(received);
    }
    publisher.taken(~std::uint64_t{0} / 2);  // let it run free until it sees `stop`
  }
  state.SetItemsProcessed(state.iterations());
}

// The same receiver taking what is queued in bulk: in.consume_all(f), and in.receive() when
// nothing is. An iteration is one such call; items are the messages received.
void inbox_vs_polling_consume_all(benchmark::State& state) {
  tandem::event_bus<event> bus;
  const std::vector<std::string> topics = topic_names(state.range(0));
  auto in = bus.inbox();
  for (const auto& t : topics) static_cast<void>(in.subscribe(t));
  auto take = [](tandem::envelope<event>& e) { benchmark::DoNotOptimize(e.message().id); };
  std::uint64_t received = 0;
  std::uint64_t reported = 0;
  {
    paced_publisher publisher(bus, topics);
    for (auto _ : state) {
      std::size_t got = in.consume_all(take);
      if (got == 0) {
        benchmark::DoNotOptimize(in.receive().message().id);
        got = 1;
      }
      received += got;
      if (received - reported >= 32) publisher.taken(reported = received);
    }
    publisher.taken(~std::uint64_t{0} / 2);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(received));
}

void inbox_vs_polling_subscriptions(benchmark::State& state) {
  tandem::event_bus<event> bus;
  const std::vector<std::string> topics = topic_names(state.range(0));
  std::vector<tandem::event_bus<event>::subscription> subs;
  for (const auto& t : topics) subs.push_back(bus.subscribe(t));
  std::uint64_t received = 0;
  std::size_t next = 0;
  {
    paced_publisher publisher(bus, topics);
    for (auto _ : state) {
      benchmark::DoNotOptimize(poll_round_robin(subs, next));
      if ((++received & 31U) == 0) publisher.taken(received);
    }
    publisher.taken(~std::uint64_t{0} / 2);
  }
  state.SetItemsProcessed(state.iterations());
}

// The publisher of inbox_backlog: on request, publishes `burst` messages to topics in the fixed
// pseudo-random order, then reports and sleeps (a futex wait, not a spin: it must not take CPU
// from the receiver while that is timed, whichever cores the two threads landed on).
class burst_publisher {
 public:
  burst_publisher(tandem::event_bus<event>& bus, const std::vector<std::string>& topics,
                  std::uint64_t burst)
      : thread_([this, &bus, &topics, burst] {
          std::uint32_t random = 12345;
          event e;
          std::uint64_t done = 0;
          for (;;) {
            // acquire/release pairs: request_ and published_ order the bursts (the messages
            // themselves synchronise through the mailboxes).
            request_.wait(done, std::memory_order_acquire);
            const std::uint64_t wanted = request_.load(std::memory_order_acquire);
            if (wanted == stop) return;
            for (std::uint64_t i = 0; i < burst; ++i) {
              random = random * 1664525U + 1013904223U;
              ++e.id;
              bus.publish(topics[(random >> 8U) % topics.size()], e);
            }
            done = wanted;
            published_.store(done, std::memory_order_release);
            published_.notify_one();
          }
        }) {}
  burst_publisher(const burst_publisher&) = delete;
  burst_publisher& operator=(const burst_publisher&) = delete;
  ~burst_publisher() {
    request_.store(stop, std::memory_order_release);
    request_.notify_one();
    thread_.join();
  }

  // Returns once the next burst is published (every message queued).
  void publish_burst() {
    const std::uint64_t wanted = ++requested_;
    request_.store(wanted, std::memory_order_release);
    request_.notify_one();
    for (std::uint64_t seen = published_.load(std::memory_order_acquire); seen != wanted;
         seen = published_.load(std::memory_order_acquire)) {
      published_.wait(seen, std::memory_order_acquire);
    }
  }

 private:
  static constexpr std::uint64_t stop = ~std::uint64_t{0};
  std::uint64_t requested_ = 0;  // the benchmark thread's
  std::atomic<std::uint64_t> request_{0};
  std::atomic<std::uint64_t> published_{0};
  std::thread thread_;  // last: starts after the members it uses exist
};

constexpr std::uint64_t backlog_burst = paced_publisher::window;

template <class Receive>
void time_backlog(benchmark::State& state, burst_publisher& publisher, Receive&& receive) {
  for (auto _ : state) {
    publisher.publish_burst();
    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < backlog_burst; ++i) receive();
    const auto stop = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(stop - start).count());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(backlog_burst));
}

void inbox_backlog_inbox(benchmark::State& state) {
  tandem::event_bus<event> bus;
  const std::vector<std::string> topics = topic_names(state.range(0));
  auto in = bus.inbox();
  for (const auto& t : topics) static_cast<void>(in.subscribe(t));
  burst_publisher publisher(bus, topics, backlog_burst);
  time_backlog(state, publisher, [&] { benchmark::DoNotOptimize(in.receive().message().id); });
}

// The same backlog taken in bulk: in.consume_all(f) until the burst is in (one call, unless
// the burst was not all visible yet). Its topic references are dropped once per topic per call.
void inbox_backlog_consume_all(benchmark::State& state) {
  tandem::event_bus<event> bus;
  const std::vector<std::string> topics = topic_names(state.range(0));
  auto in = bus.inbox();
  for (const auto& t : topics) static_cast<void>(in.subscribe(t));
  burst_publisher publisher(bus, topics, backlog_burst);
  auto take = [](tandem::envelope<event>& e) { benchmark::DoNotOptimize(e.message().id); };
  for (auto _ : state) {
    publisher.publish_burst();
    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t received = 0; received < backlog_burst;) received += in.consume_all(take);
    const auto stop = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(stop - start).count());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(backlog_burst));
}

void inbox_backlog_subscriptions(benchmark::State& state) {
  tandem::event_bus<event> bus;
  const std::vector<std::string> topics = topic_names(state.range(0));
  std::vector<tandem::event_bus<event>::subscription> subs;
  for (const auto& t : topics) subs.push_back(bus.subscribe(t));
  burst_publisher publisher(bus, topics, backlog_burst);
  std::size_t next = 0;
  time_backlog(state, publisher, [&] { benchmark::DoNotOptimize(poll_round_robin(subs, next)); });
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
BENCHMARK(inbox_vs_polling_inbox)
    ->Name("inbox_vs_polling/inbox")
    ->Arg(1)
    ->Arg(8)
    ->Arg(64)
    ->UseRealTime();
BENCHMARK(inbox_vs_polling_consume_all)
    ->Name("inbox_vs_polling/inbox_consume_all")
    ->Arg(1)
    ->Arg(8)
    ->Arg(64)
    ->UseRealTime();
BENCHMARK(inbox_vs_polling_subscriptions)
    ->Name("inbox_vs_polling/polled_subscriptions")
    ->Arg(1)
    ->Arg(8)
    ->Arg(64)
    ->UseRealTime();

// Fixed iterations: only the receiving is timed (a few microseconds per burst) while each burst
// takes about 50 us to publish, so a --benchmark_min_time of manual time would run for minutes.
// 2,000 bursts = 512,000 messages received per run.
BENCHMARK(inbox_backlog_inbox)
    ->Name("inbox_backlog/inbox")
    ->Arg(1)
    ->Arg(8)
    ->Arg(64)
    ->Iterations(2000)
    ->UseManualTime();
BENCHMARK(inbox_backlog_consume_all)
    ->Name("inbox_backlog/inbox_consume_all")
    ->Arg(1)
    ->Arg(8)
    ->Arg(64)
    ->Iterations(2000)
    ->UseManualTime();
BENCHMARK(inbox_backlog_subscriptions)
    ->Name("inbox_backlog/polled_subscriptions")
    ->Arg(1)
    ->Arg(8)
    ->Arg(64)
    ->Iterations(2000)
    ->UseManualTime();

BENCHMARK_MAIN();
