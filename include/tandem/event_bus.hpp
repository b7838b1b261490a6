// tandem/event_bus.hpp -- topic publish/subscribe with automatic topic lifetime.
//
// What it is for: Elixir Phoenix.PubSub's feel in C++. `subscribe(topic)` returns a
// subscription that owns a mailbox; `publish(topic, message)` puts a copy of the message in the
// mailbox of every current subscriber of that topic. Topics are created by their first
// subscription and erased when their last subscription is destroyed -- no bookkeeping for the
// user. Subscribers receive on their own thread (`receive`, `receive_for`, `try_receive`),
// so a slow or blocked subscriber never runs code inside a publisher.
//
// When not to use it: for synchronous callbacks (the bus has none: handlers run where the
// subscriber receives), or for one producer and one consumer with no topics (a plain queue is
// cheaper).
//
//   tandem::event_bus<std::string> bus;
//   auto lobby = bus.subscribe("room:lobby");          // topic "room:lobby" now exists
//   bus.publish("room:lobby", "hello");                // returns 1: one subscriber reached
//   std::string text = lobby.receive();                // "hello"
//   // lobby destroyed -> the topic is erased, bus.topic_count() == 0
//
// The algorithm, step by step:
//  1. Topics live in a tandem::rc_map<Topic, topic_state>. Every subscription holds an rc_map
//     handle to its topic, so the rc_map erases the topic when the last subscription goes.
//  2. A topic_state holds an immutable snapshot of its subscribers: a reference-counted array
//     of shared_ptr<mailbox>. subscribe/unsubscribe replace the snapshot (copy-on-write) under
//     the topic's small lock; publish copies the snapshot pointer under that lock (one atomic
//     increment) and delivers with NO lock of the topic or the map held. Subscriptions that
//     join or leave meanwhile do not disturb the delivery, and a mailbox stays alive while a
//     publisher still holds the snapshot naming it (shared ownership).
//  3. publish hashes the topic once (with Hash), then asks the absent-topic filter: a table of
//     counters indexed by that hash, incremented when a topic is created and decremented when
//     it is erased. A zero counter proves the topic absent: publish returns 0 with no lock, no
//     map lookup and no allocation. A non-zero counter (the topic exists, or another topic
//     shares the slot) falls through to the rc_map lookup with the precomputed hash and the
//     caller's key as it is (detail::hashed_topic: the map's hash returns the precomputed
//     value, its equality calls KeyEqual on the key), so it allocates nothing either.
//
// Topic arguments, one rule for subscribe / publish / publish_from / subscriber_count: a
// Topic, any key that Hash and KeyEqual both accept when both are transparent (for std::string
// topics the defaults tandem::string_hash / string_equal are: std::string_view and const char*
// are used as they are), or anything implicitly convertible to Topic (converted to one Topic
// per call). A Topic is built only when subscribe creates the topic. A custom Topic type needs
// no std::hash specialisation: pass Hash and KeyEqual.
//  4. Delivery with one target (after skipping the sender for publish_from): the message is
//     moved into that mailbox under the topic lock, without copying the snapshot; the only user
//     code under the lock is Message's noexcept move. A full `block` mailbox is never waited
//     for under the lock: publish then takes step 5's path.
//  5. Delivery with several targets: copy the snapshot, release every lock, then the first n-1
//     mailboxes each get a copy of the message and the last one gets it moved. Each mailbox
//     applies its overflow policy (see tandem/detail/mailbox.hpp); publish returns how many
//     accepted the message.
//  6. Unsubscribe (destructor, move-assignment or unsubscribe()): close the mailbox first
//     (from then on no push succeeds and publishers blocked on it wake up), then replace the
//     topic's snapshot with one that lacks it, then withdraw it from the bus's roster (step 7),
//     then release the rc_map handle.
//  7. The roster: the bus and its topics share a core (the absent-topic filter and an
//     intrusive list of the open subscriptions' mailboxes, under its own small lock).
//     subscribe() enrolls the new mailbox once it is in the topic's list (noexcept: a link);
//     ~event_bus closes every enrolled mailbox, so a subscription that outlives its bus is
//     closed: it keeps its queued messages and receive() then throws instead of waiting for a
//     publisher that cannot exist any more.
//
// Closed subscriptions (unsubscribe() called, or the bus destroyed): messages queued before
// are still delivered, in order; after them receive() throws tandem::subscription_closed (a
// std::logic_error, see detail/mailbox.hpp) and try_receive / receive_for / receive_until
// return std::nullopt at once. A moved-from subscription is closed and has no mailbox: the
// same, in every build type; topic() on it (or after unsubscribe()) throws
// tandem::subscription_closed too.
//
// A subscriber must not wait for itself: publishing (from the subscription's receiving thread)
// into its own full `block` mailbox would wait forever for room that only that thread can
// make. The mailbox knows its receiving thread (the one that subscribed, until a thread
// receives on it or it is moved; then the last thread that received), and such a publish
// throws std::logic_error naming the topic and the policy instead of waiting. Hand a
// subscription to another thread by moving it (or receive on the new thread first): a thread
// that subscribed and kept no ownership but still shares the object by reference is taken for
// its receiver until that other thread receives.
//
// Guarantees:
//  - A topic exists exactly while it has subscriptions (or a publish to it is in flight: a
//    publisher holds the topic for the few instructions it takes to copy the snapshot).
//  - Every subscription receives every message published to its topic after subscribe()
//    returned, in publish order per publishing thread, never twice, and nothing once its
//    destructor has run (the mailbox is closed before anything else).
//  - No lock is held while publish copies a message or waits for room, and no lock that
//    subscribe/unsubscribe/receive take is held while it waits, so receiving, subscribing or
//    unsubscribing from any thread -- including a subscriber whose full mailbox is blocking a
//    publisher -- never deadlocks with publish.
//  - Copies: n-1 copies for n subscribers reached, the last gets the message moved. A
//    move-only Message is allowed, but then a topic has at most one subscription: a second
//    subscribe() to the same topic throws std::logic_error (see "Move-only messages" below).
//  - Exception safety: subscribe is strong (std::bad_alloc leaves nothing subscribed).
//    publish may throw std::bad_alloc, the message's copy constructor's exception or the
//    std::logic_error above; the mailboxes reached before the throw keep their copy, and the
//    mailbox whose push threw is unchanged (every mailbox operation is strong: a drop_oldest
//    mailbox evicts only once the new message is sure to go in). Unsubscribing never throws
//    and calls no Hash or KeyEqual: it finds its mailbox and topic by address (the topic's
//    filter slot by the hash stored at creation).
//  - Timeouts saturate: receive_for(d) waits until now() + d computed without overflow
//    (sync::deadline_after), so receive_for(seconds::max()) and receive_until of any clock's
//    time_point::max() wait until a message comes.
//  - publish blocks only on a mailbox with overflow_policy::block that is full, and only until
//    its subscriber receives or unsubscribes. receive() blocks without spinning (it sleeps on
//    a condition variable that a publisher signals only when the receiver is parked).
//
// Move-only messages: the number of subscribers is only known at run time, so "fan-out needs
// a copy" cannot be a compile-time error without forbidding publish for move-only messages
// altogether. Instead, for a Message that is not copy constructible (`fans_out` is false) a
// topic accepts one subscription: the second subscribe() throws std::logic_error at the line
// that would create the fan-out, before any message could be lost, and publish never has to
// fail. Copy-constructible messages have no such limit.
//
// Costs: per topic, one rc_map entry plus a topic_state (a lock and a snapshot pointer); per
// subscription, one mailbox (see mailbox.hpp) and one snapshot slot. subscribe/unsubscribe
// allocate a new snapshot: O(subscribers of that topic). publish to an existing topic: one
// hash, one rc_map lookup (shard lock + count increment/decrement), the topic lock, with
// several subscribers one snapshot copy (an increment and a decrement), and per subscriber one
// mailbox lock plus a message copy (n-1 copies). The absent-topic filter costs 4 bytes per
// slot (4096 slots by default, 16 KiB per bus). The roster costs two pointers per
// subscription and one small lock per bus, taken once by subscribe, unsubscribe and ~event_bus.
//
// Memory ordering: the absent-topic filter's counters are relaxed: a publish that happens
// after subscribe() returned reads, by write-read coherence of that one counter, the
// increment made when the topic was created (or a later value, which can only be lower by
// erasures of other topics sharing the slot, each undoing its own increment), so it never sees
// zero for a live topic; a publish concurrent with subscribe() may see either, which is the
// documented "after subscribe returned" boundary. All other shared state is guarded by the
// rc_map's locks, the topic lock (a sync::small_mutex), the roster lock and the mailboxes'
// locks (the roster lock is taken before a mailbox's, never the other way round).
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "detail/mailbox.hpp"
#include "rc_map.hpp"
#include "string_hash.hpp"
#include "sync/assert.hpp"
#include "sync/backoff.hpp"
#include "sync/striped_lock.hpp"
#include "sync/sync_point.hpp"

