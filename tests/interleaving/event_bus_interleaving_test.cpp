// Deterministic interleavings of event_bus's blocked publishers (TANDEM_TEST_POINT,
// sync/sync_point.hpp): a hook holds a publisher between parking and going to sleep, so that
// another publisher runs exactly inside that window.
#include <tandem/event_bus.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <semaphore>
#include <string>
#include <thread>

#if TANDEM_CATCH_MAJOR == 3
#include <catch2/catch_test_macros.hpp>
#else
#include <catch2/catch.hpp>
#endif

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;

// Which publisher a thread is, for the hook.
enum class role { none, left_topic, kept_topic };
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
