// Tests for rc_map's linger option, visit() and weak_handle (issue 16, items 5 and 6).
//
// Time is a manual clock (rc_map's Clock parameter): tests advance it by hand, so they are
// deterministic and never sleep. Values count their constructions and destructions per key, so
// "no make on a revival" and "destroyed exactly once" are checked, not assumed. Keys and values
// are heap-owning strings (longer than any small-string buffer).
#include <tandem/rc_map.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "counting_new.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;

using tandem::test::manual_clock;  // moves only when a test says so

std::string long_key(std::string_view name) {
  return std::string(name) + "-a-tenant-name-longer-than-any-small-string-buffer";
}

// Counts constructions and destructions per key; `alive` catches a use after destruction.
struct counts {
  std::mutex mutex;
  std::map<std::string, int> built;
  std::map<std::string, int> destroyed;
  void reset() {
    std::lock_guard<std::mutex> guard(mutex);
    built.clear();
    destroyed.clear();
  }
  int built_of(const std::string& k) {
    std::lock_guard<std::mutex> guard(mutex);
    return built[k];
  }
  int destroyed_of(const std::string& k) {
    std::lock_guard<std::mutex> guard(mutex);
    return destroyed[k];
  }
};
counts tally;

struct pool;
using pool_map = tandem::rc_map<std::string, pool, tandem::default_hash<std::string>,
                                tandem::default_key_equal<std::string>, manual_clock>;

// A pretend connection pool. Its destructor may use the map it lived in (`on_destroy`): if the
// map destroyed values under a shard lock, that would deadlock (one shard) and the watchdog fails.
struct pool {
  explicit pool(std::string k) : key(std::move(k)), payload("pool-of-" + key) {
    std::lock_guard<std::mutex> guard(tally.mutex);
    ++tally.built[key];
  }
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;
  ~pool() {
    if (on_destroy) on_destroy();
    alive = false;
    std::lock_guard<std::mutex> guard(tally.mutex);
    ++tally.destroyed[key];
  }
  std::string key;
  std::string payload;
  bool alive = true;
  std::function<void()> on_destroy;
};

tandem::rc_map_options linger_for(std::chrono::nanoseconds t,
                                  std::size_t max = std::numeric_limits<std::size_t>::max()) {
  return tandem::rc_map_options{.linger = t, .max_lingering = max};
}

pool_map::handle open(pool_map& map, const std::string& k, int* makes = nullptr) {
  return map.get_or_insert_with(k, [&] {
    if (makes != nullptr) ++*makes;
    return pool(k);
  });
}

}  // namespace

// ---- linger ---------------------------------------------------------------------------------

TEST_CASE(
    "linger: an entry stays after its last handle, and a lookup within the idle time revives the "
    "same value without make") {
  tally.reset();
  pool_map map(4, linger_for(30s));
  const std::string k = long_key("alpha");
  int makes = 0;
  const pool* first = nullptr;
  {
    auto h = open(map, k, &makes);
    first = &*h;
  }
  CHECK(makes == 1);
  CHECK(tally.destroyed_of(k) == 0);  // not erased: it lingers
  CHECK(map.size() == 1);
  CHECK(map.lingering_count() == 1);
  CHECK(map.contains(k));
  CHECK(map.use_count(k) == 0);

  manual_clock::advance(29s);
  {
    auto h = open(map, k, &makes);  // get_or_insert_with revives
    CHECK(&*h == first);
    CHECK(h.use_count() == 1);
    CHECK(map.lingering_count() == 0);
  }
  manual_clock::advance(29s);  // 58 s after the first release, 29 s after the second
  {
    auto h = map.get(k);  // get revives
    REQUIRE(h.has_value());
    CHECK(&**h == first);
  }
  manual_clock::advance(29s);
  {
    auto [h, inserted] = map.try_emplace(k, k);  // try_emplace finds it: no V built
    CHECK_FALSE(inserted);
    CHECK(&*h == first);
  }
  manual_clock::advance(29s);
  {
    auto [h, inserted] = map.insert(k, std::string("unused-argument-pool-key-long-enough"));
    CHECK_FALSE(inserted);
    CHECK(&*h == first);
  }
  CHECK(makes == 1);
  CHECK(tally.built_of(k) == 1);
  CHECK(tally.destroyed_of(k) == 0);
}

