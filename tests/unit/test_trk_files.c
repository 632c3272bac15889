/*
 * test_trk_files.c -- cmocka tests of the tracker's file registry
 * (tracker/trk_files.c) on a real tdb file in a fresh temp directory.
 *
 * Covers: upload, the same content again adding a source, other content
 * under the same name refused, bad nchunks / bitmap / name / size refused,
 * membership checks, list_files counting online sources, file_info leaving
 * out offline sources and the requester's own node, have_chunks partial
 * then complete, stop_share by the last source removing the file, leaving
 * a group dropping the leaver's sources, dissolving a group removing its
 * files, my_shares, corrupt records decoding as errors, an expired
 * entry of a real shm session cache counting as offline, and (issue 5)
 * FILE_INFO's per-source node fingerprint (newest live session) and its
 * ticket: signed with a tracker key made in the temp dir, verifying
 * against the CA for the requester only, until the TTL; none for a link
 * without a certificate or a non-member.
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

#define SZ2  (TS_CHUNK_B + 1000)        /* two chunks */


static int
setup(void **state)
{
    return fx_setup(state, "/tmp/test_trk_files.XXXXXX");
}


static void
begin(fx_t *fx)
{
    assert_int_equal(trk_store_begin(fx->st), 0);
}


static void
commit(fx_t *fx)
{
    assert_int_equal(trk_store_commit(fx->st), 0);
}


/* A "login": session record + presence hook; h derived from tag. */
static void
login(fx_t *fx, const char *user, const char *addr, uint8_t tag,
      uint8_t h[32])
{
    trk_session_t s;

    memset(h, tag, 32);
    memset(&s, 0, sizeof(s));
    snprintf(s.user, sizeof(s.user), "%s", user);
    snprintf(s.node_addr, sizeof(s.node_addr), "%s", addr);
    begin(fx);
    assert_int_equal(trk_session_put(fx->st, h, &s), 0);
    assert_int_equal(trk_files_session_added(fx->st, h, user, addr), 0);
    commit(fx);
}


static void
logout(fx_t *fx, const uint8_t h[32])
{
    begin(fx);
    assert_int_equal(trk_files_session_gone(fx->st, h), 0);
    assert_int_equal(trk_session_del(fx->st, h), 0);
    commit(fx);
}


static trk_fctx_t
ctx(fx_t *fx, const char *user, const char *addr)
{
    trk_fctx_t c;

    memset(&c, 0, sizeof(c));
    c.st = fx->st;
    c.shm = NULL;
    c.now_ms = ts_now_ms();
    c.timeout_ms = TS_SESSION_TIMEOUT_MS;
    c.user = user;
    c.node_addr = addr;
    return c;
}


/* group g owned by owner, with the other members accepted */
static void
mkgroup(fx_t *fx, const char *g, const char *owner, const char *m1,
        const char *m2)
{
    begin(fx);
    assert_int_equal(trk_do_create_group(fx->st, owner, g, msg, sizeof(msg)),
                     TS_OK);
    if (m1) {
        assert_int_equal(trk_do_join_group(fx->st, m1, g, msg, sizeof(msg)),
                         TS_OK);
        assert_int_equal(trk_do_accept(fx->st, owner, g, m1, 1, msg,
                                       sizeof(msg)), TS_OK);
    }
    if (m2) {
        assert_int_equal(trk_do_join_group(fx->st, m2, g, msg, sizeof(msg)),
                         TS_OK);
        assert_int_equal(trk_do_accept(fx->st, owner, g, m2, 1, msg,
                                       sizeof(msg)), TS_OK);
    }
    commit(fx);
}


static void
content(uint8_t sha1[20], uint8_t *hashes, uint32_t n, uint8_t seed)
{
    memset(sha1, seed, 20);
    memset(hashes, seed + 1, (size_t) n * 20);
}


static ts_status_t
upload(fx_t *fx, const char *user, const char *addr, const char *g,
       const char *name, uint64_t size, uint32_t nchunks, uint8_t seed)
{
    trk_fctx_t  c = ctx(fx, user, addr);
    uint8_t     sha1[20];
    uint8_t    *hashes;
    ts_status_t st;

    hashes = calloc(nchunks ? nchunks : 1, 20);
    content(sha1, hashes, nchunks, seed);
    begin(fx);
    st = trk_do_upload(&c, g, name, size, sha1, nchunks, hashes, msg,
                       sizeof(msg));
    if (st == TS_OK) {
        commit(fx);
    } else {
        trk_store_cancel(fx->st);
    }
    free(hashes);
    return st;
}


