// tandem/sync/epoch_reclamation.hpp -- epoch-based reclamation for anonymous per-thread readers:
// when may an object that was unlinked from a shared structure be freed?
//
// What it is for: structures whose readers are arbitrary threads with no handle of their own
// (tandem::registry's lookups), that unlink objects (erase, a grown table) while readers may still
// be looking at them, and that must never make a writer wait for a reader (a reader may itself
// call the writer, e.g. registry::visit's callback erasing its own entry). Compare
// reader_epochs.hpp, which is for one writer that waits for explicitly created reader handles.
// The scheme is Fraser's epoch-based reclamation (K. Fraser, "Practical lock-freedom", 2004),
// with one process-wide epoch counter and slots that threads claim on first use and give back
// at exit. Each slot word also carries a 16-bit domain tag (one per structure, e.g. per
// registry), so that a writer of one structure never waits for readers of another: a thread
// parked inside registry A's visit() does not keep registry B's retired nodes (or, at process
// exit, B's instances) alive.
//
// Algorithm (a slot word is (epoch << 16) | tag, 0 meaning "outside"):
//  R1. A reader entering its outermost read section of domain d loads the global epoch e and
//      stores (e << 16) | d into its own slot (alone on its cache line); then the light half of
//      an asymmetric fence. A nested section of another domain d' adds d' to the slot's second
//      word (`extra`: three 16-bit lanes) the same way (store + light fence), under the older
//      epoch; only a fourth domain nested at once re-tags the slot "any domain" (tag 0). (Until
//      2026-12-01 any nested domain re-tagged it "any": a thread parked in registry A's visit()
//      inside registry B's then held back every registry's reclamation, and at exit the
//      teardown of an unrelated global registry waited its full grace and kept its instances.)
//  R2. It reads the shared structure with plain acquire loads.
//  R3. Leaving a nested section that announced its domain puts back the word it changed (the
//      lane, or the outermost tag), release, when it is the innermost such section still open:
//      that is the value from before it. Sections may end in any order (one held in a
//      std::optional or on the heap): one that ends below others still open leaves its announce
//      in place (they rely on it, and the values they will put back include it) and the
//      outermost end clears it (until 2026-12-03 it put back its old value at once, and so
//      withdrew the domains of sections opened after it and still reading: found by review,
//      docs/reliability.md rule 57). Leaving the outermost section stores 0 into `extra` (if it was
//      used) and then 0 ("outside") into its slot word (both release). (Until 2026-12-01 a
//      nested domain stayed announced until the outermost section ended: one finished lookup in
//      registry B from inside registry A's visit() held back B's reclamation and B's exit
//      teardown for as long as that visit ran.)
//  W1. A writer that unlinked objects calls retire_stamp(): a seq_cst increment of the global
//      epoch; the objects are stamped with the new value.
//  W2. Later (at its next write; never blocking), it calls oldest_announced_epoch(d): the heavy
//      fence, then the smallest epoch of the non-zero slots tagged d or "any", or holding d in
//      an `extra` lane. Objects whose
//      stamp is <= that value, or all of them when no such slot is announced, are no longer
//      reachable by any reader of d and may be freed.
//
// Guarantees: readers are wait-free and write only their own slot; writers never wait.
// Slots: the first read section a thread runs claims a slot (allocation-free for the first 64
// threads alive at once; then chunks of 64 are added, never freed); a thread's slot is given
// back when the thread exits and reused by the next thread. A read section that runs after the
// thread's own clean-up (in a thread_local destructor that runs later) claims a slot for that
// section only and gives it back when the section ends: no slot is ever lost to an exited thread.
// Domain tags are handed out round-robin from 1 to 65535; two structures that share a tag only
// make each other's reclamation more conservative, never unsafe.
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

namespace tandem::sync {

// Which structure a read section reads, so that writers of other structures ignore it. 0 is
// "any domain": a section tagged 0 is waited for by every writer, and a scan for 0 waits for
// every section.
using epoch_domain_tag = std::uint16_t;
inline constexpr epoch_domain_tag any_epoch_domain = 0;

}  // namespace tandem::sync

