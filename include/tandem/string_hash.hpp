// tandem/string_hash.hpp -- the default hash and equality for string keys in every component.
//
// What it is for: one rule for all four components. A component whose key is std::string (or
// std::string_view) uses tandem::string_hash and tandem::string_equal by default; both are
// transparent (is_transparent), so every lookup (find, get, contains, use_count, visit, erase,
// the hit path of get_or_create / get_or_insert_with / try_emplace) takes a std::string_view,
// a const char* or a std::string without building a std::string: a std::string key is
// constructed only when an entry is actually created. Other key types default to std::hash
// and std::equal_to. tandem::default_hash<Key> / default_key_equal<Key> name the choice.
//
// Pass your own Hash/KeyEqual to any component; make them transparent (a nested
// `using is_transparent = void;`) to get the same allocation-free lookups for your key type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include "detail/port.hpp"

namespace tandem {

// tandem's hash for string keys (the default of every component for std::string keys): hashes any
// string-like argument as a string_view, so lookups by std::string_view or const char* need no
// std::string. On the hit path the hash is
// the longest dependency chain, so it is built for latency (the idea of wyhash's "mum" step):
// the string is read as 64-bit words (overlapping at the ends, so only fixed-size loads), and
// pairs of words are combined by one 64x64->128-bit multiply whose halves are xor-folded;
// independent pairs multiply in parallel. A name of up to 32 bytes costs two multiplies in
// sequence. It is not keyed, so it is no defence against adversarial keys (hash flooding):
// use a keyed hash for keys an adversary chooses. (Chosen bytes collapse it: for instance
// every 16-byte key whose last 8 bytes equal k0 ^ 16 hashes to 0, so such keys share one
// shard, bucket and filter slot. Keys an adversary names -- topics from clients -- need a
// keyed hash, or a check that rejects them, such as valid UTF-8.)
namespace detail {
// An unsigned word of the bytes at p, at any alignment (string_hash's and string_equal's loads).
template <class Word>
Word load_word(const unsigned char* p) noexcept {
  Word word;
  std::memcpy(&word, p, sizeof word);
  return word;
}

// A C string argument that is a null pointer: std::string_view(nullptr) is undefined (strlen
// of a null pointer), so every string lookup refuses it here, before any view of it is made
// (docs/reliability.md rule 52).
// (An array, such as a string literal, is never null: only pointers are checked.)
// std::nullptr_t too: a component would build its Key (std::string(nullptr)) from it.
template <class K>
inline constexpr bool is_c_string_v =
    std::is_same_v<K, std::nullptr_t> ||
    (std::is_pointer_v<K> && std::is_same_v<std::remove_cv_t<std::remove_pointer_t<K>>, char>);
// What a null C string argument was: a null `char*` / `const char*`, or the `nullptr` literal.
enum class null_argument { c_string, nullptr_literal };
// The message names what the caller passed and what the component calls its keys (`noun`:
// "key", or "topic" for the buses). Both are required: with a defaulted noun, a caller that
// passed one where a defaulted bool stood would not be told (a string literal converts to
// bool); `passed` is a scoped enum, to which nothing converts.
[[noreturn]] TANDEM_NOINLINE inline void throw_null_c_string_key(const char* where,
                                                                 const char* noun,
                                                                 null_argument passed) {
  throw std::invalid_argument(
      std::string(where) + ": " +
      (passed == null_argument::nullptr_literal ? "nullptr" : "a null const char*") + " is not a " +
      noun + " (no string can be read from a null pointer)");
}
// Key: the component's key type. When it is a pointer itself, a null pointer is a valid key
// (its Hash decides what a null one means), and nothing is refused here.
template <class Key, class K>
void check_not_null_c_string(const K& key, const char* where, const char* noun) {
  if constexpr (!std::is_same_v<K, Key> && !std::is_pointer_v<Key> && is_c_string_v<K> &&
                (!std::is_same_v<K, std::nullptr_t> || std::is_convertible_v<const char*, Key>)) {
    if (key == nullptr) {
      throw_null_c_string_key(where, noun,
                              std::is_same_v<K, std::nullptr_t> ? null_argument::nullptr_literal
                                                                : null_argument::c_string);
    }
  }
}
}  // namespace detail

struct TANDEM_PROCESS_WIDE string_hash {
  using is_transparent = void;
  // Every output bit depends on every input bit (the final 128-bit multiply-fold): components
  // use the result as it is, without their own remix (see hash_is_avalanching_v below).
  using is_avalanching = std::true_type;
  // A C string: a null one throws std::invalid_argument (a view of it would be undefined).
  // A template on char pointers only: a plain const char* overload also took every type
  // convertible to const char*, and one convertible to both const char* and std::string_view
  // (an interned-string handle) became ambiguous, so no component accepted it as a key.
  template <class C>
  requires std::is_same_v < std::remove_cv_t<C>,
  char > std::size_t operator()(C* text) const {
    if (text == nullptr) {
      detail::throw_null_c_string_key("tandem::string_hash", "key",
                                      detail::null_argument::c_string);
    }
    return (*this)(std::string_view(text));
  }
  [[noreturn]] std::size_t operator()(std::nullptr_t /*null*/) const {
    detail::throw_null_c_string_key("tandem::string_hash", "key",
                                    detail::null_argument::nullptr_literal);
  }
  std::size_t operator()(std::string_view text) const noexcept {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t length = text.size();
    const std::uint64_t seed = k0 ^ static_cast<std::uint64_t>(length);
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    if (length <= 16) {
      if (length >= 8) {
        a = load64(p);
        b = load64(p + length - 8);
      } else if (length >= 4) {
        a = load32(p);
        b = load32(p + length - 4);
      } else if (length > 0) {
        a = (static_cast<std::uint64_t>(p[0]) << 16) |
            (static_cast<std::uint64_t>(p[length / 2]) << 8) | p[length - 1];
      }
      return detail::to_size(fold(fold(a ^ k1, b ^ seed), seed ^ k2));
    }
    // More than 16 bytes: 32-byte blocks, each two multiplies in parallel, then the last 32
    // bytes (overlapping the previous block, or the first 16 when length <= 32).
    const unsigned char* const end = p + length;
    std::uint64_t h = seed;
    for (std::size_t rest = length; rest > 32; rest -= 32, p += 32) {
      h = fold(load64(p) ^ k1, load64(p + 8) ^ h) ^ fold(load64(p + 16) ^ k2, load64(p + 24) ^ h);
    }
    const unsigned char* const tail = length > 32 ? end - 32 : p;
    h = fold(load64(tail) ^ k1, load64(tail + 8) ^ h) ^
        fold(load64(end - 16) ^ k2, load64(end - 8) ^ h);
    return detail::to_size(fold(h ^ k3, seed ^ k2));
  }

