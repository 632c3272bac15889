/*
 * trk_sess.c -- the session cache of the tracker's shm segment.
 *
 * Purpose: give workers a fast session table (declared in trk_shm.h) so
 * that an authenticated request and a heartbeat cost no disk access:
 * TS_SESSIONS_SHM_N entries in TS_TRK_SESS_STRIPES_N stripes, a session
 * hashed to one stripe and probed linearly inside it.
 *
 * Locking: one robust mutex per stripe.  Only entry fields of that
 * stripe are touched under it; no other lock is taken while holding it.
 * The visitors copy an entry and call back outside the lock.
 *
 * Crash behaviour: an entry being changed has state WRITING; if its
 * writer dies, the next locker gets EOWNERDEAD and the repair callback
 * frees all WRITING entries of the stripe.  Losing an entry is harmless:
 * tdb still holds the session, and it is reloaded with a fresh heartbeat.
 */
#include <stdio.h>
#include <string.h>

#include "ts_log.h"
#include "trk_shm.h"

#define STRIPE_N  (TS_SESSIONS_SHM_N / TS_TRK_SESS_STRIPES_N)

_Static_assert(TS_SESSIONS_SHM_N % TS_TRK_SESS_STRIPES_N == 0,
               "session cache must split evenly into stripes");

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
    if (ts_shm_lock(&t->shm, &t->stripes[*stripe], stripe_repair, &ra) < 0) {
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
    return trk_sess_lookup_fp(t, h, now_ms, timeout_ms, touch, user, usersz,
                              NULL);
}


int
trk_sess_lookup_fp(trk_shm_t *t, const uint8_t h[32], int64_t now_ms,
                   int64_t timeout_ms, int touch, char *user, size_t usersz,
                   uint8_t *fp)
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
        if (fp != NULL) {
            memcpy(fp, e[i].fp, TS_FP_B);
        }
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
                const uint8_t *fp, int64_t now_ms)
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
    if (fp != NULL) {
        memcpy(e[i].fp, fp, TS_FP_B);
    } else {
        memset(e[i].fp, 0, TS_FP_B);
    }
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
            if (ts_shm_lock(&t->shm, &t->stripes[s], stripe_repair, &ra) < 0) {
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


void
trk_sess_each_user(trk_shm_t *t, const char *user,
                   void (*fn)(const uint8_t h[32], int64_t hb_ms, void *arg),
                   void *arg)
{
    trk_sess_sh_t *e;
    repair_arg_t   ra;
    uint8_t        h[STRIPE_N][32];
    int64_t        hb[STRIPE_N];
    uint32_t       s, i, st, n, k;

    for (s = 0; s < TS_TRK_SESS_STRIPES_N; s++) {
        ra.t = t;
        ra.stripe = s;
        e = t->sess + (size_t) s * STRIPE_N;
        if (ts_shm_lock(&t->shm, &t->stripes[s], stripe_repair, &ra) < 0) {
            return;
        }
        n = 0;
        for (i = 0; i < STRIPE_N; i++) {
            st = atomic_load(&e[i].state);
            if ((st == TRK_SESS_LIVE || st == TRK_SESS_EXPIRED)
                && strcmp(e[i].user, user) == 0)
            {
                memcpy(h[n], e[i].h, 32);
                hb[n++] = atomic_load(&e[i].last_hb_ms);
            }
        }
        ts_shlock_unlock(&t->stripes[s]);
        for (k = 0; k < n; k++) {
            fn(h[k], hb[k], arg);
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


int
trk_sess_fp_live(trk_shm_t *t, const uint8_t fp[TS_FP_B], int64_t now_ms,
                 int64_t timeout_ms, char *user, size_t usersz)
{
    trk_sess_sh_t *e;
    repair_arg_t   ra;
    uint32_t       s, i;
    int            found = 0;

    for (s = 0; s < TS_TRK_SESS_STRIPES_N && !found; s++) {
        ra.t = t;
        ra.stripe = s;
        e = t->sess + (size_t) s * STRIPE_N;
        if (ts_shm_lock(&t->shm, &t->stripes[s], stripe_repair, &ra) < 0) {
            return 0;
        }
        for (i = 0; i < STRIPE_N; i++) {
            if (atomic_load(&e[i].state) == TRK_SESS_LIVE
                && now_ms - atomic_load(&e[i].last_hb_ms) <= timeout_ms
                && memcmp(e[i].fp, fp, TS_FP_B) == 0)
            {
                snprintf(user, usersz, "%s", e[i].user);
                found = 1;
                break;
            }
        }
        ts_shlock_unlock(&t->stripes[s]);
    }
    return found;
}
