// Benchmarks for include/tandem/sync/.
//
// Question 1: how much does false sharing cost two threads that each increment their own
// counter? Baseline: two std::atomic counters side by side (one cache line). tandem: the same
// counters in cache_padded. Compare items_per_second of the two at 2 threads.
//
// Question 2: what does one publish of a double_buffer cost its writer, depending on the fence
// policy and on the readers that exist? publish/<fence>/readers:<r> publishes one small op
// (a push_back into a vector that is cleared every 1,024 publishes) per iteration, with
// r = 0 (no reader exists: no heavy fence at all, reader_epochs (C1)/(W0')) or r = 1 (one
// reader exists but never reads: the asymmetric fence pays a membarrier system call per
// publish, the portable one a full fence). items_per_second = publishes per second.
//
// Question 3: what does a lock pair cost under contention, when threads outnumber cores?
// lock_pair/<mutex>/yield_every:<n>/real_time/threads:<t>: t threads lock one mutex, add 1 to a
// counter and unlock; with n > 0 the holder yields its core once in n critical sections (the
// way a holder gets preempted on a loaded machine), n = 0 never. Baseline: std::mutex (glibc's
// futex mutex); tandem: sync::small_mutex (unlock is a store; sleepers counted in a table,
// sync/striped_lock.hpp). items_per_second = lock pairs per second, all threads together, over
// Google Benchmark's real time (UseRealTime: the threads' mean wall-clock time; every thread
// runs the same number of iterations). With 4 threads on 2 cores a woken small_mutex sleeper
// stays counted until it runs, and unlocks meanwhile make FUTEX_WAKE calls that find nobody:
// the case this row is here to watch (quiet, it is on par with std::mutex; beside a busy
// process it fell below it in separate runs, sync/striped_lock.hpp).
#include <tandem/double_buffer.hpp>
#include <tandem/sync/asymmetric_fence.hpp>
#include <tandem/sync/backoff.hpp>
#include <tandem/sync/cache_padded.hpp>
#include <tandem/sync/striped_lock.hpp>

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

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

// Appends to the vector, or clears it every 1,024 values (keeps the copies small).
struct push_or_clear {
  std::uint32_t value;
  void operator()(std::vector<std::uint32_t>& v) const {
    if ((value & 1023U) == 0) {
      v.clear();
    } else {
      v.push_back(value);
    }
  }
};

template <class Fence>
void publish_cost(benchmark::State& state) {
  using buffer = tandem::double_buffer<std::vector<std::uint32_t>, push_or_clear, Fence>;
  auto [writer, first_reader] = buffer::create();
  std::optional<typename buffer::reader> idle;
  if (state.range(0) != 0) idle.emplace(std::move(first_reader));
  { auto drop = std::move(first_reader); }  // no reader unless `idle` holds it
  std::uint32_t value = 0;
  for (auto _ : state) {
    writer.push(push_or_clear{++value});
    writer.publish();
  }
  state.SetItemsProcessed(state.iterations());
}

// One mutex and the counter it guards, shared by the benchmark's threads; on one cache line
// for either mutex (std::mutex is 40 bytes: unaligned, its word and the counter could straddle
// two lines and cost it a second line transfer per hand-off).
template <class Mutex>
struct alignas(64) guarded_counter {
  Mutex mutex;
  std::uint64_t count = 0;
};

template <class Mutex>
void lock_pair(benchmark::State& state) {
  static guarded_counter<Mutex> shared;
  const auto yield_every = static_cast<std::uint64_t>(state.range(0));
  for (auto _ : state) {
    std::lock_guard<Mutex> hold(shared.mutex);
    ++shared.count;
    if (yield_every != 0 && shared.count % yield_every == 0) std::this_thread::yield();
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

// The cases of both mutexes: no yield and a yield in 1 of 64 sections, 1 and 4 threads.
void lock_pair_cases(benchmark::internal::Benchmark* cases) {
  cases->ArgName("yield_every")->Arg(0)->Arg(64)->UseRealTime()->Threads(1)->Threads(4);
}
BENCHMARK(lock_pair<tandem::sync::small_mutex>)
    ->Name("lock_pair/tandem_small_mutex")
    ->Apply(lock_pair_cases);
BENCHMARK(lock_pair<std::mutex>)->Name("lock_pair/std_mutex")->Apply(lock_pair_cases);

BENCHMARK(publish_cost<tandem::sync::asymmetric_fence>)
    ->Name("publish/tandem_asymmetric")
    ->ArgName("readers")
    ->Arg(0)
    ->Arg(1);
BENCHMARK(publish_cost<tandem::sync::symmetric_fence>)
    ->Name("publish/tandem_portable")
    ->ArgName("readers")
    ->Arg(0)
    ->Arg(1);
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
