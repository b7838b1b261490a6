// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: rc_map_caller_conversion.cpp:[0-9]+:[0-9]+: error: .*conversion
// compile-flags: -Wconversion -Wsign-conversion -Werror
// expect-errors: 9
// A value-changing conversion of a scalar key is the caller's, reported at the caller's line
// even with tandem included as a system header (as a CMake consumer includes it): every
// function that takes a key takes a scalar K by value (rule 70). Until 2026-12-05 each call
// below compiled silently (`K(key)` inside the header): the key 2^64 - 1, the key 5.
#include <tandem/rc_map.hpp>

#include <cstdint>

int main() {
  int i = -1;
  tandem::rc_map<std::uint64_t, int> map;
  (void)map.get(i);
  (void)map.contains(i);
  (void)map.use_count(i);
  (void)map.visit(i, [](const int&) {});
  (void)map.insert(i, 1);
  (void)map.try_emplace(i, 1);
  (void)map.get_or_insert_with(i, [] { return 1; });
  tandem::rc_map<std::uint32_t, int> small;
  (void)small.get(std::int64_t{(std::int64_t{1} << 32) + 5});
  (void)small.contains(5.9);
}
