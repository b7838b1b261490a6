// tandem/registry.hpp -- lazily built, process-wide named instances ("named singletons").
//
// What it is for: a map from a name (or any key) to one shared instance of T that is built on
// first use and then looked up many times from many threads: the namespaces of a key-value
// store, connection pools per host, loggers per subsystem. The pattern it replaces is
// `static RwLock<HashMap<String, Arc<T>>>` with a write lock on every lookup: there, building
// "db2" waits for "db1", a constructor that needs another instance deadlocks, a throwing
// constructor poisons the map, and every lookup writes the lock's cache line.
//
// When not to use it: values that change after they are built (use rc_map or double_buffer_map),
// or a handful of instances known at compile time (use plain function-local statics).
//
// Algorithm:
//  1. The key is hashed once (string keys through tandem's transparent, latency-oriented string
//     hash, so a std::string_view or const char* is never copied into a std::string; other
//     keys through Hash and a Fibonacci multiply, which a Hash that declares is_avalanching,
//     as string_hash does, skips: tandem::hash_is_avalanching_v). The top 4 bits pick one of
//     shard_count shards, the low bits a start slot.
//  2. Each shard publishes an open-addressing table of atomic node pointers through one atomic
//     pointer. A slot goes null -> node -> tombstone and never back, and a node never moves, so
//     a reader probes with plain loads from the first slot to the first null. Writers (insert,
//     erase, grow) hold the shard's mutex; growing copies the live nodes into a table of twice
//     the size, publishes it, and retires the old table.
//  3. Readers (find, visit, contains, the hit path of get_or_create) run inside a read section:
//     the thread's own epoch slot (alone on its cache line) announces "I may be looking at
//     nodes" (a relaxed store plus the light half of an asymmetric fence: a compiler barrier
//     when the kernel offers membarrier(2), see sync/asymmetric_fence.hpp). That store and the
//     table loads are the only memory operations, and the only line written is the thread's
//     own: no lock, no atomic read-modify-write, no allocation, no shared write. get_or_create then
//     copies the shared_ptr (the one shared write, on T's control block, that the API implies);
//     visit does not.
//  4. A miss in get_or_create locks the shard, inserts a node whose value cell
//     (sync::once_cell) is empty, pins the node, unlocks, and builds the value through the cell:
//     the factory runs with no registry lock held (different keys build in parallel, and a
//     factory may ask for other keys). Concurrent callers for the same key wait on the cell;
//     recursion and cross-thread cycles become recursive_creation_error (see once_cell.hpp).
//  5. When the factory throws, the cell is empty again; the last pinned caller unlinks the
//     empty node, so a failed key leaves no entry. Waiting callers retry and one of them builds.
//     "Last" is the value returned by the caller's own fetch_sub on the pin count, taken under
//     the shard mutex, and the node is found in its table by address (no Hash/KeyEqual call on
//     this noexcept path): a waiter that rebuilt the value meanwhile is never undone.
//  6. When the factory returns, and before the value is published, the builder appends the
//     node to the creation-order list (a doubly linked list under one mutex), which for_each
//     walks and clear()/~registry release backwards: an entry built by another thread from
//     this one's value is always listed after it.
//  7. erase/clear unlink built nodes (tombstones) and retire them: a retired node is freed, and
//     the registry's shared_ptr in it dropped, once no read section that began before the
//     unlink is still running (epoch-based reclamation, below) and no caller is pinned to it.
//     Retired nodes are freed strictly in retirement order: one that must wait holds back every
//     node retired after it, so clear()'s newest-first order survives a pinned node.
//
// Reclamation (epochs): tandem::sync's epoch_reclamation.hpp (Fraser-style epochs, one slot per
// reading thread, and one domain tag per registry). Retiring stamps the unlinked objects; they
// are freed once no read section *of this registry* that began before the unlink is still
// running: a thread parked in another registry's visit() delays nothing here. The check runs
// at the end of erase/clear/creation and never waits, so nothing (not even a visit() that calls
// erase from inside f) can deadlock; the price is that memory retired while a read section is
// running is freed at the next writer call (or at ~registry) rather than immediately.
//
// Guarantees:
//  - At most one successful factory call per entry (per key until it is erased); all callers
//    get the same instance. A throwing factory leaves no entry and poisons nothing.
//  - find/visit/contains and a get_or_create hit are lock-free, allocation-free (for a key used
//    as it is, registry_lookup_key; one converted to Key is built per call) and write no
//    cache line shared with another thread (except the shared_ptr that find and get_or_create
//    return).
//    The first read section a thread ever runs claims its epoch slot (rarely: one allocation
//    per 64 concurrently live threads, which may throw std::bad_alloc out of that thread's
//    first find/visit/contains, with the registry unchanged).
//  - erase/clear never invalidate a shared_ptr a caller holds; ~registry and clear() release
//    the registry's references in reverse creation order (creation = the order factories
//    finished; an entry built from another is the newer). A shared_ptr a caller keeps, even
//    the one a get_or_create still running returns, keeps its instance alive past them: an
//    instance whose destructor uses another entry should hold that entry's shared_ptr.
//  - global(): one per instantiation, never destroyed; at process exit its instances are
//    released in reverse creation order; afterwards find() returns nullptr, visit/contains
//    false, and get_or_create throws std::logic_error (no use-after-free). The exit teardown
//    waits up to exit_grace (100 ms) for lookups of this registry that were already running;
//    if one still runs after that (a thread parked inside this registry's visit()), none of
//    its instances are released (the epochs tell that a section runs, not what it reads).
//  - clear(), ~registry and the exit teardown allocate nothing and call no user code but T's
//    destructors: they cannot fail, even when memory is exhausted.
//  - Exceptions: find/visit/contains throw only what Hash/KeyEqual throw, and std::bad_alloc
//    from a thread's first read section (above); get_or_create propagates the factory's
//    exception, std::invalid_argument for a null pointer from the factory,
//    recursive_creation_error for a cycle, std::bad_alloc, and std::logic_error when it would
//    wait for another thread's build from inside an rc_map visit's f or key constructor (a
//    shard lock held: sync/once_cell.hpp).
//
// Costs: per entry one node (the key, a 64-bit hash, a once_cell holding a shared_ptr<T>, a pin
// count and the list links: about 100 bytes plus the key) and about 2-4 table slots of 8 bytes;
// an instance the registry builds (not a shared_ptr a factory returns) is allocated with its
// shared_ptr control block and starts and ends cache lines of its own (up to 2 x 128 bytes of
// padding: hits increment that block's count, which must not share a line with the instance).
// Per registry shard_count cache lines. Per thread that ever reads: one cache line, reused after
// the thread exits. A hit: one hash, two plain stores to the thread's own line, about ten
// loads (two of them of read-mostly shared lines); get_or_create adds the shared_ptr copy (an
// atomic increment, and the caller's decrement later). A miss: the shard mutex twice, one node
// allocation, the factory, the order mutex once. erase/clear: the shard mutex, one membarrier, a
// scan of all epoch slots (64 per chunk). Retired nodes and tables live until the next writer call
// after the read sections that could see them end.
//
// Memory ordering (epoch labels R1..R3, W1..W2 are those of sync/epoch_reclamation.hpp): the
// reader's announce (R1: relaxed store + light fence) and the writer's heavy fence before its
// slot scan (W2) form a Dekker handshake with the strength of two seq_cst fences: either the
// scan sees the announce (and the object is kept) or the reader's table/slot loads (E2,
// seq_cst) come after the writer's unlinking store (U1, seq_cst) and see it. (Under TSan,
// which models no stand-alone fence, the announce is a seq_cst store and the scan uses
// seq_cst loads: the same handshake through the single total order.) A reader whose announced
// epoch is >= the stamp loaded the counter (acquire) after the stamping fetch_add (W1), which
// happens after the unlink. The reader's leaving store (R3, release) pairs with the scan (W2):
// everything the reader did happens-before the free. Node publication (U0, seq_cst store of
// the slot) pairs with the reader's slot load (E2): the node's key and hash are visible to
// whoever finds it. The value itself is published by the once_cell (release on ready, acquire
// in get()).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "detail/arguments.hpp"
#include "detail/callables.hpp"
#include "detail/port.hpp"
#include "detail/type_contents.hpp"
#include "string_hash.hpp"
#include "sync/assert.hpp"
#include "sync/asymmetric_fence.hpp"
#include "sync/backoff.hpp"
#include "sync/cache_padded.hpp"
#include "sync/epoch_reclamation.hpp"
#include "sync/once_cell.hpp"
#include "sync/sync_point.hpp"
#include "sync/thread_serial.hpp"

