/*
 * ts_sup.c -- the supervisor's lifecycle: prefork workers by role, reap,
 * respawn, stop, and rebuild the shm segment when asked.
 *
 * Purpose: every node (tracker or client) runs one supervisor process
 * that forks its workers, watches them and replaces the ones that die.
 * The model is the nginx master plus the PostgreSQL postmaster: a private
 * child table (ts_sup_slot.c, never in shm), signal handlers that only
 * set a flag and write a byte to a self-pipe, and one poll() loop that
 * reaps with waitpid(WNOHANG) and decides.  Each child gets a socketpair
 * channel: it writes "R" when ready; the supervisor sees EOF when the
 * child is gone, the child sees EOF when the supervisor is gone.
 *
 * States (sup_state_t):
 *   RUNNING     workers run; dead ones are respawned (with backoff);
 *   STOPPING    a stop was asked for: SIGTERM to all, SIGKILL after the
 *               deadline, then ts_sup_run() returns 0;
 *   CRASH_STOP  the same after a crash loop or a fatal exit: returns 1;
 *   RESETTING   the reset_needed hook said the segment must be rebuilt
 *               (tier 2: a shm lock is ENOTRECOVERABLE): every worker
 *               is stopped as for STOPPING, on_reset rebuilds the
 *               segment from durable state, and the workers are spawned
 *               again (RUNNING).  A stop request meanwhile wins; a
 *               segment that keeps asking (TS_SUP_RESETS_MAX_N rebuilds
 *               each within TS_SUP_RESET_WINDOW_MS of the last) is a
 *               crash loop.
 *
 * SIGHUP (logrotate, `systemctl reload`): the handler reopens the log
 * file (ts_log_reopen, async-signal-safe) and sets a flag; the loop then
 * passes SIGHUP to every child, whose handler (ts_worker.c) reopens its
 * own, and calls the on_reload hook.  Nothing stops.
 *
 * Locking: the supervisor takes no shm lock, ever, so a worker that dies
 * holding one cannot wedge it; the reset_needed hook reads one atomic
 * flag.  Signal handlers touch only sig_atomic_t flags and write(2) to
 * the self-pipe (and, for SIGHUP, open/dup2/close the log file).
 *
 * Crash behaviour: children set PR_SET_PDEATHSIG(SIGTERM) and also see
 * channel EOF, so no worker outlives a killed supervisor.  ts_sup_run()
 * itself never returns while a child is alive: after the stop deadline it
 * SIGKILLs the rest and reaps them.  A reset never runs on_reset while a
 * worker is alive (the same SIGKILL deadline applies), so the rebuild
 * cannot race a worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_log.h"
#include "ts_sup.h"
#include "ts_sup_slot.h"

typedef enum {
    SUP_RUNNING = 0,
    SUP_STOPPING,
    SUP_CRASH_STOP,
    SUP_RESETTING
} sup_state_t;

static const int                sup_signals[] = {
    SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPIPE
};
#define SUP_NSIGNALS (int) (sizeof(sup_signals) / sizeof(sup_signals[0]))
#define SUP_PFD_N    (TS_SUP_WORKERS_MAX_N + 2)

typedef struct {
    const ts_sup_config_t  *cfg;
    sup_state_t             state;
    int                     deadline_ms;
    int64_t                 stop_at;        /* STOPPING, RESETTING */
    int64_t                 next_tick;      /* 0 = no tick */
    int64_t                 next_reset_check;   /* 0 = no reset hook */
    int64_t                 last_reset_at;      /* last rebuild, monotonic */
    int                     resets_in_row;      /* each soon after the last */
    int                     watching;
    int                     nslots;
    struct sigaction        old_sa[SUP_NSIGNALS];
    sigset_t                old_mask;
} sup_loop_t;

static int                      sup_pipe[2] = { -1, -1 };
static volatile sig_atomic_t    sup_sigchld;
static volatile sig_atomic_t    sup_stop_req;
static volatile sig_atomic_t    sup_hup_req;


static void
sup_poke(void)
{
    int  saved = errno;

    if (sup_pipe[1] >= 0) {
        /* a full pipe already wakes the loop: EAGAIN is fine */
        (void) !write(sup_pipe[1], "x", 1);
    }
    errno = saved;
}


