/*
 * test_proto.c -- unit tests for ts_buf (field codec) and ts_proto (frame
 * header, reply head, names, id and file-name validation), including a
 * seeded random-input test that must stay clean under ASan/UBSan.
 *
 * Locking: single-threaded test process.
 * Crash behaviour: a crash is a test failure; nothing persistent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "ts_proto.h"
#include "ts_log.h"

/* ---- ts_buf ---------------------------------------------------------- */

static void
test_buf_roundtrip_all_fields(void **state)
{
    ts_wbuf_t      w;
    ts_rbuf_t      r;
    uint8_t        raw[5] = { 1, 2, 3, 4, 5 }, rawback[5];
    uint8_t        blob[300];
    const uint8_t *bp;
    uint32_t       bn = 0;
    char           s[64];
    size_t         i;

    for (i = 0; i < sizeof(blob); i++) {
        blob[i] = (uint8_t) (i * 7);
    }
    ts_wbuf_init(&w);
    ts_put_u8(&w, 0xab);
    ts_put_u16(&w, 0xbeef);
    ts_put_u32(&w, 0xdeadbeefu);
    ts_put_u64(&w, 0x0102030405060708ull);
    ts_put_u64(&w, UINT64_MAX);
    ts_put_raw(&w, raw, sizeof(raw));
    ts_put_str(&w, "hello");
    ts_put_str(&w, NULL);
    ts_put_str(&w, "h\xc3\xa9llo w\xc3\xb6rld");
    ts_put_blob(&w, blob, sizeof(blob));
    ts_put_blob(&w, NULL, 0);
    assert_int_equal(w.err, 0);
    /* big endian on the wire */
    assert_int_equal(w.data[0], 0xab);
    assert_int_equal(w.data[1], 0xbe);
    assert_int_equal(w.data[2], 0xef);
    assert_int_equal(w.data[3], 0xde);
    assert_int_equal(w.data[7], 0x01);
    assert_int_equal(w.data[14], 0x08);
    assert_int_equal(w.len, 1 + 2 + 4 + 8 + 8 + 5 + (2 + 5) + 2
                            + (2 + 13) + (4 + 300) + 4);

    ts_rbuf_init(&r, w.data, w.len);
    assert_int_equal(ts_get_u8(&r), 0xab);
    assert_int_equal(ts_get_u16(&r), 0xbeef);
    assert_int_equal(ts_get_u32(&r), 0xdeadbeefu);
    assert_true(ts_get_u64(&r) == 0x0102030405060708ull);
    assert_true(ts_get_u64(&r) == UINT64_MAX);
    assert_int_equal(ts_get_raw(&r, rawback, sizeof(rawback)), 0);
    assert_memory_equal(raw, rawback, sizeof(raw));
    assert_int_equal(ts_get_str(&r, s, sizeof(s)), 0);
    assert_string_equal(s, "hello");
    assert_int_equal(ts_get_str(&r, s, sizeof(s)), 0);
    assert_string_equal(s, "");
    assert_int_equal(ts_get_str(&r, s, sizeof(s)), 0);
    assert_string_equal(s, "h\xc3\xa9llo w\xc3\xb6rld");
    bp = ts_get_blob(&r, &bn, 1000);
    assert_non_null(bp);
    assert_int_equal(bn, 300);
    assert_memory_equal(bp, blob, 300);
    bp = ts_get_blob(&r, &bn, 1000);
    assert_non_null(bp);
    assert_int_equal(bn, 0);
    assert_int_equal(ts_rbuf_left(&r), 0);
    assert_int_equal(ts_rbuf_end(&r), 0);

    /* reset keeps the memory, clears length and error */
    ts_wbuf_reset(&w);
    assert_int_equal(w.len, 0);
    ts_put_u32(&w, 7);
    assert_int_equal(w.len, 4);
    ts_wbuf_free(&w);
    assert_null(w.data);
}

