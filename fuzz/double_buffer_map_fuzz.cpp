// Differential fuzzer for tandem::double_buffer_map.
//
// The input's first byte picks the types (bit 0): uint8_t keys with uint16_t values, or heap-
// owning std::string keys and values (fuzz_input.hpp: a moved-from one is "" and no model key);
// and the inner map (byte % 6 >= 4, when Boost >= 1.81 is installed: a third of the inputs):
// std::unordered_map (node-handle replay) or boost::unordered_flat_map (no node handles: the
// replay moves the logged key and value in). The committed seed replay_after_failed_rehash
// (byte 79) stays on std::unordered_map; replay_after_failed_growth_boost_flat (83) fails
// within one run when the boost path moves the logged key and value out before its fallible
// step (found by this fuzzer from the seed corpus in ~16,000 runs with that bug planted). Then
// it drives a sequence of writer operations, publishes, reader creations and drops, guards
// taken and held across publishes, reads, and "fail the next allocation": the next operation
// runs with its Nth allocation throwing std::bad_alloc (tests/support/failing_new.hpp).
//
// The model is the published map plus the log of ops pushed since the last publish. Checked:
//  - every read through every reader equals the published map (find, contains, size,
//    iteration): unpublished ops are invisible, a publish shows all of its batch; after each
//    publish a fresh reader must see exactly the model's result;
//  - a guard is one snapshot for its whole life: it keeps equalling the published state of
//    the moment it was taken, across later publishes;
//  - pending() counts the ops pushed since the last successful publish;
//  - try_publish() returns false only while a guard taken before the previous publish is
//    alive, and then changes nothing.
//  - exception guarantees (docs/reliability.md): a push that throws logs nothing; a publish
//    that throws publishes nothing; if it threw replaying the previous batch (W3) every op stays
//    pending and the next publish retries the replay; if it threw applying a pending op for
//    the first time (W4) that op is dropped (pending() falls by one) and the others stay. The
//    model cannot see which op was dropped, so it keeps every candidate log (one per op that
//    may allocate when first applied) and the next successful publish must show one of their
//    results; from then on the model is exact again. A reader copy that throws adds nothing.
// Both applications of every op allocate in the string mode (node, key, value, rehash), so
// the failure reaches the first application, the replay on the other copy, and each publish
// step. All of this runs on one thread, so a publish that would have to wait is never called
// while such a guard is alive (try_publish is used instead).
#include <tandem/double_buffer_map.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#if __has_include(<boost/unordered/unordered_flat_map.hpp>)
#include <boost/unordered/unordered_flat_map.hpp>
#define TANDEM_FUZZ_HAVE_BOOST_FLAT 1
#endif

#include "failing_new.hpp"
#include "fuzz_input.hpp"

namespace {

using tandem::fuzz::heap_string;
using tandem::fuzz::heap_string_id;
using tandem::test::with_allocation_failure;

struct small_types {
  using key_type = std::uint8_t;
  using mapped_type = std::uint16_t;
  static key_type key(unsigned id) { return static_cast<key_type>(id); }
  static mapped_type value(unsigned id) { return static_cast<mapped_type>(id); }
  static unsigned key_id(const key_type& k) { return k; }
  static unsigned value_id(const mapped_type& v) { return v; }
};

struct string_types {
  using key_type = std::string;
  using mapped_type = std::string;
  static key_type key(unsigned id) { return heap_string("double_buffer_key", id); }
  static mapped_type value(unsigned id) { return heap_string("double_buffer_value", id); }
  static unsigned key_id(const key_type& k) { return heap_string_id("double_buffer_key", k); }
  static unsigned value_id(const mapped_type& v) {
    return heap_string_id("double_buffer_value", v);
  }
};

template <class Types, template <class...> class Inner = std::unordered_map>
class fuzzer {
  using key_type = typename Types::key_type;
  using mapped_type = typename Types::mapped_type;
  using model_map = std::map<key_type, mapped_type>;
  using map_type =
      tandem::double_buffer_map_over<Inner<key_type, mapped_type, tandem::default_hash<key_type>,
                                           tandem::default_key_equal<key_type>>>;

  struct model_op {
    enum kind_type { insert, insert_or_assign, erase, erase_if, clear } kind;
    key_type key{};
    mapped_type value{};
    unsigned modulus = 1;
    unsigned remainder = 0;

    // Whether its first application may throw std::bad_alloc (then publish drops it).
    [[nodiscard]] bool may_fail_first() const {
      return kind == insert || kind == insert_or_assign || kind == erase_if;
    }
  };

  static bool selected(const key_type& k, const mapped_type& v, unsigned modulus,
                       unsigned remainder) {
    return (Types::key_id(k) + Types::value_id(v)) % modulus == remainder;
  }

  static void apply(model_map& map, const model_op& op) {
    switch (op.kind) {
      case model_op::insert:
        map.emplace(op.key, op.value);
        break;
      case model_op::insert_or_assign:
        map.insert_or_assign(op.key, op.value);
        break;
      case model_op::erase:
        map.erase(op.key);
        break;
      case model_op::erase_if:
        std::erase_if(map, [&](const auto& kv) {
          return selected(kv.first, kv.second, op.modulus, op.remainder);
        });
        break;
      case model_op::clear:
        map.clear();
        break;
    }
  }

