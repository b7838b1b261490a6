// Instructions per rc_map handle copy (copy-construct a handle from a live one, then destroy
// the copy, which is not the last handle), against the same with a std::shared_ptr in the same
// program (copy: an atomic increment; destroy: an atomic decrement that is not the last).
// Also issue 17's churn workload (get_or_insert_with of an absent key, then the drop of the last
// handle, which erases the entry; random among 1,000 string keys) against the benchmarks'
// std::mutex + unordered_map<string, weak_ptr<V>> baseline (bench/peers/weak_ptr_map.hpp).
#include <tandem/rc_map.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "peers/weak_ptr_map.hpp"
#include "perf_harness.hpp"

int main(int argc, char** argv) {
  const auto options = tandem::perf::parse(argc, argv);

  const auto shared = std::make_shared<std::uint64_t>(42);
  tandem::perf::measure(options, "rc_map/baseline/shared_ptr_copy", [&](std::size_t) {
    const std::shared_ptr<std::uint64_t> copy = shared;
    tandem::perf::keep(copy.get());
  });

  tandem::rc_map<std::string, std::uint64_t> map;
  const auto handle = map.get_or_insert_with("pool/tenant-0042", [] { return std::uint64_t{42}; });
  tandem::perf::measure(options, "rc_map/handle_copy", [&](std::size_t) {
    const auto copy = handle;
    tandem::perf::keep(&*copy);
  });

  // Churn, random among 1,000 keys: every call creates (the key is absent) and the handle's
  // drop erases.
  constexpr std::size_t key_count = 1000;
  const std::vector<std::string> names = tandem_bench::tenant_names(key_count);
  const std::vector<std::size_t> sequence =
      tandem::perf::index_sequence(key_count, tandem::perf::sequence_length);
  constexpr std::size_t mask = tandem::perf::sequence_length - 1;
  using tandem_bench::churn_value;

  tandem_bench::weak_ptr_map<std::string, churn_value> weak_map;
  tandem::perf::measure(options, "rc_map/baseline/weak_ptr_map_churn", [&](std::size_t i) {
    const auto h =
        weak_map.get_or_insert_with(names[sequence[i & mask]], [] { return churn_value(7); });
    tandem::perf::keep(&*h);
  });

  tandem::rc_map<std::string, churn_value> churn_map;
  tandem::perf::measure(options, "rc_map/churn", [&](std::size_t i) {
    const auto h =
        churn_map.get_or_insert_with(names[sequence[i & mask]], [] { return churn_value(7); });
    tandem::perf::keep(&*h);
  });
  return 0;
}
