// Instructions per op of tandem::double_buffer_map's writer (issue 17, item 3): an insert/erase
// stream of uint64 keys, publishing every 64 ops, with no reader handle (so no epoch slot is
// claimed and a publish's fence is a plain full fence), against the same stream applied to two
// bare maps of the same type -- what keeping two copies costs at the least. The rest is the
// log, the replay's dispatch and the publish. For std::unordered_map,
// boost::unordered_flat_map and absl::flat_hash_map (each when installed, tandem_flat_maps).
// A program of its own: cases in one translation unit change each other's inlining (the
// guarded-find cases of perf_double_buffer_map.cpp measured 2 instructions more with these
// beside them).
#include <cstddef>
#include <unordered_map>
#include <utility>

#include "perf_harness.hpp"
#include "perf_inner_maps.hpp"

namespace {

using tandem::perf::key_count;
using tandem::perf::make_tandem_map;
using tandem::perf::u64;

// The writer's op stream: keys [N, N + 500) inserted in order, then erased in order, and so
// on (a period of 1,000 ops: K = 2,000 and 2K hold whole periods). Each call does the next op.
struct write_stream {
  u64 next = 0;
  template <class Apply>
  void step(Apply&& apply) {
    constexpr u64 window = 500;
    const u64 key = key_count + next % window;
    apply(key, (next / window) % 2 == 0);
    ++next;
  }
};

template <class Map>
void measure_writer(const tandem::perf::run_options& options, const char* baseline_name,
                    const char* writer_name) {
  Map first;
  Map second;
  for (u64 k = 0; k < key_count; ++k) {
    first.try_emplace(k, 2 * k);
    second.try_emplace(k, 2 * k);
  }
  write_stream bare_stream;
  tandem::perf::measure(options, baseline_name, [&](std::size_t) {
    bare_stream.step([&](u64 key, bool insert) {
      if (insert) {
        first.try_emplace(key, key);
        second.try_emplace(key, key);
      } else {
        first.erase(key);
        second.erase(key);
      }
    });
  });

  {
    auto pair = make_tandem_map<Map>();
    auto& writer = pair.first;
    for (u64 k = 0; k < key_count; ++k) writer.insert(k, 2 * k);
    writer.publish();
    writer.erase(~u64{0});  // a no-op batch: both copies hold the keys
    writer.publish();
    { const auto gone = std::move(pair.second); }  // no reader handle: no slot claimed
    write_stream stream;
    std::size_t since_publish = 0;
    tandem::perf::measure(options, writer_name, [&](std::size_t) {
      stream.step([&](u64 key, bool insert) {
        if (insert) {
          writer.insert(key, key);
        } else {
          writer.erase(key);
        }
      });
      if (++since_publish == 64) {
        writer.publish();
        since_publish = 0;
      }
    });
  }
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = tandem::perf::parse(argc, argv);
  measure_writer<std::unordered_map<u64, u64>>(options, "double_buffer_map/two_bare_maps/map:std",
                                               "double_buffer_map/writer/map:std");
#if TANDEM_HAVE_BOOST_FLAT_MAP
  measure_writer<boost::unordered_flat_map<u64, u64>>(
      options, "double_buffer_map/two_bare_maps/map:boost_flat",
      "double_buffer_map/writer/map:boost_flat");
#else
  tandem::perf::skip(
      options,
      {"double_buffer_map/two_bare_maps/map:boost_flat", "double_buffer_map/writer/map:boost_flat"},
      "boost::unordered_flat_map not found");
#endif
#if TANDEM_HAVE_ABSL_FLAT_HASH_MAP
  measure_writer<absl::flat_hash_map<u64, u64>>(options,
                                                "double_buffer_map/two_bare_maps/map:absl_flat",
                                                "double_buffer_map/writer/map:absl_flat");
#else
  tandem::perf::skip(
      options,
      {"double_buffer_map/two_bare_maps/map:absl_flat", "double_buffer_map/writer/map:absl_flat"},
      "absl::flat_hash_map not found");
#endif
  return 0;
}
