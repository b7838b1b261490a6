// Benchmarks for include/tandem/double_buffer_map.hpp.
//
// Question: what does a read-mostly map cost a reader and a writer with tandem's
// double_buffer_map, compared with its limit (the same inner map, no synchronisation) and with
// what a user would otherwise pick?
// tandem is measured over three inner maps (map:std = std::unordered_map, map:boost_flat =
// boost::unordered_flat_map, map:absl_flat = absl::flat_hash_map, the flat ones when found), each
// with the asymmetric fence (membarrier; readers pay compiler barriers) and the portable fence
// (readers pay a full fence per guard). The limit of each, `unsync`, is the same map type built
// with the same history as the copy tandem's readers read: constructed with N + 1,024 buckets,
// then try_emplace(k, 2k + 1) for k = 0 .. N - 1 in order (tandem_map explains how its readers
// end up on such a copy). Peers: std::shared_mutex and std::mutex + unordered_map, and when
// installed tbb::concurrent_hash_map, libcuckoo's cuckoohash_map, xenium::left_right and
// liburcu's rculfhash; tbb::concurrent_unordered_map in the lookup workloads only (its erase is
// not safe beside readers, so it cannot run reads_with_writer's insert/erase stream).
//
// Keys and values are uint64; N = 1,000 and 1,000,000 entries; every lookup hits (keys drawn
// from a fixed pseudo-random sequence over [0, N)). Workloads (names:
// <workload>/<implementation>[/map:<inner map>]/n:<N>[/publish_every:<P>][/real_time][/threads:T]):
//  - lookup/guard_per_lookup: one guard (lock, accessor, read call) per lookup; 1 and 2 threads;
//  - lookup/guard_per_64: one guard per 64 lookups (baselines without such a notion, tbb,
//    libcuckoo and rculfhash, do 64 single lookups);
//  - reads_with_writer: the reader threads (1 or 2) do guard-per-lookup lookups while one extra
//    writer thread inserts and erases keys outside [0, N) and publishes every 64 ops (lock-based
//    maps make each op visible at once); items_per_second is the readers' total,
//    writer_ops_per_second the writer's. tandem over map:std and map:boost_flat;
//  - writer: ops/s of the same insert/erase stream with no reader (tandem's map releases its
//    reader handle for the run), tandem publishing every 1, 64 and 1,024 ops, against `unsync`:
//    the same inserts and erases into the same inner map; tandem_asymmetric_idle_reader keeps
//    one reader handle that never reads (publishing every 1 and 64 ops).
// The lookup and reads_with_writer maps are built once per process and size (the 1,000,000-entry
// ones take a moment), so the CI smoke run stays short; each writer row builds its own
// (writer_row_instance). Compare ratios within one run, with
// --benchmark_enable_random_interleaving=true --benchmark_repetitions=5 (docs/double_buffer.md).
#include <tandem/double_buffer_map.hpp>
#include <tandem/sync/asymmetric_fence.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#if TANDEM_BENCH_HAVE_TBB
#include <tbb/concurrent_hash_map.h>
#include <tbb/concurrent_unordered_map.h>
#endif
#if TANDEM_BENCH_HAVE_LIBCUCKOO
#include <libcuckoo/cuckoohash_map.hh>
#endif
#if TANDEM_BENCH_HAVE_XENIUM
#include <xenium/left_right.hpp>
#endif
#if TANDEM_HAVE_BOOST_FLAT_MAP
#include <boost/unordered/unordered_flat_map.hpp>
#endif
#if TANDEM_HAVE_ABSL_FLAT_HASH_MAP
#include <absl/container/flat_hash_map.h>
#endif

#include "peers/map_adapters.hpp"  // liburcu's rculfhash adapter

namespace {

using u64 = std::uint64_t;
using plain_map = std::unordered_map<u64, u64>;

constexpr u64 small_n = 1'000;
constexpr u64 large_n = 1'000'000;
// The writer inserts and erases keys in [N, N + write_window): reads always hit keys < N.
constexpr u64 write_window = 1'024;

u64 value_for(u64 key) {
  return key * 2 + 1;
}

// 64 Ki lookup keys in [0, n), from a fixed xorshift sequence (the same for every map).
const std::vector<u64>& lookup_keys(u64 n) {
  auto make = [](u64 size) {
    std::vector<u64> keys(1U << 16);
    u64 x = 0x9E3779B97F4A7C15ULL;
    for (auto& k : keys) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      k = x % size;
    }
    return keys;
  };
  if (n == small_n) {
    static const std::vector<u64> keys = make(small_n);
    return keys;
  }
  static const std::vector<u64> keys = make(large_n);
  return keys;
}
constexpr std::size_t key_mask = (1U << 16) - 1;

