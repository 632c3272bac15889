/*
 * trk_housekeep.c -- the periodic pass: expired sessions and cached
 * replies.
 *
 * Purpose: sessions in tdb that no worker has cached get a grace period,
 * expired ones leave tdb and then the cache, and the reply cache drops
 * entries older than TS_REPLY_CACHE_TTL_S.  Only the cluster's leader
 * deletes (its deletes replicate as ops).
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

#include "ts_clock.h"
#include "ts_log.h"
#include "trk_ops.h"
#include "trk_sources.h"

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


/* A cache entry found expired: still expired?  A gossiped heartbeat may
 * have revived it since the walk (re-checked under its stripe lock). */
static int
still_expired(trk_env_t *env, const uint8_t h[32])
{
    char user[TS_ID_MAX_B + 1];

    return trk_sess_lookup(env->shm, h, ts_now_ms(), env->session_timeout_ms,
                           0, user, sizeof(user)) == 2;
}


/* A session only tdb knows (no cache place): still without one? */
static int
still_uncached(trk_env_t *env, const uint8_t h[32])
{
    char user[TS_ID_MAX_B + 1];

    return trk_sess_lookup(env->shm, h, ts_now_ms(), env->session_timeout_ms,
                           0, user, sizeof(user)) == 0;
}


static void
housekeep_pass(trk_env_t *env, int64_t now)
{
    hash_list_t    tdbs;
    shm_walk_t     sw;
    hash_list_t    gone;
    trk_session_t  s;
    char           user[TS_ID_MAX_B + 1];
    uint64_t       cutoff;
    size_t         i;
    int            rc, deleted, dropped, rr, leader;

    memset(&tdbs, 0, sizeof(tdbs));
    memset(&sw, 0, sizeof(sw));
    memset(&gone, 0, sizeof(gone));
    cutoff = (uint64_t) ts_wall_ms() - (uint64_t) env->session_timeout_ms;

    /* 1. sessions in tdb that no worker has cached get a grace period
     *    (e.g. after a restart), so live clients keep working.  Those
     *    that find no place in the cache (it is full) have nothing that
     *    times them out: once older than a session timeout they go, like
     *    sessions without a node fingerprint (never accepted again) */
    trk_store_each_session(env->st, collect_tdb, &tdbs);
    for (i = 0; i < tdbs.n; i++) {
        rc = trk_sess_lookup(env->shm, tdbs.h[i], now,
                             env->session_timeout_ms, 0, user, sizeof(user));
        if (rc != 0 || trk_session_get(env->st, tdbs.h[i], &s) != 0) {
            continue;
        }
        if (trk_ops_fp_missing(s.fp)) {
            hash_list_add(&gone, tdbs.h[i]);
        } else if (trk_sess_insert(env->shm, tdbs.h[i], s.user, s.fp, now)
                   != 0)
        {
            if (s.created_ms < cutoff) {
                hash_list_add(&gone, tdbs.h[i]);
            }
        } else if (trk_session_get(env->st, tdbs.h[i], &s) != 0) {
            /* deleted meanwhile: see trk_ops_cache_session() */
            trk_sess_remove(env->shm, tdbs.h[i]);
        }
    }

    /* 2. expired sessions leave tdb first, then the cache (the cache
     *    entry, kept EXPIRED meanwhile, stops a reload from tdb) */
    trk_sess_each(env->shm, now, env->session_timeout_ms, collect_shm, &sw);
    /* only the leader expires (its deletes replicate as ops) */
    leader = atomic_load(&env->shm->stats->leader) == env->tracker_id;
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
        for (i = 0; i < sw.all.n; i++) {
            if (trk_session_get(env->st, sw.all.h[i], &s) == 1) {
                trk_sess_remove(env->shm, sw.all.h[i]);
            }
        }
    }
    if (deleted > 0) {
        ts_info("expired %d session(s)", deleted);
    }
    if (dropped > 0) {
        ts_info("expired %d session(s) the session cache had no place for "
                "(or without a node identity)", dropped);
    }

    /* 4. the reply cache (leader only, like sessions) */
    rr = !leader ? 0
         : trk_store_expire_replies(env->st, (uint64_t) ts_wall_ms()
                                    - (uint64_t) TS_REPLY_CACHE_TTL_S * 1000);
    if (rr > 0) {
        ts_debug("expired %d cached replies", rr);
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
        housekeep_pass(env, now);
        atomic_store(&sb->hk_last_ms, ts_now_ms());
    }
    ts_claim_release(&sb->hk_owner, env->me);
}
