// tandem/sync/striped_lock.hpp -- lock striping: many small locks, one chosen by a key's hash.
//
// What it is for: a table that many threads update (rc_map's entries, event_bus's topics) is
// cut into stripes, each guarded by its own lock, so two threads collide only when their keys
// land in the same stripe -- about 1/stripe_count of the time for random keys -- instead of on
// every operation. Use a single mutex instead when the table is touched rarely: a striped
// table costs stripe_count cache lines even when empty.
//
// What is in here:
//  - small_mutex: a 4-byte mutex that spins, then yields, then blocks on its word's futex
//    (sync::atomic_wait); its unlock is a plain store, with no locked instruction.
//    Meets the standard Lockable requirements (lock_guard, unique_lock, scoped_lock work).
//  - mix_hash(h): spreads a hash's entropy over all bits (std::hash<integer> is the identity).
//  - striped<T, Mutex>: a power-of-two array of cache-padded {Mutex mutex; T value;} stripes;
//    for_hash(h) picks one from the LOW bits of mix_hash(h). A table kept inside a stripe
//    should index its buckets with the HIGH bits of the same mixed hash (rc_map does), so the
//    two choices are independent.
//  - striped_lock<Mutex>: the same without a value: just the locks.
//
// small_mutex, step by step. A futex mutex (Drepper, "Futexes Are Tricky", 2011) whose
// sleepers announce themselves in a process-wide table instead of in the lock word, so that
// unlock() need not be a read-modify-write: the threads about to sleep pay for the handshake
// with asymmetric_fence's heavy side (a membarrier), the unlocking thread with its light side
// (a compiler barrier). Moving a lock's barrier onto its rare side with a process-wide barrier
// is the idea of Dice, Moir and Scherer's "Quickly Reacquirable Locks" (2003) and of the
// "asymmetric Dekker" locks built on Linux membarrier(2); a table of sleepers keyed by the
// lock's address is the idea of WebKit's ParkingLot (Pizlo, 2016) and Rust's parking_lot.
//  1. lock(): one CAS unlocked -> locked (acquire). Uncontended, that is the whole cost.
//  2. Otherwise spin and yield with sync::backoff, retrying the CAS whenever the word reads
//     unlocked: a critical section of a few dozen nanoseconds ends during the spin.
//  3. Then sleep: add one to the mutex's sleeper slot (mutex_sleepers, 256 counters shared by
//     address hash), asymmetric_fence::heavy(), CAS unlocked -> locked, else
//     atomic_wait_for(word, locked, nap) (the futex sleeps only while the word still reads
//     locked). Awake again, for whatever reason, subtract one from the slot and CAS; if that
//     fails too, go back to step 2. A sleeper is counted only from its announcement until it
//     wakes: one woken and then overtaken by a spinner (the mutex is not fair) would otherwise
//     make every unlock meanwhile issue a FUTEX_WAKE that finds nobody (found by review, with
//     4 threads on one mutex on 2 cores: 394,121 FUTEX_WAKEs in 4 s against 159 for the exchange
//     unlock). The nap starts at 1 ms and doubles up to 64 ms while the lock stays held: a
//     wake-up that cannot come (below) costs a delay, never a hang -- on Linux: elsewhere the
//     wait has no timeout (sync::atomic_wait_for), so there the two-tables case below hangs.
//  4. unlock(): store unlocked (release), a compiler barrier, load the slot; if it reads exactly
//     mutex_sleepers::ready (nobody counted, the process registered), done: no locked
//     instruction, no system call. Otherwise (out of line) fence for real if the `ready` mark
//     is missing (the process is not registered yet; the first such unlock registers it), and
//     if anybody is counted, atomic_notify_one(word) (one FUTEX_WAKE).
// Why no wake-up is lost: a sleeper runs "slot += 1; heavy(); load word" and an unlock "store
// word; light(); load slot": the store-buffering pattern the two halves of the asymmetric fence
// forbid, as two seq_cst fences would (sync/asymmetric_fence.hpp; the `ready` mark is set only
// once every heavy() is a membarrier, so before that an unlock fences for real). So for every
// unlock U and sleep of a thread W, either U's load sees W's increment (still there: W
// subtracts only once it is awake) and U wakes a sleeper, or every load W makes after its
// heavy() -- the futex's own comparison too, made by the kernel inside W's later system call --
// reads U's store or a later one, and W does not sleep past U. A wake-up wakes one sleeper of
// this mutex; the others stay counted, so the next unlock wakes the next. A slot shared with
// another mutex's sleeper only makes an unlock issue a wake-up that finds nobody.
// When the handshake does not hold, the nap bounds the wait: a membarrier that fails after the
// process registered (a seccomp filter installed later: asymmetric_fence::try_heavy() says so
// instead of ending the process), and two copies of the table in one process (see Guarantees).
// Measured (2026-12-04, release build, medians of 3; docs/event_bus.md has the commands): a
// publish to 8 subscribers plus 8 try_receive 161 -> 104 ns, publish + try_receive 34 -> 23 ns;
// rc_map_bench unchanged (its churn and lookups take one shard lock pair among costlier steps).
// Under contention, quiet machine, 4 s runs (review programs, 2 cores): 4 threads on one mutex
// with tiny critical sections 29-30 M lock pairs against 25 M for the exchange unlock; 8
// threads on 3 mutexes 26-27 M against 24 M; 4 threads on one mutex whose holder yields once in
// 64 sections 16.5 M against 15.2-16.5 M. But about 2x the futex calls there (600,000 against
// 320,000-350,000), and 40,000-180,000 against a few hundred without the yields: a sleeper
// woken but still waiting for a core is counted until it runs, and unlocks meanwhile wake
// nobody. That is also the weak spot: when another process keeps a core busy, woken sleepers
// wait longer for a core, and the yielding case fell to 2.5-3.2 M lock pairs per second against
// std::mutex's 3.7-4.7 M and the exchange unlock's 7.0-8.4 M (2026-12-04, 2 s runs beside one
// `nice -n 19` busy loop): 955,437 futex calls in 2 s for 19,428 sleeps (membarriers), so
// nearly every FUTEX_WAKE found nobody. bench/sync_bench.cpp's lock_pair rows measure it
// against std::mutex. Not fixed: the waker taking its sleeper out of the count (FUTEX_WAKE
// reports whom it woke) did 3.5-4.6 M there but was slower on a quiet machine, and a count
// that other code's wake-ups of a reused address can desynchronise needs its own proof.
// Why not std::mutex: it is 40 bytes, and pthread_mutex_lock/unlock are out-of-line calls that
// dispatch on the mutex kind and unlock with a locked instruction; small_mutex inlines to one
// CAS and one store. The rc_map benchmark (bench/rc_map_bench.cpp, docs/rc_map.md) measures
// both inside rc_map.
//
// Guarantees: small_mutex is not recursive (locking it twice from one thread deadlocks) and not
// fair (a spinning thread may overtake a woken one). It is safe to destroy as soon as a thread
// holding it unlocks it, as POSIX promises for pthread mutexes, even while another thread's
// unlock() has not yet returned: after its releasing store, unlock() reads only the
// process-wide table and uses the mutex's address only to pass it to the futex wake (rc_map
// relies on it: ~rc_map frees its shards once the last release has reported under a shard
// lock). A FUTEX_WAKE that reaches a freed address wakes nobody, or a futex user there that
// re-checks its condition (a futex may always wake spuriously). constexpr constructor: a
// namespace-scope small_mutex is constant-initialised (constinit works). One table per process
// is what makes the wake-ups work (TANDEM_PROCESS_WIDE: default visibility); a mutex shared by
// two modules that each keep their own copy of tandem's symbols (a version script that hides
// them, RTLD_LOCAL with clang: docs/building.md) still excludes, but a sleeper of one module
// is not seen by the other's unlocks and waits for its nap (up to 64 ms) each time.
//
// Costs: small_mutex is 4 bytes; a stripe is one or more whole cache lines (cache_padded), so
// striped<T> with n stripes costs n * round_up(sizeof(Mutex) + sizeof(T), cache_line_size).
// The sleeper table is 1 KiB per process. unlock() is a store, a multiply-and-shift of the
// address, a load of the slot and a compare when the kernel has MEMBARRIER_CMD_PRIVATE_EXPEDITED;
// without it (non-Linux, Linux < 4.14, a sandbox that blocks the call) every unlock takes the
// slow path and a real fence, about what an exchange costs. A thread that goes to sleep pays
// one membarrier per sleep (about 1 us here, beside the futex wait it is about to make). The
// first unlock in a process registers it for expedited membarrier (asymmetric_fence::prepare():
// one system call, once; the kernel may take a few milliseconds when the process already runs
// several threads). A child made by fork() while a parent thread slept in lock() inherits that
// thread's count: in the child, unlocks of the mutexes of that slot issue a needless
// FUTEX_WAKE each (correct, slower).
//
// Memory ordering: lock() acquires (the successful CAS), unlock() releases (the store), so
// everything written under the lock happens-before the next holder's critical section -- the
// usual mutex contract. The sleeper slots are relaxed: the fence halves order them against the
// lock word (see "Why no wake-up is lost"), and they carry no data.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <type_traits>

