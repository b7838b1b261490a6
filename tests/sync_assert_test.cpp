// Tests for include/tandem/sync/assert.hpp.
#include <tandem/sync/assert.hpp>

#include <cstring>
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
