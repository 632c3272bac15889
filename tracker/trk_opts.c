/*
 * trk_opts.c -- the tracker's command line: defaults, options, usage.
 *
 * Purpose: fill the trk_config_t from ts_config.h's defaults and the
 * options, check each value against its range (numeric options are a
 * table: name, range, field), and tell main which mode was asked for
 * (run, --status, --init-pki).  A bad option exits 2 with a message and
 * the usage line; --help and --version exit 0.
 *
 * Locking: none (the supervisor, before anything is forked).
 *
 * Crash behaviour: nothing kept.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_config.h"
#include "ts_log.h"
#include "ts_sup.h"
#include "trk_http_opt.h"
#include "trk_opts.h"
#include "trk_quota.h"

#define OPT_USAGE   0x1051      /* --usage (no short option) */
#define OPT_LOG_FILE 0x1052     /* --log-file (no short option) */
#define OPT_BACKUP   0x1053     /* --backup FILE */
#define OPT_RESTORE  0x1054     /* --restore FILE */
#define OPT_ADMIN    0x1055     /* --admin NAME, --make-admin-cert NAME */
#define OPT_MKADMIN  0x1056
#define OPT_JSON     0x1057     /* --admin: --json, --limit N, --cursor C */
#define OPT_LIMIT    0x1058
#define OPT_CURSOR   0x1059
#define USAGE_FMT   "usage: %s [options] tracker_info.txt <id> (try --help)\n"
#define USAGE_LINE  USAGE_FMT, opts_prog

/* the name we were run as (basename of argv[0]: "tessera-tracker" when
 * installed, "tracker" in the build tree), for usage and errors */
static const char  *opts_prog = "tracker";

static const struct option opts_long[] = {
    { "data-dir",        required_argument, NULL, 'd' },
    { "workers",         required_argument, NULL, 'w' },
    { "kdf-iterations",  required_argument, NULL, 'k' },
    { "session-timeout", required_argument, NULL, 't' },
    { "fsync",           required_argument, NULL, 'f' },
    { "group-commit",    required_argument, NULL, 'G' },
    { "log-level",       required_argument, NULL, 'l' },
    { "status",          no_argument,       NULL, 'S' },
    { "pki",             required_argument, NULL, 'P' },
    { "init-pki",        no_argument,       NULL, 'I' },
    { "ticket-ttl",      required_argument, NULL, 'T' },
    { "handshake-ms",    required_argument, NULL, 'H' },
    { "frame-timeout",   required_argument, NULL, 'F' },
    { "max-conns",       required_argument, NULL, 'C' },
    { "max-conns-per-addr", required_argument, NULL, 'A' },
    { "max-unauth",      required_argument, NULL, 'U' },
    { "login-fails-user", required_argument, NULL, 'u' },
    { "login-fails-addr", required_argument, NULL, 'a' },
    { "login-timeout",   required_argument, NULL, 'L' },
    { "kdf-per-addr",    required_argument, NULL, 'K' },
    { "create-user-per-addr", required_argument, NULL, 'c' },
    { "worker-out-max",  required_argument, NULL, 'O' },
    { "quota",           required_argument, NULL, 'Q' },
    { "usage",           required_argument, NULL, OPT_USAGE },
    { "log-file",        required_argument, NULL, OPT_LOG_FILE },
    { "backup",          required_argument, NULL, OPT_BACKUP },
    { "restore",         required_argument, NULL, OPT_RESTORE },
    { "admin",           required_argument, NULL, OPT_ADMIN },
    { "make-admin-cert", required_argument, NULL, OPT_MKADMIN },
    { "json",            no_argument,       NULL, OPT_JSON },
    { "limit",           required_argument, NULL, OPT_LIMIT },
    { "cursor",          required_argument, NULL, OPT_CURSOR },
    /* admission (long options only) */
    { "worker-in-max",   required_argument, NULL, 1101 },
    { "conn-in-max",     required_argument, NULL, 1102 },
    { "max-conns-per-user", required_argument, NULL, 1103 },
    { "max-unauth-per-addr", required_argument, NULL, 1104 },
    { "tdb-hash-size",   required_argument, NULL, 'Z' },
    { "gc-ms",           required_argument, NULL, 1201 },
    { "sync-snap-batch", required_argument, NULL, 1202 },
    { "http",            required_argument, NULL, TRK_OPT_HTTP },
    { "no-http",         no_argument,       NULL, TRK_OPT_NO_HTTP },
    { "help",            no_argument,       NULL, 'h' },
    { "version",         no_argument,       NULL, 'V' },
    { NULL, 0, NULL, 0 }
};

