// Compiled by the "optimised use" hygiene tests (tests/CMakeLists.txt) at -O1, -O2 and -O3 with the
// strict warning set and -Werror. The "header alone" tests compile each header with
// -fsyntax-only, which instantiates nothing and runs no optimiser, so the warnings g++ derives
// from data flow (-Wmaybe-uninitialized, -Wstringop-overflow, -Wnull-dereference) never get a
// chance there; this program instantiates the common calls of every component (an inbox's
// subscribe once gave g++ 12 -O3 a -Wstringop-overflow). Built twice: with assertions on, and
// with -DNDEBUG (a release build: other code paths for the optimiser).
#include <tandem/double_buffer.hpp>
#include <tandem/double_buffer_map.hpp>
#include <tandem/event_bus.hpp>
#include <tandem/rc_map.hpp>
#include <tandem/registry.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace {

struct settings {
  explicit settings(const std::string& name) : size(name.size()) {}
  std::size_t size;
};

struct event {
  std::uint64_t id = 0;
  std::string text;
};

struct append_text {
  std::string text;
  void operator()(std::vector<std::string>& v) const { v.push_back(text); }
};

// Every read member of a guard, compiled on its own, as in a user's function that takes a reader
// (not specialised for main's reader, whose state the optimiser knows): g++ 12 -O2 once warned
// -Wnull-dereference here, in every user's read.
#if defined(__GNUC__) && !defined(__clang__)
#define TANDEM_HYGIENE_STANDALONE __attribute__((noipa))
#else
#define TANDEM_HYGIENE_STANDALONE __attribute__((noinline))
#endif
TANDEM_HYGIENE_STANDALONE std::size_t read_every_way(
    tandem::double_buffer<std::vector<std::string>, append_text>::reader& reader) {
  const auto guard = reader.read();
  return guard->size() + (*guard).size() + guard.get().size();
}
TANDEM_HYGIENE_STANDALONE std::size_t read_every_way(
    tandem::double_buffer_map<std::string, int>::reader& reader) {
  const auto guard = reader.read();
  std::size_t sum = guard.size() + (guard.empty() ? 0U : 1U);
  for (const auto& [key, value] : guard) sum += key.size() + static_cast<std::size_t>(value);
  return sum;
}

// A handle made and dereferenced in a user's function of its own: with assertions on, g++ 12
// -O1 followed the empty-handle assertion's returning path into the dereference and warned
// -Wstringop-overflow (found by a new user's trial, 2026-12-03; now TANDEM_ASSERT_FATAL).
TANDEM_HYGIENE_STANDALONE int first_use(tandem::rc_map<std::string, int>& map) {
  auto handle = map.get_or_insert_with("a", [] { return 4; });
  return *handle + static_cast<int>(handle.key().size());
}
TANDEM_HYGIENE_STANDALONE std::size_t topic_size(const tandem::envelope<event>& e) {
  return e.topic().size();
}

}  // namespace

int main() {
  std::size_t sum = 0;

  tandem::registry<settings> registry;
  sum += registry.get_or_create("tenant:1")->size;
  sum += registry.find("tenant:1") ? 1U : 0U;
  registry.for_each(
      [&](const std::string& key, settings& value) { sum += key.size() + value.size; });
  registry.override("tenant:2", std::make_shared<settings>("mock"));  // g++ -O2 once warned here
  sum += registry.erase("tenant:1") ? 1U : 0U;
  tandem::registry<int, std::uint64_t> numbers;  // T(key) narrows: once -Wconversion in tandem
  sum += static_cast<std::size_t>(*numbers.get_or_create(std::uint64_t{7}));

  auto [writer, reader] = tandem::double_buffer_map<std::string, int>::create();
  writer.insert("a", 1);
  writer.erase("b");
  writer.publish();
  if (auto guard = reader.read(); const int* found = guard.find("a")) {
    sum += static_cast<std::size_t>(*found);
  }
  sum += read_every_way(reader);
  {
    auto [buffer_writer, buffer_reader] =
        tandem::make_double_buffer<std::vector<std::string>, append_text>();
    buffer_writer.push(append_text{"text"});
    buffer_writer.publish();
    sum += read_every_way(buffer_reader);
  }

  tandem::rc_map<std::string, std::string> pool;
  {
    auto handle = pool.get_or_insert_with("db:1", [] { return std::string("connection"); });
    sum += handle->size();
    const std::string& value = *handle;  // operator* (g++ 12 -O2 once warned: null dereference)
    sum += value.size();
    if (auto found = pool.get("db:1")) sum += (*found)->size();
    tandem::rc_map<std::string, std::string>::weak_handle weak = handle;
    if (auto locked = weak.lock()) sum += locked->size();
    pool.for_each(
        [&](const std::string& key, const std::string& v) { sum += key.size() + v.size(); });
  }

  {
    tandem::rc_map<std::string, int> numbers_in_use;
    sum += static_cast<std::size_t>(first_use(numbers_in_use));
  }

  tandem::event_bus<event> bus;
  auto sub = bus.subscribe("room:1");
  auto in = bus.inbox(8, tandem::overflow_policy::drop_oldest);
  sum += in.subscribe("room:1") ? 1U : 0U;
  sum += in.subscribe("room:2") ? 1U : 0U;
  for (std::uint64_t i = 0; i < 20; ++i) sum += bus.publish("room:1", event{i, "hello"});
  sum += bus.publish_from(in, "room:2", event{99, "from the inbox"});
  {
    tandem::event_bus<std::string> text_bus;
    auto text_inbox = text_bus.inbox();
    sum += text_inbox.subscribe(std::string("a")) ? 1U : 0U;
  }
  sum += in.consume_all([&](tandem::envelope<event>& e) { sum += topic_size(e); });
  if (auto e = in.receive_for(std::chrono::milliseconds(0))) sum += e->message().id;
  if (auto m = sub.try_receive()) sum += m->text.size();
  sum += in.unsubscribe("room:2") ? 1U : 0U;
  return sum == 0 ? 1 : 0;
}
