// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: rc_map_caller_conversion.cpp:[0-9]+:[0-9]+: error: .*conversion
// compile-flags: -Wconversion -Wsign-conversion -Werror
// expect-errors: 12
// A value-changing conversion of a scalar key is the caller's, reported at the caller's line
// even with tandem included as a system header (as a CMake consumer includes it): every
// function that takes a key takes a scalar K by value (rule 70). Until 2026-12-05 each call
// below compiled silently (`K(key)` inside the header): the key 2^64 - 1, the key 5.
#include <tandem/rc_map.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>

// A transparent Hash over a scalar key (a strong id besides the raw number): an `int` argument
// goes by value all the same (found by review, 2026-12-05: it was taken as a transparent key
// and converted inside the Hash's call, silently).
struct user_id {
  std::uint64_t raw;
};
struct id_hash {
  using is_transparent = void;
  std::size_t operator()(std::uint64_t id) const noexcept { return id; }
  std::size_t operator()(user_id id) const noexcept { return id.raw; }
};
struct id_equal {
  using is_transparent = void;
  bool operator()(std::uint64_t a, std::uint64_t b) const noexcept { return a == b; }
  bool operator()(user_id a, std::uint64_t b) const noexcept { return a.raw == b; }
};

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
  tandem::rc_map<std::uint64_t, int, id_hash, id_equal> ids;
  (void)ids.contains(user_id{1});  // used as it is: no error
  (void)ids.contains(i);
  (void)ids.contains(std::cref(i));  // a class type that converts to K: by value too
  tandem::rc_map<std::uint64_t, std::uint64_t> values;  // a scalar value, by value too
  (void)values.insert(1, i);
}
