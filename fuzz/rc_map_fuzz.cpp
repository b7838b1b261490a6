// Differential fuzzer for tandem::rc_map.
//
// The input's first byte picks the types: uint8_t keys with uint16_t values, or heap-owning
// std::string keys and values (fuzz_input.hpp: a moved-from one is "" and no model key). Then
// it drives inserts, try_emplaces, gets, get_or_insert_withs, handle copies, moves,
// self-assignments and drops, lookups, visits, weak handles (made from handle slots, locked,
// also after the map is gone), and "fail the next allocation": the next operation runs
// with its Nth allocation throwing std::bad_alloc (tests/support/failing_new.hpp).
//
// The model keeps, per live entry, its value and the number of handles to it, and for every
// handle slot the key it refers to (or empty). Each entry also has a generation (a new one per
// creation), and each weak slot the key and generation it was made from: lock() must return
// that entry exactly while it is live, and an empty handle once it was erased (even if the key
// was inserted again). visit must find exactly the model's entries, with their values. Checked
// after every operation: size(), contains(), use_count(), for_each and every handle's key(), value
// and use_count() against the model; an entry exists exactly while a handle to it does;
// insert/try_emplace on an existing key leave the value untouched; get_or_insert_with calls `make`
// only when absent. Exception guarantees (docs/reliability.md): insert, try_emplace and
// get_or_insert_with are strong -- a std::bad_alloc leaves no entry, changes no count and no handle
// slot, so the key is still insertable with its full value (a key or value moved from before the
// failure would show as "" later); get, contains, use_count, size and handle copies allocate
// nothing, so an armed failure never reaches them.
#include <tandem/rc_map.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "failing_new.hpp"
#include "fuzz_input.hpp"

namespace {

using tandem::fuzz::heap_string;
using tandem::test::with_allocation_failure;

struct small_types {
  using key_type = std::uint8_t;
  using mapped_type = std::uint16_t;
  static key_type key(unsigned id) { return static_cast<key_type>(id); }
  static mapped_type value(unsigned id) { return static_cast<mapped_type>(id); }
};

struct string_types {
  using key_type = std::string;
  using mapped_type = std::string;
  static key_type key(unsigned id) { return heap_string("rc_map_key", id); }
  static mapped_type value(unsigned id) { return heap_string("rc_map_value", id); }
};

template <class Types>
class fuzzer {
  using key_type = typename Types::key_type;
  using mapped_type = typename Types::mapped_type;
  using map_type = tandem::rc_map<key_type, mapped_type>;
  using handle = typename map_type::handle;
  static constexpr std::size_t slot_count = 12;
  static constexpr unsigned key_count = 16;

  struct model_entry {
    mapped_type value;
    std::size_t handles = 0;
    std::uint64_t generation = 0;
  };
  using weak_handle = typename map_type::weak_handle;
  static constexpr std::size_t weak_slot_count = 4;
  struct weak_target {
    unsigned key;
    std::uint64_t generation;
  };

 public:
  explicit fuzzer(tandem::fuzz::input& in)
      : in_(in), map_(std::in_place, std::size_t{1} + in.below(8)) {
    for (unsigned id = 0; id < key_count; ++id) keys_.push_back(Types::key(id));
    seen_.reserve(key_count);  // case 15 records into it inside an armed call
  }

  void run() {
    while (!in_.empty()) {
      if (!step()) return;
      check();
    }
  }

 private:
  // Runs one library call with the armed allocation failure (if any); true if it threw
  // std::bad_alloc. The failure is armed for one operation only.
  template <class F>
  bool armed(F&& f) {
    return with_allocation_failure(std::exchange(fail_at_, 0), f);
  }

  // The model's side of releasing what slot s holds.
  void drop_slot(std::size_t s) {
    if (slot_key_[s]) {
      auto it = model_.find(*slot_key_[s]);
      require(it != model_.end());
      if (--it->second.handles == 0) model_.erase(it);
      slot_key_[s].reset();
    }
  }

  // Puts `h` (a new handle to key id k) into slot s, releasing what s held.
  void keep(std::size_t s, handle h, unsigned k) {
    model_[k].handles += 1;  // `h` already counts: the entry stays even if s held the last other
    drop_slot(s);
    handles_[s] = std::move(h);  // assignment releases the slot's old entry first
    slot_key_[s] = k;
  }

  // After an insertion that did not throw: `inserted` must say whether the key was absent,
  // and the entry's value must be the model's.
  void inserted(std::size_t s, handle h, unsigned k, bool was_inserted, const mapped_type& v) {
    const bool was_absent = model_.find(k) == model_.end();
    require(was_inserted == was_absent);
    if (was_absent) model_[k] = model_entry{v, 0, ++generations_};
    require(*h == model_[k].value);  // an existing entry's value is untouched
    require(h.key() == keys_[k]);
    keep(s, std::move(h), k);
  }

