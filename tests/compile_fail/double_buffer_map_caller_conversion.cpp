// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: double_buffer_map_caller_conversion.cpp:[0-9]+:[0-9]+: error: .*conversion
// compile-flags: -Wconversion -Wsign-conversion -Werror
// expect-errors: 7
// A value-changing conversion of a scalar key is the caller's, reported at the caller's line
// even with tandem included as a system header: the lookups take a scalar K by value, as the
// writer does since 2026-12-04 (rule 70). Until 2026-12-05 the four lookups below compiled
// silently (`K(key)` inside the header): 2^32 + 5 found the key 5.
#include <tandem/double_buffer_map.hpp>

#include <cstdint>

int main() {
  int i = -1;
  const std::int64_t big = (std::int64_t{1} << 32) + 5;
  auto [writer, reader] = tandem::make_double_buffer_map<std::uint32_t, int>();
  writer.insert(i, 1);
  writer.insert_or_assign(big, 1);
  writer.erase(i);
  (void)reader.get(big);
  (void)reader.contains(big);
  const auto guard = reader.read();
  (void)guard.find(i);
  (void)guard.contains(big);
}
