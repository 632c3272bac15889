/*
 * trk_start.c -- the tracker's start-up checks, before any process is
 * forked, and `tracker --init-pki`.
 *
 * Purpose: find this tracker's address in tracker_info.txt, make sure
 * the data directory and tracker.tdb are usable (and read the database
 * epoch and the HLC high-water mark, and rebuild the storage usage
 * counters, trk_quota.h), that the PKI is in place (cluster
 * CA and this tracker's certificate under --pki, created when missing
 * and possible; the TLS context and the ticket key are loaded once
 * here), raise the open files limit to its hard limit (and clamp the
 * connection caps to what it allows), open the listen socket that every
 * worker inherits and create the shm segment /tessera-trk-<hash> -- so a
 * bad setup fails here, with a clear message, instead of in a
 * crash-looping worker.
 *
 * Locking: none (the supervisor, alone).
 *
 * Crash behaviour: nothing kept here; a stale shm segment of a dead
 * tracker is detected and replaced by trk_shm_create.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_log.h"
#include "ts_net.h"
#include "ts_ticket.h"
#include "ts_tls.h"
#include "ts_trackers.h"
#include "trk_http.h"
#include "trk_oplog.h"
#include "trk_ops.h"
#include "trk_store.h"
#include "trk_quota.h"
#include "trk_start.h"


static int
exists(const char *p)
{
    return access(p, F_OK) == 0;
}


/* tracker --init-pki tracker_info.txt: CA + every tracker's certificate. */
int
trk_start_init_pki(const char *info, const char *dir)
{
    ts_trackers_t  t;
    char           err[512], p[PATH_MAX + 32], k[PATH_MAX + 32];
    int            i, had_c, had_k;

    if (ts_trackers_load(info, &t, err, sizeof(err)) != 0) {
        fprintf(stderr, "tracker: %s\n", err);
        return 1;
    }
    snprintf(p, sizeof(p), "%s/ca.crt", dir);
    snprintf(k, sizeof(k), "%s/ca.key", dir);
    had_c = exists(p);
    had_k = exists(k);
    if (ts_pki_ensure_ca(dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "tracker: %s\n", err);
        return 1;
    }
    printf("%s %s\n", had_c ? "kept   " : "created", p);
    if (had_k || !had_c) {
        printf("%s %s  (keep it offline once every tracker has its "
               "certificate)\n", had_k ? "kept   " : "created", k);
    }
    for (i = 1; i <= t.n; i++) {
        snprintf(p, sizeof(p), "%s/tracker-%d.crt", dir, i);
        snprintf(k, sizeof(k), "%s/tracker-%d.key", dir, i);
        had_c = exists(p) && exists(k);
        if (ts_pki_ensure_tracker(dir, i, t.t[i - 1].ip, err, sizeof(err))
            != 0)
        {
            fprintf(stderr, "tracker: %s\n", err);
            return 1;
        }
        /* ensure_tracker replaces a certificate the CA did not sign */
        printf("%s %s, %s  (tracker %d, %s:%u)\n",
               had_c ? "checked" : "created", p, k, i, t.t[i - 1].ip,
               (unsigned) t.t[i - 1].port);
    }
    printf("copy ca.crt and tracker-N.crt/.key to tracker N's %s, and "
           "ca.crt to every client's <dir of tracker_info.txt>/pki\n", dir);
    return 0;
}


/* Makes sure the CA and this tracker's certificate exist (creating what
 * is missing and can be created), then loads them once, so that every
 * problem is reported here.  0 or -1 (logged). */
static int
start_pki(trk_config_t *cfg)
{
    ts_tls_t           *t;
    ts_ticket_signer_t *sg;
    char                err[512];

    if (trk_opts_pki_paths(cfg) != 0) {
        ts_err("PKI directory path too long: %s", cfg->pki_dir);
        return -1;
    }
    if (!exists(cfg->ca_path)) {
        ts_info("no cluster CA in %s: creating one", cfg->pki_dir);
    }
    if (ts_pki_ensure_ca(cfg->pki_dir, err, sizeof(err)) != 0) {
        ts_err("PKI: %s", err);
        return -1;
    }
    if (ts_pki_ensure_tracker(cfg->pki_dir, cfg->id, cfg->ip, err, sizeof(err))
        != 0)
    {
        ts_err("PKI: %s", err);
        return -1;
    }
    t = ts_tls_ctx_new(TS_TLS_TRACKER_SERVER, cfg->crt_path, cfg->key_path,
                       cfg->ca_path, err, sizeof(err));
    if (t == NULL) {
        ts_err("cannot load this tracker's certificate: %s", err);
        return -1;
    }
    ts_tls_ctx_free(t);
    sg = ts_ticket_signer_new((uint32_t) cfg->id, cfg->crt_path, cfg->key_path,
                              err, sizeof(err));
    if (sg == NULL) {
        ts_err("cannot load the ticket signing key: %s", err);
        return -1;
    }
    ts_ticket_signer_free(sg);
    return 0;
}


