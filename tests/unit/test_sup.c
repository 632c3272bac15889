/*
 * test_sup.c -- unit tests for master/ts_sup.c with real processes.
 *
 * Purpose: each test forks a child that runs ts_sup_run() with real
 * worker roles, then observes it from outside the way an operator would:
 * worker pids and names from /proc, real SIGKILLs and SIGTERMs, exit
 * statuses from waitpid().  The supervisor's hooks write binary records
 * to a pipe so the test can see spawns and raw wait statuses too.
 *
 * Locking: none.
 *
 * Crash behaviour: the test process makes itself a child subreaper, so
 * workers orphaned by a killed supervisor come back to it and are reaped
 * here.  Every wait is bounded; teardown SIGKILLs the supervisor and any
 * remaining child by pid and reaps them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_sup.h"
#include "sup_fixture.h"

#define T_WAIT_MS   5000
#define T_MAXP      64

typedef struct {
    int       kind;           /* 'S' spawn, 'X' exit */
    int       slot;
    pid_t     pid;
    uint32_t  gen;
    int       role;
    int       wstatus;
} t_hook_rec_t;

static pid_t  g_sup = -1;
static int    g_hook[2] = { -1, -1 };
static int    g_note[2] = { -1, -1 };    /* workers -> test */
static int    g_watch[2] = { -1, -1 };   /* test -> supervisor's watch_fd */


static int64_t
t_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static void
t_sleep_ms(int ms)
{
    struct timespec  ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}


/* ---- worker mains (run in grandchildren) ----------------------------- */

static int
w_sleep(const ts_worker_ctx_t *ctx)
{
    struct pollfd  p;

    ts_worker_ready(ctx);
    while (!ts_worker_stopping()) {
        p.fd = ts_worker_stop_fd();
        p.events = POLLIN;
        poll(&p, 1, 200);
    }
    return 0;
}


static int
w_fatal(const ts_worker_ctx_t *ctx)
{
    (void) ctx;
    return 2;
}


static int
w_early(const ts_worker_ctx_t *ctx)
{
    (void) ctx;
    return 1;
}


static int
w_ignore_term(const ts_worker_ctx_t *ctx)
{
    signal(SIGTERM, SIG_IGN);
    if (write(g_note[1], "i", 1) != 1) {
        return 1;
    }
    ts_worker_ready(ctx);
    /* only SIGKILL (or the supervisor's death) ends this one */
    while (!ts_worker_orphaned(ctx)) {
        t_sleep_ms(20);
    }
    return 0;
}


static int
w_short(const ts_worker_ctx_t *ctx)
{
    ts_worker_ready(ctx);
    t_sleep_ms(30);
    return 0;
}


/* ---- hooks (run in the supervisor) ----------------------------------- */

static void
h_spawn(int slot, pid_t pid, uint32_t gen, int role, void *arg)
{
    t_hook_rec_t  r = { 'S', slot, pid, gen, role, 0 };

    (void) arg;
    (void) !write(g_hook[1], &r, sizeof(r));
}


static void
h_exit(int slot, pid_t pid, uint32_t gen, int role, int wstatus, void *arg)
{
    t_hook_rec_t  r = { 'X', slot, pid, gen, role, wstatus };

    (void) arg;
    (void) !write(g_hook[1], &r, sizeof(r));
}


static int
h_watch(int fd, void *arg)
{
    char     c;
    ssize_t  n;

    (void) arg;
    n = read(fd, &c, 1);
    if (n == 0) {
        return -1;
    }
    return n == 1 && c == 'q';
}


/* ---- helpers in the test process ------------------------------------- */