/* list_files as seen by user: returns the count of files; sources of
 * name (or -1 if not listed) in *src. */
static uint32_t
list(fx_t *fx, const char *user, const char *addr, const char *g,
     const char *name, int *src)
{
    trk_fctx_t c = ctx(fx, user, addr);
    ts_wbuf_t  b;
    ts_rbuf_t  r;
    char       nm[TS_NAME_MAX_B + 1];
    uint32_t   n, i, on;
    uint64_t   size;

    ts_wbuf_init(&b);
    assert_int_equal(trk_do_list_files(&c, g, &b, msg, sizeof(msg)), TS_OK);
    ts_rbuf_init(&r, b.data, b.len);
    n = ts_get_u32(&r);
    *src = -1;
    for (i = 0; i < n; i++) {
        assert_int_equal(ts_get_str(&r, nm, sizeof(nm)), 0);
        size = ts_get_u64(&r);
        on = ts_get_u32(&r);
        (void) size;
        if (name != NULL && strcmp(nm, name) == 0) {
            *src = (int) on;
        }
    }
    assert_int_equal(ts_rbuf_end(&r), 0);
    ts_wbuf_free(&b);
    return n;
}


typedef struct {
    uint32_t n;
    char     addr[8][TRK_ADDR_MAX_B];
    uint8_t  complete[8];
    uint32_t held[8];
    uint8_t  fp[8][TS_FP_B];
} info_t;


static ts_status_t
info(fx_t *fx, const char *user, const char *addr, const char *g,
     const char *name, info_t *out)
{
    trk_fctx_t  c = ctx(fx, user, addr);
    ts_wbuf_t   b;
    ts_rbuf_t   r;
    uint8_t     sha1[20];
    uint32_t    nchunks, i, tl;
    ts_status_t st;

    memset(out, 0, sizeof(*out));
    ts_wbuf_init(&b);
    st = trk_do_file_info(&c, g, name, &b, msg, sizeof(msg));
    if (st == TS_OK) {
        ts_rbuf_init(&r, b.data, b.len);
        (void) ts_get_u64(&r);
        ts_get_raw(&r, sha1, 20);
        nchunks = ts_get_u32(&r);
        assert_true(ts_rbuf_left(&r) >= (size_t) nchunks * 20);
        r.off += (size_t) nchunks * 20;
        out->n = ts_get_u32(&r);
        assert_true(out->n <= 8);
        for (i = 0; i < out->n; i++) {
            assert_int_equal(ts_get_str(&r, out->addr[i],
                                        sizeof(out->addr[i])), 0);
            out->complete[i] = ts_get_u8(&r);
            out->held[i] = ts_get_u32(&r);
            assert_int_equal(ts_get_raw(&r, out->fp[i], TS_FP_B), 0);
        }
        /* no signer in these tests: an empty ticket */
        assert_non_null(ts_get_blob(&r, &tl, TS_TICKET_MAX_B));
        assert_int_equal(tl, 0);
        assert_int_equal(ts_rbuf_end(&r), 0);
    }
    ts_wbuf_free(&b);
    return st;
}


static ts_status_t
have(fx_t *fx, const char *user, const char *addr, const char *g,
     const char *name, int complete, const uint8_t *bm, uint32_t bml)
{
    trk_fctx_t  c = ctx(fx, user, addr);
    ts_status_t st;

    begin(fx);
    st = trk_do_have_chunks(&c, g, name, complete, bm, bml, msg,
                            sizeof(msg));
    if (st == TS_OK) {
        commit(fx);
    } else {
        trk_store_cancel(fx->st);
    }
    return st;
}


static ts_status_t
stop(fx_t *fx, const char *user, const char *addr, const char *g,
     const char *name)
{
    trk_fctx_t  c = ctx(fx, user, addr);
    ts_status_t st;

    begin(fx);
    st = trk_do_stop_share(&c, g, name, msg, sizeof(msg));
    if (st == TS_OK) {
        commit(fx);
    } else {
        trk_store_cancel(fx->st);
    }
    return st;
}


/* ---- tests ---------------------------------------------------------- */

