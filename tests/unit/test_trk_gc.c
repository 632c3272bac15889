/*
 * test_trk_gc.c -- cmocka tests of tombstone collection (tracker/trk_gc.c):
 * the rule on one envelope (only tombstones at or below the bound go,
 * live elements and creations stay), the round machine (no collection
 * until every tracker acknowledged the closed round and then everything
 * each had logged), and the age index on a real store (deletes of every
 * kind noted, collected without a walk and without an op, a tombstone
 * of a later round left for later, a held-back tracker holds everything,
 * the rebuild gives the same index, the maintained digest stays equal to
 * a walk's; an expired cached reply's tombstone goes the same way).
 *
 * Each store test works on a fresh tdb in a temp dir.  Single-threaded;
 * a crashed test leaves its dir under /tmp.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <tdb.h>

#include "ts_buf.h"
#include "trk_store.h"
#include "trk_index.h"
#include "trk_oplog.h"
#include "trk_gc.h"
#include "trk_keys.h"

#include "trk_fixture.h"


static trk_stamp_t
stamp(uint64_t hlc)
{
    trk_stamp_t s;

    s.hlc = hlc;
    s.origin = 1;
    return s;
}


static void
add_elem(trk_rec_t *r, trk_stamp_t c, const char *ek, uint64_t at, int tomb)
{
    trk_inc_t  *in = trk_rec_find_inc(r, c, 1);
    trk_elem_t *e;
    uint32_t    pos;
    int         found;

    assert_non_null(in);
    pos = trk_inc_find(in, ek, (uint32_t) strlen(ek), &found);
    assert_false(found);
    e = trk_inc_insert_at(in, pos);
    assert_non_null(e);
    assert_int_equal(trk_elem_set(e, ek, (uint32_t) strlen(ek), stamp(at),
                                  (uint8_t) tomb, "v", 1), 0);
}


static void
test_prune_rule(void **state)
{
    trk_rec_t   r;
    trk_stamp_t mx, zero;

    (void) state;
    memset(&zero, 0, sizeof(zero));
    /* a whole-record delete: goes at its own stamp, not below */
    trk_rec_init(&r);
    r.d = stamp(100);
    assert_int_equal(trk_gc_tomb_max(&r, &mx), 1);
    assert_true(mx.hlc == 100);
    assert_int_equal(trk_gc_prune(&r, stamp(99)), 0);
    assert_false(trk_gc_empty(&r));
    assert_int_equal(trk_gc_prune(&r, stamp(100)), 1);
    assert_true(trk_gc_empty(&r));
    trk_rec_free(&r);

    /* a set: live elements stay, tombs go up to the bound only */
    trk_rec_init(&r);
    add_elem(&r, zero, "a", 50, 0);
    add_elem(&r, zero, "b", 60, 1);
    add_elem(&r, zero, "c", 200, 1);
    assert_int_equal(trk_gc_tomb_max(&r, &mx), 1);
    assert_true(mx.hlc == 200);
    assert_int_equal(trk_gc_prune(&r, stamp(100)), 1);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.inc[0].n, 2);
    assert_int_equal(trk_gc_prune(&r, stamp(100)), 0);
    assert_int_equal(trk_gc_prune(&r, stamp(300)), 1);
    assert_int_equal(r.inc[0].n, 1);
    assert_int_equal(trk_gc_tomb_max(&r, &mx), 0);
    assert_false(trk_gc_empty(&r));
    trk_rec_free(&r);

    /* a set whose every element was removed: the key can go */
    trk_rec_init(&r);
    add_elem(&r, zero, "a", 70, 1);
    assert_int_equal(trk_gc_prune(&r, stamp(70)), 1);
    assert_true(trk_gc_empty(&r));
    trk_rec_free(&r);

    /* a first-writer-wins creation is no tombstone: it stays */
    trk_rec_init(&r);
    add_elem(&r, stamp(10), "a", 20, 1);
    assert_int_equal(trk_gc_prune(&r, stamp(30)), 1);
    assert_int_equal(r.n, 1);
    assert_false(trk_gc_empty(&r));
    trk_rec_free(&r);
}


