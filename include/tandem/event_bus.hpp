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
//  2. A topic_state holds a snapshot of its subscribers: a reference-counted array of entries
//     (a subscription's shared_ptr<mailbox>, or an inbox's mailbox and membership, see
//     "Inboxes"), each with an `open` flag, plus the exact count of open entries. An array
//     has room for as many entries again as it was built with: subscribe writes its entry
//     into that room under the lock (no snapshot taken before reaches it: each holds the size
//     it was taken with), and only a full array is replaced (copy-on-write: the open entries
//     plus the new one, built outside the lock, installed if no add or remove happened
//     meanwhile), so a topic built up to n subscribers copies O(n) entries in all (until
//     2026-12-03 every subscribe copied the array: O(n^2), 435 us per subscribe at 30,000
//     subscribers; rule 55). Leaving only clears the entry's flag and decrements the count
//     under the lock -- it allocates nothing and cannot fail (docs/reliability.md rule 6) --
//     and the entry is dropped when the array is next replaced (or with the topic): a
//     subscribe replaces it when it is full or when entries that left outnumber the open
//     ones (so a topic most of whose subscribers left releases their mailboxes at the next
//     subscribe, in O(open), which their leaves paid for). A topic's
//     FIRST open subscription needs no
//     list allocation: its mailbox is allocated together with its own list entry (a
//     subscription_box), and the list is then an aliasing pointer to that entry, installed in
//     one critical section; a second subscriber copies the entry into a real array.
//     The lock: the list, its open count and its version have no lock of their own; the
//     topic's rc_map shard lock guards them. publish reads them inside rc_map::visit, which
//     holds that lock anyway; subscribe and leave take it through their topic handle
//     (rc_map::handle::visit). So a publish takes one lock where a topic lock of its own took
//     two (two atomic read-modify-writes fewer per publish and per subscribe/leave; issue 17).
//     publish copies the snapshot pointer under that lock (one atomic increment) and delivers
//     with NO lock of the topic or the map held,
//     skipping entries whose flag is clear. Subscribers that join or leave meanwhile do not
//     disturb the delivery, and a mailbox stays alive while a snapshot names it (shared
//     ownership); a leaving subscriber's queued messages are destroyed by its destructor, not
//     kept alive by the list.
//  3. publish hashes the topic once (with Hash, remixed once unless Hash declares
//     is_avalanching, as tandem::string_hash does: see tandem::hash_is_avalanching_v), then
//     asks the absent-topic filter: a table of counters indexed by that hash, incremented when a
//     topic is created and decremented when it is erased. A zero counter proves the topic absent:
//     publish returns 0 with no lock, no map lookup and no allocation. A non-zero counter (the
//     topic exists, or another topic shares the slot) falls through to the rc_map lookup with the
//     precomputed hash and the caller's key as it is (detail::hashed_topic: the map's hash returns
//     the precomputed value, its equality calls KeyEqual on the key), so it allocates nothing
//     either. The lookup is rc_map::visit: the topic is used under its shard lock, without taking a
//     counted handle (saving a count increment and decrement per publish); under it publish
//     runs step 4, or copies the snapshot for step 5. Lock order: shard lock, then a mailbox
//     lock; nothing here uses the topic map or releases a handle.
//
// Topic arguments, one rule for subscribe / publish / publish_from / subscriber_count: a
// Topic, any key that Hash and KeyEqual both accept when both are transparent (for std::string
// topics the defaults tandem::string_hash / string_equal are: std::string_view and const char*
// are used as they are), or anything implicitly convertible to Topic (converted to one Topic
// per call). A Topic is built only when subscribe creates the topic. A custom Topic type needs
// no std::hash specialisation: pass Hash and KeyEqual.
//  4. Delivery with one open target (after skipping the sender for publish_from): the message is
//     moved into that mailbox under the shard lock, without copying the
//     snapshot; the only user code under the locks is Message's noexcept move. A full `block`
//     mailbox is never waited for under the lock: publish then takes step 5's path.
//  5. Delivery with several targets: copy the snapshot, release every lock, then the first n-1
//     mailboxes each get a copy of the message and the last one gets it moved. Each mailbox
//     applies its overflow policy (see tandem/detail/mailbox.hpp); publish returns how many
//     accepted the message.
//  6. Unsubscribe (destructor, move-assignment or unsubscribe()): close the mailbox first
//     (from then on no push succeeds and publishers blocked on it wake up), then mark its entry
//     left in the topic's list (step 2: no allocation, no search: the entry's open flag lives
//     in the subscription's own allocation, shared by every list that holds the entry) and
//     release the rc_map handle, both in one critical section of the shard lock
//     (rc_map::handle::reset_if; a topic whose last subscription this is gets erased right
//     there); the destructor then destroys the messages still queued. Nothing here allocates,
//     throws or calls Hash/KeyEqual.
//  7. Closing at ~event_bus: a subscription that outlives its bus is closed: it keeps its
//     queued messages and receive() then throws instead of waiting for a publisher that cannot
//     exist any more. Every subscription not yet closed by its owner has an open entry in its
//     topic's list (from subscribe's commit point until step 6, which closes the mailbox
//     first), and its topic handle keeps that topic in the map; so ~event_bus walks the topic
//     map (rc_map::visit_all: each shard under its lock, no allocation) and closes the mailbox
//     of every open entry. No list of subscriptions of its own, which a subscribe and an
//     unsubscribe would each have had to lock (until 2026-12-01 a roster did: four atomic
//     read-modify-writes per churn cycle). Inboxes, which may hold no topic at all, are on
//     the bus's inbox roster (an intrusive list under a small lock of its own).
//
// Inboxes (tandem::inbox, made by bus.inbox()): one mailbox subscribed to many topics, as a
// Phoenix process is; receive() returns a tandem::envelope (the message and its topic).
//  1. The inbox owns one mailbox of envelopes and, per topic, a record: the rc_map handle (so
//     an inbox holds its topics exactly as subscriptions do: topic_count and subscriber_count
//     count it) and a membership, shared with the topic's list entry: one copy of the Topic
//     (made once, at subscribe) and a `withdrawn` flag guarded by the inbox mailbox's lock.
//  2. in.subscribe(t): look the topic up or create it (strong), return false if a record
//     already holds that topic (found in the inbox's index by the topic's hash, then by the
//     topic's address: idempotent), reserve room for the record, make the membership, index
//     it, then add the entry to the topic's list -- the commit point -- and store the record
//     (noexcept). A throw at any step leaves the inbox and the bus as they were. The index (a
//     std::unordered_multimap from the topic map's hash to the record's position) makes
//     subscribe and unsubscribe O(1) in the number of topics the inbox holds.
//  3. Delivery: the publisher pushes a detail::envelope_source (a reference to the message and
//     to the membership); the mailbox builds the envelope from it only at its commit point,
//     under its lock, and refuses it if the membership is withdrawn. The envelope holds the
//     message and a counted reference to the membership (detail::membership_ref): 8 bytes, no
//     Topic copy, no allocation; the push counts it with a plain increment under the mailbox
//     lock it holds anyway, and the envelope's end with one atomic decrement on a cache line
//     a push does not write (the split count of detail::inbox_membership). It stays valid
//     after the inbox leaves the topic, after the topic is erased, and after the inbox and the
//     bus are gone.
//  4. in.unsubscribe(t): find the record in the index (one hash of t, with a copy of the bus's
//     Hash kept in the shared core, then KeyEqual on the records of that hash), set
//     `withdrawn` under the mailbox lock (after that no push for t commits; publishers parked
//     on the full mailbox wake and re-check), mark the entry left (step 2 above), drop the
//     record (the last record takes its place; may erase the topic).
//     Envelopes of t already queued stay receivable. Allocates nothing (but building a Topic
//     from a non-transparent argument may: see the topic-arguments rules).
//  5. ~inbox: close the mailbox (nothing arrives from then on), mark every entry left,
//     withdraw from the bus's inbox roster, release the topics, destroy what is queued.
//     Allocates nothing, calls no Hash or KeyEqual.
//  5b. in.consume_all(f): pops what is queued when called (one lock-free pop each, or locked
//     as receive for drop_oldest/block) and hands each envelope to f. The references of
//     envelopes of a topic the inbox is subscribed to are counted in its mailbox
//     (detail::standing_releases) and dropped by step 4 or 5 in one fetch_sub; the others go
//     to a detail::membership_release_batch: one fetch_sub per topic per call.
//  6. Closed states never block: receive() on an inbox subscribed to no topic returns what is
//     queued and then throws tandem::subscription_closed (receive_for/until return nullopt at
//     once) -- no publisher can reach it; ~event_bus closes every inbox (as it closes
//     subscriptions): queued envelopes are delivered, then receive() throws, and subscribe()
//     throws. A moved-from inbox throws at once.
//  7. Bad input: bus.subscribe(in, t) / unsubscribe / publish_from with an inbox of another
//     bus throw std::invalid_argument; a null const char* topic is refused first
//     (std::invalid_argument) whatever the state of the inbox or subscription; a move-only Message
//     follows the subscription rule (a topic accepts one subscriber, inbox or subscription: the
//     second throws std::logic_error; one inbox on many topics is fine).
// Guarantees as for subscriptions: every message published to t after in.subscribe(t)
// returned and before in.unsubscribe(t) was called arrives once, with its topic; per
// publishing thread and topic, in publish order; nothing after ~inbox. Subscribing,
// unsubscribing and receiving from the owner's thread -- also while handling an envelope, and
// while a publisher is blocked on this inbox's full `block` mailbox -- never deadlock (no lock
// is held while waiting, and leaving wakes such a publisher). Costs: per inbox one mailbox (and
// 16 bytes per release slot in use, at most 1 KB: detail::standing_releases);
// per (inbox, topic) one membership (a Topic copy, a flag and two counts on two cache lines:
// 2 * sync::cache_line_size bytes, 256 on x86-64, for a Topic of up to 120 bytes) and one list
// entry; per
// delivery what a subscription costs plus the envelope's reference count (see 3).
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
// make. The mailbox knows its receiving thread once a thread has received on it, while that
// thread is the only one that has (a move makes it unknown again, since the object may be on
// its way to another thread; a second thread receiving by reference makes it ambiguous, and a
// full publish then waits, whichever of the two publishes), and such a publish throws
// std::logic_error naming the topic and the policy instead of waiting. While the receiver is not
// known -- nobody has received yet, or the subscription was moved since -- a publish into the full
// mailbox waits for a receiver, except in a process that has never started a second thread (glibc
// says so: detail::process_never_started_a_thread), where nobody could ever make room and it throws
// std::logic_error too. The subscribing thread is not taken for the receiver: a thread that
// subscribes and starts a worker receiving on the subscription by reference is a correct program
// (until 2026-12-05 its publish threw whenever it filled the mailbox before the worker's first
// receive; docs/reliability.md rule 72). So in a multi-threaded process, a thread that fills its
// own subscription's block mailbox before it ever received on it (or after moving it into a
// container) waits for ever: receive once (try_receive() will do) before publishing to yourself, or
// keep such mailboxes out of `block`.
//
// Guarantees:
//  - A topic exists exactly while it has subscriptions (a publish holds no reference to it: it
//    works under the topic's shard lock, which the topic's erasure also takes).
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
//    its subscriber receives or unsubscribes. receive() does not spin: it watches its queue for
//    at most 120 CPU pauses (a few microseconds, detail/mailbox.hpp step 5), then sleeps on a
//    condition variable that a publisher signals only when the receiver is parked.
//
// Move-only messages: the number of subscribers is only known at run time, so "fan-out needs
// a copy" cannot be a compile-time error without forbidding publish for move-only messages
// altogether. Instead, for a Message that is not copy constructible (`fans_out` is false) a
// topic accepts one subscription: the second subscribe() throws std::logic_error at the line
// that would create the fan-out, before any message could be lost, and publish never has to
// fail. Copy-constructible messages have no such limit.
//
// Costs: per topic, one rc_map entry plus a topic_state (a snapshot pointer and two counts); per
// subscription, one allocation holding its mailbox (see mailbox.hpp) and its own list entry,
// and, from a topic's second subscriber on, one slot in the topic's array (48 bytes: two
// mailbox pointers, a membership and an owner pointer, the address of the receiver's open
// flag), with as many slots again of
// room. subscribe to a topic that already has an open subscriber fills a slot of room, or, when
// there is none, allocates a new array twice the open entries: O(1) amortized, O(open
// subscribers of that topic) for that one subscribe; subscribing to a topic with none
// allocates no list; leaving allocates nothing and costs O(1): it clears the open flag its
// receiver keeps (a left entry -- and its empty, closed mailbox -- stays until the array is
// next replaced).
// A subscribe that creates its topic and the unsubscribe that erases it take the topic's shard lock
// once each (rc_map::try_emplace, rc_map::handle::reset_if). publish to an existing topic: one
// hash, one rc_map visit (the shard lock; no count traffic), with several subscribers one snapshot
// copy (an increment and a decrement), and per subscriber one mailbox lock plus a message copy (n-1
// copies). The absent-topic filter costs 4 bytes per slot (4096 slots by default, 16 KiB per bus).
// The inbox roster costs two pointers per inbox and one small lock per bus, taken once by
// bus.inbox(), ~inbox and ~event_bus.
//
// Memory ordering: the absent-topic filter's counters are relaxed: a publish that happens
// after subscribe() returned reads, by write-read coherence of that one counter, the
// increment made when the topic was created (or a later value, which can only be lower by
// erasures of other topics sharing the slot, each undoing its own increment), so it never sees
// zero for a live topic. Each counter is written under the shard lock of the topic created or
// erased; when every topic of its slot maps to one shard (as many slots as shards or more, as
// by default) with a plain load and store, that lock serialising them (so no update is lost),
// else with relaxed read-modify-writes (detail::absent_topic_filter); a publish
// concurrent with subscribe() may see either, which is the documented "after subscribe returned"
// boundary. All other shared state is guarded by the rc_map's shard locks (which also guard each
// topic's list), the inbox roster's lock and the mailboxes' locks. Lock order: a shard lock
// (publish's visit, a topic handle's visit, or ~event_bus's visit_all) before a mailbox lock; the
// inbox roster's lock before a mailbox's; never the other way round.
#pragma once

#include <algorithm>
#include <array>
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
#include <unordered_map>
#include <utility>
#include <vector>

#include "detail/arguments.hpp"
#include "detail/callables.hpp"
#include "detail/mailbox.hpp"
#include "detail/port.hpp"
#include "detail/type_contents.hpp"
#include "rc_map.hpp"
#include "string_hash.hpp"
#include "sync/assert.hpp"
#include "sync/atomic_wait.hpp"
#include "sync/backoff.hpp"
#include "sync/cache_padded.hpp"
#include "sync/striped_lock.hpp"
#include "sync/sync_point.hpp"

// What a compiler says when a subscription is discarded: the reason of the class's [[nodiscard]]
// (so of every function returning one by value) and of subscribe's own. The class takes it through
// a macro: clang-format 14 misreads a class-level [[nodiscard("...")]] and re-lays out the
// whole class body.
#define TANDEM_DETAIL_SUBSCRIPTION_DROPPED                   \
  "the subscription is the subscriber: dropped at once, it " \
  "unsubscribes (and an unused topic goes)"
#define TANDEM_DETAIL_SUBSCRIPTION_NODISCARD [[nodiscard(TANDEM_DETAIL_SUBSCRIPTION_DROPPED)]]

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

// Topic: the key of the topic map, moved (or built) into it when a topic is created. Not a
// view nor a type holding one (detail::holds_view_v, rc_map_key's rule): the topic map would
// keep a view of the subscriber's string. rc_map_key refused it already, but only inside this
// header, with rc_map named first (found by a new user's trial, 2026-12-05): refused here, so
// the first error names event_bus and bus_topic.
template <class T>
concept bus_topic = std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T> &&
                    std::destructible<T> && std::move_constructible<T> && !detail::holds_view_v<T>;

// Hash: copy-constructible (the bus keeps one), maps a const Topic& to std::size_t. For a topic
// type with no std::hash specialisation, pass your own (no specialisation needed).
template <class Hash, class Topic>
concept bus_topic_hash =
    std::is_invocable_r_v<std::size_t, const Hash&, const Topic&> && std::copy_constructible<Hash>;

// KeyEqual: copy-constructible, compares two Topics.
template <class KeyEqual, class Topic>
concept bus_topic_key_equal = std::copy_constructible<KeyEqual> &&
    std::is_invocable_r_v<bool, const KeyEqual&, const Topic&, const Topic&>;

