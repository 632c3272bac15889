/*
 * test_trk_admin.c -- the operator's write actions (trk_admin_act.c) and
 * the disabled flag of the user record (trk_codec.c) with its merge.
 *
 * Purpose: the flag's encoding is canonical (absent when clear, so an
 * account never disabled keeps the bytes of older versions; only the one
 * known value accepted); disabling and enabling concurrently on two
 * trackers converges to the later stamp in every merge order, and the
 * account stays the same incarnation; on a real store, disable-user ends
 * every session of that user (and only those) and takes its node offline
 * as a source, enable-user clears the flag, remove-file drops the file,
 * its sources' share entries and its name, and bad names, unknown users,
 * unknown files and unknown actions change nothing.
 *
 * Locking: single-threaded; each store is its own tdb file in a temp dir
 * (trk_fixture.h).  Crash behaviour: the teardown removes the temp dir.
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
#include "ts_proto.h"
#include "trk_admin.h"
#include "trk_codec.h"
#include "trk_merge.h"
#include "trk_store.h"

#include "trk_fixture.h"


static int
setup(void **state)
{
    return fx_setup(state, "/tmp/test_trk_admin.XXXXXX");
}


static trk_stamp_t
stamp(uint64_t h, uint8_t o)
{
    trk_stamp_t s;

    s.hlc = h;
    s.origin = o;
    return s;
}


static void
user_val(ts_wbuf_t *b, int disabled)
{
    trk_user_t u;

    memset(&u, 0, sizeof(u));
    u.iterations = 7;
    u.created_ms = 1234;
    u.disabled = (uint8_t) disabled;
    ts_wbuf_reset(b);
    trk_user_encode(b, &u);
    assert_int_equal(b->err, 0);
}


static void
test_flag_codec(void **state)
{
    ts_wbuf_t  a, b;
    trk_user_t u;

    (void) state;
    ts_wbuf_init(&a);
    ts_wbuf_init(&b);
    user_val(&a, 0);
    user_val(&b, 1);
    /* clear: no flags byte at all (the older record's bytes) */
    assert_int_equal(b.len, a.len + 1);
    assert_memory_equal(a.data, b.data, a.len);
    assert_int_equal(trk_user_decode(a.data, a.len, &u), 0);
    assert_int_equal(u.disabled, 0);
    assert_int_equal(trk_user_decode(b.data, b.len, &u), 0);
    assert_int_equal(u.disabled, 1);
    assert_int_equal(u.created_ms, 1234);
    /* one encoding only: a zero byte or an unknown flag is corrupt */
    b.data[b.len - 1] = 0;
    assert_int_equal(trk_user_decode(b.data, b.len, &u), -1);
    b.data[b.len - 1] = 2;
    assert_int_equal(trk_user_decode(b.data, b.len, &u), -1);
    b.data[b.len - 1] = TRK_USER_F_DISABLED;
    ts_put_u8(&b, TRK_USER_F_DISABLED);
    assert_int_equal(trk_user_decode(b.data, b.len, &u), -1);
    ts_wbuf_free(&a);
    ts_wbuf_free(&b);
}


/* Value of merge(x, y) of u/x: its disabled flag, and the visible C. */
static int
merged_flag(const trk_rec_t *x, const trk_rec_t *y, ts_wbuf_t *enc_out)
{
    trk_rec_t  m;
    ts_wbuf_t  v;
    trk_user_t u;

    assert_int_equal(trk_rec_copy(&m, x), 0);
    assert_true(trk_rec_merge(&m, y) >= 0);
    ts_wbuf_init(&v);
    assert_int_equal(trk_rec_view(&m, "u/x", 3, &v), 0);
    assert_int_equal(trk_user_decode(v.data, v.len, &u), 0);
    assert_int_equal(trk_rec_visible(&m)->c.hlc, 100);     /* same account */
    ts_wbuf_reset(enc_out);
    trk_rec_encode(enc_out, &m);
    trk_rec_free(&m);
    ts_wbuf_free(&v);
    return u.disabled;
}


