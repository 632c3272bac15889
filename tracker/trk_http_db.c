/*
 * trk_http_db.c -- what the HTTP process knows of this tracker: the
 * database figures (the ones STATUS shows), the live counts in shm, the
 * request rate and the readiness verdict.
 *
 * Purpose: tracker.tdb is opened once (never written: no transaction is
 * ever begun on this handle) and re-opened every second while it cannot
 * be; its figures are re-read when the op wake word or the version vector
 * moved, and at least every second (the snapshot marks move without
 * either).  The shm words are read with atomic loads; the session cache
 * is walked without its stripe locks (a count, not a lookup), so no
 * request worker ever waits for this process (a tdb fetch holds its
 * hash chain's read lock for the fetch alone, like any worker's read).
 *
 * Locking: the main thread of trk-http only (the tdb handle is not
 * thread-safe).
 *
 * Crash behaviour: nothing kept; a restarted process reads afresh.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "ts_clock.h"
#include "ts_log.h"
#include "trk_gc.h"
#include "trk_http.h"
#include "trk_index.h"

#define DB_MAX_AGE_MS  1000
#define DB_RETRY_MS    1000

static trk_store_t    *hst;
static int64_t         retry_ms;
static trk_http_db_t   db;
static uint64_t        db_wake;
static int             db_valid;


static void
db_fail(const char *what)
{
    db.store_ok = 0;
    db_valid = 0;
    snprintf(db.store_err, sizeof(db.store_err), "%.*s",
             (int) sizeof(db.store_err) - 1, what);
    trk_store_close(hst);
    hst = NULL;
    retry_ms = ts_now_ms() + DB_RETRY_MS;
}


/* Reads every figure; 0 or -1. */
static int
db_read(const trk_config_t *cfg, const trk_vv_t *vv)
{
    struct tdb_context *tdb = trk_store_tdb(hst);
    TDB_DATA            k;

    if (trk_idx_status(hst, &db.c, db.digest) != 0
        || trk_gc_pending(hst, &db.tombs) != 0
        || trk_usage_get(tdb, 't', "", &db.use) != 0)
    {
        return -1;
    }
    db.ops = trk_oplog_count_kept(hst, vv);
    db.fresh = trk_fresh(hst, 0) == 1;
    k.dptr = (unsigned char *) "x/gcsnap";
    k.dsize = 8;
    db.snap_merging = tdb_exists(tdb, k) != 0;
    db.vv = *vv;
    return 0;
}


const trk_http_db_t *
trk_http_db(const trk_config_t *cfg)
{
    char      err[256];
    trk_vv_t  vv;
    uint64_t  wake = atomic_load(&cfg->shm.stats->op_wake);
    int64_t   now = ts_now_ms();

    if (hst == NULL) {
        if (now < retry_ms) {
            return &db;
        }
        hst = trk_store_open(cfg->db_path, 0, 1, err, sizeof(err));
        if (hst == NULL) {
            db_fail(err);
            return &db;
        }
    }
    if (trk_vv_load(hst, &vv) != 0) {
        db_fail("cannot read the version vector of tracker.tdb");
        return &db;
    }
    if (db_valid && wake == db_wake && now - db.read_ms < DB_MAX_AGE_MS
        && memcmp(&vv, &db.vv, sizeof(vv)) == 0)
    {
        return &db;
    }
    if (db_read(cfg, &vv) != 0) {
        db_fail("cannot read the counts of tracker.tdb");
        return &db;
    }
    db.store_ok = 1;
    db.store_err[0] = '\0';
    db.read_ms = now;
    db_wake = wake;
    db_valid = 1;
    return &db;
}


void
trk_http_db_close(void)
{
    trk_store_close(hst);
    hst = NULL;
    db_valid = 0;
}


double
trk_http_req_rate(const trk_config_t *cfg)
{
    static int64_t   t0;
    static uint64_t  n0;
    static double    rate;
    int64_t          now = ts_now_ms();
    uint64_t         n = trk_metrics_total(cfg->shm.reqs);

    if (t0 == 0) {
        t0 = now;
        n0 = n;
    } else if (now - t0 >= TS_HTTP_PEER_POLL_MS) {
        rate = (double) (n - n0) * 1000.0 / (double) (now - t0);
        t0 = now;
        n0 = n;
    }
    return rate;
}


uint32_t
trk_http_sessions_live(const trk_config_t *cfg)
{
    const trk_sess_sh_t *e;
    int64_t              now = ts_now_ms();
    uint32_t             i, n = 0;

    for (i = 0; i < TS_SESSIONS_SHM_N; i++) {
        e = &cfg->shm.sess[i];
        if (atomic_load_explicit(&e->state, memory_order_relaxed)
            == TRK_SESS_LIVE
            && now - atomic_load_explicit(&e->last_hb_ms,
                                          memory_order_relaxed)
               <= cfg->session_timeout_ms)
        {
            n++;
        }
    }
    return n;
}


int
trk_http_workers_active(const trk_config_t *cfg)
{
    int i, n = 0;

    for (i = 0; i < TS_SUP_WORKERS_MAX_N; i++) {
        if (atomic_load(&cfg->shm.slots[i].state) == TS_SLOT_ACTIVE) {
            n++;
        }
    }
    return n;
}


static void
why_add(char why[][TRK_HTTP_WHY_B], int max, int *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
why_add(char why[][TRK_HTTP_WHY_B], int max, int *n, const char *fmt, ...)
{
    va_list ap;

    if (*n >= max) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(why[*n], TRK_HTTP_WHY_B, fmt, ap);
    va_end(ap);
    (*n)++;
}


int
trk_http_health(const trk_config_t *cfg, int *ready,
                char why[][TRK_HTTP_WHY_B], int max, int *nwhy)
{
    const trk_http_db_t *d = trk_http_db(cfg);
    trk_stats_sh_t      *sb = cfg->shm.stats;
    int32_t              sup = atomic_load(&sb->sup_pid);
    int                  active = trk_http_workers_active(cfg);
    int                  live;

    *nwhy = 0;
    live = sup > 0 && (kill(sup, 0) == 0 || errno == EPERM);
    if (!live) {
        why_add(why, max, nwhy, "the tracker's supervisor is gone");
    }
    if (!d->store_ok) {
        /* the cause (a path, an errno) is for /api/v1/status: /healthz
         * answers without the key */
        why_add(why, max, nwhy, "store not open (tracker.tdb cannot be "
                "read)");
    }
    if (ts_shm_reset_needed(&cfg->shm.shm)) {
        why_add(why, max, nwhy, "shared memory segment being rebuilt");
    }
    if (active < cfg->workers) {
        why_add(why, max, nwhy, "%d of %d request workers running", active,
                cfg->workers);
    }
    if (d->store_ok && d->snap_merging) {
        why_add(why, max, nwhy, "snapshot catch-up in progress (a snapshot "
                "from a peer is half merged)");
    } else if (d->store_ok && d->fresh && cfg->trackers.n > 1
               && atomic_load(&sb->peers_up) != 0)
    {
        why_add(why, max, nwhy, "new data directory: waiting for the first "
                "snapshot from a peer");
    }
    *ready = *nwhy == 0;
    return live;
}
