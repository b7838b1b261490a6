// tandem/sync/epoch_reclamation.hpp -- epoch-based reclamation for anonymous per-thread readers:
// when may an object that was unlinked from a shared structure be freed?
//
// What it is for: structures whose readers are arbitrary threads with no handle of their own
// (tandem::registry's lookups), that unlink objects (erase, a grown table) while readers may still
// be looking at them, and that must never make a writer wait for a reader (a reader may itself
// call the writer, e.g. registry::visit's callback erasing its own entry). Compare
// reader_epochs.hpp, which is for one writer that waits for explicitly created reader handles.
// The scheme is Fraser's epoch-based reclamation (K. Fraser, "Practical lock-freedom", 2004),
// with one process-wide domain and slots that threads claim on first use and give back at exit.
//
// Algorithm:
//  R1. A reader entering its outermost read section loads the global epoch and stores it into
//      its own slot (alone on its cache line); then the light half of an asymmetric fence.
//  R2. It reads the shared structure with plain acquire loads.
//  R3. Leaving the outermost section stores 0 ("outside") into its slot (release).
//  W1. A writer that unlinked objects calls retire_stamp(): a seq_cst increment of the global
//      epoch; the objects are stamped with the new value.
//  W2. Later (at its next write; never blocking), it calls oldest_announced_epoch(): the heavy
//      fence, then the smallest non-zero slot. Objects whose stamp is <= that value, or all of
//      them when no slot is announced, are no longer reachable by any reader and may be freed.
//
// Guarantees: readers are wait-free and write only their own slot; writers never wait.
// Slots: the first read section a thread runs claims a slot (allocation-free for the first 64
// threads alive at once; then chunks of 64 are added, never freed); a thread's slot is given
// back when the thread exits and reused by the next thread.
// Costs: one cache line per slot; a reader pays two plain stores, one load and a compiler
// barrier per outermost section; a writer's scan reads every slot.
//
// Memory ordering: (R1)+light fence and the heavy fence in (W2) form a Dekker handshake
// (asymmetric_fence.hpp): either the scan sees the reader's announce, or the reader's loads
// (R2) see the unlink made before (W1). (R3)'s release pairs with the scan's loads, so a
// reader's reads happen-before the free the scan allows. Under ThreadSanitizer (which models
// no stand-alone fence) the announce and the scan's loads are seq_cst instead.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "../detail/port.hpp"
#include "asymmetric_fence.hpp"
#include "cache_padded.hpp"

namespace tandem::detail {

struct alignas(sync::cache_line_size) epoch_slot {
  std::atomic<std::uint64_t> epoch{0};  // 0: outside any read section; written by the owner
  std::atomic<bool> claimed{false};     // whether a thread owns the slot
  std::uint32_t depth = 0;              // read-section nesting, owner thread only
};

// Slots come in chunks; 64 covers the threads most programs run, and more chunks are added
// (never freed) when more threads read at once. A scan reads every slot of every chunk.
inline constexpr std::size_t epoch_slots_per_chunk = 64;

struct epoch_chunk {
  epoch_slot slots[epoch_slots_per_chunk];
  std::atomic<epoch_chunk*> next{nullptr};
};

struct epoch_domain {
  // Starts at 1 so that 0 can mean "outside". Written only by retiring writers.
  alignas(sync::cache_line_size) std::atomic<std::uint64_t> epoch{1};
  epoch_chunk first;
};

// Constant-initialised and trivially destructible: usable from any static destructor.
inline constinit epoch_domain process_epochs{};
inline constinit thread_local epoch_slot* this_thread_epoch_slot = nullptr;
inline constinit thread_local bool epoch_thread_exiting = false;

// Gives the thread's slot back when the thread exits.
struct epoch_slot_releaser {
  epoch_slot* slot = nullptr;
  epoch_slot_releaser() = default;
  epoch_slot_releaser(const epoch_slot_releaser&) = delete;
  epoch_slot_releaser& operator=(const epoch_slot_releaser&) = delete;
  ~epoch_slot_releaser() {
    epoch_thread_exiting = true;
    if (slot != nullptr && slot->depth == 0) {
      this_thread_epoch_slot = nullptr;
      // release: pairs with the acquire exchange in claim_epoch_slot of the next owner.
      slot->claimed.store(false, std::memory_order_release);
    }
  }
};

TANDEM_NOINLINE inline epoch_slot& claim_epoch_slot() {
  epoch_chunk* chunk = &process_epochs.first;
  epoch_slot* found = nullptr;
  while (found == nullptr) {
    for (epoch_slot& slot : chunk->slots) {
      // relaxed pre-check, then acquire exchange: pairs with the release in the releaser.
      if (!slot.claimed.load(std::memory_order_relaxed) &&
          !slot.claimed.exchange(true, std::memory_order_acquire)) {
        found = &slot;
        break;
      }
    }
    if (found != nullptr) break;
    // acquire: pairs with the release CAS below, so a new chunk is seen constructed.
    epoch_chunk* next = chunk->next.load(std::memory_order_acquire);
    if (next == nullptr) {
      // Never freed: reachable from the domain, reused by later threads.
      auto* fresh = new epoch_chunk();
      // release: publishes the constructed chunk; acquire on failure: see the winner's chunk.
      if (chunk->next.compare_exchange_strong(next, fresh, std::memory_order_acq_rel,
                                              std::memory_order_acquire)) {
        next = fresh;
      } else {
        delete fresh;
      }
    }
    chunk = next;
  }
  this_thread_epoch_slot = found;
  if (!epoch_thread_exiting) {
    // A thread that reads again while exiting keeps its slot: its releaser has already run.
    static thread_local epoch_slot_releaser releaser;
    releaser.slot = found;
  }
  return *found;
}

}  // namespace tandem::detail

