// bench/peers/map_adapters.hpp -- one small adapter per concurrent map, so that the same
// workload code drives tandem and every peer in one binary (bench/mix_bench.cpp,
// bench/memory_bench.cpp).
//
// Every adapter over uint64 -> uint64 has:
//   static constexpr const char* name;
//   explicit adapter(std::size_t n)           fills keys 0..n-1 (value = key), published/visible
//   context make_context()                    per-thread state (a reader handle, RCU registration)
//   bool read(context&, std::uint64_t key)    lookup; true when found
//   void write(context&, key, value)          assign to an existing key (the key set never changes)
// (urcu_lfht_map also has erase(context&, key), for double_buffer_map_bench's writer.)
// Peers are compiled in only when found (TANDEM_BENCH_HAVE_* from bench/CMakeLists.txt).
#pragma once

#include <tandem/double_buffer_map.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
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
#if TANDEM_BENCH_HAVE_BOOST_FLAT
#include <boost/unordered/unordered_flat_map.hpp>
#endif
#if TANDEM_BENCH_HAVE_URCU
#include <urcu/rculfhash.h>
#include <urcu/urcu-memb.h>  // the memory-barrier flavour: no signals, no explicit quiescent states
#endif

namespace tandem_bench {

using key_type = std::uint64_t;
using mapped_type = std::uint64_t;
struct no_context {};

// The content every adapter starts with: keys 0..n-1, value = key.
template <class Map>
void fill_keys(Map& map, std::size_t n) {
  map.reserve(n);
  for (key_type k = 0; k < n; ++k) map.emplace(k, k);
}

// The physical limit: the same inner map with no synchronisation (valid for 1 thread, or
// for read-only use).
struct unsynchronised_map {
  static constexpr const char* name = "std_unordered_map_unsync";
  std::unordered_map<key_type, mapped_type> map;
  explicit unsynchronised_map(std::size_t n) { fill_keys(map, n); }
  no_context make_context() { return {}; }
  bool read(no_context&, key_type k) const { return map.find(k) != map.end(); }
  void write(no_context&, key_type k, mapped_type v) { map.insert_or_assign(k, v); }
};

#if TANDEM_BENCH_HAVE_BOOST_FLAT
// Boost's open-addressing map: the fastest single-threaded hash map a user is likely to have.
struct boost_flat_map {
  static constexpr const char* name = "boost_unordered_flat_map_unsync";
  boost::unordered_flat_map<key_type, mapped_type> map;
  explicit boost_flat_map(std::size_t n) { fill_keys(map, n); }
  no_context make_context() { return {}; }
  bool read(no_context&, key_type k) const { return map.find(k) != map.end(); }
  void write(no_context&, key_type k, mapped_type v) { map.insert_or_assign(k, v); }
};
#endif

struct mutex_map {
  static constexpr const char* name = "std_mutex";
  std::mutex mutex;
  std::unordered_map<key_type, mapped_type> map;
  explicit mutex_map(std::size_t n) { fill_keys(map, n); }
  no_context make_context() { return {}; }
  bool read(no_context&, key_type k) {
    std::lock_guard lock(mutex);
    return map.find(k) != map.end();
  }
  void write(no_context&, key_type k, mapped_type v) {
    std::lock_guard lock(mutex);
    map.insert_or_assign(k, v);
  }
};

struct shared_mutex_map {
  static constexpr const char* name = "std_shared_mutex";
  std::shared_mutex mutex;
  std::unordered_map<key_type, mapped_type> map;
  explicit shared_mutex_map(std::size_t n) { fill_keys(map, n); }
  no_context make_context() { return {}; }
  bool read(no_context&, key_type k) {
    std::shared_lock lock(mutex);
    return map.find(k) != map.end();
  }
  void write(no_context&, key_type k, mapped_type v) {
    std::unique_lock lock(mutex);
    map.insert_or_assign(k, v);
  }
};

// tandem's left-right map. It has one writer by design; for a mixed workload on several
// threads the writer is shared behind a mutex (as docs/double_buffer.md describes), and the
// writes are published every `publish_every` writes (xenium's adapter below batches the same).
// The adapter keeps no reader handle of its own: each thread's context is a reader made by the
// writer. Until 2026-12-05 it kept one that never read, and an idle reader never acknowledges a
// publish, so every publish paid the heavy fence (membarrier): a fairness review measured 18.7
// against 69.7 M/s at 500 writes per 1,000, 1 thread (double_buffer_map_bench's
// writer/*_idle_reader rows show that cost on purpose).
struct tandem_double_buffer_map {
  static constexpr const char* name = "tandem_double_buffer_map";
  static constexpr std::size_t publish_every = 16;
  using map_type = tandem::double_buffer_map<key_type, mapped_type>;
  map_type::writer writer;
  std::mutex writer_mutex;
  std::size_t unpublished = 0;

