// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: rc_map
// expect-concept: works_default_constructed
// A function pointer as Hash with no hash passed: the map would build Hash(), a null pointer,
// and call it on the first lookup (until 2026-12-02 this compiled and crashed). Passing the
// function, rc_map(shard_count, &hash), is the way to use one.
#include <tandem/rc_map.hpp>

#include <cstddef>

std::size_t int_hash(const int& k) { return static_cast<std::size_t>(k); }

int main() {
  tandem::rc_map<int, int, std::size_t (*)(const int&)> map;
  (void)map;
}
