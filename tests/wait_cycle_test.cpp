// Cycles of waits across tandem's components (sync/once_cell.hpp, thread_wait): a thread that
// holds a double_buffer read guard, or receives on a full overflow_policy::block subscription,
// and waits for a registry build whose factory needs that guard gone or that room made. Each
// such cycle is an exception on the thread that would close it, never a hang (found by review,
// 2026-12-01: both hung; docs/reliability.md rule 12). The threads meet on latches; where a
// test needs "the other thread is now blocked", it polls tandem's wait-for graph (bounded by
// the watchdog), never a sleep.
#include <tandem/double_buffer.hpp>
#include <tandem/event_bus.hpp>
#include <tandem/registry.hpp>

#include <atomic>
#include <cstdint>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if TANDEM_CATCH_MAJOR == 3
#include <catch2/catch_test_macros.hpp>
#else
#include <catch2/catch.hpp>
#endif

#include "test_support.hpp"

namespace {

struct append {
  std::string text;
  void operator()(std::vector<std::string>& lines) const { lines.push_back(text); }
};

struct service {
  std::string name;
};

// Polls until the thread with `serial` is blocked in a wait tandem's graph knows of.
void wait_until_blocked(std::uint64_t serial) {
  for (;;) {
    {
      const std::lock_guard<std::mutex> lock(tandem::detail::graph_mutex());
      if (tandem::detail::find_waiting(serial) != nullptr) return;
    }
    std::this_thread::yield();
  }
}

const std::string config_key(40, 'c');

}  // namespace

TEST_CASE(
    "wait cycle: a guard holder that waits for a build whose factory publishes gets "
    "recursive_creation_error (the publish blocked first)") {
  tandem::test::watchdog dog("guard holder waits for a build that publishes");
  auto pair = tandem::make_double_buffer<std::vector<std::string>, append>();
  auto& writer = pair.first;
  auto& reader = pair.second;
  tandem::registry<service> registry;
  std::latch guard_open(1);
  std::atomic<std::uint64_t> builder_serial{0};
  std::string built;  // checked on the main thread
  std::thread builder([&] {
    builder_serial.store(tandem::detail::thread_serial());
    guard_open.wait();
    writer.push(append{std::string(40, '1')});
    writer.publish();  // does not wait: the guard acknowledged the generation before it
    built = registry
                .get_or_create_with(config_key,
                                    [&] {
                                      writer.push(append{std::string(40, '2')});
                                      writer.publish();  // waits for the main thread's guard
                                      return service{std::string(40, 's')};
                                    })
                ->name;
  });
  std::string error;
  {
    const auto guard = reader.read();
    guard_open.count_down();
    while (builder_serial.load() == 0) std::this_thread::yield();
    wait_until_blocked(builder_serial.load());  // the builder's publish waits for `guard`
    try {
      (void)registry.get_or_create(config_key);  // would wait for that build: a cycle
    } catch (const tandem::recursive_creation_error& e) {
      error = e.what();
    }
  }  // the guard goes: the builder's publish goes on
  builder.join();
  INFO(error);
  CHECK(error.find("a read guard") != std::string::npos);
  CHECK(error.find("this thread") != std::string::npos);
  CHECK(built == std::string(40, 's'));
  CHECK(reader.read()->size() == 2);
}