namespace tandem {

// ---------------------------------------------------------------------------------------------
// Concepts: what registry<T, Key, Hash, KeyEqual> asks of its parameters.
// ---------------------------------------------------------------------------------------------

namespace detail {
// Whether the default factory builds T(key): a class with a constructor taking the key, or a
// scalar. Never an aggregate: C++20's parenthesised aggregate initialisation lets g++ 12 build
// an aggregate T(key), member by member and with narrowing conversions, while clang 14 and 15
// cannot, so until 2026-12-05 registry<pool, std::uint64_t> with `struct pool { int max = 16;
// }` built a silently narrowed max (-1589934592) under g++ and pool() under clang (found by
// review; rule 73). An aggregate is built T(), on every compiler. (Braces, T{key}, were tried
// the same day and withdrawn: brace elision put the key into a first member that is an array,
// a std::array or a base class, where both compilers had built T(); a review.)
template <class T, class Key>
concept registry_key_constructible =
    !std::is_aggregate_v<T> && std::constructible_from<T, const Key&>;
}  // namespace detail

// get_or_create(key) builds T(const Key&) when T has such a constructor (not an aggregate's
// members: detail::registry_key_constructible), else T().
template <class T, class Key>
concept buildable_from_key_or_default =
    detail::registry_key_constructible<T, Key> || std::default_initializable<T>;

// What a registry stores: a destructible, non-array object type.
template <class T>
concept registry_value = std::is_object_v<T> && !std::is_array_v<T> && std::destructible<T>;

// Hash: a default-constructible function object type that maps a const Key& to std::size_t,
// and whose default-constructed value is a working hash (not a pointer, not a std::function:
// see detail/callables.hpp). The registry builds its Hash with Hash() and takes none from the
// caller, so a pointer would be null (until 2026-12-01 a function pointer compiled and crashed
// on first use; a std::function threw std::bad_function_call on every lookup).
template <class Hash, class Key>
concept registry_hash = std::is_invocable_r_v<std::size_t, const Hash&, const Key&> &&
    detail::works_default_constructed<Hash>;

// KeyEqual: the same, comparing two Keys.
template <class KeyEqual, class Key>
concept registry_key_equal = detail::works_default_constructed<KeyEqual> &&
    std::is_invocable_r_v<bool, const KeyEqual&, const Key&, const Key&>;

// Key: a copy-constructible object type (not a reference: the registry keeps Keys in tables),
// with a registry_hash and a registry_key_equal; not a view (std::string_view, std::span): an
// entry's key is built from the caller's argument and kept for ever, so get_or_create(name)
// with a std::string name kept a view of it, and every later lookup, for_each and error
// message read the caller's freed string (found by review, 2026-12-02). Use std::string. Nor a
// container, C array, pair, tuple, optional or variant holding a view, a std::reference_wrapper,
// an initializer_list, a reference, a standard range view or another library's string view
// (detail::holds_view_v; a struct of your own that holds one is not detected).
template <class Key, class Hash, class KeyEqual>
concept registry_key =
    std::is_object_v<Key> && !detail::holds_view_v<Key> && std::copy_constructible<Key> &&
    std::destructible<Key> && registry_hash<Hash, Key> && registry_key_equal<KeyEqual, Key>;

namespace detail {

template <class H>
concept transparent = requires {
  typename H::is_transparent;
};

template <class R, class T>
struct is_unique_ptr_to : std::false_type {};
template <class U, class D, class T>
struct is_unique_ptr_to<std::unique_ptr<U, D>, T>
    : std::bool_constant<std::is_convertible_v<U*, T*>> {};
template <class R, class T>
struct is_shared_ptr_to : std::false_type {};
template <class U, class T>
struct is_shared_ptr_to<std::shared_ptr<U>, T> : std::bool_constant<std::is_convertible_v<U*, T*>> {
};

// Bumped by every registry's erase/clear/override/restore: what registry::cached_accessor
// compares against. One process-wide word (not one per registry) so that get() loads it at a
// fixed address, with no pointer to follow, like a function-local static's guard; the price is
// that a change in any registry makes every accessor look its key up once more.
TANDEM_PROCESS_WIDE inline constinit sync::cache_padded<std::atomic<std::uint64_t>>
    registry_generation{};

// The tables' tombstone: one process-wide object whose address marks an erased slot (it is
// compared, never dereferenced). Not a static member of the class template: an instantiation
// for a T that a shared library declares with hidden visibility is hidden whatever the member
// says, so each module had its own, and a module reading a slot another module had erased took
// its tombstone for a node (heap corruption at the registry's destruction; found by review,
// 2026-12-02, docs/reliability.md rule 47). Page-aligned, so that its address is a suitably
// aligned pointer to any node type (static_assert in registry::tombstone()); never written, so
// its page is never touched.
struct alignas(4096) registry_tombstone_object {
  unsigned char byte;
};
TANDEM_PROCESS_WIDE inline constinit registry_tombstone_object registry_tombstone{};

// An instance the registry builds itself, in one allocation with its shared_ptr's control block
// (std::make_shared), starting a cache line of its own and ending on one: every hit copies the
// shared_ptr, an atomic increment of the control block's count on whichever thread looks it
// up, so a count on the instance's first line (where `new T` puts the separately allocated
// block right after a small T) would bounce that line between the threads that use the
// instance and those that look it up. The shared_ptr<T> returned aliases `value`.
template <class T>
struct alignas(alignof(T) > sync::cache_line_size ? alignof(T)
                                                  : sync::cache_line_size) registry_instance {
  // T(args...), as documented ("builds T(key)"): for a scalar T, the explicit conversion that
  // T(key) is (registry<int, std::uint64_t> builds int(key); direct initialisation warned
  // -Wconversion inside this header, in the user's build).
  template <class... Args>
  explicit registry_instance(std::in_place_t /*tag*/, Args&&... args)
      : value(as_argument(std::forward<Args>(args))...) {}
  template <class Factory>
  registry_instance(std::in_place_type_t<Factory> /*tag*/, Factory& factory)
      : value(std::invoke(factory)) {}
  T value;

 private:
  template <class A>
  static decltype(auto) as_argument(A&& argument) {
    if constexpr (std::is_scalar_v<T>) {
      return static_cast<T>(argument);
    } else {
      return std::forward<A>(argument);
    }
  }
};

template <class T, class... Args>
std::shared_ptr<T> make_registry_instance(Args&&... args) {
  auto holder = std::make_shared<registry_instance<T>>(std::forward<Args>(args)...);
  T* const value = std::addressof(holder->value);
  return std::shared_ptr<T>(std::move(holder), value);  // aliasing: shares holder's count
}

// Formats a key for error messages.
template <class Key>
std::string describe_registry_key(const Key& key) {
  if constexpr (std::is_pointer_v<Key>) {
    if (key == nullptr) return "a null key";  // never a view of it (rule 52)
  }
  if constexpr (std::is_convertible_v<const Key&, std::string_view>) {
    std::string text = "\"";
    text += std::string_view(key);
    text += "\"";
    return text;
  } else if constexpr (std::is_arithmetic_v<Key> && requires { std::to_string(key); }) {
    // (Not every arithmetic type has a std::to_string: __int128 under -std=gnu++20.)
    return std::to_string(key);
  } else {
    return "a key";
  }
}

}  // namespace detail

// A lookup argument of registry<T, Key, Hash, KeyEqual>: the Key itself or, when Hash and
// KeyEqual are transparent (the default for std::string keys), anything they accept and a Key
// can be built from, such as std::string_view or const char*.
template <class K, class Key, class Hash, class KeyEqual>
concept registry_lookup_key = std::same_as<std::remove_cvref_t<K>, Key> ||
    (!detail::is_caller_converted_v<std::remove_cvref_t<K>> && detail::transparent<Hash> &&
     detail::transparent<KeyEqual> && std::is_invocable_r_v<std::size_t, const Hash&, const K&> &&
     std::is_invocable_r_v<bool, const KeyEqual&, const Key&, const K&> &&
     std::constructible_from<Key, const K&>);

// What the registry's functions take as a key: a registry_lookup_key (used as it is: no
// conversion, no allocation), or anything implicitly convertible to Key (an integer literal
// for a std::uint64_t key, ...), converted to one Key per call.
template <class K, class Key, class Hash, class KeyEqual>
concept registry_key_argument =
    registry_lookup_key<K, Key, Hash, KeyEqual> || std::convertible_to<const K&, Key>;

// Tag for registry::declare: build this entry in create_eager() (at start-up), not on first use.
struct eager_t {
  explicit eager_t() = default;
};
inline constexpr eager_t eager{};

// A factory for registry<T>::get_or_create_with: callable with no arguments, returning T,
// std::unique_ptr<T> or std::shared_ptr<T> (or smart pointers to a class derived from T).
template <class F, class T>
concept registry_factory = std::invocable<F&> &&
    (std::is_same_v<std::remove_cv_t<std::invoke_result_t<F&>>, T> ||
     detail::is_unique_ptr_to<std::remove_cv_t<std::invoke_result_t<F&>>, T>::value ||
     detail::is_shared_ptr_to<std::remove_cv_t<std::invoke_result_t<F&>>, T>::value);

// ---------------------------------------------------------------------------------------------
// registry
// ---------------------------------------------------------------------------------------------

// The requirements are named concepts on the class template, so that a bad parameter's first
// error names tandem's requirement (registry_value, registry_key, registry_hash, ...).
template <class T, class Key = std::string, class Hash = default_hash<Key>,
          class KeyEqual = default_key_equal<Key>>
requires registry_value<T> && registry_key<Key, Hash, KeyEqual>
class TANDEM_PROCESS_WIDE registry {  // global() is one per process (TANDEM_PROCESS_WIDE)
 public:
  // Writers' shard count. Readers never contend, so this only bounds how many creations and
  // erasures of different keys proceed in parallel, and how much a table growth copies; 16 is
  // more than the cores most processes create singletons on, at 16 cache lines per registry.
  static constexpr std::size_t shard_count = 16;

  // Throws what Hash's or KeyEqual's default constructor throws (a seeded hash reading
  // std::random_device may); noexcept when neither can (until 2026-12-02 it was noexcept
  // whatever they were, and such a throw ended the process; found by review).
  registry() noexcept(std::is_nothrow_default_constructible_v<Hash>&&
                          std::is_nothrow_default_constructible_v<KeyEqual>&&
                              std::is_nothrow_default_constructible_v<declaration_table>) {
    // Registers the process for the asymmetric fence now, so readers take its cheap path.
    (void)sync::asymmetric_fence::prepare();
  }
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;
  registry(registry&&) = delete;
  registry& operator=(registry&&) = delete;

  // Releases the instances in reverse creation order; allocates nothing. No other thread may
  // use the registry during or after destruction, and no factory of this registry may still be
  // running. T's destructors may look this registry up (find, contains, visit, erase) while it
  // runs, but not build or declare entries in it (get_or_create, override, declare then throw
  // std::logic_error).
  ~registry() {
    // From here on get_or_create (and every other call that would build or declare) throws
    // std::logic_error: a T's destructor that built an entry now leaked it and its table, since
    // the tables are freed below (found by review, 2026-12-02; rule 40: a breach this cheap to
    // check is checked in every build). Lookups still work, as documented.
    destroying_.store(true, std::memory_order_relaxed);  // relaxed: this thread's own calls
    // What declarations hold (factories, override instances) is released first, while the
    // tables stand: an override instance that no entry holds any more is destroyed here (its
    // destructor may look the registry up); one an entry holds goes with that entry, in
    // reverse creation order. (Until 2026-12-02 they went with the member destruction, after
    // the tables were freed.)
    release_declarations();
    clear();
    // What clear() retired is freed now, while the tables still stand: freeing runs T's
    // destructors, which may look this registry up. No reader of this registry exists any
    // more (the precondition above), so nothing retired is reachable, whatever other
    // structures' readers announce; and a destructor that erases retires more, hence the loop.
    // (Until 2026-12-01 the nodes reclaim() had kept back -- because some thread was reading
    // another registry in a section tagged "any domain" -- were freed after the tables, and a
    // destructor's lookup read a freed table.)
    for (;;) {
      node* retired = nullptr;
      {
        const std::lock_guard<std::mutex> lock(retire_mutex_);
        retired = std::exchange(retired_nodes_, retired_list<node>{}).head;
      }
      if (retired == nullptr) break;
      free_nodes(retired);
    }
    for (shard& s : shards_) {
      // relaxed: no other thread uses the registry during destruction.
      table* t = s.current.load(std::memory_order_relaxed);
      if (t == nullptr) continue;
      for (std::size_t i = 0; i <= t->mask; ++i) {
        node* n = t->slots[i].load(std::memory_order_relaxed);
        if (n != nullptr && n != tombstone()) {
          TANDEM_ASSERT(n->pins.load() == 0, "registry destroyed while a factory is running");
          delete n;
        }
      }
      s.current.store(nullptr, std::memory_order_relaxed);  // relaxed: as above
      table::destroy(t);
    }
    free_nodes(retired_nodes_.head);
    free_tables(retired_tables_.head);
  }