  // False once the map is gone (the input ends there).
  bool step() {
    const std::size_t s = in_.below(slot_count);
    const unsigned k = in_.below(key_count);
    switch (in_.below(16)) {
      case 0: {
        const mapped_type v = Types::value(in_.u16());
        std::pair<handle, bool> result;
        if (!armed([&] { result = map_->insert(keys_[k], v); })) {
          inserted(s, std::move(result.first), k, result.second, v);
        }
        break;
      }
      case 1: {
        const mapped_type v = Types::value(in_.u16());
        std::pair<handle, bool> result;
        if (!armed([&] { result = map_->try_emplace(keys_[k], v); })) {
          inserted(s, std::move(result.first), k, result.second, v);
        }
        break;
      }
      case 2: {
        std::optional<handle> h;
        require(!armed([&] { h = map_->get(keys_[k]); }));  // allocates nothing
        require(h.has_value() == (model_.find(k) != model_.end()));
        if (h) keep(s, std::move(*h), k);
        break;
      }
      case 3: {
        const mapped_type v = Types::value(in_.u16());
        int calls = 0;
        handle h;
        const bool was_absent = model_.find(k) == model_.end();
        if (!armed([&] {
              h = map_->get_or_insert_with(keys_[k], [&] {
                ++calls;
                return v;  // a copy: in the string mode it allocates, and may fail
              });
            })) {
          require(calls == (was_absent ? 1 : 0));
          if (was_absent) model_[k] = model_entry{v, 0, ++generations_};
          require(h.key() == keys_[k]);
          keep(s, std::move(h), k);
        } else {
          require(calls <= 1);
        }
        break;
      }
      case 4: {  // copy slot s into another slot: noexcept, allocates nothing
        const std::size_t to = in_.below(slot_count);
        if (slot_key_[s] && to != s) {
          const unsigned key = *slot_key_[s];
          std::optional<handle> copy;
          require(!armed([&] { copy.emplace(handles_[s]); }));
          keep(to, std::move(*copy), key);
        }
        break;
      }
      case 5: {  // move slot s into another slot: no count change, source becomes empty
        const std::size_t to = in_.below(slot_count);
        if (to != s) {
          drop_slot(to);
          handles_[to] = std::move(handles_[s]);
          slot_key_[to] = slot_key_[s];
          slot_key_[s].reset();
          require(!handles_[s]);
        }
        break;
      }
      case 6:  // drop
        drop_slot(s);
        handles_[s] = handle();
        break;
      case 7: {  // self-assignment is harmless
        auto& h = handles_[s];
        h = *&h;
        break;
      }
      case 8:  // destroy the map while handles live (only at the end of an input)
        if (in_.below(8) == 0) {
          map_.reset();
          check_weak_locks();  // entries held by handles are still live after the map
          handles_.clear();    // handles outlive the map: destroying them must be safe
          model_.clear();
          check_weak_locks();  // now every entry is gone: nodes must still be valid to ask
          return false;
        }
        break;
      case 9: {  // lookups allocate nothing, so an armed failure never reaches them
        bool present = false;
        std::size_t uses = 0;
        require(!armed([&] {
          present = map_->contains(keys_[k]);
          uses = map_->use_count(keys_[k]);
        }));
        const auto it = model_.find(k);
        require(present == (it != model_.end()));
        require(uses == (it == model_.end() ? 0 : it->second.handles));
        break;
      }
      case 10:  // the next operation runs with its Nth allocation failing
        fail_at_ = std::size_t{1} + in_.below(16);
        break;
      case 11: {  // a weak handle from slot s (an empty slot gives an empty weak handle)
        const std::size_t w = in_.below(weak_slot_count);
        require(!armed([&] { weak_[w] = weak_handle(handles_[s]); }));  // allocates nothing
        weak_of_[w].reset();
        if (slot_key_[s])
          weak_of_[w] = weak_target{*slot_key_[s], model_.at(*slot_key_[s]).generation};
        break;
      }
      case 12: {  // lock a weak handle into slot s: exactly while its entry is live
        const std::size_t w = in_.below(weak_slot_count);
        handle h;
        require(!armed([&] { h = weak_[w].lock(); }));  // allocates nothing
        const std::optional<unsigned> expected = weak_live(w);
        require(static_cast<bool>(h) == expected.has_value());
        if (h) {
          require(h.key() == keys_[*expected]);
          keep(s, std::move(h), *expected);
        }
        break;
      }
      case 13: {  // visit: finds exactly the model's entries, creates no handle
        bool called = false;
        bool found = false;
        require(!armed([&] {
          found = map_->visit(keys_[k], [&](const mapped_type& v) {
            called = true;
            const auto it = model_.find(k);
            require(it != model_.end() && v == it->second.value);
          });
        }));
        require(found == called);
        require(found == (model_.find(k) != model_.end()));
        break;  // check() then compares every use_count: visit must not have changed one
      }
      case 14: {  // reset_if on slot s: f sees the model's value; true releases, false keeps
        if (!slot_key_[s]) break;  // an empty handle throws std::logic_error (unit-tested)
        const bool release = in_.below(2) == 0;
        const unsigned held = *slot_key_[s];
        bool saw_model_value = false;
        bool released = false;
        require(!armed([&] {  // allocates nothing
          released = handles_[s].reset_if([&](const mapped_type& v) noexcept {
            saw_model_value = v == model_.at(held).value;
            return release;
          });
        }));
        require(saw_model_value);
        require(released == release);
        if (released) {
          require(!handles_[s]);
          drop_slot(s);  // the model's release: the entry goes with its last handle
        } else {
          require(static_cast<bool>(handles_[s]) && handles_[s].key() == keys_[held]);
        }
        break;  // check() then compares every use_count and the map's size
      }
      case 15: {  // visit_all: every live entry once, with its value, and nothing else
        std::map<unsigned, int> visits;
        bool all_known = true;
        require(!armed([&] {  // allocates nothing (the map below is filled after the call)
          map_->visit_all([&](const key_type& key, const mapped_type& v) {
            const auto id = std::find(keys_.begin(), keys_.end(), key) - keys_.begin();
            const auto it = model_.find(static_cast<unsigned>(id));
            if (it == model_.end() || !(v == it->second.value)) all_known = false;
            seen_.push_back(static_cast<unsigned>(id));
          });
        }));
        for (const unsigned id : seen_) ++visits[id];
        seen_.clear();
        require(all_known);
        require(visits.size() == model_.size());
        for (const auto& [id, count] : visits) require(count == 1 && model_.count(id) == 1);
        break;
      }
      default:
        break;
    }
    return true;
  }

