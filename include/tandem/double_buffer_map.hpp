// tandem/double_buffer_map.hpp -- a hash map with wait-free readers and one batching writer,
// built on tandem::double_buffer (left-right with delayed swaps).
//
// What it is for: read-mostly maps (routing tables, caches, indexes) read by many threads at
// full speed while one writer changes them in batches. Readers see a published snapshot:
// all of a batch or none of it, never a half-applied one. Not for write-heavy maps (every
// write is applied twice and every entry stored twice) nor for readers that must see a write
// before the writer publishes it.
//
//   auto [w, r] = tandem::make_double_buffer_map<std::uint64_t, route>();
//   w.insert_or_assign(10, route{...});
//   w.erase(7);
//   w.publish();                                  // readers now see both changes at once
//   if (auto g = r.read(); const route* x = g.find(10)) use(*x);   // or r.get(10)
//
// Algorithm: the state is a std::unordered_map<K, V, Hash, KeyEqual> held twice by a
// double_buffer (see double_buffer.hpp for the reader/writer protocols, the memory orders
// and what blocks when). The writer's methods log map operations; publish() applies them to
// the hidden copy, swaps, and replays them on the other copy at the next publish. A replay
// that throws is retried by the next publish with the same logged operation, so a replay
// moves out of the log only in its last step, the one that cannot fail any more:
//  1. insert(k, v): the call moves k and v into a map node built at once (in a small writer-
//     only scratch map, then extracted as a node handle: this hashes k and allocates the
//     node). The first copy gets try_emplace(node.key(), node.mapped()) (copies); the
//     second gets insert(std::move(node)): it only links the node the log owns, and if it
//     throws (bad_alloc growing the buckets, Hash), the node stays in the log for the retry.
//     insert never overwrites.
//  2. insert_or_assign(k, v): the same node. The first copy gets insert_or_assign(key,
//     mapped) (copies). The second: find the key; if absent, insert(std::move(node)) as in 1;
//     if present, move-assign the value when V's move assignment is noexcept (it cannot
//     fail: the last step), else copy-assign it (a throwing copy leaves the logged value
//     whole for the retry).
//  3. erase(k), clear(): the same on both copies (the key is never moved from).
//  4. erase_if(pred): on the first copy, pred(key, value) runs once per element and the keys
//     it selected are recorded; then those keys are erased. The second copy erases exactly
//     the recorded keys: the predicate never runs twice, so a stateful or non-deterministic
//     predicate cannot make the copies diverge (evmap had to make `retain` unsafe for this).
// This header contains no synchronisation of its own.
//
// Guarantees (beyond double_buffer's):
//  - Both copies are built with copies of the same Hash and KeyEqual objects (stateful
//    functors such as seeded hashes behave the same on both).
//  - Exceptions: every operation gives the strong guarantee on a copy (std::unordered_map's
//    single-element insertions do; erase_if decides everything before erasing; V's copy
//    assignment, which insert_or_assign uses on an existing key, must give it too), so
//    double_buffer's rules apply: an operation that throws when first applied (a throwing
//    copy of K or V, Hash, KeyEqual, the predicate, or bad_alloc) is dropped and the exception
//    leaves publish(); one that throws when replayed (bad_alloc, Hash, V's copy assignment)
//    leaves publish() and is retried by the next publish() with its key and value intact.
//    Readers only ever see the published copy. (Hash and KeyEqual may throw when a key is
//    inserted or looked up, but not when it is erased: std::unordered_map's erase gives no
//    guarantee then.) insert() and insert_or_assign() build their node when called: they
//    may throw bad_alloc or the Hash's exception, and then log nothing.
//  - K and V must be nothrow move constructible (operations live in the writer's log).
//  - Moved-from readers and writers throw std::logic_error from every operation except
//    pending() (0), destruction and assignment; see double_buffer.hpp. Assignments read their
//    source completely before releasing their old state.
//
// Costs: two maps (every key and value stored twice) + the log of the current and previous
// batch (each logged insert holds one node with one K and one V, which the replay links into
// the second copy; erase_if holds the erased keys) + the writer's empty scratch map. A lookup
// costs one read guard (see double_buffer.hpp) plus one hash lookup; take one guard for many
// lookups to pay the guard once.
//
// Memory ordering: none here; all of it is double_buffer's (see its "Memory ordering").
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "detail/port.hpp"
#include "double_buffer.hpp"
#include "string_hash.hpp"
#include "sync/asymmetric_fence.hpp"

