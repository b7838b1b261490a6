// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: rc_map
// expect-concept: rc_map_clock
// A clock that may step back measuring linger time: the linger list is kept in release order
// and read as deadline order, so after system_clock stepped back collect() stopped at an
// unexpired head and left expired entries behind it (found by review, 2026-12-02). Only a
// steady clock (Clock::is_steady) is accepted.
#include <tandem/rc_map.hpp>

#include <chrono>
#include <functional>
#include <string>

int main() {
  tandem::rc_map<std::string, int, tandem::default_hash<std::string>,
                 tandem::default_key_equal<std::string>, std::chrono::system_clock>
      map;
  (void)map;
}
