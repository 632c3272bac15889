/*
 * test_trk_srcpick.c -- cmocka tests of the sources a FILE_INFO reply
 * lists (tracker/trk_srcpick.c): one user's many sessions count at most
 * TS_TRK_FINFO_USER_SRC_N entries of a list, the list is bounded by
 * TS_TRK_FINFO_SOURCES_N and shuffled afresh per request, the addresses
 * a requester excludes come last, sources another user reported as
 * serving come first (a user cannot vouch for itself), and the request
 * tails are bounded and framed.
 *
 * Locking: single-threaded; writes run in one transaction each like the
 * dispatcher does.  Crash behaviour: none (temp files removed).
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
#include "ts_proto.h"
#include "trk_quota.h"
#include "trk_store.h"
#include "trk_files.h"
#include "trk_srcpick.h"

#include "trk_fixture.h"

#define ROWS_MAX  64

typedef struct {
    uint32_t n;
    char     addr[ROWS_MAX][TRK_ADDR_MAX_B];
} rows_t;


static int
setup(void **state)
{
    char err[128];

    /* the attacks below share one file from more nodes than a user's
     * nodes quota allows: that quota is another test's subject */
    assert_int_equal(trk_quota_option("user-nodes=off", err, sizeof(err)),
                     0);
    return fx_setup(state, "/tmp/test_trk_srcpick.XXXXXX");
}


static void
join(fx_t *fx, const char *g, const char *owner, const char *user)
{
    fx_begin(fx);
    assert_int_equal(trk_do_join_group(fx->st, user, g, msg, sizeof(msg)),
                     TS_OK);
    assert_int_equal(trk_do_accept(fx->st, owner, g, user, 1, msg,
                                   sizeof(msg)), TS_OK);
    fx_commit(fx);
}


/* user logs in from n nodes 127.0.0.1:<port0 + i> and registers f on
 * each */
static void
flood(fx_t *fx, const char *user, int port0, int n, uint8_t tag0)
{
    char    addr[32];
    uint8_t h[32];
    int     i;

    for (i = 0; i < n; i++) {
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port0 + i);
        fx_login(fx, user, addr, (uint8_t) (tag0 + i), h);
        assert_int_equal(fx_upload(fx, user, addr, "g", "f", SZ2, 2, 7),
                         TS_OK);
    }
}


/* FILE_INFO of g/f as user from addr, excluding excl[0..nexcl) */
static void
info(fx_t *fx, const char *user, const char *addr,
     const char (*excl)[TRK_ADDR_MAX_B], uint32_t nexcl, rows_t *out)
{
    trk_fctx_t c = fx_ctx(fx, user, addr);
    ts_wbuf_t  b;
    ts_rbuf_t  r;
    uint8_t    fp[TS_FP_B];
    uint32_t   nch, i;

    c.excl = excl;
    c.nexcl = nexcl;
    ts_wbuf_init(&b);
    assert_int_equal(trk_do_file_info(&c, "g", "f", &b, msg, sizeof(msg)),
                     TS_OK);
    ts_rbuf_init(&r, b.data, b.len);
    (void) ts_get_u64(&r);
    ts_get_raw(&r, fp, 20);
    nch = ts_get_u32(&r);
    for (i = 0; i < nch; i++) {
        ts_get_raw(&r, fp, 20);
    }
    out->n = ts_get_u32(&r);
    assert_true(out->n <= ROWS_MAX);
    for (i = 0; i < out->n; i++) {
        assert_int_equal(ts_get_str(&r, out->addr[i], TRK_ADDR_MAX_B), 0);
        (void) ts_get_u8(&r);
        (void) ts_get_u32(&r);
        ts_get_raw(&r, fp, TS_FP_B);
    }
    assert_false(r.err);
    ts_wbuf_free(&b);
}


static int
has(const rows_t *r, const char *addr)
{
    uint32_t i;

    for (i = 0; i < r->n; i++) {
        if (strcmp(r->addr[i], addr) == 0) {
            return (int) i + 1;
        }
    }
    return 0;
}


