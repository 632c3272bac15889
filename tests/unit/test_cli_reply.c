/*
 * test_cli_reply.c -- client/cli_reply.h: the decoders of the tracker's
 * reply bodies the client's commands read (login, leave group, the
 * request, group, file and share lists).  Each decoder gets the field
 * sequence the tracker writes, then truncations, a byte too many, bad
 * counts, invalid ids and names.
 *
 * Locking: none (single-threaded, pure functions).  Crash behaviour:
 * in-memory only; nothing to clean up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ts_buf.h"
#include "ts_proto.h"
#include "cli_reply.h"
#include "codec_fixture.h"




/* ---- client reply bodies ---------------------------------------------- */

static ts_rbuf_t
body(void)
{
    ts_rbuf_t r;

    ts_rbuf_init(&r, w.data, w.len);
    return r;
}

/* A fresh body in w, from fmt: u = u32, U = u64, h = u16, b = u8,
 * s = string; the read cursor over it. */
static ts_rbuf_t
bodyf(const char *fmt, ...)
{
    va_list ap;

    ts_wbuf_reset(&w);
    va_start(ap, fmt);
    for (; *fmt != '\0'; fmt++) {
        switch (*fmt) {
        case 'u':
            ts_put_u32(&w, va_arg(ap, uint32_t));
            break;
        case 'U':
            ts_put_u64(&w, va_arg(ap, uint64_t));
            break;
        case 'h':
            ts_put_u16(&w, (uint16_t) va_arg(ap, unsigned));
            break;
        case 'b':
            ts_put_u8(&w, (uint8_t) va_arg(ap, unsigned));
            break;
        default:
            ts_put_str(&w, va_arg(ap, const char *));
            break;
        }
    }
    va_end(ap);
    return body();
}

static void
test_cli_empty_and_login(void **state)
{
    ts_rbuf_t r;
    uint8_t   tok[TS_TOKEN_B], want[TS_TOKEN_B];
    uint32_t  hb;

    (void) state;
    r = body();
    assert_int_equal(cli_reply_empty(&r), 0);
    ts_put_u8(&w, 0);
    r = body();
    assert_int_equal(cli_reply_empty(&r), -1);
    assert_int_equal(errno, EBADMSG);

    memset(want, 0xab, sizeof(want));
    ts_wbuf_reset(&w);
    ts_put_raw(&w, want, TS_TOKEN_B);
    r = body();
    assert_int_equal(cli_reply_login(&r, tok, &hb), 0);     /* no period */
    assert_memory_equal(tok, want, TS_TOKEN_B);
    assert_int_equal(hb, 0);
    ts_put_u32(&w, 5000);
    r = body();
    assert_int_equal(cli_reply_login(&r, tok, &hb), 0);
    assert_int_equal(hb, 5000);
    ts_put_u8(&w, 0);                                       /* one too many */
    r = body();
    assert_int_equal(cli_reply_login(&r, tok, &hb), -1);
    assert_int_equal(hb, 0);
    /* a token cut short, a period cut short */
    ts_rbuf_init(&r, w.data, TS_TOKEN_B - 1);
    assert_int_equal(cli_reply_login(&r, tok, &hb), -1);
    ts_rbuf_init(&r, w.data, TS_TOKEN_B + 2);
    assert_int_equal(cli_reply_login(&r, tok, &hb), -1);
}

static void
test_cli_leave_group(void **state)
{
    static const char *const good[] = { "", "-", "carol", "a.b_c-9", NULL };
    static const char *const bad[] = { "x\x01", "a b", "x/y", "\xc3\xa9",
                                       NULL };
    ts_rbuf_t r;
    char      owner[TS_ID_MAX_B + 1];
    int       i;

    (void) state;
    for (i = 0; good[i] != NULL; i++) {
        ts_wbuf_reset(&w);
        ts_put_str(&w, good[i]);
        r = body();
        assert_int_equal(cli_reply_leave_group(&r, owner), 0);
        assert_string_equal(owner, good[i]);
    }
    for (i = 0; bad[i] != NULL; i++) {
        ts_wbuf_reset(&w);
        ts_put_str(&w, bad[i]);
        r = body();
        assert_int_equal(cli_reply_leave_group(&r, owner), -1);
        assert_string_equal(owner, "");
    }
    ts_wbuf_reset(&w);
    ts_put_str(&w, long_str('o') + 300 - 65);
    r = body();
    assert_int_equal(cli_reply_leave_group(&r, owner), -1);
    assert_string_equal(owner, "");
    r = bodyf("sb", "carol", 0);
    assert_int_equal(cli_reply_leave_group(&r, owner), -1);
    ts_wbuf_reset(&w);
    r = body();
    assert_int_equal(cli_reply_leave_group(&r, owner), -1);
}

