// tandem/detail/arguments.hpp -- how a component takes an object it will own (a key, a value, a
// message) from its caller.
//
// A parameter taken by value (`void insert(K key, V value)`) makes the caller copy-initialise
// it, and that conversion is out of tandem's hands: from a non-const lvalue a forwarding
// constructor template (`template <class T> M(T&&)`, "wrap any payload") is an exact match for
// M& and wins over the copy constructor, and a null `const char*` becomes
// `std::string(nullptr)` (libc++: a crash in strlen) before any check can run
// (docs/reliability.md rules 52 and 54; found by review, 2026-12-04). So these functions take a
// forwarding reference constrained by sink_argument and build the owned object from
// as_source (or take it from owned_argument) after their checks.
#pragma once

#include <concepts>
#include <type_traits>

#include "port.hpp"

namespace tandem::detail {

// A scalar T (arithmetic, enumeration, pointer) is still taken by value, in an overload of its
// own: the caller's conversion then stays at the caller's line, where -Wconversion sees it (and
// sees that a constant fits; inside a forwarding function `insert(5, 1.0)` into a
// <uint16_t, float> map warned, and through -isystem a narrowing long went unreported), and
// bit-fields and packed members still bind. A scalar has no constructor template and is no
// C string to check (a pointer key is a valid key, null or not). Found by review, 2026-12-04.
template <class T>
concept by_value_sink = std::is_scalar_v<T>;

// Key (and topic) arguments follow the same rule in every function that takes one, sinks and
// lookups alike: for a scalar K a by-value `K key` overload of its own takes every argument the
// function would convert, so that a value-changing conversion (`m.get(i)` with `int i = -1` on
// a std::uint64_t key) is the caller's, seen by -Wconversion / -Wsign-conversion at the
// caller's line (through -isystem too), and a constant that fits is not (found by a new user's
// trial, 2026-12-05: the template forms converted inside the headers with an explicit cast,
// `K(key)`, and no compiler said a word). The by-value overload passes the key on to the
// template form as a caller_converted<K>, an exact match for that form only (its conversion to
// K changes nothing), so that each function's body stays in one place.
template <class K>
struct caller_converted {
  K key;
  // NOLINTNEXTLINE(google-explicit-constructor): what the key concepts ask (convertible to K)
  operator K() const noexcept { return key; }
};

// Whether Q is such a wrapper. It is never a transparent key, whatever a transparent Hash
// accepts: a generic `template <class T> size_t operator()(const T&)` (boost::hash style)
// would otherwise be handed the wrapper itself and fail to compile (found by review,
// 2026-12-05); the component converts it back to K instead, which changes nothing.
template <class Q>
inline constexpr bool is_caller_converted_v = false;
template <class K>
inline constexpr bool is_caller_converted_v<caller_converted<K>> = true;

// What a template form accepts of the key arguments its component allows (Q; UsedAsIs: whether
// the component uses Q as it is, with no K built: K itself or a transparent key): any for a
// non-scalar K. For a scalar K: caller_converted<K>, and a transparent key that does not
// convert to K (a strong id, a `const Foo*` for a `Foo*` key, an `int` for a scoped enum, the
// bus's own hashed topic: used as it is, as std::unordered_map's heterogeneous lookup uses it).
// Every argument that converts to K, K itself included, reaches the by-value overload, so its
// conversion is the caller's, also when a transparent Hash would take it: `int` -1 (or
// `std::cref` of it) on a std::uint64_t key with a Hash that has operator()(std::uint64_t) was
// converted inside the Hash's call, silently (found by review, 2026-12-05; a first fix that
// sent every scalar to the by-value overload refused `const Foo*` and scoped enums' `int`,
// which compiled before). (For K itself both forms would take it equally well, and two
// templates tie in partial ordering when one's parameter is a plain K.)
template <class Q, class K, bool UsedAsIs>
concept forwarded_key =
    !by_value_sink<K> || std::same_as<std::remove_cvref_t<Q>, caller_converted<K>> ||
    (UsedAsIs && !std::is_convertible_v<const std::remove_cvref_t<Q>&, K>);

// What such a function accepts for a T: anything implicitly convertible to T (what a by-value T
// parameter accepted), T itself included. With the template parameter defaulted to T, a braced
// list `{...}` still builds a T.
template <class Arg, class T>
concept sink_argument = std::convertible_to<Arg, T>;

// A T copy-initialised from the argument (implicit conversions only), elided into the caller's.
template <class T, class Arg>
T implicitly_converted(Arg&& arg) {
  return static_cast<Arg&&>(arg);
}

// What to build the owned T from, given an argument: a `const T&` to copy from when the
// argument is a T lvalue or a const T rvalue (a tie that the copy constructor wins over a
// forwarding constructor template; the lvalue itself, `T&`, when T's copy constructor takes a
// non-const T&), a `T&&` to move from when it is a T rvalue, and otherwise (a volatile T too,
// which binds to neither) a T converted implicitly (copy-initialisation, as a by-value parameter
// was). Nothing is copied or moved
// here unless the argument must be converted: pass the result straight on to what builds the
// owned T (push_back, emplace, a node's constructor).
template <class T, class Arg>
decltype(auto) as_source(Arg&& arg) {
  if constexpr (std::same_as<std::remove_cvref_t<Arg>, T> &&
                !std::is_volatile_v<std::remove_reference_t<Arg>>) {
    constexpr bool is_copy =
        std::is_lvalue_reference_v<Arg> || std::is_const_v<std::remove_reference_t<Arg>>;
    if constexpr (is_copy && std::is_convertible_v<const T&, T>) {
      return static_cast<const T&>(arg);
    } else {
      return static_cast<Arg&&>(arg);
    }
  } else {
    return implicitly_converted<T>(static_cast<Arg&&>(arg));
  }
}

// The owned T itself (a prvalue), built from as_source's result.
template <class T, class Arg>
T owned_argument(Arg&& arg) {
  return as_source<T>(static_cast<Arg&&>(arg));
}

}  // namespace tandem::detail