static void
sup_signal_handler(int signo)
{
    if (signo == SIGCHLD) {
        sup_sigchld = 1;
    } else if (signo == SIGHUP) {
        ts_log_reopen();        /* async-signal-safe */
        sup_hup_req = 1;
    } else {
        sup_stop_req = 1;
    }
    sup_poke();
}


void
ts_sup_stop(void)
{
    sup_stop_req = 1;
    sup_poke();
}


int
ts_sup_pids(int role, pid_t *out, int max)
{
    return sup_slots_pids(role, out, max);
}


static void
sup_install_signals(sup_loop_t *lp)
{
    int               i;
    sigset_t          unblock;
    struct sigaction  sa;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < SUP_NSIGNALS; i++) {
        switch (sup_signals[i]) {
        case SIGPIPE:
            sa.sa_handler = SIG_IGN;
            sa.sa_flags = 0;
            break;
        default:
            sa.sa_handler = sup_signal_handler;
            sa.sa_flags = SA_RESTART
                          | (sup_signals[i] == SIGCHLD ? SA_NOCLDSTOP : 0);
        }
        sigaction(sup_signals[i], &sa, &lp->old_sa[i]);
    }

    sigemptyset(&unblock);
    sigaddset(&unblock, SIGCHLD);
    sigaddset(&unblock, SIGTERM);
    sigaddset(&unblock, SIGINT);
    sigaddset(&unblock, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &unblock, &lp->old_mask);
}


static void
sup_restore_signals(sup_loop_t *lp)
{
    int  i;

    for (i = 0; i < SUP_NSIGNALS; i++) {
        sigaction(sup_signals[i], &lp->old_sa[i], NULL);
    }
    sigprocmask(SIG_SETMASK, &lp->old_mask, NULL);
}


/* Lowers *timeout to the ms until `at` (a timeout of -1 = none yet). */
static void
sup_wake_at(int *timeout, int64_t at, int64_t now)
{
    int64_t  t = at - now;

    t = t < 0 ? 0 : t;
    if (*timeout < 0 || t < *timeout) {
        *timeout = (int) t;
    }
}


/* How long poll() may sleep: the next tick, reset check, respawn or
 * stop deadline, whichever comes first. */
static int
sup_timeout(const sup_loop_t *lp, int64_t now)
{
    int      timeout = -1;
    int64_t  spawn_in;

    if (sup_sigchld || sup_stop_req || sup_hup_req) {
        return 0;
    }
    if (lp->next_tick) {
        sup_wake_at(&timeout, lp->next_tick, now);
    }
    if (lp->state != SUP_RUNNING) {
        sup_wake_at(&timeout, lp->stop_at, now);
        return timeout;
    }
    if (lp->next_reset_check) {
        sup_wake_at(&timeout, lp->next_reset_check, now);
    }
    spawn_in = sup_slots_next_spawn_in(now);
    if (spawn_in >= 0) {
        sup_wake_at(&timeout, now + spawn_in, now);
    }
    return timeout;
}


static void
sup_on_watch(sup_loop_t *lp, short revents)
{
    int  r;

    if (revents & POLLNVAL) {
        ts_warn("watched fd %d is not open; ignoring it", lp->cfg->watch_fd);
        lp->watching = 0;
        return;
    }
    r = lp->cfg->on_watch(lp->cfg->watch_fd, lp->cfg->hook_arg);
    if (r == 1) {
        ts_info("stop requested via watched fd");
        sup_stop_req = 1;
    } else if (r == -1) {
        lp->watching = 0;
    }
}


/* Sleeps in poll() and handles what woke it: the self-pipe, the watched
 * fd, the workers' channels. */