// ---- the inner maps ------------------------------------------------------------------------
// Each with its own default Hash and KeyEqual for uint64 (the perf CTests use the same types).

struct std_inner {
  static constexpr const char* name = "std";
  using map = std::unordered_map<u64, u64>;
};
#if TANDEM_HAVE_BOOST_FLAT_MAP
struct boost_flat_inner {
  static constexpr const char* name = "boost_flat";
  using map = boost::unordered_flat_map<u64, u64>;
};
#endif
#if TANDEM_HAVE_ABSL_FLAT_HASH_MAP
struct absl_flat_inner {
  static constexpr const char* name = "absl_flat";
  using map = absl::flat_hash_map<u64, u64>;
};
#endif

// Every map a limit or tandem copy reads is built the same way: constructed with
// n + write_window buckets, then try_emplace(k, value_for(k)) for k = 0, 1, ..., n - 1 in
// that order (see tandem_map for why its readers read exactly such a copy).
template <class Map>
void build_like_tandem(Map& map, u64 n) {
  for (u64 k = 0; k < n; ++k) map.try_emplace(k, value_for(k));
}

// ---- adapters: one per map, same interface ----------------------------------------------------

// The limit: the same inner map type, no synchronisation, the same insertion history as the
// copy tandem's readers read.
template <class Inner>
struct unsync_map {
  using map_type = typename Inner::map;
  map_type map;
  explicit unsync_map(u64 n) : map(n + write_window) { build_like_tandem(map, n); }
  using handle = unsync_map*;
  handle make_handle() { return this; }
  static u64 find_one(handle h, u64 key) {
    auto it = h->map.find(key);
    return it == h->map.end() ? 0 : it->second;
  }
  static u64 find_batch(handle h, const u64* keys, std::size_t count) {
    u64 sum = 0;
    for (std::size_t i = 0; i < count; ++i) {
      auto it = h->map.find(keys[i]);
      sum += it == h->map.end() ? 0 : it->second;
    }
    return sum;
  }
  void write(u64 key, bool insert) {
    if (insert) {
      map.try_emplace(key, key);
    } else {
      map.erase(key);
    }
  }
  void commit() {}
};

template <class Mutex>
struct locked_map {
  mutable Mutex mutex;
  plain_map map;
  explicit locked_map(u64 n) : map(n + write_window) { build_like_tandem(map, n); }
  using handle = locked_map*;
  handle make_handle() { return this; }
  static u64 find_one(handle h, u64 key) {
    if constexpr (std::is_same_v<Mutex, std::shared_mutex>) {
      std::shared_lock lock(h->mutex);
      auto it = h->map.find(key);
      return it == h->map.end() ? 0 : it->second;
    } else {
      std::lock_guard lock(h->mutex);
      auto it = h->map.find(key);
      return it == h->map.end() ? 0 : it->second;
    }
  }
  static u64 find_batch(handle h, const u64* keys, std::size_t count) {
    auto run = [&] {
      u64 sum = 0;
      for (std::size_t i = 0; i < count; ++i) {
        auto it = h->map.find(keys[i]);
        sum += it == h->map.end() ? 0 : it->second;
      }
      return sum;
    };
    if constexpr (std::is_same_v<Mutex, std::shared_mutex>) {
      std::shared_lock lock(h->mutex);
      return run();
    } else {
      std::lock_guard lock(h->mutex);
      return run();
    }
  }
  void write(u64 key, bool insert) {
    std::lock_guard lock(mutex);
    if (insert) {
      map.try_emplace(key, key);
    } else {
      map.erase(key);
    }
  }
  void commit() {}
};

// tandem over an inner map. Built with three publishes: (1) the inserts, applied to copy B by
// try_emplace(k, v) copies in key order -- exactly build_like_tandem; readers read B; (2) a
// no-op batch: the inserts are replayed onto copy A (node handles linked, or keys and values
// moved in), readers read A; (3) another no-op batch: readers read B again. So both copies are
// full, and the lookups read the copy built like the unsync limit.
template <class Fence, class Inner>
struct tandem_map {
  using map_type = tandem::double_buffer_map_over<typename Inner::map, Fence>;
  typename map_type::writer writer;
  typename map_type::reader reader;