/* A numeric option: its range and the trk_config_t field it sets. */
enum { NUM_INT, NUM_U32, NUM_I64, NUM_U64 };

typedef struct {
    int          opt;               /* getopt_long's value */
    const char  *what;              /* "bad --workers" */
    const char  *range;             /* " (1..64)" */
    long long    min, max;
    size_t       off;               /* offsetof(trk_config_t, field) */
    int          type;              /* NUM_* */
} num_opt_t;

#define CFG(f)  offsetof(trk_config_t, f)

static const num_opt_t num_opts[] = {
    { 'w', "bad --workers", " (1..64)", 1, TS_SUP_WORKERS_MAX_N,
      CFG(workers), NUM_INT },
    { 'k', "bad --kdf-iterations", "", 1, 100000000,
      CFG(kdf_iterations), NUM_U32 },
    { 't', "bad --session-timeout", " (100..86400000 ms)", 100, 86400000,
      CFG(session_timeout_ms), NUM_I64 },
    { 'T', "bad --ticket-ttl", " (1000..86400000 ms)", 1000, 86400000,
      CFG(ticket_ttl_ms), NUM_I64 },
    { 'H', "bad --handshake-ms", " (50..3600000 ms)", 50, 3600000,
      CFG(handshake_ms), NUM_I64 },
    { 'F', "bad --frame-timeout", " (50..3600000 ms)", 50, 3600000,
      CFG(frame_ms), NUM_I64 },
    { 'C', "bad connection cap", " (1..1000000)", 1, 1000000,
      CFG(conns_max), NUM_U32 },
    { 'A', "bad connection cap", " (1..1000000)", 1, 1000000,
      CFG(conns_addr), NUM_U32 },
    { 'U', "bad connection cap", " (1..1000000)", 1, 1000000,
      CFG(unauth_max), NUM_U32 },
    { 'u', "bad login failure limit", " (0..1000000)", 0, 1000000,
      CFG(login_fails_user), NUM_U32 },
    { 'a', "bad login failure limit", " (0..1000000)", 0, 1000000,
      CFG(login_fails_addr), NUM_U32 },
    { 'L', "bad --login-timeout", " (50..3600000 ms)", 50, 3600000,
      CFG(login_ms), NUM_I64 },
    { 'K', "bad --kdf-per-addr", " (0..1000000)", 0, 1000000,
      CFG(kdf_per_addr), NUM_U32 },
    { 'c', "bad --create-user-per-addr", " (0..1000000)", 0, 1000000,
      CFG(create_per_addr), NUM_U32 },
    { 'O', "bad --worker-out-max", " (65536..2^40 bytes)", 1 << 16,
      1LL << 40, CFG(worker_out_max), NUM_U64 },
    { 1101, "bad --worker-in-max", " (4194320..2^40 bytes)",
      TS_FRAME_MAX_B + TS_FRAME_HDR_B, 1LL << 40, CFG(worker_in_max),
      NUM_U64 },
    { 1102, "bad --conn-in-max", " (16400..4194320 bytes)",
      TS_TRK_IN_FREE_B + TS_FRAME_HDR_B, TS_FRAME_MAX_B + TS_FRAME_HDR_B,
      CFG(conn_in_max), NUM_U32 },
    { 1103, "bad --max-conns-per-user", " (0..1000000)", 0, 1000000,
      CFG(conns_user), NUM_U32 },
    { 1104, "bad --max-unauth-per-addr", " (1..1000000)", 1, 1000000,
      CFG(unauth_addr), NUM_U32 },
    { 'Z', "bad --tdb-hash-size", " (1..16777213 chains)", 1, 16777213,
      CFG(tdb_hash_n), NUM_INT },
    { 1201, "bad --gc-ms", " (0..86400000 ms)", 0, 86400000, CFG(gc_ms),
      NUM_I64 },
    { 1202, "bad --sync-snap-batch", " (1..65536 records)", 1, 65536,
      CFG(snap_batch_n), NUM_U32 },
};


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: %s [options] tracker_info.txt <id>\n"
        "       %s [--pki DIR] --init-pki tracker_info.txt\n"
        "       %s [--pki DIR] --status tracker_info.txt <id>\n"
        "       %s [-d DIR] --backup FILE tracker_info.txt <id>\n"
        "       %s [-d DIR] --restore FILE tracker_info.txt <id>\n"
        "      --backup FILE           write a consistent copy of the "
        "tracker.tdb of\n"
        "                              tracker <id> (running or not) to "
        "FILE\n"
        "      --restore FILE          make FILE (a --backup) the tracker.tdb "
        "of a new\n"
        "                              data directory; the tracker then "
        "converges\n"
        "  operators (docs/OPERATIONS.md):\n"
        "      --make-admin-cert NAME  with tracker_info.txt only: write "
        "<pki>/admin-NAME.crt\n"
        "                              and .key, signed by <pki>/ca.key\n"
        "      --admin NAME            with tracker_info.txt <id> COMMAND: "
        "list or act over TLS\n                              with "
        "<pki>/admin-NAME.crt; COMMAND: users, groups,\n                    "
        "          sessions, files GROUP, disable-user USER, enable-user\n"
        "                              USER, remove-file GROUP FILE\n"
        "      --limit N               --admin: entries to print "
        "(default 100)\n"
        "      --cursor NAME           --admin: start after NAME (from "
        "the last page)\n"
        "      --json                  --admin: one JSON object\n"
        "  -d, --data-dir DIR          state directory "
        "(default ./tsr-tracker-<id>)\n"
        "  -w, --workers N             request workers (default %d)\n"
        "      --kdf-iterations N      PBKDF2 iterations for new passwords "
        "(default %d)\n"
        "      --session-timeout MS    session ends without a heartbeat "
        "(default %d)\n"
        "      --fsync on|off          sync tdb commits (default on)\n"
        "      --group-commit on|off   the writes of one event-loop turn "
        "share one\n"
        "                              commit and fsync (default on)\n"
        "      --status                print STATUS of tracker <id> and "
        "exit (shows\n"
        "                              <pki>/tracker-<id>.crt: run it on "
        "that tracker's\n"
        "                              machine)\n"
        "  security (TLS 1.3 on every link):\n"
        "      --pki DIR               CA and tracker certificates "
        "(default <dir of\n"
        "                              tracker_info.txt>/pki); ca.crt/.key "
        "and this\n"
        "                              tracker's tracker-<id>.crt/.key are "
        "created\n"
        "                              there when missing (the latter needs "
        "ca.key)\n"
        "      --init-pki              create the CA and every tracker's "
        "certificate\n"
        "                              for tracker_info.txt, then exit (copy "
        "ca.crt +\n"
        "                              tracker-N.* to tracker N, ca.crt to "
        "clients,\n"
        "                              keep ca.key offline)\n"
        "      --ticket-ttl MS         lifetime of download tickets "
        "(default %d)\n"
        "      --handshake-ms MS       a TLS handshake must finish "
        "(default %d)\n"
        "      --frame-timeout MS      a request frame begun must finish "
        "(default %d)\n"
        "      --max-conns N           connections in all (default %d)\n"
        "      --max-conns-per-addr N  connections from one address "
        "(default %d)\n"
        "      --max-unauth N          connections not logged in "
        "(default %d)\n"
        "      --login-fails-user N    failed logins for a user from one "
        "address before\n"
        "                              that address is refused for it "
        "(default %d;\n"
        "                              0 = never refuse); a node that "
        "logged in to the\n"
        "                              user before is counted apart\n"
        "      --login-fails-addr N    failed logins from an address "
        "before refusals\n"
        "                              (default %d; 0 = never refuse); "
        "refusals last\n"
        "                              %d ms, doubling per failure up to "
        "%d ms; a\n"
        "                              counter is forgotten after %d ms "
        "without failures\n"
        "      --login-timeout MS      a connection that has not logged in "
        "by then is\n"
        "                              closed (default %d)\n"
        "      --kdf-per-addr N        password checks (login, create_user) "
        "in progress\n"
        "                              from one address (default %d; 0 = "
        "no cap)\n"
        "      --create-user-per-addr N  create_users from one address "
        "before refusals\n"
        "                              (default %d; 0 = no cap); refusals "
        "double like\n"
        "                              login refusals\n"
        "      --worker-out-max BYTES  replies queued in one worker before "
        "connections\n"
        "                              with queued replies are not read "
        "(default %u)\n"
        "      --worker-in-max BYTES   unfinished request frames over %u "
        "bytes held\n"
        "                              in one worker; a frame that does not "
        "fit waits\n"
        "                              unread (default %u)\n"
        "      --conn-in-max BYTES     largest request frame of one "
        "connection\n"
        "                              (default %u)\n"
        "      --max-conns-per-user N  connections of one user (default %d; "
        "0 = no cap)\n"
        "      --max-unauth-per-addr N connections not logged in from one "
        "address\n"
        "                              (default %d); at a cap on links not "
        "logged in\n"
        "                              the oldest idle one is closed for a "
        "new one\n",
        opts_prog, opts_prog, opts_prog, opts_prog, opts_prog,
        TS_TRK_WORKERS_N, TS_KDF_ITERATIONS_N, TS_SESSION_TIMEOUT_MS,
        TS_TICKET_TTL_MS, TS_TLS_HANDSHAKE_MS, TS_TRK_FRAME_TIMEOUT_MS,
        TS_TRK_CONNS_MAX_N, TS_TRK_CONNS_ADDR_N, TS_TRK_UNAUTH_MAX_N,
        TS_LOGIN_FAILS_USER_N, TS_LOGIN_FAILS_ADDR_N, TS_LOGIN_DELAY_MIN_MS,
        TS_LOGIN_DELAY_MAX_MS, TS_LOGIN_WINDOW_MS, TS_TRK_LOGIN_MS,
        TS_TRK_KDF_ADDR_N, TS_TRK_CREATE_ADDR_N, TS_TRK_WORKER_OUT_MAX_B,
        TS_TRK_IN_FREE_B, TS_TRK_WORKER_IN_MAX_B, TS_TRK_CONN_IN_MAX_B,
        TS_TRK_CONNS_USER_N, TS_TRK_UNAUTH_ADDR_N);
    trk_quota_usage_text(f);
    fprintf(f,
        "  database:\n"
        "      --tdb-hash-size N       hash chains of a NEW tracker.tdb "
        "(default %d;\n"
        "                              an existing file keeps its own)\n"
        "      --gc-ms MS              tombstone collection period "
        "(default %d; 0 = off)\n",
        TS_TRK_TDB_HASH_N, TS_TRK_GC_MS);
    fprintf(f,
        "  replication:\n"
        "      --sync-snap-batch N     records per snapshot batch sent to a "
        "new peer\n"
        "                              (default %d)\n", TS_SYNC_SNAP_BATCH_N);
    fprintf(f,
        "  -l, --log-level LEVEL       error|warn|info|debug\n"
        "      --log-file FILE         append the log to FILE, not stderr; "
        "SIGHUP\n"
        "                              reopens it (logrotate)\n"
        "  -h, --help                  this text\n"
        "  -V, --version               print the version\n");
}


