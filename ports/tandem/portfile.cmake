# vcpkg overlay port for tandem (header-only).
#
#   vcpkg install tandem --overlay-ports=<tandem checkout>/ports
#
# When the port is used from inside a tandem checkout (the overlay case), it builds that
# checkout, so the port always matches the sources next to it. That is the only way that works
# today: no release has been tagged yet.
#
# Copying the port into a registry (the non-overlay case) is for releases. A release must:
#   1. tag the commit as v<version> (vcpkg.json "version-semver" and project(VERSION) agree, and so
#      does include/tandem/version.hpp: configure checks it);
#   2. set TANDEM_RELEASE_SHA512 below to the SHA-512 of that tag's GitHub archive (run the
#      port once with 0: vcpkg prints the actual hash);
#   3. set REPO to the repository the tag lives in.
# Until then the non-overlay path stops with a message instead of fetching a missing tag.
set(VCPKG_BUILD_TYPE release)  # header-only: one configuration is enough

set(TANDEM_RELEASE_SHA512 0)
if(EXISTS "${CMAKE_CURRENT_LIST_DIR}/../../include/tandem/tandem.hpp")
  get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
elseif(TANDEM_RELEASE_SHA512 STREQUAL "0")
  message(FATAL_ERROR
    "tandem: this port has no published release to download (tag v${VERSION} does not exist "
    "yet). Use it as an overlay port from a tandem checkout: "
    "vcpkg install tandem --overlay-ports=<tandem checkout>/ports")
else()
  vcpkg_from_github(
    OUT_SOURCE_PATH SOURCE_PATH
    REPO tandem-cpp/tandem
    REF "v${VERSION}"
    SHA512 ${TANDEM_RELEASE_SHA512}
    HEAD_REF main
  )
endif()

# Feature `redis`: tandem::redis (needs hiredis, which the feature depends on). Without it the
# component is OFF, so a hiredis that happens to be installed is not picked up silently.
vcpkg_check_features(OUT_FEATURE_OPTIONS TANDEM_FEATURE_OPTIONS
  FEATURES
    redis TANDEM_FEATURE_REDIS
)
if(TANDEM_FEATURE_REDIS)
  set(TANDEM_WITH_REDIS ON)
else()
  set(TANDEM_WITH_REDIS OFF)
endif()

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    "-DTANDEM_WITH_REDIS=${TANDEM_WITH_REDIS}"
    -DTANDEM_BUILD_TESTS=OFF
    -DTANDEM_BUILD_BENCHMARKS=OFF
    -DTANDEM_BUILD_EXAMPLES=OFF
    -DTANDEM_INSTALL=ON
)
vcpkg_cmake_install()
# tandem installs its package config here; tests/consumers/run_consumer.cmake checks that the
# install tree has it, reading the path from this line.
vcpkg_cmake_config_fixup(CONFIG_PATH share/cmake/tandem)

# Header-only: drop the empty lib dirs and the pkg-config file's arch-specific copy, if any.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/lib" "${CURRENT_PACKAGES_DIR}/debug")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