static void
test_upload_and_sources(void **state)
{
    fx_t    *fx = *state;
    uint8_t  ha[32], hb[32];
    info_t   in;
    int      src;

    mkgroup(fx, "g1", "alice", "bob", NULL);
    login(fx, "alice", "127.0.0.1:7001", 1, ha);
    login(fx, "bob", "127.0.0.1:7002", 2, hb);

    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1", "a.bin",
                            SZ2, 2, 7), TS_OK);
    assert_int_equal(list(fx, "bob", "127.0.0.1:7002", "g1", "a.bin", &src),
                     1);
    assert_int_equal(src, 1);

    /* the uploader's own node is not handed out to itself */
    assert_int_equal(info(fx, "alice", "127.0.0.1:7001", "g1", "a.bin", &in),
                     TS_OK);
    assert_int_equal(in.n, 0);
    assert_int_equal(info(fx, "bob", "127.0.0.1:7002", "g1", "a.bin", &in),
                     TS_OK);
    assert_int_equal(in.n, 1);
    assert_string_equal(in.addr[0], "127.0.0.1:7001");
    assert_int_equal(in.complete[0], 1);
    assert_int_equal(in.held[0], 2);

    /* same content again: one more source; twice from one node: no more */
    assert_int_equal(upload(fx, "bob", "127.0.0.1:7002", "g1", "a.bin",
                            SZ2, 2, 7), TS_OK);
    assert_int_equal(upload(fx, "bob", "127.0.0.1:7002", "g1", "a.bin",
                            SZ2, 2, 7), TS_OK);
    list(fx, "bob", "127.0.0.1:7002", "g1", "a.bin", &src);
    assert_int_equal(src, 2);

    /* other content, same name: refused, nothing changed */
    assert_int_equal(upload(fx, "bob", "127.0.0.1:7002", "g1", "a.bin",
                            SZ2, 2, 9), TS_ERR_EXISTS);
    assert_string_equal(msg, "a different file named 'a.bin' is already "
                        "shared in 'g1'");
    assert_int_equal(upload(fx, "bob", "127.0.0.1:7002", "g1", "a.bin",
                            SZ2 + TS_CHUNK_B, 3, 7), TS_ERR_EXISTS);

    /* same user from another node is another source */
    assert_int_equal(info(fx, "bob", "127.0.0.1:7009", "g1", "a.bin", &in),
                     TS_OK);
    assert_int_equal(in.n, 2);

    /* an empty file, a name with spaces */
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1", "empty",
                            0, 0, 1), TS_OK);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1",
                            "my \"file\" 1", 10, 1, 1), TS_OK);
    assert_int_equal(list(fx, "bob", "127.0.0.1:7002", "g1", "empty", &src),
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

    mkgroup(fx, "g1", "alice", NULL, NULL);
    login(fx, "alice", "127.0.0.1:7001", 1, ha);
    login(fx, "carol", "127.0.0.1:7003", 3, hc);

    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1", "x",
                            SZ2, 3, 1), TS_ERR_BADREQ);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1", "x",
                            SZ2, 1, 1), TS_ERR_BADREQ);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1", "x",
                            0, 1, 1), TS_ERR_BADREQ);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1", "a/b",
                            10, 1, 1), TS_ERR_BADREQ);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1", "..",
                            10, 1, 1), TS_ERR_BADREQ);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1", "a\nb",
                            10, 1, 1), TS_ERR_BADREQ);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1", "",
                            10, 1, 1), TS_ERR_BADREQ);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g/1", "x",
                            10, 1, 1), TS_ERR_BADREQ);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1", "x",
                            TS_FILE_MAX_B + 1,
                            (uint32_t) TS_FILE_MAX_CHUNKS_N + 1, 1),
                     TS_ERR_BADREQ);
    assert_int_equal(upload(fx, "alice", "", "g1", "x", 10, 1, 1),
                     TS_ERR_BADREQ);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "nog", "x",
                            10, 1, 1), TS_ERR_NOTFOUND);
    /* membership for every command */
    assert_int_equal(upload(fx, "carol", "127.0.0.1:7003", "g1", "x",
                            10, 1, 1), TS_ERR_PERM);
    assert_string_equal(msg, "not a member of 'g1'");
    assert_int_equal(list(fx, "alice", "127.0.0.1:7001", "g1", NULL, &src),
                     0);

    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1", "x",
                            SZ2, 2, 1), TS_OK);
    assert_int_equal(info(fx, "carol", "127.0.0.1:7003", "g1", "x", &in),
                     TS_ERR_PERM);
    assert_int_equal(stop(fx, "carol", "127.0.0.1:7003", "g1", "x"),
                     TS_ERR_PERM);
    assert_int_equal(have(fx, "carol", "127.0.0.1:7003", "g1", "x", 0, bm, 1),
                     TS_ERR_PERM);
    /* bitmap length must be (nchunks + 7) / 8 */
    assert_int_equal(have(fx, "alice", "127.0.0.1:7005", "g1", "x", 0, bm, 2),
                     TS_ERR_BADREQ);
    assert_int_equal(have(fx, "alice", "127.0.0.1:7005", "g1", "x", 0, bm, 0),
                     TS_ERR_BADREQ);
    /* "complete" with chunks missing */
    bm[0] = 1;
    assert_int_equal(have(fx, "alice", "127.0.0.1:7005", "g1", "x", 1, bm, 1),
                     TS_ERR_BADREQ);
    assert_int_equal(have(fx, "alice", "127.0.0.1:7005", "g1", "nope", 0, bm,
                          1), TS_ERR_NOTFOUND);
    assert_int_equal(info(fx, "alice", "127.0.0.1:7001", "g1", "nope", &in),
                     TS_ERR_NOTFOUND);
    assert_string_equal(msg, "no file 'nope' in 'g1'");
    assert_int_equal(stop(fx, "alice", "127.0.0.1:7005", "g1", "x"),
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

    mkgroup(fx, "g1", "alice", "bob", "carol");
    login(fx, "alice", "127.0.0.1:7001", 1, ha);
    login(fx, "bob", "127.0.0.1:7002", 2, hb);
    login(fx, "carol", "127.0.0.1:7003", 3, hc);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1", "f",
                            SZ2 + TS_CHUNK_B, 3, 4), TS_OK);

    /* carol downloads: a partial source with chunk 1 */
    bm[0] = 0x02;
    assert_int_equal(have(fx, "carol", "127.0.0.1:7003", "g1", "f", 0, bm, 1),
                     TS_OK);
    assert_int_equal(info(fx, "bob", "127.0.0.1:7002", "g1", "f", &in),
                     TS_OK);
    assert_int_equal(in.n, 2);
    assert_string_equal(in.addr[1], "127.0.0.1:7003");
    assert_int_equal(in.complete[1], 0);
    assert_int_equal(in.held[1], 1);
    /* bits past the last chunk do not count */
    bm[0] = 0xf3;
    assert_int_equal(have(fx, "carol", "127.0.0.1:7003", "g1", "f", 0, bm, 1),
                     TS_OK);
    assert_int_equal(info(fx, "bob", "127.0.0.1:7002", "g1", "f", &in),
                     TS_OK);
    assert_int_equal(in.held[1], 2);
    bm[0] = 0x07;
    assert_int_equal(have(fx, "carol", "127.0.0.1:7003", "g1", "f", 1, bm, 1),
                     TS_OK);
    assert_int_equal(info(fx, "bob", "127.0.0.1:7002", "g1", "f", &in),
                     TS_OK);
    assert_int_equal(in.complete[1], 1);
    assert_int_equal(in.held[1], 3);

    /* alice logs out: her source is offline, the file stays listed */
    logout(fx, ha);
    list(fx, "bob", "127.0.0.1:7002", "g1", "f", &src);
    assert_int_equal(src, 1);
    assert_int_equal(info(fx, "bob", "127.0.0.1:7002", "g1", "f", &in),
                     TS_OK);
    assert_int_equal(in.n, 1);
    assert_string_equal(in.addr[0], "127.0.0.1:7003");
    logout(fx, hc);
    assert_int_equal(list(fx, "bob", "127.0.0.1:7002", "g1", "f", &src), 1);
    assert_int_equal(src, 0);
    /* alice back on the same node: online again */
    login(fx, "alice", "127.0.0.1:7001", 4, ha2);
    list(fx, "bob", "127.0.0.1:7002", "g1", "f", &src);
    assert_int_equal(src, 1);
    /* on another node she is not that source */
    logout(fx, ha2);
    login(fx, "alice", "127.0.0.1:7011", 5, ha2);
    list(fx, "bob", "127.0.0.1:7002", "g1", "f", &src);
    assert_int_equal(src, 0);

    /* stop_share by offline-or-not sources: the last one takes the file */
    assert_int_equal(stop(fx, "alice", "127.0.0.1:7001", "g1", "f"), TS_OK);
    assert_int_equal(list(fx, "bob", "127.0.0.1:7002", "g1", "f", &src), 1);
    assert_int_equal(stop(fx, "carol", "127.0.0.1:7003", "g1", "f"), TS_OK);
    assert_int_equal(list(fx, "bob", "127.0.0.1:7002", "g1", "f", &src), 0);
    assert_int_equal(info(fx, "bob", "127.0.0.1:7002", "g1", "f", &in),
                     TS_ERR_NOTFOUND);
    /* and the name is free for other content */
    assert_int_equal(upload(fx, "bob", "127.0.0.1:7002", "g1", "f",
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

    mkgroup(fx, "g1", "alice", NULL, NULL);
    mkgroup(fx, "g2", "alice", NULL, NULL);
    login(fx, "alice", "127.0.0.1:7001", 1, ha);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g2", "z",
                            SZ2, 2, 1), TS_OK);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7002", "g1", "y",
                            SZ2, 2, 2), TS_OK);
    assert_int_equal(have(fx, "alice", "127.0.0.1:7001", "g1", "y", 0, bm, 1),
                     TS_OK);
    c = ctx(fx, "alice", "127.0.0.1:7001");
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

    assert_int_equal(stop(fx, "alice", "127.0.0.1:7001", "g2", "z"), TS_OK);
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

    mkgroup(fx, "g1", "alice", "bob", "carol");
    login(fx, "alice", "127.0.0.1:7001", 1, ha);
    login(fx, "bob", "127.0.0.1:7002", 2, hb);
    login(fx, "carol", "127.0.0.1:7003", 3, hc);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1", "shared",
                            SZ2, 2, 1), TS_OK);
    assert_int_equal(upload(fx, "bob", "127.0.0.1:7002", "g1", "shared",
                            SZ2, 2, 1), TS_OK);
    assert_int_equal(upload(fx, "bob", "127.0.0.1:7012", "g1", "shared",
                            SZ2, 2, 1), TS_OK);
    assert_int_equal(upload(fx, "bob", "127.0.0.1:7002", "g1", "bobs",
                            SZ2, 2, 2), TS_OK);
    assert_int_equal(list(fx, "carol", "127.0.0.1:7003", "g1", "shared",
                          &src), 2);
    assert_int_equal(src, 2);       /* bob's second node is offline */

    /* bob leaves: all his sources in g1 go; "bobs" had no other one */
    begin(fx);
    assert_int_equal(trk_do_leave_group(fx->st, "bob", "g1", no, sizeof(no),
                                        msg, sizeof(msg)), TS_OK);
    commit(fx);
    assert_int_equal(list(fx, "carol", "127.0.0.1:7003", "g1", "shared",
                          &src), 1);
    assert_int_equal(src, 1);
    assert_int_equal(info(fx, "carol", "127.0.0.1:7003", "g1", "shared",
                          &in), TS_OK);
    assert_int_equal(in.n, 1);
    assert_string_equal(in.addr[0], "127.0.0.1:7001");
    assert_int_equal(info(fx, "carol", "127.0.0.1:7003", "g1", "bobs", &in),
                     TS_ERR_NOTFOUND);
    assert_int_equal(stop(fx, "bob", "127.0.0.1:7002", "g1", "shared"),
                     TS_ERR_PERM);

    /* last members leave: the group and its files go */
    begin(fx);
    assert_int_equal(trk_do_leave_group(fx->st, "carol", "g1", no,
                                        sizeof(no), msg, sizeof(msg)), TS_OK);
    assert_int_equal(trk_do_leave_group(fx->st, "alice", "g1", no,
                                        sizeof(no), msg, sizeof(msg)), TS_OK);
    assert_string_equal(no, "-");
    commit(fx);
    {
        trk_file_t f;
        trk_srcs_t s;
        assert_int_equal(trk_file_get(fx->st, "g1", "shared", &f), 1);
        assert_int_equal(trk_srcs_get(fx->st, "g1", "shared", &s), 1);
    }
    /* a new group of that name starts empty */
    mkgroup(fx, "g1", "carol", NULL, NULL);
    assert_int_equal(list(fx, "carol", "127.0.0.1:7003", "g1", NULL, &src),
                     0);
}


