// Stress test for tandem::double_buffer_map (CTest label "stress").
//
// One writer moves amounts between 64 accounts in batches (every batch keeps the sum at 0) and
// bumps a version key; it publishes (or try_publishes) every batch. Reader threads, which also
// create and drop reader copies as they go, check in every guard: the sum is 0 (a batch is
// seen whole or not at all), the version never goes back, and the guard does not change while
// held (iterating twice gives the same result). At the end every reader sees exactly the
// writer's final state. Runs for TANDEM_STRESS_SECONDS (default 1 s) or its op budget.
#include <tandem/double_buffer_map.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <type_traits>

#include "test_support.hpp"

namespace {
constexpr std::int64_t version_key = 1'000'000;
constexpr int accounts = 64;
}  // namespace

TEST_CASE("double_buffer_map stress: readers only ever see whole batches, in order") {
  tandem::test::watchdog dog("double_buffer_map stress", std::chrono::seconds(120));
  // Named members, not a structured binding: clang 14 cannot capture bindings in lambdas.
  auto made = tandem::make_double_buffer_map<std::int64_t, std::int64_t>();
  auto& writer = made.first;
  auto& reader = made.second;
  std::map<std::int64_t, std::int64_t> model;
  for (std::int64_t k = 0; k < accounts; ++k) {
    writer.insert(k, 0);
    model[k] = 0;
  }
  writer.insert(version_key, 0);
  model[version_key] = 0;
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
          writer.insert_or_assign(from, model[from]);
          writer.insert_or_assign(to, model[to]);
        }
        if (random() % 8 == 0) {  // drop zero accounts (sum unchanged), then re-open them
          writer.erase_if([](const std::int64_t& k, const std::int64_t& v) {
            return k != version_key && v == 0;
          });
          for (auto& [k, v] : model) {
            if (k != version_key && v == 0) writer.insert(k, 0);
          }
        }
        model[version_key] = ++version;
        writer.insert_or_assign(version_key, version);
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
      for (const auto& [k, v] : guard) {
        if (k != version_key) sum += v;
        ++count;
      }
      TANDEM_THREAD_CHECK(checks, sum == 0);
      const std::int64_t* version = guard.find(version_key);
      if (version == nullptr) {
        checks.record(false, "the version key is missing from a snapshot");
        continue;
      }
      TANDEM_THREAD_CHECK(checks, *version >= last_version);
      last_version = *version;
      // The same guard, read again, is the same snapshot.
      std::int64_t again = 0;
      for (const auto& [k, v] : guard) {
        if (k != version_key) again += v;
      }
      TANDEM_THREAD_CHECK(checks, again == sum);
      TANDEM_THREAD_CHECK(checks, guard.size() == count);
      guards_checked.fetch_add(1, std::memory_order_relaxed);
    }
  });
  INFO("first failed check: " << checks.first_failure());
  CHECK(checks.failures() == 0);
  CHECK(checks.checked() > 0);

  writer.publish();
  const auto guard = reader.read();
  std::map<std::int64_t, std::int64_t> seen(guard.begin(), guard.end());
  CHECK(seen == model);
  CHECK(guards_checked.load() > 0);
}