namespace tandem {

// Requirements on K and V: stored in the log and in two maps.
template <class K>
concept double_buffer_map_key =
    std::copy_constructible<K> && std::is_nothrow_move_constructible_v<K>;
template <class V>
concept double_buffer_map_value =
    std::copy_constructible<V> && std::is_nothrow_move_constructible_v<V> && std::is_object_v<V>;
template <class Hash, class K>
concept double_buffer_map_hash = std::copy_constructible<Hash> &&
    std::is_nothrow_move_constructible_v<Hash> && requires(const Hash& h, const K& key) {
  { h(key) } -> std::convertible_to<std::size_t>;
};
template <class KeyEqual, class K>
concept double_buffer_map_key_equal =
    std::copy_constructible<KeyEqual> && std::predicate<const KeyEqual&, const K&, const K&>;
// What a lookup (read_guard::find/contains, reader::get/contains) takes: K itself; any key the
// Hash and KeyEqual accept when both are transparent (std::string_view or const char* for the
// default std::string key: nothing is built, nothing allocated); or anything implicitly
// convertible to K (converted once per call).
template <class Q, class K, class Hash, class KeyEqual>
concept double_buffer_map_lookup_key =
    std::same_as<std::remove_cvref_t<Q>, K> ||
    (requires {
      typename Hash::is_transparent;
      typename KeyEqual::is_transparent;
    } &&
     std::is_invocable_r_v<std::size_t, const Hash&, const Q&> &&
     std::is_invocable_r_v<bool, const KeyEqual&, const K&, const Q&>) ||
    std::convertible_to<const Q&, K>;

// What erase_if accepts: pred(const K&, const V&) -> bool-ish.
template <class Pred, class K, class V>
concept double_buffer_map_predicate =
    std::move_constructible<Pred> && std::predicate<Pred&, const K&, const V&>;

// The requirements are named concepts on the class template (and on make_double_buffer_map),
// so that a bad parameter's first error names tandem's requirement: K and V are copied into
// both maps and kept in the op log (copy constructible, nothrow move constructible); Hash and
// KeyEqual are copied into both maps.
template <class K, class V, class Hash = default_hash<K>, class KeyEqual = default_key_equal<K>,
          sync::fence_policy Fence = sync::asymmetric_fence>
requires double_buffer_map_key<K> && double_buffer_map_value<V> &&
    double_buffer_map_hash<Hash, K> && double_buffer_map_key_equal<KeyEqual, K>
class double_buffer_map {
 public:
  using key_type = K;
  using mapped_type = V;
  using hasher = Hash;
  using key_equal = KeyEqual;
  using map_type = std::unordered_map<K, V, Hash, KeyEqual>;
  using value_type = typename map_type::value_type;
  using const_iterator = typename map_type::const_iterator;

 private:
  // ---- the operations in the log ---------------------------------------------------------
  using node_type = typename map_type::node_type;

  // Both own their key and value in a node handle from the moment they are logged. The
  // replay (second) links that node into the map, which either succeeds or leaves the node
  // in the op: a retry always finds its key and value whole.
  struct insert_op {
    node_type node;
    void first(map_type& map) & { map.try_emplace(node.key(), node.mapped()); }
    void second(map_type& map) && {
      // The commit: links the node if the key is absent. Throws (bad_alloc growing the
      // buckets, Hash) with the node still ours; if the key is present the node comes back in
      // the result and is dropped (insert never overwrites).
      [[maybe_unused]] auto result = map.insert(std::move(node));
    }
  };
  struct insert_or_assign_op {
    node_type node;
    void first(map_type& map) & { map.insert_or_assign(node.key(), node.mapped()); }
    void second(map_type& map) && {
      const auto existing = map.find(node.key());  // may throw (Hash, KeyEqual): nothing moved
      if (existing == map.end()) {
        [[maybe_unused]] auto result = map.insert(std::move(node));  // as insert_op
      } else if constexpr (std::is_nothrow_move_assignable_v<V>) {
        existing->second = std::move(node.mapped());  // cannot fail: the last step may move
      } else {
        existing->second = node.mapped();  // may throw: the logged value stays whole
      }
    }
  };
  struct erase_op {
    K key;
    void first(map_type& map) & { map.erase(key); }
    void second(map_type& map) && { map.erase(key); }
  };
  struct clear_op {
    void first(map_type& map) & { map.clear(); }
    void second(map_type& map) && { map.clear(); }
  };
  struct predicate_base {
    virtual ~predicate_base() = default;
    virtual bool test(const K& key, const V& value) = 0;
  };
  template <class Pred>
  struct predicate_holder final : predicate_base {
    explicit predicate_holder(Pred p) : pred(std::move(p)) {}
    bool test(const K& key, const V& value) override {
      return static_cast<bool>(std::invoke(pred, key, value));
    }
    Pred pred;
  };
  struct erase_if_op {
    std::unique_ptr<predicate_base> predicate;  // runs on the first copy only, then dropped
    std::vector<K> erased;                      // what the first copy erased, for the second
    void first(map_type& map) & {
      // Decide everything before erasing anything: a throwing predicate (or a throwing copy
      // of a key) leaves the map unchanged -- the strong guarantee double_buffer needs.
      for (const auto& [key, value] : map) {
        if (predicate->test(key, value)) erased.push_back(key);
      }
      for (const K& key : erased) map.erase(key);
      predicate.reset();
    }
    void second(map_type& map) && {
      for (const K& key : erased) map.erase(key);
    }
  };

