/*
 * trk_wake.c -- the op wake word (see trk_wake.h): how a worker's commit
 * tells trk-sync that the op log grew, without trk-sync polling for it.
 *
 * Purpose: a peer thread of trk-sync that has pushed everything sleeps
 * in FUTEX_WAIT on the word until a commit bumps it (or its heartbeat is
 * due), so an idle tracker wakes only for its heartbeats instead of
 * every few milliseconds.  The word is 64 bits; the futex waits on its
 * low 32, which change on every bump (little-endian layout, checked at
 * compile time).  The futex is not private: the word lives in shared
 * memory mapped by several processes.
 *
 * Locking: none beyond the atomics; the kernel orders FUTEX_WAIT's
 * compare against the bump, so a bump between the caller's read and its
 * sleep makes the wait return at once.  Crash behaviour: none.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "trk_wake.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "trk_wake.c waits on the low half of a 64-bit word: little-endian"
#endif


void
trk_wake_bump(_Atomic uint64_t *w)
{
    atomic_fetch_add(w, 1);
    (void) syscall(SYS_futex, (uint32_t *) (void *) w, FUTEX_WAKE, INT_MAX,
                   NULL, NULL, 0);
}


void
trk_wake_wait(_Atomic uint64_t *w, uint64_t seen, int64_t ms)
{
    struct timespec ts;

    if (ms <= 0 || atomic_load(w) != seen) {
        return;
    }
    ts.tv_sec = (time_t) (ms / 1000);
    ts.tv_nsec = (long) (ms % 1000) * 1000000L;
    (void) syscall(SYS_futex, (uint32_t *) (void *) w, FUTEX_WAIT,
                   (uint32_t) seen, &ts, NULL, 0);
}
