// tandem/rc_map.hpp -- a concurrent map whose entries live exactly as long as someone holds them.
//
// What it is for: shared things that should exist while in use and vanish after -- a topic
// while it has subscribers, a connection pool while a tenant is active, a compiled query while
// a request holds it. get / insert / try_emplace / get_or_insert_with return a `handle`, a
// counted reference to the entry; when the last handle to an entry is destroyed, the entry is
// erased from the map and its value destroyed. There is no remove(): holding is the lifetime.
// Not for: a cache that should keep entries after their last user (keep a handle yourself, or
// use a map with an eviction policy), or values you want to replace in place (entries are
// immutable except through V's own interface; the map does not synchronise access to V).
//
// Keys, one rule for every function: K itself, any key that Hash and KeyEqual both accept when
// both are transparent (for string keys the defaults tandem::string_hash / string_equal are:
// std::string_view and const char* are used as they are), or anything implicitly convertible to
// K (converted to one K per call). A K is built only when an entry is created: the hit path of
// insert / try_emplace / get_or_insert_with builds no K and leaves its arguments untouched
// (they are forwarded; insert's value is used only to build the new entry's V).
//
// Layout: the map is cut into shards (tandem::sync::striped, one small_mutex per shard, chosen
// by the key's mixed hash); each shard holds an intrusive chained hash table of heap nodes.
// A node is {use count, key, once_cell<V>, bucket link, `linked` flag, the shard's state}.
// A handle is one pointer to a node.
//
// The count/erase protocol, step by step (each step names the race it excludes):
//  1. A node's use count starts at 1 (the handle its creator returns). Copying a handle adds 1
//     (one atomic increment, no lock); moving one transfers it.
//  2. Under the shard lock, a lookup (get, contains, insert, ...) takes a new reference only
//     with a CAS that refuses to increment 0: a count of 0 is final, so a node that reached 0
//     is dead and every lookup treats it as absent. => No resurrection: a get racing the last
//     release either increments first (then the release is not the last one, and the entry
//     stays) or sees 0 (and reports the key absent) -- it never returns a dying node.
//  3. Releasing a handle decrements the count. The one thread that takes it from 1 to 0 owns
//     the node's destruction: it locks the shard, unlinks the node if its `linked` flag is still
//     set, unlocks, and only then destroys the key and value (outside any lock, so V's
//     destructor may use the map).
//  4. Insertion (insert, try_emplace, get_or_insert_with) looks the key up and links a new node
//     in the same critical section; if it finds a dead node for the key it unlinks it first
//     and clears its `linked` flag. => No double insert: two first inserts of a key are
//     serialised by the shard lock, and the second finds the first one's node. => No stale
//     erase: a releasing thread unlinks only its own node, identified by the node's address and
//     `linked` flag, never by key, so an old handle cannot erase a newer entry of the same key.
//  5. A new node's value is built AFTER the shard lock is released, by once_cell<V>::get_or_init
//     (tandem/sync/once_cell.hpp): the creator runs `make`; concurrent callers for the key find
//     the node in step 4, take a reference and wait in the same get_or_init; if `make` throws,
//     the cell is empty again, the exception goes to the creator, a waiter builds with its own
//     `make`, and if nobody waits the creator's released handle erases the node (step 3).
//     get/contains/use_count/for_each see an entry only once its value is built (size counts
//     it from step 4: its key is taken).
//  6. Handles may outlive the map: ~rc_map locks each shard, clears every node's `linked` flag,
//     marks the shard orphaned and counts the nodes still alive into a shared counter; the last
//     of those nodes to be released frees the shards (step 3 then unlinks nothing).
//     Releasing handles on other threads while ~rc_map runs is fine; calling the map's own
//     member functions then is not (as for any object being destroyed).
//
// Guarantees:
//  - Handles hold no lock: holding any number of them never blocks a map operation (unlike a
//    dashmap Ref). Map operations hold one shard lock for a few hash-table steps and never call
//    user code under it except Hash and KeyEqual (and K's move constructor on insertion).
//    `make`, V's constructors and destructors, and for_each's `f` run with no map lock held.
//  - Blocking: a map operation may wait for another's short critical section on the same
//    shard; get_or_insert_with / try_emplace / insert on a key whose value is being built wait
//    for that build. A `make` that needs its own key gets tandem::recursive_creation_error.
//  - Exceptions: strong guarantee for insert/try_emplace/get_or_insert_with (allocation, Hash,
//    KeyEqual, K's construction, V's constructor or `make` throwing leaves no entry behind and
//    the exception reaches the caller; arguments are moved from only once the node is being
//    built). get/contains/use_count/size allocate nothing. Handle copy, move, assignment and
//    destruction are noexcept, and so is ~rc_map: they find nodes and shards by address and
//    the stored mixed hash, so they call no Hash or KeyEqual and allocate nothing.
//
// Costs: one heap node per entry (its key, value, a count, two pointers, a hash, a flag and the
// once_cell's state) and, past 8 entries in a shard, one bucket pointer per entry (tables
// double at load factor 1 and never shrink). The map itself is shard_count cache lines, each
// holding a shard's lock, counters and first 8 buckets. A lookup: one hash, one shard lock, one
// CAS on the count. A handle copy: one uncontended atomic increment; a release that is not the
// last: one atomic decrement; the last: one more shard lock and the node's deallocation.
//
// Assignment reads its source before releasing its old entry (copy: increment the new count,
// then release; move: take the pointer, then release), so `h = h->next` works when the old
// entry's value owns the source, and self-assignment never drops the count to 0.
//
// Memory ordering: the shard lock orders all table changes and the `linked`/orphaned flags.
// A handle copy increments with relaxed order (the source handle already keeps the node alive,
// like shared_ptr); a release decrements with acq_rel so that every holder's use of V
// happens-before the destruction by the last one. The lookup CAS (step 2) is relaxed: it runs
// under the shard lock, which keeps the node from being freed (its releaser must take the same
// lock before freeing it), and V's contents are published by once_cell's acquire/release.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <concepts>
#include <cstddef>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "string_hash.hpp"
#include "sync/assert.hpp"
#include "sync/once_cell.hpp"
#include "sync/striped_lock.hpp"
#include "sync/sync_point.hpp"

