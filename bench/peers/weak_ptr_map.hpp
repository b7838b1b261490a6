// bench/peers/weak_ptr_map.hpp -- the baseline rc_map is measured against (issue 17's churn and
// acquire + release rows): std::mutex + std::unordered_map<K, std::weak_ptr<V>>, where the last
// shared_ptr to an entry erases it. Shared by bench/rc_map_bench.cpp (wall clock) and
// tests/perf/perf_rc_map.cpp (callgrind instruction counts), so that both measure one baseline;
// also the churn workload's key and value types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tandem_bench {

// Written as a careful C++ user would write it: one hash lookup per call (try_emplace), and one
// allocation per created entry (make_shared of a holder that owns the value and erases the entry
// in its destructor; the caller's shared_ptr aliases the value). An earlier version looked the
// key up twice and allocated the value and the control block apart, which flattered rc_map's
// churn ratios by about a third (a fairness review of the benchmarks, 2026-12-02).
template <class K, class V>
class weak_ptr_map {
 public:
  // The live entry's value, or a new one built from make() (under the lock, as rc_map builds
  // its values under the shard lock).
  template <class F>
  std::shared_ptr<V> get_or_insert_with(const K& key, F&& make) {
    std::lock_guard<std::mutex> guard(mutex_);
    auto [it, inserted] = entries_.try_emplace(key);
    if (!inserted) {
      if (auto alive = it->second.lock()) return alive;
    }
    auto held = std::make_shared<holder>(*this, key, make());
    std::shared_ptr<V> fresh(held, &held->value);
    it->second = fresh;
    return fresh;
  }

 private:
  struct holder {
    holder(weak_ptr_map& m, const K& k, V&& v) : map(m), key(k), value(std::move(v)) {}
    holder(const holder&) = delete;
    holder& operator=(const holder&) = delete;
    ~holder() {
      std::lock_guard<std::mutex> guard(map.mutex_);
      auto it = map.entries_.find(key);
      // Erase only if the entry still holds an expired pointer (not a newer entry's). The key
      // is a copy: the map's own key may already be gone (another holder of the same key,
      // created after this one expired, can erase the entry first).
      if (it != map.entries_.end() && it->second.expired()) map.entries_.erase(it);
    }
    weak_ptr_map& map;
    K key;
    V value;  // destroyed after the lock is released
  };

  std::mutex mutex_;
  std::unordered_map<K, std::weak_ptr<V>> entries_;
};

// The churn workload's value: small and heap-owning (a pool or topic header owns a little
// memory too): one allocation of 4 words.
struct churn_value {
  explicit churn_value(std::size_t seed) : words(4, seed) {}
  std::vector<std::uint64_t> words;
};

// The churn workload's keys: "tenant-0000" .. "tenant-<count - 1>", 11 characters (the length
// of a realistic tenant or topic name; within libstdc++'s small-string buffer).
inline std::vector<std::string> tenant_names(std::size_t count) {
  std::vector<std::string> names;
  names.reserve(count);
  for (std::size_t n = 0; n < count; ++n) {
    std::string name = "tenant-0000";
    for (std::size_t i = n, pos = name.size(); i != 0 && pos > 7; i /= 10) {
      name[--pos] = static_cast<char>('0' + i % 10);
    }
    names.push_back(std::move(name));
  }
  return names;
}

}  // namespace tandem_bench
