/*
 * trk_thr.c -- the failed-login throttle table of the tracker's shm
 * segment, and the keyed hashes of names and peer addresses.
 *
 * Purpose: count failed logins (per address, per user and address, per
 * known node identity, and the addresses throttled for one user -- the
 * kinds are listed in trk_thr.h), KDF jobs in progress and create_users
 * per address, and say how long a name is refused (declared in
 * trk_shm.h, which describes the table); key the counters and the
 * connection buckets by a hash only this tracker knows.  The known-node
 * counters ('i') have a region of the table of their own, so that
 * counters anyone can create never take their place.
 *
 * Locking: one robust mutex for the whole table (each use runs a KDF, so
 * it is never hot), never held together with a session stripe.
 *
 * Crash behaviour: a worker that dies holding the lock leaves at most
 * one torn counter; the repair callback clears the table (counting
 * restarts; nothing else depends on it).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "ts_crypto.h"
#include "ts_log.h"
#include "trk_thr.h"

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
    if (ts_shm_lock(&t->shm, t->thr_lock, thr_repair, t) < 0) {
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


/* The part of the table a kind's counters live in: the known-node
 * counters ('i') have a region of their own, which nobody but a holder
 * of a known node identity can claim, so a flood of failures from
 * anywhere else can never take the place the owner's node needs. */
static void
thr_region(char kind, uint32_t *base, uint32_t *n)
{
    if (kind == 'i') {
        *base = TS_THROTTLE_SLOTS_N - TS_THR_NODE_SLOTS_N;
        *n = TS_THR_NODE_SLOTS_N;
    } else {
        *base = 0;
        *n = TS_THROTTLE_SLOTS_N - TS_THR_NODE_SLOTS_N;
    }
}


/* The entry of key, or NULL; *victim gets the slot to (re)use for it, or
 * NULL when every entry of the probe window must be kept.  Every probe
 * position is looked at (no early stop at a free entry), so removing an
 * entry needs no tombstone. */
static trk_thr_sh_t *
thr_find(trk_shm_t *t, char kind, uint64_t key, int64_t now_ms,
         trk_thr_sh_t **victim)
{
    trk_thr_sh_t *e, *v = NULL;
    uint32_t      i, k, base, n;
    int           r, vr = 3;

    thr_region(kind, &base, &n);
    for (k = 0, i = (uint32_t) (key % n); k < TS_TRK_THR_PROBE_N;
         k++, i = (i + 1) % n)
    {
        e = &t->thr[base + i];
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


/* The key of a counter: the keyed hash of (kind, name), the address
 * kinds by their normalised address (the composite 'p' and 'i' names
 * come normalised, trk_thr.h). */
static uint64_t
thr_key(trk_shm_t *t, char kind, const char *name)
{
    char     norm[INET6_ADDRSTRLEN + 8];
    uint64_t k;

    if (kind == 'a' || kind == 'k' || kind == 'c') {
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


/* Locks the table and finds name's counter into *e (NULL if it has
 * none; with claim, a new one is claimed when there is room).  -1, the
 * table not locked: the counter is off (limit 0) or the lock failed. */
static int
thr_open(trk_shm_t *t, char kind, const char *name,
         const trk_thr_cfg_t *cfg, int64_t now_ms, int claim,
         trk_thr_sh_t **e)
{
    trk_thr_sh_t *v;
    uint64_t      key = thr_key(t, kind, name);

    if (cfg->limit == 0 || thr_lock(t) != 0) {
        return -1;
    }
    *e = thr_find(t, kind, key, now_ms, &v);
    if (*e == NULL && claim) {
        *e = thr_claim(v, key, cfg);
    }
    return 0;
}


/* Counts one failure of e, now (a window of quiet starts a fresh run). */
static void
thr_count_fail(trk_thr_sh_t *e, int64_t now_ms)
{
    if (thr_fails(e, now_ms) == 0) {
        e->fails = 0;           /* quiet for a window: a fresh run */
    }
    if (e->fails < UINT32_MAX) {
        e->fails++;
    }
    e->last_ms = now_ms;
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
    e = thr_find(t, kind, key, now_ms, &v);
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
    trk_thr_sh_t *e;
    int64_t       left = 0;
    int           w = TRK_THR_OK;

    if (thr_open(t, kind, name, cfg, now_ms, 1, &e) != 0) {
        if (why != NULL) {
            *why = TRK_THR_OK;
        }
        return 0;
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
    trk_thr_sh_t *e;
    uint32_t      n = 0;

    /* a failure whose reservation was lost claims a counter again */
    if (thr_open(t, kind, name, cfg, now_ms, failed, &e) != 0) {
        return 0;
    }
    if (e != NULL) {
        if (e->pending > 0) {
            e->pending--;
        }
        if (failed) {
            thr_count_fail(e, now_ms);
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
    trk_thr_sh_t *e;
    uint32_t      n = 0;

    if (thr_open(t, kind, name, cfg, now_ms, 1, &e) != 0) {
        return 0;
    }
    if (e != NULL) {
        thr_count_fail(e, now_ms);
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
    e = thr_find(t, kind, key, 0, &v);
    if (e != NULL) {
        e->fails = 0;
        e->last_ms = 0;
        if (e->pending == 0) {
            memset(e, 0, sizeof(*e));
        }
    }
    ts_shlock_unlock(t->thr_lock);
}


/* ---- composite counter names (trk_thr.h) ----------------------------- */

void
trk_thr_pair_name(const char *user, const char *addr, char *out,
                  size_t outsz)
{
    char norm[INET6_ADDRSTRLEN + 8];

    trk_addr_norm(addr, norm, sizeof(norm));
    snprintf(out, outsz, "%s/%s", user, norm);
}


void
trk_thr_node_name(const char *user, const uint8_t fp[TS_FP_B], char *out,
                  size_t outsz)
{
    char hex[2 * TS_FP_B + 1];

    ts_hex(fp, TS_FP_B, hex);
    snprintf(out, outsz, "%s/%s", user, hex);
}
