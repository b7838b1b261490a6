// Stress test for tandem::inbox (CTest label "stress"), issue 14.
//
// Two publishers send numbered, heap-owning messages to 8 topics (and count how many mailboxes
// accepted each: publish's result). Three inbox owners keep joining and leaving random topics,
// receiving as they go (try_receive, consume_all and short receive_for), and now and then
// replace their inbox by a new one: unbounded, drop_oldest (capacity 8) and block (capacity 8)
// inboxes. A fourth thread churns plain subscriptions on the same topics. Checked continuously:
// every envelope's topic is the one its message was published to, the message is intact, and per
// (publisher, topic) sequence numbers only increase (publish order, never twice). Checked at
// the end: every accepted delivery is accounted for -- received, or evicted by drop_oldest
// (dropped()), or still queued when the inbox left all its topics -- and no topic is left.
// Runs for TANDEM_STRESS_SECONDS (default 1 s).
#include <tandem/event_bus.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "test_support.hpp"

namespace {

constexpr std::size_t topic_count = 8;
constexpr std::uint32_t publisher_count = 2;

std::string topic_name(std::size_t t) {
  return "topic-" + std::to_string(t) + "-with-a-name-longer-than-the-sso-buffer";
}

std::string make_text(std::uint32_t publisher, std::size_t topic, std::uint64_t sequence) {
  return "publisher=" + std::to_string(publisher) + ";topic=" + std::to_string(topic) +
         ";sequence=" + std::to_string(sequence) + ";padding-beyond-the-small-string-buffer";
}

// Reads the fields back; false for a malformed (torn or freed) message.
bool parse(const std::string& m, std::uint32_t& publisher, std::size_t& topic,
           std::uint64_t& sequence) {
  const std::size_t p = m.find("publisher=");
  const std::size_t t = m.find(";topic=");
  const std::size_t s = m.find(";sequence=");
  if (p != 0 || t == std::string::npos || s == std::string::npos) return false;
  publisher = static_cast<std::uint32_t>(std::stoul(m.substr(10, t - 10)));
  topic = static_cast<std::size_t>(std::stoul(m.substr(t + 7, s - t - 7)));
  sequence = std::stoull(m.substr(s + 10));
  return publisher < publisher_count && topic < topic_count &&
         m == make_text(publisher, topic, sequence);
}

}  // namespace

TEST_CASE("inbox stress: joining and leaving topics under load, every message accounted for") {
  tandem::test::watchdog dog("inbox stress", std::chrono::seconds(120));
  using bus_type = tandem::event_bus<std::string>;
  bus_type bus;
  std::array<std::string, topic_count> topics;
  for (std::size_t t = 0; t < topic_count; ++t) topics[t] = topic_name(t);
  tandem::test::op_budget budget(400'000, std::chrono::milliseconds(1000));
  std::atomic<int> publishers_left{static_cast<int>(publisher_count)};
  std::atomic<std::uint64_t> accepted{0};   // sum of publish results
  std::atomic<std::uint64_t> accounted{0};  // received + evicted + queued at the end (inboxes)
  std::atomic<std::uint64_t> subscription_deliveries{0};  // received or discarded (subs)
  std::atomic<std::uint64_t> envelopes_received{0};

  tandem::test::thread_checks checks;
  tandem::test::run_threads(publisher_count + 4, [&](std::size_t id) {
    std::mt19937 random(static_cast<unsigned>(id) * 31 + 7);
    if (id < publisher_count) {
      std::uint64_t sequence = 0;
      while (budget.next()) {
        const std::size_t t = random() % topic_count;
        accepted +=
            bus.publish(topics[t], make_text(static_cast<std::uint32_t>(id), t, ++sequence));
      }
      publishers_left.fetch_sub(1);
      return;
    }
    if (id == publisher_count + 3) {  // plain subscriptions churning on the same topics
      std::optional<bus_type::subscription> sub;
      auto drain = [&] {
        while (auto m = sub->try_receive()) ++subscription_deliveries;
        subscription_deliveries += sub->dropped();
      };
      while (publishers_left.load() > 0) {
        if (sub) {
          sub->unsubscribe();  // nothing arrives after this: what is queued is final
          drain();
        }
        sub.reset();
        sub.emplace(
            bus.subscribe(topics[random() % topic_count], 8, tandem::overflow_policy::drop_oldest));
        for (int i = 0; i < 20 && sub->try_receive(); ++i) ++subscription_deliveries;
      }
      sub->unsubscribe();
      drain();
      return;
    }
    // Inbox owners: unbounded, drop_oldest (8), block (8).
    const std::size_t kind = id - publisher_count;
    auto make_inbox = [&] {
      switch (kind) {
        case 0:
          return bus.inbox();
        case 1:
          return bus.inbox(8, tandem::overflow_policy::drop_oldest);
        default:
          return bus.inbox(8, tandem::overflow_policy::block);
      }
    };
    std::optional<bus_type::inbox_type> in;
    std::array<std::array<std::uint64_t, topic_count>, publisher_count> last{};
    auto check = [&](const tandem::envelope<std::string>& e) {
      std::uint32_t publisher = 0;
      std::size_t topic = 0;
      std::uint64_t sequence = 0;
      const bool well_formed = parse(e.message(), publisher, topic, sequence);
      TANDEM_THREAD_CHECK(checks, well_formed);
      if (!well_formed) return;
      TANDEM_THREAD_CHECK(checks, e.topic() == topics[topic]);  // the envelope names its topic
      TANDEM_THREAD_CHECK(checks, sequence > last[publisher][topic]);  // in order, never twice
      last[publisher][topic] = sequence;
      ++envelopes_received;
    };
    // Leaves every topic (nothing arrives after), then counts what it got: received now,
    // evicted by its policy, and (received before) `received`.
    std::uint64_t received = 0;
    auto retire = [&] {
      for (const std::string& t : in->topics()) TANDEM_THREAD_CHECK(checks, in->unsubscribe(t));
      while (auto e = in->try_receive()) {
        check(*e);
        ++received;
      }
      TANDEM_THREAD_CHECK(checks, !in->receive_for(std::chrono::hours(1)).has_value());
      accounted += received + in->dropped();
      received = 0;
      in.reset();
    };
    while (publishers_left.load() > 0) {
      const auto r = static_cast<unsigned>(random());
      if (!in || r % 97 == 0) {
        if (in) retire();
        in.emplace(make_inbox());
      }
      const std::string& topic = topics[(r >> 8U) % topic_count];
      switch ((r >> 4U) % 5) {
        case 0:
          static_cast<void>(in->subscribe(topic));
          break;
        case 1:
          static_cast<void>(in->unsubscribe(topic));
          break;
        case 2:
          if (auto e = in->receive_for(std::chrono::microseconds(50))) {
            check(*e);
            ++received;
          }
          break;
        case 3:  // in bulk: the references of subscribed topics are kept until they are left
          received += in->consume_all([&](const tandem::envelope<std::string>& e) { check(e); });
          break;
        default:
          for (int i = 0; i < 16; ++i) {
            auto e = in->try_receive();
            if (!e) break;
            check(*e);
            ++received;
          }
          break;
      }
    }
    if (in) retire();
  });
  INFO("first failed check: " << checks.first_failure());
  CHECK(checks.failures() == 0);
  CHECK(envelopes_received > 0);
  CHECK(accepted == accounted + subscription_deliveries);
  CHECK(bus.topic_count() == 0);
}
