// tests/support/armed_key_ops.hpp -- a transparent string Hash and KeyEqual that throw once
// armed: for "this path calls no user code" tests (releases, unsubscribe, teardown must find
// their objects by identity, docs/reliability.md rule 9).
//
//   armed_flag::armed = true;   ... the path under test ...   armed_flag::armed = false;
#pragma once

#include <tandem/string_hash.hpp>

#include <atomic>
#include <cstddef>
#include <stdexcept>
#include <string_view>

namespace tandem::test {

struct armed_flag {
  static inline std::atomic<bool> armed{false};
};

struct throwing_when_armed_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view t) const {
    if (armed_flag::armed) throw std::runtime_error("Hash called after arming");
    return tandem::string_hash{}(t);
  }
};

struct throwing_when_armed_equal {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const {
    if (armed_flag::armed) throw std::runtime_error("KeyEqual called after arming");
    return a == b;
  }
};

}  // namespace tandem::test