TEST_CASE(
    "linger: after the idle time the next operation erases the entry, destroying V once with no "
    "map lock held") {
  tally.reset();
  tandem::test::watchdog dog("linger erase outside the lock", 20s);
  pool_map map(1, linger_for(10s));  // one shard: a destructor under a lock would self-deadlock
  const std::string k = long_key("beta");
  const std::string other = long_key("other");
  bool destructor_used_map = false;
  {
    auto h = open(map, k);
    h->on_destroy = [&] {
      // Uses the map from V's destructor: a lookup of another key on the same (only) shard.
      destructor_used_map = !map.get(other).has_value() && map.size() == 0;
    };
  }
  manual_clock::advance(10s);  // deadline reached: expired, but nothing runs by itself
  CHECK(tally.destroyed_of(k) == 0);
  CHECK(map.size() == 1);
  CHECK_FALSE(map.contains(k));  // expired: a lookup would not revive it
  CHECK(map.lingering_count() == 1);

  CHECK_FALSE(map.get(other).has_value());  // the next operation collects it
  CHECK(tally.destroyed_of(k) == 1);
  CHECK(destructor_used_map);
  CHECK(map.size() == 0);
  CHECK(map.lingering_count() == 0);
  CHECK(map.collect() == 0);
  CHECK(tally.destroyed_of(k) == 1);  // exactly once
}

TEST_CASE("linger: collect() erases exactly the expired entries") {
  tally.reset();
  pool_map map(4, linger_for(10s));
  const std::string a = long_key("collect-a");
  const std::string b = long_key("collect-b");
  static_cast<void>(open(map, a));
  manual_clock::advance(5s);
  static_cast<void>(open(map, b));
  manual_clock::advance(6s);  // a: 11 s idle, b: 6 s
  CHECK(map.collect() == 1);
  CHECK(tally.destroyed_of(a) == 1);
  CHECK(tally.destroyed_of(b) == 0);
  CHECK(map.contains(b));
  manual_clock::advance(4s);
  CHECK(map.collect() == 1);
  CHECK(tally.destroyed_of(b) == 1);
  CHECK(map.empty());
}

TEST_CASE(
    "linger: a lookup after the deadline never revives the expired entry: it is erased and make "
    "builds anew") {
  tally.reset();
  pool_map map(4, linger_for(10s));
  const std::vector<std::string> keys{long_key("exp-0"), long_key("exp-1"), long_key("exp-2"),
                                      long_key("exp-3")};
  const pool* old_last = nullptr;
  for (const auto& k : keys) {
    auto h = open(map, k);
    if (k == keys.back()) old_last = &*h;
  }
  manual_clock::advance(11s);  // all four expired; an operation erases only 2 before its work
  int makes = 0;
  auto h = open(map, keys.back(), &makes);  // the newest: still on the list when it is found
  CHECK(makes == 1);
  CHECK(tally.built_of(keys.back()) == 2);
  CHECK(tally.destroyed_of(keys.back()) == 1);  // the expired value, erased by the lookup
  CHECK(h->alive);
  static_cast<void>(old_last);
  CHECK(map.collect() == 1);  // the fourth one
  for (std::size_t i = 0; i + 1 < keys.size(); ++i) CHECK(tally.destroyed_of(keys[i]) == 1);
}

TEST_CASE("linger: at most max_lingering entries linger, beyond it the oldest is erased at once") {
  tally.reset();
  pool_map map(8, linger_for(1h, 2));
  const std::string a = long_key("bound-a");
  const std::string b = long_key("bound-b");
  const std::string c = long_key("bound-c");
  static_cast<void>(open(map, a));
  static_cast<void>(open(map, b));
  CHECK(map.lingering_count() == 2);
  CHECK(tally.destroyed_of(a) == 0);
  static_cast<void>(open(map, c));  // a third lingering entry: the oldest (a) goes now
  CHECK(map.lingering_count() == 2);
  CHECK(tally.destroyed_of(a) == 1);
  CHECK_FALSE(map.contains(a));
  CHECK(map.contains(b));
  CHECK(map.contains(c));
  // A revival frees a place; the bound counts lingering entries only, never live ones.
  std::vector<pool_map::handle> live;
  for (int i = 0; i < 5; ++i) live.push_back(open(map, long_key("live-" + std::to_string(i))));
  CHECK(map.lingering_count() == 2);
  live.clear();  // five more linger: each pushes out the oldest
  CHECK(map.lingering_count() == 2);
  CHECK(tally.destroyed_of(b) == 1);
  CHECK(tally.destroyed_of(c) == 1);
  CHECK(map.size() == 2);
}