/* Children of ppid whose comm equals name (any name if NULL). */
static int
t_children(pid_t ppid, const char *name, pid_t *out, int max)
{
    DIR            *d;
    struct dirent  *de;
    char            path[300], buf[512], *rp, *lp;
    int             fd, n = 0, ppid_r;
    ssize_t         len;
    char            state;

    d = opendir("/proc");
    if (d == NULL) {
        return 0;
    }
    while ((de = readdir(d)) != NULL && n < max) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9') {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd == -1) {
            continue;
        }
        len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0) {
            continue;
        }
        buf[len] = '\0';
        lp = strchr(buf, '(');
        rp = strrchr(buf, ')');
        if (lp == NULL || rp == NULL || rp < lp) {
            continue;
        }
        if (sscanf(rp + 1, " %c %d", &state, &ppid_r) != 2
            || ppid_r != ppid || state == 'Z')
        {
            continue;
        }
        *rp = '\0';
        if (name != NULL && strcmp(lp + 1, name) != 0) {
            continue;
        }
        out[n++] = (pid_t) atoi(de->d_name);
    }
    closedir(d);
    return n;
}


/* Wait until ppid has exactly want children named name; returns count. */
static int
t_wait_children(pid_t ppid, const char *name, int want, pid_t *out,
    int ms)
{
    int      n = 0;
    int64_t  end = t_now_ms() + ms;

    do {
        n = t_children(ppid, name, out, T_MAXP);
        if (n == want) {
            return n;
        }
        t_sleep_ms(2);
    } while (t_now_ms() < end);

    return n;
}


static void
t_comm(pid_t pid, char *buf, size_t size)
{
    char     path[64];
    int      fd;
    ssize_t  n;

    buf[0] = '\0';
    snprintf(path, sizeof(path), "/proc/%d/comm", (int) pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return;
    }
    n = read(fd, buf, size - 1);
    close(fd);
    if (n > 0) {
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
    }
}


static int
t_pid_gone(pid_t pid)
{
    return kill(pid, 0) == -1 && errno == ESRCH;
}


/* Wait for pid (our child) up to ms; -1 on timeout (then it is killed). */
static int
t_wait(pid_t pid, int ms)
{
    return sup_fx_wait(pid, ms);
}


/* Next hook record within ms; 0 or -1. */
static int
t_hook_next(t_hook_rec_t *r, int ms)
{
    return sup_fx_read(g_hook[0], r, sizeof(*r), ms);
}


static pid_t
t_start(const ts_sup_config_t *cfg)
{
    return sup_fx_start(cfg, g_hook[0]);
}


/* A supervisor config over roles; with_hooks: the spawn/exit records. */
static void
t_config(ts_sup_config_t *cfg, const ts_sup_role_t *roles, int nroles,
    int with_hooks)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->name = "tsu-sup";
    cfg->roles = roles;
    cfg->nroles = nroles;
    cfg->watch_fd = -1;
    if (with_hooks) {
        cfg->on_spawn = h_spawn;
        cfg->on_exit = h_exit;
    }
}


/* The supervisor exits with code within ms. */
static void
t_exited(int ms, int code)
{
    int  st;

    st = t_wait(g_sup, ms);
    g_sup = -1;
    assert_true(st >= 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), code);
}


static int
t_setup(void **state)
{
    (void) state;
    if (pipe2(g_hook, O_CLOEXEC) == -1 || pipe2(g_note, O_CLOEXEC) == -1
        || pipe2(g_watch, O_CLOEXEC) == -1)
    {
        return -1;
    }
    g_sup = -1;
    return 0;
}


static int
t_teardown(void **state)
{
    pid_t  left[T_MAXP];
    int    i, n, st;

    (void) state;
    if (g_sup > 0) {
        kill(g_sup, SIGKILL);
        waitpid(g_sup, &st, 0);
        g_sup = -1;
    }
    /* orphans come to us (subreaper): stop them by pid */
    n = t_children(getpid(), NULL, left, T_MAXP);
    for (i = 0; i < n; i++) {
        kill(left[i], SIGKILL);
        waitpid(left[i], &st, 0);
    }
    for (i = 0; i < 2; i++) {
        close(g_hook[i]);
        close(g_note[i]);
        close(g_watch[i]);
    }
    return 0;
}


/* ---- tests ----------------------------------------------------------- */

static const ts_sup_role_t  t_roles_basic[] = {
    { "tsu-alpha", 2, w_sleep, NULL },
    { "tsu-beta",  1, w_sleep, NULL },
};


