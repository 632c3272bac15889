/*
 * test_trk_guard.c -- cmocka tests of the tracker's request guards,
 * through trk_ops_handle() on a real store and a real tracker shm
 * segment (trk_guard_fixture.h): LOGIN needs a client certificate and a
 * node address on the link's own IP; sessions without a fingerprint are
 * refused; the reply cache answers only byte-identical retries; sessions
 * the cache has no place for still expire; a snapshot that deletes a
 * session removes it from the cache at once; STATUS needs a tracker
 * certificate.  The throttles are in test_trk_throttle.c.
 *
 * Locking: single-threaded.  Crash behaviour: see trk_guard_fixture.h.
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

#include "ts_clock.h"
#include "trk_guard_fixture.h"


static void
test_login_needs_certificate(void **state)
{
    gx_t    *g = *state;
    uint8_t  tok[TS_TOKEN_B];
    char     m[256];

    if (!ts_tls_enabled()) {
        skip();
    }
    create_user(g, "alice");
    g->link.has_fp = 0;
    memset(g->link.fp, 0, TS_FP_B);
    assert_int_equal(login(g, "alice", "pw", "127.0.0.1:7000", tok, m,
                           sizeof(m)), TS_ERR_AUTH);
    assert_non_null(strstr(m, "client certificate"));
    /* refused before anything was counted or run */
    assert_int_equal(trk_thr_wait_ms(&g->shm, 'u', "alice",
                                     &g->env.thr_user, ts_now_ms()), 0);
    g->link.has_fp = 1;
    memset(g->link.fp, 0xc1, TS_FP_B);
    assert_int_equal(login(g, "alice", "pw", "127.0.0.1:7000", tok, m,
                           sizeof(m)), TS_OK);
    assert_int_equal(list_groups(g, tok, m, sizeof(m)), TS_OK);
}


static void
test_node_address(void **state)
{
    gx_t        *g = *state;
    char         canon[TRK_ADDR_MAX_B], why[256], m[256];
    uint8_t      tok[TS_TOKEN_B];
    size_t       i;
    static const char *const bad[] = {
        "", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:0",
        "127.0.0.1:65536", "127.0.0.1:080", "127.0.0.1:8x", "127.0.0.1:+8",
        "127.0.0.1: 80", " 127.0.0.1:80", "127.0.0.1:80 ", "127.1:80",
        "0127.0.0.1:80", "localhost:80", "127.0.0.1:80:80", "::1:80",
        "[127.0.0.1]:80", "[::1]80", "[::1]:", "[]:80", "[::1:80",
        "127.0.0.1:123456", "\x1b[31m:80", "127.0.0.1:80\n",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(trk_node_addr_check(bad[i], "127.0.0.1", canon,
                                             sizeof(canon), why,
                                             sizeof(why)), -1);
        assert_non_null(strstr(why, "invalid node address"));
    }
    assert_int_equal(trk_node_addr_check("127.0.0.1:65535", "127.0.0.1",
                                         canon, sizeof(canon), why,
                                         sizeof(why)), 0);
    assert_string_equal(canon, "127.0.0.1:65535");
    assert_int_equal(trk_node_addr_check("[::1]:1", "::1", canon,
                                         sizeof(canon), why, sizeof(why)),
                     0);
    assert_string_equal(canon, "[::1]:1");
    assert_int_equal(trk_node_addr_check("[2001:DB8:0::1]:80",
                                         "2001:db8::1", canon, sizeof(canon),
                                         why, sizeof(why)), 0);
    assert_string_equal(canon, "[2001:db8::1]:80");
    /* an IPv4-mapped address is its IPv4 address, both ways */
    assert_int_equal(trk_node_addr_check("10.1.2.3:80", "::ffff:10.1.2.3",
                                         canon, sizeof(canon), why,
                                         sizeof(why)), 0);
    assert_int_equal(trk_node_addr_check("[::ffff:10.1.2.3]:80", "10.1.2.3",
                                         canon, sizeof(canon), why,
                                         sizeof(why)), 0);
    assert_string_equal(canon, "10.1.2.3:80");
    /* a node serving on every address is listed where it connects from */
    assert_int_equal(trk_node_addr_check("0.0.0.0:7000", "10.1.2.3", canon,
                                         sizeof(canon), why, sizeof(why)),
                     0);
    assert_string_equal(canon, "10.1.2.3:7000");
    assert_int_equal(trk_node_addr_check("[::]:7000", "2001:db8::5", canon,
                                         sizeof(canon), why, sizeof(why)),
                     0);
    assert_string_equal(canon, "[2001:db8::5]:7000");
    assert_int_equal(trk_node_addr_check("0.0.0.0:7000", "::ffff:10.1.2.3",
                                         canon, sizeof(canon), why,
                                         sizeof(why)), 0);
    assert_string_equal(canon, "10.1.2.3:7000");
    /* another IP than the connection's: refused */
    assert_int_equal(trk_node_addr_check("10.0.0.1:80", "127.0.0.1", canon,
                                         sizeof(canon), why, sizeof(why)),
                     -2);
    assert_non_null(strstr(why, "not this connection's address"));
    assert_int_equal(trk_node_addr_check("[::1]:80", "127.0.0.1", canon,
                                         sizeof(canon), why, sizeof(why)),
                     -2);
    assert_int_equal(trk_node_addr_check("127.0.0.1:80", NULL, canon,
                                         sizeof(canon), why, sizeof(why)),
                     -2);

    /* through LOGIN: refused with the reason, nothing counted */
    create_user(g, "alice");
    assert_int_equal(login(g, "alice", "pw", "10.0.0.1:80", tok, m,
                           sizeof(m)), TS_ERR_BADREQ);
    assert_non_null(strstr(m, "not this connection's address"));
    assert_int_equal(login(g, "alice", "pw", "127.0.0.1:0", tok, m,
                           sizeof(m)), TS_ERR_BADREQ);
    assert_non_null(strstr(m, "invalid node address"));
    assert_int_equal(login(g, "alice", "pw", "127.0.0.1:7000", tok, m,
                           sizeof(m)), TS_OK);
}


