# Flags for tandem's own tests, benchmarks and examples -- never for the INTERFACE target.
#
# tandem_dev_target(<target>) adds the warning set every header must compile cleanly under;
# the dev/CI presets turn on TANDEM_WARNINGS_AS_ERRORS.
option(TANDEM_WARNINGS_AS_ERRORS "Treat warnings as errors in tandem's own targets" OFF)

set(TANDEM_DEV_WARNINGS -Wall -Wextra -Wpedantic -Wconversion -Wshadow)

# lld links a test program in 0.3-0.6 s where GNU ld takes 1.1-1.9 s (g++ -g and clang++ ASan
# builds, measured 2026-12-03); a CI run links about 250 (docs/building.md, "CI").
# Used only for tandem's own programs, and only when the compiler accepts it.
option(TANDEM_USE_LLD "Link tandem's own tests, benchmarks and examples with lld when it works" ON)
if(TANDEM_USE_LLD AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  include(CheckLinkerFlag)
  check_linker_flag(CXX "-fuse-ld=lld" TANDEM_LLD_LINKS)
endif()

function(tandem_dev_target target)
  if(TANDEM_LLD_LINKS)
    target_link_options(${target} PRIVATE -fuse-ld=lld)
  endif()
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE ${TANDEM_DEV_WARNINGS})
    if(TANDEM_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  elseif(MSVC)
    target_compile_options(${target} PRIVATE /W4 /permissive-)
    if(TANDEM_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE /WX)
    endif()
  endif()
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
  target_link_libraries(${target} PRIVATE tandem::tandem)
endfunction()

# Flat inner maps for double_buffer_map's tests, perf tests and benchmarks (tandem_flat_maps).
include("${CMAKE_CURRENT_LIST_DIR}/TandemFlatMaps.cmake")
