// Tests for include/tandem/sync/striped_lock.hpp.
#include <tandem/sync/striped_lock.hpp>

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

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

namespace {
// The sleeper slot of `mutex` (striped_lock.hpp, step 3): how many threads announced that they
// sleep on a mutex of that slot.
std::uint32_t sleepers_of(const small_mutex& mutex) {
  return tandem::sync::small_mutex_sleepers.sleepers_of(&mutex);
}

// Whether thread `tid` of this process is blocked in a system call ('S' in
// /proc/self/task/<tid>/stat). After a small_mutex waiter is counted, the only call that
// blocks it is the futex wait (its membarrier does not sleep, its yields run).
bool is_asleep(pid_t tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto end_of_name = line.rfind(')');
  return end_of_name != std::string::npos && end_of_name + 2 < line.size() &&
         line[end_of_name + 2] == 'S';
}

constinit small_mutex constant_initialised_mutex;
}  // namespace

TEST_CASE("small_mutex wakes a thread asleep in lock() with its plain-store unlock") {
  tandem::test::watchdog dog("small_mutex wake-up");
  small_mutex mutex;
  REQUIRE(sleepers_of(mutex) == 0);  // no other test's thread sleeps meanwhile
  std::atomic<bool> waiter_done{false};
  std::atomic<pid_t> waiter_tid{0};
  mutex.lock();
  std::thread waiter([&] {
    waiter_tid = static_cast<pid_t>(::syscall(SYS_gettid));
    mutex.lock();  // blocks: spins, yields, then announces itself and sleeps in atomic_wait
    waiter_done = true;
    mutex.unlock();
  });
  // The waiter is asleep in the futex once it is counted in the slot and blocked (no sleep
  // here: a yielding poll, bounded by the watchdog). An unlock before that would let its next
  // CAS succeed without any wake-up, and the test could not fail.
  while (sleepers_of(mutex) == 0 || !is_asleep(waiter_tid.load())) std::this_thread::yield();
  CHECK_FALSE(waiter_done.load());
  mutex.unlock();  // must wake it: a lost wake-up hangs the join and trips the watchdog
  waiter.join();
  CHECK(waiter_done.load());
  CHECK(sleepers_of(mutex) == 0);  // the waiter took itself out once it held the lock
}

TEST_CASE("small_mutex: a sleeper whose wake-up never comes still takes the lock (its timeout)") {
  // What a second copy of the sleeper table (a module whose symbols are hidden, see the header's
  // Guarantees) or a membarrier that fails after registration does: the unlock does not see the
  // sleeper. The test hides the sleeper from the unlock by taking its count out of the slot.
  tandem::test::watchdog dog("small_mutex lost wake-up bounded");
  small_mutex mutex;
  auto& slot = tandem::sync::small_mutex_sleepers.slot_of(&mutex);
  REQUIRE(sleepers_of(mutex) == 0);
  const std::uint32_t before = slot.load();  // restored exactly at the end (with its mark)
  std::atomic<bool> waiter_done{false};
  std::atomic<pid_t> waiter_tid{0};
  mutex.lock();
  std::thread waiter([&] {
    waiter_tid = static_cast<pid_t>(::syscall(SYS_gettid));
    mutex.lock();
    waiter_done = true;
    mutex.unlock();
  });
  while (sleepers_of(mutex) == 0 || !is_asleep(waiter_tid.load())) std::this_thread::yield();
  slot.fetch_sub(1);  // the unlock below sees nobody, and wakes nobody
  mutex.unlock();
  waiter.join();  // before the timeout: the watchdog (60 s; the waiter's first nap is 1 ms)
  CHECK(waiter_done.load());
  // The waiter took its count out when it woke (from the hidden count: borrowing from the
  // slot's `ready` mark), so the slot is put back exactly as it was.
  slot.store(before);
  CHECK(sleepers_of(mutex) == 0);
}

TEST_CASE("small_mutex is constant-initialised: constinit, no constructor run at start-up") {
  // A namespace-scope mutex that another translation unit's static initialiser locks must not
  // be reset by its own constructor afterwards (found by review, 2026-12-04).
  STATIC_REQUIRE(std::is_nothrow_default_constructible_v<small_mutex>);
  CHECK(constant_initialised_mutex.try_lock());
  constant_initialised_mutex.unlock();
}

TEST_CASE(
    "small_mutex: once the process is registered for membarrier, unlock takes its fast path") {
  // Until then no slot carries the `ready` mark, which sends every unlock to its slow path (a
  // real fence); the first unlock that finds the process registered marks them all.
  small_mutex mutex;
  mutex.lock();
  mutex.unlock();
  if (!tandem::sync::asymmetric_fence::expedited()) {
    WARN("membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) is not available here: every unlock fences");
    return;
  }
  for (const auto& slot : tandem::sync::small_mutex_sleepers.slots) {
    CHECK((slot.load() & tandem::sync::mutex_sleepers::ready) != 0);
  }
}

TEST_CASE("small_mutex: every sleeper leaves the table once it holds the lock") {
  // A count left behind would make every later unlock of the slot's mutexes a system call.
  tandem::test::watchdog dog("small_mutex sleeper count");
  small_mutex mutex;
  constexpr int threads = 4;
  constexpr int rounds = 200;
  long long total = 0;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = 0; i < rounds; ++i) {
        std::lock_guard<small_mutex> guard(mutex);
        // Long enough that the others exhaust their backoff and sleep now and then.
        for (int y = 0; y < 20; ++y) std::this_thread::yield();
        ++total;
      }
    });
  }
  for (auto& w : workers) w.join();
  CHECK(total == static_cast<long long>(threads) * rounds);
  CHECK(sleepers_of(mutex) == 0);
}

TEST_CASE("small_mutex's sleeper slots spread mutexes a fixed stride apart") {
  // One mailbox or stripe after another: a slot per mutex where possible, so that a sleeper on
  // one costs the unlocks of the others nothing.
  struct alignas(128) padded {
    small_mutex mutex;
  };
  std::vector<padded> mutexes(64);
  std::set<const void*> slots;
  for (const auto& p : mutexes) {
    slots.insert(&tandem::sync::small_mutex_sleepers.slot_of(&p.mutex));
  }
  CHECK(slots.size() >= 56);  // Fibonacci hashing: 64 of 64 here; the identity's low bits: 2
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
