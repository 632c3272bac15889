/*
 * test_trk_files.c -- cmocka tests of the tracker's file registry
 * (tracker/trk_files.c, trk_sources.c) on a real tdb file in a fresh temp directory.
 *
 * Covers: upload, the same content again adding a source, other content
 * under the same name refused, bad nchunks / bitmap / name / size refused,
 * membership checks, list_files counting online sources, file_info leaving
 * out offline sources and the requester's own node, have_chunks partial
 * then complete, stop_share by the last source removing the file, leaving
 * a group dropping the leaver's sources, dissolving a group removing its
 * files, and my_shares.  Corrupt records, shm presence and the FILE_INFO
 * ticket are in test_trk_file_info.c; the helpers in trk_fixture.h.
 *
 * Locking: single-threaded; each test runs its writes in one transaction
 * like the dispatcher does.  Crash behaviour: none (temp files removed).
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
#include "ts_net.h"
#include "ts_proto.h"
#include "trk_store.h"
#include "trk_files.h"
#include "ts_ticket.h"
#include "ts_tls.h"

#include "trk_fixture.h"


static int
setup(void **state)
{
    return fx_setup(state, "/tmp/test_trk_files.XXXXXX");
}



static void
test_upload_and_sources(void **state)
{
    fx_t    *fx = *state;
    uint8_t  ha[32], hb[32];
    info_t   in;
    int      src;

    fx_mkgroup(fx, "g1", "alice", "bob", NULL);
    fx_login(fx, "alice", "127.0.0.1:7001", 1, ha);
    fx_login(fx, "bob", "127.0.0.1:7002", 2, hb);

    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "a.bin",
                               SZ2, 2, 7), TS_OK);
    assert_int_equal(fx_list(fx, "bob", "127.0.0.1:7002", "g1", "a.bin", &src),
                     1);
    assert_int_equal(src, 1);

    /* the uploader's own node is not handed out to itself */
    assert_int_equal(fx_info(fx, "alice", "127.0.0.1:7001", "g1", "a.bin",
                             &in),
                     TS_OK);
    assert_int_equal(in.n, 0);
    assert_int_equal(fx_info(fx, "bob", "127.0.0.1:7002", "g1", "a.bin", &in),
                     TS_OK);
    assert_int_equal(in.n, 1);
    assert_string_equal(in.addr[0], "127.0.0.1:7001");
    assert_int_equal(in.complete[0], 1);
    assert_int_equal(in.held[0], 2);

    /* same content again: one more source; twice from one node: no more */
    assert_int_equal(fx_upload(fx, "bob", "127.0.0.1:7002", "g1", "a.bin",
                               SZ2, 2, 7), TS_OK);
    assert_int_equal(fx_upload(fx, "bob", "127.0.0.1:7002", "g1", "a.bin",
                               SZ2, 2, 7), TS_OK);
    fx_list(fx, "bob", "127.0.0.1:7002", "g1", "a.bin", &src);
    assert_int_equal(src, 2);

    /* other content, same name: refused, nothing changed */
    assert_int_equal(fx_upload(fx, "bob", "127.0.0.1:7002", "g1", "a.bin",
                               SZ2, 2, 9), TS_ERR_EXISTS);
    assert_string_equal(msg, "a different file named 'a.bin' is already "
                        "shared in 'g1'");
    assert_int_equal(fx_upload(fx, "bob", "127.0.0.1:7002", "g1", "a.bin",
                               SZ2 + TS_CHUNK_B, 3, 7), TS_ERR_EXISTS);

    /* same user from another node is another source */
    assert_int_equal(fx_info(fx, "bob", "127.0.0.1:7009", "g1", "a.bin", &in),
                     TS_OK);
    assert_int_equal(in.n, 2);

    /* an empty file, a name with spaces */
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "empty",
                               0, 0, 1), TS_OK);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1",
                               "my \"file\" 1", 10, 1, 1), TS_OK);
    assert_int_equal(fx_list(fx, "bob", "127.0.0.1:7002", "g1", "empty", &src),
                     3);
    assert_int_equal(src, 1);
}


