// Deterministic interleavings of double_buffer's guard releases (TANDEM_TEST_POINT,
// sync/sync_point.hpp): a hook on the thread under test runs another thread's steps exactly
// inside a window that a random stress run almost never hits.
#include <tandem/double_buffer.hpp>

#include <cstring>
#include <optional>
#include <semaphore>
#include <string>
#include <thread>

#if TANDEM_CATCH_MAJOR == 3
#include <catch2/catch_test_macros.hpp>
#else
#include <catch2/catch.hpp>
#endif

#include "test_support.hpp"

namespace {

struct assign_op {
  std::string value;
  void operator()(std::string& target) & { target = value; }
  void operator()(std::string& target) && { target = std::move(value); }
};
using buffer = tandem::double_buffer<std::string, assign_op>;

struct script {
  std::thread::id under_test;
  std::binary_semaphore release_other{0};  // the other thread releases its (nested) guard
  std::binary_semaphore other_released{0};
};
script* current = nullptr;

void hook(const char* name) noexcept {
  script* s = current;
  if (s == nullptr || std::this_thread::get_id() != s->under_test) return;
  if (std::strcmp(name, "reader_epochs leave: a nested section seen open") == 0) {
    current = nullptr;  // once
    s->release_other.release();
    s->other_released.acquire();
  }
}

}  // namespace

// Found by review on 2026-12-01: the outer guard's release read the nesting count (1: the
// handed guard was still alive), then the other thread released the nested guard (count 1 ->
// 0), and the outer release, having decided "nested", lowered the count again instead of
// leaving: the slot stayed inside with no guard alive, and the next publish() waited for ever.
TEST_CASE(
    "double_buffer: an outer and a nested guard of one reader released on two threads at once "
    "leave the slot outside (the next publish does not wait)") {
  tandem::test::watchdog dog("outer and nested guard released at once");
  // Not a structured binding: clang 14 cannot capture one in a lambda.
  auto pair = tandem::make_double_buffer<std::string, assign_op>(std::string(40, 'a'));
  auto& writer = pair.first;
  auto& reader = pair.second;
  std::optional<buffer::read_guard> outer(reader.read());
  std::optional<buffer::read_guard> nested(reader.read());  // handed to the other thread
  const bool same_snapshot = &**outer == &**nested;

  script s;
  s.under_test = std::this_thread::get_id();
  current = &s;
  tandem::detail::test_point_hook.store(&hook, std::memory_order_release);
  std::string seen_by_other;  // checked on the main thread (no Catch2 assertion off it)
  std::thread other([&] {
    s.release_other.acquire();
    seen_by_other = **nested;
    nested.reset();  // inside the outer release's window
    s.other_released.release();
  });
  outer.reset();  // reaches the test point: it has seen a nested section open
  other.join();
  tandem::detail::test_point_hook.store(nullptr, std::memory_order_release);

  CHECK(same_snapshot);
  CHECK(seen_by_other == std::string(40, 'a'));
  CHECK_FALSE(writer.this_thread_holds_guard());  // no guard alive: the slot is outside
  // A publish from another thread (not the one that opened the guards) must not wait: before
  // the fix it waited for ever here (the watchdog reports it).
  std::thread publisher([&] {
    writer.push(assign_op{std::string(40, 'b')});
    writer.publish();
    writer.push(assign_op{std::string(40, 'c')});
    writer.publish();  // the second publish waits for readers of the first's old copy
  });
  publisher.join();
  CHECK(*reader.read() == std::string(40, 'c'));
}
