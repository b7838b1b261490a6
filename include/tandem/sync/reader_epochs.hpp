// tandem/sync/reader_epochs.hpp -- a registry of per-reader epochs: how a single writer learns
// that every reader has stopped looking at something it wants to change.
//
// What it is for: left-right style structures (tandem::double_buffer) where readers must never
// lock, never wait and never write a cache line that another reader writes, while one writer
// occasionally needs to know "has everyone who could still see the old version left?".
//
// Algorithm (the evmap/left-right epoch scheme, with slots that are reused):
//  1. Each reader claims a slot: one std::atomic<uint64_t> epoch alone on its cache line(s)
//     (cache_padded), with the slot's other reader-written fields. Slots live in fixed-size
//     chunks linked into an append-only list; a slot freed by a destroyed reader is claimed by
//     the next new reader, so creating and destroying readers forever needs no more slots than
//     were alive at once. Claiming is lock-free (one exchange per slot tried, one
//     compare-exchange to link a new chunk), and the writer never takes a lock, so creating a
//     reader while the writer waits cannot deadlock (the left-right crate's PR #159 pitfall: a
//     registration mutex held by a waiting writer). A successful claim also counts the slot in
//     `claimed_count` and issues a full fence (C1).
//  2. Reader enters: stores its thread's serial in the slot's `owner` (R0), epoch += 1 (now
//     odd = "inside"; release), then light fence, then the caller loads the pointer it wants to
//     read (with pinned_load_order). Epochs advance by 1 on enter and 3 on leave, so bit 1
//     never changes: it is set for good in every slot of a registry whose light fence must be
//     a real fence (asymmetric_fence without membarrier), and try_enter(), the inlined fast
//     path, is one load, one test of the two low bits, two stores and a compiler barrier; a
//     slot that is inside (a nested section), the detached slot (a moved-from reader) or a
//     fenced-mode slot fails that test and the caller takes its slow path (enter()).
//  3. Reader leaves: if nested sections are open on the slot (enter_nested()), one of them
//     just ends (nested -= 1, a compare-exchange: guards may be released on two threads at
//     once, and the one that finds the count at 0 ends the outer section). Otherwise epoch += 3
//     (even = "outside", release), light fence, then loads its slot's `writer_waiting` word; only
//     if it is not 0 does it take the rare path: in fenced mode (bit 1 of the word, set for good) a
//     real fence and a re-load; if the writer is blocked on this very reader (bit 0), clear that
//     bit and notify_all() on the word. The word sits on the reader's own line, so checking it
//     costs no shared cache line, and readers the writer is not waiting for never notify.
//  4. Writer, after making the old version unreachable (it stored the new pointer):
//     record_readers_inside() = full fence (W0'), then if no slot is claimed
//     (`claimed_count` is 0) nothing is recorded and no heavy fence is issued; otherwise heavy
//     fence, then for every slot read the epoch and write it (if odd) or 0 (if even) into the
//     chunk's writer-only `recorded` array. Those readers may still see the old version; every
//     reader that enters later is guaranteed to load the new pointer. Recording writes into
//     storage that exists with the slots: it never allocates and never throws, so a caller
//     may record after its own commit point.
//  5. Writer, when it next needs the old version: wait_for_recorded_readers() first checks
//     that no recorded reader is still inside a read section the calling thread itself opened
//     (its `owner` is this thread: that wait could never end) and throws std::logic_error,
//     forgetting nothing, if one is (W0). Then it waits, per recorded slot, until its epoch
//     differs from the recorded one: spin, yield (backoff), then set bit 0 of that slot's
//     `writer_waiting` word, heavy fence, re-check the epoch, and block in a futex wait on the
//     word, re-arming after each wake-up; once the epoch moved on it clears the bit and forgets
//     that slot's record. Or recorded_readers_left() checks without waiting (and forgets the
//     readers that have left).
//  6. Acknowledgments, for callers that number their versions (double_buffer: one generation
//     per publish, stored after the pointer). A reader that loaded generation g (acquire)
//     stores g in its slot's `acknowledged` word (acknowledge(), release (A1)): it will never
//     again load an older version. Instead of step 4 right after the swap, the writer calls
//     readers_may_be_inside() (the full fence and the claimed-slot count only), and when it
//     next needs the old version, acknowledged_since(g) (A2): if every claimed slot
//     acknowledged g, no reader can be in the old version and none will be -- no heavy fence,
//     no record, no wait. It spins briefly (backoff's spin phase) only while every slot still
//     missing belongs to a reader whose epoch moved since the writer last looked (it is
//     reading, so it acknowledges at its next read); an idle slot makes it give up at once.
//     Otherwise step 4 with the heavy fence, recording only the readers inside that have not
//     acknowledged g (record_readers_inside(g)), and step 5. A reader that reads between two
//     publishes thus costs the writer no system call at all.
//
// Guarantees: readers are wait-free: enter(), leave() and acknowledge() are a bounded number
// of operations on the reader's own slot; no reader writes (or reads) a line that another
// reader writes. The writer waits only for readers that were inside at step 4 (a reader that
// keeps entering and leaving does not starve it: any change of epoch releases it), and with
// acknowledgments only for those that had not acknowledged. A wait the calling thread
// would block itself fails loudly (std::logic_error) instead of hanging. One writer at a time
// per registry; any number of readers; claim()/release() from any thread. Only claim() (a new
// chunk) and wait_for_recorded_readers() (the self-wait error) throw.
//
// Costs: one slot = cache_line_size bytes (128 on x86-64) per live reader, allocated in chunks
// of slots_per_chunk, plus two writer-only lines per chunk (records, seen epochs). Reader, per
// enter/leave pair with the asymmetric fence (membarrier available): two loads of its epoch,
// one load of its writer_waiting word, three plain stores (owner, epoch twice), one read and
// test of the thread's serial (sync/thread_serial.hpp: a thread_local) and two compiler
// barriers -- about a dozen instructions, no call after a thread's first section (the
// portable fence adds two full fences); acknowledge() one more store on that line. Writer, per
// record: a full fence and one load when no reader slot is claimed; otherwise one membarrier
// system call (about 0.1-0.5 us with no other thread running, several us when it must
// interrupt running readers) and a scan of every slot; per blocking wait another membarrier;
// per wait and per recorded_readers_left() a scan; per acknowledged_since() one or a few
// scans (two loads per slot), no system call.
//
// Memory ordering (numbers refer to the comments in the code):
//  - (R0) `owner` is written only by the thread that opens a read section on the slot,
//    relaxed, before its release store of the odd epoch (R1); it is not cleared on leave.
//    The writer's self-wait check (W0) acquires the epoch and compares it with the recorded
//    one before it reads `owner`. If the recorded section is still open, that acquire read
//    the opener's release store, so `owner` reads the opener's serial or a later one; every
//    later write belongs to a later section, so the thread that wrote it would have to have
//    written a newer epoch first -- and the writer thread reads back its own newer epoch
//    (coherence), never the recorded one. So (W0) is true exactly when the calling thread
//    opened the recorded section and that section is still open -- given that no two threads
//    of the process, alive or not, share a serial (sync/thread_serial.hpp).
//  - (R1) the reader's epoch store + light fence, against (W1) the writer's pointer store +
//    heavy fence + (W2) epoch loads: a Dekker handshake. Either the writer's (W2) sees the odd
//    epoch (the reader is recorded and waited for), or the reader's pointer load after (R1)
//    sees the new pointer. The light/heavy pair acts as a seq_cst fence on each side.
//  - (C1)/(W0') skipping the heavy fence: claim() increments `claimed_count` and then issues
//    a seq_cst fence before it returns the slot, so before the reader's first (R1); the
//    writer, after its pointer store, issues a seq_cst fence and loads `claimed_count`. By
//    the rule for two seq_cst fences, either the writer's load sees the claim (it then takes
//    the heavy path above) or every load the reader makes after its claim -- its pointer loads
//    included -- sees the new pointer: a reader the writer cannot see cannot see the old copy.
//    A count that reads 0 because readers released their slots is as good: a released slot
//    has no reader, and (C2) its release decrement (release) read by the writer's acquire
//    load orders everything its reader read before the writer's next writes.
//  - (R3) the reader's release store of the even epoch pairs with the writer's acquire loads
//    in (W2)/(W3): everything the reader read happens-before what the writer then writes.
//  - (R4) the reader's "store even epoch; light fence; load its slot's writer_waiting"
//    against (W4) the writer's "set bit 0 of that word; heavy fence; load its epoch" is a
//    second Dekker handshake: if the reader does not see the bit, the writer's re-check sees
//    the even epoch and does not block; if it does, the reader notifies after its store. That
//    is why no wake-up is lost although a reader that sees no waiting writer skips the notify.
//    In fenced mode the reader always sees bit 1, so it always takes the rare path, whose
//    real fence and re-load are the same handshake with a real fence on the light side.
//  - (A1)/(A2) acknowledgments: the caller's writer stores its version (release), then its
//    generation g (release); a reader loads g (acquire), then the version, then stores g in
//    its slot (release). A writer that reads that g (acquire) knows (a) every read the reader
//    made before is ordered before the writer's next writes (release/acquire on the slot
//    word), and (b) every version the reader loads from now on is g's or newer: it read g,
//    which the writer stored after g's version, so coherence forbids it an older one. Both
//    are positive observations: no fence is needed, unlike "not seen inside" (R1)/(W1). A
//    slot seen unclaimed (acquire, pairs with release()) has no reader, and one that claims it
//    after the writer's (W0') fence loads the new version ((C1)); a slot reused by a new
//    reader keeps the last owner's acknowledgment, which stays true for the new owner (it
//    claimed after that owner released, so it loads that version or a newer one).
//  - The `recorded` and `seen` arrays are written and read by the writer only (chunks reach it
//    through the acquire load of `next`), so they are plain integers.
//  - Under ThreadSanitizer (TANDEM_TSAN), which models neither stand-alone fences nor
//    membarrier, the same steps use seq_cst stores and loads instead of fences: a Dekker
//    handshake that TSan understands. Slower, same protocol.
//  - TANDEM_SYNC_POINT() (sync_point.hpp) marks the steps other threads interleave with; stress
//    builds delay there to widen the windows. It only delays, it never reorders.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>

