/*
 * sup_fixture.h -- helpers shared by the supervisor's unit tests
 * (test_sup.c, test_sup_reset.c): run ts_sup_run() in a forked child,
 * wait for a child with a deadline, read one fixed-size hook record.
 *
 * Locking: none (single-threaded test processes).
 *
 * Crash behaviour: every wait is bounded; a child that outlives its
 * deadline is SIGKILLed and reaped here.
 */
#ifndef SUP_FIXTURE_H_INCLUDED
#define SUP_FIXTURE_H_INCLUDED

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_sup.h"

/* Forks a supervisor running cfg; close_fd (-1 = none) is closed in it
 * (the test's read end of the hook pipe).  Its pid. */
static inline pid_t
sup_fx_start(const ts_sup_config_t *cfg, int close_fd)
{
    pid_t  pid;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        if (close_fd >= 0) {
            close(close_fd);
        }
        _exit(ts_sup_run(cfg));
    }
    return pid;
}


/* Waits for pid (our child) up to ms: its wait status, -2 if waitpid
 * failed, or -1 on timeout (then it is SIGKILLed and reaped). */
static inline int
sup_fx_wait(pid_t pid, int ms)
{
    int      st;
    pid_t    r;
    int64_t  end = ts_now_ms() + ms;

    do {
        r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            return st;
        }
        if (r == -1 && errno != EINTR) {
            return -2;
        }
        usleep(2000);
    } while (ts_now_ms() < end);

    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}


/* Reads one record of size bytes from fd within ms; 0 or -1. */
static inline int
sup_fx_read(int fd, void *rec, size_t size, int ms)
{
    struct pollfd  p = { fd, POLLIN, 0 };

    if (poll(&p, 1, ms) != 1) {
        return -1;
    }
    return read(fd, rec, size) == (ssize_t) size ? 0 : -1;
}

#endif