// A topic argument used as it is: the Topic itself or, when Hash and KeyEqual are transparent
// (the default tandem::string_hash/string_equal for std::string topics are), any key they
// accept -- std::string_view, const char* -- so that no Topic is built.
template <class Q, class Topic, class Hash, class KeyEqual>
concept bus_transparent_topic = std::same_as<Q, Topic> ||
    (!::tandem::detail::is_caller_converted_v<Q> &&
     requires {
       typename Hash::is_transparent;
       typename KeyEqual::is_transparent;
     } &&
     std::is_invocable_r_v<std::size_t, const Hash&, const Q&> &&
     std::is_invocable_r_v<bool, const KeyEqual&, const Q&, const Topic&>);

// What publish, publish_from, subscribe and subscriber_count take as a topic: a
// bus_transparent_topic, or anything implicitly convertible to Topic (converted to one Topic
// per call: an integer literal for a std::uint64_t topic, ...).
template <class Q, class Topic, class Hash, class KeyEqual>
concept bus_topic_argument = bus_transparent_topic<std::remove_cvref_t<Q>, Topic, Hash, KeyEqual> ||
    (std::convertible_to<const std::remove_cvref_t<Q>&, Topic>);

struct event_bus_options {
  // Shards of the topic map. 16 keeps two publishers on different topics off each other's
  // lock with high probability on machines up to ~8 cores while costing a few hundred bytes.
  std::size_t shard_count = 16;
  // Default capacity of a subscription's mailbox (subscribe(topic) without a capacity), in
  // messages (an inbox's: in envelopes, one per message whatever its topic). Unbounded, like a
  // Phoenix process mailbox: nothing is dropped and publish never blocks.
  std::size_t mailbox_capacity = unbounded_capacity;
  // Default overflow policy when mailbox_capacity is bounded.
  overflow_policy overflow = overflow_policy::block;
  // Slots of the absent-topic filter (rounded up to a power of two; 0 disables it; more than
  // max_absent_topic_filter_slots is std::invalid_argument). 4096 slots keep the
  // false-positive rate under 3% with 100 live topics and cost 16 KiB. Fewer slots than
  // shards make each topic's creation and erasure one atomic read-modify-write dearer.
  std::size_t absent_topic_filter_slots = 4096;
};

// The most absent_topic_filter_slots an event_bus accepts (std::invalid_argument above).
inline constexpr std::size_t max_absent_topic_filter_slots = std::size_t{1} << 32;

namespace detail {

// A topic key (a Topic, or a transparent key; `Key` is a reference type) with its hash
// already computed and spread (detail::spread_hash): publish hashes once and uses the result
// for the absent-topic filter and the topic map's lookup; subscribe passes it to
// rc_map::try_emplace, which builds the Topic from it (the conversion below) only when the topic is
// created.
template <class Topic, class Key>
struct hashed_topic {
  Key key;
  std::size_t hash;
  // rc_map builds its Topic with build_key(), not by Topic(hashed_topic&&): a forwarding
  // constructor template of Topic would win that overload resolution (rule 54).
  using tandem_rc_map_key_source = void;
  // From a const lvalue (the key of a non-const lvalue argument arrives as const, see
  // event_bus::insert_form) the copy constructor, from an rvalue the move constructor: the
  // non-template wins a tie with a forwarding template.
  Topic build_key() && { return Topic(static_cast<Key>(key)); }
  // What rc_map's key concept asks (convertible to its K); rc_map itself calls build_key().
  // NOLINTNEXTLINE(google-explicit-constructor)
  operator Topic() && { return std::move(*this).build_key(); }
};

// Counters indexed by topic hash (spread: the topic map's): zero proves that no topic with that
// hash exists.
// Written only by the topic map's link observer (topic_map_hash), under the shard lock of the
// topic's hash. A slot is hash & mask_ and a shard hash & (shard count - 1), both powers of two:
// with at least as many slots as shards (the default: 4096 and 16) all the topics of one slot
// are in one shard, whose lock serialises every write of the slot's counter, so a write is a
// plain load and store, not a read-modify-write (two atomic RMWs fewer per topic created and
// erased; issue 17). With fewer slots than shards, topics of one slot are written under
// different locks, and the writes stay read-modify-writes.
class absent_topic_filter {
 public:
  // `shard_count`: the topic map's (before rounding; see above).
  absent_topic_filter(std::size_t slots, std::size_t shard_count)
      : mask_(std::bit_ceil(slots) - 1),
        // shard_count <= a power of two iff its rounding up is (no bit_ceil: shard_count is
        // not checked against striped's limit yet, and bit_ceil above 2^63 is undefined).
        serialised_(shard_count <= mask_ + 1),
        counters_(std::make_unique<std::atomic<std::uint32_t>[]>(mask_ + 1)) {}

  // Under the shard lock of `hash`. relaxed: publish reads the counter with no lock, and the
  // coherence of this one counter suffices (see "Memory ordering" in the header comment). When
  // serialised_, no other write of this counter can come between the load and the store (they
  // all hold the lock we hold), so the counter's modification order is the order of those
  // critical sections and no update is lost.
  void topic_created(std::size_t hash) noexcept { add(hash, 1); }
  void topic_erased(std::size_t hash) noexcept { add(hash, static_cast<std::uint32_t>(-1)); }
  [[nodiscard]] bool may_exist(std::size_t hash) const noexcept {
    return counters_[hash & mask_].load(std::memory_order_relaxed) != 0;
  }

 private:
  void add(std::size_t hash, std::uint32_t delta) noexcept {
    std::atomic<std::uint32_t>& counter = counters_[hash & mask_];
    if (TANDEM_LIKELY(serialised_)) {
      counter.store(counter.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
    } else {
      counter.fetch_add(delta, std::memory_order_relaxed);
    }
  }

  std::size_t mask_;
  bool serialised_;  // every slot's topics are in one shard (see the class comment)
  std::unique_ptr<std::atomic<std::uint32_t>[]> counters_;
};

// The topic map's hash and equality: the user's Hash/KeyEqual, plus lookups by hashed_topic
// (the hash precomputed, the key compared with KeyEqual as it is). Transparent whatever the
// user's are: event_bus passes only Topics, or keys the user's Hash/KeyEqual accept, inside
// a hashed_topic.
// Its results are already spread (the user's Hash remixed unless it avalanches), so it
// declares is_avalanching and the map uses them as they are: a publish mixes at most once.
template <class Topic, class Hash>
struct topic_map_hash {
  using is_transparent = void;
  using is_avalanching = std::true_type;
  Hash hash;
  // The bus's absent-topic filter (null when disabled), counted by the map's links and unlinks
  // of topics (rc_map_link_observer): under the topic's shard lock, and only in a shard that
  // ~rc_map has not orphaned, so only while the event_bus (whose shared core owns the filter
  // and outlives its topic map, a later member) is alive -- no count keeps the filter alive.
  absent_topic_filter* filter = nullptr;
  using tandem_rc_map_link_observer = void;
  void entry_linked(std::size_t mixed) const noexcept {
    // The map's mixed hash is this hash as it is, which publish looks the filter up with.
    static_assert(hash_used_as_is_v<topic_map_hash, Topic>);
    if (filter != nullptr) filter->topic_created(mixed);
  }
  void entry_unlinked(std::size_t mixed) const noexcept {
    if (filter != nullptr) filter->topic_erased(mixed);
  }
  // The topic map's hash of a topic argument (a Topic or a key Hash accepts): the user's Hash,
  // spread once. event_bus::hash_of computes the same for hashed_topic.
  template <class Q>
  static std::size_t of(const Hash& h, const Q& topic) {
    return spread_hash<Hash, Topic>(static_cast<std::size_t>(std::invoke(h, topic)));
  }
  std::size_t operator()(const Topic& topic) const { return of(hash, topic); }
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

// The live inboxes' mailboxes of one bus (step 7): an intrusive list, so enrolling and withdrawing
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
  // meanwhile: its inbox withdraws it (under this lock) before releasing it.
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

template <class Topic>
class membership_ref;
template <class Topic>
class membership_owner;
template <class Topic>
class membership_release_batch;
template <class Topic>
class standing_releases;

// What a receiver (a subscription's mailbox, or an inbox's membership of one topic) keeps
// about its entry in the topic's subscriber list: whether it is still open. Every list that
// holds the entry (the one installed, an older one a publisher still reads from a snapshot, a
// newer one a subscribe is building) points here, so leaving is one write that all of them
// see, and needs no search for the entry. Cleared once, by the leave, under the topic's shard
// lock, and never set again (a receiver that subscribes again gets a new mailbox or
// membership). Read under that lock it is exact; publishers delivering from a snapshot read
// it as a hint (relaxed): the mailbox decides under its own lock (closed, or the membership
// withdrawn, both before the flag is cleared). Kept here rather than in each list's entry
// since 2026-12-03: a subscribe building a new list copied each entry's flag, so a leave
// landing meanwhile left the copy stale and the install had to fail (under a stream of leaves
// faster than one build of a full list, the subscribe never finished: see topic_state::add),
// and a leave had to find its entry (a recorded position, or a search when that was stale).
// `position`: the entry's index in the list it was last placed in (written by whoever places
// it; relaxed, a hint), so that the leave can also clear that entry's own copy of the flag
// (subscriber::open_in_list), which lets publishes skip the entry without reading this line.
// A stale position (left by a subscribe that lost its install) only costs that skip.
struct list_entry_state {
  std::atomic<bool> open{true};
  std::atomic<std::size_t> position{0};
};

// One inbox's membership of one topic, shared by the inbox, the topic's subscriber list and
// every envelope of that topic still alive: the topic's name as envelopes show it (one copy
// of the Topic per inbox and topic, made by subscribe), and whether the inbox has left it.
//
// Counted in two parts, so that a push and a receive do not write one cache line:
//  - `made_`, on the publisher's line (with `withdrawn`), guarded by the inbox mailbox's lock:
//    the envelopes built by pushes (membership_ref::for_envelope), a plain increment at the
//    push's commit point.
//  - `references_`, on the receiver's line (with the topic, which envelopes read): every other
//    reference taken (the list entry's, envelope copies: +1 relaxed) and every reference
//    dropped, envelopes included (-1 acq_rel), offset by `live_bias` while the inbox holds the
//    membership: a receiver's decrements can then outrun the increments it sees without
//    reaching 0.
// The inbox's own reference (membership_owner) ends once no push can build an envelope any
// more (the membership withdrawn, or the mailbox closed, under the mailbox lock): it folds
// `made_` into `references_`, removing the bias and itself in one fetch_sub; from then on
// `references_` is the exact count, and whoever takes it to 0 deletes. The idea is Linux's
// percpu_ref (counts kept apart while live, folded into one atomic count with a bias removed
// when killed), with the mailbox lock where percpu_ref waits for an RCU grace period; the
// protocol is model-checked in model/inbox_membership.pml. Why: a count both threads write
// moved its cache line between them on every message (the publisher's increment, the
// receiver's decrement). Cost: 2 * sync::cache_line_size bytes per (inbox, topic) (more when
// sizeof(Topic) + 32 exceeds one line) instead of one allocation of about 48. A publisher still
// writes the receiver's line when it destroys an envelope (a drop_oldest eviction) or drops a
// replaced subscriber list's reference. Measured in bench/event_bus_bench: see docs/event_bus.md.
template <class Topic>
struct inbox_membership {
  inbox_membership(const Topic& name, unsigned release_slot)
      : topic(name), batch_slot(static_cast<std::uint8_t>(release_slot % 64)) {}
  inbox_membership(const inbox_membership&) = delete;
  inbox_membership& operator=(const inbox_membership&) = delete;
  ~inbox_membership() = default;

  const Topic topic;
  // Its slot in a membership_release_batch (0..63): distinct among an inbox's first 64
  // memberships alive at once, so a batch of an inbox on up to 64 topics never collides.
  const std::uint8_t batch_slot;

 private:
  // The inbox's other memberships of the same batch_slot (standing_releases' per-slot list of
  // users; the inbox owner's thread only).
  inbox_membership* slot_previous_ = nullptr;
  inbox_membership* slot_next_ = nullptr;
  friend class membership_ref<Topic>;
  friend class membership_owner<Topic>;
  friend class membership_release_batch<Topic>;
  friend class standing_releases<Topic>;
  // Far above any count of references or envelopes (2^63 envelopes at 10^9 a second take
  // 292 years), so that bias + references - releases never reaches 0 while the inbox lives.
  static constexpr std::uint64_t live_bias = std::uint64_t{1} << 63;
  std::atomic<std::uint64_t> references_{live_bias + 1};  // +1: the membership_owner's

 public:
  // The line apart, and at least 64-byte alignment whatever TANDEM_CACHE_LINE_SIZE says:
  // membership_ref keeps a 6-bit batch slot in the low bits of a membership's address.
  static constexpr std::size_t alignment = std::max<std::size_t>(sync::cache_line_size, 64);
  // The publisher's line: pushes read and write it under the inbox mailbox's lock; the
  // membership_owner reads `made_` once, after a withdrawal or close under that lock.
  alignas(alignment) bool withdrawn = false;  // see mailbox::change_admission
  // Whether its entry in the topic's subscriber list is still open (see list_entry_state): on
  // the publisher's line too, as every publish reads it (the receiver's line, which it writes
  // per message, would cost publishers a miss each); written once, by the leave.
  list_entry_state list_entry;

 private:
  std::uint64_t made_ = 0;  // envelopes built by pushes
};

// A counted reference to an inbox_membership; the last one destroys it. Rather than a
// std::shared_ptr: an envelope holds one of these, so building one is a plain increment of
// the publisher's `made_` (under the mailbox lock it holds anyway) and its end one inlined
// decrement on the receiver's line (usually on the receiver's thread) -- no out-of-line release
// call, no control block, 8 bytes instead of 16, and no count line moving between the cores
// per message.
// The 8 bytes also carry the membership's batch_slot in the pointer's low bits (the membership
// is aligned to at least 64 bytes, so six are 0): inbox::consume_all files an envelope's
// reference in its release batch without reading the membership, whose line is usually not in
// the receiver's cache when a backlog is taken (profile of inbox_backlog on 64 topics: that one
// dependent load was half of consume_all's time).
// Orders as std::shared_ptr's (and Boost's intrusive_ref_counter): increments relaxed (the new
// holder got the pointer from an existing one, which keeps it alive), decrements acq_rel so
// that every holder's last use happens before the deletion.
template <class Topic>
class membership_ref {
 public:
  membership_ref() noexcept = default;
  // Another reference to what `owner` holds (the topic list entry's).
  explicit membership_ref(const membership_owner<Topic>& owner) noexcept
      : tagged_(reinterpret_cast<std::uintptr_t>(owner.get()) | owner->batch_slot) {
    acquire();
  }
  // The reference an envelope holds, built by a push at its commit point. Precondition: the
  // caller holds the inbox mailbox's lock and the membership is admitted (not withdrawn, the
  // mailbox open), so the membership_owner has not folded `made_` in yet.
  [[nodiscard]] static membership_ref for_envelope(const membership_ref& entry) noexcept {
    ++entry->made_;
    return membership_ref(entry.tagged_);
  }
  membership_ref(const membership_ref& other) noexcept : tagged_(other.tagged_) {
    if (tagged_ != 0) acquire();
  }
  membership_ref(membership_ref&& other) noexcept : tagged_(std::exchange(other.tagged_, 0)) {}
  membership_ref& operator=(membership_ref other) noexcept {  // copy and move
    std::swap(tagged_, other.tagged_);
    return *this;
  }
  ~membership_ref() {
    if (tagged_ != 0) release();
  }

  [[nodiscard]] inbox_membership<Topic>* get() const noexcept {
    return reinterpret_cast<inbox_membership<Topic>*>(tagged_ & ~slot_mask);
  }
  [[nodiscard]] inbox_membership<Topic>* operator->() const noexcept { return get(); }
  [[nodiscard]] inbox_membership<Topic>& operator*() const noexcept { return *get(); }
  [[nodiscard]] explicit operator bool() const noexcept { return tagged_ != 0; }
  // The membership's batch_slot, read without touching the membership (0 when null).
  [[nodiscard]] unsigned batch_slot() const noexcept {
    return static_cast<unsigned>(tagged_ & slot_mask);
  }

