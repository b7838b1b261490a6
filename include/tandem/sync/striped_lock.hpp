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
//    (sync::atomic_wait).
//    Meets the standard Lockable requirements (lock_guard, unique_lock, scoped_lock work).
//  - mix_hash(h): spreads a hash's entropy over all bits (std::hash<integer> is the identity).
//  - striped<T, Mutex>: a power-of-two array of cache-padded {Mutex mutex; T value;} stripes;
//    for_hash(h) picks one from the LOW bits of mix_hash(h). A table kept inside a stripe
//    should index its buckets with the HIGH bits of the same mixed hash (rc_map does), so the
//    two choices are independent.
//  - striped_lock<Mutex>: the same without a value: just the locks.
//
// small_mutex, step by step (the three-state futex mutex of Drepper's "Futexes Are Tricky",
// with tandem's backoff in front of the blocking phase):
//  1. lock(): one CAS unlocked -> locked. Uncontended, that is the whole cost.
//  2. Otherwise spin and yield with sync::backoff, retrying the CAS whenever the word reads
//     unlocked: a critical section of a few dozen nanoseconds ends during the spin.
//  3. Then block: exchange the word to `contended` (locked, and someone may sleep); if it was
//     unlocked we own the lock (still marked contended, which only costs one spare notify),
//     else atomic_wait(contended) (sync/atomic_wait.hpp: the futex) and repeat.
//  4. unlock(): exchange to unlocked; if the old value was `contended`, atomic_notify_one.
//     The `contended` state is how the mutex tracks its sleepers, so an uncontended unlock
//     makes no system call.
// Why not std::mutex: it is 40 bytes, and pthread_mutex_lock/unlock are out-of-line calls that
// dispatch on the mutex kind; small_mutex inlines to one CAS and one exchange. The rc_map
// benchmark (bench/rc_map_bench.cpp, docs/rc_map.md) measures both inside rc_map.
//
// Guarantees: small_mutex is not recursive (locking it twice from one thread deadlocks) and not
// fair (a spinning thread may overtake a woken one). It is safe to destroy right after unlock()
// returned in every thread, as POSIX promises for pthread mutexes: unlock() touches the mutex's
// address after the releasing exchange only to pass it to the futex wake (no load or store).
//
// Costs: small_mutex is 4 bytes; a stripe is one or more whole cache lines (cache_padded), so
// striped<T> with n stripes costs n * round_up(sizeof(Mutex) + sizeof(T), cache_line_size).
//
// Memory ordering: lock() acquires (the successful CAS or exchange), unlock() releases (the
// exchange), so everything written under the lock happens-before the next holder's critical
// section -- the usual mutex contract. The other atomic operations are marked where they occur.
#pragma once

#include <atomic>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <type_traits>

#include "../detail/port.hpp"
#include "atomic_wait.hpp"
#include "backoff.hpp"
#include "cache_padded.hpp"

#if TANDEM_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace tandem::sync {

class small_mutex {
 public:
  small_mutex() noexcept = default;
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
    std::uint32_t expected = unlocked;
    // (1) acquire on success: pairs with the release in unlock() (4) of the previous holder.
    if (TANDEM_LIKELY(state_.compare_exchange_strong(expected, locked, std::memory_order_acquire,
                                                     std::memory_order_relaxed))) {
      tsan_post_lock(0);
      return;
    }
    lock_contended();
    tsan_post_lock(0);
  }

  [[nodiscard]] bool try_lock() noexcept {
    tsan_pre_lock(tsan_try_lock);
    std::uint32_t expected = unlocked;
    // acquire on success: pairs with the release in unlock() (4), as in lock() (1).
    const bool taken = state_.compare_exchange_strong(expected, locked, std::memory_order_acquire,
                                                      std::memory_order_relaxed);
    tsan_post_lock(taken ? tsan_try_lock : tsan_try_lock | tsan_try_lock_failed);
    return taken;
  }

  void unlock() noexcept {
    tsan_pre_unlock();
    // (4) release: publishes the critical section to the next holder's (1), (2) or (3).
    if (state_.exchange(unlocked, std::memory_order_release) == contended) {
      atomic_notify_one(state_);
    }
    tsan_post_unlock();
  }

 private:
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
  static constexpr std::uint32_t locked = 1;     // held, nobody asleep
  static constexpr std::uint32_t contended = 2;  // held, and a thread may be asleep in wait()

  TANDEM_NOINLINE void lock_contended() noexcept {
    backoff waiter;
    while (!waiter.is_completed()) {
      // relaxed: only a hint whether the CAS below can succeed; the CAS itself acquires.
      std::uint32_t seen = state_.load(std::memory_order_relaxed);
      // (2) acquire on success: pairs with unlock() (4).
      if (seen == unlocked && state_.compare_exchange_weak(seen, locked, std::memory_order_acquire,
                                                           std::memory_order_relaxed)) {
        return;
      }
      waiter.pause();
    }
    // (3) acquire: pairs with unlock() (4) when the old value was `unlocked` (we own it now).
    while (state_.exchange(contended, std::memory_order_acquire) != unlocked) {
      // Sleeps while the word is still `contended`; the exchange above is what acquires.
      atomic_wait(state_, contended);
    }
  }

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
