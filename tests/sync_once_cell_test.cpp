// Tests for include/tandem/sync/once_cell.hpp.
#include <tandem/sync/once_cell.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using tandem::recursive_creation_error;
using tandem::sync::once_cell;

namespace {

// A value that can be neither copied nor moved: it must be constructed in place.
struct pinned {
  explicit pinned(int v) : value(v) {}
  pinned(const pinned&) = delete;
  pinned& operator=(const pinned&) = delete;
  pinned(pinned&&) = delete;
  pinned& operator=(pinned&&) = delete;
  int value;
};

struct counted {
  static inline std::atomic<int> destroyed{0};
  int value = 0;
  explicit counted(int v) : value(v) {}
  counted(const counted&) = delete;
  counted& operator=(const counted&) = delete;
  ~counted() { destroyed.fetch_add(1); }
};

std::string label_of(const void* context) {
  return std::string("\"") + static_cast<const char*>(context) + "\"";
}

// Waits (bounded by the test's watchdog) until flag is true, without sleeping.
// A one-shot signal between test threads (a futex word, as tandem::sync::wait_until needs).
using signal = std::atomic<std::uint32_t>;

void spin_until(const signal& flag) {
  tandem::sync::wait_until(flag, [](std::uint32_t v) { return v != 0; });
}
void raise(signal& flag) {
  flag.store(1);
  tandem::sync::atomic_notify_all(flag);
}

}  // namespace

TEST_CASE("an empty once_cell has no value, get_or_init builds it once and keeps it") {
  once_cell<int> cell;
  CHECK_FALSE(cell.is_ready());
  CHECK(cell.get() == nullptr);
  int calls = 0;
  int& first = cell.get_or_init([&] {
    ++calls;
    return 42;
  });
  int& second = cell.get_or_init([&] {
    ++calls;
    return 7;
  });
  CHECK(first == 42);
  CHECK(&first == &second);
  CHECK(calls == 1);
  CHECK(cell.is_ready());
  CHECK(cell.get() == &first);
  const once_cell<int>& as_const = cell;
  CHECK(as_const.get() == &first);
}

TEST_CASE("once_cell constructs a non-movable T in place from make's prvalue") {
  once_cell<pinned> cell;
  pinned& p = cell.get_or_init([] { return pinned(5); });
  CHECK(p.value == 5);
}

TEST_CASE("once_cell destroys its value exactly once, and only if it was built") {
  counted::destroyed = 0;
  { once_cell<counted> unused; }
  CHECK(counted::destroyed == 0);
  {
    once_cell<counted> cell;
    (void)cell.get_or_init([] { return counted(1); });
  }
  CHECK(counted::destroyed == 1);
}

TEST_CASE("with 8 threads racing, make runs once and every thread gets the same object") {
  tandem::test::watchdog dog("once_cell race");
  for (int round = 0; round < 50; ++round) {
    once_cell<int> cell;
    std::atomic<int> calls{0};
    std::vector<int*> seen(8, nullptr);
    tandem::test::run_threads(8, [&](std::size_t i) {
      seen[i] = &cell.get_or_init([&] {
        calls.fetch_add(1);
        return static_cast<int>(i);
      });
    });
    CHECK(calls == 1);
    for (int* p : seen) CHECK(p == seen[0]);
  }
}

TEST_CASE("a throwing make leaves the cell empty, reaches its caller, and the next call builds") {
  once_cell<int> cell;
  CHECK_THROWS_AS(cell.get_or_init([]() -> int { throw std::runtime_error("boom"); }),
                  std::runtime_error);
  CHECK_FALSE(cell.is_ready());
  CHECK(cell.get() == nullptr);
  CHECK(cell.get_or_init([] { return 3; }) == 3);
}

TEST_CASE("threads waiting on a build that throws retry with their own make instead of hanging") {
  tandem::test::watchdog dog("once_cell retry after throw");
  for (int round = 0; round < 20; ++round) {
    once_cell<int> cell;
    constexpr std::size_t waiters = 4;
    signal building{0};
    std::latch arrived(waiters);
    std::atomic<int> successful_builds{0};
    std::atomic<int> failures_seen{0};
    std::vector<int> results(waiters + 1, -1);
    tandem::test::run_threads(waiters + 1, [&](std::size_t i) {
      if (i == 0) {
        try {
          (void)cell.get_or_init([&]() -> int {
            raise(building);
            arrived.wait();  // every other thread is about to wait for this build
            for (int spin = 0; spin < 1000; ++spin) std::this_thread::yield();
            throw std::runtime_error("first build fails");
          });
        } catch (const std::runtime_error&) {
          failures_seen.fetch_add(1);
        }
        return;
      }
      spin_until(building);
      arrived.count_down();
      results[i] = cell.get_or_init([&] {
        successful_builds.fetch_add(1);
        return static_cast<int>(i);
      });
    });
    CHECK(failures_seen == 1);
    CHECK(successful_builds == 1);
    REQUIRE(cell.get() != nullptr);
    for (std::size_t i = 1; i <= waiters; ++i) CHECK(results[i] == *cell.get());
  }
}

