// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: rc_map_reset_if_throwing_predicate.cpp:[0-9]+:[0-9]+: error: .*reset_if
// expect-concept: rc_map_reset_predicate
// handle::reset_if with an f that may throw: f runs under the shard lock just before a release,
// and a release cannot fail, so f must be noexcept. The first error is at the call in this
// file, and the output names the concept that failed.
#include <tandem/rc_map.hpp>

int main() {
  tandem::rc_map<int, int> map;
  auto h = map.get_or_insert_with(1, [] { return 2; });
  return h.reset_if([](const int& value) { return value == 2; }) ? 0 : 1;
}