 private:
  friend class membership_owner<Topic>;
  friend class membership_release_batch<Topic>;
  friend class standing_releases<Topic>;
  friend struct envelope_access;
  static constexpr std::uintptr_t slot_mask = 63;
  static_assert(alignof(inbox_membership<Topic>) > slot_mask,
                "membership_ref keeps the batch slot in the pointer's low bits: "
                "inbox_membership must be aligned to at least 64 bytes");

  // Drops `count` references to `membership` at once (release(), membership_owner's fold,
  // membership_release_batch); the one that leaves 0 deletes it.
  static void release_many(inbox_membership<Topic>* membership, std::uint64_t count) noexcept {
    // acq_rel: as release().
    if (membership->references_.fetch_sub(count, std::memory_order_acq_rel) == count) {
      destroy(membership);
    }
  }
  // A reference that takes over this one's count while this one is left as it is: the caller
  // must end this one without its destructor (an envelope leaving its queue slot; see
  // envelope_access::relocated_membership).
  [[nodiscard]] membership_ref relocate() noexcept { return membership_ref(tagged_); }
  // Gives up this reference without dropping it: the caller now owns the count.
  [[nodiscard]] inbox_membership<Topic>* detach() noexcept {
    inbox_membership<Topic>* const membership = get();
    tagged_ = 0;
    return membership;
  }
  // Adopts a reference already counted (by `made_`).
  explicit membership_ref(std::uintptr_t tagged) noexcept : tagged_(tagged) {}
  void acquire() noexcept {
    // relaxed: see the class comment.
    get()->references_.fetch_add(1, std::memory_order_relaxed);
  }
  // acq_rel (in release_many): see the class comment.
  void release() noexcept { release_many(get(), 1); }
  // Out of line: keeps the common release (not the last) small enough to inline everywhere.
  TANDEM_NOINLINE static void destroy(inbox_membership<Topic>* membership) noexcept {
    delete membership;
  }

  std::uintptr_t tagged_ = 0;  // the membership's address | its batch_slot; 0: none
};

// The inbox's own reference to its membership of a topic (one per membership, move-only):
// while it lives, `references_` carries the live bias. Its end folds the envelopes the pushes
// built (`made_`) into `references_` and drops the bias and itself (see inbox_membership).
// Precondition of its destructor: no push can build an envelope of this membership any more --
// the membership was withdrawn or the mailbox closed, under the mailbox's lock, by this thread
// before (which also orders every push's `made_` increment before this read), or the
// membership never entered a topic's list.
template <class Topic>
class membership_owner {
 public:
  membership_owner() noexcept = default;
  // A new membership of `name`. Throws std::bad_alloc or what copying the Topic throws (then
  // nothing was made).
  [[nodiscard]] static membership_owner make(const Topic& name, unsigned release_slot) {
    return membership_owner(new inbox_membership<Topic>(name, release_slot));
  }
  membership_owner(membership_owner&& other) noexcept
      : membership_(std::exchange(other.membership_, nullptr)) {}
  membership_owner& operator=(membership_owner&& other) noexcept {
    membership_owner(std::move(other)).swap(*this);  // this one's old membership ends here
    return *this;
  }
  ~membership_owner() {
    if (membership_ == nullptr) return;
    // made_ is final: the caller withdrew the membership or closed the mailbox under its lock.
    const std::uint64_t fold = inbox_membership<Topic>::live_bias + 1 - membership_->made_;
    membership_ref<Topic>::release_many(membership_, fold);
  }
  void swap(membership_owner& other) noexcept { std::swap(membership_, other.membership_); }

  [[nodiscard]] inbox_membership<Topic>* get() const noexcept { return membership_; }
  [[nodiscard]] inbox_membership<Topic>* operator->() const noexcept { return membership_; }
  [[nodiscard]] inbox_membership<Topic>& operator*() const noexcept { return *membership_; }

 private:
  explicit membership_owner(inbox_membership<Topic>* membership) noexcept
      : membership_(membership) {}

  inbox_membership<Topic>* membership_ = nullptr;
};

// inbox::consume_all's per-call releases: the references of the consumed envelopes that its
// inbox's standing_releases does not take (envelopes of a topic the inbox has left, or of a
// membership sharing its slot past 64 topics), counted per membership and dropped with one
// fetch_sub per membership when the batch ends (or when another membership needs its slot),
// instead of one atomic decrement per envelope. Nothing is freed earlier than it would be by
// the envelopes themselves ending at the batch's end. 64 slots indexed by the membership's
// batch_slot; two memberships on one slot release it more often, never wrongly. consume_all
// makes one (1 KB, zeroed) only when such an envelope comes.
template <class Topic>
class membership_release_batch {
 public:
  membership_release_batch() noexcept = default;
  membership_release_batch(const membership_release_batch&) = delete;
  membership_release_batch& operator=(const membership_release_batch&) = delete;
  ~membership_release_batch() {
    for (const slot& s : slots_) release(s);
  }

  // Takes over `ref`'s reference (leaves it null); nothing if it is already null.
  // Reads nothing of the membership (its slot comes with the reference): a new membership's
  // count line is only prefetched, so that its misses overlap and the release at the end finds
  // it (a read prefetch on x86-64 builds without PREFETCHW, which is what was measured).
  void take(membership_ref<Topic>& ref) noexcept {
    slot& s = slots_[ref.batch_slot()];
    inbox_membership<Topic>* const membership = ref.detach();
    if (membership == nullptr) return;
    if (s.membership != membership) {
      release(s);  // another membership's references (if any) go now
      s = slot{membership, 0};
      prefetch_for_write(&membership->references_);
    }
    ++s.count;
  }

 private:
  struct slot {
    inbox_membership<Topic>* membership = nullptr;
    std::uint64_t count = 0;
  };
  static void release(const slot& s) noexcept {
    if (s.count != 0) membership_ref<Topic>::release_many(s.membership, s.count);
  }

  slot slots_[64] = {};
};

// An inbox's releases deferred across consume_all calls, for the topics it is subscribed to now
// (its owner's thread only; kept in its mailbox, which a consume_all call holds even if f
// destroys the inbox). While the inbox holds a membership, its reference count carries the
// live bias and cannot reach 0, so the references of the envelopes consume_all consumes need
// not be dropped until the inbox leaves the topic: they are counted here, per batch slot, with
// a plain increment, and dropped in one fetch_sub by leave (before the membership_owner folds
// its count) or by the inbox's teardown -- an owner-thread count merged into the shared atomic
// one later, the idea of biased reference counting (Choi, Shull and Torrellas, PACT 2018). A
// steady consume_all thus makes no atomic write per envelope. Slot s belongs to one current
// membership with that batch_slot (each of an inbox's first 64 topics has its own; when a
// slot's owner leaves, another membership on that slot takes it over); envelopes of other
// memberships go to the call's membership_release_batch. Cost: 16 bytes per slot up to the
// highest slot used (at most 1 KB), grown by subscribe before its commit point and kept while
// the mailbox lives.
template <class Topic>
class standing_releases {
 public:
  standing_releases() = default;
  standing_releases(const standing_releases&) = delete;
  standing_releases& operator=(const standing_releases&) = delete;
  ~standing_releases() {
    TANDEM_ASSERT(std::all_of(slots_.begin(), slots_.end(),
                              [](const slot& s) { return s.membership == nullptr; }),
                  "standing_releases destroyed while it still held a membership");
  }

  // Room for slot `index` (< 64). Throws std::bad_alloc (then nothing that matters changed:
  // a grown table only has more empty slots).
  void reserve(unsigned index) {
    if (index >= slots_.size()) slots_.resize(index + 1);
  }

  // Gives slot `membership->batch_slot` to `membership` (one the inbox has just subscribed, or
  // one that shared the slot of a membership that left) if no other membership has it.
  // Precondition: reserve(batch_slot) was called.
  void adopt(inbox_membership<Topic>& membership) noexcept {
    slot& s = slots_[membership.batch_slot];
    if (s.membership == nullptr) s = slot{&membership, 0};
  }

  // Takes over `ref`'s reference if its membership owns its slot; false (ref untouched) if not.
  // True for a null `ref` (f moved the envelope out): nothing to release. Reads nothing of the
  // membership.
  [[nodiscard]] bool take(membership_ref<Topic>& ref) noexcept {
    inbox_membership<Topic>* const membership = ref.get();
    if (membership == nullptr) return true;
    const unsigned index = ref.batch_slot();
    if (index >= slots_.size() || slots_[index].membership != membership) return false;
    static_cast<void>(ref.detach());
    ++slots_[index].count;
    return true;
  }

  // Drops what was deferred for `membership` and frees its slot; false (nothing done) if it
  // does not hold its slot. Called before the membership_owner ends: the live bias keeps the
  // count above 0 here.
  bool release(const inbox_membership<Topic>& membership) noexcept {
    const unsigned index = membership.batch_slot;
    if (index >= slots_.size() || slots_[index].membership != &membership) return false;
    release_slot(slots_[index]);
    return true;
  }

  // Drops everything deferred and frees every slot (the inbox's teardown).
  void release_all() noexcept {
    for (slot& s : slots_) {
      if (s.membership != nullptr) release_slot(s);
    }
    users_.fill(nullptr);  // the memberships are all being released with their records
    used_ = 0;
  }

  // The memberships using each slot, in an intrusive list per slot, so that neither subscribe
  // nor leave passes over the inbox's topics (an inbox may hold thousands). A slot for a new
  // membership: one no current membership uses, else (past 64 topics, when memberships share
  // slots) the next in turn, which only a committed subscribe (add_user) moves on. A slot that
  // its users all left is the first one taken again, so slots stay spread about evenly.
  [[nodiscard]] unsigned free_slot() const noexcept {
    if (used_ != ~std::uint64_t{0}) return static_cast<unsigned>(std::countr_zero(~used_));
    return shared_turn_ % 64;
  }
  // `membership` (its slot from free_slot()) was subscribed: it joins its slot's users.
  void add_user(inbox_membership<Topic>& membership) noexcept {
    const unsigned index = membership.batch_slot;
    if (used_ == ~std::uint64_t{0}) ++shared_turn_;  // a shared slot was handed out
    inbox_membership<Topic>*& head = users_[index];
    membership.slot_previous_ = nullptr;
    membership.slot_next_ = head;
    if (head != nullptr) head->slot_previous_ = &membership;
    head = &membership;
    used_ |= std::uint64_t{1} << index;
  }
  // `membership` is leaving: it leaves its slot's users. Returns another current user of the
  // slot (the one to take the slot over if `membership` held it), or null. O(1): until
  // 2026-12-03 the inbox passed over its records for one, which a review made take the whole
  // list on every leave of a slot's holder (26 us per leave at 100,000 topics; rule 55).
  inbox_membership<Topic>* remove_user(inbox_membership<Topic>& membership) noexcept {
    const unsigned index = membership.batch_slot;
    TANDEM_ASSERT(users_[index] != nullptr, "standing_releases: a slot lost track of its users");
    if (membership.slot_previous_ != nullptr) {
      membership.slot_previous_->slot_next_ = membership.slot_next_;
    } else {
      users_[index] = membership.slot_next_;
    }
    if (membership.slot_next_ != nullptr) {
      membership.slot_next_->slot_previous_ = membership.slot_previous_;
    }
    membership.slot_previous_ = nullptr;
    membership.slot_next_ = nullptr;
    if (users_[index] == nullptr) used_ &= ~(std::uint64_t{1} << index);
    return users_[index];
  }

 private:
  struct slot {
    inbox_membership<Topic>* membership = nullptr;
    std::uint64_t count = 0;
  };
  static void release_slot(slot& s) noexcept {
    if (s.count != 0) membership_ref<Topic>::release_many(s.membership, s.count);
    s = slot{};
  }

  std::vector<slot> slots_;                           // indexed by batch_slot
  std::array<inbox_membership<Topic>*, 64> users_{};  // each batch slot's current memberships
  std::uint64_t used_ = 0;                            // bit s: users_[s] != nullptr
  unsigned shared_turn_ = 0;                          // free_slot's next shared slot (mod 64)
};

// inbox::consume_all's way to an envelope's reference (to hand it to a release batch).
struct envelope_access {
  template <class Envelope>
  static auto& membership(Envelope& envelope) noexcept {
    return envelope.membership_;
  }
  // An envelope leaving its queue slot (envelope_relocation): the new envelope's reference
  // takes over the slot's count without writing the slot; end_relocated then ends the slot's
  // envelope by destroying its message only.
  template <class Envelope>
  static auto relocated_membership(Envelope& slot) noexcept {
    return slot.membership_.relocate();
  }
  template <class Envelope>
  static void end_relocated(Envelope& envelope) noexcept {
    std::destroy_at(std::addressof(envelope.message_));
  }
};

// An envelope leaving its queue slot (detail::queue_slot_exit): the new envelope takes the
// message by move and the slot's reference as it is, writing nothing to the slot's reference
// (the slot's envelope is then ended without its reference's destructor).
template <class Envelope>
struct envelope_relocation {
  Envelope& slot;
};

// What a publisher offers an inbox's mailbox: the message and the membership it came through.
// The envelope is built from it only at the push's commit point (the message is moved then),
// and not at all once the membership is withdrawn (checked under the mailbox lock).
template <class Message, class Topic>
struct envelope_source {
  Message& message;
  const membership_ref<Topic>& membership;
  using admission_checked_source = void;  // the mailbox asks admitted() (detail/mailbox.hpp)
  [[nodiscard]] bool admitted() const noexcept { return !membership->withdrawn; }
};

}  // namespace detail

// What an inbox receives: a message and the topic it was published to. The topic is not a
// copy: the envelope shares the one Topic its inbox copied when it subscribed (through a
// reference count, 8 bytes: a plain increment by the push that builds the envelope, an atomic
// decrement when it is destroyed, an atomic increment per copy), which stays valid for as long
// as the envelope lives -- after the inbox unsubscribed from that topic, after the topic was
// erased, after the inbox and the bus were destroyed.
template <class Message, class Topic = std::string>
class envelope {
 public:
  // Built by the inbox's mailbox at a push's commit point (see detail::envelope_source).
  explicit envelope(detail::envelope_source<Message, Topic>&& source) noexcept
      : message_(std::move(source.message)),
        membership_(detail::membership_ref<Topic>::for_envelope(source.membership)) {}

  // Leaves a queue slot without writing the slot's reference (see detail::queue_slot_exit).
  explicit envelope(detail::envelope_relocation<envelope>&& from) noexcept
      : message_(std::move(from.slot.message_)),
        membership_(detail::envelope_access::relocated_membership(from.slot)) {}

  // The topic the message was published to. Precondition: not moved from.
  [[nodiscard]] const Topic& topic() const noexcept {
    TANDEM_ASSERT_FATAL(membership_, "topic() of a moved-from tandem::envelope");
    return membership_->topic;
  }
  [[nodiscard]] Message& message() & noexcept { return message_; }
  [[nodiscard]] const Message& message() const& noexcept { return message_; }
  // Moves the message out of an expiring envelope: `Message m = in.receive().message();`.
  [[nodiscard]] Message message() && noexcept { return std::move(message_); }

 private:
  friend struct detail::envelope_access;

