// Benchmarks for include/tandem/registry.hpp.
//
// Question: what does looking up an existing named singleton cost, alone and with two threads,
// compared with what a user would otherwise write? The workload (issue 4): 1,000 entries named
// like "store/tenant-0042" (17 characters); every iteration looks up the same existing name.
//  - get_or_create/mutex_map:        the seed's design: std::mutex + std::unordered_map<
//                                    std::string, std::shared_ptr<T>>, locked on every get.
//  - get_or_create/shared_mutex_map: the same with a std::shared_mutex read lock on hits.
//  - get_or_create/tandem_registry:  tandem::registry<T>::get_or_create (copies a shared_ptr).
//  - visit/tandem_registry:          tandem::registry<T>::visit (no shared_ptr copy).
//  - find/unsynchronised_map:        std::unordered_map::find with no lock at all: the
//                                    physical limit for a named lookup.
//  - accessor/function_local_static: `static T& t = ...; return t;` behind a non-inlined call,
//    against accessor/tandem_cached_accessor: registry::cached_accessor::get() behind the same
//    kind of call (issue 16: at most 1.2x the static's time per access).
// Targets: get_or_create hit >= 1.5x mutex_map at 1 thread and >= 3x at 2 threads; visit at 2
// threads >= 1.8x its own 1-thread throughput; visit at 1 thread >= 0.7x the unsynchronised
// find. Compare items_per_second (real time) of the median of several repetitions.
#include <tandem/registry.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

struct payload {
  explicit payload(const std::string& name) : value(name.size()) {}
  std::uint64_t value;
};

constexpr int entry_count = 1000;

const std::vector<std::string>& names() {
  static const std::vector<std::string> all = [] {
    std::vector<std::string> result;
    for (int i = 0; i < entry_count; ++i) {
      char text[32];
      std::snprintf(text, sizeof text, "store/tenant-%04d", i);
      result.emplace_back(text);
    }
    return result;
  }();
  return all;
}

const std::string& looked_up_name() {
  return names()[entry_count / 2];
}

// The seed's design.
class mutex_map {
 public:
  std::shared_ptr<payload> get_or_create(const std::string& name) {
    const std::lock_guard<std::mutex> lock(mutex_);
    auto it = map_.find(name);
    if (it == map_.end()) it = map_.emplace(name, std::make_shared<payload>(name)).first;
    return it->second;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<payload>> map_;
};

// The seed's design with a reader-writer lock: shared on hits, exclusive to insert.
class shared_mutex_map {
 public:
  std::shared_ptr<payload> get_or_create(const std::string& name) {
    {
      const std::shared_lock<std::shared_mutex> lock(mutex_);
      const auto it = map_.find(name);
      if (it != map_.end()) return it->second;
    }
    const std::unique_lock<std::shared_mutex> lock(mutex_);
    auto it = map_.find(name);
    if (it == map_.end()) it = map_.emplace(name, std::make_shared<payload>(name)).first;
    return it->second;
  }

 private:
  std::shared_mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<payload>> map_;
};

template <class Map>
Map& filled() {
  static Map* const map = [] {
    auto* m = new Map();
    for (const auto& name : names()) (void)m->get_or_create(name);
    return m;
  }();
  return *map;
}

tandem::registry<payload>& filled_registry() {
  static tandem::registry<payload>* const r = [] {
    auto* m = new tandem::registry<payload>();
    for (const auto& name : names()) (void)m->get_or_create(name);
    return m;
  }();
  return *r;
}

const std::unordered_map<std::string, std::shared_ptr<payload>>& filled_plain_map() {
  static const auto* const map = [] {
    auto* m = new std::unordered_map<std::string, std::shared_ptr<payload>>();
    for (const auto& name : names()) m->emplace(name, std::make_shared<payload>(name));
    return m;
  }();
  return *map;
}

template <class Map>
void get_or_create_baseline(benchmark::State& state) {
  Map& map = filled<Map>();
  const std::string& name = looked_up_name();
  for (auto _ : state) {
    auto p = map.get_or_create(name);
    benchmark::DoNotOptimize(p.get());
  }
  state.SetItemsProcessed(state.iterations());
}

void get_or_create_tandem(benchmark::State& state) {
  auto& r = filled_registry();
  const std::string& name = looked_up_name();
  for (auto _ : state) {
    auto p = r.get_or_create(name);
    benchmark::DoNotOptimize(p.get());
  }
  state.SetItemsProcessed(state.iterations());
}

void visit_tandem(benchmark::State& state) {
  auto& r = filled_registry();
  const std::string& name = looked_up_name();
  for (auto _ : state) {
    const bool found = r.visit(name, [](payload& p) { benchmark::DoNotOptimize(p.value); });
    benchmark::DoNotOptimize(found);
  }
  state.SetItemsProcessed(state.iterations());
}

void find_tandem(benchmark::State& state) {
  auto& r = filled_registry();
  const std::string& name = looked_up_name();
  for (auto _ : state) {
    auto p = r.find(name);
    benchmark::DoNotOptimize(p.get());
  }
  state.SetItemsProcessed(state.iterations());
}

void find_unsynchronised(benchmark::State& state) {
  const auto& map = filled_plain_map();
  const std::string& name = looked_up_name();
  for (auto _ : state) {
    const auto it = map.find(name);
    benchmark::DoNotOptimize(it->second->value);
  }
  state.SetItemsProcessed(state.iterations());
}

[[gnu::noinline]] payload& local_static_instance() {
  static payload& instance = *new payload("store/tenant-0042");
  return instance;
}

[[gnu::noinline]] payload& accessor_instance(tandem::registry<payload>::cached_accessor& accessor) {
  return accessor.get();
}

void accessor_function_local_static(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(local_static_instance().value);
  }
  state.SetItemsProcessed(state.iterations());
}

void accessor_tandem(benchmark::State& state) {
  auto accessor = filled_registry().accessor(looked_up_name());
  for (auto _ : state) {
    benchmark::DoNotOptimize(accessor_instance(accessor).value);
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(accessor_function_local_static)
    ->Name("accessor/function_local_static")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(accessor_tandem)
    ->Name("accessor/tandem_cached_accessor")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(get_or_create_baseline<mutex_map>)
    ->Name("get_or_create/mutex_map")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(get_or_create_baseline<shared_mutex_map>)
    ->Name("get_or_create/shared_mutex_map")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(get_or_create_tandem)
    ->Name("get_or_create/tandem_registry")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(visit_tandem)->Name("visit/tandem_registry")->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(find_tandem)->Name("find/tandem_registry")->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(find_unsynchronised)
    ->Name("find/unsynchronised_map")
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

BENCHMARK_MAIN();