namespace tandem {

// ---- Requirements: named concepts on the class template (see event_bus below), so that a bad
// parameter's first error names tandem::event_bus and the output names the concept it broke. --

// Message: what mailboxes hold.
template <class M>
concept bus_message = std::is_object_v<M> && !std::is_const_v<M> && std::destructible<M> &&
                      // Messages are moved into and out of mailboxes under a lock; a throwing move
                      // could lose a message half-way, so moves must not throw (std::string,
                      // std::vector, std::unique_ptr and aggregates of them qualify).
                      std::is_nothrow_move_constructible_v<M>;

// Topic: the key of the topic map, moved (or built) into it when a topic is created.
template <class T>
concept bus_topic = std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T> &&
                    std::destructible<T> && std::move_constructible<T>;

// Hash: copy-constructible (the bus keeps one), maps a const Topic& to std::size_t. For a topic
// type with no std::hash specialisation, pass your own (no specialisation needed).
template <class Hash, class Topic>
concept bus_topic_hash = std::copy_constructible<Hash> &&
    std::is_invocable_r_v<std::size_t, const Hash&, const Topic&>;

// KeyEqual: copy-constructible, compares two Topics.
template <class KeyEqual, class Topic>
concept bus_topic_key_equal = std::copy_constructible<KeyEqual> &&
    std::is_invocable_r_v<bool, const KeyEqual&, const Topic&, const Topic&>;

// A topic argument used as it is: the Topic itself or, when Hash and KeyEqual are transparent
// (the default tandem::string_hash/string_equal for std::string topics are), any key they
// accept -- std::string_view, const char* -- so that no Topic is built.
template <class Q, class Topic, class Hash, class KeyEqual>
concept bus_transparent_topic = std::same_as<Q, Topic> || (requires {
  typename Hash::is_transparent;
  typename KeyEqual::is_transparent;
} && std::is_invocable_r_v<std::size_t, const Hash&, const Q&> &&
    std::is_invocable_r_v<bool, const KeyEqual&, const Q&, const Topic&>);

// What publish, publish_from, subscribe and subscriber_count take as a topic: a
// bus_transparent_topic, or anything implicitly convertible to Topic (converted to one Topic
// per call: an integer literal for a std::uint64_t topic, ...).
template <class Q, class Topic, class Hash, class KeyEqual>
concept bus_topic_argument =
    bus_transparent_topic<std::remove_cvref_t<Q>, Topic, Hash, KeyEqual> ||
    std::convertible_to<const std::remove_cvref_t<Q>&, Topic>;

struct event_bus_options {
  // Shards of the topic map. 16 keeps two publishers on different topics off each other's
  // lock with high probability on machines up to ~8 cores while costing a few hundred bytes.
  std::size_t shard_count = 16;
  // Default capacity of a subscription's mailbox (subscribe(topic) without a capacity).
  // Unbounded, like a Phoenix process mailbox: nothing is dropped and publish never blocks.
  std::size_t mailbox_capacity = unbounded_capacity;
  // Default overflow policy when mailbox_capacity is bounded.
  overflow_policy overflow = overflow_policy::block;
  // Slots of the absent-topic filter (rounded up to a power of two; 0 disables it). 4096
  // slots keep the false-positive rate under 3% with 100 live topics and cost 16 KiB.
  std::size_t absent_topic_filter_slots = 4096;
};

namespace detail {

// A topic key (a Topic, or a transparent key; `Key` is a reference type) with its hash
// already computed: publish hashes once and uses the result for the absent-topic filter and
// the topic map's lookup; subscribe passes it to rc_map::try_emplace, which builds the Topic
// from it (the conversion below) only when the topic is created.
template <class Topic, class Key>
struct hashed_topic {
  Key key;
  std::size_t hash;
  // NOLINTNEXTLINE(google-explicit-constructor): rc_map builds its key by direct-initialization
  operator Topic() && { return Topic(static_cast<Key>(key)); }
};

// The topic map's hash and equality: the user's Hash/KeyEqual, plus lookups by hashed_topic
// (the hash precomputed, the key compared with KeyEqual as it is). Transparent whatever the
// user's are: event_bus passes only Topics, or keys the user's Hash/KeyEqual accept, inside
// a hashed_topic.
template <class Topic, class Hash>
struct topic_map_hash {
  using is_transparent = void;
  Hash hash;
  std::size_t operator()(const Topic& topic) const {
    return static_cast<std::size_t>(std::invoke(hash, topic));
  }
  template <class Key>
  std::size_t operator()(const hashed_topic<Topic, Key>& topic) const noexcept {
    return topic.hash;
  }
};

template <class Topic, class KeyEqual>
struct topic_map_equal {
  using is_transparent = void;
  KeyEqual equal;
  bool operator()(const Topic& a, const Topic& b) const {
    return static_cast<bool>(std::invoke(equal, a, b));
  }
  template <class Key>
  bool operator()(const hashed_topic<Topic, Key>& a, const Topic& b) const {
    return static_cast<bool>(std::invoke(equal, std::as_const(a.key), b));
  }
};

// Counters indexed by topic hash: zero proves that no topic with that hash exists.
class absent_topic_filter {
 public:
  explicit absent_topic_filter(std::size_t slots)
      : mask_(std::bit_ceil(slots) - 1),
        counters_(std::make_unique<std::atomic<std::uint32_t>[]>(mask_ + 1)) {}

