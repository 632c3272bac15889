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


/* ---- the groups of a user in many groups ---------------------------- */

typedef struct {
    char  **v;
    size_t  n, cap;
    size_t  ug_max;                     /* most entries in one y/ug/ key */
    size_t  ug_keys;
} dump_t;


static int
dump_walk(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    dump_t  *d = arg;
    char    *line;
    size_t   i;
    uint32_t cnt;

    (void) tdb;
    /* the group lists and counts; the expiry queues differ by design
     * (the rebuild does not queue sessions) */
    if (k.dsize < 3 || memcmp(k.dptr, "y/", 2) != 0
        || memcmp(k.dptr, "y/q", 3) == 0)
    {
        return 0;
    }
    if (k.dsize > 5 && memcmp(k.dptr, "y/ug/", 5) == 0) {
        d->ug_keys++;
        if (v.dsize >= 6 && v.dptr[0] == 'Y') {
            cnt = (uint32_t) v.dptr[2] << 24 | (uint32_t) v.dptr[3] << 16
                  | (uint32_t) v.dptr[4] << 8 | v.dptr[5];
            d->ug_max = cnt > d->ug_max ? cnt : d->ug_max;
        }
    }
    line = malloc(k.dsize + 2 * v.dsize + 2);
    assert_non_null(line);
    memcpy(line, k.dptr, k.dsize);
    line[k.dsize] = '=';
    for (i = 0; i < v.dsize; i++) {
        snprintf(line + k.dsize + 1 + 2 * i, 3, "%02x", v.dptr[i]);
    }
    line[k.dsize + 1 + 2 * v.dsize] = '\0';
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 256;
        d->v = realloc(d->v, d->cap * sizeof(*d->v));
        assert_non_null(d->v);
    }
    d->v[d->n++] = line;
    return 0;
}


static int
line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


/* Every y/ record but the queues, as sorted "key=hex" lines. */
static void
dump_index(trk_store_t *st, dump_t *d)
{
    memset(d, 0, sizeof(*d));
    assert_true(tdb_traverse_read(trk_store_tdb(st), dump_walk, d) >= 0);
    qsort(d->v, d->n, sizeof(*d->v), line_cmp);
}


static void
dump_equal(const dump_t *a, const dump_t *b)
{
    size_t i;

    assert_int_equal(a->n, b->n);
    for (i = 0; i < a->n; i++) {
        assert_string_equal(a->v[i], b->v[i]);
    }
}


static void
dump_free(dump_t *d)
{
    size_t i;

    for (i = 0; i < d->n; i++) {
        free(d->v[i]);
    }
    free(d->v);
}


/* bob's groups from the index equal "gNNNN" for every i with keep(i). */
static void
check_bob(trk_store_t *st, int n, int step)
{
    trk_strlist_t l;
    char          g[16];
    int           i, k = 0;

    assert_int_equal(trk_idx_groups(st, "bob", &l), 0);
    for (i = 0; i < n; i += step) {
        snprintf(g, sizeof(g), "g%04d", i);
        assert_true((uint32_t) k < l.n);
        assert_string_equal(l.v[k], g);
        k++;
    }
    assert_int_equal(l.n, k);
    trk_strlist_free(&l);
}


static void
test_user_in_many_groups(void **state)
{
    fx_t        *fx = *state;
    trk_store_t *b;
    dump_t       d1, d2, d3;
    char         path[160], err[256], g[16], o[16], np[TS_ID_MAX_B + 1];
    uint64_t     seq = 0;
    int          i, n = 1000;

    snprintf(path, sizeof(path), "%s/b.tdb", fx->dir);
    b = trk_store_open(path, 1, 1, err, sizeof(err));
    assert_non_null(b);
    trk_store_set_origin(b, 2, NULL, NULL);
    /* bob is in n groups (of 5 owners: the quota of groups one user
     * owns), alice in every third */
    for (i = 0; i < n; i++) {
        snprintf(g, sizeof(g), "g%04d", i);
        snprintf(o, sizeof(o), "a%d", i / 200);
        fx_mkgroup(fx, g, o, "bob", i % 3 == 0 ? "alice" : NULL);
    }
    check_bob(fx->st, n, 1);
    dump_index(fx->st, &d1);
    /* no one record holds a user's whole list: an edit rewrites about
     * n / TS_TRK_IDX_UG_BUCKETS_N entries */
    assert_true(d1.ug_max <= (size_t) (3 * n / TS_TRK_IDX_UG_BUCKETS_N + 8));
    assert_true(d1.ug_keys > TS_TRK_IDX_UG_BUCKETS_N);
    /* a rebuild and a merge on another tracker give the same records */
    assert_int_equal(trk_idx_rebuild(fx->st), 0);
    dump_index(fx->st, &d2);
    dump_equal(&d1, &d2);
    dump_free(&d2);
    ship(fx->st, b, &seq);
    check_bob(b, n, 1);
    dump_index(b, &d2);
    dump_equal(&d1, &d2);
    dump_free(&d2);
    dump_free(&d1);

    /* bob leaves all but every 20th: his list shrinks past the
     * threshold and is one record again */
    fx_begin(fx);
    for (i = 0; i < n; i++) {
        if (i % 20 != 0) {
            snprintf(g, sizeof(g), "g%04d", i);
            assert_int_equal(trk_do_leave_group(fx->st, "bob", g, np,
                                                sizeof(np), msg, sizeof(msg)),
                             TS_OK);
        }
    }
    fx_commit(fx);
    check_bob(fx->st, n, 20);
    dump_index(fx->st, &d1);
    /* bob's 50 in one list; alice (334) and the owners (200) split */
    assert_int_equal(d1.ug_max, (size_t) (n / 20));
    ship(fx->st, b, &seq);
    check_bob(b, n, 20);
    dump_index(b, &d2);
    dump_equal(&d1, &d2);
    assert_int_equal(trk_idx_rebuild(b), 0);
    dump_index(b, &d3);
    dump_equal(&d1, &d3);
    dump_free(&d1);
    dump_free(&d2);
    dump_free(&d3);
    trk_store_close(b);
    unlink(path);
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
        cmocka_unit_test_setup_teardown(test_user_in_many_groups, setup,
                                        fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