TEST_CASE("different cells build concurrently: no global lock is held while make runs") {
  tandem::test::watchdog dog("independent cells build concurrently", std::chrono::seconds(20));
  once_cell<int> a;
  once_cell<int> b;
  signal a_started{0};
  signal b_started{0};
  std::thread other([&] {
    (void)b.get_or_init([&] {
      raise(b_started);
      spin_until(a_started);
      return 2;
    });
  });
  // Each make waits until the other has started on the other thread, so both run at once: a
  // global lock around make would hang here and the watchdog would fail the test.
  (void)a.get_or_init([&] {
    raise(a_started);
    spin_until(b_started);
    return 1;
  });
  other.join();
  CHECK(*a.get() == 1);
  CHECK(*b.get() == 2);
}

TEST_CASE("make asking for its own cell throws recursive_creation_error and poisons nothing") {
  tandem::test::watchdog dog("once_cell self recursion", std::chrono::seconds(20));
  once_cell<int> cell;
  cell.set_label(&label_of, "self");
  try {
    (void)cell.get_or_init([&] { return cell.get_or_init([] { return 1; }) + 1; });
    FAIL("no recursive_creation_error");
  } catch (const recursive_creation_error& error) {
    CHECK(std::string(error.what()).find("\"self\"") != std::string::npos);
  }
  CHECK_FALSE(cell.is_ready());
  CHECK(cell.get_or_init([] { return 9; }) == 9);
}

// ---- claim_unshared + build_claimed: the creator of a fresh cell skips the compare-and-swap --

TEST_CASE("a claimed cell is built by build_claimed, a thread that finds it meanwhile waits") {
  tandem::test::watchdog dog("once_cell claim + waiter");
  for (int round = 0; round < 20; ++round) {
    once_cell<std::string> cell;
    cell.claim_unshared();  // as a container does before publishing the cell
    CHECK_FALSE(cell.is_ready());
    signal waiting{0};
    std::atomic<int> other_makes{0};
    std::string seen;
    std::thread waiter([&] {
      raise(waiting);
      seen = cell.get_or_init([&] {
        other_makes.fetch_add(1);
        return std::string("the waiter's own value, long enough to own heap memory");
      });
    });
    spin_until(waiting);
    const std::string& built = cell.build_claimed(
        [] { return std::string("the builder's value, long enough to own heap memory"); });
    waiter.join();
    CHECK(built == "the builder's value, long enough to own heap memory");
    CHECK(seen == built);
    CHECK(other_makes == 0);  // once a make returned, no other make runs
  }
}

TEST_CASE("a throwing build_claimed leaves the cell empty and a waiter builds with its own make") {
  tandem::test::watchdog dog("once_cell claim + throw");
  for (int round = 0; round < 20; ++round) {
    once_cell<std::string> cell;
    cell.claim_unshared();
    signal waiting{0};
    std::string seen;
    std::thread waiter([&] {
      raise(waiting);
      seen = cell.get_or_init(
          [] { return std::string("built by the waiter after the claimed build failed"); });
    });
    spin_until(waiting);
    CHECK_THROWS_AS(cell.build_claimed([]() -> std::string {
      for (int spin = 0; spin < 100; ++spin) std::this_thread::yield();  // let the waiter wait
      throw std::runtime_error("the claimed build fails");
    }),
                    std::runtime_error);
    waiter.join();
    CHECK(seen == "built by the waiter after the claimed build failed");
    REQUIRE(cell.get() != nullptr);
    CHECK(*cell.get() == seen);
  }
  // With nobody waiting, the cell is simply empty again, and the next call builds.
  once_cell<int> alone;
  alone.claim_unshared();
  CHECK_THROWS_AS(alone.build_claimed([]() -> int { throw std::runtime_error("fails"); }),
                  std::runtime_error);
  CHECK_FALSE(alone.is_ready());
  CHECK(alone.get_or_init([] { return 7; }) == 7);
}

