// tandem/sync/sync_point.hpp -- TANDEM_SYNC_POINT(): a place where a race window can be widened.
//
// What it is for: races whose window is a few instructions wide (a load and the atomic that
// follows it) almost never lose in a test, so a test cannot see them. Every protocol step that
// another thread may interleave with is marked TANDEM_SYNC_POINT(). In normal builds the macro
// is empty (no code, no layout change). Stress builds define TANDEM_STRESS_SYNC_POINTS=1; each
// point then, at random, does nothing (1/2), spins for up to 255 pause hints (1/4), yields the
// processor (3/16) or sleeps 20-83 us (1/16, long enough for a thread woken from a futex to run
// a whole operation), so that the other threads run inside the window. The idea is the "noise
// injection" of IBM's ConTest (Edelstein et al., "Multithreaded Java program test generation",
// IBM Systems Journal, 2002).
//
// Never put one inside a read section's announce/fence pair in a way that changes the protocol:
// it only delays, it never reorders.
#pragma once

#include "../detail/port.hpp"  // first: a pre-C++20 build stops with "tandem needs C++20"

#if defined(TANDEM_STRESS_SYNC_POINTS) && TANDEM_STRESS_SYNC_POINTS

#include <chrono>
#include <cstdint>
#include <thread>

namespace tandem::detail {

// Per-thread xorshift64 state; constant-initialised, so usable from any destructor.
inline constinit thread_local std::uint64_t sync_point_state = 0;

inline void stress_sync_point() noexcept {
  std::uint64_t x = sync_point_state;
  if (x == 0) {
    // Seed from the thread's own address: different per thread, no shared write.
    x = reinterpret_cast<std::uintptr_t>(&sync_point_state) | 1U;
  }
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  sync_point_state = x;
  switch (x & 15U) {
    case 0:
      // Long enough for another thread to wake from a futex and run a whole operation.
      std::this_thread::sleep_for(std::chrono::microseconds(20 + ((x >> 8) & 63U)));
      break;
    case 1:
    case 2:
    case 3:
      std::this_thread::yield();
      break;
    case 4:
    case 5:
    case 6:
    case 7:
      for (std::uint64_t i = (x >> 8) & 255U; i != 0; --i) cpu_relax();
      break;
    default:
      break;
  }
}

}  // namespace tandem::detail

#define TANDEM_SYNC_POINT() ::tandem::detail::stress_sync_point()
#else
#define TANDEM_SYNC_POINT() static_cast<void>(0)
#endif

// TANDEM_TEST_POINT("name"): where TANDEM_SYNC_POINT() widens a window at random, a test point
// lets a test run another thread's steps exactly inside it (a deterministic interleaving). In
// builds that define TANDEM_TEST_POINTS=1 (test programs only: tests/interleaving/), the
// thread that reaches the point calls the hook a test installed in
// tandem::detail::test_point_hook, with the point's name; the hook must not throw. Elsewhere it
// is empty (no code, no layout change).
#if defined(TANDEM_TEST_POINTS) && TANDEM_TEST_POINTS
#include <atomic>
namespace tandem::detail {
using test_point_function = void (*)(const char* name) noexcept;
inline std::atomic<test_point_function> test_point_hook{nullptr};
inline void test_point(const char* name) noexcept {
  // acquire: pairs with the test's release store of its hook (and what the hook uses).
  if (const test_point_function hook = test_point_hook.load(std::memory_order_acquire)) {
    hook(name);
  }
}
}  // namespace tandem::detail
#define TANDEM_TEST_POINT(name) ::tandem::detail::test_point(name)
#else
#define TANDEM_TEST_POINT(name) static_cast<void>(0)
#endif
