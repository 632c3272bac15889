/*
 * trk_main.c -- ./tracker: options, start-up checks, and the supervisor.
 *
 * Purpose: parse the command line, raise the open files limit to its
 * hard limit (and clamp the connection caps to what it allows), find
 * this tracker's address in tracker_info.txt, make sure the data
 * directory and tracker.tdb are
 * usable and that the PKI is in place (cluster CA and this tracker's
 * certificate under --pki, created when missing and possible; the TLS
 * context and the ticket key are loaded once here) -- so a bad setup
 * fails here, with a clear message, instead of in a crash-looping worker
 * -- open the listen socket that every worker inherits, create the shm
 * segment /tessera-trk-<port>, and run the supervisor with N "trk-worker"
 * processes.  Typing "quit" on stdin stops the tracker; end of stdin does
 * not.  `--init-pki tracker_info.txt` only creates the CA and every
 * tracker's certificate, prints what it wrote, and exits.
 *
 * Locking: the supervisor never takes a shm lock.  It writes worker slots
 * at spawn and, after reaping, frees the slot and reclaims the dead
 * worker's claims with lock-free CAS (ts_claim).
 *
 * Crash behaviour: workers that die are respawned by ts_sup; their tdb
 * transactions roll back and their stripe locks are repaired by the next
 * locker.  If the supervisor dies, workers get SIGTERM (PDEATHSIG) and the
 * stale shm segment is detected and replaced at the next start.  A lock
 * found not recoverable sets reset_needed: the supervisor stops every
 * worker, shm_rebuild() makes a new segment the way main() does (epoch and
 * HLC from tracker.tdb; sessions reload from it) and starts them again.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_log.h"
#include "ts_net.h"
#include "ts_sup.h"
#include "ts_ticket.h"
#include "ts_tls.h"
#include "ts_trackers.h"
#include "trk_ops.h"
#include "trk_shm.h"
#include "trk_store.h"
#include "trk_worker.h"
#include "trk_oplog.h"
#include "trk_sync.h"


static trk_config_t  cfg;
static char          stdin_line[256];
static size_t        stdin_len;


static void
usage(FILE *f)
{
    fprintf(f,
        "usage: tracker [options] tracker_info.txt <id>\n"
        "       tracker [--pki DIR] --init-pki tracker_info.txt\n"
        "       tracker [--pki DIR] --status tracker_info.txt <id>\n"
        "  -d, --data-dir DIR          state directory "
        "(default ./tsr-tracker-<id>)\n"
        "  -w, --workers N             request workers (default %d)\n"
        "      --kdf-iterations N      PBKDF2 iterations for new passwords "
        "(default %d)\n"
        "      --session-timeout MS    session ends without a heartbeat "
        "(default %d)\n"
        "      --fsync on|off          sync tdb commits (default on)\n"
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
        "      --login-fails-user N    failed logins of a user before "
        "refusals\n"
        "                              (default %d; 0 = never refuse)\n"
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
        "  -l, --log-level LEVEL       error|warn|info|debug\n"
        "  -h, --help                  this text\n"
        "  -V, --version               print the version\n",
        TS_TRK_WORKERS_N, TS_KDF_ITERATIONS_N, TS_SESSION_TIMEOUT_MS,
        TS_TICKET_TTL_MS, TS_TLS_HANDSHAKE_MS, TS_TRK_FRAME_TIMEOUT_MS,
        TS_TRK_CONNS_MAX_N, TS_TRK_CONNS_ADDR_N, TS_TRK_UNAUTH_MAX_N,
        TS_LOGIN_FAILS_USER_N, TS_LOGIN_FAILS_ADDR_N, TS_LOGIN_DELAY_MIN_MS,
        TS_LOGIN_DELAY_MAX_MS, TS_LOGIN_WINDOW_MS, TS_TRK_LOGIN_MS,
        TS_TRK_KDF_ADDR_N, TS_TRK_CREATE_ADDR_N, TS_TRK_WORKER_OUT_MAX_B);
}


static void
bad_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
bad_usage(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "tracker: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: tracker [options] tracker_info.txt <id> "
            "(try --help)\n");
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


/* ---- supervisor hooks ----------------------------------------------- */

