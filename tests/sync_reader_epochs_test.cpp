// Tests for include/tandem/sync/reader_epochs.hpp and include/tandem/sync/asymmetric_fence.hpp.
#include <tandem/sync/asymmetric_fence.hpp>
#include <tandem/sync/reader_epochs.hpp>

#include <algorithm>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "counting_new.hpp"
#include "double_buffer_helpers.hpp"
#include "fence_doubles.hpp"
#include "test_support.hpp"

using tandem::sync::asymmetric_fence;
using tandem::sync::cache_line_size;
using tandem::sync::symmetric_fence;
using epochs = tandem::sync::reader_epochs<>;

TEST_CASE("each reader slot owns whole cache lines: no line is shared between readers") {
  STATIC_REQUIRE(alignof(epochs::slot) == cache_line_size);
  STATIC_REQUIRE(sizeof(epochs::slot) % cache_line_size == 0);
  epochs registry;
  std::vector<epochs::slot*> slots;
  for (int i = 0; i < 40; ++i) slots.push_back(&registry.claim());  // spans three chunks
  std::set<std::uintptr_t> lines;
  for (auto* s : slots) {
    const auto address = reinterpret_cast<std::uintptr_t>(s);
    CHECK(address % cache_line_size == 0);
    lines.insert(address / cache_line_size);
  }
  CHECK(lines.size() == slots.size());
  for (auto* s : slots) registry.release(*s);
}

TEST_CASE("enter and leave change only the reader's own epoch and never allocate") {
  epochs registry;
  auto& mine = registry.claim();
  auto& other = registry.claim();
  const auto other_before = other->epoch.load();
  tandem::test::allocation_scope allocations;
  for (int i = 0; i < 1000; ++i) {
    epochs::enter(mine);
    CHECK(epochs::inside(mine));
    registry.leave(mine);
    CHECK_FALSE(epochs::inside(mine));
  }
  CHECK(allocations.count() == 0);
  CHECK(mine->epoch.load() == 4000);  // +1 on enter, +3 on leave: bit 1 never changes
  CHECK(other->epoch.load() == other_before);
  registry.release(mine);
  registry.release(other);
}

TEST_CASE("released slots are reused: a million create/destroy cycles do not grow memory") {
  epochs registry;
  auto& held = registry.claim();  // one long-lived reader next to the churn
  const std::size_t capacity = registry.capacity();
  tandem::test::allocation_scope allocations;
  for (int i = 0; i < 1'000'000; ++i) {
    auto& s = registry.claim();
    epochs::enter(s);
    registry.leave(s);
    registry.release(s);
  }
  CHECK(allocations.count() == 0);
  CHECK(registry.capacity() == capacity);
  registry.release(held);
}

TEST_CASE("slots are claimed by concurrent threads without duplicates") {
  tandem::test::watchdog dog("concurrent claims");
  epochs registry;
  constexpr std::size_t threads = 4;
  constexpr std::size_t per_thread = 50;
  std::vector<std::vector<epochs::slot*>> claimed(threads);
  tandem::test::run_threads(threads, [&](std::size_t t) {
    for (std::size_t i = 0; i < per_thread; ++i) claimed[t].push_back(&registry.claim());
  });
  std::set<epochs::slot*> all;
  for (auto& v : claimed) all.insert(v.begin(), v.end());
  CHECK(all.size() == threads * per_thread);
  for (auto* s : all) registry.release(*s);
}

TEST_CASE("the writer records exactly the readers inside and sees them leave") {
  epochs registry;
  auto& inside = registry.claim();
  auto& outside = registry.claim();
  epochs::enter(inside);
  registry.record_readers_inside();
  CHECK(registry.recorded_count() == 1);
  CHECK_FALSE(registry.recorded_readers_left());
  // A reader entering after the record is not waited for.
  epochs::enter(outside);
  CHECK_FALSE(registry.recorded_readers_left());
  CHECK(registry.recorded_count() == 1);
  registry.leave(inside);
  CHECK(registry.recorded_readers_left());
  registry.wait_for_recorded_readers();  // nothing left: returns at once
  registry.leave(outside);
  registry.release(inside);
  registry.release(outside);
}