  // Keys: every function below takes a Key, a registry_lookup_key (used as it is), or anything
  // implicitly convertible to Key (registry_key_argument). A scalar Key (an integer, enum or
  // pointer) is taken by value, in an overload of its own that passes it on as a
  // detail::caller_converted<Key>: the conversion is the caller's, where -Wconversion sees it
  // (detail::forwarded_key; until 2026-12-05 `Key(key)` converted it here, silently).
  template <class K>
  static constexpr bool forwarded =
      detail::forwarded_key<K, Key, registry_lookup_key<K, Key, Hash, KeyEqual>>;

  // The instance for `key`, built now if it does not exist yet: by the override (override()),
  // else the declared factory (declare()), else T(key), else T(). Concurrent callers for the
  // same key get the same instance. A key with none of these throws std::logic_error.
  template <class K>
  requires registry_key_argument<K, Key, Hash, KeyEqual> && forwarded<K>
      TANDEM_ALWAYS_INLINE inline std::shared_ptr<T> get_or_create(const K& key_argument) {
    const auto& key = lookup_form(key_argument);
    default_factory factory;
    return get_or_create_impl(key, factory);
  }
  TANDEM_ALWAYS_INLINE inline std::shared_ptr<T> get_or_create(
      Key key) requires detail::by_value_sink<Key> {
    return get_or_create(detail::caller_converted<Key>{key});
  }

  // Like get_or_create, but builds with factory() (called at most once per entry; not at all
  // when the entry exists; an override() of the key takes precedence). A null pointer from
  // factory, or a null function pointer or empty std::function as factory, is
  // std::invalid_argument.
  template <class K, class F>
  requires registry_key_argument<K, Key, Hash, KeyEqual> && forwarded<K> && registry_factory<F, T>
      TANDEM_ALWAYS_INLINE inline std::shared_ptr<T> get_or_create_with(const K& key_argument,
                                                                        F&& factory) {
    detail::require_callable(factory, "tandem::registry::get_or_create_with", "factory");
    const auto& key = lookup_form(key_argument);
    return get_or_create_impl(key, factory);
  }
  template <class F>
  requires detail::by_value_sink<Key> && registry_factory<F, T>
      TANDEM_ALWAYS_INLINE inline std::shared_ptr<T> get_or_create_with(Key key, F&& factory) {
    return get_or_create_with(detail::caller_converted<Key>{key}, std::forward<F>(factory));
  }

  // The instance, or nullptr when absent or still being built.
  template <class K>
  requires registry_key_argument<K, Key, Hash, KeyEqual> && forwarded<K>
  [[nodiscard]] std::shared_ptr<T> find(const K& key_argument) const {
    const auto& key = lookup_form(key_argument);
    if (is_torn_down()) return nullptr;
    const std::uint64_t hash = hash_of(key);
    const sync::epoch_read_section section(domain_.tag());
    const node* n = lookup(hash, key);
    if (n == nullptr) return nullptr;
    const std::shared_ptr<T>* value = n->cell.get();
    return value != nullptr ? *value : nullptr;
  }
  [[nodiscard]] std::shared_ptr<T> find(Key key) const requires detail::by_value_sink<Key> {
    return find(detail::caller_converted<Key>{key});
  }

  // Calls f(T&) on the built instance without copying a shared_ptr; false when absent or still
  // being built. f may call this registry (even erase the entry: the instance stays alive until
  // f returns), but not destroy or assign it (as for any container's visitor). Do not block in
  // f for long: memory erased meanwhile is freed only afterwards.
  template <class K, class F>
  requires registry_key_argument<K, Key, Hash, KeyEqual> && forwarded<K> && std::invocable<F&, T&>
  bool visit(const K& key_argument, F&& f) const {
    const auto& key = lookup_form(key_argument);
    if (is_torn_down()) return false;
    const std::uint64_t hash = hash_of(key);
    const sync::epoch_read_section section(domain_.tag());
    const node* n = lookup(hash, key);
    if (n == nullptr) return false;
    const std::shared_ptr<T>* value = n->cell.get();
    if (value == nullptr) return false;
    std::invoke(f, **value);
    return true;
  }
  template <class F>
  requires detail::by_value_sink<Key> && std::invocable<F&, T&>
  bool visit(Key key, F&& f) const {
    return visit(detail::caller_converted<Key>{key}, std::forward<F>(f));
  }

  // Whether a built instance exists (false while it is being built).
  template <class K>
  requires registry_key_argument<K, Key, Hash, KeyEqual> && forwarded<K>
  [[nodiscard]] bool contains(const K& key_argument) const {
    const auto& key = lookup_form(key_argument);
    if (is_torn_down()) return false;
    const std::uint64_t hash = hash_of(key);
    const sync::epoch_read_section section(domain_.tag());
    const node* n = lookup(hash, key);
    return n != nullptr && n->cell.is_ready();
  }
  [[nodiscard]] bool contains(Key key) const requires detail::by_value_sink<Key> {
    return contains(detail::caller_converted<Key>{key});
  }

  // The number of built entries: those whose factory has returned (a snapshot when other
  // threads create or erase meanwhile). An entry is counted when it takes its place in
  // creation order, just before its value is published, so for an instant size() may count an
  // entry that find/contains/for_each do not see yet.
  [[nodiscard]] std::size_t size() const noexcept {
    // relaxed: a statistic; it is exact when no other thread changes the registry.
    return built_count_.load(std::memory_order_relaxed);
  }

  // Removes the built entry for `key` (false when there is none: absent or still being built).
  // Only the registry's reference is dropped: shared_ptrs held by callers stay valid.
  template <class K>
  requires registry_key_argument<K, Key, Hash, KeyEqual> && forwarded<K>
  bool erase(const K& key_argument) {
    const auto& key = lookup_form(key_argument);
    const unlink_result result =
        unlink_built(hash_of(key), key, [](const node& /*built*/) { return true; });
    if (result.removed == nullptr) return false;
    release_unlinked_node(result.removed);
    return true;
  }
  bool erase(Key key) requires detail::by_value_sink<Key> {
    return erase(detail::caller_converted<Key>{key});
  }

  // Removes every built entry, releasing the registry's references in reverse creation order.
  // Allocates nothing and calls no Hash/KeyEqual (the removed nodes are chained through their
  // own links and found by address), so it cannot fail: ~registry and the exit teardown use it.
  void clear() noexcept {
    node* removed = nullptr;  // chained through next_removed
    for (shard& s : shards_) {
      const std::lock_guard<std::mutex> lock(s.mutex);
      table* t = s.current.load(std::memory_order_relaxed);  // relaxed: we hold the mutex
      if (t == nullptr) continue;
      for (std::size_t i = 0; i <= t->mask; ++i) {
        // relaxed: we hold the shard mutex.
        node* n = t->slots[i].load(std::memory_order_relaxed);
        if (n == nullptr || n == tombstone() || !n->cell.is_ready()) continue;
        unlink(s, *t, i);
        n->next_removed = removed;
        removed = n;
      }
    }
    release_unlinked(removed);
    bump_version();
  }

  // Calls f(key, instance) for every built entry, oldest first (creation order), as
  // f(const Key&, T&) or, to keep an instance beyond the call, f(const Key&, const
  // std::shared_ptr<T>&). Entries created or erased meanwhile may or may not be visited. f may
  // call the registry, but not destroy or assign it.
  template <class F>
  requires std::invocable<F&, const Key&, T&> || std::invocable < F&, const Key&,
      const std::shared_ptr<T>
  & > void for_each(F&& f) const {
    if (is_torn_down()) return;
    const sync::epoch_read_section section(domain_.tag());  // keeps erased nodes alive while f runs
    std::vector<const node*> snapshot;
    {
      const std::lock_guard<std::mutex> lock(order_mutex_);
      // relaxed: only a capacity hint.
      snapshot.reserve(built_count_.load(std::memory_order_relaxed));
      for (const node* n = oldest_; n != nullptr; n = n->newer) snapshot.push_back(n);
    }
    for (const node* n : snapshot) {
      // Listed just before its value is published (list()): not built yet, so not visited.
      // (1) acquire in is_ready: the value is visible.
      if (!n->cell.is_ready()) continue;
      if constexpr (std::is_invocable_v<F&, const Key&, T&>) {
        std::invoke(f, n->key, *n->cell.built_value());
      } else {
        std::invoke(f, n->key, n->cell.built_value());
      }
    }
  }

  // ---- Declared factories, eager entries, overrides (folly::Singleton's counterparts) ----

  // Registers how `key` is built, without building it: get_or_create(key) then calls
  // factory() (returning T, std::unique_ptr<T> or std::shared_ptr<T>; it is copied and kept).
  // With tandem::eager, create_eager() builds it. Declaring a key twice throws
  // std::logic_error. Safe from static initialisers for global() (which is built on first use).
  // Costs one lock of the declarations' mutex; lookups never touch declarations, a miss of a
  // registry with declarations locks it once.
  template <class K, class F>
  requires registry_key_argument<K, Key, Hash, KeyEqual> && forwarded<K> &&
      registry_factory<F, T> && std::copy_constructible<std::decay_t<F>>
  void declare(const K& key, F&& factory) {
    add_declaration(key_of(key), std::forward<F>(factory), false);
  }
  template <class K, class F>
  requires registry_key_argument<K, Key, Hash, KeyEqual> && forwarded<K> &&
      registry_factory<F, T> && std::copy_constructible<std::decay_t<F>>
  void declare(const K& key, F&& factory, eager_t) {
    add_declaration(key_of(key), std::forward<F>(factory), true);
  }
  template <class F>
  requires detail::by_value_sink<Key> && registry_factory<F, T> &&
      std::copy_constructible<std::decay_t<F>>
  void declare(Key key, F&& factory) {
    declare(detail::caller_converted<Key>{key}, std::forward<F>(factory));
  }
  template <class F>
  requires detail::by_value_sink<Key> && registry_factory<F, T> &&
      std::copy_constructible<std::decay_t<F>>
  void declare(Key key, F&& factory, eager_t tag) {
    declare(detail::caller_converted<Key>{key}, std::forward<F>(factory), tag);
  }

