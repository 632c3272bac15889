/*
 * test_trk_quota.c -- cmocka tests of the tracker's storage quotas
 * (tracker/trk_usage.c, trk_quota.c, trk_quota_cmd.c and their hooks in
 * trk_store.c, trk_files.c and trk_groups.c) on real tdb files in a fresh
 * temp dir.
 *
 * Covers: the counters following uploads, shares, stop_share, sessions,
 * groups and a change of owner, and equal to a rebuild from the records
 * after every step; each quota refusing with the quota named and nothing
 * written; the counters of a second tracker fed only by the first's ops
 * (and a third fed by a snapshot) equal to its own rebuild and to the
 * first's, also with concurrent writes on both; the --quota parser.
 *
 * Locking: single-threaded; writes run in one transaction each like the
 * dispatcher's.  Crash behaviour: none (temp files removed; a crashed
 * test leaves its dir under /tmp).
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
#include "trk_store.h"
#include "trk_files.h"
#include "trk_oplog.h"
#include "trk_quota.h"

#include "trk_fixture.h"

#define HB(n)  ((uint64_t) (n) * 20)        /* hash bytes of n chunks */
#define NCH(sz) ((uint32_t) (((uint64_t) (sz) + TS_CHUNK_B - 1) / TS_CHUNK_B))


static int
setup(void **state)
{
    return fx_setup(state, "/tmp/test_trk_quota.XXXXXX");
}


/* Sets one limit; fails the test on a parse error. */
static void
set_quota(const char *arg)
{
    char err[160];

    assert_int_equal(trk_quota_option(arg, err, sizeof(err)), 0);
}


static int
teardown(void **state)
{
    set_quota("user-files=20000");
    set_quota("user-hash-bytes=256M");
    set_quota("user-groups=256");
    set_quota("user-nodes=32");
    set_quota("user-shares=65536");
    set_quota("group-files=10000");
    set_quota("group-hash-bytes=1G");
    set_quota("tracker-files=0");
    set_quota("tracker-hash-bytes=16G");
    set_quota("file-size=off");
    return fx_teardown(state);
}


static trk_use_t
use_of(trk_store_t *st, char kind, const char *name)
{
    trk_use_t u;

    assert_int_equal(trk_usage_get(trk_store_tdb(st), kind, name, &u), 0);
    return u;
}


/* Every q/ key but q/limits with its value as hex, sorted, one a line. */
typedef struct {
    char   **v;
    size_t   n;
} lines_t;

static int
dump_visit(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    lines_t *l = arg;
    char    *s;
    size_t   i;

    (void) tdb;
    if (k.dsize < 2 || k.dptr[0] != 'q' || k.dptr[1] != '/'
        || (k.dsize == 8 && memcmp(k.dptr, "q/limits", 8) == 0))
    {
        return 0;
    }
    s = malloc(k.dsize + 2 * v.dsize + 2);
    memcpy(s, k.dptr, k.dsize);
    s[k.dsize] = '=';
    for (i = 0; i < v.dsize; i++) {
        sprintf(s + k.dsize + 1 + 2 * i, "%02x", v.dptr[i]);
    }
    s[k.dsize + 1 + 2 * v.dsize] = '\0';
    l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = s;
    return 0;
}


static int
str_cmp(const void *a, const void *b)
{
    return strcmp(*(char * const *) a, *(char * const *) b);
}


static char *
dump(trk_store_t *st)
{
    lines_t l = { NULL, 0 };
    size_t  i, len = 1;
    char   *out;

    assert_int_equal(trk_store_walk(st, dump_visit, &l), 0);
    qsort(l.v, l.n, sizeof(*l.v), str_cmp);
    for (i = 0; i < l.n; i++) {
        len += strlen(l.v[i]) + 1;
    }
    out = calloc(1, len);
    for (i = 0; i < l.n; i++) {
        strcat(out, l.v[i]);
        strcat(out, "\n");
        free(l.v[i]);
    }
    free(l.v);
    return out;
}


/* The incremental counters equal what a rebuild computes. */
static void
assert_rebuild_same(trk_store_t *st)
{
    char *before = dump(st), *after;

    assert_int_equal(trk_quota_rebuild(st), 0);
    after = dump(st);
    assert_string_equal(before, after);
    free(before);
    free(after);
}