void
trk_opts_bad_usage(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", opts_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    fprintf(stderr, USAGE_LINE);
    exit(2);
}


/* Parses a decimal in [min, max]; -1 on error. */
static long long
parse_num(const char *s, long long min, long long max)
{
    char      *end;
    long long  v;

    if (s == NULL || *s == '\0') {
        return -1;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return -1;
    }
    return v;
}


static void
opts_defaults(trk_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->workers = TS_TRK_WORKERS_N;
    cfg->kdf_iterations = TS_KDF_ITERATIONS_N;
    cfg->session_timeout_ms = TS_SESSION_TIMEOUT_MS;
    cfg->listen_fd = -1;
    cfg->http_fd = -1;
    cfg->ticket_ttl_ms = TS_TICKET_TTL_MS;
    cfg->handshake_ms = TS_TLS_HANDSHAKE_MS;
    cfg->gc_ms = TS_TRK_GC_MS;
    cfg->snap_batch_n = TS_SYNC_SNAP_BATCH_N;
    cfg->frame_ms = TS_TRK_FRAME_TIMEOUT_MS;
    cfg->conns_max = TS_TRK_CONNS_MAX_N;
    cfg->conns_addr = TS_TRK_CONNS_ADDR_N;
    cfg->unauth_max = TS_TRK_UNAUTH_MAX_N;
    cfg->login_fails_user = TS_LOGIN_FAILS_USER_N;
    cfg->login_fails_addr = TS_LOGIN_FAILS_ADDR_N;
    cfg->login_ms = TS_TRK_LOGIN_MS;
    cfg->worker_out_max = TS_TRK_WORKER_OUT_MAX_B;
    cfg->kdf_per_addr = TS_TRK_KDF_ADDR_N;
    cfg->create_per_addr = TS_TRK_CREATE_ADDR_N;
    cfg->conns_per_worker = TS_TRK_CONNS_PER_WORKER_N;
    cfg->worker_in_max = TS_TRK_WORKER_IN_MAX_B;
    cfg->conn_in_max = TS_TRK_CONN_IN_MAX_B;
    cfg->conns_user = TS_TRK_CONNS_USER_N;
    cfg->unauth_addr = TS_TRK_UNAUTH_ADDR_N;
    cfg->tdb_hash_n = TS_TRK_TDB_HASH_N;
}