TEST_CASE("recording the readers inside never allocates, however many are inside") {
  epochs registry;
  std::vector<epochs::slot*> slots;
  for (int i = 0; i < 40; ++i) slots.push_back(&registry.claim());  // three chunks
  for (auto* s : slots) epochs::enter(*s);
  {
    tandem::test::allocation_scope allocations;
    registry.record_readers_inside();  // noexcept: callable after a commit point
    CHECK(allocations.count() == 0);
  }
  STATIC_REQUIRE(noexcept(registry.record_readers_inside()));
  CHECK(registry.recorded_count() == 40);
  for (std::size_t i = 0; i < slots.size(); i += 2) registry.leave(*slots[i]);
  CHECK_FALSE(registry.recorded_readers_left());
  CHECK(registry.recorded_count() == 20);
  for (std::size_t i = 1; i < slots.size(); i += 2) registry.leave(*slots[i]);
  CHECK(registry.recorded_readers_left());
  CHECK(registry.recorded_count() == 0);
  // A new record replaces the old one completely.
  epochs::enter(*slots[3]);
  registry.record_readers_inside();
  CHECK(registry.recorded_count() == 1);
  registry.leave(*slots[3]);
  registry.wait_for_recorded_readers();
  CHECK(registry.recorded_count() == 0);
  for (auto* s : slots) registry.release(*s);
}

TEST_CASE("a slot records the thread inside it, and forgets it on leave") {
  epochs registry;
  auto& s = registry.claim();
  CHECK_FALSE(epochs::opened_by_this_thread(s));
  epochs::enter(s);
  CHECK(epochs::opened_by_this_thread(s));
  std::thread other([&] { CHECK_FALSE(epochs::opened_by_this_thread(s)); });
  other.join();
  registry.leave(s);
  CHECK_FALSE(epochs::opened_by_this_thread(s));
  CHECK(epochs::try_enter(s));  // the fast path records the thread too
  CHECK(epochs::opened_by_this_thread(s));
  registry.leave(s);
  registry.release(s);
}

TEST_CASE("thread serials are never 0, stable within a thread, and never reused after it exits") {
  // std::thread::id and the thread pointer are both reused by glibc for the next thread it
  // starts once one has exited (rule 30): threads started one after another would collide.
  const std::uint64_t mine = tandem::detail::thread_serial();
  CHECK(mine != 0);
  CHECK(tandem::detail::thread_serial() == mine);
  std::vector<std::uint64_t> seen{mine};
  for (int i = 0; i < 16; ++i) {
    std::uint64_t serial = 0;
    std::uint64_t again = 0;
    std::thread([&] {
      serial = tandem::detail::thread_serial();
      again = tandem::detail::thread_serial();
    }).join();  // exits before the next one starts: its id and stack are free for reuse
    CHECK(serial != 0);
    CHECK(again == serial);
    seen.push_back(serial);
  }
  std::sort(seen.begin(), seen.end());
  CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
}

TEST_CASE("try_enter refuses nested sections and the detached slot, changing nothing") {
  epochs registry;
  auto& s = registry.claim();
  REQUIRE(epochs::try_enter(s));
  const auto inside_epoch = s->epoch.load();
  CHECK_FALSE(epochs::try_enter(s));  // already inside
  CHECK(s->epoch.load() == inside_epoch);
  epochs::enter_nested(s);
  registry.leave(s);  // ends the nested section only
  CHECK(epochs::inside(s));
  registry.leave(s);
  CHECK_FALSE(epochs::inside(s));
  auto& detached = epochs::detached();
  const auto detached_epoch = detached->epoch.load();
  CHECK_FALSE(epochs::try_enter(detached));
  CHECK(detached->epoch.load() == detached_epoch);
  registry.release(s);
}

namespace {
using tandem::test::counting_fence;
using tandem::test::unprepared_asymmetric_fence;
}  // namespace

TEST_CASE("recording with no claimed reader slot issues no heavy fence") {
  using registry_type = tandem::sync::reader_epochs<counting_fence>;
  registry_type registry;
  counting_fence::heavy_calls.store(0);
  registry.record_readers_inside();
  CHECK(registry.heavy_fences() == 0);
  auto& s = registry.claim();  // an idle reader: it could enter at any time
  registry.record_readers_inside();
  CHECK(registry.heavy_fences() == 1);
  registry.release(s);
  registry.record_readers_inside();  // its reader is gone again
  CHECK(registry.heavy_fences() == 1);
#if !TANDEM_TSAN
  CHECK(counting_fence::heavy_calls.load() == 1);
#endif
}

