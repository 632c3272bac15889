/*
 * trk_shm.c -- the tracker's shm segment and its session cache.
 *
 * Purpose: lay out /tessera-trk-<port> (worker slots, session cache, lock
 * stripes, stats block, login throttle, connection counters) and give
 * workers a fast session table so that an authenticated request and a
 * heartbeat cost no disk access.
 *
 * Locking: one robust mutex per stripe of the session table.  Only entry
 * fields of that stripe are touched under it; no other lock is taken while
 * holding it.  The throttle table has one robust mutex of its own, never
 * held together with a stripe.  The stats block and the connection
 * counters are lock-free atomics (each worker writes only its own slot's
 * counters).  The supervisor never locks anything here (it creates the
 * segment, reclaims claims and resets a dead worker's counters).
 *
 * Crash behaviour: an entry being changed has state WRITING; if its writer
 * dies, the next locker gets EOWNERDEAD and the repair callback frees all
 * WRITING entries of the stripe.  Losing an entry is harmless: tdb still
 * holds the session, and it is reloaded with a fresh heartbeat.  A dead
 * holder of the throttle lock makes the next locker clear the throttle
 * table (counting restarts; nothing else depends on it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "ts_crypto.h"
#include "ts_log.h"
#include "trk_shm.h"

#define STRIPE_N  (TS_SESSIONS_SHM_N / TS_TRK_SESS_STRIPES_N)
#define THR_PROBE_N  32         /* throttle entries probed per lookup */

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
    t->thr = ts_shm_table(&t->shm, TRK_TBL_THR, &cap, &esz);
    if (t->thr == NULL || cap != TS_THROTTLE_SLOTS_N
        || esz != sizeof(trk_thr_sh_t))
    {
        return -1;
    }
    t->thr_lock = ts_shm_table(&t->shm, TRK_TBL_THRLOCK, &cap, &esz);
    if (t->thr_lock == NULL || cap != 1 || esz != sizeof(ts_shlock_sh_t)) {
        return -1;
    }
    t->conns = ts_shm_table(&t->shm, TRK_TBL_CONNS, &cap, &esz);
    if (t->conns == NULL || cap != TS_SUP_WORKERS_MAX_N
        || esz != sizeof(trk_conns_sh_t))
    {
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
        { TRK_TBL_THR, sizeof(trk_thr_sh_t), TS_THROTTLE_SLOTS_N, NULL },
        { TRK_TBL_THRLOCK, sizeof(ts_shlock_sh_t), 1, stripes_init },
        { TRK_TBL_CONNS, sizeof(trk_conns_sh_t), TS_SUP_WORKERS_MAX_N,
          NULL },
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
    /* before any worker exists: keys the throttle and address hashes so
     * that nobody can aim collisions at someone else's counter */
    if (ts_random(t->stats->key, sizeof(t->stats->key)) != 0) {
        ts_shm_detach(&t->shm);
        ts_shm_unlink(name);
        errno = EIO;
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
        if (ts_shm_lock(&t->shm, &t->stripes[s], stripe_repair,
                        &ra) < 0)
        {
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


/* ---- keyed hashes ------------------------------------------------------ */

static uint64_t
keyed_hash(const trk_shm_t *t, char kind, const char *name)
{
    uint8_t  buf[32 + 1 + TS_STR_MAX_B], d[TS_SHA256_B];
    size_t   n = strlen(name);
    uint64_t v = 0;
    int      i;

    if (n > TS_STR_MAX_B) {
        n = TS_STR_MAX_B;
    }
    memcpy(buf, t->stats->key, 32);
    buf[32] = (uint8_t) kind;
    memcpy(buf + 33, name, n);
    if (ts_sha256(buf, 33 + n, d) != 0) {
        /* cannot happen; still a usable (unkeyed) value */
        for (i = 0; (size_t) i < n; i++) {
            v = v * 131 + (uint8_t) name[i];
        }
        return v ^ (uint64_t) (uint8_t) kind;
    }
    for (i = 0; i < 8; i++) {
        v = (v << 8) | d[i];
    }
    return v;
}


void
trk_addr_norm(const char *addr, char *out, size_t outsz)
{
    struct in_addr   a4;
    struct in6_addr  a6;
    char             txt[INET6_ADDRSTRLEN];
    int              i, keep;

    if (inet_pton(AF_INET, addr, &a4) == 1) {
        inet_ntop(AF_INET, &a4, txt, sizeof(txt));
        snprintf(out, outsz, "%s", txt);
        return;
    }
    if (inet_pton(AF_INET6, addr, &a6) != 1) {
        snprintf(out, outsz, "%s", addr);
        return;
    }
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        memcpy(&a4, &a6.s6_addr[12], 4);
        inet_ntop(AF_INET, &a4, txt, sizeof(txt));
        snprintf(out, outsz, "%s", txt);
        return;
    }
    /* one site (a /64) is one address: its owner has 2^64 of them */
    keep = TS_THR_V6_PREFIX_BITS;
    for (i = 0; i < 16; i++) {
        if (keep >= 8) {
            keep -= 8;
        } else {
            a6.s6_addr[i] &= (uint8_t) (0xff00u >> keep);
            keep = 0;
        }
    }
    inet_ntop(AF_INET6, &a6, txt, sizeof(txt));
    snprintf(out, outsz, "%s/%d", txt, TS_THR_V6_PREFIX_BITS);
}


uint32_t
trk_addr_bucket(const trk_shm_t *t, const char *addr)
{
    char norm[INET6_ADDRSTRLEN + 8];

    trk_addr_norm(addr, norm, sizeof(norm));
    return (uint32_t) (keyed_hash(t, 'A', norm) % TS_ADDR_SLOTS_N);
}


/* ---- failed-login throttle --------------------------------------------- */

static void
thr_repair(void *arg)
{
    trk_shm_t *t = arg;

    /* a torn counter cannot be told from a good one: forget them all */
    memset(t->thr, 0, sizeof(trk_thr_sh_t) * TS_THROTTLE_SLOTS_N);
    atomic_fetch_add(&t->stats->lock_repairs, 1);
    ts_warn("login throttle table cleared after a worker died");
}


static int
thr_lock(trk_shm_t *t)
{
    if (ts_shlock_lock(t->thr_lock, thr_repair, t) < 0) {
        atomic_store(&t->shm.hdr->reset_needed, 1);
        return -1;
    }
    return 0;
}


/* The failures of e that still count (0 once quiet for its window). */
static uint32_t
thr_fails(const trk_thr_sh_t *e, int64_t now_ms)
{
    return now_ms - e->last_ms < e->window_ms ? e->fails : 0;
}


/* The pending attempts of e that still count: a worker that died with
 * attempts reserved leaves them behind; they lapse after the window. */
static uint32_t
thr_pending(const trk_thr_sh_t *e, int64_t now_ms)
{
    return now_ms - e->pend_ms < e->window_ms ? e->pending : 0;
}


/* How reusable an entry is: 0 free, 1 stale (nothing counted any more),
 * 2 in use (the least recently active goes first), 3 never: it is
 * refusing someone or holds attempts in progress. */
static int
thr_rank(const trk_thr_sh_t *e, int64_t now_ms)
{
    uint32_t f, p;

    if (e->key == 0) {
        return 0;
    }
    f = thr_fails(e, now_ms);
    p = thr_pending(e, now_ms);
    if (f == 0 && p == 0) {
        return 1;
    }
    if (p > 0 || (e->limit > 0 && f >= e->limit)) {
        return 3;
    }
    return 2;
}


static int64_t
thr_active_ms(const trk_thr_sh_t *e)
{
    return e->last_ms > e->pend_ms ? e->last_ms : e->pend_ms;
}


/* The entry of key, or NULL; *victim gets the slot to (re)use for it, or
 * NULL when every entry of the probe window must be kept.  Every probe
 * position is looked at (no early stop at a free entry), so removing an
 * entry needs no tombstone. */
static trk_thr_sh_t *
thr_find(trk_shm_t *t, uint64_t key, int64_t now_ms, trk_thr_sh_t **victim)
{
    trk_thr_sh_t *e, *v = NULL;
    uint32_t      i, k;
    int           r, vr = 3;

    for (k = 0, i = (uint32_t) (key % TS_THROTTLE_SLOTS_N); k < THR_PROBE_N;
         k++, i = (i + 1) % TS_THROTTLE_SLOTS_N)
    {
        e = &t->thr[i];
        if (e->key == key) {
            *victim = e;
            return e;
        }
        r = thr_rank(e, now_ms);
        if (r < vr || (r == 2 && vr == 2
                       && thr_active_ms(e) < thr_active_ms(v)))
        {
            v = e;
            vr = r;
        }
    }
    *victim = v;
    return NULL;
}


static uint64_t
thr_key(trk_shm_t *t, char kind, const char *name)
{
    char     norm[INET6_ADDRSTRLEN + 8];
    uint64_t k;

    if (kind != 'u') {
        trk_addr_norm(name, norm, sizeof(norm));
        name = norm;
    }
    k = keyed_hash(t, kind, name);
    return k == 0 ? 1 : k;
}


/* Takes the victim slot for key (counters from zero).  NULL: none. */
static trk_thr_sh_t *
thr_claim(trk_thr_sh_t *v, uint64_t key, const trk_thr_cfg_t *cfg)
{
    if (v == NULL) {
        return NULL;
    }
    memset(v, 0, sizeof(*v));
    v->key = key;
    v->limit = cfg->limit;
    v->window_ms = cfg->window_ms;
    return v;
}


/* ms a refusal of e still lasts because of its failures (0: none). */
static int64_t
thr_left(const trk_thr_sh_t *e, const trk_thr_cfg_t *cfg, int64_t now_ms)
{
    int64_t  delay, left;
    uint32_t over, f = thr_fails(e, now_ms);

    if (f < cfg->limit) {
        return 0;
    }
    over = f - cfg->limit;
    delay = cfg->delay_min_ms;
    while (over-- > 0 && delay < cfg->delay_max_ms) {
        delay *= 2;
    }
    if (delay > cfg->delay_max_ms) {
        delay = cfg->delay_max_ms;
    }
    left = e->last_ms + delay - now_ms;
    return left < 0 ? 0 : left;
}


int64_t
trk_thr_wait_ms(trk_shm_t *t, char kind, const char *name,
                const trk_thr_cfg_t *cfg, int64_t now_ms)
{
    trk_thr_sh_t *e, *v;
    uint64_t      key = thr_key(t, kind, name);
    int64_t       left = 0;

    if (cfg->limit == 0 || thr_lock(t) != 0) {
        return 0;
    }
    e = thr_find(t, key, now_ms, &v);
    if (e != NULL) {
        left = thr_left(e, cfg, now_ms);
    } else if (v == NULL) {
        left = cfg->delay_min_ms > 0 ? cfg->delay_min_ms : 1;
    }
    ts_shlock_unlock(t->thr_lock);
    return left;
}


int64_t
trk_thr_reserve(trk_shm_t *t, char kind, const char *name,
                const trk_thr_cfg_t *cfg, int64_t now_ms, int *why)
{
    trk_thr_sh_t *e, *v;
    uint64_t      key = thr_key(t, kind, name);
    int64_t       left = 0;
    int           w = TRK_THR_OK;

    if (cfg->limit == 0 || thr_lock(t) != 0) {
        if (why != NULL) {
            *why = TRK_THR_OK;
        }
        return 0;
    }
    e = thr_find(t, key, now_ms, &v);
    if (e == NULL) {
        e = thr_claim(v, key, cfg);
    }
    if (e == NULL) {
        /* every counter around is refusing someone: so is this one,
         * rather than flush one of them */
        w = TRK_THR_FULL;
        left = cfg->delay_min_ms > 0 ? cfg->delay_min_ms : 1;
    } else if ((left = thr_left(e, cfg, now_ms)) > 0) {
        w = TRK_THR_FAILURES;
    } else if (thr_fails(e, now_ms) >= cfg->limit
               ? thr_pending(e, now_ms) > 0
               : thr_fails(e, now_ms) + thr_pending(e, now_ms) >= cfg->limit)
    {
        /* under the limit: the attempts in progress would reach it if
         * they failed; over it (its refusal period over): one attempt at
         * a time.  Wait for them (a KDF takes about a second). */
        w = TRK_THR_PENDING;
        left = cfg->delay_min_ms > 0 ? cfg->delay_min_ms : 1;
    } else {
        if (thr_fails(e, now_ms) == 0) {
            e->fails = 0;           /* quiet for a window: a fresh run */
        }
        e->pending = thr_pending(e, now_ms) + 1;
        e->pend_ms = now_ms;
        e->limit = cfg->limit;
        e->window_ms = cfg->window_ms;
    }
    ts_shlock_unlock(t->thr_lock);
    if (why != NULL) {
        *why = w;
    }
    return left;
}


uint32_t
trk_thr_done(trk_shm_t *t, char kind, const char *name,
             const trk_thr_cfg_t *cfg, int64_t now_ms, int failed)
{
    trk_thr_sh_t *e, *v;
    uint64_t      key = thr_key(t, kind, name);
    uint32_t      n = 0;

    if (cfg->limit == 0 || thr_lock(t) != 0) {
        return 0;
    }
    e = thr_find(t, key, now_ms, &v);
    if (e == NULL && failed) {
        e = thr_claim(v, key, cfg);     /* its reservation was lost */
    }
    if (e != NULL) {
        if (e->pending > 0) {
            e->pending--;
        }
        if (failed) {
            if (thr_fails(e, now_ms) == 0) {
                e->fails = 0;
            }
            if (e->fails < UINT32_MAX) {
                e->fails++;
            }
            e->last_ms = now_ms;
        }
        n = thr_fails(e, now_ms);
    }
    ts_shlock_unlock(t->thr_lock);
    return n;
}


uint32_t
trk_thr_fail(trk_shm_t *t, char kind, const char *name,
             const trk_thr_cfg_t *cfg, int64_t now_ms)
{
    trk_thr_sh_t *e, *v;
    uint64_t      key = thr_key(t, kind, name);
    uint32_t      n = 0;

    if (cfg->limit == 0 || thr_lock(t) != 0) {
        return 0;
    }
    e = thr_find(t, key, now_ms, &v);
    if (e == NULL) {
        e = thr_claim(v, key, cfg);
    }
    if (e != NULL) {
        if (thr_fails(e, now_ms) == 0) {
            e->fails = 0;           /* quiet for a window: a fresh run */
        }
        if (e->fails < UINT32_MAX) {
            e->fails++;
        }
        e->last_ms = now_ms;
        e->limit = cfg->limit;
        e->window_ms = cfg->window_ms;
        n = e->fails;
    }
    ts_shlock_unlock(t->thr_lock);
    return n;
}


void
trk_thr_reset(trk_shm_t *t, char kind, const char *name)
{
    trk_thr_sh_t  *e, *v;
    uint64_t       key = thr_key(t, kind, name);

    if (thr_lock(t) != 0) {
        return;
    }
    e = thr_find(t, key, 0, &v);
    if (e != NULL) {
        e->fails = 0;
        e->last_ms = 0;
        if (e->pending == 0) {
            memset(e, 0, sizeof(*e));
        }
    }
    ts_shlock_unlock(t->thr_lock);
}


/* ---- connection counters ----------------------------------------------- */

void
trk_conns_sum(const trk_shm_t *t, uint32_t bucket, uint32_t *total,
              uint32_t *in_bucket, uint32_t *unauth)
{
    uint32_t i, a = 0, b = 0, u = 0;

    for (i = 0; i < TS_SUP_WORKERS_MAX_N; i++) {
        a += atomic_load(&t->conns[i].total);
        u += atomic_load(&t->conns[i].unauth);
        if (bucket < TS_ADDR_SLOTS_N) {
            b += atomic_load(&t->conns[i].addr[bucket]);
        }
    }
    if (total != NULL) {
        *total = a;
    }
    if (in_bucket != NULL) {
        *in_bucket = b;
    }
    if (unauth != NULL) {
        *unauth = u;
    }
}


void
trk_conns_reset(trk_shm_t *t, int slot)
{
    trk_conns_sh_t *c;
    uint32_t        i;

    if (slot < 0 || slot >= TS_SUP_WORKERS_MAX_N) {
        return;
    }
    c = &t->conns[slot];
    atomic_store(&c->total, 0);
    atomic_store(&c->unauth, 0);
    for (i = 0; i < TS_ADDR_SLOTS_N; i++) {
        atomic_store(&c->addr[i], 0);
    }
}