#include "../detail/port.hpp"
#include "assert.hpp"
#include "asymmetric_fence.hpp"
#include "atomic_wait.hpp"
#include "backoff.hpp"
#include "cache_padded.hpp"
#include "sync_point.hpp"
#include "thread_serial.hpp"

namespace tandem::sync {

template <fence_policy Fence = asymmetric_fence>
class TANDEM_PROCESS_WIDE reader_epochs {  // its detached slot is one per process
  struct slot_state {
    slot_state() = default;
    constexpr slot_state(std::uint64_t first_epoch, std::uint32_t first_nested) noexcept
        : epoch(first_epoch), nested(first_nested) {}

    // Odd: the owning reader is inside a read section. Bit 1: fenced mode (never changes).
    // Only the owner writes it.
    std::atomic<std::uint64_t> epoch{0};
    // detail::thread_serial() of the thread that opened the current (or last) read section
    // (R0); 0 before the first. A serial is never reused, not even after its thread exits: a
    // reused identity (std::thread::id, the thread pointer) made the writer of a new thread
    // that holds no guard throw the self-wait error for a guard an exited thread had opened
    // and handed on (docs/reliability.md rule 30).
    std::atomic<std::uint64_t> owner{0};
    // Bit 0: set by the writer only while it is blocked waiting for this reader to leave; the
    // owner checks the word after leaving. Bit 1: fenced mode (never changes). On the
    // reader's own line: checking it costs no extra line.
    std::atomic<std::uint32_t> writer_waiting{0};
    // Read sections opened inside the current one (enter_nested()). Raised only by the owner;
    // lowered by whichever thread releases a nested guard (guards may be handed over), so two
    // releases on two threads at once must agree on which one ends the outer section: atomic,
    // with a compare-exchange on the nested path only (leave_nested()).
    std::atomic<std::uint32_t> nested{0};
    // Owner-only: what the current section pinned, for the caller's nested sections
    // (double_buffer keeps its pinned copy here). On the owner's line, which entering writes
    // anyway, so the reader object itself is never written on the read path: readers kept
    // side by side (a vector of them, one per thread) share no written line.
    const void* pinned = nullptr;
    // Whether a reader owns this slot. Written when a reader is created or destroyed.
    std::atomic<bool> claimed{false};
    // The newest generation the owner has acknowledged (acknowledge(), (A1)); never decreases
    // while the registry lives. Only the owner writes it; the writer reads it.
    std::atomic<std::uint64_t> acknowledged{0};
  };

