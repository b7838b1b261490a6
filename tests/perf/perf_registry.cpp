// Instructions per registry hit: get_or_create, find and visit of an existing entry, 64 names
// like "store/tenant-0042" (17 bytes), chosen from a fixed random sequence, one thread.
// Baselines in the same program, the work no named lookup can avoid: hashing the name once with
// the registry's own hash (tandem::string_hash), comparing it with the stored name once (with
// its own equality, tandem::string_equal), and,
// for get_or_create and find, copying (and later dropping) a std::shared_ptr. The registry's
// margin over them is its structure: the read section, the probe, the checks.
// Informational: std::unordered_map<std::string, std::shared_ptr<T>> find (+ copy) with the same
// hash, and the seed's std::mutex + std::unordered_map<std::string, std::shared_ptr<T>>
// get_or_create hit (std::hash), the design bench/registry_bench.cpp compares with.
#include <tandem/registry.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "perf_harness.hpp"

namespace {

struct payload {
  explicit payload(const std::string& name) : value(name.size()) {}
  std::uint64_t value;
};

constexpr std::size_t name_count = 64;

std::vector<std::string> make_names() {
  std::vector<std::string> result;
  for (std::size_t i = 0; i < name_count; ++i) {
    char text[32];
    std::snprintf(text, sizeof text, "store/tenant-%04zu", i);
    result.emplace_back(text);
  }
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = tandem::perf::parse(argc, argv);
  const std::vector<std::string> names = make_names();
  const std::vector<std::size_t> sequence =
      tandem::perf::index_sequence(name_count, tandem::perf::sequence_length);
  constexpr std::size_t mask = tandem::perf::sequence_length - 1;
  auto name = [&](std::size_t i) -> const std::string& { return names[sequence[i & mask]]; };

  // The stored copies of the names and their instances, as a registry would hold them.
  std::vector<std::string> stored(names.begin(), names.end());
  std::vector<std::shared_ptr<payload>> instances;
  for (const std::string& n : names) instances.push_back(std::make_shared<payload>(n));
  const tandem::string_hash hash;
  const tandem::string_equal equal;
  tandem::perf::measure(options, "registry/baseline/hash_compare_copy", [&](std::size_t i) {
    const std::size_t index = sequence[i & mask];
    tandem::perf::keep(hash(names[index]));
    tandem::perf::keep(equal(stored[index], names[index]));
    std::shared_ptr<payload> p = instances[index];
    tandem::perf::keep(p.get());
  });
  tandem::perf::measure(options, "registry/baseline/hash_compare", [&](std::size_t i) {
    const std::size_t index = sequence[i & mask];
    tandem::perf::keep(hash(names[index]));
    tandem::perf::keep(equal(stored[index], names[index]));
    tandem::perf::keep(instances[index]->value);
  });

  std::unordered_map<std::string, std::shared_ptr<payload>, tandem::string_hash,
                     tandem::string_equal>
      plain;
  for (const std::string& n : names) plain.emplace(n, std::make_shared<payload>(n));
  tandem::perf::measure(options, "registry/unordered_map/find_and_copy", [&](std::size_t i) {
    std::shared_ptr<payload> p = plain.find(name(i))->second;
    tandem::perf::keep(p.get());
  });
  tandem::perf::measure(options, "registry/unordered_map/find", [&](std::size_t i) {
    tandem::perf::keep(plain.find(name(i))->second->value);
  });

  std::mutex seed_mutex;
  std::unordered_map<std::string, std::shared_ptr<payload>> seed;
  for (const std::string& n : names) seed.emplace(n, std::make_shared<payload>(n));
  tandem::perf::measure(options, "registry/seed_mutex_map/get_or_create_hit", [&](std::size_t i) {
    std::shared_ptr<payload> p;
    {
      const std::lock_guard<std::mutex> lock(seed_mutex);
      auto it = seed.find(name(i));
      if (it == seed.end()) it = seed.emplace(name(i), std::make_shared<payload>(name(i))).first;
      p = it->second;
    }
    tandem::perf::keep(p.get());
  });

  tandem::registry<payload> registry;
  for (const std::string& n : names) (void)registry.get_or_create(n);
  tandem::perf::measure(options, "registry/get_or_create_hit", [&](std::size_t i) {
    std::shared_ptr<payload> p = registry.get_or_create(name(i));
    tandem::perf::keep(p.get());
  });
  tandem::perf::measure(options, "registry/find_hit", [&](std::size_t i) {
    std::shared_ptr<payload> p = registry.find(name(i));
    tandem::perf::keep(p.get());
  });
  tandem::perf::measure(options, "registry/visit_hit", [&](std::size_t i) {
    const bool found = registry.visit(name(i), [](payload& p) { tandem::perf::keep(p.value); });
    tandem::perf::keep(found);
  });
  return 0;
}
