// tests/support/armed_key_ops.hpp -- user code that throws once armed:
//  - a transparent string Hash and KeyEqual: for "this path calls no user code" tests
//    (releases, unsubscribe, teardown must find their objects by identity, docs/reliability.md
//    rule 9);
//  - a string key whose copies throw (armed_copy_key): for "a throwing K copy changes nothing"
//    tests. It has no move operations, so moving it copies, as for any Key whose move may
//    throw.
//
//   armed_flag::armed = true;   ... the path under test ...   armed_flag::armed = false;
#pragma once

#include <tandem/string_hash.hpp>

#include <atomic>
#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

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

// Copy construction and copy assignment throw std::runtime_error while armed_copy_key::armed.
struct armed_copy_key {
  static inline bool armed = false;
  std::string text;
  explicit armed_copy_key(std::string t) : text(std::move(t)) {}
  armed_copy_key(const armed_copy_key& other) : text(other.text) {
    if (armed) throw std::runtime_error("the key's copy constructor throws");
  }
  armed_copy_key& operator=(const armed_copy_key& other) {
    if (armed) throw std::runtime_error("the key's copy assignment throws");
    text = other.text;
    return *this;
  }
  ~armed_copy_key() = default;
  bool operator==(const armed_copy_key&) const = default;
};

struct armed_copy_key_hash {
  std::size_t operator()(const armed_copy_key& k) const noexcept {
    return std::hash<std::string>{}(k.text);
  }
};

}  // namespace tandem::test
