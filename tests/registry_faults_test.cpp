// Fault tests for include/tandem/registry.hpp: allocation failure during destruction and
// clear(), user code (KeyEqual) that throws on a failed build's clean-up path.
// (Races with narrow windows: tests/stress/registry_races_stress.cpp; exit teardown with
// readers elsewhere: tests/registry_teardown_test.cpp.)
#include <tandem/registry.hpp>

#include <atomic>
#include <cstddef>
#include <latch>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "failing_new.hpp"
#include "test_support.hpp"

namespace {

std::atomic<int> live{0};

struct instance {
  explicit instance(std::string k) : key(std::move(k)) { live.fetch_add(1); }
  instance(const instance&) = delete;
  instance& operator=(const instance&) = delete;
  ~instance() { live.fetch_sub(1); }
  std::string key;
};

std::string long_key(int i) {
  return "a-registry-key-on-the-heap-" + std::to_string(i);
}

// KeyEqual that throws once armed: user code on a path that must not call it.
std::atomic<bool> equal_throws{false};
struct throwing_equal {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const {
    if (equal_throws.load()) throw std::runtime_error("KeyEqual failed");
    return a == b;
  }
};

}  // namespace

TEST_CASE("registry faults: ~registry destroys every instance even when allocation fails") {
  tandem::test::watchdog dog("registry destruction under allocation failure");
  for (std::size_t n = 1; n <= 8; ++n) {
    std::optional<tandem::registry<instance>> registry(std::in_place);
    for (int i = 0; i < 40; ++i) (void)registry->get_or_create(long_key(i));
    REQUIRE(live.load() == 40);
    // Fail the nth allocation made while destroying (before the fix, clear() allocated a
    // vector: bad_alloc escaped ~registry, which is noexcept: std::terminate).
    const bool threw = tandem::test::with_allocation_failure(n, [&] { registry.reset(); });
    CHECK_FALSE(threw);
    CHECK(live.load() == 0);
  }
}

TEST_CASE("registry faults: clear() cannot fail, it releases every entry in reverse order") {
  tandem::test::watchdog dog("registry clear under allocation failure");
  tandem::registry<instance> registry;
  for (std::size_t n = 1; n <= 8; ++n) {
    for (int i = 0; i < 40; ++i) (void)registry.get_or_create(long_key(i));
    const bool threw = tandem::test::with_allocation_failure(n, [&] { registry.clear(); });
    CHECK_FALSE(threw);
    CHECK(registry.size() == 0);
    CHECK(live.load() == 0);
  }
  STATIC_REQUIRE(noexcept(registry.clear()));
}

TEST_CASE("registry faults: a throwing KeyEqual on a failed build's clean-up is not called") {
  tandem::test::watchdog dog("registry clean-up by identity");
  tandem::registry<instance, std::string, tandem::string_hash, throwing_equal> registry;
  const std::string key = long_key(7);
  // The factory throws, and from then on so does KeyEqual. The clean-up of the failed build runs
  // in a noexcept function: before the fix it looked the node up again by key and called
  // KeyEqual there (std::terminate). Now it finds the node by address.
  CHECK_THROWS_WITH(registry.get_or_create_with(key,
                                                [&]() -> std::unique_ptr<instance> {
                                                  equal_throws.store(true);
                                                  throw std::runtime_error("factory failed");
                                                }),
                    "factory failed");
  equal_throws.store(false);
  CHECK_FALSE(registry.contains(key));
  CHECK(registry.size() == 0);
  // The key can be built afterwards.
  CHECK(registry.get_or_create(key)->key == key);
}

TEST_CASE(
    "registry faults: an override() that runs out of memory before declaring leaves nothing") {
  // Before the fix, a bad_alloc growing the declaration order left a declaration outside it:
  // a later eager declare() of the key was then never built by create_eager().
  tandem::test::watchdog dog("override under allocation failure");
  const std::string key = long_key(7);
  bool completed = false;
  for (std::size_t n = 1; n <= 64 && !completed; ++n) {
    tandem::registry<instance> registry;
    const auto fake = std::make_shared<instance>("the fake instance");
    const bool threw =
        tandem::test::with_allocation_failure(n, [&] { registry.override(key, fake); });
    completed = !threw;
    registry.restore(key);  // ends the override where it was declared
    registry.declare(
        key, [key] { return std::make_unique<instance>(key); }, tandem::eager_t{});
    CHECK(registry.create_eager() == 1);  // the key is an eager declaration, in the order
    REQUIRE(registry.find(key) != nullptr);
    CHECK(registry.find(key)->key == key);
  }
  CHECK(completed);
}

// A thread's first lookup claims an epoch slot; past each 64 threads that hold one, the claim
// allocates a chunk of 64 more, and may then throw std::bad_alloc (documented since a review
// of 2026-12-01 found the exception table saying "only what Hash/KeyEqual throw"): the registry
// is unchanged, and the same thread's next lookup claims its slot and works.
TEST_CASE("registry: a thread's first lookup may throw std::bad_alloc, and changes nothing") {
  tandem::test::watchdog dog("first lookup of the 65th reading thread");
  const std::string key(40, 'k');
  tandem::registry<std::string> registry;
  auto held = registry.get_or_create_with(key, [] { return std::string(40, 'v'); });
  const std::size_t already = tandem::sync::claimed_epoch_slots();
  const std::size_t fill = (64 - already % 64) % 64;  // threads until a chunk is full
  std::latch parked(static_cast<std::ptrdiff_t>(fill));
  std::latch release(1);
  std::atomic<std::size_t> found_by_readers{0};  // no Catch2 assertion off the main thread
  std::vector<std::thread> readers;
  for (std::size_t i = 0; i < fill; ++i) {
    readers.emplace_back([&] {
      // Claims a slot, kept while the thread lives.
      if (registry.contains(key)) found_by_readers.fetch_add(1, std::memory_order_relaxed);
      parked.count_down();
      release.wait();
    });
  }
  parked.wait();
  REQUIRE(tandem::sync::claimed_epoch_slots() % 64 == 0);
  bool find_threw = false;
  bool contains_threw = false;
  bool visit_threw = false;
  bool retried = false;
  std::thread late([&] {
    find_threw = tandem::test::with_allocation_failure(1, [&] { (void)registry.find(key); });
    contains_threw =
        tandem::test::with_allocation_failure(1, [&] { (void)registry.contains(key); });
    visit_threw = tandem::test::with_allocation_failure(
        1, [&] { (void)registry.visit(key, [](const std::string&) {}); });
    const auto found = registry.find(key);  // no failure now: claims the slot
    retried = found != nullptr && *found == std::string(40, 'v');
  });
  late.join();
  release.count_down();
  for (auto& t : readers) t.join();
  CHECK(found_by_readers.load() == fill);
  CHECK(find_threw);
  CHECK(contains_threw);
  CHECK(visit_threw);
  CHECK(retried);
  CHECK(registry.size() == 1);
  CHECK(registry.find(key) == held);
}
