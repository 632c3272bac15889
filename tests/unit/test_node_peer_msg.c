/*
 * test_node_peer_msg.c -- the peer wire codec the workers share with
 * the fuzz targets: workers/peer_msg.h (PEER_MAP / PEER_GET /
 * PEER_AUTH requests, the MAP answer, the PEER_DATA head, status-only
 * answers, the pushed PEER_HAVE, frame header limits).  Each decoder gets what its encoder
 * writes, then truncations, a byte too many, bad lengths, invalid ids
 * and names, bad statuses.  The tracker's reply bodies the client reads
 * (client/cli_reply.h) are tested in test_cli_reply.c.
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
#include "peer_msg.h"
#include "codec_fixture.h"




/* ---- requests --------------------------------------------------------- */

static void
test_req_roundtrip(void **state)
{
    peer_msg_req_t m;

    (void) state;
    peer_msg_req_encode(&w, TS_MSG_PEER_MAP, "grp", "file.bin", 99);
    assert_false(w.err);
    assert_int_equal(w.len, 2 + 3 + 2 + 8);          /* no index */
    assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_MAP, w.data, w.len,
                                         &m), 0);
    assert_string_equal(m.group, "grp");
    assert_string_equal(m.name, "file.bin");
    assert_int_equal(m.index, 0);
    /* a MAP payload is not a GET (index missing) */
    assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_GET, w.data, w.len,
                                         &m), -1);

    ts_wbuf_reset(&w);
    peer_msg_req_encode(&w, TS_MSG_PEER_GET, "a.b_c-9", "x y \xc3\xa9.txt",
                        0x01020304);
    assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_GET, w.data, w.len,
                                         &m), 0);
    assert_string_equal(m.group, "a.b_c-9");
    assert_string_equal(m.name, "x y \xc3\xa9.txt");
    assert_int_equal(m.index, 0x01020304);
    /* a GET payload is not a MAP (4 bytes left over) */
    assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_MAP, w.data, w.len,
                                         &m), -1);
    /* other types */
    assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_AUTH, w.data, w.len,
                                         &m), -1);
    assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_DATA, w.data, w.len,
                                         &m), -1);
}

/* A ranged GET: the trailing offset and length round-trip; one byte
 * short or over is malformed; a plain GET reads as not ranged. */
static void
test_req_range(void **state)
{
    peer_msg_req_t m;
    size_t         full, i;

    (void) state;
    peer_msg_range_encode(&w, "grp", "f", 7, 2 * TS_BLOCK_B, TS_BLOCK_B);
    assert_false(w.err);
    full = w.len;
    assert_int_equal(full, 2 + 3 + 2 + 1 + 4 + 8);
    assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_GET, w.data, w.len,
                                         &m), 0);
    assert_int_equal(m.index, 7);
    assert_int_equal(m.ranged, 1);
    assert_int_equal(m.off, 2 * TS_BLOCK_B);
    assert_int_equal(m.len, TS_BLOCK_B);
    /* not a MAP; every truncation inside the tail is malformed, except
     * the one that leaves a plain GET */
    assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_MAP, w.data, w.len,
                                         &m), -1);
    for (i = full - 8 + 1; i < full; i++) {
        assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_GET, w.data, i,
                                             &m), -1);
        assert_int_equal(m.ranged, 0);
    }
    assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_GET, w.data, full - 8,
                                         &m), 0);
    assert_int_equal(m.ranged, 0);
    assert_int_equal(m.off, 0);
    ts_put_u8(&w, 0);
    assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_GET, w.data, w.len,
                                         &m), -1);
}

/* The range rule: whole blocks within the chunk, the tail excepted;
 * hostile offsets and lengths (overflow, zero, misaligned) refused. */