  // Builds every entry declared with tandem::eager that is not built yet, on up to
  // std::thread::hardware_concurrency() helper threads (the caller joins them; on one core,
  // inside a build or inside an rc_map visit it builds every key itself), so that a service
  // fails at start-up rather than on its first request. Factories that need each other wait
  // for each other (cycles throw recursive_creation_error). Blocks until all are done; if any
  // factory threw, rethrows the exception of the first such key in declaration order (the
  // others are built). Returns the number of eager entries. Called from inside a factory (a
  // build of this thread is in progress), it builds every key on the calling thread, so that
  // a key needing the entry being built is a recursive_creation_error, not a helper thread
  // waiting for a build that waits for the helper (until 2026-12-01 a silent hang: the cycle
  // detector cannot see a thread join).
  std::size_t create_eager() {
    std::vector<Key> keys;
    {
      const std::lock_guard<std::mutex> lock(declarations_mutex_);
      for (const Key& key : declaration_order_) {
        const auto it = declarations_.find(key);
        if (it != declarations_.end() && it->second.eager) keys.push_back(key);
      }
    }
    std::vector<std::exception_ptr> errors(keys.size());
    std::atomic<std::size_t> next{0};
    auto work = [&]() noexcept {
      for (std::size_t i = next.fetch_add(1); i < keys.size(); i = next.fetch_add(1)) {
        try {
          (void)get_or_create(keys[i]);
        } catch (...) {
          errors[i] = std::current_exception();
        }
      }
    };
    // The helpers work for this thread, which joins them: a factory on a helper that would
    // wait for something only this thread can end (its double_buffer read guard, room in a
    // full `block` mailbox this thread receives on -- known once it has received on it since
    // the subscription was made or moved, event_bus's rule 72) gets the std::logic_error it
    // gets on this thread, instead of a wait that never ends (detail::is_self). A mailbox this
    // thread subscribed but never received on is not known to be its own (a worker may
    // receive on it by reference), so that publish waits, as it would on this thread. Locks this
    // thread holds are not seen: calling create_eager() while holding a lock a factory takes
    // deadlocks, as with any thread pool.
    const std::uint64_t caller = detail::thread_serial();
    auto help = [&work, caller]() noexcept {
      detail::this_thread_works_for = caller;
      work();
    };
    const std::size_t hardware = std::max<std::size_t>(1, std::thread::hardware_concurrency());
    // Inside a build, or inside an rc_map visit (a shard lock held), a helper could wait for
    // what this thread holds while this thread joins it: then every key is built here.
    const bool holds_something = detail::this_thread_once_node.innermost_build != nullptr ||
                                 detail::rc_map_visits != nullptr;
    const std::size_t helpers =
        holds_something || hardware < 2 ? 0 : std::min(hardware, keys.size());
    std::vector<std::thread> threads;
    threads.reserve(helpers);
    try {
      for (std::size_t i = 0; i < helpers; ++i) threads.emplace_back(help);
    } catch (...) {
      // Fewer threads than planned (resources exhausted): the ones started build every key.
    }
    // With helpers, this thread only joins them: it is then really blocked, which is what lets
    // the helpers count it as themselves (is_self). Were it to build keys too, a guard its own
    // factory holds for a while would make a helper's publish throw instead of wait.
    if (threads.empty()) work();
    for (std::thread& t : threads) t.join();
    for (const std::exception_ptr& error : errors) {
      if (error) std::rethrow_exception(error);
    }
    return keys.size();
  }

  // Testing tool (folly's mock singletons): from now on get_or_create(key), find(key) and
  // visit(key) give `instance` instead of what the declared factory (or T(key)) builds; an
  // instance built before is dropped from the registry (shared_ptrs you hold keep it alive).
  // restore(key) undoes it. Blocks while a build of key is in flight (it may still finish with
  // the old factory, and is then dropped). When it returns, `instance` is the registered
  // instance, unless a later override()/restore() of key superseded this call (the last to
  // declare wins: it owns the outcome, and this call returns without touching the entry
  // again). So of racing override()s the last to declare is registered once all have returned;
  // of override() racing restore(), the later one's outcome holds. Builds nothing but
  // override instances (no factory runs). Throws std::invalid_argument for a null instance,
  // recursive_creation_error when called from inside a build of key (it would wait for
  // itself), std::logic_error after the exit teardown (as get_or_create), std::bad_alloc; the
  // declaration stays made when it throws after it (builds from then on give `instance`; the
  // entry already there stays until it is erased or the next override()/restore()).
  template <class K>
  requires registry_key_argument<K, Key, Hash, KeyEqual> && forwarded<K>
  void override(const K& key_argument, std::shared_ptr<T> instance) {
    if (instance == nullptr) {
      throw std::invalid_argument("tandem::registry::override: null instance for " +
                                  detail::describe_registry_key(key_of(key_argument)));
    }
    Key key = key_of(key_argument);  // explicit: an int literal for an unsigned Key is fine
    // The override this one replaces, released when override() returns, outside every lock:
    // its T's destructor may use the registry (rule 14; it deadlocked on declarations_mutex_
    // until 2026-12-01 when it built an entry).
    std::shared_ptr<T> replaced;
    {
      const std::lock_guard<std::mutex> lock(declarations_mutex_);
      // Under the lock that the exit teardown's release of the declarations takes: after it,
      // nothing is stored (until 2026-12-02 the instance was stored and then the call threw,
      // and the torn-down registry kept the instance for ever; found by review).
      check_alive("override");
      // A new declaration is never left out of the order (it would hide a later eager
      // declare() of the key from create_eager()): see add_declaration.
      const auto it = emplace_declaration(key);
      replaced = std::exchange(it->second.override_instance, instance);
      has_declarations_.store(true, std::memory_order_release);  // pairs with make_declared_or
    }
    // Every build that starts from now on gives `instance` (until a later override/restore).
    // Left to replace: the entry built before (or by a build that read the declarations before
    // ours). Each round waits for the build in flight, then drops the entry unless it holds
    // `instance`, only while `instance` is still the declared override (checked under
    // declarations_mutex_, together with the unlink: a superseded call never drops what a
    // later one registered). The loop ends: stale builds are finite, and a later
    // override()/restore() stops it at once (never waiting for a state it can no longer reach).
    for (;;) {
      if (registered_or_override(key) == instance) break;
      const drop_status status = drop_if_still_declared(
          key, instance, [&](const node& built) { return built.cell.built_value() != instance; });
      if (status == drop_status::superseded) break;
    }
    bump_version();
  }
  void override(Key key, std::shared_ptr<T> instance) requires detail::by_value_sink<Key> {
    override(detail::caller_converted<Key>{key}, std::move(instance));
  }

  // Ends override(key): the override's instance is dropped from the registry and the next
  // get_or_create(key) builds with the declared factory again. False if key had no override
  // declared (another restore() may have cleared it first). Either way, when it returns no
  // override's instance is registered for key (a build that picked an override before it was
  // cleared is waited for, restore() blocking meanwhile, and dropped; so is the entry of an
  // override another restore() is still dropping), unless a later override() of key
  // superseded this call (it owns the outcome).
  // Builds nothing (no factory runs; a build a later override() declared may be run: it only
  // copies that override's shared_ptr). Throws std::bad_alloc, and std::logic_error when it
  // races the exit teardown of global() (as get_or_create).
  template <class K>
  requires registry_key_argument<K, Key, Hash, KeyEqual> && forwarded<K>
  bool restore(const K& key_argument) {
    const Key key = key_of(key_argument);
    std::shared_ptr<T> dropped;  // released outside the lock
    std::uint64_t cleared = 0;   // declarations_cleared_ as this call's clear left it
    {
      const std::lock_guard<std::mutex> lock(declarations_mutex_);
      const auto it = declarations_.find(key);
      if (it != declarations_.end()) dropped = std::exchange(it->second.override_instance, nullptr);
      cleared = ++declarations_cleared_;
    }
    // No early return when nothing was declared: a restore() that cleared the override just
    // before may still be dropping its instance (until 2026-12-01 a second restore() returned
    // while it was registered).
    // Builds that read the declarations before we cleared them may still register `dropped`
    // (erase() alone skips an entry being built), and an older override's instance may still be
    // registered (an override() superseded by us stops replacing it). Each round drops the
    // built entry if an override gave its instance, while no later override() is declared,
    // and looks again. It stops at an entry no override gave (or none), and at an entry being
    // built that looked for an override after our clear (or has not looked yet): such builds
    // run a factory, so nothing is left to drop. Only an entry built by a build that looked
    // before the clear is waited for, and those are finite, so the loop ends. (Until
    // 2026-12-03 every round began by waiting for the build in flight and went round again
    // while one was: a thread that kept erasing and rebuilding the key with a factory kept
    // restore() waiting, one build per round, for as long as it went on -- 1.6 s with a 2 ms
    // factory in a review's program; and a fix review found the first wait still made it wait
    // for a 1 s factory build that began after the clear.)
    // After the teardown nothing is registered, and during ~registry nothing is built (a T's
    // destructor calling restore() ended the process through create()'s refusal until
    // 2026-12-02; found by review).
    while (!is_torn_down() && !destroying_.load(std::memory_order_relaxed)) {
      TANDEM_TEST_POINT("registry restore: a round begins");
      const drop_status status = drop_if_still_declared(
          key, nullptr, [](const node& built) { return built.from_override; },
          [cleared](const node& building) {
            // relaxed: read under declarations_mutex_, which the builder wrote it under.
            const std::uint64_t read = building.declarations_read.load(std::memory_order_relaxed);
            return read != 0 && read <= cleared;  // looked for an override before our clear
          });
      TANDEM_TEST_POINT("registry restore: a round ended");
      if (status == drop_status::dropped) continue;  // another stale build may have registered
      if (status != drop_status::building) break;
      // A build that looked for an override before our clear is in flight: wait for it (for
      // whatever build of key is in flight by then), then look again.
      try {
        (void)registered_or_override(key);
      } catch (const recursive_creation_error&) {
        // Called from inside a build of key (directly or through a cycle): that build runs a
        // factory (an override build runs no user code, so it is in no cycle) and cannot give
        // an override's instance. Nothing to drop.
        break;
      }
    }
    if (dropped == nullptr) return false;
    bump_version();
    return true;
  }
  bool restore(Key key) requires detail::by_value_sink<Key> {
    return restore(detail::caller_converted<Key>{key});
  }