static void
test_flag_lww_converges(void **state)
{
    trk_rec_t  base, a, b, da, db;
    ts_wbuf_t  v, e1, e2;

    (void) state;
    ts_wbuf_init(&v);
    ts_wbuf_init(&e1);
    ts_wbuf_init(&e2);
    trk_rec_init(&base);
    user_val(&v, 0);
    assert_int_equal(trk_rec_put(&base, "u/x", 3, v.data, v.len,
                                 stamp(100, 1)), 0);
    /* tracker 1 disables at 300; tracker 2, not knowing, disables at 200
     * and enables again at 400: 400 is the last writer */
    assert_int_equal(trk_rec_copy(&a, &base), 0);
    assert_int_equal(trk_rec_copy(&b, &base), 0);
    user_val(&v, 1);
    assert_int_equal(trk_rec_put(&a, "u/x", 3, v.data, v.len,
                                 stamp(300, 1)), 0);
    assert_int_equal(trk_rec_put(&b, "u/x", 3, v.data, v.len,
                                 stamp(200, 2)), 0);
    user_val(&v, 0);
    assert_int_equal(trk_rec_put(&b, "u/x", 3, v.data, v.len,
                                 stamp(400, 2)), 0);
    assert_int_equal(merged_flag(&a, &b, &e1), 0);
    assert_int_equal(merged_flag(&b, &a, &e2), 0);
    assert_int_equal(e1.len, e2.len);
    assert_memory_equal(e1.data, e2.data, e1.len);
    /* the deltas alone (what the ops carry) give the same */
    assert_int_equal(trk_rec_delta(&a, stamp(300, 1), &da), 0);
    assert_int_equal(trk_rec_delta(&b, stamp(400, 2), &db), 0);
    assert_int_equal(trk_rec_merge(&da, &base) >= 0, 1);
    assert_int_equal(merged_flag(&da, &db, &e2), 0);
    trk_rec_free(&da);
    trk_rec_free(&db);
    /* a disable stamped after the enable wins instead (same hlc: the
     * larger origin is the later stamp) */
    user_val(&v, 0);
    assert_int_equal(trk_rec_put(&a, "u/x", 3, v.data, v.len,
                                 stamp(350, 1)), 0);
    user_val(&v, 1);
    assert_int_equal(trk_rec_put(&a, "u/x", 3, v.data, v.len,
                                 stamp(400, 3)), 0);
    assert_int_equal(merged_flag(&a, &b, &e1), 1);
    assert_int_equal(merged_flag(&b, &a, &e2), 1);
    assert_memory_equal(e1.data, e2.data, e1.len);
    /* idempotent */
    assert_int_equal(merged_flag(&a, &a, &e2), 1);
    trk_rec_free(&base);
    trk_rec_free(&a);
    trk_rec_free(&b);
    ts_wbuf_free(&v);
    ts_wbuf_free(&e1);
    ts_wbuf_free(&e2);
}


static void
mkuser(fx_t *fx, const char *name)
{
    trk_user_t u;

    memset(&u, 0, sizeof(u));
    u.iterations = 1;
    u.created_ms = 1;
    fx_begin(fx);
    assert_int_equal(trk_do_create_user(fx->st, name, &u, msg, sizeof(msg)),
                     TS_OK);
    fx_commit(fx);
}


static ts_status_t
act(fx_t *fx, int action, const char *a, const char *b, uint32_t *ended)
{
    trk_admin_cut_t cut;
    ts_status_t     st;

    fx_begin(fx);
    st = trk_admin_act(fx->st, action, a, b, &cut, msg, sizeof(msg));
    if (st == TS_OK) {
        fx_commit(fx);
    } else {
        trk_store_cancel(fx->st);
    }
    if (ended != NULL) {
        *ended = cut.n;
    }
    free(cut.h);
    return st;
}


