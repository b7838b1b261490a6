// Test doubles for tandem's fence policies (sync::fence_policy), shared by the double_buffer and
// reader_epochs tests.
#pragma once

#include <atomic>

namespace tandem::test {

// Counts the heavy fences a publish (or a record of readers) issues; both halves are full
// fences, so the protocol stays correct while it is counted.
struct counting_fence {
  static inline std::atomic<int> heavy_calls{0};
  static void light() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }
  static void heavy() noexcept {
    heavy_calls.fetch_add(1);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  static bool prepare() noexcept { return false; }
};

// An asymmetric policy whose membarrier is "unavailable" (prepare() is false): its
// compiler-barrier light side must never be used (fenced mode). Counts that misuse instead of
// breaking silently.
struct unprepared_asymmetric_fence {
  static inline std::atomic<int> prepared_light_calls{0};
  static void light() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }
  static void light_prepared() noexcept { prepared_light_calls.fetch_add(1); }
  static void heavy() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }
  static bool prepare() noexcept { return false; }
};

}  // namespace tandem::test
