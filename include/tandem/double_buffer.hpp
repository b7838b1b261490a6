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
//   w.publish();                      // applied to the hidden copy, copies swapped
//   { auto g = r.read(); use(*g); }   // a consistent snapshot while `g` lives
//
// Operations: an Op is applied to each copy exactly once, in push order: first as an lvalue
// (`op(t)` through `Op&`, so it may record what it did), later as an rvalue
// (`std::move(op)(t)`, so it may move its payload into the second copy). See
// double_buffer_operation below.
//
// Algorithm. State: copies A and B; `published` (atomic T*) points at the copy readers use;
// the writer owns the other ("hidden") copy once every reader that could still see it has
// left; `pending` = ops pushed since the last publish; `replay` = ops of the last publish,
// already in the published copy, not yet in the hidden one.
//  Reader read():
//   1. (outermost guard only) epochs.enter(slot): the reader's own epoch becomes odd, then the
//      light half of a fence (reader_epochs (R1)).
//   2. p = published.load(acquire): pairs with the writer's release store in step W5, so all
//      writes to *p made before the publish are visible.
//   3. The guard reads *p. Nested guards on the same reader reuse p: one snapshot.
//   4. Last guard released: epochs.leave(slot) (epoch even, release; notify only if the writer
//      is blocked on this reader -- reader_epochs (R3)/(R4)).
//  Writer publish():
//   W1. If nothing is pending, return.
//   W2. Wait for the readers recorded at the previous publish's W6 (spin, yield, then block
//       until the last of them leaves). This is the delayed swap: a guard taken before
//       publish N blocks only publish N+1.
//   W3. Replay `replay` on the hidden copy: std::move(op)(hidden), in order.
//   W4. Apply each pending op as op(hidden), in push order.
//   W5. published.store(hidden, release): the swap.
//   W6. epochs.record_readers_inside(): heavy fence, then record every reader whose epoch is
//       odd -- they may still read the old copy, now hidden. `replay` = `pending`.
//  try_publish() is publish() that returns false, having changed nothing, instead of waiting
//  in W2.
//
// Guarantees:
//  - Readers are wait-free: read() and releasing a guard are a bounded number of atomic
//    operations on the reader's own cache-padded slot plus one load of `published` (a word
//    that changes only on publish).
//  - publish() makes all ops pushed before it visible at once: a reader sees all of a batch or
//    none. Unpublished ops are invisible. A guard is one snapshot for its whole life.
//  - What blocks: only publish(), in W2, and only for readers that were inside a guard when
//    the previous publish swapped. push(), try_publish(), reader creation/copy and read()
//    never wait for anyone.
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
//  - Lifetime: writer, readers and guards share the state; whichever is destroyed last frees
//    both copies. Dropping the writer leaves readers on the last published state.
//  - Debug builds (TANDEM_ASSERT): a reader used by two threads at once, a reader destroyed
//    while a guard on it lives, a writer entered by two threads at once (or by an op calling
//    back into its writer), and any use of a moved-from writer or reader.
//
// Costs: memory = 2 x sizeof(T) + its contents twice + the log (ops of the current and the
// previous batch) + one cache line per live reader. Reader: an epoch store, two compiler
// barriers, a load of `published` and of the reader's own flag (or, with the portable fence,
// two full fences). Writer: every op applied twice; per publish one membarrier system call
// (a few microseconds) and a scan of all reader slots.
//
// Sharing one writer between threads: the writer is a plain single-threaded object; put it
// behind a std::mutex (see docs/double_buffer.md).
//
// Memory ordering: W5's release store pairs with step 2's acquire load (readers see the
// writes W3/W4 made); W6 and step 1 are the two halves of a Dekker handshake made of the
// asymmetric fence (reader_epochs (R1)/(W1)), so a reader either is recorded in W6 or loads
// the new pointer; step 4's release store of the epoch pairs with W2's acquire load, so a
// reader's last read of a copy happens-before the writer's next write to it. The wake-up
// handshake is reader_epochs (R4)/(W4). Under ThreadSanitizer the fences are replaced by
// seq_cst operations (reader_epochs explains why).
#pragma once

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/port.hpp"
#include "sync/assert.hpp"
#include "sync/asymmetric_fence.hpp"
#include "sync/cache_padded.hpp"
#include "sync/reader_epochs.hpp"