static void
test_range_check(void **state)
{
    const uint32_t B = TS_BLOCK_B, C = TS_CHUNK_B;

    (void) state;
    assert_int_equal(peer_msg_range_check(0, C, C), 0);
    assert_int_equal(peer_msg_range_check(0, B, C), 0);
    assert_int_equal(peer_msg_range_check(C - B, B, C), 0);
    assert_int_equal(peer_msg_range_check(B, 2 * B, C), 0);
    /* a short last chunk: its tail block may be short */
    assert_int_equal(peer_msg_range_check(B, 1000, B + 1000), 0);
    assert_int_equal(peer_msg_range_check(0, 1000, 1000), 0);
    assert_int_equal(peer_msg_range_check(0, B + 1000, B + 1000), 0);
    /* ... but only at the chunk's end */
    assert_int_equal(peer_msg_range_check(0, 1000, B + 1000), -1);
    assert_int_equal(peer_msg_range_check(0, B + 1, C), -1);
    assert_int_equal(peer_msg_range_check(0, B - 1, C), -1);
    /* zero, misaligned, past the end, overflow */
    assert_int_equal(peer_msg_range_check(0, 0, C), -1);
    assert_int_equal(peer_msg_range_check(1, B, C), -1);
    assert_int_equal(peer_msg_range_check(B / 2, B, C), -1);
    assert_int_equal(peer_msg_range_check(C, B, C), -1);
    assert_int_equal(peer_msg_range_check(C - B, 2 * B, C), -1);
    assert_int_equal(peer_msg_range_check(0, C + B, C), -1);
    assert_int_equal(peer_msg_range_check(B, UINT32_MAX, C), -1);
    assert_int_equal(peer_msg_range_check(UINT32_MAX - B + 1, 2 * B, C), -1);
    assert_int_equal(peer_msg_range_check(UINT32_MAX & ~(B - 1), B, C), -1);
    assert_int_equal(peer_msg_range_check(B, 1000, B + 999), -1);
    /* a chunk length no chunk has */
    assert_int_equal(peer_msg_range_check(0, B, 0), -1);
    assert_int_equal(peer_msg_range_check(0, B, C + B), -1);
}

static void
test_req_bad(void **state)
{
    static const char *const bad_groups[] = {
        "", "a/b", "g g", "gr\xc3\xa9", NULL
    };
    static const char *const bad_names[] = {
        "", ".", "..", "a/b", "x\x01y", "x\x7fy", NULL
    };
    peer_msg_req_t m;
    size_t         i, full;

    (void) state;
    for (i = 0; bad_groups[i] != NULL; i++) {
        ts_wbuf_reset(&w);
        peer_msg_req_encode(&w, TS_MSG_PEER_MAP, bad_groups[i], "f", 0);
        assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_MAP, w.data,
                                             w.len, &m), -1);
        assert_string_equal(m.group, "");
    }
    for (i = 0; bad_names[i] != NULL; i++) {
        ts_wbuf_reset(&w);
        peer_msg_req_encode(&w, TS_MSG_PEER_GET, "g", bad_names[i], 1);
        assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_GET, w.data,
                                             w.len, &m), -1);
    }
    /* too long for the id / name buffers */
    ts_wbuf_reset(&w);
    peer_msg_req_encode(&w, TS_MSG_PEER_MAP, long_str('g') + 300 - 65, "f",
                        0);
    assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_MAP, w.data, w.len,
                                         &m), -1);
    ts_wbuf_reset(&w);
    peer_msg_req_encode(&w, TS_MSG_PEER_MAP, long_str('g') + 300 - 64, "f",
                        0);
    assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_MAP, w.data, w.len,
                                         &m), 0);
    ts_wbuf_reset(&w);
    peer_msg_req_encode(&w, TS_MSG_PEER_MAP, "g", long_str('n') + 300 - 256,
                        0);
    assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_MAP, w.data, w.len,
                                         &m), -1);
    ts_wbuf_reset(&w);
    peer_msg_req_encode(&w, TS_MSG_PEER_MAP, "g", long_str('n') + 300 - 255,
                        0);
    assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_MAP, w.data, w.len,
                                         &m), 0);

    /* every truncation, and one byte too many */
    ts_wbuf_reset(&w);
    peer_msg_req_encode(&w, TS_MSG_PEER_GET, "grp", "file.bin", 7);
    full = w.len;
    for (i = 0; i < full; i++) {
        assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_GET, w.data, i,
                                             &m), -1);
    }
    ts_put_u8(&w, 0);
    assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_GET, w.data, w.len,
                                         &m), -1);
    /* a NUL inside the name */
    ts_wbuf_reset(&w);
    ts_put_str(&w, "g");
    ts_put_u16(&w, 3);
    ts_put_raw(&w, "a\0b", 3);
    assert_int_equal(peer_msg_req_decode(TS_MSG_PEER_MAP, w.data, w.len,
                                         &m), -1);
}

