// tandem/sync/once_cell.hpp -- a value built at most once, lazily, by whichever thread asks first.
//
// What it is for: the "build this exactly once, on first use" step of registry entries, rc_map
// entries and anything else that is created on demand and then shared. Unlike std::call_once it
// never poisons (a throwing constructor leaves the cell empty and the next caller tries again;
// libstdc++'s call_once instead hangs every later caller, GCC bug 66146), and it turns
// dependency cycles, which would deadlock, into a recursive_creation_error.
//
// When not to use it: a value known at start-up (use a plain object), or one that is rebuilt
// over time (a once_cell never changes after it is built).
//
// Algorithm (state is one atomic word: empty -> building -> ready, or building -> empty):
//  1. get_or_init loads the state (acquire). ready: return the value. That load is the whole
//     fast path; nothing is written.
//  2. empty: compare-and-swap empty -> building. (A container that has just created the cell
//     and not yet published it may claim it with plain stores instead: claim_unshared(), then
//     build_claimed(); the lock that publishes the cell orders the claim, as the CAS would.)
//     The winner records itself as the cell's owner
//     and pushes the cell on its thread's stack of builds in progress, then runs make() with no
//     lock held, constructing the value in place (::new(storage) T(make()), so a prvalue T is
//     constructed directly and T need not be movable).
//  3. The builder publishes: owner := none, state := ready (release exchange), and wakes the
//     sleepers if any announced themselves (step 5). If make() throws instead, state := empty
//     (woken likewise), and the exception propagates to the builder's
//     caller. Waiters wake, see empty and go to step 2 with their own make(): nothing is
//     poisoned, and exactly one of them builds next.
//  4. building, and this thread is the owner: the thread's own make() (directly, or through
//     other cells it is building) asked for the cell again. Waiting would deadlock, so
//     recursive_creation_error is thrown, naming the chain of cells ("a" -> "b" -> "a").
//  5. building by another thread: before waiting, the thread takes the global wait-for graph
//     mutex and follows the chain "cell -> its owner thread -> the cell that thread waits for ->
//     its owner ...". If the chain reaches this thread, waiting would close a cycle (thread 1
//     builds A and waits for B while thread 2 builds B and waits for A): it throws
//     recursive_creation_error instead, and the other thread keeps waiting (it is woken when
//     this thread's build of B ends, normally with that exception). Otherwise the thread
//     records "I wait for this cell" in the graph, releases the mutex and waits: backoff (spin,
//     yield), then it marks the state "building, with a sleeper" and blocks in atomic_wait
//     (sync/atomic_wait.hpp, the futex), woken by the builder's atomic_notify_all. It removes
//     its record and goes back to step 1.
//
// Why the cycle check is sound: a thread adds its wait edge only under the graph mutex and only
// if no cycle goes through it, and an owner edge (cell -> thread) is only created by a thread
// that is not waiting (it is about to run make()), so the graph of registered edges stays
// acyclic; the thread about to add the closing edge is exactly the one that sees the cycle.
//
// Guarantees:
//  - make() runs on at most one thread at a time per cell; once a make() returns, no other
//    make() ever runs for that cell. Every caller sees the single value (same address).
//  - A throwing make() leaves the cell empty and reaches only its own caller (strong guarantee).
//  - Progress: the fast path is wait-free. The slow path blocks only while another thread's
//    make() runs, and never forever on a cycle of cells (it throws instead). Cycles through
//    something other than once_cells (a mutex held around get_or_init) are not seen.
//
// Costs: sizeof(T) plus five words (state, owner, enclosing build, label function and context).
// Reader (ready): one acquire load. Builder: one CAS (none after claim_unshared), a few stores,
// one exchange, and a futex wake only if a waiter went to sleep. A waiter: one global-mutex section
// to check the graph and one to leave it -- the global mutex is touched ONLY by threads that are
// about to wait, never by the fast path or an uncontended build. Labels are formatted only to build
// an error message.
//
// Memory ordering: the builder's release exchange to `ready` (3) pairs with the acquire loads in
// get_or_init/get/is_ready (1), so whoever sees ready sees the fully constructed value. The
// owner word is written by the builder only (release) and read under the graph mutex (acquire);
// the graph's wait edges are plain data guarded by that mutex. Each point is numbered below.
#pragma once

#include <atomic>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../detail/port.hpp"
#include "assert.hpp"
#include "atomic_wait.hpp"
#include "backoff.hpp"
#include "thread_serial.hpp"

