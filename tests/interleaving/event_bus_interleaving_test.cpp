// Deterministic interleavings of event_bus's blocked publishers (TANDEM_TEST_POINT,
// sync/sync_point.hpp): a hook holds a publisher between parking and going to sleep, so that
// another publisher runs exactly inside that window.
#include <tandem/event_bus.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <optional>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#if TANDEM_CATCH_MAJOR == 3
#include <catch2/catch_test_macros.hpp>
#else
#include <catch2/catch.hpp>
#endif

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;

// Which publisher (or subscriber) a thread is, for the hooks.
enum class role { none, left_topic, kept_topic, list_builder };
thread_local role this_role = role::none;

struct script {
  std::binary_semaphore left_parked{0};    // the left topic's publisher has parked
  std::binary_semaphore release_left{0};   // ... and may now go to sleep
  std::binary_semaphore kept_parked{0};    // the other publisher has parked once
  std::binary_semaphore kept_reparked{0};  // ... woke up, found no room and parked again
  int kept_hits = 0;                       // the other publisher's thread only
  bool left_held = false;                  // the left topic publisher's thread only
};
std::atomic<script*> current{nullptr};

void hook(const char* name) noexcept {
  script* s = current.load(std::memory_order_acquire);
  if (s == nullptr || std::strcmp(name, "mailbox push_waiting: parked, not yet asleep") != 0) {
    return;
  }
  if (this_role == role::left_topic && !s->left_held) {
    s->left_held = true;
    s->left_parked.release();
    s->release_left.acquire();
  } else if (this_role == role::kept_topic) {
    ++s->kept_hits;
    if (s->kept_hits == 1) s->kept_parked.release();
    if (s->kept_hits == 2) s->kept_reparked.release();
  }
}

std::string text(char c) {
  return std::string(40, c);  // heap-owning
}

// Holds the list_builder thread once where a subscribe has built a new subscriber list (and
// written its entries' position hints) but not installed it.
struct build_script {
  std::binary_semaphore built{0};    // the builder holds a built list
  std::binary_semaphore install{0};  // ... and may now try to install it
  bool held = false;                 // the builder's thread only
};
std::atomic<build_script*> current_build{nullptr};

void build_hook(const char* name) noexcept {
  build_script* s = current_build.load(std::memory_order_acquire);
  if (s == nullptr || this_role != role::list_builder || s->held ||
      std::strcmp(name, "event_bus add: a list built, not yet installed") != 0) {
    return;
  }
  s->held = true;
  s->built.release();
  s->install.acquire();
}

}  // namespace

// Found by review on 2026-12-02: leaving a topic woke its blocked publisher with one counted
// "room" token; a publisher of a topic the inbox kept, parking right after, took that token,
// found no room and parked again, and the left topic's publisher then slept until the receiver
// made room -- a program that waited for it after unsubscribing hung. Now every release moves
// a generation on and every publisher parked before it wakes.
TEST_CASE(
    "inbox: leaving a topic releases its blocked publisher although another publisher wakes, "
    "finds no room and parks again first") {
  tandem::test::watchdog dog("inbox leave wakes a publisher whose wake-up another could take");
  tandem::event_bus<std::string> bus;
  auto in = bus.inbox(1, tandem::overflow_policy::block);
  CHECK(in.subscribe("left"));
  CHECK(in.subscribe("kept"));
  CHECK(bus.publish("kept", text('f')) == 1);  // full now

  script s;
  current.store(&s, std::memory_order_release);
  tandem::detail::test_point_hook.store(&hook, std::memory_order_release);

  std::promise<std::size_t> left_result;
  auto left_done = left_result.get_future();
  std::thread left([&] {
    this_role = role::left_topic;
    left_result.set_value(bus.publish("left", text('l')));  // blocks: the inbox is full
  });
  s.left_parked.acquire();        // parked, held before it sleeps
  CHECK(in.unsubscribe("left"));  // must release it: it will then count 0

  std::atomic<std::size_t> kept_reached{99};
  std::thread kept([&] {
    this_role = role::kept_topic;
    kept_reached = bus.publish("kept", text('k'));  // blocks: still subscribed, still full
  });
  s.kept_parked.acquire();
  // With counted wake-ups it takes the left publisher's token and parks again at once; with
  // a broadcast it sleeps after its first park (nothing was released after it parked), so
  // this bounded wait only gives the old protocol its chance to go wrong.
  const bool reparked = s.kept_reparked.try_acquire_for(500ms);
  s.release_left.release();

  const bool left_returned = left_done.wait_for(10s) == std::future_status::ready;
  CHECK(left_returned);
  if (left_returned) {
    CHECK(left_done.get() == 0);
    CHECK(in.receive().message() == text('f'));  // makes room: the kept publisher completes
    kept.join();
    CHECK(kept_reached == 1);
    CHECK(in.receive().message() == text('k'));
  } else {
    // The fault: receiving makes room and wakes every parked publisher; drain until both are
    // through.
    while (left_done.wait_for(0s) != std::future_status::ready || kept_reached == 99) {
      static_cast<void>(in.try_receive());
      std::this_thread::yield();
    }
    kept.join();
  }
  left.join();
  tandem::detail::test_point_hook.store(nullptr, std::memory_order_release);
  current.store(nullptr, std::memory_order_release);
  CHECK_FALSE(reparked);  // a broadcast gave it nothing to wake up for
}