  Message message_;
  detail::membership_ref<Topic> membership_;  // holds the Topic
};

namespace detail {

// Popping an envelope writes nothing to its slot when moving the Message does not (a
// trivially copyable Message): the reference is taken over as it is and the slot's copy of it
// is never destroyed. The slot's line then stays shared between the receiver's core and the
// publisher's, which writes the next slot on it.
template <class Message, class Topic>
struct queue_slot_exit<envelope<Message, Topic>> {
  using item = envelope<Message, Topic>;
  static envelope_relocation<item> take(item& slot) noexcept { return {slot}; }
  static void finish(item& slot) noexcept { envelope_access::end_relocated(slot); }
};

// The inbox subscribes running on this thread (innermost first), each naming its bus's shared
// core: ~event_bus run from inside one of them (by its Hash, KeyEqual or Topic constructor)
// would wait for it for ever, and reports that instead. One per process (rule 47).
struct bus_use_frame {
  const void* core;
  const bus_use_frame* outer;
};
TANDEM_PROCESS_WIDE inline constinit thread_local const bus_use_frame* inbox_subscribes = nullptr;

[[noreturn]] TANDEM_NOINLINE inline void event_bus_destroyed_inside_subscribe() noexcept {
  fatal_assertion_failed(
      "!inside_inbox_subscribe",
      "tandem::event_bus destroyed from inside an inbox::subscribe on it (by the "
      "topic's Hash, KeyEqual or constructor): the destructor would wait for that "
      "subscribe for ever",
      __FILE__, __LINE__, "event_bus");
}

// An inbox's mailbox: the mailbox of envelopes, plus the releases its consume_all defers
// (standing_releases; the inbox's owner thread alone touches them, once per envelope, so they
// are kept on lines of their own, away from the mailbox's fields, which publishers write).
template <class Message, class Topic>
class inbox_mailbox : public mailbox<envelope<Message, Topic>> {
 public:
  using mailbox<envelope<Message, Topic>>::mailbox;
  // The bus's inbox roster (so that ~event_bus can close every inbox): links guarded by the
  // roster's lock, not by this mailbox's.
  struct roster_link {
    inbox_mailbox* previous = nullptr;
    inbox_mailbox* next = nullptr;
    bool enrolled = false;
  };
  roster_link roster;
  sync::cache_padded<standing_releases<Topic>> deferred;
};

}  // namespace detail

template <class Message, class Topic = std::string, class Hash = default_hash<Topic>,
          class KeyEqual = default_key_equal<Topic>>
requires bus_message<Message> && bus_topic<Topic> && bus_topic_hash<Hash, Topic> &&
    bus_topic_key_equal<KeyEqual, Topic>
class inbox;

// Hash/KeyEqual default to tandem::string_hash/string_equal for std::string topics
// (transparent: see tandem/string_hash.hpp), else std::hash<Topic>/std::equal_to<Topic>.
template <class Message, class Topic = std::string, class Hash = default_hash<Topic>,
          class KeyEqual = default_key_equal<Topic>>
requires bus_message<Message> && bus_topic<Topic> && bus_topic_hash<Hash, Topic> &&
    bus_topic_key_equal<KeyEqual, Topic>
class event_bus {
  using mailbox_type = detail::mailbox<Message>;
  using inbox_mailbox_type = detail::mailbox<envelope<Message, Topic>>;  // what lists name
  using inbox_mailbox_ptr = std::shared_ptr<detail::inbox_mailbox<Message, Topic>>;
  using membership_type = detail::inbox_membership<Topic>;
  using membership_ptr = detail::membership_ref<Topic>;
  class topic_state;
  struct subscriber;
  struct subscription_box;
  using topic_map = rc_map<Topic, topic_state, detail::topic_map_hash<Topic, Hash>,
                           detail::topic_map_equal<Topic, KeyEqual>>;
  // Whether a topic-taking function's template form takes Q (detail::forwarded_key): for a
  // scalar Topic, a topic it would convert goes to the by-value overload instead.
  template <class Q>
  static constexpr bool forwarded =
      detail::forwarded_key<Q, Topic,
                            bus_transparent_topic<std::remove_cvref_t<Q>, Topic, Hash, KeyEqual>>;

  // What the bus shares with its inboxes (and so with those that outlive it).
  struct shared_core {
    shared_core(std::size_t filter_slots, std::size_t shard_count, const Hash& key_hash,
                const KeyEqual& key_equal)
        : filter(filter_slots == 0
                     ? nullptr
                     : std::make_unique<detail::absent_topic_filter>(filter_slots, shard_count)),
          hash(key_hash),
          equal(key_equal) {}
    std::unique_ptr<detail::absent_topic_filter> filter;                     // null when disabled
    detail::bus_roster<detail::inbox_mailbox<Message, Topic>> inbox_roster;  // every live inbox
    // inbox::unsubscribe(topic) hashes with this copy of the bus's Hash (to find the topic in
    // the inbox's index) and compares with KeyEqual, also after ~event_bus.
    Hash hash;
    KeyEqual equal;
    // inbox::subscribe calls using the bus now, and whether ~event_bus has begun: a subscribe
    // sees the bus gone (and throws subscription_closed) or ~event_bus waits for it to end
    // (found by review, 2026-12-02: a subscribe that had passed its closed check read the
    // freed topic map). Futex words.
    std::atomic<std::uint32_t> subscribes_in_progress{0};
    std::atomic<std::uint32_t> bus_destroyed{0};
  };

  friend class tandem::inbox<Message, Topic, Hash, KeyEqual>;

 public:
  using message_type = Message;
  using topic_type = Topic;
  using hasher = Hash;
  using key_equal = KeyEqual;
  // False for a move-only Message: then a topic accepts only one subscription.
  static constexpr bool fans_out = std::is_copy_constructible_v<Message>;

  class subscription;
  // One mailbox for many topics (see tandem::inbox); made by inbox().
  using inbox_type = tandem::inbox<Message, Topic, Hash, KeyEqual>;
  using envelope_type = envelope<Message, Topic>;

  // The forms given no Hash build Hash() and KeyEqual(): they require types whose
  // default-constructed value works (not a function pointer or a std::function, which would
  // be null or empty: detail/callables.hpp); pass such a function to the last form instead.
  event_bus() requires detail::default_callables<Hash, KeyEqual>
      : event_bus(event_bus_options{}, Hash()) {}
  explicit event_bus(event_bus_options options) requires detail::default_callables<Hash, KeyEqual>
      : event_bus(options, Hash()) {}
  // Throws std::invalid_argument for a shard_count or mailbox_capacity of 0, and for a null
  // function pointer or an empty std::function as the hash or equal.
  explicit event_bus(event_bus_options options, const Hash& hash,
                     const KeyEqual& equal = KeyEqual())
      : options_(validated(options)),
        core_(std::make_shared<shared_core>(
            options.absent_topic_filter_slots, options.shard_count,
            detail::require_callable(hash, "tandem::event_bus", "Hash"),
            detail::require_callable(equal, "tandem::event_bus", "KeyEqual"))),
        hash_(detail::require_callable(hash, "tandem::event_bus", "Hash")),
        topics_(options.shard_count, detail::topic_map_hash<Topic, Hash>{hash, core_->filter.get()},
                detail::topic_map_equal<Topic, KeyEqual>{equal}) {}

  event_bus(const event_bus&) = delete;
  event_bus& operator=(const event_bus&) = delete;
  // Subscriptions may outlive the bus: they are closed (step 7), keep their queued messages
  // and receive nothing new; receive() throws once those are gone.
  // Inboxes too: closed, they keep their queued envelopes, and receive() throws once those are
  // gone; subscribe() on them throws.
  // Blocks while another thread holds a shard lock or a mailbox lock of this bus (an
  // unsubscribe, a receive): each shard's topics are walked under its lock (step 7).
  // Waits first for inbox subscribes already using this bus (their topic lookup and list
  // insertion: microseconds); later ones throw tandem::subscription_closed.
  ~event_bus() {
    wait_for_inbox_subscribes();
    topics_.visit_all([](const Topic& /*topic*/, const topic_state& state) noexcept {
      state.close_subscriptions();
    });
    core_->inbox_roster.close_all();
  }

  // Topics: every function below takes a Topic, any key Hash and KeyEqual accept when both are
  // transparent (for std::string topics by default: std::string_view, const char*), or
  // anything implicitly convertible to Topic (see bus_topic_argument). A transparent key is
  // used as it is: publish and subscriber_count build no Topic (and allocate nothing for an
  // absent topic), and subscribe builds one only when it creates the topic. A scalar Topic (an
  // integer, enum or pointer) is taken by value, in an overload of its own that passes it on as
  // a detail::caller_converted<Topic>: the conversion is the caller's, where -Wconversion sees
  // it (detail::forwarded_key; until 2026-12-05 `Topic(topic)` converted it here, silently).

  // Subscribes with the bus's default mailbox capacity and policy.
  template <class Q>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual> && forwarded<Q> &&
      std::constructible_from<Topic, Q&&>
  [[nodiscard(TANDEM_DETAIL_SUBSCRIPTION_DROPPED)]] subscription subscribe(Q&& topic) {
    return subscribe(std::forward<Q>(topic), options_.mailbox_capacity, options_.overflow);
  }
  [[nodiscard(TANDEM_DETAIL_SUBSCRIPTION_DROPPED)]] subscription subscribe(
      Topic topic) requires detail::by_value_sink<Topic> {
    return subscribe(detail::caller_converted<Topic>{topic});
  }

  // capacity: in messages, unbounded_capacity or >= 1 (0 throws std::invalid_argument). For a
  // move-only Message, throws std::logic_error if the topic already has a subscription.
  template <class Q>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual> && forwarded<Q> &&
      std::constructible_from<Topic, Q&&>
  [[nodiscard(TANDEM_DETAIL_SUBSCRIPTION_DROPPED)]] subscription subscribe(Q&& topic,
                                                                           std::size_t capacity,
                                                                           overflow_policy policy) {
    if (capacity == 0) {
      throw std::invalid_argument(
          "tandem::event_bus::subscribe: a mailbox capacity of 0 could never hold a message; "
          "use tandem::unbounded_capacity for no limit");
    }
    // The mailbox and its own list entry, one allocation, on this (receiving) thread, and the
    // one-entry list naming that entry (an aliasing pointer: no allocation).
    auto own = std::make_shared<subscription_box>(capacity, policy);
    typename topic_state::snapshot own_list = topic_state::list_of(own);
    // A topic this creates is built with `own_list` as its list (moved from): it is never seen
    // without it, and the subscription is in it with no second critical section (two atomic
    // read-modify-writes fewer per first subscriber, e.g. per churn cycle). Otherwise
    // `own_list` is left as it was, for add().
    auto [entry, created] = topic_entry<Q>(topic, own_list);
    TANDEM_SYNC_POINT();  // the topic exists (maybe just created), with us in its list if so
    if (!created) {
      topic_state::add(entry, std::move(own_list), own, nullptr,
                       membership_ptr());  // strong: on a throw, nothing was added
    }
    // From here ~event_bus closes the mailbox (step 7): it is open in the topic's list.
    return subscription(std::move(entry), std::move(own));
  }
  [[nodiscard(TANDEM_DETAIL_SUBSCRIPTION_DROPPED)]] subscription subscribe(
      Topic topic, std::size_t capacity,
      overflow_policy policy) requires detail::by_value_sink<Topic> {
    return subscribe(detail::caller_converted<Topic>{topic}, capacity, policy);
  }

  // Delivers `message` to every subscriber of `topic`; returns how many accepted it (0 when
  // the topic has no subscribers: then nothing is allocated). Copies: n - 1 for n subscribers
  // reached (the last one gets the message moved in), plus one copy of `message` first
  // when the caller passes an lvalue (pass std::move(m) to avoid it). `message`: a Message or
  // anything implicitly convertible to one; a Message lvalue is copied by its copy constructor
  // (from a const lvalue: a forwarding constructor template does not build it, rule 54), after
  // the topic is checked; a Message rvalue is moved from only by the delivery that takes it (a
  // publish that reaches nobody leaves it as it was). Until 2026-12-04 a by-value parameter,
  // which the caller copy-initialised through such a template.
  // Blocks only on a full mailbox of the `block` policy, until it has room or is closed (no
  // lock of the bus is held meanwhile); never for a subscriber that only receives slowly under
  // the other policies. Throws std::bad_alloc (a mailbox's new segment) or what Message's copy
  // constructor throws, basic across subscribers (those reached before keep their copy), and
  // std::logic_error when this thread would wait for its own full `block` mailbox (see "A
  // subscriber must not wait for itself" above).
  // A scalar Message is taken by value (detail::by_value_sink: the caller's conversion and its
  // warnings stay at the caller's line), here and in publish_from.
  template <class Q, class M = Message>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual> && forwarded<Q> &&
      (!detail::by_value_sink<Message>)&&detail::sink_argument<M, Message> std::size_t
      publish(const Q& topic, M&& message) {
    return publish_sink<M>(topic, message);
  }
  template <class Q>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual> && forwarded<Q> &&
      detail::by_value_sink<Message>
          std::size_t publish(const Q& topic, Message message) {
    return publish_sink<Message>(topic, message);
  }
  template <class M = Message>
  requires detail::by_value_sink<Topic> &&
      (!detail::by_value_sink<Message>)&&detail::sink_argument<M, Message> std::size_t
      publish(Topic topic, M&& message) {
    return publish(detail::caller_converted<Topic>{topic}, std::forward<M>(message));
  }
  std::size_t publish(Topic topic, Message message) requires detail::by_value_sink<Topic> &&
      detail::by_value_sink<Message> {
    return publish(detail::caller_converted<Topic>{topic}, message);
  }

  // Like publish, but `sender`'s own mailbox is skipped (Phoenix.PubSub.broadcast_from).
  // A moved-from `sender` gets tandem::subscription_closed, one of another bus
  // std::invalid_argument (it could never be skipped here), as for an inbox. (An unsubscribed
  // one is accepted: its mailbox is closed, so it receives nothing either way.)
  template <class Q, class M = Message>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual> && forwarded<Q> &&
      (!detail::by_value_sink<Message>)&&detail::sink_argument<M, Message> std::size_t
      publish_from(const subscription& sender, const Q& topic, M&& message) {
    return publish_from_sink<M>(sender, topic, message);
  }
  template <class Q>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual> && forwarded<Q> &&
      detail::by_value_sink<Message>
          std::size_t publish_from(const subscription& sender, const Q& topic, Message message) {
    return publish_from_sink<Message>(sender, topic, message);
  }

  // An inbox: one mailbox that subscribes to any number of topics of this bus (tandem::inbox).
  // Its capacity and policy are those of the bus's defaults, or given as for subscribe. The
  // calling thread is taken for its receiving thread until another one receives. Needs a
  // copyable Topic: the inbox keeps one copy per topic it subscribes to, for its envelopes.
  [[nodiscard]] inbox_type inbox() requires std::copy_constructible<Topic> {
    return inbox(options_.mailbox_capacity, options_.overflow);
  }
  [[nodiscard]] inbox_type inbox(std::size_t capacity,
                                 overflow_policy policy) requires std::copy_constructible<Topic> {
    if (capacity == 0) {
      throw std::invalid_argument(
          "tandem::event_bus::inbox: a mailbox capacity of 0 could never hold a message; use "
          "tandem::unbounded_capacity for no limit");
    }
    // Allocated on this thread, the inbox's (its receiving side is the one written most).
    auto box = std::make_shared<detail::inbox_mailbox<Message, Topic>>(capacity, policy);
    core_->inbox_roster.enroll(*box);  // noexcept: from here ~event_bus closes it
    return inbox_type(*this, core_, std::move(box));
  }

  // The same as in.subscribe(topic) / in.unsubscribe(topic) (Phoenix.PubSub.subscribe(pubsub,
  // topic) reads this way), but first checks that `in` belongs to this bus: an inbox of
  // another bus gets std::invalid_argument, a moved-from one tandem::subscription_closed.
  template <class Q>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual> && forwarded<Q> &&
      std::constructible_from<Topic, Q&&>
  bool subscribe(inbox_type& in, Q&& topic) {
    // The topic first: a null const char* is refused whatever the inbox's state (rule 52).
    detail::check_not_null_c_string<Topic>(std::as_const(topic), "tandem::event_bus", "topic");
    check_owner(in, "subscribe");
    return in.subscribe(std::forward<Q>(topic));
  }
  bool subscribe(inbox_type& in, Topic topic) requires detail::by_value_sink<Topic> {
    return subscribe(in, detail::caller_converted<Topic>{topic});
  }
  template <class Q>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual> && forwarded<Q>
  bool unsubscribe(inbox_type& in, const Q& topic) {
    detail::check_not_null_c_string<Topic>(topic, "tandem::event_bus", "topic");  // first, as above
    check_owner(in, "unsubscribe");
    return in.unsubscribe(topic);
  }
  bool unsubscribe(inbox_type& in, Topic topic) requires detail::by_value_sink<Topic> {
    return unsubscribe(in, detail::caller_converted<Topic>{topic});
  }

  // Like publish, but the inbox `sender` is skipped (Phoenix.PubSub.broadcast_from). An inbox
  // of another bus gets std::invalid_argument (it could never be skipped here).
  template <class Q, class M = Message>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual> && forwarded<Q> &&
      (!detail::by_value_sink<Message>)&&detail::sink_argument<M, Message> std::size_t
      publish_from(const inbox_type& sender, const Q& topic, M&& message) {
    return publish_from_sink<M>(sender, topic, message);
  }
  template <class Q>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual> && forwarded<Q> &&
      detail::by_value_sink<Message>
          std::size_t publish_from(const inbox_type& sender, const Q& topic, Message message) {
    return publish_from_sink<Message>(sender, topic, message);
  }

