/*
 * trk_status.c -- the STATUS handler: counts, version vector, digest.
 *
 * Purpose: STATUS (a full-database digest) is answered only over a link
 * with a tracker certificate of the cluster, from a per-worker cache that
 * is recomputed only when the state changed.
 *
 * Locking: runs on a worker's event-loop thread; reads tdb in read
 * traverses and the shm stats words with atomic loads.
 *
 * Crash behaviour: writes nothing.  The cache is per process and starts
 * empty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_clock.h"
#include "ts_crypto.h"
#include "ts_log.h"
#include "ts_tls.h"
#include "trk_ops.h"
#include "trk_oplog.h"
#include "trk_index.h"
#include "trk_gc.h"

/* ---- status --------------------------------------------------------- */

/* What STATUS reports of the database: digest and counts from the
 * maintained index record, the op log size by seq range; kept per
 * worker and re-read only when the state changed -- every commit that changes replicated state bumps the shm
 * op_wake word, and every op it applies moves the version vector.  Not
 * rate-limited by time: two trackers showing digests of different ages
 * would look converged when they are not. */
static struct {
    int                valid;
    const trk_store_t *st;
    uint64_t           wake;
    trk_vv_t           vv;
    uint8_t            dg[32];
    trk_counts_t       c;
    long               ops;
    uint64_t           gc_pending;      /* tombstones waiting (trk_gc.h) */
} status_cache;


static int
status_db(trk_env_t *env, const trk_vv_t *vv)
{
    uint64_t wake = atomic_load(&env->shm->stats->op_wake);

    if (status_cache.valid && status_cache.st == env->st
        && status_cache.wake == wake
        && memcmp(&status_cache.vv, vv, sizeof(*vv)) == 0)
    {
        return 0;
    }
    status_cache.valid = 0;
    /* counts and digest are maintained (trk_index.h); the op log is
     * counted by seq range: no walk of the database */
    if (trk_idx_status(env->st, &status_cache.c, status_cache.dg) != 0) {
        return -1;
    }
    status_cache.ops = trk_oplog_count_kept(env->st, vv);
    if (trk_gc_pending(env->st, &status_cache.gc_pending) != 0) {
        return -1;
    }
    status_cache.st = env->st;
    status_cache.wake = wake;
    status_cache.vv = *vv;
    status_cache.valid = 1;
    return 0;
}


static int
op_status(trk_req_t *rq)
{
    trk_env_t      *env = rq->env;
    trk_stats_sh_t *sb = env->shm->stats;
    char            text[2048];
    char            vvs[TRK_ORIGINS_N * 28], dhex[65], peers[256];
    trk_vv_t        vv;
    uint32_t        up_mask;
    int             i, active, n, nt;
    size_t          pl;
    int64_t         up;

    /* a full read of the database: only for the cluster's own trackers
     * (`tracker --status` shows this tracker's certificate), never for
     * an anonymous caller */
    if (ts_tls_enabled() && (env->link == NULL || env->link->tracker == 0)) {
        ts_debug("STATUS from %s refused: no tracker certificate",
                 env->link != NULL && env->link->addr[0] ? env->link->addr
                                                         : "?");
        trk_ops_msg(rq, "STATUS is answered only over a link with a tracker "
                    "certificate of this cluster (tracker --status, run "
                    "where pki/tracker-N.crt and .key are)");
        return TS_ERR_AUTH;
    }
    if (ts_rbuf_end(&rq->in) != 0) {
        trk_ops_msg(rq, TRK_MALFORMED);
        return TS_ERR_BADREQ;
    }
    if (trk_vv_load(env->st, &vv) != 0 || status_db(env, &vv) != 0) {
        trk_ops_msg(rq, TRK_DB_FAIL);
        return TS_ERR_INTERNAL;
    }
    trk_vv_format(&vv, vvs, sizeof(vvs));
    ts_hex(status_cache.dg, 32, dhex);
    up_mask = atomic_load(&sb->peers_up);
    nt = atomic_load(&sb->ntrackers);
    peers[0] = '\0';
    pl = 0;
    for (i = 1; i <= nt && i < TRK_ORIGINS_N; i++) {
        if (i == env->tracker_id) {
            continue;
        }
        n = snprintf(peers + pl, sizeof(peers) - pl, "%s%d=%s",
                     pl ? "," : "", i, (up_mask >> i) & 1 ? "up" : "down");
        if (n < 0 || (size_t) n >= sizeof(peers) - pl) {
            break;
        }
        pl += (size_t) n;
    }
    active = 0;
    for (i = 0; i < TS_SUP_WORKERS_MAX_N; i++) {
        if (atomic_load(&env->shm->slots[i].state) == TS_SLOT_ACTIVE) {
            active++;
        }
    }
    up = (ts_wall_ms() - atomic_load(&sb->start_wall_ms)) / 1000;
    snprintf(text, sizeof(text),
             "tracker_id: %d\npid: %d\nworkers: %d\nusers: %llu\n"
             "groups: %llu\nsessions: %llu\nuptime_s: %lld\n",
             env->tracker_id, (int) atomic_load(&sb->sup_pid), active,
             (unsigned long long) status_cache.c.users,
             (unsigned long long) status_cache.c.groups,
             (unsigned long long) status_cache.c.sessions,
             (long long) (up < 0 ? 0 : up));
    n = (int) strlen(text);
    snprintf(text + n, sizeof(text) - (size_t) n,
             "leader: %d\nvv: %s\ndigest: %s\nepoch: %016llx\npeers: %s\n"
             "ops_logged: %ld\nsync_pid: %d\ntombstones: %llu\n"
             "requests: %llu\n",
             (int) atomic_load(&sb->leader), vvs, dhex,
             (unsigned long long) atomic_load(&sb->epoch), peers,
             status_cache.ops, (int) atomic_load(&sb->sync_pid),
             (unsigned long long) status_cache.gc_pending,
             (unsigned long long) trk_metrics_total(env->shm->reqs));
    ts_put_str(&rq->body, text);
    return TS_OK;
}




void
trk_status_register(void)
{
    static const trk_op_t ops[] = {
        { TS_MSG_STATUS,         0, 0, op_status },
    };

    (void) trk_ops_register(ops, sizeof(ops) / sizeof(ops[0]));
}
