// Differential fuzzer for tandem::inbox (issue 14) on tandem::event_bus<std::string>.
//
// Topics and messages are heap-owning strings (fuzz_input.hpp). The input drives: making an
// inbox in one of three slots (unbounded, or bounded with drop_oldest or drop_newest -- never
// `block`, which would wait on this single thread), destroying and move-assigning inboxes,
// in.subscribe / in.unsubscribe of four topics, a plain subscription in one slot (so that
// topics mix inboxes and subscriptions), publish, publish_from an inbox, try_receive,
// consume_all and receive (receive only where the model says it cannot block: something queued, or
// no topic and so subscription_closed), and "fail the next allocation": the next operation runs
// with its Nth allocation throwing std::bad_alloc (tests/support/failing_new.hpp).
//
// The model: per receiver (inbox or subscription) a bounded deque of (topic, message), its
// policy, dropped() count and its topics; per topic the receivers in the order they
// subscribed (the order publish delivers in). Checked after every operation: topic_count(),
// subscriber_count() of every topic (exact: leaving allocates nothing, docs/reliability.md
// rule 6), each inbox's pending(), dropped() and topics(); try_receive/receive return exactly
// the model's oldest envelope, topic included; consume_all hands over exactly the model's
// queue, in order; publish returns how many accepted.
// Exception guarantees:
//  - inbox::subscribe is strong: after a std::bad_alloc the inbox's topics, the topic count
//    and the subscriber counts are as before;
//  - publish is basic: receivers before the throw (in list order) keep their copy, the one
//    whose push threw is unchanged (drop_oldest evicted nothing), later ones got nothing;
//  - unsubscribe, destruction, try_receive and consume_all never throw (and allocate nothing).
#include <tandem/event_bus.hpp>

#include <array>
#include <cstdint>
#include <deque>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "failing_new.hpp"
#include "fuzz_input.hpp"

namespace {

using tandem::fuzz::heap_string;
using tandem::test::with_allocation_failure;
using bus_type = tandem::event_bus<std::string>;
using inbox_type = bus_type::inbox_type;

constexpr unsigned topic_count = 4;
constexpr std::size_t inbox_slots = 3;

struct model_receiver {
  std::size_t capacity = tandem::unbounded_capacity;
  tandem::overflow_policy policy = tandem::overflow_policy::drop_oldest;
  std::deque<std::pair<unsigned, std::string>> queue;
  std::size_t dropped = 0;
  std::vector<unsigned> topics;  // in subscription order

  [[nodiscard]] bool subscribed(unsigned t) const {
    for (unsigned held : topics) {
      if (held == t) return true;
    }
    return false;
  }
  // What a push does; true when accepted.
  bool push(unsigned t, const std::string& message) {
    if (queue.size() >= capacity) {
      ++dropped;
      if (policy == tandem::overflow_policy::drop_newest) return false;
      queue.pop_front();
    }
    queue.emplace_back(t, message);
    return true;
  }
};

class fuzz_run {
 public:
  fuzz_run() : bus_(options()) {
    for (unsigned t = 0; t < topic_count; ++t) topics_[t] = heap_string("inbox-fuzz-topic", t);
  }

  // At most 32 operations per input: a whole bus is built per input, and the CTest run
  // (fuzz/CMakeLists.txt) must stay near the other fuzzers' time.
  void run(tandem::fuzz::input& in) {
    for (int steps = 0; steps < 32 && !in.empty(); ++steps) {
      step(in);
      check();
    }
  }

 private:
  static tandem::event_bus_options options() {
    tandem::event_bus_options o;
    o.shard_count = 2;
    o.absent_topic_filter_slots = 64;  // small: a bus per input
    return o;
  }

  // Receiver ids: inbox slots 0..2, the subscription slot 3.
  static constexpr std::size_t subscription_id = inbox_slots;

  template <class F>
  bool armed(F&& f) {
    return with_allocation_failure(std::exchange(fail_at_, 0), f);
  }

  void leave(std::size_t id, unsigned t) {
    std::erase(topic_lists_[t], id);
    std::erase(model_[id].topics, t);
  }

  void destroy_inbox(std::size_t s) {
    if (!inboxes_[s]) return;
    require(!armed([&] { inboxes_[s].reset(); }));  // never throws
    for (unsigned t : std::vector<unsigned>(model_[s].topics)) leave(s, t);
    model_[s] = model_receiver{};
  }

