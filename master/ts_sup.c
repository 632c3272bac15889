/*
 * ts_sup.c -- the supervisor: prefork workers by role, reap, respawn, stop.
 *
 * Purpose: every node (tracker or client) runs one supervisor process
 * that forks its workers, watches them and replaces the ones that die.
 * The model is the nginx master plus the PostgreSQL postmaster: a private
 * child table (never in shm), signal handlers that only set a flag and
 * write a byte to a self-pipe, and one poll() loop that reaps with
 * waitpid(WNOHANG) and decides.  Each child gets a socketpair channel: it
 * writes "R" when ready; the supervisor sees EOF when the child is gone,
 * the child sees EOF when the supervisor is gone.
 *
 * Respawn policy: a dead worker is replaced at once.  A worker that keeps
 * dying young (< TS_SUP_SHORT_LIFE_MS) waits TS_SUP_BACKOFF_BASE_MS,
 * doubling up to TS_SUP_BACKOFF_MAX_MS; a life of TS_SUP_HEALTHY_MS resets
 * that.  TS_SUP_STARTUP_FAILS_N deaths in a row before "ready", or any exit
 * status 2, is a crash loop: stop everything and return 1.
 *
 * Locking: the supervisor takes no shm lock, ever, so a worker that dies
 * holding one cannot wedge it.  The child table is touched only by the
 * supervisor's main loop; signal handlers touch only sig_atomic_t flags
 * and write(2) to the self-pipe.
 *
 * Crash behaviour: children set PR_SET_PDEATHSIG(SIGTERM) and also see
 * channel EOF, so no worker outlives a killed supervisor.  ts_sup_run()
 * itself never returns while a child is alive: after the stop deadline it
 * SIGKILLs the rest and reaps them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_log.h"
#include "ts_sup.h"

typedef struct {
    pid_t     pid;              /* 0 = not running */
    uint32_t  generation;
    int       role;
    int       instance;
    int64_t   spawned_at;       /* monotonic ms */
    int       ready;
    int       short_deaths;     /* in a row, each < TS_SUP_SHORT_LIFE_MS */
    int       early_deaths;     /* in a row, before "R" */
    int64_t   next_spawn_at;    /* when pid == 0 and not stopping */
    int       chan;             /* supervisor's end, -1 = closed */
} sup_child_t;

/* supervisor state: private to the supervisor process */
static sup_child_t              sup_children[TS_SUP_WORKERS_MAX_N];
static int                      sup_nchildren;
static const ts_sup_config_t   *sup_cfg;
static pid_t                    sup_pid;
static int                      sup_pipe[2] = { -1, -1 };
static volatile sig_atomic_t    sup_sigchld;
static volatile sig_atomic_t    sup_stop_req;

/* worker state: set up in the child after fork */
static volatile sig_atomic_t    wk_stop;
static int                      wk_pipe[2] = { -1, -1 };
static int                      wk_chan = -1;
static pid_t                    wk_parent;

static const int                sup_signals[] = {
    SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPIPE
};
#define SUP_NSIGNALS (int) (sizeof(sup_signals) / sizeof(sup_signals[0]))


static int64_t
sup_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
pipe_poke(int fd)
{
    int  saved = errno;

    if (fd >= 0) {
        /* a full pipe already wakes the loop: EAGAIN is fine */
        (void) !write(fd, "x", 1);
    }
    errno = saved;
}


static void
pipe_drain(int fd)
{
    char  buf[64];

    while (read(fd, buf, sizeof(buf)) > 0) {
        /* void */
    }
}


static void
sup_signal_handler(int signo)
{
    if (signo == SIGCHLD) {
        sup_sigchld = 1;
    } else {
        sup_stop_req = 1;
    }
    pipe_poke(sup_pipe[1]);
}


static void
wk_signal_handler(int signo)
{
    (void) signo;
    wk_stop = 1;
    pipe_poke(wk_pipe[1]);
}


