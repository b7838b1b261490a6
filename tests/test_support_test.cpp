// Tests for tests/support/test_support.hpp: the helpers other tests rely on.
#include "test_support.hpp"

// The fork tests (registry_teardown_test, sync_asymmetric_fence_test, ...) fork right after
// constructing a watchdog: a child forked while the watchdog's thread was still starting up
// copied a lock of that start-up and hung (rule 63). Red before the fix: the constructor
// returned as soon as std::thread had created the thread, which had usually not run yet.
TEST_CASE("test watchdog: the constructor returns with its thread already waiting") {
  for (int round = 0; round < 100; ++round) {
    CAPTURE(round);
    tandem::test::watchdog dog("watchdog self-test");
    REQUIRE(dog.thread_started());
  }
}
