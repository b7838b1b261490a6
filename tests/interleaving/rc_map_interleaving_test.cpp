// Deterministic interleavings of rc_map's lock-free steps (TANDEM_TEST_POINT, sync/sync_point.hpp):
// a hook on the thread under test runs another thread's steps exactly inside a window that a
// random stress run almost never hits.
#include <tandem/rc_map.hpp>

#include <atomic>
#include <cstddef>
#include <cstring>
#include <functional>
#include <optional>
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

// The dead entry replaced (issue 17's link hook, rc_map_link_observer): a release that drops the
// count to 0 erases the entry under the shard lock, later (erase_dead); an insertion of the same
// key in between finds the dead entry, unlinks it and links its own. The Hash must hear one
// unlink for the dead entry (the insertion's, not a second one from erase_dead) and one link for
// the new one: event_bus's absent-topic filter counts topics so, and a count one too low drops
// every publish to a live topic of that slot, one too high keeps absent topics' publishes on the
// slow path for ever.
namespace {

struct link_counts {
  std::atomic<int> linked{0};
  std::atomic<int> unlinked{0};
};

struct counting_hash {
  using tandem_rc_map_link_observer = void;
  link_counts* counts = nullptr;
  std::size_t operator()(const std::string& key) const noexcept {
    return std::hash<std::string>{}(key);
  }
  // relaxed: read after join() or on the thread that made the calls.
  void entry_linked(std::size_t /*mixed*/) const noexcept {
    counts->linked.fetch_add(1, std::memory_order_relaxed);
  }
  void entry_unlinked(std::size_t /*mixed*/) const noexcept {
    counts->unlinked.fetch_add(1, std::memory_order_relaxed);
  }
};

struct replace_script {
  std::thread::id under_test;
  std::binary_semaphore insert{0};  // the count is 0, the entry still linked: insert the key
  std::binary_semaphore inserted{0};
};
replace_script* replacing = nullptr;

void replace_hook(const char* name) noexcept {
  replace_script* s = replacing;
  if (s == nullptr || std::this_thread::get_id() != s->under_test) return;
  if (std::strcmp(name, "rc_map erase_dead: before the shard lock") == 0) {
    replacing = nullptr;  // once
    s->insert.release();
    s->inserted.acquire();
  }
}

}  // namespace

TEST_CASE(
    "rc_map: an insertion that replaces a dead entry before its eraser takes the lock is one "
    "unlink and one link for a link-observing Hash") {
  tandem::test::watchdog dog("insertion between the last release and its erase");
  using observed_map = tandem::rc_map<std::string, std::string, counting_hash>;
  const std::string key(40, 'k');
  link_counts counts;
  observed_map map(4, counting_hash{&counts});
  auto last = map.get_or_insert_with(key, [] { return std::string(40, 'v'); });
  // A weak handle sends the last release through erase_dead (release_sole takes the lock at
  // once when no weak handle exists).
  observed_map::weak_handle weak(last);
  REQUIRE(counts.linked.load() == 1);

  replace_script s;
  s.under_test = std::this_thread::get_id();
  replacing = &s;
  tandem::detail::test_point_hook.store(&replace_hook, std::memory_order_release);

  std::optional<observed_map::handle> replacement;
  bool created = false;  // checked on the main thread (no Catch2 assertion off it)
  std::thread other([&] {
    s.insert.acquire();
    auto [h, made] = map.try_emplace(key, std::string(40, 'n'));
    created = made;
    replacement = std::move(h);
    s.inserted.release();
  });
  last.reset();  // count 0: erase_dead, where the hook lets `other` insert first
  other.join();
  tandem::detail::test_point_hook.store(nullptr, std::memory_order_release);

  REQUIRE(replacement.has_value());
  CHECK(created);  // the dead entry was not revived: a new one was built
  CHECK(**replacement == std::string(40, 'n'));
  CHECK(counts.linked.load() == 2);
  CHECK(counts.unlinked.load() == 1);  // the dead one, once: erase_dead found it unlinked
  CHECK(map.size() == 1);
  CHECK_FALSE(weak.lock());  // the weak handle names the dead entry, not the new one
  replacement.reset();
  CHECK(counts.unlinked.load() == 2);
  CHECK(map.size() == 0);
  CHECK(counts.linked.load() == 2);
}