namespace tandem {

// Thrown when building a value would need that same value: directly (its own make() asks for
// it), through other cells on the same thread, or through a cycle of threads that each wait for
// a cell another one is building. what() names the cells (their labels) in the cycle.
struct TANDEM_PROCESS_WIDE recursive_creation_error : std::logic_error {
  using std::logic_error::logic_error;
};

namespace sync {
class once_cell_base;
}  // namespace sync

namespace detail {

// Per-thread node of the wait-for graph. All fields are guarded by graph_mutex() except
// innermost_build, which only its own thread touches.
struct once_thread {
  sync::once_cell_base* waiting_on = nullptr;       // the cell this thread is blocked on
  sync::once_cell_base* innermost_build = nullptr;  // top of this thread's stack of builds
};

// The wait-for graph's lock: taken only by threads about to wait (and by exiting threads that
// once used the graph). Never destroyed, so static destructors may still build cells.
TANDEM_PROCESS_WIDE inline std::mutex& graph_mutex() noexcept {
  alignas(std::mutex) static unsigned char storage[sizeof(std::mutex)];
  static std::mutex* const instance = ::new (static_cast<void*>(storage)) std::mutex();
  return *instance;
}

// This thread's node: constant-initialised and trivially destructible, so it stays usable by
// code that runs after the holder below (a later thread_local destructor that builds a cell).
TANDEM_PROCESS_WIDE inline constinit thread_local once_thread this_thread_once_node{};
// Set once the holder has run: from then on a finishing build takes the graph mutex itself.
TANDEM_PROCESS_WIDE inline constinit thread_local bool once_thread_exiting = false;

// On thread exit, waits for any graph walker that might be reading this thread's node (they
// hold graph_mutex) before the thread's storage goes away.
struct once_thread_holder {
  once_thread_holder() = default;
  once_thread_holder(const once_thread_holder&) = delete;
  once_thread_holder& operator=(const once_thread_holder&) = delete;
  ~once_thread_holder() {
    once_thread_exiting = true;
    const std::lock_guard<std::mutex> lock(graph_mutex());
  }
};

TANDEM_PROCESS_WIDE inline once_thread& this_once_thread() noexcept {
  if (!once_thread_exiting) {
    static thread_local once_thread_holder holder;
    (void)holder;
  }
  return this_thread_once_node;
}

}  // namespace detail

namespace sync {

// The part of once_cell that does not depend on T: state, owner, label and the slow paths.
// rc_map and registry use it to label cells; it cannot be created on its own.
class once_cell_base {
 public:
  // Formats a cell's label (for example a map key, quoted) for error messages.
  using label_function = std::string (*)(const void* context);

  once_cell_base(const once_cell_base&) = delete;
  once_cell_base& operator=(const once_cell_base&) = delete;
  once_cell_base(once_cell_base&&) = delete;
  once_cell_base& operator=(once_cell_base&&) = delete;

  // True once the value is built. (1) acquire: pairs with the release in finish_build (3), so a
  // caller that sees true may read the value.
  [[nodiscard]] bool is_ready() const noexcept {
    return state_.load(std::memory_order_acquire) == ready_state;
  }

  // Names the cell in recursive_creation_error messages: `function(context)` is called only when
  // such a message is built. Set it before the cell is shared with other threads.
  void set_label(label_function function, const void* context) noexcept {
    label_function_ = function;
    label_context_ = context;
  }

  // The label, or "a once_cell" when none was set.
  [[nodiscard]] std::string label() const {
    return label_function_ != nullptr ? label_function_(label_context_) : "a once_cell";
  }

 protected:
  static constexpr std::uint32_t empty_state = 0;
  static constexpr std::uint32_t building_state = 1;
  static constexpr std::uint32_t ready_state = 2;
  // Still building, and some thread sleeps in atomic_wait (so finishing must wake it).
  static constexpr std::uint32_t building_waited_state = 3;

  once_cell_base() noexcept = default;
  ~once_cell_base() = default;

  [[nodiscard]] std::uint32_t load_state() const noexcept {
    // (1) acquire: pairs with the release in finish_build (3).
    return state_.load(std::memory_order_acquire);
  }

