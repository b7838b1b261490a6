// Stress test for tandem::double_buffer_map (CTest label "stress").
//
// One writer moves amounts between 64 accounts in batches (every batch keeps the sum at 0) and
// bumps a version key; it publishes (or try_publishes) every batch. Reader threads, which also
// create and drop reader copies as they go, check in every guard: every key and value is well
// formed (a moved-from std::string key or value would show up as ""), all accounts are there,
// the sum is 0 (a batch is seen whole or not at all), the version never goes back, and the
// guard does not change while held (iterating twice gives the same result). At the end every
// reader sees exactly the writer's final state, in both copies. The test runs twice: with
// integer keys and values, and with std::string keys and values longer than the small-string
// buffer (so that every move of a key or value moves a heap block). The build defines
// TANDEM_STRESS_SYNC_POINTS=1, so the protocol's synchronisation points delay at random. Runs
// for TANDEM_STRESS_SECONDS (default 1 s each) or its op budget. With Boost >= 1.81 installed
// (header-only, found by __has_include) both also run over boost::unordered_flat_map, whose
// replay has no node handles and moves the logged keys and values in.
#include <tandem/double_buffer_map.hpp>

#include <atomic>
#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <type_traits>
#include <unordered_map>

#if __has_include(<boost/unordered/unordered_flat_map.hpp>)
#include <boost/unordered/unordered_flat_map.hpp>
#define TANDEM_STRESS_HAVE_BOOST_FLAT 1
#endif

#include "test_support.hpp"

