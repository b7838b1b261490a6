// Tests for include/tandem/sync/cache_padded.hpp.
#include <tandem/sync/cache_padded.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "test_support.hpp"

using tandem::sync::cache_line_size;
using tandem::sync::cache_padded;

namespace {
struct big {
  std::array<char, 300> bytes{};
};
}  // namespace

TEST_CASE("cache_line_size is a power of two of at least 64 bytes") {
  STATIC_REQUIRE(cache_line_size >= 64);
  STATIC_REQUIRE((cache_line_size & (cache_line_size - 1)) == 0);
}

TEST_CASE("cache_padded is aligned to and sized in whole cache lines") {
  STATIC_REQUIRE(alignof(cache_padded<char>) == cache_line_size);
  STATIC_REQUIRE(sizeof(cache_padded<char>) == cache_line_size);
  STATIC_REQUIRE(alignof(cache_padded<std::atomic<std::uint64_t>>) == cache_line_size);
  STATIC_REQUIRE(sizeof(cache_padded<std::atomic<std::uint64_t>>) == cache_line_size);
  // A value larger than a line takes the next whole number of lines.
  STATIC_REQUIRE(sizeof(cache_padded<big>) % cache_line_size == 0);
  STATIC_REQUIRE(sizeof(cache_padded<big>) >= sizeof(big));
  STATIC_REQUIRE(sizeof(cache_padded<big>) < sizeof(big) + cache_line_size);
}

TEST_CASE("neighbouring cache_padded values never share a cache line") {
  std::array<cache_padded<std::atomic<int>>, 4> slots{};
  for (std::size_t i = 0; i + 1 < slots.size(); ++i) {
    const auto a = reinterpret_cast<std::uintptr_t>(&slots[i].value);
    const auto b = reinterpret_cast<std::uintptr_t>(&slots[i + 1].value);
    CHECK(a % cache_line_size == 0);
    CHECK(a / cache_line_size != b / cache_line_size);
  }
  // Heap allocation honours the over-alignment too (C++17 aligned new).
  auto heap = std::make_unique<cache_padded<int>>(7);
  CHECK(reinterpret_cast<std::uintptr_t>(heap.get()) % cache_line_size == 0);
  CHECK(**heap == 7);
}

TEST_CASE("cache_padded forwards construction and gives access to the value") {
  cache_padded<std::string> from_value(std::string("hello"));
  CHECK(*from_value == "hello");
  CHECK(from_value->size() == 5);
  cache_padded<std::string> in_place(std::in_place, std::size_t{3}, 'x');
  CHECK(in_place.get() == "xxx");
  const cache_padded<int> zero;
  CHECK(*zero == 0);
  STATIC_REQUIRE(!std::is_copy_constructible_v<cache_padded<std::atomic<int>>>);
  STATIC_REQUIRE(std::is_copy_constructible_v<cache_padded<int>>);
}
