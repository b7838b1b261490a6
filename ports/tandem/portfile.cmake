# vcpkg overlay port for tandem (header-only).
#
#   vcpkg install tandem --overlay-ports=<tandem checkout>/ports
#
# When the port is used from inside a tandem checkout (the overlay case), it builds that
# checkout, so the port always matches the sources next to it. Otherwise it downloads the
# release tag; TANDEM_RELEASE_SHA512 must then be the SHA-512 of that tag's archive (vcpkg
# prints the actual value if it differs; update it when tagging a release).
set(VCPKG_BUILD_TYPE release)  # header-only: one configuration is enough

set(TANDEM_RELEASE_SHA512 0)
if(EXISTS "${CMAKE_CURRENT_LIST_DIR}/../../include/tandem/tandem.hpp")
  get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
else()
  vcpkg_from_github(
    OUT_SOURCE_PATH SOURCE_PATH
    REPO tandem-cpp/tandem
    REF "v${VERSION}"
    SHA512 ${TANDEM_RELEASE_SHA512}
    HEAD_REF main
  )
endif()

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
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