void
ts_sup_stop(void)
{
    sup_stop_req = 1;
    pipe_poke(sup_pipe[1]);
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


int
ts_sup_pids(int role, pid_t *out, int max)
{
    int  i, n = 0;

    if (getpid() != sup_pid) {
        return 0;
    }
    for (i = 0; i < sup_nchildren && n < max; i++) {
        if (sup_children[i].pid > 0 && sup_children[i].role == role) {
            out[n++] = sup_children[i].pid;
        }
    }
    return n;
}


/* ---- worker side ----------------------------------------------------- */

static int
chan_eof(int fd)
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
    if (chan_eof(wk_chan) || (wk_parent > 0 && getppid() != wk_parent)) {
        wk_stop = 1;
        pipe_poke(wk_pipe[1]);
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
    if (chan_eof(ctx->channel_fd)) {
        return 1;
    }
    return wk_parent > 0 && getppid() != wk_parent;
}


static void
child_reset_signals(void)
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


static void
child_run(const ts_sup_config_t *cfg, sup_child_t *me, int slot, int chan)
    __attribute__((noreturn));

static void
child_run(const ts_sup_config_t *cfg, sup_child_t *me, int slot, int chan)
{
    int               i;
    ts_worker_ctx_t   ctx;
    sigset_t          none;
    struct sigaction  sa;
    const ts_sup_role_t *role = &cfg->roles[me->role];

    /* every signal is blocked since before fork(): a SIGTERM sent now
     * stays pending until our own handler is in place */
    child_reset_signals();

    for (i = 0; i < sup_nchildren; i++) {
        if (sup_children[i].chan >= 0) {
            close(sup_children[i].chan);
            sup_children[i].chan = -1;
        }
        sup_children[i].pid = 0;
    }
    sup_nchildren = 0;
    if (sup_pipe[0] >= 0) {
        close(sup_pipe[0]);
        close(sup_pipe[1]);
        sup_pipe[0] = sup_pipe[1] = -1;
    }
    sup_cfg = NULL;

    wk_stop = 0;
    wk_chan = chan;
    if (pipe2(wk_pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
        ts_err("pipe2() failed: %s", strerror(errno));
        _exit(1);
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
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* armed after the SIGTERM handler, so the parent's death always
     * reaches a worker as "stop", never as the default action */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) == -1) {
        ts_warn("prctl(PR_SET_PDEATHSIG) failed: %s", strerror(errno));
    }
    /* the supervisor may have died before PDEATHSIG was armed */
    if (getppid() != sup_pid) {
        _exit(1);
    }
    wk_parent = sup_pid;

    ts_proc_set_name(role->name);
    ts_log_set_role(role->name);

    memset(&ctx, 0, sizeof(ctx));
    ctx.slot = slot;
    ctx.role = me->role;
    ctx.instance = me->instance;
    ctx.generation = me->generation;
    ctx.role_name = role->name;
    ctx.arg = role->arg;
    ctx.channel_fd = chan;

    if (cfg->on_child_init != NULL) {
        cfg->on_child_init(&ctx, cfg->hook_arg);
    }

    exit(role->main(&ctx));
}


/* ---- supervisor side ------------------------------------------------- */

static int
sup_spawn(const ts_sup_config_t *cfg, int slot)
{
    int           sv[2], fl, err;
    pid_t         pid;
    sigset_t      all, saved;
    sup_child_t  *c = &sup_children[slot];
    const char   *name = cfg->roles[c->role].name;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
        ts_err("socketpair() failed: %s", strerror(errno));
        return -1;
    }

    c->generation++;
    c->ready = 0;

    /* unflushed stdio would be written twice, once by the child's exit() */
    fflush(NULL);

    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &saved);

    pid = fork();
    if (pid == -1) {
        err = errno;
        sigprocmask(SIG_SETMASK, &saved, NULL);
        ts_err("fork() failed: %s", strerror(err));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }

    if (pid == 0) {
        close(sv[0]);
        child_run(cfg, c, slot, sv[1]);
    }

    sigprocmask(SIG_SETMASK, &saved, NULL);

    close(sv[1]);
    fl = fcntl(sv[0], F_GETFL);
    if (fl != -1) {
        fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
    }

    c->pid = pid;
    c->chan = sv[0];
    c->spawned_at = sup_now_ms();

    ts_debug("spawned %s[%d] slot %d gen %u", name, (int) pid, slot,
             c->generation);

    if (cfg->on_spawn != NULL) {
        cfg->on_spawn(slot, pid, c->generation, c->role, cfg->hook_arg);
    }
    return 0;
}


/* Read what a child wrote; close the channel on EOF. */
static void
sup_read_chan(sup_child_t *c)
{
    char     buf[32];
    ssize_t  n, i;

    while (c->chan >= 0) {
        n = read(c->chan, buf, sizeof(buf));
        if (n > 0) {
            for (i = 0; i < n; i++) {
                if (buf[i] == 'R' && !c->ready) {
                    c->ready = 1;
                    c->early_deaths = 0;
                }
            }
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        close(c->chan);
        c->chan = -1;
    }
}


static void
sup_describe(int wstatus, char *buf, size_t size)
{
    if (WIFEXITED(wstatus)) {
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(wstatus));
    } else if (WIFSIGNALED(wstatus)) {
        snprintf(buf, size, "killed by signal %d%s", WTERMSIG(wstatus),
                 WCOREDUMP(wstatus) ? " (core dumped)" : "");
    } else {
        snprintf(buf, size, "changed state 0x%x", (unsigned) wstatus);
    }
}


