// Compiled by the "optimised small uses" hygiene tests (tests/CMakeLists.txt) at -O1, -O2 and
// -O3, with assertions on and with -DNDEBUG, under the strict warning set and -Werror: one
// short user function per common call, each on its own (external, not inlined into a caller),
// as a user's translation unit has them. optimised_use.cpp instantiates everything in one
// program, and there g++ 12 kept a warning quiet that it gave in a file of three lines: with
// assertions on, -O1 followed the empty-handle assertion's returning path into `*handle` and
// warned -Wstringop-overflow (found by a new user's trial, 2026-12-03; the check before a
// dereference is now TANDEM_ASSERT_FATAL).
#include <tandem/double_buffer_map.hpp>
#include <tandem/event_bus.hpp>
#include <tandem/rc_map.hpp>
#include <tandem/registry.hpp>

#include <cstddef>
#include <string>

// External, as a user's functions in a header are (declared first: clang's
// -Wmissing-prototypes).
int handle_value(tandem::rc_map<std::string, int>& map);
std::size_t handle_members(tandem::rc_map<std::string, std::string>& map);
std::size_t envelope_topic(tandem::event_bus<int>::inbox_type& in);
int registry_value(tandem::registry<int>& registry);
int map_lookup(tandem::double_buffer_map<std::string, int>::reader& r);

#if defined(__GNUC__) && !defined(__clang__)
#define TANDEM_HYGIENE_STANDALONE __attribute__((noipa))
#else
#define TANDEM_HYGIENE_STANDALONE __attribute__((noinline))
#endif

TANDEM_HYGIENE_STANDALONE int handle_value(tandem::rc_map<std::string, int>& map) {
  auto handle = map.get_or_insert_with("a", [] { return 4; });
  return *handle;
}

TANDEM_HYGIENE_STANDALONE std::size_t handle_members(
    tandem::rc_map<std::string, std::string>& map) {
  auto handle = map.get_or_insert_with("a", [] { return std::string("b"); });
  auto copy = handle;
  return handle->size() + copy.key().size() + (*copy).size();
}

TANDEM_HYGIENE_STANDALONE std::size_t envelope_topic(tandem::event_bus<int>::inbox_type& in) {
  auto e = in.try_receive();
  return e ? e->topic().size() + static_cast<std::size_t>(e->message()) : 0U;
}

TANDEM_HYGIENE_STANDALONE int registry_value(tandem::registry<int>& registry) {
  return *registry.get_or_create("a");
}

TANDEM_HYGIENE_STANDALONE int map_lookup(tandem::double_buffer_map<std::string, int>::reader& r) {
  const auto guard = r.read();
  const int* found = guard.find("a");
  return found != nullptr ? *found : 0;
}

int main() {
  tandem::rc_map<std::string, int> numbers;
  tandem::rc_map<std::string, std::string> texts;
  tandem::event_bus<int> bus;
  auto in = bus.inbox();
  static_cast<void>(in.subscribe("t"));
  static_cast<void>(bus.publish("t", 1));
  tandem::registry<int> registry;
  auto [writer, reader] = tandem::double_buffer_map<std::string, int>::create();
  writer.insert("a", 1);
  writer.publish();
  const std::size_t sum = static_cast<std::size_t>(handle_value(numbers)) + handle_members(texts) +
                          envelope_topic(in) + static_cast<std::size_t>(registry_value(registry)) +
                          static_cast<std::size_t>(map_lookup(reader));
  return sum == 0 ? 1 : 0;
}