 private:
  // A publish_from sender: converts to exactly one of the two sender kinds.
  template <class Sender>
  static constexpr bool is_sender = std::is_convertible_v<const Sender&, const subscription&> !=
                                    std::is_convertible_v<const Sender&, const inbox_type&>;
  template <class Sender>
  static decltype(auto) as_sender(const Sender& sender) {
    if constexpr (std::is_convertible_v<const Sender&, const subscription&>) {
      return static_cast<const subscription&>(sender);
    } else {
      return static_cast<const inbox_type&>(sender);
    }
  }

 public:
  // The by-value topic forms of both publish_from: the sender is a subscription or an inbox,
  // or converts to one as the template forms' `const subscription&` / `const inbox_type&`
  // parameters accept (a std::reference_wrapper, a derived class; found by review,
  // 2026-12-05: a sender template that took only the two exact types refused them).
  template <class Sender, class M = Message>
  requires detail::by_value_sink<Topic> && is_sender<Sender> &&
      (!detail::by_value_sink<Message>)&&detail::sink_argument<M, Message> std::size_t
      publish_from(const Sender& sender, Topic topic, M&& message) {
    return publish_from(as_sender(sender), detail::caller_converted<Topic>{topic},
                        std::forward<M>(message));
  }
  template <class Sender>
  requires detail::by_value_sink<Topic> && is_sender<Sender> && detail::by_value_sink<Message>
      std::size_t publish_from(const Sender& sender, Topic topic, Message message) {
    return publish_from(as_sender(sender), detail::caller_converted<Topic>{topic}, message);
  }

  [[nodiscard]] std::size_t topic_count() const { return topics_.size(); }

  // Subscriptions and inboxes subscribed to `topic` right now (0 when it does not exist).
  template <class Q>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual> && forwarded<Q>
  [[nodiscard]] std::size_t subscriber_count(const Q& topic) const {
    return count_subscribers(lookup_form(topic));
  }
  [[nodiscard]] std::size_t subscriber_count(
      Topic topic) const requires detail::by_value_sink<Topic> {
    return subscriber_count(detail::caller_converted<Topic>{topic});
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
    // Checked before the filter rounds it up to a power of two (std::bit_ceil of a value above
    // the largest power of two is undefined).
    if (options.absent_topic_filter_slots > max_absent_topic_filter_slots) {
      throw std::invalid_argument(
          "tandem::event_bus: absent_topic_filter_slots of " +
          std::to_string(options.absent_topic_filter_slots) +
          " is more than 2^32 (16 GiB of counters); 4096 keeps false positives under 3% with "
          "100 live topics, and 0 disables the filter");
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
    // A null const char* is refused before a view or a key is made of it (rule 52).
    detail::check_not_null_c_string<Topic>(topic, "tandem::event_bus", "topic");
    if constexpr (used_as_is<Q>) {
      return (topic);
    } else {
      return Topic(topic);
    }
  }

  // subscribe's topic argument, forwarded, or converted to one Topic. Call as
  // insert_form<Q>(topic) with the forwarding parameter `topic`.
  // A non-const lvalue is passed on as const, so that the topic map's Topic is a copy made
  // by Topic's copy constructor, not by a forwarding constructor template (rule 54). A
  // converted topic is converted from the argument as const (bus_topic_argument requires that
  // conversion), even an rvalue, so that a subscribe to an existing topic (or one that fails)
  // does not move the caller's argument away (rule 59).
  template <class Q>
  static decltype(auto) insert_form(std::remove_reference_t<Q>& topic) {
    // A null const char* is refused before a Topic is built from it (rule 52; subscribe lacked
    // this check until 2026-12-04).
    detail::check_not_null_c_string<Topic>(std::as_const(topic), "tandem::event_bus", "topic");
    if constexpr (used_as_is<Q> && std::is_lvalue_reference_v<Q>) {
      return std::as_const(topic);
    } else if constexpr (used_as_is<Q>) {
      return static_cast<Q&&>(topic);
    } else {
      return Topic(std::as_const(topic));
    }
  }

  // The topic's entry, created if needed (then `.second` is true): the Topic is built (from
  // `topic`, converted or as it is) by the rc_map only if this creates the topic, and the
  // topic's list is then `first`, moved from in that case only. Strong: a throw leaves no
  // topic (and `first` as it was). `hash_out`, when given, receives the topic's hash (the topic
  // map's: topic_map_hash::of).
  // (`List` is topic_state::snapshot, deduced: naming it in this declaration would need
  // topic_state complete while event_bus is still being instantiated.)
  template <class Q, class List>
  std::pair<typename topic_map::handle, bool> topic_entry(std::remove_reference_t<Q>& topic,
                                                          List& first,
                                                          std::size_t* hash_out = nullptr) {
    auto&& key = insert_form<Q>(topic);  // Q as it is, or one Topic converted from it
    const std::size_t hash = hash_of(std::as_const(key));
    if (hash_out != nullptr) *hash_out = hash;
    return topics_.try_emplace(
        detail::hashed_topic<Topic, decltype(key)&&>{std::forward<decltype(key)>(key), hash},
        std::move(first));
  }

  void check_owner(const inbox_type& in, const char* operation) const {
    if (in.box_ == nullptr) {
      throw subscription_closed(std::string("tandem::event_bus::") + operation +
                                ": the inbox was moved from");
    }
    if (in.core_ != core_) {
      throw std::invalid_argument(
          std::string("tandem::event_bus::") + operation +
          ": the inbox belongs to another event_bus; an inbox made by bus.inbox() subscribes "
          "only to that bus's topics");
    }
  }

  // The topic map's hash of `topic` (see topic_map_hash::of).
  template <class Q>
  [[nodiscard]] std::size_t hash_of(const Q& topic) const {
    return detail::topic_map_hash<Topic, Hash>::of(hash_, topic);
  }

  // subscriber_count's work: one hash, the filter, then (maybe) the map lookup with the hash
  // precomputed. `topic` is a Topic or a transparent key: nothing is built.
  template <class Q>
  std::size_t count_subscribers(const Q& topic) const {
    const std::size_t hash = hash_of(topic);
    const detail::absent_topic_filter* filter = core_->filter.get();
    if (filter != nullptr && !filter->may_exist(hash)) return 0;
    // Under the shard lock, which guards the list: no handle, so no count traffic, and this
    // const query can never be the one that erases the topic.
    std::size_t count = 0;
    topics_.visit(
        detail::hashed_topic<Topic, const Q&>{topic, hash},
        [&count](const topic_state& state) noexcept { count = state.subscriber_count(); });
    return count;
  }

  // Drop_oldest evictions of the fast path, destroyed last (after every lock is released).
  struct evicted_items {
    std::optional<Message> message;
    std::optional<envelope_type> envelope;
    // User-provided: with the implicit constructor g++ 12 cleared all 88 bytes (`rep stos`) on
    // every publish instead of the two engaged flags.
    evicted_items() noexcept {}  // NOLINT(modernize-use-equals-default): see above
  };

  // The bodies of publish and publish_from: `message` as the public function took it (M: its
  // declared type, deduced or Message itself for a scalar Message taken by value).
  template <class M, class Q>
  std::size_t publish_sink(const Q& topic, std::remove_reference_t<M>& message) {
    auto&& key = lookup_form(topic);  // first: a null const char* is refused (rule 52)
    return deliver_argument<M>(key, message, nullptr);
  }
  template <class M, class Q>
  std::size_t publish_from_sink(const subscription& sender, const Q& topic,
                                std::remove_reference_t<M>& message) {
    auto&& key = lookup_form(topic);  // the topic first (a null const char* is refused)
    if (sender.mailbox_ == nullptr) {
      throw subscription_closed(
          "tandem::event_bus::publish_from: the subscription was moved from; it has no mailbox "
          "to leave out");
    }
    if (sender.topic_ && !topics_.owns(sender.topic_)) {
      throw std::invalid_argument(
          "tandem::event_bus::publish_from: the subscription belongs to another event_bus; "
          "only a subscriber of this bus can be left out of its publish");
    }
    // The receiver a list entry names: the mailbox, not the box around it.
    return deliver_argument<M>(key, message, &sender.mailbox_->box);
  }
  template <class M, class Q>
  std::size_t publish_from_sink(const inbox_type& sender, const Q& topic,
                                std::remove_reference_t<M>& message) {
    auto&& key = lookup_form(topic);  // the topic first, as above
    check_owner(sender, "publish_from");
    return deliver_argument<M>(key, message, sender.box_.get());
  }

  // publish's `message` (declared M&&), delivered: a Message rvalue as it is (moved from only by
  // the delivery that takes it, so a publish that reaches nobody leaves it alone), anything else
  // first made into a Message of our own (detail::owned_argument: a copy from a const lvalue).
  template <class M, class Q>
  std::size_t deliver_argument(const Q& topic, std::remove_reference_t<M>& message,
                               const void* skip) {
    if constexpr (std::is_same_v<M, Message>) {
      return deliver(topic, message, skip);
    } else {
      Message owned = detail::owned_argument<Message>(static_cast<M&&>(message));
      return deliver(topic, owned, skip);
    }
  }

  // `skip`: the receiver (mailbox address) publish_from leaves out, or null.
  template <class Q>
  std::size_t deliver(const Q& topic, Message& message, const void* skip) {
    const std::size_t hash = hash_of(topic);
    const detail::absent_topic_filter* filter = core_->filter.get();
    if (filter != nullptr && !filter->may_exist(hash)) return 0;
    // Declared after the absent-topic exit, which then builds nothing (g++ 12 zeroes these 88
    // bytes with `rep stos`: 3.5 -> 11.6 ns per publish to an absent topic when they came first).
    evicted_items evicted;  // by drop_oldest on the fast path; destroyed last
    typename topic_state::snapshot targets;
    std::optional<std::size_t> delivered;
    // Under the topic's shard lock (rc_map::visit: the entry stays alive without a handle, so
    // no count increment and decrement): the one-target fast path, or a copy of the snapshot.
    // Nothing in here uses the topic map or releases a handle; the only user code is
    // Message's noexcept move.
    const bool found = topics_.visit(detail::hashed_topic<Topic, const Q&>{topic, hash},
                                     [&](const topic_state& state) {
                                       delivered = state.try_deliver_to_one(message, skip, evicted);
                                       if (!delivered) targets = state.current();
                                     });
    if (!found) return 0;
    if (delivered) return *delivered;
    const subscriber* entries = targets.list.get();
    // Whether to deliver to entries[i]: open as far as the list knows (a hint: the mailbox
    // decides, under its lock, and refuses once its receiver left; see subscriber::open_in_list)
    // and not the sender. Every entry within a list's size names its receiver (a box or an inbox:
    // topic_state::with fills each one it counts, a subscription_box's own entry names its
    // box), so publish (skip null) compares nothing more: clang 14 otherwise picked box or
    // inbox and tested both, 5 instructions per subscriber.
    auto wanted = [&](std::size_t i) {
      return entries[i].open_in_list.load(std::memory_order_relaxed) &&  // relaxed: a hint
             (skip == nullptr || entries[i].receiver() != skip);
    };
    // The last entry, which gets the message moved rather than copied, is chosen by its
    // receiver's own flag too (exact when read): a list's copy of the flag can still say open
    // for a receiver that left (see subscriber::open_in_list), and that one would take the
    // message while every open receiver got a copy (found by review, 2026-12-03).
    std::size_t last = targets.size;
    for (std::size_t i = targets.size; i-- > 0;) {
      if (wanted(i) && entries[i].open()) {
        last = i;
        break;
      }
    }
    std::size_t reached = 0;
    for (std::size_t i = 0; i < last; ++i) {
      // The receiver's own flag as well, before a copy is made for it: a list's copy can still
      // say open where a subscribe that lost its install left the receiver's recorded position
      // stale (a fix review, 2026-12-03: one copy more than n - 1 for an inbox or a Message
      // whose copy may throw, which are copied before the push). Open entries' flags sit on
      // lines the push reads anyway (the mailbox's read-only fields, the publisher's line).
      // relaxed: a hint, as the copy is.
      if (!wanted(i) || !entries[i].state->open.load(std::memory_order_relaxed)) continue;
      if constexpr (fans_out) {
        if constexpr (std::is_nothrow_copy_constructible_v<Message>) {
          // A subscription's mailbox copies the message straight into its queue slot at the
          // commit point (noexcept, so the push stays strong): no copy on the stack first.
          if (entries[i].box != nullptr) {
            if (outcome_of(entries[i].box->push(std::as_const(message)), *entries[i].box, topic)) {
              ++reached;
            }
            continue;
          }
        }
        // From a const lvalue: the constructor is_copy_constructible names (a non-const one
        // picks a forwarding constructor template over the copy; rule 54).
        Message copy(std::as_const(message));  // may throw: before the push, which changes nothing
        if (push_to(entries[i], copy, topic)) ++reached;
      } else {
        TANDEM_ASSERT(false, "a move-only message fanned out; subscribe() should have refused");
      }
    }
    if (last != targets.size && push_to(entries[last], message, topic)) ++reached;
    return reached;
  }

  // One subscriber's push (its mailbox, or its inbox's with the membership); a publisher that
  // would wait for its own full `block` mailbox gets std::logic_error instead (see "A
  // subscriber must not wait for itself").
  // Forced inline into deliver's loop, as mailbox::push is (see there).
  template <class Q>
  TANDEM_ALWAYS_INLINE static bool push_to(const subscriber& target, Message& message,
                                           const Q& topic) {
    if (target.box != nullptr) return outcome_of(target.box->push(message), *target.box, topic);
    detail::envelope_source<Message, Topic> source{message, target.membership};
    return outcome_of(target.inbox->push(source), *target.inbox, topic);
  }

  // Inline (the common outcome costs a compare); the message is built out of line.
  template <class Box, class Q>
  static bool outcome_of(typename Box::push_outcome outcome, const Box& box, const Q& topic) {
    if (TANDEM_LIKELY(outcome == Box::push_outcome::accepted)) return true;
    if (outcome == Box::push_outcome::own_mailbox_full) throw_own_mailbox_full(box, topic, true);
    if (outcome == Box::push_outcome::full_with_no_other_thread) {
      throw_own_mailbox_full(box, topic, false);
    }
    return false;  // refused, full
  }

  template <class Box, class Q>
  [[noreturn]] TANDEM_NOINLINE static void throw_own_mailbox_full(const Box& box, const Q& topic,
                                                                  bool receiver) {
    throw std::logic_error(
        "tandem::event_bus::publish: " + describe(topic) +
        " has a subscriber (subscription or inbox) with overflow_policy::block whose "
        "mailbox is full (capacity " +
        std::to_string(box.capacity()) + "), and " +
        (receiver ? "the publishing thread is the only thread that has received on it since "
                    "it was subscribed or last moved"
                  : "this process has no other thread that could receive from it (it has "
                    "never started one)") +
        ": waiting for room would never end. Receive first, or use a larger capacity or "
        "another policy");
  }

  template <class Q>
  static std::string describe(const Q& topic) {
    if constexpr (std::is_pointer_v<Q>) {
      if (topic == nullptr) return "a null topic";  // never a view of it (rule 52)
    }
    if constexpr (std::is_convertible_v<const Q&, std::string_view>) {
      return "topic \"" + std::string(std::string_view(topic)) + "\"";
    } else {
      return "the topic";
    }
  }

  event_bus_options options_;
  // ~event_bus, first: from here on inbox::subscribe throws; waits for those in progress.
  // seq_cst store then load, against the subscribe's seq_cst increment then load (bus_use):
  // one of the two sees the other.
  void wait_for_inbox_subscribes() noexcept {
    core_->bus_destroyed.store(1, std::memory_order_seq_cst);
    for (const detail::bus_use_frame* f = detail::inbox_subscribes; f != nullptr; f = f->outer) {
      if (f->core == core_.get()) detail::event_bus_destroyed_inside_subscribe();
    }
    sync::backoff wait;
    for (;;) {
      // seq_cst, not acquire: the handshake needs both loads in the single total order (an
      // acquire load may be satisfied before the store above is visible: POWER emits no sync
      // between them, and both sides could miss each other; found by review, 2026-12-02). It
      // also acquires: what the subscribes did happens before what the destructor does next.
      const std::uint32_t in_progress =
          core_->subscribes_in_progress.load(std::memory_order_seq_cst);
      if (in_progress == 0) return;
      TANDEM_TEST_POINT("event_bus destructor: waiting for inbox subscribes");
      if (!wait.is_completed()) {
        wait.pause();
      } else {
        sync::atomic_wait(core_->subscribes_in_progress, in_progress);
      }
    }
  }

  std::shared_ptr<shared_core> core_;  // shared with every inbox
  Hash hash_;                          // hashes each topic argument once (filter + map)
  topic_map topics_;
};

// The subscription type of event_bus<Message, Topic, Hash, KeyEqual> (what subscribe()
// returns), by name, as tandem::inbox names the inbox type: for members and containers,
// std::vector<tandem::subscription<std::string>> (a new user's trial, 2026-12-05, looked for it).
template <class Message, class Topic = std::string, class Hash = default_hash<Topic>,
          class KeyEqual = default_key_equal<Topic>>
using subscription = typename event_bus<Message, Topic, Hash, KeyEqual>::subscription;

// One entry of a topic's subscriber list: a subscription's mailbox, or an inbox's mailbox and
// its membership of this topic.
template <class Message, class Topic, class Hash, class KeyEqual>
requires bus_message<Message> && bus_topic<Topic> && bus_topic_hash<Hash, Topic> &&
    bus_topic_key_equal<KeyEqual, Topic>
struct event_bus<Message, Topic, Hash, KeyEqual>::subscriber {
  subscriber() noexcept = default;
  // (libstdc++'s std::make_shared<subscriber[]>(n) copies one value-initialised entry n times.)
  subscriber(const subscriber& other) noexcept
      : box(other.box),
        inbox(other.inbox),
        membership(other.membership),
        owner(other.owner),
        state(other.state),
        // relaxed: copied while building a list no other thread sees yet.
        open_in_list(other.open_in_list.load(std::memory_order_relaxed)) {}
  subscriber& operator=(const subscriber&) = delete;
  ~subscriber() = default;