// Rule 28: a node whose value was never built is no entry. Before the fix the failed build's
// node lingered: it counted in size(), took a place of max_lingering and pushed out an entry
// that was really in use.
TEST_CASE("linger: a make that throws leaves nothing lingering and evicts no lingering entry") {
  tally.reset();
  pool_map map(4, linger_for(1h, 2));
  const std::string kept = long_key("kept");
  static_cast<void>(open(map, kept));  // lingers: one place of two
  REQUIRE(map.lingering_count() == 1);
  for (int i = 0; i < 3; ++i) {
    const std::string refused = long_key("refused-" + std::to_string(i));
    CHECK_THROWS_AS(
        map.get_or_insert_with(refused, []() -> pool { throw std::runtime_error("no pool"); }),
        std::runtime_error);
    CHECK_FALSE(map.contains(refused));
    CHECK_FALSE(map.get(refused).has_value());
  }
  CHECK(map.size() == 1);
  CHECK(map.lingering_count() == 1);
  CHECK(tally.destroyed_of(kept) == 0);
  int makes = 0;
  static_cast<void>(open(map, kept, &makes));
  CHECK(makes == 0);  // revived, not rebuilt
  CHECK(tally.built_of(kept) == 1);
}

TEST_CASE("linger: a revived entry lingers again from its new last release") {
  tally.reset();
  pool_map map(4, linger_for(10s));
  const std::string k = long_key("again");
  static_cast<void>(open(map, k));
  manual_clock::advance(8s);
  static_cast<void>(open(map, k));  // revived and released: a new 10 s start now
  manual_clock::advance(8s);        // 16 s after the first release, 8 s after the second
  CHECK(map.collect() == 0);
  CHECK(map.contains(k));
  manual_clock::advance(2s);
  CHECK(map.collect() == 1);
  CHECK(tally.built_of(k) == 1);
  CHECK(tally.destroyed_of(k) == 1);
}

TEST_CASE("linger: destroying the map destroys lingering values, held handles still outlive it") {
  tally.reset();
  const std::string held_key = long_key("held");
  const std::string idle_key = long_key("idle");
  pool_map::handle held;
  pool_map::weak_handle weak_idle;
  {
    pool_map map(4, linger_for(1h));
    held = open(map, held_key);
    auto idle = open(map, idle_key);
    weak_idle = idle;
  }  // idle lingered; ~rc_map erases it
  CHECK(tally.destroyed_of(idle_key) == 1);
  CHECK(tally.destroyed_of(held_key) == 0);
  CHECK(held->alive);
  CHECK(held.key() == held_key);
  CHECK_FALSE(weak_idle.lock());  // its node memory is still valid for this check
  pool_map::weak_handle weak_held = held;
  CHECK(weak_held.lock() == held);  // live after the map: lock works without the map
  held.reset();                     // released after the map: erased, not lingering
  CHECK(tally.destroyed_of(held_key) == 1);
  CHECK_FALSE(weak_held.lock());
}

// docs/rc_map.md "Map destruction": a lingering value's destructor, run by ~rc_map, may look
// the map up and release handles, but creating an entry then is refused. Before 2026-12-02 the
// entry was linked into the emptied table: never counted, never erased (LSan: its node and
// value leaked, its destructor never ran), and a handle to it kept past the map read the freed
// shared state on release (ASan: heap-use-after-free in expire()).
TEST_CASE("linger: a value's destructor run by ~rc_map may look up but not create entries") {
  tally.reset();
  const std::string tenant = long_key("tenant");
  const std::string spare = long_key("spare");
  const std::string other = long_key("other");
  std::vector<std::string> refusals;
  bool lookup_found = true;
  std::optional<pool_map::handle> kept;
  pool_map::handle other_handle;
  {
    pool_map map(4, linger_for(1h));
    other_handle = open(map, other);
    {
      auto h = open(map, tenant);
      h->on_destroy = [&] {
        lookup_found = map.contains(other) || map.get(other).has_value();
        other_handle.reset();  // a release during ~rc_map: the entry is erased, not lingering
        const auto refused = [&](auto&& create) {
          try {
            create();
          } catch (const std::logic_error& e) {
            refusals.emplace_back(e.what());
          }
        };
        refused([&] { kept = map.get_or_insert_with(spare, [&] { return pool(spare); }); });
        refused([&] { kept = map.try_emplace(spare, spare).first; });
        refused([&] { kept = map.insert(spare, spare).first; });
      };
    }  // lingers
  }    // ~rc_map destroys the lingering tenant, whose destructor tries to create "spare"
  REQUIRE(refusals.size() == 3);
  CHECK(refusals[0].find("tandem::rc_map::get_or_insert_with: called while the map is being "
                         "destroyed") != std::string::npos);
  CHECK(refusals[1].find("tandem::rc_map::try_emplace: called while") != std::string::npos);
  CHECK(refusals[2].find("tandem::rc_map::insert: called while") != std::string::npos);
  CHECK_FALSE(lookup_found);  // the map is emptied before lingering values are destroyed
  CHECK_FALSE(kept.has_value());
  CHECK(tally.destroyed_of(tenant) == 1);
  CHECK(tally.destroyed_of(other) == 1);
  CHECK(tally.built_of(spare) == tally.destroyed_of(spare));  // insert's argument, if built
}

