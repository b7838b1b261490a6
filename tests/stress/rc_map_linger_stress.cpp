// Stress test for rc_map's linger option, visit() and weak_handle (CTest label "stress").
//
// Four threads race lookups against expiry on 24 heap-owning std::string keys: get_or_insert_with,
// get, try_emplace, weak_handle::lock, visit, collect and handle drops, holding up to 3 handles
// and 4 weak handles each, while the manual clock moves forward by a tick every other operation
// (the linger time is 6 ticks, so entries keep expiring, being revived and being collected)
// and at most 5 entries may linger. Every TANDEM_SYNC_POINT() in rc_map.hpp widens its window.
// Checked throughout: a handle's value is alive and built for its key (an entry revived and
// erased at once would be destroyed under a handle); no value is destroyed twice (each value
// carries a "destroyed" mark); per key, never more values destroyed than built;
// lingering_count() never exceeds the bound. At the
// end, after the clock passes every deadline and collect(): every value built was destroyed
// exactly once. Runs for TANDEM_STRESS_SECONDS (default 1 s) or its op budget.
#include <tandem/rc_map.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "test_support.hpp"

namespace {

using tandem::test::manual_clock;  // moves only when the test says so

constexpr std::size_t key_count = 24;
constexpr std::size_t max_lingering = 5;

std::string key_of(std::size_t id) {
  return "linger-key-" + std::to_string(id) + "-padded-beyond-the-small-string-buffer";
}

std::array<std::atomic<long>, key_count> built{};
std::array<std::atomic<long>, key_count> destroyed{};
std::atomic<long> destroyed_twice{0};

struct value {
  explicit value(std::size_t k) : id(k), text("value-for-" + key_of(k)) { built[id].fetch_add(1); }
  value(const value&) = delete;
  value& operator=(const value&) = delete;
  ~value() {
    if (gone.exchange(true)) destroyed_twice.fetch_add(1);
    destroyed[id].fetch_add(1);
  }
  bool intact(std::size_t k) const {
    return !gone.load() && id == k && text == "value-for-" + key_of(k);
  }
  std::size_t id;
  std::string text;
  std::atomic<bool> gone{false};
};

using map_type = tandem::rc_map<std::string, value, tandem::default_hash<std::string>,
                                tandem::default_key_equal<std::string>, manual_clock>;

}  // namespace

TEST_CASE(
    "rc_map linger stress: lookups race expiry, no entry revived and erased, no value destroyed "
    "twice, bound kept") {
  tandem::test::watchdog dog("rc_map linger stress", std::chrono::seconds(120));
  std::vector<std::string> keys;
  for (std::size_t k = 0; k < key_count; ++k) keys.push_back(key_of(k));
  tandem::test::thread_checks checks;
  std::atomic<long> operations{0};
  {
    map_type map(4, tandem::rc_map_options{.linger = std::chrono::nanoseconds(6),
                                           .max_lingering = max_lingering});
    tandem::test::op_budget budget(2'000'000, std::chrono::milliseconds(1000));
    tandem::test::run_threads(4, [&](std::size_t thread) {
      std::mt19937_64 random(thread * 7919 + 3);
      std::array<std::optional<map_type::handle>, 3> held;
      std::array<map_type::weak_handle, 4> weak;
      while (budget.next()) {
        operations.fetch_add(1, std::memory_order_relaxed);
        const std::uint64_t r = random();
        const std::size_t k = (r >> 8U) % key_count;
        auto& slot = held[(r >> 20U) % held.size()];
        auto& weak_slot = weak[(r >> 28U) % weak.size()];
        if ((r & 1U) == 0) manual_clock::ticks.fetch_add(1);  // time passes with the work
        switch ((r >> 32U) % 9) {
          case 0:
          case 1:
            slot.emplace(map.get_or_insert_with(keys[k], [&] { return value(k); }));
            break;
          case 2:
            if (auto h = map.get(keys[k])) slot.emplace(std::move(*h));
            break;
          case 3:
            slot.emplace(map.try_emplace(keys[k], k).first);
            break;
          case 4:
            if (slot && *slot) weak_slot = *slot;
            break;
          case 5:
            if (auto h = weak_slot.lock()) {
              TANDEM_THREAD_CHECK(checks, h->intact(h->id) && h.key() == keys[h->id]);
              slot.emplace(std::move(h));
            }
            break;
          case 6:
            map.visit(keys[k], [&](const value& v) { TANDEM_THREAD_CHECK(checks, v.intact(k)); });
            break;
          case 7:
            if ((r >> 40U) % 16 == 0) static_cast<void>(map.collect());
            break;
          default:
            slot.reset();
            break;
        }
        for (const auto& h : held) {
          if (h && *h) {
            TANDEM_THREAD_CHECK(checks, (*h)->intact((*h)->id));
            TANDEM_THREAD_CHECK(checks, h->key() == keys[(*h)->id]);
            TANDEM_THREAD_CHECK(checks, h->use_count() > 0);
          }
        }
        const long destroyed_so_far = destroyed[k].load();  // first: built only grows after
        TANDEM_THREAD_CHECK(checks, destroyed_so_far <= built[k].load());
        TANDEM_THREAD_CHECK(checks, map.lingering_count() <= max_lingering);
        TANDEM_THREAD_CHECK(checks, destroyed_twice.load() == 0);
      }
    });
    CHECK(map.lingering_count() <= max_lingering);
    manual_clock::ticks.fetch_add(1000);  // every deadline passes
    static_cast<void>(map.collect());
    CHECK(map.lingering_count() == 0);
    CHECK(map.empty());
  }
  INFO("first failed check: " << checks.first_failure());
  CHECK(checks.failures() == 0);
  CHECK(checks.checked() > 0);
  CHECK(destroyed_twice.load() == 0);
  long total = 0;
  for (std::size_t k = 0; k < key_count; ++k) {
    CHECK(built[k].load() == destroyed[k].load());
    total += built[k].load();
  }
  CHECK(total > static_cast<long>(key_count));  // entries really were erased and rebuilt
  WARN("values built: " << total << ", operations: " << operations.load());
}
