/*
 * test_trk_throttle.c -- cmocka tests of the tracker's KDF throttles and
 * session caps, through trk_ops_handle() on a real store and a real
 * tracker shm segment (trk_guard_fixture.h): login, KDF and create_user
 * attempts are reserved before their KDF job, so parallel ones are
 * limited; the throttle table never flushes a refusing counter and
 * counts IPv6 per /64; one account holds at most
 * TS_TRK_SESSIONS_PER_USER_N sessions; a stranger's failed logins lock
 * out only the stranger (per user and address), a known node identity is
 * counted apart (its own region of the table), and the per-user safety
 * net needs TS_LOGIN_USER_ADDRS_N addresses.
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
#include "trk_keys.h"
#include "trk_known.h"


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


/* ---- who is locked out: per (user, address), known nodes ------------- */

/* Puts the request link on addr with a certificate of fingerprint
 * bytes b. */
static void
node_at(gx_t *g, const char *addr, uint8_t b)
{
    snprintf(g->link.addr, sizeof(g->link.addr), "%s", addr);
    memset(g->link.fp, b, TS_FP_B);
}


static ts_status_t
login_at(gx_t *g, const char *addr, uint8_t fp, const char *pw, char *m,
         size_t msz)
{
    char node[64];

    node_at(g, addr, fp);
    snprintf(node, sizeof(node), "%s:7000", addr);
    return login(g, "victim", pw, node, NULL, m, msz);
}


/* n wrong guesses from addr / fp, each checked by the KDF. */
static void
guesses(gx_t *g, const char *addr, uint8_t fp, int n)
{
    char m[256];
    int  i;

    for (i = 0; i < n; i++) {
        assert_int_equal(login_at(g, addr, fp, "guess", m, sizeof(m)),
                         TS_ERR_AUTH);
    }
}


/* The right password from addr / fp gets st; *m (256 bytes) the text. */
static void
right(gx_t *g, const char *addr, uint8_t fp, ts_status_t st, char *m)
{
    assert_int_equal(login_at(g, addr, fp, "pw", m, 256), st);
}


static void
test_stranger_locks_out_only_itself(void **state)
{
    gx_t *g = *state;
    char  m[256];

    create_user(g, "victim");
    /* the owner's node logs in once: it is known from now on */
    right(g, "127.0.0.1", 0xc1, TS_OK, m);
    /* a stranger guesses until refused, even with the right password */
    guesses(g, "127.0.0.2", 0xee, TS_LOGIN_FAILS_USER_N);
    right(g, "127.0.0.2", 0xee, TS_ERR_BUSY, m);
    assert_non_null(strstr(m, "too many failed logins"));
    /* the owner's known node gets in, even from the stranger's address
     * (one NAT); a node never seen, from its own address, too */
    right(g, "127.0.0.1", 0xc1, TS_OK, m);
    right(g, "127.0.0.2", 0xc1, TS_OK, m);
    right(g, "127.0.0.3", 0x33, TS_OK, m);
    /* a known node's own failures are counted for it alone (a thief of
     * its key guesses TS_LOGIN_FAILS_NODE_N times, not more) */
    guesses(g, "127.0.0.1", 0xc1, TS_LOGIN_FAILS_NODE_N);
    right(g, "127.0.0.1", 0xc1, TS_ERR_BUSY, m);
    assert_non_null(strstr(m, "too many failed logins"));
    right(g, "127.0.0.1", 0x33, TS_OK, m);
}


static void
test_safety_net_counts_addresses(void **state)
{
    gx_t *g = *state;
    char  m[256], a[32];
    int   i, j;

    create_user(g, "victim");
    right(g, "127.0.0.1", 0xc1, TS_OK, m);
    /* short refusal periods, so one address can go on failing */
    g->env.thr_user.delay_min_ms = 5;
    g->env.thr_user.delay_max_ms = 10;
    for (i = 0; i < TS_LOGIN_FAILS_USER_N + 10; i++) {
        usleep(15000);
        (void) login_at(g, "10.0.0.1", 0xee, "guess", m, sizeof(m));
    }
    assert_string_equal(m, "wrong user id or password");
    /* one address, however long it fails, counts once: so do the next
     * ones, up to one short of the net */
    for (j = 2; j < TS_LOGIN_USER_ADDRS_N; j++) {
        snprintf(a, sizeof(a), "10.0.0.%d", j);
        guesses(g, a, 0xee, TS_LOGIN_FAILS_USER_N);
    }
    right(g, "127.0.0.3", 0x31, TS_OK, m);
    /* one more address: the account is closed to unknown nodes ... */
    guesses(g, "10.0.1.1", 0xee, TS_LOGIN_FAILS_USER_N);
    right(g, "127.0.0.4", 0x32, TS_ERR_BUSY, m);
    assert_non_null(strstr(m, "many addresses"));
    assert_int_equal(login_at(g, "10.0.1.2", 0xee, "guess", m, sizeof(m)),
                     TS_ERR_BUSY);
    /* ... never to a known one; nor does its success reopen it */
    right(g, "127.0.0.1", 0xc1, TS_OK, m);
    right(g, "127.0.0.3", 0x31, TS_OK, m);
    right(g, "127.0.0.4", 0x32, TS_ERR_BUSY, m);
}


