# Flat hash maps that double_buffer_map is tested, measured and instruction-counted with as its
# inner map (tests, perf tests and benchmarks only; tandem itself depends on neither):
#   boost::unordered_flat_map  (Boost >= 1.81, header-only; Debian libboost1.81-dev)
#   absl::flat_hash_map        (Abseil's CMake package; Debian libabsl-dev)
# tandem_flat_maps is an INTERFACE target that carries whichever is found, and defines
# TANDEM_HAVE_BOOST_FLAT_MAP=1 / TANDEM_HAVE_ABSL_FLAT_HASH_MAP=1 for each one that is.
if(TARGET tandem_flat_maps)
  return()
endif()
add_library(tandem_flat_maps INTERFACE)

find_path(TANDEM_BOOST_FLAT_MAP_INCLUDE boost/unordered/unordered_flat_map.hpp)
if(TANDEM_BOOST_FLAT_MAP_INCLUDE)
  target_include_directories(tandem_flat_maps SYSTEM INTERFACE "${TANDEM_BOOST_FLAT_MAP_INCLUDE}")
  target_compile_definitions(tandem_flat_maps INTERFACE TANDEM_HAVE_BOOST_FLAT_MAP=1)
endif()

find_package(absl CONFIG QUIET)
if(absl_FOUND AND TARGET absl::flat_hash_map)
  target_link_libraries(tandem_flat_maps INTERFACE absl::flat_hash_map absl::hash)
  target_compile_definitions(tandem_flat_maps INTERFACE TANDEM_HAVE_ABSL_FLAT_HASH_MAP=1)
  set(TANDEM_ABSL_FLAT_HASH_MAP_FOUND TRUE)
else()
  set(TANDEM_ABSL_FLAT_HASH_MAP_FOUND FALSE)
endif()
message(STATUS "tandem: flat inner maps: boost::unordered_flat_map=${TANDEM_BOOST_FLAT_MAP_INCLUDE} "
               "absl::flat_hash_map=${TANDEM_ABSL_FLAT_HASH_MAP_FOUND}")