TEST_CASE(
    "linger: releasing handles on other threads while the map is destroyed destroys each value "
    "once") {
  tandem::test::watchdog dog("linger release during destruction");
  for (int round = 0; round < 50; ++round) {
    tally.reset();
    auto map = std::make_unique<pool_map>(4, linger_for(1h, 8));
    std::vector<pool_map::handle> a;
    std::vector<pool_map::handle> b;
    for (int k = 0; k < 24; ++k) {
      auto h = open(*map, long_key("r" + std::to_string(k)));
      if (k % 2 == 0) b.push_back(h);
      a.push_back(std::move(h));
    }
    a.resize(8);  // some linger before the race
    tandem::test::run_threads(3, [&](std::size_t t) {
      if (t == 0) map.reset();
      if (t == 1) a.clear();
      if (t == 2) b.clear();
    });
    for (int k = 0; k < 24; ++k) {
      const std::string key = long_key("r" + std::to_string(k));
      CHECK(tally.built_of(key) == 1);
      CHECK(tally.destroyed_of(key) == 1);
    }
  }
}

TEST_CASE("without linger the last handle erases the entry at once (behaviour unchanged)") {
  tally.reset();
  for (const auto& options : {tandem::rc_map_options{}, linger_for(0s), linger_for(1h, 0)}) {
    pool_map map(4, options);
    const std::string k = long_key("plain");
    const int before = tally.destroyed_of(k);
    static_cast<void>(open(map, k));
    CHECK(tally.destroyed_of(k) == before + 1);
    CHECK_FALSE(map.contains(k));
    CHECK(map.empty());
    CHECK(map.lingering_count() == 0);
    CHECK(map.collect() == 0);
  }
  CHECK_THROWS_AS(pool_map(4, linger_for(-1s)), std::invalid_argument);
  CHECK(pool_map(4, linger_for(5s, 3)).options().max_lingering == 3);
}

TEST_CASE("linger: a linger time that would overflow the clock saturates instead") {
  tally.reset();
  pool_map map(4, linger_for(std::chrono::nanoseconds::max()));
  const std::string k = long_key("forever");
  static_cast<void>(open(map, k));
  manual_clock::advance(24h);
  CHECK(map.collect() == 0);
  CHECK(map.contains(k));
}

// ---- visit ----------------------------------------------------------------------------------

TEST_CASE(
    "visit: calls f on a live entry without creating a handle, and returns false when absent") {
  tally.reset();
  pool_map map(4);
  const std::string k = long_key("visit");
  auto h = open(map, k);
  std::size_t uses_inside = 0;
  std::string seen;
  CHECK(map.visit(k, [&](const pool& p) {
    uses_inside = h.use_count();  // a handle made by visit would show here
    seen = p.payload;
  }));
  CHECK(uses_inside == 1);
  CHECK(seen == "pool-of-" + k);
  CHECK(h.use_count() == 1);
  CHECK(map.visit(std::string_view(k), [](const pool&) {}));  // transparent key
  CHECK_FALSE(map.visit(long_key("absent"), [](const pool&) { FAIL("called for an absent key"); }));
  h.reset();
  CHECK_FALSE(map.visit(k, [](const pool&) { FAIL("called for an erased entry"); }));
}

