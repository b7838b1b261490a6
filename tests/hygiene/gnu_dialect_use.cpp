// Compiled with -std=gnu++20, CMake's default dialect (CMAKE_CXX_EXTENSIONS is ON unless a
// project turns it off; tandem's own tests turn it off). There __int128 is an integral and
// arithmetic type with a std::hash, so the key concepts admit it, but std::to_string has no
// overload for it: until 2026-12-02 rc_map's and registry's key descriptions (for error
// messages) called std::to_string on every integral key, and this failed inside the headers
// (found by review; docs/reliability.md rule 36).
#include <tandem/rc_map.hpp>
#include <tandem/registry.hpp>

__extension__ using int128 = __int128;

int gnu_dialect_use();
int gnu_dialect_use() {
  tandem::rc_map<int128, int> map;
  const auto handle = map.get_or_insert_with(int128{1}, [] { return 2; });
  tandem::registry<long, int128> registry;
  const auto instance = registry.get_or_create(int128{3});
  return *handle + static_cast<int>(*instance);
}
