/*
 * ts_sup_slot.c -- the supervisor's child table (see ts_sup_slot.h).
 *
 * Purpose: everything the supervisor does to one worker slot: fork its
 * process (with a socketpair channel and every signal blocked across
 * fork()), read its "R", reap it, decide between respawn, backoff and
 * crash loop, signal it.
 *
 * Respawn policy: a dead worker is replaced at once.  A worker that keeps
 * dying young (< TS_SUP_SHORT_LIFE_MS) waits TS_SUP_BACKOFF_BASE_MS,
 * doubling up to TS_SUP_BACKOFF_MAX_MS; a life of TS_SUP_HEALTHY_MS resets
 * that.  TS_SUP_STARTUP_FAILS_N deaths in a row before "ready", or any exit
 * status 2, is a crash loop.
 *
 * Locking: the table is private to the supervisor and only its loop
 * touches it.  No shm lock is taken here; the on_spawn / on_exit hooks
 * are lock-free by contract.
 *
 * Crash behaviour: the child's end of the channel and PR_SET_PDEATHSIG
 * (ts_worker_enter) tie each worker to this process; a child that cannot
 * set itself up exits 1 and is handled like any other early death.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_log.h"
#include "ts_sup_slot.h"

typedef struct {
    sup_slot_state_t  state;
    pid_t             pid;              /* 0 = no process */
    uint32_t          generation;
    int               role;
    int               instance;
    int64_t           spawned_at;       /* monotonic ms */
    int               short_deaths;     /* in a row, < TS_SUP_SHORT_LIFE_MS */
    int               early_deaths;     /* in a row, before "R" */
    int64_t           next_spawn_at;    /* IDLE / BACKOFF: when to fork */
    int               chan;             /* supervisor's end, -1 = closed */
} sup_slot_t;

static sup_slot_t   sup_slots[TS_SUP_WORKERS_MAX_N];
static int          sup_nslots;
static pid_t        sup_self;
static int          sup_own_fds[2] = { -1, -1 };


int
sup_slots_init(const ts_sup_config_t *cfg, const int sup_fds[2])
{
    int  i, j, n = 0;

    for (i = 0; i < cfg->nroles; i++) {
        if (cfg->roles[i].count < 0 || cfg->roles[i].main == NULL
            || cfg->roles[i].name == NULL
            || cfg->roles[i].count > TS_SUP_WORKERS_MAX_N - n)
        {
            ts_err("supervisor: bad role %d (or more than %d workers)", i,
                   TS_SUP_WORKERS_MAX_N);
            return -1;
        }
        n += cfg->roles[i].count;
    }

    sup_self = getpid();
    sup_own_fds[0] = sup_fds[0];
    sup_own_fds[1] = sup_fds[1];
    sup_nslots = 0;
    for (i = 0; i < cfg->nroles; i++) {
        for (j = 0; j < cfg->roles[i].count; j++) {
            sup_slot_t *c = &sup_slots[sup_nslots++];

            memset(c, 0, sizeof(*c));
            c->state = SUP_SLOT_IDLE;
            c->role = i;
            c->instance = j;
            c->chan = -1;
        }
    }
    return sup_nslots;
}


void
sup_slots_close(void)
{
    int  i;

    for (i = 0; i < sup_nslots; i++) {
        if (sup_slots[i].chan >= 0) {
            close(sup_slots[i].chan);
            sup_slots[i].chan = -1;
        }
    }
    sup_nslots = 0;
}


static void
sup_child(const ts_sup_config_t *cfg, int slot, int chan)
    __attribute__((noreturn));