TEST_CASE("acknowledgments: a slot that acknowledged a generation needs no record for it") {
  using registry_type = tandem::sync::reader_epochs<counting_fence>;
  registry_type registry;
  CHECK_FALSE(registry.readers_may_be_inside());  // nothing claimed
  CHECK(registry.acknowledged_since(7));          // vacuously: no claimed slot
  auto& a = registry.claim();
  auto& b = registry.claim();
  CHECK(registry.readers_may_be_inside());
  CHECK_FALSE(registry.acknowledged_since(1));  // fresh slots acknowledged nothing (0)
  registry_type::acknowledge(a, 1);
  CHECK_FALSE(registry.acknowledged_since(1));  // b has not
  registry_type::acknowledge(b, 2);
  CHECK(registry.acknowledged_since(1));
  CHECK_FALSE(registry.acknowledged_since(2));  // a acknowledged only 1
  // Recording leaves out the slots that acknowledged the generation: they are past it.
  REQUIRE(registry_type::try_enter(a));
  REQUIRE(registry_type::try_enter(b));
  counting_fence::heavy_calls.store(0);
  registry.record_readers_inside(2);  // a (acknowledged 1) may be in the old version
  CHECK(registry.recorded_count() == 1);
  CHECK_FALSE(registry.recorded_readers_left());
  registry.leave(a);
  CHECK(registry.recorded_readers_left());
  registry.record_readers_inside(1);  // both past generation 1: nothing to record
  CHECK(registry.recorded_count() == 0);
  registry.record_readers_inside();  // the default records every reader inside
  CHECK(registry.recorded_count() == 1);
  registry.leave(b);
  CHECK(registry.recorded_readers_left());
#if !TANDEM_TSAN
  CHECK(counting_fence::heavy_calls.load() == 3);  // acknowledgments cost no heavy fence
#endif
  // A released slot counts as past every generation (it has no reader); a reader that claims
  // it later inherits its acknowledgment, which is sound: it claimed after that reader's
  // acknowledgment, so it loads that version or a newer one.
  registry.release(a);
  CHECK(registry.acknowledged_since(2));
  auto& again = registry.claim();
  CHECK(&again == &a);
  CHECK(registry.acknowledged_since(1));
  CHECK_FALSE(registry.acknowledged_since(2));
  registry.release(again);
  registry.release(b);
}

TEST_CASE("acknowledged_since is false for an idle reader and for one holding an old section") {
  tandem::test::watchdog dog("acknowledged_since idle");
  epochs registry;
  auto& idle = registry.claim();  // never enters: only the heavy fence can answer for it
  for (int i = 0; i < 3; ++i) CHECK_FALSE(registry.acknowledged_since(1));
  REQUIRE(epochs::try_enter(idle));  // a section open across publishes: epoch odd, standing
  for (int i = 0; i < 3; ++i) CHECK_FALSE(registry.acknowledged_since(1));
  epochs::acknowledge(idle, 1);  // inside, it moved on to generation 1 (double_buffer's step 2)
  CHECK(registry.acknowledged_since(1));
  registry.leave(idle);
  registry.release(idle);
}

TEST_CASE("without membarrier, readers take the fenced path and still exclude the writer") {
  tandem::test::watchdog dog("fenced mode");
  using registry_type = tandem::sync::reader_epochs<unprepared_asymmetric_fence>;
  unprepared_asymmetric_fence::prepared_light_calls.store(0);
  registry_type registry;
  auto& s = registry.claim();
#if TANDEM_TSAN
  // TSan builds use seq_cst operations instead of fences: there is no fenced mode.
  CHECK_FALSE(registry.fenced());
  REQUIRE(registry_type::try_enter(s));
#else
  CHECK(registry.fenced());
  CHECK_FALSE(registry_type::try_enter(s));  // fenced mode: always the slow path
  registry_type::enter(s);
#endif
  CHECK(registry_type::inside(s));
  registry.record_readers_inside();
  CHECK(registry.recorded_count() == 1);
  std::thread writer([&] { registry.wait_for_recorded_readers(); });
  while (!registry.writer_is_waiting()) std::this_thread::yield();
  registry.leave(s);  // must wake the blocked writer through the fenced path
  writer.join();
  CHECK(registry.recorded_count() == 0);
  CHECK_FALSE(registry_type::inside(s));
  CHECK(unprepared_asymmetric_fence::prepared_light_calls.load() == 0);
  registry.release(s);
}

