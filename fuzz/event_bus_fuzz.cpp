// Differential fuzzer for tandem::event_bus<std::string> (std::string topics).
//
// Topics and messages are heap-owning strings (fuzz_input.hpp: longer than any small-string
// buffer, so a moved-from one is "" and equals no model message). The input drives subscribe
// (unbounded, or bounded with drop_oldest or drop_newest -- never `block`, which would wait on
// this single thread), unsubscribe(), dropping and move-assigning subscriptions, publish,
// publish_from, try_receive, and "fail the next allocation": the next operation runs with its
// Nth allocation throwing std::bad_alloc (tests/support/failing_new.hpp).
//
// The model: per mailbox a bounded deque with its policy, its dropped() count and whether it
// is closed; per topic the list of mailboxes in subscription order (the order publish
// delivers in). Checked after every operation: topic_count(), subscriber_count() of every
// topic, and every subscription's bool, pending() and dropped(); try_receive returns exactly
// the model's oldest message; publish/publish_from return how many accepted.
// Exception guarantees (docs/reliability.md, docs/event_bus.md):
//  - subscribe is strong: a std::bad_alloc subscribes nothing and leaves no topic;
//  - publish/publish_from are basic: mailboxes reached before the throw keep their copy (in
//    delivery order: a prefix of the topic's list), none gets it twice, and the mailbox whose
//    push failed is unchanged -- in particular drop_oldest evicts nothing for a message it
//    did not queue;
//  - try_receive allocates nothing, so an armed failure never reaches it;
//  - unsubscribing never throws; if the smaller subscriber list cannot be allocated the closed
//    mailbox stays in the list (subscriber_count counts it) until the topic is erased, and
//    publishes skip it (it refuses).
#include <tandem/event_bus.hpp>

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
using subscription = bus_type::subscription;

constexpr unsigned topic_count = 4;
constexpr std::size_t slot_count = 8;

struct model_box {
  unsigned topic;
  std::size_t capacity;
  tandem::overflow_policy policy;
  std::deque<std::string> queue;
  std::size_t dropped = 0;
  bool closed = false;

  // What push does to this model mailbox; true when it accepted the message.
  bool push(const std::string& message) {
    if (closed) return false;
    if (queue.size() >= capacity) {
      ++dropped;
      if (policy == tandem::overflow_policy::drop_newest) return false;
      queue.pop_front();  // drop_oldest
    }
    queue.push_back(message);
    return true;
  }
};

class fuzzer {
  // The input's first byte: the shard count, and the absent-topic filter off, tiny (every
  // topic shares a slot: its counters go up and down across topics) or the default.
  static tandem::event_bus_options options_from(tandem::fuzz::input& in) {
    const unsigned byte = in.byte();
    tandem::event_bus_options options;
    options.shard_count = std::size_t{1} + (byte & 3U);
    const std::size_t filters[] = {0, 1, 4096};
    options.absent_topic_filter_slots = filters[(byte >> 2U) % 3U];
    return options;
  }

 public:
  explicit fuzzer(tandem::fuzz::input& in) : in_(in), bus_(options_from(in)) {
    for (unsigned t = 0; t < topic_count; ++t) topics_.push_back(heap_string("event_bus_topic", t));
  }

  void run() {
    while (!in_.empty()) {
      step();
      check();
    }
  }

 private:
  // Runs one library call with the armed allocation failure (if any); true if it threw
  // std::bad_alloc. The failure is armed for one operation only.
  template <class F>
  bool armed(F&& f) {
    return with_allocation_failure(std::exchange(fail_at_, 0), f);
  }

  // Subscriptions of topic t that still hold it (not unsubscribed): the topic exists while
  // there is one.
  [[nodiscard]] std::size_t live_subscriptions(unsigned t) const {
    std::size_t live = incoming_ && boxes_[*incoming_].topic == t ? 1 : 0;
    for (std::size_t s = 0; s < slot_count; ++s) {
      if (slot_box_[s] && !boxes_[*slot_box_[s]].closed && boxes_[*slot_box_[s]].topic == t) {
        ++live;
      }
    }
    return live;
  }

