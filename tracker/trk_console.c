/*
 * trk_console.c -- the tracker's console: commands typed on stdin.
 *
 * Purpose: the supervisor watches stdin (when it is open at start) and
 * hands each read here.  Commands: "users", "groups", "sessions" and
 * "files GROUP", each with an optional cursor (one page of
 * TS_TRK_ADMIN_PAGE_N names, read from tracker.tdb through its own
 * short-lived read-only use of the file, the same listing as `tracker
 * --admin`, trk_admin_ops.c), "help" (the list), "status" (this
 * tracker's id, address, uptime, workers, sync process, peers, leader,
 * connections and data directory, printed on stdout from the shm stats
 * words), the operator actions "disable-user USER", "enable-user USER"
 * and "remove-file GROUP FILE" (the rules of `tracker --admin`,
 * trk_admin_act.c, run in a transaction of this tracker's store opened
 * for the command and closed again; the op replicates like any write),
 * "quit" (stops the tracker); an empty line is ignored, anything else
 * gets an "unknown command" line.  End of stdin only stops the
 * watching (a tracker started in the background keeps running).
 *
 * Locking: none (the supervisor's loop thread); the shm words are read
 * with atomic loads, no shm lock is taken; a listing holds tdb's
 * all-record read lock for one pass (writers wait for it) and closes the
 * file before returning, so no tdb handle is inherited by a worker
 * forked later; an action is one tdb transaction (writers of the
 * workers wait for it) and then drops the sessions it ended from the
 * session cache, one stripe lock at a time.
 *
 * Crash behaviour: nothing kept; a line longer than TS_TRK_CONSOLE_LINE_B
 * is dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <stdlib.h>
#include <tdb.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_crypto.h"
#include "ts_esc.h"
#include "ts_log.h"
#include "ts_proto.h"
#include "trk_admin.h"
#include "trk_console.h"
#include "trk_opts.h"

static char    stdin_line[TS_TRK_CONSOLE_LINE_B];
static size_t  stdin_len;


int
trk_console_fd(void)
{
    /* a closed stdin must not be mistaken for a socket opened later */
    return fcntl(STDIN_FILENO, F_GETFD) != -1 ? STDIN_FILENO : -1;
}


static void
console_help(void)
{
    printf("commands:\n"
           "  help     this list\n"
           "  status   id, address, uptime, workers, peers, leader, "
           "connections\n"
           "  users [CURSOR]         one page of user names, after CURSOR\n"
           "  groups [CURSOR]        groups: owner, members, pending\n"
           "  sessions [CURSOR]      sessions: user, node, created\n"
           "  files GROUP [CURSOR]   the files of GROUP\n"
           "  disable-user USER      refuse USER's logins, end its "
           "sessions (cluster-wide)\n"
           "  enable-user USER       allow USER to log in again\n"
           "  remove-file GROUP FILE remove the file record (cluster-wide)\n"
           "  quit     stop the tracker\n");
}


static void
console_status(const trk_config_t *cfg)
{
    trk_stats_sh_t *sb = cfg->shm.stats;
    uint32_t        up = atomic_load(&sb->peers_up), total = 0, unauth = 0;
    int             i, active = 0, nt = atomic_load(&sb->ntrackers), first;
    int64_t         start = atomic_load(&sb->start_wall_ms);

    for (i = 0; i < TS_SUP_WORKERS_MAX_N; i++) {
        if (atomic_load(&cfg->shm.slots[i].state) == TS_SLOT_ACTIVE) {
            active++;
        }
        total += atomic_load(&cfg->shm.conns[i].total);
        unauth += atomic_load(&cfg->shm.conns[i].unauth);
    }
    printf("tracker %d at %s:%u, up %" PRId64 " s\n", cfg->id, cfg->ip,
           (unsigned) cfg->port,
           start > 0 ? (ts_wall_ms() - start) / 1000 : (int64_t) 0);
    printf("workers: %d of %d running; sync process: ", active,
           cfg->workers);
    if (atomic_load(&sb->sync_pid) > 0) {
        printf("pid %d\n", (int) atomic_load(&sb->sync_pid));
    } else {
        printf("%s\n", nt > 1 ? "not running" : "none (one tracker)");
    }
    printf("trackers: %d; peers up:", nt);
    for (i = 1, first = 1; i <= nt && i < 32; i++) {
        if (i != cfg->id && (up & (1u << i))) {
            printf("%s%d", first ? " " : ",", i);
            first = 0;
        }
    }
    printf("%s; leader: %d\n", first ? " none" : "",
           (int) atomic_load(&sb->leader));
    printf("connections: %u (%u not logged in)\n", total, unauth);
    printf("epoch: %016" PRIx64 "\n", (uint64_t) atomic_load(&sb->epoch));
    printf("data: %s (fsync %s)\n", cfg->data_dir,
           cfg->nosync ? "off" : "on");
}