TEST_CASE("waiting for a read section the waiting thread opened throws, forgetting nothing") {
  tandem::test::watchdog dog("self wait");
  epochs registry;
  auto& mine = registry.claim();
  auto& other = registry.claim();
  epochs::enter(mine);
  std::latch other_inside(1);
  std::latch other_may_leave(1);
  std::thread other_thread([&] {
    epochs::enter(other);
    other_inside.count_down();
    other_may_leave.wait();
    registry.leave(other);
  });
  other_inside.wait();
  registry.record_readers_inside();
  REQUIRE(registry.recorded_count() == 2);
  CHECK(registry.recorded_reader_held_by_this_thread());
  try {
    registry.wait_for_recorded_readers("custom message");
    FAIL("the wait should have thrown");
  } catch (const std::logic_error& e) {
    CHECK(std::string(e.what()) == "custom message");
  }
  CHECK(registry.recorded_count() == 2);  // nobody waited for, nobody forgotten
  CHECK_THROWS_AS(registry.wait_for_recorded_readers(), std::logic_error);
  registry.leave(mine);
  CHECK_FALSE(registry.recorded_reader_held_by_this_thread());
  other_may_leave.count_down();
  registry.wait_for_recorded_readers();  // waits for the other thread only
  CHECK(registry.recorded_count() == 0);
  other_thread.join();
  registry.release(mine);
  registry.release(other);
}

TEST_CASE("a section another thread opened is never mistaken for the waiter's own") {
  tandem::test::watchdog dog("owner is exact");
  epochs registry;
  auto& s = registry.claim();
  // This thread used the slot before: it wrote the owner and left (no clear on leave).
  epochs::enter(s);
  registry.leave(s);
  std::latch inside(1);
  std::latch may_leave(1);
  std::thread other([&] {
    epochs::enter(s);
    inside.count_down();
    may_leave.wait();
    registry.leave(s);
  });
  inside.wait();
  registry.record_readers_inside();
  CHECK_FALSE(registry.recorded_reader_held_by_this_thread());
  may_leave.count_down();
  registry.wait_for_recorded_readers();  // no throw: it only waits
  other.join();
  registry.release(s);
}

TEST_CASE("a reader that leaves and re-enters releases the waiting writer") {
  epochs registry;
  auto& s = registry.claim();
  epochs::enter(s);
  registry.record_readers_inside();
  registry.leave(s);
  epochs::enter(s);  // inside again, but in a newer read section
  CHECK(registry.recorded_readers_left());
  registry.leave(s);
  registry.release(s);
}

TEST_CASE("a blocked writer sleeps in atomic wait and the last straggler wakes it") {
  tandem::test::watchdog dog("writer wake-up");
  epochs registry;
  auto& first = registry.claim();
  auto& straggler = registry.claim();
  epochs::enter(first);
  epochs::enter(straggler);
  registry.record_readers_inside();

  std::atomic<bool> done{false};
  std::chrono::nanoseconds writer_cpu{};
  std::thread writer([&] {
    const auto start = tandem::test::thread_cpu_time();
    registry.wait_for_recorded_readers();
    writer_cpu = tandem::test::thread_cpu_time() - start;
    done.store(true);
  });
  registry.leave(first);
  // The writer passes `first`, then blocks on the straggler (spin and yield exhausted).
  while (!registry.writer_is_waiting()) std::this_thread::yield();
  // A measurement window, not synchronisation: a writer that spun instead of sleeping would
  // burn this whole window of CPU time.
  const auto window = std::chrono::milliseconds(200);
  std::this_thread::sleep_for(window);
  CHECK_FALSE(done.load());
  registry.leave(straggler);  // must notify: a lost wake-up would trip the watchdog
  writer.join();
  CHECK(done.load());
  CHECK(writer_cpu < window / 4);
  CHECK_FALSE(registry.writer_is_waiting());
  registry.release(first);
  registry.release(straggler);
}

