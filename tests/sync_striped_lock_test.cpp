// Tests for include/tandem/sync/striped_lock.hpp.
#include <tandem/sync/striped_lock.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "test_support.hpp"

using tandem::sync::small_mutex;
using tandem::sync::striped;
using tandem::sync::striped_lock;

TEST_CASE("small_mutex gives mutual exclusion: 4 threads' unguarded increments add up") {
  tandem::test::watchdog dog("small_mutex exclusion");
  small_mutex mutex;
  std::uint64_t counter = 0;  // plain: a lost update (or TSan) exposes a broken lock
  constexpr std::uint64_t per_thread = 50'000;
  tandem::test::run_threads(4, [&](std::size_t) {
    for (std::uint64_t i = 0; i < per_thread; ++i) {
      std::lock_guard<small_mutex> guard(mutex);
      const std::uint64_t seen = counter;
      if (i % 64 == 0) std::this_thread::yield();  // hold it across a reschedule sometimes
      counter = seen + 1;
    }
  });
  CHECK(counter == 4 * per_thread);
}

TEST_CASE("small_mutex try_lock fails while it is held and succeeds once it is released") {
  small_mutex mutex;
  CHECK(mutex.try_lock());
  bool other_got_it = true;
  std::thread other([&] { other_got_it = mutex.try_lock(); });
  other.join();
  CHECK_FALSE(other_got_it);
  mutex.unlock();
  CHECK(mutex.try_lock());
  mutex.unlock();
}

TEST_CASE("small_mutex wakes a thread that went past its backoff into atomic_wait") {
  tandem::test::watchdog dog("small_mutex wake-up");
  small_mutex mutex;
  std::atomic<bool> waiter_started{false};
  std::atomic<bool> waiter_done{false};
  mutex.lock();
  std::thread waiter([&] {
    waiter_started = true;
    mutex.lock();  // blocks: spins, yields, then sleeps in atomic_wait
    waiter_done = true;
    mutex.unlock();
  });
  while (!waiter_started.load()) std::this_thread::yield();
  // Hold the lock for far longer than the backoff (17 steps) so the waiter is most likely
  // asleep; the outcome does not depend on it: the unlock must wake it either way.
  for (int i = 0; i < 2000; ++i) std::this_thread::yield();
  CHECK_FALSE(waiter_done.load());
  mutex.unlock();
  waiter.join();  // a lost wake-up would hang here and trip the watchdog
  CHECK(waiter_done.load());
}

TEST_CASE("small_mutex is four bytes") {
  STATIC_REQUIRE(sizeof(small_mutex) == 4);
}

TEST_CASE("striped rounds the stripe count up to a power of two and rejects 0") {
  CHECK_THROWS_AS(striped<int>(0), std::invalid_argument);
  CHECK_THROWS_AS(striped_lock<>(0), std::invalid_argument);
  CHECK(striped<int>(1).stripe_count() == 1);
  CHECK(striped<int>(3).stripe_count() == 4);
  CHECK(striped<int>(64).stripe_count() == 64);
  CHECK(striped_lock<>(100).stripe_count() == 128);
  CHECK_THROWS_AS(striped<int>(striped<int>::max_stripe_count + 1), std::invalid_argument);
}

TEST_CASE("striped stripes never share a cache line") {
  striped<int> stripes(8);
  for (std::size_t i = 0; i + 1 < stripes.stripe_count(); ++i) {
    const auto a = reinterpret_cast<std::uintptr_t>(&stripes[i]);
    const auto b = reinterpret_cast<std::uintptr_t>(&stripes[i + 1]);
    CHECK(b - a >= tandem::sync::cache_line_size);
    CHECK(a % tandem::sync::cache_line_size == 0);
  }
}

TEST_CASE("striped spreads identity-hashed keys over the stripes and maps a hash consistently") {
  striped_lock<> locks(16);
  std::set<std::size_t> used;
  // Multiples of 16: with the raw low bits, all of these would land in stripe 0.
  for (std::size_t key = 0; key < 16 * 256; key += 16) {
    const std::size_t index = locks.index_for(std::hash<std::size_t>{}(key));
    CHECK(index < 16);
    CHECK(index == locks.index_for(std::hash<std::size_t>{}(key)));
    used.insert(index);
  }
  CHECK(used.size() == 16);
}

TEST_CASE("striped::lock holds the stripe's lock until the guard is gone") {
  striped<int> counters(4);
  const std::size_t hash = 12345;
  {
    auto guard = counters.lock(hash);
    *guard += 1;
    CHECK_FALSE(counters.for_hash(hash).mutex.try_lock());
  }
  CHECK(counters.for_hash(hash).mutex.try_lock());
  counters.for_hash(hash).mutex.unlock();
  CHECK(counters.for_hash(hash).value == 1);

  striped_lock<std::mutex> locks(4);  // any Lockable can be striped
  {
    auto guard = locks.lock(hash);
    CHECK(guard.owns_lock());
    CHECK_FALSE(locks.mutex_for(hash).try_lock());
  }
}

TEST_CASE("striped counters stay exact under 4 threads hitting a few stripes") {
  tandem::test::watchdog dog("striped counters");
  striped<std::uint64_t> counters(2);
  tandem::test::run_threads(4, [&](std::size_t t) {
    for (std::size_t i = 0; i < 20'000; ++i) {
      auto guard = counters.lock(i + t);
      *guard += 1;
    }
  });
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < counters.stripe_count(); ++i) total += counters[i].value;
  CHECK(total == 80'000);
}