  // Steps 2, 4, 5: returns true when this thread now owns the build (state is building), false
  // when the cell is ready. Throws recursive_creation_error instead of deadlocking.
  bool begin_build() {
    detail::once_thread& self = detail::this_once_thread();
    for (;;) {
      std::uint32_t state = load_state();
      if (state == ready_state) return false;
      if (state == empty_state) {
        // (2) acquire on success: pairs with the release store of `empty` by a failed builder
        // (3), so its abandoned partial work is not reordered after our claim.
        if (state_.compare_exchange_strong(state, building_state, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
          // (2a) release: pairs with the acquire load of owner_ in wait_for_builder (5).
          owner_.store(&self, std::memory_order_release);
          enclosing_build_ = self.innermost_build;
          self.innermost_build = this;
          return true;
        }
        continue;
      }
      // building. relaxed: only this thread ever stores &self here, and it did so (sequenced
      // before) if it is the owner; any other value means "not me".
      if (owner_.load(std::memory_order_relaxed) == &self) throw_self_recursion(self);
      wait_for_builder(self);
    }
  }

  // Step 2 for a cell that no other thread can reach yet (its owner is still setting it up, for
  // example under the lock that will publish it): this thread becomes its builder with plain
  // stores, as if it had won step 2's compare-and-swap. The caller must run the build on this
  // thread next (once_cell<T>::build_claimed), with no other build begun in between.
  void claim_unshared() noexcept {
    detail::once_thread& self = detail::this_once_thread();
    // relaxed: nobody else sees the cell yet; whatever makes it reachable (the caller's lock,
    // released after this) publishes the state, as the CAS in (2) would.
    TANDEM_ASSERT(state_.load(std::memory_order_relaxed) == empty_state,
                  "once_cell::claim_unshared on a cell that is not empty");
    state_.store(building_state, std::memory_order_relaxed);
    // (2a) release: as in begin_build.
    owner_.store(&self, std::memory_order_release);
    enclosing_build_ = self.innermost_build;
    self.innermost_build = this;
  }

  [[nodiscard]] std::uint32_t load_state_relaxed() const noexcept {
    return state_.load(std::memory_order_relaxed);
  }

  // Step 3 for once_cell<T>::build_unshared: the value exists, nobody waits. (3) release, as the
  // exchange in finish_build: pairs with the acquire loads (1), so whoever sees ready sees the
  // value (the caller's lock, released after this, also orders both for whoever finds the cell
  // through it).
  void publish_unshared() noexcept { state_.store(ready_state, std::memory_order_release); }

  // Step 3: ends the build this thread began; `built` says whether the value now exists.
  void finish_build(bool built) noexcept {
    detail::once_thread& self = detail::this_once_thread();
    self.innermost_build = enclosing_build_;
    enclosing_build_ = nullptr;
    // (3a) release: pairs with the acquire load of owner_ in wait_for_builder (5).
    owner_.store(nullptr, std::memory_order_release);
    // (3) release: pairs with the acquire loads (1) and (2): the value (or, on failure, the
    // cleanup) is visible to whoever sees the new state. An exchange, so that it is ordered
    // with a waiter's compare-exchange to building_waited (5b): if one happened, we wake.
    const std::uint32_t previous =
        state_.exchange(built ? ready_state : empty_state, std::memory_order_release);
    if (previous == building_waited_state) atomic_notify_all(state_);
    if (TANDEM_UNLIKELY(detail::once_thread_exiting)) {
      // A build run after this thread's holder (in a later thread_local destructor): wait, as
      // the holder would, for a walker that read owner_ == &self before the store above.
      const std::lock_guard<std::mutex> lock(detail::graph_mutex());
    }
  }

  // The value's state while it is being destroyed, for the owner's destructor check.
  [[nodiscard]] bool is_being_built() const noexcept {
    // relaxed: a debug check by the cell's owner, with no concurrent builder by contract.
    const std::uint32_t state = state_.load(std::memory_order_relaxed);
    return state == building_state || state == building_waited_state;
  }

 private:
  [[noreturn]] TANDEM_NOINLINE void throw_wait_inside_visit() const {
    throw std::logic_error(
        "tandem: waiting for another thread's build of " + label() +
        " from inside rc_map::visit's f or a key's constructor (they run under a shard lock, "
        "which that build may need: the wait could never end); look the entry up outside f, "
        "or copy what f needs out of it");
  }

  [[noreturn]] TANDEM_NOINLINE void throw_self_recursion(const detail::once_thread& self) const {
    // This thread's builds, innermost first, down to this cell.
    std::vector<const once_cell_base*> chain;
    for (const once_cell_base* cell = self.innermost_build; cell != nullptr;
         cell = cell->enclosing_build_) {
      chain.push_back(cell);
      if (cell == this) break;
    }
    std::string message =
        "tandem: recursive creation of " + label() + ": this thread is already building it (";
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      message += (*it)->label();
      message += " -> ";
    }
    message += label();
    message += ")";
    throw recursive_creation_error(message);
  }

