# tandem_spin_hash_option(<out> <hash bits> <meminfo file> <cgroup dir>): sets <out> to
# -w<hash bits> when pan's 2^<hash bits>-slot state table (8 bytes a slot) fits on top of the
# states (about 4.5 GB for double_buffer.pml with the default table) with 1 GB to spare, else to
# "" (pan's default table: a third more time, never a different verdict) with a log line.
# The memory available is the smaller of /proc/meminfo's MemAvailable and what the cgroup
# still allows (v2: memory.max - memory.current; v1: memory/memory.limit_in_bytes -
# memory/memory.usage_in_bytes): a container's limit is where a CI job meets the OOM killer,
# and MemAvailable shows the host's memory, not it.
function(tandem_spin_hash_option out bits meminfo cgroup)
  set(option "-w${bits}")
  # CMake's math is 64-bit signed: (8 << bits) >> 10 is only exact below 2^60 bytes.
  if(bits GREATER 56)
    message(STATUS "spin: -w${bits} asks for a table of 2^${bits} slots: pan's default is used")
    set(${out} "" PARENT_SCOPE)
    return()
  endif()
  math(EXPR needed_kb "(4500000 + 1000000) + ((8 << ${bits}) >> 10)")
  set(available_kb "")
  if(EXISTS "${meminfo}")
    file(READ "${meminfo}" text)
    if(text MATCHES "MemAvailable: *([0-9]+) kB")
      set(available_kb "${CMAKE_MATCH_1}")
    endif()
  endif()
  foreach(pair IN ITEMS "memory.max|memory.current"
                        "memory/memory.limit_in_bytes|memory/memory.usage_in_bytes")
    string(REPLACE "|" ";" pair "${pair}")
    list(GET pair 0 limit_file)
    list(GET pair 1 usage_file)
    if(EXISTS "${cgroup}/${limit_file}")
      file(READ "${cgroup}/${limit_file}" limit)
      string(STRIP "${limit}" limit)
      set(usage 0)
      if(EXISTS "${cgroup}/${usage_file}")
        file(READ "${cgroup}/${usage_file}" usage)
        string(STRIP "${usage}" usage)
      endif()
      # "max" (v2) or a huge number (v1's "no limit") leaves MemAvailable to decide.
      string(LENGTH "${limit}" digits)
      if(limit MATCHES "^[0-9]+$" AND usage MATCHES "^[0-9]+$" AND digits LESS 18)
        if(usage GREATER_EQUAL limit)
          set(left_kb 0)
        else()
          math(EXPR left_kb "(${limit} - ${usage}) >> 10")
        endif()
        if(available_kb STREQUAL "" OR left_kb LESS available_kb)
          set(available_kb "${left_kb}")
        endif()
      endif()
      break()
    endif()
  endforeach()
  if(NOT available_kb STREQUAL "" AND available_kb LESS needed_kb)
    message(STATUS "spin: ${available_kb} kB available, ${needed_kb} kB wanted for "
                   "-w${bits}: pan's default state table is used")
    set(option "")
  endif()
  set(${out} "${option}" PARENT_SCOPE)
endfunction()
