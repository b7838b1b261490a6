/*
 * double_buffer.pml -- a SPIN model of tandem's left-right protocol:
 * include/tandem/sync/reader_epochs.hpp (steps (R1)..(R4), (W1)..(W4) in its comments) as used
 * by include/tandem/double_buffer.hpp (reader steps 1..4, writer steps W1..W6 in its comments).
 *
 * What is modelled:
 *  - reader slots claimed and released, and reused: reader A lives on one slot for two read
 *    sections (it keeps entering and leaving while the writer waits for it); reader B has two
 *    lifetimes of two sections each, so a slot that was recorded (and flagged) for one reader
 *    lifetime is claimed by the next. Three lifetimes on two slots, as in reader_epochs claim();
 *  - the reader's epoch increments around its load of the published copy ((R1), step 2, (R3));
 *    (the header adds 1 on enter and 3 on leave, to keep a mode bit: only odd/even and "moved
 *    on" matter here);
 *  - the writer's claimed-count check after the swap ((C1)/(W0') in reader_epochs): with no
 *    slot claimed the next publish waits for nobody (and issues no heavy fence);
 *  - acknowledgments (reader_epochs (A1)/(A2), double_buffer steps 2 and W2a): the writer
 *    stores the generation after the pointer (W5a); a reader loads the generation, then the
 *    pointer, then stores what it loaded in its slot's `acknowledged` (three steps), and a
 *    reused slot keeps the previous owner's value. The next publish (or try_publish) first
 *    checks, slot by slot, that every claimed slot acknowledged the last generation: then it
 *    neither records nor waits. Otherwise it records, once per wait, the readers inside that
 *    have not acknowledged it (the heavy fence's scan), and waits for them as before. The
 *    writer's spin before giving up on the acknowledgments only repeats the check, so it is
 *    left out, and so is its activity heuristic (it only decides whether to spin);
 *  - nested guards: each lifetime's first section opens an inner guard after an interleaving
 *    point; it reuses the outer guard's pointer (no second announce) and must see the same
 *    snapshot;
 *  - one `writer_waiting` flag per slot, the futex word the writer sleeps on: the reader loads
 *    its own slot's flag after leaving (R4) and, if set, clears it and then notifies, in three
 *    steps (leave(), wake_writer());
 *  - the writer's blocking wait per recorded slot (wait_until_left): store the slot's flag
 *    (W4), re-check the epoch, and the futex wait, as separate steps. The futex wait is one
 *    atomic step "sleep if the word still holds 1" (futex(2)); a notify on a word wakes the
 *    writer only if it sleeps on that word; after every return the writer re-arms the flag and
 *    re-checks; one spurious return is allowed (futex(2) allows them; more would only repeat
 *    the same re-arm path). After the wait: flag = 0, the slot's record forgotten. The spin and
 *    yield phase before blocking only repeats the loop's first load, so it is left out;
 *  - publish() and try_publish(): every call but the last chooses either when readers are
 *    recorded. try_publish() never waits: recorded_readers_left() forgets readers that left,
 *    and if any recorded reader is still inside it returns false, having changed nothing;
 *  - throws before the commit point (W5), up to THROWS in all, in any call but the last:
 *    W2's std::logic_error (the self-wait check, before waiting: forgets nothing, the next
 *    publish waits for the same readers), an op throwing on its replay (W3: kept, the next
 *    publish resumes there), an op throwing on its first application (W4: dropped, the ops
 *    before it stay applied to the hidden copy), and a throw just before the swap (the room
 *    for the reader record: the header now keeps it with the slot chunks, so this point cannot
 *    throw any more; the model keeps it as the strongest case, a batch fully applied and not
 *    published). W5 and W6 never throw (swap_and_record() is noexcept);
 *  - the data, abstractly: each op is a bit; content[c] = the ops applied to copy c; shown[c]
 *    = what copy c held when it was published. Applying an op is one atomic write to the
 *    hidden copy.
 *
 * What is not:
 *  - memory orders. SPIN interleaves sequentially consistent steps; the header's fence pairs
 *    (asymmetric fence, or seq_cst operations under TSan) are what give the C++ program these
 *    SC orderings where the protocol relies on them (the two Dekker handshakes (R1)/(W1) and
 *    (R4)/(W4)). A model cannot show that the fences are where they must be;
 *  - the self-wait check's `owner` field (R0)/(W0) (the writer thread holding a guard itself):
 *    only its throw is modelled; chunk allocation (more than 2 slots); op order inside a batch
 *    (a batch is a set); moved-from objects; the writer shared by several threads;
 *  - progress under an unfair scheduler (no non-progress-cycle search): "no process stuck" is
 *    checked as pan's invalid end states, which is what a lost wake-up is.
 *
 * Properties (exhaustive search, CTest "model: double_buffer protocol has no error"):
 *  1. a reader's copy is never written while the reader is inside: the copy's content is the
 *     same at the load, in the nested guard and at the leave (assert in reader);
 *  2. readers only see whole published batches: at its load a reader's copy equals what it held
 *     when published (assert), and at every swap the hidden copy holds exactly the ops pushed
 *     and not dropped (assert in writer);
 *  3. a reader's nested guard sees the outer guard's snapshot (assert in reader);
 *  4. a publish that throws, or a try_publish that returns false, published nothing: readers
 *     still see the previous copy (assert in writer);
 *  5. no process is stuck (invalid end states): every publish completes once readers leave,
 *     whatever threw before it, and reader registration never waits for the writer; the last
 *     publish leaves nothing pending and publishes every op not dropped (assert at the end).
 *
 * Measured (SPIN 6.5.2, gcc -O2 -DCOLLAPSE -DSAFETY, pan -m100000): 93,407,586 states stored
 * with the acknowledgments, 141-164 s and 4.2 GB on a 2-core machine, 107 s and 5.8 GB with the
 * -w28 state table CTest runs it with (model/CMakeLists.txt) (150-160 s and 4.9 GB without
 * -DSAFETY, which only drops the cycle-check machinery these runs never use; 21.3 million states
 * and about 35 s before them). Each planted bug is found in under 1 s of search (about 3 s
 * per CTest with spin -a and the C compile).
 *
 * Planted bugs (-DPLANT_...), each must be caught
 * (CTest "model: double_buffer protocol: planted bug ... is caught"):
 *  LOAD_BEFORE_ENTER         the reader loads the published pointer before its epoch is odd
 *  NO_NOTIFY                 a leaving reader never looks at its flag, never notifies
 *  NO_DELAYED_WAIT           publish() does not wait for the readers recorded last time
 *  NOTIFY_BEFORE_CLEAR       the reader notifies, then clears the flag (lost wake-up)
 *  SLEEP_WITHOUT_RECHECK     the writer sets the flag and sleeps without re-checking the epoch
 *  TRY_PUBLISH_IGNORES_READERS  try_publish() goes ahead while recorded readers are inside
 *  RECORD_AFTER_SWAP         the fault just fixed: recording readers after the swap throws, so
 *                            the writer thinks nothing was published and does not wait next time
 *  NESTED_REANNOUNCE         a nested guard announces again (a newer epoch) and reloads
 *  CLAIM_CHECK_BEFORE_SWAP   the "no slot claimed: skip the record and its heavy fence" test
 *                            reads the claimed count before the swap instead of after it
 *  GEN_BEFORE_POINTER        the writer stores the generation before the pointer (W5a, W5)
 *  POINTER_BEFORE_GEN        the reader loads the pointer before the generation
 *  NESTED_ACK                a nested guard acknowledges the current generation (it loads
 *                            nothing: the outer guard may be in the old copy)
 *  ACK_OFF_BY_ONE            the writer takes an acknowledgment of the previous generation as
 *                            enough
 * Not a bug (-DVARIANT_SHARED_FLAG, checked by hand: no error, 22.0 million states): one flag
 * shared by all slots, cleared by whichever reader sees it. Because the writer re-arms and
 * re-checks after every return from the futex wait, a clear by the wrong reader only costs a
 * needless wake-up.
 */

