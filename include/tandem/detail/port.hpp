// tandem/detail/port.hpp -- compiler, CPU and sanitizer facts in one place.
//
// Everything that differs between compilers or that a sanitizer needs to be told lives here,
// so that the components themselves stay free of #ifdefs. Users must not name anything in here.
#pragma once

// tandem needs C++20 (concepts, std::atomic wait, <bit>, constinit). Without this line a C++17
// build (g++ 12's default; clang 14's is C++14) fails with a hundred errors about missing
// library names, the real cause buried in a later note.
#if defined(_MSVC_LANG) && _MSVC_LANG > __cplusplus
#define TANDEM_DETAIL_CPLUSPLUS _MSVC_LANG
#else
#define TANDEM_DETAIL_CPLUSPLUS __cplusplus
#endif
#if TANDEM_DETAIL_CPLUSPLUS < 202002L
#error "tandem needs C++20 or later: compile with -std=c++20 (or later; MSVC: /std:c++20)"
#endif

#if defined(__has_feature)
#define TANDEM_DETAIL_HAS_FEATURE(x) __has_feature(x)
#else
#define TANDEM_DETAIL_HAS_FEATURE(x) 0
#endif

// TANDEM_TSAN is 1 when compiled with -fsanitize=thread (GCC defines __SANITIZE_THREAD__,
// clang answers __has_feature(thread_sanitizer)). Components use it only to pick an algorithm
// TSan can model -- TSan does not understand stand-alone fences or membarrier(2) -- never to
// hide a report.
#if defined(__SANITIZE_THREAD__) || TANDEM_DETAIL_HAS_FEATURE(thread_sanitizer)
#define TANDEM_TSAN 1
#else
#define TANDEM_TSAN 0
#endif

#if defined(__SANITIZE_ADDRESS__) || TANDEM_DETAIL_HAS_FEATURE(address_sanitizer)
#define TANDEM_ASAN 1
#else
#define TANDEM_ASAN 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TANDEM_LIKELY(x) (__builtin_expect(!!(x), 1))
#define TANDEM_UNLIKELY(x) (__builtin_expect(!!(x), 0))
#define TANDEM_NOINLINE __attribute__((noinline))
#define TANDEM_ALWAYS_INLINE __attribute__((always_inline))
#define TANDEM_UNREACHABLE() __builtin_unreachable()
#else
#define TANDEM_LIKELY(x) (x)
#define TANDEM_UNLIKELY(x) (x)
#define TANDEM_NOINLINE
#define TANDEM_ALWAYS_INLINE
#define TANDEM_UNREACHABLE() std::abort()
#endif

// TANDEM_PROCESS_WIDE marks the state that must exist once per process, whatever module uses
// it (thread serials, the epoch slots, the once-cells' per-thread nodes, a registry's global()):
// an inline variable is otherwise one per shared library built with -fvisibility=hidden (the
// usual setting for plugins), and each library would number threads, announce readers and build
// "the" singleton on its own. Default visibility makes the dynamic linker bind every module to
// one definition (docs/building.md, "Shared libraries and plugins"; docs/reliability.md rule 47).
#if (defined(__GNUC__) || defined(__clang__)) && !defined(_WIN32) && !defined(__CYGWIN__)
#define TANDEM_PROCESS_WIDE __attribute__((visibility("default")))
#else
#define TANDEM_PROCESS_WIDE
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <type_traits>

namespace tandem::detail {

// A 64-bit hash or count as std::size_t: the identity where size_t has 64 bits (no cast, so
// -Wuseless-cast stays quiet in users' builds), a truncation where it is narrower.
template <class Unsigned>
constexpr std::size_t to_size(Unsigned value) noexcept {
  if constexpr (sizeof(std::size_t) >= sizeof(Unsigned)) {
    return value;
  } else {
    return static_cast<std::size_t>(value);
  }
}

// A user Hash's result (any type the concepts accept as convertible to std::size_t; noexcept
// exactly when that conversion is) as std::size_t:
// no cast when it already is one (-Wuseless-cast), an explicit one otherwise, so that a Hash
// returning `int` or `std::uint32_t` leaves no -Wsign-conversion warning in tandem's headers.
template <class Result>
constexpr std::size_t hash_result_as_size(Result value) noexcept(
    std::is_nothrow_convertible_v<Result, std::size_t>) {
  if constexpr (std::is_same_v<Result, std::size_t>) {
    return value;
  } else {
    return static_cast<std::size_t>(value);
  }
}

// One "I am spinning" hint to the CPU: lets the sibling hyper-thread run and avoids the
// memory-order mis-speculation penalty when the spin ends (Intel SDM, PAUSE).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
  _mm_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield" ::: "memory");
#elif defined(__powerpc64__)
  asm volatile("or 27,27,27" ::: "memory");
#else
  // No hint known for this CPU: a compiler barrier keeps the loop from being optimised away.
  asm volatile("" ::: "memory");
#endif
}

}  // namespace tandem::detail

namespace tandem::detail {

// Asks the CPU to fetch the cache line at `address` without waiting for it (a hint: no effect
// on what the program computes), for writing where the target has a write prefetch: GCC and
// Clang emit PREFETCHW only when it is enabled (-mprfchw, or an -march that has it) and a read
// prefetch (PREFETCHT0 on x86-64) otherwise; MSVC's _m_prefetchw is always the write form.
// Where a loop will later write lines it cannot reach without a dependent load first (a count
// behind a pointer read from a queue), fetching them early lets their misses overlap instead
// of stalling one after another.
inline void prefetch_for_write(const void* address) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(address, 1, 3);
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
  _m_prefetchw(address);
#else
  static_cast<void>(address);
#endif
}

}  // namespace tandem::detail