// A subscription leaves by the position its entry was given when placed in the topic's list
// (2026-12-03: before, every leave searched the list). A subscribe that builds a new list
// writes the positions its entries will have there; when that list is not installed (the topic
// changed meanwhile), those hints are stale. Here a leave runs right then: its hint names
// another subscriber's entry, and it must leave its own (found by the search), not that one,
// nor stay subscribed.
TEST_CASE("a stale position hint leaves the right entry of a long subscriber list") {
  tandem::test::watchdog dog("stale position hint");
  using bus_type = tandem::event_bus<std::string>;
  bus_type bus;
  const std::string topic = "room/" + text('t');
  // 22 subscriptions fill a list of room 22 (the lists have 1, 4, 10, then 22 places): the
  // next subscribe builds a new list.
  std::vector<std::optional<bus_type::subscription>> subs;
  for (int i = 0; i < 22; ++i) subs.emplace_back(bus.subscribe(topic));
  subs[0]->unsubscribe();  // its entry stays in the list: the next list places everyone one lower

  build_script s;
  current_build.store(&s, std::memory_order_release);
  tandem::detail::test_point_hook.store(&build_hook, std::memory_order_release);
  std::optional<bus_type::subscription> joined;
  std::thread builder([&] {
    this_role = role::list_builder;
    joined.emplace(bus.subscribe(topic));
  });
  s.built.acquire();  // subs[5]'s hint now says 4: subs[4]'s place in the current list
  subs[5]->unsubscribe();
  CHECK(bus.subscriber_count(topic) == 20);
  s.install.release();  // the topic changed: the builder builds again from the current list
  builder.join();
  tandem::detail::test_point_hook.store(nullptr, std::memory_order_release);
  current_build.store(nullptr, std::memory_order_release);

  REQUIRE(joined.has_value());
  CHECK(bus.subscriber_count(topic) == 21);
  CHECK(bus.publish(topic, text('m')) == 21);
  std::vector<int> receivers;
  for (int i = 0; i < 22; ++i) {
    if (subs[static_cast<std::size_t>(i)]->try_receive()) receivers.push_back(i);
  }
  std::vector<int> expected;
  for (int i = 1; i < 22; ++i) {
    if (i != 5) expected.push_back(i);
  }
  CHECK(receivers == expected);
  CHECK(joined->try_receive() == text('m'));
  // Later leaves (hints written by the list that was installed) still find their entries.
  for (int i = 1; i < 22; ++i) subs[static_cast<std::size_t>(i)].reset();
  joined.reset();
  CHECK(bus.subscriber_count(topic) == 0);
}