 public:
  // One reader's slot. Obtained from claim(), returned with release(); used by one thread at
  // a time (the reader that owns it).
  using slot = cache_padded<slot_state>;

  // 16 slots x 128 bytes = 2 KiB per chunk: the first chunk (inline) covers the common "a
  // reader per thread" case on today's machines without any allocation; more chunks are
  // linked on demand and never freed before the registry.
  static constexpr std::size_t slots_per_chunk = 16;

  // The order the caller must use for the load that follows enter() (step 2), and for the
  // store that makes the old version unreachable before record_readers_inside() (step 4).
  static constexpr std::memory_order pinned_load_order =
      TANDEM_TSAN ? std::memory_order_seq_cst : std::memory_order_acquire;
  static constexpr std::memory_order unpin_publish_order =
      TANDEM_TSAN ? std::memory_order_seq_cst : std::memory_order_release;

  // What wait_for_recorded_readers() throws (as std::logic_error) when a recorded reader is
  // inside a read section the calling thread opened, unless the caller names its own message.
  static constexpr const char* default_self_wait_message =
      "tandem::sync::reader_epochs: the writer would wait forever for a read section opened by "
      "this same thread (leave it before waiting)";

  reader_epochs() : fenced_(light_must_fence()) { init_chunk(first_, fenced_); }
  reader_epochs(const reader_epochs&) = delete;
  reader_epochs& operator=(const reader_epochs&) = delete;
  ~reader_epochs() {
    chunk* next = first_.next.load(std::memory_order_acquire);
    while (next != nullptr) {
      chunk* after = next->next.load(std::memory_order_relaxed);
      delete_chunk(next);
      next = after;
    }
  }

  // --- slots (any thread) ----------------------------------------------------------------

  // Claims a free slot (reusing freed ones first), or links a new chunk. Lock-free.
  // Throws std::bad_alloc if a new chunk is needed and cannot be allocated.
  [[nodiscard]] slot& claim() {
    slot& s = claim_free_slot();
    // (C1) seq_cst count + fence: see "skipping the heavy fence" in the header comment.
    claimed_count_.fetch_add(1, std::memory_order_seq_cst);
#if !TANDEM_TSAN
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
    return s;
  }

  // Returns a slot for reuse. Its owner must be outside (even epoch).
  void release(slot& s) noexcept {
    TANDEM_ASSERT((s->epoch.load(std::memory_order_relaxed) & 1U) == 0,
                  "a reader slot was released while its reader was inside a read section");
    // (C2) release: a writer that reads the count this leaves (acquire, (W0')) and so skips
    // recording and waiting must still find every read the reader made ordered before its
    // next writes (a relaxed decrement left them unordered: a data race on the copy, which
    // TSan reported; no other synchronisation need exist between the reader's thread and the
    // writer's).
    claimed_count_.fetch_sub(1, std::memory_order_release);
    // release: pairs with the acquire exchange in claim() (see there).
    s->claimed.store(false, std::memory_order_release);
  }

  // Number of slots that exist (claimed or free). Grows only when more readers are alive at
  // once than ever before.
  [[nodiscard]] std::size_t capacity() const noexcept {
    return chunk_count_.load(std::memory_order_relaxed) * slots_per_chunk;
  }

