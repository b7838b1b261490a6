// Read/write mixes across concurrent maps (issue 9: the performance page).
//
// Question: for my mix of reads and writes, at my thread count, which map is fastest?
// Workload: uint64 -> uint64, keys 0..N-1 all present, N = 1,000 and 1,000,000; each
// operation picks a uniformly random key; a write assigns to that key (the key set never
// changes, so every lookup hits). Mixes, as reads:writes: 100:0, 99:1, 90:10, 50:50.
// Threads: 1 and 2 (real time); each thread runs the same mix on the same shared map.
//
// tandem's double_buffer_map has a single writer; here the writer is shared behind a mutex and
// publishes every 16 writes (bench/peers/map_adapters.hpp); xenium's left_right, the other
// two-copy map, batches its writes the same way (one update per 16 writes), so in both a write
// becomes visible to readers up to 15 writes late, where every other map shows it at once.
// Each thread reads tandem's map through its own reader, and no reader handle sits idle (an
// idle one would make every publish pay the heavy fence). The unsynchronised std::unordered_map
// is the physical limit; it runs at 1 thread only (2 threads writing it would be a data race).
//
// Names: mix/<implementation>/n:<N>/writes_per_mille:<W>/real_time/threads:<T>.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "peers/map_adapters.hpp"

namespace {

using namespace tandem_bench;

// One shared map per (implementation, N), built once per process and reused by every mix and
// thread count: building the 1,000,000-entry maps dominates otherwise.
template <class Map>
Map& shared_map(std::size_t n) {
  static std::mutex mutex;
  static std::map<std::size_t, std::unique_ptr<Map>> maps;
  std::lock_guard lock(mutex);
  auto& slot = maps[n];
  if (!slot) slot = std::make_unique<Map>(n);
  return *slot;
}

struct xorshift {
  std::uint64_t state;
  std::uint64_t next() noexcept {
    state ^= state << 13U;
    state ^= state >> 7U;
    state ^= state << 17U;
    return state;
  }
};

template <class Map>
void mix(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto writes_per_mille = static_cast<std::uint64_t>(state.range(1));
  Map& map = shared_map<Map>(n);
  decltype(auto) context = map.make_context();
  xorshift random{0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(state.thread_index() + 1)};
  std::uint64_t found = 0;
  for (auto _ : state) {
    const std::uint64_t r = random.next();
    const std::uint64_t key = (r >> 11U) % n;
    if (r % 1000 < writes_per_mille) {
      map.write(context, key, r);
    } else {
      found += map.read(context, key) ? 1U : 0U;
    }
  }
  benchmark::DoNotOptimize(found);
  state.SetItemsProcessed(state.iterations());
}

void mix_args(benchmark::internal::Benchmark* b) {
  for (std::int64_t n : {1'000, 1'000'000}) {
    for (std::int64_t w : {0, 10, 100, 500}) b->Args({n, w});
  }
  b->ArgNames({"n", "writes_per_mille"});
  b->UseRealTime();
}

template <class Map>
void register_mix(bool multi_threaded = true) {
  auto* b = benchmark::RegisterBenchmark((std::string("mix/") + Map::name).c_str(), &mix<Map>);
  mix_args(b);
  b->Threads(1);
  if (multi_threaded) b->Threads(2);
}

const int registered = [] {
  register_mix<unsynchronised_map>(/*multi_threaded=*/false);
#if TANDEM_BENCH_HAVE_BOOST_FLAT
  register_mix<boost_flat_map>(/*multi_threaded=*/false);
#endif
  register_mix<tandem_double_buffer_map>();
  register_mix<shared_mutex_map>();
  register_mix<mutex_map>();
#if TANDEM_BENCH_HAVE_TBB
  register_mix<tbb_hash_map>();
  register_mix<tbb_unordered_map>();
#endif
#if TANDEM_BENCH_HAVE_LIBCUCKOO
  register_mix<libcuckoo_map>();
#endif
#if TANDEM_BENCH_HAVE_XENIUM
  register_mix<xenium_left_right_map>();
#endif
#if TANDEM_BENCH_HAVE_URCU
  register_mix<urcu_lfht_map>();
#endif
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