/* A numeric option: 1 if opt is one (the value set, or exit 2). */
static int
opts_num(int opt, const char *arg, trk_config_t *cfg)
{
    const num_opt_t *n;
    long long        v;
    char            *f;
    size_t           i;

    for (i = 0; i < sizeof(num_opts) / sizeof(num_opts[0]); i++) {
        n = &num_opts[i];
        if (n->opt != opt) {
            continue;
        }
        v = parse_num(arg, n->min, n->max);
        if (v < 0) {
            trk_opts_bad_usage("%s '%s'%s", n->what, arg, n->range);
        }
        f = (char *) cfg + n->off;
        switch (n->type) {
        case NUM_INT:
            *(int *) (void *) f = (int) v;
            break;
        case NUM_U32:
            *(uint32_t *) (void *) f = (uint32_t) v;
            break;
        case NUM_I64:
            *(int64_t *) (void *) f = (int64_t) v;
            break;
        default:
            *(uint64_t *) (void *) f = (uint64_t) v;
            break;
        }
        return 1;
    }
    return 0;
}


static void
opts_log_level(const char *arg)
{
    static const struct { const char *name; int level; } levels[] = {
        { "error", TS_LOG_ERROR }, { "warn", TS_LOG_WARN },
        { "info", TS_LOG_INFO }, { "debug", TS_LOG_DEBUG },
    };
    size_t i;

    for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (strcmp(arg, levels[i].name) == 0) {
            ts_log_set_level(levels[i].level);
            return;
        }
    }
    trk_opts_bad_usage("bad --log-level '%s'", arg);
}