  // A cached accessor for one of the hottest keys: get() costs one load of a read-mostly
  // process-wide word (detail::registry_generation) and a compare, about a function-local
  // static's access: no hashing, no lock, no shared write. It notices erase(), clear(),
  // override() and restore() of any key of any registry (then looks its key up again, building
  // it if needed: such changes are rare, and a refresh costs one lookup) and the exit teardown
  // (then get() throws std::logic_error). It holds a shared_ptr to its instance. One accessor
  // object must not be used by two threads at once: copy it (or keep one thread_local).
  class cached_accessor {
   public:
    cached_accessor(const cached_accessor&) = default;
    // The key is copied first: if that throws, nothing else has changed (a defaulted
    // assignment copied the cached instance's address first, so a failed key copy left an
    // accessor serving another key's instance, which it did not own).
    // Assignable exactly when Key is.
    cached_accessor& operator=(
        const cached_accessor& other) requires std::is_copy_assignable_v<Key> {
      if (this != &other) {
        assign_key(other.key_);
        registry_ = other.registry_;
        version_ = other.version_;
        instance_ = other.instance_;
        cached_ = other.cached_;
      }
      return *this;
    }
    // A moved-from accessor holds nothing: its get() throws std::logic_error (until 2026-12-01
    // it kept the moved instance's address, then looked up the empty key "" and built it).
    // A Key whose move may throw is copied instead (std::move_if_noexcept), so that a throw
    // leaves `other` whole; the source is emptied only after the key has arrived.
    cached_accessor(cached_accessor&& other) noexcept(std::is_nothrow_move_constructible_v<Key>)
        : registry_(other.registry_),
          version_(other.version_),
          instance_(other.instance_),
          key_(std::move_if_noexcept(other.key_)),
          cached_(std::move(other.cached_)) {
      other.registry_ = nullptr;
      other.version_ = std::numeric_limits<std::uint64_t>::max();
      other.instance_ = nullptr;
    }
    cached_accessor& operator=(const cached_accessor&) requires(!std::is_copy_assignable_v<Key>) =
        delete;
    cached_accessor& operator=(cached_accessor&& other) noexcept(
        std::is_nothrow_move_assignable_v<Key>) requires std::is_move_assignable_v<Key> {
      if (this != &other) {
        if constexpr (std::is_nothrow_move_assignable_v<Key> || !std::is_copy_assignable_v<Key>) {
          assign_key(std::move(other.key_));
        } else {
          assign_key(std::as_const(other.key_));  // a copy: `other` stays whole if it throws
        }
        registry_ = std::exchange(other.registry_, nullptr);
        version_ = std::exchange(other.version_, std::numeric_limits<std::uint64_t>::max());
        instance_ = std::exchange(other.instance_, nullptr);
        cached_ = std::move(other.cached_);
      }
      return *this;
    }
    cached_accessor& operator=(cached_accessor&&) requires(!std::is_move_assignable_v<Key>) =
        delete;
    ~cached_accessor() = default;

    // The instance: looked up (or built) on first use and after any erase/override/restore.
    // The reference is valid until this accessor's next get() (which may refresh and let go of
    // the instance it held) or its destruction; keep registry::get_or_create's shared_ptr to
    // hold an instance longer.
    T& get() {
      // acquire: pairs with the release increment in bump_version(), which follows the
      // change that made our cache stale. (version_ starts at a value the registry never
      // reaches, so the first get() refreshes.)
      const std::uint64_t now = detail::registry_generation.value.load(std::memory_order_acquire);
      if (TANDEM_LIKELY(now == version_)) return *instance_;
      return refresh(now);
    }
    T& operator*() { return get(); }
    T* operator->() { return std::addressof(get()); }
    [[nodiscard]] const Key& key() const noexcept { return key_; }

   private:
    friend class registry;
    cached_accessor(registry& owner, Key key) : registry_(&owner), key_(std::move(key)) {}

    // key_ = source, for assignments. A Key whose assignment throws after changing the key
    // (no strong guarantee) must not leave the cache serving the old key's instance under
    // the new name: the cache is dropped, so the next get() looks key_ up as it now is.
    template <class Source>
    void assign_key(Source&& source) {
      try {
        key_ = std::forward<Source>(source);
      } catch (...) {
        version_ = std::numeric_limits<std::uint64_t>::max();
        instance_ = nullptr;
        throw;
      }
    }

    TANDEM_NOINLINE T& refresh(std::uint64_t now) {
      if (registry_ == nullptr) {
        throw std::logic_error(
            "tandem::registry::cached_accessor::get: the accessor was moved from (it holds no "
            "key and no instance any more); use the accessor it was moved into");
      }
      cached_ = registry_->get_or_create(key_);  // throws std::logic_error after teardown
      instance_ = cached_.get();
      version_ = now;
      return *instance_;
    }

    registry* registry_;
    std::uint64_t version_ = std::numeric_limits<std::uint64_t>::max();
    T* instance_ = nullptr;
    Key key_;
    std::shared_ptr<T> cached_;
  };

  // A cached_accessor for `key` (nothing is looked up or built until its first get()).
  template <class K>
  requires registry_key_argument<K, Key, Hash, KeyEqual> && forwarded<K>
  [[nodiscard]] cached_accessor accessor(const K& key) {
    return cached_accessor(*this, key_of(key));
  }
  [[nodiscard]] cached_accessor accessor(Key key) requires detail::by_value_sink<Key> {
    return accessor(detail::caller_converted<Key>{key});
  }

  // The process-wide registry for this instantiation (see "teardown" in docs/registry.md):
  // never destroyed; at exit its instances are released in reverse creation order, after which
  // it answers like an empty registry and get_or_create throws std::logic_error.
  TANDEM_PROCESS_WIDE static registry& global() {
    static registry* const instance = make_global();
    return *instance;
  }

 private:
  struct default_factory {};  // builds T(key) or T()

  using declared_factory = std::function<std::shared_ptr<T>()>;
  struct declaration {
    // Null: only an override. Shared, so that the miss path takes it under the declarations'
    // mutex by a reference count and copies the user's callable after the unlock (a copy
    // constructor may use the registry: it deadlocked there until 2026-12-02).
    std::shared_ptr<const declared_factory> factory;
    bool eager = false;
    std::shared_ptr<T> override_instance;
  };

  // The declaration of `key` (a new, empty one if there was none), listed in
  // declaration_order_ when new; under declarations_mutex_. Strong guarantee: the order gets
  // the key first, and a throw from the table (bad_alloc, Hash, KeyEqual, Key's copy) takes
  // it back with pop_back, which runs no user code but ~Key. (Until 2026-12-01 the order came
  // second and its failure was undone with erase(it), which hashes the key again under
  // libstdc++ when hashes are not cached: user code in the error path.)
  auto emplace_declaration(const Key& key) {
    declaration_order_.push_back(key);
    try {
      auto [it, inserted] = declarations_.try_emplace(key);
      if (!inserted) declaration_order_.pop_back();
      return it;
    } catch (...) {
      declaration_order_.pop_back();
      throw;
    }
  }

  template <class F>
  void add_declaration(Key key, F&& factory, bool eager_entry) {
    // Refused now, not at every later lookup of the key (rule 36).
    detail::require_callable(factory, "tandem::registry::declare", "factory");
    auto build = std::make_shared<const declared_factory>(
        // A factory lvalue is copied from a const lvalue: a functor's forwarding constructor
        // template would otherwise win over its copy constructor (rule 54).
        [f = std::decay_t<F>(detail::as_source<std::decay_t<F>>(std::forward<F>(factory))),
         k = key]() mutable { return make_instance(f, k); });
    const std::lock_guard<std::mutex> lock(declarations_mutex_);
    check_alive("declare");  // as override(): nothing is kept after the teardown
    const auto it = emplace_declaration(key);
    if (it->second.factory) {
      throw std::logic_error("tandem::registry::declare: " + detail::describe_registry_key(key) +
                             " is already declared");
    }
    it->second.factory = std::move(build);
    it->second.eager = eager_entry;
    has_declarations_.store(true, std::memory_order_release);  // pairs with make_declared_or
  }

  // Tells every cached_accessor to look its key up again.
  void bump_version() noexcept {
    // release: the erase/override before it happens-before an accessor's acquire load that
    // sees the new value.
    detail::registry_generation.value.fetch_add(1, std::memory_order_release);
  }

  // A registry_key_argument as the lookups take it: itself when Hash/KeyEqual accept it, else
  // converted to a Key (a temporary the caller binds to a const reference).
  // A null const char* is refused here, before Hash sees it or a Key is built from it
  // (std::string_view or std::string from a null pointer is undefined; rule 52).
  template <class K>
  static decltype(auto) lookup_form(const K& key) {
    detail::check_not_null_c_string<Key>(key, "tandem::registry", "key");
    if constexpr (registry_lookup_key<K, Key, Hash, KeyEqual>) {
      return (key);
    } else {
      return Key(key);
    }
  }
  // A registry_key_argument converted to a Key, as lookup_form checks it.
  template <class K>
  static Key key_of(const K& key) {
    detail::check_not_null_c_string<Key>(key, "tandem::registry", "key");
    return Key(key);
  }

  // The hit path is this function's only inline part: the teardown check's throw and the
  // miss path are in create(), out of line, so a hit costs what find() costs. It and the two
  // public functions that call it are always inlined into the caller: the compilers' size
  // estimates (which count the read section's rarely taken branches) kept one or the other
  // out of line or not from one small change to the next (g++ 12: 171 or 190 instructions per
  // hit of tests/perf/perf_registry for the same path, a call and saved registers apart).
  template <class K, class F>
  TANDEM_ALWAYS_INLINE inline std::shared_ptr<T> get_or_create_impl(const K& key, F& factory) {
    const std::uint64_t hash = hash_of(key);
    if (TANDEM_LIKELY(!is_torn_down())) {
      const sync::epoch_read_section section(domain_.tag());
      if (const node* n = lookup(hash, key)) {
        if (const std::shared_ptr<T>* value = n->cell.get()) return *value;  // the hit path
      }
    }
    return create(hash, key, factory);
  }

  struct node {
    node(std::uint64_t h, Key k) : hash(h), key(std::move(k)) { cell.set_label(&label, this); }
    static std::string label(const void* self) {
      return detail::describe_registry_key(static_cast<const node*>(self)->key);
    }