namespace tandem::detail {

inline constexpr unsigned epoch_tag_bits = 16;
inline constexpr std::uint64_t epoch_tag_mask = (std::uint64_t{1} << epoch_tag_bits) - 1;

inline constexpr unsigned epoch_extra_lanes = 3;  // nested domains held besides the word's tag

struct alignas(sync::cache_line_size) epoch_slot {
  // (epoch << 16) | domain tag; 0: outside any read section. Written by the owner only.
  std::atomic<std::uint64_t> word{0};
  // Domains of nested sections besides the word's tag, 16 bits each (0: a free lane), under
  // the word's epoch; meaningful only while `word` is not 0. Written by the owner only.
  std::atomic<std::uint64_t> extra{0};
  std::atomic<bool> claimed{false};  // whether a thread owns the slot
  bool has_extra = false;            // `extra` may be non-0, or a chain exists; owner only
  std::uint32_t depth = 0;           // read-section nesting, owner thread only
  // The innermost open nested section that took part in announcing a nested domain (a lane,
  // a re-tag, or relying on one); each links to the one below. Owner thread only.
  void* nested_top = nullptr;
};

// Whether `extra` holds `domain` (not 0) in one of its lanes.
[[nodiscard]] constexpr bool epoch_extra_holds(std::uint64_t extra, std::uint64_t domain) noexcept {
  for (unsigned lane = 0; lane < epoch_extra_lanes; ++lane) {
    if (((extra >> (lane * epoch_tag_bits)) & epoch_tag_mask) == domain) return true;
  }
  return false;
}

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
  std::atomic<std::uint32_t> next_tag{0};  // where the search for a free domain tag starts
  // Domain tags in use: tag t is bit t % 64 of word t / 64 (tag 0, "any domain", is never
  // handed out). 8 KiB, zero-initialised.
  std::atomic<std::uint64_t> tags_in_use[65536 / 64]{};
  epoch_chunk first;
};

// Constant-initialised and trivially destructible: usable from any static destructor.
TANDEM_PROCESS_WIDE inline constinit epoch_domain process_epochs{};
TANDEM_PROCESS_WIDE inline constinit thread_local epoch_slot* this_thread_epoch_slot = nullptr;
// Set when the thread's slot_releaser has run: from then on a slot is held per section only.
TANDEM_PROCESS_WIDE inline constinit thread_local bool epoch_thread_exiting = false;

inline void release_epoch_slot(epoch_slot& slot) noexcept {
  this_thread_epoch_slot = nullptr;
  // release: pairs with the acquire exchange in claim_epoch_slot of the next owner.
  slot.claimed.store(false, std::memory_order_release);
}

// Gives the thread's slot back when the thread exits (or, if a read section is still open,
// marks the thread exiting so that the section's end gives it back).
struct epoch_slot_releaser {
  epoch_slot* slot = nullptr;
  epoch_slot_releaser() = default;
  epoch_slot_releaser(const epoch_slot_releaser&) = delete;
  epoch_slot_releaser& operator=(const epoch_slot_releaser&) = delete;
  ~epoch_slot_releaser() {
    epoch_thread_exiting = true;
    if (slot != nullptr && slot->depth == 0 && this_thread_epoch_slot == slot) {
      release_epoch_slot(*slot);
    }
  }
};

TANDEM_PROCESS_WIDE TANDEM_NOINLINE inline epoch_slot& claim_epoch_slot() {
  epoch_chunk* chunk = &process_epochs.first;
  epoch_slot* found = nullptr;
  while (found == nullptr) {
    for (epoch_slot& slot : chunk->slots) {
      // relaxed pre-check, then acquire exchange: pairs with the release in release_epoch_slot.
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
    // A thread that reads again while exiting gets no releaser (its releaser has already run):
    // the section's end gives the slot back instead (epoch_read_section's destructor).
    static thread_local epoch_slot_releaser releaser;
    releaser.slot = found;
  }
  return *found;
}

}  // namespace tandem::detail