/* <dirname of info>/pki, unless --pki gave one. */
static int
pki_dir_of(const char *info, const char *opt, char *out, size_t outsz)
{
    char tmp[PATH_MAX];
    int  n;

    if (opt != NULL) {
        n = snprintf(out, outsz, "%s", opt);
    } else {
        snprintf(tmp, sizeof(tmp), "%s", info);
        n = snprintf(out, outsz, "%s/pki", dirname(tmp));
    }
    return n < 0 || (size_t) n >= outsz ? -1 : 0;
}


int
trk_opts_pki_paths(trk_config_t *cfg)
{
    if (strlen(cfg->pki_dir) + 32 >= sizeof(cfg->ca_path)) {
        return -1;
    }
    /* (the length was checked above; the precision tells gcc) */
    snprintf(cfg->ca_path, sizeof(cfg->ca_path), "%.*s/ca.crt",
             (int) (sizeof(cfg->ca_path) - 32), cfg->pki_dir);
    snprintf(cfg->crt_path, sizeof(cfg->crt_path), "%.*s/tracker-%d.crt",
             (int) (sizeof(cfg->crt_path) - 32), cfg->pki_dir, cfg->id);
    snprintf(cfg->key_path, sizeof(cfg->key_path), "%.*s/tracker-%d.key",
             (int) (sizeof(cfg->key_path) - 32), cfg->pki_dir, cfg->id);
    return 0;
}