static void
test_counts_follow_writes(void **state)
{
    fx_t     *fx = *state;
    uint8_t   h1[32], h2[32], hb[32];
    trk_use_t u;
    char      m[TRK_MSG_B];

    fx_mkgroup(fx, "g1", "alice", "bob", NULL);
    fx_login(fx, "alice", "127.0.0.1:7001", 1, h1);
    fx_login(fx, "alice", "127.0.0.1:7002", 2, h2);
    fx_login(fx, "bob", "127.0.0.1:7003", 3, hb);
    u = use_of(fx->st, 'u', "alice");
    assert_int_equal(u.v[TRK_USE_GROUPS], 1);
    assert_int_equal(u.v[TRK_USE_SESSIONS], 2);
    assert_int_equal(u.v[TRK_USE_FILES], 0);
    assert_rebuild_same(fx->st);

    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "a",
                               SZ2, 2, 1), TS_OK);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "b",
                               10 * TS_CHUNK_B, 10, 2), TS_OK);
    /* the same file from a second node and from bob: shares, not files */
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7002", "g1", "a",
                               SZ2, 2, 1), TS_OK);
    assert_int_equal(fx_upload(fx, "bob", "127.0.0.1:7003", "g1", "b",
                               10 * TS_CHUNK_B, 10, 2), TS_OK);
    u = use_of(fx->st, 'u', "alice");
    assert_int_equal(u.v[TRK_USE_FILES], 2);
    assert_int_equal(u.v[TRK_USE_HASH_B], HB(12));
    assert_int_equal(u.v[TRK_USE_NODES], 2);
    assert_int_equal(u.v[TRK_USE_SHARES], 3);
    u = use_of(fx->st, 'u', "bob");
    assert_int_equal(u.v[TRK_USE_FILES], 0);
    assert_int_equal(u.v[TRK_USE_SHARES], 1);
    assert_int_equal(use_of(fx->st, 'g', "g1").v[TRK_USE_HASH_B], HB(12));
    assert_int_equal(use_of(fx->st, 't', NULL).v[TRK_USE_FILES], 2);
    assert_rebuild_same(fx->st);

    /* the last source of "a" stops: the file and its hashes go */
    assert_int_equal(fx_stop(fx, "alice", "127.0.0.1:7001", "g1", "a"), TS_OK);
    assert_int_equal(use_of(fx->st, 'u', "alice").v[TRK_USE_FILES], 2);
    assert_int_equal(fx_stop(fx, "alice", "127.0.0.1:7002", "g1", "a"), TS_OK);
    u = use_of(fx->st, 'u', "alice");
    assert_int_equal(u.v[TRK_USE_FILES], 1);
    assert_int_equal(u.v[TRK_USE_HASH_B], HB(10));
    assert_int_equal(u.v[TRK_USE_NODES], 1);
    assert_rebuild_same(fx->st);

    /* the owner leaves: bob owns g1 now; alice's file left with her */
    fx_logout(fx, h2);
    fx_begin(fx);
    assert_int_equal(trk_do_leave_group(fx->st, "alice", "g1", m, sizeof(m),
                                        msg, sizeof(msg)), TS_OK);
    fx_commit(fx);
    u = use_of(fx->st, 'u', "alice");
    assert_int_equal(u.v[TRK_USE_GROUPS], 0);
    assert_int_equal(u.v[TRK_USE_SESSIONS], 1);
    assert_int_equal(use_of(fx->st, 'u', "bob").v[TRK_USE_GROUPS], 1);
    assert_rebuild_same(fx->st);
}


/* With quota `set` in force (`reset` after), user's upload of name
 * (nch chunks, content seed 1 as in the tests) into g1 is refused with
 * want. */
static void
upload_refused(fx_t *fx, const char *set, const char *reset,
               const char *user, const char *addr, const char *name,
               uint32_t nch, const char *want)
{
    set_quota(set);
    assert_int_equal(fx_upload(fx, user, addr, "g1", name,
                               (uint64_t) nch * TS_CHUNK_B, nch, 1),
                     TS_ERR_LIMIT);
    assert_string_equal(msg, want);
    set_quota(reset);
}


