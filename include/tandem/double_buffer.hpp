// tandem/double_buffer.hpp -- two copies of a T: readers read one without locks, a single
// writer changes the other through an operation log and swaps them (the left-right
// technique, with delayed swaps).
//
// What it is for: read-mostly state (routing tables, configuration, indexes) read on hot
// paths by many threads and changed in batches by one. Readers never lock, never wait and
// never write a cache line another reader writes, so reads scale with cores and a writer
// never stalls them. Not for write-heavy state: every operation is applied twice, the state
// is stored twice, and a reader that holds a guard for long delays the writer's next publish.
//
//   auto [w, r] = tandem::make_double_buffer<std::vector<int>, push_back_op>();
//   w.push(push_back_op{42});        // logged, invisible to readers
//   (w.emplace(args...) logs Op(args...) built in place: no temporary op moved in)
//   w.publish();                      // applied to the hidden copy, copies swapped
//   { auto g = r.read(); use(*g); }   // a consistent snapshot while `g` lives
//
// Operations: an Op is applied to each copy exactly once, in push order: first as an lvalue
// (`op(t)` through `Op&`, so it may record what it did), later as an rvalue
// (`std::move(op)(t)`, so it may move its payload into the second copy). An rvalue
// application that throws is retried, with the same object, by the next publish: it may move
// out of its payload only in its last step, the one that cannot throw any more (build what it
// inserts first, then commit it with steps that cannot fail). See double_buffer_operation.
//
// Algorithm. State: copies A and B, each on cache lines of its own; `published` = {pointer
// (atomic T*) to the copy readers use, generation (atomic uint64: publishes so far)}; the
// writer owns the other ("hidden") copy once every reader that could still see it has left;
// `pending` = ops pushed since the last publish; `replay` = ops of the last publish, already in
// the published copy, not yet in the hidden one.
//  Reader read() (the reader keeps its slot and the address of `published`, so the fast path
//  touches only the reader, its slot's line and `published`):
//   0. A moved-from reader points at reader_epochs' detached slot, whose epoch is odd: the
//      fast path below refuses it and the out-of-line slow path throws std::logic_error;
//      nothing is written.
//   1. epochs.try_enter(slot) (inlined): if the slot's epoch has both low bits clear, the
//      slot records this thread (its serial) as the section's owner, the epoch becomes
//      odd (release), then the light half of a fence (reader_epochs (R0), (R1)). Otherwise the
//      slow path: a nested guard (the epoch is odd already), a moved-from reader, or a
//      registry without membarrier (bit 1 set for good: epochs.enter() with a real fence).
//   2. g = published.generation.load(acquire), then p = published.pointer.load(acquire):
//      pairs with the writer's release stores W5a and W5, so p is the copy of generation g or
//      a newer one, and all writes to *p made before its publish are visible. p is kept in
//      the slot (its owner-only `pinned` word); g is stored in the slot's `acknowledged` word
//      (release): reader_epochs (A1), "this reader will never again load a copy older than g".
//   3. The guard reads *p. A nested guard on the same reader counts itself in the slot
//      (epochs.enter_nested) and reuses the slot's pinned copy: one snapshot.
//   4. A guard released: epochs.leave(slot): a nested count is decremented; the last guard
//      (in any order) makes the epoch even (release) and notifies only if the writer is
//      blocked on this reader -- reader_epochs (R3)/(R4).
//  Writer publish() (steps that may throw are marked [throws]; nothing before W5 is visible to
//  readers, and every step after W5 is noexcept):
//   W0. A moved-from writer throws std::logic_error [throws].
//   W1. If nothing is pending, return.
//   W2. If a reader slot was claimed at the previous publish (must_wait), readers may still
//       be in the hidden copy. W2a: if every claimed slot acknowledged that publish's
//       generation (epochs.acknowledged_since: one pass over the slots; while only readers
//       that are reading are missing, a spin of at most a few us), none can be: no heavy
//       fence, no wait. Otherwise (an idle reader handle, a guard held since before that
//       publish), once per wait: heavy fence, then record every reader inside whose slot has
//       not acknowledged it (reader_epochs steps 4 and (A2)), and wait for them
//       (wait_for_recorded_readers: spin, yield, then block until the last of them leaves).
//       This is the delayed swap: a guard taken before publish N blocks only publish N+1 (a
//       guard taken after it acknowledged N, so it is never recorded). Before waiting for
//       anyone, if a recorded reader is inside a guard this very thread opened, throw
//       std::logic_error [throws]: that wait could never end. Then must_wait = false.
//   W3. Replay `replay` on the hidden copy: std::move(op)(hidden), in order; `replayed`
//       counts the ops done [throws: the op keeps its payload and is retried first by the
//       next publish].
//   W4. Apply each pending op as op(hidden), in push order; `applied` counts them [throws:
//       that op is dropped].
//   W5. published.pointer.store(hidden, release): the swap. THE COMMIT POINT: from here on
//       readers that enter see the batch, so nothing below can throw.
//   W5a. published.generation.store(++generation, release): after the pointer, so a reader
//       that loads this generation loads this pointer or a newer one.
//   W6. epochs.readers_may_be_inside() (noexcept, never allocates): a full fence and a load
//       of the registry's claimed-slot count. must_wait = (some slot claimed): with none, no
//       reader exists that could be in the old copy, and one created later loads the new
//       pointer (reader_epochs (C1)/(W0')). No heavy fence here: readers usually acknowledge
//       the publish before the next one needs the copy (W2a). `replay` = `pending` (a vector
//       swap); `pending` = empty; applied = 0.
//  try_publish() is publish() that returns false, having changed nothing, instead of waiting
//  in W2 (so it never throws the W2 logic_error either).
//  The acknowledgments are tandem's; the left-right technique is Ramalhete and Correia's
//  ("Left-Right: A Concurrency Control Technique with Wait-Free Population Oblivious Reads",
//  2015), the epoch registry evmap's (Rust crates left-right/evmap).
//
// Guarantees:
//  - Readers are wait-free: read() and releasing a guard are a bounded number of atomic
//    operations on the reader's own cache-padded slot plus one load of `published` (a word
//    that changes only on publish).
//  - publish() makes all ops pushed before it visible at once: a reader sees all of a batch or
//    none. Unpublished ops are invisible. A guard is one snapshot for its whole life.
//  - What blocks: only publish(), in W2, and only for readers that were inside a guard when
//    the previous publish swapped. push(), try_publish(), reader creation/copy and read()
//    never block on anyone (publish() and try_publish() may spin a few us, bounded, for
//    readers that are reading and about to acknowledge: W2a).
//  - Guards and publish on one thread (the rule): a thread may hold read guards while it
//    publishes once -- publish N never waits for guards taken before it. But publish N+1 waits
//    for every guard that was open when publish N swapped; if one of those is held by the
//    publishing thread itself, the wait could never end. publish() then throws
//    std::logic_error("... publish() would wait forever for a read guard held by this same
//    thread ...") before it applies anything: nothing is applied twice, nothing is lost;
//    release the guard and call publish() again. try_publish() just returns false. (Detecting
//    it costs readers one read of their thread's serial, a thread_local, and one store on
//    their own line per outermost guard.)
//    A guard counts as held by the thread whose read() opened it: one handed over to another
//    thread still counts as the opener's, so the opener's publish() throws rather than waits
//    for it (use try_publish() there, or release guards on the thread that took them).
//    Guards of one reader may be released on any threads in any order, also at once (the
//    nesting count is lowered by compare-exchange). But while another thread holds a guard
//    of a reader, the opening thread must not call read() on that reader (it would nest into
//    the handed guard's section while the other thread may be ending it: a data race that
//    can leave the slot inside for ever, so that publish() waits for ever). Give the opening
//    thread a copy of the reader instead. Reported where assertions are on
//    only when the timing shows it, and by ThreadSanitizer as a data race.
//  - Exceptions (ops must give the strong guarantee: if an application throws, it leaves its
//    T as it was; copying/moving an Op must not throw):
//     * an op that throws on its first application (W4) is dropped: the exception propagates
//       from publish(), nothing is published, the op never reaches either copy; the ops
//       pushed before it stay applied to the hidden copy, those after it stay pending, and
//       the next publish() publishes them all.
//     * an op that throws on its replay (W3) (say bad_alloc) is kept with every op after it:
//       the exception propagates from publish(), nothing is published, and the next
//       publish() resumes the replay at that op. The replay only ever touches the hidden
//       copy, so readers never see a copy that disagrees with what was published; the
//       hidden copy is simply behind until a publish succeeds.
//     * publish() never throws after W5: if it throws, nothing was published.
//  - Moved-from readers and writers, in every build type: read() on a moved-from reader, and
//    push(), publish(), try_publish() and reader() on a moved-from writer throw
//    std::logic_error ("... used after move"); a moved-from writer's pending() is 0; copying
//    a moved-from reader gives another empty reader; destroying or assigning to a moved-from
//    object is always fine, and assigning a live one to it makes it usable again.
//  - Assignment (copy or move, readers and writers) reads its source completely before it
//    releases its old state, so it is correct for self-assignment and for a source that lives
//    inside the buffer it releases.
//  - Lifetime: the writer and the readers share the state; whichever is destroyed last frees
//    both copies. A guard holds no share (it is two pointers): its reader must outlive it, and
//    must not be moved, assigned or swapped while it has one. Dropping the writer leaves
//    readers on the last published state. A moved-from guard has no snapshot (see read_guard).
//  - Every build: an op calling back into its writer during publish() (push, emplace, publish,
//    try_publish: std::logic_error; moving, swapping or destroying the writer: fatal, through
//    the assertion handler). Debug builds (TANDEM_ASSERT) also: a reader used by two threads at
//    once, a reader destroyed, moved or assigned while a guard on it lives, a writer entered
//    by two threads at once, a read through a moved-from guard. Class layouts are the same with
//    and without assertions (NDEBUG / TANDEM_ENABLE_ASSERTS), so translation units may mix them.
//
// Costs: memory = 2 x sizeof(T) rounded up to cache lines + its contents twice + the log (ops
// of the current and the previous batch) + one cache line per live reader. Reader, per
// outermost guard, all inline (no call): two loads and five stores on its own slot line (epoch
// in and out, owner, pinned copy, acknowledgment), a read of the thread's serial, two loads of
// the `published` line, nothing written in the reader object (readers kept side by side share
// no written line), two compiler barriers and three predictable branches -- measured with
// callgrind, a guarded lookup of a double_buffer_map<uint64, uint64> of 1,000 keys costs 22
// instructions more than the bare std::unordered_map lookup with g++ 12 -O2 and 21 more with clang
// 14 -O2 (18 and 17 before the acknowledgment and the thread serial; the budgets of
// tests/perf/budgets.json are in docs/double_buffer.md). The portable fence adds two full fences.
// Writer: every op applied twice; per publish a full fence, one load and two stores when no reader
// exists; with readers, a pass over the reader slots (W2a), and only when some reader has not
// acknowledged the last publish (it did not read since, or holds a guard taken before it), one
// membarrier system call (0.1-0.5 us with no reader thread running, several us when readers run on
// other cores, which it interrupts) and a second pass.
//
// Sharing one writer between threads: the writer is a plain single-threaded object; put it
// behind a std::mutex, and refuse a thread that holds a read guard before it waits for that
// mutex (writer::this_thread_holds_guard(); see docs/double_buffer.md): the mutex's holder may be
// publishing, and so waiting for that guard.
//
// Memory ordering: W5's release store pairs with step 2's acquire load of the pointer
// (readers see the writes W3/W4 made). W5a's release store of the generation pairs with step
// 2's acquire load of it: a reader that loads generation g then loads the pointer of g or a
// newer one (the writer stored it before g), and its release store of the acknowledgment
// pairs with W2a's acquire load, so the reader's reads of older copies happen-before the
// writer's next writes to them (reader_epochs (A1)/(A2)). Without an acknowledgment, W2's
// heavy fence and step 1 are the two halves of a Dekker handshake made of the asymmetric fence
// (reader_epochs (R1)/(W1)): a reader either is recorded or loads the new generation and
// pointer (step 2 loads them after step 1's fence; when W6 finds no claimed slot, the fence
// pair (C1)/(W0') gives the same guarantee for readers created later); step 4's release store
// of the epoch pairs with W2's acquire load, so a reader's last read of a copy happens-before
// the writer's next write to it. The wake-up handshake is reader_epochs (R4)/(W4); the self-wait
// check is (R0)/(W0). Under ThreadSanitizer the fences are replaced by seq_cst operations
// (reader_epochs explains why). TANDEM_SYNC_POINT() marks the protocol's interleaving points
// (stress builds delay there).
#pragma once

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/arguments.hpp"
#include "detail/callables.hpp"
#include "detail/port.hpp"
#include "sync/assert.hpp"
#include "sync/asymmetric_fence.hpp"
#include "sync/cache_padded.hpp"
#include "sync/reader_epochs.hpp"
#include "sync/sync_point.hpp"
#include "sync/thread_serial.hpp"