  // The slot of a reader that has none (moved from): never claimed, never written. Its epoch
  // is odd, so try_enter() always refuses it; its nested count is 1 and leave() on it does
  // nothing (it takes leave()'s nested branch, which ignores this slot), so a moved-from
  // guard that points here needs no test of its own on release. enter() and enter_nested()
  // must not be called on it.
  [[nodiscard]] static slot& detached() noexcept {
    return detached_slot;
  }

  // --- reader side (the slot's owner) ----------------------------------------------------

  // Step 2, the fast path: enters and returns true when the slot is outside and in
  // membarrier mode (or the policy's light fence needs no check). Returns false, having
  // changed nothing, when the slot is inside already (the caller wants a nested section),
  // is the detached slot, or is in fenced mode (the caller then calls enter()). After true,
  // load what you read with pinned_load_order.
  static bool try_enter(slot& s) noexcept {
    // relaxed: only this thread writes the epoch, so this reads its own last store.
    const std::uint64_t epoch = s->epoch.load(std::memory_order_relaxed);
    if (TANDEM_UNLIKELY((epoch & 3U) != 0)) return false;
    announce(s, epoch);
    light_fast();
    return true;
  }

  // Step 2, any mode. The slot must be outside. After this returns, load what you read with
  // pinned_load_order.
  static void enter(slot& s) noexcept {
    // relaxed: own store, as in try_enter().
    const std::uint64_t epoch = s->epoch.load(std::memory_order_relaxed);
    TANDEM_ASSERT((epoch & 1U) == 0, "reader_epochs::enter on a slot that is already inside");
    announce(s, epoch);
    if ((epoch & fenced_bit) != 0) {
      full_fence();
    } else {
      light_fast();
    }
  }

  // Opens a read section inside the current one (the slot must be inside): it ends at the
  // matching leave(), the outer one at the leave() after it. Touches only the owner-only count.
  static void enter_nested(slot& s) noexcept {
    TANDEM_ASSERT(inside(s),
                  "a read section ended while a nested one was being opened: a double_buffer "
                  "reader read on one thread while another thread released one of its guards (a "
                  "guard handed to another thread must be released before its reader reads "
                  "again; or copy the reader: one per thread)");
    // relaxed: the outer section, still open, is what protects the nested one's reads.
    s->nested.fetch_add(1, std::memory_order_relaxed);
  }

  // Step 3: ends a read section: a nested one while any is open, else the slot's outer one.
  // The rare paths (a nested section, a writer waiting) are out of line, so that a guarded
  // lookup stays small enough for compilers to inline it into its caller's loop.
  static void leave(slot& s) noexcept {
    // acquire (a plain load on x86): a nested section ended on another thread lowered the
    // count with a release (leave_nested()); reading that value orders its reads before our
    // epoch store below, which orders them before the writer's next writes (R3).
    if (TANDEM_UNLIKELY(s->nested.load(std::memory_order_acquire) != 0) && leave_nested(s)) {
      return;
    }
    // relaxed: own store, as in try_enter().
    const std::uint64_t epoch = s->epoch.load(std::memory_order_relaxed);
    TANDEM_ASSERT((epoch & 1U) == 1, "reader_epochs::leave on a slot that is not inside");
    // (R3) release: pairs with the writer's acquire loads (W2)/(W3): our reads of the
    // protected data happen-before the writer's later writes to it.
    s->epoch.store(epoch + 3, unpin_publish_order);
    // (R4) light half of the fence whose heavy half follows the writer's flag store (W4):
    // orders our epoch store before our load of the flag. In fenced mode this is only a
    // compiler barrier: the load below then sees bit 1, and wake_writer() issues the real
    // fence before it looks at bit 0.
    leave_fence();
    TANDEM_SYNC_POINT();  // the writer may set the flag now: the (R4)/(W4) window
    // (R4) relaxed (seq_cst under TSan): the flag carries no data; the fence pair above is
    // what makes "not seen" safe (see the header comment).
    const bool waiting = s->writer_waiting.load(TANDEM_TSAN ? std::memory_order_seq_cst
                                                            : std::memory_order_relaxed) != 0;
    if (TANDEM_UNLIKELY(waiting)) wake_writer(s);
  }

  // (A1) Tells the writer that every pointer load this reader makes from now on returns the
  // version of `generation` or a newer one: call it only after an acquire load that read
  // `generation` from the word the writer stores after its pointer (see acknowledged_since()).
  // Release: the reader's earlier reads of older versions happen-before the writer's later
  // writes to them. One store on the reader's own line.
  static void acknowledge(slot& s, std::uint64_t generation) noexcept {
    s->acknowledged.store(generation, std::memory_order_release);
  }

  // True when the reader owning `s` is inside a read section (for assertions and tests).
  [[nodiscard]] static bool inside(const slot& s) noexcept {
    // relaxed: an observation only.
    return (s->epoch.load(std::memory_order_relaxed) & 1U) == 1;
  }

  // True when `s` is inside a read section that the calling thread opened. Exact when called
  // by the slot's owner (for its own checks) or by the writer (see (R0)).
  [[nodiscard]] static bool opened_by_this_thread(const slot& s) noexcept {
    // acquire: see (R0); the owner is read after the epoch.
    return (s->epoch.load(std::memory_order_acquire) & 1U) == 1 &&
           s->owner.load(std::memory_order_relaxed) == detail::thread_serial();
  }

