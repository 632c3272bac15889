/*
 * test_trk_repl.c -- regression tests for reviewed replication defects
 * (docs/REPLICATION.md): the HLC is raised and persisted by received ops
 * and a local write always stamps above what it overwrites; a tracker
 * that adopted its own origin's seq from a snapshot starts a new op-log
 * segment; reply-cache expiry runs in bounded transactions (bounded ops);
 * a stored record that does not decode does not block merges; p/ sources
 * that do not fit the LWW header are left out of the value.
 *
 * Locking: single-threaded; every store is its own tdb file in a temp dir,
 * each with its own HLC word.
 * Crash behaviour: the temp dir is removed at the end of each test.
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
#include <tdb.h>

#include "ts_clock.h"
#include "ts_buf.h"
#include "ts_net.h"
#include "trk_store.h"
#include "trk_files.h"
#include "trk_merge.h"
#include "trk_oplog.h"

static char dir[64];


static void
mkdir_tmp(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_trk_repl.XXXXXX");
    assert_non_null(mkdtemp(dir));
}


static void
rm_tmp(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}


static trk_store_t *
open_store(const char *name, int origin, _Atomic uint64_t *hlc)
{
    char         path[128], err[256];
    trk_store_t *st;

    snprintf(path, sizeof(path), "%s/%s.tdb", dir, name);
    st = trk_store_open(path, 1, 1, err, sizeof(err));
    assert_non_null(st);
    trk_store_set_origin(st, origin, (void *) hlc, NULL);
    return st;
}


static void
list_value(ts_wbuf_t *v, const char *item)
{
    ts_wbuf_reset(v);
    ts_put_u8(v, 'L');
    ts_put_u8(v, 1);
    ts_put_u32(v, 1);
    ts_put_str(v, item);
}


/* The single op of origin o after seq `after` (out reset first). */
static uint64_t
op_after(trk_store_t *st, int o, uint64_t after, ts_wbuf_t *out,
         uint64_t *prev)
{
    uint64_t  seq = 0;
    ts_rbuf_t r;

    assert_int_equal(trk_oplog_next(st, o, after, &seq), 0);
    assert_int_equal(trk_oplog_get(st, o, seq, out), 0);
    ts_rbuf_init(&r, out->data, out->len);
    (void) ts_get_u8(&r);
    (void) ts_get_u8(&r);
    (void) ts_get_u8(&r);
    assert_int_equal(ts_get_u64(&r), seq);
    *prev = ts_get_u64(&r);
    return seq;
}


static void
test_hlc_raised_and_persisted(void **state)
{
    _Atomic uint64_t ha, hb;
    trk_store_t     *a, *b;
    ts_wbuf_t        v, op, out;
    uint64_t         future, mx = 0, prev, seq;
    trk_rec_t        r;

    (void) state;
    mkdir_tmp();
    future = ((uint64_t) ts_wall_ms() + 3600 * 1000) << 16;
    atomic_init(&ha, future);          /* a's clock runs an hour ahead */
    atomic_init(&hb, 0);
    a = open_store("a", 1, &ha);
    b = open_store("b", 2, &hb);
    ts_wbuf_init(&v);
    ts_wbuf_init(&op);
    ts_wbuf_init(&out);
    list_value(&v, "from-a");
    assert_int_equal(trk_kv_put(a, "l/x", 3, v.data, v.len), 0);
    seq = op_after(a, 1, 0, &op, &prev);
    assert_int_equal(prev, 0);
    (void) seq;

    assert_int_equal(trk_store_begin(b), 0);
    assert_int_equal(trk_oplog_apply(b, op.data, op.len, &mx), 1);
    assert_int_equal(trk_store_commit(b), 0);
    /* the mark is persisted with the merge, not only by local ops */
    assert_true(trk_hlc_saved(b) > future);
    assert_true(mx > future);

    /* b "restarted" with a clock that never saw a's stamp: its write
     * over l/x must still get a larger stamp and win */
    atomic_store(&hb, 0);
    list_value(&v, "from-b");
    assert_int_equal(trk_kv_put(b, "l/x", 3, v.data, v.len), 0);
    assert_true(atomic_load(&hb) > future);
    assert_int_equal(trk_kv_get(b, "l/x", 3, &out), 0);
    assert_int_equal(out.len, v.len);
    assert_memory_equal(out.data, v.data, v.len);
    assert_int_equal(trk_kv_rec(b, "l/x", 3, &r), 0);
    assert_int_equal(trk_rec_max_stamp(&r).origin, 2);
    trk_rec_free(&r);

    ts_wbuf_free(&v);
    ts_wbuf_free(&op);
    ts_wbuf_free(&out);
    trk_store_close(a);
    trk_store_close(b);
    rm_tmp();
}