static void
test_buf_large_growth(void **state)
{
    ts_wbuf_t w;
    ts_rbuf_t r;
    uint32_t  i;

    ts_wbuf_init(&w);
    for (i = 0; i < 100000; i++) {
        ts_put_u32(&w, i);
    }
    assert_int_equal(w.err, 0);
    assert_int_equal(w.len, 400000);
    ts_rbuf_init(&r, w.data, w.len);
    for (i = 0; i < 100000; i++) {
        assert_int_equal(ts_get_u32(&r), i);
    }
    assert_int_equal(ts_rbuf_end(&r), 0);
    ts_wbuf_free(&w);
}

static void
test_buf_reader_overrun(void **state)
{
    uint8_t  *p = malloc(3);        /* heap, exact size: ASan sees overruns */
    ts_rbuf_t r;

    p[0] = 1; p[1] = 2; p[2] = 3;
    ts_rbuf_init(&r, p, 3);
    assert_int_equal(ts_get_u16(&r), 0x0102);
    assert_int_equal(ts_get_u16(&r), 0);        /* only 1 byte left */
    assert_int_not_equal(r.err, 0);
    /* sticky: a later get that would fit still fails */
    assert_int_equal(ts_get_u8(&r), 0);
    assert_int_equal(ts_rbuf_left(&r), 0);
    assert_int_equal(ts_rbuf_end(&r), -1);

    ts_rbuf_init(&r, p, 3);
    assert_true(ts_get_u64(&r) == 0);
    assert_int_not_equal(r.err, 0);

    ts_rbuf_init(&r, p, 3);
    assert_int_equal(ts_get_u32(&r), 0);
    assert_int_not_equal(r.err, 0);

    ts_rbuf_init(&r, p, 3);
    {
        uint8_t d[4];

        assert_int_equal(ts_get_raw(&r, d, 4), -1);
    }

    ts_rbuf_init(&r, NULL, 0);
    assert_int_equal(ts_get_u8(&r), 0);
    assert_int_equal(ts_rbuf_end(&r), -1);
    free(p);
}

static void
test_buf_bad_str(void **state)
{
    ts_wbuf_t w;
    ts_rbuf_t r;
    char      s[8], big[TS_STR_MAX_B + 2];

    /* length says 10, only 3 bytes follow */
    ts_wbuf_init(&w);
    ts_put_u16(&w, 10);
    ts_put_raw(&w, "abc", 3);
    ts_rbuf_init(&r, w.data, w.len);
    assert_int_equal(ts_get_str(&r, s, sizeof(s)), -1);
    assert_string_equal(s, "");
    assert_int_equal(ts_rbuf_end(&r), -1);

    /* embedded NUL */
    ts_wbuf_reset(&w);
    ts_put_u16(&w, 3);
    ts_put_raw(&w, "a\0b", 3);
    ts_rbuf_init(&r, w.data, w.len);
    assert_int_equal(ts_get_str(&r, s, sizeof(s)), -1);
    assert_int_not_equal(r.err, 0);

    /* does not fit the destination (7 chars + NUL fits 8, 8 does not) */
    ts_wbuf_reset(&w);
    ts_put_str(&w, "1234567");
    ts_put_str(&w, "12345678");
    ts_rbuf_init(&r, w.data, w.len);
    assert_int_equal(ts_get_str(&r, s, sizeof(s)), 0);
    assert_string_equal(s, "1234567");
    assert_int_equal(ts_get_str(&r, s, sizeof(s)), -1);

    /* over TS_STR_MAX_B on the wire: rejected even with a big dst */
    ts_wbuf_reset(&w);
    ts_put_u16(&w, TS_STR_MAX_B + 1);
    {
        char *pad = calloc(1, TS_STR_MAX_B + 1);

        memset(pad, 'x', TS_STR_MAX_B + 1);
        ts_put_raw(&w, pad, TS_STR_MAX_B + 1);
        free(pad);
    }
    ts_rbuf_init(&r, w.data, w.len);
    assert_int_equal(ts_get_str(&r, big, sizeof(big)), -1);

    /* writer refuses a string over the limit and latches err */
    ts_wbuf_reset(&w);
    memset(big, 'y', TS_STR_MAX_B + 1);
    big[TS_STR_MAX_B + 1] = '\0';
    ts_put_str(&w, big);
    assert_int_not_equal(w.err, 0);
    ts_put_u8(&w, 1);
    assert_int_equal(w.len, 0);                 /* later puts ignored */
    /* exactly the limit is fine */
    ts_wbuf_reset(&w);
    big[TS_STR_MAX_B] = '\0';
    ts_put_str(&w, big);
    assert_int_equal(w.err, 0);
    ts_wbuf_free(&w);
}