/* rows from ports [p0, p0 + n) */
static uint32_t
count_ports(const rows_t *r, int p0, int n)
{
    char     a[32];
    uint32_t k = 0;
    int      i;

    for (i = 0; i < n; i++) {
        snprintf(a, sizeof(a), "127.0.0.1:%d", p0 + i);
        k += has(r, a) != 0;
    }
    return k;
}


static void
test_user_cap_and_shuffle(void **state)
{
    fx_t    *fx = *state;
    uint8_t  h[32];
    uint8_t  seen[48] = { 0 };
    rows_t   r;
    char     a[32];
    int      i, k, union_n = 0;

    fx_mkgroup(fx, "g", "seed", NULL, NULL);
    join(fx, "g", "seed", "aaaa");
    join(fx, "g", "seed", "leech");
    fx_login(fx, "seed", "127.0.0.1:9000", 1, h);
    fx_login(fx, "leech", "127.0.0.1:9001", 2, h);
    assert_int_equal(fx_upload(fx, "seed", "127.0.0.1:9000", "g", "f", SZ2,
                               2, 7), TS_OK);
    flood(fx, "aaaa", 20000, 48, 10);

    for (k = 0; k < 10; k++) {
        info(fx, "leech", "127.0.0.1:9001", NULL, 0, &r);
        assert_true(r.n <= TS_TRK_FINFO_SOURCES_N);
        assert_true(count_ports(&r, 20000, 48) <= TS_TRK_FINFO_USER_SRC_N);
        assert_int_equal(count_ports(&r, 20000, 48),
                         TS_TRK_FINFO_USER_SRC_N);
        assert_true(has(&r, "127.0.0.1:9000"));
        for (i = 0; i < 48; i++) {
            snprintf(a, sizeof(a), "127.0.0.1:%d", 20000 + i);
            if (has(&r, a) && !seen[i]) {
                seen[i] = 1;
                union_n++;
            }
        }
    }
    /* a fresh sample each time, not the first four by id */
    assert_true(union_n > TS_TRK_FINFO_USER_SRC_N);
    /* a file with no proven record drops like any other */
    fx_begin(fx);
    assert_int_equal(trk_file_drop(fx->st, "g", "f"), 0);
    fx_commit(fx);
}


static void
test_bound_exclude_proven(void **state)
{
    fx_t         *fx = *state;
    uint8_t       h[32];
    rows_t        r;
    char          user[16];
    char          ex[1][TRK_ADDR_MAX_B] = { "127.0.0.1:9000" };
    trk_served_t  sv;
    trk_fctx_t    c;
    int           u, k;

    fx_mkgroup(fx, "g", "seed", NULL, NULL);
    join(fx, "g", "seed", "leech");
    fx_login(fx, "seed", "127.0.0.1:9000", 1, h);
    fx_login(fx, "leech", "127.0.0.1:9001", 2, h);
    assert_int_equal(fx_upload(fx, "seed", "127.0.0.1:9000", "g", "f", SZ2,
                               2, 7), TS_OK);
    /* 12 users x 4 sessions: more than a list holds */
    for (u = 0; u < 12; u++) {
        snprintf(user, sizeof(user), "b%02d", u);
        join(fx, "g", "seed", user);
        flood(fx, user, 30000 + 10 * u, 4, (uint8_t) (20 + 4 * u));
    }
    info(fx, "leech", "127.0.0.1:9001", NULL, 0, &r);
    assert_int_equal(r.n, TS_TRK_FINFO_SOURCES_N);

    /* the excluded seeder is not listed while others fill the list */
    for (k = 0; k < 5; k++) {
        info(fx, "leech", "127.0.0.1:9001", ex, 1, &r);
        assert_int_equal(r.n, TS_TRK_FINFO_SOURCES_N);
        assert_false(has(&r, "127.0.0.1:9000"));
    }

    /* b00 vouching for itself changes nothing ... */
    memset(&sv, 0, sizeof(sv));
    snprintf(sv.addr, sizeof(sv.addr), "127.0.0.1:30000");
    c = fx_ctx(fx, "b00", "127.0.0.1:30001");
    fx_begin(fx);
    assert_int_equal(trk_proven_note(&c, "g", "f", &sv, 1), 0);
    fx_commit(fx);
    /* ... the leecher's report puts the seeder first in every list */
    snprintf(sv.addr, sizeof(sv.addr), "127.0.0.1:9000");
    c = fx_ctx(fx, "leech", "127.0.0.1:9001");
    fx_begin(fx);
    assert_int_equal(trk_proven_note(&c, "g", "f", &sv, 1), 0);
    fx_commit(fx);
    for (k = 0; k < 5; k++) {
        info(fx, "b05", "127.0.0.1:30050", NULL, 0, &r);
        assert_int_equal(has(&r, "127.0.0.1:9000"), 1);
        assert_int_not_equal(has(&r, "127.0.0.1:30000"), 1);
    }
    /* the record goes with the file */
    fx_begin(fx);
    assert_int_equal(trk_file_drop(fx->st, "g", "f"), 0);
    assert_int_equal(trk_proven_drop(fx->st, "g", "f"), 0);
    fx_commit(fx);
}


