// tests/support/double_buffer_helpers.hpp -- shared by the double_buffer, double_buffer_map and
// sync_reader_epochs tests: a recording assertion handler and a thread CPU clock.
#pragma once

#include <tandem/sync/assert.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <time.h>

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

}  // namespace tandem::test
