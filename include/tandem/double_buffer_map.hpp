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
// The inner map is a template parameter (default std::unordered_map<K, V, Hash, KeyEqual>):
// boost::unordered_flat_map, absl::flat_hash_map or any map the concept
// double_buffer_inner_map accepts. Readers then look up at that map's speed: a guard plus the
// inner map's own find, nothing else (`double_buffer_map_over<Map>` takes K, V, Hash and
// KeyEqual from Map).
//
//   using routes = tandem::double_buffer_map_over<boost::unordered_flat_map<std::uint64_t, route>>;
//   auto [w, r] = routes::create();
//
// Algorithm: the state is the inner map held twice by a double_buffer (see double_buffer.hpp
// for the reader/writer protocols, the memory orders and what blocks when). The writer's
// methods log map operations; publish() applies them to the hidden copy, swaps, and replays
// them on the other copy at the next publish. A replay that throws is retried by the next
// publish with the same logged operation, so a replay moves out of the log only in its last
// step, the one that cannot fail any more. Two paths, chosen by whether the inner map has node
// handles (node_type, extract, insert(node_type&&): std::unordered_map, absl::flat_hash_map)
// or not (boost::unordered_flat_map), and whether K and V are trivially copyable (then the
// path "without node handles" is taken over every map: moving such a key or value copies it,
// so nothing the replay does can take it from the log, and there is no node to build):
//  1. insert(k, v), with node handles: the call moves k and v into a map node built at once
//     (in a small writer-only scratch map, then extracted as a node handle: this hashes k and
//     allocates the node). The first copy gets try_emplace(node.key(), node.mapped())
//     (copies); the second gets insert(std::move(node)): it only links (or, in a flat map,
//     moves in) what the log owns, and if it throws (bad_alloc growing the table, Hash) the
//     node stays in the log for the retry. insert never overwrites.
//     Without node handles: the call moves k and v into the log (no hashing, no allocation
//     but the log's). The first copy gets try_emplace(k, v) (copies). The replay, when Hash
//     and KeyEqual are nothrow invocable: try_emplace(std::move(k), std::move(v)), which does
//     nothing (and moves nothing) when the key is present -- the commit: growing the table
//     (bad_alloc) comes before the element is built (the Map requirement below; for
//     trivially copyable K and V any order will do), and after that K and V move without
//     throwing; otherwise try_emplace(k, v) (copies: a throw leaves k and v whole for the
//     retry).
//  2. insert_or_assign(k, v): the same node (or the same logged k and v). The first copy gets
//     insert_or_assign(k, v) (copies). The second: find the key; if absent, insert as in 1;
//     if present, move-assign the value when V's move assignment is noexcept (it cannot
//     fail: the last step), else copy-assign it (a throwing copy leaves the logged value
//     whole for the retry).
//  3. erase(k), clear(): the same on both copies (the key is never moved from).
//  4. erase_if(pred): on the first copy, pred(key, value) runs once per element and the keys
//     it selected are recorded; then those keys are erased. The second copy erases exactly
//     the recorded keys: the predicate never runs twice, so a stateful or non-deterministic
//     predicate cannot make the copies diverge (evmap had to make `retain` unsafe for this).
// Lookups (read_guard::find/contains, reader::get/contains) call the inner map's find with the
// caller's key as it is (when Hash and KeyEqual are transparent and Map's find takes it) and
// nothing else. This header contains no synchronisation of its own.
//
// Guarantees (beyond double_buffer's):
//  - Both copies are built as Map(bucket_count, hash, equal) with copies of the same Hash and
//    KeyEqual objects (stateful functors such as seeded hashes behave the same on both).
//  - Exceptions: every operation gives the strong guarantee on a copy as long as the inner
//    map's single-element insertion does. std::unordered_map's does. No other map's is
//    trusted when Hash throws while the table grows (boost::unordered_flat_map and
//    boost::unordered_map document only the basic guarantee then, a rehash may drop
//    elements; absl::flat_hash_map rehashes every element): with any other map, Hash must not
//    throw on insertion. And absl::flat_hash_map (20220623) gives no guarantee at all on
//    std::bad_alloc: a failed growth leaves its table corrupt (it stores the new capacity
//    before it allocates), so the recovery promised below holds for it only where allocation
//    failure ends the process (docs/double_buffer.md has the table). erase_if decides
//    everything before erasing; V's copy assignment, which
//    insert_or_assign uses on an existing key, must give it too. (A throwing copy of K or V
//    is strong over any map: into a map other than std::unordered_map the copies are made
//    before the map is touched and moved in, see copy_in_absent.) So double_buffer's rules
//    apply: an operation that throws when first applied (a throwing copy of K or V, Hash,
//    KeyEqual, the predicate, or bad_alloc) is dropped and the exception leaves publish();
//    one that throws when replayed (bad_alloc, Hash, KeyEqual, a copy of K or V, V's copy
//    assignment) leaves publish() and is retried by the next publish() with its key and
//    value intact. Readers only ever see the published copy. (Hash and KeyEqual may throw
//    when a key is inserted or looked up, but not when it is erased: std::unordered_map's
//    erase gives no guarantee then.) With node handles, insert() and insert_or_assign() build
//    their node when called: they may throw bad_alloc or the Hash's exception, and then log
//    nothing; without, they throw only bad_alloc (the log growing), and log nothing then.
//  - K and V must be nothrow move constructible (operations live in the writer's log).
//  - Map requirement the concept cannot check: for a map with node handles, an
//    insert(node_type&&) that throws keeps the node in its argument; for one without, a
//    try_emplace(K&&, V&&) that throws has not moved from its arguments (true of open-
//    addressing maps, which find room before they build the element).
//  - Moved-from readers and writers throw std::logic_error from every operation except
//    pending() (0), destruction and assignment; see double_buffer.hpp. Assignments read their
//    source completely before releasing their old state.
//
// Costs: two maps (every key and value stored twice) + the log of the current and previous
// batch (each logged insert holds one node, or one K and one V, which the replay puts into
// the second copy; erase_if holds the erased keys) + with node handles, the writer's empty
// scratch map. A lookup costs one read guard (see double_buffer.hpp) plus the inner map's
// find; take one guard for many lookups to pay the guard once.
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