static void
test_round_machine(void **state)
{
    trk_gc_t g;
    trk_vv_t lo, hi;

    (void) state;
    memset(&g, 0, sizeof(g));
    memset(&lo, 0, sizeof(lo));
    memset(&hi, 0, sizeof(hi));
    assert_int_equal(trk_gc_advance(&g, &lo, &hi), TRK_GC_IDLE);
    /* the round closed when this tracker had 1:5 */
    g.stage = TRK_GC_MERGED;
    g.need.seq[1] = 5;
    lo.seq[1] = 4;                      /* one tracker has not merged it */
    hi.seq[1] = 5;
    hi.seq[2] = 9;
    assert_int_equal(trk_gc_advance(&g, &lo, &hi), TRK_GC_MERGED);
    lo.seq[1] = 5;
    /* all merged it; tracker 2 had logged up to 9 by then */
    assert_int_equal(trk_gc_advance(&g, &lo, &hi), TRK_GC_STABLE);
    assert_true(g.need.seq[2] == 9);
    lo.seq[2] = 8;
    hi.seq[2] = 12;
    assert_int_equal(trk_gc_advance(&g, &lo, &hi), TRK_GC_STABLE);
    assert_true(g.need.seq[2] == 9);    /* the bound does not run away */
    lo.seq[2] = 9;
    assert_int_equal(trk_gc_advance(&g, &lo, &hi), TRK_GC_COLLECT);
}


static int
setup(void **state)
{
    return fx_setup(state, "/tmp/test_trk_gc.XXXXXX");
}


static uint64_t
pending(fx_t *fx)
{
    uint64_t n;

    assert_int_equal(trk_gc_pending(fx->st, &n), 0);
    return n;
}


static void
digest_check(fx_t *fx, uint8_t out[32])
{
    uint8_t walk[32];

    assert_int_equal(trk_digest(fx->st, out), 0);
    assert_int_equal(trk_log_digest(trk_store_tdb(fx->st), walk), 0);
    assert_memory_equal(out, walk, 32);
}


/* Runs steps with this tracker's own VV as every tracker's (lo = hi),
 * held back on origin 1 by hold seqs: the stage reached. */
static int
run_steps(fx_t *fx, trk_gc_t *g, uint64_t hold, int *collected)
{
    trk_vv_t vv;
    int      i, n, more;

    *collected = 0;
    for (i = 0; i < 8; i++) {
        assert_int_equal(trk_vv_load(fx->st, &vv), 0);
        vv.seq[1] -= hold;
        n = trk_gc_step(fx->st, g, &vv, &vv, 100000, &more);
        assert_true(n >= 0);
        *collected += n;
        if (*collected > 0 && g->stage == TRK_GC_IDLE) {
            break;
        }
    }
    return g->stage;
}


static int
key_exists(fx_t *fx, const char *k)
{
    TDB_DATA d;

    d.dptr = (unsigned char *) k;
    d.dsize = strlen(k);
    return tdb_exists(trk_store_tdb(fx->st), d);
}


static void
deletes(fx_t *fx, const char *g)
{
    char no[64];

    fx_mkgroup(fx, g, "alice", "bob", NULL);
    fx_begin(fx);
    /* bob leaves: an element tomb; alice, the last member: D */
    assert_int_equal(trk_do_leave_group(fx->st, "bob", g, no, sizeof(no),
                                        msg, sizeof(msg)), TS_OK);
    assert_int_equal(trk_do_leave_group(fx->st, "alice", g, no, sizeof(no),
                                        msg, sizeof(msg)), TS_OK);
    fx_commit(fx);
}


static void
test_index_collects(void **state)
{
    fx_t    *fx = *state;
    trk_gc_t g;
    uint8_t  h[32], d0[32], d1[32];
    long     ops;
    int      n;
    char     gk[64];

    memset(&g, 0, sizeof(g));
    fx_mkgroup(fx, "kept", "alice", NULL, NULL);
    fx_login(fx, "alice", "10.0.0.1:1", 7, h);
    assert_int_equal(pending(fx), 0);
    /* nothing to collect: an idle tracker closes no round, writes nothing */
    assert_int_equal(run_steps(fx, &g, 0, &n), TRK_GC_IDLE);
    assert_int_equal(n, 0);

    deletes(fx, "g1");
    fx_logout(fx, h);
    assert_true(pending(fx) >= 2);
    snprintf(gk, sizeof(gk), "g/g1");
    assert_true(key_exists(fx, gk));

    /* one tracker has not acknowledged the last op: nothing goes */
    assert_int_equal(run_steps(fx, &g, 1, &n), TRK_GC_MERGED);
    assert_int_equal(n, 0);
    assert_true(key_exists(fx, gk));

    /* the rebuild gives the same entries (in round 0) and digest */
    digest_check(fx, d0);
    n = (int) pending(fx);
    assert_int_equal(trk_idx_rebuild(fx->st), 0);
    assert_int_equal((int) pending(fx), n);
    digest_check(fx, d1);
    assert_memory_equal(d0, d1, 32);

    /* all acknowledged: collected, without an op */
    memset(&g, 0, sizeof(g));
    ops = trk_oplog_count(fx->st);
    assert_int_equal(run_steps(fx, &g, 0, &n), TRK_GC_IDLE);
    assert_true(n >= 2);
    assert_int_equal(pending(fx), 0);
    assert_false(key_exists(fx, gk));
    assert_int_equal(trk_oplog_count(fx->st), ops);
    digest_check(fx, d1);
    assert_memory_not_equal(d0, d1, 32);
    assert_true(key_exists(fx, "g/kept"));

    /* a group made again under the old name is a fresh live record */
    fx_mkgroup(fx, "g1", "bob", NULL, NULL);
    assert_true(key_exists(fx, gk));
    assert_int_equal(pending(fx), 0);
}


