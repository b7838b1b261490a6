// padded_counters: the sync layer's cache_padded and backoff at work.
//
// Two worker threads each count events in their own counter. With the counters side by side in
// one cache line, every increment steals the line from the other core; cache_padded gives each
// counter its own line. The main thread then waits for both workers with tandem's backoff
// policy (spin, yield, then block in atomic::wait) instead of a busy loop.
#include <tandem/sync/backoff.hpp>
#include <tandem/sync/cache_padded.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>

int main() {
  constexpr std::uint64_t events_per_worker = 2'000'000;

  std::array<tandem::sync::cache_padded<std::atomic<std::uint64_t>>, 2> counters{};
  std::atomic<int> finished{0};

  const auto start = std::chrono::steady_clock::now();
  std::array<std::thread, 2> workers;
  for (std::size_t w = 0; w < workers.size(); ++w) {
    workers[w] = std::thread([&, w] {
      for (std::uint64_t i = 0; i < events_per_worker; ++i) {
        // relaxed: each counter has one writer; the total is read after the release below.
        counters[w]->fetch_add(1, std::memory_order_relaxed);
      }
      // release: publishes this worker's counts to the main thread's acquire in wait_until.
      finished.fetch_add(1, std::memory_order_release);
      tandem::sync::atomic_notify_one(finished);
    });
  }

  tandem::sync::wait_until(finished, [](int done) { return done == 2; });
  const auto elapsed = std::chrono::steady_clock::now() - start;
  for (auto& t : workers) t.join();

  std::uint64_t total = 0;
  for (auto& c : counters) total += c->load(std::memory_order_relaxed);
  std::printf("2 workers counted %llu events in %.1f ms; each counter on its own %zu-byte line\n",
              static_cast<unsigned long long>(total),
              std::chrono::duration<double, std::milli>(elapsed).count(),
              tandem::sync::cache_line_size);
  return total == 2 * events_per_worker ? 0 : 1;
}