static int
on_watch(int fd, void *arg)
{
    ssize_t  n;
    char    *nl, *p, *e;

    (void) arg;
    n = read(fd, stdin_line + stdin_len, sizeof(stdin_line) - 1 - stdin_len);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            return 0;
        }
        ts_warn("read(stdin) failed: %s; no longer watching stdin",
                strerror(errno));
        return -1;
    }
    if (n == 0) {
        ts_debug("stdin closed; type-to-quit disabled");
        return -1;
    }
    stdin_len += (size_t) n;
    stdin_line[stdin_len] = '\0';
    while ((nl = strchr(stdin_line, '\n')) != NULL) {
        *nl = '\0';
        p = stdin_line;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        e = p + strlen(p);
        while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) {
            *--e = '\0';
        }
        if (strcmp(p, "quit") == 0) {
            ts_info("quit typed on stdin");
            return 1;
        }
        if (*p != '\0') {
            ts_warn("unknown console command '%.40s' (only quit)", p);
        }
        stdin_len -= (size_t) (nl + 1 - stdin_line);
        memmove(stdin_line, nl + 1, stdin_len + 1);
    }
    if (stdin_len == sizeof(stdin_line) - 1) {
        stdin_len = 0;      /* an absurd line: forget it */
    }
    return 0;
}


static void
on_spawn(int slot, pid_t pid, uint32_t gen, int role, void *arg)
{
    ts_slot_sh_t *s = &cfg.shm.slots[slot];
    ts_owner_t    o = ts_owner_make(pid, gen);

    (void) arg;
    if (role != 0) {
        return;                 /* K1: the sync process has no slot */
    }
    /* the child may have assigned itself already (it races with us) */
    if (atomic_load(&s->owner) != o) {
        ts_slot_assign(s, o, TRK_ROLE_WORKER);
    }
}


static void
on_exit_hook(int slot, pid_t pid, uint32_t gen, int role, int wstatus,
             void *arg)
{
    ts_owner_t o = ts_owner_make(pid, gen);

    (void) arg;
    (void) wstatus;
    if (role != 0) {
        atomic_store(&cfg.shm.stats->sync_pid, 0);
        return;
    }
    ts_slot_free(&cfg.shm.slots[slot], o);
    /* its connections died with it: so do their counts */
    trk_conns_reset(&cfg.shm, slot);
    if (ts_claim_reclaim(&cfg.shm.stats->hk_owner, 1, o) > 0) {
        ts_warn("worker %d died during housekeeping; claim released",
                (int) pid);
    }
}


static void
on_tick(void *arg)
{
    int i, active;

    (void) arg;
    if (atomic_load(&cfg.shm.stats->ready_logged)) {
        return;
    }
    active = 0;
    for (i = 0; i < TS_SUP_WORKERS_MAX_N; i++) {
        if (atomic_load(&cfg.shm.slots[i].state) == TS_SLOT_ACTIVE) {
            active++;
        }
    }
    if (active >= cfg.workers) {
        atomic_store(&cfg.shm.stats->ready_logged, 1);
        ts_info("tracker %d ready on %s:%u", cfg.id, cfg.ip,
                (unsigned) cfg.port);
    }
}


/* ---- segment: filled at start, rebuilt on reset_needed --------------- */

static void
shm_publish(int64_t start_wall_ms, uint64_t epoch, uint64_t hlc)
{
    atomic_store(&cfg.shm.stats->start_wall_ms, start_wall_ms);
    atomic_store(&cfg.shm.stats->sup_pid, (int32_t) getpid());
    atomic_store(&cfg.shm.stats->workers_n, (uint32_t) cfg.workers);
    atomic_store(&cfg.shm.stats->epoch, epoch);
    atomic_store(&cfg.shm.stats->hlc, hlc);
    atomic_store(&cfg.shm.stats->leader, cfg.id);
    atomic_store(&cfg.shm.stats->ntrackers, cfg.trackers.n);
}


static int
shm_reset_needed(void *arg)
{
    return ts_shm_reset_needed(&cfg.shm.shm);
}


/* Every worker is gone: a new segment made the way main() makes it, the
 * epoch and HLC read back from tracker.tdb (sessions reload from it). */
static int
shm_rebuild(void *arg)
{
    char          err[512];
    uint64_t      epoch, hlc, hlc_old = atomic_load(&cfg.shm.stats->hlc);
    int64_t       started = atomic_load(&cfg.shm.stats->start_wall_ms);
    trk_store_t  *st;

    st = trk_store_open(cfg.db_path, 0, cfg.nosync, err, sizeof(err));
    if (st == NULL) {
        ts_err("%s", err);
        return -1;
    }
    epoch = trk_epoch_get(st, 0);
    hlc = trk_hlc_saved(st);
    trk_store_close(st);
    ts_shm_detach(&cfg.shm.shm);
    if (epoch == 0 || trk_shm_create(&cfg.shm, cfg.port) != 0) {
        ts_err("cannot rebuild the shared memory segment");
        return -1;
    }
    shm_publish(started, epoch, hlc > hlc_old ? hlc : hlc_old);
    return 0;
}