  // --- writer side (one thread at a time) ------------------------------------------------

  // Step 4. Call right after the store (unpin_publish_order) that makes the old version
  // unreachable for readers that enter from now on. Replaces any earlier record (those
  // readers must already have been waited for). Never allocates, never throws.
  // Slots that acknowledged `skip_acknowledged` or a newer generation (A1) are not recorded:
  // their readers can no longer be in the old version (the default records every reader).
  void record_readers_inside(
      std::uint64_t skip_acknowledged = std::numeric_limits<std::uint64_t>::max()) noexcept {
#if !TANDEM_TSAN
    // (W0') pairs with (C1): orders our pointer store before the load of the count.
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
    // acquire (seq_cst under TSan, where the fences above are not modelled): see (C1)/(W0')
    // and (C2).
    if (claimed_count_.load(count_load_order) == 0 && recorded_count_ == 0) {
      return;  // no reader could be inside: nothing to record, no heavy fence
    }
#if !TANDEM_TSAN
    // (W1) heavy half of the fence with the readers' light fences (R1): every reader whose
    // odd epoch we do not see below will load the new pointer.
    Fence::heavy();
#endif
    ++heavy_fences_;
    TANDEM_SYNC_POINT();  // readers keep entering and leaving during the scan
    std::size_t count = 0;
    // acquire (chunk walks): pairs with the release compare-exchange that linked the chunk.
    for (chunk* c = &first_; c != nullptr; c = c->next.load(std::memory_order_acquire)) {
      for (std::size_t i = 0; i < slots_per_chunk; ++i) {
        // (W2) acquire (seq_cst under TSan): pairs with the reader's release in leave()
        // (R3): a reader seen outside has finished its reads of the old version.
        const std::uint64_t epoch = c->slots[i]->epoch.load(writer_load_order);
        // (A2) acquire: as in acknowledged_since().
        const bool is_inside = (epoch & 1U) == 1 && c->slots[i]->acknowledged.load(
                                                        writer_load_order) < skip_acknowledged;
        (*c->recorded)[i] = is_inside ? epoch : not_recorded;
        count += is_inside ? 1U : 0U;
      }
    }
    recorded_count_ = count;
  }

  // Step 4, first half, for callers that acknowledge versions (double_buffer): call right
  // after the stores that publish a new version and its generation number. A full fence
  // (W0') and one load; true when some reader slot is claimed, i.e. a reader may still be in
  // the old version. No heavy fence: the caller decides later, with acknowledged_since(),
  // whether it needs record_readers_inside() at all.
  [[nodiscard]] bool readers_may_be_inside() noexcept {
#if !TANDEM_TSAN
    // (W0') pairs with (C1), as in record_readers_inside(); also orders the caller's stores
    // before the slot scans of acknowledged_since() (A2).
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
    // acquire (seq_cst under TSan): see (C1)/(W0') and (C2).
    return claimed_count_.load(count_load_order) != 0 || recorded_count_ != 0;
  }

  // (A2) True when every claimed slot has acknowledged `generation` or a newer one: no reader
  // can be in a version older than `generation` any more, and none will be, so the writer may
  // change the old version without a heavy fence and without waiting. Precondition: the
  // caller stored `generation` (after the version it numbers) and then called
  // readers_may_be_inside() (its fence orders those stores before the loads here). A slot
  // seen unclaimed has no reader, and one that claims it later loads the new version (the
  // fence pair (C1)/(W0')). When only active readers are missing (each one's epoch moved
  // since the writer last looked: it is reading, so it acknowledges at its next read) it
  // spins for them, at most backoff's spin phase (127 pauses, about 1-5 us); a reader whose
  // epoch stands still (an idle handle, or a guard held since before the publish) makes it
  // return false at once: only the heavy fence can answer for that one. No system call.
  [[nodiscard]] bool acknowledged_since(std::uint64_t generation) noexcept {
    const scan_result first = scan_acknowledgments(generation, true);
    if (first != scan_result::active_missing) return first == scan_result::all_acknowledged;
    backoff waiter;
    for (std::uint32_t round = 0; round <= backoff::spin_limit; ++round) {
      waiter.spin();
      TANDEM_SYNC_POINT();  // readers keep acknowledging while we spin
      // Not classified again: a reader reading slower than the spin's rounds would look idle.
      if (scan_acknowledgments(generation, false) == scan_result::all_acknowledged) return true;
    }
    return false;
  }

  // Step 5 without waiting: true when every recorded reader has left (and forgets those).
  [[nodiscard]] bool recorded_readers_left() noexcept {
    // acquire (chunk walks): pairs with the release compare-exchange that linked the chunk.
    for (chunk* c = &first_; c != nullptr && recorded_count_ != 0;
         c = c->next.load(std::memory_order_acquire)) {
      for (std::size_t i = 0; i < slots_per_chunk; ++i) {
        std::uint64_t& recorded = (*c->recorded)[i];
        // (W3) acquire: as (W2).
        if (recorded != not_recorded && c->slots[i]->epoch.load(writer_load_order) != recorded) {
          recorded = not_recorded;
          --recorded_count_;
        }
      }
    }
    return recorded_count_ == 0;
  }