TEST_CASE("visit: sees a lingering entry without reviving it: its idle time keeps running") {
  tally.reset();
  pool_map map(4, linger_for(10s));
  const std::string k = long_key("visit-linger");
  static_cast<void>(open(map, k));
  manual_clock::advance(6s);
  bool called = false;
  CHECK(map.visit(k, [&](const pool& p) { called = p.alive; }));
  CHECK(called);
  CHECK(map.lingering_count() == 1);
  CHECK(map.use_count(k) == 0);
  manual_clock::advance(5s);  // 11 s after the release: expired, visit or not
  CHECK_FALSE(map.visit(k, [](const pool&) { FAIL("called for an expired entry"); }));
  CHECK(map.collect() == 1);
  CHECK(tally.destroyed_of(k) == 1);
}

TEST_CASE(
    "visit: f using the same map gets std::logic_error, other maps are fine, f's exception "
    "releases the lock") {
  tandem::test::watchdog dog("visit re-entry", 20s);
  pool_map map(1);
  pool_map other(1);
  const std::string k = long_key("reenter");
  auto h = open(map, k);
  auto o = open(other, k);
  CHECK_THROWS_AS(map.visit(k, [&](const pool&) { static_cast<void>(map.get(k)); }),
                  std::logic_error);
  CHECK_THROWS_AS(map.visit(k, [&](const pool&) { static_cast<void>(map.contains(k)); }),
                  std::logic_error);
  CHECK_THROWS_AS(map.visit(k, [&](const pool&) { map.visit(k, [](const pool&) {}); }),
                  std::logic_error);
  pool_map::weak_handle w = h;
  CHECK_NOTHROW(map.visit(k, [&](const pool&) { CHECK(w.lock() == h); }));  // live: no lock
  bool nested = false;
  CHECK(map.visit(k, [&](const pool&) {
    nested = other.visit(k, [&](const pool&) {
      CHECK_THROWS_AS(static_cast<void>(map.size() + map.use_count(k)), std::logic_error);
    });
  }));
  CHECK(nested);
  CHECK_THROWS_AS(map.visit(k, [](const pool&) { throw std::runtime_error("from f"); }),
                  std::runtime_error);
  CHECK(map.get(k).has_value());  // the shard lock was released by the throw
  CHECK(map.use_count(k) == 1);
}

// ---- weak_handle ----------------------------------------------------------------------------

TEST_CASE(
    "weak_handle: lock returns the live entry, and an empty handle once the entry is erased") {
  tally.reset();
  pool_map map(4);
  const std::string k = long_key("weak");
  pool_map::weak_handle w;
  CHECK_FALSE(w.lock());
  auto h = open(map, k);
  w = h;
  {
    auto locked = w.lock();
    CHECK(locked == h);
    CHECK(h.use_count() == 2);
  }
  CHECK(h.use_count() == 1);
  h.reset();
  CHECK(tally.destroyed_of(k) == 1);
  auto after = w.lock();  // the entry is gone: never revived from a count of 0
  CHECK_FALSE(after);
  CHECK(tally.destroyed_of(k) == 1);
  CHECK(map.empty());
  auto fresh = open(map, k);  // a new entry of the same key is another entry
  CHECK_FALSE(w.lock());
  CHECK(tally.built_of(k) == 2);
}

TEST_CASE("weak_handle: keeps the node memory valid after the entry and the map are gone (ASan)") {
  tally.reset();
  std::vector<pool_map::weak_handle> weaks;
  {
    pool_map map(2);
    for (int i = 0; i < 16; ++i) {
      auto h = open(map, long_key("wm" + std::to_string(i)));
      weaks.emplace_back(h);
      weaks.push_back(weaks.back());  // a copy
    }
    for (auto& w : weaks) CHECK_FALSE(w.lock());  // every entry was erased with its handle
  }
  for (auto& w : weaks) CHECK_FALSE(w.lock());  // and the map is gone
  auto moved = std::move(weaks[0]);
  CHECK_FALSE(weaks[0]);
  auto& alias = moved;  // through a reference: clang's -Wself-assign-overloaded is not wrong
  moved = alias;        // self-assignment keeps the node
  moved = std::move(weaks[1]);
  weaks.clear();
  CHECK_FALSE(moved.lock());
}

TEST_CASE("weak_handle: lock revives a lingering entry, and never an expired one") {
  tally.reset();
  pool_map map(4, linger_for(10s));
  const std::string k = long_key("weak-linger");
  pool_map::weak_handle w;
  const pool* first = nullptr;
  {
    auto h = open(map, k);
    first = &*h;
    w = h;
  }
  manual_clock::advance(9s);
  {
    auto revived = w.lock();
    REQUIRE(revived);
    CHECK(&*revived == first);
    CHECK(map.lingering_count() == 0);
  }
  manual_clock::advance(10s);
  CHECK_FALSE(w.lock());  // expired: lock erases it rather than revive it
  CHECK(tally.built_of(k) == 1);
  CHECK(tally.destroyed_of(k) == 1);
  CHECK(map.empty());
}

