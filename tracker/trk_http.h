/*
 * trk_http.h -- the tracker's HTTP observability endpoint: the process
 * "trk-http" that the supervisor runs beside the request workers, its
 * start-up (option, listen socket, API key, certificate) and what its
 * handlers read.
 *
 * Files: trk_http_opt.c (--http, --no-http), trk_http_setup.c (the
 * socket, key and certificate, made by the supervisor before it forks), trk_http.c (the process and its
 * routes), trk_http_db.c (this tracker's figures from tdb and shm,
 * readiness), trk_http_peers.c (the other trackers' STATUS, polled),
 * trk_http_api.c (/healthz, /api/v1/status, /api/v1/cluster),
 * trk_http_prom.c (/metrics).  The server itself is http/ts_http.c.
 *
 * Locking: the process reads the shm segment with atomic loads only
 * (never a stripe or throttle lock, so it never makes a worker wait) and
 * tracker.tdb through its own handle, on its main thread; the peer
 * threads share only the peer table, under its mutex.
 *
 * Crash behaviour: it holds nothing durable.  Killed, it is restarted by
 * the supervisor like any worker; the listen socket is the supervisor's,
 * so clients see at most a refused or reset connection meanwhile.
 */
#ifndef TRK_HTTP_H_INCLUDED
#define TRK_HTTP_H_INCLUDED

#include <stdio.h>
#include <stdint.h>
#include "ts_http.h"
#include "ts_sup.h"
#include "trk_oplog.h"
#include "trk_opts.h"
#include "trk_store.h"
#include "trk_usage.h"

/* ---- set-up, in the supervisor (trk_http_setup.c) -------------------- */
/* After trk_http_option (trk_http_opt.h): binds the endpoint's socket, loads (or makes) the API key and, for
 * HTTPS, the certificate: cfg->http_fd >= 0 when it is to run, -1 when
 * it is off.  0, or -1 (logged: the tracker does not start). */
int  trk_http_setup(trk_config_t *cfg);
void trk_http_teardown(trk_config_t *cfg);

/* ---- the process (trk_http.c) ------------------------------------------ */
int  trk_http_main(const ts_worker_ctx_t *ctx);

/* ---- this tracker (trk_http_db.c) -------------------------------------- */
typedef struct {
    int           store_ok;         /* tracker.tdb open and readable */
    char          store_err[160];
    trk_vv_t      vv;
    uint8_t       digest[32];
    trk_counts_t  c;                /* users, groups, sessions, replies */
    trk_use_t     use;              /* files, shares, nodes (q/t) */
    long          ops;              /* op log entries kept */
    uint64_t      tombs;            /* tombstones waiting */
    int           fresh;            /* new data dir, no snapshot yet */
    int           snap_merging;     /* a snapshot half merged */
    int64_t       read_ms;          /* monotonic, when read */
} trk_http_db_t;

/* The figures, re-read when the state moved (or every second). */
const trk_http_db_t *trk_http_db(const trk_config_t *cfg);
void trk_http_db_close(void);
/* Requests per second over the last poll period (all types). */
double trk_http_req_rate(const trk_config_t *cfg);
/* Live sessions in the shm cache (lock-free walk). */
uint32_t trk_http_sessions_live(const trk_config_t *cfg);
/* Request workers with an active slot. */
int  trk_http_workers_active(const trk_config_t *cfg);
/* 1 if live (the supervisor runs); *ready and up to max reasons why
 * not ready (each TRK_HTTP_WHY_B bytes). */
#define TRK_HTTP_WHY_B  128
int  trk_http_health(const trk_config_t *cfg, int *ready,
                     char why[][TRK_HTTP_WHY_B], int max, int *nwhy);

/* ---- the other trackers (trk_http_peers.c) ----------------------------- */
typedef struct {
    int       id;
    char      addr[80];
    int       polled;               /* at least one attempt finished */
    int       reachable;            /* the last STATUS worked */
    char      err[128];             /* why the last one failed */
    int64_t   ok_ms;                /* monotonic, last good STATUS */
    trk_vv_t  vv;
    char      digest[65];
    int       leader;
    uint64_t  users, groups, sessions, ops, tombs;
    int64_t   uptime_s;
    int       has_requests;         /* its STATUS counts requests */
    uint64_t  requests;
    double    req_rate;             /* per second, between two polls */
} trk_http_peer_t;

int  trk_http_peers_start(const trk_config_t *cfg);
void trk_http_peers_stop(void);
/* Copies of every other tracker's last poll (at most max): the count. */
int  trk_http_peers_get(trk_http_peer_t *out, int max);
/* Ops of any origin that a has and b lacks. */
uint64_t trk_http_vv_ahead(const trk_vv_t *a, const trk_vv_t *b);

/* ---- the handlers (trk_http_api.c, trk_http_prom.c) -------------------- */
void trk_http_get_healthz(void *arg, const char *path, ts_http_resp_t *r);
void trk_http_get_status(void *arg, const char *path, ts_http_resp_t *r);
void trk_http_get_cluster(void *arg, const char *path, ts_http_resp_t *r);
void trk_http_get_metrics(void *arg, const char *path, ts_http_resp_t *r);
/* The server's own counters, for /metrics (NULL before it runs). */
const ts_http_stats_t *trk_http_server_stats(void);

#endif