  mailbox_type* box = nullptr;          // a subscription's mailbox; null for an inbox
  inbox_mailbox_type* inbox = nullptr;  // an inbox's mailbox; null for a subscription
  membership_ptr membership;            // the inbox's membership of this topic (with `inbox`)
  // Keeps *box (its subscription_box) or *inbox alive. Null only in a subscription_box's own
  // entry, which is named only by a one-entry list that shares the box's ownership (an
  // aliasing shared_ptr, see topic_state::add): the list keeps the box alive instead.
  std::shared_ptr<const void> owner;
  // The receiver's list_entry_state (the subscription_box's, or the inbox membership's):
  // whether the entry is still open. Lives as long as `owner` (or `membership`) keeps it. A left
  // entry stays in its list until the list is next replaced, so that leaving allocates nothing;
  // topic_state::remove clears the flag under the shard lock (and keeps the exact count,
  // topic_state::open_).
  detail::list_entry_state* state = nullptr;
  // False once the receiver left and its leave found this entry at the receiver's recorded
  // position (topic_state::leave): a copy of the receiver's flag in the list, which publishes
  // read instead of the receiver's (a hint either way: a receiver that left refuses under its
  // mailbox lock), so that they pass over left entries without a load from each receiver's
  // line (a list most of whose 20,000 subscribers had left published 3x slower with the flag
  // read from the receivers; review, 2026-12-03). Never cleared while the receiver's flag is
  // set, so it never hides an open entry; left set where the position was stale, which costs
  // a publish one refused push.
  mutable std::atomic<bool> open_in_list{true};

  // Still subscribed: exact under the shard lock, a hint elsewhere (see list_entry_state).
  [[nodiscard]] bool open() const noexcept {
    // relaxed: see list_entry_state.
    return open_in_list.load(std::memory_order_relaxed) &&
           state->open.load(std::memory_order_relaxed);
  }

  // Who receives through this entry: what publish_from compares with its sender.
  [[nodiscard]] const void* receiver() const noexcept {
    return box != nullptr ? static_cast<const void*>(box) : static_cast<const void*>(inbox);
  }
};

// A subscription's mailbox and its own entry for its topic's list, in one allocation: the
// first subscriber of a topic (the common case: one subscriber per topic, or churn) needs no
// list allocation, as the list is then this entry (topic_state::add).
template <class Message, class Topic, class Hash, class KeyEqual>
requires bus_message<Message> && bus_topic<Topic> && bus_topic_hash<Hash, Topic> &&
    bus_topic_key_equal<KeyEqual, Topic>
struct event_bus<Message, Topic, Hash, KeyEqual>::subscription_box {
  subscription_box(std::size_t capacity, overflow_policy policy) noexcept : box(capacity, policy) {
    self.box = &box;
    self.state = &list_entry;
  }
  subscription_box(const subscription_box&) = delete;
  subscription_box& operator=(const subscription_box&) = delete;
  ~subscription_box() = default;

  // Whether its entry in its topic's list is still open: see detail::list_entry_state. First,
  // beside the mailbox's read-only fields, as every publish reads it (after the mailbox it
  // shared a line with the mailbox's wake-up tokens).
  detail::list_entry_state list_entry;
  mailbox_type box;
  subscriber self;  // owner stays null: see subscriber::owner
};

// The value of each rc_map entry: the topic's current subscribers.
template <class Message, class Topic, class Hash, class KeyEqual>
requires bus_message<Message> && bus_topic<Topic> && bus_topic_hash<Hash, Topic> &&
    bus_topic_key_equal<KeyEqual, Topic>
class event_bus<Message, Topic, Hash, KeyEqual>::topic_state {
 public:
  // A consistent view of the subscriber list at one instant; keeps its mailboxes alive. It may
  // hold entries that have left (open == false): skip them.
  struct snapshot {
    std::shared_ptr<const subscriber[]> list;
    std::size_t size = 0;
  };
  // A list built by with(): the snapshot, its entries writable and how many exist (>= size).
  struct built_list {
    snapshot list;
    subscriber* entries = nullptr;
    std::size_t capacity = 0;
  };
  using topic_handle = typename topic_map::handle;

  // `first`: the list the topic starts with (a subscribe that creates the topic: its own
  // entry; an inbox's: empty). The absent-topic filter counts the topic from its link in the
  // map to its unlink (topic_map_hash, the map's link observer), not from this constructor to
  // the destructor: so a topic_state holds no reference to the bus's shared core (until
  // 2026-12-04 it held a shared_ptr, two atomic RMWs per topic created and erased), and its
  // destructor, which may run after ~event_bus, touches nothing of the bus.
  // Nothrow, short and running no user code (a shared_ptr moved, two words set), so the topic
  // map builds it under the shard lock that links the topic (rc_map_built_under_lock): the
  // entry is never seen unbuilt, and its once_cell needs no finishing exchange (one atomic
  // RMW fewer per topic created).
  explicit topic_state(snapshot&& first) noexcept
      : subscribers_(std::move(first)), open_(subscribers_.size) {}
  using tandem_rc_map_build_under_lock = void;
  topic_state(const topic_state&) = delete;
  topic_state& operator=(const topic_state&) = delete;
  ~topic_state() = default;

  // Every function below runs under the topic's rc_map shard lock, which guards the list
  // (subscribers_, open_, version_): the first three are called from inside topics_.visit
  // (deliver, subscriber_count), add and remove take it through their topic handle
  // (rc_map::handle::visit). One lock per publish, not a shard lock and then a topic lock.

  // The fast path of publish for a topic with one target (after skipping `skip`): that needs
  // no copy, so the message is moved into the mailbox right under the shard lock, without
  // copying the snapshot (saving its two reference-count updates). The mailbox lock nests
  // inside the shard lock; the only user code run under them is Message's noexcept move.
  // Returns std::nullopt when the fast path does not apply -- several open subscribers, or a
  // full mailbox with the block policy, which must not be waited for under a lock -- and the
  // caller takes the snapshot path.
  std::optional<std::size_t> try_deliver_to_one(Message& message, const void* skip,
                                                evicted_items& evicted) const {
    if (open_ == 0) return 0;
    // Several targets; or one among more than searched_under_lock entries (the others left and
    // stay until the list is replaced): finding it is O(list), which must not happen under the
    // shard lock that publishes to every topic of the shard need (rule 24). The snapshot path
    // copies the list here and searches it after the lock is released.
    if (open_ != 1 || subscribers_.size > searched_under_lock) return std::nullopt;
    const subscriber* target = subscribers_.list.get();
    // The one open entry (entries that left stay until the list is replaced). relaxed: the flags
    // are written under the shard lock, which we hold.
    while (!target->open()) ++target;
    if (target->receiver() == skip) return 0;
    if (target->box != nullptr) return count_of(target->box->try_push(message, evicted.message));
    detail::envelope_source<Message, Topic> source{message, target->membership};
    return count_of(target->inbox->try_push(source, evicted.envelope));
  }

  // Under the shard lock (deliver's topics_.visit).
  [[nodiscard]] snapshot current() const { return subscribers_; }

  // The one-entry list of a subscription_box: its own entry, through an aliasing pointer that
  // shares the box's ownership (no allocation, one reference count).
  static snapshot list_of(const std::shared_ptr<subscription_box>& box) noexcept {
    return snapshot{std::shared_ptr<const subscriber[]>(box, &box->self), 1};
  }

  // Exact: entries that left are not counted. Under the shard lock (topics_.visit).
  [[nodiscard]] std::size_t subscriber_count() const noexcept { return open_; }

  // Adds a subscription's mailbox (`box`) or an inbox's (`inbox`, with its `membership`) to
  // `topic`'s list: in the list's room, or in a new list of the open entries plus this one,
  // dropping the entries that left (this is where their space is reclaimed). Strong guarantee:
  // throws std::bad_alloc (only when the list has no room), or std::logic_error for a second
  // subscriber with a move-only Message, and then changes nothing. No list is released under the
  // lock (a list's last reference may destroy a mailbox and its queued messages, user code that may
  // use the bus). `own`: list_of(box) for a subscription, empty for an inbox.
  static void add(const topic_handle& topic, snapshot own,
                  const std::shared_ptr<subscription_box>& box, const inbox_mailbox_ptr& inbox,
                  const membership_ptr& membership) {
    // A subscription that becomes the topic's only open subscriber: the list becomes the box's
    // own entry (`own`), installed in one critical section. Otherwise the same critical
    // section reads the list to rebuild.
    snapshot old;
    std::uint64_t seen_version = 0;
    std::size_t open = 0;
    const bool installed_own = topic.visit([&](const topic_state& state) noexcept {
      if (box != nullptr && state.open_ == 0) {
        place(box->self, 0);
        state.install(own, 1);  // the commit point; `own` now holds the old list
        return true;
      }
      // A list with room: the entry goes in place (the commit point), nothing is copied.
      if (state.append_in_place(box, inbox, membership, room_use::unless_mostly_left)) return true;
      state.read(old, seen_version, open);
      return false;
    });
    if (installed_own) return;  // `own` (now the old list) is released after the lock
    for (;;) {
      if constexpr (!fans_out) {
        if (open != 0) {
          throw std::logic_error(
              "tandem::event_bus: Message is not copy constructible, so a topic can have only "
              "one subscriber (subscription or inbox; fan-out would need a copy); this topic "
              "already has one");
        }
      }
      // Build the new list outside the lock (allocation and shared_ptr copies), then install
      // it if no add changed the list meanwhile (every add bumps version_), otherwise start
      // over from the newer list. Leaves do not stop the install: an entry that left after it
      // was copied shares its flag with the old list (list_entry_state), so the new list holds
      // every entry still open plus those, already flagged left, and open_ (which each leave
      // decremented) counts them right. (Until 2026-12-03 each entry carried its own flag, a
      // leave bumped the version too, and the subscribe built again: under a stream of leaves
      // faster than one build of a full list it never finished: found by review, 98,302
      // subscribers and one leave every 50 us made one subscribe build 655 lists in 3.6 s;
      // now 1, in 11 ms.)
      std::optional<built_list> built;
      try {
        built.emplace(with(old, open, box, inbox, membership));
      } catch (const std::bad_alloc&) {
        // A list with room that was refused because most of it left (append_in_place) is
        // taken after all: dropping the left entries is worth an allocation, not a failed
        // subscribe (until 2026-12-03 such a subscribe threw where it needs no memory).
        const bool appended = topic.visit([&](const topic_state& state) noexcept {
          return state.append_in_place(box, inbox, membership, room_use::any);
        });
        if (appended) return;
        throw;
      }
      built_list& fresh = *built;
      TANDEM_SYNC_POINT();  // built from `old`; a remove may clear a flag we copied as open
      TANDEM_TEST_POINT("event_bus add: a list built, not yet installed");
      snapshot newer;
      std::size_t left_meanwhile = 0;
      const snapshot built_list_kept = fresh.list;  // alive while it is put right, below
      const bool installed = topic.visit([&](const topic_state& state) noexcept {
        if (state.version_ == seen_version) {
          left_meanwhile = open - state.open_;    // no add since: only leaves changed open_
          state.install(fresh, state.open_ + 1);  // the commit point
          return true;
        }
        // Another add changed it meanwhile: maybe it now has room (that add rebuilt it). Any
        // room now, even in a list mostly left: a list built to drop the left entries is not
        // built again for this subscribe (fix review, 2026-12-03: adds and leaves racing with
        // one subscribe kept it building, 200 builds of 100,000 entries); a later subscribe
        // drops them.
        if (state.append_in_place(box, inbox, membership, room_use::any)) return true;
        state.read(newer, seen_version, open);
        return false;
      });
      if (installed) {
        // Receivers that left while the list was built were copied with their list flag set,
        // and their leaves could not clear it (the list was not installed yet): clear it now,
        // so that publishes pass over them (review, 2026-12-03: 330 us against 85-138 us per
        // publish to a list most of whose 24,575 subscribers left during one build). Outside
        // the lock: O(list), as the build was; a flag is cleared only once its receiver's is
        // (which never comes back), so it never hides an open entry, and a concurrent leave
        // clearing the same flag writes the same value.
        if (left_meanwhile != 0) {
          const subscriber* entries = built_list_kept.list.get();
          for (std::size_t i = 0; i < built_list_kept.size; ++i) {
            // relaxed: hints, see subscriber::open_in_list.
            if (!entries[i].state->open.load(std::memory_order_relaxed)) {
              entries[i].open_in_list.store(false, std::memory_order_relaxed);
            }
          }
        }
        return;  // `fresh` (now the old list, or unused) is released after the lock
      }
      old = std::move(newer);
    }
  }

  // Marks the entry whose receiver keeps `entry` (its subscription_box's or membership's
  // list_entry_state) as left in `topic`'s list: publishers no longer count or choose it, and
  // subscriber_count() drops at once. Allocates nothing and cannot fail (the entry, and the
  // reference it holds to the mailbox, stay in the list until an add() replaces it, or until
  // the topic is erased). The caller has already closed the mailbox or withdrawn the
  // membership, so nothing is delivered through the entry any more. Idempotent. O(1) under the
  // shard lock, whatever the list's length: the flag lives in the receiver, so nothing is
  // looked for. (Until 2026-12-03 every leave searched the list, O(n^2) for n subscribers
  // leaving a topic; then, until a later change that day, it looked at the position recorded when
  // the entry was placed, and searched when a subscribe that lost its install had left that
  // position stale.) (Called from inside a visit of the topic map, handle::visit would throw and
  // this noexcept function terminate with that message; nothing does: no user code runs under the
  // shard lock but Message's noexcept move, see rule 14.)
  static void remove(const topic_handle& topic, detail::list_entry_state& entry) noexcept {
    topic.visit([&](const topic_state& state) noexcept { state.leave(entry); });
  }

  // remove(topic, entry) and topic.reset() in one critical section (rc_map::handle::reset_if:
  // the topic is erased right there when this was its last handle). Allocates nothing and
  // cannot fail.
  static void remove_and_release(topic_handle& topic, detail::list_entry_state& entry) noexcept {
    static_cast<void>(topic.reset_if([&](const topic_state& state) noexcept {
      state.leave(entry);
      return true;
    }));
  }

  // ~event_bus's step 7, under the shard lock: closes the mailbox of every open subscription
  // entry (inboxes are closed through the inbox roster). O(list) under the shard lock, which
  // rule 24 allows here: the bus is being destroyed, so no publish needs the lock.
  void close_subscriptions() const noexcept {
    const subscriber* entries = subscribers_.list.get();
    if (entries == nullptr) return;  // no list yet (an inbox's topic before its first add)
    for (std::size_t i = 0; i < subscribers_.size; ++i) {
      // relaxed: the flags are written under the shard lock, which we hold.
      if (entries[i].box != nullptr && entries[i].open()) {
        entries[i].box->close();  // lock order: shard, then mailbox
      }
    }
  }

  // Lists up to this long are searched under the shard lock (a few cache lines) by publish's
  // one-target path, for the one open entry among those that left.
  static constexpr std::size_t searched_under_lock = 16;