static void
test_req_hdr(void **state)
{
    uint8_t        hb[TS_FRAME_HDR_B];
    ts_frame_hdr_t h, out;

    (void) state;
    h.flags = 0;
    h.reqid = 42;
    h.type = TS_MSG_PEER_MAP;
    h.len = TS_UP_REQ_MAX_B;
    ts_frame_hdr_encode(hb, &h);
    assert_int_equal(peer_msg_req_hdr_decode(hb, &out), 0);
    assert_int_equal(out.reqid, 42);
    h.len = TS_UP_REQ_MAX_B + 1;
    ts_frame_hdr_encode(hb, &h);
    assert_int_equal(peer_msg_req_hdr_decode(hb, &out), -1);
    /* a PEER_AUTH may carry a whole ticket, no more */
    h.type = TS_MSG_PEER_AUTH;
    h.len = PEER_MSG_AUTH_MAX_B;
    ts_frame_hdr_encode(hb, &h);
    assert_int_equal(peer_msg_req_hdr_decode(hb, &out), 0);
    h.len = PEER_MSG_REQ_IN_MAX_B + 1;
    ts_frame_hdr_encode(hb, &h);
    assert_int_equal(peer_msg_req_hdr_decode(hb, &out), -1);
    /* bad magic */
    h.len = 4;
    ts_frame_hdr_encode(hb, &h);
    hb[0] ^= 1;
    assert_int_equal(peer_msg_req_hdr_decode(hb, &out), -1);
}

static void
test_auth(void **state)
{
    uint8_t         tk[TS_TICKET_MAX_B + 1];
    const uint8_t  *p;
    uint32_t        n;

    (void) state;
    memset(tk, 0x5a, sizeof(tk));
    peer_msg_auth_encode(&w, tk, 100);
    assert_int_equal(peer_msg_auth_decode(w.data, w.len, &p, &n), 0);
    assert_int_equal(n, 100);
    assert_ptr_equal(p, w.data + 4);
    /* truncated, trailing byte */
    assert_int_equal(peer_msg_auth_decode(w.data, w.len - 1, &p, &n), -1);
    assert_null(p);
    assert_int_equal(n, 0);
    ts_put_u8(&w, 1);
    assert_int_equal(peer_msg_auth_decode(w.data, w.len, &p, &n), -1);
    /* empty ticket, no payload */
    ts_wbuf_reset(&w);
    peer_msg_auth_encode(&w, NULL, 0);
    assert_int_equal(peer_msg_auth_decode(w.data, w.len, &p, &n), -1);
    assert_int_equal(peer_msg_auth_decode(w.data, 0, &p, &n), -1);
    /* the largest ticket, and one byte more */
    ts_wbuf_reset(&w);
    peer_msg_auth_encode(&w, tk, TS_TICKET_MAX_B);
    assert_int_equal(w.len, PEER_MSG_AUTH_MAX_B);
    assert_int_equal(peer_msg_auth_decode(w.data, w.len, &p, &n), 0);
    ts_wbuf_reset(&w);
    peer_msg_auth_encode(&w, tk, TS_TICKET_MAX_B + 1);
    assert_int_equal(peer_msg_auth_decode(w.data, w.len, &p, &n), -1);
}


/* ---- answers ---------------------------------------------------------- */

static void
test_reply_hdr_check(void **state)
{
    ts_frame_hdr_t h;

    (void) state;
    memset(&h, 0, sizeof(h));
    h.type = TS_MSG_PEER_DATA;
    h.len = PEER_MSG_REPLY_IN_MAX_B;
    assert_int_equal(peer_msg_reply_hdr_check(&h, TS_MSG_PEER_GET), 0);
    assert_int_equal(peer_msg_reply_hdr_check(&h, TS_MSG_PEER_MAP), -1);
    h.type = TS_MSG_REPLY;
    assert_int_equal(peer_msg_reply_hdr_check(&h, TS_MSG_PEER_GET), -1);
    assert_int_equal(peer_msg_reply_hdr_check(&h, TS_MSG_PEER_MAP), -1);
    h.len = PEER_MSG_MAP_MAX_B;
    assert_int_equal(peer_msg_reply_hdr_check(&h, TS_MSG_PEER_MAP), 0);
    assert_int_equal(peer_msg_reply_hdr_check(&h, TS_MSG_PEER_AUTH), 0);
    assert_int_equal(peer_msg_reply_hdr_check(&h, TS_MSG_LOGIN), -1);
}

