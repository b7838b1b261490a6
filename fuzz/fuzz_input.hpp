// fuzz/fuzz_input.hpp -- what the differential fuzzers share: reading small integers from a
// libFuzzer input one operation at a time, the check that aborts with what failed, and the
// heap-owning strings of the std::string modes.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// A failed check prints what failed and aborts; libFuzzer reports the crash and saves the input.
#define require(condition)                                                                       \
  ((condition) ? static_cast<void>(0)                                                            \
               : (std::fprintf(stderr, "fuzz check failed: %s at %s:%d\n", #condition, __FILE__, \
                               __LINE__),                                                        \
                  std::abort()))

namespace tandem::fuzz {

class input {
 public:
  input(const std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}

  [[nodiscard]] bool empty() const noexcept { return position_ >= size_; }

  // The next byte, or 0 once the input is used up.
  std::uint8_t byte() noexcept { return position_ < size_ ? data_[position_++] : 0; }

  // A value in [0, bound), bound <= 256.
  std::uint8_t below(unsigned bound) noexcept {
    return static_cast<std::uint8_t>(static_cast<unsigned>(byte()) % bound);
  }

  std::uint16_t u16() noexcept {
    const auto high = static_cast<unsigned>(byte());
    return static_cast<std::uint16_t>((high << 8U) | byte());
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t position_ = 0;
};

// The std::string modes use keys, values and messages that own heap memory: a 20-character
// prefix naming what the string is plus a small id, always longer than the 15 characters a
// small-string buffer holds. A moved-from string is then "" (or, if a bug kept a reference to
// freed memory, an AddressSanitizer report), which no model value equals.
inline constexpr std::size_t heap_prefix_length = 20;

inline std::string heap_string(std::string_view what, unsigned id) {
  std::string text;
  text.reserve(heap_prefix_length + 10);  // one allocation: the fuzzers make many of these
  text.append(what.substr(0, heap_prefix_length));
  text.resize(heap_prefix_length, '.');
  text += std::to_string(id);  // at most 10 digits: in its own small-string buffer
  return text;
}

// The id of a heap_string(what, id); `malformed` for anything else (a moved-from "").
inline constexpr unsigned malformed = 1U << 24U;
inline unsigned heap_string_id(std::string_view what, std::string_view text) {
  if (text.size() <= heap_prefix_length) return malformed;
  const std::string_view prefix = text.substr(0, heap_prefix_length);
  if (prefix.substr(0, what.size()) != what) return malformed;
  unsigned id = 0;
  const char* first = text.data() + heap_prefix_length;
  const char* last = text.data() + text.size();
  const auto [end, error] = std::from_chars(first, last, id);
  return error == std::errc{} && end == last ? id : malformed;
}

}  // namespace tandem::fuzz
