# Runs one consumer test: cmake -DMODE=<find_package|fetchcontent|add_subdirectory>
#   -DTANDEM_SOURCE_DIR=... -DWORK_DIR=... -DCXX_COMPILER=... -DGENERATOR=... -P run_consumer.cmake
#
# find_package: configures tandem alone (tests/benchmarks/examples off), installs it to a fresh
# prefix, checks the install tree has exactly the paths ports/tandem/portfile.cmake relies on,
# then builds and runs the consumer against that prefix.
cmake_minimum_required(VERSION 3.25)

foreach(var MODE TANDEM_SOURCE_DIR WORK_DIR CXX_COMPILER GENERATOR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "${what}: ok")
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

set(consumer_args "-DTANDEM_CONSUMER_MODE=${MODE}" "-DTANDEM_SOURCE_DIR=${TANDEM_SOURCE_DIR}")

if(MODE MATCHES "^find_package")
  set(prefix "${WORK_DIR}/prefix")
  run_step("configure tandem" "${CMAKE_COMMAND}" -S "${TANDEM_SOURCE_DIR}" -B "${WORK_DIR}/tandem"
    -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" -DCMAKE_BUILD_TYPE=Release
    -DTANDEM_BUILD_TESTS=OFF -DTANDEM_BUILD_BENCHMARKS=OFF -DTANDEM_BUILD_EXAMPLES=OFF
    -DTANDEM_INSTALL=ON)
  run_step("install tandem" "${CMAKE_COMMAND}" --install "${WORK_DIR}/tandem" --prefix "${prefix}")

  # The vcpkg port calls vcpkg_cmake_config_fixup(CONFIG_PATH <dir>): that dir must hold the
  # package config. Read <dir> from the portfile itself so that moving either side fails here.
  file(READ "${TANDEM_SOURCE_DIR}/ports/tandem/portfile.cmake" portfile)
  string(REGEX MATCH "CONFIG_PATH[ \t\r\n]+([^ \t\r\n)]+)" _ "${portfile}")
  if(NOT CMAKE_MATCH_1)
    message(FATAL_ERROR "ports/tandem/portfile.cmake has no CONFIG_PATH")
  endif()
  set(config_path "${CMAKE_MATCH_1}")
  foreach(expected IN ITEMS
      "${config_path}/tandemConfig.cmake"
      "${config_path}/tandemConfigVersion.cmake"
      "${config_path}/tandemTargets.cmake"
      "share/pkgconfig/tandem.pc"
      "include/tandem/tandem.hpp"
      "include/tandem/version.hpp"
      "include/tandem/sync/cache_padded.hpp")
    if(NOT EXISTS "${prefix}/${expected}")
      message(FATAL_ERROR "install tree lacks ${expected} (the port expects it)")
    endif()
  endforeach()
  # Header-only: nothing architecture-specific may be installed (vcpkg and ARCH_INDEPENDENT).
  file(GLOB_RECURSE binaries "${prefix}/*.a" "${prefix}/*.so" "${prefix}/*.so.*")
  if(binaries)
    message(FATAL_ERROR "a header-only install contains binaries: ${binaries}")
  endif()
  # Every public header of the source tree is installed.
  file(GLOB_RECURSE source_headers RELATIVE "${TANDEM_SOURCE_DIR}/include"
       "${TANDEM_SOURCE_DIR}/include/tandem/*.hpp")
  foreach(h IN LISTS source_headers)
    if(NOT EXISTS "${prefix}/include/${h}")
      message(FATAL_ERROR "install tree lacks header ${h}")
    endif()
  endforeach()
  # pkg-config users get the include dir and -pthread, each once, and never a -std flag: the
  # language standard is the user's choice (at least C++20). A C++23 build must stay C++23.
  find_program(PKG_CONFIG pkg-config)
  if(PKG_CONFIG)
    set(ENV{PKG_CONFIG_PATH} "${prefix}/share/pkgconfig")
    run_step("pkg-config" "${PKG_CONFIG}" --cflags tandem)
    set(cflags "${step_output}")
    string(REGEX MATCH "-I([^ \n]+)" _ "${cflags}")
    if(NOT EXISTS "${CMAKE_MATCH_1}/tandem/tandem.hpp")
      message(FATAL_ERROR "pkg-config --cflags tandem gave '${cflags}': no usable -I")
    endif()
    string(REGEX MATCHALL "-I" includes "${cflags}")
    string(REGEX MATCHALL "-pthread" pthreads "${cflags}")
    list(LENGTH includes include_count)
    list(LENGTH pthreads pthread_count)
    if(cflags MATCHES "-std=" OR NOT include_count EQUAL 1 OR NOT pthread_count EQUAL 1)
      message(FATAL_ERROR "pkg-config --cflags tandem gave '${cflags}': want -I and -pthread "
                          "once each and no -std flag")
    endif()
    separate_arguments(cflag_list UNIX_COMMAND "${cflags}")
    file(WRITE "${WORK_DIR}/cxx23.cpp" [=[
#include <tandem/tandem.hpp>
static_assert(__cplusplus > 202002L, "compiled as C++20 although -std=c++23 was asked for");
int main() { return tandem::version.major >= 0 ? 0 : 1; }
]=])
    run_step("pkg-config with -std=c++23" "${CXX_COMPILER}" -std=c++23 ${cflag_list}
      "${WORK_DIR}/cxx23.cpp" -o "${WORK_DIR}/cxx23")
  endif()
  list(APPEND consumer_args "-DCMAKE_PREFIX_PATH=${prefix}")