  class operation {
   public:
    template <class Alternative>
    requires(!std::is_same_v<std::remove_cvref_t<Alternative>, operation>) explicit operation(
        Alternative&& alternative)
        : alternative_(std::forward<Alternative>(alternative)) {}

    void operator()(map_type& map) & {
      std::visit([&map](auto& op) { op.first(map); }, alternative_);
    }
    void operator()(map_type& map) && {
      std::visit([&map](auto& op) { std::move(op).second(map); }, alternative_);
    }

   private:
    std::variant<insert_op, insert_or_assign_op, erase_op, erase_if_op, clear_op> alternative_;
  };

  using buffer = double_buffer<map_type, operation, Fence>;

  // A lookup key as the map takes it: itself when Hash/KeyEqual accept it (or it is a K),
  // else converted to a K (a temporary bound to the caller's const reference).
  template <class Q>
  static decltype(auto) lookup_form(const Q& key) {
    if constexpr (std::same_as<Q, K> ||
                  (transparent && std::is_invocable_r_v<std::size_t, const Hash&, const Q&> &&
                   std::is_invocable_r_v<bool, const KeyEqual&, const K&, const Q&>)) {
      return (key);
    } else {
      return K(key);
    }
  }

  static constexpr bool transparent = requires {
    typename Hash::is_transparent;
    typename KeyEqual::is_transparent;
  };

 public:
  // A consistent, read-only snapshot of the published map, valid while the guard lives.
  class [[nodiscard]] read_guard {
   public:
    // The value for `key` (a double_buffer_map_lookup_key), or nullptr when absent. Valid
    // while this guard lives.
    template <class Q = K>
    requires double_buffer_map_lookup_key<Q, K, Hash, KeyEqual>
    [[nodiscard]] const V* find(const Q& key) const { return found(map().find(lookup_form(key))); }
    template <class Q = K>
    requires double_buffer_map_lookup_key<Q, K, Hash, KeyEqual>
    [[nodiscard]] bool contains(const Q& key) const {
      return map().find(lookup_form(key)) != map().end();
    }
    [[nodiscard]] std::size_t size() const noexcept { return map().size(); }
    [[nodiscard]] bool empty() const noexcept { return map().empty(); }
    // Iteration over const std::pair<const K, V>&, in the map's order.
    [[nodiscard]] const_iterator begin() const noexcept { return map().begin(); }
    [[nodiscard]] const_iterator end() const noexcept { return map().end(); }

   private:
    friend class double_buffer_map;
    explicit read_guard(typename buffer::read_guard guard) noexcept : guard_(std::move(guard)) {}
    const map_type& map() const noexcept { return *guard_; }
    const V* found(const_iterator it) const noexcept {
      return it == map().end() ? nullptr : &it->second;
    }

    typename buffer::read_guard guard_;
  };

  // A read handle; copy it for another thread (each copy has its own epoch slot). Its copy and
  // move assignments are double_buffer::reader's (they read the source before releasing).
  class reader {
   public:
    // Pins the published map until the guard (and guards nested in it) are gone. Wait-free.
    // Throws std::logic_error on a moved-from reader (so do get, contains and size).
    [[nodiscard]] read_guard read() { return read_guard(reader_.read()); }
    // One-shot lookups, each under its own guard.
    template <class Q = K>
    requires double_buffer_map_lookup_key<Q, K, Hash, KeyEqual>
    [[nodiscard]] std::optional<V> get(const Q& key) {
      const auto guard = read();
      const V* value = guard.find(key);
      return value != nullptr ? std::optional<V>(*value) : std::nullopt;
    }
    template <class Q = K>
    requires double_buffer_map_lookup_key<Q, K, Hash, KeyEqual>
    [[nodiscard]] bool contains(const Q& key) { return read().contains(key); }
    [[nodiscard]] std::size_t size() { return read().size(); }

    // Exchanges what the two readers read. Neither may have a live guard.
    void swap(reader& other) noexcept { reader_.swap(other.reader_); }
    friend void swap(reader& a, reader& b) noexcept { a.swap(b); }

   private:
    friend class double_buffer_map;
    explicit reader(typename buffer::reader r) noexcept : reader_(std::move(r)) {}
    typename buffer::reader reader_;
  };

