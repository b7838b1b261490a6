// padded_counters: the sync layer's cache_padded and backoff at work.
//
// Two worker threads each count events in their own counter. With the counters side by side in
// one cache line, every increment steals the line from the other core; cache_padded gives each
// counter its own line. The main thread then waits for both workers with tandem's backoff
// policy (spin, yield, then block in atomic::wait) instead of a busy loop.
//
// The output times the same work both ways (best of 5 runs each, so one descheduled run does
// not decide) and prints the ratio: the cost of false sharing on this machine, next to what
// the padding costs in bytes.
#include <tandem/sync/backoff.hpp>
#include <tandem/sync/cache_padded.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>

namespace {

constexpr std::uint64_t events_per_worker = 2'000'000;
constexpr int runs = 5;

using counter = std::atomic<std::uint64_t>;

// The unpadded layout: both counters in one cache line.
struct alignas(tandem::sync::cache_line_size) adjacent_counters {
  std::array<counter, 2> value{};
};

struct run_result {
  double milliseconds;
  std::uint64_t total;
};

// Two workers each add events_per_worker to their own counter; the caller waits with backoff.
run_result count_events(counter& first, counter& second) {
  std::array<counter*, 2> counters{&first, &second};
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
  for (counter* c : counters) total += c->load(std::memory_order_relaxed);
  return {std::chrono::duration<double, std::milli>(elapsed).count(), total};
}

}  // namespace

int main() {
  std::printf(
      "What this shows: two threads each increment their own counter %llu times. Counters\n"
      "that share a cache line make every increment take the line from the other core (false\n"
      "sharing); tandem::sync::cache_padded puts each counter on its own %zu-byte line.\n",
      static_cast<unsigned long long>(events_per_worker), tandem::sync::cache_line_size);

  double adjacent_best = 0;
  double padded_best = 0;
  bool totals_ok = true;
  for (int run = 0; run < runs; ++run) {
    adjacent_counters adjacent;
    const run_result a = count_events(adjacent.value[0], adjacent.value[1]);

    std::array<tandem::sync::cache_padded<counter>, 2> padded{};
    const run_result p = count_events(*padded[0], *padded[1]);
    totals_ok = totals_ok && p.total == 2 * events_per_worker;

    adjacent_best = run == 0 ? a.milliseconds : std::min(adjacent_best, a.milliseconds);
    padded_best = run == 0 ? p.milliseconds : std::min(padded_best, p.milliseconds);
  }

  std::printf("  side by side (%zu bytes apart):  %7.1f ms (best of %d)\n", sizeof(counter),
              adjacent_best, runs);
  std::printf("  cache_padded (%zu bytes apart): %7.1f ms (best of %d)\n",
              sizeof(tandem::sync::cache_padded<counter>), padded_best, runs);
  const double ratio = adjacent_best / padded_best;
  if (ratio >= 1.5) {
    std::printf("  -> false sharing made the same work %.1fx slower here.\n", ratio);
  } else {
    std::printf(
        "  -> only %.1fx in this run: false sharing shows while the two threads\n"
        "     run at the same time on cores with separate caches; a busy machine, a single core\n"
        "     or two hyper-threads of one core hide it (this one has %u hardware threads).\n",
        ratio, std::thread::hardware_concurrency());
  }
  std::printf(
      "     The padding costs %zu bytes per counter: pad data that different threads write.\n",
      sizeof(tandem::sync::cache_padded<counter>) - sizeof(counter));
  std::printf(
      "The main thread waited for the workers with sync::wait_until (spin, yield, then block\n"
      "in atomic::wait), so a wait that lasts milliseconds does not keep a core busy.\n");
  return totals_ok ? 0 : 1;
}
