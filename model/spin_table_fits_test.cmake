# cmake -DWORK_DIR=... -P spin_table_fits_test.cmake: tandem_spin_hash_option with made-up
# /proc/meminfo and cgroup files (no spin needed).
include("${CMAKE_CURRENT_LIST_DIR}/spin_table_fits.cmake")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/v2" "${WORK_DIR}/v1/memory" "${WORK_DIR}/none")
file(WRITE "${WORK_DIR}/meminfo" "MemTotal: 65000000 kB\nMemAvailable:   24000000 kB\n")
function(expect bits cgroup wanted)
  tandem_spin_hash_option(got "${bits}" "${WORK_DIR}/meminfo" "${WORK_DIR}/${cgroup}")
  if(NOT got STREQUAL "${wanted}")
    message(FATAL_ERROR "-w${bits} with cgroup '${cgroup}': got '${got}', wanted '${wanted}'")
  endif()
endfunction()
expect(28 none "-w28")  # 24 GB available, 7.6 GB wanted
expect(34 none "")      # 140 GB wanted
expect(61 none "")      # (8 << 61) overflowed CMake's math into a small number
# A container limited to 4 GB on a host with 24 GB available: the limit decides.
file(WRITE "${WORK_DIR}/v2/memory.max" "4294967296\n")
file(WRITE "${WORK_DIR}/v2/memory.current" "104857600\n")
expect(28 v2 "")
file(WRITE "${WORK_DIR}/v2/memory.max" "max\n")
expect(28 v2 "-w28")
file(WRITE "${WORK_DIR}/v1/memory/memory.limit_in_bytes" "4294967296\n")
file(WRITE "${WORK_DIR}/v1/memory/memory.usage_in_bytes" "104857600\n")
expect(28 v1 "")
file(WRITE "${WORK_DIR}/v1/memory/memory.limit_in_bytes" "9223372036854771712\n")
expect(28 v1 "-w28")