namespace tandem {

// ---- Requirements: named concepts on the class template (see rc_map below), so that a bad
// parameter's first error names tandem::rc_map and the output names the concept it broke. ----

// K is moved (or built) into the entry and compared/hashed in place.
template <class K>
concept rc_map_key = std::is_object_v<K> && !std::is_const_v<K> && !std::is_volatile_v<K> &&
                     std::destructible<K> && std::move_constructible<K>;

// V is built in place from a `make` result or constructor arguments; nothing else is needed
// (it need not be copyable or movable). Checkable while V is still incomplete, so that V may
// hold handles of its own map (rc_map<K, node> inside node); V must be destructible once the
// map is constructed (a static_assert there).
template <class V>
concept rc_map_value =
    std::is_object_v<V> && !std::is_array_v<V> && !std::is_const_v<V> && !std::is_volatile_v<V>;

// Hash: copy-constructible (the map keeps one), maps a const K& to std::size_t. For a key type
// with no std::hash specialisation, pass your own.
template <class Hash, class K>
concept rc_map_hash =
    std::copy_constructible<Hash> && std::is_invocable_r_v<std::size_t, const Hash&, const K&>;

// KeyEqual: copy-constructible, compares two Ks.
template <class KeyEqual, class K>
concept rc_map_key_equal = std::copy_constructible<KeyEqual> &&
    std::is_invocable_r_v<bool, const KeyEqual&, const K&, const K&>;

// A key other than K that lookups use as it is: both Hash and KeyEqual are transparent (declare
// `is_transparent`) and accept it, like std::unordered_map's heterogeneous lookup. For string
// keys with the default tandem::string_hash / string_equal: std::string_view, const char*.
template <class Q, class K, class Hash, class KeyEqual>
concept rc_map_transparent_key = requires {
  typename Hash::is_transparent;
  typename KeyEqual::is_transparent;
}
&&std::is_invocable_r_v<std::size_t, const Hash&, const Q&>&&
    std::is_invocable_r_v<bool, const KeyEqual&, const Q&, const K&>;

// What every rc_map function taking a key accepts: K itself or an rc_map_transparent_key (used
// as they are: no K is built), or anything implicitly convertible to K (an integer literal for
// a std::uint64_t key, a const char* with a non-transparent Hash, ...), converted to one K per
// call.
template <class Q, class K, class Hash, class KeyEqual>
concept rc_map_key_argument = std::same_as<std::remove_cvref_t<Q>, K> ||
    rc_map_transparent_key<std::remove_cvref_t<Q>, K, Hash, KeyEqual> ||
    std::convertible_to<const std::remove_cvref_t<Q>&, K>;

// What the inserting functions (insert, try_emplace, get_or_insert_with) accept: an
// rc_map_key_argument from which the entry's K can be built when the key is absent.
template <class Q, class K, class Hash, class KeyEqual>
concept rc_map_insert_key =
    rc_map_key_argument<Q, K, Hash, KeyEqual> && std::constructible_from<K, Q&&>;

namespace detail {

// The default shard count: 16 per hardware thread, so that threads rarely meet on one (two
// random keys share a shard with probability 1/shards: about 3% with 32 shards on 2 cores),
// while an idle map stays small (a shard is one cache line: 32 shards = 4 KiB on x86-64).
// Capped at 4096 so a huge machine does not get a huge map.
inline std::size_t default_rc_map_shard_count() noexcept {
  const std::size_t threads = std::max<std::size_t>(1, std::thread::hardware_concurrency());
  return std::bit_ceil(std::min<std::size_t>(threads * 16, 4096));
}

}  // namespace detail

// Hash/KeyEqual default to tandem::string_hash/string_equal for string keys (transparent: see
// tandem/string_hash.hpp), else std::hash<K>/std::equal_to<K>.
template <class K, class V, class Hash = default_hash<K>, class KeyEqual = default_key_equal<K>>
requires rc_map_key<K> && rc_map_value<V> && rc_map_hash<Hash, K> &&
    rc_map_key_equal<KeyEqual, K>
class rc_map {

