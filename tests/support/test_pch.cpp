// The translation unit of tandem_test_pch, the target that builds the test programs'
// precompiled header (tests/CMakeLists.txt). It has no code of its own.
#include "test_support_includes.hpp"