  // True when some recorded reader is still inside a read section that the calling thread
  // opened, or the thread it works for (detail::is_self: a create_eager() helper's caller,
  // blocked joining it): waiting for it would never end. Exact (see (R0)); O(slots), no
  // waiting.
  [[nodiscard]] bool recorded_reader_held_by_this_thread() const noexcept {
    if (recorded_count_ == 0) return false;
    // acquire (chunk walks): pairs with the release compare-exchange that linked the chunk.
    for (const chunk* c = &first_; c != nullptr; c = c->next.load(std::memory_order_acquire)) {
      for (std::size_t i = 0; i < slots_per_chunk; ++i) {
        const std::uint64_t recorded = (*c->recorded)[i];
        // (W0) acquire on the epoch, then the owner: see (R0) in the header comment. Only a
        // section this thread (or the one it works for) opened and has not left can make both
        // comparisons true.
        if (recorded != not_recorded &&
            c->slots[i]->epoch.load(std::memory_order_acquire) == recorded &&
            detail::is_self(c->slots[i]->owner.load(std::memory_order_relaxed))) {
          return true;
        }
      }
    }
    return false;
  }

  // True when some reader is inside a read section that the calling thread opened (or the
  // thread it works for, as above), recorded or not: the sections a later wait could be for.
  // O(slots), two loads each, no waiting. Reads only the slots (never the writer's record), so
  // any thread may call it at any time.
  [[nodiscard]] bool held_by_this_thread() const noexcept {
    // acquire (chunk walks): pairs with the release compare-exchange that linked the chunk.
    for (const chunk* c = &first_; c != nullptr; c = c->next.load(std::memory_order_acquire)) {
      for (std::size_t i = 0; i < slots_per_chunk; ++i) {
        // acquire on the epoch, then the owner: as (W0) (see (R0) in the header comment).
        if ((c->slots[i]->epoch.load(std::memory_order_acquire) & 1U) == 1 &&
            detail::is_self(c->slots[i]->owner.load(std::memory_order_relaxed))) {
          return true;
        }
      }
    }
    return false;
  }

  // Step 5: returns once every recorded reader has left its read section (its epoch moved
  // on). Spins, then yields, then blocks until the last straggler's leave() wakes it.
  // Throws std::logic_error(self_wait_message), having waited for nobody and forgotten
  // nothing, when a recorded reader is inside a read section the calling thread opened (W0):
  // that wait could never end. Call again once the thread has left it.
  void wait_for_recorded_readers(const char* self_wait_message = default_self_wait_message) {
    if (recorded_count_ == 0) return;
    if (recorded_reader_held_by_this_thread()) throw std::logic_error(self_wait_message);
    // acquire (chunk walks): pairs with the release compare-exchange that linked the chunk.
    for (chunk* c = &first_; c != nullptr && recorded_count_ != 0;
         c = c->next.load(std::memory_order_acquire)) {
      for (std::size_t i = 0; i < slots_per_chunk; ++i) {
        std::uint64_t& recorded = (*c->recorded)[i];
        if (recorded == not_recorded) continue;
        wait_until_left(c->slots[i], recorded);
        recorded = not_recorded;
        --recorded_count_;
      }
    }
  }

  // Number of readers recorded by the last record_readers_inside() and not yet seen leaving.
  [[nodiscard]] std::size_t recorded_count() const noexcept {
    return recorded_count_;
  }

  // Heavy fences issued so far by record_readers_inside() and by blocking waits (statistics,
  // for tests and benchmarks; writer-only, like the calls it counts).
  [[nodiscard]] std::size_t heavy_fences() const noexcept {
    return heavy_fences_;
  }

  // True when readers of this registry pay real fences (asymmetric_fence without membarrier).
  [[nodiscard]] bool fenced() const noexcept {
    return fenced_;
  }

  // True while the writer is blocked in wait_for_recorded_readers() (for tests).
  [[nodiscard]] bool writer_is_waiting() const noexcept {
    // relaxed: an observation only.
    return writer_blocked_.load(std::memory_order_relaxed);
  }

 private:
  // Bit 0 of writer_waiting: the writer is blocked on this slot. Bit 1 of epoch and of
  // writer_waiting: the registry is in fenced mode.
  static constexpr std::uint32_t waiting_bit = 1;
  static constexpr std::uint32_t fenced_bit = 2;

  // The light fence of the fast paths: a compiler barrier when the policy offers one that is
  // valid once prepare() succeeded (asymmetric_fence::light_prepared), else the policy's own
  // light(), which is then always sufficient.
  static void light_fast() noexcept {
#if !TANDEM_TSAN
    if constexpr (requires { Fence::light_prepared(); }) {
      Fence::light_prepared();
    } else {
      Fence::light();
    }
#endif
  }

  // The fence between leave()'s epoch store and its load of writer_waiting: the compiler
  // barrier of light_prepared() for a policy that has one (in fenced mode wake_writer() adds
  // the real fence), else the policy's own light(). Not light_fast(): leave() runs in fenced
  // mode too, where calling light_prepared() breaks its contract (the fenced-mode tests count
  // such calls), so the barrier is written out here.
  static void leave_fence() noexcept {
#if !TANDEM_TSAN
    if constexpr (requires { Fence::light_prepared(); }) {
      std::atomic_signal_fence(std::memory_order_seq_cst);
    } else {
      Fence::light();
    }
#endif
  }

  static void full_fence() noexcept {
#if !TANDEM_TSAN
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
  }