#define SLOTS 2            /* the recorded checks below are written out for 2 slots */
#ifndef PUBLISHES
#define PUBLISHES 4        /* publish/try_publish calls; one op pushed before each */
#endif
#ifndef THROWS
#define THROWS 2           /* throws before the commit point, in all */
#endif
#ifndef SPURIOUS
#define SPURIOUS 1         /* spurious returns from the futex wait, in all */
#endif
#define NONE 255

#ifdef VARIANT_SHARED_FLAG
#define FLAG(k) flag[0]
#define WORD(k) 0
#else
#define FLAG(k) flag[k]    /* reader_epochs: slot.writer_waiting, the futex word */
#define WORD(k) k
#endif

byte published = 0;        /* double_buffer: core.published (which copy readers load) */
byte gen = 0;              /* double_buffer: core.published.generation (publishes so far) */
byte ack[SLOTS];           /* reader_epochs: slot.acknowledged; kept when a slot is reused */
byte content[2];           /* the ops (bits) applied to each copy */
byte shown[2];             /* ghost: content of the copy when it was published */
byte epoch[SLOTS];         /* reader_epochs: slot.epoch, odd = inside */
bool claimed[SLOTS];       /* reader_epochs: slot.claimed */
byte flag[SLOTS];          /* reader_epochs: slot.writer_waiting */
byte recorded[SLOTS];      /* reader_epochs: chunk.recorded (the odd epoch, or NONE) */
byte sleep_on = NONE;      /* the futex word the writer sleeps on, or NONE: awake */

