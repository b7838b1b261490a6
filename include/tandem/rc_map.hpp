// tandem/rc_map.hpp -- a concurrent map whose entries live exactly as long as someone holds them
// (and, with the linger option, a configured idle time after that).
//
// What it is for: shared things that should exist while in use and vanish after -- a topic
// while it has subscribers, a connection pool while a tenant is active, a compiled query while
// a request holds it. get / insert / try_emplace / get_or_insert_with return a `handle`, a
// counted reference to the entry; when the last handle to an entry is destroyed, the entry is
// erased from the map and its value destroyed. There is no remove(): holding is the lifetime.
// With rc_map_options::linger, an entry whose last handle went stays ("lingers") for that idle
// time, and a lookup within it revives the same value instead of building a new one (pools and
// compiled queries used by short requests that do not overlap); the number of lingering entries
// is bounded by rc_map_options::max_lingering.
// Not for: a cache with a size- or frequency-based eviction policy for values nobody holds
// (moka, caffeine), or values you want to replace in place (entries are immutable except
// through V's own interface; the map does not synchronise access to V).
//
// Keys, one rule for every function: K itself, any key that Hash and KeyEqual both accept when
// both are transparent (for string keys the defaults tandem::string_hash / string_equal are:
// std::string_view and const char* are used as they are), or anything implicitly convertible to
// K (converted to one K per call, from the argument as const: an rvalue argument is not moved
// from). A K is built only when an entry is created:
// the hit path of insert / try_emplace / get_or_insert_with builds no K (but a converted one)
// and leaves its arguments untouched (they are forwarded; insert's value is used only to build
// the new entry's V).
//
// Layout: the map is cut into shards (tandem::sync::striped, one small_mutex per shard, chosen
// by the key's mixed hash: detail::spread_hash); each shard holds an intrusive chained hash table
// of heap nodes. A node is {use count, weak count, key, once_cell<V>, bucket link, `linked` flag,
// the shard's state, and the linger fields: `lingering` flag, deadline, two list links}. A handle
// and a weak_handle are one pointer to a node.
//
// The count/erase protocol, step by step (each step names the race it excludes):
//  1. A node's use count starts at 1 (the handle its creator returns). Copying a handle adds 1
//     (one atomic increment, no lock); moving one transfers it.
//  2. Under the shard lock, a lookup (get, contains, insert, ...) takes a new reference only
//     with a CAS that refuses to increment 0: without linger a count of 0 is final, so a node
//     that reached 0 is dead and every lookup treats it as absent. => No resurrection: a get
//     racing the last release either increments first (then the release is not the last one,
//     and the entry stays) or sees 0 (and reports the key absent) -- it never returns a dying
//     node. (With linger, a count of 0 may also mean "lingering": step 7.)
//  3. Releasing a handle decrements the count. The one thread that takes it from 1 to 0 owns
//     the node's destruction: it locks the shard, unlinks the node if its `linked` flag is still
//     set, unlocks, and only then destroys the key and value (outside any lock, so V's
//     destructor may use the map). The node's memory is freed with them unless weak handles
//     remain (step 8). A release that reads a count of 1 (probably the last handle) takes the
//     shard lock FIRST: if, under it, the count is still 1 and no weak handle exists, nothing
//     can change the count any more (another handle would be counted, lookups need this lock,
//     and only a weak handle's lock() adds to it without the lock), so it stores 0 and unlinks
//     in that one critical section, with no read-modify-write on the count (release_sole);
//     otherwise it unlocks and decrements as above.
//  4. Insertion (insert, try_emplace, get_or_insert_with) looks the key up and links a new node
//     in the same critical section; if it finds a dead node for the key it unlinks it first
//     and clears its `linked` flag. => No double insert: two first inserts of a key are
//     serialised by the shard lock, and the second finds the first one's node. => No stale
//     erase: a releasing thread unlinks only its own node, identified by the node's address and
//     `linked` flag, never by key, so an old handle cannot erase a newer entry of the same key.
//  5. A new node's value is built AFTER the shard lock is released, by once_cell<V>
//     (tandem/sync/once_cell.hpp): the creator claims the cell while it links the node (a plain
//     store: nobody else can see the node before the unlock, so no compare-and-swap) and runs
//     `make` after the unlock (build_claimed); concurrent callers for the key find
//     the node in step 4, take a reference and wait in the same get_or_init; if `make` throws,
//     the cell is empty again, the exception goes to the creator, a waiter builds with its own
//     `make`, and if nobody waits the creator's released handle erases the node (step 3).
//     get/contains/use_count/visit/for_each see an entry only once its value is built (size
//     counts it from step 4: its key is taken). (Exception: a V of tandem's own that opts in is
//     built by try_emplace under the lock, before the unlock: rc_map_built_under_lock.)
//  6. Handles may outlive the map: ~rc_map locks each shard, clears every node's `linked` flag,
//     marks the shard orphaned and counts the nodes not yet freed into a shared counter; then
//     it erases every lingering entry (their values are destroyed by ~rc_map); the last of the
//     remaining nodes to be freed frees the shards (step 3 then unlinks nothing).
//     Releasing handles on other threads while ~rc_map runs is fine; calling the map's own
//     member functions then is not (as for any object being destroyed).
//  7. Linger (only when rc_map_options::linger > 0): the last release takes the shard lock
//     BEFORE its decrement (earlier releases decrement with a CAS from > 1, no lock), so "the
//     count reached 0" and "the entry now lingers" are one critical section and a lookup never
//     sees a released entry that is neither live nor lingering. Under the shard lock and the
//     map's one linger mutex it sets the node's `lingering` flag, stamps its deadline (now +
//     linger) and appends it to the linger list (oldest first); if that makes more than
//     max_lingering entries linger, the oldest is taken off the list at once and erased.
//     A lookup that finds a node with count 0 revives it (count := 1, off the list) only if,
//     under the linger mutex, its `lingering` flag is still set and its deadline has not passed;
//     whoever clears the flag owns the node: a reviver, or an eraser (expiry, the max_lingering
//     bound, a lookup that finds it expired, ~rc_map), which then erases it like step 3.
//     => No entry is both revived and erased: the flag is taken once, under one mutex. Expiry
//     needs no thread: each get / insert / try_emplace / get_or_insert_with / last release first
//     erases up to 2 expired entries (one relaxed load when none lingers; otherwise one clock
//     read), and collect() erases all of them.
//  8. weak_handle: a second count on the node keeps its memory (not its key or value) while
//     weak handles exist, as shared_ptr's weak count does; the entry itself holds one weak
//     count until its key and value are destroyed. lock() increments the use count only from
//     non-zero (no lock), else, with linger, revives a lingering entry as a lookup does (shard
//     lock): it never revives an entry whose erasure has begun.
//
// Guarantees:
//  - Handles and weak handles hold no lock: holding any number of them never blocks a map
//    operation (unlike a dashmap Ref). Map operations hold one shard lock for a few hash-table
//    steps and never call user code under it except Hash and KeyEqual (and K's move constructor
//    on insertion), and visit's f (below). `make`, V's constructors and destructors, and
//    for_each's `f` run with no map lock held.
//  - visit(key, f) runs f(const V&) UNDER the key's shard lock, which is what lets it touch the
//    value without a handle (no count traffic): f must not use the same map; a call from inside
//    f throws std::logic_error (a thread-local check), and releasing the map's last handle to
//    an entry inside f, or the last weak_handle to an entry already erased, is a fatal error
//    (a noexcept path that would take the shard lock f runs under). f may use other maps;
//    visits nested across two maps must nest in one order on every thread (two locks held).
//    f must not wait for a build: a lookup in f (of any map, or a registry) that would wait
//    for another thread's build of its entry throws std::logic_error instead, since that
//    build may need the shard f holds. The same holds for K's constructor, which runs under
//    the shard lock when an entry is created; Hash and KeyEqual, also called under it, must
//    not wait for builds or use the map either (not checked).
//  - Blocking: a map operation may wait for another's short critical section on the same
//    shard (or for the linger mutex, in maps with linger); get_or_insert_with / try_emplace /
//    insert on a key whose value is being built wait for that build. A `make` that needs its
//    own key gets tandem::recursive_creation_error.
//  - Exceptions: strong guarantee for insert/try_emplace/get_or_insert_with (allocation, Hash,
//    KeyEqual, K's construction, V's constructor or `make` throwing leaves no entry behind and
//    the exception reaches the caller; arguments are moved from only once the node is being
//    built). get/contains/use_count/size/visit/collect allocate nothing when the key is a K or
//    used as it is (transparent); a key argument converted to one K (see Keys) is built per
//    call, and what K's constructor throws (std::bad_alloc) propagates. Handle and weak
//    handle copy, move, assignment and destruction are noexcept, and so is ~rc_map: they find
//    nodes and shards by address and the stored mixed hash, so they call no Hash or KeyEqual and
//    allocate nothing. Clock must be steady and Clock::now() noexcept (rc_map_clock).
//
// Costs: one heap node per entry (its key, value, two counts, four pointers, a hash, a
// deadline, three flags and the once_cell's state), plus at most one spare node per thread
// that has created entries of this map type (see allocate_node) and, past 4 entries in a shard, one
// bucket pointer per entry (tables double at load factor 1 and never shrink). The map itself is
// shard_count cache_line_size stripes, each holding a shard's lock, counters and first 4 buckets
// on one 64-byte line and its bucket pointer on the next, plus one for the linger list. A lookup:
// one hash, one shard lock, one CAS on the count. A creation: one hash, one shard lock, one
// allocation (the node: key, counts and value together; none when this thread freed a node of this
// map type since its last creation: each thread keeps one freed node's memory as a spare, freed
// when the thread ends), and once_cell's one exchange after `make`. A handle copy: one uncontended
// atomic increment; a release that is not the last: one atomic decrement (with linger: a CAS); the
// last: one shard lock (no atomic on the count unless weak handles exist or a lookup raced it)
// and the node's deallocation (with linger: the shard lock and the linger mutex, and no
// deallocation). So create + erase of an entry is 3 atomic read-modify-writes in all (two
// shard locks' CAS, once_cell's exchange: small_mutex unlocks with a plain store since
// 2026-12-04; 2 for a V built under the lock, see rc_map_built_under_lock). A revival: the linger
// mutex and one clock read under the shard lock. visit: one hash, one shard lock. With two or more
// threads on random keys, what limits scaling is the cache lines that both threads write: each
// operation writes its shard's line (the lock) and a lookup the entry's count line; a shard line is
// last written by the other core about half the time, whatever the shard count (measured in
// bench/rc_map_bench.cpp, docs/rc_map.md).
//
// Assignment reads its source before releasing its old entry (copy: increment the new count,
// then release; move: take the pointer, then release), so `h = h->next` works when the old
// entry's value owns the source, and self-assignment never drops the count to 0.
//
// Memory ordering: the shard lock orders all table changes and the `linked`/orphaned flags;
// the linger mutex orders the `lingering` flags, deadlines and the linger list. A handle copy
// increments with relaxed order (the source handle already keeps the node alive, like
// shared_ptr); a release decrements with acq_rel so that every holder's use of V
// happens-before the destruction by the last one (release_sole instead loads the count with
// acquire under the shard lock, after an acquire load of the weak count: it sees every other
// holder's decrement, and a count a weak lock() added before its weak handle went). The lookup CAS
// (step 2) is relaxed: it runs under the shard lock, which keeps the node from being freed (its
// releaser must take the same lock before freeing it), and V's contents are published by
// once_cell's acquire/release. A revival's store of 1 is relaxed: it runs under the shard lock and
// the linger mutex, which the release that took the count to 0 also held. Weak counts: increments
// relaxed (the source keeps the node), decrements acq_rel (the last one frees the memory).
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/arguments.hpp"
#include "detail/callables.hpp"
#include "detail/port.hpp"
#include "detail/type_contents.hpp"
#include "string_hash.hpp"
#include "sync/assert.hpp"
#include "sync/backoff.hpp"
#include "sync/cache_padded.hpp"
#include "sync/once_cell.hpp"
#include "sync/striped_lock.hpp"
#include "sync/sync_point.hpp"
#include "sync/thread_serial.hpp"

