// tandem/detail/mailbox.hpp -- the queue behind one event_bus subscription or inbox.
//
// What it is: a multi-producer, single-consumer FIFO of items with an optional capacity and
// an overflow policy. Publishers push into it (any number of threads at once); the one thread
// that currently owns the subscription pops from it. Users never name it: they see it through
// tandem::event_bus<...>::subscription (items are the messages) and tandem::inbox (items are
// tandem::envelope: a message and its topic).
//
// Pushes take a *source* the item is built from at the commit point (the message itself for a
// subscription; for an inbox, the message and the topic's membership record): the message is
// moved out of the publisher's hands only once the push cannot fail any more. A source may
// also say it is no longer admitted (an inbox that left the topic): that is checked under the
// lock, next to "closed", so a membership withdrawn under the lock (change_admission) lets no
// later push of that topic commit.
//
// The algorithm, step by step:
//  1. Messages sit in a message_queue (below): linked segments of 4 to 32 slots. Producers push
//     under one sync::small_mutex, which also guards the drop counter, the "closed" flag and
//     who is parked. Critical sections move one message in (or out), so the lock is held for
//     tens of nanoseconds; no user code runs under it except Message's (required noexcept)
//     move constructor, or its copy constructor where that is noexcept (event_bus's fan-out
//     copies such a message straight into the slot), and it allocates only a new segment when the
//     receiver has none to hand back (the one it finished last is reused: a flowing queue allocates
//     nothing). Layout (issue 17): the consumer's queue fields (head segment, head count, the tail
//     count it read last) sit a cache line (sync::cache_line_size bytes of padding) away from the
//     producers' queue fields (tail segment, tail count, the head count they read last) and from
//     the read-only ones (capacity, policy), so that pops and pushes on different cores do not
//     write each other's line; each side re-reads the other's count only when its cached copy
//     (a lower bound, since both counts only grow) runs out: the consumer once per batch of
//     queued messages, a producer of a bounded mailbox only when its cached count says full,
//     a producer of an unbounded one never. The lock and the state it guards sit another line
//     further (issue 14): a consumer that has caught up re-reads the tail count while it waits
//     (step 5), and with the lock on that line every push paid for it twice more -- the lock's
//     compare-exchange and the unlock's exchange each fetched the line back from the consumer's
//     core (an inbox on 64 topics fed by one publisher: 3.6 -> 5.0 M messages/s).
//  2. push(m): if closed (or the source is no longer admitted), refuse. If the queue holds
//  `capacity` messages, apply the policy:
//     drop_newest refuses m and counts it dropped; block parks the publisher (step 5) and
//     retries -- unless the publisher is this mailbox's own consumer (step 7), which gets
//     `own_mailbox_full` instead of a wait that could never end; drop_oldest goes on. Decide,
//     then commit: the one step that can fail, reserving the queue slot (a new segment every
//     few dozen messages), comes first and changes nothing if it throws; the commit point is
//     the eviction (drop_oldest takes out the oldest message, destroyed after the lock is
//     released, and counts it dropped) followed by moving m in, all noexcept. So a push that
//     throws leaves the mailbox exactly as it was: no message evicted, nothing counted. If the
//     consumer is parked, the "consumer parked" flag is cleared and, after the lock is
//     released, one wake-up token is released.
//  3. pop, lock-free mode (unbounded and drop_newest mailboxes, where no producer ever pops
//     and none waits for room): the consumer reads the published tail count and moves the
//     oldest message out without taking the lock -- one acquire load and one release store.
//  4. pop, locked mode (drop_oldest: a producer may evict; block: a producer may wait for
//     room): as in 3 but under the lock; if publishers are parked, their count is cleared and,
//     after the lock is released, they are all woken (a broadcast: the room generation moves
//     on, and each parked publisher re-checks under the lock; see wake_tokens).
//  5. Parking. pop() on a queue it knows to be non-empty pops at once (step 3, moving the
//     message straight into its result). Otherwise it first watches the queue for a moment
//     (a bounded spin: 120 CPU pauses in doubling rounds of 8 to 64, a few microseconds, reads
//     only; never unbounded), so that a message arriving just after the queue ran dry costs neither
//     side a sleep or a system call (pop_until and try_pop do not spin). The consumer that finds
//     the queue empty takes the lock, checks again, and sets "consumer parked" in the same critical
//     section, then blocks on the wake_tokens -- never spinning. The parked flag and
//     parked-publisher count are only read and written under the lock, and a push publishes its
//     message under the lock too, so "check, then park" and "push, then see who is parked" are
//     ordered by the lock: no wake-up can be lost, and a token is released only when somebody is
//     actually parked (the common path makes no system call). A timed pop that times out re-takes
//     the lock: if the flag is still set, no publisher saw it and the pop returns empty; otherwise
//     a publisher has committed to a release, which is taken (it is at most a few instructions
//     away) and the pop retries.
//  6. close(): refuse every later push, wake every parked publisher (their publish then
//     reports this mailbox as not reached) and a parked consumer. Messages already queued
//     stay receivable until discard_queued() (the owner's destructor) destroys them: a closed
//     mailbox may stay referenced by a topic's subscriber list until that list is next rebuilt,
//     and must not keep the messages alive that long. Once closed and empty, pop() throws
//     tandem::subscription_closed (a std::logic_error: nothing can ever arrive, so waiting would be
//     a silent hang) and try_pop / pop_until return std::nullopt at once.
//  7. The consumer's thread: in locked mode the mailbox records every thread that pops (a
//     store under the lock the pop takes anyway); forget_consumer() clears it when the
//     subscription is moved (it may be on its way to another thread). A `block` push that
//     finds the mailbox full on the thread that alone has popped since the last move returns
//     `own_mailbox_full`: the only thread known to make room is the one that would wait. Once
//     a second thread pops (a worker receiving by reference, threads taking turns), no thread
//     is known to be the only one (until 2026-12-05 the last one was taken for it, and the
//     turn-taker that popped last was refused while the other was about to pop: a fault hunt),
//     and a full push waits. Until a thread has popped (and after a move) the consumer is not
//     known, and such a push waits -- unless the process has never
//     started a second thread, when it returns `full_with_no_other_thread`. The subscribing
//     thread is not taken for the consumer: a thread that subscribes and then starts a worker
//     receiving on the subscription by reference is a correct program, and until 2026-12-05
//     its publish threw whenever it filled the mailbox before the worker's first receive
//     (found by review: 200 runs of 200; rule 72).
//
// Deadlines: pop_until accepts a deadline of any clock and unit and waits for
// sync::steady_deadline(deadline), which saturates instead of overflowing: a deadline too far
// away to represent means "wait until a message comes" (sync/backoff.hpp).
//
// Guarantees: FIFO per producer (and in lock order across producers); a message is accepted
// or refused exactly once; every drop is counted; a blocked publisher returns as soon as there
// is room or the mailbox is closed. Every operation is strong: push either commits entirely or
// throws (std::bad_alloc) having changed nothing; pops move a message out with noexcept moves
// only, so a message is never lost half-way. A wait that must sleep (pop, pop_until, a blocked
// push) builds the mailbox's wake_tokens first and may throw std::system_error from
// std::condition_variable's constructor where the C++ library's can fail (never with libstdc++
// or libc++), having changed nothing. Not thread-safe on the consumer side: one thread at a
// time may pop (event_bus::subscription is a single-owner object).
//
// Costs: segments of about 1 KiB (4 to 32 messages); a mailbox holds none before its first
// message, then at least one, and at most two more than its messages need (one reserved by a
// publisher, one finished by the receiver and kept for reuse). The mailbox object itself is about 3
// * sync::cache_line_size bytes larger than its fields need (the three paddings, 384 bytes on
// x86-64). A push costs one uncontended CAS and one release store (the lock: small_mutex's
// unlock is no read-modify-write); a lock-free pop one acquire load and one release store; a
// locked pop adds the lock. Each mailbox also holds a wake_tokens (a std::mutex and a
// std::condition_variable, touched only by threads that actually sleep).
//
// Two kinds of wake-up. The one consumer waits for a counted token (one per push that found it
// parked). Publishers waiting for room wait for a broadcast instead: a publisher parks with the
// room generation it read under the mailbox lock, and every release (a pop, close(), a change
// of admission) moves the generation on, so each publisher parked before a release sees it.
// Until 2026-12-02 they took counted tokens too: a publisher that woke, found the mailbox still
// full and parked again could take the token of another parked publisher, and an inbox leaving
// a topic then left that topic's blocked publisher asleep until the next pop
// (docs/reliability.md rule 45).
//
// Memory ordering: the state named in step 1 is guarded by lock_ (small_mutex: lock()
// acquires, unlock() releases). The queue's counters pair as described at message_queue:
// the producer's release store of the tail count (P) with the consumer's acquire load (C), and
// the consumer's release store of the head count (H) with the producers' acquire load. The
// wake_tokens carry their own (mutex) ordering; what they announce is re-checked under lock_.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "../sync/assert.hpp"
#include "../sync/backoff.hpp"
#include "../sync/cache_padded.hpp"
#include "../sync/striped_lock.hpp"
#include "../sync/sync_point.hpp"
#include "../sync/thread_serial.hpp"

