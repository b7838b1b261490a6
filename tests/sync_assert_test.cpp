// Tests for include/tandem/sync/assert.hpp.
#include <tandem/sync/assert.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <stdexcept>
#include <string>

#include "test_support.hpp"

namespace {

struct recorded {
  int failures = 0;
  std::string expression;
  std::string message;
  std::string file;
  int line = 0;
  std::string function;
};
recorded last;

void record(const tandem::assertion_info& info) {
  ++last.failures;
  last.expression = info.expression;
  last.message = info.message;
  last.file = info.file;
  last.line = info.line;
  last.function = info.function;
}

int assert_line = 0;

int failing_function(int x) {
  assert_line = __LINE__ + 1;
  TANDEM_ASSERT(x > 10, "x must exceed ten");
  return x;
}

}  // namespace

TEST_CASE("TANDEM_ASSERT reports the expression, the message and the location") {
  last = {};
  auto previous = tandem::set_assertion_handler(&record);
  CHECK(failing_function(3) == 3);
  tandem::set_assertion_handler(previous);

  CHECK(last.failures == 1);
  CHECK(last.expression == "x > 10");
  CHECK(last.message == "x must exceed ten");
  CHECK(last.file.find("sync_assert_test.cpp") != std::string::npos);
  CHECK(last.line == assert_line);
  CHECK(last.function == "failing_function");
}

TEST_CASE("TANDEM_ASSERT is silent and evaluates its condition once when it holds") {
  last = {};
  auto previous = tandem::set_assertion_handler(&record);
  int evaluations = 0;
  TANDEM_ASSERT(++evaluations == 1, "evaluated once");
  tandem::set_assertion_handler(previous);
  CHECK(evaluations == 1);
  CHECK(last.failures == 0);
}

TEST_CASE("set_assertion_handler(nullptr) restores the default handler") {
  auto previous = tandem::set_assertion_handler(&record);
  CHECK(tandem::set_assertion_handler(nullptr) == &record);
  CHECK(tandem::set_assertion_handler(previous) == &tandem::detail::default_assertion_handler);
}

namespace {

int fatal_line = 0;
int* null_pointer = nullptr;  // a global, so that the optimiser cannot see it stays null

int dereference(int* p) {
  fatal_line = __LINE__ + 1;
  TANDEM_ASSERT_FATAL(p != nullptr, "p must not be null");
  return *p;
}

struct fatal_fired : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void throw_fatal(const tandem::assertion_info& info) {
  throw fatal_fired(info.message);
}

}  // namespace

TEST_CASE("TANDEM_ASSERT_FATAL reports like TANDEM_ASSERT and a throwing handler throws") {
  last = {};
  int value = 5;
  auto previous = tandem::set_assertion_handler(&record);
  CHECK(dereference(&value) == 5);  // holds: silent
  CHECK(last.failures == 0);
  tandem::set_assertion_handler(&throw_fatal);
  CHECK_THROWS_AS(dereference(null_pointer), fatal_fired);
  tandem::set_assertion_handler(previous);
}

#if TANDEM_ENABLE_ASSERTS
TEST_CASE("TANDEM_ASSERT_FATAL ends the process when the handler returns") {
  // The step after the check would dereference null: a handler that returns (as the record
  // handler above does for TANDEM_ASSERT) must not let it run.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::alarm(20);
    // Catch2's own SIGABRT handler would report (and fail on) the child's abort.
    static_cast<void>(std::signal(SIGABRT, SIG_DFL));
    static_cast<void>(tandem::set_assertion_handler(&record));
    const int value = dereference(null_pointer);  // the handler records and returns
    ::_exit(value == 0 ? 3 : 4);                  // not reached
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);  // not SIGSEGV, and not an exit after the dereference
}
#endif