  // Fenced mode: the policy's compiler-barrier light side is not usable (no membarrier).
  static bool light_must_fence() noexcept {
    if constexpr (requires { Fence::light_prepared(); }) {
      return !TANDEM_TSAN && !Fence::prepare();
    } else {
      static_cast<void>(Fence::prepare());
      return false;
    }
  }

  // Steps (R0) and (R1) without the fence.
  static void announce(slot& s, std::uint64_t epoch) noexcept {
    // (R0) relaxed: ordered before the writer's reads by the release store below.
    s->owner.store(detail::thread_serial(), std::memory_order_relaxed);
    // (R1) release (seq_cst under TSan, where the caller's seq_cst load cannot pass it): the
    // owner store happens-before any acquire read of this epoch (R0); the light fence after
    // it orders it before the caller's pointer load.
    s->epoch.store(epoch + 1, TANDEM_TSAN ? std::memory_order_seq_cst : std::memory_order_release);
  }

  // leave()'s nested path: ends one nested section and returns true, or returns false when the
  // count has meanwhile fallen to 0 (another thread released the last nested guard: the
  // caller's guard is then the one that ends the outer section). Two guards of one reader
  // released on two threads at once both read a count of 1; until 2026-12-01 both decremented
  // it (a plain integer: a data race) and neither left, so the slot stayed inside for ever and
  // the next publish() waited for ever. The moved-from guard's detached slot: nothing to do.
  TANDEM_NOINLINE static bool leave_nested(slot& s) noexcept {
    if (&s == &detached_slot) return true;  // see detached(): never written
    TANDEM_TEST_POINT("reader_epochs leave: a nested section seen open");
    // relaxed: the compare-exchange below re-reads it.
    std::uint32_t count = s->nested.load(std::memory_order_relaxed);
    while (count != 0) {
      // release: this section's reads happen-before the outer leave of whichever thread reads
      // the lowered count (acquire, in leave() or here); acquire on failure: as leave()'s.
      if (s->nested.compare_exchange_weak(count, count - 1, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
        return true;
      }
    }
    return false;
  }

  TANDEM_NOINLINE static void wake_writer(slot& s) noexcept {
    std::atomic<std::uint32_t>& word = s->writer_waiting;
    // relaxed: our own mode bit, which never changes.
    const std::uint32_t mode = word.load(std::memory_order_relaxed) & fenced_bit;
    if (mode != 0) {
      // (R4), fenced mode: the real fence between our epoch store and the re-load below.
      full_fence();
      // relaxed: as in leave().
      if ((word.load(std::memory_order_relaxed) & waiting_bit) == 0) return;
    }
    // seq_cst: the clear is ordered after our epoch store (R3) for every observer, so a writer
    // whose futex wait saw the cleared word and re-checks finds the even epoch; the wake
    // itself is unconditional (atomic_wait.hpp), so no sleeper that saw the bit is missed.
    word.store(mode, std::memory_order_seq_cst);
    TANDEM_SYNC_POINT();  // between the clear and the wake: the writer may re-check or sleep
    atomic_notify_all(word);
  }

  // One recorded slot of step 5.
  void wait_until_left(slot& s, std::uint64_t recorded) noexcept {
    std::atomic<std::uint64_t>& epoch = s->epoch;
    backoff waiter;
    // (W3) acquire: as (W2).
    while (epoch.load(writer_load_order) == recorded) {
      TANDEM_SYNC_POINT();  // the reader may leave between our check and the next step
      if (!waiter.is_completed()) {
        waiter.pause();
        continue;
      }
      // Blocking phase. The futex word is the slot's 32-bit writer_waiting word, not the
      // 64-bit epoch (atomic_wait.hpp: tandem waits on 4-byte words only).
      std::atomic<std::uint32_t>& flag = s->writer_waiting;
      const std::uint32_t mode = fenced_ ? fenced_bit : 0U;
      writer_blocked_.store(true, std::memory_order_relaxed);  // for observers only
      for (;;) {
        // (W4) relaxed store + heavy fence (seq_cst store under TSan): the heavy half of
        // the fence with the reader's light fence in leave() (R4). Either the reader sees
        // the bit (then it clears it and notifies), or our load below sees its new epoch.
        flag.store(mode | waiting_bit,
                   TANDEM_TSAN ? std::memory_order_seq_cst : std::memory_order_relaxed);
#if !TANDEM_TSAN
        Fence::heavy();
#endif
        ++heavy_fences_;
        TANDEM_SYNC_POINT();  // flag set: the reader may leave (and notify) before the re-check
        // (W3) acquire: as (W2).
        if (epoch.load(writer_load_order) != recorded) break;
        // Sleeps only while the bit is still set: the kernel compares and sleeps in one
        // step, so a reader that cleared it before we got here makes this return at once.
        atomic_wait(flag, mode | waiting_bit);
      }
      // relaxed: a reader that still sees the bit only pays one needless notify.
      flag.store(mode, std::memory_order_relaxed);
      TANDEM_SYNC_POINT();  // flag cleared
      writer_blocked_.store(false, std::memory_order_relaxed);
      break;
    }
  }

  static constexpr std::memory_order count_load_order =
      TANDEM_TSAN ? std::memory_order_seq_cst : std::memory_order_acquire;
  static constexpr std::memory_order writer_load_order =
      TANDEM_TSAN ? std::memory_order_seq_cst : std::memory_order_acquire;

  enum class scan_result : std::uint8_t { all_acknowledged, active_missing, idle_missing };

  // One pass of acknowledged_since(): whether every claimed slot acknowledged `generation`;
  // if not and `classify`, whether every one that did not is active (its epoch differs from
  // the one this pass saw last time; a heuristic only: a stale epoch costs at most a spin or
  // a heavy fence). Without `classify` a missing slot is reported as active_missing.
  scan_result scan_acknowledgments(std::uint64_t generation, bool classify) noexcept {
    scan_result result = scan_result::all_acknowledged;
    // acquire (chunk walks): pairs with the release compare-exchange that linked the chunk.
    for (chunk* c = &first_; c != nullptr; c = c->next.load(std::memory_order_acquire)) {
      for (std::size_t i = 0; i < slots_per_chunk; ++i) {
        slot& s = c->slots[i];
        // acquire: pairs with release() (a slot seen free has finished its reads) and with
        // acknowledge() (A1) (the reader's reads of older versions happen-before ours).
        if (!s->claimed.load(writer_load_order) ||
            s->acknowledged.load(writer_load_order) >= generation) {
          continue;
        }
        if (!classify) return scan_result::active_missing;
        // relaxed: the activity heuristic only.
        const std::uint64_t epoch = s->epoch.load(std::memory_order_relaxed);
        std::uint64_t& seen = (*c->seen)[i];
        if (epoch == seen) return scan_result::idle_missing;
        seen = epoch;
        result = scan_result::active_missing;
      }
    }
    return result;
  }

  // A recorded epoch is odd, so 0 (even) means "not recorded".
  static constexpr std::uint64_t not_recorded = 0;

  struct chunk {
    std::array<slot, slots_per_chunk> slots{};
    // Writer-only: per slot, the odd epoch seen by the last record_readers_inside() while that
    // reader has not been seen leaving, else not_recorded. Its own line(s): readers never touch
    // it, and recording never allocates.
    cache_padded<std::array<std::uint64_t, slots_per_chunk>> recorded{};
    // Writer-only: per slot, the epoch acknowledged_since() saw last (its activity heuristic).
    cache_padded<std::array<std::uint64_t, slots_per_chunk>> seen{};
    std::atomic<chunk*> next{nullptr};
  };

  // Sets the mode bits of a chunk's slots before any reader can see them.
  static void init_chunk(chunk& c, bool fenced) noexcept {
    if (!fenced) return;
    for (slot& s : c.slots) {
      // relaxed: the chunk is published later (constructor, or the release compare-exchange
      // in claim_free_slot()).
      s->epoch.store(fenced_bit, std::memory_order_relaxed);
      s->writer_waiting.store(fenced_bit, std::memory_order_relaxed);
    }
    c.seen->fill(fenced_bit);  // a slot never entered looks idle, as in membarrier mode
  }

  slot& claim_free_slot() {
    chunk* current = &first_;
    for (;;) {
      for (slot& s : current->slots) {
        // relaxed pre-check: skips the exchange on slots that are visibly taken.
        // acquire on the exchange: pairs with the release in release(), so the previous
        // owner's last epoch store is visible and the epoch keeps increasing.
        if (!s->claimed.load(std::memory_order_relaxed)) {
          TANDEM_SYNC_POINT();  // another claimer may take the slot between check and exchange
          if (!s->claimed.exchange(true, std::memory_order_acquire)) return s;
        }
      }
      // acquire: pairs with the release of the compare-exchange below that linked the chunk,
      // so its slots are seen constructed.
      chunk* next = current->next.load(std::memory_order_acquire);
      if (next == nullptr) {
        chunk* fresh = new_chunk();
        init_chunk(*fresh, fenced_);
        fresh->slots[0]->claimed.store(true, std::memory_order_relaxed);  // before publishing
        // release: publishes the new chunk's construction to claim() and the writer's scan.
        // acquire on failure: to walk into the chunk another thread linked.
        if (current->next.compare_exchange_strong(next, fresh, std::memory_order_acq_rel,
                                                  std::memory_order_acquire)) {
          chunk_count_.fetch_add(1, std::memory_order_relaxed);  // statistics only
          return fresh->slots[0];
        }
        delete_chunk(fresh);  // another thread linked one first; `next` now points at it
      }
      current = next;
    }
  }

  // Out of line: keeps the rare allocation path out of claim()'s fast path (and keeps GCC's
  // -Wmismatched-new-delete quiet when a test replaces the global operator new/delete).
  TANDEM_NOINLINE static chunk* new_chunk() {
    return new chunk;
  }
  TANDEM_NOINLINE static void delete_chunk(chunk* c) noexcept {
    delete c;
  }

  // What moved-from readers and guards point at: see detached().
  TANDEM_PROCESS_WIDE static constinit inline slot detached_slot{std::in_place, std::uint64_t{1},
                                                                 std::uint32_t{1}};

  // True while the writer is blocked (tests observe it; readers never read it).
  std::atomic<bool> writer_blocked_{false};
  const bool fenced_;
  chunk first_{};
  std::atomic<std::size_t> chunk_count_{1};
  // Slots claimed and not released. Written by claim()/release() (rare), read by the writer.
  std::atomic<std::size_t> claimed_count_{0};
  std::size_t recorded_count_ = 0;  // writer-only: entries != not_recorded in the chunks
  std::size_t heavy_fences_ = 0;    // writer-only statistics
};

}  // namespace tandem::sync
