/*
 * trk_housekeep.c -- the periodic pass: expired sessions and cached
 * replies.
 *
 * Purpose: sessions in tdb that no worker has cached get a grace period
 * (all of them on the first pass of a segment, afterwards those the
 * session queue of trk_index.h gives: no walk of the database),
 * expired ones leave tdb and then the cache, and the reply cache drops
 * entries older than TS_REPLY_CACHE_TTL_S.  Only the cluster's leader
 * deletes (its deletes replicate as ops).  A tracker alone (no trk-sync)
 * also collects its tombstones here (trk_gc.h).
 *
 * Locking: one worker at a time, chosen by a CAS on an owner word in shm
 * (ts_claim); the session cache takes one stripe lock at a time.
 *
 * Crash behaviour: a housekeeper that dies leaves its claim to the
 * supervisor, which frees it when it reaps the worker.  Each delete runs
 * in its own transaction: a crash leaves the rest for the next pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tdb.h>

#include "ts_clock.h"
#include "ts_log.h"
#include "trk_userflag.h"
#include "trk_ops.h"
#include "trk_sources.h"
#include "trk_index.h"
#include "trk_gc.h"

/* ---- housekeeping --------------------------------------------------- */

typedef struct {
    uint8_t (*h)[TS_SHA256_B];
    size_t    n;
    size_t    cap;
} hash_list_t;


static void
hash_list_add(hash_list_t *l, const uint8_t h[32])
{
    uint8_t (*nh)[TS_SHA256_B];

    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        nh = realloc(l->h, l->cap * sizeof(*nh));
        if (nh == NULL) {
            l->cap = l->n;
            return;
        }
        l->h = nh;
    }
    memcpy(l->h[l->n++], h, TS_SHA256_B);
}


static void
collect_tdb(const uint8_t h[32], void *arg)
{
    hash_list_add(arg, h);
}


typedef struct {
    hash_list_t expired;
    hash_list_t all;
} shm_walk_t;


static void
collect_shm(const uint8_t h[32], int state, void *arg)
{
    shm_walk_t *w = arg;

    if (state == TRK_SESS_EXPIRED) {
        hash_list_add(&w->expired, h);
    }
    hash_list_add(&w->all, h);
}


/* Deletes the sessions of list (those keep(h) still says go) in bounded
 * transactions: each is one op that must fit a frame (a session delete
 * also writes its presence records).  Returns how many, or -1. */
static int
delete_sessions(trk_env_t *env, const hash_list_t *list,
                int (*go)(trk_env_t *env, const uint8_t h[32]))
{
    size_t i, j = 0;
    int    deleted = 0;

    for (i = 0; i < list->n && deleted >= 0; i += j) {
        if (trk_store_begin(env->st) != 0) {
            return -1;
        }
        for (j = 0; j < TS_TRK_EXPIRE_CHUNK_N / 4 && i + j < list->n; j++) {
            if (!go(env, list->h[i + j])) {
                continue;
            }
            /* presence record first (it reads the session) */
            (void) trk_files_session_gone(env->st, list->h[i + j]);
            if (trk_session_del(env->st, list->h[i + j]) == 0) {
                deleted++;
            }
        }
        if (trk_store_commit(env->st) != 0) {
            deleted = -1;
        }
    }
    return deleted;
}


/* The timeout the leader expires sessions at in this pass.  While the
 * cluster is split (a peer down), and for one session timeout after it
 * is whole again, a session's heartbeats may be reaching a tracker on
 * the other side, whose gossip cannot get here: expiring it would log
 * out a live node once the delete replicates after the heal.  Then the
 * timeout is TS_TRK_SPLIT_TIMEOUT_X times longer, so a split shorter
 * than that logs nobody out, and a dead node's session still ends (a
 * peer down for good does not keep dead sources listed for ever). */
static int64_t  hk_expire_ms;

