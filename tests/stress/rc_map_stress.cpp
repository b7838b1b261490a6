// Stress test for tandem::rc_map (CTest label "stress").
//
// Four threads churn on a hot key and 64 random keys: get_or_insert_with, get, insert,
// try_emplace, handle copies, moves and drops, holding up to 8 handles each. Every handle must
// point at a value made for its key (an old handle never sees another entry), use_count of a
// held handle is never 0, and when every handle is gone the map is empty. Runs for
// TANDEM_STRESS_SECONDS (default 1 s) or its op budget.
#include <tandem/rc_map.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <random>

#include "test_support.hpp"

namespace {
struct value {
  explicit value(std::uint64_t k) : key(k), check(k * 7 + 1) {}
  value(const value&) = delete;
  value& operator=(const value&) = delete;
  std::uint64_t key;
  std::uint64_t check;
};
}  // namespace

TEST_CASE("rc_map stress: handles always see their own entry and the map ends empty") {
  tandem::test::watchdog dog("rc_map stress", std::chrono::seconds(120));
  tandem::rc_map<std::uint64_t, value> map(8);
  tandem::test::op_budget budget(4'000'000, std::chrono::milliseconds(1000));

  tandem::test::thread_checks checks;
  tandem::test::run_threads(4, [&](std::size_t id) {
    std::mt19937_64 random(id * 7919 + 1);
    std::array<std::optional<tandem::rc_map<std::uint64_t, value>::handle>, 8> held;
    while (budget.next()) {
      const std::uint64_t r = random();
      const std::uint64_t key = (r & 1U) != 0 ? 0 : (r >> 8U) % 64;  // half the time the hot key
      const std::size_t here = (r >> 20U) % held.size();
      const std::size_t there = (r >> 32U) % held.size();
      auto& slot = held[here];
      switch ((r >> 24U) % 6) {
        case 0:
          slot.emplace(map.get_or_insert_with(key, [&] { return value(key); }));
          break;
        case 1:
          if (auto h = map.get(key)) slot.emplace(std::move(*h));
          break;
        case 2:
          slot.emplace(map.try_emplace(key, key).first);
          break;
        case 3:
          if (slot && *slot && there != here) held[there].emplace(*slot);  // copy
          break;
        case 4:
          if (slot && there != here) held[there] = std::move(slot);  // move
          break;
        default:
          slot.reset();
          break;
      }
      for (const auto& h : held) {
        if (h && *h) {
          const value& v = **h;
          TANDEM_THREAD_CHECK(checks, v.key == h->key());
          TANDEM_THREAD_CHECK(checks, v.check == h->key() * 7 + 1);
          TANDEM_THREAD_CHECK(checks, h->use_count() > 0);
        }
      }
    }
  });
  INFO("first failed check: " << checks.first_failure());
  CHECK(checks.failures() == 0);
  CHECK(checks.checked() > 0);
  CHECK(map.size() == 0);
  CHECK(map.empty());
}
