// Tests for include/tandem/sync/backoff.hpp.
#include <tandem/sync/backoff.hpp>

#include <atomic>
#include <latch>
#include <thread>

#include "test_support.hpp"

using tandem::sync::backoff;

TEST_CASE("backoff completes after its spin and yield limits, and reset starts over") {
  backoff b;
  const std::uint32_t steps = backoff::spin_limit + backoff::yield_limit + 1;
  for (std::uint32_t i = 0; i < steps; ++i) {
    CHECK_FALSE(b.is_completed());
    b.pause();
  }
  CHECK(b.is_completed());
  b.pause();  // still usable past the limit: it keeps yielding
  CHECK(b.is_completed());
  b.reset();
  CHECK_FALSE(b.is_completed());
}

TEST_CASE("backoff::spin never completes: it is for short spin loops only") {
  backoff b;
  for (int i = 0; i < 100; ++i) b.spin();
  CHECK_FALSE(b.is_completed());
}

TEST_CASE("wait_until returns at once when the predicate already holds") {
  std::atomic<int> value{5};
  int calls = 0;
  const int seen = tandem::sync::wait_until(value, [&](int v) {
    ++calls;
    return v == 5;
  });
  CHECK(seen == 5);
  CHECK(calls == 1);
}

TEST_CASE("wait_until blocks past its backoff and is woken by notify") {
  tandem::test::watchdog dog("wait_until wake-up");
  std::atomic<int> value{0};
  std::atomic<int> predicate_calls{0};
  // The predicate runs once per loop round; once it has run more times than the backoff has
  // steps, the waiter has entered (or is entering) atomic::wait -- the blocking phase. If that
  // phase did not wake on notify, the watchdog would fail this test.
  constexpr int rounds_before_blocking =
      static_cast<int>(backoff::spin_limit + backoff::yield_limit) + 2;
  std::thread waiter([&] {
    const int seen = tandem::sync::wait_until(value, [&](int v) {
      predicate_calls.fetch_add(1, std::memory_order_relaxed);
      return v == 1;
    });
    CHECK(seen == 1);
  });
  while (predicate_calls.load(std::memory_order_relaxed) < rounds_before_blocking) {
    std::this_thread::yield();
  }
  value.store(1, std::memory_order_release);
  tandem::sync::atomic_notify_all(value);
  waiter.join();
  CHECK(value.load() == 1);
}
