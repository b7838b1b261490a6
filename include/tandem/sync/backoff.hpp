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
// Costs: backoff is two bytes of state on the waiter's stack; nothing is shared.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
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

}  // namespace tandem::sync
