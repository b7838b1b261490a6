// tandem/sync/atomic_wait.hpp -- block until a 32-bit atomic changes, and wake such waiters.
//
// What it is for: the blocking phase of every wait in tandem (backoff.hpp's wait_until,
// small_mutex, once_cell, reader_epochs). It is std::atomic<T>::wait/notify with two
// differences that matter to a concurrency library:
//  1. On Linux it is the futex system call on the atomic's own word, nothing else. notify
//     always issues FUTEX_WAKE; whether that is needed is the caller's business (tandem's
//     protocols track their sleepers: small_mutex's sleeper table, reader_epochs'
//     `writer_waiting` flag).
//  2. It is only for 4-byte atomics, the futex word size.
// Why not std::atomic<T>::wait directly: libstdc++ up to at least 12 (the compiler tandem
// supports) skips the wake when its own per-address waiter count reads 0, a check whose
// ordering against the caller's store is only as strong as that store, and its proxy path for
// other sizes (used for 64-bit atomics on Linux) has a documented missed-notification race
// (fixed upstream in 2025 when the implementation moved into the library); its
// counting_semaphore loses wake-ups too (GCC bug 98033). Waiting on our own futex word gives
// the one guarantee the futex makes and nothing to reason about beyond it.
//
// Semantics (the futex's): atomic_wait(a, old) returns at once if `a` does not hold `old`,
// otherwise sleeps until a notify on `a` -- the comparison and the going to sleep are one
// atomic step in the kernel, so a store followed by a notify is never lost. It may also return
// spuriously: callers re-check their condition in a loop. Elsewhere than Linux the functions
// forward to std::atomic<T>::wait / notify_one / notify_all.
//
// Memory ordering: none is provided by the wait itself; callers load the atomic with the order
// they need after waking (the loop's re-check).
#pragma once

#include "../detail/port.hpp"  // first: a pre-C++20 build stops with "tandem needs C++20"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <type_traits>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

#if defined(__linux__)
namespace tandem::detail {
inline long futex_call(const void* word, int op, std::uint32_t value) noexcept {
  // The kernel reads the word itself; std::atomic<T> of a 4-byte T is exactly that word.
  return ::syscall(SYS_futex, word, op, value, nullptr, nullptr, 0);
}
template <class T>
std::uint32_t futex_bits(T value) noexcept {
  std::uint32_t bits;
  static_assert(sizeof bits == sizeof value);
  __builtin_memcpy(&bits, &value, sizeof bits);
  return bits;
}
}  // namespace tandem::detail
#endif

namespace tandem::sync {

template <class T>
concept futex_word = sizeof(T) == 4 && std::is_trivially_copyable_v<T> &&
                     sizeof(std::atomic<T>) == 4 && std::atomic<T>::is_always_lock_free;

// Sleeps while `atom` holds `old` (or returns spuriously). See the header comment.
template <futex_word T>
void atomic_wait(const std::atomic<T>& atom, T old) noexcept {
#if defined(__linux__)
  tandem::detail::futex_call(&atom, FUTEX_WAIT_PRIVATE, tandem::detail::futex_bits(old));
#else
  atom.wait(old, std::memory_order_relaxed);
#endif
}

// atomic_wait that also returns once about `timeout` has passed (Linux: FUTEX_WAIT's relative
// timeout, on CLOCK_MONOTONIC). Returns false if it returned because the timeout passed, true
// otherwise (woken, the word changed, a signal, or spuriously). Elsewhere than Linux it is
// atomic_wait without the timeout (the standard wait has none) and returns true. A timeout of 0
// or less returns false at once.
template <futex_word T>
bool atomic_wait_for(const std::atomic<T>& atom, T old, std::chrono::nanoseconds timeout) noexcept {
  if (timeout <= std::chrono::nanoseconds::zero()) return false;
#if defined(__linux__)
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  struct timespec relative {};
  relative.tv_sec = static_cast<decltype(relative.tv_sec)>(seconds.count());
  relative.tv_nsec = static_cast<decltype(relative.tv_nsec)>((timeout - seconds).count());
  return ::syscall(SYS_futex, &atom, FUTEX_WAIT_PRIVATE, tandem::detail::futex_bits(old), &relative,
                   nullptr, 0) == 0 ||
         errno != ETIMEDOUT;
#else
  atom.wait(old, std::memory_order_relaxed);
  return true;
#endif
}

// Wakes one thread sleeping in atomic_wait on `atom` (if any).
template <futex_word T>
void atomic_notify_one(const std::atomic<T>& atom) noexcept {
#if defined(__linux__)
  tandem::detail::futex_call(&atom, FUTEX_WAKE_PRIVATE, 1);
#else
  const_cast<std::atomic<T>&>(atom).notify_one();
#endif
}

// Wakes every thread sleeping in atomic_wait on `atom`.
template <futex_word T>
void atomic_notify_all(const std::atomic<T>& atom) noexcept {
#if defined(__linux__)
  tandem::detail::futex_call(&atom, FUTEX_WAKE_PRIVATE, static_cast<std::uint32_t>(INT32_MAX));
#else
  const_cast<std::atomic<T>&>(atom).notify_all();
#endif
}

}  // namespace tandem::sync