static void
test_adopt_own_origin_new_segment(void **state)
{
    _Atomic uint64_t h1, h2;
    trk_store_t     *old, *wiped;
    ts_wbuf_t        v, op;
    trk_vv_t         vv;
    uint64_t         s1, s2, s3, prev;

    (void) state;
    mkdir_tmp();
    atomic_init(&h1, 0);
    atomic_init(&h2, 0);
    old = open_store("old", 3, &h1);
    ts_wbuf_init(&v);
    ts_wbuf_init(&op);
    list_value(&v, "one");
    assert_int_equal(trk_kv_put(old, "l/y", 3, v.data, v.len), 0);
    s1 = op_after(old, 3, 0, &op, &prev);

    /* the wiped directory gets a snapshot whose VV holds its own id at
     * s1 + 5 (ops of the old directory it has never seen exist) */
    wiped = open_store("wiped", 3, &h2);
    memset(&vv, 0, sizeof(vv));
    vv.seq[3] = s1 + 5;
    vv.seq[1] = 77;
    assert_int_equal(trk_store_begin(wiped), 0);
    assert_int_equal(trk_oplog_adopt(wiped, &vv), 0);
    assert_int_equal(trk_store_commit(wiped), 0);
    usleep(3000);                        /* wall ms moves past s1 */

    list_value(&v, "two");
    assert_int_equal(trk_kv_put(wiped, "l/y", 3, v.data, v.len), 0);
    s2 = op_after(wiped, 3, s1 + 5, &op, &prev);
    assert_int_equal(prev, 0);           /* a new segment ... */
    assert_true(s2 > s1 + 6);            /* ... above the old seqs */

    /* the marker is consumed: the next op continues the segment */
    list_value(&v, "three");
    assert_int_equal(trk_kv_put(wiped, "l/y", 3, v.data, v.len), 0);
    s3 = op_after(wiped, 3, s2, &op, &prev);
    assert_int_equal(s3, s2 + 1);
    assert_int_equal(prev, s2);

    /* other origins adopted: no new segment for ours */
    memset(&vv, 0, sizeof(vv));
    vv.seq[1] = 99;
    assert_int_equal(trk_store_begin(wiped), 0);
    assert_int_equal(trk_oplog_adopt(wiped, &vv), 0);
    assert_int_equal(trk_store_commit(wiped), 0);
    list_value(&v, "four");
    assert_int_equal(trk_kv_put(wiped, "l/y", 3, v.data, v.len), 0);
    assert_int_equal(op_after(wiped, 3, s3, &op, &prev), s3 + 1);
    assert_int_equal(prev, s3);

    ts_wbuf_free(&v);
    ts_wbuf_free(&op);
    trk_store_close(old);
    trk_store_close(wiped);
    rm_tmp();
}


static void
test_expiry_bounded_ops(void **state)
{
    _Atomic uint64_t h;
    trk_store_t     *st;
    long             before, after;
    uint64_t         i;
    int              n;

    (void) state;
    mkdir_tmp();
    atomic_init(&h, 0);
    st = open_store("e", 1, &h);
    n = TS_TRK_EXPIRE_CHUNK_N * 2 + 10;
    assert_int_equal(trk_store_begin(st), 0);
    for (i = 0; i < (uint64_t) n; i++) {
        uint8_t rh[TS_SHA256_B] = { 0 };

        assert_int_equal(trk_reply_put(st, 1000 + i, 20, rh, "ok", 2, 5),
                         0);
    }
    assert_int_equal(trk_store_commit(st), 0);
    before = trk_oplog_count(st);
    assert_int_equal(trk_store_expire_replies(st, 100), n);
    after = trk_oplog_count(st);
    /* three transactions, so three ops, none larger than its chunk */
    assert_int_equal(after - before, 3);
    assert_int_equal(trk_store_expire_replies(st, 100), 0);
    trk_store_close(st);
    rm_tmp();
}