static void
test_buf_blob_limits(void **state)
{
    ts_wbuf_t      w;
    ts_rbuf_t      r;
    uint8_t        d[100];
    uint32_t       n = 99;
    const uint8_t *bp;

    memset(d, 0x5a, sizeof(d));
    ts_wbuf_init(&w);
    ts_put_blob(&w, d, sizeof(d));
    /* over the caller's max */
    ts_rbuf_init(&r, w.data, w.len);
    assert_null(ts_get_blob(&r, &n, 99));
    assert_int_equal(n, 0);
    assert_int_not_equal(r.err, 0);
    /* exactly max */
    ts_rbuf_init(&r, w.data, w.len);
    bp = ts_get_blob(&r, &n, 100);
    assert_non_null(bp);
    assert_int_equal(n, 100);
    /* truncated: length says 100, 50 present */
    ts_rbuf_init(&r, w.data, 4 + 50);
    assert_null(ts_get_blob(&r, &n, 1000));
    /* length 0xffffffff with a huge max: no overflow, just a failure */
    ts_wbuf_reset(&w);
    ts_put_u32(&w, UINT32_MAX);
    ts_put_raw(&w, d, 10);
    ts_rbuf_init(&r, w.data, w.len);
    assert_null(ts_get_blob(&r, &n, UINT32_MAX));
    ts_wbuf_free(&w);
}

static void
test_buf_end_trailing(void **state)
{
    uint8_t   p[6] = { 0, 1, 0, 2, 9, 9 };
    ts_rbuf_t r;

    ts_rbuf_init(&r, p, sizeof(p));
    assert_int_equal(ts_get_u16(&r), 1);
    assert_int_equal(ts_get_u16(&r), 2);
    assert_int_equal(r.err, 0);
    assert_int_equal(ts_rbuf_left(&r), 2);
    assert_int_equal(ts_rbuf_end(&r), -1);      /* trailing bytes */
    assert_int_equal(ts_get_u16(&r), 0x0909);
    assert_int_equal(ts_rbuf_end(&r), 0);
}

/* ---- frame header ---------------------------------------------------- */