static void
test_corrupt(void **state)
{
    fx_t         *fx = *state;
    uint8_t       ha[32], hb[32];
    trk_file_t    f;
    trk_srcs_t    s;
    ts_wbuf_t     b;
    TDB_DATA      k, v;
    uint8_t       junk[64];
    info_t        in;
    size_t        cut;
    char          no[80];

    mkgroup(fx, "g1", "alice", "bob", NULL);
    login(fx, "alice", "127.0.0.1:7001", 1, ha);
    login(fx, "bob", "127.0.0.1:7002", 2, hb);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1", "f",
                            SZ2, 2, 1), TS_OK);
    assert_int_equal(trk_file_get(fx->st, "g1", "f", &f), 0);
    assert_int_equal(f.nchunks, 2);

    /* every truncation of a valid record is an error, never a crash */
    ts_wbuf_init(&b);
    trk_file_encode(&b, &f);
    for (cut = 0; cut < b.len; cut++) {
        trk_file_t g;
        assert_int_equal(trk_file_decode(b.data, cut, &g), -1);
    }
    /* a chunk count that disagrees with the size */
    b.data[2 + 8 + 20 + 3] ^= 0x01;
    {
        trk_file_t g;
        assert_int_equal(trk_file_decode(b.data, b.len, &g), -1);
    }
    ts_wbuf_free(&b);
    trk_file_free(&f);

    assert_int_equal(trk_srcs_get(fx->st, "g1", "f", &s), 0);
    ts_wbuf_init(&b);
    trk_srcs_encode(&b, &s);
    for (cut = 0; cut < b.len; cut++) {
        trk_srcs_t t;
        assert_int_equal(trk_srcs_decode(b.data, cut, &t), -1);
    }
    /* a huge source count fails before any allocation */
    b.data[2 + 8 + 4] = 0xff;
    {
        trk_srcs_t t;
        assert_int_equal(trk_srcs_decode(b.data, b.len, &t), -1);
    }
    ts_wbuf_free(&b);
    trk_srcs_free(&s);
    memset(junk, 0xa5, sizeof(junk));
    assert_int_equal(trk_srcs_decode(junk, sizeof(junk), &s), -1);
    assert_int_equal(trk_file_decode(junk, sizeof(junk), &f), -1);

    /* a corrupt p/ record in tdb: an error for the request, no crash */
    k.dptr = (unsigned char *) "p/g1/f";
    k.dsize = 6;
    v.dptr = junk;
    v.dsize = sizeof(junk);
    assert_int_equal(tdb_store(trk_store_tdb(fx->st), k, v, TDB_REPLACE), 0);
    assert_int_equal(info(fx, "bob", "127.0.0.1:7002", "g1", "f", &in),
                     TS_ERR_INTERNAL);
    assert_int_equal(stop(fx, "alice", "127.0.0.1:7001", "g1", "f"),
                     TS_ERR_INTERNAL);
    /* ... and the group can still be left; the broken file is dropped */
    begin(fx);
    assert_int_equal(trk_do_leave_group(fx->st, "bob", "g1", no, sizeof(no),
                                        msg, sizeof(msg)), TS_OK);
    commit(fx);
    assert_int_equal(trk_file_get(fx->st, "g1", "f", &f), 1);

    /* a corrupt l/ record: list_files fails cleanly */
    k.dptr = (unsigned char *) "l/g1";
    k.dsize = 4;
    assert_int_equal(tdb_store(trk_store_tdb(fx->st), k, v, TDB_REPLACE), 0);
    {
        trk_fctx_t c = ctx(fx, "alice", "127.0.0.1:7001");
        ts_wbuf_init(&b);
        assert_int_equal(trk_do_list_files(&c, "g1", &b, msg, sizeof(msg)),
                         TS_ERR_INTERNAL);
        ts_wbuf_free(&b);
    }
}


