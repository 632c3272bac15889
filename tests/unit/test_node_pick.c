/*
 * test_node_pick.c -- the pieces of the data plane's choices that are
 * pure arithmetic or one shm table: a link's window from rate x RTT and
 * its deadlines (workers/dl_win.c), and the seeder's sent-lately cache
 * (workers/up_seed.c: a chunk sent to one peer is refused to another for
 * TS_UP_SEED_HOLD_MS, never to the same one).
 *
 * Locking: none (one process).  Crash behaviour: the test unlinks its own
 * segment in teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "dl_int.h"
#include "up_int.h"

static ts_shm_t seg;

static int
setup(void **state)
{
    char name[64];

    snprintf(name, sizeof(name), "/tessera-test-pick-%d", (int) getpid());
    assert_int_equal(ts_shm_create(&seg, name, NODE_SHM_LAYOUT,
                                   node_shm_specs, node_shm_nspecs), 0);
    return 0;
}

static int
teardown(void **state)
{
    ts_shm_unlink(seg.name);
    ts_shm_detach(&seg);
    return 0;
}

/* A link that delivers rate bytes/s at a round trip of rtt_ms. */
static void
feed(dl_link_t *k, uint64_t rate, int64_t rtt_ms, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        dl_win_rtt(k, rtt_ms * 1000);
        dl_win_reply(k, TS_CHUNK_B,
                     (int64_t) (TS_CHUNK_B * 1000000ull / rate));
    }
}

static void
test_window_follows_bdp(void **state)
{
    dl_link_t k;

    memset(&k, 0, sizeof(k));
    dl_win_reset(&k);
    assert_int_equal(k.win, TS_NODE_PIPELINE_N);
    /* 1000 Mbit/s at 50 ms: 6.25 MB in flight, the most there is */
    feed(&k, 125000000ull, 50, 20);
    assert_int_equal(k.win, TS_DL_WIN_MAX_N);
    /* 100 Mbit/s at 100 ms: 1.25 MB = 3 chunks + the spare */
    memset(&k, 0, sizeof(k));
    dl_win_reset(&k);
    feed(&k, 12500000ull, 100, 20);
    assert_int_equal(k.win, 3 + TS_DL_WIN_SPARE_N);
    /* a link that slows to 2 Mbit/s asks for the least again */
    feed(&k, 250000ull, 100, 20);
    assert_int_equal(k.win, TS_DL_WIN_MIN_N);
    /* the least RTT seen is kept; a longer one drifts it up slowly */
    dl_win_rtt(&k, 400 * 1000);
    assert_true(k.rtt_us < 110 * 1000);
}

static void
test_deadlines_from_measures(void **state)
{
    dl_link_t k;

    memset(&k, 0, sizeof(k));
    dl_win_reset(&k);
    /* unmeasured: the fixed limits */
    assert_int_equal(dl_win_nobyte_ms(&k), TS_NODE_PEER_TIMEOUT_MS);
    assert_int_equal(dl_win_slow_ms(&k, 20000), 20000);
    /* fast and near: the floors */
    feed(&k, 12500000ull, 20, 8);
    assert_int_equal(dl_win_nobyte_ms(&k), TS_DL_NOBYTE_MIN_MS);
    assert_int_equal(dl_win_slow_ms(&k, 20000), TS_DL_SLOW_MIN_MS);
    assert_int_equal(dl_win_slow_ms(&k, 2000), 2000);   /* --slow-chunk-ms */
    /* 0.5 Mbit/s: a chunk takes 8.4 s; slow only after 8 times that
     * (capped by the node's limit), dead after 16 RTTs more than it */
    memset(&k, 0, sizeof(k));
    dl_win_reset(&k);
    feed(&k, 62500ull, 20, 8);
    assert_int_equal(dl_win_slow_ms(&k, 20000), 20000);
    assert_true(dl_win_nobyte_ms(&k) > 8400);
    assert_true(dl_win_nobyte_ms(&k) <= TS_NODE_PEER_TIMEOUT_MS);
}

static void
test_seed_refuses_another_peer(void **state)
{
    up_t      u;
    up_link_t a, b;

    memset(&u, 0, sizeof(u));
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    u.shm = &seg;
    a.has_fp = b.has_fp = 1;
    a.fp[0] = 0x11;
    b.fp[0] = 0x22;
    /* a asks share 5 alone: served; b asks too, a moment after: what
     * went to a is refused to b, what did not is served */
    assert_int_equal(up_seed_allow(&u, &a, 5, 9), 1);
    assert_int_equal(up_seed_allow(&u, &a, 5, 10), 1);
    assert_int_equal(up_seed_allow(&u, &b, 5, 9), 0);
    assert_int_equal(up_seed_allow(&u, &b, 5, 11), 1);
    /* first ask: served and noted */
    assert_int_equal(up_seed_allow(&u, &a, 3, 77), 1);
    /* the same peer again (a lost chunk, a retry): served */
    assert_int_equal(up_seed_allow(&u, &a, 3, 77), 1);
    /* another peer within the hold: refused; other chunks and shares not */
    assert_int_equal(up_seed_allow(&u, &b, 3, 77), 0);
    assert_int_equal(up_seed_allow(&u, &b, 3, 78), 1);
    assert_int_equal(up_seed_allow(&u, &b, 4, 77), 1);
    /* served from a download in progress (no share): never refused */
    assert_int_equal(up_seed_allow(&u, &b, -1, 77), 1);
    /* the last chunk index a file can have fits the packing */
    assert_int_equal(up_seed_allow(&u, &a, TS_NODE_SHARES_N - 1,
                                   TS_FILE_MAX_CHUNKS_N - 1), 1);
    assert_int_equal(up_seed_allow(&u, &b, TS_NODE_SHARES_N - 1,
                                   TS_FILE_MAX_CHUNKS_N - 1), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_follows_bdp),
        cmocka_unit_test(test_deadlines_from_measures),
        cmocka_unit_test_setup_teardown(test_seed_refuses_another_peer,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
