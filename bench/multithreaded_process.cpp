// Linked into every benchmark program (bench/CMakeLists.txt): starts and joins one thread
// before main(), so every benchmark runs in a process that has already been multi-threaded, as
// any program using a concurrency library is.
//
// Why it matters: until a process starts its first thread, glibc's pthread mutexes skip the
// lock prefix of their compare-exchange and libstdc++'s shared_ptr counts without atomic
// instructions (both test __libc_single_threaded). Google Benchmark runs `threads:1` on the
// main thread, so without this a 1-thread row measured the cheap single-threaded mode when no
// multi-threaded benchmark had run yet in that process, and the full cost afterwards: with
// registration order deciding, a mutex baseline registered first was timed in the cheap mode
// and the tandem row after it in the real one (seen on the issue-17 machine: the hand-written
// bus's publish_receive 22 ns before any thread, 43 ns after).
#include <thread>

namespace {

[[maybe_unused]] const bool process_has_started_a_thread = [] {
  std::thread([] {}).join();
  return true;
}();

}  // namespace