  // relaxed: see "Memory ordering" in the header comment (coherence of one counter suffices).
  void topic_created(std::size_t hash) noexcept {
    counters_[sync::mix_hash(hash) & mask_].fetch_add(1, std::memory_order_relaxed);
  }
  void topic_erased(std::size_t hash) noexcept {
    counters_[sync::mix_hash(hash) & mask_].fetch_sub(1, std::memory_order_relaxed);
  }
  [[nodiscard]] bool may_exist(std::size_t hash) const noexcept {
    return counters_[sync::mix_hash(hash) & mask_].load(std::memory_order_relaxed) != 0;
  }

 private:
  std::size_t mask_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> counters_;
};

// The open mailboxes of one bus (step 7): an intrusive list, so enrolling and withdrawing
// allocate nothing and ~event_bus can close them all without allocating either.
template <class Mailbox>
class bus_roster {
 public:
  bus_roster() noexcept = default;
  bus_roster(const bus_roster&) = delete;
  bus_roster& operator=(const bus_roster&) = delete;
  ~bus_roster() = default;

  void enroll(Mailbox& box) noexcept {
    std::lock_guard<sync::small_mutex> guard(lock_);
    box.roster.previous = nullptr;
    box.roster.next = first_;
    box.roster.enrolled = true;
    if (first_ != nullptr) first_->roster.previous = &box;
    first_ = &box;
  }