// What a compiler says when an rc_map handle is discarded: the reason of the class's [[nodiscard]]
// (so of every function returning one by value) and of get_or_insert_with's own. The class takes it
// through a macro: clang-format 14 misreads a class-level [[nodiscard("...")]] and re-lays out the
// whole class body.
#define TANDEM_DETAIL_RC_MAP_HANDLE_DROPPED                      \
  "the handle keeps the entry alive: dropped at once, the last " \
  "handle erases the entry again"
#define TANDEM_DETAIL_RC_MAP_HANDLE_NODISCARD [[nodiscard(TANDEM_DETAIL_RC_MAP_HANDLE_DROPPED)]]

namespace tandem {

// ---- Requirements: named concepts on the class template (see rc_map below), so that a bad
// parameter's first error names tandem::rc_map and the output names the concept it broke. ----

// K is moved (or built) into the entry and compared/hashed in place. Not a view
// (std::string_view, std::span): an entry is built from a call's argument and outlives the call,
// so rc_map<std::string_view, V>::get_or_insert_with(name, ...) would keep a view of the
// caller's string (found by review in registry, 2026-12-02: a lookup after the string died read
// freed memory). Use std::string. Nor a container (std::array, std::vector, ...), C array, pair,
// tuple, optional or variant holding a view, a std::reference_wrapper, an initializer_list or
// a reference, a standard range view or another library's string view (detail::holds_view_v;
// a struct of your own that holds one is not detected: do not use one as K).
template <class K>
concept rc_map_key = std::is_object_v<K> && !std::is_const_v<K> && !std::is_volatile_v<K> &&
                     std::destructible<K> && std::move_constructible<K> && !detail::holds_view_v<K>;

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
    std::is_invocable_r_v<std::size_t, const Hash&, const K&> && std::copy_constructible<Hash>;

// KeyEqual: copy-constructible, compares two Ks.
template <class KeyEqual, class K>
concept rc_map_key_equal = std::copy_constructible<KeyEqual> &&
    std::is_invocable_r_v<bool, const KeyEqual&, const K&, const K&>;

// A key other than K that lookups use as it is: both Hash and KeyEqual are transparent (declare
// `is_transparent`) and accept it, like std::unordered_map's heterogeneous lookup. For string
// keys with the default tandem::string_hash / string_equal: std::string_view, const char*.
template <class Q, class K, class Hash, class KeyEqual>
concept rc_map_transparent_key = !detail::is_caller_converted_v<Q> &&
                                 (requires {
                                   typename Hash::is_transparent;
                                   typename KeyEqual::is_transparent;
                                 } &&
                                  std::is_invocable_r_v<std::size_t, const Hash&, const Q&> &&
                                  std::is_invocable_r_v<bool, const KeyEqual&, const Q&, const K&>);

// What every rc_map function taking a key accepts: K itself or an rc_map_transparent_key (used
// as they are: no K is built), or anything implicitly convertible to K (an integer literal for
// a std::uint64_t key, a const char* with a non-transparent Hash, ...), converted to one K per
// call.
template <class Q, class K, class Hash, class KeyEqual>
concept rc_map_key_argument = std::same_as<std::remove_cvref_t<Q>, K> ||
    rc_map_transparent_key<std::remove_cvref_t<Q>, K, Hash, KeyEqual> ||
    (std::convertible_to<const std::remove_cvref_t<Q>&, K>);

namespace detail {
// get_or_insert_with's V from make()'s result. A V (or const V) prvalue is elided into place. A
// V& or a const V&& is copied from a const lvalue, where the copy constructor ties with a
// forwarding constructor template and wins as a non-template (returned as it was until
// 2026-12-04, a V& was a copy-initialisation from a non-const lvalue, and a const V&& bound as
// an rvalue: the template was the better match and built the entry; rule 54, found by review);
// a V&& is moved, by direct initialisation (an explicit move or copy constructor is used as
// try_emplace would use it), and so is a V& whose only copy constructor is V(V&). Any other
// result type is one V is explicitly constructible from: V(result).
template <class V, class F>
V value_from_make(F& make) {
  using result = std::invoke_result_t<F&>;
  if constexpr (!std::is_same_v<std::remove_cvref_t<result>, V>) {
    return V(std::invoke(make));
  } else if constexpr (!std::is_reference_v<result>) {
    return std::invoke(make);  // guaranteed elision, also for a move-only or immovable V
  } else if constexpr ((std::is_lvalue_reference_v<result> ||
                        std::is_const_v<std::remove_reference_t<result>>)&&std::
                           is_constructible_v<V, const V&>) {
    const V& made = std::invoke(make);
    return V(made);
  } else {
    return V(std::invoke(make));
  }
}
}  // namespace detail

// What the inserting functions (insert, try_emplace, get_or_insert_with) accept: an
// rc_map_key_argument from which the entry's K can be built when the key is absent.
template <class Q, class K, class Hash, class KeyEqual>
concept rc_map_insert_key =
    rc_map_key_argument<Q, K, Hash, KeyEqual> && std::constructible_from<K, Q&&>;

// A Hash of tandem's own that watches which hashes the map holds (event_bus's topic map hash,
// for its absent-topic filter): it declares the tag tandem_rc_map_link_observer, and the map
// calls entry_linked(mixed) when it links an entry and entry_unlinked(mixed) when it unlinks it
// (erasure, or a dead entry replaced by an insertion), both under the entry's shard lock, with
// the entry's mixed hash, exactly once each per entry -- except that the entries ~rc_map
// finds are dropped from the table with no entry_unlinked (the map is going away). So every call
// is made in a critical section of a shard that ~rc_map has not yet orphaned, which happens
// before ~rc_map returns; and the calls for one mixed hash are serialised by its shard lock.
// They must be noexcept, O(1), take no lock and run no user code (rule 14). A tag, not a member
// name, opts in, as tandem_rc_map_key_source does (rule 53): a user's Hash is never called so.
template <class Hash>
concept rc_map_link_observer = requires(const Hash& hash, std::size_t mixed) {
  typename Hash::tandem_rc_map_link_observer;
  { hash.entry_linked(mixed) }
  noexcept;
  { hash.entry_unlinked(mixed) }
  noexcept;
};

// A V of tandem's own whose construction is short, cannot throw and runs no user code
// (event_bus's topic_state) may have try_emplace build it under the shard lock that links its
// entry, by declaring the tag tandem_rc_map_build_under_lock (and being nothrow constructible
// from the arguments; otherwise it is built as any V, after the unlock). Its once_cell is then
// ready before any other thread can find the entry (once_cell::build_unshared): no claim, no
// exchange (one atomic read-modify-write fewer per entry created). Its constructor runs as a
// K's does (marked as inside a visit: it must not use the map), and its destructor still runs
// with no lock held.
template <class V, class... Args>
concept rc_map_built_under_lock = std::is_nothrow_constructible_v<V, Args&&...> && requires {
  typename V::tandem_rc_map_build_under_lock;
};

// handle::reset_if's f: called as f(const V&) under a lock and before a release, so it must
// not throw, and it answers whether to release (bool, or something convertible to it).
template <class F, class V>
concept rc_map_reset_predicate = std::is_nothrow_invocable_r_v<bool, F&, const V&>;

// Clock: what measures linger time. A steady chrono clock (std::chrono::steady_clock, the
// default, or a test's manual clock declaring is_steady) whose now() is noexcept: releases call
// it and are noexcept. Steady, because the linger list is kept in release order and read as
// deadline order: with a clock that steps back (std::chrono::system_clock after an NTP or a
// manual change) a deadline could be earlier than the ones before it, and collect() stopped at
// the first unexpired head, leaving expired entries behind it (found by review, 2026-12-02).
template <class Clock>
concept rc_map_clock = requires {
  typename Clock::duration;
  typename Clock::time_point;
  { Clock::now() }
  noexcept->std::same_as<typename Clock::time_point>;
  requires Clock::is_steady;
};

// Construction options (C++20 designated initialisers read well:
// rc_map<K, V> pools(tandem::rc_map_options{.linger = 30s, .max_lingering = 64})).
struct rc_map_options {
  // How long an entry stays after its last handle goes; a lookup within that time revives it.
  // 0 (the default): the last handle erases the entry. Negative: std::invalid_argument.
  std::chrono::nanoseconds linger{0};
  // At most this many entries linger at once, over the whole map (whatever the number of
  // threads or shards); beyond it the entry that has lingered longest is erased at once.
  // 0: nothing lingers. Default: no bound other than the linger time.
  std::size_t max_lingering = std::numeric_limits<std::size_t>::max();
};

namespace detail {

// The default shard count: 16 per hardware thread, so that threads rarely meet on one (two
// random keys share a shard with probability 1/shards: about 3% with 32 shards on 2 cores),
// while an idle map stays small (a shard is one cache line: 32 shards = 4 KiB on x86-64).
// Capped at 4096 so a huge machine does not get a huge map.
inline std::size_t default_rc_map_shard_count() noexcept {
  const std::size_t threads = std::max<std::size_t>(1, std::thread::hardware_concurrency());
  return std::bit_ceil(std::min<std::size_t>(threads * 16, 4096));
}

// visit() runs f under a shard lock; its frames (one per visit in progress on this thread,
// detail::rc_map_visits: sync/thread_serial.hpp, where registry::create_eager() reads them too)
// let every map operation detect a call from inside f cheaply (one thread-local load when no
// visit is in progress) and throw instead of deadlocking.
inline bool rc_map_visiting(const void* map) noexcept {
  for (const rc_map_visit_frame* f = rc_map_visits; f != nullptr; f = f->outer) {
    if (f->map == map) return true;
  }
  return false;
}

// The hash the shards and buckets use: shards take its low bits and buckets its high bits, so
// a Hash that does not avalanche over a full std::size_t for Key (hash_used_as_is_v,
// tandem/string_hash.hpp) is remixed first (std::hash of an integer is the identity); an
// avalanching one is used as it is.
template <class Hash, class Key>
[[nodiscard]] constexpr std::size_t spread_hash(std::size_t hash) noexcept {
  if constexpr (hash_used_as_is_v<Hash, Key>) {
    return hash;
  } else {
    return sync::mix_hash(hash);
  }
}

}  // namespace detail

// Hash/KeyEqual default to tandem::string_hash/string_equal for string keys (transparent: see
// tandem/string_hash.hpp), else std::hash<K>/std::equal_to<K>. Clock measures linger time
// (steady; tests pass a manual clock).
template <class K, class V, class Hash = default_hash<K>, class KeyEqual = default_key_equal<K>,
          class Clock = std::chrono::steady_clock>
requires rc_map_key<K> && rc_map_value<V> && rc_map_hash<Hash, K> &&
    rc_map_key_equal<KeyEqual, K> && rc_map_clock<Clock>
class rc_map {
  struct shard_table;
  struct shared_state;

