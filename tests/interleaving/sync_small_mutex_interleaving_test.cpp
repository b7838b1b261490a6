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

void hook(const char* name) noexcept {
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
    "small_mutex: the next holder may destroy the mutex while the previous unlock() has not "
    "returned (POSIX's promise): unlock reads nothing of it after the releasing store") {
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
  mutex->unlock();  // pauses after its store while `next` takes, releases and unmaps the mutex
  next.join();
  tandem::detail::test_point_hook.store(nullptr, std::memory_order_release);
  CHECK(unmapped);
}