#include "detail/arguments.hpp"
#include "detail/callables.hpp"
#include "detail/port.hpp"
#include "detail/type_contents.hpp"
#include "double_buffer.hpp"
#include "string_hash.hpp"
#include "sync/asymmetric_fence.hpp"

namespace tandem {

// Requirements on K and V: stored in the log and in two maps. K is not a view
// (std::string_view, std::span) nor a type holding one (detail::holds_view_v; the rule rc_map_key
// and registry_key follow, docs/reliability.md rule 64): the writer logs the key it is given
// and the maps keep it long after the call, so double_buffer_map<std::string_view, V>'s
// insert(std::string(...), v) kept a view of a temporary, and the publish hashed freed memory
// (found by a new user's trial, 2026-12-05: ASan, heap-use-after-free in string_hash). Use
// std::string. V may hold a view (the map never hashes or compares it), as in any container.
template <class K>
concept double_buffer_map_key = std::copy_constructible<K> &&
    std::is_nothrow_move_constructible_v<K> && !detail::holds_view_v<K>;
template <class V>
concept double_buffer_map_value =
    std::copy_constructible<V> && std::is_nothrow_move_constructible_v<V> && std::is_object_v<V> &&
    // insert_or_assign's replay assigns the logged value to an existing one (every op's code is
    // instantiated, whichever ops a program logs): a V with a const member is refused here.
    std::is_copy_assignable_v<V>;
template <class Hash, class K>
concept double_buffer_map_hash = requires(const Hash& h, const K& key) {
  { h(key) } -> std::convertible_to<std::size_t>;
}
&&std::copy_constructible<Hash>&& std::is_nothrow_move_constructible_v<Hash>;
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
    (!detail::is_caller_converted_v<std::remove_cvref_t<Q>> &&
     requires {
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

// What double_buffer_map needs of its inner map (both copies are Maps): the same K, V, Hash
// and KeyEqual; a constructor Map(bucket_count, hash, equal); find (const and not), begin/end
// over std::pair<const K, V>, size, empty; try_emplace (copying and moving), insert_or_assign,
// erase by key, clear. With node handles (node_type, extract(const_iterator),
// insert(node_type&&), node.key()/mapped()) the replay links the logged node; without, it
// moves (or copies) the logged key and value in. std::unordered_map, boost::unordered_flat_map
// and absl::flat_hash_map qualify. See the header comment for the two requirements no concept
// can check.
template <class Map>
concept double_buffer_inner_map_with_nodes = (requires { typename Map::node_type; }) &&
                                             requires(Map& map, typename Map::node_type& node,
                                                      typename Map::const_iterator where) {
  { map.extract(where) } -> std::same_as<typename Map::node_type>;
  map.insert(std::move(node));
  node.key();
  node.mapped();
};

namespace detail {
// Whether Map builds a new element completely before it changes anything (so a copy that throws
// while the element is built leaves the map as it was): std::unordered_map, which builds the node
// first, and nothing else as far as tandem knows. An open-addressing map may claim the slot
// first (absl::flat_hash_map 20220623 marks it full and counts it before it builds the
// element): a throwing copy then leaves a slot that holds no element but counts, is destroyed
// and is shown to readers as one.
template <class Map>
inline constexpr bool builds_before_claiming = false;
template <class K, class V, class H, class E, class A>
inline constexpr bool builds_before_claiming<std::unordered_map<K, V, H, E, A>> = true;
}  // namespace detail

template <class Map, class K, class V, class Hash, class KeyEqual>
concept double_buffer_inner_map = std::is_object_v<Map> && std::destructible<Map> &&
    std::same_as<typename Map::key_type, K> && std::same_as<typename Map::mapped_type, V> &&
    std::same_as<typename Map::hasher, Hash> && std::same_as<typename Map::key_equal, KeyEqual> &&
    std::same_as<typename Map::value_type, std::pair<const K, V>> &&
    std::constructible_from<Map, std::size_t, const Hash&, const KeyEqual&> &&
    requires(Map& map, const Map& cmap, const K& key, K& moved_key, const V& value,
             V& moved_value) {
  { cmap.find(key) } -> std::same_as<typename Map::const_iterator>;
  { map.find(key) } -> std::same_as<typename Map::iterator>;
  { cmap.begin() } -> std::same_as<typename Map::const_iterator>;
  { cmap.end() } -> std::same_as<typename Map::const_iterator>;
  { map.end() } -> std::same_as<typename Map::iterator>;
  { cmap.find(key) == cmap.end() } -> std::convertible_to<bool>;
  { cmap.find(key)->second } -> std::convertible_to<const V&>;
  { map.find(key)->second } -> std::same_as<V&>;
  { cmap.size() } -> std::convertible_to<std::size_t>;
  { cmap.empty() } -> std::convertible_to<bool>;
  map.try_emplace(key, value);
  map.try_emplace(std::move(moved_key), std::move(moved_value));
  map.insert_or_assign(key, value);
  map.erase(key);
  map.clear();
};

// The requirements are named concepts on the class template (and on make_double_buffer_map),
// so that a bad parameter's first error names tandem's requirement: K and V are copied into
// both maps and kept in the op log (copy constructible, nothrow move constructible); Hash and
// KeyEqual are copied into both maps; Map is a double_buffer_inner_map over K, V, Hash, KeyEqual.
template <class K, class V, class Hash = default_hash<K>, class KeyEqual = default_key_equal<K>,
          class Map = std::unordered_map<K, V, Hash, KeyEqual>,
          sync::fence_policy Fence = sync::asymmetric_fence>
requires double_buffer_map_key<K> && double_buffer_map_value<V> &&
    double_buffer_map_hash<Hash, K> && double_buffer_map_key_equal<KeyEqual, K> &&
    double_buffer_inner_map<Map, K, V, Hash, KeyEqual>
class double_buffer_map {
 public:
  using key_type = K;
  using mapped_type = V;
  using hasher = Hash;
  using key_equal = KeyEqual;
  using map_type = Map;
  using value_type = typename map_type::value_type;
  using const_iterator = typename map_type::const_iterator;
  // Whether the replay links logged node handles (true) or moves/copies logged keys and values
  // in (false); see the header comment. A node handle is what lets a replay move a key and a
  // value that moving would change; trivially copyable ones (integers, enums, plain structs),
  // whose "move" is a bit-for-bit copy that leaves the source as it was, need none (and
  // skipping the scratch node saves about 100 instructions per insert with
  // std::unordered_map).
  static constexpr bool uses_node_handles =
      double_buffer_inner_map_with_nodes<Map> &&
      !(std::is_trivially_copyable_v<K> && std::is_trivially_copyable_v<V>);

 private:
  // ---- the operations in the log ---------------------------------------------------------

  // Maps with node handles: both ops own their key and value in a node handle from the moment
  // they are logged. The replay (second) links that node into the map, which either succeeds
  // or leaves the node in the op: a retry always finds its key and value whole.
  template <class Node>
  struct insert_node_op {
    Node node;
    void first(map_type& map) & { copy_in_absent(map, node.key(), node.mapped()); }
    void second(map_type& map) && {
      if (TANDEM_UNLIKELY(!can_link(map, node))) {
        copy_in_absent(map, node.key(), node.mapped());
        return;
      }
      // The commit: links the node if the key is absent. Throws (bad_alloc growing the
      // buckets, Hash) with the node still ours; if the key is present the node comes back in
      // the result and is dropped (insert never overwrites).
      [[maybe_unused]] auto result = map.insert(std::move(node));
    }
  };

  // Whether a logged node may be linked into `map`: insert(node_type&&) requires the node's
  // allocator to equal the map's, and the writer's scratch map and the two copies each
  // default-construct theirs. Always true for allocators that are always equal (std::allocator:
  // no code); otherwise compared, and a node from another allocator (a stateful allocator whose
  // default-constructed instances differ) is copied in instead of linked. (Until 2026-12-01 it
  // was linked: undefined behaviour, the node later freed by an allocator that had not
  // allocated it; found by review.)
  template <class Node>
  static bool can_link(const map_type& map, const Node& node) noexcept {
    if constexpr (std::allocator_traits<
                      typename map_type::allocator_type>::is_always_equal::value) {
      return true;
    } else {
      return node.get_allocator() == map.get_allocator();
    }
  }
  template <class Node>
  struct insert_or_assign_node_op {
    Node node;
    void first(map_type& map) & { copy_in_or_assign(map, node.key(), node.mapped()); }
    void second(map_type& map) && {
      const auto existing = map.find(node.key());  // may throw (Hash, KeyEqual): nothing moved
      if (existing == map.end()) {
        if (TANDEM_UNLIKELY(!can_link(map, node))) {
          copy_in_absent(map, node.key(), node.mapped());
          return;
        }
        [[maybe_unused]] auto result = map.insert(std::move(node));  // as insert_node_op
      } else {
        assign_last(existing->second, node.mapped());
      }
    }
  };

  // Maps without node handles: both ops own a K and a V. The replay moves them into the map
  // only in a step that cannot fail any more (see put_absent).
  struct insert_value_op {
    K key;
    V value;
    void first(map_type& map) & { copy_in_absent(map, key, value); }
    // try_emplace does nothing, and moves nothing, when the key is present: no find first.
    void second(map_type& map) && { put_absent(map, key, value); }
  };
  struct insert_or_assign_value_op {
    K key;
    V value;
    void first(map_type& map) & { copy_in_or_assign(map, key, value); }
    void second(map_type& map) && {
      const auto existing = map.find(key);  // may throw (Hash, KeyEqual): nothing moved
      if (existing == map.end()) {
        put_absent(map, key, value);
      } else {
        assign_last(existing->second, value);
      }
    }
  };

  // Hashing and comparing keys cannot throw: then a moving try_emplace can only fail before it
  // touches its arguments (the Map requirement in the header comment).
  static constexpr bool nothrow_key_ops =
      std::is_nothrow_invocable_v<const Hash&, const K&> &&
      std::is_nothrow_invocable_v<const KeyEqual&, const K&, const K&>;

  // The replay of an insert into a map without node handles (or of trivially copyable entries
  // into any map): try_emplace, which does nothing when the key is present. When Hash and
  // KeyEqual cannot throw, the moving try_emplace is the commit: the only thing left that can
  // throw is the table growing (bad_alloc), which an open-addressing map does before it builds
  // the element (the Map requirement in the header comment), so a throw leaves the logged key
  // and value whole, and once the element is built nothing can fail (K and V move without
  // throwing). With trivially copyable K and V that holds over any map, node-based ones
  // included (std::unordered_map may grow after it has built the node and then frees it): the
  // "move" was a copy, the logged pair is unchanged. Otherwise a copying try_emplace: a throw
  // leaves them whole too. (No reserve() first: boost::unordered_flat_map's reserve(n) below
  // its capacity shrinks the table -- a rehash, calling Hash on every element, per insert.)
  static void put_absent(map_type& map, K& key, V& value) {
    if constexpr (nothrow_key_ops) {
      map.try_emplace(std::move(key), std::move(value));
    } else {
      copy_in_absent(map, key, value);
    }
  }

  // Whether an element may be copied straight into the map: the copies cannot throw, or the
  // map builds the element before it changes anything (detail::builds_before_claiming).
  static constexpr bool copies_in_place =
      (std::is_nothrow_copy_constructible_v<K> && std::is_nothrow_copy_constructible_v<V>) ||
      detail::builds_before_claiming<Map>;

  // Copies `key` and `value` into `map` unless the key is present (the first application of
  // an insert, and a replay that must not move the logged pair). Where a copy that throws
  // inside the map could leave a half-built element (docs/reliability.md rule 29), the copies
  // are made before the map is touched and the element is built by K's and V's moves, which
  // cannot throw (double_buffer_map_key/_value): two moves more per insert.
  TANDEM_ALWAYS_INLINE static void copy_in_absent(map_type& map, const K& key, const V& value) {
    if constexpr (copies_in_place) {
      map.try_emplace(key, value);
    } else {
      K key_copy(key);
      V value_copy(value);
      map.try_emplace(std::move(key_copy), std::move(value_copy));
    }
  }
  // The same for insert_or_assign: on a present key, V's copy assignment (strong, the Map
  // requirement in the header comment).
  static void copy_in_or_assign(map_type& map, const K& key, const V& value) {
    if constexpr (copies_in_place) {
      map.insert_or_assign(key, value);
    } else {
      const auto existing = map.find(key);  // may throw (Hash, KeyEqual): nothing changed
      if (existing == map.end()) {
        copy_in_absent(map, key, value);
      } else {
        existing->second = value;
      }
    }
  }

  // The last step of an insert_or_assign replay on an existing key: a move when it cannot
  // fail, else a copy (a throwing copy leaves the logged value whole).
  static void assign_last(V& target, V& logged) {
    if constexpr (std::is_nothrow_move_assignable_v<V>) {
      target = std::move(logged);
    } else {
      target = logged;
    }
  }

  template <class M, bool = uses_node_handles>
  struct insert_ops {
    using insert = insert_value_op;
    using insert_or_assign = insert_or_assign_value_op;
  };
  template <class M>
  struct insert_ops<M, true> {
    using insert = insert_node_op<typename M::node_type>;
    using insert_or_assign = insert_or_assign_node_op<typename M::node_type>;
  };
  using insert_op = typename insert_ops<Map>::insert;
  using insert_or_assign_op = typename insert_ops<Map>::insert_or_assign;
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
    template <class Source>  // const Pred& or Pred&& (detail::as_source)
    explicit predicate_holder(Source&& p) : pred(std::forward<Source>(p)) {}
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
    // Built in the writer's log (double_buffer::writer::emplace) from an alternative's members:
    // the alternative is moved once, the variant never.
    template <class Alternative, class... Args>
    explicit operation(std::in_place_type_t<Alternative> type, Args&&... args)
        : alternative_(type, Alternative{std::forward<Args>(args)...}) {}
    operation(operation&& other) noexcept(std::is_nothrow_move_constructible_v<alternatives>)
        : alternative_(std::move(other.alternative_)) {}
    operation& operator=(operation&&) = delete;
    // When every alternative but erase_if's is trivially destructible (trivially copyable K
    // and V), only an erase_if op runs the variant's destructor: the others end by having
    // their storage reused or freed, which is allowed for a class whose destructor has no
    // effect the program depends on (the variant's only resets its index), and a published
    // batch is then cleared without a dispatch per op (g++ 12, callgrind: 4 to 8 instructions
    // per op fewer, tests/perf writer cases).
    ~operation() {
      if constexpr (only_erase_if_is_destroyed) {
        if (TANDEM_UNLIKELY(alternative_.index() == erase_if_index)) {
          std::destroy_at(std::addressof(alternative_));
        }
      } else {
        std::destroy_at(std::addressof(alternative_));
      }
    }

    void operator()(map_type& map) & {
      checked(map, [&] { dispatch([&map](auto& op) { op.first(map); }); });
    }
    void operator()(map_type& map) && {
      checked(map, [&] { dispatch([&map](auto& op) { std::move(op).second(map); }); });
    }

   private:
    // An op that throws must leave the copy as it was (the strong guarantee double_buffer
    // relies on): checked where assertions are on, for maps other than std::unordered_map,
    // whose guarantees tandem only reads in their documentation (docs/reliability.md rule
    // 29). absl::flat_hash_map's debug-build check (NDEBUG not defined) calls Hash and
    // KeyEqual again after it has inserted an element; a throw from there leaves the element
    // inserted, and the two copies would differ from then on without a word.
    template <class Apply>
    static void checked(map_type& map, Apply&& apply) {
      if constexpr (TANDEM_ENABLE_ASSERTS && !detail::builds_before_claiming<Map>) {
        const auto size_before = map.size();
        try {
          apply();
        } catch (...) {
          TANDEM_ASSERT(map.size() == size_before,
                        "tandem::double_buffer_map: an operation threw but its inner map changed "
                        "size: that map's insertion is not strong when Hash or KeyEqual throws "
                        "(only std::unordered_map's is; absl::flat_hash_map without NDEBUG even "
                        "calls them again after inserting), so with it they must not throw");
          throw;
        }
      } else {
        apply();
      }
    }

    using alternatives =
        std::variant<insert_op, insert_or_assign_op, erase_op, erase_if_op, clear_op>;
    static constexpr std::size_t erase_if_index = 3;
    static_assert(
        std::is_same_v<std::variant_alternative_t<erase_if_index, alternatives>, erase_if_op>);
    static constexpr bool only_erase_if_is_destroyed =
        std::is_trivially_destructible_v<insert_op> &&
        std::is_trivially_destructible_v<insert_or_assign_op> &&
        std::is_trivially_destructible_v<erase_op> && std::is_trivially_destructible_v<clear_op>;

    // f(the alternative held). A switch on the index, not std::visit: the variant is built in
    // place and never assigned, so it is never valueless, and std::visit's test for that costs
    // a few instructions per op, twice per op (g++ 12, callgrind: tests/perf writer cases).
    template <class F>
    void dispatch(F&& f) {
      static_assert(std::variant_size_v<alternatives> == 5, "dispatch() lists every alternative");
      switch (alternative_.index()) {
        case 0:
          f(*std::get_if<0>(&alternative_));
          return;
        case 1:
          f(*std::get_if<1>(&alternative_));
          return;
        case 2:
          f(*std::get_if<2>(&alternative_));
          return;
        case 3:
          f(*std::get_if<3>(&alternative_));
          return;
        case 4:
          f(*std::get_if<4>(&alternative_));
          return;
        default:
          TANDEM_UNREACHABLE();  // never valueless (see above)
      }
    }

    // A union member, so that ~operation() decides whether the variant's destructor runs.
    union {
      alternatives alternative_;
    };
  };

  using buffer = double_buffer<map_type, operation, Fence>;

  static constexpr bool transparent = requires {
    typename Hash::is_transparent;
    typename KeyEqual::is_transparent;
  };

  // Whether a lookup key is used as it is: a K, or a key Hash/KeyEqual accept and Map's find
  // takes.
  template <class Q>
  static constexpr bool used_as_is =
      std::same_as<Q, K> || (transparent && !detail::is_caller_converted_v<Q> &&
                             std::is_invocable_r_v<std::size_t, const Hash&, const Q&> &&
                             std::is_invocable_r_v<bool, const KeyEqual&, const K&, const Q&> &&
                             requires(const map_type& map, const Q& q) { map.find(q); });
  // Whether a lookup's template form takes Q (detail::forwarded_key): for a scalar K, a key it
  // would convert goes to the by-value overload instead.
  template <class Q>
  static constexpr bool forwarded = detail::forwarded_key<Q, K, used_as_is<Q>>;

  // A lookup key as the map takes it: itself when used_as_is, else converted to a K (a
  // temporary bound to the caller's const reference). Either way the lookup is exactly one call
  // of the inner map's find.
  template <class Q>
  static decltype(auto) lookup_form(const Q& key) {
    // A null const char* is refused before a view or a key is made of it (rule 52).
    detail::check_not_null_c_string<K>(key, "tandem::double_buffer_map", "key");
    if constexpr (used_as_is<Q>) {
      return (key);
    } else {
      return K(key);
    }
  }

 public:
  // A consistent, read-only snapshot of the published map, valid while the guard lives.
  class [[nodiscard]] read_guard {
   public:
    // The value for `key` (a double_buffer_map_lookup_key), or nullptr when absent. Valid
    // while this guard lives. A scalar K is taken by value, here and in the reader's lookups
    // (detail::forwarded_key: the caller's conversion stays at the caller's line).
    template <class Q = K>
    requires double_buffer_map_lookup_key<Q, K, Hash, KeyEqual> && forwarded<Q>
    [[nodiscard]] const V* find(const Q& key) const { return found(map().find(lookup_form(key))); }
    [[nodiscard]] const V* find(K key) const requires detail::by_value_sink<K> {
      return find(detail::caller_converted<K>{key});
    }
    template <class Q = K>
    requires double_buffer_map_lookup_key<Q, K, Hash, KeyEqual> && forwarded<Q>
    [[nodiscard]] bool contains(const Q& key) const {
      return map().find(lookup_form(key)) != map().end();
    }
    [[nodiscard]] bool contains(K key) const requires detail::by_value_sink<K> {
      return contains(detail::caller_converted<K>{key});
    }
    // Every member's precondition: not moved from (TANDEM_ASSERT; not noexcept: a narrow
    // contract).
    [[nodiscard]] std::size_t size() const { return map().size(); }
    [[nodiscard]] bool empty() const { return map().empty(); }
    // Iteration over const std::pair<const K, V>&, in the map's order.
    [[nodiscard]] const_iterator begin() const { return map().begin(); }
    [[nodiscard]] const_iterator end() const { return map().end(); }

   private:
    friend class double_buffer_map;
    // Built straight from reader.read()'s prvalue (guaranteed elision): no moved-from guard is
    // left to destroy on the lookup path.
    explicit read_guard(typename buffer::reader& r) : guard_(r.read()) {}
    // A moved-from guard has no snapshot (TANDEM_ASSERT in double_buffer's guard).
    const map_type& map() const { return *guard_; }
    const V* found(const_iterator it) const {
      return it == map().end() ? nullptr : std::addressof(it->second);
    }

    typename buffer::read_guard guard_;
  };

  // A read handle; copy it for another thread (each copy has its own epoch slot). Its copy and
  // move assignments are double_buffer::reader's (they read the source before releasing).
  class reader {
   public:
    // Pins the published map until the guard (and guards nested in it) are gone. Wait-free.
    // Throws std::logic_error on a moved-from reader (so do get, contains and size). The
    // reader must outlive the guard (see double_buffer::reader::read()).
    [[nodiscard]] read_guard read() { return read_guard(reader_); }
    // One-shot lookups, each under its own guard.
    template <class Q = K>
    requires double_buffer_map_lookup_key<Q, K, Hash, KeyEqual> && forwarded<Q>
    [[nodiscard]] std::optional<V> get(const Q& key) {
      // The key first, then the reader's state (rule 52), here and in contains().
      detail::check_not_null_c_string<K>(key, "tandem::double_buffer_map", "key");
      const auto guard = read();
      const V* value = guard.find(key);
      return value != nullptr ? std::optional<V>(*value) : std::nullopt;
    }
    [[nodiscard]] std::optional<V> get(K key) requires detail::by_value_sink<K> {
      return get(detail::caller_converted<K>{key});
    }
    template <class Q = K>
    requires double_buffer_map_lookup_key<Q, K, Hash, KeyEqual> && forwarded<Q>
    [[nodiscard]] bool contains(const Q& key) {
      detail::check_not_null_c_string<K>(key, "tandem::double_buffer_map", "key");
      return read().contains(key);
    }
    [[nodiscard]] bool contains(K key) requires detail::by_value_sink<K> {
      return contains(detail::caller_converted<K>{key});
    }
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

    // Inserts unless `key` is present (never overwrites). When uses_node_handles (an inner map
    // with node handles, and a K or V that is not trivially copyable) it builds the entry's
    // node now: may throw bad_alloc or the Hash's exception, and then logs nothing. Otherwise
    // it logs key and value as they are (throws only bad_alloc, logging nothing): a throwing
    // Hash is then met in publish(), which drops the op (see double_buffer.hpp).
    // Arguments: a K (or V), or anything implicitly convertible to one (`{...}` builds a K or
    // V); a K or V lvalue is copied by its copy constructor (as const: a forwarding constructor
    // template does not get it, rule 54), an rvalue moved. A null const char* key for a string
    // K throws std::invalid_argument before anything is built (rule 52: until 2026-12-04 the K
    // was built by the caller's conversion, std::string(nullptr): a crash with libc++).
    // Four forms, by whether K and V are scalars (taken by value, detail::by_value_sink: the
    // conversion and its warnings stay at the caller's line) or not (forwarded).
    template <class KArg = K, class VArg = V>
    requires(!detail::by_value_sink<K>) &&
        (!detail::by_value_sink<V>)&&detail::sink_argument<KArg, K>&& detail::sink_argument<
            VArg, V> void insert(KArg&& key, VArg&& value) {
      log_checked<insert_op>(std::forward<KArg>(key), std::forward<VArg>(value));
    }
    template <class VArg = V>
    requires detail::by_value_sink<K> &&
        (!detail::by_value_sink<V>)&&detail::sink_argument<VArg, V> void insert(K key,
                                                                                VArg&& value) {
      log_checked<insert_op>(std::as_const(key), std::forward<VArg>(value));
    }
    template <class KArg = K>
    requires(!detail::by_value_sink<K>) &&
        detail::by_value_sink<V>&& detail::sink_argument<KArg, K> void insert(KArg&& key, V value) {
      log_checked<insert_op>(std::forward<KArg>(key), std::as_const(value));
    }
    void insert(K key, V value) requires detail::by_value_sink<K> && detail::by_value_sink<V> {
      log_checked<insert_op>(std::as_const(key), std::as_const(value));
    }
    // Inserts, or assigns the value of an existing key. Takes and throws as insert().
    template <class KArg = K, class VArg = V>
    requires(!detail::by_value_sink<K>) &&
        (!detail::by_value_sink<V>)&&detail::sink_argument<KArg, K>&& detail::sink_argument<
            VArg, V> void insert_or_assign(KArg&& key, VArg&& value) {
      log_checked<insert_or_assign_op>(std::forward<KArg>(key), std::forward<VArg>(value));
    }
    template <class VArg = V>
    requires detail::by_value_sink<K> &&
        (!detail::by_value_sink<V>)&&detail::sink_argument<VArg, V> void insert_or_assign(
            K key, VArg&& value) {
      log_checked<insert_or_assign_op>(std::as_const(key), std::forward<VArg>(value));
    }
    template <class KArg = K>
    requires(!detail::by_value_sink<K>) &&
        detail::by_value_sink<V>&& detail::sink_argument<KArg, K> void insert_or_assign(KArg&& key,
                                                                                        V value) {
      log_checked<insert_or_assign_op>(std::forward<KArg>(key), std::as_const(value));
    }
    void insert_or_assign(K key,
                          V value) requires detail::by_value_sink<K> && detail::by_value_sink<V> {
      log_checked<insert_or_assign_op>(std::as_const(key), std::as_const(value));
    }
    // Erases `key` if present. Takes a key as insert() does (the log owns a K). Throws
    // bad_alloc (logging nothing), or std::invalid_argument for a null const char*.
    template <class KArg = K>
    requires(!detail::by_value_sink<K>) && detail::sink_argument<KArg, K> void erase(KArg&& key) {
      detail::check_not_null_c_string<K>(std::as_const(key), "tandem::double_buffer_map", "key");
      writer_.emplace(std::in_place_type<erase_op>, detail::as_source<K>(std::forward<KArg>(key)));
    }
    void erase(K key) requires detail::by_value_sink<K> {
      writer_.emplace(std::in_place_type<erase_op>, key);
    }
    // Erases every element for which pred(key, value) is true. pred runs once per element,
    // during the publish() that applies it, on the writer's thread. The log keeps a
    // std::decay_t<P> copied from a const lvalue (or moved from an rvalue) as insert() does.
    template <class P>
    requires double_buffer_map_predicate<std::decay_t<P>, K, V> &&
        detail::sink_argument<P, std::decay_t<P>>
    // A null function pointer or an empty std::function is std::invalid_argument here, with
    // nothing logged (it would crash the next publish(): rule 36).
    void erase_if(P&& pred) {
      using Pred = std::decay_t<P>;
      detail::require_callable(pred, "tandem::double_buffer_map::writer::erase_if", "predicate");
      writer_.emplace(
          std::in_place_type<erase_if_op>,
          std::make_unique<predicate_holder<Pred>>(detail::as_source<Pred>(std::forward<P>(pred))),
          std::vector<K>());
    }
    void clear() { writer_.emplace(std::in_place_type<clear_op>); }

    // See double_buffer::writer::publish / try_publish / pending.
    void publish() { writer_.publish(); }
    [[nodiscard]] bool try_publish() { return writer_.try_publish(); }
    [[nodiscard]] std::size_t pending() const noexcept { return writer_.pending(); }
    // See double_buffer::writer::this_thread_holds_guard (any thread, any time).
    [[nodiscard]] bool this_thread_holds_guard() const noexcept {
      return writer_.this_thread_holds_guard();
    }
    [[nodiscard]] double_buffer_map::reader reader() const {
      return double_buffer_map::reader(writer_.reader());
    }

   private:
    friend class double_buffer_map;
    writer(typename buffer::writer w, std::unique_ptr<map_type> scratch) noexcept
        : scratch_(std::move(scratch)), writer_(std::move(w)) {}

    // The common part of insert and insert_or_assign: the key checked, then logged.
    template <class Op, class KArg, class VArg>
    void log_checked(KArg&& key, VArg&& value) {
      detail::check_not_null_c_string<K>(std::as_const(key), "tandem::double_buffer_map", "key");
      log_entry<Op>(detail::as_source<K>(std::forward<KArg>(key)),
                    detail::as_source<V>(std::forward<VArg>(value)));
    }

    // Logs an insert or insert_or_assign; key and value are detail::as_source results (a const
    // lvalue to copy, an rvalue to move), each copied or moved once into the log.
    template <class Op, class KSource, class VSource>
    void log_entry(KSource&& key, VSource&& value) {
      if constexpr (uses_node_handles) {
        writer_.emplace(std::in_place_type<Op>,
                        make_node(std::forward<KSource>(key), std::forward<VSource>(value)));
      } else {
        writer_.emplace(std::in_place_type<Op>, std::forward<KSource>(key),
                        std::forward<VSource>(value));
      }
    }

    // Copies or moves key and value into a node of the scratch map and extracts it: the node the
    // log owns until the replay links it into the second copy. The scratch map is empty between
    // calls (and keeps its few buckets, so this allocates only the node). Maps with node
    // handles only.
    template <class KSource, class VSource>
    auto make_node(KSource&& key, VSource&& value) {
      if (TANDEM_UNLIKELY(scratch_ == nullptr)) {
        detail::throw_double_buffer_used_after_move(
            "tandem::double_buffer_map::writer used after move (insert on a moved-from "
            "writer)");
      }
      try {
        // A const_iterator, the type extract takes: converted there, an iterator tied with the
        // extract(const key_type&) overload for a K that converts from anything (a forwarding
        // constructor template), which did not compile.
        const typename map_type::const_iterator where =
            scratch_->try_emplace(std::forward<KSource>(key), std::forward<VSource>(value)).first;
        return scratch_->extract(where);
      } catch (...) {
        scratch_->clear();  // extract may recompute the hash (and throw) with the entry inside
        throw;
      }
    }

    // Always empty; behind a pointer: noexcept moves. Null for maps without node handles.
    // Declared before writer_, so it outlives the pending ops that ~writer destroys: an
    // insert from one of their destructors (an erase_if predicate's, a value's) reaches the
    // inner writer's refusal instead of a destroyed scratch map (found by review, 2026-12-02).
    std::unique_ptr<map_type> scratch_;
    typename buffer::writer writer_;
  };

  // Both maps are built as map_type(bucket_count, hash, equal): each gets its own copy of
  // `hash` and `equal`. make_double_buffer_map is the usual way in. The forms given no Hash
  // build Hash() and KeyEqual(): they require types whose default-constructed value works (not
  // a function pointer or a std::function, which would be null or empty: detail/callables.hpp).
  // The last form throws std::invalid_argument for a null function pointer or an empty
  // std::function as the hash or equal. An overload set (so is make_double_buffer_map): to
  // pass it as a function, wrap it in a lambda.
  [[nodiscard]] static std::pair<writer, reader> create(
      std::size_t bucket_count = 0) requires detail::default_callables<Hash, KeyEqual> {
    return create(bucket_count, Hash());
  }
  [[nodiscard]] static std::pair<writer, reader> create(std::size_t bucket_count, const Hash& hash,
                                                        const KeyEqual& equal = KeyEqual()) {
    detail::require_callable(hash, "tandem::double_buffer_map", "Hash");
    detail::require_callable(equal, "tandem::double_buffer_map", "KeyEqual");
    auto [w, r] = buffer::create(bucket_count, hash, equal);
    std::unique_ptr<map_type> scratch;
    if constexpr (uses_node_handles) scratch = std::make_unique<map_type>(0, hash, equal);
    return {writer(std::move(w), std::move(scratch)), reader(std::move(r))};
  }
};

// double_buffer_map over an inner map type: K, V, Hash and KeyEqual are Map's.
//   using table = tandem::double_buffer_map_over<boost::unordered_flat_map<std::string, int>>;
template <class Map, sync::fence_policy Fence = sync::asymmetric_fence>
using double_buffer_map_over =
    double_buffer_map<typename Map::key_type, typename Map::mapped_type, typename Map::hasher,
                      typename Map::key_equal, Map, Fence>;

// auto [w, r] = tandem::make_double_buffer_map<K, V>();  (optionally <K, V, Hash, KeyEqual,
// Map> and (bucket_count, hash, equal)).
// The form given no Hash requires Hash and KeyEqual types whose default-constructed value
// works; the other throws std::invalid_argument for a null or empty one (see create()).
template <class K, class V, class Hash = default_hash<K>, class KeyEqual = default_key_equal<K>,
          class Map = std::unordered_map<K, V, Hash, KeyEqual>>
requires double_buffer_map_key<K> && double_buffer_map_value<V> &&
    double_buffer_map_hash<Hash, K> && double_buffer_map_key_equal<KeyEqual, K> &&
    double_buffer_inner_map<Map, K, V, Hash, KeyEqual> && detail::default_callables<Hash, KeyEqual>
[[nodiscard]] auto make_double_buffer_map(std::size_t bucket_count = 0) {
  return double_buffer_map<K, V, Hash, KeyEqual, Map>::create(bucket_count);
}
template <class K, class V, class Hash = default_hash<K>, class KeyEqual = default_key_equal<K>,
          class Map = std::unordered_map<K, V, Hash, KeyEqual>>
requires double_buffer_map_key<K> && double_buffer_map_value<V> &&
    double_buffer_map_hash<Hash, K> && double_buffer_map_key_equal<KeyEqual, K> &&
    double_buffer_inner_map<Map, K, V, Hash, KeyEqual>
[[nodiscard]] auto make_double_buffer_map(std::size_t bucket_count, const Hash& hash,
                                          const KeyEqual& equal = KeyEqual()) {
  return double_buffer_map<K, V, Hash, KeyEqual, Map>::create(bucket_count, hash, equal);
}

}  // namespace tandem
