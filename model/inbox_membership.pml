/*
 * inbox_membership.pml -- a SPIN model of the split reference count of an inbox's membership
 * of a topic: include/tandem/event_bus.hpp, detail::inbox_membership, membership_ref and
 * membership_owner (steps named as in their comments).
 *
 * The protocol: `made` (plain, guarded by the inbox mailbox's lock) counts the envelopes that
 * pushes built; `refs` (atomic) holds LIVE_BIAS + 1 for the owner while the inbox holds the
 * membership, plus every other reference taken (the topic list's, envelope copies), minus every
 * reference dropped (envelopes included). The owner withdraws the membership under the lock
 * (no push builds an envelope after that), then folds: refs -= LIVE_BIAS + 1 - made, in one
 * fetch_sub. Whoever's fetch_sub leaves 0 deletes. The idea is Linux's percpu_ref (counts kept
 * apart while live, folded into one atomic count with the bias removed when killed); the mailbox
 * lock stands where percpu_ref has an RCU grace period.
 *
 * What is modelled:
 *  - two publishers, each pushing twice through a list reference it holds (a topic list
 *    snapshot): under the lock, if not withdrawn, made += 1 and the envelope is queued;
 *  - the topic list's reference: copied and dropped again while live (the list rebuilt for
 *    another subscriber), and its last copy dropped after the owner left the list (step 2 of
 *    leave) and after every publisher that held the snapshot is done with it;
 *  - the owner, which is also the receiver: it pops queued envelopes, copies some (+1), gives
 *    some to another thread, drops the rest, at any point withdraws (under the lock) and then
 *    folds, and keeps receiving what is queued after that;
 *  - another thread that drops the envelopes it was given, at any time.
 * What is not:
 *  - memory orders. SPIN interleaves sequentially consistent steps; the header's orders (acq_rel
 *    decrements and fold, relaxed increments from a live reference, the lock around `made` and
 *    `withdrawn`) are the standard ones for reference counts; the model checks the arithmetic
 *    and the order of the steps, in every interleaving;
 *  - close() instead of the withdrawal (~inbox): the same step for the pushes (refused under
 *    the lock);
 *  - counts above a byte: LIVE_BIAS is 100 here; the header's 2^63 bounds the envelopes made.
 *
 * Properties (exhaustive search, CTest "model: inbox_membership count has no error"):
 *  1. nothing uses the membership after it is deleted: every push, copy, topic read and
 *     reference drop asserts it is alive (a delete while any reference is held is caught the
 *     next time that reference is used, and each is used at least once more: its drop);
 *  2. it is deleted exactly once (assert at the delete);
 *  3. it is deleted in the end (assert in the final check): no leak.
 *
 * Planted bugs (-DPLANT_...), each must be caught
 * (CTest "model: inbox_membership count: planted bug ... is caught"):
 *  FOLD_WITHOUT_MADE     the fold forgets the pushes' envelopes (refs -= LIVE_BIAS + 1)
 *  NO_BIAS               no live bias: a receiver's drop can outrun the counted references
 *  FOLD_BEFORE_WITHDRAW  the owner folds first and withdraws after: a push in between counts
 *                        an envelope the fold did not see
 *  MADE_OUTSIDE_LOCK     a push counts its envelope after unlocking (read, then write back)
 *  ENVELOPE_COUNTED_TWICE  a push also adds its envelope to refs (the membership leaks)
 */

#ifdef PLANT_NO_BIAS
#define LIVE_BIAS 0
#else
#define LIVE_BIAS 100
#endif
#define PUSHES 2           /* per publisher */

bool lock = 0;             /* the inbox mailbox's lock */
bool withdrawn = 0;        /* guarded by lock */
byte made = 0;             /* guarded by lock */
int refs = LIVE_BIAS + 2;  /* the owner's (+1) and the topic list's (+1) */
bool deleted = 0;
byte queued = 0;           /* envelopes in the mailbox */
byte given = 0;            /* envelopes handed to the other thread */
bool left_list = 0;        /* the owner removed its entry from the topic's list */
byte publishers_done = 0;
bool owner_done = 0;

inline acquire_lock() { atomic { lock == 0 -> lock = 1 } }
inline release_lock() { lock = 0 }

/* membership_ref::release(): fetch_sub(1); the one that leaves 0 deletes. */
inline drop() {
  atomic {
    assert(!deleted);
    refs = refs - 1;
    if
    :: refs == 0 -> assert(!deleted); deleted = 1
    :: else -> skip
    fi
  }
}

proctype publisher() {
  byte i, seen;
  for (i : 1 .. PUSHES) {
    acquire_lock();
    assert(!deleted);      /* reads `withdrawn` through its list reference */
    if
    :: !withdrawn ->
#ifdef PLANT_MADE_OUTSIDE_LOCK
       seen = made;
       queued = queued + 1;
       release_lock();
       made = seen + 1
#else
       made = made + 1;    /* membership_ref::for_envelope, at the commit point */
#ifdef PLANT_ENVELOPE_COUNTED_TWICE
       atomic { refs = refs + 1 };
#endif
       queued = queued + 1;
       release_lock()
#endif
    :: else -> release_lock()
    fi
  }
  atomic { publishers_done = publishers_done + 1 }
}

/* The topic list: rebuilt while live (a copy of the reference, then the old one dropped), and
 * its last reference dropped once the owner left the list and no publisher holds the snapshot. */
proctype topic_list() {
  if
  :: atomic { !withdrawn -> assert(!deleted); refs = refs + 1 }; drop()
  :: skip
  fi;
  (left_list && publishers_done == 2);
  drop()
}

proctype other_thread() {
  do
  :: atomic { given > 0 -> given = given - 1 }; drop()
  :: owner_done && given == 0 -> break
  od
}

inline fold() {
  atomic {
    assert(!deleted);
#ifdef PLANT_FOLD_WITHOUT_MADE
    refs = refs - (LIVE_BIAS + 1);
#else
    refs = refs - (LIVE_BIAS + 1 - made);
#endif
    if
    :: refs == 0 -> assert(!deleted); deleted = 1
    :: else -> skip
    fi
  }
}

inline withdraw() {
  acquire_lock();
  withdrawn = 1;
  release_lock();
  left_list = 1
}

proctype owner() {
  byte held = 0;           /* envelopes this thread holds (received or copied) */
  bool folded = 0;
  do
  :: atomic { queued > 0 -> queued = queued - 1; held = held + 1 }
  :: held > 0 && held + given < 3 ->   /* an envelope copy (at most 3 in hand: a bound) */
     atomic { assert(!deleted); refs = refs + 1; held = held + 1 }
  :: held > 0 -> assert(!deleted); held = held - 1; atomic { given = given + 1 }
  :: held > 0 -> assert(!deleted); held = held - 1; drop()
  :: !folded ->
#ifdef PLANT_FOLD_BEFORE_WITHDRAW
     fold(); withdraw();
#else
     withdraw(); fold();
#endif
     folded = 1
  :: folded && held == 0 && queued == 0 && publishers_done == 2 -> break
  od;
  owner_done = 1
}

init {
  atomic {
    run publisher();
    run publisher();
    run topic_list();
    run other_thread();
    run owner()
  }
  (_nr_pr == 1);
  assert(queued == 0 && given == 0);
  assert(deleted)          /* property 3: no leak */
}
