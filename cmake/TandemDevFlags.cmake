# Flags for tandem's own tests, benchmarks and examples -- never for the INTERFACE target.
#
# tandem_dev_target(<target>) adds the warning set every header must compile cleanly under;
# the dev/CI presets turn on TANDEM_WARNINGS_AS_ERRORS.
option(TANDEM_WARNINGS_AS_ERRORS "Treat warnings as errors in tandem's own targets" OFF)

set(TANDEM_DEV_WARNINGS -Wall -Wextra -Wpedantic -Wconversion -Wshadow)

function(tandem_dev_target target)
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