/* In the child: drop the supervisor's fds, become a worker, run main. */
static void
sup_child(const ts_sup_config_t *cfg, int slot, int chan)
{
    int                   i;
    sup_slot_t           *me = &sup_slots[slot];
    const ts_sup_role_t  *role = &cfg->roles[me->role];
    ts_worker_ctx_t       ctx;

    for (i = 0; i < sup_nslots; i++) {
        if (sup_slots[i].chan >= 0) {
            close(sup_slots[i].chan);
            sup_slots[i].chan = -1;
        }
    }
    for (i = 0; i < 2; i++) {
        if (sup_own_fds[i] >= 0) {
            close(sup_own_fds[i]);
        }
    }

    if (ts_worker_enter(sup_self, chan, role->name) != 0) {
        _exit(1);
    }

    ctx = (ts_worker_ctx_t) {
        .slot = slot, .role = me->role, .instance = me->instance,
        .generation = me->generation, .role_name = role->name,
        .arg = role->arg, .channel_fd = chan
    };
    sup_nslots = 0;

    if (cfg->on_child_init != NULL) {
        cfg->on_child_init(&ctx, cfg->hook_arg);
    }

    exit(role->main(&ctx));
}


static int
sup_spawn(const ts_sup_config_t *cfg, int slot)
{
    int           sv[2], fl, err;
    pid_t         pid;
    sigset_t      all, saved;
    sup_slot_t   *c = &sup_slots[slot];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
        ts_err("socketpair() failed: %s", strerror(errno));
        return -1;
    }

    c->generation++;

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
        sup_child(cfg, slot, sv[1]);
    }

    sigprocmask(SIG_SETMASK, &saved, NULL);

    close(sv[1]);
    fl = fcntl(sv[0], F_GETFL);
    if (fl != -1) {
        fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
    }

    c->state = SUP_SLOT_STARTING;
    c->pid = pid;
    c->chan = sv[0];
    c->spawned_at = ts_now_ms();

    ts_debug("spawned %s[%d] slot %d gen %u", cfg->roles[c->role].name,
             (int) pid, slot, c->generation);

    if (cfg->on_spawn != NULL) {
        cfg->on_spawn(slot, pid, c->generation, c->role, cfg->hook_arg);
    }
    return 0;
}


void
sup_slots_spawn_due(const ts_sup_config_t *cfg, int64_t now)
{
    int          i;
    sup_slot_t  *c;

    for (i = 0; i < sup_nslots; i++) {
        c = &sup_slots[i];
        if ((c->state == SUP_SLOT_IDLE || c->state == SUP_SLOT_BACKOFF)
            && c->next_spawn_at <= now && sup_spawn(cfg, i) == -1)
        {
            c->state = SUP_SLOT_BACKOFF;
            c->next_spawn_at = now + TS_SUP_BACKOFF_BASE_MS;
        }
    }
}


int64_t
sup_slots_next_spawn_in(int64_t now)
{
    int      i;
    int64_t  t, best = -1;

    for (i = 0; i < sup_nslots; i++) {
        if (sup_slots[i].state != SUP_SLOT_IDLE
            && sup_slots[i].state != SUP_SLOT_BACKOFF)
        {
            continue;
        }
        t = sup_slots[i].next_spawn_at - now;
        t = t < 0 ? 0 : t;
        if (best < 0 || t < best) {
            best = t;
        }
    }
    return best;
}


int
sup_slots_pollfds(struct pollfd *pfd, int *slot_of, int max)
{
    int  i, n = 0;

    for (i = 0; i < sup_nslots && n < max; i++) {
        if (sup_slots[i].chan >= 0) {
            pfd[n].fd = sup_slots[i].chan;
            pfd[n].events = POLLIN;
            pfd[n].revents = 0;
            slot_of[n++] = i;
        }
    }
    return n;
}