namespace tandem {

// An operation on T: applied first as an lvalue (`op(t)` through Op&), later as an rvalue
// (`std::move(op)(t)`), to the two copies. It is stored in the writer's log until then, so it
// must be an object type that moves without throwing. Not expressible as a concept, but part of
// the contract: each application gives the strong guarantee, and the rvalue application,
// which is retried with the same object when it throws, moves out of the op only in a step
// that cannot throw any more.
template <class Op, class T>
concept double_buffer_operation =
    std::is_object_v<Op> && std::is_nothrow_move_constructible_v<Op> &&
    std::is_nothrow_destructible_v<Op> && std::invocable<Op&, T&> && std::invocable<Op&&, T&>;

// What a double_buffer stores: an object type that can be destroyed.
template <class T>
concept double_buffer_value = std::is_object_v<T> && std::destructible<T>;

namespace detail {
// The cold path of the moved-from checks: out of line, so the check is one branch.
[[noreturn]] TANDEM_NOINLINE inline void throw_double_buffer_used_after_move(const char* what) {
  throw std::logic_error(what);
}

[[noreturn]] TANDEM_NOINLINE inline void writer_moved_while_applying() noexcept {
  fatal_assertion_failed(
      "!applying_",
      "tandem::double_buffer::writer moved, swapped or destroyed by an op from "
      "inside a writer call (publish() applying it, push() or emplace() building or "
      "moving it: the call would go on with a freed log); an op must not use its "
      "writer",
      __FILE__, __LINE__, "double_buffer::writer");
}

// What the assertions report when a second thread enters a writer another thread is inside.
inline constexpr const char* writer_shared_without_mutex =
    "a writer was entered by a second thread while another thread was inside a writer call (a "
    "writer is used by one thread at a time: share it behind a mutex, docs/double_buffer.md "
    "\"Sharing one writer between threads\")";

// The flag this reports is a plain bool, so it cannot tell whose call is in progress: where
// assertions are on, entry_check reports a second thread first, by name; where they are off,
// the message names both causes (found by a new user's trial, 2026-12-05: two threads sharing a
// writer were told that an op had called back).
[[noreturn]] TANDEM_NOINLINE inline void throw_writer_reentered() {
  throw std::logic_error(
      "tandem::double_buffer::writer: entered while a writer call was in progress: an op (or a "
      "double_buffer_map erase_if predicate) called back into its writer from inside a writer "
      "call (publish() applying it, push() or emplace() building or moving it) or while the "
      "writer was being destroyed, or a second thread used the writer without a mutex; an op "
      "must not use its writer, and a writer is used by one thread at a time");
}

// What writer::emplace(args...) accepts: Op(args...) for a class with constructors; for an
// aggregate Op, Op{args...} (so no narrowing conversion slips in through C++20's
// parenthesised aggregate initialisation, and compilers without it, clang 14 and 15, accept
// the same calls as g++).
template <class Op, class... Args>
concept emplaceable_op = (std::is_aggregate_v<Op> &&
                          requires(Args && ... args) { Op{std::forward<Args>(args)...}; }) ||
                         (!std::is_aggregate_v<Op> && std::constructible_from<Op, Args...>);
}  // namespace detail

// The requirements are named concepts on the class template, so that a bad T or Op's first
// error names them: T an object type, Op callable as op(T&) through Op& and Op&& and nothrow
// move constructible (it is stored in the op log).
template <class T, class Op, sync::fence_policy Fence = sync::asymmetric_fence>
requires double_buffer_value<T> && double_buffer_operation<Op, T>
class double_buffer {
  using epochs_type = sync::reader_epochs<Fence>;

