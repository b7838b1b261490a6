// tests/support/tracked_message.hpp -- a heap-owning message that counts its live instances:
// for "every queued message is destroyed, exactly once" tests (a moved-from one keeps counting
// until destroyed; its text is then "").
#pragma once

#include <atomic>
#include <string>
#include <utility>

namespace tandem::test {

struct tracked_message {
  static inline std::atomic<int> live{0};
  std::string text;
  explicit tracked_message(std::string t) : text(std::move(t)) { ++live; }
  tracked_message(const tracked_message& other) : text(other.text) { ++live; }
  tracked_message(tracked_message&& other) noexcept : text(std::move(other.text)) { ++live; }
  tracked_message& operator=(const tracked_message&) = delete;
  tracked_message& operator=(tracked_message&&) = delete;
  ~tracked_message() { --live; }
};

}  // namespace tandem::test
