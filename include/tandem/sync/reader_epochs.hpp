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
//     registration mutex held by a waiting writer).
//  2. Reader enters: stores its thread's id in the slot's `owner` (R0), epoch += 1 (now odd =
//     "inside"), then light fence, then the caller loads the pointer it wants to read (with
//     pinned_load_order).
//  3. Reader leaves: clears `owner` (R0), epoch += 1 (even = "outside", release), light fence,
//     then loads its slot's `writer_waiting` flag; only if the writer is blocked on this very
//     reader does it clear the flag and call notify_all() on it. The flag sits on the reader's
//     own line, so checking it costs no shared cache line, and readers the writer is not
//     waiting for never notify.
//  4. Writer, after making the old version unreachable (it stored the new pointer):
//     record_readers_inside() = heavy fence, then for every slot read the epoch and write it
//     (if odd) or 0 (if even) into the chunk's writer-only `recorded` array. Those readers may
//     still see the old version; every reader that enters later is guaranteed to load the new
//     pointer. Recording writes into storage that exists with the slots: it never allocates
//     and never throws, so a caller may record after its own commit point.
//  5. Writer, when it next needs the old version: wait_for_recorded_readers() first checks
//     that no recorded reader is still inside a read section the calling thread itself opened
//     (its `owner` is this thread: that wait could never end) and throws std::logic_error,
//     forgetting nothing, if one is (W0). Then it waits, per recorded slot, until its epoch
//     differs from the recorded one: spin, yield (backoff), then set that slot's
//     `writer_waiting` flag to 1, heavy fence, re-check the epoch, and block in flag.wait(1) (a
//     futex on the 32-bit flag), re-arming after each wake-up; once the epoch moved on it stores
//     0 to the flag and forgets that slot's record. Or recorded_readers_left() checks without
//     waiting (and forgets the readers that have left).
//
// Guarantees: readers are wait-free: enter() and leave() are a bounded number of operations
// on the reader's own slot; no reader writes (or reads) a line that another reader writes. The
// writer waits only for readers that were inside at step 4 (a reader that keeps entering and
// leaving does not starve it: any change of epoch releases it). A wait the calling thread
// would block itself fails loudly (std::logic_error) instead of hanging. One writer at a time
// per registry; any number of readers; claim()/release() from any thread. Only claim() (a new
// chunk) and wait_for_recorded_readers() (the self-wait error) throw.
//
// Costs: one slot = cache_line_size bytes (128 on x86-64) per live reader, allocated in chunks
// of slots_per_chunk, plus one writer-only line per chunk for the records. Reader, per
// enter/leave pair: four plain stores (owner and epoch, each way), two loads, two compiler
// barriers and one this_thread::get_id() (with the asymmetric fence; the portable fence adds
// two mfences). Writer: one membarrier system call per record and per blocking wait, and
// a scan of every slot per record, per wait and per recorded_readers_left().
//
// Memory ordering (numbers refer to the comments in the code):
//  - (R0) `owner` is written only by the thread inside the slot's read section, relaxed; only
//    the writer's self-wait check (W0) reads it, and that check needs no ordering: a thread
//    reads back its own latest writes (coherence), and while a read section is open nobody
//    else writes the slot. So the writer reads its own id exactly when it opened the recorded
//    section itself and that section is still open; a section another thread opened can never
//    read as the writer's id, because the writer's own last write to `owner` was the clear in
//    leave(), and coherence forbids reading a value older than that.
//  - (R1) the reader's epoch store + light fence, against (W1) the writer's pointer store +
//    heavy fence + (W2) epoch loads: a Dekker handshake. Either the writer's (W2) sees the odd
//    epoch (the reader is recorded and waited for), or the reader's pointer load after (R1)
//    sees the new pointer. The light/heavy pair acts as a seq_cst fence on each side.
//  - (R3) the reader's release store of the even epoch pairs with the writer's acquire loads
//    in (W2)/(W3): everything the reader read happens-before what the writer then writes.
//  - (R4) the reader's "store even epoch; light fence; load its slot's writer_waiting"
//    against (W4) the writer's "store that slot's writer_waiting; heavy fence; load its epoch"
//    is a second Dekker handshake: if
//    the reader does not see the flag, the writer's re-check sees the even epoch and does not
//    block; if it does, the reader notifies after its store. That is why no wake-up is lost
//    although a reader that sees no waiting writer skips the notify.
//  - The `recorded` arrays are written and read by the writer only (chunks reach it through
//    the acquire load of `next`), so they are plain integers.
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
#include <stdexcept>
#include <thread>

