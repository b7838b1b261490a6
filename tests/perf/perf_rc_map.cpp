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

namespace {

// A value of 1 KiB + 8 bytes whose constructor initialises only its first word.
struct buffer_value {
  explicit buffer_value(std::uint64_t seed) : first(seed) {}
  std::uint64_t first;
  unsigned char bytes[1024];  // written by whoever fills the buffer, never by construction
};

}  // namespace

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

  // One churn case: `target` is an rc_map or the baseline (both have get_or_insert_with).
  auto churn = [&](const char* name, auto& target, auto make) {
    tandem::perf::measure(options, name, [&](std::size_t i) {
      const auto h = target.get_or_insert_with(names[sequence[i & mask]], make);
      tandem::perf::keep(&*h);
    });
  };
  tandem_bench::weak_ptr_map<std::string, churn_value> weak_map;
  churn("rc_map/baseline/weak_ptr_map_churn", weak_map, [] { return churn_value(7); });
  tandem::rc_map<std::string, churn_value> churn_map;
  churn("rc_map/churn", churn_map, [] { return churn_value(7); });

  // The same churn with a value of 8 bytes, and with one of 1 KiB whose constructor writes 8
  // bytes of it (an I/O buffer, a fixed-size table): creating an entry must cost about the same.
  // Only the node's size differs, so nothing but a write of the value's bytes before it is built
  // -- once_cell's storage zeroed by value-initialization, 128 `rep stos` steps in callgrind
  // (docs/reliability.md rule 25) -- separates the two cases.
  tandem::rc_map<std::string, std::uint64_t> word_map;
  churn("rc_map/churn_8b_value", word_map, [] { return std::uint64_t{7}; });
  tandem::rc_map<std::string, buffer_value> buffer_map;
  churn("rc_map/churn_1k_value", buffer_map, [] { return buffer_value(7); });
  return 0;
}
