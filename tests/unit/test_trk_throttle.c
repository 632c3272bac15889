/*
 * test_trk_throttle.c -- cmocka tests of the tracker's KDF throttles and
 * session caps, through trk_ops_handle() on a real store and a real
 * tracker shm segment (trk_guard_fixture.h): login, KDF and create_user
 * attempts are reserved before their KDF job, so parallel ones are
 * limited; the throttle table never flushes a refusing counter and
 * counts IPv6 per /64; one account holds at most
 * TS_TRK_SESSIONS_PER_USER_N sessions.
 *
 * Locking: single-threaded.  Crash behaviour: see trk_guard_fixture.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ts_clock.h"
#include "trk_guard_fixture.h"


static void
test_parallel_wrong_logins_limited(void **state)
{
    gx_t          *g = *state;
    trk_kdf_job_t *jobs[20];
    ts_status_t    st;
    char           m[256];
    int            i, n = 0, busy = 0;

    create_user(g, "victim");
    g->env.thr_kdf.limit = 0;       /* only the user counter here */
    /* twenty guesses at once: only TS_LOGIN_FAILS_USER_N get a KDF job;
     * the rest are refused before it, while those are in progress */
    for (i = 0; i < 20; i++) {
        jobs[n] = start(g, TS_MSG_LOGIN, "victim", "guess", "127.0.0.1:7",
                        &st, m, sizeof(m));
        if (jobs[n] != NULL) {
            n++;
        } else {
            assert_int_equal(st, TS_ERR_BUSY);
            assert_non_null(strstr(m, "in progress"));
            busy++;
        }
    }
    assert_int_equal(n, TS_LOGIN_FAILS_USER_N);
    assert_int_equal(busy, 20 - TS_LOGIN_FAILS_USER_N);
    for (i = 0; i < n; i++) {
        assert_int_equal(finish(g, jobs[i]), TS_ERR_AUTH);
    }
    /* now they failed: refused for a period, even the right password */
    assert_null(start(g, TS_MSG_LOGIN, "victim", "pw", "127.0.0.1:7", &st,
                      m, sizeof(m)));
    assert_int_equal(st, TS_ERR_BUSY);
    assert_non_null(strstr(m, "too many failed logins"));

    /* a right password in progress holds a place, and gives it back */
    create_user(g, "alice");
    for (i = 0; i < TS_LOGIN_FAILS_USER_N; i++) {
        jobs[i] = start(g, TS_MSG_LOGIN, "alice", "pw", "127.0.0.1:8", &st,
                        m, sizeof(m));
        assert_non_null(jobs[i]);
    }
    assert_null(start(g, TS_MSG_LOGIN, "alice", "pw", "127.0.0.1:8", &st, m,
                      sizeof(m)));
    assert_int_equal(st, TS_ERR_BUSY);
    for (i = 0; i < TS_LOGIN_FAILS_USER_N; i++) {
        assert_int_equal(finish(g, jobs[i]), TS_OK);
    }
    jobs[0] = start(g, TS_MSG_LOGIN, "alice", "pw", "127.0.0.1:8", &st, m,
                    sizeof(m));
    assert_non_null(jobs[0]);
    /* a job that never runs (queue full) gives its place back too */
    trk_kdf_job_abort(&g->env, jobs[0]);
    assert_int_equal(trk_thr_wait_ms(&g->shm, 'u', "alice",
                                     &g->env.thr_user, ts_now_ms()), 0);
}