namespace {

constexpr int accounts = 64;
constexpr std::int64_t version_id = 1'000'000;

// Integer entries: the key is the account number, the value the balance.
struct int_entries {
  using key_type = std::int64_t;
  using value_type = std::int64_t;
  static key_type key(std::int64_t id) { return id; }
  static value_type value(std::int64_t n) { return n; }
  // The id/number an entry encodes, or nullopt when it is malformed.
  static std::optional<std::int64_t> key_id(const key_type& k) { return k; }
  static std::optional<std::int64_t> number(const value_type& v) { return v; }
};

// String entries, both over 15 characters: "account:<id>" and "value:<n>", padded with '#'.
struct string_entries {
  using key_type = std::string;
  using value_type = std::string;
  static std::string encode(const char* prefix, std::int64_t n) {
    std::string text = prefix + std::to_string(n);
    text.resize(40, '#');
    return text;
  }
  static std::optional<std::int64_t> decode(const char* prefix, const std::string& text) {
    const std::string_view view(text);
    const std::string_view head(prefix);
    if (view.size() != 40 || view.substr(0, head.size()) != head) return std::nullopt;
    std::int64_t n = 0;
    const char* first = view.data() + head.size();
    const char* last = view.data() + view.size();
    const auto [end, error] = std::from_chars(first, last, n);
    if (error != std::errc{} || end == first) return std::nullopt;
    for (const char* p = end; p != last; ++p) {
      if (*p != '#') return std::nullopt;
    }
    return n;
  }
  static key_type key(std::int64_t id) { return encode("account:", id); }
  static value_type value(std::int64_t n) { return encode("value:", n); }
  static std::optional<std::int64_t> key_id(const key_type& k) { return decode("account:", k); }
  static std::optional<std::int64_t> number(const value_type& v) { return decode("value:", v); }
};

template <class Entries,
          class Map = std::unordered_map<typename Entries::key_type, typename Entries::value_type,
                                         tandem::default_hash<typename Entries::key_type>,
                                         tandem::default_key_equal<typename Entries::key_type>>>
void run_stress(const char* name) {
  using key_type = typename Entries::key_type;
  using value_type = typename Entries::value_type;
  tandem::test::watchdog dog(name, std::chrono::seconds(120));
  // Named members, not a structured binding: clang 14 cannot capture bindings in lambdas.
  auto made = tandem::double_buffer_map_over<Map>::create();
  auto& writer = made.first;
  auto& reader = made.second;
  const key_type version_key = Entries::key(version_id);
  std::map<std::int64_t, std::int64_t> model;  // id -> number, the writer's truth
  for (std::int64_t k = 0; k < accounts; ++k) {
    writer.insert(Entries::key(k), Entries::value(0));
    model[k] = 0;
  }
  writer.insert(version_key, Entries::value(0));
  model[version_id] = 0;
  writer.publish();

  tandem::test::op_budget budget(2'000'000, std::chrono::milliseconds(1000));
  std::atomic<bool> writer_done{false};
  std::atomic<std::uint64_t> guards_checked{0};
  constexpr std::size_t reader_threads = 2;

  tandem::test::thread_checks checks;
  tandem::test::run_threads(reader_threads + 1, [&](std::size_t id) {
    if (id == 0) {  // the writer
      std::mt19937_64 random(42);
      std::int64_t version = 0;
      while (budget.next()) {
        const int moves = static_cast<int>(random() % 16) + 1;
        for (int i = 0; i < moves; ++i) {
          const auto from = static_cast<std::int64_t>(random() % accounts);
          const auto to = static_cast<std::int64_t>(random() % accounts);
          const auto amount = static_cast<std::int64_t>(random() % 100);
          model[from] -= amount;
          model[to] += amount;
          writer.insert_or_assign(Entries::key(from), Entries::value(model[from]));
          writer.insert_or_assign(Entries::key(to), Entries::value(model[to]));
        }
        if (random() % 8 == 0) {  // drop zero accounts (sum unchanged), then re-open them
          writer.erase_if([&version_key](const key_type& k, const value_type& v) {
            return k != version_key && Entries::number(v) == std::int64_t{0};
          });
          for (auto& [k, v] : model) {
            if (k != version_id && v == 0) writer.insert(Entries::key(k), Entries::value(0));
          }
        }
        model[version_id] = ++version;
        writer.insert_or_assign(version_key, Entries::value(version));
        if (random() % 4 == 0) {
          while (!writer.try_publish()) std::this_thread::yield();
        } else {
          writer.publish();
        }
      }
      writer_done.store(true, std::memory_order_release);
      return;
    }
    auto mine = std::optional<std::remove_reference_t<decltype(reader)>>(reader);
    std::int64_t last_version = 0;
    std::uint64_t rounds = 0;
    while (!writer_done.load(std::memory_order_acquire)) {
      if (++rounds % 64 == 0) {  // a fresh reader copy; then the old one is dropped
        auto fresh = *mine;
        mine.emplace(std::move(fresh));
      }
      const auto guard = mine->read();
      std::int64_t sum = 0;
      std::size_t count = 0;
      bool well_formed = true;
      for (const auto& [k, v] : guard) {
        const auto key_id = Entries::key_id(k);
        const auto number = Entries::number(v);
        if (!key_id || !number || (*key_id != version_id && (*key_id < 0 || *key_id >= accounts))) {
          well_formed = false;
          continue;
        }
        if (*key_id != version_id) sum += *number;
        ++count;
      }
      TANDEM_THREAD_CHECK(checks, well_formed);
      TANDEM_THREAD_CHECK(checks, count == static_cast<std::size_t>(accounts) + 1);
      TANDEM_THREAD_CHECK(checks, sum == 0);
      const value_type* version = guard.find(version_key);
      if (version == nullptr) {
        checks.record(false, "the version key is missing from a snapshot");
        continue;
      }
      const auto version_number = Entries::number(*version);
      if (!version_number) {
        checks.record(false, "the version value is malformed");
        continue;
      }
      TANDEM_THREAD_CHECK(checks, *version_number >= last_version);
      last_version = *version_number;
      // The same guard, read again, is the same snapshot.
      std::int64_t again = 0;
      for (const auto& [k, v] : guard) {
        if (k != version_key) again += Entries::number(v).value_or(0);
      }
      TANDEM_THREAD_CHECK(checks, again == sum);
      TANDEM_THREAD_CHECK(checks, guard.size() == count);
      guards_checked.fetch_add(1, std::memory_order_relaxed);
    }
  });
  INFO("first failed check: " << checks.first_failure());
  CHECK(checks.failures() == 0);
  CHECK(checks.checked() > 0);

  // Both copies hold exactly the model: publish the rest, then one no-op batch to see the other.
  writer.publish();
  for (int copy = 0; copy < 2; ++copy) {
    const auto guard = reader.read();
    std::map<std::int64_t, std::int64_t> seen;
    for (const auto& [k, v] : guard) {
      const auto key_id = Entries::key_id(k);
      const auto number = Entries::number(v);
      REQUIRE(key_id.has_value());
      REQUIRE(number.has_value());
      seen[*key_id] = *number;
    }
    CHECK(seen == model);
    writer.erase(Entries::key(-1));
    writer.publish();
  }
  CHECK(guards_checked.load() > 0);
}

}  // namespace

TEST_CASE("double_buffer_map stress: readers only ever see whole batches, in order (int)") {
  run_stress<int_entries>("double_buffer_map stress (int)");
}

TEST_CASE("double_buffer_map stress: readers only ever see whole batches, in order (string)") {
  run_stress<string_entries>("double_buffer_map stress (string)");
}

#if TANDEM_STRESS_HAVE_BOOST_FLAT
TEST_CASE("double_buffer_map stress over boost::unordered_flat_map (int)") {
  run_stress<int_entries, boost::unordered_flat_map<std::int64_t, std::int64_t>>(
      "double_buffer_map stress over boost::unordered_flat_map (int)");
}

TEST_CASE("double_buffer_map stress over boost::unordered_flat_map (string)") {
  run_stress<string_entries, boost::unordered_flat_map<std::string, std::string,
                                                       tandem::string_hash, tandem::string_equal>>(
      "double_buffer_map stress over boost::unordered_flat_map (string)");
}
#endif
