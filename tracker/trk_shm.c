/*
 * trk_shm.c -- the tracker's shm segment and its session cache.
 *
 * Purpose: lay out /tessera-trk-<port> (worker slots, session cache, lock
 * stripes, stats block) and give workers a fast session table so that an
 * authenticated request and a heartbeat cost no disk access.
 *
 * Locking: one robust mutex per stripe of the session table.  Only entry
 * fields of that stripe are touched under it; no other lock is taken while
 * holding it.  The stats block is lock-free atomics.  The supervisor never
 * locks anything here (it creates the segment and reclaims claims).
 *
 * Crash behaviour: an entry being changed has state WRITING; if its writer
 * dies, the next locker gets EOWNERDEAD and the repair callback frees all
 * WRITING entries of the stripe.  Losing an entry is harmless: tdb still
 * holds the session, and it is reloaded with a fresh heartbeat.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ts_log.h"
#include "trk_shm.h"

#define STRIPE_N  (TS_SESSIONS_SHM_N / TS_TRK_SESS_STRIPES_N)

_Static_assert(TS_SESSIONS_SHM_N % TS_TRK_SESS_STRIPES_N == 0,
               "session cache must split evenly into stripes");


static void
stripes_init(void *table, uint32_t capacity)
{
    ts_shlock_sh_t *l = table;
    uint32_t        i;

    for (i = 0; i < capacity; i++) {
        if (ts_shlock_init(&l[i]) != 0) {
            ts_err("ts_shlock_init() failed for stripe %u", i);
        }
    }
}


void
trk_shm_name(char *buf, size_t bufsz, uint16_t port)
{
    snprintf(buf, bufsz, "/tessera-trk-%u", (unsigned) port);
}


int
trk_shm_bind(trk_shm_t *t)
{
    uint32_t cap, esz;

    t->slots = ts_shm_table(&t->shm, TRK_TBL_SLOTS, &cap, &esz);
    if (t->slots == NULL || cap < TS_SUP_WORKERS_MAX_N
        || esz != sizeof(ts_slot_sh_t))
    {
        return -1;
    }
    t->sess = ts_shm_table(&t->shm, TRK_TBL_SESS, &cap, &esz);
    if (t->sess == NULL || cap != TS_SESSIONS_SHM_N
        || esz != sizeof(trk_sess_sh_t))
    {
        return -1;
    }
    t->stripes = ts_shm_table(&t->shm, TRK_TBL_STRIPES, &cap, &esz);
    if (t->stripes == NULL || cap != TS_TRK_SESS_STRIPES_N
        || esz != sizeof(ts_shlock_sh_t))
    {
        return -1;
    }
    t->stats = ts_shm_table(&t->shm, TRK_TBL_STATS, &cap, &esz);
    if (t->stats == NULL || esz != sizeof(trk_stats_sh_t)) {
        return -1;
    }
    return 0;
}


int
trk_shm_create(trk_shm_t *t, uint16_t port)
{
    char                name[64];
    const ts_shm_spec_t specs[] = {
        { TRK_TBL_SLOTS, sizeof(ts_slot_sh_t), TS_SUP_WORKERS_MAX_N, NULL },
        { TRK_TBL_SESS, sizeof(trk_sess_sh_t), TS_SESSIONS_SHM_N, NULL },
        { TRK_TBL_STRIPES, sizeof(ts_shlock_sh_t), TS_TRK_SESS_STRIPES_N,
          stripes_init },
        { TRK_TBL_STATS, sizeof(trk_stats_sh_t), 1, NULL },
    };

    memset(t, 0, sizeof(*t));
    trk_shm_name(name, sizeof(name), port);
    if (ts_shm_create(&t->shm, name, TRK_SHM_LAYOUT_VERSION, specs,
                      (int) (sizeof(specs) / sizeof(specs[0]))) != 0)
    {
        return -1;
    }
    if (trk_shm_bind(t) != 0) {
        ts_shm_detach(&t->shm);
        ts_shm_unlink(name);
        errno = EPROTO;
        return -1;
    }
    return 0;
}


/* ---- session cache ---------------------------------------------------- */