  struct shard_table;
  struct shared_state;

  struct node {
    template <class KeyArg>
    node(shared_state* owner, std::size_t mixed, KeyArg&& k)
        : mixed_hash(mixed), state(owner), key(std::forward<KeyArg>(k)) {}

    std::atomic<std::size_t> uses{1};  // handles; 0 is final (dead)
    node* next = nullptr;              // bucket chain; guarded by the shard lock
    bool linked = true;                // in its shard's table; guarded by the shard lock
    const std::size_t mixed_hash;      // sync::mix_hash(Hash(key))
    shared_state* const state;
    const K key;
    sync::once_cell<V> value;
  };

  using shards_type = sync::striped<shard_table, sync::small_mutex>;

 public:
  using key_type = K;
  using mapped_type = V;
  using hasher = Hash;
  using key_equal = KeyEqual;

  // A counted reference to one entry. Empty when default-constructed or moved from.
  class [[nodiscard]] handle {
   public:
    handle() noexcept = default;
    handle(const handle& other) noexcept : node_(other.node_) {
      // relaxed: `other` keeps the node alive, so nothing needs ordering (as in shared_ptr);
      // the release in release() orders our later uses of the value before its destruction.
      if (node_ != nullptr) node_->uses.fetch_add(1, std::memory_order_relaxed);
    }
    handle(handle&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
    // Refers to other's entry, then releases this handle's old one (erasing it if this was
    // its last handle). Source first: `other` may live inside the value of the old entry (a
    // linked structure: `h = h->next`), which the release destroys; and h = h is a no-op
    // (the count goes up before it comes down, so it never reaches 0).
    handle& operator=(const handle& other) noexcept {
      node* const incoming = other.node_;
      // relaxed: as in the copy constructor.
      if (incoming != nullptr) incoming->uses.fetch_add(1, std::memory_order_relaxed);
      release(std::exchange(node_, incoming));
      return *this;
    }
    // Takes other's count, then releases the old entry (source first, as above). Self-move
    // keeps the entry.
    handle& operator=(handle&& other) noexcept {
      node* const incoming = std::exchange(other.node_, nullptr);
      release(std::exchange(node_, incoming));
      return *this;
    }
    ~handle() { release(node_); }

    // Releases the entry now (erasing it if this was the last handle); the handle is empty.
    void reset() noexcept { release(std::exchange(node_, nullptr)); }

    // Precondition: not empty (TANDEM_ASSERT). Not noexcept: a narrow contract.
    V& operator*() const {
      TANDEM_ASSERT(node_ != nullptr, "dereferenced an empty rc_map handle");
      return *node_->value.get();
    }
    V* operator->() const {
      TANDEM_ASSERT(node_ != nullptr, "dereferenced an empty rc_map handle");
      return node_->value.get();
    }
    const K& key() const {
      TANDEM_ASSERT(node_ != nullptr, "key() of an empty rc_map handle");
      return node_->key;
    }
    // Handles to this entry right now (0 for an empty handle); a snapshot under concurrency.
    [[nodiscard]] std::size_t use_count() const noexcept {
      // relaxed: a statistic; it orders nothing.
      return node_ != nullptr ? node_->uses.load(std::memory_order_relaxed) : 0;
    }
    explicit operator bool() const noexcept { return node_ != nullptr; }

    // Same entry (not just an equal key): an entry erased and re-created is a different one.
    friend bool operator==(const handle& a, const handle& b) noexcept { return a.node_ == b.node_; }

   private:
    friend class rc_map;
    explicit handle(node* adopted) noexcept : node_(adopted) {}  // takes over one count
    node* node_ = nullptr;
  };

