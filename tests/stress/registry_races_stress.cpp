// Narrow-window races of tandem::registry, widened by the stress build's TANDEM_SYNC_POINT()s
// (CTest label "stress"; runs for TANDEM_STRESS_SECONDS, default 1 s).
//
// "A waiter's successful build is never erased": three threads ask for the same fresh key; the
// factory throws on its first call only and every caller retries after an exception. The last
// caller to leave a failed build must decide "am I the last one, and is the entry still empty?"
// from the value its own fetch_sub returned, never from loads taken before it: otherwise it
// unlinks and frees the entry a retrying waiter has just built (the key is then absent or built
// twice, and the creation-order list points at freed memory).
//
// "restore() leaves no override registered": restore() races a get_or_create() that picks the
// override just before restore() clears it; the window (the build has read the declarations,
// its value is not yet published) runs no user code, so only the sync point there widens it.
// Before the fix (docs/reliability.md rule 31) restore() erased once, skipped the entry still
// being built, and the override's instance stayed registered after both calls had returned.
#include <tandem/registry.hpp>

#include <atomic>
#include <barrier>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "test_support.hpp"

namespace {
struct instance {
  explicit instance(std::string k) : key(std::move(k)) {}
  std::string key;
};
}  // namespace

TEST_CASE("registry races: a retried build after a throwing factory survives, built once") {
  tandem::test::watchdog dog("registry races", std::chrono::seconds(120));
  tandem::registry<instance> registry;
  tandem::test::op_budget budget(1'000'000'000, std::chrono::milliseconds(1500));
  constexpr std::size_t threads = 3;
  tandem::test::thread_checks checks;
  std::atomic<bool> stop{false};
  std::atomic<long> rounds{0};
  // Per round: a fresh key, a factory that throws on its first call, a count of builds.
  std::string key;
  std::atomic<int> calls{0};
  std::atomic<int> builds{0};
  auto on_round_done = [&]() noexcept {
    // Runs once per round on one thread, while the others wait at the barrier.
    const long round = rounds.load(std::memory_order_relaxed);
    if (round > 0) {
      const auto found = registry.find(key);
      TANDEM_THREAD_CHECK(checks, found != nullptr);
      TANDEM_THREAD_CHECK(checks, builds.load() == 1);
      TANDEM_THREAD_CHECK(checks, registry.size() == static_cast<std::size_t>(round));
    }
    if (!budget.next()) stop.store(true);
    key = "a-key-long-enough-for-the-heap-" + std::to_string(round);
    calls.store(0);
    builds.store(0);
    rounds.store(round + 1, std::memory_order_relaxed);
  };
  std::barrier sync(static_cast<std::ptrdiff_t>(threads), on_round_done);
  tandem::test::run_threads(threads, [&](std::size_t) {
    sync.arrive_and_wait();  // the first round's key
    while (!stop.load()) {
      const std::string mine = key;
      for (;;) {
        try {
          auto p = registry.get_or_create_with(mine, [&] {
            if (calls.fetch_add(1) == 0) throw std::runtime_error("first build fails");
            builds.fetch_add(1);
            return std::make_unique<instance>(mine);
          });
          TANDEM_THREAD_CHECK(checks, p->key == mine);
          break;
        } catch (const std::runtime_error&) {
        }
      }
      sync.arrive_and_wait();
    }
  });
  INFO("first failed check: " << checks.first_failure() << " after " << rounds.load() << " rounds");
  CHECK(checks.failures() == 0);
  CHECK(rounds.load() > 10);
}

TEST_CASE("registry races: restore() racing a get_or_create() leaves no override registered") {
  tandem::test::watchdog dog("restore racing get_or_create", std::chrono::seconds(120));
  tandem::registry<instance> registry;
  const std::string key = "a-mailer-key-long-enough-for-the-heap";
  registry.declare(key, [key] { return std::make_unique<instance>(key + " (factory)"); });
  tandem::test::op_budget budget(1'000'000'000, std::chrono::milliseconds(1500));
  tandem::test::thread_checks checks;
  long rounds = 0;
  long stale = 0;
  while (budget.next()) {
    ++rounds;
    const auto fake =
        std::make_shared<instance>(key + " (override " + std::to_string(rounds) + ")");
    registry.override(key, fake);
    registry.erase(key);  // the override stays declared: the client's build picks it up
    (void)registry.erase("no-such-key");  // a writer call: the erased node (a copy) is freed
    REQUIRE(fake.use_count() == 2);       // this test's and the declaration's
    std::latch go(2);
    std::atomic<bool> client_busy{true};
    std::thread client([&] {
      go.arrive_and_wait();
      const auto got = registry.get_or_create(key);
      TANDEM_THREAD_CHECK(checks, got == fake || got->key == key + " (factory)");
      client_busy.store(false);
    });
    go.arrive_and_wait();
    // Until the client's build has copied the override (the test, the declaration and that
    // copy hold it): restore() then meets the build in its window, which the sync point there
    // keeps open for a random while, or just after it.
    while (fake.use_count() < 3 && client_busy.load()) std::this_thread::yield();
    const bool restored = registry.restore(key);
    client.join();  // both calls have returned
    if (!restored || registry.find(key) == fake || registry.get_or_create(key) == fake) ++stale;
    registry.erase(key);
  }
  INFO(stale << " of " << rounds << " rounds left the override registered; "
             << checks.first_failure());
  CHECK(stale == 0);
  CHECK(checks.failures() == 0);
  CHECK(rounds > 10);
}