typedef struct {
    trk_shm_t *t;
    uint32_t   stripe;
} repair_arg_t;


static void
stripe_repair(void *arg)
{
    repair_arg_t  *ra = arg;
    trk_sess_sh_t *e;
    uint32_t       i;

    e = ra->t->sess + (size_t) ra->stripe * STRIPE_N;
    for (i = 0; i < STRIPE_N; i++) {
        if (atomic_load(&e[i].state) == TRK_SESS_WRITING) {
            atomic_store(&e[i].state, TRK_SESS_TOMB);
        }
    }
    atomic_fetch_add(&ra->t->stats->lock_repairs, 1);
    ts_warn("session cache stripe %u repaired after a worker died",
            ra->stripe);
}


static uint32_t
stripe_of(const uint8_t h[32])
{
    return (uint32_t) (h[0] | (h[1] << 8)) % TS_TRK_SESS_STRIPES_N;
}


static uint32_t
start_of(const uint8_t h[32])
{
    return (uint32_t) (h[2] | (h[3] << 8)) % STRIPE_N;
}


/* Locks the stripe of h; returns its first entry or NULL. */
static trk_sess_sh_t *
stripe_lock(trk_shm_t *t, const uint8_t h[32], uint32_t *stripe)
{
    repair_arg_t ra;

    *stripe = stripe_of(h);
    ra.t = t;
    ra.stripe = *stripe;
    if (ts_shlock_lock(&t->stripes[*stripe], stripe_repair, &ra) < 0) {
        atomic_store(&t->shm.hdr->reset_needed, 1);
        return NULL;
    }
    return t->sess + (size_t) *stripe * STRIPE_N;
}


/* Index of h in the stripe, or -1; *free_i gets the first reusable slot. */
static int
stripe_find(trk_sess_sh_t *e, const uint8_t h[32], int *free_i)
{
    uint32_t i, k;
    uint32_t st;

    *free_i = -1;
    for (k = 0, i = start_of(h); k < STRIPE_N; k++, i = (i + 1) % STRIPE_N) {
        st = atomic_load(&e[i].state);
        if (st == TRK_SESS_FREE) {
            if (*free_i < 0) {
                *free_i = (int) i;
            }
            return -1;
        }
        if (st == TRK_SESS_TOMB) {
            if (*free_i < 0) {
                *free_i = (int) i;
            }
            continue;
        }
        if ((st == TRK_SESS_LIVE || st == TRK_SESS_EXPIRED)
            && memcmp(e[i].h, h, 32) == 0)
        {
            return (int) i;
        }
    }
    return -1;
}


int
trk_sess_lookup(trk_shm_t *t, const uint8_t h[32], int64_t now_ms,
                int64_t timeout_ms, int touch, char *user, size_t usersz)
{
    trk_sess_sh_t *e;
    uint32_t       stripe;
    int            i, fi, rc;

    e = stripe_lock(t, h, &stripe);
    if (e == NULL) {
        return -1;
    }
    i = stripe_find(e, h, &fi);
    if (i < 0) {
        rc = 0;
    } else if (atomic_load(&e[i].state) == TRK_SESS_EXPIRED
               || now_ms - atomic_load(&e[i].last_hb_ms) > timeout_ms)
    {
        atomic_store(&e[i].state, TRK_SESS_EXPIRED);
        rc = 2;
    } else {
        snprintf(user, usersz, "%s", e[i].user);
        if (touch) {
            atomic_store(&e[i].last_hb_ms, now_ms);
            atomic_store(&e[i].local_hb_ms, now_ms);
        }
        rc = 1;
    }
    ts_shlock_unlock(&t->stripes[stripe]);
    return rc;
}