  rc_map() : rc_map(detail::default_rc_map_shard_count()) {}
  // shard_count is rounded up to a power of two; 0 throws std::invalid_argument.
  explicit rc_map(std::size_t shard_count, const Hash& hash = Hash(),
                  const KeyEqual& equal = KeyEqual())
      : state_(new shared_state(checked_shard_count(shard_count), hash, equal)) {
    static_assert(std::destructible<V>,
                  "tandem::rc_map<K, V>: V must be destructible (entries are destroyed when "
                  "their last handle goes)");
  }

  rc_map(const rc_map&) = delete;
  rc_map& operator=(const rc_map&) = delete;

  // Entries still held by handles stay valid; their release then frees them (protocol step 6).
  ~rc_map() { orphan(state_); }

  // Keys: every function below takes K, any key Hash and KeyEqual accept when both are
  // transparent (for string keys by default: std::string_view, const char*, std::string), or
  // anything implicitly convertible to K (see rc_map_key_argument). A transparent key is used as
  // it is; a K is built only when an entry is created (never on a hit), and a convertible
  // argument is converted to one K per call.

  // A handle to the entry for `key`, or nullopt if there is none (or its value is still being
  // built, or its last handle is being released right now).
  template <class Q>
  requires rc_map_key_argument<Q, K, Hash, KeyEqual>
  [[nodiscard]] std::optional<handle> get(const Q& key) {
    return get_impl(lookup_form(key));
  }

  // Inserts key -> value unless the key is present. Returns a handle to the entry and whether
  // this call inserted it; false leaves the existing value untouched and does not touch the
  // arguments either (no K or V is built, nothing is moved from): both are forwarded, and used
  // only when the entry is created.
  template <class Q, class W = V>
  requires rc_map_insert_key<Q, K, Hash, KeyEqual> && std::constructible_from<V, W&&>
  [[nodiscard]] std::pair<handle, bool> insert(Q&& key, W&& value) {
    return acquire_or_build(insert_form<Q>(key),
                            [&]() -> V { return V(std::forward<W>(value)); });
  }