static void
test_quotas_refuse(void **state)
{
    fx_t    *fx = *state;
    uint8_t  h[32];
    char    *before, *after;

    fx_mkgroup(fx, "g1", "alice", "bob", NULL);
    fx_login(fx, "alice", "127.0.0.1:7001", 1, h);
    set_quota("user-hash-bytes=400");               /* 20 chunks */
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "a",
                               15 * TS_CHUNK_B, 15, 1), TS_OK);
    before = dump(fx->st);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "b",
                               6 * TS_CHUNK_B, 6, 2), TS_ERR_LIMIT);
    assert_string_equal(msg, "quota exceeded: hash bytes of user alice "
                        "(400 bytes; 300 bytes used, this file needs "
                        "120 bytes)");
    after = dump(fx->st);
    assert_string_equal(before, after);             /* nothing written */
    free(before);
    free(after);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "b",
                               5 * TS_CHUNK_B, 5, 2), TS_OK);
    /* bob may still share alice's files: not his quota */
    assert_int_equal(fx_upload(fx, "bob", "127.0.0.1:7003", "g1", "a",
                               15 * TS_CHUNK_B, 15, 1), TS_OK);
    set_quota("user-hash-bytes=256M");

    upload_refused(fx, "user-files=2", "user-files=20000", "alice",
                   "127.0.0.1:7001", "c", 0,
                   "quota exceeded: files of user alice (2)");
    upload_refused(fx, "group-hash-bytes=1K", "group-hash-bytes=1G", "bob",
                   "127.0.0.1:7003", "c", 40,
                   "quota exceeded: hash bytes of group g1 (1 KiB; 400 "
                   "bytes used, this file needs 800 bytes)");
    upload_refused(fx, "tracker-hash-bytes=1000", "tracker-hash-bytes=16G",
                   "bob", "127.0.0.1:7003", "c", 40,
                   "quota exceeded: hash bytes of this tracker (1000 bytes; "
                   "400 bytes used, this file needs 800 bytes)");
    upload_refused(fx, "file-size=1M", "file-size=off", "bob",
                   "127.0.0.1:7003", "c", 3,
                   "file too large: 1.5 MiB (this tracker takes at most "
                   "1 MiB)");

    set_quota("user-groups=1");
    fx_begin(fx);
    assert_int_equal(trk_do_create_group(fx->st, "alice", "g2", msg,
                                         sizeof(msg)), TS_ERR_LIMIT);
    trk_store_cancel(fx->st);
    assert_string_equal(msg, "quota exceeded: owned groups of user alice (1)");
    fx_begin(fx);
    assert_int_equal(trk_do_create_group(fx->st, "bob", "g2", msg,
                                         sizeof(msg)), TS_OK);
    fx_commit(fx);
    set_quota("user-groups=256");

    /* a node that shares already may add more; a new one may not */
    upload_refused(fx, "user-nodes=1", "user-nodes=32", "alice",
                   "127.0.0.1:7002", "a", 15,
                   "quota exceeded: nodes of user alice (1)");
    set_quota("user-nodes=1");
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "d",
                               0, 0, 4), TS_OK);
    set_quota("user-nodes=32");
    upload_refused(fx, "user-shares=3", "user-shares=65536", "alice",
                   "127.0.0.1:7002", "a", 15,
                   "quota exceeded: shares of user alice (3)");
    assert_rebuild_same(fx->st);
}


/* Ships every op of origin o in `from` that `to` has not seen yet. */
static void
ship(trk_store_t *from, trk_store_t *to, int o, uint64_t *after)
{
    ts_wbuf_t op;
    uint64_t  seq, mx = 0;

    ts_wbuf_init(&op);
    while (trk_oplog_next(from, o, *after, &seq) == 0 && seq > *after) {
        assert_int_equal(trk_oplog_get(from, o, seq, &op), 0);
        assert_int_equal(trk_store_begin(to), 0);
        assert_int_equal(trk_oplog_apply(to, op.data, op.len, &mx), 1);
        assert_int_equal(trk_store_commit(to), 0);
        *after = seq;
    }
    ts_wbuf_free(&op);
}


static int
snap_visit(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
           void *arg)
{
    trk_rec_t r;

    assert_int_equal(trk_rec_decode(v, vl, &r), 0);
    assert_int_equal(trk_kv_merge(arg, (const char *) k, kl, &r), 0);
    trk_rec_free(&r);
    return 0;
}


