# cmake -DSPIN=... -DMODEL=... -DWORK_DIR=... -DEXPECT=pass|fail [-DDEFINE=-DX]
#       [-DVIOLATION="assertion violated"|"invalid end state"] [-DHASH_BITS=N] -P run_spin.cmake
# Generates the verifier with spin, compiles it with the C compiler, runs the exhaustive search
# (assertions + invalid end states) and checks its "errors: N" line against EXPECT; with
# EXPECT=fail and VIOLATION, the error must be of that kind ("pan:1: <VIOLATION>").
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
find_program(CC NAMES cc gcc clang REQUIRED)
execute_process(COMMAND "${SPIN}" ${DEFINE} -a "${MODEL}" WORKING_DIRECTORY "${WORK_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "spin -a failed:\n${out}")
endif()
# COLLAPSE compresses state vectors (double_buffer.pml stores ~93 million states; 4.9 GB without
# SAFETY). SAFETY leaves out the machinery for cycle (liveness) checks, which these runs never ask
# for (no -a, no -l): the search and its verdicts on assertions and invalid end states are the
# same, in 4.2 GB and about 12% less time (141 s against 160 s here, 2026-12-02).
# A planted bug's search stops at its first error, within a second: there the verifier is
# compiled without optimisation (0.5 s against 1.8 s for -O2, 2026-12-03). The exhaustive
# check, which searches for minutes, keeps -O2.
if(EXPECT STREQUAL "fail")
  set(optimisation -O0)
else()
  set(optimisation -O2)
endif()
execute_process(COMMAND "${CC}" ${optimisation} -w -DCOLLAPSE -DSAFETY -o pan pan.c
                WORKING_DIRECTORY "${WORK_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "compiling the verifier failed:\n${out}")
endif()
# -m: the search depth limit (the model needs ~230). Hitting it would silently cut the search,
# so that is checked below. HASH_BITS (optional) sets -w, the size of pan's table of stored
# states (2^HASH_BITS slots of 8 bytes; pan's default is 2^24). It changes only the table, never
# which states are searched: see model/CMakeLists.txt for where a larger one pays.
# The larger table is only taken where it fits (spin_table_fits.cmake): MemAvailable and the
# cgroup's limit must cover it and the states with 1 GB to spare.
include("${CMAKE_CURRENT_LIST_DIR}/spin_table_fits.cmake")
set(hash_option "")
if(DEFINED HASH_BITS)
  tandem_spin_hash_option(hash_option "${HASH_BITS}" /proc/meminfo /sys/fs/cgroup)
endif()
execute_process(COMMAND ./pan -m100000 ${hash_option} WORKING_DIRECTORY "${WORK_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(out MATCHES "max search depth too small" OR out MATCHES "out of memory")
  message(FATAL_ERROR "the search was not exhaustive:\n${out}")
endif()
string(REGEX MATCH "errors: ([0-9]+)" _ "${out}")
set(errors "${CMAKE_MATCH_1}")
if(errors STREQUAL "")
  message(FATAL_ERROR "no 'errors:' line from the verifier:\n${out}")
endif()
string(REGEX MATCH "([0-9]+) states, stored" stored "${out}")
string(REGEX MATCH "elapsed time [0-9.e+]+ seconds" elapsed "${out}")
if(EXPECT STREQUAL "pass" AND NOT errors EQUAL 0)
  message(FATAL_ERROR "the model found ${errors} error(s):\n${out}")
elseif(EXPECT STREQUAL "fail" AND errors EQUAL 0)
  message(FATAL_ERROR "the planted bug ${DEFINE} was NOT found:\n${out}")
elseif(EXPECT STREQUAL "fail" AND DEFINED VIOLATION AND NOT out MATCHES "pan:1: ${VIOLATION}")
  message(FATAL_ERROR "the planted bug ${DEFINE} was found, but not as '${VIOLATION}':\n${out}")
endif()
string(REGEX MATCH "pan:1: [^\n]*" first_error "${out}")
message(STATUS "spin ${DEFINE}: errors: ${errors} (${stored}, ${elapsed}) as expected "
               "${first_error}")
