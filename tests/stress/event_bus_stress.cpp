// Stress test for tandem::event_bus (CTest label "stress").
//
// Two publishers send numbered messages to 4 topics; 4 subscriber threads keep joining and
// leaving topics (bounded drop_oldest mailboxes and unbounded ones), draining as they go.
// Every subscription checks that, per publisher, sequence numbers only increase (publish order
// per publishing thread, nothing delivered twice); every published message is accounted for
// as received, dropped by the policy, or sent to a subscription that was destroyed with it
// queued. At the end no topic is left. Runs once with a trivially copyable message and once
// with heap-owning std::string messages (checked intact). Runs for TANDEM_STRESS_SECONDS
// (default 1 s) each.
#include <tandem/event_bus.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "test_support.hpp"

namespace {
struct message {
  std::uint32_t publisher;
  std::uint64_t sequence;
};

// Heap-owning messages: a std::string longer than any small-string buffer that spells out
// publisher and sequence, so a torn or freed message fails the parse.
std::string make_text(std::uint32_t publisher, std::uint64_t sequence) {
  return "publisher=" + std::to_string(publisher) + ";sequence=" + std::to_string(sequence) +
         ";padding-beyond-the-small-string-buffer";
}

message make_message(message*, std::uint32_t publisher, std::uint64_t sequence) {
  return message{publisher, sequence};
}
std::string make_message(std::string*, std::uint32_t publisher, std::uint64_t sequence) {
  return make_text(publisher, sequence);
}
// Reads publisher and sequence back; false for a malformed (corrupted) message.
bool parse(const message& m, std::uint32_t& publisher, std::uint64_t& sequence) {
  publisher = m.publisher;
  sequence = m.sequence;
  return publisher < 2;
}
bool parse(const std::string& m, std::uint32_t& publisher, std::uint64_t& sequence) {
  const std::size_t p = m.find("publisher=");
  const std::size_t q = m.find(";sequence=");
  if (p != 0 || q == std::string::npos) return false;
  publisher = static_cast<std::uint32_t>(std::stoul(m.substr(10, q - 10)));
  sequence = std::stoull(m.substr(q + 10));
  return publisher < 2 && m == make_text(publisher, sequence);
}

template <class Message>
void run_stress() {
  tandem::test::watchdog dog("event_bus stress", std::chrono::seconds(120));
  tandem::event_bus<Message> bus;
  const std::array<std::string, 4> topics{"alpha", "beta", "gamma", "delta"};
  tandem::test::op_budget budget(2'000'000, std::chrono::milliseconds(1000));
  std::atomic<int> publishers_left{2};

  tandem::test::thread_checks checks;
  tandem::test::run_threads(6, [&](std::size_t id) {
    std::mt19937 random(static_cast<unsigned>(id) * 31 + 7);
    if (id < 2) {  // publishers
      std::uint64_t sequence = 0;
      while (budget.next()) {
        bus.publish(topics[random() % topics.size()],
                    make_message(static_cast<Message*>(nullptr), static_cast<std::uint32_t>(id),
                                 ++sequence));
      }
      publishers_left.fetch_sub(1);
      return;
    }
    std::optional<typename tandem::event_bus<Message>::subscription> sub;
    std::array<std::uint64_t, 2> last{0, 0};
    auto drain = [&] {
      while (auto m = sub->try_receive()) {
        std::uint32_t publisher = 0;
        std::uint64_t sequence = 0;
        const bool well_formed = parse(*m, publisher, sequence);
        TANDEM_THREAD_CHECK(checks, well_formed);
        if (!well_formed) continue;
        TANDEM_THREAD_CHECK(checks,
                            sequence > last[publisher]);  // increasing: in order and never twice
        last[publisher] = sequence;
      }
    };
    while (publishers_left.load() > 0) {
      const auto r = static_cast<unsigned>(random());
      if (!sub || r % 64 == 0) {
        last = {0, 0};
        if ((r >> 8U) % 2 == 0) {
          sub.emplace(bus.subscribe(topics[(r >> 12U) % topics.size()]));
        } else {
          sub.emplace(bus.subscribe(topics[(r >> 12U) % topics.size()], 16,
                                    tandem::overflow_policy::drop_oldest));
        }
      }
      drain();
    }
    drain();
    sub.reset();
  });
  INFO("first failed check: " << checks.first_failure());
  CHECK(checks.failures() == 0);
  CHECK(checks.checked() > 0);
  CHECK(bus.topic_count() == 0);
}
}  // namespace

TEST_CASE("event_bus stress: ordered per publisher, never twice, topics gone at the end") {
  run_stress<message>();
}

TEST_CASE("event_bus stress, std::string messages: ordered, never twice, intact, no topic left") {
  run_stress<std::string>();
}