  // The published copy and its generation (the number of publishes that made it), on one
  // line: a reader's outermost read() loads both.
  struct publication {
    explicit publication(T* first) noexcept : pointer(first) {}
    std::atomic<T*> pointer;
    // Stored by the writer (release) right after `pointer`: a reader that reads generation g
    // with acquire loads pointer g or a newer one from then on (A1).
    std::atomic<std::uint64_t> generation{0};
  };

  static constexpr std::size_t copy_alignment = alignof(T) > sync::cache_line_size
                                                    ? alignof(T)
                                                    : sync::cache_line_size;

  // Everything writer and readers share; freed by whichever of them goes last.
  struct core {
    template <class... Args>
    explicit core(const Args&... args) : first_copy(args...), second_copy(args...) {}

    // Read by every reader's outermost read(); written once per publish.
    sync::cache_padded<publication> published{std::addressof(first_copy)};
    epochs_type epochs;
    // Each copy starts a cache line of its own (and, the struct being aligned so, ends in one
    // of its own): readers read one copy while the writer writes the other, so a line shared
    // by the two (std::unordered_map's 56-byte header, with the element count readers load on
    // every find and the writer stores on every insert) would bounce between their cores.
    alignas(copy_alignment) T first_copy;
    alignas(copy_alignment) T second_copy;
  };