static void
test_status(void **state)
{
    ts_status_t st;
    char        msg[8];

    (void) state;
    ts_reply_begin(&w, TS_OK, NULL);
    assert_int_equal(peer_msg_status_decode(w.data, w.len, &st, msg,
                                            sizeof(msg)), 0);
    assert_int_equal(st, TS_OK);
    assert_string_equal(msg, "");
    ts_wbuf_reset(&w);
    ts_reply_begin(&w, TS_ERR_AUTH, "expired ticket");
    assert_int_equal(peer_msg_status_decode(w.data, w.len, &st, msg,
                                            sizeof(msg)), 0);
    assert_int_equal(st, TS_ERR_AUTH);
    assert_string_equal(msg, "expired");           /* truncated copy */
    assert_int_equal(peer_msg_status_decode(w.data, w.len, &st, NULL, 0),
                     0);
    /* trailing byte, truncated */
    ts_put_u8(&w, 0);
    assert_int_equal(peer_msg_status_decode(w.data, w.len, &st, msg,
                                            sizeof(msg)), -1);
    assert_int_equal(peer_msg_status_decode(w.data, 3, &st, msg,
                                            sizeof(msg)), -1);
    /* OK with a message, unknown status */
    ts_wbuf_reset(&w);
    ts_put_u16(&w, TS_OK);
    ts_put_str(&w, "hi");
    assert_int_equal(peer_msg_status_decode(w.data, w.len, &st, msg,
                                            sizeof(msg)), -1);
    ts_wbuf_reset(&w);
    ts_put_u16(&w, TS_ERR_INTERNAL + 1);
    ts_put_str(&w, "x");
    assert_int_equal(peer_msg_status_decode(w.data, w.len, &st, msg,
                                            sizeof(msg)), -1);
}

static void
test_map_roundtrip(void **state)
{
    peer_msg_map_t  m;
    uint8_t        *bits;
    uint32_t        n;

    (void) state;
    /* every chunk, for sizes around the byte and word edges */
    for (n = 0; n <= 130; n++) {
        ts_wbuf_reset(&w);
        bits = peer_msg_map_encode(&w, 7, n, 1);
        assert_non_null(bits);
        assert_int_equal(peer_msg_map_decode(w.data, w.len, &m), 0);
        assert_int_equal(m.status, TS_OK);
        assert_int_equal(m.load, 7);
        assert_int_equal(m.nchunks, n);
        assert_int_equal(m.bitmap_len, (n + 7) / 8);
        assert_int_equal(peer_msg_map_word(&m, 0),
                         n >= 64 ? UINT64_MAX : (1ull << n) - 1);
        if (n > 64) {
            assert_int_equal(peer_msg_map_word(&m, 1),
                             n >= 128 ? UINT64_MAX
                                      : (1ull << (n - 64)) - 1);
        }
        assert_int_equal(peer_msg_map_word(&m, 3), 0);
    }
    /* some chunks */
    ts_wbuf_reset(&w);
    bits = peer_msg_map_encode(&w, 1, 70, 0);
    assert_non_null(bits);
    bits[0] = 0x05;
    bits[8] = 0x20;                    /* chunk 69 */
    assert_int_equal(peer_msg_map_decode(w.data, w.len, &m), 0);
    assert_int_equal(peer_msg_map_word(&m, 0), 0x05);
    assert_int_equal(peer_msg_map_word(&m, 1), 0x20);
    /* a bit past the last chunk */
    bits[8] = 0x40;                    /* chunk 70 of 70 */
    assert_int_equal(peer_msg_map_decode(w.data, w.len, &m), -1);
    assert_null(m.bitmap);
}

