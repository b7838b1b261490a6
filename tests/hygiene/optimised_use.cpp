// Compiled by the "optimised use" hygiene tests (tests/CMakeLists.txt) at -O2 and -O3 with the
// strict warning set and -Werror. The "header alone" tests compile each header with
// -fsyntax-only, which instantiates nothing and runs no optimiser, so the warnings g++ derives
// from data flow (-Wmaybe-uninitialized, -Wstringop-overflow, -Wnull-dereference) never get a
// chance there; this program instantiates the common calls of every component (an inbox's
// subscribe once gave g++ 12 -O3 a -Wstringop-overflow). Built with assertions on: with
// -DNDEBUG g++ 12's optimiser reports -Wmaybe-uninitialized inside std::variant and
// -Wnull-dereference inside std::shared_ptr (libstdc++'s own code, see docs/building.md).
#include <tandem/double_buffer_map.hpp>
#include <tandem/event_bus.hpp>
#include <tandem/rc_map.hpp>
#include <tandem/registry.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace {

struct settings {
  explicit settings(const std::string& name) : size(name.size()) {}
  std::size_t size;
};

struct event {
  std::uint64_t id = 0;
  std::string text;
};

}  // namespace

int main() {
  std::size_t sum = 0;

  tandem::registry<settings> registry;
  sum += registry.get_or_create("tenant:1")->size;
  sum += registry.find("tenant:1") ? 1U : 0U;
  sum += registry.erase("tenant:1") ? 1U : 0U;

  auto [writer, reader] = tandem::double_buffer_map<std::string, int>::create();
  writer.insert("a", 1);
  writer.erase("b");
  writer.publish();
  if (auto guard = reader.read(); const int* found = guard.find("a")) {
    sum += static_cast<std::size_t>(*found);
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
  sum += in.consume_all([&](tandem::envelope<event>& e) { sum += e.topic().size(); });
  if (auto e = in.receive_for(std::chrono::milliseconds(0))) sum += e->message().id;
  if (auto m = sub.try_receive()) sum += m->text.size();
  sum += in.unsubscribe("room:2") ? 1U : 0U;
  return sum == 0 ? 1 : 0;
}
