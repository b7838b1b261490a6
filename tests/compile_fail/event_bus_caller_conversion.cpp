// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: event_bus_caller_conversion.cpp:[0-9]+:[0-9]+: error: .*conversion
// compile-flags: -Wconversion -Wsign-conversion -Werror
// expect-errors: 11
// A value-changing conversion of a scalar Topic is the caller's, reported at the caller's line
// even with tandem included as a system header: every function that takes a topic takes a
// scalar Topic by value (rule 70). Until 2026-12-05 each call below compiled silently
// (`Topic(topic)` inside the header): the topic 2^64 - 1.
#include <tandem/event_bus.hpp>

#include <cstdint>
#include <string>

int main() {
  int i = -1;
  tandem::event_bus<int, std::uint64_t> bus;
  auto s = bus.subscribe(i);
  auto t = bus.subscribe(i, 4, tandem::overflow_policy::block);
  (void)bus.publish(i, 1);
  (void)bus.publish_from(s, i, 1);
  (void)bus.subscriber_count(i);
  auto in = bus.inbox();
  (void)in.subscribe(i);
  (void)in.unsubscribe(i);
  (void)bus.subscribe(in, i);
  (void)bus.unsubscribe(in, i);
  (void)bus.publish_from(in, i, 1);
  tandem::event_bus<std::string, std::uint64_t> text;
  (void)text.publish(i, "a message that is not a scalar");
  auto u = text.subscribe(7);
  (void)text.publish_from(u, 7, "no conversion: not counted");
}
