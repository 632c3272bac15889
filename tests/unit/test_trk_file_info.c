/*
 * test_trk_file_info.c -- cmocka tests of the tracker's file registry,
 * second part: corrupt records decoding as errors, an expired entry of a
 * real shm session cache counting as offline, and FILE_INFO's per-source
 * node fingerprint (newest live session) and its ticket: signed with a
 * tracker key made in the temp dir, verifying against the CA for the
 * requester only, until the TTL; none for a link without a certificate
 * or a non-member.  (test_trk_files.c has the rules themselves.)
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
#include "ts_clock.h"
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
    return fx_setup(state, "/tmp/test_trk_file_info.XXXXXX");
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

    fx_mkgroup(fx, "g1", "alice", "bob", NULL);
    fx_login(fx, "alice", "127.0.0.1:7001", 1, ha);
    fx_login(fx, "bob", "127.0.0.1:7002", 2, hb);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "f",
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
    assert_int_equal(fx_info(fx, "bob", "127.0.0.1:7002", "g1", "f", &in),
                     TS_ERR_INTERNAL);
    assert_int_equal(fx_stop(fx, "alice", "127.0.0.1:7001", "g1", "f"),
                     TS_ERR_INTERNAL);
    /* ... and the group can still be left; the broken file is dropped */
    fx_begin(fx);
    assert_int_equal(trk_do_leave_group(fx->st, "bob", "g1", no, sizeof(no),
                                        msg, sizeof(msg)), TS_OK);
    fx_commit(fx);
    assert_int_equal(trk_file_get(fx->st, "g1", "f", &f), 1);

    /* a corrupt l/ record: list_files fails cleanly */
    k.dptr = (unsigned char *) "l/g1";
    k.dsize = 4;
    assert_int_equal(tdb_store(trk_store_tdb(fx->st), k, v, TDB_REPLACE), 0);
    {
        trk_fctx_t c = fx_ctx(fx, "alice", "127.0.0.1:7001");
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

    fx_mkgroup(fx, "g1", "alice", "bob", NULL);
    fx_login(fx, "alice", "127.0.0.1:7001", 1, ha);
    fx_login(fx, "bob", "127.0.0.1:7002", 2, hb);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "f",
                               10, 1, 1), TS_OK);
    now = ts_now_ms();
    assert_int_equal(trk_sess_insert(&shm, ha, "alice", NULL, now), 0);

    c = fx_ctx(fx, "bob", "127.0.0.1:7002");
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
    fx_begin(fx);
    assert_int_equal(trk_session_put(fx->st, h, &s), 0);
    assert_int_equal(trk_files_session_added(fx->st, h, user, addr), 0);
    fx_commit(fx);
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

    fx_mkgroup(fx, "g1", "alice", "bob", NULL);
    /* alice's node logged in twice: an old session (key 0xa1), then a
     * new one after the node got a new key (0xa2) */
    login_fp(fx, "alice", "127.0.0.1:7001", 1, 0xa1, 1000, ha1);
    login_fp(fx, "alice", "127.0.0.1:7001", 2, 0xa2, 2000, ha2);
    login_fp(fx, "bob", "127.0.0.1:7002", 3, 0xb0, 1500, hb);
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", "f",
                               10, 1, 1), TS_OK);

    memset(fpb, 0xb0, sizeof(fpb));
    c = fx_ctx(fx, "bob", "127.0.0.1:7002");
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
    c = fx_ctx(fx, "carol", "127.0.0.1:7003");
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
        cmocka_unit_test_setup_teardown(test_corrupt, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_shm_presence, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_file_info_ticket, setup,
                                        fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
