# cmake -DSPIN=... -DMODEL=... -DWORK_DIR=... -DEXPECT=pass|fail [-DDEFINE=-DX] -P run_spin.cmake
# Generates the verifier with spin, compiles it with the C compiler, runs the exhaustive search
# (assertions + invalid end states) and checks its "errors: N" line against EXPECT.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
find_program(CC NAMES cc gcc clang REQUIRED)
execute_process(COMMAND "${SPIN}" ${DEFINE} -a "${MODEL}" WORKING_DIRECTORY "${WORK_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "spin -a failed:\n${out}")
endif()
# COLLAPSE compresses state vectors (the correct model stores ~29 million states).
execute_process(COMMAND "${CC}" -O2 -w -DCOLLAPSE -o pan pan.c WORKING_DIRECTORY "${WORK_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "compiling the verifier failed:\n${out}")
endif()
execute_process(COMMAND ./pan -m10000000 WORKING_DIRECTORY "${WORK_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
string(REGEX MATCH "errors: ([0-9]+)" _ "${out}")
set(errors "${CMAKE_MATCH_1}")
if(errors STREQUAL "")
  message(FATAL_ERROR "no 'errors:' line from the verifier:\n${out}")
endif()
string(REGEX MATCH "([0-9]+) states, stored" stored "${out}")
if(EXPECT STREQUAL "pass" AND NOT errors EQUAL 0)
  message(FATAL_ERROR "the model found ${errors} error(s):\n${out}")
elseif(EXPECT STREQUAL "fail" AND errors EQUAL 0)
  message(FATAL_ERROR "the planted bug ${DEFINE} was NOT found:\n${out}")
endif()
message(STATUS "spin ${DEFINE}: errors: ${errors} (${stored}) as expected")