static void
test_map_bad(void **state)
{
    peer_msg_map_t  m;
    uint8_t         bm[3] = { 1, 2, 1 };
    size_t          i, full;

    (void) state;
    /* refusals: the head alone, a long message truncated */
    ts_reply_begin(&w, TS_ERR_NOTFOUND, long_str('m'));
    assert_int_equal(peer_msg_map_decode(w.data, w.len, &m), 0);
    assert_int_equal(m.status, TS_ERR_NOTFOUND);
    assert_int_equal(strlen(m.msg), PEER_MSG_MSG_B - 1);
    assert_null(m.bitmap);
    ts_put_u32(&w, 1);
    assert_int_equal(peer_msg_map_decode(w.data, w.len, &m), -1);

    /* blob length not (nchunks + 7) / 8: shorter, longer */
    ts_wbuf_reset(&w);
    ts_reply_begin(&w, TS_OK, NULL);
    ts_put_u32(&w, 0);
    ts_put_u32(&w, 17);
    ts_put_blob(&w, bm, 2);
    assert_int_equal(peer_msg_map_decode(w.data, w.len, &m), -1);
    ts_wbuf_reset(&w);
    ts_reply_begin(&w, TS_OK, NULL);
    ts_put_u32(&w, 0);
    ts_put_u32(&w, 16);
    ts_put_blob(&w, bm, 3);
    assert_int_equal(peer_msg_map_decode(w.data, w.len, &m), -1);
    /* nchunks beyond the largest file */
    ts_wbuf_reset(&w);
    ts_reply_begin(&w, TS_OK, NULL);
    ts_put_u32(&w, 0);
    ts_put_u32(&w, UINT32_MAX);
    ts_put_blob(&w, bm, 0);
    assert_int_equal(peer_msg_map_decode(w.data, w.len, &m), -1);
    /* OK with a message */
    ts_wbuf_reset(&w);
    ts_put_u16(&w, TS_OK);          /* ts_reply_begin drops it */
    ts_put_str(&w, "x");
    ts_put_u32(&w, 0);
    ts_put_u32(&w, 17);
    ts_put_blob(&w, bm, 3);
    assert_int_equal(peer_msg_map_decode(w.data, w.len, &m), -1);
    /* good, then every truncation and a byte too many */
    ts_wbuf_reset(&w);
    ts_reply_begin(&w, TS_OK, NULL);
    ts_put_u32(&w, 0);
    ts_put_u32(&w, 17);
    ts_put_blob(&w, bm, 3);
    full = w.len;
    assert_int_equal(peer_msg_map_decode(w.data, full, &m), 0);
    assert_int_equal(peer_msg_map_word(&m, 0), 0x010201);
    for (i = 0; i < full; i++) {
        assert_int_equal(peer_msg_map_decode(w.data, i, &m), -1);
    }
    ts_put_u8(&w, 0);
    assert_int_equal(peer_msg_map_decode(w.data, w.len, &m), -1);
}

/* Feeds a PEER_DATA payload to the incremental head reader one byte at
 * a time, as the downloader's reads may: the head's length, then the
 * decode. */
static int
data_head(const uint8_t *p, uint32_t flen, peer_msg_data_t *d)
{
    size_t  got = 0;
    long    need;

    for (;;) {
        need = peer_msg_data_head_len(p, got, flen);
        if (need < 0) {
            return -1;
        }
        assert_true(need >= (long) PEER_MSG_HEAD_MIN_B);
        assert_true(need <= (long) PEER_MSG_HEAD_MAX_B);
        if (got >= (size_t) need) {
            break;
        }
        got++;
    }
    assert_int_equal(got, (size_t) need);
    return peer_msg_data_decode(p, got, flen, d);
}