/* The command modes (backup, restore, admin) and the admin options: 1 if
 * opt is one of them (done, or exit 2), else 0. */
static int
opts_cmd_mode(int opt, const char *arg, trk_opts_t *o)
{
    static const struct { int opt, mode; } modes[] = {
        { OPT_BACKUP, TRK_MODE_BACKUP }, { OPT_RESTORE, TRK_MODE_RESTORE },
        { OPT_ADMIN, TRK_MODE_ADMIN }, { OPT_MKADMIN, TRK_MODE_MKADMIN },
    };
    long long v;
    size_t    i;

    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (modes[i].opt != opt) {
            continue;
        }
        if (o->mode != TRK_MODE_RUN) {
            trk_opts_bad_usage("one of --backup, --restore, --admin, "
                               "--make-admin-cert at a time");
        }
        o->mode = modes[i].mode;
        *(opt == OPT_BACKUP || opt == OPT_RESTORE ? &o->backup_path
                                                  : &o->admin_name) = arg;
        return 1;
    }
    switch (opt) {
    case OPT_JSON:
        o->admin_json = 1;
        return 1;
    case OPT_LIMIT:
        v = parse_num(arg, 1, 1000000);
        if (v < 0) {
            trk_opts_bad_usage("bad --limit '%s' (1..1000000)", arg);
        }
        o->admin_limit = (uint32_t) v;
        return 1;
    case OPT_CURSOR:
        o->admin_cursor = arg;
        return 1;
    }
    return 0;
}