static void
test_frame_hdr_roundtrip(void **state)
{
    ts_frame_hdr_t h = { TS_MSG_LOGIN, TS_FF_REPLY, 12345,
                         0x1122334455667788ull }, g;
    uint8_t        b[TS_FRAME_HDR_B];

    ts_frame_hdr_encode(b, &h);
    assert_int_equal(b[0], TS_FRAME_MAGIC);
    assert_int_equal(b[1], TS_PROTO_VERSION);
    assert_int_equal(b[2], TS_MSG_LOGIN);
    assert_int_equal(b[3], TS_FF_REPLY);
    assert_int_equal(b[4], 0);
    assert_int_equal(b[6], 0x30);
    assert_int_equal(b[7], 0x39);
    assert_int_equal(b[8], 0x11);
    assert_int_equal(b[15], 0x88);
    memset(&g, 0, sizeof(g));
    assert_int_equal(ts_frame_hdr_decode(b, &g, TS_FRAME_MAX_B), 0);
    assert_int_equal(g.type, h.type);
    assert_int_equal(g.flags, h.flags);
    assert_int_equal(g.len, h.len);
    assert_true(g.reqid == h.reqid);

    /* the extremes of the valid range */
    h.type = TS_MSG_MAX_ - 1;
    h.len = TS_FRAME_MAX_B;
    ts_frame_hdr_encode(b, &h);
    assert_int_equal(ts_frame_hdr_decode(b, &g, TS_FRAME_MAX_B), 0);
    assert_int_equal(g.len, TS_FRAME_MAX_B);
    h.type = TS_MSG_REPLY;
    h.len = 0;
    ts_frame_hdr_encode(b, &h);
    assert_int_equal(ts_frame_hdr_decode(b, &g, 0), 0);

    /* ts_frame_hdr_make writes the same bytes from the fields */
    {
        uint8_t m[TS_FRAME_HDR_B];

        h.type = TS_MSG_LOGIN;
        h.len = 777;
        ts_frame_hdr_encode(b, &h);
        ts_frame_hdr_make(m, h.type, h.flags, h.reqid, h.len);
        assert_memory_equal(m, b, TS_FRAME_HDR_B);
    }
}

static void
test_frame_hdr_rejects(void **state)
{
    ts_frame_hdr_t h = { TS_MSG_STATUS, 0, 100, 1 }, g;
    uint8_t        good[TS_FRAME_HDR_B], b[TS_FRAME_HDR_B];

    ts_frame_hdr_encode(good, &h);

    memcpy(b, good, sizeof(b));
    b[0] = 'X';
    assert_int_equal(ts_frame_hdr_decode(b, &g, TS_FRAME_MAX_B), -1);

    memcpy(b, good, sizeof(b));
    b[1] = TS_PROTO_VERSION + 1;
    assert_int_equal(ts_frame_hdr_decode(b, &g, TS_FRAME_MAX_B), -1);
    b[1] = 0;
    assert_int_equal(ts_frame_hdr_decode(b, &g, TS_FRAME_MAX_B), -1);

    memcpy(b, good, sizeof(b));
    b[2] = 0;
    assert_int_equal(ts_frame_hdr_decode(b, &g, TS_FRAME_MAX_B), -1);
    b[2] = TS_MSG_MAX_;
    assert_int_equal(ts_frame_hdr_decode(b, &g, TS_FRAME_MAX_B), -1);
    b[2] = 0xff;
    assert_int_equal(ts_frame_hdr_decode(b, &g, TS_FRAME_MAX_B), -1);

    /* length: 100 passes a limit of 100, fails 99 */
    assert_int_equal(ts_frame_hdr_decode(good, &g, 100), 0);
    assert_int_equal(ts_frame_hdr_decode(good, &g, 99), -1);
    memcpy(b, good, sizeof(b));
    b[4] = b[5] = b[6] = b[7] = 0xff;
    assert_int_equal(ts_frame_hdr_decode(b, &g, TS_FRAME_MAX_B), -1);
}

static void
test_frame_build(void **state)
{
    ts_wbuf_t      w;
    ts_frame_hdr_t g;

    ts_wbuf_init(&w);
    ts_put_u32(&w, 0xdead);            /* build resets first */
    ts_frame_build(&w, TS_MSG_HEARTBEAT, 0, 42, "abcdef", 6);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.len, TS_FRAME_HDR_B + 6);
    assert_int_equal(ts_frame_hdr_decode(w.data, &g, 6), 0);
    assert_int_equal(g.type, TS_MSG_HEARTBEAT);
    assert_int_equal(g.len, 6);
    assert_true(g.reqid == 42);
    assert_memory_equal(w.data + TS_FRAME_HDR_B, "abcdef", 6);

    ts_frame_build(&w, TS_MSG_LOGOUT, 0, 7, NULL, 0);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.len, TS_FRAME_HDR_B);
    ts_wbuf_free(&w);
}

/* ---- reply head ------------------------------------------------------ */

