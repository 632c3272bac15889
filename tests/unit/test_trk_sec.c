/*
 * test_trk_sec.c -- cmocka tests of the tracker's issue-5 tables: the
 * failed-login throttle (trk_thr_*), the per-worker connection counters
 * (trk_conns_*, trk_addr_bucket), the session cache's node fingerprint,
 * and the session record codec with and without a fingerprint.
 *
 * Each test that needs shm creates a private /tessera-trk-<port> segment
 * on a port no live tracker owns and unlinks it at the end.  No threads;
 * time is passed in explicitly, so nothing sleeps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ts_buf.h"
#include "ts_clock.h"
#include "ts_net.h"
#include "trk_shm.h"
#include "trk_store.h"

typedef struct {
    trk_shm_t shm;
    char      name[64];
} fx_t;


static int
setup(void **state)
{
    fx_t     *fx = calloc(1, sizeof(*fx));
    uint16_t  port;
    int       i, ok = 0;

    assert_non_null(fx);
    /* a port no live tracker owns: ts_shm_create refuses those (EBUSY) */
    for (i = 0; i < 20 && !ok; i++) {
        port = (uint16_t) (57000 + (getpid() + i * 89) % 4000);
        ok = trk_shm_create(&fx->shm, port) == 0;
    }
    assert_true(ok);
    trk_shm_name(fx->name, sizeof(fx->name), port);
    *state = fx;
    return 0;
}


static int
teardown(void **state)
{
    fx_t *fx = *state;

    ts_shm_detach(&fx->shm.shm);
    ts_shm_unlink(fx->name);
    free(fx);
    return 0;
}


/* ---- throttle --------------------------------------------------------- */

static void
test_throttle_doubles_and_caps(void **state)
{
    fx_t          *fx = *state;
    trk_shm_t     *t = &fx->shm;
    trk_thr_cfg_t  c = { 3, 10000, 100, 400 };
    int64_t        now = 1000000;

    assert_int_equal(trk_thr_wait_ms(t, 'u', "alice", &c, now), 0);
    assert_int_equal(trk_thr_fail(t, 'u', "alice", &c, now), 1);
    assert_int_equal(trk_thr_fail(t, 'u', "alice", &c, now), 2);
    assert_int_equal(trk_thr_wait_ms(t, 'u', "alice", &c, now), 0);
    /* the limit: refusals start, 100 ms */
    assert_int_equal(trk_thr_fail(t, 'u', "alice", &c, now), 3);
    assert_int_equal(trk_thr_wait_ms(t, 'u', "alice", &c, now), 100);
    assert_int_equal(trk_thr_wait_ms(t, 'u', "alice", &c, now + 40), 60);
    assert_int_equal(trk_thr_wait_ms(t, 'u', "alice", &c, now + 100), 0);
    /* each further failure doubles the period, up to the cap */
    now += 100;
    assert_int_equal(trk_thr_fail(t, 'u', "alice", &c, now), 4);
    assert_int_equal(trk_thr_wait_ms(t, 'u', "alice", &c, now), 200);
    assert_int_equal(trk_thr_fail(t, 'u', "alice", &c, now), 5);
    assert_int_equal(trk_thr_wait_ms(t, 'u', "alice", &c, now), 400);
    assert_int_equal(trk_thr_fail(t, 'u', "alice", &c, now), 6);
    assert_int_equal(trk_thr_wait_ms(t, 'u', "alice", &c, now), 400);
    /* other names and the other kind are separate counters */
    assert_int_equal(trk_thr_wait_ms(t, 'u', "bob", &c, now), 0);
    assert_int_equal(trk_thr_wait_ms(t, 'a', "alice", &c, now), 0);
    /* a reset (successful login) forgets the counter */
    trk_thr_reset(t, 'u', "alice");
    assert_int_equal(trk_thr_wait_ms(t, 'u', "alice", &c, now), 0);
    assert_int_equal(trk_thr_fail(t, 'u', "alice", &c, now), 1);
}


