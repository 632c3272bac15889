/*
 * test_sup_reset.c -- unit tests for the supervisor's segment reset (tier
 * 2: master/ts_sup.c with shm/ts_shm.c), with real processes.
 *
 * Purpose: a supervisor runs in a forked child with worker processes that
 * take a robust lock in a real shm segment.  The test drives that lock
 * into ENOTRECOVERABLE the way a careless process would (a child locks
 * and dies, the next locker gets EOWNERDEAD and unlocks without
 * pthread_mutex_consistent); a worker meeting it sets reset_needed; the
 * supervisor must stop every worker, call the rebuild hook once, and
 * start them again with new pids.  The hooks write binary records to a
 * pipe so the test sees the order: exits, rebuild, spawns.
 *
 * Locking: the workers take the segment's lock only after the test opens
 * the gate (a flag in another table), so the poisoning never races them.
 *
 * Crash behaviour: the test process is a child subreaper: a worker that
 * outlived its supervisor would come back to it, and the tests check
 * that none does.  Every wait is bounded; teardown SIGKILLs by pid.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_shlock.h"
#include "ts_shm.h"
#include "ts_sup.h"
#include "sup_fixture.h"

#define T_WAIT_MS    5000
#define T_TAB_LOCK   1
#define T_TAB_GATE   2
#define T_WORKERS_N  2

typedef struct {
    int       kind;           /* 'S' spawn, 'X' exit, 'B' rebuild */
    pid_t     pid;
    int       slot;
} t_rec_t;

static ts_shm_t  g_shm;
static char      g_name[64];
static pid_t     g_sup = -1;
static int       g_hook[2] = { -1, -1 };
static int       g_rebuild_fails;
static int       g_rebuild_keeps_flag;


static void
t_lock_init(void *table, uint32_t capacity)
{
    (void) capacity;
    ts_shlock_init(table);
}


static const ts_shm_spec_t  t_specs[] = {
    { T_TAB_LOCK, sizeof(ts_shlock_sh_t), 1, t_lock_init },
    { T_TAB_GATE, sizeof(_Atomic uint32_t), 1, NULL },
};


static ts_shlock_sh_t *
t_lock(void)
{
    return ts_shm_table(&g_shm, T_TAB_LOCK, NULL, NULL);
}


static _Atomic uint32_t *
t_gate(void)
{
    return ts_shm_table(&g_shm, T_TAB_GATE, NULL, NULL);
}


/* ---- worker and hooks (in the supervisor's children / supervisor) ---- */

static int
w_locker(const ts_worker_ctx_t *ctx)
{
    struct pollfd  p;

    ts_worker_ready(ctx);
    while (!ts_worker_stopping()) {
        if (atomic_load(t_gate()) && ts_shm_lock(&g_shm, t_lock(), NULL,
                                                 NULL) >= 0)
        {
            ts_shlock_unlock(t_lock());
        }
        p.fd = ts_worker_stop_fd();
        p.events = POLLIN;
        poll(&p, 1, 5);
    }
    return 0;
}


static void
t_record(int kind, pid_t pid, int slot)
{
    t_rec_t  r = { kind, pid, slot };

    (void) !write(g_hook[1], &r, sizeof(r));
}


static void
h_spawn(int slot, pid_t pid, uint32_t gen, int role, void *arg)
{
    t_record('S', pid, slot);
}


static void
h_exit(int slot, pid_t pid, uint32_t gen, int role, int wstatus, void *arg)
{
    t_record('X', pid, slot);
}


static int
h_reset_needed(void *arg)
{
    return ts_shm_reset_needed(&g_shm);
}


static int
h_rebuild(void *arg)
{
    const uint32_t  ids[] = { T_TAB_LOCK, T_TAB_GATE };

    t_record('B', getpid(), -1);
    if (g_rebuild_fails) {
        return -1;
    }
    if (ts_shm_reinit(&g_shm, t_specs, 2, ids, 2) != 0) {
        return -1;
    }
    if (g_rebuild_keeps_flag) {
        ts_shm_request_reset(&g_shm);       /* a fault that stays */
    }
    return 0;
}


/* ---- helpers in the test process ------------------------------------- */

static int
t_next(t_rec_t *r, int ms)
{
    return sup_fx_read(g_hook[0], r, sizeof(*r), ms);
}


static int
t_wait(pid_t pid, int ms)
{
    return sup_fx_wait(pid, ms);
}


/* A child takes the lock and exits holding it; we get EOWNERDEAD and
 * unlock without making it consistent: ENOTRECOVERABLE for good. */
static void
t_poison_lock(void)
{
    pid_t  pid;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        _exit(pthread_mutex_lock(&t_lock()->mutex) == 0 ? 0 : 1);
    }
    assert_int_equal(t_wait(pid, T_WAIT_MS), 0);
    assert_int_equal(pthread_mutex_lock(&t_lock()->mutex), EOWNERDEAD);
    assert_int_equal(pthread_mutex_unlock(&t_lock()->mutex), 0);
    /* (not pthread_mutex_trylock: glibc's leaves a not recoverable
     * robust mutex locked by the caller) */
    assert_int_equal(ts_shlock_lock(t_lock(), NULL, NULL), -1);
}


static void
t_config(ts_sup_config_t *cfg, const ts_sup_role_t *roles)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->name = "tsr-sup";
    cfg->roles = roles;
    cfg->nroles = 1;
    cfg->watch_fd = -1;
    cfg->on_spawn = h_spawn;
    cfg->on_exit = h_exit;
    cfg->reset_needed = h_reset_needed;
    cfg->on_reset = h_rebuild;
}


