// tandem/sync/thread_serial.hpp -- a number for the calling thread that no other thread of the
// process ever gets, not even one created after it has exited.
//
// What it is for: the checks that turn a wait that could never end into an exception ("this
// thread would wait for itself"): a double_buffer writer whose next publish would wait for a
// read guard its own thread opened, an event_bus publisher that would wait for room in a mailbox
// only its own thread empties. Such a check remembers which thread did something and later
// asks "is that me?". std::thread::id cannot answer that: the standard lets an exited thread's
// id be reused, and glibc reuses it (with the thread pointer) for the very next thread it
// starts. A reused id makes an unrelated thread look like the one that left, and the check
// then throws in a program that does nothing wrong (found by review, 2026-12-01:
// docs/reliability.md rule 30).
//
// Algorithm: one process-wide 64-bit counter; a thread takes the next value (one relaxed
// fetch_add) the first time it asks, and keeps it in a thread_local. 0 is never a serial.
// Uniqueness is all that is needed, so nothing is ordered by the counter. At a billion new
// threads per second the counter lasts 584 years.
//
// Costs: after the first call, one thread_local load and one compare (the thread_local is
// constinit, so there is no initialisation guard: in an executable the load is a single
// %fs-relative mov on x86-64). The first call of each thread: one atomic increment, out of line.
#pragma once

#include <atomic>
#include <cstdint>

#include "../detail/port.hpp"

#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>  // glibc >= 2.32: __libc_single_threaded
#define TANDEM_DETAIL_HAVE_SINGLE_THREADED 1
#endif
#endif
#ifndef TANDEM_DETAIL_HAVE_SINGLE_THREADED
#define TANDEM_DETAIL_HAVE_SINGLE_THREADED 0
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>  // getpid
#define TANDEM_DETAIL_HAVE_FORK 1
#else
#define TANDEM_DETAIL_HAVE_FORK 0
#endif

namespace tandem::detail {

TANDEM_PROCESS_WIDE inline std::atomic<std::uint64_t> last_thread_serial{0};
TANDEM_PROCESS_WIDE inline constinit thread_local std::uint64_t this_thread_serial = 0;

// The calling thread's first call: takes the next serial.
TANDEM_NOINLINE inline std::uint64_t assign_thread_serial() noexcept {
  // relaxed: only uniqueness matters (a read-modify-write never hands a value out twice).
  this_thread_serial = last_thread_serial.fetch_add(1, std::memory_order_relaxed) + 1;
  return this_thread_serial;
}

// The calling thread's serial: never 0, never the serial of another thread of this process,
// alive or exited.
inline std::uint64_t thread_serial() noexcept {
  const std::uint64_t serial = this_thread_serial;
  if (TANDEM_LIKELY(serial != 0)) return serial;
  return assign_thread_serial();
}

// rc_map::visit runs its f under a shard lock; these frames (one per visit in progress on this
// thread, innermost first) let each rc_map operation refuse a call from inside f on the same
// map, and registry::create_eager() start no helper thread inside any visit (a helper would
// wait for the shard lock this thread holds while this thread joins it).
struct rc_map_visit_frame {
  const void* map;
  const rc_map_visit_frame* outer;
};
TANDEM_PROCESS_WIDE inline constinit thread_local const rc_map_visit_frame* rc_map_visits = nullptr;

// The serial of the thread this one works for while that thread is blocked waiting for it (a
// registry::create_eager() helper: the caller joins it), or 0. A wait on that thread could
// never end either, so the self-wait checks count it as a wait on this one (is_self).
TANDEM_PROCESS_WIDE inline constinit thread_local std::uint64_t this_thread_works_for = 0;

// Whether `serial` (a thread_serial() recorded earlier; 0 means none) is the calling thread, or
// the thread it works for (this_thread_works_for). For the self-wait checks only: two helpers
// of one caller still have serials of their own, so neither mistakes the other for itself.
inline bool is_self(std::uint64_t serial) noexcept {
  return serial != 0 && (serial == thread_serial() || serial == this_thread_works_for);
}

// Whether this process has never started a second thread through the C library, so that no
// other thread that could use tandem exists: then a wait for another thread to act could never
// end (the self-wait checks use it where they cannot tell who else might act). glibc's
// __libc_single_threaded (>= 2.32): set false for good by the first pthread_create -- also a
// thread tandem starts itself (registry::create_eager's helpers), a sanitizer runtime's (e.g.
// ASAN_OPTIONS=hard_rss_limit_mb) or any library's -- and inherited by a forked child; a raw
// clone(CLONE_THREAD) thread is not counted (such a thread cannot use the C++ runtime safely
// anyway). false where the C library does not say (musl, macOS, bionic, glibc < 2.32): the
// checks then only refuse what they know is a wait on oneself.
inline bool process_never_started_a_thread() noexcept {
#if TANDEM_DETAIL_HAVE_SINGLE_THREADED
  // A plain read, no race: glibc clears it only in the first pthread_create, before any other
  // thread exists, and every later thread starts after that write (happens-before).
  return __libc_single_threaded != 0;
#else
  return false;
#endif
}

// The calling process's id where fork() exists (getpid(): a system call since glibc 2.25
// dropped its cache, so keep it off hot paths), else 0 (one process for ever). For objects
// that must act differently in a child made by fork() without exec (docs/reliability.md rule
// 46): such an object records the process it was built in and compares at destruction.
inline std::int64_t process_id() noexcept {
#if TANDEM_DETAIL_HAVE_FORK
  return static_cast<std::int64_t>(::getpid());
#else
  return 0;
#endif
}

}  // namespace tandem::detail
