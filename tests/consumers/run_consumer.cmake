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

if(MODE STREQUAL "find_package")
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
  # pkg-config users get the include dir and C++20.
  find_program(PKG_CONFIG pkg-config)
  if(PKG_CONFIG)
    set(ENV{PKG_CONFIG_PATH} "${prefix}/share/pkgconfig")
    run_step("pkg-config" "${PKG_CONFIG}" --cflags tandem)
    string(REGEX MATCH "-I([^ \n]+)" _ "${step_output}")
    if(NOT EXISTS "${CMAKE_MATCH_1}/tandem/tandem.hpp" OR NOT step_output MATCHES "c\\+\\+20")
      message(FATAL_ERROR "pkg-config --cflags tandem gave '${step_output}'")
    endif()
  endif()
  list(APPEND consumer_args "-DCMAKE_PREFIX_PATH=${prefix}")
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
message(STATUS "${step_output}")
