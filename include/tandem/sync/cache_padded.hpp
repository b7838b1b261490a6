// tandem/sync/cache_padded.hpp -- keep a value alone on its cache line(s).
//
// What it is for: per-thread or per-shard state that different cores write (reader epochs,
// shard locks, counters). Two such values on one cache line make every write invalidate the
// other core's copy ("false sharing"), which turns independent work into a ping-pong.
//
// cache_padded<T> is aligned to tandem::sync::cache_line_size and, because sizeof is always a
// multiple of alignof, also occupies a whole number of such lines, so neighbours in an array or
// struct never share one.
//
// Why not std::hardware_destructive_interference_size: GCC warns (-Winterference-size) whenever
// a header uses it, because its value may change with -mtune and so break ABI between
// translation units. The value below is fixed per architecture, like folly's and crossbeam's:
//  - x86-64: 128. The lines are 64 bytes, but the L2 "spatial prefetcher" pulls pairs of lines,
//    so 64-byte neighbours still interfere (Intel optimisation manual, 3.7.3).
//  - AArch64 and POWER: 128. Apple M-series and POWER have 128-byte lines.
//  - everything else: 64.
// Define TANDEM_CACHE_LINE_SIZE to override (it must be a power of two, and the same in every
// translation unit and library of a program: it sets the layout of every padded type).
// Cost: up to cache_line_size - sizeof(T) bytes of padding per value.
#pragma once

#include "../detail/port.hpp"  // first: a pre-C++20 build stops with "tandem needs C++20"

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

namespace tandem::sync {

#if defined(TANDEM_CACHE_LINE_SIZE)
inline constexpr std::size_t cache_line_size = TANDEM_CACHE_LINE_SIZE;
#elif defined(__x86_64__) || defined(_M_X64) || defined(__aarch64__) || defined(_M_ARM64) || \
    defined(__powerpc64__)
inline constexpr std::size_t cache_line_size = 128;
#else
inline constexpr std::size_t cache_line_size = 64;
#endif

static_assert(cache_line_size != 0 && (cache_line_size & (cache_line_size - 1)) == 0,
              "tandem: TANDEM_CACHE_LINE_SIZE must be a power of two");

template <class T>
struct alignas(cache_line_size) cache_padded {
  static_assert(alignof(T) <= cache_line_size,
                "tandem::sync::cache_padded<T>: T is over-aligned beyond a cache line");

  T value;

  constexpr cache_padded() noexcept(
      std::is_nothrow_default_constructible_v<T>) requires std::is_default_constructible_v<T>
      : value() {}

  template <class... Args>
  requires std::is_constructible_v<T, Args...>
  constexpr explicit cache_padded(std::in_place_t /*tag*/, Args&&... args) noexcept(
      std::is_nothrow_constructible_v<T, Args...>)
      : value(std::forward<Args>(args)...) {}

  template <class U>
  requires std::is_constructible_v<T, U> &&(!std::is_same_v<std::remove_cvref_t<U>, cache_padded>)&&(
      !std::is_same_v<
          std::remove_cvref_t<U>,
          std::
              in_place_t>)constexpr explicit cache_padded(U&& init) noexcept(std::
                                                                                 is_nothrow_constructible_v<
                                                                                     T, U>)
      : value(std::forward<U>(init)) {}

  constexpr T& get() noexcept { return value; }
  constexpr const T& get() const noexcept { return value; }
  constexpr T& operator*() noexcept { return value; }
  constexpr const T& operator*() const noexcept { return value; }
  constexpr T* operator->() noexcept { return std::addressof(value); }
  constexpr const T* operator->() const noexcept { return std::addressof(value); }
};

}  // namespace tandem::sync