namespace tandem {

// What a bounded mailbox does with a message that arrives while it is full.
enum class overflow_policy {
  drop_oldest,  // the oldest queued message is discarded to make room; the new one is accepted
  drop_newest,  // the new message is refused (the publisher's count does not include it)
  block,        // the publisher waits until the subscriber makes room (or unsubscribes)
};

// Capacity value meaning "no limit": the mailbox grows as needed (the policy never applies).
inline constexpr std::size_t unbounded_capacity = std::numeric_limits<std::size_t>::max();

// Thrown by event_bus<...>::subscription::receive() when nothing can ever arrive: the
// subscription has unsubscribed (or its bus was destroyed) and every message queued before
// has been received, or the subscription was moved from. A std::logic_error: waiting would
// be a silent hang. (try_receive and receive_for/receive_until return std::nullopt instead.)
//
// (A class template behind an alias only so that a header-only library emits its vtable
// without clang's -Wweak-vtables: an implicitly instantiated template's vtable is weak by
// design. Catch it as tandem::subscription_closed or std::logic_error.)
template <class Tag = void>
class TANDEM_PROCESS_WIDE basic_subscription_closed : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};
using subscription_closed = basic_subscription_closed<>;

namespace detail {

// How a popped item leaves its queue slot: the item the pop returns is built from take(slot),
// then finish(slot) ends what is left in the slot. By default a move and the moved-from item's
// destructor. An item type may say otherwise so that popping does not write the slot (a
// moved-from envelope's reference would be nulled, and the slot's cache line, which the
// publisher writes next, would then have to come back from the receiver's core modified):
// event_bus.hpp does for tandem::envelope.
template <class T>
struct queue_slot_exit {
  static T&& take(T& slot) noexcept { return std::move(slot); }
  static void finish(T& slot) noexcept { std::destroy_at(std::addressof(slot)); }
};

// A FIFO of T in linked fixed-size segments, with one consumer that may pop WITHOUT a lock.
//
//  - Producers push while holding the mailbox lock (so there is one producer at a time):
//    reserve_back() first allocates the segment the next message needs, if any (the only step
//    that can throw), and returns the tail count it read; then push_back() (noexcept), given
//    that reservation, constructs the message in the tail segment, linking the reserved segment
//    when the tail one is full, and publishes it with tail_.store(release) (P).
//  - The consumer reads tail_ with acquire (C), which pairs with (P): the message, and the
//    `next` link of a segment it is about to enter, are visible. It moves the message out and
//    publishes head_ with release (H). It frees a segment once it has moved past it; no
//    producer touches a segment again after linking its successor.
//  - Producers read head_ with acquire (pairs with (H)) only to compute the size for the
//    capacity check. In the mailbox's "locked" mode (drop_oldest, block) the consumer pops
//    under the lock too, so a producer may pop (evict) as well.
// T must be nothrow move constructible, so popping cannot lose an element.
template <class T>
class message_queue {
  static_assert(std::is_nothrow_move_constructible_v<T>);
  static_assert(
      std::is_nothrow_constructible_v<T, decltype(queue_slot_exit<T>::take(std::declval<T&>()))>);
  // About 1 KiB of messages per segment, 4 to 32 of them: one allocation per that many pushes,
  // little memory held by an idle subscription (its last segment stays until destruction).
  static constexpr std::uint64_t segment_slots =
      std::bit_floor(std::clamp<std::uint64_t>(1024 / sizeof(T), 4, 32));

  struct segment {
    union slot {
      slot() noexcept {}
      ~slot() {}
      T value;
    };
    segment* next = nullptr;  // written before the tail_ release (P) that first needs it
    slot slots[segment_slots];
  };

 public:
  message_queue() = default;
  message_queue(const message_queue&) = delete;
  message_queue& operator=(const message_queue&) = delete;
  ~message_queue() {
    // relaxed: the owner destroys the queue after every other thread is done with it.
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    while (head_.load(std::memory_order_relaxed) != tail) static_cast<void>(pop_front());
    while (head_segment_ != nullptr) delete std::exchange(head_segment_, head_segment_->next);
    delete spare_;
    delete recycled_.load(std::memory_order_relaxed);
  }

  // Messages queued. From a producer under the lock or the consumer: exact; from elsewhere a
  // snapshot. (acquire: pairs with (P) and (H).)
  [[nodiscard]] std::uint64_t size() const noexcept {
    const std::uint64_t head = head_.load(std::memory_order_acquire);
    return tail_.load(std::memory_order_acquire) - head;
  }
  // For the consumer only (it caches the tail count it last read: the producers' line is read
  // again only once the messages known to be queued are all popped).
  [[nodiscard]] bool empty() noexcept {
    // relaxed head: only the popping side writes it (a producer evicting in locked mode holds
    // the lock, and so does the consumer there).
    return !queued_from(head_.load(std::memory_order_relaxed));
  }

  // Consumer: the oldest message into `out` (empty), if one is queued; false if none. empty()
  // then pop_front_into() in one, reading the head count once instead of twice.
  bool try_pop_front_into(std::optional<T>& out) noexcept {
    // relaxed: as in empty().
    const std::uint64_t position = head_.load(std::memory_order_relaxed);
    if (!queued_from(position)) return false;
    pop_front_into(out, position);
    return true;
  }

