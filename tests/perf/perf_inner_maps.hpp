// tests/perf/perf_inner_maps.hpp -- what the double_buffer_map perf programs share: the inner
// maps they measure (std::unordered_map always; boost::unordered_flat_map and
// absl::flat_hash_map when the build found them, tandem_flat_maps), the uint64 keys, N, and
// how a tandem map over each inner map is made.
#pragma once

#include <tandem/double_buffer_map.hpp>

#include <cstdint>
#include <type_traits>
#include <unordered_map>

#if TANDEM_HAVE_BOOST_FLAT_MAP
#include <boost/unordered/unordered_flat_map.hpp>
#endif
#if TANDEM_HAVE_ABSL_FLAT_HASH_MAP
#include <absl/container/flat_hash_map.h>
#endif

namespace tandem::perf {

using u64 = std::uint64_t;
inline constexpr u64 key_count = 1000;  // N: entries every map holds before a case runs

// Whether double_buffer_map takes the inner map as its fifth parameter (issue 17, item 1).
template <class Map>
concept double_buffer_map_takes_map = requires {
  typename tandem::double_buffer_map<typename Map::key_type, typename Map::mapped_type,
                                     typename Map::hasher, typename Map::key_equal, Map>;
};

// An empty tandem map (writer, reader) over Map, uint64 -> uint64.
template <class Map>
auto make_tandem_map() {
  if constexpr (std::is_same_v<Map, std::unordered_map<u64, u64>>) {
    return tandem::make_double_buffer_map<u64, u64>();
  } else {
    return tandem::double_buffer_map<u64, u64, typename Map::hasher, typename Map::key_equal,
                                     Map>::create();
  }
}

}  // namespace tandem::perf