TEST_CASE(
    "weak_handle: lock racing the last release gets a live entry or nothing, never a dying one") {
  tandem::test::watchdog dog("weak lock races release");
  for (const auto& options : {tandem::rc_map_options{}, linger_for(1ns, 1)}) {
    tally.reset();
    pool_map map(2, options);
    const std::string k = long_key("race");
    tandem::test::thread_checks checks;
    for (int round = 0; round < 2000; ++round) {
      auto h = open(map, k);
      pool_map::weak_handle w = h;
      tandem::test::run_threads(2, [&](std::size_t t) {
        if (t == 0) {
          h.reset();
          manual_clock::advance(1ns);  // with linger: expire it soon
        } else {
          auto locked = w.lock();
          if (locked) TANDEM_THREAD_CHECK(checks, locked->alive && locked->key == k);
        }
      });
      static_cast<void>(map.collect());
    }
    INFO(checks.first_failure());
    CHECK(checks.failures() == 0);
    manual_clock::advance(1s);
    static_cast<void>(map.collect());
    CHECK(tally.built_of(k) == tally.destroyed_of(k));
  }
}

// ---- handle::reset_if and visit_all (2026-12-01) --------------------------------------------

TEST_CASE(
    "handle::reset_if: f runs under the shard lock, true releases the handle (the last one "
    "erases the entry in the same critical section, V destroyed after the unlock), false keeps "
    "it") {
  tandem::test::watchdog dog("reset_if");
  tally.reset();
  pool_map map(1);  // one shard: V's destructor below uses the map, so a V destroyed under
                    // the shard lock would deadlock (the watchdog fails the test)
  const std::string k = long_key("reset-if");
  auto h = open(map, k);
  auto other = open(map, k);
  CHECK(other.use_count() == 2);

  // false: nothing released, and f saw the value.
  std::string seen;
  CHECK_FALSE(h.reset_if([&](const pool& p) noexcept {
    seen = p.payload;  // (std::string's copy may throw; in a test it does not)
    return false;
  }));
  CHECK(seen == "pool-of-" + k);
  CHECK(h);
  CHECK(h.use_count() == 2);

  // true with another handle alive: only this handle goes.
  CHECK(h.reset_if([](const pool&) noexcept { return true; }));
  CHECK_FALSE(h);
  CHECK(other.use_count() == 1);
  CHECK(map.size() == 1);
  CHECK(tally.destroyed_of(k) == 0);

  // true on the last handle: the entry is erased, V destroyed once, with no map lock held.
  bool destructor_used_the_map = false;
  other->on_destroy = [&] { destructor_used_the_map = !map.contains(k) && map.size() == 0; };
  CHECK(other.reset_if([](const pool& p) noexcept { return p.alive; }));
  CHECK_FALSE(other);
  CHECK(destructor_used_the_map);
  CHECK(tally.destroyed_of(k) == 1);
  CHECK_FALSE(map.contains(k));
  auto [again, created] = map.try_emplace(k, k);  // a new entry, built anew
  CHECK(created);
  CHECK(tally.built_of(k) == 2);
}

TEST_CASE(
    "handle::reset_if with a weak handle alive, in a map with linger, and after ~rc_map releases "
    "as reset() would") {
  tandem::test::watchdog dog("reset_if paths");
  tally.reset();
  const auto release = [](const pool&) noexcept { return true; };
  {  // a weak handle: the entry is erased (V destroyed), the node kept for the weak handle
    pool_map map(2);
    const std::string k = long_key("weak");
    auto h = open(map, k);
    pool_map::weak_handle w = h;
    CHECK(h.reset_if(release));
    CHECK(tally.destroyed_of(k) == 1);
    CHECK_FALSE(w.lock());
    CHECK(map.size() == 0);
  }
  {  // linger: the last handle leaves the entry lingering, as reset() does
    pool_map map(2, linger_for(30s));
    const std::string k = long_key("lingering");
    auto h = open(map, k);
    CHECK(h.reset_if(release));
    CHECK(map.lingering_count() == 1);
    CHECK(tally.destroyed_of(k) == 0);
    int makes = 0;
    auto revived = open(map, k, &makes);
    CHECK(makes == 0);
  }
  {  // after ~rc_map the handle is still released, and everything freed (LSan checks)
    std::optional<pool_map> map(std::in_place, 2);
    const std::string k = long_key("orphan");
    auto h = open(*map, k);
    map.reset();
    CHECK(h.reset_if(release));
    CHECK(tally.destroyed_of(k) == 1);
  }
}

