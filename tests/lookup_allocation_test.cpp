// Lookups allocate nothing (issue "The first hour as a user", item 6): for every component, every
// lookup -- find, get, contains, use_count, visit, erase, subscriber_count, publish to an absent
// topic, and the hit path of get_or_create / get_or_insert_with / try_emplace / insert --
// called with a std::string_view or a const char* on a std::string key builds no std::string.
// The key is 29 characters, beyond any small-string buffer, so a std::string built from it
// would allocate. A std::string key is constructed only when an entry is actually created.
//
// One program: counting_new.hpp replaces operator new for this file only.
#include <tandem/double_buffer_map.hpp>
#include <tandem/event_bus.hpp>
#include <tandem/rc_map.hpp>
#include <tandem/registry.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if TANDEM_CATCH_MAJOR == 3
#include <catch2/catch_test_macros.hpp>
#else
#include <catch2/catch.hpp>
#endif

#include "counting_new.hpp"

namespace {

constexpr std::string_view present_name = "tenant-0123456789-abcdefghijk";  // 29 characters
constexpr std::string_view absent_name = "tenant-9876543210-zyxwvutsrqp";   // 29 characters
static_assert(present_name.size() >= 28 && absent_name.size() >= 28);

// The two key forms a caller has at hand instead of a std::string.
struct string_view_keys {
  static constexpr const char* form = "std::string_view";
  std::string_view present = present_name;
  std::string_view absent = absent_name;
};
struct c_string_keys {
  static constexpr const char* form = "const char*";
  const char* present = "tenant-0123456789-abcdefghijk";
  const char* absent = "tenant-9876543210-zyxwvutsrqp";
};

// Allocations made by this thread while f() runs (including destroying what it returns).
template <class F>
std::size_t allocations_of(F&& f) {
  const tandem::test::allocation_scope scope;
  f();
  return scope.count();
}

template <class F>
void check_no_allocation(const char* form, const char* call, F&& f) {
  const std::size_t allocations = allocations_of(f);
  INFO(call << " with a " << form << " key: " << allocations << " allocation(s)");
  CHECK(allocations == 0);
}

// ---------------------------------------------------------------------------------------------
// registry
// ---------------------------------------------------------------------------------------------

template <class Keys>
void registry_lookups_allocate_nothing() {
  const Keys keys;
  tandem::registry<std::string> registry;
  auto held = registry.get_or_create(std::string(present_name));  // the entry exists
  auto erasable = registry.get_or_create(std::string(absent_name) + "!");
  REQUIRE(held != nullptr);
  const char* form = Keys::form;

  check_no_allocation(form, "registry::find (hit)", [&] { (void)registry.find(keys.present); });
  check_no_allocation(form, "registry::find (miss)", [&] { (void)registry.find(keys.absent); });
  check_no_allocation(form, "registry::contains (hit)",
                      [&] { CHECK(registry.contains(keys.present)); });
  check_no_allocation(form, "registry::contains (miss)",
                      [&] { CHECK(!registry.contains(keys.absent)); });
  check_no_allocation(form, "registry::visit (hit)", [&] {
    CHECK(registry.visit(keys.present, [](std::string& value) { (void)value.size(); }));
  });
  check_no_allocation(form, "registry::get_or_create (hit)",
                      [&] { (void)registry.get_or_create(keys.present); });
  check_no_allocation(form, "registry::get_or_create_with (hit)", [&] {
    (void)registry.get_or_create_with(keys.present, [] { return std::string("never built"); });
  });
  check_no_allocation(form, "registry::erase (miss)", [&] { CHECK(!registry.erase(keys.absent)); });
}

TEST_CASE("registry: lookups by std::string_view or const char* allocate nothing") {
  registry_lookups_allocate_nothing<string_view_keys>();
  registry_lookups_allocate_nothing<c_string_keys>();
}

// ---------------------------------------------------------------------------------------------
// rc_map
// ---------------------------------------------------------------------------------------------

template <class Keys>
void rc_map_lookups_allocate_nothing() {
  const Keys keys;
  tandem::rc_map<std::string, std::string> map(4);
  // (Not a structured binding: clang 14 cannot capture one in a lambda.)
  const auto created = map.insert(std::string(present_name), std::string(40, 'v'));
  REQUIRE(created.second);
  const auto& held = created.first;
  const char* form = Keys::form;

  check_no_allocation(form, "rc_map::get (hit)", [&] { CHECK(map.get(keys.present)); });
  check_no_allocation(form, "rc_map::get (miss)", [&] { CHECK(!map.get(keys.absent)); });
  check_no_allocation(form, "rc_map::contains (hit)", [&] { CHECK(map.contains(keys.present)); });
  check_no_allocation(form, "rc_map::contains (miss)", [&] { CHECK(!map.contains(keys.absent)); });
  check_no_allocation(form, "rc_map::use_count (hit)",
                      [&] { CHECK(map.use_count(keys.present) == 1); });
  check_no_allocation(form, "rc_map::use_count (miss)",
                      [&] { CHECK(map.use_count(keys.absent) == 0); });
  check_no_allocation(form, "rc_map::get_or_insert_with (hit)", [&] {
    auto h = map.get_or_insert_with(keys.present, [] { return std::string(40, 'x'); });
    CHECK(h == held);
  });
  check_no_allocation(form, "rc_map::try_emplace (hit)", [&] {
    auto [h, fresh] = map.try_emplace(keys.present, std::size_t{40}, 'x');
    CHECK(!fresh);
  });
  // The value is forwarded, not built: a hit neither constructs nor consumes it.
  const std::string unused_value(40, 'u');
  check_no_allocation(form, "rc_map::insert (hit)", [&] {
    auto [h, fresh] = map.insert(keys.present, unused_value);
    CHECK(!fresh);
  });
  CHECK(*held == std::string(40, 'v'));
}

TEST_CASE("rc_map: lookups by std::string_view or const char* allocate nothing") {
  rc_map_lookups_allocate_nothing<string_view_keys>();
  rc_map_lookups_allocate_nothing<c_string_keys>();
}

// ---------------------------------------------------------------------------------------------
// event_bus
// ---------------------------------------------------------------------------------------------

template <class Keys>
void event_bus_lookups_allocate_nothing() {
  const Keys keys;
  tandem::event_bus<int> bus;
  auto subscriber = bus.subscribe(std::string(present_name));
  REQUIRE(bus.publish(present_name, 1) == 1);  // the mailbox has its first segment now
  const char* form = Keys::form;

  check_no_allocation(form, "event_bus::publish (absent topic)",
                      [&] { CHECK(bus.publish(keys.absent, 2) == 0); });
  check_no_allocation(form, "event_bus::publish_from (absent topic)",
                      [&] { CHECK(bus.publish_from(subscriber, keys.absent, 2) == 0); });
  check_no_allocation(form, "event_bus::publish (existing topic, room in the mailbox)",
                      [&] { CHECK(bus.publish(keys.present, 3) == 1); });
  check_no_allocation(form, "event_bus::subscriber_count (existing topic)",
                      [&] { CHECK(bus.subscriber_count(keys.present) == 1); });
  check_no_allocation(form, "event_bus::subscriber_count (absent topic)",
                      [&] { CHECK(bus.subscriber_count(keys.absent) == 0); });
  CHECK(subscriber.try_receive() == 1);
  CHECK(subscriber.try_receive() == 3);
}

TEST_CASE("event_bus: topic lookups by std::string_view or const char* allocate nothing") {
  event_bus_lookups_allocate_nothing<string_view_keys>();
  event_bus_lookups_allocate_nothing<c_string_keys>();
}

// A subscription (or inbox) whose messages keep flowing reuses the queue segment its receiver
// has moved past (detail::message_queue::recycle): after the first segments, publish and receive
// allocate nothing, however many messages pass. Without the reuse, one segment (32 messages of
// these sizes) is allocated and freed per 32 messages.
template <class Message, class Make>
void flowing_queue_allocates_nothing(Make make) {
  constexpr int warm_up = 100;
  constexpr int counted = 2000;
  constexpr auto total = static_cast<std::size_t>(warm_up + counted);
  // Built before counting, one for each queue: messages are moved in and out, never copied.
  std::vector<Message> to_subscription;
  std::vector<Message> to_inbox;
  for (std::size_t i = 0; i < total; ++i) {
    to_subscription.push_back(make(i));
    to_inbox.push_back(make(i));
  }
  tandem::event_bus<Message> bus;
  auto subscriber = bus.subscribe(std::string(present_name));
  auto in = bus.inbox();
  REQUIRE(bus.subscribe(in, std::string(absent_name)));
  std::vector<Message> received;
  received.reserve(2 * total);
  // One message queued ahead of the receiver on each queue, as a stream's receiver lags.
  auto step = [&](std::size_t i) {
    REQUIRE(bus.publish(present_name, std::move(to_subscription[i])) == 1);
    REQUIRE(bus.publish(absent_name, std::move(to_inbox[i])) == 1);
    if (i == 0) return;
    auto m = subscriber.try_receive();
    auto e = in.try_receive();
    REQUIRE((m.has_value() && e.has_value()));
    received.push_back(std::move(*m));
    received.push_back(std::move(e->message()));
  };
  for (std::size_t i = 0; i < static_cast<std::size_t>(warm_up); ++i) step(i);
  const std::size_t allocations = allocations_of([&] {
    for (std::size_t i = static_cast<std::size_t>(warm_up); i < total; ++i) step(i);
  });
  INFO(counted << " messages through a subscription and an inbox: " << allocations
               << " allocation(s)");
  CHECK(allocations == 0);
  REQUIRE(received.size() == 2 * (total - 1));
  for (std::size_t i = 0; i + 1 < total; ++i) {
    CHECK(received[2 * i] == make(i));
    CHECK(received[2 * i + 1] == make(i));
  }
}

TEST_CASE("event_bus: a flowing subscription or inbox reuses its queue segments") {
  flowing_queue_allocates_nothing<int>([](std::size_t i) { return static_cast<int>(i); });
  // Heap-owning: 40 characters, beyond any small-string buffer.
  flowing_queue_allocates_nothing<std::string>(
      [](std::size_t i) { return std::string(32, 'm') + std::to_string(10000000 + i); });
}

// ---------------------------------------------------------------------------------------------
// double_buffer_map
// ---------------------------------------------------------------------------------------------

template <class Keys>
void double_buffer_map_lookups_allocate_nothing() {
  const Keys keys;
  // Not a structured binding: clang 14 cannot capture those in the lambdas below.
  auto made = tandem::make_double_buffer_map<std::string, int>();
  auto& writer = made.first;
  auto& reader = made.second;
  writer.insert(std::string(present_name), 7);
  writer.publish();
  const char* form = Keys::form;

  check_no_allocation(form, "read_guard::find (hit)", [&] {
    const auto guard = reader.read();
    const int* value = guard.find(keys.present);
    CHECK((value != nullptr && *value == 7));
  });
  check_no_allocation(form, "read_guard::find (miss)",
                      [&] { CHECK(reader.read().find(keys.absent) == nullptr); });
  check_no_allocation(form, "read_guard::contains",
                      [&] { CHECK(reader.read().contains(keys.present)); });
  check_no_allocation(form, "reader::get (hit)", [&] { CHECK(reader.get(keys.present) == 7); });
  check_no_allocation(form, "reader::get (miss)",
                      [&] { CHECK_FALSE(reader.get(keys.absent).has_value()); });
  check_no_allocation(form, "reader::contains", [&] { CHECK_FALSE(reader.contains(keys.absent)); });
}

TEST_CASE("double_buffer_map: lookups by std::string_view or const char* allocate nothing") {
  double_buffer_map_lookups_allocate_nothing<string_view_keys>();
  double_buffer_map_lookups_allocate_nothing<c_string_keys>();
}

}  // namespace
