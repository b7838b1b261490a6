// tandem/sync/assert.hpp -- TANDEM_ASSERT, the debug check for contract breaches.
//
// What it is for: checks that are too costly for release builds but catch misuse early in
// debug ones (a reader used by two threads at once, a dereferenced empty handle, ...). Errors
// that a caller can meet in a correct program are exceptions, never assertions.
//
// Active when NDEBUG is not defined. Force it either way with TANDEM_ENABLE_ASSERTS=1 or
// TANDEM_ENABLE_ASSERTS=0 (for example to keep the checks in an optimised test build).
//
// On failure the current handler is called with the expression, the message and the location.
// The default handler prints
//     tandem: assertion failed: <expr> (<message>) at <file>:<line> in <function>
// to stderr and calls std::abort(). Tests may install a handler that records the failure; if a
// handler returns, execution continues after the failed check, which is only meaningful in such
// tests -- except after TANDEM_ASSERT_FATAL (a check before a dereference), where a returning
// handler ends the process.
#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "../detail/port.hpp"  // a pre-C++20 build stops with "tandem needs C++20"

#if !defined(TANDEM_ENABLE_ASSERTS)
#if defined(NDEBUG)
#define TANDEM_ENABLE_ASSERTS 0
#else
#define TANDEM_ENABLE_ASSERTS 1
#endif
#endif

namespace tandem {

// Everything known about one failed TANDEM_ASSERT. All strings are static storage.
struct assertion_info {
  const char* expression;
  const char* message;
  const char* file;
  int line;
  const char* function;
};

using assertion_handler = void (*)(const assertion_info&);

namespace detail {

[[noreturn]] inline void default_assertion_handler(const assertion_info& info) noexcept {
  std::fprintf(stderr, "tandem: assertion failed: %s (%s) at %s:%d in %s\n", info.expression,
               info.message, info.file, info.line, info.function);
  std::fflush(stderr);
  std::abort();
}

// Relaxed is enough: installing a handler is a test-setup step that happens-before the code
// under test through the test's own synchronisation (thread creation, latches).
TANDEM_PROCESS_WIDE inline std::atomic<assertion_handler> current_assertion_handler{
    &default_assertion_handler};

inline void assertion_failed(const char* expression, const char* message, const char* file,
                             int line, const char* function) {
  const assertion_info info{expression, message, file, line, function};
  current_assertion_handler.load(std::memory_order_relaxed)(info);
}

// TANDEM_ASSERT_FATAL's failure: the handler (which may throw), then, if it returned, the end
// of the process: the caller's next step would dereference a null pointer.
[[noreturn]] inline void fatal_assertion_failed(const char* expression, const char* message,
                                                const char* file, int line, const char* function) {
  assertion_failed(expression, message, file, line, function);
  std::abort();
}

}  // namespace detail

// Installs `handler` (nullptr restores the default) and returns the previous one.
inline assertion_handler set_assertion_handler(assertion_handler handler) noexcept {
  if (handler == nullptr) handler = &detail::default_assertion_handler;
  return detail::current_assertion_handler.exchange(handler, std::memory_order_relaxed);
}

}  // namespace tandem

#if TANDEM_ENABLE_ASSERTS
// TANDEM_ASSERT(condition, "what was breached"): the message is a string literal.
#define TANDEM_ASSERT(condition, message)                                                    \
  ((condition) ? static_cast<void>(0)                                                        \
               : ::tandem::detail::assertion_failed(#condition, message, __FILE__, __LINE__, \
                                                    static_cast<const char*>(__func__)))
// TANDEM_ASSERT_FATAL: the same check before a step that cannot go on when it fails (a
// dereference of the pointer checked): a handler that returns ends the process (std::abort),
// one that throws throws. Besides, the optimiser then knows the step never sees the failed
// case: with a returning path, g++ 12 -O1 followed it into the dereference and warned
// -Wstringop-overflow in every user's `*handle` (found by a new user's trial, 2026-12-03).
#define TANDEM_ASSERT_FATAL(condition, message)                                                    \
  ((condition) ? static_cast<void>(0)                                                              \
               : ::tandem::detail::fatal_assertion_failed(#condition, message, __FILE__, __LINE__, \
                                                          static_cast<const char*>(__func__)))
#else
// Compiled out: the condition is not evaluated, but it is still parsed and must compile
// (contextually converted to bool, as above: a cast here was -Wuseless-cast for a bool).
#define TANDEM_ASSERT(condition, message) static_cast<void>(sizeof((condition) ? true : false))
#define TANDEM_ASSERT_FATAL(condition, message) \
  static_cast<void>(sizeof((condition) ? true : false))
#endif
