// Types the concepts admit and the classes must then work with (docs/reliability.md rule 36),
// compiled with the strict warning flags and -Werror by both compilers:
//  - under -std=gnu++20, CMake's default dialect (CMAKE_CXX_EXTENSIONS is ON unless a project
//    turns it off; tandem's own tests turn it off), __int128 is an integral and arithmetic type
//    with a std::hash, so the key concepts admit it, but std::to_string has no overload for it:
//    until 2026-12-02 rc_map's and registry's key descriptions (for error messages) called
//    std::to_string on every integral key, and this failed inside the headers (found by review);
//  - a value or message type whose unary operator& is deleted (or overloaded, as COM-style
//    handles do): until 2026-12-02 registry, rc_map, event_bus, the mailbox, double_buffer and
//    cache_padded took addresses with `&`, and each failed to compile (found by review: every
//    address of a user object is taken with std::addressof; a reviewer of that fix found three
//    more: rc_map's key, double_buffer's pending Op, sync::striped's value).
#include <tandem/double_buffer.hpp>
#include <tandem/double_buffer_map.hpp>
#include <tandem/event_bus.hpp>
#include <tandem/rc_map.hpp>
#include <tandem/registry.hpp>
#include <tandem/sync/cache_padded.hpp>
#include <tandem/sync/striped_lock.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <utility>

__extension__ using int128 = __int128;

int gnu_dialect_use();
int gnu_dialect_use() {
  tandem::rc_map<int128, int> map;
  const auto handle = map.get_or_insert_with(int128{1}, [] { return 2; });
  tandem::registry<long, int128> registry;
  const auto instance = registry.get_or_create(int128{3});
  return *handle + static_cast<int>(*instance);
}

namespace {

struct no_address_of {
  no_address_of() = default;
  explicit no_address_of(std::string s) : text(std::move(s)) {}
  no_address_of* operator&() const = delete;
  std::string text;
};

struct set_text {
  explicit set_text(std::string s) : text(std::move(s)) {}
  set_text* operator&() const = delete;  // an Op too (double_buffer keeps pending ones)
  void operator()(no_address_of& v) const { v.text = text; }
  std::string text;
};

// A key or topic whose operator& is deleted (rc_map keys, event_bus topics, double_buffer_map
// keys; a fix reviewer's finding: rc_map named a key by its address with `&`).
struct no_address_of_key {
  no_address_of_key* operator&() const = delete;
  friend bool operator==(const no_address_of_key& a, const no_address_of_key& b) {
    return a.id == b.id;
  }
  int id = 0;
};
struct no_address_of_key_hash {
  std::size_t operator()(const no_address_of_key& k) const noexcept {
    return std::hash<int>{}(k.id);
  }
};

}  // namespace

std::size_t deleted_address_of_use();
std::size_t deleted_address_of_use() {
  std::size_t sum = 0;
  tandem::registry<no_address_of> registry;
  sum += registry.get_or_create("x")->text.size();
  auto accessor = registry.accessor("x");
  sum += accessor->text.size();
  registry.visit("x", [&](const no_address_of& v) { sum += v.text.size(); });

  tandem::rc_map<std::string, no_address_of> map;
  const auto handle = map.get_or_insert_with("k", [] { return no_address_of("v"); });
  sum += handle->text.size();
  map.visit("k", [&](const no_address_of& v) { sum += v.text.size(); });  // once_cell::get()

  tandem::event_bus<no_address_of> bus;
  auto subscription = bus.subscribe("t");
  auto inbox = bus.inbox();
  bus.subscribe(inbox, "t");
  bus.publish("t", no_address_of("m"));
  if (const auto received = subscription.try_receive()) sum += received->text.size();
  if (const auto received = inbox.try_receive()) sum += received->message().text.size();

  auto [writer, reader] = tandem::make_double_buffer<no_address_of, set_text>(std::string("a"));
  writer.emplace(std::string("b"));
  writer.publish();
  {
    const auto guard = reader.read();
    sum += guard->text.size();
  }

  auto [map_writer, map_reader] = tandem::make_double_buffer_map<std::string, no_address_of>();
  map_writer.insert_or_assign("k", no_address_of("v"));
  map_writer.publish();
  {
    const auto guard = map_reader.read();
    if (const no_address_of* found = guard.find("k")) sum += found->text.size();
  }

  tandem::sync::cache_padded<no_address_of> padded;
  sum += padded->text.size();
  tandem::sync::striped<no_address_of> stripes(4);
  sum += stripes.lock(7)->text.size();

  tandem::rc_map<no_address_of_key, int, no_address_of_key_hash> keyed;
  const auto keyed_handle = keyed.get_or_insert_with(no_address_of_key{1}, [] { return 2; });
  sum += static_cast<std::size_t>(*keyed_handle);
  tandem::event_bus<int, no_address_of_key, no_address_of_key_hash> topics;
  auto on_topic = topics.subscribe(no_address_of_key{3});
  topics.publish(no_address_of_key{3}, 4);
  if (const auto received = on_topic.try_receive()) sum += static_cast<std::size_t>(*received);
  auto [keyed_writer, keyed_reader] =
      tandem::make_double_buffer_map<no_address_of_key, int, no_address_of_key_hash>();
  keyed_writer.insert_or_assign(no_address_of_key{5}, 6);
  keyed_writer.publish();
  {
    const auto guard = keyed_reader.read();
    if (const int* found = guard.find(no_address_of_key{5}))
      sum += static_cast<std::size_t>(*found);
  }
  return sum;
}