static void
test_reply_roundtrip(void **state)
{
    ts_wbuf_t   w;
    ts_rbuf_t   r;
    ts_status_t st = TS_ERR_INTERNAL;
    char        msg[64], tiny[4];
    uint8_t     tok[TS_TOKEN_B], back[TS_TOKEN_B];

    memset(tok, 0x33, sizeof(tok));
    ts_wbuf_init(&w);
    ts_reply_begin(&w, TS_OK, "ignored when OK");
    ts_put_raw(&w, tok, sizeof(tok));
    ts_rbuf_init(&r, w.data, w.len);
    assert_int_equal(ts_reply_parse(&r, &st, msg, sizeof(msg)), 0);
    assert_int_equal(st, TS_OK);
    assert_string_equal(msg, "");
    assert_int_equal(ts_get_raw(&r, back, sizeof(back)), 0);
    assert_memory_equal(tok, back, sizeof(tok));
    assert_int_equal(ts_rbuf_end(&r), 0);

    ts_wbuf_reset(&w);
    ts_reply_begin(&w, TS_ERR_EXISTS, "user exists");
    ts_rbuf_init(&r, w.data, w.len);
    assert_int_equal(ts_reply_parse(&r, &st, msg, sizeof(msg)), 0);
    assert_int_equal(st, TS_ERR_EXISTS);
    assert_string_equal(msg, "user exists");
    assert_int_equal(ts_rbuf_end(&r), 0);

    /* a small message buffer truncates rather than failing */
    ts_rbuf_init(&r, w.data, w.len);
    assert_int_equal(ts_reply_parse(&r, &st, tiny, sizeof(tiny)), 0);
    assert_string_equal(tiny, "use");

    /* truncated reply */
    ts_rbuf_init(&r, w.data, 3);
    assert_int_equal(ts_reply_parse(&r, &st, msg, sizeof(msg)), -1);
    ts_rbuf_init(&r, w.data, 1);
    assert_int_equal(ts_reply_parse(&r, &st, msg, sizeof(msg)), -1);

    /* unknown status */
    ts_wbuf_reset(&w);
    ts_put_u16(&w, 999);
    ts_put_str(&w, "");
    ts_rbuf_init(&r, w.data, w.len);
    assert_int_equal(ts_reply_parse(&r, &st, msg, sizeof(msg)), -1);
    ts_wbuf_free(&w);
}

static void
test_names(void **state)
{
    assert_string_equal(ts_msg_name(TS_MSG_LOGIN), "LOGIN");
    assert_string_equal(ts_msg_name(TS_MSG_REPLY), "REPLY");
    assert_string_equal(ts_msg_name(TS_MSG_PEER_DATA), "PEER_DATA");
    assert_string_equal(ts_msg_name(0), "?");
    assert_string_equal(ts_msg_name(TS_MSG_MAX_), "?");
    assert_string_equal(ts_msg_name(12345), "?");
    assert_string_equal(ts_status_name(TS_OK), "OK");
    assert_string_equal(ts_status_name(TS_ERR_AUTH), "AUTH");
    assert_string_equal(ts_status_name(TS_ERR_INTERNAL), "INTERNAL");
    assert_string_equal(ts_status_name((ts_status_t) 77), "?");
}

/* ---- validation tables ----------------------------------------------- */

static void
test_valid_id(void **state)
{
    char s64[TS_ID_MAX_B + 1], s65[TS_ID_MAX_B + 2];
    static const struct { const char *s; int ok; } tab[] = {
        { "alice", 1 }, { "A-b_c.9", 1 }, { "x", 1 }, { "...", 1 },
        { "", 0 }, { "a b", 0 }, { "a/b", 0 }, { "a\tb", 0 },
        { "a\nb", 0 }, { "\xc3\xa9", 0 }, { "a:b", 0 }, { "a@b", 0 },
        { "a\x7f", 0 },
    };
    size_t i;

    for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        if (ts_valid_id(tab[i].s) != tab[i].ok) {
            fail_msg("ts_valid_id(\"%s\") != %d", tab[i].s, tab[i].ok);
        }
    }
    assert_int_equal(ts_valid_id(NULL), 0);
    memset(s64, 'a', TS_ID_MAX_B);
    s64[TS_ID_MAX_B] = '\0';
    assert_int_equal(ts_valid_id(s64), 1);
    memset(s65, 'a', TS_ID_MAX_B + 1);
    s65[TS_ID_MAX_B + 1] = '\0';
    assert_int_equal(ts_valid_id(s65), 0);
}