static void
test_throttle_window(void **state)
{
    fx_t          *fx = *state;
    trk_shm_t     *t = &fx->shm;
    trk_thr_cfg_t  c = { 2, 1000, 500, 30000 };
    int64_t        now = 5000000;

    assert_int_equal(trk_thr_fail(t, 'a', "10.0.0.1", &c, now), 1);
    assert_int_equal(trk_thr_fail(t, 'a', "10.0.0.1", &c, now + 10), 2);
    assert_int_equal(trk_thr_wait_ms(t, 'a', "10.0.0.1", &c, now + 10),
                     500);
    /* quiet for a whole window: forgotten, counting starts again */
    assert_int_equal(trk_thr_wait_ms(t, 'a', "10.0.0.1", &c, now + 1010),
                     0);
    assert_int_equal(trk_thr_fail(t, 'a', "10.0.0.1", &c, now + 1010), 1);
    /* limit 0: never refused */
    c.limit = 0;
    assert_int_equal(trk_thr_fail(t, 'a', "10.0.0.2", &c, now), 0);
    assert_int_equal(trk_thr_wait_ms(t, 'a', "10.0.0.2", &c, now), 0);
}


static void
test_throttle_table_full(void **state)
{
    fx_t          *fx = *state;
    trk_shm_t     *t = &fx->shm;
    trk_thr_cfg_t  c = { 3, 60000, 1000, 30000 };
    char           nm[32];
    int64_t        now = 9000000;
    uint32_t       i;

    /* three times more names than slots, one failure each */
    for (i = 0; i < 3 * TS_THROTTLE_SLOTS_N; i++) {
        snprintf(nm, sizeof(nm), "made-up-%u", i);
        (void) trk_thr_fail(t, 'u', nm, &c, now + i / 64);
    }
    /* a counter that is being hit survives the churn around it */
    for (i = 0; i < 3; i++) {
        assert_int_equal(trk_thr_fail(t, 'u', "target", &c, now + 100000),
                         i + 1);
    }
    for (i = 0; i < TS_THROTTLE_SLOTS_N / 4; i++) {
        snprintf(nm, sizeof(nm), "more-%u", i);
        (void) trk_thr_fail(t, 'u', nm, &c, now + 100000);
    }
    assert_int_equal(trk_thr_wait_ms(t, 'u', "target", &c, now + 100000),
                     1000);
}


/* ---- connection counters ----------------------------------------------- */

static void
test_conn_counters(void **state)
{
    fx_t      *fx = *state;
    trk_shm_t *t = &fx->shm;
    uint32_t   b1, b2, total, inb, unauth, i, same = 0;
    char       ip[32];

    b1 = trk_addr_bucket(t, "127.0.0.1");
    b2 = trk_addr_bucket(t, "127.0.0.2");
    assert_true(b1 < TS_ADDR_SLOTS_N && b2 < TS_ADDR_SLOTS_N);
    assert_int_equal(trk_addr_bucket(t, "127.0.0.1"), b1);
    /* spread: few of 256 addresses share 127.0.0.1's bucket */
    for (i = 0; i < 256; i++) {
        snprintf(ip, sizeof(ip), "10.1.2.%u", i);
        same += trk_addr_bucket(t, ip) == b1;
    }
    assert_true(same < 8);

    atomic_fetch_add(&t->conns[0].total, 3);
    atomic_fetch_add(&t->conns[0].addr[b1], 3);
    atomic_fetch_add(&t->conns[0].unauth, 2);
    atomic_fetch_add(&t->conns[5].total, 4);
    atomic_fetch_add(&t->conns[5].addr[b1], 1);
    atomic_fetch_add(&t->conns[5].addr[b2 == b1 ? (b1 + 1)
                                       % TS_ADDR_SLOTS_N : b2], 3);
    trk_conns_sum(t, b1, &total, &inb, &unauth);
    assert_int_equal(total, 7);
    assert_int_equal(inb, 4);
    assert_int_equal(unauth, 2);
    /* a dead worker's slot is reset: its counts vanish */
    trk_conns_reset(t, 0);
    trk_conns_sum(t, b1, &total, &inb, &unauth);
    assert_int_equal(total, 4);
    assert_int_equal(inb, 1);
    assert_int_equal(unauth, 0);
    trk_conns_reset(t, 5);
    trk_conns_reset(t, -1);                 /* ignored */
    trk_conns_reset(t, TS_SUP_WORKERS_MAX_N);
    trk_conns_sum(t, b1, &total, NULL, NULL);
    assert_int_equal(total, 0);
}