  // Producer, under the mailbox lock: true if at least `count` messages are queued. Reads the
  // consumer's head count only when the one it read last says so (it is a lower bound, so a
  // "no" from it is exact): an unhurried producer leaves the consumer's line alone.
  [[nodiscard]] bool holds_at_least(std::uint64_t count) noexcept {
    // relaxed: only producers write tail_, and they hold the lock.
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - seen_head_ < count) return false;
    // acquire: pairs with (H).
    seen_head_ = head_.load(std::memory_order_acquire);
    return tail - seen_head_ >= count;
  }

  // What reserve_back() hands to the push_back() that commits it, under the same hold of the
  // mailbox lock: the tail count the message will take. Read once per push (issue 17's fan-out:
  // reserve_back and push_back each loaded tail_ and each worked out the segment boundary).
  struct back_reservation {
    std::uint64_t position;
  };

  // Producer, under the mailbox lock: makes sure the next push_back allocates nothing. May
  // throw std::bad_alloc; the queue's contents are unchanged either way (a reserved segment
  // is kept for the next push).
  // The boundary test is one compare: the message at a multiple of segment_slots starts a new
  // segment, and that includes the very first (position 0), because tail_segment_ is null
  // exactly until then -- so "no tail segment yet" needs no test of its own.
  [[nodiscard]] back_reservation reserve_back() {
    // relaxed: only producers write tail_, and they hold the lock.
    const std::uint64_t position = tail_.load(std::memory_order_relaxed);
    if (position % segment_slots == 0 && spare_ == nullptr) spare_ = take_recycled_or_new();
    return back_reservation{position};
  }

  // Producer, under the same hold of the mailbox lock as the reserve_back() that returned
  // `reserved` (nothing pushes in between; an eviction pops, which leaves tail_ alone): cannot
  // fail. Builds the element from `source` in place (T(std::move(source)), which must not
  // throw).
  template <class Source>
  void push_back(back_reservation reserved, Source&& source) noexcept {
    static_assert(std::is_nothrow_constructible_v<T, Source&&>);
    const std::uint64_t position = reserved.position;
    // relaxed: only producers write tail_, and they hold the lock.
    TANDEM_ASSERT(position == tail_.load(std::memory_order_relaxed),
                  "message_queue::push_back with a reservation of another push");
    const std::uint64_t index = position % segment_slots;
    if (index == 0) {
      TANDEM_ASSERT_FATAL(spare_ != nullptr, "message_queue::push_back without reserve_back");
      segment* fresh = std::exchange(spare_, nullptr);
      if (tail_segment_ == nullptr) {
        // The first push: the consumer reads head_segment_ only after (C) sees this message.
        head_segment_ = fresh;
      } else {
        tail_segment_->next = fresh;
      }
      tail_segment_ = fresh;
    }
    std::construct_at(std::addressof(tail_segment_->slots[index].value),
                      std::forward<Source>(source));
    // (P) release: publishes the message (and the new segment link) to (C).
    tail_.store(position + 1, std::memory_order_release);
  }

  // Consumer (or a producer under the lock in locked mode). Precondition: !empty().
  T pop_front() noexcept {
    // relaxed: only the popping side writes head_.
    const std::uint64_t position = head_.load(std::memory_order_relaxed);
    T* slot = front_slot(position);
    T value(queue_slot_exit<T>::take(*slot));
    finish_pop(slot, position);
    return value;
  }
  // The same into `out` (empty): the item is moved once, straight from its slot (an item with
  // a costly move, such as an envelope with a std::string topic, feels every extra move).
  // `out` is rebuilt in place rather than emplace()d: emplace first destroys an engaged value,
  // and where g++ 12 -O3 cannot prove `out` empty it then warns that the payload of an empty
  // optional "may be used uninitialized" (a false positive; docs/reliability.md rule 18). An
  // empty optional's destructor does nothing, so building a new one over it is exact.
  void pop_front_into(std::optional<T>& out) noexcept {
    // relaxed: only the popping side writes head_.
    pop_front_into(out, head_.load(std::memory_order_relaxed));
  }

  // Consumer: the oldest message, or std::nullopt if none is queued. A prvalue on both paths,
  // so the caller's optional is built in place from the slot, with no empty one built first.
  std::optional<T> try_pop_front() noexcept {
    // relaxed: as in empty().
    const std::uint64_t position = head_.load(std::memory_order_relaxed);
    if (!queued_from(position)) return std::nullopt;
    T* slot = front_slot(position);
    // Ends the pop (finish_pop: the slot's destruction, then (H)) once the result is built: a
    // local's destructor runs after the returned object is initialized ([stmt.return]), so
    // no producer can count the slot free before the message has been moved out of it.
    const pop_finisher finish{*this, slot, position};
    return std::optional<T>(std::in_place, queue_slot_exit<T>::take(*slot));
  }

 private:
  // Whether a message is queued at head count `head` (the popping side's, read by the caller).
  // seen_tail_ is a tail count read earlier, so a lower bound: head < seen_tail_ proves a
  // message is queued (and visible: it was published by the release that the earlier acquire
  // read); only when it runs out is the producers' line read again.
  [[nodiscard]] bool queued_from(std::uint64_t head) noexcept {
    if (head < seen_tail_) return true;
    // (C) acquire: pairs with (P).
    seen_tail_ = tail_.load(std::memory_order_acquire);
    return head < seen_tail_;
  }

  // try_pop_front's last step, run by its destructor (see there).
  struct pop_finisher {
    message_queue& queue;
    T* slot;
    std::uint64_t position;
    ~pop_finisher() { queue.finish_pop(slot, position); }
  };

  // pop_front_into with the head count `position` the caller read.
  void pop_front_into(std::optional<T>& out, std::uint64_t position) noexcept {
    TANDEM_ASSERT(!out.has_value(), "message_queue::pop_front_into into an engaged optional");
    T* slot = front_slot(position);
    std::construct_at(&out, std::in_place, queue_slot_exit<T>::take(*slot));
    finish_pop(slot, position);
  }

  // pop_front's steps: the slot of the oldest message (entering the next segment if needed),
  // then, once the message is moved out, its destruction and the head count's publication.
  // Both take the head count the caller read once (head_, which only the popping side writes):
  // an atomic load is not merged by the compiler, and each pop loaded it three times.
  T* front_slot(std::uint64_t position) noexcept {
    const std::uint64_t index = position % segment_slots;
    // Nested, so that the common pop tests one condition: clang 14 tested `position != 0`
    // first on every pop.
    if (TANDEM_UNLIKELY(index == 0)) {
      if (position != 0) {
        // Moved past the head segment: its successor exists (message `position` is in it).
        recycle(std::exchange(head_segment_, head_segment_->next));
      }
    }
    return std::addressof(head_segment_->slots[index].value);
  }

  // Segment reuse: a queue that keeps flowing allocates nothing. The popping side parks the
  // segment it has moved past in recycled_ when that is empty (else frees it), and
  // reserve_back() takes it from there before allocating. Only the popping side makes
  // recycled_ non-null and only a producer (holding the mailbox lock: one at a time) makes it
  // null again, so each side's plain load stays true until its own store: no read-modify-write.
  // In locked mode both sides hold the lock anyway.
  // Out of line, as the delete it replaced: once per segment_slots pops.
  TANDEM_NOINLINE void recycle(segment* used) noexcept {
    // relaxed: null is only ever stored by a producer, and a null read here stays null until
    // our store (only we store non-null).
    if (recycled_.load(std::memory_order_relaxed) == nullptr) {
      // release: our reads of the segment's slots (the messages moved out) happen-before the
      // producer's writes into it once it takes it (acquire, below).
      recycled_.store(used, std::memory_order_release);
    } else {
      delete used;
    }
  }
  TANDEM_NOINLINE segment* take_recycled_or_new() {
    // acquire: pairs with recycle()'s release store.
    segment* reused = recycled_.load(std::memory_order_acquire);
    if (reused == nullptr) return new segment;
    // relaxed: only the popping side stores a segment, and only while this reads null.
    recycled_.store(nullptr, std::memory_order_relaxed);
    reused->next = nullptr;
    return reused;
  }
  void finish_pop(T* slot, std::uint64_t position) noexcept {
    queue_slot_exit<T>::finish(*slot);
    // (H) release: the slot is done with before a producer counts it free.
    head_.store(position + 1, std::memory_order_release);
  }

