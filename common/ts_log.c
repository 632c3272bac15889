/*
 * ts_log.c -- one-line log records on stderr, tagged with role and pid.
 *
 * Purpose: every process of a node (supervisor and workers) shares one
 * stderr; each record is formatted into a stack buffer and emitted with a
 * single write(2) so lines never interleave.  Records longer than
 * TS_LOG_LINE_B are truncated and still end in '\n'.  A message may carry
 * text from the network (a peer's refusal, an address the tracker gave,
 * a file name): control characters, C1 controls, bidirectional controls
 * and invalid UTF-8 in it are escaped (ts_esc.h), so a record is always
 * one line and can never move a terminal's cursor, reorder what the
 * reader sees or fake another record.
 *
 * With --log-file the file is opened onto fd 2 (ts_log_open_file) before
 * anything is forked, so every process appends to it; on SIGHUP each
 * process reopens the same path onto its own fd 2 (ts_log_reopen), which
 * is how logrotate's rename-then-HUP lands new lines in the new file.
 *
 * Locking: none.  Role, pid and level are process-local globals written
 * only at start-up or right after fork (ts_log_set_role); the level is
 * read and written with relaxed atomics so a signal handler or another
 * thread may change it.
 * Crash behaviour: a record is either fully written or not at all (up to
 * what the kernel guarantees for one write); nothing is buffered, so a
 * crash loses no earlier lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ts_esc.h"
#include "ts_log.h"

/* lets -Wformat=2 accept the va_list format below */
void ts_vlog(ts_log_level_t level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static char        log_role[32] = "tessera";
static _Atomic int log_level = -1;      /* -1: not yet read from env */

/* the --log-file path, written once before any fork or handler */
static char        log_path[4096];

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static int
level_from_env(void)
{
    const char *e = getenv("TS_LOG_LEVEL");
    int         i;

    if (e == NULL) {
        return TS_LOG_INFO;
    }
    for (i = 0; i <= TS_LOG_DEBUG; i++) {
        if (strcasecmp(e, level_names[i]) == 0) {
            return i;
        }
    }
    if (strcasecmp(e, "warning") == 0) {
        return TS_LOG_WARN;
    }
    return TS_LOG_INFO;
}

void
ts_log_set_role(const char *role)
{
    size_t n;

    if (role == NULL) {
        role = "tessera";
    }
    n = strlen(role);
    if (n >= sizeof(log_role)) {
        n = sizeof(log_role) - 1;
    }
    memcpy(log_role, role, n);
    log_role[n] = '\0';
}

void
ts_log_set_level(ts_log_level_t level)
{
    if ((int) level < TS_LOG_ERROR) {
        level = TS_LOG_ERROR;
    }
    if (level > TS_LOG_DEBUG) {
        level = TS_LOG_DEBUG;
    }
    atomic_store_explicit(&log_level, (int) level, memory_order_relaxed);
}

ts_log_level_t
ts_log_get_level(void)
{
    int l = atomic_load_explicit(&log_level, memory_order_relaxed);

    if (l < 0) {
        l = level_from_env();
        atomic_store_explicit(&log_level, l, memory_order_relaxed);
    }
    return (ts_log_level_t) l;
}

/* write(2) until done or a real error; the stream is a pipe or tty */
static void
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        p += w;
        n -= (size_t) w;
    }
}

void
ts_vlog(ts_log_level_t level, const char *fmt, va_list ap)
{
    char            line[TS_LOG_LINE_B], msg[TS_LOG_LINE_B];
    struct timespec ts;
    struct tm       tm;
    size_t          off, mlen;
    int             n, saved = errno;
    pid_t           pid;

    if ((int) level < TS_LOG_ERROR || level > TS_LOG_DEBUG) {
        level = TS_LOG_ERROR;
    }
    if (level > ts_log_get_level()) {
        errno = saved;
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    /* read every time: a child that forgot ts_log_set_role() still
     * shows its own pid */
    pid = getpid();
    n = snprintf(line, sizeof(line),
                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld] %s: ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L, log_role,
                 (long) pid, level_names[level]);
    if (n < 0) {
        errno = saved;
        return;
    }
    off = (size_t) n < sizeof(line) - 1 ? (size_t) n : sizeof(line) - 1;
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    mlen = n < 0 ? 0 : (size_t) n < sizeof(msg) ? (size_t) n
                                                : sizeof(msg) - 1;
    /* strip the caller's trailing newlines; one is added below */
    while (mlen > 0 && msg[mlen - 1] == '\n') {
        mlen--;
    }
    /* copy, escaping what could drive a terminal (ts_esc.h); room is
     * kept for '\n' */
    off += ts_esc(line + off, sizeof(line) - 1 - off, msg, mlen, 0);
    line[off++] = '\n';
    write_all(STDERR_FILENO, line, off);
    errno = saved;
}

void
ts_log(ts_log_level_t level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ts_vlog(level, fmt, ap);
    va_end(ap);
}

void
ts_log_raw(const char *msg)
{
    int    saved = errno;
    size_t n;

    if (msg == NULL) {
        return;
    }
    n = strlen(msg);
    write_all(STDERR_FILENO, msg, n);
    errno = saved;
}

static int ts_log_reopen_fd(void);

int
ts_log_open_file(const char *path)
{
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(log_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(log_path, path, n + 1);
    if (ts_log_reopen_fd() != 0) {
        log_path[0] = '\0';
        return -1;
    }
    return 0;
}

/* open + dup2 onto fd 2: 0, or -1 (the old fd 2 kept). */
static int
ts_log_reopen_fd(void)
{
    int fd, saved = errno;

    if (log_path[0] == '\0') {
        return 0;
    }
    fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
              0640);
    if (fd < 0) {
        return -1;          /* keep writing to the old file */
    }
    if (fd == STDERR_FILENO) {
        (void) fcntl(fd, F_SETFD, 0);
    } else {
        /* dup2 clears FD_CLOEXEC on fd 2: children inherit the log */
        if (dup2(fd, STDERR_FILENO) < 0) {
            close(fd);
            return -1;
        }
        close(fd);
    }
    errno = saved;
    return 0;
}

void
ts_log_reopen(void)
{
    int saved = errno;

    (void) ts_log_reopen_fd();
    errno = saved;
}

int
ts_log_has_file(void)
{
    return log_path[0] != '\0';
}
