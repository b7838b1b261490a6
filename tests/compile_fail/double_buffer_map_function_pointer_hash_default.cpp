// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: make_double_buffer_map
// expect-concept: works_default_constructed
// A function pointer as Hash with no hash passed: both maps would be built with Hash(), a null
// pointer, called on the first insert (until 2026-12-02 this compiled and crashed). Passing
// the function, make_double_buffer_map<...>(0, &hash), is the way to use one.
#include <tandem/double_buffer_map.hpp>

#include <cstddef>

std::size_t int_hash(const int& k) { return static_cast<std::size_t>(k); }

int main() {
  auto [writer, reader] = tandem::make_double_buffer_map<int, int, std::size_t (*)(const int&)>();
  (void)writer;
  (void)reader;
}
