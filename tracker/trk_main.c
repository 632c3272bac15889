/*
 * trk_main.c -- ./tracker: options, start-up checks, and the supervisor.
 *
 * Purpose: parse the command line, find this tracker's address in
 * tracker_info.txt, make sure the data directory and tracker.tdb are
 * usable (so a bad setup fails here, with a clear message, instead of in
 * a crash-looping worker), open the listen socket that every worker
 * inherits, create the shm segment /tessera-trk-<port>, and run the
 * supervisor with N "trk-worker" processes.  Typing "quit" on stdin stops
 * the tracker; end of stdin does not.
 *
 * Locking: the supervisor never takes a shm lock.  It writes worker slots
 * at spawn and, after reaping, frees the slot and reclaims the dead
 * worker's claims with lock-free CAS (ts_claim).
 *
 * Crash behaviour: workers that die are respawned by ts_sup; their tdb
 * transactions roll back and their stripe locks are repaired by the next
 * locker.  If the supervisor dies, workers get SIGTERM (PDEATHSIG) and the
 * stale shm segment is detected and replaced at the next start.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_log.h"
#include "ts_net.h"
#include "ts_sup.h"
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
        "  -d, --data-dir DIR          state directory "
        "(default ./tsr-tracker-<id>)\n"
        "  -w, --workers N             request workers (default %d)\n"
        "      --kdf-iterations N      PBKDF2 iterations for new passwords "
        "(default %d)\n"
        "      --session-timeout MS    session ends without a heartbeat "
        "(default %d)\n"
        "      --fsync on|off          sync tdb commits (default on)\n"
        "      --status                print STATUS of tracker <id> and "
        "exit\n"
        "  -l, --log-level LEVEL       error|warn|info|debug\n"
        "  -h, --help                  this text\n"
        "  -V, --version               print the version\n",
        TS_TRK_WORKERS_N, TS_KDF_ITERATIONS_N, TS_SESSION_TIMEOUT_MS);
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
        { "help",            no_argument,       NULL, 'h' },
        { "version",         no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    ts_sup_role_t    roles[2];
    uint64_t         epoch, hlc0;
    int              status_mode = 0;
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
    if (argc - optind != 2) {
        fprintf(stderr, "usage: tracker [options] tracker_info.txt <id> "
                "(try --help)\n");
        return 2;
    }
    v = parse_num(argv[optind + 1], 1, TS_TRACKERS_MAX_N);
    if (v < 0) {
        bad_usage("bad tracker id '%s' (a 1-based line number)",
                  argv[optind + 1]);
    }
    cfg.id = (int) v;

    if (status_mode) {
        return trk_status_cmd(argv[optind], cfg.id);
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
    atomic_store(&cfg.shm.stats->start_wall_ms, ts_wall_ms());
    atomic_store(&cfg.shm.stats->sup_pid, (int32_t) getpid());
    atomic_store(&cfg.shm.stats->workers_n, (uint32_t) cfg.workers);
    atomic_store(&cfg.shm.stats->epoch, epoch);
    atomic_store(&cfg.shm.stats->hlc, hlc0);
    atomic_store(&cfg.shm.stats->leader, cfg.id);
    atomic_store(&cfg.shm.stats->ntrackers, trk.n);
    trk_ops_init();

    ts_info("tracker %d starting on %s:%u (%d workers, data %s, fsync %s)",
            cfg.id, cfg.ip, (unsigned) cfg.port, cfg.workers, cfg.data_dir,
            cfg.nosync ? "off" : "on");

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

    rc = ts_sup_run(&sc);

    ts_shm_detach(&cfg.shm.shm);
    ts_shm_unlink(shm_name);
    close(cfg.listen_fd);
    ts_info("tracker %d stopped", cfg.id);
    return rc;
}
