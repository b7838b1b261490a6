// Differential fuzzer for tandem::rc_map.
//
// The input drives inserts, try_emplaces, gets, get_or_insert_withs, handle copies, moves,
// move-assignments and drops. The model keeps, per live entry, its value and the number of
// handles to it, and for every handle slot the key it refers to (or empty). Checked after every
// operation: size(), contains(), use_count() and every handle's key(), value and use_count()
// against the model; an entry exists exactly while a handle to it does; insert/try_emplace on
// an existing key leave the value untouched; get_or_insert_with calls `make` only when absent.
#include <tandem/rc_map.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "fuzz_input.hpp"

namespace {

using key_type = std::uint8_t;
using mapped_type = std::uint16_t;
using map_type = tandem::rc_map<key_type, mapped_type>;

// A failed check prints what failed and aborts; libFuzzer reports the crash and saves the input.
#define require(condition)                                                                       \
  ((condition) ? static_cast<void>(0)                                                            \
               : (std::fprintf(stderr, "fuzz check failed: %s at %s:%d\n", #condition, __FILE__, \
                               __LINE__),                                                        \
                  std::abort()))

struct model_entry {
  mapped_type value;
  std::size_t handles;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tandem::fuzz::input in(data, size);
  std::optional<map_type> map(std::in_place, std::size_t{1} + in.below(8));
  std::map<key_type, model_entry> model;
  constexpr std::size_t slot_count = 12;
  std::vector<map_type::handle> handles(slot_count);
  std::vector<std::optional<key_type>> slot_key(slot_count);

  // The model's side of releasing what slot s holds.
  auto drop_slot = [&](std::size_t s) {
    if (slot_key[s]) {
      auto it = model.find(*slot_key[s]);
      require(it != model.end());
      if (--it->second.handles == 0) model.erase(it);
      slot_key[s].reset();
    }
  };
  // Puts `h` (a new handle to key k) into slot s, releasing what s held.
  auto keep = [&](std::size_t s, map_type::handle h, key_type k) {
    model[k].handles +=
        1;  // `h` already counts: the entry stays even if slot s held the last other
    drop_slot(s);
    handles[s] = std::move(h);  // assignment releases the slot's old entry first
    slot_key[s] = k;
  };

  while (!in.empty()) {
    const std::size_t s = in.below(slot_count);
    const key_type k = static_cast<key_type>(in.below(16));
    switch (in.below(9)) {
      case 0: {
        const mapped_type v = in.u16();
        auto [h, inserted] = map->insert(k, v);
        const bool was_absent = model.find(k) == model.end();
        require(inserted == was_absent);
        if (was_absent) model[k] = model_entry{v, 0};
        require(*h == model[k].value);  // an existing entry's value is untouched
        keep(s, std::move(h), k);
        break;
      }
      case 1: {
        const mapped_type v = in.u16();
        auto [h, inserted] = map->try_emplace(k, v);
        const bool was_absent = model.find(k) == model.end();
        require(inserted == was_absent);
        if (was_absent) model[k] = model_entry{v, 0};
        require(*h == model[k].value);
        keep(s, std::move(h), k);
        break;
      }
      case 2: {
        std::optional<map_type::handle> h = map->get(k);
        require(h.has_value() == (model.find(k) != model.end()));
        if (h) keep(s, std::move(*h), k);
        break;
      }
      case 3: {
        const mapped_type v = in.u16();
        int calls = 0;
        map_type::handle h = map->get_or_insert_with(k, [&] {
          ++calls;
          return v;
        });
        const bool was_absent = model.find(k) == model.end();
        require(calls == (was_absent ? 1 : 0));
        if (was_absent) model[k] = model_entry{v, 0};
        keep(s, std::move(h), k);
        break;
      }
      case 4: {  // copy slot s into another slot
        const std::size_t to = in.below(slot_count);
        if (slot_key[s] && to != s) {
          const key_type key = *slot_key[s];
          keep(to, map_type::handle(handles[s]), key);
        }
        break;
      }
      case 5: {  // move slot s into another slot: no count change, source becomes empty
        const std::size_t to = in.below(slot_count);
        if (to != s) {
          drop_slot(to);
          handles[to] = std::move(handles[s]);
          slot_key[to] = slot_key[s];
          slot_key[s].reset();
          require(!handles[s]);
        }
        break;
      }
      case 6:  // drop
        drop_slot(s);
        handles[s] = map_type::handle();
        break;
      case 7: {  // self-assignment is harmless
        auto& h = handles[s];
        h = *&h;
        break;
      }
      case 8:  // destroy the map while handles live (only at the end of an input)
        if (in.below(8) == 0) {
          map.reset();
          handles.clear();  // handles outlive the map: destroying them must be safe
          return 0;
        }
        break;
      default:
        break;
    }
    // Check everything against the model.
    require(map->size() == model.size());
    require(map->empty() == model.empty());
    for (unsigned key = 0; key < 16; ++key) {
      const auto it = model.find(static_cast<key_type>(key));
      require(map->contains(static_cast<key_type>(key)) == (it != model.end()));
      require(map->use_count(static_cast<key_type>(key)) ==
              (it == model.end() ? 0 : it->second.handles));
    }
    for (std::size_t i = 0; i < slot_count; ++i) {
      require(static_cast<bool>(handles[i]) == slot_key[i].has_value());
      if (slot_key[i]) {
        const auto& entry = model.at(*slot_key[i]);
        require(handles[i].key() == *slot_key[i]);
        require(*handles[i] == entry.value);
        require(handles[i].use_count() == entry.handles);
      }
    }
    std::size_t visited = 0;
    map->for_each([&](const key_type& key, const mapped_type& value) {
      ++visited;
      const auto it = model.find(key);
      require(it != model.end() && it->second.value == value);
    });
    require(visited == model.size());
  }
  return 0;
}