#include "../detail/port.hpp"
#include "asymmetric_fence.hpp"
#include "atomic_wait.hpp"
#include "backoff.hpp"
#include "cache_padded.hpp"
#include "sync_point.hpp"

#if TANDEM_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace tandem::sync {

// The sleeper table of step 3: one process-wide array (TANDEM_PROCESS_WIDE: a mutex shared
// by two shared objects must find its sleepers in one table). Written only by threads about to
// sleep and by them once they hold the lock, so the lines stay shared in every core's cache
// and unlock()'s load hits.
struct mutex_sleepers {
  static constexpr unsigned slot_bits = 8;
  static constexpr std::size_t slot_count = std::size_t{1} << slot_bits;
  // Set in every slot once the process is registered for expedited membarrier (mark_ready()),
  // so that unlock() answers both of its questions with one load and one compare: a slot that
  // reads exactly `ready` has no sleeper, and unlock()'s compiler barrier was enough. Anything
  // else sends it to its slow path, which fences for real while the mark is missing (and
  // registers the process). Counts stay below it.
  static constexpr std::uint32_t ready = std::uint32_t{1} << 31U;

  // Fibonacci hashing of the address (Knuth, TAOCP vol. 3, 6.4): its top bits pick the slot,
  // so mutexes a fixed stride apart (one per stripe, one per mailbox) spread out.
  [[nodiscard]] std::atomic<std::uint32_t>& slot_of(const void* mutex) noexcept {
    const std::uint64_t address = reinterpret_cast<std::uintptr_t>(mutex);
    const std::uint64_t slot = (address * 0x9e3779b97f4a7c15ULL) >> (64U - slot_bits);
    return slots[slot];
  }