  // Idempotent; a mailbox that close_all() already closed is no longer enrolled.
  void withdraw(Mailbox& box) noexcept {
    std::lock_guard<sync::small_mutex> guard(lock_);
    if (!box.roster.enrolled) return;
    if (box.roster.previous != nullptr) {
      box.roster.previous->roster.next = box.roster.next;
    } else {
      first_ = box.roster.next;
    }
    if (box.roster.next != nullptr) box.roster.next->roster.previous = box.roster.previous;
    box.roster = {};
  }

  // Closes and withdraws every enrolled mailbox. An enrolled mailbox cannot be destroyed
  // meanwhile: its subscription withdraws it (under this lock) before releasing it.
  void close_all() noexcept {
    std::lock_guard<sync::small_mutex> guard(lock_);
    while (first_ != nullptr) {
      Mailbox* box = std::exchange(first_, first_->roster.next);
      box->roster = {};
      box->close();
    }
  }

 private:
  sync::small_mutex lock_;
  Mailbox* first_ = nullptr;  // guarded by lock_
};

}  // namespace detail

// Hash/KeyEqual default to tandem::string_hash/string_equal for std::string topics
// (transparent: see tandem/string_hash.hpp), else std::hash<Topic>/std::equal_to<Topic>.
template <class Message, class Topic = std::string, class Hash = default_hash<Topic>,
          class KeyEqual = default_key_equal<Topic>>
requires bus_message<Message> && bus_topic<Topic> && bus_topic_hash<Hash, Topic> &&
    bus_topic_key_equal<KeyEqual, Topic>
class event_bus {
  using mailbox_type = detail::mailbox<Message>;
  using mailbox_ptr = std::shared_ptr<mailbox_type>;
  class topic_state;
  using topic_map = rc_map<Topic, topic_state, detail::topic_map_hash<Topic, Hash>,
                           detail::topic_map_equal<Topic, KeyEqual>>;

  // What the bus shares with its topics (and so with subscriptions that outlive it).
  struct shared_core {
    explicit shared_core(std::size_t filter_slots)
        : filter(filter_slots == 0 ? nullptr
                                   : std::make_unique<detail::absent_topic_filter>(filter_slots)) {}
    std::unique_ptr<detail::absent_topic_filter> filter;  // null when disabled
    detail::bus_roster<mailbox_type> roster;
  };

 public:
  using message_type = Message;
  using topic_type = Topic;
  using hasher = Hash;
  using key_equal = KeyEqual;
  // False for a move-only Message: then a topic accepts only one subscription.
  static constexpr bool fans_out = std::is_copy_constructible_v<Message>;

  class subscription;

  // Throws std::invalid_argument for a shard_count or mailbox_capacity of 0.
  explicit event_bus(event_bus_options options = {}, const Hash& hash = Hash(),
                     const KeyEqual& equal = KeyEqual())
      : options_(validated(options)),
        core_(std::make_shared<shared_core>(options.absent_topic_filter_slots)),
        hash_(hash),
        topics_(options.shard_count, detail::topic_map_hash<Topic, Hash>{hash},
                detail::topic_map_equal<Topic, KeyEqual>{equal}) {}

  event_bus(const event_bus&) = delete;
  event_bus& operator=(const event_bus&) = delete;
  // Subscriptions may outlive the bus: they are closed (step 7), keep their queued messages
  // and receive nothing new; receive() throws once those are gone.
  ~event_bus() { core_->roster.close_all(); }

