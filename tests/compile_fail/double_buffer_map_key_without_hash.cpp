// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: make_double_buffer_map|tandem::double_buffer_map|class template .double_buffer_map.
// expect-concept: double_buffer_map_hash.*h\(key\)
// The deepest note names the missing call (Hash(key)), not a destructor check of the disabled
// std::hash specialisation (found by a new user's trial, 2026-12-05: the invocability test now
// comes first in the hash concept).
// A key type with no std::hash specialisation (and no Hash given): the issue's own example.
#include <tandem/double_buffer_map.hpp>

struct no_hash_type {
  int value;
  bool operator==(const no_hash_type&) const = default;
};

int main() {
  auto [writer, reader] = tandem::make_double_buffer_map<no_hash_type, int>();
  (void)writer;
  (void)reader;
}