/*
 * Raises the soft RLIMIT_NOFILE to the hard limit (the workers inherit
 * it) and clamps the connection caps to what it allows: each worker
 * keeps TS_TRK_FD_RESERVE_N descriptors for itself, the rest bounds its
 * connections.  Without this a worker runs into EMFILE in accept4()
 * long before --max-conns.  0, or -1 if the limit leaves no room.
 */
static int
start_nofile(trk_config_t *cfg)
{
    struct rlimit       rl;
    unsigned long long  before, lim, per;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        ts_err("getrlimit(RLIMIT_NOFILE) failed: %s", strerror(errno));
        return -1;
    }
    before = (unsigned long long) rl.rlim_cur;
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            ts_warn("setrlimit(RLIMIT_NOFILE, %llu) failed: %s",
                    (unsigned long long) rl.rlim_max, strerror(errno));
            (void) getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    lim = rl.rlim_cur == RLIM_INFINITY ? ~0ull
                                       : (unsigned long long) rl.rlim_cur;
    if (lim <= TS_TRK_FD_RESERVE_N) {
        ts_err("the open files limit (%llu) leaves no room for "
               "connections: at least %d needed (ulimit -n)", lim,
               TS_TRK_FD_RESERVE_N + 1);
        return -1;
    }
    per = lim - TS_TRK_FD_RESERVE_N;
    if (per > TS_TRK_CONNS_PER_WORKER_N) {
        per = TS_TRK_CONNS_PER_WORKER_N;
    }
    cfg->conns_per_worker = (uint32_t) per;
    ts_info("open files limit %llu (was %llu; hard limit %llu): up to "
            "%llu connections per worker", lim, before,
            rl.rlim_max == RLIM_INFINITY ? ~0ull
                                         : (unsigned long long) rl.rlim_max,
            per);
    if (cfg->conns_max > per * (unsigned long long) cfg->workers) {
        ts_warn("--max-conns %u clamped to %llu: %d workers x %llu "
                "connections the open files limit allows", cfg->conns_max,
                per * (unsigned long long) cfg->workers, cfg->workers, per);
        cfg->conns_max = (uint32_t) (per * (unsigned long long) cfg->workers);
    }
    if (cfg->conns_addr > cfg->conns_max) {
        cfg->conns_addr = cfg->conns_max;
    }
    if (cfg->unauth_max > cfg->conns_max) {
        cfg->unauth_max = cfg->conns_max;
    }
    return 0;
}


/* This tracker's line of tracker_info.txt.  0, or the exit code. */
static int
start_trackers(trk_config_t *cfg, const char *info)
{
    ts_trackers_t  trk;
    char           err[512];

    if (ts_trackers_load(info, &trk, err, sizeof(err)) != 0) {
        ts_err("%s", err);
        return 1;
    }
    if (cfg->id > trk.n) {
        fprintf(stderr, "tracker: tracker id %d is out of range: %s lists "
                "%d tracker(s)\n", cfg->id, info, trk.n);
        return 2;
    }
    cfg->trackers = trk;
    snprintf(cfg->ip, sizeof(cfg->ip), "%s", trk.t[cfg->id - 1].ip);
    cfg->port = trk.t[cfg->id - 1].port;
    return 0;
}


/* The data directory (created) and tracker.tdb, opened once here so that
 * a bad one fails here rather than in N crash-looping workers; *epoch
 * (a new directory gets a new one) and *hlc0 (the HLC high-water mark:
 * stamps never go back across restarts).  0 or -1 (logged). */
static int
start_store(trk_config_t *cfg, const char *data_dir, uint64_t *epoch,
            uint64_t *hlc0)
{
    trk_store_t *st;
    char         err[512];
    int          rc;

    if (data_dir == NULL) {
        snprintf(cfg->data_dir, sizeof(cfg->data_dir), "./tsr-tracker-%d",
                 cfg->id);
    } else if (snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s",
                        data_dir) >= (int) sizeof(cfg->data_dir))
    {
        trk_opts_bad_usage("data directory path too long: %s", data_dir);
    }
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        ts_err("cannot create data directory %s: %s", cfg->data_dir,
               strerror(errno));
        return -1;
    }
    if (snprintf(cfg->db_path, sizeof(cfg->db_path), "%s/tracker.tdb",
                 cfg->data_dir) >= (int) sizeof(cfg->db_path))
    {
        ts_err("data directory path too long");
        return -1;
    }
    trk_store_hash_size(cfg->tdb_hash_n);
    st = trk_store_open(cfg->db_path, 1, cfg->nosync, err, sizeof(err));
    if (st == NULL) {
        ts_err("%s", err);
        return -1;
    }
    *epoch = trk_epoch_get(st, 1);
    *hlc0 = trk_hlc_saved(st);
    rc = trk_quota_rebuild(st);
    trk_store_close(st);
    /* the rebuilds' freed heap goes back to the system: forked workers
     * would otherwise each carry it as resident anonymous memory */
    (void) malloc_trim(0);
    if (rc != 0) {
        return -1;
    }
    if (*epoch == 0) {
        ts_err("cannot initialise the database epoch in %s", cfg->db_path);
        return -1;
    }
    return 0;
}