static void
test_disable_ends_sessions(void **state)
{
    fx_t          *fx = *state;
    trk_session_t  s;
    uint8_t        h1[32], h2[32], h3[32];
    uint32_t       ended;
    int            src;

    mkuser(fx, "alice");
    mkuser(fx, "bob");
    fx_mkgroup(fx, "g", "bob", "alice", NULL);
    fx_login(fx, "alice", "127.0.0.1:7001", 1, h1);
    fx_login(fx, "alice", "127.0.0.1:7002", 2, h2);
    fx_login(fx, "bob", "127.0.0.1:7003", 3, h3);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g", "f",
                               100, 1, 5), TS_OK);
    fx_list(fx, "bob", "127.0.0.1:7003", "g", "f", &src);
    assert_int_equal(src, 1);
    assert_int_equal(trk_user_disabled(fx->st, "alice"), 0);

    assert_int_equal(act(fx, TS_ADMIN_ACT_DISABLE, "alice", "", &ended),
                     TS_OK);
    assert_int_equal(ended, 2);
    assert_string_equal(msg, "user 'alice' disabled; 2 session(s) ended");
    assert_int_equal(trk_user_disabled(fx->st, "alice"), 1);
    assert_int_equal(trk_session_get(fx->st, h1, &s), 1);
    assert_int_equal(trk_session_get(fx->st, h2, &s), 1);
    assert_int_equal(trk_session_get(fx->st, h3, &s), 0);      /* bob's */
    /* alice's node is offline: no source left for bob */
    fx_list(fx, "bob", "127.0.0.1:7003", "g", "f", &src);
    assert_int_equal(src, 0);
    /* again: nothing more to end */
    assert_int_equal(act(fx, TS_ADMIN_ACT_DISABLE, "alice", "", &ended),
                     TS_OK);
    assert_int_equal(ended, 0);
    assert_string_equal(msg, "user 'alice' was already disabled; 0 "
                        "session(s) ended");
    fx_reopen(fx);
    assert_int_equal(trk_user_disabled(fx->st, "alice"), 1);
    assert_int_equal(act(fx, TS_ADMIN_ACT_ENABLE, "alice", "", NULL), TS_OK);
    assert_string_equal(msg, "user 'alice' enabled");
    assert_int_equal(trk_user_disabled(fx->st, "alice"), 0);
    assert_int_equal(act(fx, TS_ADMIN_ACT_ENABLE, "alice", "", NULL), TS_OK);
    assert_string_equal(msg, "user 'alice' was not disabled");
    assert_int_equal(trk_user_disabled(fx->st, "bob"), 0);
    assert_int_equal(trk_user_disabled(fx->st, "nobody"), 0);
}


static void
test_bad_input_changes_nothing(void **state)
{
    fx_t    *fx = *state;
    char     big[80];
    uint8_t  h[32];

    mkuser(fx, "alice");
    fx_login(fx, "alice", "127.0.0.1:7001", 1, h);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(act(fx, TS_ADMIN_ACT_DISABLE, "bad/name", "", NULL),
                     TS_ERR_BADREQ);
    assert_int_equal(act(fx, TS_ADMIN_ACT_DISABLE, big, "", NULL),
                     TS_ERR_BADREQ);
    assert_int_equal(act(fx, TS_ADMIN_ACT_DISABLE, "", "", NULL),
                     TS_ERR_BADREQ);
    assert_int_equal(act(fx, TS_ADMIN_ACT_DISABLE, "alice", "x", NULL),
                     TS_ERR_BADREQ);
    assert_int_equal(act(fx, TS_ADMIN_ACT_DISABLE, "nobody", "", NULL),
                     TS_ERR_NOTFOUND);
    assert_string_equal(msg, "no user 'nobody'");
    assert_int_equal(act(fx, 9, "alice", "", NULL), TS_ERR_BADREQ);
    assert_int_equal(act(fx, 0, "alice", "", NULL), TS_ERR_BADREQ);
    assert_int_equal(act(fx, TS_ADMIN_ACT_REMOVE_FILE, "g", "..", NULL),
                     TS_ERR_BADREQ);
    assert_int_equal(act(fx, TS_ADMIN_ACT_REMOVE_FILE, "g", "a/b", NULL),
                     TS_ERR_BADREQ);
    assert_int_equal(act(fx, TS_ADMIN_ACT_REMOVE_FILE, "g", "", NULL),
                     TS_ERR_BADREQ);
    assert_int_equal(act(fx, TS_ADMIN_ACT_REMOVE_FILE, "g/x", "f", NULL),
                     TS_ERR_BADREQ);
    assert_int_equal(act(fx, TS_ADMIN_ACT_REMOVE_FILE, "g", "f", NULL),
                     TS_ERR_NOTFOUND);
    assert_string_equal(msg, "no file 'f' in group 'g'");
    assert_int_equal(trk_user_disabled(fx->st, "alice"), 0);
}