  // Topics: every function below takes a Topic, any key Hash and KeyEqual accept when both are
  // transparent (for std::string topics by default: std::string_view, const char*), or
  // anything implicitly convertible to Topic (see bus_topic_argument). A transparent key is
  // used as it is: publish and subscriber_count build no Topic (and allocate nothing for an
  // absent topic), and subscribe builds one only when it creates the topic.

  // Subscribes with the bus's default mailbox capacity and policy.
  template <class Q>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual> && std::constructible_from<Topic, Q&&>
  [[nodiscard]] subscription subscribe(Q&& topic) {
    return subscribe(std::forward<Q>(topic), options_.mailbox_capacity, options_.overflow);
  }

  // capacity: unbounded_capacity or >= 1 (0 throws std::invalid_argument). For a move-only
  // Message, throws std::logic_error if the topic already has a subscription.
  template <class Q>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual> && std::constructible_from<Topic, Q&&>
  [[nodiscard]] subscription subscribe(Q&& topic, std::size_t capacity, overflow_policy policy) {
    if (capacity == 0) {
      throw std::invalid_argument(
          "tandem::event_bus::subscribe: a mailbox capacity of 0 could never hold a message; "
          "use tandem::unbounded_capacity for no limit");
    }
    auto box = std::make_shared<mailbox_type>(capacity, policy);  // on this (receiving) thread
    auto&& key = insert_form<Q>(topic);  // Q as it is, or one Topic converted from it
    const std::size_t hash = hash_of(std::as_const(key));
    // The Topic is built (from `key`) by the rc_map only if this creates the topic.
    auto entry = topics_
                     .try_emplace(detail::hashed_topic<Topic, decltype(key)&&>{
                                      std::forward<decltype(key)>(key), hash},
                                  core_, hash)
                     .first;
    TANDEM_SYNC_POINT();  // the topic exists (maybe just created); we are not in its list yet
    entry->add(box);  // strong: on a throw, nothing was added (the handle then releases)
    core_->roster.enroll(*box);  // noexcept: from here ~event_bus closes it
    return subscription(std::move(entry), std::move(box));
  }

  // Delivers `message` to every subscriber of `topic`; returns how many accepted it (0 when
  // the topic has no subscribers: then nothing is allocated).
  template <class Q>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual>
  std::size_t publish(const Q& topic, Message message) {
    return deliver(lookup_form(topic), message, nullptr);
  }

  // Like publish, but `sender`'s own mailbox is skipped (Phoenix.PubSub.broadcast_from).
  template <class Q>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual>
  std::size_t publish_from(const subscription& sender, const Q& topic, Message message) {
    return deliver(lookup_form(topic), message, sender.mailbox_.get());
  }

  [[nodiscard]] std::size_t topic_count() const { return topics_.size(); }

  // Subscriptions of `topic` right now (0 when it does not exist).
  template <class Q>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual>
  [[nodiscard]] std::size_t subscriber_count(const Q& topic) const {
    const std::optional<typename topic_map::handle> entry = find(lookup_form(topic));
    return entry ? (*entry)->subscriber_count() : 0;
  }

 private:
  static event_bus_options validated(const event_bus_options& options) {
    if (options.shard_count == 0) {
      throw std::invalid_argument("tandem::event_bus: shard_count must be at least 1");
    }
    if (options.mailbox_capacity == 0) {
      throw std::invalid_argument(
          "tandem::event_bus: mailbox_capacity of 0 could never hold a message; use "
          "tandem::unbounded_capacity for no limit");
    }
    return options;
  }

  // Whether a topic argument is used as it is (Topic, or transparent) rather than converted.
  template <class Q>
  static constexpr bool used_as_is =
      bus_transparent_topic<std::remove_cvref_t<Q>, Topic, Hash, KeyEqual>;

  // A lookup's topic argument as the map takes it: itself, or converted to a Topic (a
  // temporary that lives until the end of the caller's full-expression).
  template <class Q>
  static decltype(auto) lookup_form(const Q& topic) {
    if constexpr (used_as_is<Q>) {
      return (topic);
    } else {
      return Topic(topic);
    }
  }

  // subscribe's topic argument, forwarded, or converted to one Topic. Call as
  // insert_form<Q>(topic) with the forwarding parameter `topic`.
  template <class Q>
  static decltype(auto) insert_form(std::remove_reference_t<Q>& topic) {
    if constexpr (used_as_is<Q>) {
      return static_cast<Q&&>(topic);
    } else {
      return Topic(static_cast<Q&&>(topic));
    }
  }

  template <class Q>
  [[nodiscard]] std::size_t hash_of(const Q& topic) const {
    return static_cast<std::size_t>(std::invoke(hash_, topic));
  }

