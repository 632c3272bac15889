/*
 * ts_worker.c -- the worker side of the supervisor (see ts_worker.h).
 *
 * Purpose: what runs in a freshly forked worker before its role's main()
 * (clean signal state, a stop self-pipe, PR_SET_PDEATHSIG) and the small
 * calls a worker makes to its supervisor: "ready", "am I stopping",
 * "is my supervisor gone".
 *
 * Locking: the stop flag is a sig_atomic_t set by the signal handler,
 * which otherwise only writes a byte to the self-pipe.  The SIGHUP
 * handler (the supervisor passes it on) only reopens the log file
 * (ts_log_reopen: open, dup2, close).
 *
 * Crash behaviour: SIGTERM from PR_SET_PDEATHSIG and EOF on the channel
 * both mean "the supervisor is gone": the worker stops.  If the
 * supervisor died before PR_SET_PDEATHSIG was armed, ts_worker_enter()
 * sees the new parent and the child exits at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ts_log.h"
#include "ts_worker.h"

static volatile sig_atomic_t    wk_stop;
static int                      wk_pipe[2] = { -1, -1 };
static int                      wk_chan = -1;
static pid_t                    wk_parent;


static void
wk_poke(int fd)
{
    int  saved = errno;

    if (fd >= 0) {
        /* a full pipe already wakes the loop: EAGAIN is fine */
        (void) !write(fd, "x", 1);
    }
    errno = saved;
}


static void
wk_signal_handler(int signo)
{
    (void) signo;
    wk_stop = 1;
    wk_poke(wk_pipe[1]);
}


void
ts_proc_set_name(const char *name)
{
    char  buf[16];

    if (name == NULL) {
        return;
    }
    /* the kernel keeps 15 characters; truncate here so it never fails */
    snprintf(buf, sizeof(buf), "%s", name);
    if (prctl(PR_SET_NAME, buf, 0, 0, 0) == -1) {
        ts_warn("prctl(PR_SET_NAME) failed: %s", strerror(errno));
    }
}


static int
wk_chan_eof(int fd)
{
    char     c;
    ssize_t  n;

    if (fd < 0) {
        return 0;
    }
    /* the supervisor never writes to a worker: readable means EOF */
    n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) {
        return 1;
    }
    if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK
        && errno != EINTR)
    {
        return 1;
    }
    return 0;
}


void
ts_worker_ready(const ts_worker_ctx_t *ctx)
{
    ssize_t  n;

    do {
        n = write(ctx->channel_fd, "R", 1);
    } while (n == -1 && errno == EINTR);

    if (n != 1) {
        ts_warn("ready: write() to supervisor failed: %s",
                n == -1 ? strerror(errno) : "short write");
    }
}


int
ts_worker_stopping(void)
{
    if (wk_stop) {
        return 1;
    }
    if (wk_chan_eof(wk_chan) || (wk_parent > 0 && getppid() != wk_parent)) {
        wk_stop = 1;
        wk_poke(wk_pipe[1]);
        return 1;
    }
    return 0;
}


int
ts_worker_stop_fd(void)
{
    return wk_pipe[0];
}


int
ts_worker_orphaned(const ts_worker_ctx_t *ctx)
{
    if (wk_chan_eof(ctx->channel_fd)) {
        return 1;
    }
    return wk_parent > 0 && getppid() != wk_parent;
}


/* SIGHUP: reopen the log file (logrotate); nothing else. */
static void
wk_hup_handler(int signo)
{
    (void) signo;
    ts_log_reopen();
}


static void
wk_reset_signals(void)
{
    int               signo;
    struct sigaction  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);

    /* start from a clean slate: nothing inherited but the defaults */
    for (signo = 1; signo < NSIG; signo++) {
        if (signo == SIGKILL || signo == SIGSTOP) {
            continue;
        }
        (void) sigaction(signo, &sa, NULL);
    }
}


int
ts_worker_enter(pid_t supervisor, int chan, const char *name)
{
    sigset_t          none;
    struct sigaction  sa;

    /* every signal is blocked since before fork(): a SIGTERM sent now
     * stays pending until our own handler is in place */
    wk_reset_signals();

    wk_stop = 0;
    wk_chan = chan;
    if (pipe2(wk_pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
        ts_err("pipe2() failed: %s", strerror(errno));
        return -1;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = wk_signal_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = wk_hup_handler;     /* the supervisor forwards SIGHUP */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* armed after the SIGTERM handler, so the parent's death always
     * reaches a worker as "stop", never as the default action */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) == -1) {
        ts_warn("prctl(PR_SET_PDEATHSIG) failed: %s", strerror(errno));
    }
    /* the supervisor may have died before PDEATHSIG was armed */
    if (getppid() != supervisor) {
        return -1;
    }
    wk_parent = supervisor;

    ts_proc_set_name(name);
    ts_log_set_role(name);
    return 0;
}