static int64_t
expiry_timeout(trk_env_t *env, int64_t now)
{
    int64_t  whole = atomic_load(&env->shm->stats->peers_whole_ms);
    int64_t  tmo = env->session_timeout_ms;

    if (atomic_load(&env->shm->stats->ntrackers) <= 1) {
        return tmo;
    }
    if (whole == 0 || now - whole < tmo) {
        return tmo * TS_TRK_SPLIT_TIMEOUT_X;
    }
    return tmo;
}


/* A cache entry found expired: still expired?  A gossiped heartbeat may
 * have revived it since the walk (re-checked under its stripe lock). */
static int
still_expired(trk_env_t *env, const uint8_t h[32])
{
    char user[TS_ID_MAX_B + 1];

    return trk_sess_lookup(env->shm, h, ts_now_ms(), hk_expire_ms, 0, user,
                           sizeof(user)) == 2;
}


/* A session only tdb knows (no cache place): still without one? */
static int
still_uncached(trk_env_t *env, const uint8_t h[32])
{
    char user[TS_ID_MAX_B + 1];

    return trk_sess_lookup(env->shm, h, ts_now_ms(), env->session_timeout_ms,
                           0, user, sizeof(user)) == 0;
}


/* The sessions to look at in step 1: every session of tdb on the first
 * pass of a new shm segment (after a start or a reset the cache is
 * empty), else only those the session queue holds as due (new in tdb:
 * logged in here or merged from a peer, or waiting for their timeout),
 * taken off the queue in *due. */
static void
sessions_to_check(trk_env_t *env, int full, hash_list_t *out,
                  trk_strlist_t *due)
{
    uint8_t  h[TS_SHA256_B];
    uint32_t i;

    memset(due, 0, sizeof(*due));
    if (full) {
        trk_store_each_session(env->st, collect_tdb, out);
    }
    if (trk_idx_due(env->st, TRK_IDX_Q_SESSION, (uint64_t) ts_wall_ms(),
                    TS_TRK_IDX_DUE_MAX_N, due) != 0)
    {
        return;
    }
    for (i = 0; !full && i < due->n; i++) {
        if (ts_unhex(due->v[i], h, sizeof(h)) == 0) {
            hash_list_add(out, h);
        }
    }
}


/* Takes the handled entries off the session queue and queues again the
 * sessions that still need a look later (at wall time at_ms[i]). */
static int
str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


static void
sessions_requeue(trk_env_t *env, trk_strlist_t *due, const hash_list_t *again,
                 const uint64_t *at_ms)
{
    char   hex[2 * TS_SHA256_B + 1];
    size_t i = 0, j;
    int    bad = 0, first = 1;

    if (due->n == 0 && again->n == 0) {
        return;
    }
    /* trk_idx_done() wants the handled entries sorted */
    if (due->n > 1) {
        qsort(due->v, due->n, sizeof(*due->v), str_cmp);
    }
    /* bounded transactions, so that a pass over many sessions (the first
     * one after a start) never holds the database for long */
    while (!bad && (first || i < again->n)) {
        bad = trk_store_begin(env->st) != 0
              || (first && trk_idx_done(env->st, TRK_IDX_Q_SESSION,
                                        (uint64_t) ts_wall_ms(), due) != 0);
        first = 0;
        for (j = 0; !bad && j < TS_TRK_EXPIRE_CHUNK_N && i < again->n;
             j++, i++)
        {
            ts_hex(again->h[i], TS_SHA256_B, hex);
            bad = trk_idx_queue(env->st, TRK_IDX_Q_SESSION, at_ms[i], hex)
                  != 0;
        }
        if (bad || trk_store_commit(env->st) != 0) {
            trk_store_cancel(env->st);
            ts_warn("cannot update the session expiry queue");
            bad = 1;
        }
    }
}


/* Step 3: the cached sessions whose tdb record is gone leave the cache.
 * The lookups run under one whole-file read lock (one fcntl instead of
 * two per session; the cache may hold TS_SESSIONS_SHM_N); the cache is
 * changed after it is released. */
