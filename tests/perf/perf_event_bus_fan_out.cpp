// Instructions per event_bus fan-out: publish a 32-byte message (bench/event_bus_bench.cpp's
// `event`) to one topic with 8 subscribers, then try_receive on each of them -- the path of the
// benchmark's fan_out_8 row, per publish (8 deliveries) -- against the same on the benchmark's
// hand-written bus (a map lock; per subscriber a std::mutex + std::deque mailbox, locked to push
// and again to receive). A program of its own, so that adding it changed no other case's
// inlining (perf_event_bus's counts stay comparable with their history).
#include <tandem/event_bus.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "perf_harness.hpp"

int main(int argc, char** argv) {
  const auto options = tandem::perf::parse(argc, argv);
  struct fan_event {
    std::uint64_t id = 0;
    std::uint64_t payload[3] = {};
  };
  constexpr std::size_t fan_subscribers = 8;
  tandem::event_bus<fan_event> fan_bus;
  std::vector<tandem::event_bus<fan_event>::subscription> fan_subscriptions;
  for (std::size_t s = 0; s < fan_subscribers; ++s) {
    fan_subscriptions.push_back(fan_bus.subscribe("room:lobby"));
  }
  const std::string fan_topic = "room:lobby";
  fan_event fan_message;
  tandem::perf::measure(options, "event_bus/fan_out_8", [&](std::size_t i) {
    fan_message.id = i;
    tandem::perf::keep(fan_bus.publish(fan_topic, fan_message));
    for (auto& subscription : fan_subscriptions) tandem::perf::keep(subscription.try_receive());
  });

  // The same on the hand-written bus.
  std::mutex map_mutex;
  struct hand_fan_mailbox {
    std::mutex mutex;
    std::deque<fan_event> queue;
  };
  std::vector<hand_fan_mailbox> fan_boxes(fan_subscribers);
  std::unordered_map<std::string, std::vector<hand_fan_mailbox*>> hand_fan;
  for (hand_fan_mailbox& box : fan_boxes) hand_fan[fan_topic].push_back(&box);
  tandem::perf::measure(options, "event_bus/hand_written/fan_out_8", [&](std::size_t i) {
    fan_message.id = i;
    {
      const std::lock_guard<std::mutex> lock(map_mutex);
      const auto it = hand_fan.find(fan_topic);
      for (hand_fan_mailbox* box : it->second) {
        const std::lock_guard<std::mutex> box_lock(box->mutex);
        box->queue.push_back(fan_message);
      }
    }
    for (hand_fan_mailbox& box : fan_boxes) {
      std::optional<fan_event> received;
      {
        const std::lock_guard<std::mutex> box_lock(box.mutex);
        if (!box.queue.empty()) {
          received = box.queue.front();
          box.queue.pop_front();
        }
      }
      tandem::perf::keep(received);
    }
  });

  return 0;
}