    const std::uint64_t hash;
    const Key key;
    sync::once_cell<std::shared_ptr<T>> cell;
    // Callers inside create() for this node; only incremented under the shard mutex while the
    // node is linked, so an unlinked node's count only falls.
    std::atomic<std::uint32_t> pins{0};
    bool linked = true;  // in its shard's table; under the shard mutex
    // The value is an override()'s instance. Written by the builder before the cell is ready
    // (published with the value), read only once it is ready.
    bool from_override = false;
    // 1 + the registry's declarations_cleared_ when this node's build looked for an override
    // (make_declared_or, under declarations_mutex_); 0 until then, and for good when the
    // registry had no declarations. Read by restore() under declarations_mutex_ too (relaxed
    // suffices; atomic because the node is shared): a build that looked before restore()'s
    // clear may give the cleared instance and is waited for; one that looks after cannot.
    std::atomic<std::uint64_t> declarations_read{0};
    node* next_retired = nullptr;  // under retire_mutex_
    std::uint64_t stamp = 0;       // epoch stamp when retired
    // Creation order; under order_mutex_.
    node* older = nullptr;
    node* newer = nullptr;
    std::uint64_t sequence = 0;  // 0 until listed
    bool listed = false;
    bool removing = false;         // picked by clear(), about to be retired
    node* next_removed = nullptr;  // clear()'s chain of unlinked nodes
  };

  // An open-addressing table: capacity = mask + 1 atomic slots after the header.
  struct table {
    std::size_t mask;
    std::size_t occupied = 0;  // non-null slots, tombstones included; under the shard mutex
    std::atomic<node*>* slots;
    table* next_retired = nullptr;  // under retire_mutex_
    std::uint64_t stamp = 0;

    static table* create(std::size_t capacity) {
      void* raw = ::operator new(sizeof(table) + capacity * sizeof(std::atomic<node*>));
      auto* t = ::new (raw) table{capacity - 1, 0, nullptr, nullptr, 0};
      auto* first = reinterpret_cast<unsigned char*>(raw) + sizeof(table);
      for (std::size_t i = 0; i < capacity; ++i) {
        ::new (static_cast<void*>(first + i * sizeof(std::atomic<node*>)))
            std::atomic<node*>(nullptr);
      }
      t->slots = std::launder(reinterpret_cast<std::atomic<node*>*>(first));
      return t;
    }
    static void destroy(table* t) noexcept {
      t->~table();  // the atomics are trivially destructible
      ::operator delete(static_cast<void*>(t));
    }
  };
  static_assert(sizeof(table) % alignof(std::atomic<node*>) == 0);

  struct alignas(sync::cache_line_size) shard {
    std::atomic<table*> current{nullptr};  // read by readers, written under mutex
    std::mutex mutex;
    std::size_t live = 0;  // linked nodes; under mutex
  };

  // A FIFO of retired objects linked through their next_retired fields (no allocation, so
  // retiring never fails).
  template <class Object>
  struct retired_list {
    Object* head = nullptr;
    Object* tail = nullptr;
    void push(Object* object) noexcept {
      object->next_retired = nullptr;
      (tail != nullptr ? tail->next_retired : head) = object;
      tail = object;
    }
  };

  static constexpr std::size_t not_found = std::numeric_limits<std::size_t>::max();
  static constexpr std::uint64_t max_sequence = std::numeric_limits<std::uint64_t>::max();
  // A table grows to keep at most half of its slots occupied (tombstones count), so a probe
  // ends at a null slot within a couple of steps on average. 8 slots = one 64-byte line.
  static constexpr std::size_t min_capacity = 8;
  // How long the exit teardown waits for lookups of this registry that are still running (a
  // lookup takes nanoseconds; 100 ms covers a preempted one without delaying exit noticeably).
  static constexpr std::chrono::milliseconds exit_grace{100};

  static node* tombstone() noexcept {
    static_assert(alignof(node) <= alignof(detail::registry_tombstone_object),
                  "tandem::registry: a Key aligned to more than 4096 bytes is not supported");
    return reinterpret_cast<node*>(&detail::registry_tombstone);
  }

  template <class K>
  std::uint64_t hash_of(const K& key) const
      noexcept(noexcept(detail::hash_result_as_size(std::declval<const Hash&>()(key)))) {
    // size_t widens (or is) 64 bits; a narrower or signed result (the concept converts it to
    // std::size_t) is converted the same way.
    const std::uint64_t h = detail::hash_result_as_size(hash_(key));
    if constexpr (detail::hash_used_as_is_v<Hash, Key>) {  // already spread over all 64 bits
      return h;
    } else {
      // Fibonacci hashing: spreads identity-like hashes (std::hash<int>) over all 64 bits.
      return h * 0x9E3779B97F4A7C15ULL;
    }
  }
  shard& shard_for(std::uint64_t hash) noexcept { return shards_[hash >> 60]; }
  const shard& shard_for(std::uint64_t hash) const noexcept { return shards_[hash >> 60]; }
  static_assert(shard_count == 16, "shard_for takes the top 4 bits of the hash");
  static std::size_t start_slot(std::uint64_t hash) noexcept {
    return detail::to_size(hash ^ (hash >> 29));
  }

  template <class K>
  bool matches(const node& n, std::uint64_t hash, const K& key) const {
    return n.hash == hash && equal_(n.key, key);
  }

  // Step 3: lock-free lookup; call inside a read section (or under the shard mutex).
  template <class K>
  const node* lookup(std::uint64_t hash, const K& key) const {
    // (E2) seq_cst: after the announce (R1) in the total order; pairs with (U0)/(U1).
    const table* t = shard_for(hash).current.load(std::memory_order_seq_cst);
    if (t == nullptr) return nullptr;
    for (std::size_t i = start_slot(hash) & t->mask;; i = (i + 1) & t->mask) {
      const node* n = t->slots[i].load(std::memory_order_seq_cst);  // (E2)
      if (n == nullptr) return nullptr;
      if (n != tombstone() && matches(*n, hash, key)) return n;
    }
  }

  template <class K>
  std::size_t find_index(const table& t, std::uint64_t hash, const K& key) const {
    for (std::size_t i = start_slot(hash) & t.mask;; i = (i + 1) & t.mask) {
      const node* n = t.slots[i].load(std::memory_order_relaxed);  // relaxed: under the mutex
      if (n == nullptr) return not_found;
      if (n != tombstone() && matches(*n, hash, key)) return i;
    }
  }

  // Under s.mutex: (U1) replaces the slot by a tombstone.
  void unlink(shard& s, table& t, std::size_t index) noexcept {
    node* n = t.slots[index].load(std::memory_order_relaxed);
    t.slots[index].store(tombstone(), std::memory_order_seq_cst);  // (U1)
    n->linked = false;
    --s.live;
  }

  // Refuses to build or declare in a registry torn down at exit or being destroyed.
  void check_alive(const char* operation = "get_or_create") const {
    if (TANDEM_UNLIKELY(is_torn_down())) {
      throw std::logic_error(
          std::string("tandem::registry: ") + operation +
          " on a global() registry after its teardown at process exit (called from a static "
          "destructor?): its instances have been released and no new ones are created. Keep "
          "the shared_ptr you need during shutdown instead of looking it up.");
    }
    // relaxed: set by the destroying thread, and only its own calls (from T's destructors) can
    // legally reach here during destruction.
    if (TANDEM_UNLIKELY(destroying_.load(std::memory_order_relaxed))) {
      throw std::logic_error(std::string("tandem::registry: ") + operation +
                             " while the registry is being destroyed (from a T's destructor?): "
                             "nothing is built or declared in a registry being destroyed");
    }
  }
  [[nodiscard]] bool is_torn_down() const noexcept {
    // relaxed: set once at exit; a racing reader is safe either way (it may see the entries,
    // which the epochs keep alive), and later calls on the exiting thread are sequenced after.
    return torn_down_.load(std::memory_order_relaxed);
  }

  // override()/restore(): key's registered instance, waiting (as get_or_create does) for a build
  // in flight. When the entry is absent it is built only from a declared override (copying
  // that shared_ptr; no factory runs); with no override declared, nothing is built and the
  // result is nullptr. Throws recursive_creation_error when the wait would close a cycle,
  // std::logic_error after the exit teardown, std::bad_alloc.
  std::shared_ptr<T> registered_or_override(const Key& key) {
    struct no_override {};  // thrown through create(): the empty node is unlinked (abandon)
    auto refuse = []() -> std::shared_ptr<T> { throw no_override{}; };
    try {
      return get_or_create_impl(key, refuse);  // not default_factory: skips declared factories
    } catch (const no_override&) {
      return nullptr;
    }
  }

  // unlink_built's default: every entry being built is waited for.
  struct every_build {
    bool operator()(const node& /*building*/) const noexcept { return true; }
  };

  // What one round of override()/restore() found (drop_if_still_declared).
  enum class drop_status {
    superseded,  // a later override()/restore() changed the declaration: nothing dropped
    absent,      // no entry
    building,    // an entry being built (wait for it and retry)
    kept,        // a built entry the caller does not drop
    dropped,     // the built entry, unlinked and released
  };

  // One round of override()/restore(): if key's declared override is still `declared`
  // (nullptr: none), drops key's built entry when drop(its node) holds. A later
  // override()/restore() owns the outcome, and a superseded call must never drop what that one
  // registered: so the check and the unlink are made together under declarations_mutex_ (then
  // the shard mutex: no path takes them in the other order). The node is released after both
  // are unlocked (T's destructor may run).
  // `waited_for(its node)` says whether an entry being built is reported as `building` (the
  // caller waits for it and retries) or as `absent` (nothing of the caller's to wait for).
  template <class Drop, class WaitedFor = every_build>
  drop_status drop_if_still_declared(const Key& key, const std::shared_ptr<T>& declared, Drop drop,
                                     WaitedFor waited_for = {}) {
    unlink_result result;
    {
      const std::lock_guard<std::mutex> lock(declarations_mutex_);
      const auto it = declarations_.find(key);
      const bool unchanged = it != declarations_.end() ? it->second.override_instance == declared
                                                       : declared == nullptr;
      if (!unchanged) return drop_status::superseded;
      result = unlink_built(hash_of(key), key, drop, waited_for);
    }
    if (result.removed == nullptr) return result.status;
    release_unlinked_node(result.removed);
    return drop_status::dropped;
  }

  struct unlink_result {
    node* removed = nullptr;  // set when status is dropped
    drop_status status = drop_status::absent;
  };

  // erase()'s first half, under the shard mutex: unlinks key's entry if it is built and
  // drop(its node) holds. An entry being built is left alone (its builder owns it): callers
  // that must not miss it wait for it and retry (status building, when waited_for(its node);
  // otherwise absent).
  template <class K, class Drop, class WaitedFor = every_build>
  unlink_result unlink_built(std::uint64_t hash, const K& key, const Drop& drop,
                             const WaitedFor& waited_for = {}) {
    shard& s = shard_for(hash);
    const std::lock_guard<std::mutex> lock(s.mutex);
    table* t = s.current.load(std::memory_order_relaxed);  // relaxed: we hold the mutex
    if (t == nullptr) return {nullptr, drop_status::absent};
    const std::size_t index = find_index(*t, hash, key);
    if (index == not_found) return {nullptr, drop_status::absent};
    // relaxed: we hold the shard mutex, which orders every store to the table.
    node* n = t->slots[index].load(std::memory_order_relaxed);
    // (1) acquire in is_ready: the value and from_override are visible.
    if (!n->cell.is_ready()) {
      return {nullptr, waited_for(std::as_const(*n)) ? drop_status::building : drop_status::absent};
    }
    if (!drop(std::as_const(*n))) return {nullptr, drop_status::kept};
    unlink(s, *t, index);
    return {n, drop_status::dropped};
  }

