// tandem/sync/backoff.hpp -- how tandem waits: spin, then yield, then block.
//
// What it is for: every place in tandem that waits for another thread (a writer waiting for
// readers to leave a copy, a thread waiting for a once-cell that another thread is building)
// goes through this file, so the waiting policy is tuned in one place.
//
// The policy, step by step (the idea is crossbeam's Backoff and folly's spin-then-futex):
//  1. Spin: step k (k = 0 .. spin_limit) issues 2^k CPU pause hints. Waits that end within a
//     few hundred nanoseconds -- the common case for a reader finishing a lookup -- end here
//     without a system call. Total: 2^(spin_limit + 1) - 1 = 127 pauses, about 1-5 us.
//  2. Yield: up to yield_limit calls of std::this_thread::yield(), so that on an
//     oversubscribed machine the thread we are waiting for can run on this core.
//  3. Block: after that, is_completed() is true and the caller should block in the kernel.
//     wait_until() below does that with atomic_wait (atomic_wait.hpp: the futex on Linux),
//     which needs whoever changes the atomic to call atomic_notify_one/all afterwards.
//
// Deadlines (the timed waits: event_bus's receive_for / receive_until). `now() + timeout`
// overflows for a huge timeout (seconds::max() is ~292 billion years, nanoseconds' range only
// ~292 years) and lands in the past, so the wait would return at once; the same happens when a
// standard library converts a deadline of one clock or unit to its own. Every timed wait in
// tandem therefore computes its deadline with the saturating helpers below: a deadline beyond
// the clock's range becomes the clock's time_point::max(), which means "wait until it happens".
//  - saturating_cast<To>(d): d in To's units, clamped to [To::min(), To::max()] (NaN: 0).
//  - saturating_ceil<To>(d): the same, rounded up.
//  - saturating_sum(a, b): a + b, clamped likewise.
//  - deadline_after<Clock>(timeout): Clock::now() + timeout, saturated.
//  - steady_deadline(deadline): the steady_clock time point of a deadline of any clock and
//    unit, saturated (what a condition variable can wait for without converting again).
//
// Costs: backoff is two bytes of state on the waiter's stack; nothing is shared.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <utility>

#include "../detail/port.hpp"
#include "atomic_wait.hpp"

namespace tandem::sync {

class backoff {
 public:
  // 2^0 + 2^1 + ... + 2^6 = 127 pause instructions before the first yield. Pause costs about
  // 10-140 cycles depending on the micro-architecture (Skylake made it ~140), so this bounds
  // the pure spinning to a few microseconds -- about a context switch's cost, the point at
  // which yielding starts to pay (the classic two-competitive spin-then-block argument).
  static constexpr std::uint32_t spin_limit = 6;
  // Yields are cheap when nothing else is runnable and fair when something is. Ten of them
  // cover a scheduler time slice on a busy 2-core machine before we give up the CPU.
  static constexpr std::uint32_t yield_limit = 10;

  // One step of waiting: spins while in phase 1, yields while in phase 2, and in phase 3
  // (is_completed()) yields as well, so a caller that cannot block still makes progress.
  void pause() noexcept {
    if (step_ <= spin_limit) {
      for (std::uint32_t i = 0; i < (std::uint32_t{1} << step_); ++i) ::tandem::detail::cpu_relax();
    } else {
      std::this_thread::yield();
    }
    if (step_ <= spin_limit + yield_limit) ++step_;
  }

  // Only spins (never yields): for very short critical sections such as a spin lock.
  void spin() noexcept {
    for (std::uint32_t i = 0; i < (std::uint32_t{1} << step_); ++i) ::tandem::detail::cpu_relax();
    if (step_ < spin_limit) ++step_;
  }

  // True once spinning and yielding are used up: the caller should block now.
  [[nodiscard]] bool is_completed() const noexcept { return step_ > spin_limit + yield_limit; }

  void reset() noexcept { step_ = 0; }