static void
test_session_without_fingerprint(void **state)
{
    gx_t          *g = *state;
    trk_session_t  s;
    uint8_t        tok[TS_TOKEN_B], h[32];
    char           m[256];

    if (!ts_tls_enabled()) {
        skip();
    }
    create_user(g, "alice");
    /* a record in the older format: no node fingerprint */
    memset(&s, 0, sizeof(s));
    snprintf(s.user, sizeof(s.user), "alice");
    snprintf(s.node_addr, sizeof(s.node_addr), "127.0.0.1:7000");
    s.created_ms = (uint64_t) ts_wall_ms();
    memset(tok, 0x42, sizeof(tok));
    assert_int_equal(ts_sha256(tok, sizeof(tok), h), 0);
    assert_int_equal(trk_store_begin(g->st), 0);
    assert_int_equal(trk_session_put(g->st, h, &s), 0);
    assert_int_equal(trk_store_commit(g->st), 0);
    /* over a link with a certificate or without one: log in again */
    assert_int_equal(list_groups(g, tok, m, sizeof(m)), TS_ERR_AUTH);
    assert_non_null(strstr(m, "log in again"));
    g->link.has_fp = 0;
    memset(g->link.fp, 0, TS_FP_B);
    assert_int_equal(list_groups(g, tok, m, sizeof(m)), TS_ERR_AUTH);
    assert_non_null(strstr(m, "log in again"));
    /* and the leader's housekeeping removes it */
    trk_housekeep(&g->env, ts_now_ms() + 10 * TS_HOUSEKEEP_MS);
    assert_int_equal(trk_session_get(g->st, h, &s), 1);
}


/* ---- reply cache ------------------------------------------------------ */

static void
test_reply_cache_needs_same_bytes(void **state)
{
    gx_t        *g = *state;
    uint8_t      ta[TS_TOKEN_B], tb[TS_TOKEN_B];
    ts_wbuf_t    pl, out, first;
    char         m[256];

    ts_wbuf_init(&pl);
    ts_wbuf_init(&out);
    ts_wbuf_init(&first);
    create_user(g, "alice");
    create_user(g, "bob");
    assert_int_equal(login(g, "alice", "pw", "127.0.0.1:7001", ta, m,
                           sizeof(m)), TS_OK);
    assert_int_equal(login(g, "bob", "pw", "127.0.0.1:7002", tb, m,
                           sizeof(m)), TS_OK);
    /* alice creates g1 with id 99 */
    ts_put_raw(&pl, ta, TS_TOKEN_B);
    ts_put_str(&pl, "g1");
    assert_int_equal(req_id(g, TS_MSG_CREATE_GROUP, 99, &pl, &first, m,
                            sizeof(m)), TS_OK);
    /* bob sends another request under the same id: judged afresh (he
     * gets his own answer, not alice's cached one) */
    ts_wbuf_reset(&pl);
    ts_put_raw(&pl, tb, TS_TOKEN_B);
    ts_put_str(&pl, "g1");
    assert_int_equal(req_id(g, TS_MSG_CREATE_GROUP, 99, &pl, &out, m,
                            sizeof(m)), TS_ERR_EXISTS);
    ts_wbuf_reset(&pl);
    ts_put_raw(&pl, tb, TS_TOKEN_B);
    ts_put_str(&pl, "g2");
    assert_int_equal(req_id(g, TS_MSG_CREATE_GROUP, 99, &pl, &out, m,
                            sizeof(m)), TS_OK);
    /* a forged token under that id: refused, not the cached OK */
    ts_wbuf_reset(&pl);
    memset(tb, 0x55, sizeof(tb));
    ts_put_raw(&pl, tb, TS_TOKEN_B);
    ts_put_str(&pl, "g1");
    assert_int_equal(req_id(g, TS_MSG_CREATE_GROUP, 99, &pl, &out, m,
                            sizeof(m)), TS_ERR_AUTH);
    /* alice's genuine retry (same bytes) still gets her first answer */
    ts_wbuf_reset(&pl);
    ts_put_raw(&pl, ta, TS_TOKEN_B);
    ts_put_str(&pl, "g1");
    assert_int_equal(req_id(g, TS_MSG_CREATE_GROUP, 99, &pl, &out, m,
                            sizeof(m)), TS_OK);
    assert_int_equal(out.len, first.len);
    assert_memory_equal(out.data, first.data, out.len);
    ts_wbuf_free(&pl);
    ts_wbuf_free(&out);
    ts_wbuf_free(&first);
}