 public:
  class reader;
  class read_guard;
  class writer;

  using value_type = T;
  using operation_type = Op;

  // What publish() throws (std::logic_error) when it would wait for a guard its own thread
  // holds (see "Guards and publish on one thread" above).
  static constexpr const char* self_wait_message =
      "tandem::double_buffer::writer: publish() would wait forever for a read guard held by "
      "this same thread (a guard taken before the previous publish on a reader of this buffer; "
      "nothing was applied or lost: release the guard, then publish again)";

  // Builds both copies as T(args...) (args passed as lvalues, twice) and returns the writer and
  // a first reader. Prefer make_double_buffer<T, Op>(args...); this form lets you pick Fence.
  template <class... Args>
  requires std::constructible_from<T, const Args&...>
  [[nodiscard]] static std::pair<writer, reader> create(const Args&... args) {
    auto shared = std::make_shared<core>(args...);
    reader first_reader(shared);
    return {writer(std::move(shared)), std::move(first_reader)};
  }

  // A consistent, read-only view of the published copy. Movable, not copyable, not
  // assignable.
  class [[nodiscard]] read_guard {
   public:
    read_guard(const read_guard&) = delete;
    read_guard& operator=(const read_guard&) = delete;
    // The source is left with no snapshot: reading through it is a contract breach (reported
    // where assertions are on, see get()), and where they are off it dereferences a null
    // pointer -- undefined behaviour, on Linux a crash at once for a T smaller than the unmapped
    // first page, never a read of the copy the writer is rewriting or of memory already freed.
    read_guard(read_guard&& other) noexcept
        : slot_(std::exchange(other.slot_, &epochs_type::detached())),
          value_(std::exchange(other.value_, nullptr)) {}
    read_guard& operator=(read_guard&&) = delete;
    ~read_guard() {
      TANDEM_SYNC_POINT();  // the writer may be scanning or waiting for us
      // Step 4 (or the end of a nested guard). A moved-from guard holds the detached slot,
      // on which leave() does nothing: no test of our own on the fast path.
      epochs_type::leave(*slot_);
    }

    // Precondition: not moved from (checked where assertions are on). Not noexcept: a narrow
    // contract.
    [[nodiscard]] const T& operator*() const { return get(); }
    [[nodiscard]] const T* operator->() const { return std::addressof(get()); }
    [[nodiscard]] const T& get() const {
#if TANDEM_ENABLE_ASSERTS
      // A call that does not return (unlike TANDEM_ASSERT's handler, which may): otherwise
      // g++ -O2 sees "null, handler returns, dereference" and warns -Wnull-dereference in
      // every user's read.
      if (TANDEM_UNLIKELY(value_ == nullptr)) read_after_move();
#endif
      return *value_;
    }
    // False once moved from.
    explicit operator bool() const noexcept {
      return value_ != nullptr;
    }

   private:
    friend class reader;
    read_guard(typename epochs_type::slot* slot, const T* value) noexcept
        : slot_(slot), value_(value) {}

    // The assertion handler (a test's may throw); std::abort() if it returns: there is no
    // snapshot to read.
    [[noreturn]] TANDEM_NOINLINE static void read_after_move() {
      ::tandem::detail::fatal_assertion_failed("value_ != nullptr",
                                               "read through a moved-from double_buffer read_guard",
                                               __FILE__, __LINE__, "read_guard::get");
    }

    typename epochs_type::slot* slot_;  // &epochs_type::detached(): moved from
    const T* value_;
  };

  // A read handle. Copy it to get another (each copy has its own epoch slot); one thread at a
  // time uses a reader, but it may be handed to another thread between uses: with no guard
  // of it alive (a read() there that nests into a guard another thread opened is reported as
  // two threads using one reader, where assertions are on).
  class reader {
   public:
    // Throws std::bad_alloc when a new chunk of reader slots cannot be allocated. A copy of a
    // moved-from reader is another moved-from reader.
    reader(const reader& other)
        : core_(other.core_), slot_(claim_slot(core_.get())), published_(other.published_) {}
    reader(reader&& other) noexcept
        : core_(std::move(other.core_)),
          slot_(std::exchange(other.slot_, &epochs_type::detached())),
          published_(std::exchange(other.published_, nullptr)) {
      TANDEM_ASSERT(!has_guard(), "a reader was moved while a read_guard on it was alive");
    }
    // Both assignments read the source completely before releasing the old slot and buffer:
    // correct for self-assignment and for a source that lives inside the released buffer.
    reader& operator=(const reader& other) {
      if (this == &other) return *this;
      TANDEM_ASSERT(!has_guard(), "a reader was assigned while a read_guard on it was alive");
      reader copy(other);  // may throw (bad_alloc): *this is unchanged
      swap(copy);
      return *this;  // `copy` now holds the old state and releases it
    }
    reader& operator=(reader&& other) noexcept {
      TANDEM_ASSERT(!has_guard(), "a reader was assigned while a read_guard on it was alive");
      reader taken(std::move(other));
      swap(taken);
      return *this;  // `taken` now holds the old state (or nothing) and releases it
    }
    ~reader() {
      TANDEM_ASSERT(!has_guard(), "a read_guard outlived the reader it was taken from");
      leave_slot();
    }

