// tandem/version.hpp -- the library's version.
//
// Kept in step with `project(tandem VERSION ...)` in CMakeLists.txt: configuring fails when the
// two disagree (cmake/TandemVersionCheck.cmake), so this file can stay a plain header that
// works for users who only set an include path.
#pragma once

#define TANDEM_VERSION_MAJOR 0
#define TANDEM_VERSION_MINOR 1
#define TANDEM_VERSION_PATCH 0

// The same version as text, "MAJOR.MINOR.PATCH", for logs and --version output.
#define TANDEM_VERSION_STRING "0.1.0"

// One number for preprocessor comparisons: MAJOR * 10000 + MINOR * 100 + PATCH.
#define TANDEM_VERSION \
  (TANDEM_VERSION_MAJOR * 10000 + TANDEM_VERSION_MINOR * 100 + TANDEM_VERSION_PATCH)

namespace tandem {

struct version_info {
  int major;
  int minor;
  int patch;
  const char* text;  // TANDEM_VERSION_STRING
};

// The version of the headers this translation unit was compiled against.
inline constexpr version_info version{TANDEM_VERSION_MAJOR, TANDEM_VERSION_MINOR,
                                      TANDEM_VERSION_PATCH, TANDEM_VERSION_STRING};

}  // namespace tandem