static void
test_cli_list_requests(void **state)
{
    ts_rbuf_t          r;
    cli_reply_user_t  *u;
    uint32_t           n;

    (void) state;
    r = bodyf("uss", 2, "bob", "carol");
    assert_int_equal(cli_reply_list_requests(&r, &u, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(u[0].user, "bob");
    assert_string_equal(u[1].user, "carol");
    free(u);
    /* empty list: no array */
    ts_wbuf_reset(&w);
    ts_put_u32(&w, 0);
    r = body();
    assert_int_equal(cli_reply_list_requests(&r, &u, &n), 0);
    assert_int_equal(n, 0);
    assert_null(u);
    /* a count the bytes cannot hold: refused before any allocation */
    r = bodyf("us", UINT32_MAX, "bob");
    assert_int_equal(cli_reply_list_requests(&r, &u, &n), -1);
    assert_int_equal(errno, EBADMSG);
    assert_null(u);
    assert_int_equal(n, 0);
    /* fewer rows than counted, an invalid id, a trailing byte */
    r = bodyf("ussb", 2, "bob", "c", 0);
    assert_int_equal(cli_reply_list_requests(&r, &u, &n), -1);
    r = bodyf("us", 1, "bob smith");
    assert_int_equal(cli_reply_list_requests(&r, &u, &n), -1);
    r = bodyf("uss", 1, "", "bob");
    assert_int_equal(cli_reply_list_requests(&r, &u, &n), -1);
    r = bodyf("us", 2, "bob");
    assert_int_equal(cli_reply_list_requests(&r, &u, &n), -1);
    assert_null(u);
}

static void
test_cli_list_groups(void **state)
{
    ts_rbuf_t           r;
    cli_reply_group_t  *g;
    uint32_t            n;
    size_t              full, i;

    (void) state;
    ts_put_u32(&w, 2);
    ts_put_str(&w, "g1");
    ts_put_str(&w, "alice");
    ts_put_u32(&w, 2);
    ts_put_str(&w, "g0");
    ts_put_str(&w, "bob");
    ts_put_u32(&w, 4096);
    full = w.len;
    r = body();
    assert_int_equal(cli_reply_list_groups(&r, &g, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(g[0].group, "g1");
    assert_string_equal(g[0].owner, "alice");
    assert_int_equal(g[0].members, 2);
    assert_string_equal(g[1].group, "g0");
    assert_int_equal(g[1].members, 4096);
    free(g);
    for (i = 0; i < full; i++) {
        ts_rbuf_init(&r, w.data, i);
        assert_int_equal(cli_reply_list_groups(&r, &g, &n), -1);
        assert_null(g);
    }
    ts_put_u8(&w, 0);
    r = body();
    assert_int_equal(cli_reply_list_groups(&r, &g, &n), -1);
    /* an owner that is no id */
    r = bodyf("ussu", 1, "g1", "", 1);
    assert_int_equal(cli_reply_list_groups(&r, &g, &n), -1);
    r = bodyf("ussu", 1, "g\x1b[2J", "alice", 1);
    assert_int_equal(cli_reply_list_groups(&r, &g, &n), -1);
}

static void
test_cli_list_files(void **state)
{
    ts_rbuf_t          r;
    cli_reply_file_t  *f;
    uint32_t           n, dropped;

    (void) state;
    r = bodyf("usUusUusUusUu", 4, "f1.bin", (uint64_t) (1ull << 40), 2,
              "../evil", (uint64_t) 1, 1, "", (uint64_t) 1, 1, "a b.txt",
              (uint64_t) 0, 0);
    assert_int_equal(cli_reply_list_files(&r, &f, &n, &dropped), 0);
    assert_int_equal(n, 2);
    assert_int_equal(dropped, 2);
    assert_string_equal(f[0].name, "f1.bin");
    assert_int_equal(f[0].size, 1ull << 40);
    assert_int_equal(f[0].sources, 2);
    assert_string_equal(f[1].name, "a b.txt");
    free(f);
    /* every row invalid: no array */
    r = bodyf("usUu", 1, "..", (uint64_t) 1, 1);
    assert_int_equal(cli_reply_list_files(&r, &f, &n, &dropped), 0);
    assert_int_equal(n, 0);
    assert_int_equal(dropped, 1);
    assert_null(f);
    /* a name over TS_NAME_MAX_B, a row cut short, a trailing byte */
    r = bodyf("usUu", 1, long_str('n') + 300 - 256, (uint64_t) 1, 1);
    assert_int_equal(cli_reply_list_files(&r, &f, &n, &dropped), -1);
    r = bodyf("usUh", 1, "f", (uint64_t) 1, 1);
    assert_int_equal(cli_reply_list_files(&r, &f, &n, &dropped), -1);
    r = bodyf("usUub", 1, "f", (uint64_t) 1, 1, 1);
    assert_int_equal(cli_reply_list_files(&r, &f, &n, &dropped), -1);
    assert_null(f);
    /* the count bound: 14 bytes a row at least */
    r = bodyf("usUub", 2, "f", (uint64_t) 1, 1, 0);
    assert_int_equal(cli_reply_list_files(&r, &f, &n, &dropped), -1);
    assert_int_equal(errno, EBADMSG);
}

static void
test_cli_my_shares(void **state)
{
    ts_rbuf_t           r;
    cli_reply_share_t  *s;
    uint32_t            n;

    (void) state;
    r = bodyf("ussbssb", 2, "g1", "f1.bin", 1, "g2", "part.bin", 0);
    assert_int_equal(cli_reply_my_shares(&r, &s, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(s[0].group, "g1");
    assert_string_equal(s[0].name, "f1.bin");
    assert_int_equal(s[0].complete, 1);
    assert_string_equal(s[1].name, "part.bin");
    assert_int_equal(s[1].complete, 0);
    free(s);
    /* complete must be 0 or 1; names and ids valid */
    r = bodyf("ussb", 1, "g1", "f1.bin", 2);
    assert_int_equal(cli_reply_my_shares(&r, &s, &n), -1);
    r = bodyf("ussb", 1, "g1", "a/b", 1);
    assert_int_equal(cli_reply_my_shares(&r, &s, &n), -1);
    r = bodyf("ussb", 1, "g 1", "f", 1);
    assert_int_equal(cli_reply_my_shares(&r, &s, &n), -1);
    assert_null(s);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cli_empty_and_login, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_leave_group, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_list_requests, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_list_groups, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_list_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_my_shares, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
