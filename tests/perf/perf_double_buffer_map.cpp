// Instructions per guarded lookup of tandem::double_buffer_map (one reader.read(), one find,
// the guard released), against the same inner map's bare find in the same program: N = 1,000
// uint64 keys inserted in the same order, every lookup hits, keys from a fixed sequence.
// Budget (issue 17, item 2): guarded <= bare + 8, for std::unordered_map,
// boost::unordered_flat_map and absl::flat_hash_map (each when installed, tandem_flat_maps).
#include <cstddef>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "perf_harness.hpp"
#include "perf_inner_maps.hpp"

namespace {

using tandem::perf::double_buffer_map_takes_map;
using tandem::perf::key_count;
using tandem::perf::make_tandem_map;
using tandem::perf::u64;

template <class Map>
void measure_map(const tandem::perf::run_options& options, const char* bare_name,
                 const char* guarded_name) {
  const std::vector<std::size_t> sequence =
      tandem::perf::index_sequence(key_count, tandem::perf::sequence_length);
  constexpr std::size_t mask = tandem::perf::sequence_length - 1;

  Map bare;
  for (u64 k = 0; k < key_count; ++k) bare.try_emplace(k, 2 * k);
  tandem::perf::measure(options, bare_name, [&](std::size_t i) TANDEM_PERF_INLINE {
    const auto it = bare.find(static_cast<u64>(sequence[i & mask]));
    tandem::perf::keep(it->second);
  });

  if constexpr (std::is_same_v<Map, std::unordered_map<u64, u64>> ||
                double_buffer_map_takes_map<Map>) {
    auto pair = make_tandem_map<Map>();  // not a structured binding: clang 14 cannot capture it
    auto& writer = pair.first;
    auto& reader = pair.second;
    for (u64 k = 0; k < key_count; ++k) writer.insert(k, 2 * k);
    writer.publish();
    tandem::perf::measure(options, guarded_name, [&](std::size_t i) TANDEM_PERF_INLINE {
      const auto guard = reader.read();
      const u64* value = guard.find(static_cast<u64>(sequence[i & mask]));
      tandem::perf::keep(*value);
    });
  } else {
    tandem::perf::skip(options, guarded_name,
                       "double_buffer_map has no inner-map template parameter in these headers");
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = tandem::perf::parse(argc, argv);
  measure_map<std::unordered_map<u64, u64>>(options, "double_buffer_map/bare_find/map:std",
                                            "double_buffer_map/guarded_find/map:std");
#if TANDEM_HAVE_BOOST_FLAT_MAP
  measure_map<boost::unordered_flat_map<u64, u64>>(options,
                                                   "double_buffer_map/bare_find/map:boost_flat",
                                                   "double_buffer_map/guarded_find/map:boost_flat");
#else
  tandem::perf::skip(options,
                     {"double_buffer_map/bare_find/map:boost_flat",
                      "double_buffer_map/guarded_find/map:boost_flat"},
                     "boost::unordered_flat_map not found");
#endif
#if TANDEM_HAVE_ABSL_FLAT_HASH_MAP
  measure_map<absl::flat_hash_map<u64, u64>>(options, "double_buffer_map/bare_find/map:absl_flat",
                                             "double_buffer_map/guarded_find/map:absl_flat");
#else
  tandem::perf::skip(
      options,
      {"double_buffer_map/bare_find/map:absl_flat", "double_buffer_map/guarded_find/map:absl_flat"},
      "absl::flat_hash_map not found");
#endif
  return 0;
}