    // Exchanges what the two readers read. Neither may have a live guard.
    void swap(reader& other) noexcept {
      TANDEM_ASSERT(!has_guard() && !other.has_guard(),
                    "a reader was swapped while a read_guard on it was alive");
      core_.swap(other.core_);
      std::swap(slot_, other.slot_);
      std::swap(published_, other.published_);
    }
    friend void swap(reader& a, reader& b) noexcept { a.swap(b); }

    // Pins the published copy until the returned guard (and every guard nested in it on this
    // reader) is gone. Wait-free. Throws std::logic_error on a moved-from reader (only then).
    // The reader must outlive the guard: `w.reader().read()->size()` is fine (the temporary
    // reader dies after its guard, at the end of the full expression), `auto g =
    // w.reader().read();` is not (reported where assertions are on; see leave_slot()).
    [[nodiscard]] read_guard read() {
      typename epochs_type::slot& s = *slot_;
      TANDEM_SYNC_POINT();  // the writer may swap or record right before we announce
      // Step 1, fast form: fails for a nested guard, a moved-from reader (the detached slot)
      // and a registry whose readers must pay real fences; read_slow() sorts those out.
      const T* pinned;
      if (TANDEM_LIKELY(epochs_type::try_enter(s))) {
        TANDEM_SYNC_POINT();  // announced, nothing loaded yet
        pinned = pin(s);
      } else {
        pinned = read_slow(s);
      }
      return read_guard(&s, pinned);
    }

   private:
    friend class double_buffer;
    friend class read_guard;
    friend class writer;

    explicit reader(std::shared_ptr<core> shared)
        : core_(std::move(shared)),
          slot_(claim_slot(core_.get())),
          published_(&core_->published.get()) {}

    // Step 2, inside the read section (after step 1): pins the published copy and
    // acknowledges its generation (reader_epochs (A1)), so that the writer's next publish
    // needs no heavy fence and no wait for this reader. Two loads of the line `published`
    // is on, two stores on the reader's own slot line (which step 1 wrote already), nothing
    // written in the reader object, no branch.
    const T* pin(typename epochs_type::slot& s) noexcept {
      // Read once: after the acquire load below, compilers would load the member again.
      const publication* const published = published_;
      // acquire (seq_cst under TSan, as the first load after step 1 must be): pairs with the
      // writer's release store of the generation (W5a), which follows its pointer store (W5),
      // so the pointer loaded below is that version or a newer one.
      const std::uint64_t generation = published->generation.load(epochs_type::pinned_load_order);
      TANDEM_SYNC_POINT();  // the writer may publish again between the two loads
      // acquire: pairs with W5, so all writes to the copy made before its publish are visible.
      const T* pinned = published->pointer.load(epochs_type::pinned_load_order);
      s->pinned = pinned;  // for nested guards; on the slot's line, not in the reader
      epochs_type::acknowledge(s, generation);
      return pinned;
    }

    static typename epochs_type::slot* claim_slot(core* shared) {
      return shared != nullptr ? &shared->epochs.claim() : &epochs_type::detached();
    }

    [[nodiscard]] bool has_guard() const noexcept {
      return slot_ != &epochs_type::detached() && epochs_type::inside(*slot_);
    }

    // Out of line: what try_enter() refused. Returns the copy the guard on `s` reads.
    TANDEM_NOINLINE const T* read_slow(typename epochs_type::slot& s) {
      // Step 0: a moved-from reader has the detached slot.
      if (TANDEM_UNLIKELY(&s == &epochs_type::detached())) {
        detail::throw_double_buffer_used_after_move(
            "tandem::double_buffer::reader used after move (read() on a moved-from reader)");
      }
      if (epochs_type::inside(s)) {
        // Step 3: a nested guard reuses the outer guard's snapshot.
        TANDEM_ASSERT(epochs_type::opened_by_this_thread(s),
                      "a reader was used by two threads at once (copy it: one per thread), or "
                      "read again while another thread held one of its guards");
        epochs_type::enter_nested(s);
        return static_cast<const T*>(s->pinned);
      }
      epochs_type::enter(s);  // step 1 with a real fence (no membarrier)
      TANDEM_SYNC_POINT();    // announced, pointer not yet loaded
      return pin(s);          // step 2, as in read()
    }

    void leave_slot() noexcept {
      if (slot_ == &epochs_type::detached()) return;
      typename epochs_type::slot& s = *slot_;
      slot_ = &epochs_type::detached();
      // A guard still open on the slot: a reader destroyed before its guard (a contract
      // breach, reported by ~reader's assertion where assertions are on). The slot is kept,
      // not given back: the guard still reads the copy it pinned, so the writer must go on
      // waiting for it, and its release must find the slot as it left it. Until 2026-12-01
      // the reader left the section and gave the slot back: the writer overwrote the copy the
      // guard read, the next reader to claim the slot took the stale pinned copy for a nested
      // guard's, and the guard's late release left the slot looking inside for ever (the
      // writer then waited for ever). One slot is lost per such guard.
      if (epochs_type::inside(s)) return;
      core_->epochs.release(s);
    }

    // The same members in every build type (no NDEBUG-dependent layout).
    std::shared_ptr<core> core_;
    typename epochs_type::slot* slot_;  // nullptr: moved from
    // &core_->published (nullptr: moved from). The read path only reads the reader's
    // members: what it writes (epoch, owner, pinned copy, acknowledgment) is on its slot's line.
    const publication* published_;
  };