static void
test_data_head(void **state)
{
    peer_msg_data_t d;
    uint8_t         chunk[100];
    size_t          hl;

    (void) state;
    memset(chunk, 0x77, sizeof(chunk));
    peer_msg_data_encode(&w, TS_OK, "ignored for OK", 3, 9, 100);
    hl = w.len;
    assert_int_equal(hl, 4 + 12);
    ts_put_raw(&w, chunk, sizeof(chunk));
    assert_int_equal(data_head(w.data, (uint32_t) w.len, &d), 0);
    assert_int_equal(d.status, TS_OK);
    assert_int_equal(d.load, 3);
    assert_int_equal(d.index, 9);
    assert_int_equal(d.len, 100);
    assert_int_equal(d.head_len, hl);
    /* the frame one byte shorter or longer than head + len */
    assert_int_equal(data_head(w.data, (uint32_t) w.len - 1, &d), -1);
    assert_int_equal(data_head(w.data, (uint32_t) w.len + 1, &d), -1);
    /* decode with fewer or more bytes than the head */
    assert_int_equal(peer_msg_data_decode(w.data, hl - 1,
                                          (uint32_t) w.len, &d), -1);
    assert_int_equal(peer_msg_data_decode(w.data, hl + 1,
                                          (uint32_t) w.len, &d), -1);

    /* a refusal: no len, the head is the whole payload */
    ts_wbuf_reset(&w);
    peer_msg_data_encode(&w, TS_ERR_NOTFOUND, "chunk not available", 0, 4,
                         123);
    assert_int_equal(w.len, 4 + 19 + 8);
    assert_int_equal(data_head(w.data, (uint32_t) w.len, &d), 0);
    assert_int_equal(d.status, TS_ERR_NOTFOUND);
    assert_string_equal(d.msg, "chunk not available");
    assert_int_equal(d.index, 4);
    assert_int_equal(d.len, 0);
    assert_int_equal(data_head(w.data, (uint32_t) w.len + 1, &d), -1);

    /* frames too short to hold a head */
    assert_int_equal(peer_msg_data_head_len(w.data, 0, 3), -1);
    assert_int_equal(peer_msg_data_head_len(w.data, 0, 4), 4);
    assert_int_equal(peer_msg_data_head_len(w.data, 4, 4), -1);

    /* an unknown status; a message over TS_STR_MAX_B; OK with one */
    ts_wbuf_reset(&w);
    ts_put_u16(&w, TS_ERR_INTERNAL + 1);
    ts_put_str(&w, "");
    ts_put_u32(&w, 0);
    ts_put_u32(&w, 0);
    assert_int_equal(data_head(w.data, (uint32_t) w.len, &d), -1);
    ts_wbuf_reset(&w);
    ts_put_u16(&w, TS_ERR_STATE);
    ts_put_u16(&w, TS_STR_MAX_B + 1);
    assert_int_equal(peer_msg_data_head_len(w.data, w.len, 1u << 20), -1);
    ts_wbuf_reset(&w);
    ts_put_u16(&w, TS_OK);          /* ts_reply_begin drops it */
    ts_put_str(&w, "x");
    ts_put_u32(&w, 0);
    ts_put_u32(&w, 0);
    ts_put_u32(&w, 0);
    assert_int_equal(data_head(w.data, (uint32_t) w.len, &d), -1);
    /* a NUL in the message */
    ts_wbuf_reset(&w);
    ts_put_u16(&w, TS_ERR_STATE);
    ts_put_u16(&w, 2);
    ts_put_raw(&w, "a\0", 2);
    ts_put_u32(&w, 0);
    ts_put_u32(&w, 0);
    assert_int_equal(data_head(w.data, (uint32_t) w.len, &d), -1);
    /* a chunk longer than TS_CHUNK_B */
    ts_wbuf_reset(&w);
    peer_msg_data_encode(&w, TS_OK, NULL, 0, 0, TS_CHUNK_B + 1);
    assert_int_equal(data_head(w.data, (uint32_t) w.len + TS_CHUNK_B + 1,
                               &d), -1);
    ts_wbuf_reset(&w);
    peer_msg_data_encode(&w, TS_OK, NULL, 0, 0, TS_CHUNK_B);
    assert_int_equal(data_head(w.data, (uint32_t) w.len + TS_CHUNK_B, &d),
                     0);
}


/* ---- pushed holdings (PEER_HAVE) ---------------------------------------- */

/* A PEER_HAVE payload built by hand: count n, then indices i0 + k
 * (at most one more than a frame may hold, whatever n claims). */
static void
have_raw(const char *group, const char *name, uint32_t n, uint32_t i0)
{
    uint32_t k;

    ts_wbuf_reset(&w);
    ts_put_str(&w, group);
    ts_put_str(&w, name);
    ts_put_u32(&w, n);
    for (k = 0; k < n && k <= TS_PEER_HAVE_MAX_N; k++) {
        ts_put_u32(&w, i0 + k);
    }
}