void
sup_slot_read(int slot)
{
    char         buf[32];
    ssize_t      n, i;
    sup_slot_t  *c = &sup_slots[slot];

    while (c->chan >= 0) {
        n = read(c->chan, buf, sizeof(buf));
        if (n > 0) {
            for (i = 0; i < n; i++) {
                if (buf[i] == 'R' && c->state == SUP_SLOT_STARTING) {
                    c->state = SUP_SLOT_RUNNING;
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


/* The wait before respawning a worker that lived life ms. */
static int64_t
sup_backoff_ms(sup_slot_t *c, int64_t life)
{
    int      shift;
    int64_t  delay;

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
    return delay;
}


/* A child was reaped; returns 1 if this is a crash loop. */
static int
sup_slot_died(const ts_sup_config_t *cfg, int slot, int wstatus,
    int stopping)
{
    sup_slot_t   *c = &sup_slots[slot];
    pid_t         pid = c->pid;
    int64_t       now, life, delay;
    int           was_ready;
    char          what[64];
    const char   *name = cfg->roles[c->role].name;

    /* a last "R" may still sit in the channel */
    sup_slot_read(slot);
    if (c->chan >= 0) {
        close(c->chan);
        c->chan = -1;
    }
    was_ready = c->state == SUP_SLOT_RUNNING;
    c->pid = 0;
    c->state = SUP_SLOT_EXITED;

    now = ts_now_ms();
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

    if (!was_ready) {
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

    delay = sup_backoff_ms(c, life);
    c->state = SUP_SLOT_BACKOFF;
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

    for (i = 0; i < sup_nslots; i++) {
        if (sup_slots[i].pid == pid) {
            return i;
        }
    }
    return -1;
}


int
sup_slots_reap(const ts_sup_config_t *cfg, int stopping)
{
    int    st, slot, crash = 0;
    pid_t  pid;

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
        crash |= sup_slot_died(cfg, slot, st, stopping || crash);
    }

    return crash;
}


void
sup_slots_signal(int signo)
{
    int          i;
    sup_slot_t  *c;

    for (i = 0; i < sup_nslots; i++) {
        c = &sup_slots[i];
        if (c->pid <= 0) {
            if (signo == SIGTERM && c->state != SUP_SLOT_IDLE) {
                c->state = SUP_SLOT_EXITED;    /* backoff: not respawned */
            }
            continue;
        }
        if (kill(c->pid, signo) == -1 && errno != ESRCH) {
            ts_err("kill(%d, %d) failed: %s", (int) c->pid, signo,
                   strerror(errno));
        }
        if (signo == SIGTERM) {
            c->state = SUP_SLOT_STOPPING;
        }
    }
}


void
sup_slots_reap_blocking(const ts_sup_config_t *cfg)
{
    int    i, st;
    pid_t  r;

    for (i = 0; i < sup_nslots; i++) {
        if (sup_slots[i].pid <= 0) {
            continue;
        }
        do {
            r = waitpid(sup_slots[i].pid, &st, 0);
        } while (r == -1 && errno == EINTR);

        if (r == -1) {
            ts_err("waitpid(%d) failed: %s", (int) sup_slots[i].pid,
                   strerror(errno));
            sup_slots[i].pid = 0;
            sup_slots[i].state = SUP_SLOT_EXITED;
            continue;
        }
        sup_slot_died(cfg, i, st, 1);
    }
}


int
sup_slots_live(void)
{
    int  i, n = 0;

    for (i = 0; i < sup_nslots; i++) {
        n += sup_slots[i].pid > 0;
    }
    return n;
}


int
sup_slots_pids(int role, pid_t *out, int max)
{
    int  i, n = 0;

    if (getpid() != sup_self) {
        return 0;
    }
    for (i = 0; i < sup_nslots && n < max; i++) {
        if (sup_slots[i].pid > 0 && sup_slots[i].role == role) {
            out[n++] = sup_slots[i].pid;
        }
    }
    return n;
}


void
sup_slots_rearm(void)
{
    int          i;
    sup_slot_t  *c;

    for (i = 0; i < sup_nslots; i++) {
        c = &sup_slots[i];
        if (c->state == SUP_SLOT_EXITED && c->pid == 0) {
            c->state = SUP_SLOT_IDLE;
            c->short_deaths = 0;
            c->early_deaths = 0;
            c->next_spawn_at = 0;
        }
    }
}
