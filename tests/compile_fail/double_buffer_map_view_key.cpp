// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: double_buffer_map
// expect-concept: double_buffer_map_key
// A view as K: the writer logs the key and both maps keep it after the call, so
// insert(std::string(...), v) kept a view of a temporary and the publish hashed freed memory
// (a new user's trial, 2026-12-05: ASan heap-use-after-free; rule 64). Refused like rc_map's
// and registry's view keys (until 2026-12-05 this compiled).
#include <tandem/double_buffer_map.hpp>

#include <string>
#include <string_view>

int main() {
  auto [writer, reader] = tandem::make_double_buffer_map<std::string_view, std::string>();
  writer.insert(std::string("a key long enough to live on the heap"), std::string("x"));
  writer.publish();
}
