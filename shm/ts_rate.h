/*
 * ts_rate.h -- a lock-free token bucket in shared memory: one rate cap
 * shared by every process that maps it (a node's uploaders share one,
 * its downloaders another).
 *
 * The bucket is kept in the GCRA form: one atomic word, the "theoretical
 * arrival time" tat (CLOCK_MONOTONIC ns).  Taking n bytes moves tat
 * forward by n / rate seconds; tokens available now are
 * burst - (tat - now) * rate, so tat at or before now means a full
 * bucket (burst bytes), and tat = now + burst / rate an empty one.  This
 * is exactly a token bucket (count + last refill time) folded into a
 * single word, so a take is one load and one CAS: no lock, no torn pair
 * of fields, no refill step.  rate and burst are atomics of their own and
 * may change at any time (ts_rate_set); a taker that raced a change uses
 * the old figures for one grant.
 *
 * A worker asks for up to `want` bytes and at least `min`: it gets a
 * grant (what is there, capped at want) or the time to wait until min
 * bytes are there.  It must then sleep (a timer), never spin.
 *
 * Locking: lock-free (CAS on tat, fetch_add on the counter).
 * Crash behaviour: a process killed after a take loses the bytes it was
 * granted and did not send (at most one grant); nothing else can be left
 * behind, and the bucket needs no repair.  The segment is a cache: the
 * node sets the caps again at start.
 */
#ifndef TS_RATE_H_INCLUDED
#define TS_RATE_H_INCLUDED

#include <stdatomic.h>
#include <stdint.h>

typedef struct {
    _Atomic uint64_t rate_Bps;     /* bytes per second; 0 = unlimited */
    _Atomic uint64_t burst_B;      /* bucket depth, bytes */
    _Atomic int64_t  tat_ns;       /* theoretical arrival time, monotonic */
    _Atomic uint64_t taken_B;      /* every byte granted or charged, ever
                                      (also while unlimited): the
                                      measured rate is its slope */
} ts_rate_sh_t;

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t  ts_rate_now_ns(void);
/* The burst ts_rate_set uses for burst_B 0 at this rate. */
uint64_t ts_rate_default_burst(uint64_t rate_Bps);
/* Sets the cap (0 = unlimited) and depth (0 = the default); the bucket
 * starts empty at the new rate, so a change never lets a burst out. */
void     ts_rate_set(ts_rate_sh_t *b, uint64_t rate_Bps, uint64_t burst_B);
/* Up to want bytes, at least min (min is capped at want and at the
 * burst).  0 with *granted set, or (fewer than min there) the
 * nanoseconds (> 0) until want bytes (at most the burst) will be, with
 * *granted = 0: a waiter wakes once per request, and then takes what is
 * there.  Unlimited: always want. */
int64_t  ts_rate_take(ts_rate_sh_t *b, uint64_t want, uint64_t min,
                      int64_t now_ns, uint64_t *granted);
/* Takes want bytes (capped at the burst) now, into debt if need be:
 * they are the caller's, to be used once the returned nanoseconds have
 * passed (0: at once).  Waiters are so served in the order they asked:
 * one that wakes late finds its bytes still there, and none can be
 * starved by others whose timers fire sooner.  *rate_Bps is the rate the
 * reservation was made at (a caller whose wait sees another rate gives
 * the bytes back and asks again).  Unlimited: want, at once. */
int64_t  ts_rate_reserve(ts_rate_sh_t *b, uint64_t *want, int64_t now_ns,
                         uint64_t *rate_Bps);
/* Counts n bytes that went out without asking (small control replies):
 * the bucket may go into debt, which the next takers wait out. */
void     ts_rate_charge(ts_rate_sh_t *b, uint64_t n, int64_t now_ns);
/* Gives back n bytes granted and not used (never beyond a full bucket). */
void     ts_rate_refund(ts_rate_sh_t *b, uint64_t n);

#endif
