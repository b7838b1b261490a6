// tests/support/failing_new.hpp -- fault injection: a global operator new that throws
// std::bad_alloc at the Nth allocation made by the calling thread, once armed. Include it in
// exactly one translation unit of a test program.
//
//   tandem::test::sweep_allocation_failures([&] { map.insert(k, v); },   // the operation
//                                           [&](bool threw) { ... });    // checks after each try
//
// sweep_allocation_failures runs the operation with allocation 1, 2, 3, ... made to fail, until
// a run completes without reaching the armed allocation; after each run the check callback is
// told whether bad_alloc escaped, so the test can verify the documented exception guarantee.
// Only the calling thread is affected: Catch2 and other threads allocate normally.
//
//   bool threw = tandem::test::with_allocation_failure(3, [&] { map.insert(k, v); });
//
// runs one operation with its 3rd allocation failing (the fuzzers' "fail the next allocation"
// operation; 0 fails none) and says whether std::bad_alloc escaped it.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace tandem::test {

// 0 = disarmed; otherwise the number of allocations left before the failing one.
inline thread_local std::size_t allocations_until_failure = 0;
inline thread_local std::size_t injected_failures = 0;

// Runs op() with the nth allocation of this thread failing (n == 0: none fails), disarmed
// afterwards whatever happens. Returns true if std::bad_alloc escaped op(); any other exception
// propagates.
template <class Op>
bool with_allocation_failure(std::size_t n, Op&& op) {
  struct disarm {
    disarm(const disarm&) = delete;
    disarm& operator=(const disarm&) = delete;
    explicit disarm(std::size_t armed) noexcept { allocations_until_failure = armed; }
    ~disarm() { allocations_until_failure = 0; }
  };
  const disarm armed(n);
  try {
    op();
  } catch (const std::bad_alloc&) {
    return true;
  }
  return false;
}

// Runs op() with the nth allocation failing, for n = 1, 2, ... until op() finishes without
// hitting the failure (or max_failures runs). check(threw) runs after each attempt, disarmed.
// Returns the number of attempts that threw bad_alloc.
template <class Op, class Check>
std::size_t sweep_allocation_failures(Op&& op, Check&& check, std::size_t max_failures = 10000) {
  std::size_t threw_count = 0;
  for (std::size_t n = 1; n <= max_failures; ++n) {
    const std::size_t before = injected_failures;
    const bool threw = with_allocation_failure(n, op);
    const bool injected = injected_failures != before;
    if (threw) ++threw_count;
    check(threw);
    if (!injected) break;  // the operation needed fewer than n allocations: sweep done
  }
  return threw_count;
}

}  // namespace tandem::test

#include "replaced_new.hpp"

void* tandem::test::hooks::allocate(std::size_t size, std::size_t alignment) {
  if (allocations_until_failure != 0 && --allocations_until_failure == 0) {
    ++injected_failures;
    throw std::bad_alloc();
  }
  return system_allocate(size, alignment);
}

void tandem::test::hooks::deallocate(void* p) noexcept {
  std::free(p);
}