/* The stats block of a new segment: who runs it, since when, the epoch
 * and the HLC high-water mark. */
static void
start_publish(trk_config_t *cfg, int64_t start_wall_ms, uint64_t epoch,
              uint64_t hlc)
{
    trk_stats_sh_t *s = cfg->shm.stats;

    atomic_store(&s->start_wall_ms, start_wall_ms);
    atomic_store(&s->sup_pid, (int32_t) getpid());
    atomic_store(&s->workers_n, (uint32_t) cfg->workers);
    atomic_store(&s->epoch, epoch);
    atomic_store(&s->hlc, hlc);
    atomic_store(&s->leader, cfg->id);
    atomic_store(&s->ntrackers, cfg->trackers.n);
}


/* The listen socket and the shm segment with its stats block filled.
 * 0 or -1 (logged; nothing left open). */
static int
start_listen_shm(trk_config_t *cfg, uint64_t epoch, uint64_t hlc0)
{
    cfg->listen_fd = ts_net_listen(cfg->ip, cfg->port,
                                   TS_TRK_LISTEN_BACKLOG_N);
    if (cfg->listen_fd < 0) {
        ts_err("cannot listen on %s:%u: %s", cfg->ip, (unsigned) cfg->port,
               strerror(errno));
        return -1;
    }
    trk_shm_use_dir(cfg->data_dir);
    if (trk_shm_create(&cfg->shm, cfg->port) != 0) {
        if (errno == EBUSY) {
            ts_err("shared memory of data directory %s is owned by a "
                   "running tracker", cfg->data_dir);
        } else {
            ts_err("cannot create shared memory: %s", strerror(errno));
        }
        close(cfg->listen_fd);
        cfg->listen_fd = -1;
        return -1;
    }
    start_publish(cfg, ts_wall_ms(), epoch, hlc0);
    return 0;
}


int
trk_start_shm_rebuild(trk_config_t *cfg)
{
    char          err[512];
    uint64_t      epoch, hlc, hlc_old = atomic_load(&cfg->shm.stats->hlc);
    int64_t       started = atomic_load(&cfg->shm.stats->start_wall_ms);
    trk_store_t  *st;

    st = trk_store_open(cfg->db_path, 0, cfg->nosync, err, sizeof(err));
    if (st == NULL) {
        ts_err("%s", err);
        return -1;
    }
    epoch = trk_epoch_get(st, 0);
    hlc = trk_hlc_saved(st);
    trk_store_close(st);
    ts_shm_detach(&cfg->shm.shm);
    if (epoch == 0 || trk_shm_create(&cfg->shm, cfg->port) != 0) {
        ts_err("cannot rebuild the shared memory segment");
        return -1;
    }
    start_publish(cfg, started, epoch, hlc > hlc_old ? hlc : hlc_old);
    return 0;
}


int
trk_start_setup(trk_config_t *cfg, const trk_opts_t *o)
{
    uint64_t epoch, hlc0;
    int      rc;

    rc = start_trackers(cfg, o->info_path);
    if (rc != 0) {
        return rc;
    }
    if (start_store(cfg, o->data_dir, &epoch, &hlc0) != 0
        || start_pki(cfg) != 0 || start_nofile(cfg) != 0
        || start_listen_shm(cfg, epoch, hlc0) != 0)
    {
        return 1;
    }
    if (trk_http_setup(cfg) != 0) {
        trk_start_teardown(cfg);
        return 1;
    }
    trk_ops_init();
    ts_info("tracker %d starting on %s:%u (%d workers, data %s, fsync %s, "
            "%s, pki %s)", cfg->id, cfg->ip, (unsigned) cfg->port,
            cfg->workers, cfg->data_dir, cfg->nosync ? "off" : "on",
            ts_tls_enabled() ? "TLS 1.3" : "NO TLS (bench build)",
            cfg->pki_dir);
    return 0;
}


void
trk_start_teardown(trk_config_t *cfg)
{
    char shm_name[64];

    trk_shm_name(shm_name, sizeof(shm_name), cfg->port);
    ts_shm_detach(&cfg->shm.shm);
    ts_shm_unlink(shm_name);
    close(cfg->listen_fd);
    cfg->listen_fd = -1;
    trk_http_teardown(cfg);
}