  // The model's side of the subscription in slot s unsubscribing (destructor, assignment,
  // unsubscribe()). The real one has just done it; whether its mailbox left the topic's list
  // is read from subscriber_count(), since an armed failure may have kept it there.
  void unsubscribed(std::size_t box_id, bool failure_was_armed) {
    model_box& box = boxes_[box_id];
    if (box.closed) return;  // unsubscribing twice does nothing
    box.closed = true;
    std::vector<std::size_t>& list = topic_lists_[box.topic];
    if (live_subscriptions(box.topic) == 0) {
      list.clear();  // the last subscription: the topic is erased
      return;
    }
    const std::size_t count = bus_.subscriber_count(topics_[box.topic]);
    if (count == list.size() && failure_was_armed) return;  // stays in the list, closed
    require(count + 1 == list.size());
    std::erase(list, box_id);
  }

  // Unsubscribes and forgets what slot s holds, running `release` (which destroys or assigns
  // over the real subscription) under the armed failure.
  template <class Release>
  void release_slot(std::size_t s, Release&& release) {
    const bool was_armed = fail_at_ != 0;
    require(!armed(release));  // unsubscribing never throws
    if (slot_box_[s]) unsubscribed(*slot_box_[s], was_armed);
  }

  // Delivery by publish/publish_from to topic t, skipping mailbox `skip` (if any).
  void published(unsigned t, const std::string& message, std::optional<std::size_t> skip,
                 bool threw, std::size_t reached) {
    std::size_t accepted = 0;
    bool prefix = true;  // after a throw: the mailboxes before the failing one got it
    for (const std::size_t id : topic_lists_[t]) {
      if (skip && *skip == id) continue;
      model_box& box = boxes_[id];
      if (!threw) {
        if (box.push(message)) ++accepted;
        continue;
      }
      if (box.closed) continue;  // refuses, changes nothing: not observable either way
      const std::optional<std::size_t> slot = slot_of(id);
      require(slot.has_value());  // open mailboxes belong to a live subscription
      const subscription& sub = *subs_[*slot];
      model_box after = box;
      after.push(message);
      const bool got_it = sub.pending() == after.queue.size() && sub.dropped() == after.dropped;
      if (prefix && got_it) {
        box = std::move(after);
        continue;
      }
      prefix = false;  // this one's push failed (or was never made): it is unchanged
      require(sub.pending() == box.queue.size());
      require(sub.dropped() == box.dropped);
    }
    if (!threw) require(reached == accepted);
  }

  [[nodiscard]] std::optional<std::size_t> slot_of(std::size_t box_id) const {
    for (std::size_t s = 0; s < slot_count; ++s) {
      if (slot_box_[s] == box_id) return s;
    }
    return std::nullopt;
  }