namespace tandem::sync {

// RAII read section (R1..R3). Nested sections on one thread share the outermost announce.
class [[nodiscard]] epoch_read_section {
 public:
  epoch_read_section()
      : slot_(detail::this_thread_epoch_slot != nullptr ? *detail::this_thread_epoch_slot
                                                        : detail::claim_epoch_slot()) {
    if (slot_.depth++ == 0) {
      // acquire: pairs with the seq_cst fetch_add in retire (W1): if we read a stamp's epoch,
      // the unlink before it is visible to our loads below.
      const std::uint64_t now = detail::process_epochs.epoch.load(std::memory_order_acquire);
#if TANDEM_TSAN
      // (R1) seq_cst store, so that TSan (which models no stand-alone fence) sees the
      // handshake: ordered before our table loads (R2) in the single total order.
      slot_.epoch.store(now, std::memory_order_seq_cst);
#else
      // (R1) relaxed store + light fence: together with the heavy fence before the scan (W2)
      // they act as two seq_cst fences (asymmetric_fence.hpp), so either the scan sees this
      // announce or our table loads (R2) see the unlink. The reader pays a compiler barrier.
      slot_.epoch.store(now, std::memory_order_relaxed);
      asymmetric_fence::light();
#endif
    }
  }
  epoch_read_section(const epoch_read_section&) = delete;
  epoch_read_section& operator=(const epoch_read_section&) = delete;
  ~epoch_read_section() {
    if (--slot_.depth == 0) {
      // (R3) release: pairs with the scan (W2); our reads happen-before any free it allows.
      slot_.epoch.store(0, std::memory_order_release);
    }
  }

 private:
  detail::epoch_slot& slot_;
};

// (W1) Returns the stamp for objects unlinked (W1) before this call.
inline std::uint64_t retire_stamp() noexcept {
  return detail::process_epochs.epoch.fetch_add(1, std::memory_order_seq_cst) + 1;
}

// (W2) The smallest epoch announced by a running read section, or max when none runs.
inline std::uint64_t oldest_announced_epoch() noexcept {
#if !TANDEM_TSAN
  // The heavy half of the reader's light fence (R1): a read section whose announce the scan
  // below misses sees everything unlinked before this call. (Under TSan the announce and
  // these loads are seq_cst instead, and GCC rejects stand-alone fences there.)
  asymmetric_fence::heavy();
#endif
  std::uint64_t oldest = std::numeric_limits<std::uint64_t>::max();
  for (detail::epoch_chunk* chunk = &detail::process_epochs.first; chunk != nullptr;
       // acquire: pairs with the release CAS that linked the chunk.
       chunk = chunk->next.load(std::memory_order_acquire)) {
    for (const detail::epoch_slot& slot : chunk->slots) {
      const std::uint64_t epoch = slot.epoch.load(std::memory_order_seq_cst);
      if (epoch != 0 && epoch < oldest) oldest = epoch;
    }
  }
  return oldest;
}

}  // namespace tandem::sync