namespace tandem::sync {

// A domain tag for one structure (1..65535; never 0) that no live structure holds, taken
// round-robin from the tags free; give it back with release_epoch_domain when the structure
// is destroyed. Only when 65,535 structures are alive at once is a tag shared: two structures
// sharing one wait for each other's readers (more conservative, never less safe). (Until
// 2026-12-02 tags were handed out round-robin and never reused, so after 65,535 registries
// had been built, temporary ones included, a new one shared a live global() registry's tag,
// and a thread parked in its visit() held back that registry's reclamation and its exit
// teardown; found by review.) Lock-free; about one read-modify-write when tags are free.
inline epoch_domain_tag new_epoch_domain() noexcept {
  auto& epochs = detail::process_epochs;
  // relaxed (all below): a tag's bit is owned by whoever set it; the tag's value orders
  // nothing (a structure's readers and writers meet through its own atomics).
  const std::uint32_t start = epochs.next_tag.fetch_add(1, std::memory_order_relaxed);
  for (std::uint32_t k = 0; k < 65535U; ++k) {
    const std::uint32_t tag = (start + k) % 65535U + 1U;
    std::atomic<std::uint64_t>& word = epochs.tags_in_use[tag / 64];
    const std::uint64_t bit = std::uint64_t{1} << (tag % 64);
    if ((word.load(std::memory_order_relaxed) & bit) != 0) continue;
    if ((word.fetch_or(bit, std::memory_order_relaxed) & bit) == 0) {
      return static_cast<epoch_domain_tag>(tag);
    }
  }
  return static_cast<epoch_domain_tag>(start % 65535U + 1U);  // all in use: shared
}

// Gives back a tag new_epoch_domain returned (the structure's destructor, once no reader of
// it can exist). A tag shared because all were in use is freed by the first of its holders to
// go, and may then be handed out once more: again only more conservative.
inline void release_epoch_domain(epoch_domain_tag tag) noexcept {
  if (tag == any_epoch_domain) return;
  const std::uint64_t bit = std::uint64_t{1} << (tag % 64);
  // relaxed: see new_epoch_domain.
  detail::process_epochs.tags_in_use[tag / 64].fetch_and(~bit, std::memory_order_relaxed);
}

// A structure's own domain tag, held from its construction to its destruction
// (new_epoch_domain / release_epoch_domain): a member of the structure, so that a constructor
// that throws after taking the tag gives it back (found by review, 2026-12-02: a registry whose
// Hash's constructor threw kept its tag for ever, and 65,535 such failures brought back the
// shared tags the tags' recycling removed).
class owned_epoch_domain {
 public:
  owned_epoch_domain() noexcept : tag_(new_epoch_domain()) {}
  owned_epoch_domain(const owned_epoch_domain&) = delete;
  owned_epoch_domain& operator=(const owned_epoch_domain&) = delete;
  ~owned_epoch_domain() { release_epoch_domain(tag_); }
  [[nodiscard]] epoch_domain_tag tag() const noexcept { return tag_; }

 private:
  epoch_domain_tag tag_;
};

// RAII read section (R1..R3) of one domain. Nested sections on one thread share the outermost
// announce; a nested section of another domain adds that domain to it (up to three; beyond,
// the announce widens to "any domain").
class [[nodiscard]] epoch_read_section {
 public:
  explicit epoch_read_section(epoch_domain_tag domain = any_epoch_domain)
      : slot_(detail::this_thread_epoch_slot != nullptr ? *detail::this_thread_epoch_slot
                                                        : detail::claim_epoch_slot()) {
    if (slot_.depth++ == 0) {
      // acquire: pairs with the seq_cst fetch_add in retire (W1): if we read a stamp's epoch,
      // the unlink before it is visible to our loads below.
      const std::uint64_t now = detail::process_epochs.epoch.load(std::memory_order_acquire);
      announce((now << detail::epoch_tag_bits) | domain);
    } else {
      enter_nested(domain);
    }
  }
  epoch_read_section(const epoch_read_section&) = delete;
  epoch_read_section& operator=(const epoch_read_section&) = delete;
  ~epoch_read_section() {
    if (--slot_.depth != 0) {
      // A nested section gives back what it announced for its own domain (add_domain): when
      // it is the innermost one in the chain, the word it changed holds again what it held
      // before. Kept, a finished lookup in registry B made inside registry A's visit() held
      // back B's reclamation (and B's exit teardown) until that visit ended.
      // Sections may end out of order (std::optional, heap): only the innermost joined one
      // gives back what it changed; one ending below others leaves its announce in place
      // (over-announcing until the outermost ends: safe) and unlinks itself, since the
      // values the sections above it will put back include its announce (found by review,
      // 2026-12-03; docs/reliability.md rule 57).
      if (TANDEM_UNLIKELY(slot_.nested_top != nullptr)) leave_chain();
    } else {
      if (TANDEM_UNLIKELY(slot_.has_extra)) {
        // (R3) release: as below, for the nested domains' reads.
        slot_.extra.store(0, std::memory_order_release);
        slot_.has_extra = false;
        // Every section has ended; the last may have been one in the chain (sections ending
        // out of order), which took this branch instead of leaving it. Every section joining
        // a chain sets has_extra (a nested section of domain "any" re-tags the word without a
        // lane), so a chain exists only with has_extra.
        slot_.nested_top = nullptr;
      }
      // (R3) release: pairs with the scan (W2); our reads happen-before any free it allows.
      slot_.word.store(0, std::memory_order_release);
      // A section run after this thread's releaser (a later thread_local destructor) holds
      // the slot only for its own duration.
      if (TANDEM_UNLIKELY(detail::epoch_thread_exiting)) detail::release_epoch_slot(slot_);
    }
  }