  // erase()'s second half, with no lock held: drops an unlinked node from the creation order
  // and retires it.
  void release_unlinked_node(node* removed) noexcept {
    unlist(std::span<node* const>(&removed, 1));
    retire(std::span<node* const>(&removed, 1));
    bump_version();
  }

  // Steps 4-6: the miss path of get_or_create_with.
  template <class K, class F>
  TANDEM_NOINLINE std::shared_ptr<T> create(std::uint64_t hash, const K& key, F& factory) {
    check_alive();
    node& n = insert_pinned(hash, key);
    TANDEM_TEST_POINT("registry create: pinned");
    std::shared_ptr<T> result;
    try {
      const std::shared_ptr<T>& value = n.cell.get_or_init([&] {
        std::shared_ptr<T> made = make_declared_or(factory, n);
        TANDEM_SYNC_POINT();  // built (maybe an override's instance), not yet listed
        // Step 6 before the value is published: once another thread can see this entry it
        // can build one that uses it, and that one must be listed as the newer. (Until
        // 2026-12-02 the node was listed after publishing; a dependent entry built in that
        // window was listed first, so clear() released the dependency first: a
        // use-after-free in the dependent's destructor. Found by review.) Nothing after
        // this can fail: the move into the cell and the publication are noexcept.
        list(n);
        TANDEM_SYNC_POINT();  // listed, not yet published
        return made;
      });
      result = value;
    } catch (...) {
      TANDEM_SYNC_POINT();
      abandon(n);
      throw;
    }
    TANDEM_SYNC_POINT();
    TANDEM_TEST_POINT("registry create: value published");
    unpin(n);
    reclaim_if_pending();
    return result;
  }

  // The miss path's choice of builder for n's value (n's builder calls it): an override (then
  // n.from_override is set), else (for get_or_create) the declared factory, else `factory`.
  // The declarations' mutex is not held while anything is built.
  template <class F>
  std::shared_ptr<T> make_declared_or(F& factory, node& n) {
    const Key& key = n.key;
    // acquire: pairs with the release store in add_declaration/override.
    if (has_declarations_.load(std::memory_order_acquire)) {
      std::shared_ptr<const declared_factory> declared;  // taken by count: no user code locked
      {
        const std::lock_guard<std::mutex> lock(declarations_mutex_);
        // relaxed: under declarations_mutex_, as restore() reads it.
        n.declarations_read.store(declarations_cleared_ + 1, std::memory_order_relaxed);
        const auto it = declarations_.find(key);
        if (it != declarations_.end()) {
          if (it->second.override_instance != nullptr) {
            n.from_override = true;  // nothing can fail between here and the cell's publication
            return it->second.override_instance;
          }
          if constexpr (std::is_same_v<std::remove_cvref_t<F>, default_factory>) {
            declared = it->second.factory;
          }
        }
      }
      if (declared) {
        // Each build runs its own copy: a stateful factory starts from its declared state.
        declared_factory own(*declared);
        return own();
      }
    }
    return make_instance(factory, key);
  }

  template <class F>
  static std::shared_ptr<T> make_instance(F& factory, const Key& key) {
    std::shared_ptr<T> made;
    if constexpr (std::is_same_v<std::remove_cvref_t<F>, default_factory>) {
      if constexpr (detail::registry_key_constructible<T, Key>) {
        made = detail::make_registry_instance<T>(std::in_place, key);
      } else if constexpr (std::default_initializable<T>) {
        made = detail::make_registry_instance<T>(std::in_place);
      } else {
        throw std::logic_error("tandem::registry: no factory for " +
                               detail::describe_registry_key(key) +
                               ": declare(key, factory) it, or use get_or_create_with (T is "
                               "neither constructible from the key nor default-constructible)");
      }
      return made;
    } else {
      using result = std::remove_cv_t<std::invoke_result_t<F&>>;
      if constexpr (std::is_same_v<result, T>) {
        made = detail::make_registry_instance<T>(std::in_place_type<F>, factory);
        return made;
      } else {
        made = std::shared_ptr<T>(std::invoke(factory));
        if (made == nullptr) {
          throw std::invalid_argument("tandem::registry: the factory for " +
                                      detail::describe_registry_key(key) +
                                      " returned a null pointer");
        }
        return made;
      }
    }
  }

  // Finds or inserts the node for `key` and pins it, under the shard mutex.
  template <class K>
  node& insert_pinned(std::uint64_t hash, const K& key) {
    shard& s = shard_for(hash);
    table* old_table = nullptr;
    node* n = nullptr;
    {
      const std::lock_guard<std::mutex> lock(s.mutex);
      table* t = s.current.load(std::memory_order_relaxed);  // relaxed: we hold the mutex
      if (t != nullptr) {
        const std::size_t index = find_index(*t, hash, key);
        // relaxed: we hold the shard mutex.
        if (index != not_found) n = t->slots[index].load(std::memory_order_relaxed);
      }
      if (n == nullptr) {
        auto fresh = std::make_unique<node>(hash, Key(key));
        if (t == nullptr || (t->occupied + 1) * 2 > t->mask + 1) {
          // Grow (or compact tombstones): room for twice the live nodes.
          std::size_t capacity = min_capacity;
          while (capacity < (s.live + 1) * 4) capacity *= 2;
          table* bigger = table::create(capacity);
          if (t != nullptr) {
            for (std::size_t i = 0; i <= t->mask; ++i) {
              // relaxed: we hold the shard mutex.
              node* old = t->slots[i].load(std::memory_order_relaxed);
              if (old != nullptr && old != tombstone()) place(*bigger, old);
            }
          }
          // (U0) seq_cst: publishes the filled table (and, below, the node) to readers.
          s.current.store(bigger, std::memory_order_seq_cst);
          old_table = t;
          t = bigger;
        }
        n = fresh.release();
        place(*t, n);
        ++s.live;
      }
      // relaxed: the shard mutex orders this against the unlink that makes pins only fall.
      n->pins.fetch_add(1, std::memory_order_relaxed);
    }
    if (old_table != nullptr) retire_table(old_table);
    return *n;
  }

  // Under the shard mutex: puts n in the first free slot of its probe sequence.
  static void place(table& t, node* n) noexcept {
    for (std::size_t i = start_slot(n->hash) & t.mask;; i = (i + 1) & t.mask) {
      // relaxed: we hold the shard mutex (readers never write slots).
      if (t.slots[i].load(std::memory_order_relaxed) == nullptr) {
        t.slots[i].store(n, std::memory_order_seq_cst);  // (U0)
        ++t.occupied;
        return;
      }
    }
  }

  // Success path: drops our pin; frees the node now if it was erased meanwhile.
  void unpin(node& n) noexcept {
    // The node may be freed by another thread's reclaim() as soon as our pin is gone, so
    // nothing below touches it. seq_cst, against retire(): it stores retired_pending_ then
    // reads the pins (both seq_cst); either it sees our pin gone and frees the node, or we see
    // the pending flag here and reclaim.
    if (n.pins.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        retired_pending_.load(std::memory_order_seq_cst)) {
      reclaim();
    }
  }

  // Exception path (step 5): drops our pin; the last caller out unlinks the still-empty node.
  // "Am I the last, and is it still empty?" is decided from the value our own fetch_sub
  // returned: a load taken before it could be stale (another caller may build the value and
  // leave between that load and our fetch_sub, and we would free its entry). Once our
  // fetch_sub has returned 1 under the shard mutex, nobody else is pinned and nobody can pin
  // (pins are only taken under this mutex), so nobody can make the cell ready any more.
  // noexcept for real: the node is found in its table by identity, never through Hash/KeyEqual.
  void abandon(node& n) noexcept {
    node* removed = nullptr;
    bool last = false;
    {
      shard& s = shard_for(n.hash);
      const std::lock_guard<std::mutex> lock(s.mutex);
      // `linked` is read before our fetch_sub: it only changes under this mutex, so it cannot
      // go stale, and it tells whether the node may be touched after the fetch_sub (an
      // unlinked node is retired: another thread's reclaim() may free it as soon as our pin
      // is gone). `ready` is read after: it cannot change once we are the last pin.
      const bool linked = n.linked;
      TANDEM_SYNC_POINT();
      last = n.pins.fetch_sub(1, std::memory_order_seq_cst) == 1;
      if (last && linked && !n.cell.is_ready()) {
        // Still linked, hence not retired: no reclaim() can free it while we hold the mutex.
        table* t = s.current.load(std::memory_order_relaxed);  // relaxed: we hold the mutex
        const std::size_t index = index_of(*t, &n);
        TANDEM_ASSERT(index != not_found, "a linked registry node is missing from its table");
        if (index != not_found) {
          unlink(s, *t, index);
          removed = &n;
        }
      }
    }
    if (removed != nullptr) {
      retire(std::span<node* const>(&removed, 1));
    } else if (last && retired_pending_.load(std::memory_order_seq_cst)) {  // see unpin
      reclaim();
    }
  }

  // Under the shard mutex: the slot holding exactly `target`, found by address along its probe
  // sequence (no user code runs, so clean-up paths can be noexcept).
  static std::size_t index_of(const table& t, const node* target) noexcept {
    for (std::size_t i = start_slot(target->hash) & t.mask;; i = (i + 1) & t.mask) {
      const node* n = t.slots[i].load(std::memory_order_relaxed);  // relaxed: under the mutex
      if (n == nullptr) return not_found;
      if (n == target) return i;
    }
  }

  // Step 6: appends a freshly built node to the creation-order list, before its value is
  // published (so the list may hold a node whose cell is not ready yet: for_each skips it).
  void list(node& n) {
    const std::lock_guard<std::mutex> lock(order_mutex_);
    n.sequence = ++last_sequence_;
    n.listed = true;
    n.older = newest_;
    if (newest_ != nullptr) {
      newest_->newer = &n;
    } else {
      oldest_ = &n;
    }
    newest_ = &n;
    built_count_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
  }

