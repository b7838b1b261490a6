// Tests for include/tandem/version.hpp.
#include <tandem/version.hpp>

#include <string>

#include "test_support.hpp"

TEST_CASE("version: TANDEM_VERSION_STRING spells the numeric version") {
  const std::string expected = std::to_string(TANDEM_VERSION_MAJOR) + "." +
                               std::to_string(TANDEM_VERSION_MINOR) + "." +
                               std::to_string(TANDEM_VERSION_PATCH);
  CHECK(std::string(TANDEM_VERSION_STRING) == expected);
  CHECK(std::string(tandem::version.text) == expected);
  CHECK(TANDEM_VERSION ==
        TANDEM_VERSION_MAJOR * 10000 + TANDEM_VERSION_MINOR * 100 + TANDEM_VERSION_PATCH);
}