  // The threads counted in `mutex`'s slot (without the `ready` mark).
  [[nodiscard]] std::uint32_t sleepers_of(const void* mutex) noexcept {
    return slot_of(mutex).load(std::memory_order_relaxed) & ~ready;
  }

  // Sets the `ready` mark in every slot (idempotent; a count is left as it is). Called once
  // asymmetric_fence::expedited() is true, so every later sleeper's heavy() is a membarrier
  // and unlock()'s compiler barrier pairs with it.
  void mark_ready() noexcept {
    for (auto& slot : slots) {
      // relaxed: whoever reads the mark relies only on the registration, which happened
      // before (prepare() returned true to the caller).
      slot.fetch_or(ready, std::memory_order_relaxed);
    }
  }

  alignas(cache_line_size) std::atomic<std::uint32_t> slots[slot_count] = {};
};
TANDEM_PROCESS_WIDE inline constinit mutex_sleepers small_mutex_sleepers{};

class small_mutex {
 public:
  // constexpr: a small_mutex at namespace scope is constant-initialised (constinit works), so no
  // other translation unit's static initialiser can lock it before it is built.
  constexpr small_mutex() noexcept = default;
#if TANDEM_TSAN
  // Forgets the mutex's lock-order history, so that a later mutex at the same address (a stack
  // slot, a reused allocation) does not inherit it (TSan does this for pthread_mutex_destroy).
  ~small_mutex() {
    __tsan_mutex_destroy(this, 0);
  }
#endif
  small_mutex(const small_mutex&) = delete;
  small_mutex& operator=(const small_mutex&) = delete;