/* atomic_notify_all(word k): wakes the writer if it sleeps on that word. */
inline notify(k) {
  atomic { if :: sleep_on == WORD(k) -> sleep_on = NONE :: else -> skip fi }
}

proctype reader(byte lifetimes; byte reads) {
  byte s;                  /* the claimed slot */
  byte p;                  /* reader.pinned_: the copy the outer guard loaded */
  byte v;                  /* the snapshot: content[p] at the load */
  byte g;                  /* the generation loaded in step 2 */
  byte life, i, k;
  for (life : 1 .. lifetimes) {
    /* claim(): first free slot, one test-and-set per slot. Never waits (2 readers, 2 slots). */
    s = NONE;
    for (k : 0 .. SLOTS - 1) {
      atomic { if :: s == NONE && !claimed[k] -> claimed[k] = 1; s = k :: else -> skip fi }
    }
    assert(s != NONE);
    for (i : 1 .. reads) {
#ifdef PLANT_LOAD_BEFORE_ENTER
      atomic { p = published; v = content[p]; assert(v == shown[p]) }
      epoch[s] = epoch[s] + 1;
#else
      epoch[s] = epoch[s] + 1;                           /* step 1, (R1): odd, light fence */
#ifdef PLANT_POINTER_BEFORE_GEN
      atomic { p = published; v = content[p]; assert(v == shown[p]) }
      g = gen;                           /* BUG: may acknowledge a publish it did not load */
#else
      g = gen;                                           /* step 2 (pin): the generation, */
      atomic { p = published; v = content[p]; assert(v == shown[p]) }   /* the pointer, */
#endif
      atomic { ack[s] = g; g = 0 }                       /* (A1): acknowledge it */
#endif
      if
      :: i == 1 ->                                       /* a nested guard (depth 2) */
#ifdef PLANT_NESTED_REANNOUNCE
         epoch[s] = epoch[s] + 2;                        /* BUG: announces a newer epoch */
         atomic { assert(published == p && content[published] == v) }    /* and reloads */
#else
         atomic { assert(content[p] == v) }              /* reuses pinned_: one snapshot */
#ifdef PLANT_NESTED_ACK
         ack[s] = gen;                   /* BUG: acknowledges what the outer guard never saw */
#endif
#endif
      :: else -> skip
      fi;
      /* step 3 ends: the last read of *p; step 4, (R3): epoch even (release) */
      atomic { assert(content[p] == v); epoch[s] = epoch[s] + 1; p = 0; v = 0 }
#ifndef PLANT_NO_NOTIFY
      if                                                 /* (R4): light fence, load own flag */
      :: FLAG(s) == 1 ->
#ifdef PLANT_NOTIFY_BEFORE_CLEAR
         notify(s);
         FLAG(s) = 0
#else
         FLAG(s) = 0;                                    /* wake_writer(): clear (seq_cst), */
         notify(s)                                       /* then notify_all */
#endif
      :: else -> skip
      fi
#endif
    }
    claimed[s] = 0                       /* release(): claimed_count - 1, slot free */
  }
}

