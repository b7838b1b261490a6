// tests/support/test_support_includes.hpp -- the headers test_support.hpp needs that are not
// tandem's: Catch2 (whichever major version the build found) and the standard library.
//
// It is also the test programs' precompiled header (tests/CMakeLists.txt, tandem_use_test_pch),
// reused only by tests that include test_support.hpp, which brings these headers anyway: the
// precompiled header hides no missing #include in a test. It must never include a tandem header:
// those depend on macros that some test programs set differently (TANDEM_TEST_POINTS,
// TANDEM_ENABLE_ASSERTS, ...).
#pragma once

#if TANDEM_CATCH_MAJOR == 3
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <latch>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>