  // Step 5: checks the wait-for graph, then waits until the cell is no longer being built.
  // Refused inside an rc_map visit's f (which holds a shard lock): the builder's factory may
  // need that shard, and the wait could then never end -- a cycle through a lock, which the
  // wait-for graph cannot see (found by review, 2026-12-01: docs/reliability.md rule 12).
  TANDEM_NOINLINE void wait_for_builder(detail::once_thread& self) {
    if (TANDEM_UNLIKELY(detail::rc_map_visits != nullptr)) throw_wait_inside_visit();
    {
      const std::lock_guard<std::mutex> lock(detail::graph_mutex());
      std::vector<const once_cell_base*> path{this};
      const once_cell_base* cell = this;
      for (;;) {
        // (5) acquire: pairs with (2a)/(3a); under the graph mutex a non-null owner is a thread
        // whose node stays alive until we unlock (its holder's destructor takes the mutex).
        const detail::once_thread* owner = cell->owner_.load(std::memory_order_acquire);
        if (owner == nullptr) break;  // finished meanwhile: no edge
        if (owner == &self) throw_cycle(path);
        const once_cell_base* next = owner->waiting_on;
        if (next == nullptr) break;  // the owner is running: no cycle
        path.push_back(next);
        // The registered graph is acyclic (see the design comment); this bound only guards the
        // loop against a broken invariant.
        TANDEM_ASSERT(path.size() < 100000, "once_cell wait-for graph has a cycle");
        cell = next;
      }
      self.waiting_on = this;
    }
    struct unregister {
      detail::once_thread& self;
      ~unregister() {
        const std::lock_guard<std::mutex> lock(detail::graph_mutex());
        self.waiting_on = nullptr;
      }
    } const done{self};
    backoff waiter;
    for (;;) {
      // acquire: pairs with (3); begin_build re-reads the state anyway.
      std::uint32_t state = state_.load(std::memory_order_acquire);
      if (state != building_state && state != building_waited_state) return;
      if (!waiter.is_completed()) {
        waiter.pause();
        continue;
      }
      // (5b) Announce a sleeper before sleeping, so finish_build knows to wake us. relaxed:
      // only the value matters; it is ordered with finish_build's exchange as both are RMWs.
      if (state == building_state &&
          !state_.compare_exchange_weak(state, building_waited_state, std::memory_order_relaxed,
                                        std::memory_order_relaxed)) {
        continue;
      }
      atomic_wait(state_, building_waited_state);  // returns at once if the state moved on
    }
  }

  [[noreturn]] TANDEM_NOINLINE void throw_cycle(
      const std::vector<const once_cell_base*>& path) const {
    // path[0] is the cell this thread wanted; path[i+1] is what path[i]'s builder waits for;
    // the last one is being built by this thread.
    std::string message = "tandem: creation cycle across threads: this thread waits for ";
    for (std::size_t i = 0; i < path.size(); ++i) {
      message += path[i]->label();
      message += i + 1 < path.size() ? ", whose builder waits for "
                                     : ", which this thread is "
                                       "building";
    }
    throw recursive_creation_error(message);
  }

  std::atomic<std::uint32_t> state_{empty_state};
  std::atomic<detail::once_thread*> owner_{nullptr};
  once_cell_base* enclosing_build_ = nullptr;  // owner thread only: its previous innermost build
  label_function label_function_ = nullptr;
  const void* label_context_ = nullptr;
};

// What once_cell<T>::get_or_init accepts: a callable with no arguments whose result constructs
// a T (ideally a prvalue T, which is then constructed in place: T need not be movable).
template <class F, class T>
concept once_cell_initializer = std::invocable<F&> &&
    (std::same_as<std::remove_cv_t<std::invoke_result_t<F&>>, T> ||
     std::constructible_from<T, std::invoke_result_t<F&>>);

template <class T>
class once_cell : public once_cell_base {
  static_assert(std::is_object_v<T> && !std::is_array_v<T> && std::is_destructible_v<T>,
                "tandem::sync::once_cell<T>: T must be a destructible, non-array object type");

 public:
  // User-provided on purpose, not `= default`: a defaulted constructor makes value-
  // initialization (`once_cell<T>()`, or `value()` in a member initializer list, as rc_map's
  // node has) zero the whole object first, storage_ included -- sizeof(T) bytes written (a
  // `rep stos`) on every construction, then overwritten by the build (docs/reliability.md
  // rule 25; callgrind budget rc_map/churn_1k_value).
  // Not constexpr (g++ 12 refuses constinit for it either way): a once_cell at namespace
  // scope is initialized when its translation unit's dynamic initialization runs, so it must
  // not be used by another translation unit's static initialization before then (the
  // constructor would reset a cell already built; the classic initialization-order problem).
  // Use a function-local static, or registry's global(), for that.
  once_cell() noexcept {}  // NOLINT(modernize-use-equals-default): see above