  // Builds V(args...) in place (after the shard lock is released) only if the key is absent.
  template <class Q, class... Args>
  requires rc_map_insert_key<Q, K, Hash, KeyEqual>
  [[nodiscard]] std::pair<handle, bool> try_emplace(Q&& key, Args&&... args) {
    static_assert(std::is_constructible_v<V, Args&&...>,
                  "tandem::rc_map::try_emplace: V is not constructible from these arguments");
    return acquire_or_build(insert_form<Q>(key),
                            [&]() -> V { return V(std::forward<Args>(args)...); });
  }

  // The entry for `key`, built by make() if absent. make() runs at most once per absent key,
  // with no map lock held; concurrent callers for the key wait for it and share its result.
  // If make throws, no entry remains, the exception reaches this caller, and a waiting caller
  // (if any) builds with its own make.
  template <class Q, class F>
  requires rc_map_insert_key<Q, K, Hash, KeyEqual>
  [[nodiscard]] handle get_or_insert_with(Q&& key, F&& make) {
    static_assert(std::is_invocable_v<F&>,
                  "tandem::rc_map::get_or_insert_with: make must be callable with no arguments");
    static_assert(std::is_same_v<std::remove_cv_t<std::invoke_result_t<F&>>, V> ||
                      std::is_constructible_v<V, std::invoke_result_t<F&>>,
                  "tandem::rc_map::get_or_insert_with: make() must return V (or something V is "
                  "constructible from)");
    return acquire_or_build(insert_form<Q>(key), [&]() -> V { return std::invoke(make); }).first;
  }

  template <class Q>
  requires rc_map_key_argument<Q, K, Hash, KeyEqual>
  [[nodiscard]] bool contains(const Q& key) const {
    return use_count_impl(lookup_form(key)) != 0;
  }

  // Handles to the entry for `key` right now; 0 when absent.
  template <class Q>
  requires rc_map_key_argument<Q, K, Hash, KeyEqual>
  [[nodiscard]] std::size_t use_count(const Q& key) const {
    return use_count_impl(lookup_form(key));
  }

  // Entries in the map. Besides the entries get() can return, this counts, while they last,
  // an entry whose value is being built (its key is taken: a second insert waits for it) and
  // one whose last handle is being released right now (it is gone when that release returns).
  // Exact when no other thread changes the map; otherwise a sum of per-shard counts read one
  // after the other. O(shard_count), takes no lock.
  [[nodiscard]] std::size_t size() const noexcept {
    std::size_t total = 0;
    for (std::size_t i = 0; i < state_->shards.stripe_count(); ++i) {
      // relaxed: a statistic; each count is exact for its shard after a completed operation.
      total += state_->shards[i].value.linked.load(std::memory_order_relaxed);
    }
    return total;
  }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }

  [[nodiscard]] std::size_t shard_count() const noexcept { return state_->shards.stripe_count(); }

  // Calls f(const K&, const V&) for every entry, shard by shard. The entries of a shard are
  // pinned (as if by handles) under its lock, then f runs with no lock held, so f may use the
  // map. Entries added or erased meanwhile may or may not be visited.
  template <class F>
  void for_each(F&& f) const {
    static_assert(std::is_invocable_v<F&, const K&, const V&>,
                  "tandem::rc_map::for_each: f must be callable as f(const K&, const V&)");
    std::vector<handle> pinned;
    for (std::size_t i = 0; i < state_->shards.stripe_count(); ++i) {
      auto& shard = state_->shards[i];
      {
        std::lock_guard<sync::small_mutex> guard(shard.mutex);
        pinned.reserve(shard.value.linked.load(std::memory_order_relaxed));  // relaxed: locked
        shard.value.visit([&](node* n) {
          if (n->value.is_ready() && try_acquire(n)) pinned.push_back(handle(n));
        });
      }
      for (const handle& h : pinned) std::invoke(f, h.node_->key, *h.node_->value.get());
      pinned.clear();  // releases, with no lock held
    }
  }

