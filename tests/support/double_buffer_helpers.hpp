// tests/support/double_buffer_helpers.hpp -- shared by the double_buffer, double_buffer_map and
// sync_reader_epochs tests: a recording assertion handler and a thread CPU clock.
#pragma once

#include <tandem/sync/assert.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
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

}  // namespace tandem::test