/* Starts t_roles_basic and waits for its 2 alpha and 1 beta workers. */
static void
t_start_basic(ts_sup_config_t *cfg, int with_hooks, pid_t *alpha,
    pid_t *beta)
{
    t_config(cfg, t_roles_basic, 2, with_hooks);
    g_sup = t_start(cfg);
    assert_true(g_sup > 0);
    assert_int_equal(t_wait_children(g_sup, "tsu-alpha", 2, alpha,
                                     T_WAIT_MS), 2);
    assert_int_equal(t_wait_children(g_sup, "tsu-beta", 1, beta,
                                     T_WAIT_MS), 1);
}


static void
test_sup_respawn_and_stop(void **state)
{
    ts_sup_config_t  cfg;
    pid_t            alpha[T_MAXP], beta[T_MAXP], now_alpha[T_MAXP];
    pid_t            all[T_MAXP], victim, fresh = 0;
    int              i, n, nall = 0, found;
    int64_t          t0, t1;
    char             comm[32];
    t_hook_rec_t     r;

    (void) state;

    t_start_basic(&cfg, 1, alpha, beta);
    /* nothing else under the supervisor */
    assert_int_equal(t_children(g_sup, NULL, all, T_MAXP), 3);

    t_comm(g_sup, comm, sizeof(comm));
    assert_string_equal(comm, "tsu-sup");
    t_comm(alpha[0], comm, sizeof(comm));
    assert_string_equal(comm, "tsu-alpha");
    t_comm(beta[0], comm, sizeof(comm));
    assert_string_equal(comm, "tsu-beta");

    for (i = 0; i < 3; i++) {
        assert_int_equal(t_hook_next(&r, T_WAIT_MS), 0);
        assert_int_equal(r.kind, 'S');
        assert_int_equal(r.gen, 1);
    }

    all[nall++] = alpha[0];
    all[nall++] = alpha[1];
    all[nall++] = beta[0];

    /* let the workers report ready, then kill one */
    t_sleep_ms(50);
    victim = alpha[1];
    t0 = t_now_ms();
    assert_int_equal(kill(victim, SIGKILL), 0);

    t1 = 0;
    while (t_now_ms() - t0 < T_WAIT_MS) {
        n = t_children(g_sup, "tsu-alpha", now_alpha, T_MAXP);
        if (n == 2 && now_alpha[0] != victim && now_alpha[1] != victim) {
            fresh = now_alpha[0] == alpha[0] ? now_alpha[1] : now_alpha[0];
            t1 = t_now_ms();
            break;
        }
        usleep(500);
    }
    assert_true(t1 != 0);
    print_message("respawn after SIGKILL took %lld ms (pid %d -> %d)\n",
                  (long long) (t1 - t0), (int) victim, (int) fresh);
    assert_true(t1 - t0 < 1000);
    assert_true(fresh != alpha[0] && fresh != victim);
    all[nall++] = fresh;

    /* the hooks saw the raw status and the new generation of that slot */
    found = 0;
    while (found < 2 && t_hook_next(&r, T_WAIT_MS) == 0) {
        if (r.kind == 'X' && r.pid == victim) {
            assert_true(WIFSIGNALED(r.wstatus));
            assert_int_equal(WTERMSIG(r.wstatus), SIGKILL);
            assert_int_equal(r.role, 0);
            assert_int_equal(r.gen, 1);
            found++;
        } else if (r.kind == 'S' && r.pid == fresh) {
            assert_int_equal(r.gen, 2);
            assert_int_equal(r.role, 0);
            found++;
        }
    }
    assert_int_equal(found, 2);

    /* the others were not touched */
    assert_int_equal(t_children(g_sup, "tsu-beta", beta + 1, 1), 1);
    assert_int_equal(beta[1], beta[0]);

    /* graceful stop */
    t0 = t_now_ms();
    assert_int_equal(kill(g_sup, SIGTERM), 0);
    t_exited(T_WAIT_MS, 0);
    print_message("graceful stop took %lld ms\n",
                  (long long) (t_now_ms() - t0));

    for (i = 0; i < nall; i++) {
        assert_true(t_pid_gone(all[i]));
    }
}