TEST_CASE("claiming slots while the writer waits never deadlocks") {
  tandem::test::watchdog dog("claim while the writer waits");
  epochs registry;
  auto& straggler = registry.claim();
  epochs::enter(straggler);
  registry.record_readers_inside();
  std::thread writer([&] { registry.wait_for_recorded_readers(); });
  while (!registry.writer_is_waiting()) std::this_thread::yield();
  std::vector<epochs::slot*> fresh;
  for (int i = 0; i < 100; ++i) {  // more than one chunk: links new chunks meanwhile
    auto& s = registry.claim();
    epochs::enter(s);
    registry.leave(s);
    fresh.push_back(&s);
  }
  registry.leave(straggler);
  writer.join();
  for (auto* s : fresh) registry.release(*s);
  registry.release(straggler);
}

TEST_CASE("leave() wakes the writer in a tight race (lost wake-up stress)") {
  tandem::test::watchdog dog("wake-up race");
  epochs registry;
  auto& s = registry.claim();
  tandem::test::op_budget budget(3000, std::chrono::milliseconds(1500));
  std::atomic<int> round{0};
  std::atomic<int> recorded_round{0};
  std::thread reader([&] {
    for (int r = 1;; ++r) {
      epochs::enter(s);
      round.store(r);
      tandem::sync::atomic_notify_one(round);
      // Leave once the writer recorded us (it then races between spinning and blocking).
      tandem::sync::wait_until(recorded_round, [r](int v) { return v >= r || v < 0; });
      const bool stop = recorded_round.load() < 0;
      registry.leave(s);
      if (stop) return;
    }
  });
  for (int r = 1; budget.next(); ++r) {
    tandem::sync::wait_until(round, [r](int v) { return v >= r; });
    registry.record_readers_inside();
    REQUIRE(registry.recorded_count() == 1);
    recorded_round.store(r);
    tandem::sync::atomic_notify_one(recorded_round);
    registry.wait_for_recorded_readers();
  }
  recorded_round.store(-1);
  tandem::sync::atomic_notify_one(recorded_round);
  reader.join();
  registry.release(s);
}