TEST_CASE("a claimed build whose make needs its own cell throws, naming the chain") {
  tandem::test::watchdog dog("once_cell claim + recursion", std::chrono::seconds(20));
  once_cell<int> a;
  once_cell<int> b;
  a.set_label(&label_of, "a");
  b.set_label(&label_of, "b");
  a.claim_unshared();
  try {
    (void)a.build_claimed(
        [&] { return b.get_or_init([&] { return a.get_or_init([] { return 1; }); }); });
    FAIL("no recursive_creation_error");
  } catch (const recursive_creation_error& error) {
    const std::string what = error.what();
    INFO(what);
    CHECK(what.find("\"a\" -> \"b\" -> \"a\"") != std::string::npos);
  }
  CHECK_FALSE(a.is_ready());
  CHECK_FALSE(b.is_ready());
  CHECK(a.get_or_init([] { return 2; }) == 2);  // nothing poisoned, the thread's stack is clean
  CHECK(b.get_or_init([&] { return a.get_or_init([] { return 3; }) + 1; }) == 3);
}

TEST_CASE("a recursion through other cells on one thread throws, naming the chain") {
  tandem::test::watchdog dog("once_cell recursion through cells", std::chrono::seconds(20));
  once_cell<int> a;
  once_cell<int> b;
  a.set_label(&label_of, "a");
  b.set_label(&label_of, "b");
  auto make_a = [&] { return b.get_or_init([&] { return a.get_or_init([] { return 1; }); }); };
  try {
    (void)a.get_or_init(make_a);
    FAIL("no recursive_creation_error");
  } catch (const recursive_creation_error& error) {
    const std::string what = error.what();
    INFO(what);
    CHECK(what.find("\"a\" -> \"b\" -> \"a\"") != std::string::npos);
  }
  CHECK_FALSE(a.is_ready());
  CHECK_FALSE(b.is_ready());
}

TEST_CASE("a wait-for cycle across two threads throws in one thread and the other finishes") {
  tandem::test::watchdog dog("once_cell cross-thread cycle", std::chrono::seconds(30));
  for (int round = 0; round < 20; ++round) {
    once_cell<int> a;
    once_cell<int> b;
    a.set_label(&label_of, "a");
    b.set_label(&label_of, "b");
    signal a_started{0};
    signal b_started{0};
    std::atomic<int> errors{0};
    std::mutex message_mutex;
    std::string message;
    // Each make needs the other cell; both fall back to a default when told about a cycle, so
    // exactly one thread sees the error and both builds complete.
    auto need = [&](once_cell<int>& other, auto&& make_other) {
      try {
        return other.get_or_init(make_other) + 10;
      } catch (const recursive_creation_error& error) {
        errors.fetch_add(1);
        const std::lock_guard<std::mutex> lock(message_mutex);
        message = error.what();
        return 0;
      }
    };
    std::function<int()> make_a;
    std::function<int()> make_b;
    make_a = [&] {
      raise(a_started);
      spin_until(b_started);
      return need(b, make_b);
    };
    make_b = [&] {
      raise(b_started);
      spin_until(a_started);
      return need(a, make_a);
    };
    tandem::test::run_threads(2, [&](std::size_t i) {
      if (i == 0) {
        (void)a.get_or_init(make_a);
      } else {
        (void)b.get_or_init(make_b);
      }
    });
    CHECK(errors == 1);
    REQUIRE(a.is_ready());
    REQUIRE(b.is_ready());
    // The thread that closed the cycle built its value from the fallback (0); the other built
    // from it (+10).
    CHECK(((*a.get() == 0 && *b.get() == 10) || (*b.get() == 0 && *a.get() == 10)));
    INFO(message);
    CHECK(message.find("\"a\"") != std::string::npos);
    CHECK(message.find("\"b\"") != std::string::npos);
  }
}

TEST_CASE("stress: many threads, many cells, some makes throw, every cell ends built once") {
  tandem::test::watchdog dog("once_cell stress");
  constexpr std::size_t cells = 64;
  std::vector<once_cell<int>> table(cells);
  std::vector<std::atomic<int>> builds(cells);
  std::atomic<int> wrong_values{0};
  tandem::test::op_budget budget(20000, std::chrono::seconds(2));
  tandem::test::run_threads(4, [&](std::size_t t) {
    std::size_t i = t * 7;
    while (budget.next()) {
      i = (i * 31 + 17) % cells;
      const bool fail = (i + t) % 3 == 0;
      try {
        const int v = table[i].get_or_init([&] {
          if (fail) throw std::runtime_error("planned");
          builds[i].fetch_add(1);
          return static_cast<int>(i);
        });
        if (v != static_cast<int>(i)) wrong_values.fetch_add(1);  // Catch is not thread-safe
      } catch (const std::runtime_error&) {
      }
    }
  });
  CHECK(wrong_values == 0);
  for (std::size_t i = 0; i < cells; ++i) CHECK(builds[i] <= 1);
}
