// Instructions per rc_map handle copy (copy-construct a handle from a live one, then destroy
// the copy, which is not the last handle), against the same with a std::shared_ptr in the same
// program (copy: an atomic increment; destroy: an atomic decrement that is not the last).
#include <tandem/rc_map.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

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
  return 0;
}