/* The options proper.  -1: go on; else the exit code. */
static int
opts_getopt(int argc, char **argv, trk_config_t *cfg, trk_opts_t *o,
            const char **pki_opt)
{
    int opt, status_mode = 0, init_mode = 0;
    char err[160];

    while ((opt = getopt_long(argc, argv, "d:w:l:hV", opts_long, NULL))
           != -1)
    {
        if (opts_num(opt, optarg, cfg) || opts_cmd_mode(opt, optarg, o)
            || trk_http_option(opt, optarg))
        {
            continue;
        }
        switch (opt) {
        case 'd':
            o->data_dir = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "on") == 0) {
                cfg->nosync = 0;
            } else if (strcmp(optarg, "off") == 0) {
                cfg->nosync = 1;
            } else {
                trk_opts_bad_usage("bad --fsync '%s' (on|off)", optarg);
            }
            break;
        case 'G':
            if (strcmp(optarg, "on") == 0) {
                cfg->no_group_commit = 0;
            } else if (strcmp(optarg, "off") == 0) {
                cfg->no_group_commit = 1;
            } else {
                trk_opts_bad_usage("bad --group-commit '%s' (on|off)",
                                   optarg);
            }
            break;
        case 'l':
            opts_log_level(optarg);
            break;
        case 'S':
            status_mode = 1;
            break;
        case 'P':
            *pki_opt = optarg;
            break;
        case 'I':
            init_mode = 1;
            break;
        case 'Q':
            if (trk_quota_option(optarg, err, sizeof(err)) != 0) {
                trk_opts_bad_usage("%s", err);
            }
            break;
        case OPT_USAGE:
            o->usage_name = optarg;
            break;
        case OPT_LOG_FILE:
            o->log_file = optarg;
            break;
        case 'h':
            usage(stdout);
            trk_http_usage_text(stdout);
            return 0;
        case 'V':
            printf("tessera tracker %s\n", TS_VERSION_STRING);
            return 0;
        default:
            fprintf(stderr, USAGE_LINE);
            return 2;
        }
    }
    if (init_mode && status_mode) {
        fprintf(stderr, "usage: %s [--pki DIR] --init-pki "
                "tracker_info.txt (try --help)\n", opts_prog);
        return 2;
    }
    o->mode = init_mode ? TRK_MODE_INIT_PKI
              : status_mode ? TRK_MODE_STATUS
              : o->usage_name != NULL ? TRK_MODE_USAGE
              : o->backup_path != NULL || o->admin_name != NULL ? o->mode
              : TRK_MODE_RUN;
    return -1;
}


int
trk_opts_parse(int argc, char **argv, trk_config_t *cfg, trk_opts_t *o)
{
    const char *pki_opt = NULL;
    long long   v;
    int         rc, nargs;

    opts_defaults(cfg);
    memset(o, 0, sizeof(*o));
    if (argc > 0 && argv[0] != NULL && strrchr(argv[0], '/') != NULL) {
        opts_prog = strrchr(argv[0], '/') + 1;
    } else if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0') {
        opts_prog = argv[0];
    }
    rc = opts_getopt(argc, argv, cfg, o, &pki_opt);
    if (rc >= 0) {
        return rc;
    }
    nargs = o->mode == TRK_MODE_INIT_PKI || o->mode == TRK_MODE_MKADMIN ? 1
            : 2;
    if (o->mode == TRK_MODE_ADMIN && argc - optind > nargs) {
        o->admin_args = argv + optind + nargs;      /* COMMAND [ARG] */
        o->admin_nargs = argc - optind - nargs;
        argc = optind + nargs;
    }
    if (argc - optind != nargs) {
        if (o->mode == TRK_MODE_INIT_PKI) {
            fprintf(stderr, "usage: %s [--pki DIR] --init-pki "
                    "tracker_info.txt (try --help)\n", opts_prog);
        } else {
            fprintf(stderr, USAGE_LINE);
        }
        return 2;
    }
    o->info_path = argv[optind];
    if (pki_dir_of(o->info_path, pki_opt, cfg->pki_dir,
                   sizeof(cfg->pki_dir)) != 0)
    {
        trk_opts_bad_usage("PKI directory path too long");
    }
    if (o->mode == TRK_MODE_INIT_PKI || o->mode == TRK_MODE_MKADMIN) {
        return -1;
    }
    v = parse_num(argv[optind + 1], 1, TS_TRACKERS_MAX_N);
    if (v < 0) {
        trk_opts_bad_usage("bad tracker id '%s' (a 1-based line number)",
                           argv[optind + 1]);
    }
    cfg->id = (int) v;
    if ((o->mode == TRK_MODE_STATUS || o->mode == TRK_MODE_ADMIN)
        && trk_opts_pki_paths(cfg) != 0)
    {
        trk_opts_bad_usage("PKI directory path too long");
    }
    return -1;
}