int
trk_sess_insert(trk_shm_t *t, const uint8_t h[32], const char *user,
                int64_t now_ms)
{
    trk_sess_sh_t *e;
    uint32_t       stripe;
    int            i, fi;

    e = stripe_lock(t, h, &stripe);
    if (e == NULL) {
        return -1;
    }
    i = stripe_find(e, h, &fi);
    if (i < 0) {
        i = fi;
    }
    if (i < 0) {
        ts_shlock_unlock(&t->stripes[stripe]);
        return -1;
    }
    atomic_store(&e[i].state, TRK_SESS_WRITING);
    memcpy(e[i].h, h, 32);
    snprintf(e[i].user, sizeof(e[i].user), "%s", user);
    atomic_store(&e[i].last_hb_ms, now_ms);
    atomic_store(&e[i].local_hb_ms, 0);
    atomic_store(&e[i].state, TRK_SESS_LIVE);
    ts_shlock_unlock(&t->stripes[stripe]);
    return 0;
}


void
trk_sess_remove(trk_shm_t *t, const uint8_t h[32])
{
    trk_sess_sh_t *e;
    uint32_t       stripe;
    int            i, fi;

    e = stripe_lock(t, h, &stripe);
    if (e == NULL) {
        return;
    }
    i = stripe_find(e, h, &fi);
    if (i >= 0) {
        atomic_store(&e[i].state, TRK_SESS_TOMB);
    }
    ts_shlock_unlock(&t->stripes[stripe]);
}


void
trk_sess_each(trk_shm_t *t, int64_t now_ms, int64_t timeout_ms,
              void (*fn)(const uint8_t h[32], int state, void *arg),
              void *arg)
{
    trk_sess_sh_t *e;
    repair_arg_t   ra;
    uint8_t        h[32];
    uint32_t       s, i, st;

    for (s = 0; s < TS_TRK_SESS_STRIPES_N; s++) {
        ra.t = t;
        ra.stripe = s;
        e = t->sess + (size_t) s * STRIPE_N;
        for (i = 0; i < STRIPE_N; i++) {
            st = atomic_load(&e[i].state);
            if (st != TRK_SESS_LIVE && st != TRK_SESS_EXPIRED) {
                continue;
            }
            if (ts_shlock_lock(&t->stripes[s], stripe_repair, &ra) < 0) {
                return;
            }
            st = atomic_load(&e[i].state);
            if (st == TRK_SESS_LIVE
                && now_ms - atomic_load(&e[i].last_hb_ms) > timeout_ms)
            {
                st = TRK_SESS_EXPIRED;
            }
            memcpy(h, e[i].h, 32);
            ts_shlock_unlock(&t->stripes[s]);
            if (st == TRK_SESS_LIVE || st == TRK_SESS_EXPIRED) {
                fn(h, (int) st, arg);
            }
        }
    }
}


int
trk_sess_refresh(trk_shm_t *t, const uint8_t h[32], int64_t now_ms)
{
    trk_sess_sh_t *e;
    uint32_t       stripe;
    int            i, fi, rc = 0;

    e = stripe_lock(t, h, &stripe);
    if (e == NULL) {
        return 0;
    }
    i = stripe_find(e, h, &fi);
    if (i >= 0) {
        /* the session is alive elsewhere: an entry this tracker had
         * marked expired (it is not the leader) comes back */
        atomic_store(&e[i].last_hb_ms, now_ms);
        atomic_store(&e[i].state, TRK_SESS_LIVE);
        rc = 1;
    }
    ts_shlock_unlock(&t->stripes[stripe]);
    return rc;
}


void
trk_sess_each_local(trk_shm_t *t, int64_t since_ms,
                    void (*fn)(const uint8_t h[32], void *arg), void *arg)
{
    trk_sess_sh_t *e;
    uint8_t        h[32];
    uint32_t       s, i;
    int64_t        l;

    /* lock-free peek: a torn hash only costs a useless refresh */
    for (s = 0; s < TS_TRK_SESS_STRIPES_N; s++) {
        e = t->sess + (size_t) s * STRIPE_N;
        for (i = 0; i < STRIPE_N; i++) {
            if (atomic_load(&e[i].state) != TRK_SESS_LIVE) {
                continue;
            }
            l = atomic_load(&e[i].local_hb_ms);
            if (l == 0 || l < since_ms) {
                continue;
            }
            memcpy(h, e[i].h, 32);
            fn(h, arg);
        }
    }
}