  // Marks this thread as inside a visit of `map` while it lives (detail::rc_map_visits).
  struct visit_frame {
    detail::rc_map_visit_frame frame;
    explicit visit_frame(const void* map) noexcept : frame{map, detail::rc_map_visits} {
      detail::rc_map_visits = &frame;
    }
    visit_frame(const visit_frame&) = delete;
    visit_frame& operator=(const visit_frame&) = delete;
    ~visit_frame() { detail::rc_map_visits = frame.outer; }
  };
  using time_point = typename Clock::time_point;

  // Whether a key argument is used as it is (K itself, or transparent) rather than converted.
  template <class Q>
  static constexpr bool used_as_is =
      std::is_same_v<std::remove_cvref_t<Q>, K> ||
      rc_map_transparent_key<std::remove_cvref_t<Q>, K, Hash, KeyEqual>;
  // Whether a key-taking function's template form takes Q (detail::forwarded_key): for a scalar
  // K, an argument it would convert goes to the by-value overload instead.
  template <class Q>
  static constexpr bool forwarded = detail::forwarded_key<Q, K, used_as_is<Q>>;
  // Whether insert's forwarding value form takes W: for a scalar V only the by-value
  // overloads' detail::caller_converted<V>.
  template <class W>
  static constexpr bool forwarded_value =
      !detail::by_value_sink<V> ||
      std::same_as<std::remove_cvref_t<W>, detail::caller_converted<V>>;

  // node::weak's two parts (see there): the live count in the low 32 bits, the number of weak
  // handles ever made above it. A weak handle made adds weak_made (both parts at once); one
  // dropped subtracts 1. More than 2^32 - 1 live weak handles of one entry (32 GiB of them)
  // would carry into the made count.
  static constexpr std::uint64_t weak_live_mask = 0xFFFFFFFFU;
  static constexpr std::uint64_t weak_made = (std::uint64_t{1} << 32U) + 1U;

  // The node's K from an inserting function's key argument. A K from an argument of another
  // type is built by direct-initialization, K(argument), where a forwarding constructor
  // template of K, an exact match, wins over any conversion the argument offers; so a wrapper
  // of tandem's own (event_bus's hashed_topic) declares the tag tandem_rc_map_key_source and
  // builds the K itself with build_key() (a prvalue: no constructor of K is chosen here; rules
  // 53 and 54).
  template <class KeyArg>
  static K make_key(KeyArg&& k) {
    if constexpr (requires { typename std::remove_cvref_t<KeyArg>::tandem_rc_map_key_source; }) {
      return std::forward<KeyArg>(k).build_key();
    } else {
      return K(std::forward<KeyArg>(k));
    }
  }

  struct node {
    template <class KeyArg>
    node(shared_state* owner, std::size_t mixed, KeyArg&& k)
        : lingers(owner->lingers),
          mixed_hash(mixed),
          state(owner),
          key(make_key(std::forward<KeyArg>(k))),
          value() {}
    node(const node&) = delete;
    node& operator=(const node&) = delete;
    // The key and value are destroyed by destroy_payload() when the entry is erased; the node's
    // memory may stay a little longer, for weak handles (protocol step 8).
    ~node() {}  // NOLINT(modernize-use-equals-default): the unions' members are not destroyed here

    void destroy_payload() noexcept {
      key.~K();
      value.~once_cell();
    }

    std::atomic<std::size_t> uses{1};  // handles; 0 is final (dead) unless `lingering`
    // Low 32 bits (weak_live_mask): the weak handles, plus 1 held by the entry until its key and
    // value are destroyed. High 32 bits: how many weak handles were ever made (modulo 2^32), so
    // that drop_sole_locked can tell "no weak handle, before and after" from "one made and one
    // handle dropped in between" (weak_made). One word, so making one is one read-modify-write.
    std::atomic<std::uint64_t> weak{1};
    node* next = nullptr;         // bucket chain; guarded by the shard lock
    bool linked = true;           // in its shard's table; guarded by the shard lock
    bool lingering = false;       // on the linger list; guarded by the linger mutex
    const bool lingers;           // the map has linger on (a copy: no pointer chase)
    node* linger_prev = nullptr;  // linger list links; guarded by the linger mutex
    node* linger_next = nullptr;
    time_point linger_deadline{};  // guarded by the linger mutex
    const std::size_t mixed_hash;  // detail::spread_hash<Hash, K>(Hash(key))
    shared_state* const state;
    union {
      const K key;  // destroyed by destroy_payload()
    };
    union {
      sync::once_cell<V> value;  // destroyed by destroy_payload()
    };
  };

  using shards_type = sync::striped<shard_table, sync::small_mutex>;

 public:
  using key_type = K;
  using mapped_type = V;
  using hasher = Hash;
  using key_equal = KeyEqual;
  using clock = Clock;

  class weak_handle;

  // A counted reference to one entry. Empty when default-constructed or moved from.
  class TANDEM_DETAIL_RC_MAP_HANDLE_NODISCARD handle {
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
    // (A handle is handed out only once its entry's value is built: built_value().)
    V& operator*() const {
      TANDEM_ASSERT_FATAL(node_ != nullptr, "dereferenced an empty rc_map handle");
      return node_->value.built_value();
    }
    V* operator->() const {
      TANDEM_ASSERT_FATAL(node_ != nullptr, "dereferenced an empty rc_map handle");
      return std::addressof(node_->value.built_value());
    }
    const K& key() const {
      TANDEM_ASSERT_FATAL(node_ != nullptr, "key() of an empty rc_map handle");
      return node_->key;
    }
    // Handles to this entry right now (0 for an empty handle); a snapshot under concurrency.
    [[nodiscard]] std::size_t use_count() const noexcept {
      // relaxed: a statistic; it orders nothing.
      return node_ != nullptr ? node_->uses.load(std::memory_order_relaxed) : 0;
    }
    explicit operator bool() const noexcept { return node_ != nullptr; }

    // Calls f(const V&) under this entry's shard lock: the lock rc_map::visit holds while its
    // f runs. State of V that only visit callbacks touch (mutable members) therefore needs no
    // lock of its own, and reads of it by rc_map::visit (by key) and by handle see the same
    // state (event_bus keeps each topic's subscriber list so: a publish takes one lock, not
    // two). Returns what f returns. f follows rc_map::visit's rules: short, and it must not use
    // this map (a call from inside f throws std::logic_error, and so does this function called
    // from inside any visit of the same map, instead of deadlocking). f's exception
    // propagates with the lock released. Blocks while another operation holds the shard.
    // No lookup, no hash, no count change. An empty handle throws std::logic_error.
    template <class F>
    requires std::invocable<F&, const V&>
    decltype(auto) visit(F&& f) const {
      const V& value = checked_value("handle::visit");
      shared_state* const state = node_->state;
      auto& shard = state->shards.for_mixed_hash(node_->mixed_hash);
      const std::lock_guard<sync::small_mutex> guard(shard.mutex);
      const visit_frame visiting(state);
      return std::invoke(f, value);
    }

    // Like visit(f), and then, if f returned true, resets this handle inside the same critical
    // section: when this is the entry's last handle (and no weak handle exists) the entry is
    // unlinked there, with no read-modify-write of its count (as reset() does for a last
    // handle), and its key and value are destroyed after the unlock. So changing a value and
    // letting go of it takes one lock where visit() and then reset() take two (event_bus's
    // unsubscribe: leave the topic's list, release the topic). When f returns false the handle
    // is kept. Returns f's result. f must be noexcept and return bool (a release cannot fail);
    // the rest of visit's rules hold: an empty handle, or a call from inside any visit of the
    // same map, throws std::logic_error with nothing changed. In a map with linger, and when
    // other handles or weak handles exist, the handle is released as by reset() right after
    // the unlock.
    // While f runs the handle is empty and this call holds its count (so f's `value` stays
    // valid whatever f does): f may move, reset or assign the handle -- it then moves or
    // resets an empty one -- and the count is still released exactly once. If f returns false
    // the handle gets its entry back, unless f assigned it another one: it then keeps that one
    // and the old entry's count is released as by reset(). f must not destroy the handle.
    template <class F>
    requires rc_map_reset_predicate<F, V>
    bool reset_if(F&& f) {
      const V& value = checked_value("handle::reset_if");
      node* const n = node_;
      shared_state* const state = n->state;
      auto& shard = state->shards.for_mixed_hash(n->mixed_hash);
      bool reset = false;
      bool orphaned = false;
      bool unlinked = false;
      {
        const std::lock_guard<sync::small_mutex> guard(shard.mutex);
        node_ = nullptr;  // n's count is this call's until it is given back or released below
        {
          const visit_frame visiting(state);
          reset = std::invoke(f, value);
        }
        if (!reset && node_ == nullptr) {
          node_ = n;  // kept: the handle has its entry back
          return false;
        }
        // Released here if it is the last handle (rule 16: nothing of *this is used from here)
        unlinked = !n->lingers && rc_map::drop_sole_locked(n, shard.value, orphaned);
      }
      if (unlinked) {
        rc_map::finish_sole(n, state, orphaned);
      } else {
        rc_map::release(n);  // not the last handle (or linger): as reset(), after the unlock
      }
      return reset;
    }

    // Same entry (not just an equal key): an entry erased and re-created is a different one.
    friend bool operator==(const handle& a, const handle& b) noexcept { return a.node_ == b.node_; }

   private:
    friend class rc_map;
    friend class weak_handle;
    explicit handle(node* adopted) noexcept : node_(adopted) {}  // takes over one count

    // visit's and reset_if's checks, before any lock: std::logic_error for an empty handle, or
    // a call from inside a visit of the same map (`operation` names the caller). The value is
    // built whenever a handle exists (a handle is handed out only after its value is): its
    // check costs a branch on the state once_cell::get loads anyway, and makes the reference
    // one the compiler can see is never null (-Wnull-dereference).
    const V& checked_value(const char* operation) const {
      if (TANDEM_UNLIKELY(node_ == nullptr)) {
        throw std::logic_error(std::string("tandem::rc_map::") + operation +
                               ": the handle is empty");
      }
      const V* const value = node_->value.get();
      if (TANDEM_UNLIKELY(value == nullptr)) {
        throw std::logic_error(std::string("tandem::rc_map::") + operation +
                               ": the entry's value is not built");
      }
      rc_map::check_not_visiting(node_->state, operation);
      return *value;
    }
    node* node_ = nullptr;
  };