static void
test_bad_input(void **state)
{
    fx_t    *fx = *state;
    uint8_t  ha[32], hc[32];
    uint8_t  bm[4] = { 0 };
    info_t   in;
    int      src;

    fx_mkgroup(fx, "g1", "alice", NULL, NULL);
    fx_login(fx, "alice", "127.0.0.1:7001", 1, ha);
    fx_login(fx, "carol", "127.0.0.1:7003", 3, hc);

    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "x",
                               SZ2, 3, 1), TS_ERR_BADREQ);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "x",
                               SZ2, 1, 1), TS_ERR_BADREQ);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "x",
                               0, 1, 1), TS_ERR_BADREQ);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "a/b",
                               10, 1, 1), TS_ERR_BADREQ);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "..",
                               10, 1, 1), TS_ERR_BADREQ);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "a\nb",
                               10, 1, 1), TS_ERR_BADREQ);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "",
                               10, 1, 1), TS_ERR_BADREQ);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g/1", "x",
                               10, 1, 1), TS_ERR_BADREQ);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "x",
                               TS_FILE_MAX_B + 1,
                               (uint32_t) TS_FILE_MAX_CHUNKS_N + 1, 1),
                     TS_ERR_BADREQ);
    assert_int_equal(fx_upload(fx, "alice", "", "g1", "x", 10, 1, 1),
                     TS_ERR_BADREQ);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "nog", "x",
                               10, 1, 1), TS_ERR_NOTFOUND);
    /* membership for every command */
    assert_int_equal(fx_upload(fx, "carol", "127.0.0.1:7003", "g1", "x",
                               10, 1, 1), TS_ERR_PERM);
    assert_string_equal(msg, "not a member of 'g1'");
    assert_int_equal(fx_list(fx, "alice", "127.0.0.1:7001", "g1", NULL, &src),
                     0);

    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "x",
                               SZ2, 2, 1), TS_OK);
    assert_int_equal(fx_info(fx, "carol", "127.0.0.1:7003", "g1", "x", &in),
                     TS_ERR_PERM);
    assert_int_equal(fx_stop(fx, "carol", "127.0.0.1:7003", "g1", "x"),
                     TS_ERR_PERM);
    assert_int_equal(fx_have(fx, "carol", "127.0.0.1:7003", "g1", "x", 0, bm,
                             1),
                     TS_ERR_PERM);
    /* bitmap length must be (nchunks + 7) / 8 */
    assert_int_equal(fx_have(fx, "alice", "127.0.0.1:7005", "g1", "x", 0, bm,
                             2),
                     TS_ERR_BADREQ);
    assert_int_equal(fx_have(fx, "alice", "127.0.0.1:7005", "g1", "x", 0, bm,
                             0),
                     TS_ERR_BADREQ);
    /* "complete" with chunks missing */
    bm[0] = 1;
    assert_int_equal(fx_have(fx, "alice", "127.0.0.1:7005", "g1", "x", 1, bm,
                             1),
                     TS_ERR_BADREQ);
    assert_int_equal(fx_have(fx, "alice", "127.0.0.1:7005", "g1", "nope", 0,
                             bm,
                             1), TS_ERR_NOTFOUND);
    assert_int_equal(fx_info(fx, "alice", "127.0.0.1:7001", "g1", "nope", &in),
                     TS_ERR_NOTFOUND);
    assert_string_equal(msg, "no file 'nope' in 'g1'");
    assert_int_equal(fx_stop(fx, "alice", "127.0.0.1:7005", "g1", "x"),
                     TS_ERR_NOTFOUND);
    assert_string_equal(msg, "not sharing 'x' in 'g1'");
}