TEST_CASE(
    "handle::reset_if: an empty handle, or a call from inside a visit of the same map, throws "
    "std::logic_error and changes nothing") {
  tandem::test::watchdog dog("reset_if rules");
  pool_map map(1);
  const std::string k = long_key("rules");
  auto h = open(map, k);
  const auto release = [](const pool&) noexcept { return true; };
  CHECK_THROWS_WITH(pool_map::handle().reset_if(release),
                    "tandem::rc_map::handle::reset_if: the handle is empty");
  CHECK_THROWS_AS(map.visit(k, [&](const pool&) { static_cast<void>(h.reset_if(release)); }),
                  std::logic_error);
  CHECK(h.use_count() == 1);
  CHECK_THROWS_AS(map.visit_all([&](const std::string&, const pool&) {
    static_cast<void>(h.reset_if(release));
  }),
                  std::logic_error);
  CHECK(h.use_count() == 1);
  CHECK(map.size() == 1);
}

TEST_CASE(
    "handle::reset_if: f may move, reset or assign the handle it was called on, and the entry's "
    "count is released exactly once (the handle is empty while f runs)") {
  tandem::test::watchdog dog("reset_if with f changing the handle");
  tally.reset();
  pool_map map(2);
  {  // f moves the handle away and says release: the move took an empty handle
    const std::string k = long_key("moved-away");
    auto h = open(map, k);
    pool_map::handle elsewhere;
    CHECK(h.reset_if([&](const pool& p) noexcept {
      CHECK_FALSE(h);  // empty while f runs
      elsewhere = std::move(h);
      return p.alive;
    }));
    CHECK_FALSE(elsewhere);
    CHECK_FALSE(h);
    CHECK(tally.destroyed_of(k) == 1);  // the last handle went: erased once
    CHECK_FALSE(map.contains(k));
  }
  {  // f resets the handle (another handle exists) and says release: one count goes, not two
    const std::string k = long_key("reset-inside");
    auto h = open(map, k);
    auto second = open(map, k);
    CHECK(h.reset_if([&](const pool&) noexcept {
      h.reset();
      return true;
    }));
    CHECK(second.use_count() == 1);
    CHECK(tally.destroyed_of(k) == 0);
    CHECK(second->alive);
    second.reset();
    CHECK(tally.destroyed_of(k) == 1);
  }
  {  // f assigns the handle another entry and says release, or keep: it keeps the new entry,
     // and the old entry's count goes either way
    for (const bool release : {true, false}) {
      const std::string old_key = long_key(release ? "old-released" : "old-kept");
      const std::string new_key = long_key(release ? "new-released" : "new-kept");
      auto h = open(map, old_key);
      auto other = open(map, new_key);
      CHECK(h.reset_if([&](const pool&) noexcept {
        h = other;
        return release;
      }) == release);
      CHECK(h == other);
      CHECK(other.use_count() == 2);
      CHECK(tally.destroyed_of(old_key) == 1);
      CHECK_FALSE(map.contains(old_key));
      h.reset();
      other.reset();
      CHECK(tally.destroyed_of(new_key) == 1);
    }
  }
  CHECK(map.size() == 0);
}

TEST_CASE(
    "handle::reset_if racing lookups and creates of the same key: every value built is destroyed "
    "once, no handle sees a dead value, and the map ends empty") {
  tandem::test::watchdog dog("reset_if races");
  for (const auto& options : {tandem::rc_map_options{}, linger_for(1ns, 1)}) {
    tally.reset();
    pool_map map(2, options);
    const std::string k = long_key("churn");
    tandem::test::thread_checks checks;
    tandem::test::run_threads(2, [&](std::size_t t) {
      for (int i = 0; i < 5000; ++i) {
        auto h = open(map, k);
        TANDEM_THREAD_CHECK(checks, h->alive && h->key == k);
        if (t == 0) {
          // Half the time f keeps the handle, then it goes by reset().
          const bool released = h.reset_if([&](const pool& p) noexcept { return p.alive; });
          if (!released) h.reset();
        } else {
          const bool released = h.reset_if([i](const pool&) noexcept { return i % 2 == 0; });
          if (!released) h.reset();
        }
        manual_clock::advance(1ns);
      }
    });
    INFO(checks.first_failure());
    CHECK(checks.failures() == 0);
    manual_clock::advance(1s);
    static_cast<void>(map.collect());
    CHECK(map.size() == 0);
    CHECK(tally.built_of(k) == tally.destroyed_of(k));
  }
}