 private:
  // One shard's table: an intrusive chained hash table, buckets indexed by the HIGH bits of the
  // mixed hash (the stripe was chosen by its low bits). Everything is guarded by the shard lock
  // except `linked`, which size() reads without it.
  struct shard_table {
    // The first 8 buckets live inside the shard, on the cache line of its lock: a shard with
    // at most 8 entries needs no bucket allocation, and an operation touches one shard line
    // instead of two (measured: fewer cache-line transfers when threads share shards).
    static constexpr unsigned inline_bucket_bits = 3;

    shard_table() noexcept = default;
    shard_table(const shard_table&) = delete;  // `buckets` may point into this object
    shard_table& operator=(const shard_table&) = delete;

    node* inline_buckets[std::size_t{1} << inline_bucket_bits] = {};
    std::unique_ptr<node*[]> heap_buckets;  // after the first growth
    node** buckets = inline_buckets;        // inline_buckets or heap_buckets.get()
    unsigned bucket_bits = inline_bucket_bits;
    // Nodes in the table (built or not, live or dead): what size() sums. Written only under
    // the lock, with a load and a store (no read-modify-write needed); atomic because size()
    // reads it without the lock.
    std::atomic<std::size_t> linked{0};
    std::size_t alive = 0;  // nodes of this shard not yet freed (linked or not)
    bool orphaned = false;  // the map is gone; releasers report to orphaned_nodes

    [[nodiscard]] std::size_t bucket_of(std::size_t mixed) const noexcept {
      return mixed >> (std::numeric_limits<std::size_t>::digits - bucket_bits);
    }

    template <class Q>
    node* find(std::size_t mixed, const Q& key, const KeyEqual& equal) const {
      for (node* n = buckets[bucket_of(mixed)]; n != nullptr; n = n->next) {
        if (n->mixed_hash == mixed && static_cast<bool>(std::invoke(equal, key, n->key))) {
          return n;
        }
      }
      return nullptr;
    }

    // Makes room for one more node (may throw std::bad_alloc; the table is unchanged then).
    void reserve_one_more() {
      const std::size_t capacity = std::size_t{1} << bucket_bits;
      if (linked.load(std::memory_order_relaxed) < capacity) return;  // relaxed: under lock
      const unsigned bits = bucket_bits + 1;
      auto grown = std::make_unique<node*[]>(std::size_t{1} << bits);  // zeroed
      bucket_bits = bits;
      for (std::size_t b = 0; b < capacity; ++b) {
        for (node* n = buckets[b]; n != nullptr;) {
          node* next = n->next;
          node*& head = grown[bucket_of(n->mixed_hash)];
          n->next = head;
          head = n;
          n = next;
        }
      }
      heap_buckets = std::move(grown);
      buckets = heap_buckets.get();
    }

    void link(node* n) noexcept {
      node*& head = buckets[bucket_of(n->mixed_hash)];
      n->next = head;
      head = n;
      add_linked(1);
    }

    void unlink(node* n) noexcept {
      node** slot = &buckets[bucket_of(n->mixed_hash)];
      while (*slot != n) slot = &(*slot)->next;
      *slot = n->next;
      n->next = nullptr;
      n->linked = false;
      add_linked(static_cast<std::size_t>(-1));
    }

    void add_linked(std::size_t delta) noexcept {
      // relaxed: only lock holders write (so no update is lost), and size() is a statistic.
      linked.store(linked.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
    }

    template <class F>
    void visit(F&& f) const {
      for (std::size_t b = 0; b < (std::size_t{1} << bucket_bits); ++b) {
        for (node* n = buckets[b]; n != nullptr; n = n->next) f(n);
      }
    }
  };

  // What handles share with the map and what outlives it while handles remain (step 6).
  struct shared_state {
    shared_state(std::size_t shard_count, const Hash& h, const KeyEqual& e)
        : hash(h), equal(e), shards(shard_count) {}

    Hash hash;
    KeyEqual equal;
    shards_type shards;
    // After ~rc_map: 1 (the destructor's own reference) + nodes not yet freed; the thread that
    // takes it to 0 deletes this state.
    std::atomic<std::size_t> orphaned_nodes{0};
  };

