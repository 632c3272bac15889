/*
 * test_trk_index.c -- cmocka tests of the tracker's local indexes
 * (tracker/trk_index.c, trk_index_q.c, trk_index_build.c): they follow
 * every write, a merge of another tracker's ops gives the same indexes as
 * the writes themselves, a rebuild from the data gives the same as the
 * incremental upkeep, and the expiry queues hand out exactly what is due.
 *
 * Each test works on fresh tdb files in a temp dir.  Single-threaded; a
 * crashed test leaves its dir under /tmp.
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
#include <tdb.h>

#include "ts_buf.h"
#include "ts_crypto.h"
#include "ts_proto.h"
#include "trk_ops.h"
#include "trk_store.h"
#include "trk_index.h"
#include "trk_oplog.h"

#include "trk_fixture.h"


static int
setup(void **state)
{
    return fx_setup(state, "/tmp/test_trk_index.XXXXXX");
}


/* The index's groups (all, or of user) as one "a,b,c" string. */
static void
groups_str(trk_store_t *st, const char *user, char *out, size_t n)
{
    trk_strlist_t l;
    ts_wbuf_t     b;
    ts_rbuf_t     r;
    uint32_t      i, cnt;
    char          g[TS_ID_MAX_B + 1], o[TS_ID_MAX_B + 1];

    /* the index itself ... */
    assert_int_equal(trk_idx_groups(st, user, &l), 0);
    trk_strlist_free(&l);
    /* ... and what LIST_GROUPS answers from it */
    ts_wbuf_init(&b);
    assert_int_equal(trk_do_list_groups(st, user, &b, msg, sizeof(msg)),
                     TS_OK);
    ts_rbuf_init(&r, b.data, b.len);
    cnt = ts_get_u32(&r);
    out[0] = '\0';
    for (i = 0; i < cnt; i++) {
        assert_int_equal(ts_get_str(&r, g, sizeof(g)), 0);
        assert_int_equal(ts_get_str(&r, o, sizeof(o)), 0);
        (void) ts_get_u32(&r);
        snprintf(out + strlen(out), n - strlen(out), "%s%s", i ? "," : "", g);
    }
    ts_wbuf_free(&b);
}


/* The maintained digest equals the one computed by a walk; the op log
 * count STATUS gives equals the one a walk gives. */
static void
digest_check(trk_store_t *st, uint8_t out[32])
{
    uint8_t  walk[32];
    trk_vv_t vv;

    assert_int_equal(trk_vv_load(st, &vv), 0);
    assert_int_equal(trk_oplog_count_kept(st, &vv), trk_oplog_count(st));

    assert_int_equal(trk_digest(st, out), 0);
    assert_int_equal(trk_log_digest(trk_store_tdb(st), walk), 0);
    assert_memory_equal(out, walk, 32);
}


static void
test_index_follows_writes(void **state)
{
    fx_t         *fx = *state;
    trk_counts_t  c;
    uint8_t       d1[32], d2[32], h[32];
    char          s[256];
    char          np[TS_ID_MAX_B + 1];

    fx_mkgroup(fx, "g1", "alice", "bob", NULL);
    fx_mkgroup(fx, "g2", "bob", "carol", NULL);
    fx_mkgroup(fx, "g3", "carol", NULL, NULL);
    fx_begin(fx);
    assert_int_equal(trk_do_join_group(fx->st, "dave", "g3", msg,
                                       sizeof(msg)), TS_OK);   /* pending */
    fx_commit(fx);
    fx_login(fx, "alice", "127.0.0.1:5", 7, h);
    groups_str(fx->st, NULL, s, sizeof(s));
    assert_string_equal(s, "g1,g2,g3");
    groups_str(fx->st, "bob", s, sizeof(s));
    assert_string_equal(s, "g1,g2");
    groups_str(fx->st, "dave", s, sizeof(s));
    assert_string_equal(s, "");
    assert_int_equal(trk_idx_status(fx->st, &c, NULL), 0);
    assert_int_equal(c.groups, 3);
    assert_int_equal(c.sessions, 1);
    digest_check(fx->st, d1);

    /* bob leaves g1 (alice stays), carol dissolves g3 by leaving */
    fx_begin(fx);
    assert_int_equal(trk_do_leave_group(fx->st, "bob", "g1", np, sizeof(np),
                                        msg, sizeof(msg)), TS_OK);
    assert_int_equal(trk_do_leave_group(fx->st, "carol", "g3", np,
                                        sizeof(np), msg, sizeof(msg)), TS_OK);
    fx_commit(fx);
    fx_logout(fx, h);
    groups_str(fx->st, NULL, s, sizeof(s));
    assert_string_equal(s, "g1,g2");
    groups_str(fx->st, "bob", s, sizeof(s));
    assert_string_equal(s, "g2");
    groups_str(fx->st, "carol", s, sizeof(s));
    assert_string_equal(s, "g2");
    assert_int_equal(trk_idx_status(fx->st, &c, NULL), 0);
    assert_int_equal(c.groups, 2);
    assert_int_equal(c.sessions, 0);
    digest_check(fx->st, d1);

    /* a rebuild from the data gives the same */
    assert_int_equal(trk_idx_rebuild(fx->st), 0);
    digest_check(fx->st, d2);
    assert_memory_equal(d1, d2, 32);
    groups_str(fx->st, "bob", s, sizeof(s));
    assert_string_equal(s, "g2");
    groups_str(fx->st, NULL, s, sizeof(s));
    assert_string_equal(s, "g1,g2");
}