 private:
  std::uint32_t step_ = 0;
};

// Waits until pred(value) holds for a value loaded from `atom` with `order`, and returns that
// value. Spins and yields first (backoff), then blocks in atomic_wait(). The thread that makes
// pred true must call atomic_notify_one or atomic_notify_all(atom) after its store; a notify is
// only needed when a waiter may be blocked, which callers track with their own flag if they
// want the notifying side to skip the system call (reader_epochs does).
template <futex_word T, class Pred>
T wait_until(const std::atomic<T>& atom, Pred pred,
             std::memory_order order =
                 std::memory_order_acquire) noexcept(noexcept(pred(std::declval<T>()))) {
  backoff waiter;
  for (;;) {
    T current = atom.load(order);
    if (pred(current)) return current;
    if (!waiter.is_completed()) {
      waiter.pause();
    } else {
      // Blocks while atom still holds `current`; spurious wake-ups just loop.
      atomic_wait(atom, current);
    }
  }
}

// `d` in To's units (truncated like duration_cast), clamped to To's range instead of
// overflowing. The range test runs in long double units of To, exact at the bounds that
// matter (To::max() and To::min() of a 64-bit count compare correctly: a value that does not
// convert back exactly is one at or beyond the bound, and saturates). A NaN (a floating-point
// duration computed from garbage) is To::zero(): a timeout of no time, never "wait for ever"
// and never the undefined float-to-integer conversion duration_cast would do with it.
template <class To, class Rep, class Period>
[[nodiscard]] constexpr To saturating_cast(const std::chrono::duration<Rep, Period>& d) noexcept {
  if constexpr (std::is_floating_point_v<Rep>) {
    if (d.count() != d.count()) return To::zero();  // NaN
  }
  if constexpr (std::is_floating_point_v<typename To::rep>) {
    return std::chrono::duration_cast<To>(d);
  } else {
    using wide = std::chrono::duration<long double, typename To::period>;
    const long double value = std::chrono::duration_cast<wide>(d).count();
    if (value >= static_cast<long double>(To::max().count())) return To::max();
    if (value <= static_cast<long double>(To::min().count())) return To::min();
    // From the tested value itself (truncated, as duration_cast does): duration_cast<To>(d)
    // would compute in d's own representation, and a float just under the bound rounds up
    // past it there (9223371776 s as float nanoseconds is 2^63: undefined to convert).
    return To(static_cast<typename To::rep>(value));
  }
}

// `d` in To's units rounded up (like std::chrono::ceil), clamped to To's range instead of
// overflowing (a linger of 30 days in a 32-bit millisecond clock's units is To::max()).
template <class To, class Rep, class Period>
[[nodiscard]] constexpr To saturating_ceil(const std::chrono::duration<Rep, Period>& d) noexcept {
  const To truncated = saturating_cast<To>(d);
  if constexpr (!std::is_floating_point_v<typename To::rep>) {
    using wide = std::chrono::duration<long double, typename To::period>;
    const long double value = std::chrono::duration_cast<wide>(d).count();
    if (truncated != To::max() && static_cast<long double>(truncated.count()) < value) {
      return truncated + To(1);
    }
  }
  return truncated;
}

// a + b, clamped to D's range instead of overflowing.
template <class Rep, class Period>
[[nodiscard]] constexpr std::chrono::duration<Rep, Period> saturating_sum(
    const std::chrono::duration<Rep, Period>& a,
    const std::chrono::duration<Rep, Period>& b) noexcept {
  using D = std::chrono::duration<Rep, Period>;
  if constexpr (!std::is_floating_point_v<Rep>) {
    if (b > D::zero() && a > D::max() - b) return D::max();
    if (b < D::zero() && a < D::min() - b) return D::min();
  }
  return a + b;
}

// Clock::now() + timeout, saturated: a timeout beyond the clock's range gives
// Clock::time_point::max() ("no deadline"), a hugely negative one time_point::min().
template <class Clock, class Rep, class Period>
[[nodiscard]] typename Clock::time_point deadline_after(
    const std::chrono::duration<Rep, Period>& timeout) {
  using duration = typename Clock::duration;
  return typename Clock::time_point(
      saturating_sum(Clock::now().time_since_epoch(), saturating_cast<duration>(timeout)));
}

// The steady_clock time point at which `deadline` (of any clock, in any unit) is reached,
// saturated. For another clock it is steady now + (deadline - Clock::now()): a clock that is
// adjusted meanwhile shifts it, so a waiter re-checks Clock::now() when it times out (as the
// standard's own conversion does).
template <class Clock, class Duration>
[[nodiscard]] std::chrono::steady_clock::time_point steady_deadline(
    const std::chrono::time_point<Clock, Duration>& deadline) {
  using steady = std::chrono::steady_clock;
  using duration = steady::duration;
  if constexpr (std::is_same_v<Clock, steady>) {
    return steady::time_point(saturating_cast<duration>(deadline.time_since_epoch()));
  } else {
    const duration until = saturating_cast<duration>(deadline.time_since_epoch());
    const duration now = saturating_cast<duration>(Clock::now().time_since_epoch());
    // until - now without overflow: now is never duration::min() for a real clock, but the
    // subtraction is clamped anyway.
    const duration remaining =
        now == duration::min() ? duration::max() : saturating_sum(until, -now);
    return steady::time_point(saturating_sum(steady::now().time_since_epoch(), remaining));
  }
}

}  // namespace tandem::sync