static void
sup_poll(sup_loop_t *lp, int timeout)
{
    int              i, nfds, rc;
    struct pollfd    pfd[SUP_PFD_N];
    int              pfd_slot[SUP_PFD_N];
    char             buf[64];
    struct timespec  nap = { 0, TS_SUP_POLL_ERROR_NAP_MS * 1000000L };

    nfds = 0;
    pfd[nfds].fd = sup_pipe[0];
    pfd[nfds].events = POLLIN;
    pfd_slot[nfds++] = -1;
    if (lp->watching) {
        pfd[nfds].fd = lp->cfg->watch_fd;
        pfd[nfds].events = POLLIN;
        pfd_slot[nfds++] = -2;
    }
    nfds += sup_slots_pollfds(pfd + nfds, pfd_slot + nfds, SUP_PFD_N - nfds);

    rc = poll(pfd, (nfds_t) nfds, timeout);
    if (rc == -1 && errno != EINTR) {
        ts_err("poll() failed: %s", strerror(errno));
        /* do not spin; go on to reaping and stop decisions */
        nanosleep(&nap, NULL);
    }
    for (i = 0; rc > 0 && i < nfds; i++) {
        if (pfd[i].revents == 0) {
            continue;
        }
        if (pfd_slot[i] == -1) {
            while (read(sup_pipe[0], buf, sizeof(buf)) > 0) {
                /* drain */
            }
        } else if (pfd_slot[i] == -2) {
            sup_on_watch(lp, pfd[i].revents);
        } else {
            sup_slot_read(pfd_slot[i]);
        }
    }
}


/* SIGTERM to every worker; the loop waits for them until the deadline. */
static void
sup_begin_stop(sup_loop_t *lp, sup_state_t next)
{
    if (lp->state == SUP_RUNNING) {
        lp->stop_at = ts_now_ms() + lp->deadline_ms;
        ts_info("stopping %d workers (deadline %d ms)%s", sup_slots_live(),
                lp->deadline_ms,
                next == SUP_RESETTING ? " to rebuild the shm segment" : "");
        sup_slots_signal(SIGTERM);
    } else if (next == SUP_STOPPING && lp->state == SUP_RESETTING) {
        ts_info("stop requested during a segment reset");
    }
    lp->state = next;
}


/* RUNNING: polls the reset_needed hook every TS_SUP_RESET_POLL_MS. */
static void
sup_check_reset(sup_loop_t *lp, int64_t now)
{
    const ts_sup_config_t  *cfg = lp->cfg;

    if (lp->next_reset_check == 0 || now < lp->next_reset_check) {
        return;
    }
    lp->next_reset_check = now + TS_SUP_RESET_POLL_MS;
    if (!cfg->reset_needed(cfg->hook_arg)) {
        return;
    }
    if (lp->last_reset_at != 0
        && now - lp->last_reset_at < TS_SUP_RESET_WINDOW_MS)
    {
        lp->resets_in_row++;
    } else {
        lp->resets_in_row = 1;
    }
    if (lp->resets_in_row > TS_SUP_RESETS_MAX_N) {
        ts_err("shm segment needs a rebuild again after %d rebuilds, "
               "each within %d ms of the last: stopping",
               TS_SUP_RESETS_MAX_N, TS_SUP_RESET_WINDOW_MS);
        sup_begin_stop(lp, SUP_CRASH_STOP);
        return;
    }
    ts_err("shm segment marked reset_needed (a lock is not recoverable): "
           "rebuilding it");
    sup_begin_stop(lp, SUP_RESETTING);
}


/* RESETTING, every worker gone: rebuild, then start them all again. */
static void
sup_rebuild(sup_loop_t *lp)
{
    int64_t                 t0 = ts_now_ms();
    const ts_sup_config_t  *cfg = lp->cfg;

    ts_info("all workers stopped; rebuilding the shm segment from durable "
            "state");
    if (cfg->on_reset(cfg->hook_arg) != 0) {
        ts_err("shm segment rebuild failed: stopping");
        lp->state = SUP_CRASH_STOP;
        return;
    }
    sup_slots_rearm();
    lp->state = SUP_RUNNING;
    lp->last_reset_at = ts_now_ms();
    lp->next_reset_check = ts_now_ms() + TS_SUP_RESET_POLL_MS;
    ts_info("shm segment rebuilt in %lld ms; restarting the workers",
            (long long) (ts_now_ms() - t0));
}


/* STOPPING, CRASH_STOP, RESETTING: 1 once every worker is gone (SIGKILL
 * after the deadline), else 0. */
static int
sup_drained(sup_loop_t *lp)
{
    if (sup_slots_live() == 0) {
        return 1;
    }
    if (ts_now_ms() < lp->stop_at) {
        return 0;
    }
    ts_warn("%d workers still alive after %d ms: SIGKILL", sup_slots_live(),
            lp->deadline_ms);
    sup_slots_signal(SIGKILL);
    sup_slots_reap_blocking(lp->cfg);
    return 1;
}


/* SIGHUP: the handler reopened our log; the workers reopen theirs
 * (ts_worker.c) and the node re-reads what it can (on_reload). */