static void
test_have(void **state)
{
    static const uint32_t idx[3] = { 7, 0, 131071 };
    uint32_t              many[TS_PEER_HAVE_MAX_N + 1];
    peer_msg_have_t       h;
    ts_frame_hdr_t        fh;
    size_t                full, cut;
    uint32_t              k;

    (void) state;
    peer_msg_have_encode(&w, "grp", "f.bin", idx, 3);
    assert_false(w.err);
    assert_int_equal(w.len, 2 + 3 + 2 + 5 + 4 + 12);
    assert_int_equal(peer_msg_have_decode(w.data, w.len, &h), 0);
    assert_string_equal(h.group, "grp");
    assert_string_equal(h.name, "f.bin");
    assert_int_equal(h.n, 3);
    assert_int_equal(h.idx[0], 7);
    assert_int_equal(h.idx[2], 131071);
    /* every truncation and a byte too many */
    full = w.len;
    for (cut = 0; cut < full; cut++) {
        assert_int_equal(peer_msg_have_decode(w.data, cut, &h), -1);
        assert_int_equal(h.n, 0);
    }
    ts_put_u8(&w, 0);
    assert_int_equal(peer_msg_have_decode(w.data, w.len, &h), -1);

    /* the most indices a frame holds, and one more (the encoder refuses
     * it; a hostile peer's hand-made one is refused by the decoder) */
    for (k = 0; k <= TS_PEER_HAVE_MAX_N; k++) {
        many[k] = k;
    }
    ts_wbuf_reset(&w);
    peer_msg_have_encode(&w, "g", "n", many, TS_PEER_HAVE_MAX_N);
    assert_int_equal(peer_msg_have_decode(w.data, w.len, &h), 0);
    assert_int_equal(h.n, TS_PEER_HAVE_MAX_N);
    ts_wbuf_reset(&w);
    peer_msg_have_encode(&w, "g", "n", many, TS_PEER_HAVE_MAX_N + 1);
    assert_true(w.err);
    ts_wbuf_reset(&w);
    peer_msg_have_encode(&w, "g", "n", many, 0);
    assert_true(w.err);
    have_raw("g", "n", TS_PEER_HAVE_MAX_N + 1, 0);
    assert_int_equal(peer_msg_have_decode(w.data, w.len, &h), -1);
    have_raw("g", "n", 0, 0);
    assert_int_equal(peer_msg_have_decode(w.data, w.len, &h), -1);
    /* a count that claims more than the payload holds */
    have_raw("g", "n", 2, 0);
    w.len -= 4;
    assert_int_equal(peer_msg_have_decode(w.data, w.len, &h), -1);
    have_raw("g", "n", 0xffffffffu, 0);
    assert_int_equal(peer_msg_have_decode(w.data, w.len, &h), -1);

    /* indices past the largest file */
    have_raw("g", "n", 2, TS_FILE_MAX_CHUNKS_N - 1);
    assert_int_equal(peer_msg_have_decode(w.data, w.len, &h), -1);
    have_raw("g", "n", 1, 0xffffffffu);
    assert_int_equal(peer_msg_have_decode(w.data, w.len, &h), -1);
    have_raw("g", "n", 1, TS_FILE_MAX_CHUNKS_N - 1);
    assert_int_equal(peer_msg_have_decode(w.data, w.len, &h), 0);

    /* invalid names */
    have_raw("a/b", "n", 1, 0);
    assert_int_equal(peer_msg_have_decode(w.data, w.len, &h), -1);
    have_raw("g", "..", 1, 0);
    assert_int_equal(peer_msg_have_decode(w.data, w.len, &h), -1);
    have_raw("g", "", 1, 0);
    assert_int_equal(peer_msg_have_decode(w.data, w.len, &h), -1);
    /* a payload longer than any PEER_HAVE */
    assert_int_equal(peer_msg_have_decode(w.data, PEER_MSG_HAVE_MAX_B + 1,
                                          &h), -1);

    /* the header: unsolicited (flags 0, reqid 0), bounded */
    fh = (ts_frame_hdr_t) { .type = TS_MSG_PEER_HAVE, .flags = 0,
                            .len = 20, .reqid = 0 };
    assert_true(peer_msg_is_have(&fh));
    assert_int_equal(peer_msg_have_hdr_check(&fh), 0);
    fh.len = PEER_MSG_HAVE_MAX_B;
    assert_int_equal(peer_msg_have_hdr_check(&fh), 0);
    fh.len = PEER_MSG_HAVE_MAX_B + 1;
    assert_int_equal(peer_msg_have_hdr_check(&fh), -1);
    fh.len = 0;
    assert_int_equal(peer_msg_have_hdr_check(&fh), -1);
    fh.len = 20;
    fh.flags = TS_FF_REPLY;
    assert_int_equal(peer_msg_have_hdr_check(&fh), -1);
    fh.flags = 0;
    fh.reqid = 5;
    assert_int_equal(peer_msg_have_hdr_check(&fh), -1);
    fh.reqid = 0;
    fh.type = TS_MSG_PEER_DATA;
    assert_false(peer_msg_is_have(&fh));
    assert_int_equal(peer_msg_have_hdr_check(&fh), -1);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_req_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_req_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_req_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_req_hdr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_hdr_check, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_have, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