/* atomic_wait(flag, 1): sleeps only if the word holds 1 (one atomic step), until a notify on
   that word; may also return spuriously. */
inline futex_wait(k) {
  atomic { if :: FLAG(k) == 1 -> sleep_on = WORD(k) :: else -> skip fi };
  if
  :: sleep_on == NONE
  :: spurious < SPURIOUS && sleep_on != NONE -> atomic { spurious++; sleep_on = NONE }
  fi
}

/* reader_epochs::wait_until_left() for slot k, then forget its record (step 5). */
inline wait_for(k) {
  if
  :: recorded[k] != NONE && epoch[k] == recorded[k] ->
     do
     :: FLAG(k) = 1;                                     /* (W4): store, heavy fence */
#ifndef PLANT_SLEEP_WITHOUT_RECHECK
        if                                               /* (W3): re-check the epoch */
        :: epoch[k] != recorded[k] -> break
        :: else -> skip
        fi;
#endif
        futex_wait(k);
#ifdef PLANT_SLEEP_WITHOUT_RECHECK
        if
        :: epoch[k] != recorded[k] -> break
        :: else -> skip
        fi
#endif
     od;
     FLAG(k) = 0
  :: else -> skip
  fi;
  recorded[k] = NONE
}

/* A throw here, if the budget allows; never in the last call, which must complete. */
inline may_throw() {
  throws < THROWS && n < PUBLISHES -> throws++
}

/* reader_epochs::acknowledged_since(gen), one pass (the spin only repeats it): every claimed
   slot acknowledged the last generation. Slot by slot, as the code reads them. */
inline check_acknowledged() {
  all_acked = 1;
  for (k : 0 .. SLOTS - 1) {
#ifdef PLANT_ACK_OFF_BY_ONE
    atomic { if :: claimed[k] && ack[k] + 1 < gen -> all_acked = 0 :: else -> skip fi }
#else
    atomic { if :: claimed[k] && ack[k] < gen -> all_acked = 0 :: else -> skip fi }
#endif
  };
  k = 0
}

/* reader_epochs::record_readers_inside(gen) (heavy fence, one pass): the readers inside that
   have not acknowledged the last generation. */
inline record_unacknowledged() {
  for (k : 0 .. SLOTS - 1) {
    atomic {
      if
      :: epoch[k] % 2 == 1 && ack[k] < gen -> recorded[k] = epoch[k]
      :: else -> recorded[k] = NONE
      fi
    }
  };
  k = 0
}

inline none_recorded() {
  (recorded[0] == NONE && recorded[1] == NONE)
}