static void
test_kdf_work_per_address(void **state)
{
    gx_t          *g = *state;
    trk_kdf_job_t *jobs[TS_TRK_KDF_ADDR_N];
    ts_status_t    st;
    char           m[256], name[32];
    int            i;

    /* KDF jobs in progress from one address, create_user and login */
    for (i = 0; i < TS_TRK_KDF_ADDR_N; i++) {
        snprintf(name, sizeof(name), "new%d", i);
        jobs[i] = start(g, TS_MSG_CREATE_USER, name, "pw", NULL, &st, m,
                        sizeof(m));
        assert_non_null(jobs[i]);
    }
    assert_null(start(g, TS_MSG_CREATE_USER, "one-more", "pw", NULL, &st, m,
                      sizeof(m)));
    assert_int_equal(st, TS_ERR_BUSY);
    assert_non_null(strstr(m, "password checks from your address"));
    assert_null(start(g, TS_MSG_LOGIN, "new0", "pw", "127.0.0.1:7", &st, m,
                      sizeof(m)));
    assert_int_equal(st, TS_ERR_BUSY);
    /* another address is not affected */
    snprintf(g->link.addr, sizeof(g->link.addr), "127.0.0.2");
    assert_int_equal(finish(g, start(g, TS_MSG_CREATE_USER, "other", "pw",
                                     NULL, &st, m, sizeof(m))), TS_OK);
    snprintf(g->link.addr, sizeof(g->link.addr), "127.0.0.1");
    for (i = 0; i < TS_TRK_KDF_ADDR_N; i++) {
        assert_int_equal(finish(g, jobs[i]), TS_OK);
    }
    /* create_users per address: TS_TRK_CREATE_ADDR_N, then refused */
    for (i = TS_TRK_KDF_ADDR_N; i < TS_TRK_CREATE_ADDR_N; i++) {
        snprintf(name, sizeof(name), "new%d", i);
        create_user(g, name);
    }
    assert_null(start(g, TS_MSG_CREATE_USER, "too-many", "pw", NULL, &st, m,
                      sizeof(m)));
    assert_int_equal(st, TS_ERR_BUSY);
    assert_non_null(strstr(m, "too many accounts created"));
    /* logins are not creations */
    assert_int_equal(login(g, "new1", "pw", "127.0.0.1:9", NULL, m,
                           sizeof(m)), TS_OK);
}


/* ---- throttle table ---------------------------------------------------- */

static void
test_throttle_keeps_refusing_counters(void **state)
{
    gx_t          *g = *state;
    trk_shm_t     *t = &g->shm;
    trk_thr_cfg_t  c = { 3, 60000, 1000, 30000 };
    char           nm[32];
    int64_t        now = 9000000;
    uint32_t       i;
    int            why, full = 0;

    /* the target is refusing ... */
    for (i = 0; i < 3; i++) {
        (void) trk_thr_fail(t, 'u', "target", &c, now);
    }
    assert_int_equal(trk_thr_wait_ms(t, 'u', "target", &c, now), 1000);
    /* ... and a flood of failures for fresh names (twice the table) does
     * not flush it: only counters that refuse nobody are reused */
    for (i = 0; i < 2 * TS_THROTTLE_SLOTS_N; i++) {
        snprintf(nm, sizeof(nm), "fresh-%u", i);
        (void) trk_thr_fail(t, 'u', nm, &c, now + 1);
    }
    assert_int_equal(trk_thr_wait_ms(t, 'u', "target", &c, now + 1), 999);

    /* every counter refusing: a new name has no place and is refused as
     * throttled (never by evicting one) */
    for (i = 0; i < 3 * TS_THROTTLE_SLOTS_N && !full; i++) {
        snprintf(nm, sizeof(nm), "loud-%u", i);
        (void) trk_thr_fail(t, 'u', nm, &c, now + 2);
        (void) trk_thr_fail(t, 'u', nm, &c, now + 2);
        (void) trk_thr_fail(t, 'u', nm, &c, now + 2);
        full = trk_thr_wait_ms(t, 'u', "newcomer", &c, now + 2) > 0;
    }
    assert_true(full);
    assert_true(trk_thr_reserve(t, 'u', "newcomer", &c, now + 2, &why) > 0);
    assert_int_equal(why, TRK_THR_FULL);
    assert_true(trk_thr_wait_ms(t, 'u', "target", &c, now + 2) > 0);
    /* they all age out after their window */
    assert_int_equal(trk_thr_reserve(t, 'u', "newcomer", &c,
                                     now + 2 + 60000, &why), 0);
}