  // A reference to an entry that does not keep it (std::weak_ptr's counterpart): lock() returns
  // a handle to the entry if it is still live (or, with linger, lingering and not expired:
  // lock() then revives it, as a lookup does), else an empty handle. It never revives an entry
  // whose erasure has begun. It keeps the entry's node memory (not its key or value) until it is
  // destroyed, so lock() after the entry is gone, or after the map is gone, is safe.
  class [[nodiscard]] weak_handle {
   public:
    weak_handle() noexcept = default;
    // Implicit, like std::weak_ptr from std::shared_ptr.
    weak_handle(const handle& h) noexcept : node_(h.node_) {  // NOLINT(google-explicit-constructor)
      // relaxed: `h` keeps the node alive; the decrement in drop_weak orders our uses, and the
      // drop of `h` (acq_rel) orders this before drop_sole_locked's second look (see there).
      if (node_ != nullptr) node_->weak.fetch_add(weak_made, std::memory_order_relaxed);
    }
    weak_handle(const weak_handle& other) noexcept : node_(other.node_) {
      // relaxed: `other` keeps the node's memory, as in the constructor above.
      if (node_ != nullptr) node_->weak.fetch_add(weak_made, std::memory_order_relaxed);
    }
    weak_handle(weak_handle&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
    // Source first (as handle's assignments), so self-assignment keeps the node.
    weak_handle& operator=(const weak_handle& other) noexcept {
      node* const incoming = other.node_;
      // relaxed: as in the copy constructor.
      if (incoming != nullptr) incoming->weak.fetch_add(weak_made, std::memory_order_relaxed);
      drop_weak(std::exchange(node_, incoming));
      return *this;
    }
    weak_handle& operator=(weak_handle&& other) noexcept {
      node* const incoming = std::exchange(other.node_, nullptr);
      drop_weak(std::exchange(node_, incoming));
      return *this;
    }
    ~weak_handle() { drop_weak(node_); }

    void reset() noexcept { drop_weak(std::exchange(node_, nullptr)); }

    // A handle to the entry, or an empty one if it is gone (or expired, or being erased).
    // Live entry: one CAS, no lock. Count 0 in a map with linger: the shard lock, and the
    // linger mutex (a revival). Throws std::logic_error only when called from inside visit's f
    // on the same map (in the locking case).
    [[nodiscard]] handle lock() const {
      node* const n = node_;
      if (n == nullptr) return handle();
      std::size_t uses = n->uses.load(std::memory_order_relaxed);  // relaxed: CAS below decides
      while (uses != 0) {
        TANDEM_SYNC_POINT();  // decided from `uses`; the last release may drop it meanwhile
        // relaxed: our weak count keeps the node's memory; a non-zero count means the value is
        // alive and stays alive while we add to it; its contents are published by once_cell's
        // acquire when read through the handle.
        if (n->uses.compare_exchange_weak(uses, uses + 1, std::memory_order_relaxed,
                                          std::memory_order_relaxed)) {
          return handle(n);
        }
      }
      if (!n->lingers) return handle();  // 0 is final without linger
      return rc_map::lock_lingering(n);
    }

    // Whether this refers to an entry (live or not); false when empty or moved from.
    explicit operator bool() const noexcept { return node_ != nullptr; }

   private:
    node* node_ = nullptr;
  };

  // The forms given no Hash build Hash() and KeyEqual(): they require types whose
  // default-constructed value works (not a function pointer or a std::function, which would
  // be null or empty: detail/callables.hpp); pass such a function to the last form instead.
  rc_map() requires detail::default_callables<Hash, KeyEqual>
      : rc_map(detail::default_rc_map_shard_count(), Hash()) {}
  explicit rc_map(rc_map_options linger_options) requires detail::default_callables<Hash, KeyEqual>
      : rc_map(detail::default_rc_map_shard_count(), Hash(), KeyEqual(), linger_options) {}
  rc_map(std::size_t shard_count,
         rc_map_options linger_options) requires detail::default_callables<Hash, KeyEqual>
      : rc_map(shard_count, Hash(), KeyEqual(), linger_options) {}
  explicit rc_map(std::size_t shard_count) requires detail::default_callables<Hash, KeyEqual>
      : rc_map(shard_count, Hash()) {}
  // shard_count is rounded up to a power of two; 0 throws std::invalid_argument, and so does a
  // negative linger_options.linger, a null function pointer or an empty std::function as the
  // hash or equal.
  explicit rc_map(std::size_t shard_count, const Hash& hash, const KeyEqual& equal = KeyEqual(),
                  rc_map_options linger_options = {})
      : state_(new shared_state(checked_shard_count(shard_count),
                                detail::require_callable(hash, "tandem::rc_map", "Hash"),
                                detail::require_callable(equal, "tandem::rc_map", "KeyEqual"),
                                checked_options(linger_options))) {
    static_assert(std::destructible<V>,
                  "tandem::rc_map<K, V>: V must be destructible (entries are destroyed when "
                  "their last handle goes)");
  }

  rc_map(const rc_map&) = delete;
  rc_map& operator=(const rc_map&) = delete;

  // Entries still held by handles stay valid; their release then frees them (protocol step 6).
  // Lingering entries are erased here (their values destroyed, with no map lock held).
  // Destroying the map inside a visit's f on it (rc_map::visit, handle::visit, handle::reset_if,
  // a key's constructor; directly or from a visit of another map nested in it) is a fatal
  // TANDEM_ASSERT-style error in every build: f runs under a shard lock that destruction must
  // take, so the alternative is a silent self-deadlock.
  ~rc_map() {
    check_not_visiting_on_destroy(state_);
    orphan(state_);
  }

  // Keys: every function below takes K, any key Hash and KeyEqual accept when both are
  // transparent (for string keys by default: std::string_view, const char*, std::string), or
  // anything implicitly convertible to K (see rc_map_key_argument). A transparent key is used as
  // it is; a K is built only when an entry is created (never on a hit), and a convertible
  // argument is converted to one K per call. A scalar K (an integer, enum or pointer) is taken
  // by value, in an overload of its own that passes it on as a detail::caller_converted<K>:
  // the conversion is the caller's, where -Wconversion sees it (detail::forwarded_key).

  // A handle to the entry for `key`, or nullopt if there is none (or its value is still being
  // built, or its last handle is being released right now). A lingering entry is revived.
  template <class Q>
  requires rc_map_key_argument<Q, K, Hash, KeyEqual> && forwarded<Q>
  [[nodiscard]] std::optional<handle> get(const Q& key) {
    check_not_visiting("get");
    expire(state_, expire_batch);
    return get_impl(lookup_form(key));
  }
  [[nodiscard]] std::optional<handle> get(K key) requires detail::by_value_sink<K> {
    return get(detail::caller_converted<K>{key});
  }

  // Inserts key -> value unless the key is present. Returns a handle to the entry and whether
  // this call inserted it; false leaves the existing value untouched and does not touch the
  // arguments either (no K or V is built, nothing is moved from): both are forwarded, and used
  // only when the entry is created. A lingering entry is present (revived, false).
  // A scalar V is taken by value too, in overloads of their own (the conversion of `insert(1,
  // i)` with `int i = -1` into a std::uint64_t value was made here, silently; found by review,
  // 2026-12-05), passed on as a detail::caller_converted<V>.
  template <class Q, class W = V>
  requires rc_map_insert_key<Q, K, Hash, KeyEqual> && forwarded<Q> &&
      std::constructible_from<V, W&&> && forwarded_value<W>
  [[nodiscard]] std::pair<handle, bool> insert(Q&& key, W&& value) {
    check_not_visiting("insert");
    expire(state_, expire_batch);
    return acquire_or_build("insert", insert_form<Q>(key), [&]() -> V {
      // A V passed as a non-const lvalue is copied from const (rule 54, as the key above).
      if constexpr (std::is_lvalue_reference_v<W> && std::is_same_v<std::remove_cvref_t<W>, V>) {
        return V(std::as_const(value));
      } else {
        return V(std::forward<W>(value));
      }
    });
  }
  template <class W = V>
  requires detail::by_value_sink<K> && std::constructible_from<V, W&&> && forwarded_value<W>
  [[nodiscard]] std::pair<handle, bool> insert(K key, W&& value) {
    return insert(detail::caller_converted<K>{key}, std::forward<W>(value));
  }
  template <class Q>
  requires rc_map_insert_key<Q, K, Hash, KeyEqual> && forwarded<Q> && detail::by_value_sink<V>
  [[nodiscard]] std::pair<handle, bool> insert(Q&& key, V value) {
    return insert(std::forward<Q>(key), detail::caller_converted<V>{value});
  }
  [[nodiscard]] std::pair<handle, bool> insert(
      K key, V value) requires detail::by_value_sink<K> && detail::by_value_sink<V> {
    return insert(detail::caller_converted<K>{key}, detail::caller_converted<V>{value});
  }

  // Builds V(args...) in place (after the shard lock is released) only if the key is absent.
  template <class Q, class... Args>
  requires rc_map_insert_key<Q, K, Hash, KeyEqual> && forwarded<Q>
  [[nodiscard]] std::pair<handle, bool> try_emplace(Q&& key, Args&&... args) {
    static_assert(std::is_constructible_v<V, Args&&...>,
                  "tandem::rc_map::try_emplace: V is not constructible from these arguments");
    check_not_visiting("try_emplace");
    expire(state_, expire_batch);
    constexpr bool under_lock = rc_map_built_under_lock<V, Args...>;
    return acquire_or_build<under_lock>(
        "try_emplace", insert_form<Q>(key),
        [&]() noexcept(under_lock) -> V { return V(std::forward<Args>(args)...); });
  }
  template <class... Args>
  requires detail::by_value_sink<K>
  [[nodiscard]] std::pair<handle, bool> try_emplace(K key, Args&&... args) {
    return try_emplace(detail::caller_converted<K>{key}, std::forward<Args>(args)...);
  }

  // The entry for `key`, built by make() if absent. make() runs at most once per absent key,
  // with no map lock held; concurrent callers for the key wait for it and share its result.
  // If make throws, no entry remains, the exception reaches this caller, and a waiting caller
  // (if any) builds with its own make. A lingering entry is revived (make is not called). A
  // null function pointer or an empty std::function as make is std::invalid_argument.
  template <class Q, class F>
  requires rc_map_insert_key<Q, K, Hash, KeyEqual> && forwarded<Q>
  [[nodiscard(TANDEM_DETAIL_RC_MAP_HANDLE_DROPPED)]] handle get_or_insert_with(Q&& key, F&& make) {
    static_assert(std::is_invocable_v<F&>,
                  "tandem::rc_map::get_or_insert_with: make must be callable with no arguments");
    static_assert(std::is_same_v<std::remove_cv_t<std::invoke_result_t<F&>>, V> ||
                      std::is_constructible_v<V, std::invoke_result_t<F&>>,
                  "tandem::rc_map::get_or_insert_with: make() must return V (or something V is "
                  "constructible from)");
    check_not_visiting("get_or_insert_with");
    detail::require_callable(make, "tandem::rc_map::get_or_insert_with", "make");
    expire(state_, expire_batch);
    // A V straight from make() (guaranteed elision), or built from its result explicitly, as
    // try_emplace builds one: "constructible from" is what the assertion above promises (until
    // 2026-12-02 an implicit conversion was needed, and a result V is only explicitly
    // constructible from failed inside this header).
    return acquire_or_build("get_or_insert_with", insert_form<Q>(key),
                            [&]() -> V { return detail::value_from_make<V>(make); })
        .first;
  }
  template <class F>
  requires detail::by_value_sink<K>
  [[nodiscard(TANDEM_DETAIL_RC_MAP_HANDLE_DROPPED)]] handle get_or_insert_with(K key, F&& make) {
    return get_or_insert_with(detail::caller_converted<K>{key}, std::forward<F>(make));
  }