  static std::size_t checked_shard_count(std::size_t shard_count) {
    if (shard_count == 0) {
      throw std::invalid_argument("tandem::rc_map: the shard count must be at least 1");
    }
    return shard_count;
  }

  // A once_cell label (see sync/once_cell.hpp): the key, when it can be printed.
  static std::string label_of(const void* key) {
    const K& k = *static_cast<const K*>(key);
    if constexpr (std::is_convertible_v<const K&, std::string_view>) {
      return "rc_map key \"" + std::string(std::string_view(k)) + "\"";
    } else if constexpr (std::is_integral_v<K>) {
      return "rc_map key " + std::to_string(k);
    } else {
      return "an rc_map entry";
    }
  }

  // Whether a key argument is used as it is (K itself, or transparent) rather than converted.
  template <class Q>
  static constexpr bool used_as_is = std::is_same_v<std::remove_cvref_t<Q>, K> ||
      rc_map_transparent_key<std::remove_cvref_t<Q>, K, Hash, KeyEqual>;

  // A lookup's key argument as the table takes it: itself, or converted to a K (a temporary
  // that lives until the end of the caller's full-expression).
  template <class Q>
  static decltype(auto) lookup_form(const Q& key) {
    if constexpr (used_as_is<Q>) {
      return (key);
    } else {
      return K(key);
    }
  }

  // An inserting function's key argument, forwarded (Q&&: an rvalue K is moved into the node
  // only if one is created), or converted to one K (a temporary, moved into the node if one is
  // created). Call as insert_form<Q>(key) with the function's forwarding parameter `key`.
  template <class Q>
  static decltype(auto) insert_form(std::remove_reference_t<Q>& key) {
    if constexpr (used_as_is<Q>) {
      return static_cast<Q&&>(key);
    } else {
      return K(static_cast<Q&&>(key));
    }
  }

  template <class Q>
  [[nodiscard]] std::size_t mixed_hash_of(const Q& key) const {
    return sync::mix_hash(static_cast<std::size_t>(std::invoke(state_->hash, key)));
  }

  // Step 2: a new reference only from a nonzero count. Caller holds the node's shard lock.
  static bool try_acquire(node* n) noexcept {
    // relaxed: the shard lock keeps the node allocated (its releaser frees it only after taking
    // that lock and unlinking it), and the value is published by once_cell, not by this count.
    std::size_t uses = n->uses.load(std::memory_order_relaxed);
    do {
      if (uses == 0) return false;  // dead: its releaser is on its way to unlink it
      TANDEM_SYNC_POINT();          // decided from `uses`; a release may drop it meanwhile
    } while (!n->uses.compare_exchange_weak(uses, uses + 1, std::memory_order_relaxed,
                                            std::memory_order_relaxed));
    return true;
  }

  template <class Q>
  std::optional<handle> get_impl(const Q& key) {
    const std::size_t mixed = mixed_hash_of(key);
    auto& shard = state_->shards.for_mixed_hash(mixed);
    node* found = nullptr;
    {
      std::lock_guard<sync::small_mutex> guard(shard.mutex);
      found = shard.value.find(mixed, key, state_->equal);
      if (found == nullptr || !found->value.is_ready() || !try_acquire(found)) return std::nullopt;
    }
    return handle(found);
  }

  template <class Q>
  std::size_t use_count_impl(const Q& key) const {
    const std::size_t mixed = mixed_hash_of(key);
    auto& shard = state_->shards.for_mixed_hash(mixed);
    std::lock_guard<sync::small_mutex> guard(shard.mutex);
    const node* found = shard.value.find(mixed, key, state_->equal);
    if (found == nullptr || !found->value.is_ready()) return 0;
    // relaxed: under the shard lock the node cannot be freed; the number is a snapshot.
    return found->uses.load(std::memory_order_relaxed);
  }