  // The topic's entry, if it exists: one hash, the filter, then (maybe) the map lookup with
  // the hash precomputed. `topic` is a Topic or a transparent key: nothing is built.
  template <class Q>
  std::optional<typename topic_map::handle> find(const Q& topic) const {
    const std::size_t hash = hash_of(topic);
    const detail::absent_topic_filter* filter = core_->filter.get();
    if (filter != nullptr && !filter->may_exist(hash)) return std::nullopt;
    return topics_.get(detail::hashed_topic<Topic, const Q&>{topic, hash});
  }

  template <class Q>
  std::size_t deliver(const Q& topic, Message& message, const mailbox_type* skip) {
    std::optional<Message> evicted;  // by drop_oldest on the fast path; destroyed last
    typename topic_state::snapshot targets;
    {
      const std::optional<typename topic_map::handle> entry = find(topic);
      if (!entry) return 0;
      if (const std::optional<std::size_t> reached =
              (*entry)->try_deliver_to_one(message, skip, evicted)) {
        return *reached;
      }
      targets = (*entry)->current();
    }  // the topic is released before delivering: publishing does not keep it alive
    const mailbox_ptr* boxes = targets.list.get();
    std::size_t last = targets.size;
    for (std::size_t i = targets.size; i-- > 0;) {
      if (boxes[i].get() != skip) {
        last = i;
        break;
      }
    }
    std::size_t reached = 0;
    for (std::size_t i = 0; i < last; ++i) {
      mailbox_type& box = *boxes[i];
      if (&box == skip) continue;
      if constexpr (fans_out) {
        Message copy(message);
        if (push_to(box, copy, topic)) ++reached;
      } else {
        TANDEM_ASSERT(false, "a move-only message fanned out; subscribe() should have refused");
      }
    }
    if (last != targets.size && push_to(*boxes[last], message, topic)) ++reached;
    return reached;
  }

  // One mailbox's push; a publisher that would wait for its own full `block` mailbox gets
  // std::logic_error instead (see "A subscriber must not wait for itself").
  template <class Q>
  static bool push_to(mailbox_type& box, Message& message, const Q& topic) {
    switch (box.push(message)) {
      case mailbox_type::push_outcome::accepted:
        return true;
      case mailbox_type::push_outcome::own_mailbox_full:
        throw std::logic_error(
            "tandem::event_bus::publish: " + describe(topic) +
            " has a subscription with overflow_policy::block whose mailbox is full (capacity " +
            std::to_string(box.capacity()) +
            "), and the publishing thread is the one that receives on it: waiting for room "
            "would never end. Receive first, or use a larger capacity or another policy");
      case mailbox_type::push_outcome::refused:
      case mailbox_type::push_outcome::full:
        break;
    }
    return false;
  }

  template <class Q>
  static std::string describe(const Q& topic) {
    if constexpr (std::is_convertible_v<const Q&, std::string_view>) {
      return "topic \"" + std::string(std::string_view(topic)) + "\"";
    } else {
      return "the topic";
    }
  }

  event_bus_options options_;
  std::shared_ptr<shared_core> core_;  // shared with every topic_state
  Hash hash_;                          // hashes each topic argument once (filter + map)
  // mutable: subscriber_count() const looks a topic up, which briefly holds a handle (an
  // increment and decrement of the entry's count) without changing anything observable.
  mutable topic_map topics_;
};

// The value of each rc_map entry: the topic's current subscribers.
template <class Message, class Topic, class Hash, class KeyEqual>
requires bus_message<Message> && bus_topic<Topic> && bus_topic_hash<Hash, Topic> &&
    bus_topic_key_equal<KeyEqual, Topic>
class event_bus<Message, Topic, Hash, KeyEqual>::topic_state {
 public:
  // A consistent view of the subscribers at one instant; keeps their mailboxes alive.
  struct snapshot {
    std::shared_ptr<const mailbox_ptr[]> list;
    std::size_t size = 0;
  };

  topic_state(std::shared_ptr<shared_core> core, std::size_t hash) noexcept
      : core_(std::move(core)), hash_(hash) {
    TANDEM_SYNC_POINT();  // the topic is being created: linked in the map, not in the filter
    if (core_->filter) core_->filter->topic_created(hash_);
  }
  topic_state(const topic_state&) = delete;
  topic_state& operator=(const topic_state&) = delete;
  ~topic_state() {
    TANDEM_SYNC_POINT();  // the topic is being erased: unlinked from the map, still counted
    if (core_->filter) core_->filter->topic_erased(hash_);
  }

  [[nodiscard]] shared_core& core() const noexcept { return *core_; }