static void
test_offline_and_partial(void **state)
{
    fx_t    *fx = *state;
    uint8_t  ha[32], hb[32], hc[32], ha2[32];
    uint8_t  bm[1];
    info_t   in;
    int      src;

    fx_mkgroup(fx, "g1", "alice", "bob", "carol");
    fx_login(fx, "alice", "127.0.0.1:7001", 1, ha);
    fx_login(fx, "bob", "127.0.0.1:7002", 2, hb);
    fx_login(fx, "carol", "127.0.0.1:7003", 3, hc);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "f",
                               SZ2 + TS_CHUNK_B, 3, 4), TS_OK);

    /* carol downloads: a partial source with chunk 1 */
    bm[0] = 0x02;
    assert_int_equal(fx_have(fx, "carol", "127.0.0.1:7003", "g1", "f", 0, bm,
                             1),
                     TS_OK);
    assert_int_equal(fx_info(fx, "bob", "127.0.0.1:7002", "g1", "f", &in),
                     TS_OK);
    assert_int_equal(in.n, 2);
    assert_string_equal(in.addr[1], "127.0.0.1:7003");
    assert_int_equal(in.complete[1], 0);
    assert_int_equal(in.held[1], 1);
    /* bits past the last chunk do not count */
    bm[0] = 0xf3;
    assert_int_equal(fx_have(fx, "carol", "127.0.0.1:7003", "g1", "f", 0, bm,
                             1),
                     TS_OK);
    assert_int_equal(fx_info(fx, "bob", "127.0.0.1:7002", "g1", "f", &in),
                     TS_OK);
    assert_int_equal(in.held[1], 2);
    bm[0] = 0x07;
    assert_int_equal(fx_have(fx, "carol", "127.0.0.1:7003", "g1", "f", 1, bm,
                             1),
                     TS_OK);
    assert_int_equal(fx_info(fx, "bob", "127.0.0.1:7002", "g1", "f", &in),
                     TS_OK);
    assert_int_equal(in.complete[1], 1);
    assert_int_equal(in.held[1], 3);

    /* alice logs out: her source is offline, the file stays listed */
    fx_logout(fx, ha);
    fx_list(fx, "bob", "127.0.0.1:7002", "g1", "f", &src);
    assert_int_equal(src, 1);
    assert_int_equal(fx_info(fx, "bob", "127.0.0.1:7002", "g1", "f", &in),
                     TS_OK);
    assert_int_equal(in.n, 1);
    assert_string_equal(in.addr[0], "127.0.0.1:7003");
    fx_logout(fx, hc);
    assert_int_equal(fx_list(fx, "bob", "127.0.0.1:7002", "g1", "f", &src), 1);
    assert_int_equal(src, 0);
    /* alice back on the same node: online again */
    fx_login(fx, "alice", "127.0.0.1:7001", 4, ha2);
    fx_list(fx, "bob", "127.0.0.1:7002", "g1", "f", &src);
    assert_int_equal(src, 1);
    /* on another node she is not that source */
    fx_logout(fx, ha2);
    fx_login(fx, "alice", "127.0.0.1:7011", 5, ha2);
    fx_list(fx, "bob", "127.0.0.1:7002", "g1", "f", &src);
    assert_int_equal(src, 0);

    /* stop_share by offline-or-not sources: the last one takes the file */
    assert_int_equal(fx_stop(fx, "alice", "127.0.0.1:7001", "g1", "f"), TS_OK);
    assert_int_equal(fx_list(fx, "bob", "127.0.0.1:7002", "g1", "f", &src), 1);
    assert_int_equal(fx_stop(fx, "carol", "127.0.0.1:7003", "g1", "f"), TS_OK);
    assert_int_equal(fx_list(fx, "bob", "127.0.0.1:7002", "g1", "f", &src), 0);
    assert_int_equal(fx_info(fx, "bob", "127.0.0.1:7002", "g1", "f", &in),
                     TS_ERR_NOTFOUND);
    /* and the name is free for other content */
    assert_int_equal(fx_upload(fx, "bob", "127.0.0.1:7002", "g1", "f",
                               10, 1, 8), TS_OK);
}


static void
test_my_shares(void **state)
{
    fx_t       *fx = *state;
    uint8_t     ha[32];
    uint8_t     bm[1] = { 1 };
    trk_fctx_t  c;
    ts_wbuf_t   b;
    ts_rbuf_t   r;
    char        g[80], nm[300];

    fx_mkgroup(fx, "g1", "alice", NULL, NULL);
    fx_mkgroup(fx, "g2", "alice", NULL, NULL);
    fx_login(fx, "alice", "127.0.0.1:7001", 1, ha);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g2", "z",
                               SZ2, 2, 1), TS_OK);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7002", "g1", "y",
                               SZ2, 2, 2), TS_OK);
    assert_int_equal(fx_have(fx, "alice", "127.0.0.1:7001", "g1", "y", 0, bm,
                             1),
                     TS_OK);
    c = fx_ctx(fx, "alice", "127.0.0.1:7001");
    ts_wbuf_init(&b);
    assert_int_equal(trk_do_my_shares(&c, &b, msg, sizeof(msg)), TS_OK);
    ts_rbuf_init(&r, b.data, b.len);
    assert_int_equal(ts_get_u32(&r), 2);
    ts_get_str(&r, g, sizeof(g));
    ts_get_str(&r, nm, sizeof(nm));
    assert_string_equal(g, "g1");
    assert_string_equal(nm, "y");
    assert_int_equal(ts_get_u8(&r), 0);
    ts_get_str(&r, g, sizeof(g));
    ts_get_str(&r, nm, sizeof(nm));
    assert_string_equal(g, "g2");
    assert_string_equal(nm, "z");
    assert_int_equal(ts_get_u8(&r), 1);
    assert_int_equal(ts_rbuf_end(&r), 0);
    ts_wbuf_free(&b);

    assert_int_equal(fx_stop(fx, "alice", "127.0.0.1:7001", "g2", "z"), TS_OK);
    ts_wbuf_init(&b);
    assert_int_equal(trk_do_my_shares(&c, &b, msg, sizeof(msg)), TS_OK);
    ts_rbuf_init(&r, b.data, b.len);
    assert_int_equal(ts_get_u32(&r), 1);
    ts_wbuf_free(&b);
}


