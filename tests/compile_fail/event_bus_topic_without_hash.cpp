// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: event_bus_topic_without_hash.cpp:[0-9]+:[0-9]+: error: .*(tandem::event_bus|class template 'event_bus')
// expect-concept: bus_topic_hash.*is_invocable_r_v
// The deepest note names the missing call (Hash(key)), not a destructor check of the disabled
// std::hash specialisation (found by a new user's trial, 2026-12-05: the invocability test now
// comes first in the hash concept).
// A Topic with no std::hash specialisation (and no Hash given). The first error is at this
// file's line that names the class (the requires-clause of the class template), not inside
// the header, and the output names the concept that failed.
#include <tandem/event_bus.hpp>

struct no_hash_topic {
  int room;
  bool operator==(const no_hash_topic&) const = default;
};

int main() {
  tandem::event_bus<int, no_hash_topic> bus;
  (void)bus;
}