static void
test_merge_keeps_counts(void **state)
{
    fx_t             *fa = *state, fb, fc;
    _Atomic uint64_t  hlc_b;
    uint64_t          a_seen = 0, b_seen = 0;
    uint8_t           h[32];
    char              err[256], *da, *db, *dc;

    /* tracker 2 next to the fixture's tracker 1 */
    memset(&fb, 0, sizeof(fb));
    snprintf(fb.path, sizeof(fb.path), "%s/b.tdb", fa->dir);
    fb.st = trk_store_open(fb.path, 1, 1, err, sizeof(err));
    assert_non_null(fb.st);
    atomic_init(&hlc_b, 0);
    trk_store_set_origin(fb.st, 2, (void *) &hlc_b, NULL);

    fx_mkgroup(fa, "g1", "alice", "bob", NULL);
    fx_login(fa, "alice", "127.0.0.1:7001", 1, h);
    assert_int_equal(fx_upload(fa, "alice", "127.0.0.1:7001", "g1", "a",
                               SZ2, 2, 1), TS_OK);
    ship(fa->st, fb.st, 1, &a_seen);
    /* concurrent writes on both: same name on both (first writer wins
     * on both after the merge), other names, a share of b's file */
    assert_int_equal(fx_upload(fa, "alice", "127.0.0.1:7001", "g1", "x",
                               3 * TS_CHUNK_B, 3, 5), TS_OK);
    assert_int_equal(fx_upload(&fb, "alice", "127.0.0.1:7001", "g1", "x",
                               7 * TS_CHUNK_B, 7, 6), TS_OK);
    assert_int_equal(fx_upload(&fb, "bob", "127.0.0.1:7004", "g1", "y",
                               4 * TS_CHUNK_B, 4, 7), TS_OK);
    assert_int_equal(fx_stop(&fb, "alice", "127.0.0.1:7001", "g1", "a"),
                     TS_OK);
    ship(fa->st, fb.st, 1, &a_seen);
    ship(fb.st, fa->st, 2, &b_seen);

    da = dump(fa->st);
    db = dump(fb.st);
    assert_string_equal(da, db);
    assert_rebuild_same(fa->st);
    assert_rebuild_same(fb.st);
    assert_int_equal(use_of(fb.st, 'u', "bob").v[TRK_USE_HASH_B], HB(4));
    assert_int_equal(use_of(fb.st, 'u', "alice").v[TRK_USE_FILES], 1);

    /* a third tracker learns everything from a snapshot */
    memset(&fc, 0, sizeof(fc));
    snprintf(fc.path, sizeof(fc.path), "%s/c.tdb", fa->dir);
    fc.st = trk_store_open(fc.path, 1, 1, err, sizeof(err));
    assert_non_null(fc.st);
    assert_int_equal(trk_store_begin(fc.st), 0);
    assert_int_equal(trk_each_replicated(fa->st, snap_visit, fc.st), 0);
    assert_int_equal(trk_store_commit(fc.st), 0);
    dc = dump(fc.st);
    assert_string_equal(da, dc);

    free(da);
    free(db);
    free(dc);
    trk_store_close(fb.st);
    trk_store_close(fc.st);
    unlink(fb.path);
    unlink(fc.path);
}


static void
test_option_parser(void **state)
{
    char err[160];

    (void) state;
    set_quota("user-hash-bytes=64MiB");
    assert_int_equal(trk_quota_limits()->user[TRK_USE_HASH_B], 64ull << 20);
    set_quota("user-hash-bytes=2g");
    assert_int_equal(trk_quota_limits()->user[TRK_USE_HASH_B], 2ull << 30);
    set_quota("user-files=off");
    assert_int_equal(trk_quota_limits()->user[TRK_USE_FILES], 0);
    /* a cap of the protocol: off means the cap, more is refused */
    set_quota("group-files=off");
    assert_int_equal(trk_quota_limits()->group[TRK_USE_FILES],
                     TS_TRK_GROUP_FILES_MAX_N);
    assert_int_equal(trk_quota_option("group-files=10001", err, sizeof(err)),
                     -1);
    assert_int_equal(trk_quota_option("file-size=65G", err, sizeof(err)), -1);
    assert_int_equal(trk_quota_option("user-files=10K", err, sizeof(err)),
                     -1);
    assert_int_equal(trk_quota_option("user-files", err, sizeof(err)), -1);
    assert_int_equal(trk_quota_option("nosuch=1", err, sizeof(err)), -1);
    assert_int_equal(trk_quota_option("user-hash-bytes=-1", err,
                                      sizeof(err)), -1);
    assert_int_equal(trk_quota_option("user-hash-bytes=99999999999T", err,
                                      sizeof(err)), -1);
    assert_non_null(strstr(err, "bad --quota value"));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counts_follow_writes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_quotas_refuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_keeps_counts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_option_parser, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