/* ---- sessions ------------------------------------------------------------ */

static void
test_session_cache_fp(void **state)
{
    fx_t      *fx = *state;
    trk_shm_t *t = &fx->shm;
    uint8_t    h1[32], h2[32], fp[TS_FP_B], got[TS_FP_B], zero[TS_FP_B];
    char       user[TS_ID_MAX_B + 1];
    int64_t    now = ts_now_ms();

    memset(h1, 1, sizeof(h1));
    memset(h2, 2, sizeof(h2));
    memset(fp, 0xab, sizeof(fp));
    memset(zero, 0, sizeof(zero));
    assert_int_equal(trk_sess_insert(t, h1, "alice", fp, now), 0);
    assert_int_equal(trk_sess_insert(t, h2, "bob", NULL, now), 0);
    assert_int_equal(trk_sess_lookup_fp(t, h1, now, 1000, 0, user,
                                        sizeof(user), got), 1);
    assert_string_equal(user, "alice");
    assert_memory_equal(got, fp, TS_FP_B);
    assert_int_equal(trk_sess_lookup_fp(t, h2, now, 1000, 0, user,
                                        sizeof(user), got), 1);
    assert_memory_equal(got, zero, TS_FP_B);
    /* expired: no fingerprint handed out */
    memset(got, 0x55, sizeof(got));
    assert_int_equal(trk_sess_lookup_fp(t, h1, now + 5000, 1000, 0, user,
                                        sizeof(user), got), 2);
    assert_int_equal(got[0], 0x55);
}


static void
test_session_codec_fp(void **state)
{
    trk_session_t s, d;
    ts_wbuf_t     b;
    size_t        i;

    (void) state;
    memset(&s, 0, sizeof(s));
    snprintf(s.user, sizeof(s.user), "alice");
    snprintf(s.node_addr, sizeof(s.node_addr), "10.0.0.1:6000");
    s.created_ms = 1234;
    s.user_hlc = 99;
    s.user_origin = 2;
    for (i = 0; i < TS_FP_B; i++) {
        s.fp[i] = (uint8_t) (i * 7 + 1);
    }
    ts_wbuf_init(&b);
    trk_session_encode(&b, &s);
    memset(&d, 0x33, sizeof(d));
    assert_int_equal(trk_session_decode(b.data, b.len, &d), 0);
    assert_string_equal(d.user, "alice");
    assert_string_equal(d.node_addr, "10.0.0.1:6000");
    assert_int_equal(d.created_ms, 1234);
    assert_int_equal(d.user_hlc, 99);
    assert_int_equal(d.user_origin, 2);
    assert_memory_equal(d.fp, s.fp, TS_FP_B);

    /* a record written before the fingerprint existed: zeros */
    memset(&d, 0x33, sizeof(d));
    assert_int_equal(trk_session_decode(b.data, b.len - TS_FP_B, &d), 0);
    assert_string_equal(d.user, "alice");
    for (i = 0; i < TS_FP_B; i++) {
        assert_int_equal(d.fp[i], 0);
    }
    /* anything else after the old fields is corrupt */
    assert_int_not_equal(trk_session_decode(b.data, b.len - 1, &d), 0);
    assert_int_not_equal(trk_session_decode(b.data, b.len - TS_FP_B + 5,
                                            &d), 0);
    ts_put_u8(&b, 0);
    assert_int_not_equal(trk_session_decode(b.data, b.len, &d), 0);
    ts_wbuf_free(&b);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_throttle_doubles_and_caps,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_window, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_throttle_table_full, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_conn_counters, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_session_cache_fp, setup,
                                        teardown),
        cmocka_unit_test(test_session_codec_fp),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