/* With a real shm session cache: an entry past its timeout is offline
 * even though tdb still has the session (the housekeeper has not run). */
static void
test_shm_presence(void **state)
{
    fx_t       *fx = *state;
    trk_shm_t   shm;
    uint8_t     ha[32], hb[32];
    trk_fctx_t  c;
    ts_wbuf_t   b;
    ts_rbuf_t   r;
    char        name[64], nm[64];
    uint16_t    port;
    int         i, ok = 0;
    int64_t     now;

    /* a port no live tracker owns: ts_shm_create refuses those (EBUSY) */
    for (i = 0; i < 20 && !ok; i++) {
        port = (uint16_t) (61000 + (getpid() + i * 97) % 4000);
        ok = trk_shm_create(&shm, port) == 0;
    }
    if (!ok) {
        skip();
    }
    trk_shm_name(name, sizeof(name), port);

    mkgroup(fx, "g1", "alice", "bob", NULL);
    login(fx, "alice", "127.0.0.1:7001", 1, ha);
    login(fx, "bob", "127.0.0.1:7002", 2, hb);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1", "f",
                            10, 1, 1), TS_OK);
    now = ts_now_ms();
    assert_int_equal(trk_sess_insert(&shm, ha, "alice", NULL, now), 0);

    c = ctx(fx, "bob", "127.0.0.1:7002");
    c.shm = &shm;
    c.now_ms = now + 1000;
    c.timeout_ms = 5000;
    ts_wbuf_init(&b);
    assert_int_equal(trk_do_list_files(&c, "g1", &b, msg, sizeof(msg)),
                     TS_OK);
    ts_rbuf_init(&r, b.data, b.len);
    assert_int_equal(ts_get_u32(&r), 1);
    ts_get_str(&r, nm, sizeof(nm));
    (void) ts_get_u64(&r);
    assert_int_equal(ts_get_u32(&r), 1);          /* live in shm */

    c.now_ms = now + 6000;                        /* past the timeout */
    ts_wbuf_reset(&b);
    assert_int_equal(trk_do_list_files(&c, "g1", &b, msg, sizeof(msg)),
                     TS_OK);
    ts_rbuf_init(&r, b.data, b.len);
    assert_int_equal(ts_get_u32(&r), 1);
    ts_get_str(&r, nm, sizeof(nm));
    (void) ts_get_u64(&r);
    assert_int_equal(ts_get_u32(&r), 0);          /* expired: offline */
    ts_wbuf_free(&b);

    ts_shm_detach(&shm.shm);
    ts_shm_unlink(name);
}


