// tests/perf/perf_harness.hpp -- the measuring side of the callgrind perf tests.
//
// A perf program is run twice under `valgrind --tool=callgrind --instr-atstart=no` by
// run_perf.py, as `program <K>` and `program <2K>`. For each case it builds the case's state
// (not counted), runs the measured operation a few times outside the measurement (so that
// one-time work -- lazy symbol binding, a thread's first epoch slot -- is done in both runs
// alike), then counts exactly `K` operations between CALLGRIND_START_INSTRUMENTATION and
// CALLGRIND_STOP_INSTRUMENTATION and dumps the counters under the case's name. run_perf.py
// takes (Ir(2K) - Ir(K)) / K: whatever a case costs besides its K operations (instrumentation
// switch, loop entry) is the same in both runs and cancels.
//
// A case the build cannot measure (an inner map whose library is not installed, or an API the
// headers do not offer yet) prints `skip <name>: <reason>` and dumps nothing.
#pragma once

#include <valgrind/callgrind.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

namespace tandem::perf {

// Keeps `value` alive and opaque to the optimiser (Google Benchmark's DoNotOptimize idea).
template <class T>
inline void keep(const T& value) noexcept {
  asm volatile("" : : "r,m"(value) : "memory");
}

// Put after a measured lambda's parameter list when the case and its baseline must both be
// inlined into measure()'s loop: otherwise a compiler may call one of them out of line (its
// inlining limits, g++'s max-inline-insns-single, clang's inline threshold, are crossed by a
// few instructions), and the difference would count a call, a return and saved registers
// that are the harness's, not the measured code's.
#if defined(__GNUC__) || defined(__clang__)
#define TANDEM_PERF_INLINE __attribute__((always_inline))
#else
#define TANDEM_PERF_INLINE
#endif

// The operation count of this run (argv[1]), and an optional case filter (argv[2], a prefix).
struct run_options {
  std::size_t count = 0;
  std::string only;
};

inline run_options parse(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <operations> [case-prefix]\n", argv[0]);
    std::exit(2);
  }
  run_options options;
  options.count = static_cast<std::size_t>(std::strtoull(argv[1], nullptr, 10));
  if (argc >= 3) options.only = argv[2];
  return options;
}

// Measures one case: op(i) for i in [0, count), counted by callgrind, dumped as `name`.
// warm_up calls of op run first, uncounted.
template <class Op>
void measure(const run_options& options, const char* name, Op&& op) {
  if (!options.only.empty() && std::string(name).rfind(options.only, 0) != 0) return;
  constexpr std::size_t warm_up = 64;
  for (std::size_t i = 0; i < warm_up; ++i) op(i);
  CALLGRIND_ZERO_STATS;
  CALLGRIND_START_INSTRUMENTATION;
  for (std::size_t i = 0; i < options.count; ++i) op(i);
  CALLGRIND_STOP_INSTRUMENTATION;
  CALLGRIND_DUMP_STATS_AT(name);
  std::printf("measured %s\n", name);
}

inline void skip(const run_options& options, const char* name, const char* reason) {
  if (!options.only.empty() && std::string(name).rfind(options.only, 0) != 0) return;
  std::printf("skip %s: %s\n", name, reason);
}

// Several cases skipped for one reason (the cases of an inner map the build did not find).
inline void skip(const run_options& options, std::initializer_list<const char*> names,
                 const char* reason) {
  for (const char* name : names) skip(options, name, reason);
}

// A fixed xorshift sequence of `length` indices in [0, n): the same in every run and program.
inline std::vector<std::size_t> index_sequence(std::size_t n, std::size_t length) {
  std::vector<std::size_t> result(length);
  std::uint64_t state = 0x2545F4914F6CDD1DULL;
  for (std::size_t& index : result) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    index = static_cast<std::size_t>(state % n);
  }
  return result;
}

// Length of the index sequences: a power of two, so op(i) picks keys[i & (length - 1)].
inline constexpr std::size_t sequence_length = 4096;

}  // namespace tandem::perf
