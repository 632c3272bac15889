/*
 * ts_claim.h -- ownership words and worker slots in shared memory.
 *
 * An owner is (pid, generation) packed into one 64-bit word: pid in the
 * high 32 bits, the worker slot's generation in the low 32.  The
 * supervisor bumps a slot's generation on every spawn, so a process that
 * happens to get a dead worker's pid never matches that worker's claims.
 * A claim word is 0 when free; it is taken and released with CAS only
 * (lock-free, a crash can never leave half a claim).
 *
 * Worker slots (ts_slot_sh_t) are a fixed table in the node's segment:
 * the supervisor writes owner + STARTING at spawn, the worker sets ACTIVE
 * when ready and beats heartbeat_ms, and after reaping the supervisor
 * reclaims every claim of (pid, generation) and frees the slot.
 */
#ifndef TS_CLAIM_H_INCLUDED
#define TS_CLAIM_H_INCLUDED

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

typedef uint64_t ts_owner_t;

typedef enum {
    TS_SLOT_FREE     = 0,
    TS_SLOT_STARTING = 1,
    TS_SLOT_ACTIVE   = 2,
    TS_SLOT_STOPPING = 3
} ts_slot_state_t;

typedef struct {
    _Atomic uint64_t owner;        /* ts_owner_t of the current process */
    _Atomic uint32_t state;        /* ts_slot_state_t */
    _Atomic uint32_t role;         /* caller-defined */
    _Atomic int64_t  heartbeat_ms; /* monotonic ms of the last beat */
    _Atomic uint64_t counter[4];   /* per-worker stats (caller-defined) */
    uint8_t          pad[8];
} ts_slot_sh_t;

static inline ts_owner_t
ts_owner_make(pid_t pid, uint32_t generation)
{
    return ((uint64_t) (uint32_t) pid << 32) | generation;
}

static inline pid_t
ts_owner_pid(ts_owner_t o)
{
    return (pid_t) (o >> 32);
}

static inline uint32_t
ts_owner_gen(ts_owner_t o)
{
    return (uint32_t) o;
}

/* 1 if the word was free and is now ours, else 0. */
int ts_claim_try(_Atomic uint64_t *word, ts_owner_t me);
/* 1 if we held it and released it, else 0. */
int ts_claim_release(_Atomic uint64_t *word, ts_owner_t me);
/* Frees every word in words[0..n) owned by dead; returns how many. */
size_t ts_claim_reclaim(_Atomic uint64_t *words, size_t n, ts_owner_t dead);

/* Slot helpers. */
void ts_slot_assign(ts_slot_sh_t *s, ts_owner_t o, uint32_t role);
void ts_slot_set_active(ts_slot_sh_t *s, ts_owner_t me);
void ts_slot_beat(ts_slot_sh_t *s);
void ts_slot_free(ts_slot_sh_t *s, ts_owner_t o);  /* only if still o */
/* 1 if owner o is the live owner of some slot in slots[0..n). */
int  ts_slot_owner_live(const ts_slot_sh_t *slots, size_t n, ts_owner_t o);

#endif
