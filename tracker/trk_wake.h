/*
 * trk_wake.h -- the op wake word: a counter in the tracker's shm that
 * every commit which appended to the op log bumps, and that trk-sync's
 * peer threads sleep on until there is something to push (trk_wake.c).
 *
 * Locking: lock-free (atomics and a futex on the word); any process that
 * maps the segment.  Crash behaviour: nothing to leave behind; a lost
 * wake-up costs at most the sleeper's timeout.
 */
#ifndef TRK_WAKE_H_INCLUDED
#define TRK_WAKE_H_INCLUDED

#include <stdatomic.h>
#include <stdint.h>

/* Bumps w and wakes every sleeper on it. */
void trk_wake_bump(_Atomic uint64_t *w);
/* Sleeps until w no longer equals seen, at most ms (a spurious early
 * return is possible: the caller re-reads w). */
void trk_wake_wait(_Atomic uint64_t *w, uint64_t seen, int64_t ms);

#endif