  // Whether get(key) would find an entry now: a live one, or a lingering one not yet expired.
  template <class Q>
  requires rc_map_key_argument<Q, K, Hash, KeyEqual> && forwarded<Q>
  [[nodiscard]] bool contains(const Q& key) const {
    check_not_visiting("contains");
    return contains_impl(lookup_form(key));
  }
  [[nodiscard]] bool contains(K key) const requires detail::by_value_sink<K> {
    return contains(detail::caller_converted<K>{key});
  }

  // Handles to the entry for `key` right now; 0 when absent (and for a lingering entry).
  template <class Q>
  requires rc_map_key_argument<Q, K, Hash, KeyEqual> && forwarded<Q>
  [[nodiscard]] std::size_t use_count(const Q& key) const {
    check_not_visiting("use_count");
    return use_count_impl(lookup_form(key));
  }
  [[nodiscard]] std::size_t use_count(K key) const requires detail::by_value_sink<K> {
    return use_count(detail::caller_converted<K>{key});
  }

  // Calls f(const V&) on the entry for `key` if get(key) would find it, without creating a
  // handle (no count traffic); returns whether it did. A lingering entry is visited but not
  // revived: its idle time keeps running. f runs UNDER the key's shard lock, which is what
  // keeps the value alive without a count: f must be short and must not use this map (a call
  // from inside f throws std::logic_error; releasing this map's last handle to an entry inside f
  // is a fatal error). f's exception propagates, with the lock released.
  template <class Q, class F>
  requires rc_map_key_argument<Q, K, Hash, KeyEqual> && forwarded<Q>
  bool visit(const Q& key, F&& f) const {
    static_assert(std::is_invocable_v<F&, const V&>,
                  "tandem::rc_map::visit: f must be callable as f(const V&)");
    check_not_visiting("visit");
    return visit_impl(lookup_form(key), f);
  }
  template <class F>
  requires detail::by_value_sink<K>
  bool visit(K key, F&& f) const {
    return visit(detail::caller_converted<K>{key}, std::forward<F>(f));
  }

  // Entries in the map. Besides the entries get() can return, this counts lingering entries
  // (also after their deadline, until they are collected) and, while they last, an entry whose
  // value is being built (its key is taken: a second insert waits for it) and one whose last
  // handle is being released right now (it is gone when that release returns).
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

  // Whether `h` is a handle to an entry of this map (false for an empty handle). No lock.
  [[nodiscard]] bool owns(const handle& h) const noexcept {
    return h.node_ != nullptr && h.node_->state == state_;
  }

  // Entries lingering now (no handle, not yet erased; expired ones until they are collected).
  [[nodiscard]] std::size_t lingering_count() const noexcept {
    // relaxed: a statistic, written under the linger mutex.
    return state_->linger.value.count.load(std::memory_order_relaxed);
  }

  // The options this map was built with (max_lingering 0 and linger 0 both mean "off").
  [[nodiscard]] rc_map_options options() const noexcept { return state_->options; }

  // Erases every lingering entry whose idle time has passed (their values are destroyed here,
  // with no map lock held); returns how many. Without linger: 0. Operations already do this
  // lazily, 2 entries at a time; call collect() from a timer of your own to bound how long an
  // expired entry's memory stays when the map is idle.
  std::size_t collect() {
    check_not_visiting("collect");
    return expire(state_, std::numeric_limits<std::size_t>::max());
  }

  // Calls f(const K&, const V&) for every entry that has handles, shard by shard. The entries of
  // a shard are pinned (as if by handles) under its lock, then f runs with no lock held, so f
  // may use the map (not destroy or assign it, as for any container's visitor). Entries added
  // or erased meanwhile may or may not be visited. Lingering
  // entries are not visited (pinning one would revive it and restart its idle time).
  template <class F>
  void for_each(F&& f) const {
    static_assert(std::is_invocable_v<F&, const K&, const V&>,
                  "tandem::rc_map::for_each: f must be callable as f(const K&, const V&)");
    check_not_visiting("for_each");
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
      for (const handle& h : pinned) std::invoke(f, h.node_->key, h.node_->value.built_value());
      pinned.clear();  // releases, with no lock held
    }
  }

  // Calls f(const K&, const V&) for every entry that has handles, shard by shard, each shard's
  // entries under that shard's lock (the lock visit() holds while its f runs). Unlike
  // for_each it allocates nothing and takes no handle, so it cannot throw unless f does (f's
  // exception propagates with the lock released); in exchange f follows visit's rules: short
  // (it blocks every operation on that shard), and it must not use this map (a call from inside
  // f throws std::logic_error, as does visit_all from inside any visit of this map). Entries
  // added or erased meanwhile in shards not yet or already visited may or may not be visited;
  // lingering entries are not. (~event_bus closes every subscription's mailbox with it.)
  template <class F>
  void visit_all(F&& f) const {
    static_assert(std::is_invocable_v<F&, const K&, const V&>,
                  "tandem::rc_map::visit_all: f must be callable as f(const K&, const V&)");
    check_not_visiting("visit_all");
    for (std::size_t i = 0; i < state_->shards.stripe_count(); ++i) {
      auto& shard = state_->shards[i];
      const std::lock_guard<sync::small_mutex> guard(shard.mutex);
      const visit_frame visiting(state_);
      shard.value.visit([&](node* n) {
        // A linked node keeps its key and value until it is unlinked under this lock (the
        // payload is destroyed after that), so they are intact here even if the count drops
        // meanwhile. relaxed: the count only says whether handles exist (0: dead or
        // lingering, skipped); the value is published by once_cell (get(): null until built,
        // acquire once it is).
        const V* const value = n->value.get();
        if (value != nullptr && n->uses.load(std::memory_order_relaxed) != 0) {
          std::invoke(f, std::as_const(n->key), *value);
        }
      });
    }
  }

 private:
  // One shard's table: an intrusive chained hash table, buckets indexed by the HIGH bits of the
  // mixed hash (the stripe was chosen by its low bits). Everything is guarded by the shard lock
  // except `linked`, which size() reads without it.
  struct shard_table {
    // Layout, in the shard's stripe (cache_line_size bytes, 128 on x86-64; hardware lines are
    // 64): the lock's 64-byte line holds everything a create or an erase writes -- the flag,
    // both counts and the first 4 buckets (a shard with at most 4 entries needs no bucket
    // allocation) -- and the next line what every lookup reads but only a growth writes (the
    // bucket pointer and size), so that line stays shared in both cores' caches. The
    // static_assert after this struct keeps it so. Measured (2026-12-05, rc_map_bench built
    // both ways, 8 interleaved rounds under SCHED_FIFO, medians of per-round ratios): churn of
    // random keys at 2 threads 1.24x (every round faster: 1.05-1.44x), acquire_release of
    // live keys at 2 threads 1.00x, 1 thread 0.95-1.03x, against the layout before (8 inline
    // buckets, the lock and buckets 0-6 on one line, the counts on the next: every create
    // and erase wrote both). Two other layouts measured then: all of it on the lock's line
    // (pointer and size too, 2 inline buckets) gained as much on churn but lost 20% on
    // acquire_release at 2 threads (its lookups read the pointer from the line the other
    // core's lock takes); the counts on the lock's line with 8 inline buckets gained nothing
    // (3 of 8 buckets, and the pointer read by every lookup, on a line creates still wrote).
    static constexpr unsigned inline_bucket_bits = 2;

    shard_table() noexcept = default;
    shard_table(const shard_table&) = delete;  // `buckets` may point into this object
    shard_table& operator=(const shard_table&) = delete;

    // On the lock's line: written by creates and erases.
    bool orphaned = false;  // the map is gone; releasers report to orphaned_nodes
    // Nodes in the table (built or not, live or dead): what size() sums. Written only under
    // the lock, with a load and a store (no read-modify-write needed); atomic because size()
    // reads it without the lock.
    std::atomic<std::size_t> linked{0};
    std::size_t alive = 0;  // nodes of this shard not yet freed (linked or not)
    node* inline_buckets[std::size_t{1} << inline_bucket_bits] = {};
    // On the next line: read by every lookup, written by growths.
    std::unique_ptr<node*[]> heap_buckets;  // after the first growth
    node** buckets = inline_buckets;        // inline_buckets or heap_buckets.get()
    unsigned bucket_bits = inline_bucket_bits;

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

  // The shard_table layout above: the lock and what a create or an erase writes share the
  // stripe's first 64 bytes. offsetof on a type that is not standard-layout (libstdc++'s
  // unique_ptr under clang) is conditionally supported; g++ and clang support it and warn.
  static constexpr std::size_t shard_write_line_end() noexcept {
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
#endif
    return offsetof(typename shards_type::stripe, value) + offsetof(shard_table, heap_buckets);
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
  }

  // The lingering entries of the whole map, oldest first (protocol step 7). One list, not one
  // per shard, so that max_lingering bounds the map and "the oldest" is exact; its mutex is
  // taken only by last releases, revivals and expiry of maps with linger.
  struct linger_list {
    sync::small_mutex mutex;
    node* head = nullptr;  // oldest; guarded by `mutex`
    node* tail = nullptr;  // guarded by `mutex`
    // Written under `mutex`; read without it by the expiry fast path and lingering_count().
    std::atomic<std::size_t> count{0};
    // The head's deadline (time_since_epoch().count()), or the maximum when the list is empty:
    // lets an operation skip the mutex while nothing has expired. Written under `mutex`.
    std::atomic<typename Clock::rep> head_deadline{time_point::max().time_since_epoch().count()};
  };

  // What handles share with the map and what outlives it while handles remain (step 6).
  struct shared_state {
    shared_state(std::size_t shard_count, const Hash& h, const KeyEqual& e, rc_map_options o)
        : hash(h),
          equal(e),
          options(o),
          lingers(o.linger.count() > 0 && o.max_lingering > 0),
          linger_time(sync::saturating_ceil<typename Clock::duration>(o.linger)),
          shards(shard_count) {
      static_assert(shard_write_line_end() <= 64,
                    "tandem::rc_map: a shard's lock and everything a create or an erase writes "
                    "must share one 64-byte line (shard_table's layout comment)");
    }