static void
test_tails(void **state)
{
    char          ex[4][TRK_ADDR_MAX_B];
    trk_served_t  sv[TS_NODE_SOURCES_N];
    ts_wbuf_t     b;
    ts_rbuf_t     r;
    uint32_t      n;
    int           i;

    (void) state;
    /* none */
    ts_rbuf_init(&r, "", 0);
    assert_int_equal(trk_srcpick_get_addrs(&r, ex, 4, &n), 0);
    assert_int_equal(n, 0);
    /* two */
    ts_wbuf_init(&b);
    ts_put_u32(&b, 2);
    ts_put_str(&b, "127.0.0.1:1");
    ts_put_str(&b, "127.0.0.1:2");
    ts_rbuf_init(&r, b.data, b.len);
    assert_int_equal(trk_srcpick_get_addrs(&r, ex, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ex[1], "127.0.0.1:2");
    /* a byte too many, too many entries, a short body */
    ts_put_u8(&b, 0);
    ts_rbuf_init(&r, b.data, b.len);
    assert_int_equal(trk_srcpick_get_addrs(&r, ex, 4, &n), -1);
    ts_rbuf_init(&r, b.data, b.len - 1);
    assert_int_equal(trk_srcpick_get_addrs(&r, ex, 1, &n), -1);
    ts_rbuf_init(&r, b.data, b.len - 3);
    assert_int_equal(trk_srcpick_get_addrs(&r, ex, 4, &n), -1);
    ts_wbuf_free(&b);

    /* served-by: at most TS_NODE_SOURCES_N, each with a fingerprint */
    ts_wbuf_init(&b);
    ts_put_u32(&b, TS_NODE_SOURCES_N + 1);
    for (i = 0; i < TS_NODE_SOURCES_N + 1; i++) {
        ts_put_str(&b, "127.0.0.1:1");
        ts_put_raw(&b, sv, TS_FP_B);
    }
    ts_rbuf_init(&r, b.data, b.len);
    assert_int_equal(trk_srcpick_get_served(&r, sv, &n), -1);
    ts_wbuf_reset(&b);
    ts_put_u32(&b, 1);
    ts_put_str(&b, "127.0.0.1:1");
    ts_put_raw(&b, "\x01\x02", 2);       /* fingerprint cut short */
    ts_rbuf_init(&r, b.data, b.len);
    assert_int_equal(trk_srcpick_get_served(&r, sv, &n), -1);
    ts_wbuf_free(&b);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_user_cap_and_shuffle, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_bound_exclude_proven, setup,
                                        fx_teardown),
        cmocka_unit_test(test_tails),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