namespace tandem {

// An operation on T: applied first as an lvalue (`op(t)` through Op&), later as an rvalue
// (`std::move(op)(t)`), to the two copies. It is stored in the writer's log until then, so it
// must be an object type that moves without throwing.
template <class Op, class T>
concept double_buffer_operation =
    std::is_object_v<Op> && std::is_nothrow_move_constructible_v<Op> &&
    std::is_nothrow_destructible_v<Op> && std::invocable<Op&, T&> && std::invocable<Op&&, T&>;

// What a double_buffer stores: an object type that can be destroyed.
template <class T>
concept double_buffer_value = std::is_object_v<T> && std::destructible<T>;

template <class T, class Op, sync::fence_policy Fence = sync::asymmetric_fence>
class double_buffer {
  static_assert(double_buffer_value<T>, "tandem::double_buffer<T, Op>: T must be an object type");
  static_assert(double_buffer_operation<Op, T>,
                "tandem::double_buffer<T, Op>: Op must be callable as op(T&) through Op& and "
                "through Op&&, and nothrow move constructible (it is stored in the op log)");

  using epochs_type = sync::reader_epochs<Fence>;

  // Everything writer and readers share; freed by whichever of them goes last.
  struct core {
    template <class... Args>
    explicit core(const Args&... args) : first_copy(args...), second_copy(args...) {}

    // Read by every reader's outermost read(); written once per publish.
    sync::cache_padded<std::atomic<T*>> published{&first_copy};
    epochs_type epochs;
    T first_copy;
    T second_copy;
  };

 public:
  class reader;
  class read_guard;
  class writer;

  using value_type = T;
  using operation_type = Op;

  // Builds both copies as T(args...) (args passed as lvalues, twice) and returns the writer and
  // a first reader. Prefer make_double_buffer<T, Op>(args...); this form lets you pick Fence.
  template <class... Args>
  requires std::constructible_from<T, const Args&...>
  [[nodiscard]] static std::pair<writer, reader> create(const Args&... args) {
    auto shared = std::make_shared<core>(args...);
    reader first_reader(shared);
    return {writer(std::move(shared)), std::move(first_reader)};
  }

  // A consistent, read-only view of the published copy. Movable, not copyable.
  class [[nodiscard]] read_guard {
   public:
    read_guard(const read_guard&) = delete;
    read_guard& operator=(const read_guard&) = delete;
    read_guard(read_guard&& other) noexcept
        : owner_(std::exchange(other.owner_, nullptr)), value_(other.value_) {}
    read_guard& operator=(read_guard&&) = delete;
    ~read_guard() {
      if (owner_ != nullptr) owner_->unpin();
    }

    [[nodiscard]] const T& operator*() const noexcept { return *value_; }
    [[nodiscard]] const T* operator->() const noexcept { return value_; }
    [[nodiscard]] const T& get() const noexcept { return *value_; }

   private:
    friend class reader;
    read_guard(reader* owner, const T* value) noexcept : owner_(owner), value_(value) {}

    reader* owner_;
    const T* value_;
  };

  // A read handle. Copy it to get another (each copy has its own epoch slot); one thread at a
  // time uses a reader, but it may be handed to another thread between uses.
  class reader {
   public:
    reader(const reader& other) : core_(other.core_), slot_(claim_slot(core_.get())) {}
    reader(reader&& other) noexcept
        : core_(std::move(other.core_)), slot_(std::exchange(other.slot_, nullptr)) {
      TANDEM_ASSERT(other.depth_ == 0, "a reader was moved while a read_guard on it was alive");
    }
    reader& operator=(const reader& other) {
      if (this != &other) *this = reader(other);
      return *this;
    }
    reader& operator=(reader&& other) noexcept {
      if (this != &other) {
        TANDEM_ASSERT(depth_ == 0 && other.depth_ == 0,
                      "a reader was assigned while a read_guard on it was alive");
        leave_slot();
        core_ = std::move(other.core_);
        slot_ = std::exchange(other.slot_, nullptr);
      }
      return *this;
    }
    ~reader() {
      TANDEM_ASSERT(depth_ == 0, "a read_guard outlived the reader it was taken from");
      leave_slot();
    }

    // Pins the published copy until the returned guard (and every guard nested in it on this
    // reader) is gone. Wait-free.
    [[nodiscard]] read_guard read() noexcept {
      TANDEM_ASSERT(slot_ != nullptr, "read() on a moved-from reader");
      if (depth_ == 0) {
#if TANDEM_ENABLE_ASSERTS
        const std::thread::id previous = user_.exchange(std::this_thread::get_id());
        TANDEM_ASSERT(previous == std::thread::id{},
                      "a reader was used by two threads at once (copy it: one per thread)");
#endif
        epochs_type::enter(*slot_);  // step 1
        // Step 2, acquire: pairs with the writer's release store in publish (W5).
        pinned_ = core_->published->load(epochs_type::pinned_load_order);
      } else {
#if TANDEM_ENABLE_ASSERTS
        TANDEM_ASSERT(user_.load() == std::this_thread::get_id(),
                      "a reader was used by two threads at once (copy it: one per thread)");
#endif
      }
      ++depth_;
      return read_guard(this, pinned_);
    }