static void
cache_drop_gone(trk_env_t *env, const hash_list_t *all)
{
    struct tdb_context *tdb = trk_store_tdb(env->st);
    trk_session_t       s;
    hash_list_t         gone;
    size_t              i;
    int                 locked;

    memset(&gone, 0, sizeof(gone));
    locked = tdb_lockall_read(tdb) == 0;
    for (i = 0; i < all->n; i++) {
        if (trk_session_get(env->st, all->h[i], &s) == 1) {
            hash_list_add(&gone, all->h[i]);
        }
    }
    if (locked) {
        tdb_unlockall_read(tdb);
    }
    for (i = 0; i < gone.n; i++) {
        trk_sess_remove(env->shm, gone.h[i]);
    }
    free(gone.h);
}


/* The walk of the session cache (steps 2 and 3 below) costs one lock
 * and one tdb lookup per cached session: at 10^5 sessions far too much
 * to pay every second on an idle tracker.  It finds something only when
 * a cached session timed out or its tdb record went (a logout or expiry
 * here or merged from another tracker).  So it runs when the replicated
 * data changed since the last walk (the digest of y/meta moves with
 * every replicated write, so a deleted session is never missed), and
 * otherwise once per walk period: a session that timed out is refused
 * at once by every lookup (trk_sess_lookup checks the heartbeat age) and
 * only its clean-up waits.  Per process: the worker that holds the
 * housekeeping claim keeps its own view (a first pass walks). */
static int64_t  walk_next_ms;
static uint8_t  walk_digest[32];
static int      walk_have;

static int
walk_due(trk_env_t *env, int64_t now, int full)
{
    trk_counts_t c;
    uint8_t      d[32];
    int64_t      period;
    int          ok, changed;

    ok = trk_idx_status(env->st, &c, d) == 0;
    changed = !ok || !walk_have || memcmp(d, walk_digest, sizeof(d)) != 0;
    if (!full && !changed && now < walk_next_ms) {
        return 0;
    }
    period = env->session_timeout_ms / TS_TRK_HK_WALK_DIV;
    walk_next_ms = now + (period > TS_HOUSEKEEP_MS ? period
                                                   : TS_HOUSEKEEP_MS);
    memcpy(walk_digest, d, sizeof(d));
    walk_have = ok;
    return 1;
}