  // Everything a guard shows, as an ordered map.
  template <class Guard>
  static model_map contents(const Guard& guard) {
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
  static void check_guard(const Guard& guard, const model_map& expected) {
    require(contents(guard) == expected);
    for (unsigned id = 0; id < 256; id += 17) {  // a sample of present and absent keys
      const key_type key = Types::key(id);
      const mapped_type* found = guard.find(key);
      const auto it = expected.find(key);
      require((found != nullptr) == (it != expected.end()));
      if (found != nullptr) require(*found == it->second);
      require(guard.contains(key) == (it != expected.end()));
    }
  }

  struct held_guard {
    std::size_t reader_index;
    std::unique_ptr<typename map_type::read_guard> guard;
    model_map snapshot;
    std::uint64_t publish_generation;  // how many publishes had succeeded when it was taken
  };

 public:
  explicit fuzzer(tandem::fuzz::input& in) : in_(in) {
    readers_.reserve(9);  // never reallocates: moving a reader with a live guard is a misuse
    readers_.emplace_back(std::move(made_.second));
    candidates_.insert(std::vector<std::size_t>{});
  }

  void run() {
    while (!in_.empty()) {
      step();
      require(writer().pending() == pending());
      for (const auto& g : guards_) check_guard(*g.guard, g.snapshot);
    }
    guards_.clear();
    for (auto& r : readers_) {
      if (r) check_guard(r->read(), published_);
    }
  }

 private:
  typename map_type::writer& writer() { return made_.first; }

  [[nodiscard]] std::size_t pending() const { return candidates_.begin()->size(); }

  // Runs one library call with the armed allocation failure (if any); true if it threw
  // std::bad_alloc. The failure is armed for one operation only.
  template <class F>
  bool armed(F&& f) {
    return with_allocation_failure(std::exchange(fail_at_, 0), f);
  }

  // What reader i sees now: nested guards on one reader share the outermost guard's snapshot,
  // so while reader i holds a guard, everything read through it is that snapshot.
  const model_map& view_of(std::size_t i) const {
    for (const auto& g : guards_) {
      if (g.reader_index == i) return g.snapshot;
    }
    return published_;
  }

  // A guard taken before the last successful publish pins the copy the next publish writes.
  [[nodiscard]] bool blocks_publish() const {
    for (const auto& g : guards_) {
      if (g.publish_generation < generation_) return true;
    }
    return false;
  }

  // A push of `op` through `push`: logged unless it threw (strong guarantee).
  template <class Push>
  void push(const model_op& op, Push&& do_push) {
    if (armed(do_push)) return;
    log_.push_back(op);
    std::set<std::vector<std::size_t>> extended;
    for (auto candidate : candidates_) {
      candidate.push_back(log_.size() - 1);
      extended.insert(std::move(candidate));
    }
    candidates_ = std::move(extended);
  }

  // After a publish attempt. `threw`: std::bad_alloc left it; otherwise it published (or had
  // nothing to publish).
  void published_or_threw(bool threw, std::size_t pending_before) {
    if (threw) {
      const std::size_t now = writer().pending();
      if (now == pending_before) return;   // the replay (W3) failed: every op stays pending
      require(now + 1 == pending_before);  // W4 dropped exactly one op
      std::set<std::vector<std::size_t>> dropped;
      for (const auto& candidate : candidates_) {
        for (std::size_t i = 0; i < candidate.size(); ++i) {
          if (!log_[candidate[i]].may_fail_first()) continue;
          auto fewer = candidate;
          fewer.erase(fewer.begin() + static_cast<std::ptrdiff_t>(i));
          dropped.insert(std::move(fewer));
        }
      }
      require(!dropped.empty());
      candidates_ = std::move(dropped);
      return;
    }
    if (pending_before == 0) return;  // publish() with nothing pending does nothing
    ++generation_;
    // A fresh reader sees what was just published: one of the candidates' results.
    auto probe = writer().reader();
    const model_map now = contents(probe.read());
    bool matched = false;
    for (const auto& candidate : candidates_) {
      model_map expected = published_;
      for (const std::size_t i : candidate) apply(expected, log_[i]);
      matched = matched || expected == now;
    }
    require(matched);
    check_guard(probe.read(), now);
    published_ = now;
    log_.clear();
    candidates_.clear();
    candidates_.insert(std::vector<std::size_t>{});
  }

  // Ambiguity is bounded: a publish is armed only while the candidate logs stay few.
  [[nodiscard]] bool may_arm_publish() const { return candidates_.size() * pending() <= 256; }

  void step() {
    switch (in_.below(14)) {
      case 0: {  // insert: no overwrite
        model_op op{model_op::insert, Types::key(in_.byte()), Types::value(in_.u16())};
        push(op, [&] { writer().insert(op.key, op.value); });
        break;
      }
      case 1: {
        model_op op{model_op::insert_or_assign, Types::key(in_.byte()), Types::value(in_.u16())};
        push(op, [&] { writer().insert_or_assign(op.key, op.value); });
        break;
      }
      case 2: {
        model_op op{model_op::erase, Types::key(in_.byte())};
        push(op, [&] { writer().erase(op.key); });
        break;
      }
      case 3: {  // erase_if with a predicate that must run once per element per publish
        model_op op{model_op::erase_if};
        op.modulus = in_.below(7) + 1U;
        op.remainder = in_.below(static_cast<std::uint8_t>(op.modulus));
        push(op, [&] {
          writer().erase_if([modulus = op.modulus, remainder = op.remainder](const key_type& k,
                                                                             const mapped_type& v) {
            return selected(k, v, modulus, remainder);
          });
        });
        break;
      }
      case 4: {
        model_op op{model_op::clear};
        push(op, [&] { writer().clear(); });
        break;
      }
      case 5:  // publish; a blocking one only when it cannot block this (single) thread
        if (!blocks_publish()) {
          if (!may_arm_publish()) fail_at_ = 0;
          const std::size_t before = pending();
          published_or_threw(armed([&] { writer().publish(); }), before);
          break;
        }
        [[fallthrough]];
      case 6: {
        // try_publish fails, changing nothing, exactly when there is something to publish and
        // a guard from before the last publish still pins the copy it would write.
        if (!may_arm_publish()) fail_at_ = 0;
        const std::size_t before = pending();
        const bool expected_success = before == 0 || !blocks_publish();
        bool done = false;
        const bool threw = armed([&] { done = writer().try_publish(); });
        if (threw) {
          require(expected_success);
          published_or_threw(true, before);
        } else {
          require(done == expected_success);
          if (done) published_or_threw(false, before);
        }
        break;
      }
      case 7:  // a new reader from the writer, or a copy of an existing one
        if (readers_.size() < 8) {
          const std::size_t i = in_.below(static_cast<std::uint8_t>(readers_.size() + 1));
          armed([&] {
            if (i == readers_.size() || !readers_[i]) {
              readers_.emplace_back(writer().reader());
            } else {
              readers_.emplace_back(*readers_[i]);
            }
          });
        }
        break;
      case 8: {  // drop a reader that holds no guard
        const std::size_t i = in_.below(static_cast<std::uint8_t>(readers_.size()));
        bool holds = false;
        for (const auto& g : guards_) holds = holds || g.reader_index == i;
        if (!holds) readers_[i].reset();
        break;
      }
      case 9: {  // take a guard and keep it
        const std::size_t i = in_.below(static_cast<std::uint8_t>(readers_.size()));
        if (readers_[i] && guards_.size() < 4) {
          const model_map expected = view_of(i);
          guards_.push_back(
              held_guard{i, std::make_unique<typename map_type::read_guard>(readers_[i]->read()),
                         expected, generation_});
          check_guard(*guards_.back().guard, expected);
        }
        break;
      }
      case 10:  // release the newest guard (guards on one reader nest: release in reverse)
        if (!guards_.empty()) guards_.pop_back();
        break;
      case 11: {  // read through a reader's convenience calls
        const std::size_t i = in_.below(static_cast<std::uint8_t>(readers_.size()));
        if (readers_[i]) {
          const key_type k = Types::key(in_.byte());
          const model_map& view = view_of(i);
          const auto it = view.find(k);
          std::optional<mapped_type> got;
          if (!armed([&] { got = readers_[i]->get(k); })) {  // get copies V: may throw
            require(got.has_value() == (it != view.end()));
            if (got) require(*got == it->second);
          }
          require(readers_[i]->contains(k) == (it != view.end()));
          require(readers_[i]->size() == view.size());
          check_guard(readers_[i]->read(), view);
        }
        break;
      }
      case 12:  // the next operation runs with its Nth allocation failing
        fail_at_ = std::size_t{1} + in_.below(32);
        break;
      default:
        break;
    }
  }

  tandem::fuzz::input& in_;
  std::pair<typename map_type::writer, typename map_type::reader> made_ = map_type::create();
  std::vector<std::optional<typename map_type::reader>> readers_;
  std::vector<held_guard> guards_;
  model_map published_;
  std::vector<model_op> log_;                      // ops pushed since the last publish
  std::set<std::vector<std::size_t>> candidates_;  // which of them are still pending
  std::uint64_t generation_ = 0;                   // successful publishes
  std::size_t fail_at_ = 0;                        // armed failure for the next op
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tandem::fuzz::input in(data, size);
  const std::uint8_t mode = in.byte();
  const bool strings = mode % 2 != 0;
#if TANDEM_FUZZ_HAVE_BOOST_FLAT
  if (mode % 6 >= 4) {
    if (strings) {
      fuzzer<string_types, boost::unordered_flat_map>(in).run();
    } else {
      fuzzer<small_types, boost::unordered_flat_map>(in).run();
    }
    return 0;
  }
#endif
  if (strings) {
    fuzzer<string_types>(in).run();
  } else {
    fuzzer<small_types>(in).run();
  }
  return 0;
}