   private:
    friend class double_buffer;
    friend class read_guard;
    friend class writer;

    explicit reader(std::shared_ptr<core> shared)
        : core_(std::move(shared)), slot_(claim_slot(core_.get())) {}

    static typename epochs_type::slot* claim_slot(core* shared) {
      return shared != nullptr ? &shared->epochs.claim() : nullptr;
    }

    void unpin() noexcept {
      TANDEM_ASSERT(depth_ > 0, "read_guard released twice");
      if (--depth_ == 0) {
#if TANDEM_ENABLE_ASSERTS
        user_.store(std::thread::id{});
#endif
        core_->epochs.leave(*slot_);  // step 4
      }
    }

    void leave_slot() noexcept {
      if (slot_ == nullptr) return;
      if (depth_ != 0) {
        // Only reachable after a failed assertion whose handler returned (tests): leave the
        // read section so the writer is not blocked forever by a reader that is gone.
        core_->epochs.leave(*slot_);
        depth_ = 0;
      }
      core_->epochs.release(*slot_);
      slot_ = nullptr;
    }

    std::shared_ptr<core> core_;
    typename epochs_type::slot* slot_;
    const T* pinned_ = nullptr;  // the copy the outermost guard pinned
    std::uint32_t depth_ = 0;    // live guards on this reader
#if TANDEM_ENABLE_ASSERTS
    std::atomic<std::thread::id> user_{};  // the thread inside a guard, for the misuse check
#endif
  };

  // The single writer. Move-only; not thread-safe (share it behind a mutex).
  class writer {
   public:
    writer(writer&& other) noexcept
        : core_(std::move(other.core_)),
          hidden_(std::exchange(other.hidden_, nullptr)),
          pending_(std::move(other.pending_)),
          applied_(std::exchange(other.applied_, 0)),
          replay_(std::move(other.replay_)),
          replayed_(std::exchange(other.replayed_, 0)),
          must_wait_(std::exchange(other.must_wait_, false)) {}
    writer& operator=(writer&& other) noexcept {
      if (this != &other) {
        core_ = std::move(other.core_);
        hidden_ = std::exchange(other.hidden_, nullptr);
        pending_ = std::move(other.pending_);
        applied_ = std::exchange(other.applied_, 0);
        replay_ = std::move(other.replay_);
        replayed_ = std::exchange(other.replayed_, 0);
        must_wait_ = std::exchange(other.must_wait_, false);
      }
      return *this;
    }
    writer(const writer&) = delete;
    writer& operator=(const writer&) = delete;
    ~writer() = default;

    // Logs `op`; readers see it after the next successful publish(). Never waits.
    // Throws std::bad_alloc if the log cannot grow (the op is then not logged).
    void push(Op op) {
      const entry_check check(this);
      pending_.push_back(std::move(op));
    }

    // Applies the pending ops to the hidden copy and makes it the published one. Waits first
    // for readers still in the hidden copy from the previous publish (spin, yield, block).
    // Exceptions: see the header comment.
    void publish() {
      const entry_check check(this);
      if (pending_.empty()) return;  // W1
      if (must_wait_) {              // W2
        core_->epochs.wait_for_recorded_readers();
        must_wait_ = false;
      }
      apply_and_swap();
    }

    // publish() if no reader is still in the hidden copy; otherwise returns false at once,
    // having changed nothing. Exceptions as publish().
    [[nodiscard]] bool try_publish() {
      const entry_check check(this);
      if (pending_.empty()) return true;
      if (must_wait_) {
        if (!core_->epochs.recorded_readers_left()) return false;
        must_wait_ = false;
      }
      apply_and_swap();
      return true;
    }

    // Ops pushed but not yet published.
    [[nodiscard]] std::size_t pending() const noexcept {
#if TANDEM_ENABLE_ASSERTS
      TANDEM_ASSERT(!busy_.load(),
                    "a writer was entered twice at once (two threads sharing it "
                    "without a mutex, or an op calling back into its writer)");
#endif
      return pending_.size();
    }

    // A new reader; it starts on the currently published copy.
    [[nodiscard]] double_buffer::reader reader() const {
      TANDEM_ASSERT(core_ != nullptr, "reader() on a moved-from writer");
      return double_buffer::reader(core_);
    }