  // Destroys the value if it was built. Destroying a cell while another thread builds or waits
  // for it is a contract breach (asserted in debug builds).
  ~once_cell() {
    TANDEM_ASSERT(!is_being_built(), "once_cell destroyed while its value is being built");
    if (is_ready()) value().~T();
  }

  // The value, or nullptr while it is not built. (1) acquire, see once_cell_base::is_ready.
  [[nodiscard]] T* get() noexcept { return is_ready() ? std::addressof(value()) : nullptr; }
  [[nodiscard]] const T* get() const noexcept {
    return is_ready() ? std::addressof(value()) : nullptr;
  }

  // The value, which the caller knows is built: it holds something handed out only after the
  // build (rc_map's handles), or it saw is_ready() itself. No load and no branch, and a
  // reference the optimiser can see is not null (-Wnull-dereference in users' builds, which
  // get()'s null branch triggers). Precondition: built (TANDEM_ASSERT).
  [[nodiscard]] T& built_value() noexcept {
    TANDEM_ASSERT(is_ready(), "once_cell::built_value() before the value was built");
    return value();
  }
  [[nodiscard]] const T& built_value() const noexcept {
    TANDEM_ASSERT(is_ready(), "once_cell::built_value() before the value was built");
    return value();
  }

  // Returns the value, building it with make() first if no thread has. See the design comment:
  // blocks while another thread builds; throws recursive_creation_error on a cycle, and
  // std::logic_error instead of waiting for another thread's build inside an rc_map visit's f
  // or key constructor (see wait_for_builder); if make() throws, its exception propagates and
  // the cell stays empty.
  template <class F>
  requires once_cell_initializer<F, T> T& get_or_init(F&& make) {
    if (TANDEM_LIKELY(load_state() == ready_state)) return value();  // (1)
    return init_slow(make);
  }

  // Makes this thread the builder of a cell no other thread can reach yet (see
  // once_cell_base::claim_unshared); build_claimed() must follow on this thread.
  using once_cell_base::claim_unshared;

  // After claim_unshared() on this thread: runs make() and publishes the value (step 3), with no
  // compare-and-swap (the claim replaced it). If make() throws, the cell is empty again, waiters
  // (other threads that found the cell since) build with their own make(), and the exception
  // propagates. This is how a container builds the value of an entry it has just created: one
  // atomic exchange in all (rc_map's create path).
  template <class F>
  requires once_cell_initializer<F, T> T& build_claimed(F&& make) {
    build(make);
    return value();
  }

  // For an empty cell that no other thread can reach yet (as claim_unshared), and a make() that
  // cannot throw: builds the value and marks the cell ready, with no claim and no exchange.
  // Nobody can have seen the cell building, so nobody waits for it (the exchange in (3) is
  // there to see a waiter's mark) and no cycle can pass through it; make() must not make the
  // cell reachable. (rc_map builds the values that opt in under the shard lock that publishes
  // the new entry: one atomic read-modify-write fewer per entry created.)
  template <class F>
  requires once_cell_initializer<F, T> && std::is_nothrow_invocable_v<F&> &&
      (std::same_as<std::invoke_result_t<F&>, T> ||  // a prvalue T: constructed in place
       std::is_nothrow_constructible_v<T, std::invoke_result_t<F&>>)
          T& build_unshared(F&& make) noexcept {
    // relaxed: nobody else sees the cell yet (a debug check of the precondition).
    TANDEM_ASSERT(load_state_relaxed() == empty_state,
                  "once_cell::build_unshared on a cell that is not empty");
    ::new (static_cast<void*>(storage_)) T(std::invoke(make));
    publish_unshared();
    return value();
  }

 private:
  template <class F>
  void build(F& make) {
    struct abandon_on_throw {
      once_cell* cell;
      ~abandon_on_throw() {
        if (cell != nullptr) cell->finish_build(false);
      }
    } guard{this};
    ::new (static_cast<void*>(storage_)) T(std::invoke(make));
    guard.cell = nullptr;
    finish_build(true);
  }

  template <class F>
  TANDEM_NOINLINE T& init_slow(F& make) {
    if (begin_build()) build(make);
    return value();
  }

  T& value() noexcept { return *std::launder(reinterpret_cast<T*>(storage_)); }
  const T& value() const noexcept { return *std::launder(reinterpret_cast<const T*>(storage_)); }

  alignas(T) unsigned char storage_[sizeof(T)];
};

}  // namespace sync
}  // namespace tandem
