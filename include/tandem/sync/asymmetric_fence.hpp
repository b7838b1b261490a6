// tandem/sync/asymmetric_fence.hpp -- a fence split into a cheap side and an expensive side.
//
// What it is for: Dekker-style handshakes ("I store my flag, then load yours") need a StoreLoad
// barrier on BOTH sides. When one side runs millions of times a second (a reader pinning its
// epoch) and the other rarely (a writer publishing), the barrier can be made asymmetric: the
// frequent side pays only a compiler barrier, the rare side pays for a barrier executed on
// every CPU that runs one of this process's threads. This is the idea of folly's
// asymmetric_thread_fence_light/heavy and liburcu's "memb" flavour.
//
// Algorithm:
//  1. The first time anything asks (asymmetric_fence::prepare(), or the first heavy()), ask the
//     kernel with membarrier(MEMBARRIER_CMD_QUERY) whether MEMBARRIER_CMD_PRIVATE_EXPEDITED is
//     supported, and register this process for it (MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
//     once per process). Remember the answer in `expedited_ready`.
//  2. light(): if registration has succeeded, std::atomic_signal_fence(seq_cst) -- it only
//     stops the compiler from moving memory accesses across it; otherwise a real
//     std::atomic_thread_fence(seq_cst).
//  3. heavy(): if registration succeeded, membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED): the
//     kernel interrupts every CPU currently running a thread of this process and makes it
//     execute a full memory barrier before the call returns. A thread that is not running
//     passes through the scheduler, which is a full barrier too. So at the instant heavy()
//     returns, every light() in the process behaves as if it had been a full fence somewhere
//     between its program-order neighbours. Otherwise heavy() is std::atomic_thread_fence.
//  4. symmetric_fence is the portable policy: both sides are std::atomic_thread_fence(seq_cst).
//     It exists for platforms without membarrier and to measure what the asymmetry buys.
//
// Guarantee: for "light side: A = 1; light(); r1 = B" against "heavy side: B = 1; heavy();
// r2 = A" (all relaxed atomics), r1 == 0 && r2 == 0 is impossible -- exactly as with two
// seq_cst fences. Light calls that saw the slow path (not yet registered) use a real fence, so
// the guarantee holds during start-up too.
//
// Costs: light() is a relaxed load of a read-mostly global plus a predictable branch
// (light_prepared(), for callers that checked prepare() once, is only the compiler barrier).
// heavy() is a system call that sends inter-processor interrupts: a few microseconds; use it only
// on rare paths. If the kernel lacks the command (Linux < 4.14, non-Linux, or a seccomp sandbox
// that blocks the system call) both sides silently use std::atomic_thread_fence;
// asymmetric_fence::expedited() tells which path is in use. If membarrier fails AFTER the
// registration succeeded (a seccomp filter installed later), heavy() reports it through the
// assertion handler in every build (sync/assert.hpp; the default prints and aborts).
//
// ThreadSanitizer models neither stand-alone fences nor membarrier(2). Code that uses these
// fences must, when TANDEM_TSAN is 1, use seq_cst atomic operations instead (which TSan
// understands); reader_epochs does so. light()/heavy() then become an acq_rel RMW of one shared
// word (see detail::tsan_fence), which TSan does model.
//
// Memory ordering: light() and heavy() are the two halves of one seq_cst fence; neither orders
// anything on its own (light() alone is only a compiler barrier).
#pragma once

#include <atomic>
#include <concepts>

#include "../detail/port.hpp"
#include "assert.hpp"

#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace tandem::detail {

// Under ThreadSanitizer (which rejects std::atomic_thread_fence with -Werror=tsan and does not
// model fences), both halves become an acq_rel read-modify-write of one shared word. Two RMWs
// of one location are ordered, and the later one reads from the earlier (release -> acquire),
// so "store; rmw; load" on both sides still forbids the store-buffering outcome, and TSan sees
// the happens-before edge.
TANDEM_PROCESS_WIDE inline void tsan_fence() noexcept {
  static std::atomic<unsigned> word{0};
  word.fetch_add(0, std::memory_order_acq_rel);
}

}  // namespace tandem::detail

namespace tandem::sync {

class TANDEM_PROCESS_WIDE asymmetric_fence {
 public:
  // The cheap side: on the path that runs often.
  static void light() noexcept {
#if TANDEM_TSAN
    ::tandem::detail::tsan_fence();
#else
    // relaxed: `expedited_ready` only ever goes from false to true, and it is set after the
    // registration call returned, so reading true means heavy() will issue the membarrier;
    // reading a stale false only costs this call a real fence.
    if (TANDEM_LIKELY(expedited_ready().load(std::memory_order_relaxed))) {
      std::atomic_signal_fence(std::memory_order_seq_cst);
    } else {
      std::atomic_thread_fence(std::memory_order_seq_cst);
    }
#endif
  }