  void step() {
    const std::size_t s = in_.below(slot_count);
    const unsigned t = in_.below(topic_count);
    switch (in_.below(9)) {
      case 0: {  // subscribe into slot s (assigning over what it held)
        const unsigned kind = in_.below(3);
        const std::size_t capacity =
            kind == 0 ? tandem::unbounded_capacity : std::size_t{1} + in_.below(4);
        const auto policy =
            kind == 2 ? tandem::overflow_policy::drop_newest : tandem::overflow_policy::drop_oldest;
        std::optional<subscription> fresh;
        if (armed([&] { fresh.emplace(bus_.subscribe(topics_[t], capacity, policy)); })) {
          break;  // strong: nothing subscribed, no topic left (check() sees both)
        }
        incoming_ = boxes_.size();  // subscribed already, while slot s's old one leaves
        boxes_.push_back(model_box{t, capacity, policy, {}, 0, false});
        topic_lists_[t].push_back(*incoming_);
        if (!subs_[s]) {
          subs_[s] = std::move(fresh);
        } else {
          release_slot(s, [&] { *subs_[s] = std::move(*fresh); });
        }
        slot_box_[s] = std::exchange(incoming_, std::nullopt);
        break;
      }
      case 1:  // unsubscribe(): leaves the topic, keeps the queued messages
        if (subs_[s]) {
          release_slot(s, [&] { subs_[s]->unsubscribe(); });
        }
        break;
      case 2:  // drop: the destructor unsubscribes
        if (subs_[s]) {
          release_slot(s, [&] { subs_[s].reset(); });
          slot_box_[s].reset();
        }
        break;
      case 3: {  // move slot s into slot `to`: `to` unsubscribes first, then takes over
        const std::size_t to = in_.below(slot_count);
        if (subs_[s] && to != s) {
          if (subs_[to]) {
            release_slot(to, [&] { *subs_[to] = std::move(*subs_[s]); });
          } else {
            subs_[to] = std::move(subs_[s]);
          }
          subs_[s].reset();  // moved from: only destroyed
          slot_box_[to] = slot_box_[s];
          slot_box_[s].reset();
        }
        break;
      }
      case 4:
      case 5: {  // publish, or publish_from slot s; a burst of them, the last one armed
        const bool from = in_.below(2) == 0 && subs_[s].has_value();
        // Bursts reach the allocations a mailbox makes only every few dozen messages (a new
        // queue segment) with few input bytes.
        const unsigned count = in_.below(8) == 0 ? 1U + in_.below(36) : 1U;
        const std::size_t armed_failure = std::exchange(fail_at_, 0);
        for (unsigned i = 0; i < count; ++i) {
          std::string message = heap_string("event_bus_message", next_message_++);
          const std::string expected = message;
          std::size_t reached = 0;
          if (i + 1 == count) fail_at_ = armed_failure;
          const bool threw = armed([&] {
            reached = from ? bus_.publish_from(*subs_[s], topics_[t], std::move(message))
                           : bus_.publish(topics_[t], std::move(message));
          });
          published(t, expected, from ? slot_box_[s] : std::nullopt, threw, reached);
        }
        break;
      }
      case 6:
      case 7:  // try_receive allocates nothing
        if (subs_[s]) {
          std::optional<std::string> got;
          require(!armed([&] { got = subs_[s]->try_receive(); }));
          model_box& box = boxes_[*slot_box_[s]];
          require(got.has_value() == !box.queue.empty());
          if (got) {
            require(*got == box.queue.front());
            box.queue.pop_front();
          }
        }
        break;
      case 8:  // the next operation runs with its Nth allocation failing
        fail_at_ = std::size_t{1} + in_.below(12);
        break;
      default:
        break;
    }
  }

  void check() {
    std::size_t live_topics = 0;
    for (unsigned t = 0; t < topic_count; ++t) {
      const bool live = live_subscriptions(t) != 0;
      if (live) ++live_topics;
      require(bus_.subscriber_count(topics_[t]) == (live ? topic_lists_[t].size() : 0));
    }
    require(bus_.topic_count() == live_topics);
    for (std::size_t s = 0; s < slot_count; ++s) {
      require(subs_[s].has_value() == slot_box_[s].has_value());
      if (!subs_[s]) continue;
      const model_box& box = boxes_[*slot_box_[s]];
      require(static_cast<bool>(*subs_[s]) == !box.closed);
      require(subs_[s]->pending() == box.queue.size());
      require(subs_[s]->dropped() == box.dropped);
      if (!box.closed) require(subs_[s]->topic() == topics_[box.topic]);
    }
  }

  tandem::fuzz::input& in_;
  std::vector<std::string> topics_;  // topic id -> name
  std::vector<model_box> boxes_;     // every mailbox ever subscribed, by id
  std::vector<std::vector<std::size_t>> topic_lists_ =
      std::vector<std::vector<std::size_t>>(topic_count);  // mailbox ids, delivery order
  std::vector<std::optional<std::size_t>> slot_box_ =
      std::vector<std::optional<std::size_t>>(slot_count);
  std::optional<std::size_t> incoming_;  // a new subscription not in a slot yet
  unsigned next_message_ = 0;
  std::size_t fail_at_ = 0;  // armed failure for the next op
  // Last: subscriptions are destroyed before the bus (they may outlive it, but need not).
  bus_type bus_;
  std::vector<std::optional<subscription>> subs_ =
      std::vector<std::optional<subscription>>(slot_count);
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tandem::fuzz::input in(data, size);
  fuzzer(in).run();
  return 0;
}
