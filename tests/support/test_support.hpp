// tests/support/test_support.hpp -- what every tandem test includes first.
//
//  - Catch2, whichever major version the build found (v2: <catch2/catch.hpp>, v3: catch_all).
//  - tandem::test::watchdog: fails the test program, with a message, if a test would hang.
//  - tandem::test::op_budget: the fixed budget a stress test runs for (operations and time).
//  - tandem::test::run_threads: start threads that meet on a latch before running.
//  - tandem::test::manual_clock: a steady Clock that moves only when a test advances it.
//  - TANDEM_TEST_SKIP_UNDER_TSAN_IF_CHILD_STARTS_THREADS(): for fork tests whose child starts
//    threads, which ThreadSanitizer refuses.
#pragma once

// Catch2 and the standard headers used below (also the tests' precompiled header).
#include "test_support_includes.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include <tandem/detail/port.hpp>  // TANDEM_TSAN

namespace tandem::test {

// Sanitizers slow code down 5-15x; bounds scale with TANDEM_TEST_TIME_SCALE (default 1).
inline double time_scale() {
  static const double scale = [] {
    const char* text = std::getenv("TANDEM_TEST_TIME_SCALE");
    const double value = text != nullptr ? std::atof(text) : 1.0;
    return value > 0 ? value : 1.0;
  }();
  return scale;
}

// Fails the whole test program if it is still alive `limit` after construction: a hung
// concurrency test ends as a clear failure instead of a CI time-out. Destroy it (leave the
// scope) when the guarded part is done. The constructor returns once the watchdog's thread is
// parked in its wait, so a test may fork() right after it (rule 63).
class watchdog {
 public:
  explicit watchdog(std::string what, std::chrono::milliseconds limit = std::chrono::seconds(60))
      : what_(std::move(what)),
        limit_(std::chrono::duration_cast<std::chrono::milliseconds>(limit * time_scale())),
        thread_([this] { run(); }) {
    // Returns once the thread runs and waits: a test that forks right after must not copy into
    // its child a lock that this thread's start-up holds (a forked child starting a thread hung
    // on ASan's allocator lock, taken by the watchdog's start-up at the fork: 2 runs in 19 of
    // registry_teardown_test's "a build in flight at exit finishes safely", 2026-12-03; rule 63).
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return started_; });
  }
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  // Whether the thread has run up to its wait (true for the whole life of the object once the
  // constructor has returned; test_support_test checks it).
  [[nodiscard]] bool thread_started() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return started_;
  }
  ~watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_one();  // the one waiter now: the watchdog's thread
    thread_.join();
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    started_ = true;
    cv_.notify_one();  // the constructor, the only other waiter; it wakes once this waits below
    if (!cv_.wait_for(lock, limit_, [this] { return done_; })) {
      std::fprintf(stderr, "tandem test watchdog: '%s' did not finish within %lld ms: hung?\n",
                   what_.c_str(), static_cast<long long>(limit_.count()));
      std::fflush(stderr);
      std::_Exit(3);
    }
  }

  std::string what_;
  std::chrono::milliseconds limit_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool started_ = false;
  bool done_ = false;
  std::thread thread_;  // last: starts after the members it uses exist
};

// A stress test's fixed budget: at most `max_ops` operations and at most `max_time` (scaled by
// CPU time consumed by the calling thread (POSIX CLOCK_THREAD_CPUTIME_ID): for tests that check
// a waiting thread sleeps instead of spinning.
inline std::chrono::nanoseconds thread_cpu_time() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

// TANDEM_STRESS_SECONDS when set, for long runs by hand). Thread-safe to query.
class op_budget {
 public:
  // With TANDEM_STRESS_SECONDS set, the time alone bounds the run: the operation budget is
  // lifted, so a long run by hand really runs that long.
  op_budget(std::size_t max_ops, std::chrono::milliseconds max_time)
      : max_ops_(stress_seconds_set() ? std::numeric_limits<std::size_t>::max() / 2 : max_ops),
        deadline_(std::chrono::steady_clock::now() + scaled(max_time)) {}

  // Call once per operation; false when the budget is spent.
  bool next() noexcept {
    const std::size_t done = ops_.fetch_add(1, std::memory_order_relaxed);
    if (done >= max_ops_) return false;
    // Reading the clock every operation would dominate short operations.
    if ((done & 255U) == 0 && std::chrono::steady_clock::now() >= deadline_) {
      ops_.store(max_ops_, std::memory_order_relaxed);
      return false;
    }
    return true;
  }

 private:
  static bool stress_seconds_set() {
    const char* text = std::getenv("TANDEM_STRESS_SECONDS");
    return text != nullptr && std::atof(text) > 0;
  }
  static std::chrono::milliseconds scaled(std::chrono::milliseconds t) {
    if (const char* text = std::getenv("TANDEM_STRESS_SECONDS")) {
      const double seconds = std::atof(text);
      if (seconds > 0) return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
    }
    return t;
  }

  std::size_t max_ops_;
  std::chrono::steady_clock::time_point deadline_;
  std::atomic<std::size_t> ops_{0};
};

