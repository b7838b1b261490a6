// fuzz/fuzz_input.hpp -- reads small integers from a libFuzzer input, one operation at a time.
#pragma once

#include <cstddef>
#include <cstdint>

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

}  // namespace tandem::fuzz