  // The end of clear(): drops the chain `removed` from the creation-order list and retires
  // its nodes newest first. A built node is listed before its value is published (create()),
  // and clear() and erase() unlink only built nodes, each node once, so every node here is
  // listed. No allocation: the retirement order is threaded through the nodes' next_retired
  // links.
  void release_unlinked(node* removed) noexcept {
    if (removed == nullptr) return;
    retired_list<node> newest_first;
    {
      const std::lock_guard<std::mutex> lock(order_mutex_);
      for (node* n = removed; n != nullptr; n = n->next_removed) {
        TANDEM_ASSERT(n->listed, "registry: a built node is listed before it is published");
        n->removing = true;
      }
      for (node* n = newest_; n != nullptr;) {
        node* older = n->older;
        if (n->removing) {
          detach(*n);
          newest_first.push(n);
        }
        n = older;
      }
    }
    retire_chain(newest_first.head);
  }

  // Under order_mutex_: takes a listed node out of the creation-order list.
  void detach(node& n) noexcept {
    n.listed = false;
    (n.older != nullptr ? n.older->newer : oldest_) = n.newer;
    (n.newer != nullptr ? n.newer->older : newest_) = n.older;
    n.older = n.newer = nullptr;
    built_count_.fetch_sub(1, std::memory_order_relaxed);  // relaxed: a statistic
  }

  void unlist(std::span<node* const> nodes) noexcept {
    const std::lock_guard<std::mutex> lock(order_mutex_);
    for (node* n : nodes) {
      TANDEM_ASSERT(n->listed, "registry: a built node is listed before it is published");
      if (n->listed) detach(*n);
    }
  }

  // Stamps and queues unlinked nodes (newest-created first where order matters), then frees
  // what is already unreachable.
  void retire(std::span<node* const> nodes) noexcept {
    if (nodes.empty()) return;
    const std::uint64_t stamp = sync::retire_stamp();  // epoch_reclamation.hpp (W1)
    {
      const std::lock_guard<std::mutex> lock(retire_mutex_);
      for (node* n : nodes) {
        n->stamp = stamp;
        retired_nodes_.push(n);
      }
      // seq_cst: against unpin's fetch_sub + load (see there), before reclaim reads the pins.
      retired_pending_.store(true, std::memory_order_seq_cst);
    }
    reclaim();
  }

  // Like retire, for nodes chained through next_retired (in the order they are to be freed).
  void retire_chain(node* head) noexcept {
    if (head == nullptr) return;
    const std::uint64_t stamp = sync::retire_stamp();  // epoch_reclamation.hpp (W1)
    {
      const std::lock_guard<std::mutex> lock(retire_mutex_);
      for (node* n = head; n != nullptr;) {
        node* next = n->next_retired;
        n->stamp = stamp;
        retired_nodes_.push(n);
        n = next;
      }
      // seq_cst: against unpin's fetch_sub + load (see there), before reclaim reads the pins.
      retired_pending_.store(true, std::memory_order_seq_cst);
    }
    reclaim();
  }

  void retire_table(table* t) noexcept {
    t->stamp = sync::retire_stamp();  // epoch_reclamation.hpp (W1)
    const std::lock_guard<std::mutex> lock(retire_mutex_);
    retired_tables_.push(t);
    retired_pending_.store(true, std::memory_order_seq_cst);  // see unpin
  }

  void reclaim_if_pending() noexcept {
    // relaxed: a hint; a missed item is picked up by a later call or ~registry.
    if (retired_pending_.load(std::memory_order_relaxed)) reclaim();
  }

  // Frees every retired object no read section and no pinned caller can still reach, in
  // retirement order, outside all locks (T's destructor may call the registry).
  void reclaim() noexcept {
    retired_list<node> free_nodes_now;
    retired_list<table> free_tables_now;
    {
      const std::lock_guard<std::mutex> lock(retire_mutex_);
      const std::uint64_t oldest =
          sync::oldest_announced_epoch(domain_.tag());  // (W2), this registry
      // Only a prefix of the retirement order is freed: from the first node that must wait
      // (a read section may reach it, or a caller is pinned to it), every later one waits too.
      // Stamps only grow along the list, but pins do not: a node clear() retired after a
      // pinned one is older (clear() retires newest first), and freeing it first ran its T's
      // destructor before the newer one's, which may use it (until 2026-12-02: a
      // use-after-free in the newer one's destructor, run by the pinned caller's reclaim();
      // found by review). The pinned caller's unpin() reclaims the rest, in order.
      retired_list<node> keep_nodes;
      bool keep_rest = false;
      for (node* n = retired_nodes_.head; n != nullptr;) {
        node* next = n->next_retired;
        keep_rest = keep_rest || n->stamp > oldest || n->pins.load(std::memory_order_seq_cst) != 0;
        (keep_rest ? keep_nodes : free_nodes_now).push(n);
        n = next;
      }
      retired_nodes_ = keep_nodes;
      retired_list<table> keep_tables;
      for (table* t = retired_tables_.head; t != nullptr;) {
        table* next = t->next_retired;
        (t->stamp > oldest ? keep_tables : free_tables_now).push(t);
        t = next;
      }
      retired_tables_ = keep_tables;
      // seq_cst: see unpin; true while anything is left.
      retired_pending_.store(retired_nodes_.head != nullptr || retired_tables_.head != nullptr,
                             std::memory_order_seq_cst);
    }
    free_nodes(free_nodes_now.head);
    free_tables(free_tables_now.head);
  }

  static void free_nodes(node* n) noexcept {
    while (n != nullptr) {
      node* next = n->next_retired;
      delete n;
      n = next;
    }
  }
  static void free_tables(table* t) noexcept {
    while (t != nullptr) {
      table* next = t->next_retired;
      table::destroy(t);
      t = next;
    }
  }

  // The exit teardown's release of what declare() and override() hold: override instances
  // (a test's mocks) and declared factories with what they capture. Without it they outlived
  // the teardown for good (a global() registry is never destroyed), so their destructors never
  // ran. One declaration at a time is taken out under the mutex (extract: no allocation, no
  // KeyEqual call, and a Hash call only for a noexcept Hash, whose codes libstdc++ does not
  // cache) and destroyed after it is unlocked: its T's destructor may use the registry (rule
  // 14), which is torn down by then (find gives nullptr, get_or_create throws).
  // What each declaration holds (its factory, its override instance) is taken out under the
  // lock and destroyed after it (that user code may use the registry); the emptied table is
  // then cleared. No Hash or KeyEqual call: a table's extract(), erase(iterator), swap() and
  // move all hash a node again under libstdc++ when a noexcept Hash's codes are not cached;
  // clear() does not. (Until 2026-12-01 this extracted one node at a time: at exit, a Hash
  // whose state was a function-local static, destroyed before this teardown, read freed
  // memory.) Quadratic in the number of declarations, which are few; allocates nothing.
  void release_declarations() noexcept {
    for (;;) {
      declaration taken;
      {
        const std::lock_guard<std::mutex> lock(declarations_mutex_);
        const auto held =
            std::find_if(declarations_.begin(), declarations_.end(), [](const auto& entry) {
              return entry.second.factory || entry.second.override_instance != nullptr;
            });
        if (held == declarations_.end()) {
          declarations_.clear();
          declaration_order_.clear();
          has_declarations_.store(false, std::memory_order_release);
          return;
        }
        taken.factory.swap(held->second.factory);
        taken.override_instance.swap(held->second.override_instance);
      }
    }  // `taken` is destroyed here, unlocked
  }

  // The exit teardown's wait: lookups that began before torn_down_ was set may still be
  // inside a read section of this registry (a thread polling find()); wait for them, boundedly,
  // so that every instance nobody is using is destroyed. Only this registry's readers count
  // (its epoch domain): a thread parked in another registry's visit() does not hold it up. What
  // a read section of this registry still reaches after exit_grace is left alive (in use).
  void drain_at_exit() noexcept {
    const auto deadline = std::chrono::steady_clock::now() + exit_grace;
    sync::backoff wait;
    for (;;) {
      reclaim();
      if (!retired_pending_.load(std::memory_order_seq_cst)) return;  // see unpin
      if (std::chrono::steady_clock::now() >= deadline) return;
      if (wait.is_completed()) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      } else {
        wait.pause();
      }
    }
  }

  TANDEM_PROCESS_WIDE static registry* make_global() {
    // The registry lives in static storage that is never released and is never destroyed, so
    // a call during or after static destruction touches live memory. The guard, constructed
    // right after it, releases its instances at exit and marks it torn down.
    alignas(registry) static unsigned char storage[sizeof(registry)];
    auto* instance = ::new (static_cast<void*>(storage)) registry();
    struct teardown_guard {
      registry* target;
      explicit teardown_guard(registry* r) noexcept : target(r) {}
      teardown_guard(const teardown_guard&) = delete;
      teardown_guard& operator=(const teardown_guard&) = delete;
      ~teardown_guard() {
        target->torn_down_.store(true, std::memory_order_seq_cst);
        target->clear();
        target->drain_at_exit();         // the entries' instances, in reverse creation order
        target->release_declarations();  // then what declarations hold
      }
    };
    static const teardown_guard guard{instance};
    return instance;
  }

  [[no_unique_address]] Hash hash_;
  [[no_unique_address]] KeyEqual equal_;
  shard shards_[shard_count];

  mutable std::mutex order_mutex_;
  node* oldest_ = nullptr;  // under order_mutex_
  node* newest_ = nullptr;
  std::uint64_t last_sequence_ = 0;
  std::atomic<std::size_t> built_count_{0};

  std::mutex retire_mutex_;
  retired_list<node> retired_nodes_;  // under retire_mutex_, in retirement order
  retired_list<table> retired_tables_;
  std::atomic<bool> retired_pending_{false};
  std::atomic<bool> torn_down_{false};
  std::atomic<bool> destroying_{false};  // ~registry has begun
  // This registry's epoch domain: its reclamation waits only for its own readers.
  const sync::owned_epoch_domain domain_;  // given back when the registry is destroyed

  // Declared factories and overrides (declare, override); touched only by those calls and by
  // the miss path of a registry that has any.
  std::mutex declarations_mutex_;
  using declaration_table = std::unordered_map<Key, declaration, Hash, KeyEqual>;
  declaration_table declarations_;
  std::vector<Key> declaration_order_;
  std::atomic<bool> has_declarations_{false};
  // How many restore() calls have cleared an override (under declarations_mutex_): orders the
  // builds that looked for an override before a clear apart from those after (node::
  // declarations_read).
  std::uint64_t declarations_cleared_ = 0;
};

// The process-wide instance of T named `name`: registry<T>::global().get_or_create(name).
template <class T>
std::shared_ptr<T> named_singleton(std::string_view name) {
  return registry<T>::global().get_or_create(name);
}

}  // namespace tandem