  void step(tandem::fuzz::input& in) {
    const unsigned op = in.below(12);
    const auto s = static_cast<std::size_t>(in.below(inbox_slots));
    const unsigned t = in.below(topic_count);
    switch (op) {
      case 0: {  // a new inbox in slot s (the old one, if any, is destroyed)
        destroy_inbox(s);
        const unsigned kind = in.below(3);
        const std::size_t capacity = 1 + in.below(4);
        std::optional<inbox_type> made;
        const bool threw = armed([&] {
          if (kind == 0) {
            made.emplace(bus_.inbox());
          } else {
            made.emplace(bus_.inbox(capacity, kind == 1 ? tandem::overflow_policy::drop_oldest
                                                        : tandem::overflow_policy::drop_newest));
          }
        });
        if (threw) return;
        inboxes_[s].emplace(std::move(*made));
        model_[s] = model_receiver{};
        if (kind != 0) {
          model_[s].capacity = capacity;
          model_[s].policy = kind == 1 ? tandem::overflow_policy::drop_oldest
                                       : tandem::overflow_policy::drop_newest;
        }
        return;
      }
      case 1:
        destroy_inbox(s);
        return;
      case 2:
      case 3: {  // subscribe
        if (!inboxes_[s]) return;
        bool added = false;
        const bool threw = armed([&] { added = inboxes_[s]->subscribe(topics_[t]); });
        if (threw) return;  // strong: check() compares everything with the unchanged model
        require(added == !model_[s].subscribed(t));
        if (added) {
          model_[s].topics.push_back(t);
          topic_lists_[t].push_back(s);
        }
        return;
      }
      case 4: {  // unsubscribe
        if (!inboxes_[s]) return;
        bool left = false;
        require(!armed([&] { left = inboxes_[s]->unsubscribe(topics_[t]); }));
        require(left == model_[s].subscribed(t));
        if (left) leave(s, t);
        return;
      }
      case 5:
      case 6:
        publish(t, std::nullopt, in);
        return;
      case 7:
        if (inboxes_[s]) publish(t, s, in);
        return;
      case 8:
      case 9: {  // receive: try_receive, or receive() where it cannot block
        if (!inboxes_[s]) return;
        model_receiver& m = model_[s];
        std::optional<tandem::envelope<std::string>> got;
        if (op == 8) {
          require(!armed([&] { got = inboxes_[s]->try_receive(); }));
        } else if (!m.queue.empty()) {
          got.emplace(inboxes_[s]->receive());
        } else if (m.topics.empty()) {
          bool closed = false;
          try {
            static_cast<void>(inboxes_[s]->receive());
          } catch (const tandem::subscription_closed&) {
            closed = true;
          }
          require(closed);
          return;
        } else {
          got = inboxes_[s]->receive_for(std::chrono::seconds(0));
        }
        require(got.has_value() == !m.queue.empty());
        if (!got) return;
        require(got->topic() == topics_[m.queue.front().first]);
        require(got->message() == m.queue.front().second);
        m.queue.pop_front();
        return;
      }
      case 10: {  // the subscription slot: subscribe to t, or drop it
        if (subscription_) {
          require(!armed([&] { subscription_.reset(); }));
          leave(subscription_id, model_[subscription_id].topics.front());
          model_[subscription_id] = model_receiver{};
          return;
        }
        const bool threw = armed([&] { subscription_.emplace(bus_.subscribe(topics_[t])); });
        if (threw) return;
        model_[subscription_id].topics.push_back(t);
        topic_lists_[t].push_back(subscription_id);
        return;
      }
      default: {
        const unsigned sub_op = in.below(4);
        if (sub_op == 0) {  // move-assign inbox slot s from the next slot
          const std::size_t from = (s + 1) % inbox_slots;
          if (!inboxes_[from]) return;
          destroy_inbox(s);
          require(!armed([&] { inboxes_[s] = std::move(*inboxes_[from]); }));
          inboxes_[from].reset();  // moved from: owns nothing
          model_[s] = std::move(model_[from]);
          model_[from] = model_receiver{};
          for (auto& list : topic_lists_) {
            for (std::size_t& id : list) {
              if (id == from) id = s;
            }
          }
          return;
        }
        if (sub_op == 1) {  // consume_all: everything queued, in order, with its topics
          if (!inboxes_[s]) return;
          model_receiver& m = model_[s];
          const std::size_t expected = m.queue.size();
          bool all_matched = true;
          std::size_t given = 0;
          // Allocates nothing and never throws (the check allocates nothing either).
          require(!armed([&] {
            given = inboxes_[s]->consume_all([&](tandem::envelope<std::string>& e) {
              all_matched = all_matched && !m.queue.empty() &&
                            e.topic() == topics_[m.queue.front().first] &&
                            e.message() == m.queue.front().second;
              if (!m.queue.empty()) m.queue.pop_front();
            });
          }));
          require(all_matched);
          require(given == expected);
          return;
        }
        fail_at_ = 1 + in.below(6);  // the next operation's Nth allocation fails
        return;
      }
    }
  }