static void
sup_reload(sup_loop_t *lp)
{
    if (!sup_hup_req) {
        return;
    }
    sup_hup_req = 0;
    ts_info("SIGHUP: log file reopened; passing it to %d workers",
            sup_slots_live());
    sup_slots_signal(SIGHUP);
    if (lp->cfg->on_reload != NULL) {
        lp->cfg->on_reload(lp->cfg->hook_arg);
    }
}


static void
sup_tick(sup_loop_t *lp)
{
    if (lp->next_tick && ts_now_ms() >= lp->next_tick) {
        lp->cfg->on_tick(lp->cfg->hook_arg);
        lp->next_tick = ts_now_ms() + lp->cfg->tick_ms;
    }
}


/* One pass of the loop; 0 to go on, 1 when ts_sup_run() should return. */
static int
sup_step(sup_loop_t *lp)
{
    sup_poll(lp, sup_timeout(lp, ts_now_ms()));

    sup_sigchld = 0;
    if (sup_slots_reap(lp->cfg, lp->state != SUP_RUNNING)) {
        sup_begin_stop(lp, SUP_CRASH_STOP);
    }
    sup_tick(lp);
    sup_reload(lp);

    if (sup_stop_req && lp->state != SUP_STOPPING
        && lp->state != SUP_CRASH_STOP)
    {
        sup_begin_stop(lp, SUP_STOPPING);
    }
    if (lp->state == SUP_RUNNING) {
        sup_check_reset(lp, ts_now_ms());
    }
    if (lp->state != SUP_RUNNING) {
        if (!sup_drained(lp)) {
            return 0;
        }
        if (lp->state != SUP_RESETTING) {
            return 1;
        }
        sup_rebuild(lp);
        if (lp->state != SUP_RUNNING) {
            return 1;
        }
    }
    sup_slots_spawn_due(lp->cfg, ts_now_ms());
    return 0;
}


static int
sup_init(sup_loop_t *lp, const ts_sup_config_t *cfg)
{
    memset(lp, 0, sizeof(*lp));
    lp->cfg = cfg;
    lp->state = SUP_RUNNING;

    if (cfg == NULL || cfg->roles == NULL || cfg->nroles <= 0) {
        ts_err("supervisor: no roles configured");
        return -1;
    }
    if (pipe2(sup_pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
        ts_err("pipe2() failed: %s", strerror(errno));
        return -1;
    }
    lp->nslots = sup_slots_init(cfg, sup_pipe);
    if (lp->nslots < 0) {
        close(sup_pipe[0]);
        close(sup_pipe[1]);
        sup_pipe[0] = sup_pipe[1] = -1;
        return -1;
    }

    sup_sigchld = 0;
    sup_stop_req = 0;
    sup_hup_req = 0;
    lp->deadline_ms = cfg->stop_deadline_ms > 0 ? cfg->stop_deadline_ms
                                                : TS_SUP_STOP_DEADLINE_MS;
    lp->watching = cfg->watch_fd >= 0 && cfg->on_watch != NULL;
    if (cfg->tick_ms > 0 && cfg->on_tick != NULL) {
        lp->next_tick = ts_now_ms() + cfg->tick_ms;
    }
    if (cfg->reset_needed != NULL && cfg->on_reset != NULL) {
        lp->next_reset_check = ts_now_ms() + TS_SUP_RESET_POLL_MS;
    }
    if (cfg->name != NULL) {
        ts_proc_set_name(cfg->name);
    }
    return 0;
}


int
ts_sup_run(const ts_sup_config_t *cfg)
{
    sup_loop_t  lp;

    if (sup_init(&lp, cfg) != 0) {
        return 1;
    }
    sup_install_signals(&lp);

    ts_info("supervisor %s starting %d workers", cfg->name ? cfg->name : "",
            lp.nslots);
    sup_slots_spawn_due(cfg, ts_now_ms());

    while (sup_step(&lp) == 0) {
        /* void */
    }

    sup_slots_close();
    sup_restore_signals(&lp);
    close(sup_pipe[0]);
    close(sup_pipe[1]);
    sup_pipe[0] = sup_pipe[1] = -1;

    ts_info("supervisor stopped%s",
            lp.state == SUP_CRASH_STOP ? " after a crash loop" : "");
    return lp.state == SUP_CRASH_STOP ? 1 : 0;
}
