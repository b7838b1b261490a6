// tandem/detail/type_contents.hpp -- what a type holds, seen through the standard wrappers.
//
// One walk for every type check that must see inside a type (docs/reliability.md rule 64):
// rc_map_key and registry_key refuse a Key that holds a view (holds_view_v, below), and
// redis_bus's default codec refuses a message that holds an address (detail::holds_address_v,
// redis_bus.hpp). Each check names only its leaf test; where the walk goes is said once here.
#pragma once

#include <atomic>
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
#if defined(__cpp_lib_atomic_ref)
// std::atomic_ref: a reference, with atomic access (found by review, 2026-12-04: an
// rc_map_key until then).
template <class T>
inline constexpr bool is_view_v<std::atomic_ref<T>> = true;
#endif

// A class derived from a view (a zero-terminated string view built on std::string_view, a byte
// view on std::span) is a view too (found by review, 2026-12-04: such keys passed).
template <class Char, class Traits>
std::true_type view_base(const std::basic_string_view<Char, Traits>*);
template <class Element, std::size_t Extent>
std::true_type view_base(const std::span<Element, Extent>*);
template <class T>
concept derives_from_view = std::is_class_v<T> && requires(const T* p) {
  detail::view_base(p);
};

// A class shaped like another library's string view (absl::string_view, which Debian's Abseil
// builds as its own class, boost::string_view, boost::core::string_view): data(), size(), and
// remove_prefix(n) and remove_suffix(n) -- operations only a view of someone else's characters
// offers (an owning string has neither; an owning class of the user's own with both would be
// refused too: none is known in the standard library, Boost, Abseil or ICU). A standard range
// view that is also a borrowed range (std::ranges::subrange, ref_view: its iterators outlive
// it, so it refers to someone else's elements) is a view too; the owning views
// (std::ranges::single_view, owning_view of a std::string) are not borrowed, and are not
// refused (a review of the first version of this check, which took every enable_view type). Found
// by review, 2026-12-05: these passed as keys of double_buffer_map over the flat maps the docs
// recommend (absl's and Boost's own string views as K) and of registry, and a view of a temporary
// was hashed after the call (ASan heap-use-after-free).
template <class T>
concept string_view_shaped = std::is_class_v<T> && requires(T& view, const T& c) {
  c.data();
  c.size();
  view.remove_prefix(std::size_t{1});
  view.remove_suffix(std::size_t{1});
};
// std::ranges::enable_view and enable_borrowed_range are declared by <ranges>; libstdc++ and
// libc++ also declare them in <span> (included above), where they cost nothing, while <ranges>
// adds about a second to every translation unit that includes a tandem header. Elsewhere only
// the shape above is checked.
#if defined(__GLIBCXX__) || defined(_LIBCPP_VERSION)
template <class T>
inline constexpr bool is_range_view_v =
    std::ranges::enable_view<T>&& std::ranges::enable_borrowed_range<T>;
#else
template <class T>
inline constexpr bool is_range_view_v = false;
#endif

// The classes a walk is inside of (see holds below). A class met again inside itself (a tree
// whose value_type holds the tree) is a cycle: it adds nothing to what its other parts hold.
template <class... Ts>
struct type_list {};
template <class T, class List>
inline constexpr bool in_list_v = false;
template <class T, class... Ts>
inline constexpr bool in_list_v<T, type_list<Ts...>> = (std::is_same_v<T, Ts> || ...);
template <class T, class List>
struct push_back;
template <class T, class... Ts>
struct push_back<T, type_list<Ts...>> {
  using type = type_list<Ts..., T>;
};
// A specialisation of a template of types only (std::vector<X>, std::pair<A, B>, ...).
template <class T>
inline constexpr bool is_specialization_v = false;
template <template <class...> class Template, class... Args>
inline constexpr bool is_specialization_v<Template<Args...>> = true;

// How many wrappers deep the walk looks before it gives up. A type nested deeper, or one whose
// parts are new types without end (a value_type that wraps its container in another template),
// gets the answer "holds one": every check made with the walk refuses a type on "holds", so
// what the walk cannot see to the end is refused. (Until 2026-12-04 the limit was 8 and past
// it the answer was "holds none": rc_map<std::map<std::string, std::map<std::string,
// std::map<std::string, std::map<std::string, std::string_view>>>>, V> compiled;
// docs/reliability.md rule 66.)
inline constexpr int holds_depth_limit = 32;

// The member types of the standard's names that a container's or a container adaptor's parts go
// by, each as std::type_identity<part>, or std::type_identity<void> (void holds nothing) when
// the class names none.
template <class T>
auto value_type_of(int) -> std::type_identity<typename T::value_type>;
template <class T>
auto value_type_of(long) -> std::type_identity<void>;
template <class T>
auto key_compare_of(int) -> std::type_identity<typename T::key_compare>;
template <class T>
auto key_compare_of(long) -> std::type_identity<void>;
template <class T>
auto value_compare_of(int) -> std::type_identity<typename T::value_compare>;
template <class T>
auto value_compare_of(long) -> std::type_identity<void>;
template <class T>
auto hasher_of(int) -> std::type_identity<typename T::hasher>;
template <class T>
auto hasher_of(long) -> std::type_identity<void>;
template <class T>
auto key_equal_of(int) -> std::type_identity<typename T::key_equal>;
template <class T>
auto key_equal_of(long) -> std::type_identity<void>;

// The parts of a class derived from std::pair, std::tuple or std::variant (one of them,
// unambiguously), as a type_list.
template <class A, class B>
type_list<A, B> base_parts(const std::pair<A, B>*);
template <class... Ts>
type_list<Ts...> base_parts(const std::tuple<Ts...>*);
template <class... Ts>
type_list<Ts...> base_parts(const std::variant<Ts...>*);