/* FILE_INFO with a signer: each source's node fingerprint (that of the
 * newest live session of the node), and a ticket for the requester that
 * verifies against the CA, names the requester and expires after TTL. */
static void
rm_pki(const char *dir)
{
    static const char *names[] = { "ca.crt", "ca.key", "tracker-1.crt",
                                   "tracker-1.key", ".lock" };
    char   p[256];
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}


static void
login_fp(fx_t *fx, const char *user, const char *addr, uint8_t tag,
         uint8_t fpb, uint64_t created, uint8_t h[32])
{
    trk_session_t s;

    memset(h, tag, 32);
    memset(&s, 0, sizeof(s));
    snprintf(s.user, sizeof(s.user), "%s", user);
    snprintf(s.node_addr, sizeof(s.node_addr), "%s", addr);
    s.created_ms = created;
    memset(s.fp, fpb, sizeof(s.fp));
    begin(fx);
    assert_int_equal(trk_session_put(fx->st, h, &s), 0);
    assert_int_equal(trk_files_session_added(fx->st, h, user, addr), 0);
    commit(fx);
}


static void
test_file_info_ticket(void **state)
{
    fx_t                 *fx = *state;
    char                  pki[128], crt[160], key[160], ca[160], err[256];
    char                  addr[TRK_ADDR_MAX_B];
    uint8_t               ha1[32], ha2[32], hb[32], fpb[TS_FP_B];
    uint8_t               fp[TS_FP_B], other[TS_FP_B];
    ts_ticket_signer_t   *sg;
    ts_ticket_verifier_t *vf;
    ts_ticket_t           tk;
    trk_fctx_t            c;
    ts_wbuf_t             b;
    ts_rbuf_t             r;
    const uint8_t        *blob;
    uint32_t              nchunks, tl;
    int64_t               now;

    snprintf(pki, sizeof(pki), "%s/pki", fx->dir);
    snprintf(crt, sizeof(crt), "%s/tracker-1.crt", pki);
    snprintf(key, sizeof(key), "%s/tracker-1.key", pki);
    snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
    assert_int_equal(ts_pki_ensure_ca(pki, err, sizeof(err)), 0);
    assert_int_equal(ts_pki_ensure_tracker(pki, 1, "127.0.0.1", err,
                                           sizeof(err)), 0);
    sg = ts_ticket_signer_new(1, crt, key, err, sizeof(err));
    assert_non_null(sg);
    vf = ts_ticket_verifier_new(ca, err, sizeof(err));
    assert_non_null(vf);

    mkgroup(fx, "g1", "alice", "bob", NULL);
    /* alice's node logged in twice: an old session (key 0xa1), then a
     * new one after the node got a new key (0xa2) */
    login_fp(fx, "alice", "127.0.0.1:7001", 1, 0xa1, 1000, ha1);
    login_fp(fx, "alice", "127.0.0.1:7001", 2, 0xa2, 2000, ha2);
    login_fp(fx, "bob", "127.0.0.1:7002", 3, 0xb0, 1500, hb);
    assert_int_equal(upload(fx, "alice", "127.0.0.1:7001", "g1", "f",
                            10, 1, 1), TS_OK);

    memset(fpb, 0xb0, sizeof(fpb));
    c = ctx(fx, "bob", "127.0.0.1:7002");
    c.signer = sg;
    c.req_fp = fpb;
    c.ticket_ttl_ms = 5000;
    ts_wbuf_init(&b);
    assert_int_equal(trk_do_file_info(&c, "g1", "f", &b, msg, sizeof(msg)),
                     TS_OK);
    ts_rbuf_init(&r, b.data, b.len);
    (void) ts_get_u64(&r);
    r.off += 20;
    nchunks = ts_get_u32(&r);
    r.off += (size_t) nchunks * 20;
    assert_int_equal(ts_get_u32(&r), 1);
    assert_int_equal(ts_get_str(&r, addr, sizeof(addr)), 0);
    assert_string_equal(addr, "127.0.0.1:7001");
    (void) ts_get_u8(&r);
    (void) ts_get_u32(&r);
    assert_int_equal(ts_get_raw(&r, fp, sizeof(fp)), 0);
    memset(other, 0xa2, sizeof(other));
    assert_memory_equal(fp, other, TS_FP_B);        /* the newest */
    blob = ts_get_blob(&r, &tl, TS_TICKET_MAX_B);
    assert_non_null(blob);
    assert_true(tl > 0);
    assert_int_equal(ts_rbuf_end(&r), 0);

    now = ts_wall_ms();
    assert_int_equal(ts_ticket_verify(vf, blob, tl, now, fpb, &tk, err,
                                      sizeof(err)), 0);
    assert_int_equal(tk.issuer, 1);
    assert_string_equal(tk.group, "g1");
    assert_string_equal(tk.name, "f");
    assert_memory_equal(tk.fp, fpb, TS_FP_B);
    assert_int_equal(tk.expires_ms - tk.issued_ms, 5000);
    /* another identity, or too late: refused */
    assert_int_not_equal(ts_ticket_verify(vf, blob, tl, now, other, &tk,
                                          err, sizeof(err)), 0);
    assert_int_not_equal(ts_ticket_verify(vf, blob, tl, now + 6000, fpb,
                                          &tk, err, sizeof(err)), 0);

    /* no certificate on the requesting link: sources, empty ticket */
    c.req_fp = NULL;
    ts_wbuf_reset(&b);
    assert_int_equal(trk_do_file_info(&c, "g1", "f", &b, msg, sizeof(msg)),
                     TS_OK);
    assert_true(b.len >= 4);
    assert_memory_equal(b.data + b.len - 4, "\0\0\0\0", 4);

    /* not a member: no ticket at all */
    c = ctx(fx, "carol", "127.0.0.1:7003");
    c.signer = sg;
    c.req_fp = fpb;
    ts_wbuf_reset(&b);
    assert_int_equal(trk_do_file_info(&c, "g1", "f", &b, msg, sizeof(msg)),
                     TS_ERR_PERM);
    ts_wbuf_free(&b);
    ts_ticket_signer_free(sg);
    ts_ticket_verifier_free(vf);
    rm_pki(pki);
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
        cmocka_unit_test_setup_teardown(test_corrupt, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_shm_presence, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_file_info_ticket, setup,
                                        fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
