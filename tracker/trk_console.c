/*
 * trk_console.c -- the tracker's console: commands typed on stdin.
 *
 * Purpose: the supervisor watches stdin (when it is open at start) and
 * hands each read here; "quit" stops the tracker, an empty line is
 * ignored, anything else is logged as unknown.  End of stdin only stops
 * the watching (a tracker started in the background keeps running).
 *
 * Locking: none (the supervisor's loop thread).
 *
 * Crash behaviour: nothing kept; a line longer than TS_TRK_CONSOLE_LINE_B
 * is dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_log.h"
#include "trk_console.h"

static char    stdin_line[TS_TRK_CONSOLE_LINE_B];
static size_t  stdin_len;


int
trk_console_fd(void)
{
    /* a closed stdin must not be mistaken for a socket opened later */
    return fcntl(STDIN_FILENO, F_GETFD) != -1 ? STDIN_FILENO : -1;
}


int
trk_console_on_watch(int fd, void *arg)
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