// Catch2's assertion macros may only be used on the test's own thread. Other threads record
// their checks here (lock-free), and the test asserts on the result after joining them:
//   tandem::test::thread_checks checks;  ...  TANDEM_THREAD_CHECK(checks, v == 3);  ...
//   REQUIRE(checks.failures() == 0);  // INFO(checks.first_failure())
class thread_checks {
 public:
  void record(bool ok, const char* what) noexcept {
    checked_.fetch_add(1, std::memory_order_relaxed);
    if (ok) return;
    if (failures_.fetch_add(1, std::memory_order_relaxed) == 0) {
      first_.store(what, std::memory_order_relaxed);
    }
  }
  [[nodiscard]] int failures() const noexcept { return failures_.load(std::memory_order_relaxed); }
  [[nodiscard]] long checked() const noexcept { return checked_.load(std::memory_order_relaxed); }
  [[nodiscard]] const char* first_failure() const noexcept {
    const char* what = first_.load(std::memory_order_relaxed);
    return what != nullptr ? what : "(none)";
  }

 private:
  std::atomic<int> failures_{0};
  std::atomic<long> checked_{0};
  std::atomic<const char*> first_{nullptr};
};

// First statement of a test whose forked child starts threads: ThreadSanitizer refuses threads
// started in a child forked from a multi-threaded process ("starting new threads after
// multi-threaded fork is not supported"; the test's watchdog is a thread), so under TSan the
// test says so and returns. The plain and ASan builds run it.
#define TANDEM_TEST_SKIP_UNDER_TSAN_IF_CHILD_STARTS_THREADS()                \
  do {                                                                       \
    if (TANDEM_TSAN) {                                                       \
      SUCCEED("not under ThreadSanitizer: the forked child starts threads"); \
      return;                                                                \
    }                                                                        \
  } while (false)

#define TANDEM_TEST_STRINGIFY_(x) #x
#define TANDEM_TEST_STRINGIFY(x) TANDEM_TEST_STRINGIFY_(x)
#define TANDEM_THREAD_CHECK(checks, condition)  \
  (checks).record(static_cast<bool>(condition), \
                  #condition " at line " TANDEM_TEST_STRINGIFY(__LINE__))

// A steady Clock (for rc_map's linger) that moves only when a test says so, from 1 s on. Never
// reset: a test's deadlines are relative to it. One per test program.
struct manual_clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<manual_clock>;
  static constexpr bool is_steady = true;
  static inline std::atomic<rep> ticks{1'000'000'000};
  static time_point now() noexcept { return time_point(duration(ticks.load())); }
  static void advance(duration d) noexcept { ticks.fetch_add(d.count()); }
};

// Runs body(i) on `count` threads that all start together (they meet on a latch), and joins
// them. The caller's thread waits in join, so wrap the call in a watchdog.
inline void run_threads(std::size_t count, const std::function<void(std::size_t)>& body) {
  std::latch start(static_cast<std::ptrdiff_t>(count));
  std::vector<std::thread> threads;
  threads.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      body(i);
    });
  }
  for (auto& t : threads) t.join();
}

// A typed handle that only names its target as value_type (an index and a generation, no
// address): a key for rc_map and registry and a message for redis_bus's default codec,
// whatever Target is (the type walk of docs/reliability.md rule 66 once took it for a
// container of Target).
template <class Target>
struct typed_handle {
  using value_type = Target;
  std::uint32_t index;
  std::uint32_t generation;
};

// A type that "wraps any payload": a non-explicit forwarding constructor template (for anything
// but std::string), the exact match for a non-const lvalue wraps_any& in copy-initialisation, so
// it beats the copy constructor there (docs/reliability.md rule 54). `text` says what built the
// object: the std::string it was given, or forwarded_text when the template built it. Behaviour
// (optional) gives it a call operator: Behaviour::call(text, args...) -- a double_buffer op, an
// erase_if predicate, a registry factory. Compare and hash by `text` (wraps_any_hash).
template <class Behaviour = void>
struct wraps_any {
  static constexpr const char* forwarded_text = "built by the forwarding constructor";
  explicit wraps_any(std::string t) : text(std::move(t)) {}
  wraps_any(const wraps_any&) = default;
  wraps_any(wraps_any&&) noexcept = default;
  wraps_any& operator=(const wraps_any&) = default;
  wraps_any& operator=(wraps_any&&) noexcept = default;
  ~wraps_any() = default;
  template <class T>
  requires(!std::is_same_v<std::remove_cvref_t<T>, std::string>) wraps_any(
      T&& /*payload*/)  // NOLINT(google-explicit-constructor,bugprone-forwarding-reference-overload)
      : text(forwarded_text) {}
  template <class... Args>
  requires(!std::is_void_v<Behaviour>) decltype(auto) operator()(Args&&... args) const {
    return Behaviour::call(text, std::forward<Args>(args)...);
  }
  bool operator==(const wraps_any& other) const { return text == other.text; }
  std::string text;
};
// A generic transparent Hash and KeyEqual (boost::hash style: any T): over a scalar key, each
// component must hand them a K, as std::unordered_map does (rule 70: the by-value overload's
// wrapper reached them, and std::hash of the wrapper does not exist; found by review,
// 2026-12-05).
struct generic_hash {
  using is_transparent = void;
  template <class T>
  std::size_t operator()(const T& value) const noexcept {
    return std::hash<T>{}(value);
  }
};
struct generic_equal {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const noexcept {
    return a == b;
  }
};
struct wraps_any_hash {
  template <class Behaviour>
  std::size_t operator()(const wraps_any<Behaviour>& w) const noexcept {
    return std::hash<std::string>{}(w.text);
  }
};

}  // namespace tandem::test