 private:
  // Odd constants with about half of their bits set (from the golden ratio and splitmix64).
  static constexpr std::uint64_t k0 = 0x9E3779B97F4A7C15ULL;
  static constexpr std::uint64_t k1 = 0xBF58476D1CE4E5B9ULL;
  static constexpr std::uint64_t k2 = 0x94D049BB133111EBULL;
  static constexpr std::uint64_t k3 = 0xD6E8FEB86659FD93ULL;

  // The 128-bit product of x and y, its two halves xor-ed together.
  static std::uint64_t fold(std::uint64_t x, std::uint64_t y) noexcept {
#if defined(__SIZEOF_INT128__)
    __extension__ using wide = unsigned __int128;
    const wide product = static_cast<wide>(x) * y;
    return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
#else
    // Portable 64x64->128 from four 32x32->64 products.
    const std::uint64_t xl = x & 0xFFFFFFFFU, xh = x >> 32, yl = y & 0xFFFFFFFFU, yh = y >> 32;
    const std::uint64_t ll = xl * yl, lh = xl * yh, hl = xh * yl, hh = xh * yh;
    const std::uint64_t mid = (ll >> 32) + (lh & 0xFFFFFFFFU) + (hl & 0xFFFFFFFFU);
    const std::uint64_t low = (mid << 32) | (ll & 0xFFFFFFFFU);
    const std::uint64_t high = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
    return low ^ high;
#endif
  }
  static std::uint64_t load64(const unsigned char* p) noexcept {
    return detail::load_word<std::uint64_t>(p);
  }
  static std::uint64_t load32(const unsigned char* p) noexcept {
    return detail::load_word<std::uint32_t>(p);
  }
};

namespace detail {

template <class Hash>
constexpr bool declares_avalanching() noexcept {
  if constexpr (requires { typename Hash::is_avalanching; }) {
    using marker = typename Hash::is_avalanching;
    if constexpr (requires { marker::value; }) {
      return static_cast<bool>(marker::value);
    } else {
      return true;  // a marker without a value: its presence says yes (as Boost 1.81 reads it)
    }
  } else if constexpr (requires { Hash::is_avalanching; }) {
    static_assert(!sizeof(Hash*),
                  "tandem::hash_is_avalanching_v: Hash::is_avalanching must be a type (using "
                  "is_avalanching = std::true_type;), not a value: a value is not read, here "
                  "or by Boost.Unordered");
    return false;
  } else {
    return false;
  }
}

}  // namespace detail

// Whether Hash declares that its output is already spread over all bits of its std::size_t
// (changing any input bit flips each output bit with probability about 1/2), by a nested
// `is_avalanching` type: the marker Boost.Unordered reads (boost::unordered::
// hash_is_avalanching). `using is_avalanching = std::true_type;` says yes to both libraries.
// tandem reads a marker's `value` (std::false_type says no) and takes a marker without one
// (such as void) as yes; Boost 1.81, the one Debian 12 ships, reads the presence alone, so
// there std::false_type says yes too (later Boost versions read the value, as tandem does).
// A `static constexpr bool is_avalanching` is refused at compile time: nobody reads a value.
// The marker is inherited: a class derived from string_hash that weakens its result must
// declare std::false_type.
// tandem's hashed containers (rc_map, event_bus's topic map, registry) take shard and bucket
// from different bits of the hash, so for a Hash without the marker, or whose result is
// narrower than std::size_t, they first remix it (the MurmurHash3 finaliser, about 13
// instructions: std::hash of an integer is the identity); with the marker they use it as it
// is. string_hash declares it. Declare it only for a hash that really avalanches: a weak one
// (identity-like, or good in its low bits only) then piles keys into few shards and buckets
// (correct, but slow).
template <class Hash>
inline constexpr bool hash_is_avalanching_v = detail::declares_avalanching<Hash>();

namespace detail {

// Whether a component uses Hash's result for Key as it is (it avalanches over a full
// std::size_t) rather than remixing it.
template <class Hash, class Key>
inline constexpr bool hash_used_as_is_v = hash_is_avalanching_v<Hash> &&
                                          sizeof(std::invoke_result_t<const Hash&, const Key&>) >=
                                              sizeof(std::size_t);

}  // namespace detail

// Transparent equality for string keys: compares any two string-like arguments as
// std::string_view (no std::string is built). Every lookup that finds its key compares it
// once, after the hashes matched, so it is on every hit path. Up to 32 bytes it compares
// inline, with fixed-size loads that overlap at the ends (as string_hash reads): a name of
// 17 bytes is four 8-byte loads per side and no call, where `a == b` calls memcmp (through
// the PLT: about 20% of a registry hit's time, perf, 2026-12-03). Longer strings use memcmp.
struct TANDEM_PROCESS_WIDE string_equal {
  using is_transparent = void;
  constexpr bool operator()(std::string_view a, std::string_view b) const noexcept {
    if (std::is_constant_evaluated()) return a == b;
    const std::size_t length = a.size();
    if (length != b.size()) return false;
    const unsigned char* p = reinterpret_cast<const unsigned char*>(a.data());
    const unsigned char* q = reinterpret_cast<const unsigned char*>(b.data());
    const auto word = detail::load_word<std::uint64_t>;
    const auto half = detail::load_word<std::uint32_t>;
    if (length >= 8) {
      if (length > 32) return std::memcmp(p, q, length) == 0;
      // 8..32 bytes: the first and last 8 (overlapping below 16), and for more than 16 the
      // first and last 16.
      std::uint64_t differ = (word(p) ^ word(q)) | (word(p + length - 8) ^ word(q + length - 8));
      if (length > 16) {
        differ |= (word(p + 8) ^ word(q + 8)) | (word(p + length - 16) ^ word(q + length - 16));
      }
      return differ == 0;
    }
    if (length >= 4) {
      return ((half(p) ^ half(q)) | (half(p + length - 4) ^ half(q + length - 4))) == 0;
    }
    // 0..3 bytes: the first, middle and last byte cover them all.
    return length == 0 ||
           (p[0] == q[0] && p[length / 2] == q[length / 2] && p[length - 1] == q[length - 1]);
  }
};

// Whether Key gets tandem's string hash and equality by default.
template <class Key>
inline constexpr bool is_string_key_v =
    std::is_same_v<Key, std::string> || std::is_same_v<Key, std::string_view>;

// The default Hash of every component: string_hash for string keys, else std::hash<Key>.
template <class Key>
using default_hash = std::conditional_t<is_string_key_v<Key>, string_hash, std::hash<Key>>;

// The default KeyEqual of every component: string_equal for string keys, else
// std::equal_to<Key>.
template <class Key>
using default_key_equal =
    std::conditional_t<is_string_key_v<Key>, string_equal, std::equal_to<Key>>;

}  // namespace tandem