static void
token_in_stripe(uint32_t stripe, uint32_t *ctr, uint8_t tok[TS_TOKEN_B],
                uint8_t h[32])
{
    for (;;) {
        memset(tok, 0, TS_TOKEN_B);
        memcpy(tok, ctr, sizeof(*ctr));
        (*ctr)++;
        assert_int_equal(ts_sha256(tok, TS_TOKEN_B, h), 0);
        if ((uint32_t) (h[0] | (h[1] << 8)) % TS_TRK_SESS_STRIPES_N
            == stripe)
        {
            return;
        }
    }
}


static void
test_uncached_sessions_expire(void **state)
{
    gx_t          *g = *state;
    trk_session_t  s;
    uint8_t        tok[TS_TOKEN_B], h[32], old_h[32], new_h[32];
    uint32_t       ctr = 1, i;
    char           m[256];
    int64_t        now = ts_now_ms();

    create_user(g, "alice");
    /* a full stripe of live entries (sessions that keep beating) */
    for (i = 0; i < STRIPE_N; i++) {
        token_in_stripe(5, &ctr, tok, h);
        assert_int_equal(trk_sess_insert(&g->shm, h, "alice", g->link.fp,
                                         now + 3600 * 1000), 0);
    }
    /* two sessions only tdb knows, in that stripe: one created long ago,
     * one just now */
    memset(&s, 0, sizeof(s));
    snprintf(s.user, sizeof(s.user), "alice");
    snprintf(s.node_addr, sizeof(s.node_addr), "127.0.0.1:7000");
    memcpy(s.fp, g->link.fp, TS_FP_B);
    assert_int_equal(trk_store_begin(g->st), 0);
    token_in_stripe(5, &ctr, tok, old_h);
    s.created_ms = (uint64_t) ts_wall_ms() - 10 * 5000;
    assert_int_equal(trk_session_put(g->st, old_h, &s), 0);
    token_in_stripe(5, &ctr, tok, new_h);
    s.created_ms = (uint64_t) ts_wall_ms();
    assert_int_equal(trk_session_put(g->st, new_h, &s), 0);
    assert_int_equal(trk_store_commit(g->st), 0);
    /* the new one still works (served from tdb, not cached) */
    assert_int_equal(list_groups(g, tok, m, sizeof(m)), TS_OK);
    assert_int_equal(trk_sess_lookup(&g->shm, new_h, now, 5000, 0, m,
                                     sizeof(m)), 0);
    /* the leader's housekeeping: the old uncachable one goes, the new
     * one stays (it has a session timeout of its own to show up) */
    trk_housekeep(&g->env, ts_now_ms() + 2 * TS_HOUSEKEEP_MS);
    assert_int_equal(trk_session_get(g->st, old_h, &s), 1);
    assert_int_equal(trk_session_get(g->st, new_h, &s), 0);
}


/* Snapshot entries (blob key, blob value) of every replicated record. */
static int
snap_rec(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
         void *arg)
{
    ts_wbuf_t *b = arg;

    ts_put_blob(b, k, (uint32_t) kl);
    ts_put_blob(b, v, (uint32_t) vl);
    return b->err ? -1 : 0;
}


static int
count_rec(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
          void *arg)
{
    (void) k;
    (void) kl;
    (void) v;
    (void) vl;
    (*(uint32_t *) arg)++;
    return 0;
}


