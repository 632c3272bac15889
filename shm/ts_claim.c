/*
 * ts_claim.c -- lock-free ownership words and worker slots in shm.
 *
 * Purpose: a claim is one 64-bit word holding its owner (pid, generation)
 * or 0.  Taking, releasing and reclaiming are single compare-and-swaps,
 * so no lock is needed and no crash can leave a claim half-written.  The
 * generation makes owners unique even when the kernel recycles a pid.
 *
 * Locking: none; C11 atomics only (acq_rel CAS, acquire loads, release
 * stores), so the data a claim guards is visible to the next owner.
 * Slots are written by the supervisor (assign, free) and by their own
 * worker (set_active, beat); each field is a separate atomic.
 *
 * Crash behaviour: a dead worker's claims stay set until the supervisor,
 * having reaped it, calls ts_claim_reclaim() with its (pid, generation);
 * a successor with the same pid but a newer generation never matches.
 */
#include "ts_claim.h"
#include "ts_clock.h"


int
ts_claim_try(_Atomic uint64_t *word, ts_owner_t me)
{
    uint64_t  expected = 0;

    if (me == 0) {
        return 0;
    }
    return atomic_compare_exchange_strong_explicit(word, &expected, me,
               memory_order_acq_rel, memory_order_acquire);
}


int
ts_claim_release(_Atomic uint64_t *word, ts_owner_t me)
{
    uint64_t  expected = me;

    if (me == 0) {
        return 0;
    }
    return atomic_compare_exchange_strong_explicit(word, &expected, 0,
               memory_order_acq_rel, memory_order_acquire);
}


size_t
ts_claim_reclaim(_Atomic uint64_t *words, size_t n, ts_owner_t dead)
{
    size_t    i, freed = 0;
    uint64_t  expected;

    if (dead == 0) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (atomic_load_explicit(&words[i], memory_order_relaxed) != dead) {
            continue;
        }
        expected = dead;
        if (atomic_compare_exchange_strong_explicit(&words[i], &expected, 0,
                memory_order_acq_rel, memory_order_acquire))
        {
            freed++;
        }
    }

    return freed;
}


void
ts_slot_assign(ts_slot_sh_t *s, ts_owner_t o, uint32_t role)
{
    int  i;

    /* hide the slot while it is rewritten, then publish owner + state */
    atomic_store_explicit(&s->state, TS_SLOT_FREE, memory_order_release);
    atomic_store_explicit(&s->role, role, memory_order_relaxed);
    atomic_store_explicit(&s->heartbeat_ms, ts_now_ms(),
                          memory_order_relaxed);
    for (i = 0; i < 4; i++) {
        atomic_store_explicit(&s->counter[i], 0, memory_order_relaxed);
    }
    atomic_store_explicit(&s->owner, o, memory_order_release);
    atomic_store_explicit(&s->state, TS_SLOT_STARTING, memory_order_release);
}


void
ts_slot_set_active(ts_slot_sh_t *s, ts_owner_t me)
{
    uint32_t  expected = TS_SLOT_STARTING;

    if (atomic_load_explicit(&s->owner, memory_order_acquire) != me) {
        return;
    }
    atomic_store_explicit(&s->heartbeat_ms, ts_now_ms(),
                          memory_order_relaxed);
    atomic_compare_exchange_strong_explicit(&s->state, &expected,
        TS_SLOT_ACTIVE, memory_order_acq_rel, memory_order_acquire);
}


void
ts_slot_beat(ts_slot_sh_t *s)
{
    atomic_store_explicit(&s->heartbeat_ms, ts_now_ms(),
                          memory_order_release);
}


void
ts_slot_free(ts_slot_sh_t *s, ts_owner_t o)
{
    uint64_t  expected = o;

    if (o == 0) {
        return;
    }
    if (atomic_compare_exchange_strong_explicit(&s->owner, &expected, 0,
            memory_order_acq_rel, memory_order_acquire))
    {
        atomic_store_explicit(&s->state, TS_SLOT_FREE, memory_order_release);
    }
}


int
ts_slot_owner_live(const ts_slot_sh_t *slots, size_t n, ts_owner_t o)
{
    size_t  i;

    if (o == 0) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        /* the C11 atomic loads take non-const pointers in older libcs */
        ts_slot_sh_t *s = (ts_slot_sh_t *) &slots[i];

        if (atomic_load_explicit(&s->owner, memory_order_acquire) == o
            && atomic_load_explicit(&s->state, memory_order_acquire)
               != TS_SLOT_FREE)
        {
            return 1;
        }
    }

    return 0;
}