  // The single writer. Move-only; not thread-safe (share it behind a mutex).
  class writer {
   public:
    writer(writer&& other) noexcept
        : core_((refuse_while_applying(other), std::move(other.core_))),
          hidden_(std::exchange(other.hidden_, nullptr)),
          pending_(std::move(other.pending_)),
          applied_(std::exchange(other.applied_, 0)),
          replay_(std::move(other.replay_)),
          replayed_(std::exchange(other.replayed_, 0)),
          must_wait_(std::exchange(other.must_wait_, false)) {}
    // Reads the source completely before releasing the old state: correct for self-assignment
    // and for a source that lives inside the released buffer.
    writer& operator=(writer&& other) noexcept {
      refuse_while_applying(*this);
      writer taken(std::move(other));
      swap(taken);
      return *this;  // `taken` now holds the old state (or nothing) and releases it
    }
    writer(const writer&) = delete;
    writer& operator=(const writer&) = delete;
    // The pending ops are destroyed with the writer: one whose destructor calls back into it
    // (push() into the log being destroyed) is refused as during publish() (found by review,
    // 2026-12-02: the same kind as rc_map's and registry's builds during their destructors).
    ~writer() {
      refuse_while_applying(*this);
      applying_ = true;
    }

    // Exchanges the two writers' buffers and logs. Neither may be inside a call.
    void swap(writer& other) noexcept {
      refuse_while_applying(*this);
      refuse_while_applying(other);
      core_.swap(other.core_);
      std::swap(hidden_, other.hidden_);
      pending_.swap(other.pending_);
      std::swap(applied_, other.applied_);
      replay_.swap(other.replay_);
      std::swap(replayed_, other.replayed_);
      std::swap(must_wait_, other.must_wait_);
    }
    friend void swap(writer& a, writer& b) noexcept { a.swap(b); }

    // Logs `op`; readers see it after the next successful publish(). Never waits.
    // Throws std::bad_alloc if the log cannot grow (the op is then not logged), and
    // std::logic_error on a moved-from writer. `op`: an Op or anything implicitly convertible
    // to one; an Op lvalue is copied by its copy constructor (from a const lvalue, so a
    // type-erasing Op's forwarding constructor template does not wrap it in another Op: rule
    // 54; until 2026-12-04 a by-value parameter, which the caller copy-initialised), an rvalue
    // moved. A scalar Op (a function pointer) is taken by value (detail::by_value_sink).
    // A null function pointer or an empty std::function as `op` is std::invalid_argument,
    // with nothing logged (it would crash or throw in the next publish(), far from here: rule
    // 36).
    template <class O = Op>
    requires(!detail::by_value_sink<Op>) && detail::sink_argument<O, Op> void push(O&& op) {
      const entry_check check(this);
      pending_.emplace_back(detail::as_source<Op>(std::forward<O>(op)));
      refuse_null_op_logged_last("tandem::double_buffer::writer::push");
    }
    void push(Op op) requires detail::by_value_sink<Op> {
      const entry_check check(this);
      detail::require_callable(op, "tandem::double_buffer::writer::push", "op");
      pending_.push_back(op);
    }

    // push(Op(args...)), with the op built in place in the log: no temporary Op is moved and
    // destroyed (for a std::variant op, two visits fewer per op). Throws what Op's constructor
    // throws, or std::bad_alloc: the op is then not logged; std::logic_error on a moved-from
    // writer. An aggregate Op is built as Op{args...}, on every compiler: C++20's
    // parenthesised aggregate initialisation (g++ 10+, clang 16+) would accept the narrowing
    // conversions that push(Op{...}) rejects (emplace(2.9) into an int member), and clang 14
    // and 15 have none (until 2026-12-03 they refused emplace of an aggregate that g++
    // accepted: found by a new user's trial); where the standard library can only build it
    // with parentheses, it is built as a temporary and moved in.
    template <class... Args>
    requires detail::emplaceable_op<Op, Args...>
    void emplace(Args&&... args) {
      const entry_check check(this);
      if constexpr (std::is_aggregate_v<Op> && !std::is_constructible_v<Op, Args...>) {
        pending_.push_back(Op{std::forward<Args>(args)...});
      } else {
        pending_.emplace_back(std::forward<Args>(args)...);
      }
      refuse_null_op_logged_last("tandem::double_buffer::writer::emplace");
    }

    // Applies the pending ops to the hidden copy and makes it the published one. Waits first
    // for readers still in the hidden copy from the previous publish (spin, yield, block).
    // Exceptions: see the header comment (ops' exceptions; std::logic_error when the wait
    // would be for a guard this thread holds, or on a moved-from writer). Never throws once
    // it has published.
    void publish() {
      const entry_check check(this);  // W0
      if (pending_.empty()) return;   // W1
      if (must_wait_) {               // W2
        if (!record_unacknowledged()) {
          core_->epochs.wait_for_recorded_readers(self_wait_message);
        }
        must_wait_ = false;
      }
      apply_and_swap();
    }

    // publish() if no reader is still in the hidden copy; otherwise returns false, having
    // changed nothing, without blocking (it may spin a few us for readers that are reading:
    // W2a). Exceptions as publish() (except the wait's logic_error).
    [[nodiscard]] bool try_publish() {
      const entry_check check(this);
      if (pending_.empty()) return true;
      if (must_wait_) {
        if (!record_unacknowledged() && !core_->epochs.recorded_readers_left()) return false;
        must_wait_ = false;
      }
      apply_and_swap();
      return true;
    }

    // True when a read guard opened by the calling thread, on any reader of this double_buffer,
    // is alive (a guard it handed to another thread counts as its own, as for publish(); one
    // another thread opened and handed to this one does not: release such a guard before
    // waiting for the writer's mutex).
    // O(reader slots), two loads each; reads only the readers' slots, so it may be called
    // while another thread is using this writer (false on a moved-from writer). For a writer
    // shared behind a mutex: a thread holding a guard must not wait for that mutex, since the
    // thread holding it may be publishing and so waiting for that very guard (neither would
    // go on); check this first and refuse (docs/double_buffer.md, "Sharing one writer").
    [[nodiscard]] bool this_thread_holds_guard() const noexcept {
      return core_ != nullptr && core_->epochs.held_by_this_thread();
    }