  // light() for callers that already know prepare() returned true (reader_epochs decides once
  // per registry and keeps readers whose light side must be a real fence on a slow path): a
  // compiler barrier, with no check. Calling it when prepare() returned false breaks the
  // guarantee.
  static void light_prepared() noexcept {
#if TANDEM_TSAN
    ::tandem::detail::tsan_fence();
#else
    std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
  }

  // light() for a side that may run before anybody called prepare(): the first call that
  // finds the process unregistered registers it (prepare(); one system call, once), and that
  // call, like every call while membarrier is unavailable, is a real fence. small_mutex's
  // unlock uses it, so that its constructor stays constexpr.
  static void light_preparing() noexcept {
#if !TANDEM_TSAN
    // relaxed: as in light().
    if (TANDEM_UNLIKELY(!expedited_ready().load(std::memory_order_relaxed))) {
      prepare_and_fence();
      return;
    }
#endif
    light();
  }

  // heavy() for a caller that can do without the guarantee: false, instead of the report
  // heavy() makes, when membarrier failed after the registration (then no light() of the
  // process pairs with anything). small_mutex's sleepers then wait with a timeout.
  [[nodiscard]] static bool try_heavy() noexcept {
#if defined(__linux__) && !TANDEM_TSAN
    if (prepare()) return syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
#if TANDEM_TSAN
    ::tandem::detail::tsan_fence();
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
    return true;
  }

  // The expensive side: on the rare path.
  static void heavy() noexcept {
    if (TANDEM_LIKELY(try_heavy())) return;
    // Registration succeeded, so every light() since is a compiler barrier only: a real fence
    // here pairs with none of them, and going on would let a reader miss an unlink or a
    // publish without a trace. The kernel documents no failure of this command once
    // registered, but a seccomp filter installed after start-up can make it fail: reported in
    // every build (the assertion handler; the default one prints and aborts).
    ::tandem::detail::assertion_failed(
        "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0",
        "tandem::sync::asymmetric_fence::heavy: membarrier(2) failed after the process "
        "registered for it (a seccomp filter installed since?); readers rely on it, so "
        "memory ordering can no longer be guaranteed",
        __FILE__, __LINE__, "asymmetric_fence::heavy");
#if !TANDEM_TSAN
    std::atomic_thread_fence(std::memory_order_seq_cst);  // a handler that returned: the best left
#endif
  }

  // Registers the process for expedited membarrier (once; later calls just return the
  // answer). Call it early (reader_epochs' constructor does) so readers take the cheap path
  // from the start. Returns whether heavy() uses membarrier.
  static bool prepare() noexcept {
    static const bool ready = register_expedited();
    return ready;
  }

  // True when light() is a compiler barrier and heavy() a membarrier system call.
  [[nodiscard]] static bool expedited() noexcept {
    return prepare();
  }

 private:
#if !TANDEM_TSAN
  TANDEM_NOINLINE static void prepare_and_fence() noexcept {
    static_cast<void>(prepare());
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
#endif

  TANDEM_PROCESS_WIDE static std::atomic<bool>& expedited_ready() noexcept {
    static std::atomic<bool> ready{false};
    return ready;
  }

  static bool register_expedited() noexcept {
#if defined(__linux__) && !TANDEM_TSAN
    const long supported = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (supported < 0 || (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0) {
      return false;
    }
    // release: not needed for correctness of the handshake (see light()), but keeps the
    // registration's effects ordered before anyone acts on the flag.
    expedited_ready().store(true, std::memory_order_release);
    return true;
#else
    return false;
#endif
  }
};

// The portable policy: a full fence on both sides. Same guarantee, readers pay an mfence (or
// locked instruction) per use.
class TANDEM_PROCESS_WIDE symmetric_fence {
 public:
  static void light() noexcept { full(); }
  static void heavy() noexcept { full(); }
  static bool prepare() noexcept { return false; }
  [[nodiscard]] static bool expedited() noexcept { return false; }

 private:
  static void full() noexcept {
#if TANDEM_TSAN
    ::tandem::detail::tsan_fence();
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
  }
};

// A fence policy: the two halves of a seq_cst fence, and whether it is asymmetric.
template <class F>
concept fence_policy = requires {
  { F::light() }
  noexcept;
  { F::heavy() }
  noexcept;
  { F::prepare() } -> std::same_as<bool>;
};

}  // namespace tandem::sync