static void
test_valid_filename(void **state)
{
    char n255[TS_NAME_MAX_B + 1], n256[TS_NAME_MAX_B + 2];
    static const struct { const char *s; int ok; } tab[] = {
        { "file.txt", 1 }, { "my file (1).tar.gz", 1 }, { ".hidden", 1 },
        { "...", 1 }, { "..a", 1 }, { "r\xc3\xa9sum\xc3\xa9.pdf", 1 },
        { "\xe6\x97\xa5\xe6\x9c\xac", 1 }, { "a\\b", 1 }, { " ", 1 },
        { "", 0 }, { ".", 0 }, { "..", 0 }, { "a/b", 0 }, { "/", 0 },
        { "../x", 0 }, { "a\nb", 0 }, { "a\tb", 0 }, { "\x01", 0 },
        { "a\x7f", 0 }, { "\x1b[31m", 0 },
    };
    size_t i;

    for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        if (ts_valid_filename(tab[i].s) != tab[i].ok) {
            fail_msg("ts_valid_filename(\"%s\") != %d", tab[i].s, tab[i].ok);
        }
    }
    assert_int_equal(ts_valid_filename(NULL), 0);
    memset(n255, 'f', TS_NAME_MAX_B);
    n255[TS_NAME_MAX_B] = '\0';
    assert_int_equal(ts_valid_filename(n255), 1);
    memset(n256, 'f', TS_NAME_MAX_B + 1);
    n256[TS_NAME_MAX_B + 1] = '\0';
    assert_int_equal(ts_valid_filename(n256), 0);
}

/* ---- random input ---------------------------------------------------- */

static uint64_t rng_state;