    // Ops pushed but not yet published (0 on a moved-from writer). It changes nothing, so an op
    // (or double_buffer_map's erase_if predicate) may call it during publish(): it then counts
    // the batch being published. (Until 2026-12-03 that call failed the two-threads check below
    // where assertions are on, and returned the count where they are off; found by review.)
    [[nodiscard]] std::size_t pending() const noexcept {
      // relaxed: busy_ and busy_thread_ only detect misuse (two threads in one writer); they
      // order nothing.
      TANDEM_ASSERT(!busy_.load(std::memory_order_relaxed) ||
                        busy_thread_.load(std::memory_order_relaxed) == detail::thread_serial(),
                    detail::writer_shared_without_mutex);
      return pending_.size();
    }

    // A new reader; it starts on the currently published copy. Throws std::bad_alloc (a new
    // chunk of reader slots), or std::logic_error on a moved-from writer. Unlike the writer's
    // other members it may be called from any thread while the writer's own thread pushes and
    // publishes (it only reads the pointer to the shared state, which only moving, assigning or
    // swapping the writer changes, and claims a slot lock-free).
    [[nodiscard]] double_buffer::reader reader() const {
      if (TANDEM_UNLIKELY(core_ == nullptr)) {
        detail::throw_double_buffer_used_after_move(
            "tandem::double_buffer::writer used after move (reader() on a moved-from writer)");
      }
      return double_buffer::reader(core_);
    }

   private:
    friend class double_buffer;

    // An Op that calls nothing (a null function pointer, an empty std::function: also one
    // converted from nullptr) just logged by push() or emplace() is taken back out and refused
    // with std::invalid_argument: it would crash or throw in the next publish(), far from the
    // call (rule 36). Checked on the logged Op, after any conversion. A no-op for other Ops.
    void refuse_null_op_logged_last(const char* where) {
      if constexpr (detail::default_calls_nothing<Op>::value) {
        if (!detail::calls_something(pending_.back())) {
          pending_.pop_back();
          detail::require_callable(Op{}, where, "op");
        }
      }
    }

    // An op moving, swapping or destroying the writer that is applying it would free the log
    // publish() is walking. These members are noexcept, so the breach is fatal, in every build
    // (a plain flag: the assertion handler, then std::abort()).
    static void refuse_while_applying(const writer& w) noexcept {
      if (TANDEM_UNLIKELY(w.applying_)) detail::writer_moved_while_applying();
    }

    explicit writer(std::shared_ptr<core> shared)
        : core_(std::move(shared)), hidden_(std::addressof(core_->second_copy)) {}

    // Every entry point: refuses a moved-from writer (all builds) and, with assertions on,
    // checks that one writer is never entered twice at once. Same members in every build.
    class entry_check {
     public:
      explicit entry_check(writer* self) : self_(self) {
        if (TANDEM_UNLIKELY(self->core_ == nullptr)) {
          detail::throw_double_buffer_used_after_move(
              "tandem::double_buffer::writer used after move (push() or publish() on a "
              "moved-from writer)");
        }
#if TANDEM_ENABLE_ASSERTS
        // A second thread first, so that it is named as such (the flag below cannot tell it
        // from an op calling back). relaxed: a misuse detector, not synchronisation. The
        // thread that entered first stores its serial after its exchange, so a second thread
        // may read 0 there: not its own serial either.
        const bool was_busy = self->busy_.exchange(true, std::memory_order_relaxed);
        TANDEM_ASSERT(!was_busy || self->busy_thread_.load(std::memory_order_relaxed) ==
                                       detail::thread_serial(),
                      detail::writer_shared_without_mutex);
        owns_ = !was_busy;
        // relaxed: as busy_; lets pending() tell an op of this call from another thread.
        if (owns_) self->busy_thread_.store(detail::thread_serial(), std::memory_order_relaxed);
#endif
        // Every build: an op (or double_buffer_map's erase_if predicate) that calls back into
        // its writer would change the log the publish is walking (a use-after-free where
        // assertions are off, found by a new user's trial, 2026-12-01).
        if (TANDEM_UNLIKELY(self->applying_)) {
          // ~writer raises the flag with nobody inside: give busy_ back before refusing.
          if (owns_) self->busy_.store(false, std::memory_order_relaxed);
          detail::throw_writer_reentered();
        }
        // For the whole call, not only while publish() applies: push() and emplace() run user
        // code too (an op's constructor, and the moves and destructors of a growing log), and
        // an op's destructor that pushed from inside push_back's reallocation wrote into the
        // storage being freed (found by review, 2026-12-02: ASan heap-use-after-free where
        // assertions are off; the debug-only busy_ check saw it). Two plain stores.
        self->applying_ = true;
      }
      entry_check(const entry_check&) = delete;
      entry_check& operator=(const entry_check&) = delete;
      ~entry_check() {
        self_->applying_ = false;
        // relaxed: see pending(): a misuse detector, not a synchronisation point. The serial
        // is cleared first, so a thread that enters later cannot find its own stale one while
        // a third thread is between its exchange and its store.
        if (owns_) {
          self_->busy_thread_.store(0, std::memory_order_relaxed);
          self_->busy_.store(false, std::memory_order_relaxed);
        }
      }

     private:
      writer* self_;
      bool owns_ = false;
    };

