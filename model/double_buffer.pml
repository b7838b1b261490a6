/*
 * double_buffer.pml -- a SPIN model of tandem's left-right protocol:
 * include/tandem/sync/reader_epochs.hpp (steps R1..R4, W1..W4 in its comments) as used by
 * include/tandem/double_buffer.hpp (reader steps 1..4, writer steps W1..W6 in its comments).
 *
 * What is modelled: reader slots claimed and released (slot reuse: more reader lifetimes than
 * slots), the reader's epoch increments around its read of the published copy, the writer's
 * delayed wait (publish N waits for the readers recorded at publish N-1), the writes to the
 * back copy, the swap, the recording of readers inside, and the blocking wait with the
 * "writer is waiting" flag and the futex-style wait/notify (a sleeper wakes only on notify;
 * the value check and going to sleep are one atomic step, as in futex(2)).
 *
 * What is not: memory orders. SPIN interleaves sequentially-consistent steps; the header's
 * fence pairs (asymmetric fence / seq_cst under TSan) are what give the C++ program these
 * SC orderings at the points where the protocol relies on them (the two Dekker handshakes).
 *
 * Properties checked by an exhaustive search (CTest "model: double_buffer"):
 *  1. safety: the writer never writes a copy that a reader is reading (assert in reader);
 *  2. no deadlock: every process reaches its end (pan's invalid end states), in particular
 *     every publish completes once readers leave, and reader registration never waits for
 *     a waiting writer;
 * The planted-bug builds (-DPLANT_LOAD_BEFORE_ENTER, -DPLANT_NO_NOTIFY, -DPLANT_NO_DELAYED_WAIT)
 * must each be caught (CTest "model: planted bug ... is caught").
 */

#define SLOTS 2
#define READERS 3          /* reader lifetimes: more than SLOTS, so slots are reused */
#define READS 2            /* read sections per reader lifetime */
#define PUBLISHES 3
#define NONE 255

byte published = 0;        /* double_buffer: state.published (which copy readers use) */
bool writing[2];           /* the writer is changing that copy (W3/W4) */
byte epoch[SLOTS];         /* reader_epochs: slot.epoch, odd = inside */
bool claimed[SLOTS];       /* reader_epochs: slot.claimed */
byte recorded[SLOTS];      /* reader_epochs: recorded_ (epoch seen odd at W6, or NONE) */
bool writer_waiting = 0;   /* reader_epochs: writer_waiting_ */
bool sleeping = 0;         /* the writer is blocked in epoch.wait() */
byte done_readers = 0;

proctype reader(byte id) {
  byte s = NONE;
  byte i;
  byte p;
  byte k;
  /* claim(): first free slot, test-and-set (reader_epochs claim()). Never waits. */
  do
  :: s == NONE ->
       for (k : 0 .. SLOTS - 1) {
         atomic { if :: s == NONE && !claimed[k] -> claimed[k] = 1; s = k :: else -> skip fi }
       }
  :: else -> break
  od;
  for (i : 1 .. READS) {
#ifdef PLANT_LOAD_BEFORE_ENTER
    p = published;                   /* BUG: loads the pointer before announcing itself */
    epoch[s] = epoch[s] + 1;
#else
    epoch[s] = epoch[s] + 1;         /* reader step 1 / (R1): epoch odd, light fence */
    p = published;                   /* reader step 2: published.load */
#endif
    assert(!writing[p]);             /* reader step 3: reads *p ... */
    assert(!writing[p]);             /* ... over several steps */
    epoch[s] = epoch[s] + 1;         /* reader step 4 / (R3): epoch even, release */
#ifndef PLANT_NO_NOTIFY
    if                               /* (R4): notify only if the writer is waiting */
    :: writer_waiting -> sleeping = 0
    :: else -> skip
    fi;
#endif
  }
  claimed[s] = 0;                    /* release() */
  done_readers++;
}

/* reader_epochs::wait_for_recorded_readers() for one slot (double_buffer step W2). */
inline wait_for(k) {
  do
  :: recorded[k] != NONE && epoch[k] == recorded[k] ->
       if
       :: skip                       /* spin/yield phase: just look again */
       :: writer_waiting = 1;        /* (W4): flag, heavy fence, re-check, sleep */
          atomic { if :: epoch[k] == recorded[k] -> sleeping = 1 :: else -> skip fi };
          (sleeping == 0);           /* epoch.wait(): only a notify wakes a sleeper */
          writer_waiting = 0
       fi
  :: else -> break
  od;
  recorded[k] = NONE
}

proctype writer() {
  byte n;
  byte k;
  byte back;
  byte e;
  for (n : 1 .. PUBLISHES) {
#ifndef PLANT_NO_DELAYED_WAIT
    for (k : 0 .. SLOTS - 1) { wait_for(k) }   /* W2: the delayed wait */
#endif
    back = 1 - published;
    writing[back] = 1;             /* W3 replay + W4 pending ops on the hidden copy */
    writing[back] = 0;
    published = back;              /* W5: the swap (release store) */
    for (k : 0 .. SLOTS - 1) {       /* W6 / (W1)(W2): heavy fence, record readers inside */
      e = epoch[k];                  /* one acquire load of the slot's epoch */
      if
      :: e % 2 == 1 -> recorded[k] = e
      :: else -> recorded[k] = NONE
      fi
    }
  }
}

init {
  byte k;
  for (k : 0 .. SLOTS - 1) { recorded[k] = NONE }
  atomic {
    run writer();
    for (k : 1 .. READERS) { run reader(k) }
  }
}