/* A fresh round machine and the deletes of group grp. */
static fx_t *
with_deletes(void **state, trk_gc_t *g, const char *grp)
{
    memset(g, 0, sizeof(*g));
    deletes(*state, grp);
    return *state;
}


static void
test_later_round_waits(void **state)
{
    trk_gc_t g;
    fx_t    *fx = with_deletes(state, &g, "a1");
    trk_vv_t vv;
    int      more, n;

    assert_int_equal(trk_vv_load(fx->st, &vv), 0);
    assert_int_equal(trk_gc_step(fx->st, &g, &vv, &vv, 1000, &more), 0);
    assert_int_equal(g.stage, TRK_GC_MERGED);
    /* a delete after the round closed belongs to the next one */
    deletes(fx, "a2");
    assert_int_equal(run_steps(fx, &g, 0, &n), TRK_GC_IDLE);
    assert_false(key_exists(fx, "g/a1"));
    assert_true(key_exists(fx, "g/a2"));
    assert_true(pending(fx) > 0);
    /* and goes with the next round */
    assert_int_equal(run_steps(fx, &g, 0, &n), TRK_GC_IDLE);
    assert_false(key_exists(fx, "g/a2"));
    assert_int_equal(pending(fx), 0);
}


static void
test_snapshot_holds_rounds(void **state)
{
    trk_gc_t g;
    fx_t    *fx = with_deletes(state, &g, "s1");
    int      n;

    /* a snapshot half merged: its tombs are not covered by the VV yet */
    fx_begin(fx);
    assert_int_equal(trk_gc_snapshot_mark(fx->st, 0), 0);
    fx_commit(fx);
    assert_int_equal(run_steps(fx, &g, 0, &n), TRK_GC_IDLE);
    assert_int_equal(n, 0);
    assert_true(key_exists(fx, "g/s1"));
    fx_begin(fx);
    assert_int_equal(trk_gc_snapshot_mark(fx->st, 1), 0);
    fx_commit(fx);
    assert_int_equal(run_steps(fx, &g, 0, &n), TRK_GC_IDLE);
    assert_false(key_exists(fx, "g/s1"));
}


/* A cached reply expires by its queue (no walk); its tombstone then
 * ages out by the rule like any other. */
static void
test_reply_tombstone(void **state)
{
    fx_t    *fx = *state;
    trk_gc_t g;
    uint8_t  hash[TS_SHA256_B];
    char     kb[TRK_KEY_B];
    TDB_DATA k;
    uint64_t now = (uint64_t) ts_wall_ms();
    int      n;

    memset(&g, 0, sizeof(g));
    memset(hash, 0xab, sizeof(hash));
    fx_begin(fx);
    assert_int_equal(trk_reply_put(fx->st, 77, 20, hash, "ok", 2, now), 0);
    fx_commit(fx);
    k = trk_key_reply(kb, 77, hash);
    assert_true(tdb_exists(trk_store_tdb(fx->st), k));
    assert_int_equal(pending(fx), 0);
    assert_int_equal(trk_store_expire_replies(fx->st, now + 1000), 1);
    /* deleted: a tombstone still in tdb, noted in the index */
    assert_true(tdb_exists(trk_store_tdb(fx->st), k));
    assert_int_equal(pending(fx), 1);
    assert_int_equal(run_steps(fx, &g, 0, &n), TRK_GC_IDLE);
    assert_int_equal(n, 1);
    assert_false(tdb_exists(trk_store_tdb(fx->st), k));
    assert_int_equal(pending(fx), 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prune_rule),
        cmocka_unit_test(test_round_machine),
        cmocka_unit_test_setup_teardown(test_index_collects, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_later_round_waits, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_holds_rounds, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_reply_tombstone, setup,
                                        fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