  // The key of weak slot w's entry if that entry (same generation) is live, else nothing.
  std::optional<unsigned> weak_live(std::size_t w) const {
    if (!weak_of_[w]) return std::nullopt;
    const auto it = model_.find(weak_of_[w]->key);
    if (it == model_.end() || it->second.generation != weak_of_[w]->generation) return std::nullopt;
    return weak_of_[w]->key;
  }

  void check_weak_locks() {
    for (std::size_t w = 0; w < weak_slot_count; ++w) {
      const handle h = weak_[w].lock();
      require(static_cast<bool>(h) == weak_live(w).has_value());
    }
  }

  void check() {
    require(map_->size() == model_.size());
    require(map_->empty() == model_.empty());
    for (unsigned key = 0; key < key_count; ++key) {
      const auto it = model_.find(key);
      require(map_->contains(keys_[key]) == (it != model_.end()));
      require(map_->use_count(keys_[key]) == (it == model_.end() ? 0 : it->second.handles));
    }
    for (std::size_t i = 0; i < slot_count; ++i) {
      require(static_cast<bool>(handles_[i]) == slot_key_[i].has_value());
      if (slot_key_[i]) {
        const auto& entry = model_.at(*slot_key_[i]);
        require(handles_[i].key() == keys_[*slot_key_[i]]);
        require(*handles_[i] == entry.value);
        require(handles_[i].use_count() == entry.handles);
      }
    }
    std::size_t visited = 0;
    map_->for_each([&](const key_type& key, const mapped_type& value) {
      ++visited;
      bool found = false;
      for (const auto& [id, entry] : model_) {
        if (keys_[id] == key) {
          found = true;
          require(entry.value == value);
        }
      }
      require(found);
    });
    require(visited == model_.size());
  }

  tandem::fuzz::input& in_;
  std::optional<map_type> map_;
  std::vector<key_type> keys_;  // key id -> key
  std::vector<unsigned> seen_;  // visit_all's visits (case 15), capacity key_count
  std::map<unsigned, model_entry> model_;
  std::vector<handle> handles_ = std::vector<handle>(slot_count);
  std::vector<std::optional<unsigned>> slot_key_ = std::vector<std::optional<unsigned>>(slot_count);
  std::size_t fail_at_ = 0;  // armed failure for the next op
  std::uint64_t generations_ = 0;
  std::vector<weak_handle> weak_ = std::vector<weak_handle>(weak_slot_count);
  std::vector<std::optional<weak_target>> weak_of_ =
      std::vector<std::optional<weak_target>>(weak_slot_count);
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tandem::fuzz::input in(data, size);
  if (in.below(2) == 0) {
    fuzzer<small_types>(in).run();
  } else {
    fuzzer<string_types>(in).run();
  }
  return 0;
}
