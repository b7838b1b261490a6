// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: event_bus
// expect-concept: bus_topic
// A view as Topic: the topic map would keep a view of the subscriber's string (rule 64). Refused
// by rc_map_key before 2026-12-05 too, but only inside event_bus.hpp, where the first error
// named rc_map (a new user's trial): now bus_topic refuses it at the user's line.
#include <tandem/event_bus.hpp>

#include <string>
#include <string_view>

int main() {
  tandem::event_bus<std::string, std::string_view> bus;
  (void)bus;
}
