// Memory per entry at N = 1,000,000 (issue 9: the performance page).
//
// Question: what does each map cost in memory for the same uint64 -> uint64 content?
// Method: glibc's mallinfo2() (bytes in use from the heap plus mmapped blocks) before and after
// building the map on this thread, divided by N. mallinfo2 sees every allocation, C++ or C
// (liburcu allocates with malloc), unlike a counting operator new. Each benchmark runs once.
//
// Expected: double_buffer_map ~= 2x std::unordered_map (two copies) plus its log, which is
// empty after the second publish; rc_map = node + handle bookkeeping (the handles themselves
// are held in a vector allocated before the measurement and not counted).
//
// Names: memory/<implementation>; counter bytes_per_entry.
#include <tandem/rc_map.hpp>

#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cstdint>
#include <vector>

#include "peers/map_adapters.hpp"

namespace {

using namespace tandem_bench;

constexpr std::size_t entries = 1'000'000;

std::size_t heap_in_use() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

template <class Build>
void measure(benchmark::State& state, Build build) {
  for (auto _ : state) {
    malloc_trim(0);
    const std::size_t before = heap_in_use();
    auto built = build();
    const std::size_t after = heap_in_use();
    benchmark::DoNotOptimize(built);
    state.counters["bytes_per_entry"] =
        static_cast<double>(after - before) / static_cast<double>(entries);
  }
}

template <class Map>
void memory_of(benchmark::State& state) {
  measure(state, [] { return std::make_unique<Map>(entries); });
}

void memory_of_rc_map(benchmark::State& state) {
  using map_type = tandem::rc_map<key_type, mapped_type>;
  std::vector<map_type::handle> handles;
  handles.reserve(entries);  // allocated before the measurement: handles are the user's
  measure(state, [&] {
    auto map = std::make_unique<map_type>();
    for (key_type k = 0; k < entries; ++k) handles.push_back(map->insert(k, k).first);
    return map;
  });
  handles.clear();
}

template <class Map>
void register_memory() {
  benchmark::RegisterBenchmark((std::string("memory/") + Map::name).c_str(), &memory_of<Map>)
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
}

const int registered = [] {
  register_memory<unsynchronised_map>();
#if TANDEM_BENCH_HAVE_BOOST_FLAT
  register_memory<boost_flat_map>();
#endif
  register_memory<tandem_double_buffer_map>();
  benchmark::RegisterBenchmark("memory/tandem_rc_map", &memory_of_rc_map)
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  register_memory<shared_mutex_map>();
#if TANDEM_BENCH_HAVE_TBB
  register_memory<tbb_hash_map>();
  register_memory<tbb_unordered_map>();
#endif
#if TANDEM_BENCH_HAVE_LIBCUCKOO
  register_memory<libcuckoo_map>();
#endif
#if TANDEM_BENCH_HAVE_XENIUM
  register_memory<xenium_left_right_map>();
#endif
#if TANDEM_BENCH_HAVE_URCU
  register_memory<urcu_lfht_map>();
#endif
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