 private:
  // Under the shard lock: `list` becomes the topic's list, with `open` open entries; `list`
  // then holds the replaced one, which the caller releases after the lock. A list given as a
  // snapshot (a subscription_box's own entry) has no room for more.
  void install(snapshot& list, std::size_t open) const noexcept {
    std::swap(subscribers_, list);
    open_ = open;
    ++version_;
    entries_ = nullptr;
    capacity_ = subscribers_.size;
  }
  void install(built_list& list, std::size_t open) const noexcept {
    install(list.list, open);
    entries_ = list.entries;
    capacity_ = list.capacity;
  }

  // Under the shard lock: the new entry in the list's room, if it has some (a list built by
  // with() has as much room again as it has entries). No snapshot ever reaches that far (every
  // one was taken with a smaller size), so nobody else reads the entry while it is written,
  // and every snapshot taken after the lock sees it whole. Allocates nothing, releases
  // nothing: copying the owner and membership pointers is one reference-count increment each.
  // Not for a move-only Message (a topic then has one subscriber: with() builds no room).
  // Refused, so that the caller builds a list of the open entries, when entries that left
  // outnumber the open ones: they keep their mailboxes (and an inbox's membership, with its
  // copy of the topic) alive and every publish passes over them, and they go only when a list
  // is built. The build costs O(open), which the leaves since the last build paid for. (Until
  // 2026-12-03 a list with room kept them until the room was full: a topic left by 100,000 of
  // its subscribers held their mailboxes through up to 100,000 more subscribes; review.)
  // `use`: room_use::any takes the room whatever has left (add()'s retry after a build lost).
  enum class room_use { unless_mostly_left, any };
  bool append_in_place(const std::shared_ptr<subscription_box>& box, const inbox_mailbox_ptr& inbox,
                       const membership_ptr& membership, room_use use) const noexcept {
    if (entries_ == nullptr || subscribers_.size == capacity_) return false;
    if (use == room_use::unless_mostly_left && subscribers_.size - open_ > open_) {
      return false;  // mostly left: build the list anew
    }
    subscriber& entry = entries_[subscribers_.size];  // value-initialised, never used
    if (box != nullptr) {
      entry.box = &box->box;
      entry.owner = box;
      entry.state = &box->list_entry;
    } else {
      entry.inbox = inbox.get();
      entry.membership = membership;
      entry.owner = inbox;
      entry.state = &membership->list_entry;
    }
    place(entry, subscribers_.size);
    ++subscribers_.size;
    ++open_;
    ++version_;
    return true;
  }

  // Under the shard lock: the list (into an empty `into`, so nothing is released under the
  // lock), its version and its open count.
  void read(snapshot& into, std::uint64_t& seen_version, std::size_t& open) const noexcept {
    into = subscribers_;
    seen_version = version_;
    open = open_;
  }

  // Under the shard lock: the entry whose receiver keeps `entry` leaves, if it is still open.
  // The version stays: a list a subscribe is building from this one shares the flag, so it
  // can still be installed. The entry's own copy of the flag is cleared too when the
  // receiver's recorded position names it (no search: a stale position skips this).
  void leave(detail::list_entry_state& entry) const noexcept {
    // relaxed: written and read under the shard lock (publishers read them as hints).
    if (!entry.open.load(std::memory_order_relaxed)) return;
    entry.open.store(false, std::memory_order_relaxed);
    --open_;
    const std::size_t at = entry.position.load(std::memory_order_relaxed);  // relaxed: a hint
    if (at < subscribers_.size && subscribers_.list.get()[at].state == &entry) {
      subscribers_.list.get()[at].open_in_list.store(false, std::memory_order_relaxed);
    }
  }

  // Records where `entry` is: index `at` of the list it has just been placed in.
  static void place(subscriber& entry, std::size_t at) noexcept {
    entry.state->position.store(at, std::memory_order_relaxed);  // relaxed: a hint (leave)
  }

  static std::optional<std::size_t> count_of(typename mailbox_type::push_outcome outcome) {
    return count_outcome<mailbox_type>(outcome);
  }
  static std::optional<std::size_t> count_of(typename inbox_mailbox_type::push_outcome outcome) {
    return count_outcome<inbox_mailbox_type>(outcome);
  }
  template <class Box>
  static std::optional<std::size_t> count_outcome(typename Box::push_outcome outcome) {
    switch (outcome) {
      case Box::push_outcome::accepted:
        return 1;
      case Box::push_outcome::refused:
        return 0;
      case Box::push_outcome::full:
      case Box::push_outcome::own_mailbox_full:  // (only push() returns these two)
      case Box::push_outcome::full_with_no_other_thread:
        break;
    }
    return std::nullopt;
  }

  // `n` value-initialised entries under one shared count: one allocation where the standard
  // library has C++20's make_shared<T[]> (libstdc++ 12, libc++ 15), two where it has not
  // (libc++ 14). Throws std::bad_alloc, leaking nothing. The deleter is named: libc++ 14's
  // shared_ptr<T[]>(p) holds p in a unique_ptr<T> while it allocates its control block, so
  // when that allocation failed it freed the array with `delete`, not `delete[]` (glibc:
  // "munmap_chunk(): invalid pointer"; CI's libc++ run of the inbox's allocation-failure
  // sweep, 2026-12-03).
  static std::shared_ptr<subscriber[]> make_list(std::size_t n) {
#if defined(__cpp_lib_shared_ptr_arrays) && __cpp_lib_shared_ptr_arrays >= 201707L
    return std::make_shared<subscriber[]>(n);
#else
    return std::shared_ptr<subscriber[]>(new subscriber[n](), std::default_delete<subscriber[]>());
#endif
  }

  // The open entries of `old` (`open` of them, or fewer when some left meanwhile: those that
  // leave after they were copied are in the list, flagged left; see add) plus the new one.
  // The list has room for as many entries again (append_in_place fills it), so that a topic
  // built up to n subscribers copies O(n) entries in all, not O(n^2); none for a move-only
  // Message, whose topic has one subscriber.
  static built_list with(const snapshot& old, std::size_t open,
                         const std::shared_ptr<subscription_box>& box,
                         const inbox_mailbox_ptr& inbox, const membership_ptr& membership) {
    const std::size_t capacity = fans_out ? 2 * (open + 1) : open + 1;
    std::shared_ptr<subscriber[]> list = make_list(capacity);
    subscriber* fresh = list.get();
    std::size_t size = 0;
    const subscriber* entries = old.list.get();
    for (std::size_t i = 0; i < old.size && size < open; ++i) {
      // A hint read outside the lock: an entry that leaves after this line is copied open,
      // and its flag (shared, see list_entry_state) says so in the new list too.
      if (!entries[i].open()) continue;
      fresh[size].box = entries[i].box;
      fresh[size].inbox = entries[i].inbox;
      fresh[size].membership = entries[i].membership;
      // A subscription_box's own entry has no owner: the old list's control block is the box's.
      fresh[size].owner = entries[i].owner != nullptr
                              ? entries[i].owner
                              : std::shared_ptr<const void>(old.list, entries[i].box);
      fresh[size].state = entries[i].state;
      place(fresh[size], size);
      ++size;
      TANDEM_TEST_POINT("event_bus add: an entry copied into a new list");
    }
    if (box != nullptr) {
      fresh[size].box = &box->box;
      fresh[size].owner = box;
      fresh[size].state = &box->list_entry;
    } else {
      fresh[size].inbox = inbox.get();
      fresh[size].membership = membership;
      fresh[size].owner = inbox;
      fresh[size].state = &membership->list_entry;
    }
    place(fresh[size], size);
    return built_list{snapshot{std::move(list), size + 1}, fresh, capacity};
  }