static void
test_throttle_ipv6_per_prefix(void **state)
{
    gx_t          *g = *state;
    trk_shm_t     *t = &g->shm;
    trk_thr_cfg_t  c = { 2, 60000, 1000, 30000 };
    char           n[64];
    int64_t        now = 7000000;

    trk_addr_norm("2001:db8:1:2:aaaa:bbbb:cccc:dddd", n, sizeof(n));
    assert_string_equal(n, "2001:db8:1:2::/64");
    trk_addr_norm("::ffff:10.0.0.7", n, sizeof(n));
    assert_string_equal(n, "10.0.0.7");
    trk_addr_norm("10.0.0.7", n, sizeof(n));
    assert_string_equal(n, "10.0.0.7");
    /* two addresses of one /64 share a counter ... */
    (void) trk_thr_fail(t, 'a', "2001:db8:1:2::1", &c, now);
    (void) trk_thr_fail(t, 'a', "2001:db8:1:2:ffff::9", &c, now);
    assert_int_equal(trk_thr_wait_ms(t, 'a', "2001:db8:1:2:1:2:3:4", &c,
                                     now), 1000);
    /* ... another /64 does not */
    assert_int_equal(trk_thr_wait_ms(t, 'a', "2001:db8:1:3::1", &c, now),
                     0);
    /* the connection buckets count per /64 too */
    assert_int_equal(trk_addr_bucket(t, "2001:db8:1:2::1"),
                     trk_addr_bucket(t, "2001:db8:1:2:9::9"));
    assert_int_equal(trk_addr_bucket(t, "::ffff:10.0.0.7"),
                     trk_addr_bucket(t, "10.0.0.7"));
}


/* ---- sessions ---------------------------------------------------------- */

static void
test_sessions_per_user_capped(void **state)
{
    gx_t          *g = *state;
    uint8_t        toks[TS_TRK_SESSIONS_PER_USER_N + 3][TS_TOKEN_B];
    trk_counts_t   c;
    char           m[256];
    int            i, n = TS_TRK_SESSIONS_PER_USER_N + 3;

    create_user(g, "alice");
    create_user(g, "bob");
    assert_int_equal(login(g, "bob", "pw", "127.0.0.1:6000", toks[0], m,
                           sizeof(m)), TS_OK);
    g->env.thr_kdf.limit = 0;
    for (i = 0; i < n; i++) {
        char node[32];

        snprintf(node, sizeof(node), "127.0.0.1:%d", 7000 + i);
        assert_int_equal(login(g, "alice", "pw", node, toks[i], m,
                               sizeof(m)), TS_OK);
        usleep(2000);               /* distinct creation times */
    }
    assert_int_equal(trk_store_count(g->st, &c), 0);
    /* alice: the cap; bob: his one */
    assert_int_equal(c.sessions, TS_TRK_SESSIONS_PER_USER_N + 1);
    /* the oldest three were ended, the newest work */
    for (i = 0; i < 3; i++) {
        assert_int_equal(list_groups(g, toks[i], m, sizeof(m)), TS_ERR_AUTH);
    }
    for (i = 3; i < n; i++) {
        assert_int_equal(list_groups(g, toks[i], m, sizeof(m)), TS_OK);
    }
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_parallel_wrong_logins_limited, gx_setup, gx_teardown),
        cmocka_unit_test_setup_teardown(test_kdf_work_per_address, gx_setup,
                                        gx_teardown),
        cmocka_unit_test_setup_teardown(
            test_throttle_keeps_refusing_counters, gx_setup, gx_teardown),
        cmocka_unit_test_setup_teardown(
            test_throttle_ipv6_per_prefix, gx_setup, gx_teardown),
        cmocka_unit_test_setup_teardown(
            test_sessions_per_user_capped, gx_setup, gx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