TEST_CASE(
    "visit_all calls f once per entry with handles, under its shard lock, allocating nothing, "
    "lingering entries are skipped, using the map inside f throws std::logic_error") {
  tandem::test::watchdog dog("visit_all");
  tally.reset();
  pool_map map(4, linger_for(30s));
  std::vector<pool_map::handle> held;
  for (int i = 0; i < 40; ++i) held.push_back(open(map, long_key("entry-" + std::to_string(i))));
  { auto lingering = open(map, long_key("lingering")); }  // released: lingers
  CHECK(map.lingering_count() == 1);
  std::map<std::string, int> visits;
  for (int i = 0; i < 40; ++i) visits[long_key("entry-" + std::to_string(i))] = 0;
  std::vector<std::string> unexpected;
  unexpected.reserve(8);
  {
    const tandem::test::allocation_scope scope;
    map.visit_all([&](const std::string& key, const pool& p) noexcept {
      auto found = visits.find(key);
      if (found == visits.end() || p.key != key) {
        if (unexpected.size() < unexpected.capacity()) unexpected.push_back(key);
      } else {
        ++found->second;
      }
    });
    CHECK(scope.count() == 0);
  }
  CHECK(unexpected.empty());
  for (const auto& [key, count] : visits) {
    CAPTURE(key);
    CHECK(count == 1);
  }
  CHECK_THROWS_AS(map.visit_all([&](const std::string&, const pool&) {
    static_cast<void>(map.get(long_key("entry-0")));
  }),
                  std::logic_error);
  CHECK_THROWS_AS(
      map.visit(long_key("entry-1"),
                [&](const pool&) { map.visit_all([](const std::string&, const pool&) {}); }),
      std::logic_error);
  // f's exception propagates with the lock released: the map is usable afterwards.
  CHECK_THROWS_AS(
      map.visit_all([](const std::string&, const pool&) { throw std::runtime_error("from f"); }),
      std::runtime_error);
  CHECK(map.contains(long_key("entry-2")));
  CHECK(open(map, long_key("entry-3")).use_count() == 2);
}

// ---- clocks with narrow or fine ticks (2026-12-01 review) ----------------------------------

namespace {

// A 32-bit millisecond clock (about 24.8 days of range) and a picosecond one (about 106 days):
// both are chrono clocks rc_map_clock accepts, and a long linger is beyond either's duration.
template <class Rep, class Period>
struct narrow_clock {
  using rep = Rep;
  using period = Period;
  using duration = std::chrono::duration<Rep, Period>;
  using time_point = std::chrono::time_point<narrow_clock>;
  static constexpr bool is_steady = true;
  static inline Rep ticks = 1000;
  static time_point now() noexcept { return time_point(duration(ticks)); }
};

template <class Clock>
void check_long_linger_saturates(std::chrono::nanoseconds linger) {
  using map_type = tandem::rc_map<std::string, std::string, tandem::default_hash<std::string>,
                                  tandem::default_key_equal<std::string>, Clock>;
  map_type map(1, tandem::rc_map_options{.linger = linger});
  const std::string k = long_key("long-linger");
  {
    auto h = map.get_or_insert_with(k, [] { return std::string(64, 'v'); });
  }
  // The linger time, converted to the clock's ticks, saturates: the entry lingers "for ever"
  // instead of wrapping to a negative time (expired at once) through signed overflow.
  CHECK(map.lingering_count() == 1);
  CHECK(map.collect() == 0);
  CHECK(map.contains(k));
  CHECK(map.get(k).has_value());
}

}  // namespace

TEST_CASE(
    "a linger longer than the Clock's duration can hold saturates (32-bit milliseconds, "
    "picoseconds): the entry lingers, no signed overflow (UBSan checks)") {
  using days = std::chrono::duration<std::int64_t, std::ratio<86400>>;
  check_long_linger_saturates<narrow_clock<std::int32_t, std::milli>>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(days(30)));
  check_long_linger_saturates<narrow_clock<std::int64_t, std::pico>>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(days(200)));
}