  // The single writer: logs operations, publish() makes them visible. Move-only; not
  // thread-safe (share it behind a mutex). Every operation on a moved-from writer throws
  // std::logic_error, except pending() (0), destruction and assignment.
  class writer {
   public:
    writer(writer&&) noexcept = default;
    // Reads the source completely before releasing the old state: correct for
    // self-assignment and for a source that lives inside the released maps.
    writer& operator=(writer&& other) noexcept {
      writer taken(std::move(other));
      swap(taken);
      return *this;  // `taken` now holds the old state (or nothing) and releases it
    }
    writer(const writer&) = delete;
    writer& operator=(const writer&) = delete;
    ~writer() = default;

    void swap(writer& other) noexcept {
      writer_.swap(other.writer_);
      scratch_.swap(other.scratch_);
    }
    friend void swap(writer& a, writer& b) noexcept { a.swap(b); }

    // Inserts unless `key` is present (never overwrites). Builds the entry's node now: may
    // throw bad_alloc or the Hash's exception, and then logs nothing.
    void insert(K key, V value) {
      writer_.push(operation(insert_op{make_node(std::move(key), std::move(value))}));
    }
    // Inserts, or assigns the value of an existing key. Builds the node now, as insert().
    void insert_or_assign(K key, V value) {
      writer_.push(operation(insert_or_assign_op{make_node(std::move(key), std::move(value))}));
    }
    void erase(K key) { writer_.push(operation(erase_op{std::move(key)})); }
    // Erases every element for which pred(key, value) is true. pred runs once per element,
    // during the publish() that applies it, on the writer's thread.
    template <class Pred>
    requires double_buffer_map_predicate<Pred, K, V>
    void erase_if(Pred pred) {
      writer_.push(
          operation(erase_if_op{std::make_unique<predicate_holder<Pred>>(std::move(pred)), {}}));
    }
    void clear() { writer_.push(operation(clear_op{})); }

    // See double_buffer::writer::publish / try_publish / pending.
    void publish() { writer_.publish(); }
    [[nodiscard]] bool try_publish() { return writer_.try_publish(); }
    [[nodiscard]] std::size_t pending() const noexcept { return writer_.pending(); }
    [[nodiscard]] double_buffer_map::reader reader() const {
      return double_buffer_map::reader(writer_.reader());
    }

   private:
    friend class double_buffer_map;
    writer(typename buffer::writer w, std::unique_ptr<map_type> scratch) noexcept
        : writer_(std::move(w)), scratch_(std::move(scratch)) {}

    // Moves key and value into a node of the scratch map and extracts it: the node the log
    // owns until the replay links it into the second copy. The scratch map is empty between
    // calls (and keeps its few buckets, so this allocates only the node).
    node_type make_node(K&& key, V&& value) {
      if (TANDEM_UNLIKELY(scratch_ == nullptr)) {
        detail::throw_double_buffer_used_after_move(
            "tandem::double_buffer_map::writer used after move (insert on a moved-from "
            "writer)");
      }
      try {
        const auto where = scratch_->try_emplace(std::move(key), std::move(value)).first;
        return scratch_->extract(where);
      } catch (...) {
        scratch_->clear();  // extract may recompute the hash (and throw) with the entry inside
        throw;
      }
    }

    typename buffer::writer writer_;
    std::unique_ptr<map_type> scratch_;  // always empty; behind a pointer: noexcept moves
  };

  // Both maps are built as map_type(bucket_count, hash, equal): each gets its own copy of
  // `hash` and `equal`. make_double_buffer_map is the usual way in.
  [[nodiscard]] static std::pair<writer, reader> create(std::size_t bucket_count = 0,
                                                        const Hash& hash = Hash(),
                                                        const KeyEqual& equal = KeyEqual()) {
    auto [w, r] = buffer::create(bucket_count, hash, equal);
    auto scratch = std::make_unique<map_type>(0, hash, equal);
    return {writer(std::move(w), std::move(scratch)), reader(std::move(r))};
  }
};

// auto [w, r] = tandem::make_double_buffer_map<K, V>();  (optionally <K, V, Hash, KeyEqual>
// and (bucket_count, hash, equal)).
template <class K, class V, class Hash = default_hash<K>, class KeyEqual = default_key_equal<K>>
requires double_buffer_map_key<K> && double_buffer_map_value<V> &&
    double_buffer_map_hash<Hash, K> && double_buffer_map_key_equal<KeyEqual, K>
[[nodiscard]] auto make_double_buffer_map(std::size_t bucket_count = 0, const Hash& hash = Hash(),
                                          const KeyEqual& equal = KeyEqual()) {
  return double_buffer_map<K, V, Hash, KeyEqual>::create(bucket_count, hash, equal);
}

}  // namespace tandem