/* ---- open files ----------------------------------------------------- */

/*
 * Raises the soft RLIMIT_NOFILE to the hard limit (the workers inherit
 * it) and clamps the connection caps to what it allows: each worker
 * keeps TS_TRK_FD_RESERVE_N descriptors for itself, the rest bounds its
 * connections.  Without this a worker runs into EMFILE in accept4()
 * long before --max-conns.  0, or -1 if the limit leaves no room.
 */
static int
setup_nofile(void)
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
    cfg.conns_per_worker = (uint32_t) per;
    ts_info("open files limit %llu (was %llu; hard limit %llu): up to "
            "%llu connections per worker", lim, before,
            rl.rlim_max == RLIM_INFINITY ? ~0ull
                                         : (unsigned long long) rl.rlim_max,
            per);
    if (cfg.conns_max > per * (unsigned long long) cfg.workers) {
        ts_warn("--max-conns %u clamped to %llu: %d workers x %llu "
                "connections the open files limit allows", cfg.conns_max,
                per * (unsigned long long) cfg.workers, cfg.workers, per);
        cfg.conns_max = (uint32_t) (per * (unsigned long long) cfg.workers);
    }
    if (cfg.conns_addr > cfg.conns_max) {
        cfg.conns_addr = cfg.conns_max;
    }
    if (cfg.unauth_max > cfg.conns_max) {
        cfg.unauth_max = cfg.conns_max;
    }
    return 0;
}


/* ---- PKI ------------------------------------------------------------ */

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


static int
exists(const char *p)
{
    return access(p, F_OK) == 0;
}


/* tracker --init-pki tracker_info.txt: CA + every tracker's certificate. */
static int
init_pki(const char *info, const char *dir)
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
setup_pki(void)
{
    ts_tls_t           *t;
    ts_ticket_signer_t *sg;
    char                err[512];
    int                 n;

    n = snprintf(cfg.ca_path, sizeof(cfg.ca_path), "%s/ca.crt",
                 cfg.pki_dir);
    n |= snprintf(cfg.crt_path, sizeof(cfg.crt_path), "%s/tracker-%d.crt",
                  cfg.pki_dir, cfg.id);
    n |= snprintf(cfg.key_path, sizeof(cfg.key_path), "%s/tracker-%d.key",
                  cfg.pki_dir, cfg.id);
    if (n < 0 || strlen(cfg.pki_dir) + 32 >= sizeof(cfg.ca_path)) {
        ts_err("PKI directory path too long: %s", cfg.pki_dir);
        return -1;
    }
    if (!exists(cfg.ca_path)) {
        ts_info("no cluster CA in %s: creating one", cfg.pki_dir);
    }
    if (ts_pki_ensure_ca(cfg.pki_dir, err, sizeof(err)) != 0) {
        ts_err("PKI: %s", err);
        return -1;
    }
    if (ts_pki_ensure_tracker(cfg.pki_dir, cfg.id, cfg.ip, err, sizeof(err))
        != 0)
    {
        ts_err("PKI: %s", err);
        return -1;
    }
    t = ts_tls_ctx_new(TS_TLS_TRACKER_SERVER, cfg.crt_path, cfg.key_path,
                       cfg.ca_path, err, sizeof(err));
    if (t == NULL) {
        ts_err("cannot load this tracker's certificate: %s", err);
        return -1;
    }
    ts_tls_ctx_free(t);
    sg = ts_ticket_signer_new((uint32_t) cfg.id, cfg.crt_path, cfg.key_path,
                              err, sizeof(err));
    if (sg == NULL) {
        ts_err("cannot load the ticket signing key: %s", err);
        return -1;
    }
    ts_ticket_signer_free(sg);
    return 0;
}