/* A child was reaped; returns 1 if this is a crash loop. */
static int
sup_child_died(const ts_sup_config_t *cfg, int slot, int wstatus,
    int stopping)
{
    sup_child_t  *c = &sup_children[slot];
    pid_t         pid = c->pid;
    int64_t       now, life, delay;
    int           shift;
    char          what[64];
    const char   *name = cfg->roles[c->role].name;

    /* a last "R" may still sit in the channel */
    sup_read_chan(c);
    if (c->chan >= 0) {
        close(c->chan);
        c->chan = -1;
    }
    c->pid = 0;

    now = sup_now_ms();
    life = now - c->spawned_at;
    sup_describe(wstatus, what, sizeof(what));

    if (cfg->on_exit != NULL) {
        cfg->on_exit(slot, pid, c->generation, c->role, wstatus,
                     cfg->hook_arg);
    }

    if (stopping) {
        ts_info("worker %s[%d] slot %d %s", name, (int) pid, slot, what);
        return 0;
    }

    if (!c->ready) {
        c->early_deaths++;
    }

    if ((WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 2)
        || c->early_deaths >= TS_SUP_STARTUP_FAILS_N)
    {
        ts_err("worker %s[%d] slot %d %s after %lld ms", name, (int) pid,
               slot, what, (long long) life);
        ts_err("crash loop in %s slot %d: stopping", name, slot);
        return 1;
    }

    if (life < TS_SUP_SHORT_LIFE_MS) {
        c->short_deaths++;
    } else if (life >= TS_SUP_HEALTHY_MS) {
        c->short_deaths = 0;
    }

    delay = TS_SUP_RESPAWN_MIN_MS;
    if (life < TS_SUP_SHORT_LIFE_MS && c->short_deaths > 1) {
        shift = c->short_deaths - 2;
        delay = TS_SUP_BACKOFF_BASE_MS;
        while (shift-- > 0 && delay < TS_SUP_BACKOFF_MAX_MS) {
            delay *= 2;
        }
        if (delay > TS_SUP_BACKOFF_MAX_MS) {
            delay = TS_SUP_BACKOFF_MAX_MS;
        }
    }
    c->next_spawn_at = now + delay;

    if (delay > 0) {
        ts_warn("worker %s[%d] slot %d %s after %lld ms; respawning in "
                "%lld ms", name, (int) pid, slot, what, (long long) life,
                (long long) delay);
    } else {
        ts_warn("worker %s[%d] slot %d %s; respawning", name, (int) pid,
                slot, what);
    }
    return 0;
}


static int
sup_find(pid_t pid)
{
    int  i;

    for (i = 0; i < sup_nchildren; i++) {
        if (sup_children[i].pid == pid) {
            return i;
        }
    }
    return -1;
}


static int
sup_live_count(void)
{
    int  i, n = 0;

    for (i = 0; i < sup_nchildren; i++) {
        n += sup_children[i].pid > 0;
    }
    return n;
}


/* Reap every dead child without blocking; returns 1 on a crash loop. */
static int
sup_reap(const ts_sup_config_t *cfg, int stopping)
{
    int    st, slot, crash = 0;
    pid_t  pid;

    sup_sigchld = 0;

    for ( ;; ) {
        pid = waitpid(-1, &st, WNOHANG);
        if (pid == 0) {
            break;
        }
        if (pid == -1) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != ECHILD) {
                ts_err("waitpid() failed: %s", strerror(errno));
            }
            break;
        }
        slot = sup_find(pid);
        if (slot == -1) {
            ts_debug("reaped unknown child %d", (int) pid);
            continue;
        }
        crash |= sup_child_died(cfg, slot, st, stopping || crash);
    }

    return crash;
}


static void
sup_signal_all(int signo)
{
    int  i;

    for (i = 0; i < sup_nchildren; i++) {
        if (sup_children[i].pid > 0
            && kill(sup_children[i].pid, signo) == -1 && errno != ESRCH)
        {
            ts_err("kill(%d, %d) failed: %s", (int) sup_children[i].pid,
                   signo, strerror(errno));
        }
    }
}