  // Steps 4 and 5: find or link the node under the lock, then build its value without it.
  // `key` is K or a transparent key (see insert_form); a K is built (copied, moved or
  // constructed) from it only when a node is created.
  template <class Q, class Make>
  std::pair<handle, bool> acquire_or_build(Q&& key, Make&& make) {
    const std::size_t mixed = mixed_hash_of(std::as_const(key));
    auto& shard = state_->shards.for_mixed_hash(mixed);
    node* target = nullptr;
    {
      std::lock_guard<sync::small_mutex> guard(shard.mutex);
      shard_table& table = shard.value;
      node* found = table.find(mixed, std::as_const(key), state_->equal);
      TANDEM_SYNC_POINT();  // found (or not) under the lock; releases still run on its count
      if (found != nullptr && try_acquire(found)) {
        target = found;
      } else {
        table.reserve_one_more();                          // may throw: nothing changed
        // The only place a K is built: the key is absent. May throw: nothing changed (and an
        // rvalue argument is moved from only if K's constructor gets that far).
        target = new node(state_, mixed, std::forward<Q>(key));
        target->value.set_label(&label_of, &target->key);  // names it in cycle errors
        if (found != nullptr) table.unlink(found);         // dead: its releaser only frees it
        table.link(target);
        ++table.alive;
      }
    }
    handle result(target);  // owns the count taken above; releases it if the build throws
    bool built_here = false;
    static_cast<void>(target->value.get_or_init([&]() -> V {
      built_here = true;
      return std::invoke(make);
    }));
    return {std::move(result), built_here};
  }

  // Step 3 (and step 6 after the map is gone).
  static void release(node* n) noexcept {
    if (n == nullptr) return;
    TANDEM_SYNC_POINT();  // about to drop the hold: lookups may take one meanwhile
    // "Am I the last?" is the value this fetch_sub returns, never an earlier load.
    // acq_rel: release orders this holder's uses of the value before the destruction; acquire
    // (for the thread that reaches 0) makes every other holder's uses happen-before it.
    if (n->uses.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    TANDEM_SYNC_POINT();  // dead (0 is final) but still linked: lookups must skip it
    shared_state* state = n->state;
    auto& shard = state->shards.for_mixed_hash(n->mixed_hash);
    bool orphaned = false;
    {
      std::lock_guard<sync::small_mutex> guard(shard.mutex);
      // The erase decision: only if no insertion replaced (and unlinked) it meanwhile.
      if (n->linked) shard.value.unlink(n);
      --shard.value.alive;
      orphaned = shard.value.orphaned;
    }
    TANDEM_SYNC_POINT();  // unlinked; the map may be orphaned by ~rc_map meanwhile
    delete n;  // key and value destroyed with no lock held
    // acq_rel: the last of the orphaned nodes' releasers (or ~rc_map) sees all others' frees.
    if (orphaned && state->orphaned_nodes.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete state;
    }
  }

  static void orphan(shared_state* state) noexcept {
    // relaxed: published to releasers by the shard locks taken below.
    state->orphaned_nodes.store(1, std::memory_order_relaxed);
    for (std::size_t i = 0; i < state->shards.stripe_count(); ++i) {
      auto& shard = state->shards[i];
      std::lock_guard<sync::small_mutex> guard(shard.mutex);
      shard.value.visit([](node* n) { n->linked = false; });
      std::fill(std::begin(shard.value.inline_buckets), std::end(shard.value.inline_buckets),
                nullptr);
      shard.value.buckets = shard.value.inline_buckets;
      shard.value.bucket_bits = shard_table::inline_bucket_bits;
      shard.value.heap_buckets.reset();
      shard.value.linked.store(0, std::memory_order_relaxed);  // relaxed: under the lock
      shard.value.orphaned = true;
      // relaxed: releasers of this shard read it only after taking this lock (which orders it).
      state->orphaned_nodes.fetch_add(shard.value.alive, std::memory_order_relaxed);
    }
    // acq_rel: pairs with the releasers' fetch_sub, so the last one to reach 0 sees all frees.
    if (state->orphaned_nodes.fetch_sub(1, std::memory_order_acq_rel) == 1) delete state;
  }

  shared_state* state_;
};

}  // namespace tandem
