# A compile-fail test: cmake -DCOMPILER=... -DINCLUDE_DIR=... -DSOURCE=... -P check.cmake
#
# SOURCE must NOT compile. Its header comment says what the user must read:
#   // expect-error: <regex>     the FIRST "error" line of the compiler's output matches it
#                                (tandem's class or function, not a line deep in libstdc++);
#   // expect-concept: <name>    the output names this tandem concept (the requirement broken).
# Or, for a conversion the caller makes (a warning made an error, rule 70), instead of
# expect-concept:
#   // compile-flags: <flags>    added to the command line; tandem is then included as a system
#                                header (-isystem), as a CMake consumer includes it, where
#                                warnings inside tandem's headers are not shown;
#   // expect-errors: <n>        exactly n errors are reported at SOURCE's own lines (one per
#                                call the file makes: each call's conversion is seen).
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
string(REGEX MATCH "// compile-flags: ([^\n]+)" _ "${text}")
separate_arguments(compile_flags UNIX_COMMAND "${CMAKE_MATCH_1}")
string(REGEX MATCH "// expect-errors: ([0-9]+)" _ "${text}")
set(expect_errors "${CMAKE_MATCH_1}")
if(expect_error STREQUAL "" OR (expect_concept STREQUAL "" AND expect_errors STREQUAL ""))
  message(FATAL_ERROR "${SOURCE} lacks // expect-error: or // expect-concept: (or // expect-errors:)")
endif()
set(include_option "-I${INCLUDE_DIR}")
if(compile_flags)
  set(include_option -isystem "${INCLUDE_DIR}")
endif()
execute_process(COMMAND "${COMPILER}" -std=c++20 -fsyntax-only ${compile_flags} ${include_option}
                        "${SOURCE}"
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
if(NOT expect_concept STREQUAL "" AND NOT output MATCHES "${expect_concept}")
  message(FATAL_ERROR "the output does not name the concept ${expect_concept}:\n${output}")
endif()
if(NOT expect_errors STREQUAL "")
  get_filename_component(source_name "${SOURCE}" NAME)
  string(REGEX MATCHALL "${source_name}:[0-9]+:[0-9]+: error:" own_errors "${output}")
  list(LENGTH own_errors own_error_count)
  if(NOT own_error_count EQUAL expect_errors)
    message(FATAL_ERROR "${own_error_count} errors at ${source_name}'s lines, expected "
                        "${expect_errors}:\n${output}")
  endif()
endif()
message(STATUS "rejected as expected; first error: ${first_error}")
