// No tandem type's layout depends on NDEBUG or TANDEM_ENABLE_ASSERTS: a library compiled with
// -DNDEBUG and an application compiled without it share objects. This unit is compiled with
// assertions on; layout_ndebug.cpp with NDEBUG and TANDEM_ENABLE_ASSERTS unset.
#undef NDEBUG
#include "public_types.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace tandem::test::layout {
std::vector<fact> facts_without_asserts();
bool asserts_on_in_ndebug_unit();
std::size_t read_size_without_asserts(dbm::reader& reader, const std::string& key);
std::string try_receive_without_asserts(bus::subscription& subscription);
std::string consume_all_without_asserts(bus::inbox_type& inbox);
}  // namespace tandem::test::layout

namespace layout = tandem::test::layout;

TEST_CASE("layout: every public type has one size and alignment with and without NDEBUG") {
  REQUIRE(TANDEM_ENABLE_ASSERTS != 0);
  REQUIRE_FALSE(layout::asserts_on_in_ndebug_unit());
  std::vector<layout::fact> with_asserts;
#define TANDEM_LAYOUT_FACT(name, ...) \
  with_asserts.push_back({#name, sizeof(__VA_ARGS__), alignof(__VA_ARGS__)});
  TANDEM_LAYOUT_TYPES(TANDEM_LAYOUT_FACT)
#undef TANDEM_LAYOUT_FACT
  const std::vector<layout::fact> without = layout::facts_without_asserts();
  REQUIRE(with_asserts.size() == without.size());
  for (std::size_t i = 0; i < with_asserts.size(); ++i) {
    INFO(with_asserts[i].name);
    CHECK(with_asserts[i].size == without[i].size);
    CHECK(with_asserts[i].alignment == without[i].alignment);
  }
}

TEST_CASE("layout: objects made with assertions on are read correctly by an NDEBUG unit") {
  auto [writer, reader] = tandem::make_double_buffer_map<std::string, std::string>();
  const std::string key = "a-key-that-lives-on-the-heap-0001";
  writer.insert(key, std::string(40, 'v'));
  writer.publish();
  CHECK(layout::read_size_without_asserts(reader, key) == 40);
  // And this unit still reads it after the other unit's guard came and went.
  auto guard = reader.read();
  REQUIRE(guard.find(key) != nullptr);
  CHECK(guard.find(key)->size() == 40);
}

// Each mailbox member is instantiated by one unit only (this one: pop, pop_until, the inbox's
// try_pop; the NDEBUG one: try_pop, consume_queued), so at -O0 the members of one build call
// whichever inline helpers the linker kept. layout_test links this unit first and
// layout_test_ndebug_first the other: before 2026-12-02 the mailbox's receive check had one
// name and a layout per build (ASan: stack-buffer-overflow in the first program; a segfault
// reading an unset reference in the second).
TEST_CASE("layout: receives alternate between a unit with assertions and an NDEBUG unit") {
  layout::bus bus;
  auto subscription = bus.subscribe(std::string("layout-topic-that-lives-on-the-heap"));
  const std::string heap_message(48, 'm');
  for (int round = 0; round < 3; ++round) {
    bus.publish(std::string("layout-topic-that-lives-on-the-heap"), heap_message + "1");
    CHECK(layout::try_receive_without_asserts(subscription) == heap_message + "1");
    bus.publish(std::string("layout-topic-that-lives-on-the-heap"), heap_message + "2");
    CHECK(subscription.receive() == heap_message + "2");
    bus.publish(std::string("layout-topic-that-lives-on-the-heap"), heap_message + "3");
    const std::optional<std::string> timed = subscription.receive_for(std::chrono::seconds(10));
    REQUIRE(timed.has_value());
    CHECK(*timed == heap_message + "3");
    CHECK(layout::try_receive_without_asserts(subscription) == "(empty)");
  }

  auto inbox = bus.inbox();
  REQUIRE(inbox.subscribe(std::string("layout-inbox-topic-that-lives-on-the-heap")));
  for (int round = 0; round < 3; ++round) {
    bus.publish(std::string("layout-inbox-topic-that-lives-on-the-heap"), heap_message + "a");
    const auto envelope = inbox.try_receive();
    REQUIRE(envelope.has_value());
    CHECK(envelope->message() == heap_message + "a");
    bus.publish(std::string("layout-inbox-topic-that-lives-on-the-heap"), heap_message + "b");
    bus.publish(std::string("layout-inbox-topic-that-lives-on-the-heap"), heap_message + "c");
    CHECK(layout::consume_all_without_asserts(inbox) == heap_message + "b" + heap_message + "c");
  }
}