/* ---- main ----------------------------------------------------------- */

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "data-dir",        required_argument, NULL, 'd' },
        { "workers",         required_argument, NULL, 'w' },
        { "kdf-iterations",  required_argument, NULL, 'k' },
        { "session-timeout", required_argument, NULL, 't' },
        { "fsync",           required_argument, NULL, 'f' },
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
        { "help",            no_argument,       NULL, 'h' },
        { "version",         no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    ts_sup_role_t    roles[2];
    uint64_t         epoch, hlc0;
    int              status_mode = 0, init_mode = 0;
    const char      *pki_opt = NULL;
    ts_sup_config_t  sc;
    ts_trackers_t    trk;
    trk_store_t     *st;
    const char      *data_dir = NULL;
    char             err[512], shm_name[64];
    long long        v;
    int              opt, rc, stdin_ok;

    ts_log_set_role("supervisor");
    memset(&cfg, 0, sizeof(cfg));
    cfg.workers = TS_TRK_WORKERS_N;
    cfg.kdf_iterations = TS_KDF_ITERATIONS_N;
    cfg.session_timeout_ms = TS_SESSION_TIMEOUT_MS;
    cfg.listen_fd = -1;
    cfg.ticket_ttl_ms = TS_TICKET_TTL_MS;
    cfg.handshake_ms = TS_TLS_HANDSHAKE_MS;
    cfg.frame_ms = TS_TRK_FRAME_TIMEOUT_MS;
    cfg.conns_max = TS_TRK_CONNS_MAX_N;
    cfg.conns_addr = TS_TRK_CONNS_ADDR_N;
    cfg.unauth_max = TS_TRK_UNAUTH_MAX_N;
    cfg.login_fails_user = TS_LOGIN_FAILS_USER_N;
    cfg.login_fails_addr = TS_LOGIN_FAILS_ADDR_N;
    cfg.login_ms = TS_TRK_LOGIN_MS;
    cfg.worker_out_max = TS_TRK_WORKER_OUT_MAX_B;
    cfg.kdf_per_addr = TS_TRK_KDF_ADDR_N;
    cfg.create_per_addr = TS_TRK_CREATE_ADDR_N;
    cfg.conns_per_worker = TS_TRK_CONNS_PER_WORKER_N;

    while ((opt = getopt_long(argc, argv, "d:w:l:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            data_dir = optarg;
            break;
        case 'w':
            v = parse_num(optarg, 1, TS_SUP_WORKERS_MAX_N);
            if (v < 0) {
                bad_usage("bad --workers '%s' (1..64)", optarg);
            }
            cfg.workers = (int) v;
            break;
        case 'k':
            v = parse_num(optarg, 1, 100000000);
            if (v < 0) {
                bad_usage("bad --kdf-iterations '%s'", optarg);
            }
            cfg.kdf_iterations = (uint32_t) v;
            break;
        case 't':
            v = parse_num(optarg, 100, 86400000);
            if (v < 0) {
                bad_usage("bad --session-timeout '%s' (100..86400000 ms)",
                          optarg);
            }
            cfg.session_timeout_ms = v;
            break;
        case 'f':
            if (strcmp(optarg, "on") == 0) {
                cfg.nosync = 0;
            } else if (strcmp(optarg, "off") == 0) {
                cfg.nosync = 1;
            } else {
                bad_usage("bad --fsync '%s' (on|off)", optarg);
            }
            break;
        case 'l':
            if (strcmp(optarg, "error") == 0) {
                ts_log_set_level(TS_LOG_ERROR);
            } else if (strcmp(optarg, "warn") == 0) {
                ts_log_set_level(TS_LOG_WARN);
            } else if (strcmp(optarg, "info") == 0) {
                ts_log_set_level(TS_LOG_INFO);
            } else if (strcmp(optarg, "debug") == 0) {
                ts_log_set_level(TS_LOG_DEBUG);
            } else {
                bad_usage("bad --log-level '%s'", optarg);
            }
            break;
        case 'S':
            status_mode = 1;
            break;
        case 'P':
            pki_opt = optarg;
            break;
        case 'I':
            init_mode = 1;
            break;
        case 'T':
            v = parse_num(optarg, 1000, 86400000);
            if (v < 0) {
                bad_usage("bad --ticket-ttl '%s' (1000..86400000 ms)", optarg);
            }
            cfg.ticket_ttl_ms = v;
            break;
        case 'H':
        case 'F':
            v = parse_num(optarg, 50, 3600000);
            if (v < 0) {
                bad_usage("bad --%s '%s' (50..3600000 ms)",
                          opt == 'H' ? "handshake-ms" : "frame-timeout",
                          optarg);
            }
            if (opt == 'H') {
                cfg.handshake_ms = v;
            } else {
                cfg.frame_ms = v;
            }
            break;
        case 'C':
        case 'A':
        case 'U':
            v = parse_num(optarg, 1, 1000000);
            if (v < 0) {
                bad_usage("bad connection cap '%s' (1..1000000)", optarg);
            }
            if (opt == 'C') {
                cfg.conns_max = (uint32_t) v;
            } else if (opt == 'A') {
                cfg.conns_addr = (uint32_t) v;
            } else {
                cfg.unauth_max = (uint32_t) v;
            }
            break;
        case 'u':
        case 'a':
            v = parse_num(optarg, 0, 1000000);
            if (v < 0) {
                bad_usage("bad login failure limit '%s' (0..1000000)",
                          optarg);
            }
            if (opt == 'u') {
                cfg.login_fails_user = (uint32_t) v;
            } else {
                cfg.login_fails_addr = (uint32_t) v;
            }
            break;
        case 'L':
            v = parse_num(optarg, 50, 3600000);
            if (v < 0) {
                bad_usage("bad --login-timeout '%s' (50..3600000 ms)",
                          optarg);
            }
            cfg.login_ms = v;
            break;
        case 'K':
        case 'c':
            v = parse_num(optarg, 0, 1000000);
            if (v < 0) {
                bad_usage("bad --%s '%s' (0..1000000)",
                          opt == 'K' ? "kdf-per-addr"
                                     : "create-user-per-addr", optarg);
            }
            if (opt == 'K') {
                cfg.kdf_per_addr = (uint32_t) v;
            } else {
                cfg.create_per_addr = (uint32_t) v;
            }
            break;
        case 'O':
            v = parse_num(optarg, 1 << 16, 1LL << 40);
            if (v < 0) {
                bad_usage("bad --worker-out-max '%s' (65536..2^40 bytes)",
                          optarg);
            }
            cfg.worker_out_max = (uint64_t) v;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("tessera tracker %s\n", TS_VERSION_STRING);
            return 0;
        default:
            fprintf(stderr, "usage: tracker [options] tracker_info.txt <id> "
                    "(try --help)\n");
            return 2;
        }
    }
    if (init_mode) {
        if (argc - optind != 1 || status_mode) {
            fprintf(stderr, "usage: tracker [--pki DIR] --init-pki "
                    "tracker_info.txt (try --help)\n");
            return 2;
        }
        if (pki_dir_of(argv[optind], pki_opt, cfg.pki_dir,
                       sizeof(cfg.pki_dir)) != 0)
        {
            bad_usage("PKI directory path too long");
        }
        return init_pki(argv[optind], cfg.pki_dir);
    }
    if (argc - optind != 2) {
        fprintf(stderr, "usage: tracker [options] tracker_info.txt <id> "
                "(try --help)\n");
        return 2;
    }
    if (pki_dir_of(argv[optind], pki_opt, cfg.pki_dir, sizeof(cfg.pki_dir))
        != 0)
    {
        bad_usage("PKI directory path too long");
    }
    v = parse_num(argv[optind + 1], 1, TS_TRACKERS_MAX_N);
    if (v < 0) {
        bad_usage("bad tracker id '%s' (a 1-based line number)",
                  argv[optind + 1]);
    }
    cfg.id = (int) v;

    if (status_mode) {
        if (strlen(cfg.pki_dir) + 32 >= sizeof(cfg.ca_path)) {
            bad_usage("PKI directory path too long");
        }
        /* (the length was checked above; the precision tells gcc) */
        snprintf(cfg.ca_path, sizeof(cfg.ca_path), "%.*s/ca.crt",
                 (int) (sizeof(cfg.ca_path) - 32), cfg.pki_dir);
        snprintf(cfg.crt_path, sizeof(cfg.crt_path), "%.*s/tracker-%d.crt",
                 (int) (sizeof(cfg.crt_path) - 32), cfg.pki_dir, cfg.id);
        snprintf(cfg.key_path, sizeof(cfg.key_path), "%.*s/tracker-%d.key",
                 (int) (sizeof(cfg.key_path) - 32), cfg.pki_dir, cfg.id);
        return trk_status_cmd(argv[optind], cfg.id, cfg.ca_path,
                              cfg.crt_path, cfg.key_path);
    }

    /* a closed stdin must not be mistaken for a socket opened later */
    stdin_ok = fcntl(STDIN_FILENO, F_GETFD) != -1;

    if (ts_trackers_load(argv[optind], &trk, err, sizeof(err)) != 0) {
        ts_err("%s", err);
        return 1;
    }
    if (cfg.id > trk.n) {
        fprintf(stderr, "tracker: tracker id %d is out of range: %s lists "
                "%d tracker(s)\n", cfg.id, argv[optind], trk.n);
        return 2;
    }
    cfg.trackers = trk;
    snprintf(cfg.ip, sizeof(cfg.ip), "%s", trk.t[cfg.id - 1].ip);
    cfg.port = trk.t[cfg.id - 1].port;

    if (data_dir == NULL) {
        snprintf(cfg.data_dir, sizeof(cfg.data_dir), "./tsr-tracker-%d",
                 cfg.id);
    } else if (snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", data_dir)
               >= (int) sizeof(cfg.data_dir))
    {
        bad_usage("data directory path too long: %s", data_dir);
    }
    if (mkdir(cfg.data_dir, 0700) != 0 && errno != EEXIST) {
        ts_err("cannot create data directory %s: %s", cfg.data_dir,
               strerror(errno));
        return 1;
    }
    if (snprintf(cfg.db_path, sizeof(cfg.db_path), "%s/tracker.tdb",
                 cfg.data_dir) >= (int) sizeof(cfg.db_path))
    {
        ts_err("data directory path too long");
        return 1;
    }

    /* fail here, once, rather than in N crash-looping workers */
    st = trk_store_open(cfg.db_path, 1, cfg.nosync, err, sizeof(err));
    if (st == NULL) {
        ts_err("%s", err);
        return 1;
    }
    /* K1: the data directory's epoch (new dir = new epoch) and the HLC
     * high-water mark, so stamps never go back across restarts */
    epoch = trk_epoch_get(st, 1);
    hlc0 = trk_hlc_saved(st);
    trk_store_close(st);
    if (epoch == 0) {
        ts_err("cannot initialise the database epoch in %s", cfg.db_path);
        return 1;
    }
    if (setup_pki() != 0) {
        return 1;
    }
    if (setup_nofile() != 0) {
        return 1;
    }

    cfg.listen_fd = ts_net_listen(cfg.ip, cfg.port, TS_TRK_LISTEN_BACKLOG_N);
    if (cfg.listen_fd < 0) {
        ts_err("cannot listen on %s:%u: %s", cfg.ip, (unsigned) cfg.port,
               strerror(errno));
        return 1;
    }
    if (trk_shm_create(&cfg.shm, cfg.port) != 0) {
        if (errno == EBUSY) {
            ts_err("shared memory for port %u is owned by a running "
                   "tracker", (unsigned) cfg.port);
        } else {
            ts_err("cannot create shared memory: %s", strerror(errno));
        }
        close(cfg.listen_fd);
        return 1;
    }
    trk_shm_name(shm_name, sizeof(shm_name), cfg.port);
    shm_publish(ts_wall_ms(), epoch, hlc0);
    trk_ops_init();

    ts_info("tracker %d starting on %s:%u (%d workers, data %s, fsync %s, "
            "%s, pki %s)", cfg.id, cfg.ip, (unsigned) cfg.port, cfg.workers,
            cfg.data_dir, cfg.nosync ? "off" : "on",
            ts_tls_enabled() ? "TLS 1.3" : "NO TLS (bench build)",
            cfg.pki_dir);

    memset(roles, 0, sizeof(roles));
    roles[0].name = "trk-worker";
    roles[0].count = cfg.workers;
    roles[0].main = trk_worker_main;
    roles[0].arg = &cfg;
    /* K1: one sync process when there is any other tracker */
    roles[1].name = "trk-sync";
    roles[1].count = 1;
    roles[1].main = trk_sync_main;
    roles[1].arg = &cfg;

    memset(&sc, 0, sizeof(sc));
    sc.name = "supervisor";
    sc.roles = roles;
    sc.nroles = trk.n > 1 ? 2 : 1;
    sc.on_spawn = on_spawn;
    sc.on_exit = on_exit_hook;
    sc.watch_fd = stdin_ok ? STDIN_FILENO : -1;
    sc.on_watch = on_watch;
    sc.tick_ms = TS_TRK_SUP_TICK_MS;
    sc.on_tick = on_tick;
    sc.reset_needed = shm_reset_needed;
    sc.on_reset = shm_rebuild;

    rc = ts_sup_run(&sc);

    ts_shm_detach(&cfg.shm.shm);
    ts_shm_unlink(shm_name);
    close(cfg.listen_fd);
    ts_info("tracker %d stopped", cfg.id);
    return rc;
}