static void
test_merge_over_corrupt_record(void **state)
{
    _Atomic uint64_t h;
    trk_store_t     *st;
    trk_rec_t        r;
    ts_wbuf_t        v, out;
    TDB_DATA         k, d;

    (void) state;
    mkdir_tmp();
    atomic_init(&h, 0);
    st = open_store("c", 1, &h);
    ts_wbuf_init(&v);
    ts_wbuf_init(&out);
    k.dptr = (unsigned char *) "l/z";
    k.dsize = 3;
    d.dptr = (unsigned char *) "garbage";
    d.dsize = 7;
    assert_int_equal(tdb_store(trk_store_tdb(st), k, d, TDB_REPLACE), 0);
    trk_rec_init(&r);
    list_value(&v, "item");
    assert_int_equal(trk_rec_put(&r, "l/z", 3, v.data, v.len,
                                 (trk_stamp_t) { 5, 2 }), 0);
    assert_int_equal(trk_store_begin(st), 0);
    assert_int_equal(trk_kv_merge(st, "l/z", 3, &r), 0);
    assert_int_equal(trk_store_commit(st), 0);
    assert_int_equal(trk_kv_get(st, "l/z", 3, &out), 0);
    assert_int_equal(out.len, v.len);
    trk_rec_free(&r);
    ts_wbuf_free(&v);
    ts_wbuf_free(&out);
    trk_store_close(st);
    rm_tmp();
}


static void
srcs_value(ts_wbuf_t *b, uint32_t nchunks, const char *user, int complete,
           uint8_t bits)
{
    trk_srcs_t s;
    trk_src_t  e;

    memset(&s, 0, sizeof(s));
    memset(&e, 0, sizeof(e));
    s.size = (uint64_t) nchunks * TS_CHUNK_B;
    s.nchunks = nchunks;
    s.n = 1;
    s.v = &e;
    snprintf(e.user, sizeof(e.user), "%s", user);
    snprintf(e.addr, sizeof(e.addr), "127.0.0.1:9000");
    e.complete = (uint8_t) complete;
    if (complete) {
        e.held = nchunks;
    } else {
        e.bmlen = (nchunks + 7) / 8;
        e.bitmap = &bits;
        e.held = (uint32_t) __builtin_popcount(bits);
    }
    ts_wbuf_reset(b);
    trk_srcs_encode(b, &s);
    assert_int_equal(b->err, 0);
}


static void
test_srcs_header_mismatch(void **state)
{
    trk_rec_t  a, b;
    ts_wbuf_t  v, out;
    trk_srcs_t s;

    (void) state;
    ts_wbuf_init(&v);
    ts_wbuf_init(&out);
    trk_rec_init(&a);
    trk_rec_init(&b);
    /* two trackers upload different contents under one name */
    srcs_value(&v, 1, "alice", 1, 0);
    assert_int_equal(trk_rec_put(&a, "p/g/f", 5, v.data, v.len,
                                 (trk_stamp_t) { 10, 1 }), 0);
    srcs_value(&v, 3, "bob", 0, 0x5);
    assert_int_equal(trk_rec_put(&b, "p/g/f", 5, v.data, v.len,
                                 (trk_stamp_t) { 20, 2 }), 0);
    assert_true(trk_rec_merge(&a, &b) > 0);
    /* header of the later write; alice's source does not fit it */
    assert_int_equal(trk_rec_view(&a, "p/g/f", 5, &out), 0);
    assert_int_equal(trk_srcs_decode(out.data, out.len, &s), 0);
    assert_int_equal(s.nchunks, 3);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.v[0].user, "bob");
    assert_int_equal(s.v[0].held, 2);
    trk_srcs_free(&s);
    trk_rec_free(&a);
    trk_rec_free(&b);
    ts_wbuf_free(&v);
    ts_wbuf_free(&out);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hlc_raised_and_persisted),
        cmocka_unit_test(test_adopt_own_origin_new_segment),
        cmocka_unit_test(test_expiry_bounded_ops),
        cmocka_unit_test(test_merge_over_corrupt_record),
        cmocka_unit_test(test_srcs_header_mismatch),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