  // The fast path of publish for a topic with one target (after skipping `skip`): that needs
  // no copy, so the message is moved into the mailbox right under the topic lock, without
  // copying the snapshot (saving its two reference-count updates). The mailbox lock nests
  // inside the topic lock; the only user code run under them is Message's noexcept move.
  // Returns std::nullopt when the fast path does not apply -- several targets, or a full
  // mailbox with the block policy, which must not be waited for under a lock -- and the
  // caller takes the snapshot path.
  std::optional<std::size_t> try_deliver_to_one(Message& message, const mailbox_type* skip,
                                                std::optional<Message>& evicted) {
    std::lock_guard<sync::small_mutex> guard(lock_);
    const mailbox_ptr* boxes = subscribers_.list.get();
    if (subscribers_.size == 0 || (subscribers_.size == 1 && boxes[0].get() == skip)) {
      return 0;
    }
    if (subscribers_.size != 1) return std::nullopt;
    switch (boxes[0]->try_push(message, evicted)) {
      case mailbox_type::push_outcome::accepted:
        return 1;
      case mailbox_type::push_outcome::refused:
        return 0;
      case mailbox_type::push_outcome::full:
      case mailbox_type::push_outcome::own_mailbox_full:  // (only push() returns it)
        break;
    }
    return std::nullopt;
  }

  [[nodiscard]] snapshot current() const {
    std::lock_guard<sync::small_mutex> guard(lock_);
    return subscribers_;
  }

  [[nodiscard]] std::size_t subscriber_count() const {
    std::lock_guard<sync::small_mutex> guard(lock_);
    return subscribers_.size;
  }

  // Strong guarantee: throws std::bad_alloc, or std::logic_error for a second subscription
  // with a move-only Message, and then changes nothing.
  void add(const mailbox_ptr& box) {
    std::unique_lock<sync::small_mutex> guard(lock_);
    snapshot old = subscribers_;
    guard.unlock();
    for (;;) {
      if constexpr (!fans_out) {
        if (old.size != 0) {
          throw std::logic_error(
              "tandem::event_bus: Message is not copy constructible, so a topic can have only "
              "one subscription (fan-out would need a copy); this topic already has one");
        }
      }
      // Build the new list outside the lock (allocation and shared_ptr copies), then install
      // it if nobody changed the list meanwhile; otherwise start over from the newer list.
      snapshot fresh = with(old, box);
      guard.lock();
      if (subscribers_.list == old.list) {
        subscribers_ = std::move(fresh);
        return;
      }
      old = subscribers_;
      guard.unlock();
    }
  }

  // Never throws: if the smaller list cannot be allocated, the (closed) mailbox simply stays
  // in the list -- pushes to it fail -- until the next change of this topic's list.
  void remove(const mailbox_type* box) noexcept {
    std::unique_lock<sync::small_mutex> guard(lock_);
    snapshot old = subscribers_;
    guard.unlock();
    for (;;) {
      snapshot fresh;
      try {
        fresh = without(old, box);
      } catch (const std::bad_alloc&) {
        return;
      }
      guard.lock();
      if (subscribers_.list == old.list) {
        std::swap(subscribers_, fresh);  // the old list is released after the lock
        guard.unlock();
        return;
      }
      old = subscribers_;
      guard.unlock();
    }
  }

 private:
  static snapshot with(const snapshot& old, const mailbox_ptr& box) {
    auto list = std::make_shared<mailbox_ptr[]>(old.size + 1);
    std::copy_n(old.list.get(), old.size, list.get());
    list.get()[old.size] = box;
    return snapshot{std::move(list), old.size + 1};
  }

  static snapshot without(const snapshot& old, const mailbox_type* box) {
    const mailbox_ptr* first = old.list.get();
    const mailbox_ptr* end = first + old.size;
    auto is_box = [box](const mailbox_ptr& p) { return p.get() == box; };
    const auto kept = static_cast<std::size_t>(old.size) -
                      static_cast<std::size_t>(std::count_if(first, end, is_box));
    if (kept == 0) return snapshot{};
    auto list = std::make_shared<mailbox_ptr[]>(kept);
    std::remove_copy_if(first, end, list.get(), is_box);
    return snapshot{std::move(list), kept};
  }