  explicit tandem_map(u64 n) : tandem_map(map_type::create(n + write_window)) {
    for (u64 k = 0; k < n; ++k) writer.insert(k, value_for(k));
    writer.publish();
    for (int round = 0; round < 2; ++round) {
      writer.erase(~u64{0});  // a no-op batch, so that publish swaps
      writer.publish();
    }
  }
  explicit tandem_map(std::pair<typename map_type::writer, typename map_type::reader> parts)
      : writer(std::move(parts.first)), reader(std::move(parts.second)) {}

  using handle = typename map_type::reader;
  // Each thread its own reader (own epoch slot), made by the writer: reader() only copies the
  // writer's shared state, so reader threads may call it while the writer thread publishes,
  // and the `reader` member can be released for runs that must not have an idle handle.
  handle make_handle() { return writer.reader(); }
  static u64 find_one(handle& h, u64 key) {
    auto guard = h.read();
    const u64* value = guard.find(key);
    return value == nullptr ? 0 : *value;
  }
  static u64 find_batch(handle& h, const u64* keys, std::size_t count) {
    auto guard = h.read();
    u64 sum = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const u64* value = guard.find(keys[i]);
      sum += value == nullptr ? 0 : *value;
    }
    return sum;
  }
  void write(u64 key, bool insert) {
    if (insert) {
      writer.insert(key, key);
    } else {
      writer.erase(key);
    }
  }
  void commit() { writer.publish(); }
  // The writer workload's "no reader": the map's reader handle is released for the run (any
  // reader handle, even an idle one, claims an epoch slot, and with a slot claimed every
  // publish pays the heavy fence) and taken again for the workloads that read.
  void release_reader() { typename map_type::reader gone(std::move(reader)); }
  void restore_reader() { reader = writer.reader(); }
};
template <class Inner>
using tandem_asymmetric = tandem_map<tandem::sync::asymmetric_fence, Inner>;
template <class Inner>
using tandem_portable = tandem_map<tandem::sync::symmetric_fence, Inner>;

#if TANDEM_BENCH_HAVE_TBB
struct tbb_map {
  tbb::concurrent_hash_map<u64, u64> map;
  explicit tbb_map(u64 n) {
    map.rehash(n + write_window);
    for (u64 k = 0; k < n; ++k) map.insert({k, value_for(k)});
  }
  using handle = tbb_map*;
  handle make_handle() { return this; }
  static u64 find_one(handle h, u64 key) {
    tbb::concurrent_hash_map<u64, u64>::const_accessor accessor;
    return h->map.find(accessor, key) ? accessor->second : 0;
  }
  static u64 find_batch(handle h, const u64* keys, std::size_t count) {
    u64 sum = 0;
    for (std::size_t i = 0; i < count; ++i) sum += find_one(h, keys[i]);
    return sum;
  }
  void write(u64 key, bool insert) {
    if (insert) {
      map.insert({key, key});
    } else {
      map.erase(key);
    }
  }
  void commit() {}
};
#endif

#if TANDEM_BENCH_HAVE_TBB
// TBB's split-ordered list, for the lookup workloads only: its lookups are wait-free of locks,
// its erase (unsafe_erase) is not safe beside readers. A fairness review (2026-12-05) found it
// read faster than every peer these tables had at N = 1,000 (mix_bench measured it).
struct tbb_unordered_lookup_map {
  tbb::concurrent_unordered_map<u64, u64> map;
  explicit tbb_unordered_lookup_map(u64 n) : map(n + write_window) {
    for (u64 k = 0; k < n; ++k) map.emplace(k, value_for(k));
  }
  using handle = tbb_unordered_lookup_map*;
  handle make_handle() { return this; }
  static u64 find_one(handle h, u64 key) {
    const auto it = h->map.find(key);
    return it == h->map.end() ? 0 : it->second;
  }
  static u64 find_batch(handle h, const u64* keys, std::size_t count) {
    u64 sum = 0;
    for (std::size_t i = 0; i < count; ++i) sum += find_one(h, keys[i]);
    return sum;
  }
};
#endif