  // Guarded by the topic's rc_map shard lock (mutable: rc_map hands out const topic_state&
  // under it). Replaced by add() when it has no room; changed in place only by an entry
  // appended in its room (append_in_place) and by the entries' `open` flags (in their
  // receivers, see list_entry_state), which remove() clears. Entries never move within a list.
  mutable snapshot subscribers_;
  mutable std::size_t open_ = 0;       // entries of subscribers_ still open
  mutable std::uint64_t version_ = 0;  // bumped by every add (a leave only clears a flag)
  // subscribers_'s entries, writable, and how many exist (room: capacity_ - size) when with()
  // built it; null for a subscription_box's own entry, or no list.
  mutable subscriber* entries_ = nullptr;
  mutable std::size_t capacity_ = 0;
};

// One subscriber's membership in one topic, and its mailbox. Movable, not copyable; one thread
// at a time may receive on it. Destroying it (or assigning to it) unsubscribes. See "Closed
// subscriptions" in the header comment for what a closed or moved-from one does.
template <class Message, class Topic, class Hash, class KeyEqual>
requires bus_message<Message> && bus_topic<Topic> && bus_topic_hash<Hash, Topic> &&
    bus_topic_key_equal<KeyEqual, Topic>
class TANDEM_DETAIL_SUBSCRIPTION_NODISCARD event_bus<Message, Topic, Hash, KeyEqual>::subscription {
 public:
  // The moved-to subscription may be received on another thread: the mailbox forgets its
  // receiving thread until someone receives.
  subscription(subscription&& other) noexcept
      : topic_(std::move(other.topic_)), mailbox_(std::move(other.mailbox_)) {
    if (mailbox_ != nullptr) mailbox_->box.forget_consumer();
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
  // Unsubscribes, then destroys the messages still queued (the mailbox object itself may live
  // on, closed and empty, in the topic's subscriber list until that list is next replaced).
  // Allocates nothing and cannot fail.
  ~subscription() {
    unsubscribe();
    if (mailbox_ != nullptr) mailbox_->box.discard_queued();
  }

  // The oldest queued message, or std::nullopt at once if there is none (also when closed or
  // moved from).
  [[nodiscard]] std::optional<Message> try_receive() {
    if (mailbox_ == nullptr) return std::nullopt;
    return mailbox_->box.try_pop();
  }

  // The oldest queued message; blocks (without spinning) until there is one. Throws
  // tandem::subscription_closed when none can come any more: closed (unsubscribed, or the bus
  // destroyed) with nothing left queued, or moved from. One owner at a time: a second thread
  // receiving at once is reported where assertions are on (TANDEM_ASSERT), and where they are
  // off one that would block while another thread is blocked here gets std::logic_error.
  [[nodiscard]] Message receive() {
    if (mailbox_ == nullptr) {
      throw subscription_closed(
          "tandem::event_bus::subscription::receive: the subscription was moved from; it has "
          "no mailbox and nothing can arrive");
    }
    return mailbox_->box.pop();
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
    return mailbox_->box.pop_until(deadline);
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
  [[nodiscard]] std::size_t pending() const { return mailbox_ ? mailbox_->box.size() : 0; }

  // Messages this mailbox discarded because of its overflow policy (drop_oldest: evicted;
  // drop_newest: refused). Always 0 for unbounded or blocking mailboxes (and moved-from ones).
  [[nodiscard]] std::size_t dropped() const { return mailbox_ ? mailbox_->box.dropped() : 0; }

  // Leaves the topic now, like the destructor, but keeps the mailbox: nothing is delivered
  // after this returns (the topic may be erased), and messages queued before stay receivable;
  // once they are gone receive() throws tandem::subscription_closed. Idempotent.
  void unsubscribe() noexcept {
    if (!topic_) return;
    mailbox_->box.close();  // 1. no delivery from now on; blocked publishers give up
    TANDEM_SYNC_POINT();    //    closed, still in the topic's list
    // 2. publishes skip it, and the topic is released (erased if this was its last holder)
    topic_state::remove_and_release(topic_, mailbox_->list_entry);
  }

  // True while subscribed: false after unsubscribe() and for a moved-from subscription. (A
  // subscription whose bus was destroyed stays true but is closed.)
  explicit operator bool() const noexcept { return static_cast<bool>(topic_); }

 private:
  friend class event_bus;

  subscription(typename topic_map::handle topic, std::shared_ptr<subscription_box> box) noexcept
      : topic_(std::move(topic)), mailbox_(std::move(box)) {}

  typename topic_map::handle topic_;
  // The mailbox (mailbox_->box) with its own list entry and that entry's open flag.
  std::shared_ptr<subscription_box> mailbox_;
};

// One mailbox subscribed to any number of topics of one event_bus, as a Phoenix process is:
// `in.subscribe(topic)` adds a topic, `in.receive()` returns the next tandem::envelope (the
// message and its topic) from any of them. Made by bus.inbox(); movable, not copyable; one
// thread at a time uses it (subscribe, unsubscribe and receive from its owner). Destroying it
// (or assigning to it) leaves every topic and destroys what is still queued. See "Inboxes" in
// the header comment for the algorithm and the guarantees.
template <class Message, class Topic, class Hash, class KeyEqual>
requires bus_message<Message> && bus_topic<Topic> && bus_topic_hash<Hash, Topic> &&
    bus_topic_key_equal<KeyEqual, Topic>
class [[nodiscard]] inbox {
  using bus_type = event_bus<Message, Topic, Hash, KeyEqual>;
  using mailbox_type = typename bus_type::inbox_mailbox_type;
  using mailbox_ptr = typename bus_type::inbox_mailbox_ptr;
  using membership_type = typename bus_type::membership_type;
  using membership_ptr = typename bus_type::membership_ptr;
  using membership_owner = detail::membership_owner<Topic>;
  using topic_handle = typename bus_type::topic_map::handle;

 public:
  using message_type = Message;
  using topic_type = Topic;
  using envelope_type = envelope<Message, Topic>;

  // The moved-to inbox may be used on another thread: its mailbox forgets its receiving thread
  // until someone receives. The moved-from inbox has no mailbox and no topics (closed).
  inbox(inbox&& other) noexcept
      : bus_(std::exchange(other.bus_, nullptr)),
        core_(std::move(other.core_)),
        box_(std::move(other.box_)),
        memberships_(std::move(other.memberships_)),
        index_(std::move(other.index_)),
        next_sequence_(other.next_sequence_) {
    other.memberships_.clear();  // (already empty after a move; says so for the reader)
    other.index_.clear();
    if (box_ != nullptr) box_->forget_consumer();
  }
  // Takes over `other` first, then leaves this one's old topics (the source may be owned by
  // the old state, e.g. queued in the old mailbox; self-assignment keeps the inbox).
  inbox& operator=(inbox&& other) noexcept {
    inbox incoming(std::move(other));
    std::swap(bus_, incoming.bus_);
    std::swap(core_, incoming.core_);
    std::swap(box_, incoming.box_);
    std::swap(memberships_, incoming.memberships_);
    std::swap(index_, incoming.index_);
    std::swap(next_sequence_, incoming.next_sequence_);
    return *this;  // `incoming` now holds the old state: its destructor leaves
  }
  inbox(const inbox&) = delete;
  inbox& operator=(const inbox&) = delete;
  // Leaves every topic, then destroys the envelopes still queued. Allocates nothing and cannot
  // fail; calls no Hash or KeyEqual (it finds its topics by address).
  ~inbox() { leave_all(); }

  // Subscribes to `topic` (a Topic, a transparent key, or anything convertible to Topic, as
  // for event_bus::subscribe). Returns false, changing nothing, if already subscribed to it.
  // Strong guarantee: on std::bad_alloc, Hash's, KeyEqual's or Topic's exception, or
  // std::logic_error (a move-only Message and a topic that already has a subscriber), the
  // inbox is as it was and no topic is left behind. Throws tandem::subscription_closed when
  // the bus is gone or the inbox was moved from.
  template <class Q>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual> &&
      bus_type::template forwarded<Q>&& std::constructible_from<Topic, Q&&> bool
      subscribe(Q&& topic) {
    // A null const char* is refused first, whatever the inbox's state, as unsubscribe and
    // every other lookup refuse it (until 2026-12-04 a moved-from inbox threw
    // subscription_closed for it instead; rule 52).
    detail::check_not_null_c_string<Topic>(std::as_const(topic), "tandem::inbox", "topic");
    if (box_ == nullptr) {
      throw subscription_closed(
          "tandem::inbox::subscribe: the inbox was moved from; it has no mailbox");
    }
    // The bus stays alive until this call ends (~event_bus waits for it), or it is already
    // being destroyed and this throws.
    const bus_use using_bus(*core_);
    if (box_->is_closed()) throw_bus_gone();
    TANDEM_TEST_POINT("inbox subscribe: using the bus");
    // 1. The topic's entry, created if needed (strong: rc_map::try_emplace).
    typename bus_type::topic_state::snapshot no_list;  // an inbox joins through add() below
    std::size_t hash = 0;
    topic_handle entry = bus_->template topic_entry<Q>(topic, no_list, &hash).first;
    TANDEM_SYNC_POINT();  // the topic exists (maybe just created); we are not in its list yet
    // 2. Idempotent: an inbox has one membership per topic, found in the index by the topic's
    //    hash and then by its address (the same rc_map entry).
    const auto [same_hash, same_hash_end] = index_.equal_range(hash);
    for (auto it = same_hash; it != same_hash_end; ++it) {
      if (memberships_[it->second].topic == entry) return false;
    }
    // 3. Everything that can fail, before the commit: room for the record, the membership
    //    (one copy of the Topic, shared by every envelope of this topic), the index entry,
    //    the topic's list.
    if (memberships_.size() == memberships_.capacity()) {
      memberships_.reserve(std::max<std::size_t>(4, 2 * memberships_.capacity()));
    }
    detail::standing_releases<Topic>& deferred = *box_->deferred;
    membership_owner membership = membership_owner::make(entry.key(), deferred.free_slot());
    deferred.reserve(membership->batch_slot);
    const auto indexed = index_.emplace(hash, memberships_.size());
    try {
      // The commit point: publishes reach us from here.
      bus_type::topic_state::add(entry, {}, nullptr, box_, membership_ptr(membership));
    } catch (...) {
      index_.erase(indexed);
      throw;
    }
    // 4. noexcept: the room was reserved and the record's moves do not throw.
    deferred.add_user(*membership);
    deferred.adopt(*membership);
    if (memberships_.empty()) box_->clear_sourceless();  // something can arrive again
    memberships_.push_back(
        membership_record{std::move(entry), std::move(membership), hash, next_sequence_++});
    TANDEM_ASSERT(index_.size() == memberships_.size(), "inbox: the index lost count of topics");
    return true;
  }
  // A scalar Topic is taken by value, here and in unsubscribe (see event_bus::subscribe).
  bool subscribe(Topic topic) requires detail::by_value_sink<Topic> {
    return subscribe(detail::caller_converted<Topic>{topic});
  }

  // Leaves `topic`: nothing published to it arrives after this returns (envelopes of it
  // already queued stay receivable). Returns false if not subscribed to it. Allocates nothing
  // when `topic` is a Topic or a transparent key (the default string topics: any string-like
  // argument); an argument that must first be converted to a Topic (Hash or KeyEqual not
  // transparent) builds that Topic, which may allocate and may throw. Otherwise throws only what
  // Hash or KeyEqual throw (it hashes `topic` once, with a copy of the bus's Hash, and compares
  // it with the held topics of the same hash), and then changes nothing. Cost: one hash and
  // one index lookup, whatever the number of topics held (an inbox on 10,000 topics leaves
  // one as fast as an inbox on 10).
  template <class Q>
  requires bus_topic_argument<Q, Topic, Hash, KeyEqual> && bus_type::template forwarded<Q> bool
  unsubscribe(const Q& topic) {
    // A null const char* is refused first, as every other lookup refuses it, whether or not
    // anything is held (until 2026-12-04 an empty inbox returned false for it; rule 52).
    detail::check_not_null_c_string<Topic>(topic, "tandem::inbox", "topic");
    // Nothing held (also a moved-from inbox, whose core_ is gone: found by CI's UBSan run of
    // "a moved-from inbox is closed ...", 2026-12-03): nothing to hash or compare.
    if (memberships_.empty()) return false;
    auto&& key = bus_type::lookup_form(topic);
    const std::size_t hash =
        detail::topic_map_hash<Topic, Hash>::of(core_->hash, std::as_const(key));
    const auto [same_hash, same_hash_end] = index_.equal_range(hash);
    for (auto it = same_hash; it != same_hash_end; ++it) {
      if (std::invoke(core_->equal, std::as_const(key), memberships_[it->second].topic.key())) {
        leave(it->second);
        return true;
      }
    }
    return false;
  }
  bool unsubscribe(Topic topic) requires detail::by_value_sink<Topic> {
    return unsubscribe(detail::caller_converted<Topic>{topic});
  }

  // The topics subscribed to now, in the order they were subscribed (leaving a topic moves
  // the last held one into its place, so this sorts them by subscription: O(n log n)).
  [[nodiscard]] std::vector<Topic> topics() const {
    std::vector<const membership_record*> held;
    held.reserve(memberships_.size());
    for (const membership_record& record : memberships_) held.push_back(&record);
    std::sort(held.begin(), held.end(), [](const membership_record* a, const membership_record* b) {
      return a->sequence < b->sequence;
    });
    std::vector<Topic> out;
    out.reserve(held.size());
    for (const membership_record* record : held) out.push_back(record->topic.key());
    return out;
  }

  // The oldest queued envelope, or std::nullopt at once (also when closed or moved from).
  [[nodiscard]] std::optional<envelope_type> try_receive() {
    if (box_ == nullptr) return std::nullopt;
    return box_->try_pop();
  }

  // Hands each envelope queued when it is called to f(envelope&), oldest first, and returns
  // how many f was given; never blocks and does not wait for more (envelopes published
  // meanwhile may be included; fewer when drop_oldest evicts some meanwhile, even 0 while a
  // publisher is replacing the only envelope of a full drop_oldest inbox: the next call gets
  // it; nothing is lost). The bulk form of try_receive, after Boost.Lockfree's
  // spsc_queue::consume_all. The envelopes' topic
  // references are not dropped one atomic operation each: those of topics the inbox is
  // subscribed to are counted in its mailbox and dropped when it leaves the topic
  // (detail::standing_releases), the others once per topic at the end of the call
  // (detail::membership_release_batch). f may move the message out, or keep the
  // envelope by moving or copying it (the kept one holds its topic as any envelope does), and
  // may call this inbox (subscribe, unsubscribe, receive, consume_all) or even move-assign or
  // destroy it (the call then ends after that envelope: the old mailbox was closed and
  // emptied). If f throws, the envelope it was given is destroyed, the later ones stay queued,
  // and the exception propagates. 0 when moved from. Cost per call: one shared_ptr copy of the
  // mailbox; per envelope of a subscribed topic, a plain increment. Measured in
  // bench/event_bus_bench (inbox_backlog).
  template <class F>
  requires std::invocable<F&, envelope_type&> std::size_t consume_all(F&& f) {
    if (box_ == nullptr) return 0;
    // Declared first, released last; made at the first envelope standing_releases does not take.
    std::optional<detail::membership_release_batch<Topic>> batch;
    // f may move-assign or destroy this inbox (its mailbox with it): the call keeps its own
    // reference to the mailbox and touches nothing else of the inbox after the first f. (Its
    // teardown released and emptied its deferred releases, so later envelopes go to `batch`.)
    // f may also move-construct the inbox elsewhere (hand it to another thread): the mailbox
    // counts that handover, and from then on this call pops nothing more (consume_queued
    // stops) and leaves the deferred releases, now the new owner's, alone. A move is the only
    // hand-over f may make: a pointer or reference to the inbox given to another thread
    // inside f is not seen, and this call would go on receiving beside that thread.
    const mailbox_ptr box = box_;
    const std::uint32_t owner = box->handovers();
    auto consume = [&f, &batch, &box, owner, &deferred = *box->deferred](envelope_type& envelope) {
      std::invoke(f, envelope);
      auto& reference = detail::envelope_access::membership(envelope);
      if (box->handovers() != owner || !deferred.take(reference)) {
        if (!batch) batch.emplace();
        batch->take(reference);
      }
    };
    return box->consume_queued(consume);
  }

  // The oldest queued envelope; blocks (without spinning) until there is one. Throws
  // tandem::subscription_closed when nothing is queued and nothing can arrive: the inbox is
  // subscribed to no topic, or its bus was destroyed, or it was moved from. One owner at a
  // time: as subscription::receive (TANDEM_ASSERT, or std::logic_error where asserts are off).
  [[nodiscard]] envelope_type receive() {
    if (box_ == nullptr) {
      throw subscription_closed(
          "tandem::inbox::receive: the inbox was moved from; it has no mailbox and nothing can "
          "arrive");
    }
    if (memberships_.empty()) {
      // No topic: nothing can arrive (every membership was withdrawn under the mailbox lock),
      // so what is queued now is all there will be.
      if (std::optional<envelope_type> queued = box_->try_pop()) return std::move(*queued);
      throw subscription_closed(
          "tandem::inbox::receive: the inbox is subscribed to no topic and nothing is queued; "
          "nothing can arrive, so receive() would wait forever");
    }
    return box_->pop(
        "tandem::inbox::receive: nothing can arrive any more (the inbox's event_bus was "
        "destroyed, or the inbox left its last topic) and its queued envelopes have all been "
        "received, so receive() would wait forever");
  }

  // Like receive(), but std::nullopt after `timeout`, or at once when nothing can arrive
  // (no topic, bus destroyed, moved from). The deadline saturates (seconds::max() waits).
  template <class Rep, class Period>
  [[nodiscard]] std::optional<envelope_type> receive_for(
      const std::chrono::duration<Rep, Period>& timeout) {
    return receive_until(sync::deadline_after<std::chrono::steady_clock>(timeout));
  }

  // Like receive(), but std::nullopt once `deadline` (any clock) has passed, or at once when
  // nothing can arrive. time_point::max() waits until an envelope comes.
  template <class Clock, class Duration>
  [[nodiscard]] std::optional<envelope_type> receive_until(
      const std::chrono::time_point<Clock, Duration>& deadline) {
    if (box_ == nullptr) return std::nullopt;
    if (memberships_.empty()) return box_->try_pop();
    return box_->pop_until(deadline);
  }

  // Envelopes queued and not yet received (0 when moved from).
  [[nodiscard]] std::size_t pending() const { return box_ ? box_->size() : 0; }

  // Messages discarded by the overflow policy (drop_oldest: evicted; drop_newest: refused).
  [[nodiscard]] std::size_t dropped() const { return box_ ? box_->dropped() : 0; }

 private:
  friend bus_type;

  // What the inbox holds per topic: the topic (keeps it alive) and the membership.
  struct membership_record {
    topic_handle topic;
    membership_owner membership;  // ends after the withdrawal (leave) or the close (leave_all)
    std::size_t hash;             // the topic map's hash of the topic (its key in index_)
    std::uint64_t sequence;       // subscription order, for topics()
  };
  static_assert(std::is_nothrow_move_constructible_v<membership_record> &&
                std::is_nothrow_move_assignable_v<membership_record>);
  // memberships_' positions by topic hash (the topic map's hash, already spread: std::hash of
  // a std::size_t is the identity in the standard libraries tandem supports, and it never
  // throws). Erasing and moving its entries allocates nothing and cannot throw, so leave()
  // stays noexcept.
  using membership_index = std::unordered_multimap<std::size_t, std::size_t>;
  static_assert(std::is_nothrow_move_constructible_v<membership_index> &&
                std::is_nothrow_move_assignable_v<membership_index>);

  // The index entry of position `position`, whose topic hash is `hash`.
  [[nodiscard]] typename membership_index::iterator index_entry(std::size_t hash,
                                                                std::size_t position) noexcept {
    auto [it, end] = index_.equal_range(hash);
    while (it != end && it->second != position) ++it;
    TANDEM_ASSERT_FATAL(it != end, "inbox: a held topic is missing from its index");
    return it;
  }

  inbox(bus_type& bus, std::shared_ptr<typename bus_type::shared_core> core,
        mailbox_ptr box) noexcept
      : bus_(&bus), core_(std::move(core)), box_(std::move(box)) {}

  // Leaves one topic, allocating nothing: (1) withdraw the membership under the mailbox lock
  // -- no push of this topic commits after that, and publishers parked for room re-check and
  // give up; (2) mark the entry left in the topic's list; (3) drop the record, releasing the
  // topic handle (may erase the topic). Envelopes of the topic already queued stay.
  void leave(std::size_t index) noexcept {
    membership_type& membership = *memberships_[index].membership;
    detail::standing_releases<Topic>& deferred = *box_->deferred;
    // The last topic: nothing can arrive once it is withdrawn, so the mailbox becomes
    // sourceless in the same critical section. A receive() blocked on another thread (an inbox
    // has one owner, but a hang is no answer to that mistake) wakes and throws once the queue
    // is empty, as one that starts now does.
    const bool last = memberships_.size() == 1;
    box_->change_admission([&membership]() noexcept { membership.withdrawn = true; }, last);
    TANDEM_SYNC_POINT();  // withdrawn, still in the topic's list
    bus_type::topic_state::remove(memberships_[index].topic, membership.list_entry);
    TANDEM_SYNC_POINT();  // left the list, still holding the topic
    // Before the membership_owner folds its count.
    const bool held_slot = deferred.release(membership);
    // Another membership on the same slot (past 64 topics), which takes the slot over below.
    membership_type* const slot_heir = deferred.remove_user(membership);
    // Drop the record: the last one moves into its place (positions in index_ follow).
    index_.erase(index_entry(memberships_[index].hash, index));
    const std::size_t back = memberships_.size() - 1;
    if (index != back) index_entry(memberships_[back].hash, back)->second = index;
    {
      const membership_record left = std::move(memberships_[index]);  // released at the brace
      if (index != back) memberships_[index] = std::move(memberships_[back]);
      memberships_.pop_back();
    }
    TANDEM_ASSERT(index_.size() == memberships_.size(), "inbox: the index lost count of topics");
    // A membership sharing the left one's slot (past 64 topics) takes the slot over.
    if (held_slot && slot_heir != nullptr) deferred.adopt(*slot_heir);
  }

  // The destructor's (and move-assignment's) teardown: (1) close the mailbox -- nothing
  // arrives from now on, parked publishers give up; (2) leave every topic's list; (3) leave
  // the bus's roster; (4) release the topics (may erase them); (5) destroy what is queued.
  // Allocates nothing, calls no Hash or KeyEqual.
  void leave_all() noexcept {
    if (box_ == nullptr) return;
    box_->close();
    TANDEM_SYNC_POINT();  // closed, still in the topics' lists
    for (const membership_record& held : memberships_)
      bus_type::topic_state::remove(held.topic, held.membership->list_entry);
    core_->inbox_roster.withdraw(*box_);
    box_->deferred->release_all();  // before the membership_owners fold their counts
    memberships_.clear();
    index_.clear();
    box_->discard_queued();
  }

  [[noreturn]] static void throw_bus_gone() {
    throw subscription_closed(
        "tandem::inbox::subscribe: the inbox's event_bus was destroyed; there is no topic to "
        "subscribe to");
  }

  // subscribe()'s use of the bus: counted in the shared core, so that ~event_bus waits for
  // it; refused (subscription_closed) once ~event_bus has begun. Also recorded on this
  // thread, so that ~event_bus run from inside it reports that instead of waiting for ever.
  class bus_use {
   public:
    explicit bus_use(typename bus_type::shared_core& core) : core_(core), frame_{&core, nullptr} {
      // seq_cst increment then load: against ~event_bus's store then load (see there).
      core_.subscribes_in_progress.fetch_add(1, std::memory_order_seq_cst);
      if (core_.bus_destroyed.load(std::memory_order_seq_cst) != 0) {
        end();
        throw_bus_gone();
      }
      frame_.outer = detail::inbox_subscribes;
      detail::inbox_subscribes = &frame_;
    }
    bus_use(const bus_use&) = delete;
    bus_use& operator=(const bus_use&) = delete;
    ~bus_use() {
      detail::inbox_subscribes = frame_.outer;
      end();
    }

   private:
    void end() noexcept {
      // seq_cst decrement then flag load, against ~event_bus's flag store then count load:
      // it sees 0 or we see the flag and wake it (the decrement's release half orders this
      // subscribe's use of the bus before its acquire load). The inbox holds the core.
      if (core_.subscribes_in_progress.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
          core_.bus_destroyed.load(std::memory_order_seq_cst) != 0) {
        sync::atomic_notify_all(core_.subscribes_in_progress);
      }
    }
    typename bus_type::shared_core& core_;
    detail::bus_use_frame frame_;
  };

  bus_type* bus_ = nullptr;  // used only inside a bus_use (~event_bus waits for those)
  std::shared_ptr<typename bus_type::shared_core> core_;
  mailbox_ptr box_;
  std::vector<membership_record> memberships_;  // in no order (see topics())
  membership_index index_;
  std::uint64_t next_sequence_ = 0;
};

}  // namespace tandem
