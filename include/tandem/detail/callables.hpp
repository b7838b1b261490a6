// tandem/detail/callables.hpp -- what tandem checks about the Hash and KeyEqual a container is
// given: whether a default-constructed one calls anything, and whether a given one does.
//
// A function pointer or a std::function is a valid Hash type (rc_map, event_bus and
// double_buffer_map accept one with the function passed to their constructor), but its
// default-constructed value is null or empty: a container that builds its Hash with Hash()
// crashes (a null call) or throws std::bad_function_call on its first lookup. So the forms that
// build them (a constructor given no Hash) require detail::works_default_constructed at compile
// time, and the forms that take them refuse a null or empty one with std::invalid_argument
// (require_callable). registry, which takes no Hash from its caller, refuses such types in its
// concepts (registry_hash). Found by review: 2026-12-01 (registry), 2026-12-02 (rc_map,
// event_bus, double_buffer_map; docs/reliability.md rule 36).
#pragma once

#include <concepts>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "port.hpp"

namespace tandem::detail {

// A type whose default-constructed value calls nothing: a pointer (to a function or a member)
// is null, a std::function empty.
template <class F>
struct default_calls_nothing
    : std::bool_constant<std::is_pointer_v<F> || std::is_member_pointer_v<F>> {};
template <class F>
struct default_calls_nothing<const F> : default_calls_nothing<F> {};
template <class F>
struct default_calls_nothing<volatile F> : default_calls_nothing<F> {};
template <class F>
struct default_calls_nothing<const volatile F> : default_calls_nothing<F> {};
template <class Signature>
struct default_calls_nothing<std::function<Signature>> : std::true_type {};
#if defined(__cpp_lib_move_only_function)
template <class Signature>
struct default_calls_nothing<std::move_only_function<Signature>> : std::true_type {};
#endif

// F() is a working function object: default-constructible and not a pointer or std::function.
template <class F>
concept works_default_constructed =
    std::default_initializable<F> && !default_calls_nothing<F>::value;

// Both of a container's function objects work default-constructed (its forms given none).
template <class Hash, class KeyEqual>
concept default_callables = works_default_constructed<Hash> && works_default_constructed<KeyEqual>;

// Whether `f` calls something: false for a null pointer and an empty std::function.
template <class F>
[[nodiscard]] bool calls_something(const F& f) noexcept {
  if constexpr (std::is_pointer_v<F> || std::is_member_pointer_v<F>) {
    return f != nullptr;
  } else if constexpr (default_calls_nothing<F>::value) {
    return static_cast<bool>(f);
  } else {
    return true;
  }
}

// Returns `f`, or, when it calls nothing, throws std::invalid_argument naming the component
// ("tandem::rc_map") and the role ("Hash", "KeyEqual").
template <class F>
const F& require_callable(const F& f, const char* component, const char* role) {
  if (!calls_something(f)) {
    throw std::invalid_argument(std::string(component) + ": the " + role +
                                " is a null function pointer or an empty std::function (pass "
                                "the function itself)");
  }
  return f;
}

}  // namespace tandem::detail