   private:
    friend class double_buffer;

    explicit writer(std::shared_ptr<core> shared)
        : core_(std::move(shared)), hidden_(&core_->second_copy) {}

    // Debug check that one writer is never entered twice at once.
    class entry_check {
     public:
      explicit entry_check([[maybe_unused]] writer* self) noexcept {
        TANDEM_ASSERT(self->core_ != nullptr, "a moved-from writer was used");
#if TANDEM_ENABLE_ASSERTS
        self_ = self;
        const bool was_busy = self->busy_.exchange(true);
        TANDEM_ASSERT(!was_busy,
                      "a writer was entered twice at once (two threads sharing it without a "
                      "mutex, or an op calling back into its writer)");
        owns_ = !was_busy;
#endif
      }
      entry_check(const entry_check&) = delete;
      entry_check& operator=(const entry_check&) = delete;
      ~entry_check() {
#if TANDEM_ENABLE_ASSERTS
        if (owns_) self_->busy_.store(false);
#endif
      }

#if TANDEM_ENABLE_ASSERTS
     private:
      writer* self_ = nullptr;
      bool owns_ = false;
#endif
    };

    // W3 .. W6. Precondition: no reader is in the hidden copy.
    void apply_and_swap() {
      // W3: replay the last batch. On a throw replayed_ keeps pointing at the failed op, so
      // the next publish resumes there (the op left the copy unchanged: strong guarantee).
      for (; replayed_ < replay_.size(); ++replayed_) std::move(replay_[replayed_])(*hidden_);
      replay_.clear();
      replayed_ = 0;
      // The log's memory follows the batches in flight, not the largest batch ever: a replay
      // vector with room for over four times the current batch (and more than
      // log_capacity_floor ops) is released; the next batch regrows it geometrically.
      if (replay_.capacity() > log_capacity_floor && replay_.capacity() > 4 * pending_.size()) {
        std::vector<Op>().swap(replay_);
      }

      // W4: first application of each pending op, in order.
      while (applied_ < pending_.size()) {
        try {
          pending_[applied_](*hidden_);
        } catch (...) {
          drop_pending(applied_);
          throw;
        }
        ++applied_;
      }

      // W5, release (seq_cst under TSan): pairs with the readers' acquire load (step 2).
      T* const old_published = core_->published->load(std::memory_order_relaxed);  // own store
      core_->published->store(hidden_, epochs_type::unpin_publish_order);
      hidden_ = old_published;
      // W6: readers that may still be in the old copy; the next publish waits for them.
      core_->epochs.record_readers_inside();
      must_wait_ = core_->epochs.recorded_count() != 0;

      // The published batch becomes the replay log; keep both vectors' capacity.
      std::swap(replay_, pending_);
      applied_ = 0;
    }

    // Removes pending_[index] without requiring Op to be assignable.
    void drop_pending(std::size_t index) noexcept {
      for (std::size_t i = index; i + 1 < pending_.size(); ++i) {
        std::destroy_at(&pending_[i]);
        std::construct_at(&pending_[i], std::move(pending_[i + 1]));
      }
      pending_.pop_back();
    }

    std::shared_ptr<core> core_;
    T* hidden_ = nullptr;  // the copy readers do not get from `published`
    // Below this many ops the log keeps its capacity between batches (no reallocation for the
    // usual small batches); above it, see apply_and_swap.
    static constexpr std::size_t log_capacity_floor = 1024;
    std::vector<Op> pending_;  // pushed since the last publish; [0, applied_) are in hidden_
    std::size_t applied_ = 0;
    std::vector<Op> replay_;    // the last published batch, to replay on hidden_
    std::size_t replayed_ = 0;  // [0, replayed_) are already replayed
    bool must_wait_ = false;    // readers recorded at the last swap may be in hidden_
#if TANDEM_ENABLE_ASSERTS
    std::atomic<bool> busy_{false};
#endif
  };
};

// Builds the two copies as T(args...) twice (args are passed as lvalues both times, so they
// are not moved into the first copy) and returns the writer and a first reader.
template <class T, class Op, class... Args>
[[nodiscard]] std::pair<typename double_buffer<T, Op>::writer,
                        typename double_buffer<T, Op>::reader>
make_double_buffer(Args&&... args) {
  static_assert(std::is_constructible_v<T, const std::remove_reference_t<Args>&...>,
                "tandem::make_double_buffer<T, Op>(args...): T must be constructible from "
                "args... passed as lvalues (both copies are built from the same args)");
  return double_buffer<T, Op>::create(args...);
}

}  // namespace tandem