#if TANDEM_BENCH_HAVE_LIBCUCKOO
struct cuckoo_map {
  libcuckoo::cuckoohash_map<u64, u64> map;
  explicit cuckoo_map(u64 n) {
    map.reserve(n + write_window);
    for (u64 k = 0; k < n; ++k) map.insert(k, value_for(k));
  }
  using handle = cuckoo_map*;
  handle make_handle() { return this; }
  static u64 find_one(handle h, u64 key) {
    u64 value = 0;
    return h->map.find(key, value) ? value : 0;
  }
  static u64 find_batch(handle h, const u64* keys, std::size_t count) {
    u64 sum = 0;
    for (std::size_t i = 0; i < count; ++i) sum += find_one(h, keys[i]);
    return sum;
  }
  void write(u64 key, bool insert) {
    if (insert) {
      map.insert(key, key);
    } else {
      map.erase(key);
    }
  }
  void commit() {}
};
#endif

#if TANDEM_BENCH_HAVE_XENIUM
struct xenium_map {
  xenium::left_right<plain_map> map;
  std::vector<std::pair<u64, bool>> pending;
  explicit xenium_map(u64 n) : map(build(n)) {}
  static plain_map build(u64 n) {
    plain_map m(n + write_window);
    build_like_tandem(m, n);
    return m;
  }
  using handle = xenium_map*;
  handle make_handle() { return this; }
  static u64 find_one(handle h, u64 key) {
    return h->map.read([key](const plain_map& m) {
      auto it = m.find(key);
      return it == m.end() ? u64{0} : it->second;
    });
  }
  static u64 find_batch(handle h, const u64* keys, std::size_t count) {
    return h->map.read([keys, count](const plain_map& m) {
      u64 sum = 0;
      for (std::size_t i = 0; i < count; ++i) {
        auto it = m.find(keys[i]);
        sum += it == m.end() ? 0 : it->second;
      }
      return sum;
    });
  }
  void write(u64 key, bool insert) { pending.emplace_back(key, insert); }
  void commit() {  // one update (applied to both instances) per batch
    map.update([this](plain_map& m) {
      for (const auto& [key, insert] : pending) {
        if (insert) {
          m.try_emplace(key, key);
        } else {
          m.erase(key);
        }
      }
    });
    pending.clear();
  }
};
#endif

#if TANDEM_BENCH_HAVE_URCU
// liburcu's lock-free RCU hash table (bench/peers/map_adapters.hpp); every thread that touches
// it registers with RCU once (make_context, thread_local).
struct urcu_map {
  tandem_bench::urcu_lfht_map map;
  explicit urcu_map(u64 n) : map(n) {}
  using handle = urcu_map*;
  handle make_handle() {
    tandem_bench::urcu_lfht_map::make_context();
    return this;
  }
  static u64 find_one(handle h, u64 key) {
    return h->map.read(tandem_bench::urcu_lfht_map::make_context(), key) ? key : 0;
  }
  static u64 find_batch(handle h, const u64* keys, std::size_t count) {
    u64 sum = 0;
    for (std::size_t i = 0; i < count; ++i) sum += find_one(h, keys[i]);
    return sum;
  }
  void write(u64 key, bool insert) {
    auto& context = tandem_bench::urcu_lfht_map::make_context();
    if (insert) {
      map.write(context, key, key);
    } else {
      map.erase(context, key);
    }
  }
  void commit() {}
};
#endif

// What a workload does to the shared instance it uses.
enum class use { read_only, written };

// One instance per map type, size and use, built on first use (thread-safe static init). The
// lookup workloads read instances no workload ever writes, so that a tandem row and its limit
// (the unsync row with the same map and N) read maps with the same insertion history: a writing
// workload leaves erased slots (tombstones, overflow bits) in a flat map, and each map type ran
// a different number of writes (a fairness review of the benchmarks, 2026-12-02).
template <class Map, use Use>
Map& instance(u64 n) {
  if (n == small_n) {
    static Map map(small_n);
    return map;
  }
  static Map map(large_n);
  return map;
}

// The writer's op stream: W inserts of keys N .. N+W-1, then W erases of them, and so on.
struct write_stream {
  u64 n;
  u64 i = 0;
  template <class Map>
  void next(Map& map) {
    map.write(n + i % write_window, (i / write_window) % 2 == 0);
    ++i;
  }
  template <class Map>
  void restore(Map& map) {  // leave the map as it was built
    for (u64 k = 0; k < write_window; ++k) map.write(n + k, false);
    map.commit();
  }
};

// ---- workloads --------------------------------------------------------------------------------

template <class Map>
void lookup_guard_per_lookup(benchmark::State& state, u64 n) {
  Map& map = instance<Map, use::read_only>(n);
  auto handle = map.make_handle();
  const auto& keys = lookup_keys(n);
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7919;
  u64 sum = 0;
  for (auto _ : state) sum += Map::find_one(handle, keys[i++ & key_mask]);
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}