  // The popping side's fields, then the producers', a cache line apart (sync::cache_line_size
  // bytes of padding, so no alignment beyond the default is needed): the consumer's pops and
  // the producers' pushes write different lines, and each side reads the other's only when its
  // cached count (seen_tail_, seen_head_) runs out.
  segment* head_segment_ = nullptr;     // the popping side's (set by the first push)
  std::atomic<std::uint64_t> head_{0};  // messages popped
  std::uint64_t seen_tail_ = 0;         // the consumer's: a tail_ value it read (a lower bound)
  // Never read, so never written: an initializer here would zero these bytes (a 128-byte
  // `rep stos`) on every construction (docs/reliability.md rule 25).
  [[maybe_unused]] char popping_side_padding_[sync::cache_line_size];
  segment* tail_segment_ = nullptr;  // producers' (under the mailbox lock)
  segment* spare_ = nullptr;         // producers': reserved by reserve_back()
  // A segment the popping side has finished with, for the next reserve_back() (recycle()). On
  // the producers' line: they read it once per segment, the popping side writes it as often.
  std::atomic<segment*> recycled_{nullptr};
  std::atomic<std::uint64_t> tail_{0};  // messages pushed
  std::uint64_t seen_head_ = 0;         // producers' (under the lock): a head_ value read
};

// Where a thread sleeps when it must wait (the consumer for a message: a counting semaphore;
// publishers for room: a generation count, a broadcast), on std::mutex +
// std::condition_variable. Not
// std::counting_semaphore: libstdc++ 12's (built on atomic::wait) lost wake-ups in our ASan
// runs -- a receiver slept forever with its token released -- while the pthread-based
// condition variable is well proven. Only threads that really sleep pay for it; the
// paths that do not wait never touch it.
class wake_tokens {
 public:
  // Two kinds of sleeper share one mutex and condition variable (constructing and destroying
  // them is most of what an idle mailbox costs): the consumer waiting for a message and
  // publishers waiting for room. A release wakes all sleepers; each re-checks its own condition.
  enum kind : std::size_t { message_ready = 0 };