/* "users|groups|sessions [CURSOR]", "files GROUP [CURSOR]": one page. */
static void
console_list(const trk_config_t *cfg, int kind, char *rest)
{
    static const char *const names[] = { "", "users", "groups",
                                         "sessions", "files" };
    struct tdb_context *tdb;
    trk_admin_item_t   *v;
    const char         *group = "", *cursor;
    char                esc[TS_ESC_MAX_B(sizeof(v->detail))];
    uint32_t            i, n;
    int                 more, rc;

    if (kind == TS_ADMIN_FILES) {
        group = strsep(&rest, " \t");
        if (group == NULL || !ts_valid_id(group)) {
            printf("usage: files GROUP [CURSOR]\n");
            return;
        }
    }
    while (rest != NULL && (*rest == ' ' || *rest == '\t')) {
        rest++;
    }
    cursor = rest != NULL ? rest : "";
    if (strlen(cursor) > TS_TRK_ADMIN_CURSOR_MAX_B || strchr(cursor, ' ')) {
        printf("bad cursor (one name from the last page)\n");
        return;
    }
    tdb = tdb_open(cfg->db_path, 0, TDB_DEFAULT, O_RDWR, 0);
    if (tdb == NULL) {
        printf("cannot open %s: %s\n", cfg->db_path, strerror(errno));
        return;
    }
    rc = trk_admin_page(NULL, tdb, kind, group, cursor, TS_TRK_ADMIN_PAGE_N,
                        &v, &n, &more);
    tdb_close(tdb);
    if (rc != 0) {
        printf("cannot list %s: %s\n", names[kind],
               rc == -1 ? "out of memory" : "database busy");
        return;
    }
    for (i = 0; i < n; i++) {
        (void) ts_esc(esc, sizeof(esc), v[i].key, strlen(v[i].key), 0);
        printf("%s", esc);
        (void) ts_esc(esc, sizeof(esc), v[i].detail, strlen(v[i].detail), 0);
        printf("  %s\n", esc);
    }
    if (more && n > 0) {
        (void) ts_esc(esc, sizeof(esc), v[n - 1].key, strlen(v[n - 1].key),
                      0);
        printf("(more: %s %s%s%s)\n", names[kind], group,
               group[0] ? " " : "", esc);
    } else {
        printf("(%u %s)\n", n, names[kind]);
    }
    free(v);
}


/* "disable-user USER", "enable-user USER", "remove-file GROUP FILE"
 * (FILE: the rest of the line, it may hold spaces). */
static void
console_act(const trk_config_t *cfg, int act, char *rest)
{
    trk_store_t *st;
    const char  *a, *b = "";
    char         err[512], msg[TRK_MSG_B], esc[TS_ESC_MAX_B(TRK_MSG_B)];
    ts_status_t  rc;

    a = rest != NULL ? strsep(&rest, " \t") : NULL;
    while (rest != NULL && (*rest == ' ' || *rest == '\t')) {
        rest++;
    }
    if (act == TS_ADMIN_ACT_REMOVE_FILE) {
        b = rest != NULL ? rest : "";
        rest = NULL;
    }
    if (a == NULL || a[0] == '\0' || (rest != NULL && *rest != '\0')
        || (act == TS_ADMIN_ACT_REMOVE_FILE && b[0] == '\0'))
    {
        printf("usage: %s\n", act == TS_ADMIN_ACT_REMOVE_FILE
               ? "remove-file GROUP FILE"
               : act == TS_ADMIN_ACT_DISABLE ? "disable-user USER"
                                             : "enable-user USER");
        return;
    }
    st = trk_store_open(cfg->db_path, 0, cfg->nosync, err, sizeof(err));
    if (st == NULL) {
        printf("cannot open %s: %s\n", cfg->db_path, err);
        return;
    }
    trk_store_set_origin(st, cfg->id, (void *) &cfg->shm.stats->hlc,
                         (void *) &cfg->shm.stats->op_wake);
    rc = trk_admin_act_txn(st, (trk_shm_t *) &cfg->shm, act, a, b,
                           ts_random_u64(), msg, sizeof(msg));
    trk_store_close(st);
    (void) ts_esc(esc, sizeof(esc), msg, strlen(msg), 0);
    if (rc == TS_OK) {
        ts_info("admin (console): %s", esc);
        printf("%s\n", esc);
    } else {
        printf("refused: %s\n", esc);
    }
}


/* One console line (trimmed): 1 to stop the tracker, else 0. */
static int
console_cmd(char *p, const trk_config_t *cfg)
{
    static const char *const lists[] = { "", "users", "groups", "sessions",
                                         "files" };
    static const char *const acts[] = { "", "disable-user", "enable-user",
                                        "remove-file" };
    char *rest = p, *word;
    int   k;

    word = strsep(&rest, " \t");
    for (k = TS_ADMIN_ACT_DISABLE; cfg != NULL
         && k <= TS_ADMIN_ACT_REMOVE_FILE; k++)
    {
        if (strcmp(word, acts[k]) == 0) {
            while (rest != NULL && (*rest == ' ' || *rest == '\t')) {
                rest++;
            }
            console_act(cfg, k, rest);
            fflush(stdout);
            return 0;
        }
    }
    for (k = TS_ADMIN_USERS; cfg != NULL && k <= TS_ADMIN_FILES; k++) {
        if (strcmp(word, lists[k]) == 0) {
            while (rest != NULL && (*rest == ' ' || *rest == '\t')) {
                rest++;
            }
            console_list(cfg, k, rest != NULL && *rest ? rest : NULL);
            fflush(stdout);
            return 0;
        }
    }
    if (rest != NULL) {
        rest[-1] = ' ';         /* not a listing: the line as typed */
    }
    if (strcmp(p, "quit") == 0) {
        ts_info("quit typed on stdin");
        return 1;
    }
    if (strcmp(p, "help") == 0) {
        console_help();
    } else if (strcmp(p, "status") == 0 && cfg != NULL) {
        console_status(cfg);
    } else if (*p != '\0') {
        printf("unknown command '%.40s' (try help)\n", p);
    }
    fflush(stdout);
    return 0;
}


int
trk_console_on_watch(int fd, void *arg)
{
    ssize_t  n;
    char    *nl, *p, *e;

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
        if (console_cmd(p, arg)) {
            return 1;
        }
        stdin_len -= (size_t) (nl + 1 - stdin_line);
        memmove(stdin_line, nl + 1, stdin_len + 1);
    }
    if (stdin_len == sizeof(stdin_line) - 1) {
        stdin_len = 0;      /* an absurd line: forget it */
    }
    return 0;
}