/* Ships every op of a after *seq to b. */
static void
ship(trk_store_t *a, trk_store_t *b, uint64_t *seq)
{
    ts_wbuf_t op;
    uint64_t  next, mx = 0;

    ts_wbuf_init(&op);
    while (trk_oplog_next(a, 1, *seq, &next) == 0 && next > *seq) {
        assert_int_equal(trk_oplog_get(a, 1, next, &op), 0);
        assert_int_equal(trk_store_begin(b), 0);
        assert_true(trk_oplog_apply(b, op.data, op.len, &mx) >= 0);
        assert_int_equal(trk_store_commit(b), 0);
        *seq = next;
    }
    ts_wbuf_free(&op);
}


static void
test_index_after_merge(void **state)
{
    fx_t        *fx = *state;
    trk_store_t *b;
    char         path[160], err[256], s[256];
    char         np[TS_ID_MAX_B + 1];
    uint8_t      da[32], db[32];
    uint64_t     seq = 0;
    trk_counts_t c;

    snprintf(path, sizeof(path), "%s/b.tdb", fx->dir);
    b = trk_store_open(path, 1, 1, err, sizeof(err));
    assert_non_null(b);
    trk_store_set_origin(b, 2, NULL, NULL);
    fx_mkgroup(fx, "ga", "alice", "bob", NULL);
    fx_mkgroup(fx, "gb", "bob", NULL, NULL);
    ship(fx->st, b, &seq);
    groups_str(b, NULL, s, sizeof(s));
    assert_string_equal(s, "ga,gb");
    groups_str(b, "bob", s, sizeof(s));
    assert_string_equal(s, "ga,gb");
    fx_begin(fx);
    assert_int_equal(trk_do_leave_group(fx->st, "bob", "gb", np, sizeof(np),
                                        msg, sizeof(msg)), TS_OK);
    fx_commit(fx);
    ship(fx->st, b, &seq);
    groups_str(b, NULL, s, sizeof(s));
    assert_string_equal(s, "ga");
    groups_str(b, "bob", s, sizeof(s));
    assert_string_equal(s, "ga");
    assert_int_equal(trk_idx_status(b, &c, NULL), 0);
    assert_int_equal(c.groups, 1);
    digest_check(fx->st, da);
    digest_check(b, db);
    assert_memory_equal(da, db, 32);
    trk_store_close(b);
    unlink(path);
}


static void
test_reply_queue(void **state)
{
    fx_t         *fx = *state;
    uint8_t       h1[32], h2[32], d[32];
    trk_counts_t  c;
    trk_strlist_t due;

    memset(h1, 1, sizeof(h1));
    memset(h2, 2, sizeof(h2));
    assert_int_equal(trk_reply_put(fx->st, 11, TS_MSG_CREATE_GROUP, h1,
                                   "a", 1, 1000), 0);
    assert_int_equal(trk_reply_put(fx->st, 12, TS_MSG_CREATE_GROUP, h2,
                                   "b", 1, 5000), 0);
    assert_int_equal(trk_idx_status(fx->st, &c, NULL), 0);
    assert_int_equal(c.replies, 2);
    /* not yet due */
    assert_int_equal(trk_store_expire_replies(fx->st, 999), 0);
    /* a non-leader only drops what is gone: nothing here */
    assert_int_equal(trk_store_expire_replies_ex(fx->st, 3000, 0), 0);
    assert_int_equal(trk_idx_status(fx->st, &c, NULL), 0);
    assert_int_equal(c.replies, 2);
    assert_int_equal(trk_store_expire_replies(fx->st, 3000), 1);
    assert_int_equal(trk_idx_status(fx->st, &c, NULL), 0);
    assert_int_equal(c.replies, 1);
    /* the same second, but stored after the cutoff: stays */
    assert_int_equal(trk_store_expire_replies(fx->st, 5000), 0);
    assert_int_equal(trk_store_expire_replies(fx->st, 5001), 1);
    assert_int_equal(trk_idx_due(fx->st, TRK_IDX_Q_REPLY, UINT64_MAX / 2,
                                 100, &due), 0);
    assert_int_equal(due.n, 0);
    trk_strlist_free(&due);
    digest_check(fx->st, d);
}


static void
test_session_queue(void **state)
{
    fx_t          *fx = *state;
    uint8_t        h[32];
    char           hex[65];
    trk_strlist_t  due, done;

    fx_login(fx, "alice", "127.0.0.1:5", 9, h);
    ts_hex(h, 32, hex);
    assert_int_equal(trk_idx_due(fx->st, TRK_IDX_Q_SESSION,
                                 (uint64_t) ts_wall_ms() + 2000, 100, &due),
                     0);
    assert_int_equal(due.n, 1);
    assert_string_equal(due.v[0], hex);
    /* taken off, and queued again for later */
    memset(&done, 0, sizeof(done));
    assert_int_equal(trk_strlist_add(&done, hex), 1);
    fx_begin(fx);
    assert_int_equal(trk_idx_done(fx->st, TRK_IDX_Q_SESSION,
                                  (uint64_t) ts_wall_ms() + 2000, &done), 0);
    assert_int_equal(trk_idx_queue(fx->st, TRK_IDX_Q_SESSION,
                                   (uint64_t) ts_wall_ms() + 60000, hex), 0);
    fx_commit(fx);
    trk_strlist_free(&due);
    assert_int_equal(trk_idx_due(fx->st, TRK_IDX_Q_SESSION,
                                 (uint64_t) ts_wall_ms() + 2000, 100, &due),
                     0);
    assert_int_equal(due.n, 0);
    trk_strlist_free(&due);
    assert_int_equal(trk_idx_due(fx->st, TRK_IDX_Q_SESSION,
                                 (uint64_t) ts_wall_ms() + 70000, 100, &due),
                     0);
    assert_int_equal(due.n, 1);
    trk_strlist_free(&due);
    trk_strlist_free(&done);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_index_follows_writes, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_index_after_merge, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_reply_queue, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_session_queue, setup,
                                        fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
