// Benchmarks for include/tandem/sync/: why cache_padded exists.
//
// Question: how much does false sharing cost two threads that each increment their own
// counter? Baseline: two std::atomic counters side by side (one cache line). tandem: the same
// counters in cache_padded. Compare items_per_second of the two at 2 threads.
#include <tandem/sync/backoff.hpp>
#include <tandem/sync/cache_padded.hpp>

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <cstdint>

namespace {

struct adjacent_counters {
  std::array<std::atomic<std::uint64_t>, 2> counters{};
  std::atomic<std::uint64_t>& slot(int thread) {
    return counters[static_cast<std::size_t>(thread) & 1U];
  }
};

struct padded_counters {
  std::array<tandem::sync::cache_padded<std::atomic<std::uint64_t>>, 2> counters{};
  std::atomic<std::uint64_t>& slot(int thread) {
    return *counters[static_cast<std::size_t>(thread) & 1U];
  }
};

template <class Counters>
void per_thread_counter_increment(benchmark::State& state) {
  static Counters shared;
  auto& mine = shared.slot(state.thread_index());
  for (auto _ : state) {
    // relaxed: the benchmark measures the cache-line traffic of the RMW, not ordering.
    mine.fetch_add(1, std::memory_order_relaxed);
  }
  state.SetItemsProcessed(state.iterations());
}

void backoff_pause_step(benchmark::State& state) {
  for (auto _ : state) {
    tandem::sync::backoff b;
    b.spin();
    benchmark::DoNotOptimize(b);
  }
}

}  // namespace

BENCHMARK(per_thread_counter_increment<adjacent_counters>)
    ->Name("counter_increment/adjacent_atomics")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(per_thread_counter_increment<padded_counters>)
    ->Name("counter_increment/tandem_cache_padded")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(backoff_pause_step)->Name("backoff_first_spin_step/tandem_backoff");

BENCHMARK_MAIN();