#include "../detail/port.hpp"
#include "assert.hpp"
#include "asymmetric_fence.hpp"
#include "atomic_wait.hpp"
#include "backoff.hpp"
#include "cache_padded.hpp"
#include "sync_point.hpp"

namespace tandem::sync {

template <fence_policy Fence = asymmetric_fence>
class reader_epochs {
  struct slot_state {
    // Odd: the owning reader is inside a read section. Only the owner writes it.
    std::atomic<std::uint64_t> epoch{0};
    // The thread inside the current read section; std::thread::id{} when outside (R0).
    std::atomic<std::thread::id> owner{};
    // Whether a reader owns this slot. Written when a reader is created or destroyed.
    std::atomic<bool> claimed{false};
    // Set by the writer only while it is blocked waiting for this reader to leave; the owner
    // checks it after leaving. On the reader's own line: checking it costs no extra line.
    std::atomic<std::uint32_t> writer_waiting{0};
  };
  // The owner is stored on every enter: a lock would make readers blocking.
  static_assert(std::atomic<std::thread::id>::is_always_lock_free,
                "tandem::sync::reader_epochs: std::atomic<std::thread::id> must be lock-free");

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

  reader_epochs() { Fence::prepare(); }
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

  // Returns a slot for reuse. Its owner must be outside (even epoch).
  void release(slot& s) noexcept {
    TANDEM_ASSERT((s->epoch.load(std::memory_order_relaxed) & 1U) == 0,
                  "a reader slot was released while its reader was inside a read section");
    // release: pairs with the acquire exchange in claim() (see there).
    s->claimed.store(false, std::memory_order_release);
  }

  // Number of slots that exist (claimed or free). Grows only when more readers are alive at
  // once than ever before.
  [[nodiscard]] std::size_t capacity() const noexcept {
    return chunk_count_.load(std::memory_order_relaxed) * slots_per_chunk;
  }

  // --- reader side (the slot's owner) ----------------------------------------------------

  // Step 2. After this returns, load what you read with pinned_load_order.
  static void enter(slot& s) noexcept {
    // relaxed: only this thread writes the epoch, so this reads its own last store.
    const std::uint64_t epoch = s->epoch.load(std::memory_order_relaxed);
    TANDEM_ASSERT((epoch & 1U) == 0, "reader_epochs::enter on a slot that is already inside");
    // (R0) relaxed: read back only by the writer's self-wait check (see the header comment).
    const std::thread::id self = std::this_thread::get_id();
#if TANDEM_ENABLE_ASSERTS
    const std::thread::id previous = s->owner.exchange(self, std::memory_order_relaxed);
    TANDEM_ASSERT(previous == std::thread::id{},
                  "a reader was used by two threads at once (copy it: one per thread)");
#else
    s->owner.store(self, std::memory_order_relaxed);
#endif
#if TANDEM_TSAN
    // (R1), TSan form: a seq_cst store; the caller's seq_cst load cannot pass it.
    s->epoch.store(epoch + 1, std::memory_order_seq_cst);
#else
    // (R1) relaxed store + light fence: the light half of the seq_cst fence whose heavy half
    // is in record_readers_inside() (W1). Orders this store before the caller's pointer load.
    s->epoch.store(epoch + 1, std::memory_order_relaxed);
    Fence::light();
#endif
  }

