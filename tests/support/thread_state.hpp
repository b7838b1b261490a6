// Test support: which kernel thread is running, and whether a given thread is asleep, read
// from /proc (Linux). Lets a test act once another thread is really blocked (a publisher
// waiting for room, a writer waiting for a guard) without sleeping for a guessed time.
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace tandem::test {

// The kernel's id of the calling thread.
inline long current_thread_id() {
  return ::syscall(SYS_gettid);
}

// Whether the thread `tid` of this process is asleep (state 'S' in /proc): blocked in a wait.
inline bool thread_is_asleep(long tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const std::size_t end_of_name = line.rfind(')');
  return end_of_name != std::string::npos && end_of_name + 2 < line.size() &&
         line[end_of_name + 2] == 'S';
}

}  // namespace tandem::test