static pid_t
t_start(const ts_sup_config_t *cfg)
{
    return sup_fx_start(cfg, g_hook[0]);
}


/* Reads n records of kind into pids; fails the test on anything else. */
static void
t_expect(int kind, int n, pid_t *pids)
{
    int      i;
    t_rec_t  r;

    for (i = 0; i < n; i++) {
        assert_int_equal(t_next(&r, T_WAIT_MS), 0);
        assert_int_equal(r.kind, kind);
        if (pids != NULL) {
            pids[i] = r.pid;
        }
    }
}


/* The supervisor exits with code within T_WAIT_MS, and nothing outlives
 * it (orphans would be our children: we are a subreaper). */
static void
t_expect_exit(int code)
{
    int  st;

    st = t_wait(g_sup, T_WAIT_MS);
    g_sup = -1;
    assert_true(st >= 0 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), code);
    if (code == 0) {
        t_expect('X', T_WORKERS_N, NULL);
    }
    assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}


static int
t_setup(void **state)
{
    (void) state;
    snprintf(g_name, sizeof(g_name), "/tessera-test-supr-%d",
             (int) getpid());
    g_rebuild_fails = 0;
    g_rebuild_keeps_flag = 0;
    g_sup = -1;
    if (pipe2(g_hook, O_CLOEXEC) == -1
        || ts_shm_create(&g_shm, g_name, 1, t_specs, 2) != 0)
    {
        return -1;
    }
    return 0;
}


static int
t_teardown(void **state)
{
    int    st;
    pid_t  p;

    (void) state;
    if (g_sup > 0) {
        kill(g_sup, SIGKILL);
        waitpid(g_sup, &st, 0);
    }
    /* orphans come to us (subreaper): stop them by pid */
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
        /* reaped */
    }
    close(g_hook[0]);
    close(g_hook[1]);
    ts_shm_detach(&g_shm);
    ts_shm_unlink(g_name);
    return 0;
}


/* ---- tests ----------------------------------------------------------- */

static const ts_sup_role_t  t_roles[] = {
    { "tsr-locker", T_WORKERS_N, w_locker, NULL },
};


/* Starts the supervisor and waits for its first workers' spawns (their
 * pids into pids if not NULL). */
static void
t_boot(ts_sup_config_t *cfg, pid_t *pids)
{
    t_config(cfg, t_roles);
    g_sup = t_start(cfg);
    assert_true(g_sup > 0);
    t_expect('S', T_WORKERS_N, pids);
}


static void
test_reset_rebuilds_once_and_restarts(void **state)
{
    ts_sup_config_t  cfg;
    pid_t            old[T_WORKERS_N], fresh[T_WORKERS_N], gone[T_WORKERS_N];
    int              i, j, st;
    t_rec_t          r;
    int64_t          t0;

    (void) state;
    t_boot(&cfg, old);

    t_poison_lock();
    assert_int_equal(ts_shm_reset_needed(&g_shm), 0);
    t0 = ts_now_ms();
    atomic_store(t_gate(), 1);

    /* every old worker exits, then one rebuild, then new workers */
    t_expect('X', T_WORKERS_N, gone);
    t_expect('B', 1, NULL);
    t_expect('S', T_WORKERS_N, fresh);
    print_message("reset: workers restarted %lld ms after the lock was "
                  "met\n", (long long) (ts_now_ms() - t0));
    for (i = 0; i < T_WORKERS_N; i++) {
        assert_true(gone[i] == old[0] || gone[i] == old[1]);
        for (j = 0; j < T_WORKERS_N; j++) {
            assert_true(fresh[i] != old[j]);
        }
        assert_true(kill(old[i], 0) == -1 && errno == ESRCH);
    }

    /* the segment works again: flag clear, lock usable by everyone */
    assert_int_equal(ts_shm_reset_needed(&g_shm), 0);
    assert_int_equal(ts_shm_lock(&g_shm, t_lock(), NULL, NULL), 0);
    ts_shlock_unlock(t_lock());
    atomic_store(t_gate(), 1);
    assert_int_equal(t_next(&r, 400), -1);       /* no second reset */
    assert_int_equal(waitpid(g_sup, &st, WNOHANG), 0);

    assert_int_equal(kill(g_sup, SIGTERM), 0);
    t_expect_exit(0);
}


static void
test_reset_rebuild_failure_stops(void **state)
{
    ts_sup_config_t  cfg;

    (void) state;
    g_rebuild_fails = 1;
    t_boot(&cfg, NULL);

    ts_shm_request_reset(&g_shm);
    t_expect('X', T_WORKERS_N, NULL);
    t_expect('B', 1, NULL);
    t_expect_exit(1);
}


/* A segment that needs a rebuild again at once, every time: after
 * TS_SUP_RESETS_MAX_N rebuilds the supervisor stops (exit 1). */
static void
test_reset_loop_stops(void **state)
{
    ts_sup_config_t  cfg;
    int              i;

    (void) state;
    g_rebuild_keeps_flag = 1;
    t_boot(&cfg, NULL);

    ts_shm_request_reset(&g_shm);
    for (i = 0; i < TS_SUP_RESETS_MAX_N; i++) {
        t_expect('X', T_WORKERS_N, NULL);
        t_expect('B', 1, NULL);
        t_expect('S', T_WORKERS_N, NULL);
    }
    t_expect('X', T_WORKERS_N, NULL);
    t_expect_exit(1);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset_rebuilds_once_and_restarts,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_reset_rebuild_failure_stops,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_reset_loop_stops,
                                        t_setup, t_teardown),
    };

    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == -1) {
        perror("prctl(PR_SET_CHILD_SUBREAPER)");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
