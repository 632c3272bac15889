/*
 * ts_rate.c -- the shared token bucket (ts_rate.h): GCRA on one atomic
 * word.
 *
 * Purpose: the node-wide upload and download caps.  Every grant is one
 * CAS on tat; the arithmetic is done in 128 bits so neither a slow rate
 * (1 KiB/s: a 512 KiB chunk costs 5 * 10^11 ns) nor a large grant can
 * overflow.
 *
 * Locking: lock-free; a CAS that loses to another taker reloads and
 * retries (bounded by the number of concurrent takers in practice).
 * Crash behaviour: see ts_rate.h; a kill between the CAS and the counter
 * update only leaves taken_B short by one grant.
 */
#include <time.h>

#include "ts_config.h"
#include "ts_rate.h"

#define TS_RATE_NS  1000000000ull


int64_t
ts_rate_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}


/* Nanoseconds n bytes take at rate (rounded up, at least 1 for n > 0). */
static int64_t
ts_rate_cost(uint64_t n, uint64_t rate)
{
    unsigned __int128 ns;

    if (n == 0) {
        return 0;
    }
    ns = ((unsigned __int128) n * TS_RATE_NS + rate - 1) / rate;
    return ns > (unsigned __int128) INT64_MAX / 4 ? INT64_MAX / 4
                                                  : (int64_t) ns;
}


/* Bytes that ns nanoseconds are worth at rate (rounded down). */
static uint64_t
ts_rate_bytes(int64_t ns, uint64_t rate)
{
    if (ns <= 0) {
        return 0;
    }
    /* to the nearest byte: ts_rate_cost rounds up, so a bucket that
     * holds exactly n bytes must not come out one short */
    return (uint64_t) (((unsigned __int128) ns * rate + TS_RATE_NS / 2)
                       / TS_RATE_NS);
}


uint64_t
ts_rate_default_burst(uint64_t rate_Bps)
{
    uint64_t b = rate_Bps * TS_RATE_BURST_MS / 1000u;

    return b > TS_RATE_BURST_B ? b : TS_RATE_BURST_B;
}


void
ts_rate_set(ts_rate_sh_t *b, uint64_t rate_Bps, uint64_t burst_B)
{
    if (burst_B == 0) {
        burst_B = ts_rate_default_burst(rate_Bps);
    }
    if (burst_B < TS_RATE_SLICE_B) {
        burst_B = TS_RATE_SLICE_B;
    }
    /* empty at the new rate before the rate itself is published: a
     * taker that sees the new rate sees no stale credit */
    if (rate_Bps != 0) {
        atomic_store(&b->tat_ns,
                     ts_rate_now_ns() + ts_rate_cost(burst_B, rate_Bps));
    }
    atomic_store(&b->burst_B, burst_B);
    atomic_store(&b->rate_Bps, rate_Bps);
}


int64_t
ts_rate_take(ts_rate_sh_t *b, uint64_t want, uint64_t min, int64_t now_ns,
             uint64_t *granted)
{
    uint64_t  rate, burst, avail, g;
    int64_t   tat, base, room;

    *granted = 0;
    rate = atomic_load_explicit(&b->rate_Bps, memory_order_acquire);
    if (rate == 0) {
        *granted = want;
        atomic_fetch_add_explicit(&b->taken_B, want, memory_order_relaxed);
        return 0;
    }
    burst = atomic_load_explicit(&b->burst_B, memory_order_relaxed);
    if (min > want) {
        min = want;
    }
    if (min > burst) {
        min = burst;
    }
    tat = atomic_load_explicit(&b->tat_ns, memory_order_acquire);
    for (;;) {
        base = tat > now_ns ? tat : now_ns;
        /* what is left of the bucket's depth, in ns of the rate */
        room = ts_rate_cost(burst, rate) - (base - now_ns);
        avail = ts_rate_bytes(room, rate);
        if (avail < min || avail == 0) {
            /* sleep until the whole request is there, not just min: a
             * waiter wakes once per slice, not once per min bytes (it
             * still takes a part if others got there first) */
            room = ts_rate_cost(want < burst ? (want > 0 ? want : 1)
                                             : burst, rate) - room;
            return room > 0 ? room : 1;
        }
        g = want < avail ? want : avail;
        if (atomic_compare_exchange_weak_explicit(&b->tat_ns, &tat,
                base + ts_rate_cost(g, rate), memory_order_acq_rel,
                memory_order_acquire))
        {
            break;
        }
    }
    atomic_fetch_add_explicit(&b->taken_B, g, memory_order_relaxed);
    *granted = g;
    return 0;
}


int64_t
ts_rate_reserve(ts_rate_sh_t *b, uint64_t *want, int64_t now_ns,
                uint64_t *rate_Bps)
{
    uint64_t  rate, burst = 0;
    int64_t   tat, base, due;

    rate = atomic_load_explicit(&b->rate_Bps, memory_order_acquire);
    *rate_Bps = rate;
    if (rate != 0) {
        burst = atomic_load_explicit(&b->burst_B, memory_order_relaxed);
        if (*want > burst) {
            *want = burst;
        }
    }
    atomic_fetch_add_explicit(&b->taken_B, *want, memory_order_relaxed);
    if (rate == 0 || *want == 0) {
        return 0;
    }
    tat = atomic_load_explicit(&b->tat_ns, memory_order_acquire);
    do {
        base = tat > now_ns ? tat : now_ns;
    } while (!atomic_compare_exchange_weak_explicit(&b->tat_ns, &tat,
                 base + ts_rate_cost(*want, rate), memory_order_acq_rel,
                 memory_order_acquire));
    /* the bytes are there once the new tat is within the bucket's depth
     * of now */
    due = base + ts_rate_cost(*want, rate) - ts_rate_cost(burst, rate);
    return due > now_ns ? due - now_ns : 0;
}


void
ts_rate_charge(ts_rate_sh_t *b, uint64_t n, int64_t now_ns)
{
    uint64_t  rate;
    int64_t   tat, base;

    atomic_fetch_add_explicit(&b->taken_B, n, memory_order_relaxed);
    rate = atomic_load_explicit(&b->rate_Bps, memory_order_acquire);
    if (rate == 0 || n == 0) {
        return;
    }
    tat = atomic_load_explicit(&b->tat_ns, memory_order_acquire);
    do {
        base = tat > now_ns ? tat : now_ns;
    } while (!atomic_compare_exchange_weak_explicit(&b->tat_ns, &tat,
                 base + ts_rate_cost(n, rate), memory_order_acq_rel,
                 memory_order_acquire));
}


void
ts_rate_refund(ts_rate_sh_t *b, uint64_t n)
{
    uint64_t rate = atomic_load_explicit(&b->rate_Bps, memory_order_acquire);

    /* the counter counts what was granted, so it goes back too */
    atomic_fetch_sub_explicit(&b->taken_B, n, memory_order_relaxed);
    if (rate == 0 || n == 0) {
        return;
    }
    /* tat may fall below now: that only means a full bucket (takers use
     * max(tat, now)) */
    atomic_fetch_sub_explicit(&b->tat_ns, ts_rate_cost(n, rate) - 1,
                              memory_order_acq_rel);
}