  explicit tandem_double_buffer_map(std::size_t n) : writer(make(n)) {}
  using context = map_type::reader;
  context make_context() {  // each thread reads through its own reader
    std::lock_guard lock(writer_mutex);
    return writer.reader();
  }
  bool read(context& r, key_type k) { return r.read().find(k) != nullptr; }
  void write(context&, key_type k, mapped_type v) {
    std::lock_guard lock(writer_mutex);
    writer.insert_or_assign(k, v);
    if (++unpublished == publish_every) {
      writer.publish();
      unpublished = 0;
    }
  }

 private:
  static map_type::writer make(std::size_t n) {
    auto [w, r] = tandem::make_double_buffer_map<key_type, mapped_type>();
    for (key_type k = 0; k < n; ++k) w.insert(k, k);
    w.publish();
    // A publish with nothing pending does nothing, so push one more (no-op) operation: this
    // publish replays the fill on the other copy, and both copies are full, the log short.
    w.erase(n);
    w.publish();
    return std::move(w);  // `r`, the only reader so far, ends here
  }
};

#if TANDEM_BENCH_HAVE_TBB
struct tbb_hash_map {
  static constexpr const char* name = "tbb_concurrent_hash_map";
  // std::allocator rather than TBB's default scalable allocator: the same allocator as every
  // other map here, and one that memory_bench's mallinfo2() can see.
  tbb::concurrent_hash_map<key_type, mapped_type, tbb::tbb_hash_compare<key_type>,
                           std::allocator<std::pair<const key_type, mapped_type>>>
      map;
  explicit tbb_hash_map(std::size_t n) : map(n) {
    for (key_type k = 0; k < n; ++k) map.insert({k, k});
  }
  no_context make_context() { return {}; }
  bool read(no_context&, key_type k) {
    decltype(map)::const_accessor a;
    return map.find(a, k);
  }
  void write(no_context&, key_type k, mapped_type v) {
    decltype(map)::accessor a;
    map.insert(a, k);
    a->second = v;
  }
};
#endif

#if TANDEM_BENCH_HAVE_TBB
// TBB's split-ordered list: lookups and inserts are concurrency-safe, erase is not (unsafe_erase)
// and neither is assigning to a found value. Values are atomics, so a "write" is find + store:
// what a user of this map does to update values in place.
struct tbb_unordered_map {
  static constexpr const char* name = "tbb_concurrent_unordered_map";
  tbb::concurrent_unordered_map<key_type, std::atomic<mapped_type>, std::hash<key_type>,
                                std::equal_to<key_type>,
                                std::allocator<std::pair<const key_type, std::atomic<mapped_type>>>>
      map;
  explicit tbb_unordered_map(std::size_t n) : map(n) {
    for (key_type k = 0; k < n; ++k) map.emplace(k, k);
  }
  no_context make_context() { return {}; }
  bool read(no_context&, key_type k) const { return map.find(k) != map.end(); }
  void write(no_context&, key_type k, mapped_type v) {
    auto it = map.find(k);
    // relaxed: the benchmark publishes no data through the value.
    if (it != map.end()) it->second.store(v, std::memory_order_relaxed);
  }
};
#endif

#if TANDEM_BENCH_HAVE_LIBCUCKOO
struct libcuckoo_map {
  static constexpr const char* name = "libcuckoo";
  libcuckoo::cuckoohash_map<key_type, mapped_type> map;
  explicit libcuckoo_map(std::size_t n) : map(n) {
    for (key_type k = 0; k < n; ++k) map.insert(k, k);
  }
  no_context make_context() { return {}; }
  bool read(no_context&, key_type k) const { return map.contains(k); }
  void write(no_context&, key_type k, mapped_type v) { map.insert_or_assign(k, v); }
};
#endif

#if TANDEM_BENCH_HAVE_XENIUM
// xenium's left_right: readers increment shared counters (one cache line per read indicator),
// writers apply each update to both instances. Writes are batched as tandem's adapter batches
// them: kept under a mutex and applied in one update every `update_every` writes (until
// 2026-12-05 every write was its own update, two waits for the readers per write, against one
// publish per 16 writes for tandem; double_buffer_map_bench batches both alike too).
struct xenium_left_right_map {
  static constexpr const char* name = "xenium_left_right";
  static constexpr std::size_t update_every = tandem_double_buffer_map::publish_every;
  using map_type = std::unordered_map<key_type, mapped_type>;
  xenium::left_right<map_type> lr;
  std::mutex writer_mutex;
  std::vector<std::pair<key_type, mapped_type>> pending;
  explicit xenium_left_right_map(std::size_t n) : lr(build(n)) { pending.reserve(update_every); }
  no_context make_context() { return {}; }
  bool read(no_context&, key_type k) {
    return lr.read([k](const map_type& m) { return m.find(k) != m.end(); });
  }
  void write(no_context&, key_type k, mapped_type v) {
    std::lock_guard lock(writer_mutex);
    pending.emplace_back(k, v);
    if (pending.size() == update_every) {
      lr.update([this](map_type& m) {
        for (const auto& [key, value] : pending) m.insert_or_assign(key, value);
      });
      pending.clear();
    }
  }