/* After SIGKILL: wait for each straggler (SIGKILL cannot be refused). */
static void
sup_reap_blocking(const ts_sup_config_t *cfg)
{
    int    i, st;
    pid_t  r;

    for (i = 0; i < sup_nchildren; i++) {
        if (sup_children[i].pid <= 0) {
            continue;
        }
        do {
            r = waitpid(sup_children[i].pid, &st, 0);
        } while (r == -1 && errno == EINTR);

        if (r == -1) {
            ts_err("waitpid(%d) failed: %s", (int) sup_children[i].pid,
                   strerror(errno));
            sup_children[i].pid = 0;
            continue;
        }
        sup_child_died(cfg, i, st, 1);
    }
}


int
ts_sup_run(const ts_sup_config_t *cfg)
{
    int               i, j, n, nfds, timeout, rc, crash = 0, stopping = 0;
    int               watching, deadline_ms, r;
    int64_t           now, stop_at = 0, next_tick = 0, t;
    struct pollfd     pfd[TS_SUP_WORKERS_MAX_N + 2];
    int               pfd_slot[TS_SUP_WORKERS_MAX_N + 2];
    struct sigaction  sa, old_sa[SUP_NSIGNALS];
    sigset_t          unblock, old_mask;
    struct timespec   nap = { 0, 10 * 1000000L };

    if (cfg == NULL || cfg->roles == NULL || cfg->nroles <= 0) {
        ts_err("supervisor: no roles configured");
        return 1;
    }

    n = 0;
    for (i = 0; i < cfg->nroles; i++) {
        if (cfg->roles[i].count < 0 || cfg->roles[i].main == NULL
            || cfg->roles[i].name == NULL
            || cfg->roles[i].count > TS_SUP_WORKERS_MAX_N - n)
        {
            ts_err("supervisor: bad role %d (or more than %d workers)", i,
                   TS_SUP_WORKERS_MAX_N);
            return 1;
        }
        n += cfg->roles[i].count;
    }

    if (pipe2(sup_pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
        ts_err("pipe2() failed: %s", strerror(errno));
        return 1;
    }

    sup_cfg = cfg;
    sup_pid = getpid();
    sup_sigchld = 0;
    sup_stop_req = 0;
    deadline_ms = cfg->stop_deadline_ms > 0 ? cfg->stop_deadline_ms
                                            : TS_SUP_STOP_DEADLINE_MS;

    if (cfg->name != NULL) {
        ts_proc_set_name(cfg->name);
    }

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < SUP_NSIGNALS; i++) {
        switch (sup_signals[i]) {
        case SIGHUP:            /* reload: not yet */
        case SIGPIPE:
            sa.sa_handler = SIG_IGN;
            sa.sa_flags = 0;
            break;
        default:
            sa.sa_handler = sup_signal_handler;
            sa.sa_flags = SA_RESTART
                          | (sup_signals[i] == SIGCHLD ? SA_NOCLDSTOP : 0);
        }
        sigaction(sup_signals[i], &sa, &old_sa[i]);
    }

    sigemptyset(&unblock);
    sigaddset(&unblock, SIGCHLD);
    sigaddset(&unblock, SIGTERM);
    sigaddset(&unblock, SIGINT);
    sigprocmask(SIG_UNBLOCK, &unblock, &old_mask);

    sup_nchildren = 0;
    for (i = 0; i < cfg->nroles; i++) {
        for (j = 0; j < cfg->roles[i].count; j++) {
            sup_child_t *c = &sup_children[sup_nchildren++];

            memset(c, 0, sizeof(*c));
            c->role = i;
            c->instance = j;
            c->chan = -1;
        }
    }

    ts_info("supervisor %s starting %d workers",
            cfg->name ? cfg->name : "", sup_nchildren);

    now = sup_now_ms();
    for (i = 0; i < sup_nchildren; i++) {
        if (sup_spawn(cfg, i) == -1) {
            sup_children[i].next_spawn_at = now + TS_SUP_BACKOFF_BASE_MS;
        }
    }

    watching = cfg->watch_fd >= 0 && cfg->on_watch != NULL;
    if (cfg->tick_ms > 0 && cfg->on_tick != NULL) {
        next_tick = sup_now_ms() + cfg->tick_ms;
    }

    for ( ;; ) {
        now = sup_now_ms();

        /* ---- decide how long to sleep ---- */
        timeout = -1;
        if (next_tick) {
            t = next_tick - now;
            timeout = (int) (t < 0 ? 0 : t);
        }
        if (stopping) {
            t = stop_at - now;
            t = t < 0 ? 0 : t;
            if (timeout < 0 || t < timeout) {
                timeout = (int) t;
            }
        } else {
            for (i = 0; i < sup_nchildren; i++) {
                if (sup_children[i].pid > 0) {
                    continue;
                }
                t = sup_children[i].next_spawn_at - now;
                t = t < 0 ? 0 : t;
                if (timeout < 0 || t < timeout) {
                    timeout = (int) t;
                }
            }
        }
        if (sup_sigchld || sup_stop_req) {
            timeout = 0;
        }

        nfds = 0;
        pfd[nfds].fd = sup_pipe[0];
        pfd[nfds].events = POLLIN;
        pfd_slot[nfds++] = -1;
        if (watching) {
            pfd[nfds].fd = cfg->watch_fd;
            pfd[nfds].events = POLLIN;
            pfd_slot[nfds++] = -2;
        }
        for (i = 0; i < sup_nchildren; i++) {
            if (sup_children[i].chan >= 0) {
                pfd[nfds].fd = sup_children[i].chan;
                pfd[nfds].events = POLLIN;
                pfd_slot[nfds++] = i;
            }
        }

        rc = poll(pfd, (nfds_t) nfds, timeout);
        if (rc == -1 && errno != EINTR) {
            ts_err("poll() failed: %s", strerror(errno));
            /* do not spin; go on to reaping and stop decisions */
            nanosleep(&nap, NULL);
        }

        if (rc > 0) {
            for (i = 0; i < nfds; i++) {
                if (pfd[i].revents == 0) {
                    continue;
                }
                if (pfd_slot[i] == -1) {
                    pipe_drain(sup_pipe[0]);

                } else if (pfd_slot[i] == -2) {
                    if (pfd[i].revents & POLLNVAL) {
                        ts_warn("watched fd %d is not open; ignoring it",
                                cfg->watch_fd);
                        watching = 0;
                        continue;
                    }
                    r = cfg->on_watch(cfg->watch_fd, cfg->hook_arg);
                    if (r == 1) {
                        ts_info("stop requested via watched fd");
                        sup_stop_req = 1;
                    } else if (r == -1) {
                        watching = 0;
                    }

                } else {
                    sup_read_chan(&sup_children[pfd_slot[i]]);
                }
            }
        }

        /* ---- reap ---- */
        if (sup_reap(cfg, stopping)) {
            crash = 1;
            sup_stop_req = 1;
        }

        /* ---- tick ---- */
        if (next_tick && sup_now_ms() >= next_tick) {
            cfg->on_tick(cfg->hook_arg);
            next_tick = sup_now_ms() + cfg->tick_ms;
        }

        /* ---- stop ---- */
        if (sup_stop_req && !stopping) {
            stopping = 1;
            stop_at = sup_now_ms() + deadline_ms;
            ts_info("stopping %d workers (deadline %d ms)",
                    sup_live_count(), deadline_ms);
            sup_signal_all(SIGTERM);
        }

        if (stopping) {
            if (sup_live_count() == 0) {
                break;
            }
            if (sup_now_ms() >= stop_at) {
                ts_warn("%d workers still alive after %d ms: SIGKILL",
                        sup_live_count(), deadline_ms);
                sup_signal_all(SIGKILL);
                sup_reap_blocking(cfg);
                break;
            }
            continue;
        }

        /* ---- respawn ---- */
        now = sup_now_ms();
        for (i = 0; i < sup_nchildren; i++) {
            sup_child_t *c = &sup_children[i];

            if (c->pid == 0 && c->next_spawn_at <= now) {
                if (sup_spawn(cfg, i) == -1) {
                    c->next_spawn_at = now + TS_SUP_BACKOFF_BASE_MS;
                }
            }
        }
    }

    for (i = 0; i < sup_nchildren; i++) {
        if (sup_children[i].chan >= 0) {
            close(sup_children[i].chan);
            sup_children[i].chan = -1;
        }
    }
    sup_nchildren = 0;

    for (i = 0; i < SUP_NSIGNALS; i++) {
        sigaction(sup_signals[i], &old_sa[i], NULL);
    }
    sigprocmask(SIG_SETMASK, &old_mask, NULL);

    close(sup_pipe[0]);
    close(sup_pipe[1]);
    sup_pipe[0] = sup_pipe[1] = -1;
    sup_cfg = NULL;

    ts_info("supervisor stopped%s", crash ? " after a crash loop" : "");
    return crash ? 1 : 0;
}
