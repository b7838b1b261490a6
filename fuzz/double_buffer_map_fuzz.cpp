// Differential fuzzer for tandem::double_buffer_map.
//
// The input drives a sequence of writer operations, publishes, reader creations and drops,
// guards taken and held across publishes, and reads. The model is two plain maps: `staged`
// (what the next publish will show) and `published` (what readers must see now). Checked:
//  - every read through every reader equals `published` (find, contains, size, iteration):
//    unpublished ops are invisible, a publish shows all of its batch;
//  - a guard is one snapshot for its whole life: it keeps equalling the published state of
//    the moment it was taken, across later publishes;
//  - pending() counts the ops pushed since the last successful publish;
//  - try_publish() returns false only while a guard taken before the previous publish is
//    alive, and then changes nothing.
// All of this runs on one thread, so a publish that would have to wait is never called while
// such a guard is alive (try_publish is used instead).
#include <tandem/double_buffer_map.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "fuzz_input.hpp"

namespace {

using key_type = std::uint8_t;
using mapped_type = std::uint16_t;
using model_map = std::map<key_type, mapped_type>;
using map_type = tandem::double_buffer_map<key_type, mapped_type>;

// A failed check prints what failed and aborts; libFuzzer reports the crash and saves the input.
#define require(condition)                                                                       \
  ((condition) ? static_cast<void>(0)                                                            \
               : (std::fprintf(stderr, "fuzz check failed: %s at %s:%d\n", #condition, __FILE__, \
                               __LINE__),                                                        \
                  std::abort()))

// Everything a guard shows, as an ordered map.
template <class Guard>
model_map contents(const Guard& guard) {
  model_map seen;
  std::size_t count = 0;
  for (const auto& [k, v] : guard) {
    require(seen.emplace(k, v).second);  // no key twice
    ++count;
  }
  require(count == guard.size());
  require(guard.empty() == (count == 0));
  return seen;
}

template <class Guard>
void check_guard(const Guard& guard, const model_map& expected) {
  require(contents(guard) == expected);
  for (unsigned k = 0; k < 256; k += 17) {  // a sample of present and absent keys
    const auto key = static_cast<key_type>(k);
    const mapped_type* found = guard.find(key);
    const auto it = expected.find(key);
    require((found != nullptr) == (it != expected.end()));
    if (found != nullptr) require(*found == it->second);
    require(guard.contains(key) == (it != expected.end()));
  }
}

struct held_guard {
  std::size_t reader_index;
  std::unique_ptr<map_type::read_guard> guard;
  model_map snapshot;
  std::uint64_t publish_generation;  // how many publishes had succeeded when it was taken
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tandem::fuzz::input in(data, size);
  auto [writer, first_reader] = tandem::make_double_buffer_map<key_type, mapped_type>();
  std::vector<std::optional<map_type::reader>> readers;
  readers.reserve(9);  // never reallocates: moving a reader with a live guard is a misuse
  readers.emplace_back(std::move(first_reader));
  std::vector<held_guard> guards;
  model_map staged;
  model_map published;
  std::size_t pending = 0;
  std::uint64_t generation = 0;

  // What reader i sees now: nested guards on one reader share the outermost guard's snapshot,
  // so while reader i holds a guard, everything read through it is that snapshot.
  auto view_of = [&](std::size_t i) -> const model_map& {
    for (const auto& g : guards) {
      if (g.reader_index == i) return g.snapshot;
    }
    return published;
  };

  auto blocks_publish = [&] {
    // A guard taken before the last successful publish pins the copy the next publish writes.
    for (const auto& g : guards) {
      if (g.publish_generation < generation) return true;
    }
    return false;
  };

  while (!in.empty()) {
    switch (in.below(13)) {
      case 0: {  // insert: no overwrite
        const key_type k = in.byte();
        const mapped_type v = in.u16();
        writer.insert(k, v);
        staged.emplace(k, v);
        ++pending;
        break;
      }
      case 1: {
        const key_type k = in.byte();
        const mapped_type v = in.u16();
        writer.insert_or_assign(k, v);
        staged.insert_or_assign(k, v);
        ++pending;
        break;
      }
      case 2: {
        const key_type k = in.byte();
        writer.erase(k);
        staged.erase(k);
        ++pending;
        break;
      }
      case 3: {  // erase_if with a predicate that must run once per element per publish
        const unsigned modulus = in.below(7) + 1U;
        const unsigned remainder = in.below(static_cast<std::uint8_t>(modulus));
        writer.erase_if([modulus, remainder](const key_type& k, const mapped_type& v) {
          return (static_cast<unsigned>(k) + v) % modulus == remainder;
        });
        std::erase_if(staged, [&](const auto& kv) {
          return (static_cast<unsigned>(kv.first) + kv.second) % modulus == remainder;
        });
        ++pending;
        break;
      }
      case 4:
        writer.clear();
        staged.clear();
        ++pending;
        break;
      case 5:  // publish; a blocking one only when it cannot block this (single) thread
        if (!blocks_publish()) {
          writer.publish();
          if (pending != 0) ++generation;  // with nothing pending, publish() does nothing
          published = staged;
          pending = 0;
          break;
        }
        [[fallthrough]];
      case 6: {
        // try_publish fails, changing nothing, exactly when there is something to publish and
        // a guard from before the last publish still pins the copy it would write.
        const bool expected_success = pending == 0 || !blocks_publish();
        const bool done = writer.try_publish();
        require(done == expected_success);
        if (done) {
          if (pending != 0) ++generation;
          published = staged;
          pending = 0;
        }
        break;
      }
      case 7:  // a new reader from the writer, or a copy of an existing one
        if (readers.size() < 8) {
          const std::size_t i = in.below(static_cast<std::uint8_t>(readers.size() + 1));
          if (i == readers.size() || !readers[i]) {
            readers.emplace_back(writer.reader());
          } else {
            readers.emplace_back(*readers[i]);
          }
        }
        break;
      case 8: {  // drop a reader that holds no guard
        const std::size_t i = in.below(static_cast<std::uint8_t>(readers.size()));
        bool holds = false;
        for (const auto& g : guards) holds = holds || g.reader_index == i;
        if (!holds) readers[i].reset();
        break;
      }
      case 9: {  // take a guard and keep it
        const std::size_t i = in.below(static_cast<std::uint8_t>(readers.size()));
        if (readers[i] && guards.size() < 4) {
          const model_map expected = view_of(i);
          guards.push_back(held_guard{i, std::make_unique<map_type::read_guard>(readers[i]->read()),
                                      expected, generation});
          check_guard(*guards.back().guard, expected);
        }
        break;
      }
      case 10:  // release the newest guard (guards on one reader nest: release in reverse)
        if (!guards.empty()) guards.pop_back();
        break;
      case 11: {  // read through a reader's convenience calls
        const std::size_t i = in.below(static_cast<std::uint8_t>(readers.size()));
        if (readers[i]) {
          const key_type k = in.byte();
          const model_map& view = view_of(i);
          const auto it = view.find(k);
          const std::optional<mapped_type> got = readers[i]->get(k);
          require(got.has_value() == (it != view.end()));
          if (got) require(*got == it->second);
          require(readers[i]->contains(k) == (it != view.end()));
          require(readers[i]->size() == view.size());
          check_guard(readers[i]->read(), view);
        }
        break;
      }
      default:
        break;
    }
    require(writer.pending() == pending);
    for (const auto& g : guards) check_guard(*g.guard, g.snapshot);
  }
  guards.clear();
  for (auto& r : readers) {
    if (r) check_guard(r->read(), published);
  }
  return 0;
}