/* Fills every probe window of the general part of the table with
 * refusing counters ('p' names, as strangers make them). */
static void
flood_table(trk_shm_t *t, char kind, const trk_thr_cfg_t *c, int64_t now)
{
    char     nm[64];
    uint32_t i, j;

    for (i = 0; i < 3 * TS_THROTTLE_SLOTS_N; i++) {
        snprintf(nm, sizeof(nm), "flood-%c-%u", kind, i);
        for (j = 0; j < c->limit; j++) {
            (void) trk_thr_fail(t, kind, nm, c, now);
        }
    }
}


static void
test_flood_cannot_take_known_nodes_place(void **state)
{
    gx_t          *g = *state;
    trk_thr_cfg_t  c = { 1, 60000, 1000, 30000 };
    char           m[256];

    create_user(g, "victim");
    right(g, "127.0.0.1", 0xc1, TS_OK, m);
    /* strangers fill the table with counters that refuse someone: a node
     * never seen has no counter left and is refused ... */
    flood_table(&g->shm, 'p', &c, ts_now_ms());
    right(g, "127.0.0.3", 0x33, TS_ERR_BUSY, m);
    /* ... the known node's counters have a region of their own */
    right(g, "127.0.0.1", 0xc1, TS_OK, m);
    assert_int_equal(login_at(g, "127.0.0.1", 0xc1, "guess", m, sizeof(m)),
                     TS_ERR_AUTH);
    right(g, "127.0.0.1", 0xc1, TS_OK, m);

    /* only holders of known identities can fill that region; if they
     * ever do, the owner's node is counted like any other, not refused */
    memset(g->shm.thr, 0, sizeof(trk_thr_sh_t) * TS_THROTTLE_SLOTS_N);
    flood_table(&g->shm, 'i', &c, ts_now_ms());
    right(g, "127.0.0.1", 0xc1, TS_OK, m);
    right(g, "127.0.0.3", 0x33, TS_OK, m);
}


static void
test_known_nodes_remembered(void **state)
{
    gx_t    *g = *state;
    uint8_t  fp[TS_FP_B], tok[TS_TOKEN_B];
    char     m[256], kb[TRK_KEY_B];
    TDB_DATA k;
    int      i;

    create_user(g, "victim");
    /* TS_LOGIN_KNOWN_NODES_N remembered, the least recently seen out */
    for (i = 0; i <= TS_LOGIN_KNOWN_NODES_N; i++) {
        assert_int_equal(login_at(g, "127.0.0.1", (uint8_t) (0x40 + i),
                                  "pw", m, sizeof(m)), TS_OK);
        usleep(2000);
    }
    memset(fp, 0x40, TS_FP_B);
    assert_int_equal(trk_known_has(g->st, "victim", "", fp), 0);
    for (i = 1; i <= TS_LOGIN_KNOWN_NODES_N; i++) {
        memset(fp, 0x40 + i, TS_FP_B);
        assert_int_equal(trk_known_has(g->st, "victim", "", fp), 1);
    }
    assert_int_equal(trk_known_has(g->st, "nobody", "", fp), 0);
    memset(fp, 0, TS_FP_B);
    assert_int_equal(trk_known_has(g->st, "victim", "", fp), 0);

    /* a node that logged in through another tracker: this one has only
     * its replicated session (here: the local list is gone) */
    node_at(g, "127.0.0.1", 0x99);
    assert_int_equal(login(g, "victim", "pw", "127.0.0.1:7100", tok, m,
                           sizeof(m)), TS_OK);
    assert_int_equal(trk_store_begin(g->st), 0);
    k = trk_key(kb, TRK_KEY_LOCAL, "known", "victim");
    assert_int_equal(trk_kv_delete(g->st, k), 0);
    assert_int_equal(trk_store_commit(g->st), 0);
    memset(fp, 0x99, TS_FP_B);
    assert_int_equal(trk_known_has(g->st, "victim", "127.0.0.1:7100", fp),
                     1);
    assert_int_equal(trk_known_has(g->st, "victim", "127.0.0.1:7101", fp),
                     0);
    memset(fp, 0x98, TS_FP_B);
    assert_int_equal(trk_known_has(g->st, "victim", "127.0.0.1:7100", fp),
                     0);
    /* the session ended: no longer known here */
    {
        ts_wbuf_t pl, out;

        ts_wbuf_init(&pl);
        ts_wbuf_init(&out);
        ts_put_raw(&pl, tok, TS_TOKEN_B);
        assert_int_equal(req(g, TS_MSG_LOGOUT, &pl, &out, m, sizeof(m)),
                         TS_OK);
        ts_wbuf_free(&pl);
        ts_wbuf_free(&out);
    }
    memset(fp, 0x99, TS_FP_B);
    assert_int_equal(trk_known_has(g->st, "victim", "127.0.0.1:7100", fp),
                     0);
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
        cmocka_unit_test_setup_teardown(
            test_stranger_locks_out_only_itself, gx_setup, gx_teardown),
        cmocka_unit_test_setup_teardown(
            test_safety_net_counts_addresses, gx_setup, gx_teardown),
        cmocka_unit_test_setup_teardown(
            test_flood_cannot_take_known_nodes_place, gx_setup,
            gx_teardown),
        cmocka_unit_test_setup_teardown(
            test_known_nodes_remembered, gx_setup, gx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