    Hash hash;
    KeyEqual equal;
    const rc_map_options options;
    const bool lingers;  // options.linger > 0 and options.max_lingering > 0
    const typename Clock::duration linger_time;
    shards_type shards;
    sync::cache_padded<linger_list> linger;
    // After ~rc_map: 1 (the destructor's own reference) + nodes not yet freed; the thread that
    // takes it to 0 deletes this state.
    std::atomic<std::size_t> orphaned_nodes{0};
  };

  // ---- Node memory: one spare per thread and map type (issue 17) ----
  // Create + erase churn frees a node and allocates one of the same size right after: the
  // thread that frees a node keeps its memory for its own next creation (one block per thread
  // and map type), so churn calls no allocator for nodes. The spare is freed when the thread
  // ends, by a holder constructed on the thread's first creation (a path that may allocate and
  // throw). A release on a thread without a live holder (it never created a node of this type,
  // or its thread_local destructors are running) frees the memory at once: releases never
  // allocate, and nothing is kept after the thread's clean-up has run.
  // The thread that calls exit() runs its thread_local destructors first and the static ones
  // after; a holder first built during that static destruction (a static destructor's first
  // creation of this map type on that thread) is registered too late to be destroyed. So the
  // holder's constructor also makes sure of a static exit_cleanup. Its destructor runs in the
  // static destruction, on the exiting thread: it frees that thread's spare, and from then on
  // no holder keeps one (until 2026-12-02 that one block was never freed; docs/reliability.md
  // rule 8). A holder built during the static destruction before it is freed by it; one built
  // after it keeps nothing.
  // Per module by design (not TANDEM_PROCESS_WIDE): in a shared library built with hidden
  // visibility the spare is that module's, which is only a cache of node memory; any module may
  // free a node another allocated (one global operator new).
  struct spare_node {
    static inline constinit thread_local void* memory = nullptr;
    static inline constinit thread_local bool kept = false;  // a holder is alive on this thread
    // The exit_cleanup has run: the process is in its static destruction.
    static inline constinit std::atomic<bool> exit_cleaned{false};
    static void let_go() noexcept {
      kept = false;
      deallocate_node(std::exchange(memory, nullptr));
    }
    struct exit_cleanup {
      exit_cleanup() noexcept = default;
      exit_cleanup(const exit_cleanup&) = delete;
      exit_cleanup& operator=(const exit_cleanup&) = delete;
      ~exit_cleanup() {
        exit_cleaned.store(true, std::memory_order_relaxed);  // relaxed: a hint, no data
        let_go();
      }
    };
    struct holder {
      holder() noexcept {
        // Once per process and map type (a function-local static: thread-safe, allocates
        // nothing); never built again once destroyed.
        static exit_cleanup cleanup;
        static_cast<void>(cleanup);
        kept = !exit_cleaned.load(std::memory_order_relaxed);
      }
      holder(const holder&) = delete;
      holder& operator=(const holder&) = delete;
      ~holder() { let_go(); }
    };
  };

  static constexpr bool node_over_aligned = alignof(node) > __STDCPP_DEFAULT_NEW_ALIGNMENT__;

  // Memory for one node: this thread's spare, else operator new (may throw std::bad_alloc).
  static void* allocate_node() {
    static thread_local typename spare_node::holder holder;  // first call: registers its cleanup
    static_cast<void>(holder);
    if (void* spare = std::exchange(spare_node::memory, nullptr)) return spare;
    if constexpr (node_over_aligned) {
      return ::operator new (sizeof(node), std::align_val_t{alignof(node)});
    } else {
      return ::operator new(sizeof(node));
    }
  }

  static void deallocate_node(void* memory) noexcept {
    if (memory == nullptr) return;
    if constexpr (node_over_aligned) {
      ::operator delete (memory, std::align_val_t{alignof(node)});
    } else {
      ::operator delete(memory);  // unsized: clang 14 declares no sized delete by default
    }
  }

  // A destroyed node's memory: kept as this thread's spare if it has none, else freed.
  static void recycle_node(void* memory) noexcept {
    if (spare_node::kept && spare_node::memory == nullptr) {
      spare_node::memory = memory;
      return;
    }
    deallocate_node(memory);
  }

  // Lingering entries an operation erases, at most, before its own work (amortised expiry:
  // each release adds at most one lingering entry, so 2 per operation keeps up).
  static constexpr std::size_t expire_batch = 2;

  static rc_map_options checked_options(rc_map_options options) {
    if (options.linger.count() < 0) {
      throw std::invalid_argument("tandem::rc_map: rc_map_options::linger must not be negative");
    }
    return options;
  }

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
    } else if constexpr (std::is_integral_v<K> && requires { std::to_string(k); }) {
      // (Not every integral type has a std::to_string: __int128 is integral under -std=gnu++20.)
      return "rc_map key " + std::to_string(k);
    } else {
      return "an rc_map entry";
    }
  }

  // A lookup's key argument as the table takes it: itself, or converted to a K (a temporary
  // that lives until the end of the caller's full-expression).
  template <class Q>
  static decltype(auto) lookup_form(const Q& key) {
    // A null const char* is refused before a view or a key is made of it (rule 52).
    detail::check_not_null_c_string<K>(key, "tandem::rc_map", "key");
    if constexpr (used_as_is<Q>) {
      return (key);
    } else {
      return K(key);
    }
  }

  // An inserting function's key argument, forwarded (Q&&: an rvalue K is moved into the node
  // only if one is created), or converted to one K (a temporary, moved into the node if one is
  // created). Call as insert_form<Q>(key) with the function's forwarding parameter `key`.
  // A non-const lvalue is passed on as const: the node's K is then a copy made by K's copy
  // constructor, not by a forwarding constructor template, which a non-const K& picks over it
  // (docs/reliability.md rule 54). A converted key is converted from the argument as const
  // (rc_map_key_argument requires that conversion), even an rvalue: the conversion runs before
  // the lookup, so converting from the rvalue moved the caller's argument away on a hit, or
  // when creating the entry then failed (review, 2026-12-03: a std::string&& for a
  // std::filesystem::path key; rule 59).
  template <class Q>
  static decltype(auto) insert_form(std::remove_reference_t<Q>& key) {
    // A null const char* is refused before a K is built from it (rule 52; the inserting
    // functions lacked this check until 2026-12-04: std::string(nullptr) crashed under libc++).
    detail::check_not_null_c_string<K>(std::as_const(key), "tandem::rc_map", "key");
    if constexpr (used_as_is<Q> && std::is_lvalue_reference_v<Q>) {
      return std::as_const(key);
    } else if constexpr (used_as_is<Q>) {
      return static_cast<Q&&>(key);
    } else {
      return K(std::as_const(key));
    }
  }

  template <class Q>
  [[nodiscard]] std::size_t mixed_hash_of(const Q& key) const {
    return detail::spread_hash<Hash, K>(static_cast<std::size_t>(std::invoke(state_->hash, key)));
  }

  // Step 2: a new reference only from a nonzero count. Caller holds the node's shard lock.
  static bool try_acquire(node* n) noexcept {
    // relaxed: the shard lock keeps the node allocated (its releaser frees it only after taking
    // that lock and unlinking it), and the value is published by once_cell, not by this count.
    std::size_t uses = n->uses.load(std::memory_order_relaxed);
    do {
      if (uses == 0) return false;  // dead (or lingering: see try_revive)
      TANDEM_SYNC_POINT();          // decided from `uses`; a release may drop it meanwhile
    } while (!n->uses.compare_exchange_weak(uses, uses + 1, std::memory_order_relaxed,
                                            std::memory_order_relaxed));
    return true;
  }

  // An insertion from a value's destructor run by ~rc_map (docs/rc_map.md, "Map destruction").
  [[noreturn]] TANDEM_NOINLINE static void throw_created_while_destroyed(const char* operation) {
    throw std::logic_error(std::string("tandem::rc_map::") + operation +
                           ": called while the map is being destroyed (from a value's "
                           "destructor run by ~rc_map); lookups work then and find nothing, "
                           "but no entry may be created");
  }

  // ---- visit's re-entry check ----

  void check_not_visiting(const char* operation) const {
    check_not_visiting(state_, operation);
  }
  // The same for a caller that has the map's shared state but not the map (handle::visit).
  static void check_not_visiting(const shared_state* state, const char* operation) {
    if (TANDEM_UNLIKELY(detail::rc_map_visits != nullptr) && detail::rc_map_visiting(state)) {
      throw std::logic_error(std::string("tandem::rc_map::") + operation +
                             ": called from inside visit()'s f (or a key's constructor) on the "
                             "same map; those run under a shard lock and must not use the map "
                             "(copy what you need out of f)");
    }
  }

  // On the noexcept paths that take a shard lock (a last release, a weak handle's last drop):
  // always on, because the alternative is a deadlock when the entry is in the shard f holds (in
  // another shard of the map it is the same breach of visit's rules, without the deadlock: an
  // assertion handler that returns lets the release go on).
  static void check_not_visiting_on_release(const shared_state* state) noexcept {
    if (TANDEM_UNLIKELY(detail::rc_map_visits != nullptr) && detail::rc_map_visiting(state)) {
      detail::assertion_failed("!rc_map_visiting(map)",
                               "released the last handle to an rc_map entry inside visit()'s f "
                               "on the same map: f runs under a shard lock (deadlock)",
                               __FILE__, __LINE__, static_cast<const char*>(__func__));
    }
  }
  // ~rc_map's: it takes every shard lock, so inside a visit of the map it would always
  // deadlock, and the process ends even if the assertion handler returns (found by review,
  // 2026-12-02: a handle's visit whose f released the map's owner hung for ever).
  static void check_not_visiting_on_destroy(const shared_state* state) noexcept {
    if (TANDEM_UNLIKELY(detail::rc_map_visits != nullptr) && detail::rc_map_visiting(state)) {
      destroyed_inside_visit();
    }
  }
  [[noreturn]] TANDEM_NOINLINE static void destroyed_inside_visit() noexcept {
    detail::fatal_assertion_failed(
        "!rc_map_visiting(map)",
        "destroyed an rc_map inside visit()'s f (or a handle's visit or "
        "reset_if, or a key's constructor) on the same map: f runs under a "
        "shard lock that the destructor must take (deadlock)",
        __FILE__, __LINE__, "rc_map::~rc_map");
  }

  // ---- linger (protocol step 7). The list functions run under the linger mutex. ----

  // now + linger, saturated at time_point::max() instead of overflowing.
  static time_point deadline_after(const shared_state* state, time_point now) noexcept {
    if (now > time_point::max() - state->linger_time) return time_point::max();
    return now + state->linger_time;
  }

