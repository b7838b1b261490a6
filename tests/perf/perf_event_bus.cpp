// Instructions per event_bus publish to a topic nobody subscribes to (64 other topics have a
// subscriber each; 64 absent topic names like "room/absent-0042", 16 bytes, from a fixed
// sequence; std::uint64_t messages, so the message copy costs nothing). Baseline in the same
// program: tandem::string_hash of the same topic (publish must at least hash it once).
// Informational: the same publish on a hand-written bus (std::mutex + std::unordered_map<
// std::string, std::vector<...>> find), the design the benchmark compares with.
// event_bus/publish_receive: publish to one of the 64 live topics (one subscriber each) and
// try_receive on that subscription, against the same on the hand-written bus (a mutex +
// std::deque mailbox per subscriber); capped (budgets.json), so that a lock or a copy that
// creeps back into the delivery path shows up as instructions.
// event_bus/churn: subscribe to a topic nobody else has and drop the subscription (the topic
// created and erased each time), against the same on the benchmark's hand-written bus.
#include <tandem/event_bus.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "perf_harness.hpp"

namespace {

std::vector<std::string> make_topics(const char* format, std::size_t count) {
  std::vector<std::string> result;
  for (std::size_t i = 0; i < count; ++i) {
    char text[32];
    std::snprintf(text, sizeof text, format, i);
    result.emplace_back(text);
  }
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = tandem::perf::parse(argc, argv);
  constexpr std::size_t topic_count = 64;
  const std::vector<std::string> live = make_topics("room/live-%04zu", topic_count);
  const std::vector<std::string> absent = make_topics("room/absent-%04zu", topic_count);
  const std::vector<std::size_t> sequence =
      tandem::perf::index_sequence(topic_count, tandem::perf::sequence_length);
  constexpr std::size_t mask = tandem::perf::sequence_length - 1;
  auto topic = [&](std::size_t i) { return std::string_view(absent[sequence[i & mask]]); };

  const tandem::string_hash hash;
  tandem::perf::measure(options, "event_bus/baseline/string_hash",
                        [&](std::size_t i) { tandem::perf::keep(hash(topic(i))); });

  std::mutex hand_mutex;
  std::unordered_map<std::string, std::vector<std::uint64_t*>> hand_written;
  for (const std::string& t : live) hand_written[t];
  tandem::perf::measure(options, "event_bus/hand_written/publish_absent", [&](std::size_t i) {
    std::size_t delivered = 0;
    {
      const std::lock_guard<std::mutex> lock(hand_mutex);
      // The stored std::string itself: a std::string(topic(i)) here would allocate (16
      // characters, past the small-string buffer) and double this row's count.
      const auto it = hand_written.find(absent[sequence[i & mask]]);
      if (it != hand_written.end()) delivered = it->second.size();
    }
    tandem::perf::keep(delivered);
  });

  tandem::event_bus<std::uint64_t> bus;
  std::vector<tandem::event_bus<std::uint64_t>::subscription> subscriptions;
  for (const std::string& t : live) subscriptions.push_back(bus.subscribe(t));
  tandem::perf::measure(options, "event_bus/publish_absent", [&](std::size_t i) {
    tandem::perf::keep(bus.publish(topic(i), std::uint64_t{7}));
  });

  // Publish to a live topic (one subscriber each) and take the message out again: the path
  // of bench/event_bus_bench.cpp's publish_receive/same_thread, over 64 topics.
  auto live_index = [&](std::size_t i) { return sequence[i & mask]; };
  tandem::perf::measure(options, "event_bus/publish_receive", [&](std::size_t i) {
    const std::size_t index = live_index(i);
    tandem::perf::keep(bus.publish(std::string_view(live[index]), std::uint64_t{7}));
    tandem::perf::keep(subscriptions[index].try_receive());
  });

  // The same on the hand-written bus: its map lock, then the subscriber's mailbox (a mutex and
  // a deque) for the push and again for the receive.
  struct hand_mailbox {
    std::mutex mutex;
    std::deque<std::uint64_t> queue;
  };
  std::vector<hand_mailbox> boxes(topic_count);
  std::unordered_map<std::string, std::vector<hand_mailbox*>> hand_live;
  for (std::size_t t = 0; t < topic_count; ++t) hand_live[live[t]].push_back(&boxes[t]);
  tandem::perf::measure(options, "event_bus/hand_written/publish_receive", [&](std::size_t i) {
    const std::size_t index = live_index(i);
    {
      const std::lock_guard<std::mutex> lock(hand_mutex);
      const auto it = hand_live.find(live[index]);
      for (hand_mailbox* box : it->second) {
        const std::lock_guard<std::mutex> box_lock(box->mutex);
        box->queue.push_back(7);
      }
    }
    std::optional<std::uint64_t> received;
    {
      hand_mailbox& box = boxes[index];
      const std::lock_guard<std::mutex> box_lock(box.mutex);
      if (!box.queue.empty()) {
        received = box.queue.front();
        box.queue.pop_front();
      }
    }
    tandem::perf::keep(received);
  });

  // Churn: subscribe to a topic nobody else has (creating it) and drop the subscription
  // (erasing it), over 64 topic names; the path of bench/event_bus_bench.cpp's churn row.
  const std::vector<std::string> churned = make_topics("room/churn-%04zu", topic_count);
  tandem::perf::measure(options, "event_bus/churn", [&](std::size_t i) {
    auto subscription = bus.subscribe(std::string_view(churned[live_index(i)]));
    tandem::perf::keep(&subscription);
  });

  // The same on the benchmark's hand-written bus: a mailbox (mutex, deque, condition variable)
  // made shared, the map lock to append it to the topic's vector (creating the topic), and the
  // subscription (topic name and mailbox) erasing it again under the map lock, and the topic
  // with it once its vector is empty.
  struct hand_churn_mailbox {
    std::mutex mutex;
    std::deque<std::uint64_t> queue;
    std::condition_variable ready;
  };
  using hand_list = std::vector<std::shared_ptr<hand_churn_mailbox>>;
  std::unordered_map<std::string, hand_list> hand_topics;
  struct hand_subscription {
    std::mutex* map_mutex;
    std::unordered_map<std::string, hand_list>* topics;
    std::string topic;
    std::shared_ptr<hand_churn_mailbox> box;
    hand_subscription(std::mutex* m, std::unordered_map<std::string, hand_list>* t,
                      std::string name, std::shared_ptr<hand_churn_mailbox> b)
        : map_mutex(m), topics(t), topic(std::move(name)), box(std::move(b)) {}
    hand_subscription(const hand_subscription&) = delete;
    hand_subscription& operator=(const hand_subscription&) = delete;
    ~hand_subscription() {
      const std::lock_guard<std::mutex> lock(*map_mutex);
      const auto it = topics->find(topic);
      if (it == topics->end()) return;
      hand_list& list = it->second;
      list.erase(std::remove(list.begin(), list.end(), box), list.end());
      if (list.empty()) topics->erase(it);
    }
  };
  tandem::perf::measure(options, "event_bus/hand_written/churn", [&](std::size_t i) {
    const std::string& name = churned[live_index(i)];
    auto box = std::make_shared<hand_churn_mailbox>();
    {
      const std::lock_guard<std::mutex> lock(hand_mutex);
      hand_topics[name].push_back(box);
    }
    const hand_subscription subscription(&hand_mutex, &hand_topics, name, std::move(box));
    tandem::perf::keep(&subscription);
  });
  return 0;
}