  // publish (sender: none) or publish_from(inbox slot sender).
  void publish(unsigned t, std::optional<std::size_t> sender, tandem::fuzz::input& in) {
    const unsigned burst =
        1 + in.below(2) * 9;  // reaches the every-16-envelopes segment allocations
    for (unsigned b = 0; b < burst; ++b) {
      const std::string message = heap_string("inbox-fuzz-message", next_message_++);
      // Before: each target's observable state.
      std::vector<std::size_t> targets;
      for (std::size_t id : topic_lists_[t]) {
        if (!sender || id != *sender) targets.push_back(id);
      }
      std::vector<std::pair<std::size_t, std::size_t>> before;
      for (std::size_t id : targets) before.emplace_back(pending(id), dropped(id));
      std::size_t reached = 0;
      const bool threw = armed([&] {
        reached = sender ? bus_.publish_from(*inboxes_[*sender], topics_[t], message)
                         : bus_.publish(topics_[t], message);
      });
      if (!threw) {
        std::size_t expected = 0;
        for (std::size_t id : targets) expected += model_[id].push(t, message) ? 1 : 0;
        require(reached == expected);
        continue;
      }
      // Basic: a prefix of the targets got it (or refused it as their policy says), the one
      // whose push threw is unchanged, and so is every later one.
      bool stopped = false;
      for (std::size_t i = 0; i < targets.size(); ++i) {
        const std::size_t id = targets[i];
        const bool unchanged = pending(id) == before[i].first && dropped(id) == before[i].second;
        if (stopped) {
          require(unchanged);
          continue;
        }
        model_receiver trial = model_[id];
        trial.push(t, message);
        if (trial.queue.size() == pending(id) && trial.dropped == dropped(id) && !unchanged) {
          model_[id] = std::move(trial);
        } else if (trial.queue == model_[id].queue && trial.dropped == model_[id].dropped) {
          model_[id] = std::move(trial);  // a push that changes nothing (never, but harmless)
        } else {
          require(unchanged);
          stopped = true;
        }
      }
      return;  // the rest of the burst is not attempted
    }
  }

  [[nodiscard]] std::size_t pending(std::size_t id) const {
    if (id == subscription_id) return subscription_ ? subscription_->pending() : 0;
    return inboxes_[id] ? inboxes_[id]->pending() : 0;
  }
  [[nodiscard]] std::size_t dropped(std::size_t id) const {
    if (id == subscription_id) return subscription_ ? subscription_->dropped() : 0;
    return inboxes_[id] ? inboxes_[id]->dropped() : 0;
  }

  void check() {
    std::size_t live_topics = 0;
    for (unsigned t = 0; t < topic_count; ++t) {
      if (!topic_lists_[t].empty()) ++live_topics;
      require(bus_.subscriber_count(topics_[t]) == topic_lists_[t].size());
    }
    require(bus_.topic_count() == live_topics);
    for (std::size_t s = 0; s < inbox_slots; ++s) {
      if (!inboxes_[s]) continue;
      require(inboxes_[s]->pending() == model_[s].queue.size());
      require(inboxes_[s]->dropped() == model_[s].dropped);
      const std::vector<std::string> held = inboxes_[s]->topics();
      require(held.size() == model_[s].topics.size());
      for (std::size_t i = 0; i < held.size(); ++i) {
        require(held[i] == topics_[model_[s].topics[i]]);
      }
    }
    if (subscription_) require(subscription_->pending() == model_[subscription_id].queue.size());
  }

  bus_type bus_;
  std::array<std::string, topic_count> topics_;
  std::array<std::optional<inbox_type>, inbox_slots> inboxes_;
  std::optional<bus_type::subscription> subscription_;
  std::array<model_receiver, inbox_slots + 1> model_;
  std::array<std::vector<std::size_t>, topic_count> topic_lists_;
  std::size_t fail_at_ = 0;
  unsigned next_message_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tandem::fuzz::input in(data, size);
  fuzz_run run;
  run.run(in);
  return 0;
}
