/*
 * trk_console.c -- the tracker's console: commands typed on stdin.
 *
 * Purpose: the supervisor watches stdin (when it is open at start) and
 * hands each read here.  Commands: "help" (the list), "status" (this
 * tracker's id, address, uptime, workers, sync process, peers, leader,
 * connections and data directory, printed on stdout from the shm stats
 * words), "quit" (stops the tracker); an empty line is ignored, anything
 * else gets an "unknown command" line.  End of stdin only stops the
 * watching (a tracker started in the background keeps running).
 *
 * Locking: none (the supervisor's loop thread); the shm words are read
 * with atomic loads, no shm lock is taken.
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

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_log.h"
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


/* One console line (trimmed): 1 to stop the tracker, else 0. */
static int
console_cmd(const char *p, const trk_config_t *cfg)
{
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