template <class Map>
void lookup_guard_per_64(benchmark::State& state, u64 n) {
  Map& map = instance<Map, use::read_only>(n);
  auto handle = map.make_handle();
  const auto& keys = lookup_keys(n);
  std::size_t i = (static_cast<std::size_t>(state.thread_index()) * 7919) & ~std::size_t{63};
  u64 sum = 0;
  for (auto _ : state) {
    sum += Map::find_batch(handle, &keys[i & key_mask], 64);
    i += 64;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * 64);
}

// tandem's maps keep a reader handle of their own (make_handle() copies need none); the
// workloads that must not have an idle reader release it for the run and restore it after.
template <class Map>
concept owns_reader_handle = requires(Map& map) {
  map.release_reader();
  map.restore_reader();
};

template <class Map>
void reads_with_writer(benchmark::State& state, u64 n) {
  Map& map = instance<Map, use::written>(n);
  // The workload has only the reading threads as readers: the map's own idle reader
  // handle is released for the run (one that never reads would make every publish pay the
  // heavy fence; the writer workload's idle_reader row shows that cost).
  constexpr bool has_idle_reader = owns_reader_handle<Map>;
  static std::atomic<bool> stop{false};
  static std::atomic<u64> writer_ops{0};
  static std::thread writer;
  static std::chrono::steady_clock::time_point writer_start;
  if (state.thread_index() == 0) {
    if constexpr (has_idle_reader) map.release_reader();
    stop.store(false);
    writer_ops.store(0);
    writer_start = std::chrono::steady_clock::now();
    writer = std::thread([&map, n] {
      write_stream stream{n};
      u64 ops = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int k = 0; k < 64; ++k) stream.next(map);
        map.commit();  // publish every 64 ops
        ops += 64;
      }
      stream.restore(map);
      writer_ops.store(ops);
    });
  }
  auto handle = map.make_handle();
  const auto& keys = lookup_keys(n);
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7919;
  u64 sum = 0;
  for (auto _ : state) sum += Map::find_one(handle, keys[i++ & key_mask]);
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    stop.store(true);
    const auto elapsed = std::chrono::steady_clock::now() - writer_start;
    writer.join();
    if constexpr (has_idle_reader) map.restore_reader();
    state.counters["writer_ops_per_second"] =
        static_cast<double>(writer_ops.load()) / std::chrono::duration<double>(elapsed).count();
  }
}

// The writer rows' map: built afresh for each row (n, publish_every, idle_reader) and kept for
// that row's runs (Google Benchmark calls a row's function several times, growing the iteration
// count, one row after another), so every writer row, tandem's and its `unsync` limit alike,
// starts from a map built the same way and sees only its own row's history. Until 2026-12-05 the
// writer rows used instance<Map, use::written>: tandem's was shared with its other writer rows
// and reads_with_writer, the limit's with nothing (a fairness review). Single-threaded: the
// writer workload runs no benchmark threads. At most one map per Map type is alive.
template <class Map>
Map& writer_row_instance(u64 n, u64 publish_every, bool idle_reader) {
  static std::unique_ptr<Map> map;
  static std::tuple<u64, u64, bool> built_for;
  const std::tuple<u64, u64, bool> row{n, publish_every, idle_reader};
  if (map == nullptr || built_for != row) {
    map.reset();  // the old one first: two 1,000,000-entry maps need not coexist
    map = std::make_unique<Map>(n);
    built_for = row;
  }
  return *map;
}

template <class Map>
void writer_only(benchmark::State& state, u64 n, u64 publish_every, bool idle_reader) {
  Map& map = writer_row_instance<Map>(n, publish_every, idle_reader);
  constexpr bool has_reader = owns_reader_handle<Map>;
  if constexpr (has_reader) {
    if (!idle_reader) map.release_reader();
  }
  write_stream stream{n};
  u64 since_publish = 0;
  for (auto _ : state) {
    stream.next(map);
    if (++since_publish == publish_every) {
      map.commit();
      since_publish = 0;
    }
  }
  map.commit();  // after the timed loop: not measured
  stream.restore(map);
  if constexpr (has_reader) {
    if (!idle_reader) map.restore_reader();
  }
  state.SetItemsProcessed(state.iterations());
}

