// Tests for include/tandem/sync/atomic_wait.hpp.
#include <tandem/sync/atomic_wait.hpp>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "test_support.hpp"

using tandem::sync::atomic_notify_all;
using tandem::sync::atomic_notify_one;
using tandem::sync::atomic_wait;

TEST_CASE("atomic_wait takes only 4-byte atomics, the futex word") {
  STATIC_REQUIRE(tandem::sync::futex_word<std::uint32_t>);
  STATIC_REQUIRE(tandem::sync::futex_word<int>);
  STATIC_REQUIRE(tandem::sync::futex_word<float>);
  STATIC_REQUIRE_FALSE(tandem::sync::futex_word<std::uint64_t>);
  STATIC_REQUIRE_FALSE(tandem::sync::futex_word<bool>);
}

TEST_CASE("atomic_wait returns at once when the value already differs") {
  tandem::test::watchdog dog("atomic_wait on a changed value");
  std::atomic<std::uint32_t> word{5};
  atomic_wait(word, std::uint32_t{4});  // would sleep forever if it compared wrongly
  CHECK(word.load() == 5);
}

TEST_CASE("a store then a notify is never lost: 20,000 ping-pong round trips") {
  // Two threads hand a token back and forth, each sleeping in atomic_wait until it is its
  // turn. A lost wake-up leaves both asleep; the watchdog turns that into a failure.
  tandem::test::watchdog dog("atomic_wait ping-pong", std::chrono::seconds(120));
  std::atomic<std::uint32_t> turn{0};
  constexpr std::uint32_t rounds = 20'000;
  auto play = [&](std::uint32_t me) {
    for (std::uint32_t i = 0; i < rounds; ++i) {
      for (;;) {
        const std::uint32_t now = turn.load(std::memory_order_acquire);
        if (now % 2 == me) break;
        atomic_wait(turn, now);
      }
      turn.fetch_add(1, std::memory_order_release);
      atomic_notify_one(turn);
    }
  };
  std::thread other([&] { play(1); });
  play(0);
  other.join();
  CHECK(turn.load() == 2 * rounds);
}

TEST_CASE("atomic_notify_all wakes every sleeper") {
  tandem::test::watchdog dog("atomic_notify_all");
  std::atomic<std::uint32_t> gate{0};
  std::atomic<int> woken{0};
  std::vector<std::thread> sleepers;
  for (int i = 0; i < 4; ++i) {
    sleepers.emplace_back([&] {
      while (gate.load(std::memory_order_acquire) == 0) atomic_wait(gate, std::uint32_t{0});
      woken.fetch_add(1);
    });
  }
  gate.store(1, std::memory_order_release);
  atomic_notify_all(gate);
  for (auto& t : sleepers) t.join();
  CHECK(woken.load() == 4);
}