  // Step 3.
  void leave(slot& s) noexcept {
    // relaxed: own store, as in enter().
    const std::uint64_t epoch = s->epoch.load(std::memory_order_relaxed);
    TANDEM_ASSERT((epoch & 1U) == 1, "reader_epochs::leave on a slot that is not inside");
    // (R0) relaxed: clears this thread's mark before the section ends (header comment).
    s->owner.store(std::thread::id{}, std::memory_order_relaxed);
    // (R3) release: pairs with the writer's acquire loads (W2)/(W3): our reads of the
    // protected data happen-before the writer's later writes to it.
    s->epoch.store(epoch + 1, unpin_publish_order);
#if !TANDEM_TSAN
    // (R4) light half of the fence whose heavy half follows the writer's flag store (W4):
    // orders our epoch store before our load of the flag.
    Fence::light();
#endif
    TANDEM_SYNC_POINT();  // the writer may set the flag now: the (R4)/(W4) window
    // (R4) relaxed (seq_cst under TSan): the flag carries no data; the fence pair above is
    // what makes "not seen" safe (see the header comment).
    if (TANDEM_UNLIKELY(s->writer_waiting.load(TANDEM_TSAN ? std::memory_order_seq_cst
                                                           : std::memory_order_relaxed))) {
      wake_writer(s);
    }
  }

  // True when the reader owning `s` is inside a read section (for assertions and tests).
  [[nodiscard]] static bool inside(const slot& s) noexcept {
    // relaxed: an observation only.
    return (s->epoch.load(std::memory_order_relaxed) & 1U) == 1;
  }

  // The thread inside `s`'s read section, std::thread::id{} when outside. Exact when called by
  // the thread that owns the slot (for its own checks); otherwise an observation only.
  [[nodiscard]] static std::thread::id owner(const slot& s) noexcept {
    // relaxed: see (R0).
    return s->owner.load(std::memory_order_relaxed);
  }

  // --- writer side (one thread at a time) ------------------------------------------------