endif()

# FetchContent: the README's snippet as written, pointed at a local clone of this repository
# (its placeholder URL replaced by the clone's path, `app` by the consumer's target name). It
# fetches what is committed, as a user's FetchContent would.
if(MODE STREQUAL "fetchcontent")
  find_program(GIT git REQUIRED)
  execute_process(COMMAND "${GIT}" -C "${TANDEM_SOURCE_DIR}" rev-parse --git-dir
                  RESULT_VARIABLE not_git OUTPUT_QUIET ERROR_QUIET)
  if(not_git)
    message(FATAL_ERROR "the FetchContent consumer test needs ${TANDEM_SOURCE_DIR} to be a git "
                        "clone (it fetches from it as the README says)")
  endif()
  set(clone "${WORK_DIR}/tandem.git")
  run_step("clone tandem" "${GIT}" clone --quiet --bare "${TANDEM_SOURCE_DIR}" "${clone}")
  # The README fetches `main`: make sure the clone has it even if the source is detached.
  execute_process(COMMAND "${GIT}" -C "${clone}" rev-parse --verify --quiet refs/heads/main
                  RESULT_VARIABLE no_main OUTPUT_QUIET)
  if(no_main)
    run_step("branch main" "${GIT}" -C "${clone}" branch main HEAD)
  endif()
  file(READ "${TANDEM_SOURCE_DIR}/README.md" readme)
  string(REGEX MATCH "<!-- fetchcontent-snippet -->[\r\n]+```cmake[\r\n]+(.*)```[\r\n]+<!-- /fetchcontent-snippet -->" _ "${readme}")
  set(snippet "${CMAKE_MATCH_1}")
  # The README names the project's repository (CMakeLists.txt's HOMEPAGE_URL); the test runs
  # the same block against the local clone.
  set(readme_url "https://github.com/tandem-cpp/tandem.git")
  if(NOT snippet MATCHES "FetchContent_Declare" OR NOT snippet MATCHES "GIT_REPOSITORY ${readme_url}")
    message(FATAL_ERROR "README.md has no fetchcontent-snippet block with GIT_REPOSITORY ${readme_url}")
  endif()
  string(REPLACE "${readme_url}" "${clone}" snippet "${snippet}")
  string(REGEX REPLACE "target_link_libraries\\(app " "target_link_libraries(consumer " snippet "${snippet}")
  file(WRITE "${WORK_DIR}/readme_snippet.cmake" "${snippet}")
  message(STATUS "README snippet:\n${snippet}")
  list(APPEND consumer_args "-DTANDEM_FETCH_SNIPPET=${WORK_DIR}/readme_snippet.cmake")
endif()

run_step("configure consumer (${MODE})" "${CMAKE_COMMAND}"
  -S "${CMAKE_CURRENT_LIST_DIR}/project" -B "${WORK_DIR}/consumer"
  -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" -DCMAKE_BUILD_TYPE=Release
  ${consumer_args})
run_step("build consumer (${MODE})" "${CMAKE_COMMAND}" --build "${WORK_DIR}/consumer")
if(EXISTS "${WORK_DIR}/consumer/consumer")
  run_step("run consumer (${MODE})" "${WORK_DIR}/consumer/consumer")
else()
  message(FATAL_ERROR "the consumer program was not built")
endif()
if(MODE STREQUAL "find_package_redis")
  if(NOT EXISTS "${WORK_DIR}/consumer/consumer_redis")
    message(FATAL_ERROR "the tandem::redis consumer program was not built")
  endif()
  run_step("run consumer_redis" "${WORK_DIR}/consumer/consumer_redis")
endif()
message(STATUS "${step_output}")