static void
housekeep_pass(trk_env_t *env, int64_t now, int full)
{
    hash_list_t    tdbs;
    shm_walk_t     sw;
    hash_list_t    gone, again;
    uint64_t      *at = NULL, *nat;
    trk_strlist_t  due;
    trk_session_t  s;
    char           user[TS_ID_MAX_B + 1];
    uint64_t       cutoff;
    size_t         i;
    int            rc, deleted, dropped, rr, leader;

    memset(&tdbs, 0, sizeof(tdbs));
    memset(&sw, 0, sizeof(sw));
    memset(&gone, 0, sizeof(gone));
    memset(&again, 0, sizeof(again));
    cutoff = (uint64_t) ts_wall_ms() - (uint64_t) env->session_timeout_ms;
    leader = atomic_load(&env->shm->stats->leader) == env->tracker_id;

    /* 1. sessions in tdb that no worker has cached get a grace period
     *    (e.g. after a restart), so live clients keep working.  Those
     *    that find no place in the cache (it is full) have nothing that
     *    times them out: once older than a session timeout they go, like
     *    sessions without a node fingerprint (never accepted again).
     *    Those are looked at again later through the session queue */
    sessions_to_check(env, full, &tdbs, &due);
    for (i = 0; i < tdbs.n; i++) {
        rc = trk_sess_lookup(env->shm, tdbs.h[i], now,
                             env->session_timeout_ms, 0, user, sizeof(user));
        if (rc != 0 || trk_session_get(env->st, tdbs.h[i], &s) != 0) {
            continue;
        }
        if (trk_ops_fp_missing(s.fp)
            || trk_user_disabled(env->st, s.user) == 1)
        {
            /* never cached: refused, and the leader ends it */
            hash_list_add(&gone, tdbs.h[i]);
        } else if (trk_sess_insert(env->shm, tdbs.h[i], s.user, s.fp, now)
                   != 0)
        {
            if (s.created_ms < cutoff) {
                hash_list_add(&gone, tdbs.h[i]);
            }
            if (s.created_ms >= cutoff || !leader) {
                /* look again once it is old enough (or, not being the
                 * leader, once the leader should have ended it) */
                nat = realloc(at, (again.n + 1) * sizeof(*at));
                if (nat != NULL) {
                    at = nat;
                    at[again.n] = s.created_ms >= cutoff
                                  ? s.created_ms
                                    + (uint64_t) env->session_timeout_ms
                                  : (uint64_t) ts_wall_ms()
                                    + (uint64_t) env->session_timeout_ms;
                    hash_list_add(&again, tdbs.h[i]);
                }
            }
        } else if (trk_session_get(env->st, tdbs.h[i], &s) != 0
                   || trk_user_disabled(env->st, s.user) == 1)
        {
            /* deleted (or disabled) meanwhile: trk_ops_cache_session() */
            trk_sess_remove(env->shm, tdbs.h[i]);
        }
    }
    sessions_requeue(env, &due, &again, at);
    trk_strlist_free(&due);
    free(again.h);
    free(at);

    /* 2. expired sessions leave tdb first, then the cache (the cache
     *    entry, kept EXPIRED meanwhile, stops a reload from tdb); the
     *    walk of the cache runs only when it can find something */
    hk_expire_ms = expiry_timeout(env, now);
    if (walk_due(env, now, full)) {
        trk_sess_each(env->shm, now, hk_expire_ms, collect_shm, &sw);
    }
    /* only the leader expires (its deletes replicate as ops) */
    deleted = 0;
    dropped = 0;
    if (leader) {
        deleted = delete_sessions(env, &sw.expired, still_expired);
        if (deleted >= 0) {
            dropped = delete_sessions(env, &gone, still_uncached);
            if (dropped < 0) {
                deleted = -1;
            }
        }
    }
    /* 3. cache entries whose tdb record is gone (expired above, logged
     *    out, or a stale reload) */
    if (deleted >= 0) {
        cache_drop_gone(env, &sw.all);
    }
    if (deleted > 0) {
        ts_info("expired %d session(s)", deleted);
    }
    if (dropped > 0) {
        ts_info("expired %d session(s) the session cache had no place for "
                "(or without a node identity)", dropped);
    }

    /* 4. the reply cache: the leader deletes (like sessions); the others
     *    only take replies the leader's deletes removed off the queue */
    rr = trk_store_expire_replies_ex(env->st, (uint64_t) ts_wall_ms()
                                     - (uint64_t) TS_REPLY_CACHE_TTL_S
                                       * 1000, leader);
    if (rr > 0) {
        ts_debug("expired %d cached replies", rr);
    }
    /* 5. a tracker alone runs no trk-sync: its tombstones (those of the
     *    deletes above too) are collected here, by the same rule */
    if (atomic_load(&env->shm->stats->ntrackers) == 1
        && (rr = trk_gc_alone(env->st)) > 0)
    {
        ts_debug("collected the tombstones of %d keys", rr);
    }
    free(tdbs.h);
    free(gone.h);
    free(sw.expired.h);
    free(sw.all.h);
}


void
trk_housekeep(trk_env_t *env, int64_t now)
{
    trk_stats_sh_t *sb = env->shm->stats;

    if (now - atomic_load(&sb->hk_last_ms) < TS_HOUSEKEEP_MS) {
        return;
    }
    if (!ts_claim_try(&sb->hk_owner, env->me)) {
        return;
    }
    /* re-check: another worker may have just finished a pass */
    if (now - atomic_load(&sb->hk_last_ms) >= TS_HOUSEKEEP_MS) {
        /* a new segment (start, reset) has an empty session cache: its
         * first pass looks at every session of tdb */
        housekeep_pass(env, now, atomic_load(&sb->hk_last_ms) == 0);
        atomic_store(&sb->hk_last_ms, ts_now_ms());
    }
    ts_claim_release(&sb->hk_owner, env->me);
}
