/*
 * ts_atomic.h -- small C11 atomic helpers shared by the shm users.
 *
 * Counters in shared memory (load, in-flight requests, queued bytes) are
 * incremented by one process and decremented by another, and a process
 * killed between the two may leave a counter that a cleanup also
 * decrements.  They are therefore decremented with saturation: an
 * over-subtraction stops at 0 (a brief under-count, repaired by the next
 * rebuild), never wraps to ~4e9.  Lock-free; header-only.
 */
#ifndef TS_ATOMIC_H_INCLUDED
#define TS_ATOMIC_H_INCLUDED

#include <stdatomic.h>
#include <stdint.h>

/* *v -= n, stopping at 0.  Returns the value before. */
static inline uint32_t
ts_atomic_sub_sat32(_Atomic uint32_t *v, uint32_t n)
{
    uint32_t cur = atomic_load(v), nv;

    do {
        nv = cur > n ? cur - n : 0;
    } while (!atomic_compare_exchange_weak(v, &cur, nv));
    return cur;
}

#endif