  mutable sync::small_mutex lock_;
  snapshot subscribers_;  // guarded by lock_; replaced, never modified in place
  std::shared_ptr<shared_core> core_;
  std::size_t hash_;
};

// One subscriber's membership in one topic, and its mailbox. Movable, not copyable; one thread
// at a time may receive on it. Destroying it (or assigning to it) unsubscribes. See "Closed
// subscriptions" in the header comment for what a closed or moved-from one does.
template <class Message, class Topic, class Hash, class KeyEqual>
requires bus_message<Message> && bus_topic<Topic> && bus_topic_hash<Hash, Topic> &&
    bus_topic_key_equal<KeyEqual, Topic>
class [[nodiscard]] event_bus<Message, Topic, Hash, KeyEqual>::subscription {
 public:
  // The moved-to subscription may be received on another thread: the mailbox forgets its
  // receiving thread until someone receives.
  subscription(subscription&& other) noexcept
      : topic_(std::move(other.topic_)), mailbox_(std::move(other.mailbox_)) {
    if (mailbox_ != nullptr) mailbox_->forget_consumer();
  }
  // Takes over `other`'s topic and mailbox, then unsubscribes from this one's old topic. The
  // source is taken over BEFORE the old state is released: `other` may be owned by that state
  // (for example a message still queued in this mailbox), and self-assignment keeps it.
  subscription& operator=(subscription&& other) noexcept {
    subscription incoming(std::move(other));
    std::swap(topic_, incoming.topic_);
    std::swap(mailbox_, incoming.mailbox_);
    return *this;  // `incoming` now holds the old state: its destructor unsubscribes
  }
  subscription(const subscription&) = delete;
  subscription& operator=(const subscription&) = delete;
  ~subscription() { unsubscribe(); }

  // The oldest queued message, or std::nullopt at once if there is none (also when closed or
  // moved from).
  [[nodiscard]] std::optional<Message> try_receive() {
    if (mailbox_ == nullptr) return std::nullopt;
    return mailbox_->try_pop();
  }

  // The oldest queued message; blocks (without spinning) until there is one. Throws
  // tandem::subscription_closed when none can come any more: closed (unsubscribed, or the bus
  // destroyed) with nothing left queued, or moved from.
  [[nodiscard]] Message receive() {
    if (mailbox_ == nullptr) {
      throw subscription_closed(
          "tandem::event_bus::subscription::receive: the subscription was moved from; it has "
          "no mailbox and nothing can arrive");
    }
    return mailbox_->pop();
  }

  // Like receive(), but gives up with std::nullopt after `timeout` (or at once when closed and
  // empty, or moved from). The deadline saturates: a timeout too large for steady_clock
  // (e.g. seconds::max()) waits until a message comes.
  template <class Rep, class Period>
  [[nodiscard]] std::optional<Message> receive_for(
      const std::chrono::duration<Rep, Period>& timeout) {
    return receive_until(sync::deadline_after<std::chrono::steady_clock>(timeout));
  }

  // Like receive(), but gives up with std::nullopt once `deadline` (of any clock) has passed,
  // or at once when closed and empty, or moved from. time_point::max() waits until a message
  // comes.
  template <class Clock, class Duration>
  [[nodiscard]] std::optional<Message> receive_until(
      const std::chrono::time_point<Clock, Duration>& deadline) {
    if (mailbox_ == nullptr) return std::nullopt;
    return mailbox_->pop_until(deadline);
  }

  // Throws tandem::subscription_closed after unsubscribe() and for a moved-from subscription.
  [[nodiscard]] const Topic& topic() const {
    if (!topic_) {
      throw subscription_closed(
          "tandem::event_bus::subscription::topic: the subscription was moved from or has "
          "unsubscribed; it has no topic");
    }
    return topic_.key();
  }

  // Messages queued and not yet received (0 for a moved-from subscription).
  [[nodiscard]] std::size_t pending() const { return mailbox_ ? mailbox_->size() : 0; }

  // Messages this mailbox discarded because of its overflow policy (drop_oldest: evicted;
  // drop_newest: refused). Always 0 for unbounded or blocking mailboxes (and moved-from ones).
  [[nodiscard]] std::size_t dropped() const { return mailbox_ ? mailbox_->dropped() : 0; }

  // Leaves the topic now, like the destructor, but keeps the mailbox: nothing is delivered
  // after this returns (the topic may be erased), and messages queued before stay receivable;
  // once they are gone receive() throws tandem::subscription_closed. Idempotent.
  void unsubscribe() noexcept {
    if (!topic_) return;
    mailbox_->close();               // 1. no delivery from now on; blocked publishers give up
    TANDEM_SYNC_POINT();             //    closed, still in the topic's list
    topic_->remove(mailbox_.get());  // 2. later publishes do not even see it
    topic_->core().roster.withdraw(*mailbox_);  // 3. ~event_bus need not close it any more
    TANDEM_SYNC_POINT();                        //    out of the list, still holding the topic
    topic_.reset();                             // 4. may erase the topic
  }

  // True while subscribed: false after unsubscribe() and for a moved-from subscription. (A
  // subscription whose bus was destroyed stays true but is closed.)
  explicit operator bool() const noexcept { return static_cast<bool>(topic_); }

 private:
  friend class event_bus;

  subscription(typename topic_map::handle topic, mailbox_ptr box) noexcept
      : topic_(std::move(topic)), mailbox_(std::move(box)) {}

  typename topic_map::handle topic_;
  mailbox_ptr mailbox_;
};

}  // namespace tandem
