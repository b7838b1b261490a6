# A compile-fail test: cmake -DCOMPILER=... -DINCLUDE_DIR=... -DSOURCE=... -P check.cmake
#
# SOURCE must NOT compile. Its header comment says what the user must read:
#   // expect-error: <regex>     the FIRST "error" line of the compiler's output matches it
#                                (tandem's class or function, not a line deep in libstdc++);
#   // expect-concept: <name>    the output names this tandem concept (the requirement broken).
cmake_minimum_required(VERSION 3.25)
foreach(var COMPILER INCLUDE_DIR SOURCE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check.cmake: -D${var}=... is required")
  endif()
endforeach()
file(READ "${SOURCE}" text)
string(REGEX MATCH "// expect-error: ([^\n]+)" _ "${text}")
set(expect_error "${CMAKE_MATCH_1}")
string(REGEX MATCH "// expect-concept: ([^\n]+)" _ "${text}")
set(expect_concept "${CMAKE_MATCH_1}")
if(expect_error STREQUAL "" OR expect_concept STREQUAL "")
  message(FATAL_ERROR "${SOURCE} lacks // expect-error: or // expect-concept:")
endif()
execute_process(COMMAND "${COMPILER}" -std=c++20 -fsyntax-only "-I${INCLUDE_DIR}" "${SOURCE}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(output "${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must be rejected")
endif()
string(REGEX MATCH "[^\n]*error[^\n]*" first_error "${output}")
if(NOT first_error MATCHES "${expect_error}")
  message(FATAL_ERROR "the first error is not tandem's:\n  ${first_error}\nexpected it to match: "
                      "${expect_error}\nfull output:\n${output}")
endif()
if(NOT output MATCHES "${expect_concept}")
  message(FATAL_ERROR "the output does not name the concept ${expect_concept}:\n${output}")
endif()
message(STATUS "rejected as expected; first error: ${first_error}")
