# Fails the configure step when include/tandem/version.hpp disagrees with project(VERSION).
# version.hpp is a checked-in header (not generated) so that users who only set an include path
# still get it; this check is what keeps the two in step.
function(tandem_check_version_header header)
  file(READ "${header}" _text)
  foreach(_part MAJOR MINOR PATCH)
    string(REGEX MATCH "#define TANDEM_VERSION_${_part} ([0-9]+)" _match "${_text}")
    if(NOT _match)
      message(FATAL_ERROR "${header} does not define TANDEM_VERSION_${_part}")
    endif()
    if(NOT CMAKE_MATCH_1 EQUAL PROJECT_VERSION_${_part})
      message(FATAL_ERROR
        "${header} says TANDEM_VERSION_${_part} ${CMAKE_MATCH_1} but project() says "
        "${PROJECT_VERSION_${_part}}: update one of them")
    endif()
  endforeach()
  string(REGEX MATCH "#define TANDEM_VERSION_STRING \"([0-9.]+)\"" _match "${_text}")
  if(NOT _match OR NOT CMAKE_MATCH_1 STREQUAL PROJECT_VERSION)
    message(FATAL_ERROR
      "${header}: TANDEM_VERSION_STRING is '${CMAKE_MATCH_1}' but project() says "
      "${PROJECT_VERSION}: update one of them")
  endif()
endfunction()
