// tests/support/double_buffer_helpers.hpp -- shared by the double_buffer, double_buffer_map and
// sync_reader_epochs tests: a recording assertion handler, a value whose assignments fail on
// demand, and the batch-atomicity check of a double_buffer_map.
#pragma once

#include <tandem/sync/assert.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <time.h>

#include "test_support.hpp"

namespace tandem::test {

// Installs a handler that records failed TANDEM_ASSERTs (and returns, so execution goes on);
// restores the previous handler when destroyed. One at a time.
class assertion_recorder {
 public:
  assertion_recorder() : previous_(tandem::set_assertion_handler(&record)) {
    std::lock_guard<std::mutex> lock(mutex());
    messages().clear();
  }
  assertion_recorder(const assertion_recorder&) = delete;
  assertion_recorder& operator=(const assertion_recorder&) = delete;
  ~assertion_recorder() { tandem::set_assertion_handler(previous_); }

  [[nodiscard]] std::size_t count() const {
    std::lock_guard<std::mutex> lock(mutex());
    return messages().size();
  }
  // True when some recorded message contains `text`.
  [[nodiscard]] bool saw(const std::string& text) const {
    std::lock_guard<std::mutex> lock(mutex());
    for (const auto& m : messages()) {
      if (m.find(text) != std::string::npos) return true;
    }
    return false;
  }

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::vector<std::string>& messages() {
    static std::vector<std::string> m;
    return m;
  }
  static void record(const tandem::assertion_info& info) {
    std::lock_guard<std::mutex> lock(mutex());
    messages().emplace_back(info.message);
  }

  tandem::assertion_handler previous_;
};

// thread_cpu_time(): in test_support.hpp.

// A value whose assignments fail on demand (failures_left > 0). Copy assignment fails before
// changing anything (strong); move assignment takes the payload first and then fails -- allowed
// for a move assignment that is not noexcept, and what a double_buffer_map replay must survive.
struct assign_fails {
  static inline int failures_left = 0;
  std::string text;
  explicit assign_fails(std::string t) : text(std::move(t)) {}
  assign_fails(const assign_fails&) = default;
  assign_fails(assign_fails&&) noexcept = default;
  ~assign_fails() = default;
  assign_fails& operator=(const assign_fails& other) {
    if (failures_left > 0) {
      --failures_left;
      throw std::runtime_error("copy assignment refused");
    }
    text = other.text;
    return *this;
  }
  // NOLINTNEXTLINE(performance-noexcept-move-constructor): throwing on purpose
  assign_fails& operator=(assign_fails&& other) {
    text = std::move(other.text);
    if (failures_left > 0) {
      --failures_left;
      throw std::runtime_error("move assignment failed after taking the payload");
    }
    return *this;
  }
  bool operator==(const assign_fails& other) const { return text == other.text; }
};

// Batch atomicity of a double_buffer_map<std::uint64_t, std::int64_t> holding keys 0..15, all 0:
// `reader_threads` readers sum every snapshot they read (zero, with 16 entries, unless a batch is
// torn) while the writer publishes pairs of opposite changes until `budget` runs out. Returns how
// many torn snapshots the readers saw.
template <class Writer, class Reader>
long count_torn_batches(Writer& w, const Reader& r, int reader_threads, op_budget budget) {
  std::atomic<bool> stop{false};
  std::atomic<long> torn{0};
  std::latch started(reader_threads + 1);
  std::vector<std::thread> readers;
  for (int t = 0; t < reader_threads; ++t) {
    readers.emplace_back([&, mine = r]() mutable {
      started.count_down();
      // relaxed: only tells the reader to stop; join() orders its results.
      while (!stop.load(std::memory_order_relaxed)) {
        const auto g = mine.read();
        std::int64_t sum = 0;
        for (const auto& entry : g) sum += entry.second;  // iteration is one snapshot
        if (sum != 0 || g.size() != 16) torn.fetch_add(1);
      }
    });
  }
  started.arrive_and_wait();
  std::vector<std::int64_t> values(16, 0);
  for (std::int64_t i = 1; budget.next(); ++i) {
    const auto a = static_cast<std::uint64_t>(i % 16);
    const auto b = static_cast<std::uint64_t>((i * 7 + 3) % 16);
    if (a == b) continue;
    values[a] += i;
    values[b] -= i;
    w.insert_or_assign(a, values[a]);
    w.insert_or_assign(b, values[b]);
    w.publish();
  }
  stop.store(true);
  for (auto& t : readers) t.join();
  return torn.load();
}

}  // namespace tandem::test