static void
test_snapshot_drops_deleted_sessions(void **state)
{
    gx_t             *g = *state;
    _Atomic uint64_t  hb;
    trk_store_t      *b;
    trk_rec_t         rec;
    trk_vv_t          vv;
    ts_wbuf_t         pl, out, env_b;
    uint8_t           tok[TS_TOKEN_B], h[32];
    uint32_t          n = 0;
    char              path[160], err[256], key[80], hex[65], m[256];

    create_user(g, "alice");
    assert_int_equal(login(g, "alice", "pw", "127.0.0.1:7000", tok, m,
                           sizeof(m)), TS_OK);
    assert_int_equal(ts_sha256(tok, sizeof(tok), h), 0);
    assert_int_equal(trk_sess_lookup(&g->shm, h, ts_now_ms(), 5000, 0, m,
                                     sizeof(m)), 1);
    /* tracker 2 has the session too and ends it (a logout there) */
    snprintf(path, sizeof(path), "%s/peer.tdb", g->dir);
    b = trk_store_open(path, 1, 1, err, sizeof(err));
    assert_non_null(b);
    assert_true(trk_epoch_get(b, 1) != 0);
    atomic_init(&hb, atomic_load(&g->shm.stats->hlc) + (1ull << 20));
    trk_store_set_origin(b, 2, (void *) &hb, NULL);
    ts_hex(h, 32, hex);
    snprintf(key, sizeof(key), "s/%s", hex);
    trk_rec_init(&rec);
    assert_int_equal(trk_kv_rec(g->st, key, strlen(key), &rec), 0);
    assert_int_equal(trk_store_begin(b), 0);
    assert_int_equal(trk_kv_merge(b, key, strlen(key), &rec), 0);
    assert_int_equal(trk_store_commit(b), 0);
    trk_rec_free(&rec);
    assert_int_equal(trk_store_begin(b), 0);
    assert_int_equal(trk_session_del(b, h), 0);
    assert_int_equal(trk_store_commit(b), 0);

    /* its snapshot arrives here over a link proving tracker 2 */
    ts_wbuf_init(&env_b);
    assert_int_equal(trk_each_replicated(b, count_rec, &n), 0);
    assert_int_equal(trk_each_replicated(b, snap_rec, &env_b), 0);
    assert_int_equal(trk_vv_load(b, &vv), 0);
    ts_wbuf_init(&pl);
    ts_wbuf_init(&out);
    ts_put_u8(&pl, 2);
    ts_put_u8(&pl, 1);
    ts_put_u32(&pl, n);
    ts_put_raw(&pl, env_b.data, env_b.len);
    trk_vv_encode(&pl, &vv);
    g->link.tracker = 2;
    assert_int_equal(req(g, TS_MSG_SYNC_SNAPSHOT, &pl, &out, m, sizeof(m)),
                     TS_OK);
    g->link.tracker = 0;
    /* gone from tdb and from the cache at once, not at housekeeping */
    assert_int_equal(trk_sess_lookup(&g->shm, h, ts_now_ms(), 5000, 0, m,
                                     sizeof(m)), 0);
    assert_int_equal(list_groups(g, tok, m, sizeof(m)), TS_ERR_AUTH);
    trk_store_close(b);
    ts_wbuf_free(&pl);
    ts_wbuf_free(&out);
    ts_wbuf_free(&env_b);
}


/* ---- STATUS ------------------------------------------------------------ */

static void
test_status_needs_tracker_certificate(void **state)
{
    gx_t      *g = *state;
    ts_wbuf_t  pl, out;
    char       m[256];

    if (!ts_tls_enabled()) {
        skip();
    }
    ts_wbuf_init(&pl);
    ts_wbuf_init(&out);
    /* a node certificate, or none: refused, no database read */
    assert_int_equal(req(g, TS_MSG_STATUS, &pl, &out, m, sizeof(m)),
                     TS_ERR_AUTH);
    assert_non_null(strstr(m, "tracker certificate"));
    g->env.link = NULL;
    assert_int_equal(req(g, TS_MSG_STATUS, &pl, &out, m, sizeof(m)),
                     TS_ERR_AUTH);
    g->env.link = &g->link;
    g->link.tracker = 2;
    assert_int_equal(req(g, TS_MSG_STATUS, &pl, &out, m, sizeof(m)), TS_OK);
    ts_wbuf_free(&pl);
    ts_wbuf_free(&out);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_login_needs_certificate, gx_setup,
                                        gx_teardown),
        cmocka_unit_test_setup_teardown(test_node_address, gx_setup,
                                        gx_teardown),
        cmocka_unit_test_setup_teardown(
            test_session_without_fingerprint, gx_setup, gx_teardown),
        cmocka_unit_test_setup_teardown(
            test_reply_cache_needs_same_bytes, gx_setup, gx_teardown),
        cmocka_unit_test_setup_teardown(
            test_uncached_sessions_expire, gx_setup, gx_teardown),
        cmocka_unit_test_setup_teardown(
            test_snapshot_drops_deleted_sessions, gx_setup, gx_teardown),
        cmocka_unit_test_setup_teardown(
            test_status_needs_tracker_certificate, gx_setup, gx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