static uint32_t
rng(void)
{
    /* xorshift64*: reproducible from the printed seed */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t) ((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

static void
test_random_input(void **state)
{
    const char    *env = getenv("TS_TEST_SEED");
    uint64_t       seed = env ? strtoull(env, NULL, 0) : 0x7e55e7a2024ull;
    int            iter, ok_hdr = 0;

    rng_state = seed ? seed : 1;
    print_message("random input seed 0x%llx (TS_TEST_SEED)\n",
                  (unsigned long long) seed);
    for (iter = 0; iter < 10000; iter++) {
        size_t         n = rng() % 96, i;
        uint8_t       *p = malloc(n ? n : 1);  /* exact size for ASan */
        ts_rbuf_t      r;
        ts_frame_hdr_t h;
        ts_status_t    st;
        char           s[32], msg[16];
        uint8_t        raw[8];
        uint32_t       bn;
        int            steps;

        for (i = 0; i < n; i++) {
            p[i] = (uint8_t) rng();
        }
        /* bias some inputs toward plausible headers and short lengths */
        if (n >= TS_FRAME_HDR_B && (iter & 3) == 0) {
            p[0] = TS_FRAME_MAGIC;
            p[1] = TS_PROTO_VERSION;
            p[2] = (uint8_t) (p[2] & 0x7f);
            p[4] = p[5] = 0;
            p[6] = (uint8_t) (p[6] & 0x1f);
        }
        if (n >= 2 && (iter & 1)) {
            p[0] = 0;
            p[1] = (uint8_t) (p[1] & 0x1f);
        }
        if (n >= TS_FRAME_HDR_B) {
            uint8_t *hb = malloc(TS_FRAME_HDR_B);

            memcpy(hb, p, TS_FRAME_HDR_B);
            if (ts_frame_hdr_decode(hb, &h, 4096) == 0) {
                ok_hdr++;
                assert_true(h.type != 0 && h.type < TS_MSG_MAX_);
                assert_true(h.len <= 4096);
            }
            free(hb);
        }
        ts_rbuf_init(&r, p, n);
        for (steps = 0; steps < 12; steps++) {
            switch (rng() % 7) {
            case 0: (void) ts_get_u8(&r); break;
            case 1: (void) ts_get_u16(&r); break;
            case 2: (void) ts_get_u32(&r); break;
            case 3: (void) ts_get_u64(&r); break;
            case 4:
                if (ts_get_str(&r, s, sizeof(s)) == 0) {
                    assert_true(strlen(s) < sizeof(s));
                }
                break;
            case 5: {
                const uint8_t *bp = ts_get_blob(&r, &bn, 64);

                if (bp != NULL) {
                    assert_true(bn <= 64);
                    assert_true(bp >= p && bp + bn <= p + n);
                    if (bn > 0) {
                        volatile uint8_t sink = bp[bn - 1];

                        (void) sink;
                    }
                }
                break;
            }
            default:
                (void) ts_get_raw(&r, raw, rng() % sizeof(raw));
                break;
            }
            assert_true(r.off <= r.len);
            assert_true(ts_rbuf_left(&r) <= n);
        }
        ts_rbuf_init(&r, p, n);
        if (ts_reply_parse(&r, &st, msg, sizeof(msg)) == 0) {
            assert_true(st <= TS_ERR_INTERNAL);
            assert_true(strlen(msg) < sizeof(msg));
        }
        free(p);
    }
    /* the bias must have produced some valid headers, or the test is
     * not exercising the accept path */
    assert_true(ok_hdr > 0);
}


/* ---- ts_log (shares this binary: it is the other core text codec) ---- */

/* runs fn with stderr sent to a pipe, returns what was written */
static size_t
capture_stderr(void (*fn)(void), char *out, size_t outsz)
{
    int     pfd[2], saved;
    ssize_t r;
    size_t  got = 0;

    assert_int_equal(pipe(pfd), 0);
    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(pfd[1], STDERR_FILENO) >= 0);
    close(pfd[1]);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    while (got < outsz - 1
           && (r = read(pfd[0], out + got, outsz - 1 - got)) > 0)
    {
        got += (size_t) r;
    }
    out[got] = '\0';
    close(pfd[0]);
    return got;
}

static void
log_some(void)
{
    ts_log_set_role("tracker");
    ts_log_set_level(TS_LOG_INFO);
    ts_info("hello %d", 42);
    ts_debug("hidden at info");
    ts_warn("trailing newline is not doubled\n");
    ts_log_set_level(TS_LOG_DEBUG);
    ts_debug("shown at debug");
    ts_log_raw("raw line\n");
}

static void
log_long(void)
{
    char big[3000];

    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ts_err("%s", big);
}

static void
log_hostile(void)
{
    /* text from the network: a fake second record, a terminal escape */
    ts_warn("peer said: %s", "no\n2026-01-01T00:00:00.000Z tracker[1] "
            "error: fake\x1b[2J\x7f\tend");
}

static void
log_names(void)
{
    /* names a hostile member chose: C1 in UTF-8, a raw 0x9B, a
     * bidirectional override; valid UTF-8 stays */
    ts_warn("upload of '%s' and '%s' and '%s'", "a\xc2\x9b" "2J",
            "b\x9b" "2J", "evil\xe2\x80\xaetxt.exe \xc3\xa9");
}

static void
log_env_error_level(void)
{
    ts_warn("warn must be hidden");
    ts_err("err shown");
}

static void
check_prefix(const char *line, const char *role, const char *level)
{
    int  y, mo, d, h, mi, sec, ms, n = 0;
    long pid;
    char r[32], l[16];

    assert_int_equal(sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %31[^[][%ld] "
                            "%15[a-z]: %n", &y, &mo, &d, &h, &mi, &sec, &ms,
                            r, &pid, l, &n), 10);
    assert_true(n > 0);
    assert_true(y >= 2020 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31);
    assert_true(line[4] == '-' && line[10] == 'T' && line[23] == 'Z');
    assert_string_equal(r, role);
    assert_string_equal(l, level);
    assert_int_equal(pid, (long) getpid());
}

static void
test_log_format(void **state)
{
    static char out[8192];
    char       *l1, *l2, *l3, *l4;
    pid_t       pid;
    int         st;

    /* the env var, in a child whose level was never set */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("TS_LOG_LEVEL", "error", 1);
        capture_stderr(log_env_error_level, out, sizeof(out));
        _exit(strstr(out, "warn must") == NULL && strstr(out, "err shown")
              && strstr(out, "tessera[") ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    capture_stderr(log_some, out, sizeof(out));
    l1 = out;
    l2 = strchr(l1, '\n');
    assert_non_null(l2);
    *l2++ = '\0';
    l3 = strchr(l2, '\n');
    assert_non_null(l3);
    *l3++ = '\0';
    l4 = strchr(l3, '\n');
    assert_non_null(l4);
    *l4++ = '\0';
    check_prefix(l1, "tracker", "info");
    assert_non_null(strstr(l1, " info: hello 42"));
    check_prefix(l2, "tracker", "warn");
    assert_non_null(strstr(l2, "trailing newline is not doubled"));
    check_prefix(l3, "tracker", "debug");
    assert_non_null(strstr(l3, "shown at debug"));
    assert_string_equal(l4, "raw line\n");
    assert_null(strstr(l2, "hidden"));

    /* an overlong record is cut to TS_LOG_LINE_B and still one line */
    assert_int_equal(capture_stderr(log_long, out, sizeof(out)),
                     TS_LOG_LINE_B - 1);
    assert_int_equal(out[TS_LOG_LINE_B - 2], '\n');
    assert_null(memchr(out, '\n', TS_LOG_LINE_B - 2));

    /* control characters in a message never make a second line or reach
     * a terminal raw */
    capture_stderr(log_hostile, out, sizeof(out));
    assert_non_null(strstr(out, "peer said: no\\x0a2026-01-01T00:00:00.000Z"
                           " tracker[1] error: fake\\x1b[2J\\x7f\\x09end\n"));
    assert_int_equal(strchr(out, '\n') - out, (long) strlen(out) - 1);
    assert_null(strchr(out, '\x1b'));

    /* nor a C1 control, a bidirectional control or invalid UTF-8 */
    capture_stderr(log_names, out, sizeof(out));
    assert_non_null(strstr(out, "upload of 'a\\u{009b}2J' and 'b\\x9b2J' "
                           "and 'evil\\u{202e}txt.exe \xc3\xa9'\n"));
    assert_null(strstr(out, "\xc2\x9b"));
    assert_null(memchr(out, 0x9b, strlen(out)));
    assert_null(strstr(out, "\xe2\x80\xae"));
    ts_log_set_level(TS_LOG_INFO);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_roundtrip_all_fields),
        cmocka_unit_test(test_buf_large_growth),
        cmocka_unit_test(test_buf_reader_overrun),
        cmocka_unit_test(test_buf_bad_str),
        cmocka_unit_test(test_buf_blob_limits),
        cmocka_unit_test(test_buf_end_trailing),
        cmocka_unit_test(test_frame_hdr_roundtrip),
        cmocka_unit_test(test_frame_hdr_rejects),
        cmocka_unit_test(test_frame_build),
        cmocka_unit_test(test_reply_roundtrip),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_valid_id),
        cmocka_unit_test(test_valid_filename),
        cmocka_unit_test(test_random_input),
        cmocka_unit_test(test_log_format),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