  void lock() noexcept {
    tsan_pre_lock(0);
    // (1) the CAS of try_acquire(), which acquires: pairs with the release in unlock() (4) of
    // the previous holder.
    if (TANDEM_LIKELY(try_acquire())) {
      tsan_post_lock(0);
      return;
    }
    lock_contended();
    tsan_post_lock(0);
  }

  [[nodiscard]] bool try_lock() noexcept {
    tsan_pre_lock(tsan_try_lock);
    // acquires on success, as in lock() (1).
    const bool taken = try_acquire();
    tsan_post_lock(taken ? tsan_try_lock : tsan_try_lock | tsan_try_lock_failed);
    return taken;
  }

  void unlock() noexcept {
    tsan_pre_unlock();
    std::atomic<std::uint32_t>& sleepers = small_mutex_sleepers.slot_of(this);
    // (4) release: publishes the critical section to the next holder's (1) or (2). From here
    // on this mutex may be destroyed by its next holder: only the table and the address are
    // used below.
    state_.store(unlocked, std::memory_order_release);
    TANDEM_TEST_POINT("small_mutex unlock: after the releasing store");
    // The light side of the fence, when the process is registered: a compiler barrier. With a
    // sleeper's heavy() (3), this load sees its increment, or the sleeper sees our store.
    // relaxed: ordered by the fence halves (see "Why no wake-up is lost").
    asymmetric_fence::light_prepared();
    if (TANDEM_UNLIKELY(sleepers.load(std::memory_order_relaxed) != mutex_sleepers::ready)) {
      wake_if_sleepers(sleepers);
    }
    tsan_post_unlock();
  }

 private:
  // unlock()'s slow path: a sleeper is counted, or the process is not registered yet (no
  // `ready` mark), in which case the compiler barrier paired with nothing: fence for real
  // (light_preparing() also registers the process, once), then look again.
  TANDEM_NOINLINE void wake_if_sleepers(std::atomic<std::uint32_t>& sleepers) noexcept {
    std::uint32_t seen = sleepers.load(std::memory_order_relaxed);
    if ((seen & mutex_sleepers::ready) == 0) {
      asymmetric_fence::light_preparing();
      if (asymmetric_fence::expedited()) small_mutex_sleepers.mark_ready();
      // relaxed, as unlock()'s load: light_preparing() fenced for real, or the process was
      // registered already and every sleeper's heavy() is a membarrier that pairs with it.
      seen = sleepers.load(std::memory_order_relaxed);
    }
    if ((seen & ~mutex_sleepers::ready) != 0) atomic_notify_one(state_);
  }

  // Under ThreadSanitizer the mutex says what it is (the __tsan_mutex_* annotations), so that
  // TSan checks it as it checks std::mutex: lock-order inversions (a potential deadlock between
  // two of tandem's locks, or one of them and a user's), double unlocks, unlocks by a thread
  // that does not hold it. Without the annotations TSan sees only atomics and their ordering.
  // Elsewhere these are empty and cost nothing.
#if TANDEM_TSAN
  static constexpr unsigned tsan_try_lock = __tsan_mutex_try_lock;
  static constexpr unsigned tsan_try_lock_failed = __tsan_mutex_try_lock_failed;
  void tsan_pre_lock(unsigned flags) noexcept {
    __tsan_mutex_pre_lock(this, flags);
  }
  void tsan_post_lock(unsigned flags) noexcept {
    __tsan_mutex_post_lock(this, flags, 0);
  }
  void tsan_pre_unlock() noexcept {
    __tsan_mutex_pre_unlock(this, 0);
  }
  void tsan_post_unlock() noexcept {
    __tsan_mutex_post_unlock(this, 0);
  }
#else
  static constexpr unsigned tsan_try_lock = 0;
  static constexpr unsigned tsan_try_lock_failed = 0;
  static void tsan_pre_lock(unsigned /*flags*/) noexcept {}
  static void tsan_post_lock(unsigned /*flags*/) noexcept {}
  static void tsan_pre_unlock() noexcept {}
  static void tsan_post_unlock() noexcept {}
#endif

  static constexpr std::uint32_t unlocked = 0;
  static constexpr std::uint32_t locked = 1;