// The parts of T that the walk looks into, as a type_list. The primary template: a type with
// no parts the walk knows (a scalar, a function, or a struct of the user's own, whose members
// C++20 cannot list).
template <class T>
struct parts_of {
  using type = type_list<>;
};
template <class T, std::size_t N>
struct parts_of<T[N]> {
  using type = type_list<T>;
};
template <class A, class B>
struct parts_of<std::pair<A, B>> {
  using type = type_list<A, B>;
};
template <class... Ts>
struct parts_of<std::tuple<Ts...>> {
  using type = type_list<Ts...>;
};
template <class... Ts>
struct parts_of<std::variant<Ts...>> {
  using type = type_list<Ts...>;
};
template <class T>
struct parts_of<std::optional<T>> {
  using type = type_list<T>;
};
// A container (value_type and iterator: std::array, std::vector, std::map, ...): its elements
// and its function objects (a std::reference_wrapper comparator is an address in it). A type
// that only names a value_type (a typed handle naming its target) is no container: its
// value_type is not held (found by a review of the first version of this rule, which took
// every value_type for contents).
template <class T>
concept has_elements = std::is_class_v<T> && requires {
  typename T::value_type;
  typename T::iterator;
};
template <has_elements T>
struct parts_of<T> {
  using type = type_list<typename T::value_type, typename decltype(key_compare_of<T>(0))::type,
                         typename decltype(value_compare_of<T>(0))::type,
                         typename decltype(hasher_of<T>(0))::type,
                         typename decltype(key_equal_of<T>(0))::type>;
};
// A container adaptor (std::queue, std::stack, std::priority_queue): its container and
// comparator.
template <class T>
concept adapts_container = std::is_class_v<T> && !has_elements<T> && requires {
  typename T::container_type;
};
template <adapts_container T>
struct parts_of<T> {
  using type =
      type_list<typename T::container_type, typename decltype(value_compare_of<T>(0))::type>;
};
// A class derived from std::pair, std::tuple or std::variant (std::sub_match is a pair).
template <class T>
concept derives_from_product =
    std::is_class_v<T> && !has_elements<T> && !adapts_container<T> && requires(const T* p) {
  detail::base_parts(p);
};
template <derives_from_product T>
struct parts_of<T> {
  using type = decltype(detail::base_parts(std::declval<const T*>()));
};

template <template <class> class Leaf, class T, class Seen = type_list<>, int Depth = 0>
struct holds;
template <template <class> class Leaf, class Parts, class Seen, int Depth>
struct any_part_holds;
template <template <class> class Leaf, class... Parts, class Seen, int Depth>
struct any_part_holds<Leaf, type_list<Parts...>, Seen, Depth>
    : std::disjunction<holds<Leaf, Parts, Seen, Depth>...> {};

// Seen after entering T: T added when it is a class that is not a specialisation of a template
// of types. A cycle must pass through such a class (a std::vector<X>, pair or optional holds
// only its arguments, which are smaller than itself), so the walk's instantiations depend on
// the path only through those, and a type reached by many paths (pair<vector<X>, optional<X>>,
// nested) is walked once per depth, not once per path (found by review: with every type on
// the path in Seen, 12 such levels took g++ 26 s and 2.8 GB). A template that holds itself
// (template <class X> struct tree { using value_type = pair<const string, tree>; ... }) is
// walked to the depth limit and refused.
template <class T, class Seen>
using seen_after = std::conditional_t<std::is_class_v<T> && !is_specialization_v<T>,
                                      typename push_back<T, Seen>::type, Seen>;

// Whether T is a type for which Leaf<T>::value is true, or holds one at any depth of its
// parts (parts_of): C arrays, std::pair, std::tuple, std::variant, std::optional (and classes
// derived from the first three), containers and their comparators and hashers, container
// adaptors. A reference, at any depth, always counts: it is an address of someone else's
// memory, as a view is. cv-qualifiers are looked through. Not seen: a struct of the user's
// own (unless shaped like a string view: string_view_shaped), std::valarray and
// its slices (no iterator type), smart pointers' targets, a container's allocator
// (std::pmr::polymorphic_allocator holds an address; pmr containers are not trivially
// copyable, so the codec refuses them anyway), std::sub_match's iterators (an identity, as a
// pointer key is). An element type that is incomplete where the check is first made is seen as
// holding nothing, and that answer sticks; one whose wrapper cannot be instantiated with an
// incomplete type (std::optional<Incomplete>) is a compile error where the check is made.
template <template <class> class Leaf, class T, class Seen, int Depth>
struct holds
    : std::disjunction<
          std::is_reference<T>, std::bool_constant<(Depth >= holds_depth_limit)>,
          std::conjunction<
              std::bool_constant<!in_list_v<std::remove_cv_t<T>, Seen>>,
              std::disjunction<Leaf<std::remove_cv_t<T>>,
                               any_part_holds<Leaf, typename parts_of<std::remove_cv_t<T>>::type,
                                              seen_after<std::remove_cv_t<T>, Seen>, Depth + 1>>>> {
};
template <template <class> class Leaf, class T>
inline constexpr bool holds_v = holds<Leaf, T>::value;

// A Key that is or holds a view or a reference, at any depth of the standard wrappers: such a
// Key keeps the caller's memory as surely as a bare view does (found by review, 2026-12-04:
// rc_map<std::array<std::string_view, 1>, V> and rc_map<std::vector<std::string_view>, V>
// compiled; docs/reliability.md rule 64).
template <class T>
struct is_view : std::bool_constant<is_view_v<T> || derives_from_view<T> || string_view_shaped<T> ||
                                    is_range_view_v<T>> {};
template <class T>
inline constexpr bool holds_view_v = holds_v<is_view, T>;

}  // namespace tandem::detail
