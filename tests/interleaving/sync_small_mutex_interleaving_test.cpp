// Deterministic interleavings of small_mutex (include/tandem/sync/striped_lock.hpp) through its
// TANDEM_TEST_POINT (sync/sync_point.hpp): another thread runs exactly inside unlock(), after
// the releasing store.
#include <tandem/sync/striped_lock.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <new>
#include <semaphore>
#include <thread>

#if TANDEM_CATCH_MAJOR == 3
#include <catch2/catch_test_macros.hpp>
#else
#include <catch2/catch.hpp>
#endif

#include "test_support.hpp"

namespace {

using tandem::sync::small_mutex;

struct script {
  std::thread::id under_test;
  std::binary_semaphore next_holder{0};  // released inside the unlock under test
  std::binary_semaphore destroyed{0};    // the next holder has unmapped the mutex
};
script* current = nullptr;

// Naps of small_mutex sleepers that ended after `unlocked` was raised (the wake-up test below).
std::atomic<bool> unlocked{false};
std::atomic<int> naps_ended{0};
std::atomic<int> naps_ended_after_unlock{0};

void hook(const char* name) noexcept {
  if (std::strcmp(name, "small_mutex lock: a nap ended") == 0) {
    naps_ended.fetch_add(1);
    if (unlocked.load()) naps_ended_after_unlock.fetch_add(1);
    return;
  }
  script* s = current;
  if (s == nullptr || std::this_thread::get_id() != s->under_test) return;
  if (std::strcmp(name, "small_mutex unlock: after the releasing store") == 0) {
    current = nullptr;  // once
    s->next_holder.release();
    s->destroyed.acquire();
  }
}

}  // namespace

TEST_CASE(
    "small_mutex: its next holder may destroy it while an unlock() is still running (POSIX)") {
  tandem::test::watchdog dog("small_mutex destroyed inside another thread's unlock");
  // The mutex lives alone on a page of its own that the next holder unmaps: any read of it
  // after the releasing store is a SIGSEGV in every build, sanitizer or not.
  const auto page_size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* page =
      ::mmap(nullptr, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(page != MAP_FAILED);
  auto* mutex = ::new (page) small_mutex;
  script s;
  s.under_test = std::this_thread::get_id();
  current = &s;
  tandem::detail::test_point_hook.store(&hook, std::memory_order_release);

  bool unmapped = false;  // checked on the main thread
  mutex->lock();
  std::thread next([&] {
    s.next_holder.acquire();  // the word already reads unlocked: the CAS takes it at once
    mutex->lock();
    mutex->unlock();  // the last use: "last one out frees"
    mutex->~small_mutex();
    unmapped = ::munmap(page, page_size) == 0;
    s.destroyed.release();
  });
  // A sleeper of the mutex's slot (counted by hand: none of this mutex's own could be asleep,
  // it would not wake to take it) so that unlock() also takes its wake-up branch, which must
  // pass the address to FUTEX_WAKE and read nothing at it.
  auto& slot = tandem::sync::small_mutex_sleepers.slot_of(mutex);
  slot.fetch_add(1);
  mutex->unlock();  // pauses after its store while `next` takes, releases and unmaps the mutex
  next.join();
  slot.fetch_sub(1);
  tandem::detail::test_point_hook.store(nullptr, std::memory_order_release);
  CHECK(unmapped);
}

TEST_CASE("small_mutex: a thread asleep in lock() is woken by the unlock, not by its nap's end") {
  tandem::test::watchdog dog("small_mutex woken by unlock");
  small_mutex mutex;
  auto& sleepers = tandem::sync::small_mutex_sleepers;
  REQUIRE(sleepers.sleepers_of(&mutex) == 0);
  tandem::detail::test_point_hook.store(&hook, std::memory_order_release);
  unlocked = false;
  naps_ended = 0;
  naps_ended_after_unlock = 0;
  std::atomic<bool> waiter_done{false};
  // Held until the waiter's naps have grown to their longest (1 + 2 + ... + 32 ms ended, the
  // next is 64 ms), so that a nap ending in the short time between the unlock and the waiter's
  // acquisition is unlikely.
  mutex.lock();
  std::thread waiter([&] {
    mutex.lock();
    waiter_done = true;
    mutex.unlock();
  });
  while (naps_ended.load() < 6 || sleepers.sleepers_of(&mutex) == 0) std::this_thread::yield();
  unlocked = true;
  mutex.unlock();
  waiter.join();
  tandem::detail::test_point_hook.store(nullptr, std::memory_order_release);
  CHECK(waiter_done.load());
  CHECK(naps_ended_after_unlock.load() == 0);  // 1: the unlock did not wake it; its nap did
}