proctype writer() {
  byte n, k;
  byte op;                 /* the op (bit) being applied */
  byte before;             /* published when the call began */
  byte pend;               /* writer.pending_: ops pushed since the last publish */
  byte applied;            /* the part of pend already in the hidden copy ([0, applied_)) */
  byte replay;             /* writer.replay_ minus [0, replayed_): not yet in the hidden copy */
  byte accepted;           /* ghost: ops pushed and not dropped */
  byte throws, spurious;
  bool must_wait;          /* writer.must_wait_ */
  bool recorded_now;       /* recorded_count() != 0: this wait recorded its readers */
  bool all_acked;          /* reader_epochs::acknowledged_since(gen) */
  bool any_claimed;        /* reader_epochs: claimed_count != 0, read at W6 */
  for (n : 1 .. PUBLISHES) {
    /* push(op n) */
    atomic { op = 1 << (n - 1); pend = pend | op; accepted = accepted | op; before = published }
    /* W1 (pending is never empty here). W2, or try_publish's check. */
    if
    :: must_wait && !recorded_now ->                     /* W2a: record_unacknowledged() */
       check_acknowledged();
       if
       :: all_acked -> must_wait = 0                     /* no heavy fence, no wait */
       :: else -> record_unacknowledged(); recorded_now = 1
       fi
    :: else -> skip
    fi;
    if
    :: must_wait && n < PUBLISHES ->                     /* try_publish() */
#ifndef PLANT_TRY_PUBLISH_IGNORES_READERS
       for (k : 0 .. SLOTS - 1) {                        /* recorded_readers_left() */
         atomic { if :: recorded[k] != NONE && epoch[k] != recorded[k] -> recorded[k] = NONE
                     :: else -> skip fi }
       }
       if
       :: none_recorded() -> must_wait = 0; recorded_now = 0
       :: else -> goto refused
       fi
#else
       must_wait = 0; recorded_now = 0                   /* BUG: goes ahead regardless */
#endif
    :: must_wait ->                                      /* publish(): W2 */
       if
       :: may_throw(); goto thrown       /* self-wait logic_error, reader_epochs (W0) */
       :: true -> skip
       fi;
#ifndef PLANT_NO_DELAYED_WAIT
       for (k : 0 .. SLOTS - 1) { wait_for(k) }
#endif
       must_wait = 0; recorded_now = 0
    :: else -> skip
    fi;
    /* W3: replay the last batch on the hidden copy */
    do
    :: replay != 0 ->
       op = replay & -replay;
       if
       :: may_throw(); goto thrown                       /* kept: the next publish resumes */
       :: true -> atomic { content[1 - published] = content[1 - published] | op;
                           replay = replay & ~op }
       fi
    :: else -> break
    od;
    /* W4: first application of each pending op */
    do
    :: (pend & ~applied) != 0 ->
       op = (pend & ~applied) & -(pend & ~applied);
       if
       :: may_throw(); pend = pend & ~op; accepted = accepted & ~op; goto thrown  /* dropped */
       :: true -> atomic { content[1 - published] = content[1 - published] | op;
                           applied = applied | op }
       fi
    :: else -> break
    od;
#ifndef PLANT_RECORD_AFTER_SWAP
    if                                                   /* the last step before the commit */
    :: may_throw(); goto thrown
    :: true -> skip
    fi;
#endif
    assert(content[1 - published] == accepted);         /* the whole batch, nothing else */
#ifdef PLANT_CLAIM_CHECK_BEFORE_SWAP
    atomic { any_claimed = claimed[0] || claimed[1] };   /* BUG: the count read before W5 */
#endif
    /* W5: the swap, the commit point; W5a: the generation, after it */
#ifdef PLANT_GEN_BEFORE_POINTER
    gen = gen + 1;                       /* BUG: a reader may acknowledge it and load the old */
    atomic { shown[1 - published] = content[1 - published]; published = 1 - published }
#else
    atomic { shown[1 - published] = content[1 - published]; published = 1 - published }
    gen = gen + 1
#endif
    ;
#ifdef PLANT_RECORD_AFTER_SWAP
    if                           /* BUG (the old code): record_readers_inside() allocated */
    :: may_throw();
       for (k : 0 .. SLOTS - 1) { recorded[k] = NONE }   /* cleared, partly refilled */
       goto thrown               /* must_wait_ stays false; pending_ not moved to replay_ */
    :: true -> skip
    fi;
#endif
    /* W6 (readers_may_be_inside): the claimed count (full fence, one load). With no slot
       claimed the next publish need not wait -- a reader that claims later loads the new
       pointer. Otherwise the next publish first looks at the acknowledgments (W2a). */
#ifndef PLANT_CLAIM_CHECK_BEFORE_SWAP
    atomic { any_claimed = claimed[0] || claimed[1] };
#endif
    must_wait = any_claimed;
    atomic { replay = pend; pend = 0; applied = 0 }     /* replay_.swap(pending_) */
    goto next;
thrown:
    assert(published == before);                         /* nothing was published */
    goto next;
refused:
    assert(published == before);                         /* try_publish: false, no change */
next:
    atomic { op = 0; before = 0 }
  }
  /* the last call was a publish() that completed: everything not dropped is published */
  assert(pend == 0 && content[published] == accepted)
}

init {
  byte k;
  for (k : 0 .. SLOTS - 1) { recorded[k] = NONE }
  atomic {
    run writer();
    run reader(1, 2);      /* reader A: one lifetime, two read sections */
    run reader(2, 2)       /* reader B: two lifetimes (slot reuse), two sections each */
  }
}