TEST_CASE(
    "wait cycle: a publish that would wait for the guard of a thread waiting for its build "
    "throws logic_error (the guard holder waited first)") {
  tandem::test::watchdog dog("publish waits for a guard whose holder waits for the build");
  auto pair = tandem::make_double_buffer<std::vector<std::string>, append>();
  auto& writer = pair.first;
  auto& reader = pair.second;
  tandem::registry<service> registry;
  std::latch guard_open(1);
  std::latch holder_waits(1);
  std::atomic<std::uint64_t> holder_serial{0};
  const std::thread::id builder_id = std::this_thread::get_id();
  std::string held_name;  // checked on the main thread
  std::thread holder([&] {
    holder_serial.store(tandem::detail::thread_serial());
    const auto guard = reader.read();
    guard_open.count_down();
    holder_waits.wait();
    // Waits for the main thread's build; when that build fails, builds it itself.
    held_name = registry.get_or_create_with(config_key, [] { return service{"fallback"}; })->name;
  });
  guard_open.wait();
  writer.push(append{std::string(40, '1')});
  writer.publish();
  std::string error;
  try {
    (void)registry.get_or_create_with(config_key, [&] {
      holder_waits.count_down();
      wait_until_blocked(holder_serial.load());  // the holder waits for this build
      writer.push(append{std::string(40, '2')});
      if (std::this_thread::get_id() == builder_id) writer.publish();  // would wait: a cycle
      return service{std::string(40, 's')};
    });
  } catch (const tandem::recursive_creation_error&) {
    error = "the wrong side refused";
  } catch (const std::logic_error& e) {
    error = e.what();
  }
  holder.join();
  INFO(error);
  CHECK(error.find("publish() would wait forever") != std::string::npos);
  CHECK(error.find("a read guard") != std::string::npos);
  CHECK(held_name == "fallback");  // the holder built it after the failed build
  CHECK(writer.pending() == 1);    // nothing applied or lost: the next publish goes through
  writer.publish();
  CHECK(reader.read()->size() == 2);
}

TEST_CASE(
    "wait cycle: the receiver of a full block subscription that waits for a build whose factory "
    "publishes to it gets recursive_creation_error") {
  tandem::test::watchdog dog("receiver waits for a build that publishes to it");
  tandem::event_bus<std::string> bus;
  auto subscription = bus.subscribe("events", 1, tandem::overflow_policy::block);
  CHECK(bus.publish("events", std::string(40, 'x')) == 1);  // full now
  tandem::registry<service> registry;
  std::atomic<std::uint64_t> builder_serial{0};
  std::string built;
  std::thread builder([&] {
    builder_serial.store(tandem::detail::thread_serial());
    built = registry
                .get_or_create_with(config_key,
                                    [&] {
                                      // Waits for room in the main thread's subscription.
                                      (void)bus.publish("events", std::string(40, 'y'));
                                      return service{std::string(40, 's')};
                                    })
                ->name;
  });
  while (builder_serial.load() == 0) std::this_thread::yield();
  wait_until_blocked(builder_serial.load());
  std::string error;
  try {
    (void)registry.get_or_create(config_key);
  } catch (const tandem::recursive_creation_error& e) {
    error = e.what();
  }
  CHECK(subscription.try_receive() == std::string(40, 'x'));  // room: the builder goes on
  builder.join();
  INFO(error);
  CHECK(error.find("mailbox") != std::string::npos);
  CHECK(built == std::string(40, 's'));
  CHECK(subscription.try_receive() == std::string(40, 'y'));
}

TEST_CASE(
    "wait cycle: waits that form no cycle still wait (a guard of a thread that waits for "
    "another build)") {
  tandem::test::watchdog dog("no cycle: the publish waits");
  auto pair = tandem::make_double_buffer<std::vector<std::string>, append>();
  auto& writer = pair.first;
  auto& reader = pair.second;
  std::latch guard_open(1);
  std::latch release(1);
  std::atomic<std::uint64_t> holder_serial{0};
  std::thread holder([&] {
    holder_serial.store(tandem::detail::thread_serial());
    const auto guard = reader.read();
    guard_open.count_down();
    release.wait();
  });
  guard_open.wait();
  writer.push(append{std::string(40, '1')});
  writer.publish();
  writer.push(append{std::string(40, '2')});
  std::thread publisher([&] { writer.publish(); });  // waits for the holder's guard
  // The publisher blocks (an edge to the holder, who runs): no error; then the guard goes.
  for (;;) {
    bool blocked = false;
    {
      const std::lock_guard<std::mutex> lock(tandem::detail::graph_mutex());
      for (const auto* node = tandem::detail::waiting_threads; node != nullptr;
           node = node->next_waiting) {
        blocked = blocked || node->waiting_for_thread == holder_serial.load();
      }
    }
    if (blocked) break;
    std::this_thread::yield();
  }
  release.count_down();
  holder.join();
  publisher.join();
  CHECK(reader.read()->size() == 2);
}
