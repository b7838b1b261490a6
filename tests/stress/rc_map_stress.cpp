// Stress test for tandem::rc_map (CTest label "stress").
//
// Four threads churn on a hot key and 64 random keys: get_or_insert_with, get, insert,
// try_emplace, handle copies, moves, assignments and drops, weak handles (made, locked while
// the last release runs, dropped), holding up to 8 handles each;
// once with integer keys and once with heap-owning std::string keys and values. Every handle must
// point at a value made for its key (an old handle never sees another entry), use_count of a
// held handle is never 0, and when every handle is gone the map is empty. Runs for
// TANDEM_STRESS_SECONDS (default 1 s) or its op budget.
#include <tandem/rc_map.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "test_support.hpp"

namespace {
struct value {
  explicit value(std::uint64_t k) : key(k), check(k * 7 + 1) {}
  value(const value&) = delete;
  value& operator=(const value&) = delete;
  std::uint64_t key;
  std::uint64_t check;
};

// Heap-owning keys and values: longer than any small-string buffer.
std::string text_key(std::uint64_t k) {
  return "key-" + std::to_string(k) + "-padded-beyond-the-small-string-buffer";
}
std::string text_value(const std::string& key) {
  return "value-for-" + key;
}

// The two instantiations: integer keys with a non-movable value, string keys and values.
struct int_traits {
  using key_type = std::uint64_t;
  using mapped_type = value;
  static key_type key(std::uint64_t k) { return k; }
  static bool matches(const value& v, const key_type& k) {
    return v.key == k && v.check == k * 7 + 1;
  }
  static value make(const key_type& k) { return value(k); }
  static std::uint64_t argument(const key_type& k) { return k; }  // try_emplace builds V(k)
};
struct string_traits {
  using key_type = std::string;
  using mapped_type = std::string;
  static key_type key(std::uint64_t k) { return text_key(k); }
  static bool matches(const std::string& v, const key_type& k) { return v == text_value(k); }
  static std::string make(const key_type& k) { return text_value(k); }
  static std::string argument(const key_type& k) { return text_value(k); }
};

template <class Traits>
void run_stress() {
  using K = typename Traits::key_type;
  using V = typename Traits::mapped_type;
  using map_type = tandem::rc_map<K, V>;
  tandem::test::watchdog dog("rc_map stress", std::chrono::seconds(120));
  map_type map(8);
  tandem::test::op_budget budget(4'000'000, std::chrono::milliseconds(1000));

  tandem::test::thread_checks checks;
  tandem::test::run_threads(4, [&](std::size_t id) {
    std::mt19937_64 random(id * 7919 + 1);
    std::array<std::optional<typename map_type::handle>, 8> held;
    // Weak handles: their lock() raises a count without the shard lock, racing the last
    // release (which, without weak handles, decides under that lock: release_sole).
    std::array<typename map_type::weak_handle, 4> weak;
    while (budget.next()) {
      const std::uint64_t r = random();
      const K key = Traits::key((r & 1U) != 0 ? 0 : (r >> 8U) % 64);  // half: the hot key
      const std::size_t here = (r >> 20U) % held.size();
      const std::size_t there = (r >> 32U) % held.size();
      auto& slot = held[here];
      switch ((r >> 24U) % 9) {
        case 0:
          slot.emplace(map.get_or_insert_with(key, [&] { return Traits::make(key); }));
          break;
        case 1:
          if (auto h = map.get(key)) slot.emplace(std::move(*h));
          break;
        case 2:
          slot.emplace(map.try_emplace(key, Traits::argument(key)).first);
          break;
        case 3:
          if (slot && *slot && there != here) held[there].emplace(*slot);  // copy
          break;
        case 4:
          if (slot && there != here) held[there] = std::move(slot);  // move
          break;
        case 5:  // handle assignment, possibly self-assignment and over the same entry
          if (slot && held[there]) *held[there] = *slot;
          break;
        case 6:
          if (slot && *slot) weak[there % weak.size()] = *slot;
          break;
        case 7:
          if (auto locked = weak[there % weak.size()].lock()) {
            TANDEM_THREAD_CHECK(checks, Traits::matches(*locked, locked.key()));
            if ((r >> 40U) % 2 == 0) slot.emplace(std::move(locked));
          }
          break;
        default:
          slot.reset();
          if ((r >> 41U) % 4 == 0) weak[there % weak.size()].reset();
          break;
      }
      for (const auto& h : held) {
        if (h && *h) {
          const V& v = **h;
          TANDEM_THREAD_CHECK(checks, Traits::matches(v, h->key()));
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
}  // namespace

TEST_CASE("rc_map stress: handles always see their own entry and the map ends empty") {
  run_stress<int_traits>();
}

TEST_CASE("rc_map stress, std::string keys and values: own entry, intact, map ends empty") {
  run_stress<string_traits>();
}