 private:
  static void announce(std::atomic<std::uint64_t>& target, std::uint64_t value) noexcept {
#if TANDEM_TSAN
    // (R1) seq_cst store, so that TSan (which models no stand-alone fence) sees the
    // handshake: ordered before our table loads (R2) in the single total order.
    target.store(value, std::memory_order_seq_cst);
#else
    // (R1) relaxed store + light fence: together with the heavy fence before the scan (W2)
    // they act as two seq_cst fences (asymmetric_fence.hpp), so either the scan sees this
    // announce or our table loads (R2) see the unlink. The reader pays a compiler barrier.
    target.store(value, std::memory_order_relaxed);
    asymmetric_fence::light();
#endif
  }

  // A nested section: announces its domain unless the outermost's tag (or "any") covers it,
  // and joins the chain when it announced, or relies on another nested section's announce (a
  // lane holding its domain, or the word re-tagged "any" by a nested section): the one it
  // relies on must not withdraw while it runs, whatever order they end in. Out of line, as
  // add_domain: inline, the chain's code cost clang 13 instructions on every registry hit,
  // which never nests.
  TANDEM_NOINLINE void enter_nested(std::uint64_t domain) noexcept {
    // relaxed: only the owner thread writes its slot.
    const std::uint64_t word = slot_.word.load(std::memory_order_relaxed);
    const std::uint64_t tag = word & detail::epoch_tag_mask;
    if ((tag != any_epoch_domain && tag != domain) ||
        (tag == any_epoch_domain && slot_.nested_top != nullptr)) {
      below_ = static_cast<epoch_read_section*>(slot_.nested_top);
      slot_.nested_top = this;
      // The outermost end clears the chain under has_extra: a re-tag "any" by a nested section
      // of domain "any" takes no lane, so set it for every chain (review s24d: nested_top was
      // left dangling when such a section outlived the outermost).
      slot_.has_extra = true;
      changed_ = nullptr;
      if (tag != any_epoch_domain) add_domain(word, domain);
    }
  }

  // A nested section of `domain`, another domain than the outermost's (which is not "any"):
  // "any" itself re-tags the word (a free lane reads 0, so a lane cannot hold it); another
  // domain is announced in a free lane of `extra` (R1 again, for that word), or, with every
  // lane taken, by re-tagging the word "any domain" (older epoch kept): from then on the
  // matching writers' scans count it. Out of line, and the "any" case with the rest: inline
  // in the constructor, that branch cost clang 13 instructions on every registry hit.
  TANDEM_NOINLINE void add_domain(std::uint64_t word, std::uint64_t domain) noexcept {
    if (domain == any_epoch_domain) {
      retag_any(word);  // (R1) again: every writer counts it now
      return;
    }
    // relaxed: only the owner thread writes its slot.
    const std::uint64_t extra = slot_.extra.load(std::memory_order_relaxed);
    if (detail::epoch_extra_holds(extra, domain)) return;
    for (unsigned lane = 0; lane < detail::epoch_extra_lanes; ++lane) {
      const unsigned shift = lane * detail::epoch_tag_bits;
      if (((extra >> shift) & detail::epoch_tag_mask) == 0) {
        slot_.has_extra = true;
        changed_ = &slot_.extra;
        previous_ = extra;
        announce(slot_.extra, extra | (domain << shift));
        return;
      }
    }
    retag_any(word);
  }