  // Step 4. Call right after the store (unpin_publish_order) that makes the old version
  // unreachable for readers that enter from now on. Replaces any earlier record (those
  // readers must already have been waited for). Never allocates, never throws.
  void record_readers_inside() noexcept {
#if !TANDEM_TSAN
    // (W1) heavy half of the fence with the readers' light fences (R1): every reader whose
    // odd epoch we do not see below will load the new pointer.
    Fence::heavy();
#endif
    TANDEM_SYNC_POINT();  // readers keep entering and leaving during the scan
    std::size_t count = 0;
    // acquire (chunk walks): pairs with the release compare-exchange that linked the chunk.
    for (chunk* c = &first_; c != nullptr; c = c->next.load(std::memory_order_acquire)) {
      for (std::size_t i = 0; i < slots_per_chunk; ++i) {
        // (W2) acquire (seq_cst under TSan): pairs with the reader's release in leave()
        // (R3): a reader seen outside has finished its reads of the old version.
        const std::uint64_t epoch = c->slots[i]->epoch.load(writer_load_order);
        const bool is_inside = (epoch & 1U) == 1;
        (*c->recorded)[i] = is_inside ? epoch : not_recorded;
        count += is_inside ? 1U : 0U;
      }
    }
    recorded_count_ = count;
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
  // opened: waiting for it would never end. Exact (see (R0)); O(slots), no waiting.
  [[nodiscard]] bool recorded_reader_held_by_this_thread() const noexcept {
    if (recorded_count_ == 0) return false;
    const std::thread::id self = std::this_thread::get_id();
    // acquire (chunk walks): pairs with the release compare-exchange that linked the chunk.
    for (const chunk* c = &first_; c != nullptr; c = c->next.load(std::memory_order_acquire)) {
      for (std::size_t i = 0; i < slots_per_chunk; ++i) {
        const std::uint64_t recorded = (*c->recorded)[i];
        // (W0) relaxed, both: see (R0) in the header comment. Only this thread's own writes
        // can make both comparisons true.
        if (recorded != not_recorded &&
            c->slots[i]->epoch.load(std::memory_order_relaxed) == recorded &&
            c->slots[i]->owner.load(std::memory_order_relaxed) == self) {
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

  // True while the writer is blocked in wait_for_recorded_readers() (for tests).
  [[nodiscard]] bool writer_is_waiting() const noexcept {
    // relaxed: an observation only.
    return writer_blocked_.load(std::memory_order_relaxed);
  }

 private:
  // The rare path of leave(), out of line so that leave() itself stays small enough to inline.
  TANDEM_NOINLINE static void wake_writer(slot& s) noexcept {
    // seq_cst: the clear is ordered after our epoch store (R3) for every observer, so a writer
    // whose futex wait saw 0 and re-checks finds the even epoch; the wake itself is
    // unconditional (atomic_wait.hpp), so no sleeper that saw 1 is missed.
    s->writer_waiting.store(0, std::memory_order_seq_cst);
    TANDEM_SYNC_POINT();  // between the clear and the wake: the writer may re-check or sleep
    atomic_notify_all(s->writer_waiting);
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
      // Blocking phase. The futex word is the slot's 32-bit writer_waiting flag, not the
      // 64-bit epoch (atomic_wait.hpp: tandem waits on 4-byte words only).
      std::atomic<std::uint32_t>& flag = s->writer_waiting;
      writer_blocked_.store(true, std::memory_order_relaxed);  // for observers only
      for (;;) {
        // (W4) relaxed store + heavy fence (seq_cst store under TSan): the heavy half of
        // the fence with the reader's light fence in leave() (R4). Either the reader sees
        // the flag (then it clears it and notifies), or our load below sees its new epoch.
        flag.store(1, TANDEM_TSAN ? std::memory_order_seq_cst : std::memory_order_relaxed);
#if !TANDEM_TSAN
        Fence::heavy();
#endif
        TANDEM_SYNC_POINT();  // flag set: the reader may leave (and notify) before the re-check
        // (W3) acquire: as (W2).
        if (epoch.load(writer_load_order) != recorded) break;
        // Sleeps only while the flag is still 1: the kernel compares and sleeps in one
        // step, so a reader that cleared it before we got here makes this return at once.
        atomic_wait(flag, std::uint32_t{1});
      }
      // relaxed: a reader that still sees 1 only pays one needless notify.
      flag.store(0, std::memory_order_relaxed);
      TANDEM_SYNC_POINT();  // flag cleared
      writer_blocked_.store(false, std::memory_order_relaxed);
      break;
    }
  }

  static constexpr std::memory_order writer_load_order =
      TANDEM_TSAN ? std::memory_order_seq_cst : std::memory_order_acquire;

  // A recorded epoch is odd, so 0 (even) means "not recorded".
  static constexpr std::uint64_t not_recorded = 0;

  struct chunk {
    std::array<slot, slots_per_chunk> slots{};
    // Writer-only: per slot, the odd epoch seen by the last record_readers_inside() while that
    // reader has not been seen leaving, else not_recorded. Its own line(s): readers never touch
    // it, and recording never allocates.
    cache_padded<std::array<std::uint64_t, slots_per_chunk>> recorded{};
    std::atomic<chunk*> next{nullptr};
  };

  // Out of line: keeps the rare allocation path out of claim()'s fast path (and keeps GCC's
  // -Wmismatched-new-delete quiet when a test replaces the global operator new/delete).
  TANDEM_NOINLINE static chunk* new_chunk() {
    return new chunk;
  }
  TANDEM_NOINLINE static void delete_chunk(chunk* c) noexcept {
    delete c;
  }

  // True while the writer is blocked (tests observe it; readers never read it).
  std::atomic<bool> writer_blocked_{false};
  chunk first_{};
  std::atomic<std::size_t> chunk_count_{1};
  std::size_t recorded_count_ = 0;  // writer-only: entries != not_recorded in the chunks
};

}  // namespace tandem::sync