// The handshake itself: a reader that pinned, then loaded the pointer, must never read an
// object the writer has since retired and is rewriting.
template <class Fence>
void check_readers_never_see_a_retired_object() {
  tandem::test::watchdog dog("epoch handshake stress");
  struct object {
    std::atomic<int> state{0};  // 0 = live, 1 = being rewritten by the writer
    int payload = 0;            // plain data: TSan reports a race if the protocol is wrong
  };
  object objects[2];
  std::atomic<object*> current{&objects[0]};
  using registry_type = tandem::sync::reader_epochs<Fence>;
  registry_type registry;
  std::atomic<bool> stop{false};
  std::atomic<long> violations{0};
  std::atomic<long> reads{0};
  tandem::test::op_budget budget(20'000, std::chrono::milliseconds(1500));

  std::thread reader_thread([&] {
    auto& s = registry.claim();
    while (!stop.load(std::memory_order_relaxed)) {
      registry_type::enter(s);
      object* o = current.load(registry_type::pinned_load_order);
      if (o->state.load(std::memory_order_relaxed) != 0) violations.fetch_add(1);
      const int seen = o->payload;
      if (o->state.load(std::memory_order_relaxed) != 0) violations.fetch_add(1);
      registry.leave(s);
      if (seen < 0) violations.fetch_add(1);
      reads.fetch_add(1, std::memory_order_relaxed);
    }
    registry.release(s);
  });
  int next = 1;
  // Overlap for sure: keep swapping until the reader has done some reads too.
  while (budget.next() || reads.load(std::memory_order_relaxed) < 10'000) {
    object* retired = current.load();
    current.store(&objects[next], registry_type::unpin_publish_order);
    next ^= 1;
    registry.record_readers_inside();
    registry.wait_for_recorded_readers();
    retired->state.store(1, std::memory_order_relaxed);
    retired->payload += 1;  // rewrite while no reader may look
    retired->state.store(0, std::memory_order_relaxed);
  }
  stop.store(true);
  reader_thread.join();
  CHECK(violations.load() == 0);
  CHECK(reads.load() > 0);
}

TEST_CASE("readers never see an object the writer retired (asymmetric fence)") {
  check_readers_never_see_a_retired_object<asymmetric_fence>();
}

TEST_CASE("readers never see an object the writer retired (portable fence)") {
  check_readers_never_see_a_retired_object<symmetric_fence>();
}

TEST_CASE("readers never see an object the writer retired (fenced mode: no membarrier)") {
  check_readers_never_see_a_retired_object<unprepared_asymmetric_fence>();
  CHECK(unprepared_asymmetric_fence::prepared_light_calls.load() == 0);
}

TEST_CASE("asymmetric_fence reports whether membarrier is in use and both halves run") {
  const bool expedited = asymmetric_fence::expedited();
  asymmetric_fence::light();
  asymmetric_fence::heavy();
  CHECK(asymmetric_fence::prepare() == expedited);
  CHECK_FALSE(symmetric_fence::expedited());
#if TANDEM_TSAN
  CHECK_FALSE(expedited);  // TSan builds use seq_cst operations, not membarrier
#endif
  WARN("membarrier(PRIVATE_EXPEDITED) in use: " << (expedited ? "yes" : "no"));
}

// Store-buffering litmus test of the fence pair itself: "x = 1; light(); r1 = y" against
// "y = 1; heavy(); r2 = x" must never end with r1 == 0 && r2 == 0. The heavy side starts
// after a varying delay so that the two windows overlap in many different ways.
//
// Each side waits for the other by spinning on every pause, so that it reacts at once and the
// windows overlap as the delay intends (a backoff that pauses in growing bursts, tried on
// 2026-12-02, let 2 of 60 runs with no fence at all see no violation; this wait: 0 of 60, as
// many violations as bare spinning). Only a wait that has lasted 2^12 pauses (the other side is
// not running) yields: with bare spinning, two of these tests run at once (ctest -j2 under ASan)
// kept four spinning threads on two cores, and each of the 4,000 hand-overs waited for a time
// slice (32 s per test; pinned to one core, 32 s before and 1.1 s with this wait).
inline void wait_for_round(const std::atomic<int>& flag, int round) {
  for (std::uint32_t spins = 0; flag.load(std::memory_order_acquire) != round; ++spins) {
    if (spins < (1U << 12)) {
      tandem::detail::cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
}

template <class Fence>
long store_buffering_violations() {
  tandem::test::watchdog dog("store-buffering litmus");
  constexpr int rounds = 4'000;
  std::atomic<int> x{0};
  std::atomic<int> y{0};
  std::atomic<int> go{0};
  std::atomic<int> done{0};
  std::atomic<int> light_result{0};
  Fence::prepare();
  std::thread light_side([&] {
    for (int i = 1; i <= rounds; ++i) {
      wait_for_round(go, i);  // acquire: pairs with the release below
      // relaxed: the litmus is about what the fence pair orders, nothing else may help.
      x.store(1, std::memory_order_relaxed);
      Fence::light();
      light_result.store(y.load(std::memory_order_relaxed), std::memory_order_relaxed);
      done.store(i, std::memory_order_release);  // pairs with the acquire below
    }
  });
  long violations = 0;
  for (int i = 1; i <= rounds; ++i) {
    x.store(0, std::memory_order_relaxed);
    y.store(0, std::memory_order_relaxed);
    go.store(i, std::memory_order_release);  // pairs with the light side's acquire
    for (int d = 0; d < (i * 7) % 64; ++d) tandem::detail::cpu_relax();
    y.store(1, std::memory_order_relaxed);
    Fence::heavy();
    const int heavy_result = x.load(std::memory_order_relaxed);
    wait_for_round(done, i);  // acquire: pairs with the light side's release
    if (heavy_result == 0 && light_result.load(std::memory_order_relaxed) == 0) ++violations;
  }
  light_side.join();
  return violations;
}

TEST_CASE("the asymmetric fence pair forbids the store-buffering outcome") {
  CHECK(store_buffering_violations<asymmetric_fence>() == 0);
}

TEST_CASE("the portable fence pair forbids the store-buffering outcome") {
  CHECK(store_buffering_violations<symmetric_fence>() == 0);
}
