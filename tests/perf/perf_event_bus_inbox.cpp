// Instructions per inbox leave and rejoin: an inbox leaves one of its topics and subscribes to
// it again (the topic is erased and created again each time: no one else subscribes to it),
// on an inbox that holds 8 topics and on one that holds 4,096, names like "room/inbox-00042"
// (16 bytes), std::uint64_t messages. The two must cost the same whatever the number of
// topics held (budgets.json): subscribe and unsubscribe find a topic in the inbox's index,
// not by a pass over its topics (before 2026-12-03 they did: 10 us per subscribe at 10,000
// topics, quadratic in all). A program of its own, so that instantiating inbox does not
// change how perf_event_bus's cases are compiled.
#include <tandem/event_bus.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "perf_harness.hpp"

int main(int argc, char** argv) {
  const auto options = tandem::perf::parse(argc, argv);
  for (const std::size_t held : {std::size_t{8}, std::size_t{4096}}) {
    const std::string case_name = "event_bus/inbox_leave_rejoin_" + std::to_string(held);
    if (!options.only.empty() && case_name.rfind(options.only, 0) != 0) continue;
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
  return 0;
}