    // W3 .. W6. Precondition: no reader is in the hidden copy.
    // Called by publish() and try_publish() only: their entry_check has raised applying_.
    void apply_and_swap() {
      TANDEM_ASSERT(applying_, "apply_and_swap outside a writer call");
      // W3: replay the last batch. On a throw replayed_ points at the failed op, so the next
      // publish resumes there (the op left the copy unchanged and kept its payload: the
      // double_buffer_operation contract). The loops keep their index, the log's bounds and
      // the copy in locals: an op must not use its writer (entry_check refuses it in every
      // build), so nothing changes them, and they are not reloaded per op.
      T& target = *hidden_;
      {
        Op* const log = replay_.data();
        const std::size_t count = replay_.size();
        std::size_t i = replayed_;
        try {
          for (; i < count; ++i) std::move(log[i])(target);
        } catch (...) {
          replayed_ = i;
          throw;
        }
      }
      replay_.clear();
      replayed_ = 0;
      // The log's memory follows the batches in flight, not the largest batch ever: a replay
      // vector with room for over four times the current batch (and more than
      // log_capacity_floor ops) is released; the next batch regrows it geometrically.
      if (replay_.capacity() > log_capacity_floor && replay_.capacity() > 4 * pending_.size()) {
        std::vector<Op>().swap(replay_);
      }

      // W4: first application of each pending op, in order. On a throw applied_ points at the
      // failed op, which is dropped (the ops after it stay pending).
      {
        Op* const log = pending_.data();
        const std::size_t count = pending_.size();
        std::size_t i = applied_;
        try {
          for (; i < count; ++i) log[i](target);
        } catch (...) {
          applied_ = i;
          drop_pending(i);
          throw;
        }
        applied_ = count;
      }

      swap_and_record();
    }

    // W5 (the commit point) and W6: noexcept, so nothing can throw once readers may see the
    // batch.
    void swap_and_record() noexcept {
      TANDEM_SYNC_POINT();  // readers keep entering and leaving right up to the swap
      // relaxed: our own last store.
      T* const old_published = core_->published->pointer.load(std::memory_order_relaxed);
      // W5, release (seq_cst under TSan): pairs with the readers' acquire load (step 2).
      core_->published->pointer.store(hidden_, epochs_type::unpin_publish_order);
      // W5a, release: after the pointer, so a reader that reads this generation (acquire)
      // loads this pointer or a newer one from then on (step 2a, reader_epochs (A1)).
      // relaxed load: our own last store.
      core_->published->generation.store(
          core_->published->generation.load(std::memory_order_relaxed) + 1,
          std::memory_order_release);
      TANDEM_SYNC_POINT();  // swapped, not yet recorded: readers may hold either pointer
      hidden_ = old_published;
      // W6: a full fence and one load. Readers that may still be in the old copy are not
      // recorded now (that needs the heavy fence): the next publish first checks whether
      // they all acknowledged this generation meanwhile (W2).
      must_wait_ = core_->epochs.readers_may_be_inside();
      // The published batch becomes the replay log; keep both vectors' capacity.
      replay_.swap(pending_);
      applied_ = 0;
    }

    // W2, first half: true when no reader can be in the hidden copy any more, because every
    // reader acknowledged the last generation (no heavy fence, no system call: the usual
    // case when readers read between publishes). Otherwise, once per wait, heavy fence and
    // record the readers inside that have not acknowledged it (reader_epochs steps 4 and
    // (A2)); the caller then waits for them, or checks whether they have left.
    // A wait that already recorded (a try_publish() that returned false, or a publish() that
    // threw the self-wait error) keeps its record: recorded_count() is not 0.
    bool record_unacknowledged() noexcept {
      if (core_->epochs.recorded_count() != 0) return false;
      // relaxed: the writer's own last store (W5a).
      const std::uint64_t generation = core_->published->generation.load(std::memory_order_relaxed);
      if (core_->epochs.acknowledged_since(generation)) return true;
      core_->epochs.record_readers_inside(generation);
      return false;
    }

    // Removes pending_[index] without requiring Op to be assignable.
    void drop_pending(std::size_t index) noexcept {
      for (std::size_t i = index; i + 1 < pending_.size(); ++i) {
        std::destroy_at(std::addressof(pending_[i]));
        std::construct_at(std::addressof(pending_[i]), std::move(pending_[i + 1]));
      }
      pending_.pop_back();
    }

    // The same members in every build type (no NDEBUG-dependent layout).
    std::shared_ptr<core> core_;  // nullptr: moved from
    T* hidden_ = nullptr;         // the copy readers do not get from `published`
    // Below this many ops the log keeps its capacity between batches (no reallocation for the
    // usual small batches); above it, see apply_and_swap.
    static constexpr std::size_t log_capacity_floor = 1024;
    std::vector<Op> pending_;  // pushed since the last publish; [0, applied_) are in hidden_
    std::size_t applied_ = 0;
    std::vector<Op> replay_;         // the last published batch, to replay on hidden_
    std::size_t replayed_ = 0;       // [0, replayed_) are already replayed
    bool must_wait_ = false;         // a reader may be in hidden_ (one was claimed at W6)
    std::atomic<bool> busy_{false};  // inside push/publish/try_publish (checked with asserts on)
    // The thread inside (detail::thread_serial), with asserts on; a member in every build.
    std::atomic<std::uint64_t> busy_thread_{0};
    // Inside a writer call (push, emplace, publish, try_publish: entry_check) or ~writer, where
    // user code runs (ops' constructors, moves, applications and destructors): an op calling
    // back into its writer is refused in every build. A plain flag: only this thread sets and
    // reads it.
    bool applying_ = false;
  };
};

// Builds the two copies as T(args...) twice (args are passed as lvalues both times, so they
// are not moved into the first copy) and returns the writer and a first reader.
template <class T, class Op, class... Args>
requires double_buffer_value<T> && double_buffer_operation<Op, T>
[[nodiscard]] auto make_double_buffer(Args&&... args)  // -> pair<writer, reader>
{
  static_assert(std::is_constructible_v<T, const std::remove_reference_t<Args>&...>,
                "tandem::make_double_buffer<T, Op>(args...): T must be constructible from "
                "args... passed as lvalues (both copies are built from the same args)");
  return double_buffer<T, Op>::create(args...);
}

}  // namespace tandem
