// The main() of every test program when Catch2 v2 is used (v3 brings Catch2::Catch2WithMain).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
