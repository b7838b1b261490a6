// A process that never starts a second thread: a `block` publish into a full mailbox could only
// wait for ever there, whoever the mailbox's receiver is, so it throws std::logic_error (rule
// 72). A plain program, not Catch2 with tandem::test's watchdog (a thread): the property is
// about a process with one thread, so this program must stay one. alarm() is the watchdog: a
// publish that waits ends the process with SIGALRM, which CTest reports as a failure.
// Exit status: 0 passed, 1 a check failed, 77 skipped (a C library that does not say whether
// the process started a thread: the check is then not made, see sync/thread_serial.hpp).
#include <tandem/event_bus.hpp>

#include <unistd.h>

#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

// The publish must throw std::logic_error whose message contains `needle`.
template <class Bus>
void expect_refused(Bus& bus, const std::string& topic, const char* needle, const char* what) {
  try {
    static_cast<void>(bus.publish(topic, std::string(40, 'x')));
    std::fprintf(stderr, "FAILED: %s: no exception\n", what);
    ++failures;
  } catch (const std::logic_error& e) {
    const std::string message = e.what();
    if (message.find(needle) == std::string::npos || message.find(topic) == std::string::npos) {
      std::fprintf(stderr, "FAILED: %s: unexpected message: %s\n", what, e.what());
      ++failures;
    }
  }
}

constexpr const char* no_other_thread = "no other thread that could receive from it";
constexpr const char* receiver_is_publisher =
    "the publishing thread is the only thread that has received";

}  // namespace

int main() {
  if (!tandem::detail::process_never_started_a_thread()) {
    std::puts("skipped: this C library does not say whether the process started a thread");
    return 77;
  }
  alarm(60);
  using bus_type = tandem::event_bus<std::string>;
  bus_type bus;

  // Subscribed, never received: the receiver is not known, and no other thread exists.
  auto sub = bus.subscribe("fresh", 1, tandem::overflow_policy::block);
  check(bus.publish("fresh", std::string(40, 'a')) == 1, "first publish to 'fresh' delivered");
  expect_refused(bus, "fresh", no_other_thread, "a full mailbox nobody received on");
  check(sub.pending() == 1, "the refused publish left the mailbox as it was");

  // The pattern a new user's trial hung in (2026-12-05): subscriptions kept in a vector (each
  // moved, so the receiver is unknown), then filled from the same thread.
  std::vector<bus_type::subscription> kept;
  kept.push_back(bus.subscribe("jobs", 1, tandem::overflow_policy::block));
  kept.push_back(bus.subscribe("jobs", 1, tandem::overflow_policy::block));
  check(bus.publish("jobs", std::string(40, 'b')) == 2, "first publish to 'jobs' delivered");
  expect_refused(bus, "jobs", no_other_thread, "moved subscriptions filled by their thread");

  // Moved into an optional after a receive: unknown again, still refused.
  std::optional<bus_type::subscription> held;
  auto received = bus.subscribe("held", 1, tandem::overflow_policy::block);
  check(!received.try_receive().has_value(), "an empty mailbox returns nothing");
  held.emplace(std::move(received));
  check(bus.publish("held", std::string(40, 'c')) == 1, "first publish to 'held' delivered");
  expect_refused(bus, "held", no_other_thread, "a subscription moved after its receive");

  // A known receiver: the message says so.
  auto known = bus.subscribe("known", 1, tandem::overflow_policy::block);
  check(!known.try_receive().has_value(), "an empty mailbox returns nothing");
  check(bus.publish("known", std::string(40, 'd')) == 1, "first publish to 'known' delivered");
  expect_refused(bus, "known", receiver_is_publisher, "the receiver's own publish");

  // An inbox, never received on.
  auto in = bus.inbox(1, tandem::overflow_policy::block);
  check(in.subscribe("inbox-topic"), "the inbox subscribes");
  check(bus.publish("inbox-topic", std::string(40, 'e')) == 1, "first publish to the inbox");
  expect_refused(bus, "inbox-topic", no_other_thread, "a full inbox nobody received on");

  // Room again after a receive: accepted.
  check(sub.receive() == std::string(40, 'a'), "the queued message is still there");
  check(bus.publish("fresh", std::string(40, 'f')) == 1, "a publish after the receive");

  check(tandem::detail::process_never_started_a_thread(), "the process stayed single-threaded");
  if (failures != 0) return 1;
  std::puts("passed");
  return 0;
}
