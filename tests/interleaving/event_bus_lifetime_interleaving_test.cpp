// Deterministic interleavings of an inbox's subscribe with the destruction of its event_bus
// (TANDEM_TEST_POINT, sync/sync_point.hpp): a hook holds the subscribing thread after its
// check that the bus is alive, and the bus is destroyed exactly there.
#include <tandem/event_bus.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
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

using bus_type = tandem::event_bus<std::string>;

enum class role { none, subscriber, destroyer };
thread_local role this_role = role::none;

struct script {
  std::binary_semaphore destroy_now{0};    // the subscriber is past its check
  std::binary_semaphore subscriber_go{0};  // ... and may go on
  std::atomic<bool> subscriber_released{false};
  bool subscriber_held = false;  // the subscriber's thread only
};
std::atomic<script*> current{nullptr};

void release_subscriber(script& s) noexcept {
  if (!s.subscriber_released.exchange(true)) s.subscriber_go.release();
}

void hook(const char* name) noexcept {
  script* s = current.load(std::memory_order_acquire);
  if (s == nullptr) return;
  if (this_role == role::subscriber && !s->subscriber_held &&
      std::strcmp(name, "inbox subscribe: using the bus") == 0) {
    s->subscriber_held = true;
    s->destroy_now.release();
    s->subscriber_go.acquire();
  } else if (this_role == role::destroyer &&
             std::strcmp(name, "event_bus destructor: waiting for inbox subscribes") == 0) {
    release_subscriber(*s);  // the destructor waits for the subscribe: let it finish
  }
}

}  // namespace

TEST_CASE(
    "inbox: a subscribe past its check when another thread destroys the bus finishes first "
    "(no use of the freed bus)") {
  // Found by review (2026-12-02): the subscribe checked that the bus was alive, then looked its
  // topic up in the bus's map, which the destructor was freeing meanwhile (ASan:
  // heap-use-after-free in rc_map::try_emplace). Red before: the subscriber went on after the
  // destructor had returned.
  tandem::test::watchdog dog("inbox subscribe racing ~event_bus");
  auto bus = std::make_unique<bus_type>();
  auto in = bus->inbox();
  const std::string topic(40, 't');  // heap-owning
  script s;
  current.store(&s, std::memory_order_release);
  tandem::detail::test_point_hook.store(&hook, std::memory_order_release);

  std::thread destroyer([&] {
    this_role = role::destroyer;
    s.destroy_now.acquire();
    bus.reset();
    release_subscriber(s);  // when the destructor did not wait (the fault): go on now
  });
  bool subscribed = false;
  bool refused = false;
  this_role = role::subscriber;
  try {
    subscribed = in.subscribe(topic);
  } catch (const tandem::subscription_closed&) {
    refused = true;
  }
  this_role = role::none;
  destroyer.join();
  tandem::detail::test_point_hook.store(nullptr, std::memory_order_release);
  current.store(nullptr, std::memory_order_release);

  // The subscribe was already using the bus: the destructor waited for it to finish.
  CHECK(subscribed);
  CHECK_FALSE(refused);
  // The bus is gone now: the inbox is closed, and a new subscribe is refused.
  bool closed = false;
  try {
    static_cast<void>(in.subscribe(std::string(40, 'u')));
  } catch (const tandem::subscription_closed&) {
    closed = true;
  }
  CHECK(closed);
}

TEST_CASE("inbox: a subscribe that starts after the bus's destruction began is refused") {
  tandem::test::watchdog dog("inbox subscribe after ~event_bus");
  auto bus = std::make_unique<bus_type>();
  auto in = bus->inbox();
  bus.reset();
  bool closed = false;
  try {
    static_cast<void>(in.subscribe(std::string(40, 't')));
  } catch (const tandem::subscription_closed& e) {
    closed = std::string(e.what()).find("destroyed") != std::string::npos;
  }
  CHECK(closed);
}

namespace {

// A topic hash that destroys its bus when asked for the topic "destroy the bus".
void (*destroy_the_bus)() = nullptr;
struct destroying_hash {
  std::size_t operator()(const std::string& topic) const {
    if (topic == "destroy the bus" && destroy_the_bus != nullptr) destroy_the_bus();
    return std::hash<std::string>{}(topic);
  }
};
using destroyed_bus = tandem::event_bus<std::string, std::string, destroying_hash>;
std::unique_ptr<destroyed_bus> doomed_bus;

constexpr int reported_status = 42;
void exit_reported(const tandem::assertion_info& info) {
  const bool names_it = std::strstr(info.message, "inbox::subscribe") != nullptr;
  ::_exit(names_it ? reported_status : 1);
}

}  // namespace

TEST_CASE(
    "inbox: destroying the bus from inside a subscribe on it is reported instead of waiting for "
    "ever") {
  // ~event_bus waits for the subscribes in progress; one on its own thread would never end.
  tandem::test::watchdog dog("~event_bus inside an inbox subscribe");
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child has no watchdog thread: SIGALRM ends it if it waits for ever (the fault).
    ::alarm(20);
    static_cast<void>(tandem::set_assertion_handler(&exit_reported));
    doomed_bus = std::make_unique<destroyed_bus>();
    auto in = doomed_bus->inbox();
    destroy_the_bus = [] { doomed_bus.reset(); };
    try {
      static_cast<void>(in.subscribe(std::string("destroy the bus")));
    } catch (...) {
    }
    ::_exit(0);  // reached only if nothing was reported
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == reported_status);
}