  // noexcept: it runs after a push or pop has committed, which must not be followed by a
  // throw (a std::mutex that fails to lock is unrecoverable: std::terminate).
  void release(kind k) noexcept {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      ++tokens_[k];
    }
    wakeup_.notify_all();
  }

  void acquire(kind k) {
    std::unique_lock<std::mutex> guard(mutex_);
    wakeup_.wait(guard, [&] { return tokens_[k] != 0; });
    --tokens_[k];
  }

  // False if no token arrived by `deadline`. Only steady_clock nanoseconds: the caller
  // converts its deadline with sync::steady_deadline (saturating), so the condition variable
  // never converts (and overflows) it again.
  bool try_acquire_until(kind k, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> guard(mutex_);
    if (!wakeup_.wait_until(guard, deadline, [&] { return tokens_[k] != 0; })) return false;
    --tokens_[k];
    return true;
  }

  // Publishers. A publisher about to park reads the room generation while it holds the
  // mailbox lock, so before any release that will count it (a release clears the parked count
  // under that lock, then moves the generation on), then waits until the generation has moved
  // on: a broadcast, so no parked publisher can use up another's wake-up.
  [[nodiscard]] std::uint64_t room_generation() const noexcept {
    // relaxed: an older value only makes the wait below return at once (the caller re-checks
    // under the mailbox lock); a newer one than the releases that count this publisher cannot
    // be read, because the read happens before them (the mailbox lock orders it first).
    return room_generation_.load(std::memory_order_relaxed);
  }
  void release_room() noexcept {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      // relaxed: written under mutex_, which the waiters' re-check holds too.
      room_generation_.store(room_generation_.load(std::memory_order_relaxed) + 1,
                             std::memory_order_relaxed);
    }
    wakeup_.notify_all();
  }
  void wait_room(std::uint64_t seen) {
    std::unique_lock<std::mutex> guard(mutex_);
    wakeup_.wait(guard, [&] { return room_generation_.load(std::memory_order_relaxed) != seen; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable wakeup_;
  std::array<std::size_t, 1> tokens_{};  // guarded by mutex_
  // Room releases so far: written under mutex_; read under it by waiters, without it (atomic)
  // by a publisher about to park.
  std::atomic<std::uint64_t> room_generation_{0};
};

// A mailbox's wake_tokens, built by the first thread that is about to sleep on it (issue 17's
// churn row: constructing and destroying a std::condition_variable on every subscribe and
// unsubscribe cost about 30 instructions and, in glibc's pthread_cond_destroy, a locked
// instruction, for the many subscriptions that are never waited on). Built under the mailbox
// lock, before the builder announces that it sleeps (consumer_parked_, parked_publishers_);
// every other use follows such an announcement read under the same lock (a wake-up that found
// somebody parked, a parked thread's own wait), so it is ordered after the construction. Read
// and destroyed like a member: ~mailbox destroys it if it was built.
class lazy_wake_tokens {
 public:
  lazy_wake_tokens() noexcept {}  // NOLINT(modernize-use-equals-default): the union stays empty
  // In a child made by fork() (rule 46) the tokens are left undestroyed: a parent thread asleep
  // on the condition variable at the fork is one of its recorded waiters, the child does not
  // have that thread, and glibc's pthread_cond_destroy waits for every recorded waiter to leave
  // -- the child hung for ever destroying a subscription (at exit, or leaving a scope) whose
  // receiver had been blocked in the parent (found by a fault hunt, 2026-12-05; documented as
  // not fixable until then). A std::mutex and a std::condition_variable own no resource beyond
  // their bytes, so nothing leaks. getpid() runs only for tokens some thread built to sleep on.
  ~lazy_wake_tokens() {
    if (built_ && built_in_process_ == detail::process_id()) {
      std::destroy_at(std::addressof(tokens_));
    }
  }
  lazy_wake_tokens(const lazy_wake_tokens&) = delete;
  lazy_wake_tokens& operator=(const lazy_wake_tokens&) = delete;

  // Under the mailbox lock, before announcing a sleep. std::condition_variable's constructor
  // may throw std::system_error where the library's may fail (not with libstdc++ or libc++); then
  // nothing is announced and the caller's wait throws it.
  wake_tokens& build_locked() {
    if (!built_) {
      std::construct_at(std::addressof(tokens_));
      built_in_process_ = detail::process_id();
      built_ = true;
    }
    return tokens_;
  }

  // After an announcement (read under the mailbox lock) that somebody sleeps.
  wake_tokens& built() noexcept {
    TANDEM_ASSERT(built_, "mailbox wake-up used before any thread announced a sleep");
    return tokens_;
  }

 private:
  union {
    wake_tokens tokens_;  // alive while built_
  };
  bool built_ = false;                 // written under the mailbox lock, once
  std::int64_t built_in_process_ = 0;  // detail::process_id() at the build; with built_
};

// What a push source may provide: `admitted()`, checked under the mailbox lock (false: the
// push is refused, as if the mailbox were closed). Sources without it are always admitted.
// Opt-in by the admission_checked_source tag: a user's Message is itself a source, and one with
// an admitted() member of its own (an order, a request) had every push refused while that
// member said false (found by review, 2026-12-02; docs/reliability.md rule 53).
template <class Source>
concept admission_checked = requires(const Source& source) {
  typename Source::admission_checked_source;
  { source.admitted() } -> std::convertible_to<bool>;
};

// Item: what the queue holds (the message, or an envelope). A push takes a Source the item is
// built from at the commit point: Item itself, or a type with a noexcept Item(Source&&).
template <class Item>
class mailbox {
 public:
  // capacity: unbounded_capacity or >= 1 (event_bus validates it). The consumer is not known
  // until a thread pops (step 7).
  mailbox(std::size_t capacity, overflow_policy policy) noexcept
      : capacity_(capacity), policy_(policy) {}
  mailbox(const mailbox&) = delete;
  mailbox& operator=(const mailbox&) = delete;
  ~mailbox() = default;

  enum class push_outcome {
    accepted,  // queued (drop_oldest may have evicted an older message into `evicted`)
    refused,   // closed, or drop_newest while full; `message` is untouched
    full,      // block policy and no room; `message` is untouched (only from try_push)
    // block policy, no room, and the caller is this mailbox's consumer (step 7): waiting
    // would never end. `message` is untouched (only from push).
    own_mailbox_full,
    // block policy, no room, the consumer not known (nobody received since the mailbox was
    // made or handed over), and the process has never started a second thread: nobody could
    // ever make room. `message` is untouched (only from push).
    full_with_no_other_thread,
  };

  [[nodiscard]] overflow_policy policy() const noexcept { return policy_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  // Offers `message` without ever blocking. A message evicted by drop_oldest is moved into
  // `evicted` (which must be empty) for the caller to destroy once it holds no lock. Strong:
  // may throw std::bad_alloc (a new queue segment), and then nothing changed.
  template <class Source>
  push_outcome try_push(Source& message, std::optional<Item>& evicted) {
    bool wake_consumer = false;
    push_outcome outcome;
    {
      std::lock_guard<sync::small_mutex> guard(lock_);
      outcome = push_locked(message, evicted, wake_consumer);
    }
    TANDEM_SYNC_POINT();  // committed and unlocked; the parked consumer not yet woken
    if (wake_consumer) sleepers_.built().release(wake_tokens::message_ready);
    return outcome;
  }

  // Offers `message`. With the block policy, waits for room (or for close()), except that the
  // consumer's own thread gets own_mailbox_full instead of waiting forever. `message` is
  // untouched unless accepted. Strong, like try_push.
  // Forced inline, with push_locked (issue 17's fan-out row): g++ 12 called both out of line,
  // about 35 instructions of calls, register saves and restores per push; a publish to 8
  // subscribers and their 8 receives took 1,551 instructions, 1,152 inlined (clang 14: 1,519 ->
  // 1,171; tests/perf/perf_event_bus_fan_out), and ran 1.09x faster (event_bus_bench fan_out_8).
  // An unbounded mailbox (the default) is never full: it has nothing to evict and never waits,
  // so its push carries no std::optional for an evicted item (g++ 12 zeroed its 40 bytes and
  // tested it on every push), no policy switch and no "full" outcome to test after unlocking.
  template <class Source>
  TANDEM_ALWAYS_INLINE push_outcome push(Source& message) {
    // Each outcome is returned as a constant from its own path: clang 14 kept a computed
    // outcome (refused or accepted) in a register across the unlock and tested it again.
    if (capacity_ != unbounded_capacity) return push_bounded(message);
    bool wake_consumer = false;
    {
      std::lock_guard<sync::small_mutex> guard(lock_);
      if (!admits_locked(message)) return push_outcome::refused;
      // May throw std::bad_alloc: nothing has changed yet.
      const auto reserved = queue_.reserve_back();
      // Commit point: from here on only noexcept steps.
      commit_locked(reserved, message, wake_consumer);
    }
    TANDEM_SYNC_POINT();  // committed and unlocked; the parked consumer not yet woken
    if (wake_consumer) sleepers_.built().release(wake_tokens::message_ready);
    return push_outcome::accepted;
  }

  // The oldest message, or std::nullopt at once (also when closed and empty).
  // A prvalue on every path, so that the result is built in the caller's return slot (see
  // docs/reliability.md rule 23), and never a default-constructed optional filled in later:
  // g++ 12 zeroes all of one (40 bytes for a 32-byte message) on every receive.
  std::optional<Item> try_pop() {
    const receiving_check receiving(*this);
    if (!lock_free_receive_) return try_pop_locked();
    return queue_.try_pop_front();
  }

  // Pops the messages queued when called (at most; fewer if drop_oldest evicts some
  // meanwhile, and 0 if the count is read while a drop_oldest push is between its eviction
  // and its commit: the size is read without the lock, the next call gets the message),
  // oldest first, and calls consume(Item&) on each once it has left the queue;
  // returns how many consume was given. Never blocks. consume may use the mailbox (no lock is
  // held while it runs); if it throws, the item it was given is destroyed, later ones stay
  // queued, and the exception propagates.
  // Stops early once consume has handed the mailbox to a new owner (handovers() changed: it
  // moved the subscription or inbox that owns it, maybe to another thread, which receives
  // from then on: popping on would make two consumers of one queue).
  template <class Consume>
  std::size_t consume_queued(Consume& consume) {
    const receiving_check receiving(*this);
    const auto queued = static_cast<std::size_t>(queue_.size());
    // A locked-mode pop records its thread as the consumer (step 7); a call that finds nothing
    // to pop records it too, as try_pop on an empty mailbox does (rule 72: until 2026-12-05 an
    // empty consume_all left the receiver unknown, and a later block publish from that thread
    // into its own full inbox waited for ever). Unbounded and drop_newest mailboxes never
    // make a publisher wait, so they record nothing.
    if (queued == 0 && !lock_free_receive_) {
      const std::lock_guard<sync::small_mutex> guard(lock_);
      record_consumer_locked();
    }
    const std::uint32_t owner = handovers();
    std::size_t given = 0;
    while (given < queued && handovers() == owner) {
      std::optional<Item> item = try_pop();
      if (!item) break;
      ++given;
      consume(*item);
    }
    return given;
  }

  // Blocks until a message is queued. Throws tandem::subscription_closed once the mailbox is
  // closed and empty (nothing can arrive any more).
  // `closed_message` is the exception's text (the caller names itself).
  Item pop(const char* closed_message =
               "tandem::event_bus::subscription::receive: the subscription is closed "
               "(unsubscribed, or its event_bus was destroyed) and its queued messages have all "
               "been received; nothing can arrive any more, so receive() would wait forever") {
    const receiving_check receiving(*this);
    for (;;) {
      // The common case first, without an optional in between: the item is moved once, from
      // its queue slot straight into the caller's result (see message_queue::pop_front_into),
      // and while messages are known to be queued the producers' line is not read at all.
      if (lock_free_receive_ && !queue_.empty()) return queue_.pop_front();
      spin_for_message();
      if (lock_free_receive_ && !queue_.empty()) return queue_.pop_front();
      bool closed = false;
      std::optional<Item> out;
      try_pop_or_park_into(out, closed);
      if (out) return std::move(*out);
      if (closed) throw subscription_closed(closed_message);
      TANDEM_SYNC_POINT();  // parked, not yet asleep: a push's wake-up may come first
      sleepers_.built().acquire(wake_tokens::message_ready);
    }
  }

  // Blocks until a message is queued or `deadline` (any clock, any unit; saturated, see
  // "Deadlines") passes, then std::nullopt; std::nullopt at once when closed and empty.
  template <class Clock, class Duration>
  std::optional<Item> pop_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    const receiving_check receiving(*this);
    std::optional<Item> out;  // the one result of every path (NRVO; rule 23)
    for (;;) {
      // Before parking: steady_deadline reads the deadline's clock, which may be a user's clock
      // whose now() throws; thrown after parking, it left the mailbox marked parked with
      // nobody asleep, and the owner's next blocking receive was refused as a second receiver
      // (found by review, 2026-12-02).
      const std::chrono::steady_clock::time_point steady = sync::steady_deadline(deadline);
      bool closed = false;
      try_pop_or_park_into(out, closed);
      if (out || closed) return out;
      TANDEM_SYNC_POINT();  // parked, not yet asleep: a push's wake-up may come first
      if (sleepers_.built().try_acquire_until(wake_tokens::message_ready, steady)) continue;
      // Timed out. Unpark, unless a publisher already cleared the flag: then its release is
      // committed, so take it (keeps the semaphore balanced) and collect its message.
      {
        std::unique_lock<sync::small_mutex> guard(lock_);
        if (consumer_parked_) {
          consumer_parked_ = false;
          guard.unlock();
          // Another clock may have been adjusted meanwhile: wait again until it really passed
          // (steady_deadline recomputes from that clock's now()).
          if (std::chrono::steady_clock::now() < sync::steady_deadline(deadline)) continue;
          return out;  // empty
        }
      }
      sleepers_.built().acquire(wake_tokens::message_ready);
    }
  }

  [[nodiscard]] std::size_t size() const { return static_cast<std::size_t>(queue_.size()); }

  [[nodiscard]] std::size_t dropped() const {
    std::lock_guard<sync::small_mutex> guard(lock_);
    return dropped_;
  }

  // Under lock_: the calling thread receives (or found nothing to receive). Step 7.
  void record_consumer_locked() noexcept {
    const std::uint64_t self = detail::thread_serial();
    if (consumer_ != 0 && consumer_ != self) consumers_differ_ = true;
    consumer_ = self;
  }

  // The subscription was moved: the thread it will be received on is unknown until it pops.
  // Counts a handover (see handovers()).
  void forget_consumer() noexcept {
    std::lock_guard<sync::small_mutex> guard(lock_);
    consumer_ = 0;
    consumers_differ_ = false;
    // relaxed, a load and a store: written under the lock only; read by the owner's thread.
    handovers_.store(handovers_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    // The old owner receives no more (a consume_all in progress stops, consume_queued), so the
    // new one may start at once: not a second receiver (receiving_check). relaxed: a detector.
    receiving_.store(0, std::memory_order_relaxed);
  }

  // How many times the owning subscription or inbox was moved (forget_consumer). The owner's
  // thread compares two readings to learn whether a callback it ran handed the mailbox over.
  [[nodiscard]] std::uint32_t handovers() const noexcept {
    return handovers_.load(std::memory_order_relaxed);  // relaxed: see forget_consumer
  }

  // Something can arrive again: an inbox that had left its last topic (which made the mailbox
  // sourceless in change_admission) subscribes again. Sourceless, a consumer parked in
  // pop()/pop_until() was woken and, as for a closed mailbox, got what was still queued and
  // then "nothing can arrive" instead of sleeping for ever.
  void clear_sourceless() noexcept {
    std::lock_guard<sync::small_mutex> guard(lock_);
    sourceless_ = false;
  }

  // True once close() has run (for the owner: "can anything still arrive?").
  [[nodiscard]] bool is_closed() const noexcept {
    std::lock_guard<sync::small_mutex> guard(lock_);
    return closed_.load(std::memory_order_relaxed);  // relaxed: under the lock
  }

  // Runs `change` (noexcept; it changes what some sources' admitted() answer) under the lock,
  // then wakes every parked publisher so that each re-checks its admission: a publisher
  // blocked on a full mailbox for a topic the inbox has just left gives up instead of waiting
  // for room. After this returns, no push whose source `change` made inadmissible commits.
  // `now_sourceless`: `change` withdrew the last source (an inbox leaving its last topic), so
  // nothing but what is queued can arrive: the mailbox becomes sourceless in the same critical
  // section and a parked consumer is woken (it then drains the queue and is told so, as for a
  // closed mailbox). clear_sourceless() undoes it.
  template <class Change>
  void change_admission(Change&& change, bool now_sourceless = false) noexcept {
    static_assert(std::is_nothrow_invocable_v<Change&>);
    std::size_t wake_publishers = 0;
    bool wake_consumer = false;
    {
      std::lock_guard<sync::small_mutex> guard(lock_);
      change();
      wake_publishers = std::exchange(parked_publishers_, 0);
      if (now_sourceless) {
        sourceless_ = true;
        wake_consumer = std::exchange(consumer_parked_, false);
      }
    }
    release_room(wake_publishers);
    if (wake_consumer) sleepers_.built().release(wake_tokens::message_ready);
  }

  // The owner, after its own close(): destroys every queued item now (the mailbox object
  // itself may live on in a topic's subscriber list until that list is rebuilt). Allocates
  // nothing; runs only the items' destructors.
  // No lock is held while an item is destroyed (its destructor may use the bus), and none is
  // taken to pop: once closed, no producer touches the queue again (push checks `closed_`
  // first, under the lock). Precondition: the owner called close() before this, on this thread
  // or earlier in the owner's history (both callers do, right before: ~subscription through
  // unsubscribe(), an inbox's leave_all). That close() took the lock after every push that
  // committed, which orders these pops after those pushes; a second lock pair here would
  // order nothing more (it cost two atomic read-modify-writes per unsubscribe). Checked by
  // TANDEM_ASSERT where assertions are on.
  void discard_queued() noexcept {
    // relaxed, no lock: the check must not add the ordering it checks for (with a lock pair
    // here, TSan could not see a caller that had not closed the mailbox itself).
    TANDEM_ASSERT(closed_.load(std::memory_order_relaxed),
                  "discard_queued on an open mailbox: the owner closes it first");
    while (!queue_.empty()) static_cast<void>(queue_.pop_front());
  }

  // No push succeeds after this returns; publishers parked on this mailbox wake and give up,
  // and a parked consumer wakes to find it closed (queued messages stay receivable).
  // Idempotent.
  void close() noexcept {
    std::size_t wake_publishers = 0;
    bool wake_consumer = false;
    {
      std::lock_guard<sync::small_mutex> guard(lock_);
      closed_.store(true, std::memory_order_relaxed);  // relaxed: under the lock
      wake_publishers = std::exchange(parked_publishers_, 0);
      wake_consumer = std::exchange(consumer_parked_, false);
    }
    TANDEM_SYNC_POINT();  // closed; the sleepers not yet woken
    if (wake_consumer) sleepers_.built().release(wake_tokens::message_ready);
    release_room(wake_publishers);
  }

 private:
  // Steps 2 and 5 under the lock: the policy, the move into the queue, and whether the parked
  // consumer must be woken (by the caller, after unlocking). Decide, then commit: everything
  // that can throw happens before the first change.
  template <class Source>
  TANDEM_ALWAYS_INLINE push_outcome push_locked(Source& message, std::optional<Item>& evicted,
                                                bool& wake_consumer) {
    if (!admits_locked(message)) return push_outcome::refused;
    // An unbounded mailbox never reads the consumer's head count.
    const bool full = capacity_ != unbounded_capacity && queue_.holds_at_least(capacity_);
    if (full) {
      switch (policy_) {
        case overflow_policy::drop_newest:
          ++dropped_;
          return push_outcome::refused;
        case overflow_policy::block:
          return push_outcome::full;
        case overflow_policy::drop_oldest:
          break;
      }
    }
    // May throw std::bad_alloc: nothing has changed yet.
    const auto reserved = queue_.reserve_back();
    // Commit point: from here on only noexcept steps (Message's moves are noexcept).
    if (full) {
      queue_.pop_front_into(evicted);
      ++dropped_;
    }
    commit_locked(reserved, message, wake_consumer);
    return push_outcome::accepted;
  }

  // Under the lock, before anything changes: false if the push is refused as a closed mailbox's
  // (closed, or the source no longer admitted).
  template <class Source>
  TANDEM_ALWAYS_INLINE bool admits_locked(const Source& message) const noexcept {
    if (closed_.load(std::memory_order_relaxed)) return false;  // relaxed: under the lock
    if constexpr (admission_checked<Source>) {
      if (!message.admitted()) return false;
    }
    return true;
  }

  // The commit point's last steps, under the lock, after queue_.reserve_back() (which returned
  // `reserved`): the item is built from the message in its slot and published, and a parked
  // consumer is owed a wake-up. noexcept throughout.
  template <class Source>
  TANDEM_ALWAYS_INLINE void commit_locked(typename message_queue<Item>::back_reservation reserved,
                                          Source& message, bool& wake_consumer) noexcept {
    // A const source (event_bus's fan-out of a noexcept-copyable message) is copied from a
    // const lvalue: the constructor std::is_nothrow_copy_constructible names. Moved, it would
    // be a const rvalue, which picks a deleted M(const M&&) or a forwarding template
    // constructor over the copy (review of 2026-12-02); any other source is moved.
    using source_ref = std::conditional_t<std::is_const_v<Source>, Source&, Source&&>;
    static_assert(std::is_nothrow_constructible_v<Item, source_ref>,
                  "a mailbox item is built from its source at the commit point: noexcept");
    queue_.push_back(reserved, static_cast<source_ref>(message));
    wake_consumer = std::exchange(consumer_parked_, false);
  }

  // push() on a bounded mailbox: the policy may evict (drop_oldest: the evicted item is
  // destroyed after the lock is released and the consumer woken) or make the publisher wait
  // (block). Forced inline, as push() is.
  template <class Source>
  TANDEM_ALWAYS_INLINE push_outcome push_bounded(Source& message) {
    std::optional<Item> evicted;  // destroyed after the lock is released
    bool wake_consumer = false;
    push_outcome outcome;
    {
      // A lock_guard, not the unique_lock the wait needs: g++ 12 -O3 calls unique_lock's
      // unlock() out of line (its checks included), 16 instructions on every push.
      std::lock_guard<sync::small_mutex> guard(lock_);
      outcome = push_locked(message, evicted, wake_consumer);
    }
    if (TANDEM_UNLIKELY(outcome == push_outcome::full)) {
      outcome = push_waiting(message, evicted, wake_consumer);
    }
    TANDEM_SYNC_POINT();  // committed and unlocked; the parked consumer not yet woken
    if (wake_consumer) sleepers_.built().release(wake_tokens::message_ready);
    return outcome;
  }

  // push() on a full `block` mailbox: take the lock again and, each time push_locked() still
  // finds no room, park until the consumer pops or the mailbox is closed (registered under the
  // same lock acquisition that saw it full, so the wake-up cannot be missed), then retry.
  // Out of line: the common push never waits.
  template <class Source>
  TANDEM_NOINLINE push_outcome push_waiting(Source& message, std::optional<Item>& evicted,
                                            bool& wake_consumer) {
    std::unique_lock<sync::small_mutex> guard(lock_);
    push_outcome outcome;
    while ((outcome = push_locked(message, evicted, wake_consumer)) == push_outcome::full) {
      // Ours only if no other thread has received since the last move (step 7).
      if (!consumers_differ_ && detail::is_self(consumer_)) return push_outcome::own_mailbox_full;
      // Not known to be ours (step 7): wait, unless no other thread exists to make room.
      if (detail::process_never_started_a_thread()) {
        return push_outcome::full_with_no_other_thread;
      }
      // Read under the lock: every release that counts this publisher comes later.
      const std::uint64_t seen = sleepers_.build_locked().room_generation();
      ++parked_publishers_;
      guard.unlock();
      TANDEM_SYNC_POINT();  // parked, not yet asleep: a pop's wake-up may come first
      TANDEM_TEST_POINT("mailbox push_waiting: parked, not yet asleep");
      sleepers_.built().wait_room(seen);
      guard.lock();
    }
    return outcome;
  }

  // Pops if possible; otherwise, if the mailbox is closed, sets `closed`; otherwise marks the
  // consumer parked (the caller then blocks on sleepers_). All under one lock acquisition, so
  // no push or close can slip in between.
  // The message goes straight into `out` (which must be empty), so that pop_until can return
  // one named optional on every path (NRVO; rule 23).
  void try_pop_or_park_into(std::optional<Item>& out, bool& closed) {
    std::size_t wake_publishers = 0;
    if (lock_free_receive_ && queue_.try_pop_front_into(out)) return;
    {
      std::lock_guard<sync::small_mutex> guard(lock_);
      if (queue_.empty()) {
        // relaxed: under the lock. Sourceless: nothing can arrive either (change_admission).
        if (closed_.load(std::memory_order_relaxed) || sourceless_) {
          record_consumer_locked();
          closed = true;
          return;
        }
        // Checked in every build (rule 40: one test of a flag under a lock already held); where
        // assertions are on, receiving_check has reported the overlap first. Before, with them
        // off, the second receiver overwrote the flag, the next push woke one of the two, and
        // the other slept for ever with a message queued (found by review, 2026-12-02). Refused
        // before anything changes: the parked receiver stays the one a block publisher's
        // self-wait check compares with (consumer_).
        if (TANDEM_UNLIKELY(consumer_parked_)) {
          throw std::logic_error(
              "tandem::event_bus: two threads receive on one subscription (or inbox) at once, "
              "and another thread is already blocked in receive on it; a subscription has one "
              "owner at a time (hand it over by moving it, between receives)");
        }
        sleepers_.build_locked();  // may throw: before anything is announced
        record_consumer_locked();
        consumer_parked_ = true;
        return;
      }
      record_consumer_locked();
      queue_.pop_front_into(out);
      wake_publishers = std::exchange(parked_publishers_, 0);
    }
    release_room(wake_publishers);
  }

  // try_pop of a locked-mode mailbox (drop_oldest, block): out of line, so that the lock-free
  // try_pop stays small enough to inline.
  // One named result on every path (NRVO).
  TANDEM_NOINLINE std::optional<Item> try_pop_locked() {
    std::optional<Item> out;
    std::size_t wake_publishers = 0;
    {
      std::lock_guard<sync::small_mutex> guard(lock_);
      record_consumer_locked();
      if (queue_.empty()) return out;
      queue_.pop_front_into(out);
      wake_publishers = std::exchange(parked_publishers_, 0);
    }
    release_room(wake_publishers);
    return out;
  }

  // Step 5's bounded spin: before parking, pop() watches the queue for a moment (the last
  // pause steps of sync::backoff's spin phase: 8 + 16 + 32 + 64 = 120 CPU pauses, a few
  // microseconds, no yield, no lock, reads only), so that a message arriving soon after the
  // queue ran dry is taken without a sleep and the publisher makes no wake-up system call.
  // Returns early as soon as a message is queued; the caller then pops (or parks) as usual.
  // It looks again only after 8 pauses, not 1, 2 and 4: each look reads the producers' line
  // (the tail count), and a look while a push is under way takes that line from the pushing
  // core, whose store and unlock then wait for it back. Same-run A/B, medians of 8 rounds:
  // publish_receive/two_threads 12.9 -> 15.7 M/s, a publisher-paced inbox +12%.
  void spin_for_message() noexcept {
    constexpr std::uint32_t first_look_step = 3;  // the first pause round: 2^3 = 8 pauses
    for (std::uint32_t step = first_look_step; step <= sync::backoff::spin_limit; ++step) {
      if (queue_.size() != 0) return;
      for (std::uint32_t i = 0; i < (std::uint32_t{1} << step); ++i) ::tandem::detail::cpu_relax();
    }
  }

  // Where assertions are on: reports two threads receiving at once (try_pop, pop, pop_until,
  // consume_queued; a subscription or inbox has one owner at a time), which is a data race on
  // the queue's consumer side, not only two parked receivers. Nested receives on one thread
  // (consume_all's f calling try_receive) are fine. Elsewhere it does nothing.
  //
  // Two classes, one per build, chosen by name below, never one class whose members follow the
  // build (rule 4): a program may link units built with and without NDEBUG (a release library
  // in a debug program), and the linker keeps one copy of an inline constructor for all of
  // them, so one name with two layouts had a debug pop() reserve 24 bytes and run the empty
  // constructor (its destructor then read an unset reference), or a release try_pop() reserve
  // one byte and run the constructor that writes 24 (found by review, 2026-12-02). Neither class
  // depends on the macro: the check reports through assertion_failed() directly.
  class receiving_check_on {
   public:
    explicit receiving_check_on(mailbox& box) noexcept
        : box_(box),
          handovers_(box.handovers()),
          // relaxed: a misuse detector, not synchronisation.
          outer_(box.receiving_.exchange(detail::thread_serial(), std::memory_order_relaxed)) {
      if (TANDEM_UNLIKELY(outer_ != 0 && outer_ != detail::thread_serial())) {
        detail::assertion_failed("outer_ == 0 || outer_ == detail::thread_serial()",
                                 "two threads receive on one subscription or inbox at once; it "
                                 "has one owner at a time (hand it over by moving it, between "
                                 "receives)",
                                 __FILE__, __LINE__, static_cast<const char*>(__func__));
      }
    }
    ~receiving_check_on() {
      // After a hand-over (a move inside consume_all's f) the mark is the new owner's: an
      // outer receive of the old owner must not put its own serial back.
      if (box_.handovers() == handovers_) box_.receiving_.store(outer_, std::memory_order_relaxed);
    }
    receiving_check_on(const receiving_check_on&) = delete;
    receiving_check_on& operator=(const receiving_check_on&) = delete;

   private:
    mailbox& box_;
    std::uint32_t handovers_;
    std::uint64_t outer_;
  };
  class receiving_check_off {
   public:
    explicit receiving_check_off(mailbox& /*box*/) noexcept {}
    receiving_check_off(const receiving_check_off&) = delete;
    receiving_check_off& operator=(const receiving_check_off&) = delete;
  };
#if TANDEM_ENABLE_ASSERTS
  using receiving_check = receiving_check_on;
#else
  using receiving_check = receiving_check_off;
#endif

  // Wakes every publisher parked before the caller cleared the count (`parked`, under the
  // lock); each re-checks under the lock and parks again if it must.
  void release_room(std::size_t parked) noexcept {
    if (parked == 0) return;
    TANDEM_SYNC_POINT();  // room made and unlocked; the parked publishers not yet woken
    sleepers_.built().release_room();
  }

  // Layout: what both sides only read (set at construction), then the queue (the consumer's
  // fields, then the producers'), then the lock and the state it guards; paddings of
  // sync::cache_line_size bytes keep the consumer's line apart from both, and the lock's line
  // apart from the tail count that a waiting consumer reads.
  const std::size_t capacity_;
  const overflow_policy policy_;
  // The consumer pops without lock_ unless a producer may pop too (drop_oldest evicts) or
  // must be woken when room appears (block): only those modes pop under lock_.
  const bool lock_free_receive_ =
      capacity_ == unbounded_capacity || policy_ == overflow_policy::drop_newest;
  // The paddings are never read, so never written (no initializer: rule 25).
  [[maybe_unused]] char read_only_padding_[sync::cache_line_size];
  message_queue<Item> queue_;  // pushes under lock_; see message_queue
  // Keeps lock_ off the line of the queue's tail count, which a waiting consumer reads (step 1).
  [[maybe_unused]] char tail_padding_[sync::cache_line_size];
  mutable sync::small_mutex lock_;
  std::size_t dropped_ = 0;  // guarded by lock_
  // guarded by lock_: publishers parked since the last room release (which clears it).
  std::size_t parked_publishers_ = 0;
  // guarded by lock_: the serial of the last thread that received (step 7); 0 (not known)
  // until a thread receives and after forget_consumer(). Not a std::thread::id: an exited
  // receiver's id may be given to a new thread, which would then be refused as "the receiver"
  // (docs/reliability.md rule 30). Not the creating thread either: the one that subscribes is
  // often not the one that will receive (rule 72).
  std::uint64_t consumer_ = 0;
  // guarded by lock_: two different threads have received since the last forget_consumer()
  // (a worker receiving by reference, threads taking turns): then no thread is known to be
  // the only one that could make room, and a block push waits (step 7).
  bool consumers_differ_ = false;
  bool consumer_parked_ = false;  // guarded by lock_; a message_ready token is owed
  bool sourceless_ = false;       // guarded by lock_; see change_admission
  // The serial of the thread receiving now (receiving_check; used where assertions are on).
  std::atomic<std::uint64_t> receiving_{0};
  // Written under lock_ (forget_consumer), read by the owner's thread (consume_queued).
  std::atomic<std::uint32_t> handovers_{0};
  // Written under lock_ and read under it, except by discard_queued's check (hence atomic;
  // every access relaxed).
  std::atomic<bool> closed_{false};
  // The consumer sleeps here for a message (at most one token outstanding), publishers
  // blocked by a full mailbox for room. Built by the first of them (lazy_wake_tokens).
  lazy_wake_tokens sleepers_;
};

}  // namespace detail
}  // namespace tandem
