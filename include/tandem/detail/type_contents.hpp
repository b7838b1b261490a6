// tandem/detail/type_contents.hpp -- what a type holds, seen through the standard wrappers.
//
// One walk for every type check that must see inside a type (docs/reliability.md rule 64):
// rc_map_key and registry_key refuse a Key that holds a view (holds_view_v, below), and
// redis_bus's default codec refuses a message that holds an address (detail::holds_address_v,
// redis_bus.hpp). Each check names only its leaf test; where the walk goes is said once here.
#pragma once

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "port.hpp"

namespace tandem::detail {

// A view (std::basic_string_view, std::span): its bytes are an address of someone else's
// memory. Not a Key for a container that builds its entries from a call's argument and keeps
// them past the call (registry, rc_map), and not a message to send to another process
// (redis_bus's default codec).
template <class T>
inline constexpr bool is_view_v = false;
template <class Char, class Traits>
inline constexpr bool is_view_v<std::basic_string_view<Char, Traits>> = true;
template <class T, std::size_t Extent>
inline constexpr bool is_view_v<std::span<T, Extent>> = true;
// std::reference_wrapper: a reference, so an address, as a view is.
template <class T>
inline constexpr bool is_view_v<std::reference_wrapper<T>> = true;
// std::initializer_list: a pointer and a length into the caller's array.
template <class T>
inline constexpr bool is_view_v<std::initializer_list<T>> = true;

// How many wrappers deep holds_v looks. A type whose elements hold the type itself (a tree
// whose value_type holds the tree) would otherwise instantiate without end; past this depth the
// answer is "holds none".
inline constexpr int holds_depth_limit = 8;

// The parts of T that holds_v looks into, one specialisation per kind of wrapper. The primary
// template: T has no parts the walk knows (a scalar, or a struct of the user's own).
template <template <class> class Leaf, class T, int Depth>
struct parts_hold : std::false_type {};

// holds_v<Leaf, T>: whether T is a type for which Leaf<T>::value is true, or holds one at any
// depth of the standard wrappers: a C array, a container (a type with value_type and iterator:
// std::array, std::vector, std::map, ...), std::pair, std::tuple, std::optional, std::variant.
// A reference, at any depth, always counts: it is an address of someone else's memory, as a
// view is. cv-qualifiers are looked through. Not seen: a struct of the user's own (C++20 cannot
// list its members) and std::ranges' views (subrange, ref_view), which would need <ranges>.
template <template <class> class Leaf, class T, int Depth = 0>
inline constexpr bool holds_v = std::disjunction_v<
    std::is_reference<T>,
    std::conjunction<
        std::bool_constant<(Depth < holds_depth_limit)>,
        std::disjunction<Leaf<std::remove_cv_t<T>>, parts_hold<Leaf, std::remove_cv_t<T>, Depth>>>>;

template <template <class> class Leaf, class T, std::size_t N, int Depth>
struct parts_hold<Leaf, T[N], Depth> : std::bool_constant<holds_v<Leaf, T, Depth + 1>> {};

// A container: value_type and iterator, with elements of another type than itself (a
// std::filesystem::path-like type whose elements are paths is no container of anything new).
template <class T>
concept has_elements = requires {
  typename T::value_type;
  typename T::iterator;
}
&&!std::is_same_v<std::remove_cv_t<typename T::value_type>, T>;
template <template <class> class Leaf, class T, int Depth>
requires has_elements<T>
struct parts_hold<Leaf, T, Depth>
    : std::bool_constant<holds_v<Leaf, typename T::value_type, Depth + 1>> {
};

template <template <class> class Leaf, class A, class B, int Depth>
struct parts_hold<Leaf, std::pair<A, B>, Depth>
    : std::bool_constant<holds_v<Leaf, A, Depth + 1> || holds_v<Leaf, B, Depth + 1>> {};
template <template <class> class Leaf, class... Ts, int Depth>
struct parts_hold<Leaf, std::tuple<Ts...>, Depth>
    : std::bool_constant<(holds_v<Leaf, Ts, Depth + 1> || ...)> {};
template <template <class> class Leaf, class T, int Depth>
struct parts_hold<Leaf, std::optional<T>, Depth> : std::bool_constant<holds_v<Leaf, T, Depth + 1>> {
};
template <template <class> class Leaf, class... Ts, int Depth>
struct parts_hold<Leaf, std::variant<Ts...>, Depth>
    : std::bool_constant<(holds_v<Leaf, Ts, Depth + 1> || ...)> {};

// A Key that is or holds a view or a reference, at any depth of the standard wrappers: such a
// Key keeps the caller's memory as surely as a bare view does (found by review, 2026-12-04:
// rc_map<std::array<std::string_view, 1>, V> and rc_map<std::vector<std::string_view>, V>
// compiled; docs/reliability.md rule 64).
template <class T>
struct is_view : std::bool_constant<is_view_v<T>> {};
template <class T>
inline constexpr bool holds_view_v = holds_v<is_view, T>;

}  // namespace tandem::detail