  static void linger_push(shared_state* state, node* n) noexcept {
    linger_list& list = state->linger.value;
    n->linger_prev = list.tail;
    n->linger_next = nullptr;
    (list.tail != nullptr ? list.tail->linger_next : list.head) = n;
    list.tail = n;
    // relaxed: written under the mutex; readers without it only use it as a hint.
    list.count.store(list.count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    n->lingering = true;
    publish_head_deadline(list);
  }

  static void linger_remove(shared_state* state, node* n) noexcept {
    linger_list& list = state->linger.value;
    (n->linger_prev != nullptr ? n->linger_prev->linger_next : list.head) = n->linger_next;
    (n->linger_next != nullptr ? n->linger_next->linger_prev : list.tail) = n->linger_prev;
    n->linger_prev = n->linger_next = nullptr;
    // relaxed: as in linger_push.
    list.count.store(list.count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    n->lingering = false;  // whoever clears the flag owns the node (revival or erasure)
    publish_head_deadline(list);
  }

  static void publish_head_deadline(linger_list& list) noexcept {
    const time_point deadline =
        list.head != nullptr ? list.head->linger_deadline : time_point::max();
    // relaxed: a hint for expire()'s fast path, which re-checks under the mutex.
    list.head_deadline.store(deadline.time_since_epoch().count(), std::memory_order_relaxed);
  }

  // Under the shard lock, for a node whose count is 0 (try_acquire failed): revives it if it is
  // lingering and not expired (the caller then holds one count, as after try_acquire). An
  // expired lingering node is taken off the list and handed to the caller in `expired`, to be
  // erased with erase_dead after the shard lock is released. Anything else is dead.
  static bool try_revive(node* n, node*& expired) noexcept {
    if (!n->lingers) return false;
    shared_state* state = n->state;
    std::lock_guard<sync::small_mutex> guard(state->linger.value.mutex);
    if (!n->lingering) return false;  // its erasure has begun (expiry, bound, ~rc_map)
    const time_point now = Clock::now();
    linger_remove(state, n);  // the flag is ours now: nobody else revives or erases it
    if (now >= n->linger_deadline) {
      expired = n;  // its idle time is over: erase it, never revive it
      return false;
    }
    // relaxed: the count is 0 and only a holder of this shard lock and the linger mutex may
    // raise it from 0; the release that lowered it to 0 held both (it happens-before).
    n->uses.store(1, std::memory_order_relaxed);
    return true;
  }

  // Under the shard lock: whether a node with count 0 is lingering and not expired.
  static bool lingers_unexpired(node* n) noexcept {
    if (!n->lingers) return false;
    std::lock_guard<sync::small_mutex> guard(n->state->linger.value.mutex);
    return n->lingering && Clock::now() < n->linger_deadline;
  }

  // Erases up to `budget` lingering entries whose deadline has passed; returns how many.
  // No lock is held by the caller. One relaxed load when nothing lingers.
  static std::size_t expire(shared_state* state, std::size_t budget) noexcept {
    if (!state->lingers) return 0;
    linger_list& list = state->linger.value;
    // relaxed: hints; the decision is re-made under the mutex.
    if (list.count.load(std::memory_order_relaxed) == 0) return 0;
    const time_point now = Clock::now();
    if (now.time_since_epoch().count() < list.head_deadline.load(std::memory_order_relaxed)) {
      return 0;
    }
    std::size_t erased = 0;
    while (erased < budget) {
      node* oldest = nullptr;
      {
        std::lock_guard<sync::small_mutex> guard(list.mutex);
        oldest = list.head;
        if (oldest == nullptr || now < oldest->linger_deadline) break;
        linger_remove(state, oldest);  // ours now: lookups find it dead
      }
      TANDEM_SYNC_POINT();  // taken off the list, still linked: lookups must treat it as dead
      erase_dead(oldest);
      ++erased;
    }
    return erased;
  }

  // A lookup's node to erase once the shard lock is released (an expired lingering entry it
  // found): declared before the lock guard, so that it runs after the unlock, also on a throw.
  struct erase_after_unlock {
    node* expired = nullptr;
    erase_after_unlock() noexcept = default;
    erase_after_unlock(const erase_after_unlock&) = delete;
    erase_after_unlock& operator=(const erase_after_unlock&) = delete;
    ~erase_after_unlock() {
      if (expired != nullptr) erase_dead(expired);
    }
  };

  // weak_handle::lock() on a node with count 0 in a map with linger.
  static handle lock_lingering(node* n) {
    shared_state* state = n->state;  // alive: our weak count keeps the node, which keeps it
    if (TANDEM_UNLIKELY(detail::rc_map_visits != nullptr) && detail::rc_map_visiting(state)) {
      throw std::logic_error(
          "tandem::rc_map::weak_handle::lock: called from inside visit()'s f on the same map; f "
          "runs under a shard lock and must not use the map");
    }
    erase_after_unlock later;
    auto& shard = state->shards.for_mixed_hash(n->mixed_hash);
    std::lock_guard<sync::small_mutex> guard(shard.mutex);
    if (!n->linked) return handle();  // erased (or the map is gone)
    if (try_acquire(n) || try_revive(n, later.expired)) return handle(n);
    return handle();
  }

  template <class Q>
  std::optional<handle> get_impl(const Q& key) {
    const std::size_t mixed = mixed_hash_of(key);
    auto& shard = state_->shards.for_mixed_hash(mixed);
    node* found = nullptr;
    erase_after_unlock later;
    {
      std::lock_guard<sync::small_mutex> guard(shard.mutex);
      found = shard.value.find(mixed, key, state_->equal);
      if (found == nullptr || !found->value.is_ready()) return std::nullopt;
      if (!try_acquire(found) && !try_revive(found, later.expired)) return std::nullopt;
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

  template <class Q>
  bool contains_impl(const Q& key) const {
    const std::size_t mixed = mixed_hash_of(key);
    auto& shard = state_->shards.for_mixed_hash(mixed);
    std::lock_guard<sync::small_mutex> guard(shard.mutex);
    node* found = shard.value.find(mixed, key, state_->equal);
    if (found == nullptr || !found->value.is_ready()) return false;
    // relaxed: under the shard lock the node cannot be freed; a snapshot.
    return found->uses.load(std::memory_order_relaxed) != 0 || lingers_unexpired(found);
  }

  template <class Q, class F>
  bool visit_impl(const Q& key, F& f) const {
    const std::size_t mixed = mixed_hash_of(key);
    auto& shard = state_->shards.for_mixed_hash(mixed);
    std::lock_guard<sync::small_mutex> guard(shard.mutex);
    node* found = shard.value.find(mixed, key, state_->equal);
    const V* const value = found != nullptr ? found->value.get() : nullptr;
    if (value == nullptr) return false;  // absent, or its value is still being built
    // relaxed: the shard lock keeps the value alive while f runs whatever the count does next:
    // every path that destroys a value (erase_dead) takes this lock first. A count of 0 that is
    // not a live lingering entry is an entry being erased: not visible, as for get().
    if (found->uses.load(std::memory_order_relaxed) == 0 && !lingers_unexpired(found)) {
      return false;
    }
    const visit_frame visiting(state_);
    std::invoke(f, *value);
    return true;
  }

  // Steps 4 and 5: find or link the node under the lock, then build its value without it.
  // `key` is K or a transparent key (see insert_form); a K is built (copied, moved or
  // constructed) from it only when a node is created.
  // `build_under_lock`: make() cannot throw and may run under the shard lock
  // (rc_map_built_under_lock); the value is then built there, before the entry is reachable.
  template <bool build_under_lock = false, class Q, class Make>
  std::pair<handle, bool> acquire_or_build(const char* operation, Q&& key, Make&& make) {
    const std::size_t mixed = mixed_hash_of(std::as_const(key));
    auto& shard = state_->shards.for_mixed_hash(mixed);
    node* target = nullptr;
    bool created = false;
    erase_after_unlock later;  // an expired lingering node found below, erased after unlock
    {
      std::lock_guard<sync::small_mutex> guard(shard.mutex);
      shard_table& table = shard.value;
      node* found = table.find(mixed, std::as_const(key), state_->equal);
      TANDEM_SYNC_POINT();  // found (or not) under the lock; releases still run on its count
      if (found != nullptr && (try_acquire(found) || try_revive(found, later.expired))) {
        target = found;
      } else {
        // ~rc_map has cleared this table (a lingering value's destructor, run by ~rc_map, may
        // use the map): a node linked now would be neither counted nor freed (found by review,
        // 2026-12-02: a leak, and a handle kept past the map read freed memory). One test of a
        // flag on the line the lock just brought in; the miss path only.
        if (TANDEM_UNLIKELY(table.orphaned)) throw_created_while_destroyed(operation);
        table.reserve_one_more();  // may throw: nothing changed
        // The only place a K is built: the key is absent. May throw: nothing changed (and an
        // rvalue argument is moved from only if K's constructor gets that far).
        void* memory = allocate_node();  // may throw: nothing changed
        try {
          // K's constructor runs under the shard lock, as visit's f does: marked so, it may not
          // use this map nor wait for a build (either would wait for this lock for ever) and
          // gets std::logic_error instead (found by review, 2026-12-01: rule 12).
          const visit_frame constructing(state_);
          target = ::new (memory) node(state_, mixed, std::forward<Q>(key));
        } catch (...) {  // K's constructor threw: nothing changed
          recycle_node(memory);
          throw;
        }
        target->value.set_label(&label_of,
                                std::addressof(target->key));  // names it in cycle errors
        if (found != nullptr) {
          unlink_locked(state_, table, found);  // dead: its eraser only frees it
        }
        table.link(target);
        if constexpr (rc_map_link_observer<Hash>) state_->hash.entry_linked(mixed);
        ++table.alive;
        if constexpr (build_under_lock) {
          // No other thread can see the node before the unlock below: the value is ready when
          // it can (marked as K's constructor is, above).
          const visit_frame constructing(state_);
          static_cast<void>(target->value.build_unshared(make));
          return {handle(target), true};
        }
        // This thread builds the value (step 5). No other thread can see the node before the
        // unlock below, so the claim needs no compare-and-swap; nothing between here and
        // build_claimed() can throw or begin another build.
        target->value.claim_unshared();
        created = true;
      }
    }
    handle result(target);  // owns the count taken above; releases it if the build throws
    if (created) {
      static_cast<void>(target->value.build_claimed([&]() -> V { return std::invoke(make); }));
      return {std::move(result), true};
    }
    bool built_here = false;
    static_cast<void>(target->value.get_or_init([&]() -> V {
      built_here = true;
      return std::invoke(make);
    }));
    return {std::move(result), built_here};
  }

  // Step 3 (and step 6 after the map is gone; step 7 with linger).
  static void release(node* n) noexcept {
    if (n == nullptr) return;
    if (n->lingers) {
      release_lingering(n);
      return;
    }
    // relaxed: only hints which path to try (the last handle, and no weak handle); release_sole
    // decides again under the shard lock.
    if (n->uses.load(std::memory_order_relaxed) == 1 &&
        (n->weak.load(std::memory_order_relaxed) & weak_live_mask) == 1 && release_sole(n)) {
      return;
    }
    TANDEM_SYNC_POINT();  // about to drop the hold: lookups may take one meanwhile
    // "Am I the last?" is the value this fetch_sub returns, never an earlier load.
    // acq_rel: release orders this holder's uses of the value before the destruction; acquire
    // (for the thread that reaches 0) makes every other holder's uses happen-before it.
    if (n->uses.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    TANDEM_SYNC_POINT();  // dead (0 is final) but still linked: lookups must skip it
    erase_dead(n);
  }

  // Step 3 for a handle that is probably the last one (its count read 1), without linger: under
  // the shard lock, if this handle is the only one and no weak handle exists, nobody else can
  // change the count -- other handles would be counted, lookups need the lock we hold, and only
  // a weak handle's lock() raises the count without it -- so the count is dropped with a plain
  // store and the entry erased in the same critical section: one lock, no read-modify-write on
  // the count (the create + erase churn path). Returns false, having changed nothing, when that
  // is not so (a lookup took a handle meanwhile, or weak handles exist): release() then
  // decrements as usual.
  // Out of line: inlined into release(), it made every release that is not the last (a
  // handle copy's destruction) pay its register saves (perf_rc_map: 22 -> 35 instructions).
  TANDEM_NOINLINE static bool release_sole(node* n) noexcept {
    shared_state* state = n->state;
    check_not_visiting_on_release(state);
    auto& shard = state->shards.for_mixed_hash(n->mixed_hash);
    bool orphaned = false;
    TANDEM_TEST_POINT("rc_map release_sole: before the shard lock");
    {
      std::lock_guard<sync::small_mutex> guard(shard.mutex);
      if (!drop_sole_locked(n, shard.value, orphaned)) return false;
    }
    finish_sole(n, state, orphaned);
    return true;
  }

  // release_sole's (and handle::reset_if's) critical section, under n's shard lock: if the
  // caller's handle is n's only one and no weak handle exists, drops the count with a plain
  // store and unlinks n (true; `orphaned` says whether ~rc_map has run); else changes nothing.
  //
  // Three loads, because two do not read one instant: a thread that holds another handle
  // (taken before our lock) can make a weak handle from it and drop it, both without any lock,
  // between our look at the weak count (no weak handle yet) and our look at the use count (only
  // ours left): both then read 1 although a weak handle lives, and freeing the node left it
  // dangling (a use-after-free, or a lock() that returned the next entry built in the same
  // memory; found by review, 2026-12-01: rule 1). Every weak handle made adds weak_made, which
  // the low bits never reach, so a second look at the whole word that reads exactly the first
  // one proves that none was made in between.
  static bool drop_sole_locked(node* n, shard_table& table, bool& orphaned) noexcept {
    // acquire: pairs with the acq_rel decrement of the last weak handle dropped, so a count
    // its lock() added before is seen by the load of `uses` below (and its reads of the node
    // happen-before the free, as in erase_dead). Live part 1: only the entry's own count, so
    // no weak handle exists now.
    const std::uint64_t weak_before = n->weak.load(std::memory_order_acquire);
    if ((weak_before & weak_live_mask) != 1) return false;
    TANDEM_SYNC_POINT();  // another holder may make a weak handle and drop its handle now
    TANDEM_TEST_POINT("rc_map drop_sole_locked: between the weak and use counts");
    // acquire: pairs with the acq_rel decrements of the other holders, so their uses of the
    // value -- and any weak handle one of them made before dropping -- happen-before what
    // follows.
    if (n->uses.load(std::memory_order_acquire) != 1) return false;
    // No weak handle was made since the first look: with the use count at 1 (no other handle
    // to make one from, and no weak handle whose lock() could make one) none can be made any
    // more, and no handle can be taken without this lock: "Am I the last?" is decided here.
    if (n->weak.load(std::memory_order_acquire) != weak_before) return false;
    TANDEM_SYNC_POINT();  // the last handle, under the lock: nobody can take one meanwhile
    // relaxed: nothing reads the count without this lock any more (no other handle, no weak
    // handle); the unlock publishes it to lookups.
    n->uses.store(0, std::memory_order_relaxed);
    if (n->linked) unlink_locked(n->state, table, n);
    --table.alive;
    orphaned = table.orphaned;
    return true;
  }

  // Under n's shard lock: unlinks n (linked, so the shard is not orphaned) and tells a
  // link-observing Hash (rc_map_link_observer).
  static void unlink_locked(shared_state* state, shard_table& table, node* n) noexcept {
    table.unlink(n);
    if constexpr (rc_map_link_observer<Hash>) state->hash.entry_unlinked(n->mixed_hash);
  }

  // After drop_sole_locked's unlock: the key and value destroyed with no lock held, then the
  // memory freed.
  static void finish_sole(node* n, shared_state* state, bool orphaned) noexcept {
    TANDEM_SYNC_POINT();   // unlinked; the map may be orphaned by ~rc_map meanwhile
    n->destroy_payload();  // key and value destroyed with no lock held
    free_memory(n, state, orphaned);
  }

  // Step 7: a release in a map with linger. Not the last: a CAS from > 1, no lock. The last:
  // the decrement happens under the shard lock, so that reaching 0 and lingering are one step.
  static void release_lingering(node* n) noexcept {
    std::size_t uses = n->uses.load(std::memory_order_relaxed);  // relaxed: the CAS decides
    while (uses > 1) {
      TANDEM_SYNC_POINT();  // decided from `uses`; other holders may release meanwhile
      // acq_rel: as release()'s fetch_sub (this holder's uses before the destruction).
      if (n->uses.compare_exchange_weak(uses, uses - 1, std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
        return;
      }
    }
    shared_state* state = n->state;
    check_not_visiting_on_release(state);
    expire(state, expire_batch);  // while we still hold n, which keeps `state` alive
    TANDEM_SYNC_POINT();          // probably the last holder; a weak lock() may add one
    auto& shard = state->shards.for_mixed_hash(n->mixed_hash);
    node* evicted = nullptr;
    bool lingered = false;
    {
      std::lock_guard<sync::small_mutex> guard(shard.mutex);
      // "Am I the last?" is this fetch_sub's result (a weak handle's lock() may have added a
      // count since the load above, without the lock). acq_rel: as in release().
      if (n->uses.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      // Still in the map (not orphaned) and built: it lingers. A node whose value was never
      // built (its `make` or V's constructor threw, and no other caller was waiting to retry)
      // is erased like any last release: lingering, it would hold a place of max_lingering
      // and evict entries that were really in use (rule 28). No build can be running: every
      // builder holds a count, and ours was the last.
      if (n->linked && n->value.is_ready()) {
        linger_list& list = state->linger.value;
        std::lock_guard<sync::small_mutex> linger_guard(list.mutex);
        // At the bound: the oldest goes first, so the count never exceeds it, even briefly.
        // relaxed: we hold the mutex that guards every write of it.
        if (list.count.load(std::memory_order_relaxed) >= state->options.max_lingering) {
          evicted = list.head;  // not null: max_lingering >= 1 (else linger is off)
          linger_remove(state, evicted);
        }
        n->linger_deadline = deadline_after(state, Clock::now());  // under the mutex: list sorted
        linger_push(state, n);
        lingered = true;
      }
    }
    TANDEM_SYNC_POINT();  // lingering: lookups may revive it, expiry may erase it meanwhile
    if (!lingered) {
      // The map is gone (step 6), or the value was never built: count 0, not lingering: ours.
      erase_dead(n);
    } else if (evicted != nullptr) {
      erase_dead(evicted);  // its count is 0 and its flag was ours: nobody else touches it
    }
    // From here on n is not ours: it may be revived, erased and freed by other threads.
  }

  // Erases a node whose count is 0 and that nobody can revive any more (its last release
  // without linger, or whoever cleared its `lingering` flag): unlinks it if still linked,
  // destroys its key and value with no lock held, and frees its memory unless weak handles
  // remain (their last drop frees it then).
  static void erase_dead(node* n) noexcept {
    shared_state* state = n->state;
    check_not_visiting_on_release(state);
    auto& shard = state->shards.for_mixed_hash(n->mixed_hash);
    bool sole = false;
    bool orphaned = false;
    TANDEM_TEST_POINT("rc_map erase_dead: before the shard lock");  // an insertion may replace n
    {
      std::lock_guard<sync::small_mutex> guard(shard.mutex);
      // The erase decision: only if no insertion replaced (and unlinked) it meanwhile.
      if (n->linked) unlink_locked(state, shard.value, n);
      // No weak handle exists if this reads 1, and none can appear: weak handles come from
      // handles (the count is 0 for good) or from weak handles (there are none). acquire:
      // pairs with the acq_rel decrement of the last weak handle dropped, so its lock()'s reads
      // of this node happen-before the free below.
      sole = (n->weak.load(std::memory_order_acquire) & weak_live_mask) == 1;
      if (sole) {
        --shard.value.alive;
        orphaned = shard.value.orphaned;
      }
    }
    TANDEM_SYNC_POINT();   // unlinked; the map may be orphaned by ~rc_map meanwhile
    n->destroy_payload();  // key and value destroyed with no lock held
    if (sole) {
      free_memory(n, state, orphaned);
    } else {
      drop_weak(n);  // the entry's own weak count: the last weak handle frees the memory
    }
  }

  // A weak count dropped (a weak handle, or the entry's own after its payload was destroyed).
  static void drop_weak(node* n) noexcept {
    if (n == nullptr) return;
    // "Am I the last?" is the value this fetch_sub returns. acq_rel: every weak holder's reads
    // of the node happen-before the free by the last one.
    if ((n->weak.fetch_sub(1, std::memory_order_acq_rel) & weak_live_mask) != 1) return;
    shared_state* state = n->state;
    check_not_visiting_on_release(state);
    auto& shard = state->shards.for_mixed_hash(n->mixed_hash);
    bool orphaned = false;
    {
      std::lock_guard<sync::small_mutex> guard(shard.mutex);
      --shard.value.alive;
      orphaned = shard.value.orphaned;
    }
    free_memory(n, state, orphaned);
  }

  // Frees a node whose payload is destroyed and that no handle or weak handle refers to.
  static void free_memory(node* n, shared_state* state, bool orphaned) noexcept {
    n->~node();
    recycle_node(n);
    // acq_rel: the last of the orphaned nodes' freers (or ~rc_map) sees all others' frees.
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
    // Lingering entries have no handle to release them: erase them now. Taken after every
    // shard is orphaned, so a release that made an entry linger before that is seen here, and
    // one after it erases its entry itself (it finds it unlinked).
    if (state->lingers) {
      node* first = nullptr;
      {
        std::lock_guard<sync::small_mutex> guard(state->linger.value.mutex);
        first = state->linger.value.head;
        for (node* n = first; n != nullptr; n = n->linger_next) n->lingering = false;
        state->linger.value.head = state->linger.value.tail = nullptr;
        state->linger.value.count.store(0, std::memory_order_relaxed);  // relaxed: locked
        publish_head_deadline(state->linger.value);
      }
      for (node* n = first; n != nullptr;) {
        node* const following = n->linger_next;  // read before erase_dead may free n
        erase_dead(n);
        n = following;
      }
    }
    // acq_rel: pairs with the freers' fetch_sub, so the last one to reach 0 sees all frees.
    if (state->orphaned_nodes.fetch_sub(1, std::memory_order_acq_rel) == 1) delete state;
  }

  shared_state* state_;
};

}  // namespace tandem