static void
test_leave_and_dissolve(void **state)
{
    fx_t    *fx = *state;
    uint8_t  ha[32], hb[32], hc[32];
    char     no[80];
    info_t   in;
    int      src;

    fx_mkgroup(fx, "g1", "alice", "bob", "carol");
    fx_login(fx, "alice", "127.0.0.1:7001", 1, ha);
    fx_login(fx, "bob", "127.0.0.1:7002", 2, hb);
    fx_login(fx, "carol", "127.0.0.1:7003", 3, hc);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "shared",
                               SZ2, 2, 1), TS_OK);
    assert_int_equal(fx_upload(fx, "bob", "127.0.0.1:7002", "g1", "shared",
                               SZ2, 2, 1), TS_OK);
    assert_int_equal(fx_upload(fx, "bob", "127.0.0.1:7012", "g1", "shared",
                               SZ2, 2, 1), TS_OK);
    assert_int_equal(fx_upload(fx, "bob", "127.0.0.1:7002", "g1", "bobs",
                               SZ2, 2, 2), TS_OK);
    assert_int_equal(fx_list(fx, "carol", "127.0.0.1:7003", "g1", "shared",
                             &src), 2);
    assert_int_equal(src, 2);       /* bob's second node is offline */

    /* bob leaves: all his sources in g1 go; "bobs" had no other one */
    fx_begin(fx);
    assert_int_equal(trk_do_leave_group(fx->st, "bob", "g1", no, sizeof(no),
                                        msg, sizeof(msg)), TS_OK);
    fx_commit(fx);
    assert_int_equal(fx_list(fx, "carol", "127.0.0.1:7003", "g1", "shared",
                             &src), 1);
    assert_int_equal(src, 1);
    assert_int_equal(fx_info(fx, "carol", "127.0.0.1:7003", "g1", "shared",
                             &in), TS_OK);
    assert_int_equal(in.n, 1);
    assert_string_equal(in.addr[0], "127.0.0.1:7001");
    assert_int_equal(fx_info(fx, "carol", "127.0.0.1:7003", "g1", "bobs", &in),
                     TS_ERR_NOTFOUND);
    assert_int_equal(fx_stop(fx, "bob", "127.0.0.1:7002", "g1", "shared"),
                     TS_ERR_PERM);

    /* last members leave: the group and its files go */
    fx_begin(fx);
    assert_int_equal(trk_do_leave_group(fx->st, "carol", "g1", no,
                                        sizeof(no), msg, sizeof(msg)), TS_OK);
    assert_int_equal(trk_do_leave_group(fx->st, "alice", "g1", no,
                                        sizeof(no), msg, sizeof(msg)), TS_OK);
    assert_string_equal(no, "-");
    fx_commit(fx);
    {
        trk_file_t f;
        trk_srcs_t s;
        assert_int_equal(trk_file_get(fx->st, "g1", "shared", &f), 1);
        assert_int_equal(trk_srcs_get(fx->st, "g1", "shared", &s), 1);
    }
    /* a new group of that name starts empty */
    fx_mkgroup(fx, "g1", "carol", NULL, NULL);
    assert_int_equal(fx_list(fx, "carol", "127.0.0.1:7003", "g1", NULL, &src),
                     0);
}



int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_upload_and_sources, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_offline_and_partial, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_my_shares, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_leave_and_dissolve, setup,
                                        fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