static const ts_sup_role_t  t_roles_fatal[] = {
    { "tsu-alpha", 2, w_sleep, NULL },
    { "tsu-fatal", 1, w_fatal, NULL },
};


static void
test_sup_fatal_exit_stops_node(void **state)
{
    ts_sup_config_t  cfg;
    int64_t          t0;
    t_hook_rec_t     r;
    pid_t            seen[T_MAXP];
    int              nseen = 0, i;

    (void) state;

    t_config(&cfg, t_roles_fatal, 2, 1);

    t0 = t_now_ms();
    g_sup = t_start(&cfg);
    assert_true(g_sup > 0);

    t_exited(T_WAIT_MS, 1);
    print_message("fatal exit -> supervisor gone after %lld ms\n",
                  (long long) (t_now_ms() - t0));

    /* the fatal worker was not respawned; every worker is gone */
    while (t_hook_next(&r, 0) == 0 && nseen < T_MAXP) {
        if (r.kind == 'S') {
            seen[nseen++] = r.pid;
            if (r.role == 1) {
                assert_int_equal(r.gen, 1);
            }
        }
    }
    assert_int_equal(nseen, 3);
    for (i = 0; i < nseen; i++) {
        assert_true(t_pid_gone(seen[i]));
    }
}


static const ts_sup_role_t  t_roles_early[] = {
    { "tsu-early", 1, w_early, NULL },
};


static void
test_sup_crash_loop_with_backoff(void **state)
{
    ts_sup_config_t  cfg;
    int              spawns = 0;
    int64_t          t0, took;
    t_hook_rec_t     r;

    (void) state;

    t_config(&cfg, t_roles_early, 1, 1);

    t0 = t_now_ms();
    g_sup = t_start(&cfg);
    assert_true(g_sup > 0);

    t_exited(10000, 1);
    took = t_now_ms() - t0;

    while (t_hook_next(&r, 0) == 0) {
        spawns += r.kind == 'S';
    }
    print_message("crash loop: %d spawns, supervisor exited after %lld ms\n",
                  spawns, (long long) took);
    assert_int_equal(spawns, TS_SUP_STARTUP_FAILS_N);
    /* respawns 2..5 waited 0 + 100 + 200 + 400 ms */
    assert_true(took >= 600);
    assert_true(took < 5000);
}


static const ts_sup_role_t  t_roles_stubborn[] = {
    { "tsu-stubborn", 1, w_ignore_term, NULL },
    { "tsu-beta",     1, w_sleep, NULL },
};


static void
test_sup_sigkill_after_deadline(void **state)
{
    ts_sup_config_t  cfg;
    pid_t            stub[T_MAXP], beta[T_MAXP];
    int              got_stub = 0;
    int64_t          t0, took;
    t_hook_rec_t     r;
    struct pollfd    p;
    char             c;

    (void) state;

    t_config(&cfg, t_roles_stubborn, 2, 1);
    cfg.stop_deadline_ms = 300;

    g_sup = t_start(&cfg);
    assert_true(g_sup > 0);

    /* the stubborn worker has ignored SIGTERM */
    p.fd = g_note[0];
    p.events = POLLIN;
    assert_int_equal(poll(&p, 1, T_WAIT_MS), 1);
    assert_int_equal(read(g_note[0], &c, 1), 1);
    assert_int_equal(c, 'i');

    assert_int_equal(t_wait_children(g_sup, "tsu-stubborn", 1, stub,
                                     T_WAIT_MS), 1);
    assert_int_equal(t_wait_children(g_sup, "tsu-beta", 1, beta,
                                     T_WAIT_MS), 1);

    t0 = t_now_ms();
    assert_int_equal(kill(g_sup, SIGTERM), 0);
    t_exited(T_WAIT_MS, 0);
    took = t_now_ms() - t0;
    print_message("stop with a SIGTERM-ignoring worker took %lld ms "
                  "(deadline 300 ms)\n", (long long) took);
    assert_true(took >= 250);
    assert_true(took < 3000);

    assert_true(t_pid_gone(stub[0]));
    assert_true(t_pid_gone(beta[0]));

    while (t_hook_next(&r, 0) == 0) {
        if (r.kind == 'X' && r.pid == stub[0]) {
            assert_true(WIFSIGNALED(r.wstatus));
            assert_int_equal(WTERMSIG(r.wstatus), SIGKILL);
            got_stub = 1;
        } else if (r.kind == 'X' && r.pid == beta[0]) {
            /* the well-behaved one left on SIGTERM by itself */
            assert_true(WIFEXITED(r.wstatus));
            assert_int_equal(WEXITSTATUS(r.wstatus), 0);
        }
    }
    assert_true(got_stub);
}


