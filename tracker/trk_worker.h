/*
 * trk_worker.h -- a tracker request worker (role "trk-worker") and the
 * configuration the supervisor hands to it.
 *
 * The supervisor fills one trk_config_t before forking (listen socket and
 * shm mapping included); every worker inherits it read-only.
 */
#ifndef TRK_WORKER_H_INCLUDED
#define TRK_WORKER_H_INCLUDED

#include <limits.h>
#include <stdint.h>
#include "ts_sup.h"
#include "trk_shm.h"
#include "ts_trackers.h"

#define TRK_ROLE_WORKER     1
#define TRK_ROLE_SYNC       2

typedef struct {
    int        id;                  /* 1-based tracker id */
    char       ip[64];
    uint16_t   port;
    char       data_dir[PATH_MAX];
    char       db_path[PATH_MAX];
    int        workers;
    uint32_t   kdf_iterations;
    int64_t    session_timeout_ms;
    int        nosync;
    int        listen_fd;
    trk_shm_t  shm;
    ts_trackers_t trackers;         /* K1: every tracker, for trk-sync */
    /* issue 5: identities (PEM files under --pki) */
    char       pki_dir[PATH_MAX];
    char       ca_path[PATH_MAX];   /* <pki>/ca.crt */
    char       crt_path[PATH_MAX];  /* <pki>/tracker-<id>.crt */
    char       key_path[PATH_MAX];  /* <pki>/tracker-<id>.key */
    int64_t    ticket_ttl_ms;       /* --ticket-ttl */
    /* issue 5: deadlines and caps (options; defaults in ts_config.h) */
    int64_t    handshake_ms;        /* --handshake-ms */
    int64_t    frame_ms;            /* --frame-timeout */
    uint32_t   conns_max;           /* --max-conns */
    uint32_t   conns_addr;          /* --max-conns-per-addr */
    uint32_t   unauth_max;          /* --max-unauth */
    uint32_t   login_fails_user;    /* --login-fails-user (0 = off) */
    uint32_t   login_fails_addr;    /* --login-fails-addr (0 = off) */
    /* the tracker review: more deadlines and caps */
    int64_t    login_ms;            /* --login-timeout */
    uint64_t   worker_out_max;      /* --worker-out-max (bytes) */
    uint32_t   kdf_per_addr;        /* --kdf-per-addr (0 = off) */
    uint32_t   create_per_addr;     /* --create-user-per-addr (0 = off) */
    uint32_t   conns_per_worker;    /* TS_TRK_CONNS_PER_WORKER_N, less if
                                       the open files limit is lower */
} trk_config_t;

/* ts_sup role main; ctx->arg is the trk_config_t. */
int trk_worker_main(const ts_worker_ctx_t *ctx);

#endif