 private:
  static map_type build(std::size_t n) {
    map_type m;
    fill_keys(m, n);
    return m;
  }
};
#endif

#if TANDEM_BENCH_HAVE_URCU
// liburcu's resizable lock-free RCU hash table (rculfhash), memb flavour.
struct urcu_lfht_map {
  static constexpr const char* name = "urcu_rculfhash";
  struct node {
    cds_lfht_node link;
    key_type key;
    mapped_type value;
    rcu_head rcu;
  };
  struct context {
    context() { urcu_memb_register_thread(); }
    context(const context&) = delete;
    context& operator=(const context&) = delete;
    ~context() { urcu_memb_unregister_thread(); }
  };
  cds_lfht* table;

  // A fixed-size table (all buckets allocated up front, no auto-resize): the benchmarks never
  // change the key set, and with auto-resize the node-by-node teardown below shrinks the table
  // step by step, which takes minutes at N = 1,000,000.
  explicit urcu_lfht_map(std::size_t n)
      : table(cds_lfht_new_flavor(next_pow2(n), next_pow2(n), 0, 0, &urcu_memb_flavor, nullptr)) {
    make_context();
    for (key_type k = 0; k < n; ++k) {
      auto* fresh = new node{{}, k, k, {}};
      urcu_memb_read_lock();
      cds_lfht_add(table, hash(k), &fresh->link);
      urcu_memb_read_unlock();
    }
  }
  ~urcu_lfht_map() {
    make_context();
    cds_lfht_iter iter;
    cds_lfht_node* n = nullptr;
    cds_lfht_first(table, &iter);
    while ((n = cds_lfht_iter_get_node(&iter)) != nullptr) {
      cds_lfht_del(table, n);
      cds_lfht_next(table, &iter);
      delete reinterpret_cast<node*>(n);  // single-threaded teardown: no reader left
    }
    cds_lfht_destroy(table, nullptr);
    urcu_memb_barrier();
  }
  // Registers the calling thread with RCU once, for the thread's whole life.
  static context& make_context() {
    thread_local context registered;
    return registered;
  }
  bool read(context&, key_type k) {
    urcu_memb_read_lock();
    cds_lfht_iter iter;
    cds_lfht_lookup(table, hash(k), &match, &k, &iter);
    const bool found = cds_lfht_iter_get_node(&iter) != nullptr;
    urcu_memb_read_unlock();
    return found;
  }
  void erase(context&, key_type k) {
    urcu_memb_read_lock();
    cds_lfht_iter iter;
    cds_lfht_lookup(table, hash(k), &match, &k, &iter);
    cds_lfht_node* found = cds_lfht_iter_get_node(&iter);
    const bool removed = found != nullptr && cds_lfht_del(table, found) == 0;
    urcu_memb_read_unlock();
    if (removed) {
      urcu_memb_call_rcu(&reinterpret_cast<node*>(found)->rcu,
                         [](rcu_head* head) { delete caa_container_of(head, node, rcu); });
    }
  }
  void write(context&, key_type k, mapped_type v) {
    auto* fresh = new node{{}, k, v, {}};
    urcu_memb_read_lock();
    cds_lfht_node* old = cds_lfht_add_replace(table, hash(k), &match, &k, &fresh->link);
    urcu_memb_read_unlock();
    if (old != nullptr) {
      urcu_memb_call_rcu(&reinterpret_cast<node*>(old)->rcu,
                         [](rcu_head* head) { delete caa_container_of(head, node, rcu); });
    }
  }

 private:
  static unsigned long next_pow2(std::size_t n) {
    unsigned long p = 1;
    while (p < n) p <<= 1U;
    return p;
  }
  static unsigned long hash(key_type k) {
    // splitmix64 finaliser: rculfhash needs well-mixed bits (it splits on reversed hashes).
    k ^= k >> 30U;
    k *= 0xbf58476d1ce4e5b9ULL;
    k ^= k >> 27U;
    k *= 0x94d049bb133111ebULL;
    k ^= k >> 31U;
    return static_cast<unsigned long>(k);
  }
  static int match(cds_lfht_node* n, const void* key) {
    return reinterpret_cast<node*>(n)->key == *static_cast<const key_type*>(key) ? 1 : 0;
  }
};
#endif

}  // namespace tandem_bench
