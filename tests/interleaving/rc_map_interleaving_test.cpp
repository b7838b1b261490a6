// Deterministic interleavings of rc_map's lock-free steps (TANDEM_TEST_POINT, sync/sync_point.hpp):
// a hook on the thread under test runs another thread's steps exactly inside a window that a
// random stress run almost never hits.
#include <tandem/rc_map.hpp>

#include <cstring>
#include <semaphore>
#include <string>
#include <thread>

#if TANDEM_CATCH_MAJOR == 3
#include <catch2/catch_test_macros.hpp>
#else
#include <catch2/catch.hpp>
#endif

#include "test_support.hpp"

namespace {

using map_type = tandem::rc_map<std::string, std::string>;

// The steps another thread runs inside the windows of the thread under test.
struct script {
  std::thread::id under_test;
  std::binary_semaphore step_1{0};  // before the shard lock: take a second handle
  std::binary_semaphore step_1_done{0};
  std::binary_semaphore step_2{0};  // between the two counts: weak handle from it, drop it
  std::binary_semaphore step_2_done{0};
};
script* current = nullptr;

void hook(const char* name) noexcept {
  script* s = current;
  if (s == nullptr || std::this_thread::get_id() != s->under_test) return;
  if (std::strcmp(name, "rc_map release_sole: before the shard lock") == 0) {
    s->step_1.release();
    s->step_1_done.acquire();
  } else if (std::strcmp(name, "rc_map drop_sole_locked: between the weak and use counts") == 0) {
    s->step_2.release();
    s->step_2_done.acquire();
    current = nullptr;  // once
  }
}

}  // namespace

TEST_CASE(
    "rc_map: a weak handle made from another handle, which is then dropped, while the last "
    "handle is released keeps the entry's memory (no use-after-free, no other entry)") {
  tandem::test::watchdog dog("weak handle made between the last release's two counts");
  const std::string key(40, 'k');
  const std::string value(40, 'v');
  map_type map;
  auto last = map.get_or_insert_with(key, [&] { return value; });
  script s;
  s.under_test = std::this_thread::get_id();
  current = &s;
  tandem::detail::test_point_hook.store(&hook, std::memory_order_release);

  map_type::weak_handle weak;
  bool got_second = false;  // checked on the main thread (no Catch2 assertion off it)
  std::thread other([&] {
    s.step_1.acquire();
    auto second = map.get(key);  // before the releasing thread takes the shard lock
    got_second = second.has_value();
    s.step_1_done.release();
    s.step_2.acquire();
    if (second) weak = *second;  // no lock needed: a handle makes a weak handle
    second.reset();              // nor to drop a handle that is not the last
    s.step_2_done.release();
  });
  last.reset();  // the last handle: the entry goes
  other.join();
  tandem::detail::test_point_hook.store(nullptr, std::memory_order_release);
  REQUIRE(got_second);

  CHECK_FALSE(map.contains(key));
  // The releasing thread builds another entry (reusing freed memory, if the old node was
  // freed): the weak handle must still refer to the dead entry, not to this one.
  const std::string other_key(40, 'o');
  auto fresh = map.get_or_insert_with(other_key, [&] { return std::string(40, 'n'); });
  const auto revived = weak.lock();
  CHECK_FALSE(revived);
  if (revived) CHECK(*revived != std::string(40, 'n'));  // it locked the other entry
  weak.reset();
  CHECK(*fresh == std::string(40, 'n'));
  CHECK(map.size() == 1);
}