  void retag_any(std::uint64_t word) noexcept {
    changed_ = &slot_.word;
    previous_ = word;
    announce(slot_.word, word & ~detail::epoch_tag_mask);
  }

  // The end of a nested section that announced its domain: the lane it took is free again, or
  // the word it re-tagged "any domain" has its outermost tag back (the epoch never changed).
  // (R3) release: this section's reads of its domain happen-before any free that a scan no
  // longer counting it allows.
  TANDEM_NOINLINE void withdraw_domain() noexcept {
    changed_->store(previous_, std::memory_order_release);
  }

  // The end of a nested section while the slot has a chain: if this section is its innermost
  // member, it puts back what it changed and pops itself; if it is a member below others, it
  // unlinks itself and leaves its announce (the sections above will put back values that
  // include it); if it is not in the chain (a section of the outermost's domain, or the
  // outermost section itself ending first), nothing. The chain holds at most the nested
  // sections open on this thread.
  TANDEM_NOINLINE void leave_chain() noexcept {
    auto* top = static_cast<epoch_read_section*>(slot_.nested_top);
    if (top == this) {
      if (changed_ != nullptr) withdraw_domain();
      slot_.nested_top = below_;
      return;
    }
    for (epoch_read_section* above = top; above != nullptr; above = above->below_) {
      if (above->below_ == this) {
        above->below_ = below_;
        return;
      }
    }
  }

  void announce(std::uint64_t word) noexcept {
    announce(slot_.word, word);
  }

  detail::epoch_slot& slot_;
  // Written only by a section that joins the slot's chain (enter_nested), and read only for
  // members of the chain, so a section that never nests stores nothing here (the registry's
  // hit path): the member below this one in the chain (null at the bottom); what this section
  // changed to announce its domain, and the value it had before: `extra` (a lane taken) or
  // `word` (re-tagged "any domain"), null when it changed nothing (it relies on another's
  // announce).
  epoch_read_section* below_;
  std::atomic<std::uint64_t>* changed_;
  std::uint64_t previous_;
};

// (W1) Returns the stamp for objects unlinked (W1) before this call.
inline std::uint64_t retire_stamp() noexcept {
  return detail::process_epochs.epoch.fetch_add(1, std::memory_order_seq_cst) + 1;
}

// (W2) The smallest epoch announced by a running read section of `domain` (or of "any"), or
// max when none runs. any_epoch_domain counts every section.
inline std::uint64_t oldest_announced_epoch(epoch_domain_tag domain = any_epoch_domain) noexcept {
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
      const std::uint64_t word = slot.word.load(std::memory_order_seq_cst);
      if (word == 0) continue;
      const std::uint64_t tag = word & detail::epoch_tag_mask;
      if (domain != any_epoch_domain && tag != any_epoch_domain && tag != domain &&
          !detail::epoch_extra_holds(slot.extra.load(std::memory_order_seq_cst), domain)) {
        continue;
      }
      const std::uint64_t epoch = word >> detail::epoch_tag_bits;
      if (epoch < oldest) oldest = epoch;
    }
  }
  return oldest;
}

// How many slots threads hold right now (a diagnostic: it should track the number of live
// threads that have read, and falls back when they exit).
inline std::size_t claimed_epoch_slots() noexcept {
  std::size_t claimed = 0;
  for (detail::epoch_chunk* chunk = &detail::process_epochs.first; chunk != nullptr;
       // acquire: pairs with the release CAS that linked the chunk.
       chunk = chunk->next.load(std::memory_order_acquire)) {
    for (const detail::epoch_slot& slot : chunk->slots) {
      // relaxed: a snapshot count.
      if (slot.claimed.load(std::memory_order_relaxed)) ++claimed;
    }
  }
  return claimed;
}

}  // namespace tandem::sync
