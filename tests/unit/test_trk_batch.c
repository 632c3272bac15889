/*
 * test_trk_batch.c -- cmocka tests of the tracker store's group commit
 * (trk_store_sub_begin / trk_store_batch_end in tracker/trk_store.c) on a
 * real tdb file.
 *
 * Covers: the parts of a batch are durable only after batch_end (a store
 * closed before it -- a worker killed -- keeps none of them) and then all
 * of them, each with its own op and stamp; a part refused before it wrote
 * leaves the batch alone; a part that wrote and then failed rolls the
 * whole batch back and batch_end reports it; any other transaction
 * commits the open batch first; a batch is flushed at TS_TRK_BATCH_MAX_N
 * parts.
 *
 * Locking: single-threaded.  Crash behaviour: a crashed test leaves its
 * temp dir under /tmp.
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
#include <fcntl.h>
#include <tdb.h>

#include "ts_buf.h"
#include "ts_proto.h"
#include "trk_index.h"
#include "trk_oplog.h"
#include "trk_ops.h"
#include "trk_store.h"

#include "trk_fixture.h"


static int
setup(void **state)
{
    return fx_setup(state, "/tmp/test_trk_batch.XXXXXX");
}


/* One create_group as a part of the open batch; its status. */
static ts_status_t
part_create(fx_t *fx, const char *user, const char *group)
{
    ts_status_t s;

    assert_int_equal(trk_store_sub_begin(fx->st), 0);
    s = trk_do_create_group(fx->st, user, group, msg, sizeof(msg));
    if (s == TS_OK) {
        assert_int_equal(trk_store_commit(fx->st), 0);
    } else {
        trk_store_cancel(fx->st);
    }
    return s;
}


static int
group_exists(fx_t *fx, const char *g)
{
    trk_group_t grp;
    int         rc = trk_group_get(fx->st, g, &grp);

    if (rc == 0) {
        trk_group_free(&grp);
    }
    return rc == 0;
}


static size_t
ops_logged(fx_t *fx)
{
    uint64_t after = 0, seq;
    size_t   n = 0;

    while (trk_oplog_next(fx->st, 1, after, &seq) == 0) {
        n++;
        after = seq;
    }
    return n;
}


/* The indexes every write keeps (trk_index.h) followed each part: the
 * group count, and the kept digest equals a walk's. */
static void
index_check(fx_t *fx, uint64_t groups)
{
    trk_counts_t c;
    uint8_t      kept[32], walked[32];

    assert_int_equal(trk_idx_status(fx->st, &c, kept), 0);
    assert_int_equal(c.groups, groups);
    assert_int_equal(trk_log_digest(trk_store_tdb(fx->st), walked), 0);
    assert_memory_equal(kept, walked, 32);
}


static void
test_durable_only_at_end(void **state)
{
    fx_t *fx = *state;

    assert_int_equal(part_create(fx, "alice", "g1"), TS_OK);
    assert_int_equal(part_create(fx, "bob", "g2"), TS_OK);
    assert_true(trk_store_batch_pending(fx->st));
    /* the worker dies before the end of its turn: nothing of it */
    fx_reopen(fx);
    assert_false(group_exists(fx, "g1"));
    assert_false(group_exists(fx, "g2"));
    assert_int_equal(ops_logged(fx), 0);

    assert_int_equal(part_create(fx, "alice", "g1"), TS_OK);
    assert_int_equal(part_create(fx, "bob", "g2"), TS_OK);
    assert_int_equal(trk_store_batch_end(fx->st), 0);
    assert_false(trk_store_batch_pending(fx->st));
    fx_reopen(fx);
    assert_true(group_exists(fx, "g1"));
    assert_true(group_exists(fx, "g2"));
    assert_int_equal(ops_logged(fx), 2);        /* one op per request */
    index_check(fx, 2);
}


static void
test_refused_part_keeps_batch(void **state)
{
    fx_t *fx = *state;

    assert_int_equal(part_create(fx, "alice", "g1"), TS_OK);
    /* exists: refused before any write */
    assert_int_not_equal(part_create(fx, "bob", "g1"), TS_OK);
    assert_int_equal(part_create(fx, "bob", "g2"), TS_OK);
    assert_int_equal(trk_store_batch_end(fx->st), 0);
    fx_reopen(fx);
    assert_true(group_exists(fx, "g1"));
    assert_true(group_exists(fx, "g2"));
    assert_int_equal(ops_logged(fx), 2);
    index_check(fx, 2);
}


static void
test_failed_part_fails_batch(void **state)
{
    fx_t *fx = *state;

    assert_int_equal(part_create(fx, "alice", "g1"), TS_OK);
    /* a part that wrote and then failed: tdb cannot take it out alone */
    assert_int_equal(trk_store_sub_begin(fx->st), 0);
    assert_int_equal(trk_do_create_group(fx->st, "bob", "g2", msg,
                                         sizeof(msg)), TS_OK);
    trk_store_cancel(fx->st);
    assert_int_equal(trk_store_batch_end(fx->st), -1);
    /* the next end reports only what came after */
    assert_int_equal(trk_store_batch_end(fx->st), 0);
    fx_reopen(fx);
    assert_false(group_exists(fx, "g1"));
    assert_false(group_exists(fx, "g2"));
    /* and the store goes on working */
    assert_int_equal(part_create(fx, "carol", "g3"), TS_OK);
    assert_int_equal(trk_store_batch_end(fx->st), 0);
    fx_reopen(fx);
    assert_true(group_exists(fx, "g3"));
    index_check(fx, 1);
}


static void
test_other_txn_commits_batch_first(void **state)
{
    fx_t *fx = *state;

    assert_int_equal(part_create(fx, "alice", "g1"), TS_OK);
    assert_false(trk_store_in_txn(fx->st));
    assert_int_equal(trk_store_begin(fx->st), 0);
    assert_int_equal(trk_do_create_group(fx->st, "bob", "g2", msg,
                                         sizeof(msg)), TS_OK);
    assert_int_equal(trk_store_commit(fx->st), 0);
    /* the batch is already durable; its end still reports success */
    fx_reopen(fx);
    assert_true(group_exists(fx, "g1"));
    assert_true(group_exists(fx, "g2"));
    assert_int_equal(trk_store_batch_end(fx->st), 0);
}


static void
test_flush_at_cap(void **state)
{
    fx_t    *fx = *state;
    char     g[32], u[32];
    uint32_t i;

    for (i = 0; i < TS_TRK_BATCH_MAX_N + 3; i++) {
        snprintf(g, sizeof(g), "g%u", i);
        snprintf(u, sizeof(u), "u%u", i);   /* within the groups quota */
        assert_int_equal(part_create(fx, u, g), TS_OK);
    }
    /* the first TS_TRK_BATCH_MAX_N were committed when the cap was hit */
    fx_reopen(fx);
    assert_int_equal(ops_logged(fx), TS_TRK_BATCH_MAX_N);
    snprintf(g, sizeof(g), "g%u", TS_TRK_BATCH_MAX_N - 1);
    assert_true(group_exists(fx, g));
    snprintf(g, sizeof(g), "g%u", TS_TRK_BATCH_MAX_N);
    assert_false(group_exists(fx, g));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_durable_only_at_end, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_refused_part_keeps_batch, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_failed_part_fails_batch, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_other_txn_commits_batch_first,
                                        setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_flush_at_cap, setup,
                                        fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