  // The one compare-exchange that takes the lock: lock() (1), try_lock() and the contended
  // path (2).
  [[nodiscard]] bool try_acquire() noexcept {
    std::uint32_t expected = unlocked;
    // (1)/(2) acquire on success: pairs with unlock() (4).
    return state_.compare_exchange_strong(expected, locked, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }

  TANDEM_NOINLINE void lock_contended() noexcept {
    std::atomic<std::uint32_t>& sleepers = small_mutex_sleepers.slot_of(this);
    std::chrono::nanoseconds nap = first_nap;
    for (;;) {
      backoff waiter;
      while (!waiter.is_completed()) {
        // relaxed: only a hint whether the CAS can succeed; the CAS itself acquires.
        if (state_.load(std::memory_order_relaxed) == unlocked && try_acquire()) return;
        waiter.pause();
      }
      // (3) relaxed: ordered against unlock()'s load of the slot by heavy() and light().
      sleepers.fetch_add(1, std::memory_order_relaxed);
      // False only if membarrier failed after the process registered (a seccomp filter
      // installed later): then no unlock is ordered against us, and only the timeout wakes us.
      static_cast<void>(asymmetric_fence::try_heavy());
      if (try_acquire()) {
        sleepers.fetch_sub(1, std::memory_order_relaxed);
        return;
      }
      // Sleeps while the word still reads locked (a changed word returns at once), at most
      // `nap`: a wake-up that cannot come (see Guarantees: two copies of the table) costs a
      // delay, never a hang.
      if (!atomic_wait_for(state_, locked, nap)) {
        TANDEM_TEST_POINT("small_mutex lock: a nap ended");  // no wake-up came meanwhile
      }
      // Counted only while asleep: a thread woken and then overtaken by a spinner would
      // otherwise make every unlock meanwhile issue a FUTEX_WAKE that finds nobody.
      // relaxed: an unlock that still counts us only issues a spare wake-up.
      sleepers.fetch_sub(1, std::memory_order_relaxed);
      if (try_acquire()) return;
      nap = std::min(nap * 2, last_nap);
    }
  }

  // The timed sleep of step 3 starts at 1 ms and doubles up to 64 ms while the lock stays held.
  static constexpr std::chrono::nanoseconds first_nap = std::chrono::milliseconds(1);
  static constexpr std::chrono::nanoseconds last_nap = std::chrono::milliseconds(64);

  std::atomic<std::uint32_t> state_{unlocked};
};

// Spreads the entropy of `hash` over all its bits (the MurmurHash3 64-bit finaliser, an idea
// also used by many hash tables): std::hash of an integer is the identity on libstdc++ and
// libc++, so keys 0, 16, 32, ... would otherwise all land in stripe 0.
[[nodiscard]] constexpr std::size_t mix_hash(std::size_t hash) noexcept {
  std::uint64_t h = hash;
  h ^= h >> 33U;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33U;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33U;
  // The mask keeps the conversion exact where std::size_t is narrower, without a cast that
  // is useless (-Wuseless-cast) where it is std::uint64_t.
  return h & std::numeric_limits<std::size_t>::max();
}

// Mutex requirements of a stripe: lock(), unlock(), try_lock() and default construction.
template <class M>
concept stripe_mutex = std::is_default_constructible_v<M> && requires(M& m) {
  m.lock();
  m.unlock();
  { m.try_lock() } -> std::convertible_to<bool>;
};

// n stripes, n = stripe_count rounded up to a power of two; each holds a Mutex and a T.
template <class T, class Mutex = small_mutex>
class striped {
  static_assert(stripe_mutex<Mutex>,
                "tandem::sync::striped<T, Mutex>: Mutex must be default-constructible and have "
                "lock(), unlock() and try_lock() (std::mutex and tandem::sync::small_mutex do)");
  static_assert(std::is_default_constructible_v<T>,
                "tandem::sync::striped<T, Mutex>: every stripe's T is default-constructed, so T "
                "must be default-constructible");

 public:
  struct stripe {
    Mutex mutex;
    T value;  // guarded by `mutex`
  };

