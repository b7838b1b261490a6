// clang-format off
// (the expect-* lines below are read verbatim by check.cmake)
// expect-error: double_buffer_map|make_double_buffer_map|double_buffer_map_over
// expect-concept: double_buffer_inner_map
// An inner map that cannot erase by key (nor has node handles or reserve): double_buffer_map
// must name its inner-map requirement, not fail deep inside an op.
#include <tandem/double_buffer_map.hpp>

#include <cstddef>
#include <functional>
#include <unordered_map>

struct read_only_map {
  using base = std::unordered_map<int, int>;
  using key_type = int;
  using mapped_type = int;
  using hasher = std::hash<int>;
  using key_equal = std::equal_to<int>;
  using value_type = base::value_type;
  using iterator = base::iterator;
  using const_iterator = base::const_iterator;
  read_only_map(std::size_t n, const hasher& h, const key_equal& e) : map(n, h, e) {}
  iterator find(const int& k) { return map.find(k); }
  const_iterator find(const int& k) const { return map.find(k); }
  const_iterator begin() const { return map.begin(); }
  const_iterator end() const { return map.end(); }
  iterator end() { return map.end(); }
  std::size_t size() const { return map.size(); }
  bool empty() const { return map.empty(); }
  template <class... A> auto try_emplace(A&&... a) { return map.try_emplace(static_cast<A&&>(a)...); }
  template <class... A> auto insert_or_assign(A&&... a) { return map.insert_or_assign(static_cast<A&&>(a)...); }
  void clear() { map.clear(); }
  base map;
};

int main() {
  auto [writer, reader] = tandem::double_buffer_map_over<read_only_map>::create();
  (void)writer;
  (void)reader;
}