// ---- registration -----------------------------------------------------------------------------
// Names: <workload>/<implementation>[/map:<inner map>]/n:<N>[/publish_every:<P>][/real_time]
// [/threads:T] (bench/report.py and bench/targets.json read them). The limit of a tandem row is
// the `unsync` row with the same map and N.

std::string with_params(const std::string& workload, const std::string& impl, const char* map,
                        u64 n) {
  std::string name = workload + "/" + impl;
  if (map != nullptr) name += std::string("/map:") + map;
  return name + "/n:" + std::to_string(n);
}

template <class Map>
void register_lookups(const std::string& impl, const char* map) {
  for (auto n : {small_n, large_n}) {
    benchmark::RegisterBenchmark(with_params("lookup/guard_per_lookup", impl, map, n).c_str(),
                                 lookup_guard_per_lookup<Map>, n)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
    benchmark::RegisterBenchmark(with_params("lookup/guard_per_64", impl, map, n).c_str(),
                                 lookup_guard_per_64<Map>, n)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
  }
}

template <class Map>
void register_reads_with_writer(const std::string& impl, const char* map) {
  for (auto n : {small_n, large_n}) {
    benchmark::RegisterBenchmark(with_params("reads_with_writer", impl, map, n).c_str(),
                                 reads_with_writer<Map>, n)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
  }
}

// idle_reader: the map keeps one reader handle that never reads (implementation name
// <impl>_idle_reader): what an existing but idle reader costs the writer.
template <class Map>
void register_writer(const std::string& impl, const char* map, std::initializer_list<u64> every,
                     bool idle_reader = false) {
  for (auto n : {small_n, large_n}) {
    for (const u64 p : every) {
      std::string name = with_params("writer", idle_reader ? impl + "_idle_reader" : impl, map, n);
      if (p != 0) name += "/publish_every:" + std::to_string(p);
      benchmark::RegisterBenchmark(name.c_str(), writer_only<Map>, n, p == 0 ? u64{1} : p,
                                   idle_reader);
    }
  }
}

// Everything measured over one inner map: the limit, tandem with both fences.
template <class Inner>
void register_inner_map(bool with_writer_thread) {
  const char* map = Inner::name;
  register_lookups<unsync_map<Inner>>("unsync", map);
  register_lookups<tandem_asymmetric<Inner>>("tandem_asymmetric", map);
  register_lookups<tandem_portable<Inner>>("tandem_portable_fence", map);
  if (with_writer_thread) {
    register_reads_with_writer<tandem_asymmetric<Inner>>("tandem_asymmetric", map);
    register_reads_with_writer<tandem_portable<Inner>>("tandem_portable_fence", map);
  }
  register_writer<unsync_map<Inner>>("unsync", map, {0});
  register_writer<tandem_asymmetric<Inner>>("tandem_asymmetric", map, {1, 64, 1024});
  register_writer<tandem_portable<Inner>>("tandem_portable_fence", map, {1, 64, 1024});
  register_writer<tandem_asymmetric<Inner>>("tandem_asymmetric", map, {1, 64}, true);
}

// A peer: lookups and reads with a writer (peers have no inner-map parameter).
template <class Map>
void register_peer(const std::string& impl) {
  register_lookups<Map>(impl, nullptr);
  register_reads_with_writer<Map>(impl, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  register_inner_map<std_inner>(true);
#if TANDEM_HAVE_BOOST_FLAT_MAP
  register_inner_map<boost_flat_inner>(true);
#endif
#if TANDEM_HAVE_ABSL_FLAT_HASH_MAP
  register_inner_map<absl_flat_inner>(false);
#endif
  register_peer<locked_map<std::shared_mutex>>("shared_mutex");
  register_peer<locked_map<std::mutex>>("mutex");
#if TANDEM_BENCH_HAVE_TBB
  register_peer<tbb_map>("tbb_concurrent_hash_map");
  register_lookups<tbb_unordered_lookup_map>("tbb_concurrent_unordered_map", nullptr);
#endif
#if TANDEM_BENCH_HAVE_LIBCUCKOO
  register_peer<cuckoo_map>("libcuckoo");
#endif
#if TANDEM_BENCH_HAVE_XENIUM
  register_peer<xenium_map>("xenium_left_right");
#endif
#if TANDEM_BENCH_HAVE_URCU
  register_peer<urcu_map>("urcu_rculfhash");
#endif

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("tandem_membarrier_expedited",
                              tandem::sync::asymmetric_fence::expedited() ? "yes" : "no");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
