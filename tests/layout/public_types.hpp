// tests/layout/public_types.hpp -- one instantiation of every public tandem type, as an X-list:
// TANDEM_LAYOUT_TYPE(name, type). Included by both translation units of layout_test (one built
// with NDEBUG, one without), which must agree on every type's size and alignment.
#pragma once

#include <tandem/tandem.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace tandem::test::layout {

struct append_op {
  std::string text;
  void operator()(std::vector<std::string>& v) const { v.push_back(text); }
};
struct payload {
  explicit payload(const std::string& k) : key(k) {}
  payload() = default;
  std::string key;
};

using db = tandem::double_buffer<std::vector<std::string>, append_op>;
using dbm = tandem::double_buffer_map<std::string, std::string>;
using rcm = tandem::rc_map<std::string, std::string>;
using bus = tandem::event_bus<std::string>;
using reg = tandem::registry<payload>;

}  // namespace tandem::test::layout

#define TANDEM_LAYOUT_TYPES(X)                                 \
  X(registry, tandem::test::layout::reg)                       \
  X(double_buffer, tandem::test::layout::db)                   \
  X(double_buffer_reader, tandem::test::layout::db::reader)    \
  X(double_buffer_writer, tandem::test::layout::db::writer)    \
  X(double_buffer_guard, tandem::test::layout::db::read_guard) \
  X(double_buffer_map, tandem::test::layout::dbm)              \
  X(map_reader, tandem::test::layout::dbm::reader)             \
  X(map_writer, tandem::test::layout::dbm::writer)             \
  X(map_guard, tandem::test::layout::dbm::read_guard)          \
  X(rc_map, tandem::test::layout::rcm)                         \
  X(rc_map_handle, tandem::test::layout::rcm::handle)          \
  X(event_bus, tandem::test::layout::bus)                      \
  X(subscription, tandem::test::layout::bus::subscription)     \
  X(once_cell, tandem::sync::once_cell<std::string>)           \
  X(small_mutex, tandem::sync::small_mutex)                    \
  X(backoff, tandem::sync::backoff)                            \
  X(epoch_read_section, tandem::sync::epoch_read_section)      \
  X(reader_epochs, tandem::sync::reader_epochs<>)              \
  X(cache_padded, tandem::sync::cache_padded<std::uint64_t>)

namespace tandem::test::layout {
struct fact {
  const char* name;
  std::size_t size;
  std::size_t alignment;
};
}  // namespace tandem::test::layout
