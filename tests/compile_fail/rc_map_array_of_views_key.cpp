// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: rc_map
// expect-concept: rc_map_key
// A std::array of views as K keeps the caller's strings past the call as a bare
// std::string_view would (rule 64): refused by rc_map_key, like a view (until 2026-12-04
// this compiled).
#include <tandem/rc_map.hpp>

#include <array>
#include <cstddef>
#include <string_view>

struct views_hash {
  std::size_t operator()(const std::array<std::string_view, 1>& k) const noexcept {
    return k[0].size();
  }
};

int main() {
  tandem::rc_map<std::array<std::string_view, 1>, int, views_hash> map;
  (void)map;
}
