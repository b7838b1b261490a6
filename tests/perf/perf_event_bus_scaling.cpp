// Instructions per operation whose cost must not grow with the number of things held:
// - event_bus/inbox_leave_rejoin_N: an inbox leaves one of its topics and subscribes to it
//   again (the topic is erased and created again each time: no one else subscribes to it), on
//   an inbox that holds N = 8 topics and on one that holds 4,096, names like
//   "room/inbox-00042" (16 bytes). subscribe and unsubscribe find a topic in the inbox's index,
//   not by a pass over its topics (before 2026-12-03 they did: 10 us per subscribe at 10,000
//   topics, quadratic in all).
// - event_bus/subscribe_to_topic_of_N: one more subscription to a topic that has N = 8 or 4,096
//   (and the subscriptions the run adds), kept: its entry goes into the room of the topic's
//   list; a full list is replaced by one with as much room again, so the copies cost O(1) per
//   subscribe amortized (before 2026-12-03 every subscribe copied the list: 435 us per
//   subscribe at 30,000 subscribers).
// - event_bus/subscribe_leave_topic_of_N: a subscription joins a topic that has N = 8 or 4,096
//   (kept) and leaves it again. A leave finds its entry where the subscription's position hint
//   says, not by a search of the list (before 2026-12-03 it searched: 10 us per leave at 30,000
//   subscribers, n leaves O(n^2)).
// std::uint64_t messages. Budgets (tests/perf/budgets.json): N = 4,096 costs what N = 8 does.
// A program of its own, so that instantiating inbox does not change how perf_event_bus's
// cases are compiled.
#include <tandem/event_bus.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "perf_harness.hpp"

namespace {

bool selected(const tandem::perf::run_options& options, const std::string& name) {
  return options.only.empty() || name.rfind(options.only, 0) == 0;
}

using bus_type = tandem::event_bus<std::uint64_t>;

// `held` subscriptions to "room/broadcast", in a vector with room for `more`.
std::vector<bus_type::subscription> subscribers(bus_type& bus, std::size_t held, std::size_t more) {
  std::vector<bus_type::subscription> subscriptions;
  subscriptions.reserve(held + more);
  for (std::size_t i = 0; i < held; ++i) subscriptions.push_back(bus.subscribe("room/broadcast"));
  return subscriptions;
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = tandem::perf::parse(argc, argv);
  for (const std::size_t held : {std::size_t{8}, std::size_t{4096}}) {
    const std::string case_name = "event_bus/inbox_leave_rejoin_" + std::to_string(held);
    if (!selected(options, case_name)) continue;
    std::vector<std::string> names;
    for (std::size_t i = 0; i < held; ++i) {
      char text[32];
      std::snprintf(text, sizeof text, "room/inbox-%05zu", i);
      names.emplace_back(text);
    }
    tandem::event_bus<std::uint64_t> bus;
    auto in = bus.inbox();
    for (const std::string& name : names) static_cast<void>(in.subscribe(std::string_view(name)));
    tandem::perf::measure(options, case_name.c_str(), [&](std::size_t i) {
      const std::string_view name = names[i % held];
      tandem::perf::keep(in.unsubscribe(name));
      tandem::perf::keep(in.subscribe(name));
    });
  }
  for (const std::size_t held : {std::size_t{8}, std::size_t{4096}}) {
    const std::string case_name = "event_bus/subscribe_to_topic_of_" + std::to_string(held);
    if (!selected(options, case_name)) continue;
    bus_type bus;
    // 64: measure()'s warm-up
    std::vector<bus_type::subscription> subscriptions = subscribers(bus, held, options.count + 64);
    tandem::perf::measure(options, case_name.c_str(), [&](std::size_t) {
      subscriptions.push_back(bus.subscribe("room/broadcast"));
      tandem::perf::keep(&subscriptions.back());
    });
    while (!subscriptions.empty()) subscriptions.pop_back();
  }
  for (const std::size_t held : {std::size_t{8}, std::size_t{4096}}) {
    const std::string case_name = "event_bus/subscribe_leave_topic_of_" + std::to_string(held);
    if (!selected(options, case_name)) continue;
    bus_type bus;
    const std::vector<bus_type::subscription> subscriptions = subscribers(bus, held, 0);
    tandem::perf::measure(options, case_name.c_str(), [&](std::size_t) {
      bus_type::subscription joined = bus.subscribe("room/broadcast");
      tandem::perf::keep(&joined);
    });  // the newest entry leaves: a search of the list would pass over all the others
  }
  return 0;
}