static void
test_remove_file(void **state)
{
    fx_t      *fx = *state;
    trk_fctx_t c;
    info_t     in;
    ts_wbuf_t  b;
    uint8_t    h1[32], h2[32], bm[1] = { 0x03 };
    int        src;

    mkuser(fx, "alice");
    mkuser(fx, "bob");
    fx_mkgroup(fx, "g", "alice", "bob", NULL);
    fx_login(fx, "alice", "127.0.0.1:7001", 1, h1);
    fx_login(fx, "bob", "127.0.0.1:7002", 2, h2);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g", "f",
                               SZ2, 2, 5), TS_OK);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g", "keep",
                               100, 1, 6), TS_OK);
    assert_int_equal(fx_have(fx, "bob", "127.0.0.1:7002", "g", "f", 1, bm,
                             1), TS_OK);
    assert_int_equal(fx_info(fx, "bob", "127.0.0.1:7002", "g", "f", &in),
                     TS_OK);
    assert_int_equal(in.n, 1);             /* alice (not bob himself) */

    assert_int_equal(act(fx, TS_ADMIN_ACT_REMOVE_FILE, "g", "f", NULL),
                     TS_OK);
    assert_string_equal(msg, "file 'f' of group 'g' removed (2 source(s))");
    assert_int_equal(fx_info(fx, "bob", "127.0.0.1:7002", "g", "f", &in),
                     TS_ERR_NOTFOUND);
    assert_int_equal(fx_list(fx, "bob", "127.0.0.1:7002", "g", "f", &src),
                     1);
    assert_int_equal(src, -1);
    fx_list(fx, "bob", "127.0.0.1:7002", "g", "keep", &src);
    assert_int_equal(src, 1);
    /* neither node lists it among its shares any more */
    c = fx_ctx(fx, "bob", "127.0.0.1:7002");
    ts_wbuf_init(&b);
    assert_int_equal(trk_do_my_shares(&c, &b, msg, sizeof(msg)), TS_OK);
    assert_int_equal(b.len, 4);                 /* u32 0 */
    c = fx_ctx(fx, "alice", "127.0.0.1:7001");
    ts_wbuf_reset(&b);
    assert_int_equal(trk_do_my_shares(&c, &b, msg, sizeof(msg)), TS_OK);
    assert_true(b.len > 4);                     /* "keep" only */
    assert_non_null(memmem(b.data, b.len, "keep", 4));
    ts_wbuf_free(&b);
    assert_int_equal(act(fx, TS_ADMIN_ACT_REMOVE_FILE, "g", "f", NULL),
                     TS_ERR_NOTFOUND);
    /* the name can be uploaded again (a new incarnation after the
     * delete) */
    assert_int_equal(fx_upload(fx, "bob", "127.0.0.1:7002", "g", "f", 100,
                               1, 9), TS_OK);
    fx_list(fx, "alice", "127.0.0.1:7001", "g", "f", &src);
    assert_int_equal(src, 1);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flag_codec),
        cmocka_unit_test(test_flag_lww_converges),
        cmocka_unit_test_setup_teardown(test_disable_ends_sessions, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_changes_nothing,
                                        setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_remove_file, setup,
                                        fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
