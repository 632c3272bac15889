/*
 * trk_opts.h -- the tracker's configuration (trk_config_t) and its
 * command line.
 *
 * The supervisor fills one trk_config_t from the options (trk_opts_parse)
 * and at start-up (trk_start.c: listen socket, shm mapping, trackers)
 * before forking; every worker and the sync process inherit it
 * read-only.
 */
#ifndef TRK_OPTS_H_INCLUDED
#define TRK_OPTS_H_INCLUDED

#include <limits.h>
#include <stdint.h>
#include "trk_shm.h"
#include "ts_trackers.h"

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
    int        no_group_commit;     /* --group-commit off */
    int        listen_fd;
    trk_shm_t  shm;
    ts_trackers_t trackers;         /* every tracker, for trk-sync */
    /* identities (PEM files under --pki) */
    char       pki_dir[PATH_MAX];
    char       ca_path[PATH_MAX];   /* <pki>/ca.crt */
    char       crt_path[PATH_MAX];  /* <pki>/tracker-<id>.crt */
    char       key_path[PATH_MAX];  /* <pki>/tracker-<id>.key */
    int64_t    ticket_ttl_ms;       /* --ticket-ttl */
    /* deadlines and caps (options; defaults in ts_config.h) */
    int64_t    handshake_ms;        /* --handshake-ms */
    int64_t    frame_ms;            /* --frame-timeout */
    uint32_t   conns_max;           /* --max-conns */
    uint32_t   conns_addr;          /* --max-conns-per-addr */
    uint32_t   unauth_max;          /* --max-unauth */
    uint32_t   login_fails_user;    /* --login-fails-user (0 = off) */
    uint32_t   login_fails_addr;    /* --login-fails-addr (0 = off) */
    int64_t    login_ms;            /* --login-timeout */
    uint64_t   worker_out_max;      /* --worker-out-max (bytes) */
    uint32_t   kdf_per_addr;        /* --kdf-per-addr (0 = off) */
    uint32_t   create_per_addr;     /* --create-user-per-addr (0 = off) */
    uint32_t   conns_per_worker;    /* TS_TRK_CONNS_PER_WORKER_N, less if
                                       the open files limit is lower */
    /* admission: input budget and connection caps */
    uint64_t   worker_in_max;       /* --worker-in-max (bytes) */
    uint32_t   conn_in_max;         /* --conn-in-max (bytes) */
    uint32_t   conns_user;          /* --max-conns-per-user (0 = off) */
    uint32_t   unauth_addr;         /* --max-unauth-per-addr */
    int        tdb_hash_n;          /* --tdb-hash-size: hash chains of a
                                       new tracker.tdb */
    int64_t    gc_ms;               /* --gc-ms: tombstone collection
                                       period (0 = off) */
    uint32_t   snap_batch_n;        /* --sync-snap-batch: records per
                                       snapshot batch sent */
    /* the HTTP endpoint (trk_http_setup.c) */
    int        http_fd;             /* bound by the supervisor; -1 = off */
    char       http_ip[64];
    uint16_t   http_port;
    char      *http_crt_pem;        /* HTTPS (non-loopback): this tracker's
                                       certificate and key; NULL = HTTP */
    char      *http_key_pem;
    char       http_key_path[PATH_MAX];     /* <data>/http-api.key */
    char       http_api_key[2 * TS_HTTP_KEY_B + 1];
} trk_config_t;

/* What the command line asks for. */
enum {
    TRK_MODE_RUN      = 0,          /* tracker [options] info <id> */
    TRK_MODE_STATUS   = 1,          /* --status info <id> */
    TRK_MODE_INIT_PKI = 2,          /* --init-pki info */
    TRK_MODE_USAGE    = 3,          /* --usage NAME info <id> */
    TRK_MODE_BACKUP   = 4,          /* --backup FILE info <id> */
    TRK_MODE_RESTORE  = 5,          /* --restore FILE info <id> */
    TRK_MODE_ADMIN    = 6,          /* --admin NAME info <id> CMD [ARG] */
    TRK_MODE_MKADMIN  = 7           /* --make-admin-cert NAME info */
};

typedef struct {
    int          mode;              /* TRK_MODE_* */
    const char  *info_path;         /* tracker_info.txt */
    const char  *data_dir;          /* --data-dir, NULL = default */
    const char  *usage_name;        /* --usage NAME */
    const char  *log_file;          /* --log-file FILE, NULL = stderr */
    const char  *backup_path;       /* --backup / --restore FILE */
    const char  *admin_name;        /* --admin / --make-admin-cert NAME */
    int          admin_json;        /* --json */
    uint32_t     admin_limit;       /* --limit (entries) */
    const char  *admin_cursor;      /* --cursor ("" = start) */
    char       **admin_args;        /* the command after info and id */
    int          admin_nargs;
} trk_opts_t;

/* Parses argv into cfg (defaults from ts_config.h first) and o: the
 * tracker id and cfg->pki_dir are set for every mode, the PKI file
 * paths for TRK_MODE_STATUS.  -1: go on; else the exit code (help,
 * version, or a usage error already printed). */
int  trk_opts_parse(int argc, char **argv, trk_config_t *cfg, trk_opts_t *o);
/* Fills cfg->ca_path, crt_path and key_path from pki_dir and id.  0, or
 * -1 if pki_dir is too long for them. */
int  trk_opts_pki_paths(trk_config_t *cfg);
/* Exits 2 after printing "tracker: <message>" and the usage line. */
void trk_opts_bad_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