  // Access to one stripe's value while holding its lock; unlocks on destruction.
  class [[nodiscard]] locked_stripe {
   public:
    explicit locked_stripe(stripe& s) : lock_(s.mutex), value_(std::addressof(s.value)) {}
    T& operator*() const noexcept { return *value_; }
    T* operator->() const noexcept { return value_; }

   private:
    std::unique_lock<Mutex> lock_;
    T* value_;
  };

  // Throws std::invalid_argument when stripe_count is 0 (there would be nowhere to put a key)
  // or above max_stripe_count.
  explicit striped(std::size_t stripe_count)
      : stripes_(std::make_unique<cache_padded<stripe>[]>(rounded(stripe_count))),
        mask_(rounded(stripe_count) - 1) {}

  // More stripes than this is surely a bug (and 2^p would overflow std::size_t first).
  static constexpr std::size_t max_stripe_count = std::size_t{1}
                                                  << (std::numeric_limits<std::size_t>::digits / 2);

  [[nodiscard]] std::size_t stripe_count() const noexcept { return mask_ + 1; }

  // The stripe for a hash as it comes from the user's hash function (mixed here).
  [[nodiscard]] std::size_t index_for(std::size_t hash) const noexcept {
    return index_for_mixed(mix_hash(hash));
  }
  // The stripe for a hash that already went through mix_hash (when the caller needs the
  // mixed value anyway, e.g. for its own buckets).
  [[nodiscard]] std::size_t index_for_mixed(std::size_t mixed_hash) const noexcept {
    return mixed_hash & mask_;
  }

  [[nodiscard]] stripe& for_hash(std::size_t hash) noexcept { return (*this)[index_for(hash)]; }
  [[nodiscard]] const stripe& for_hash(std::size_t hash) const noexcept {
    return (*this)[index_for(hash)];
  }
  [[nodiscard]] stripe& for_mixed_hash(std::size_t mixed_hash) noexcept {
    return (*this)[index_for_mixed(mixed_hash)];
  }
  [[nodiscard]] const stripe& for_mixed_hash(std::size_t mixed_hash) const noexcept {
    return (*this)[index_for_mixed(mixed_hash)];
  }

  // Stripe by index, 0 <= index < stripe_count() (to visit them all).
  [[nodiscard]] stripe& operator[](std::size_t index) noexcept { return stripes_[index].value; }
  [[nodiscard]] const stripe& operator[](std::size_t index) const noexcept {
    return stripes_[index].value;
  }

  // Locks the stripe for `hash` and gives access to its value.
  [[nodiscard]] locked_stripe lock(std::size_t hash) { return locked_stripe(for_hash(hash)); }

 private:
  static std::size_t rounded(std::size_t stripe_count) {
    if (stripe_count == 0) {
      throw std::invalid_argument("tandem::sync::striped: the stripe count must be at least 1");
    }
    if (stripe_count > max_stripe_count) {
      throw std::invalid_argument("tandem::sync::striped: the stripe count is too large");
    }
    return std::bit_ceil(stripe_count);
  }

  std::unique_ptr<cache_padded<stripe>[]> stripes_;
  std::size_t mask_;
};

// Just the locks: a power-of-two array of cache-padded mutexes chosen by hash.
template <class Mutex = small_mutex>
class striped_lock {
  struct nothing {};

 public:
  // Throws std::invalid_argument when stripe_count is 0; rounds up to a power of two.
  explicit striped_lock(std::size_t stripe_count) : stripes_(stripe_count) {}

  [[nodiscard]] std::size_t stripe_count() const noexcept { return stripes_.stripe_count(); }
  [[nodiscard]] std::size_t index_for(std::size_t hash) const noexcept {
    return stripes_.index_for(hash);
  }
  [[nodiscard]] Mutex& mutex_for(std::size_t hash) noexcept {
    return stripes_.for_hash(hash).mutex;
  }
  [[nodiscard]] Mutex& operator[](std::size_t index) noexcept { return stripes_[index].mutex; }
  // Locks the mutex for `hash`: `auto guard = locks.lock(std::hash<K>{}(key));`
  [[nodiscard]] std::unique_lock<Mutex> lock(std::size_t hash) {
    return std::unique_lock<Mutex>(mutex_for(hash));
  }

 private:
  striped<nothing, Mutex> stripes_;
};

}  // namespace tandem::sync
