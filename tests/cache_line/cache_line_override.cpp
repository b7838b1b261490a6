// Built twice, with TANDEM_CACHE_LINE_SIZE=16 and =256 (tests/CMakeLists.txt): the override
// only has to be a power of two (sync/cache_padded.hpp), so every component must still compile
// and work with a line smaller than the 64 bytes an inbox membership's tagged reference needs
// (event_bus.hpp aligns it to 64 at least) and with one larger than the default.
#include <tandem/tandem.hpp>

#include <string>

#include "test_support.hpp"

TEST_CASE("cache line override: every component builds and works") {
  static_assert(tandem::sync::cache_line_size == TANDEM_CACHE_LINE_SIZE);
  // event_bus: an inbox on more topics than its release batch has slots, taken in bulk.
  tandem::event_bus<std::string> bus;
  auto in = bus.inbox();
  for (int i = 0; i < 70; ++i) CHECK(in.subscribe("room:" + std::to_string(i)));
  for (int i = 0; i < 70; ++i) {
    CHECK(bus.publish("room:" + std::to_string(i), std::string(40, 'a') + std::to_string(i)) == 1);
  }
  int in_order = 0;
  CHECK(in.consume_all([&](tandem::envelope<std::string>& e) {
    in_order += e.topic() == "room:" + std::to_string(in_order) &&
                        e.message() == std::string(40, 'a') + std::to_string(in_order)
                    ? 1
                    : 0;
  }) == 70);
  CHECK(in_order == 70);
  // rc_map, registry, double_buffer_map: one round trip each.
  tandem::rc_map<std::string, std::string> map;
  {
    auto handle = map.get_or_insert_with("key", [] { return std::string("value"); });
    CHECK(*handle == "value");
    CHECK(map.size() == 1);
  }
  CHECK(map.size() == 0);
  tandem::registry<std::string> registry;
  CHECK(*registry.get_or_create("name") == "name");  // std::string("name"), built once
  auto [writer, reader] = tandem::make_double_buffer_map<std::string, int>();
  writer.insert_or_assign("one", 1);
  writer.publish();
  {
    auto guard = reader.read();
    const int* one = guard.find("one");
    REQUIRE(one != nullptr);
    CHECK(*one == 1);
  }
}