static void
test_sup_killed_workers_follow(void **state)
{
    ts_sup_config_t  cfg;
    pid_t            alpha[T_MAXP], beta[T_MAXP], w[3];
    int              i, st, reaped = 0;
    int64_t          t0;
    pid_t            r;

    (void) state;

    t_start_basic(&cfg, 0, alpha, beta);
    w[0] = alpha[0];
    w[1] = alpha[1];
    w[2] = beta[0];

    t0 = t_now_ms();
    assert_int_equal(kill(g_sup, SIGKILL), 0);
    st = t_wait(g_sup, T_WAIT_MS);
    g_sup = -1;
    assert_true(st >= 0 && WIFSIGNALED(st));

    /* orphans are re-parented to us (subreaper) and must leave alone */
    while (reaped < 3 && t_now_ms() - t0 < T_WAIT_MS) {
        for (i = 0; i < 3; i++) {
            if (w[i] == 0) {
                continue;
            }
            r = waitpid(w[i], &st, WNOHANG);
            if (r == w[i]) {
                /* PDEATHSIG = SIGTERM -> stop flag -> main returns 0 */
                assert_true(WIFEXITED(st));
                assert_int_equal(WEXITSTATUS(st), 0);
                w[i] = 0;
                reaped++;
            }
        }
        t_sleep_ms(2);
    }
    print_message("workers gone %lld ms after SIGKILL of the supervisor\n",
                  (long long) (t_now_ms() - t0));
    assert_int_equal(reaped, 3);
}


static const ts_sup_role_t  t_roles_short[] = {
    { "tsu-short", 1, w_short, NULL },
    { "tsu-beta",  1, w_sleep, NULL },
};


static void
test_sup_exit0_respawned_and_watch_stop(void **state)
{
    ts_sup_config_t  cfg;
    int              st, spawns = 0, exits0 = 0;
    int64_t          t0;
    t_hook_rec_t     r;

    (void) state;

    t_config(&cfg, t_roles_short, 2, 1);
    cfg.watch_fd = g_watch[0];
    cfg.on_watch = h_watch;

    g_sup = t_start(&cfg);
    assert_true(g_sup > 0);

    /* a worker that said ready and exits 0 is respawned, never a loop */
    t0 = t_now_ms();
    while (spawns < 4 && t_now_ms() - t0 < T_WAIT_MS) {
        if (t_hook_next(&r, 100) == 0 && r.role == 0) {
            spawns += r.kind == 'S';
            exits0 += r.kind == 'X' && WIFEXITED(r.wstatus)
                      && WEXITSTATUS(r.wstatus) == 0;
        }
    }
    assert_int_equal(spawns, 4);
    assert_true(exits0 >= 3);
    assert_int_equal(waitpid(g_sup, &st, WNOHANG), 0);   /* still running */

    /* "q" on the watched fd stops the node: exit 0 */
    assert_int_equal(write(g_watch[1], "q", 1), 1);
    t_exited(T_WAIT_MS, 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sup_respawn_and_stop,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_sup_fatal_exit_stops_node,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_sup_crash_loop_with_backoff,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_sup_sigkill_after_deadline,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_sup_killed_workers_follow,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_sup_exit0_respawned_and_watch_stop,
                                        t_setup, t_teardown),
    };

    /* orphaned workers re-parent to this process, so tests can reap them */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == -1) {
        perror("prctl(PR_SET_CHILD_SUBREAPER)");
        return 1;
    }

    return cmocka_run_group_tests(tests, NULL, NULL);
}
