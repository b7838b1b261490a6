// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: make_double_buffer_map|tandem::double_buffer_map|class template .double_buffer_map.
// expect-concept: double_buffer_map_value
// A value with a const member: insert_or_assign's replay assigns values, so the map cannot use
// it even if the program never calls insert_or_assign (found by a review, 2026-12-01: the
// concept accepted it and the first error was a deleted operator= deep in the header).
#include <tandem/double_buffer_map.hpp>

#include <string>

struct route {
  const int id;
  std::string host;
};

int main() {
  auto [writer, reader] = tandem::make_double_buffer_map<int, route>();
  writer.insert(1, route{1, "a"});
  writer.publish();
}
