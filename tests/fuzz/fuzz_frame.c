/*
 * fuzz_frame.c -- libFuzzer target: frames and the ts_buf field codec.
 *
 * Input byte 0 picks a mode (the rest is the data):
 *   0  a byte stream as a tracker or client link delivers it: read with
 *      ts_conn_recv_frame over a socketpair until EOF or an error, each
 *      payload then parsed as a reply head (ts_reply_parse) and walked
 *      as a request (token + strings), like every receiver does first;
 *   1  header codec: ts_frame_hdr_decode against several limits, and
 *      encode(decode(h)) must give the same 16 bytes back; ts_msg_name,
 *      ts_status_name; ts_reply_parse with message buffers of several
 *      sizes;
 *   2  the ts_buf reader driven by a program: u16 program length, the
 *      program (one op a byte), then the data.  Each value read is
 *      written back with the matching writer and must read back equal;
 *      strings read also go through ts_valid_id / ts_valid_filename.
 * Oracles: ASan/UBSan, LeakSanitizer, and the round trips above.
 *
 * Locking: single-threaded.  Crash behaviour: nothing on disk.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ts_buf.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "fz_util.h"

#define STREAM_MAX_B  (64u * 1024u)     /* socketpair buffers hold this */

/* What a tracker worker reads first from a request payload. */
static void
walk_request(const uint8_t *p, uint32_t n)
{
    ts_rbuf_t r;
    uint8_t   tok[TS_TOKEN_B];
    char      s[TS_STR_MAX_B + 1];
    int       i;

    ts_rbuf_init(&r, p, n);
    (void) ts_get_raw(&r, tok, sizeof(tok));
    for (i = 0; i < 4 && ts_get_str(&r, s, sizeof(s)) == 0; i++) {
        (void) ts_valid_id(s);
        (void) ts_valid_filename(s);
    }
    (void) ts_rbuf_end(&r);
}


static void
mode_stream(const uint8_t *p, size_t n)
{
    int            sv[2];
    ts_conn_t     *c;
    ts_frame_hdr_t h;
    uint8_t       *pl;
    ts_rbuf_t      r;
    ts_status_t    st;
    char           msg[TS_STR_MAX_B + 1];
    int            i;

    if (n > STREAM_MAX_B) {
        n = STREAM_MAX_B;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        abort();
    }
    if (n > 0 && write(sv[1], p, n) != (ssize_t) n) {
        abort();
    }
    close(sv[1]);                       /* EOF after the input */
    c = ts_conn_new(sv[0]);
    FZ_CHECK(c != NULL);
    for (i = 0; i < 256; i++) {
        if (ts_conn_recv_frame(c, &h, &pl, STREAM_MAX_B, 1000) != 0) {
            FZ_CHECK(pl == NULL);
            break;
        }
        FZ_CHECK(h.len <= STREAM_MAX_B);
        FZ_CHECK((h.len == 0) == (pl == NULL));
        ts_rbuf_init(&r, pl, h.len);
        if (ts_reply_parse(&r, &st, msg, sizeof(msg)) == 0) {
            FZ_CHECK(st <= TS_ERR_INTERNAL);
            FZ_CHECK(strlen(msg) < sizeof(msg));
            (void) ts_status_name(st);
        }
        walk_request(pl, h.len);
        (void) ts_msg_name(h.type);
        free(pl);
    }
    ts_conn_free(c);
}


static void
mode_header(const uint8_t *p, size_t n)
{
    static const uint32_t limits[] = { 0, 1, TS_UP_REQ_MAX_B,
                                       TS_FRAME_MAX_B, UINT32_MAX };
    ts_frame_hdr_t h;
    uint8_t        hdr[TS_FRAME_HDR_B], back[TS_FRAME_HDR_B];
    ts_rbuf_t      r;
    ts_status_t    st;
    char           small[1], mid[17], big[TS_STR_MAX_B + 1];
    size_t         i;

    memset(hdr, 0, sizeof(hdr));
    memcpy(hdr, p, n < sizeof(hdr) ? n : sizeof(hdr));
    for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        if (ts_frame_hdr_decode(hdr, &h, limits[i]) == 0) {
            FZ_CHECK(h.len <= limits[i]);
            FZ_CHECK(h.type != 0 && h.type < TS_MSG_MAX_);
            ts_frame_hdr_encode(back, &h);
            FZ_CHECK(memcmp(back, hdr, sizeof(hdr)) == 0);
            (void) ts_msg_name(h.type);
        }
    }
    (void) ts_status_name((ts_status_t) (n > 1 ? p[1] : 0));
    if (n <= sizeof(hdr)) {
        return;
    }
    p += sizeof(hdr);
    n -= sizeof(hdr);
    ts_rbuf_init(&r, p, n);
    (void) ts_reply_parse(&r, &st, NULL, 0);
    ts_rbuf_init(&r, p, n);
    (void) ts_reply_parse(&r, &st, small, sizeof(small));
    ts_rbuf_init(&r, p, n);
    if (ts_reply_parse(&r, &st, mid, sizeof(mid)) == 0) {
        FZ_CHECK(strlen(mid) < sizeof(mid));
    }
    ts_rbuf_init(&r, p, n);
    if (ts_reply_parse(&r, &st, big, sizeof(big)) == 0) {
        ts_wbuf_t w;
        ts_rbuf_t r2;
        char      again[TS_STR_MAX_B + 1];

        /* the writer's form reads back the same */
        ts_wbuf_init(&w);
        ts_reply_begin(&w, st, big);
        FZ_CHECK(!w.err);
        ts_rbuf_init(&r2, w.data, w.len);
        FZ_CHECK(ts_reply_parse(&r2, &st, again, sizeof(again)) == 0);
        FZ_CHECK(ts_rbuf_end(&r2) == 0);
        FZ_CHECK(st != TS_OK ? strcmp(again, big) == 0 : again[0] == '\0');
        ts_wbuf_free(&w);
    }
}


static void
mode_buf(const uint8_t *p, size_t n)
{
    fz_in_t        in;
    const uint8_t *prog, *data, *q;
    size_t         plen, dlen;
    uint8_t       *copy;
    ts_rbuf_t      r;
    ts_wbuf_t      w;
    char           s[TS_STR_MAX_B + 1], s2[TS_STR_MAX_B + 1];
    uint8_t        raw[64];
    uint32_t       bl, bl2, max;
    size_t         i;

    fz_in_init(&in, p, n);
    plen = fz_u16(&in) % 256;
    prog = fz_take(&in, plen, &plen);
    data = fz_take(&in, fz_left(&in), &dlen);
    copy = fz_dup(data, dlen);          /* exact size: overreads show */
    ts_rbuf_init(&r, copy, dlen);
    ts_wbuf_init(&w);
    for (i = 0; i < plen; i++) {
        uint8_t op = prog[i];

        switch (op % 8) {
        case 0:
            ts_put_u8(&w, ts_get_u8(&r));
            break;
        case 1:
            ts_put_u16(&w, ts_get_u16(&r));
            break;
        case 2:
            ts_put_u32(&w, ts_get_u32(&r));
            break;
        case 3:
            ts_put_u64(&w, ts_get_u64(&r));
            break;
        case 4:
            if (ts_get_raw(&r, raw, (op >> 3) % sizeof(raw)) == 0) {
                ts_put_raw(&w, raw, (op >> 3) % sizeof(raw));
            }
            break;
        case 5:
            /* dst sizes from 1 to the full string size */
            if (ts_get_str(&r, s, op < 128 ? sizeof(s) : 1 + (op & 63))
                == 0)
            {
                FZ_CHECK(strlen(s) <= TS_STR_MAX_B);
                (void) ts_valid_id(s);
                (void) ts_valid_filename(s);
                ts_put_str(&w, s);
            }
            break;
        case 6:
            max = op < 128 ? UINT32_MAX : (uint32_t) (op & 63);
            q = ts_get_blob(&r, &bl, max);
            if (q != NULL) {
                FZ_CHECK(bl <= max);
                FZ_CHECK(q >= copy && q + bl <= copy + dlen);
                ts_put_blob(&w, q, bl);
            } else {
                FZ_CHECK(bl == 0 && r.err);
            }
            break;
        default:
            (void) ts_rbuf_left(&r);
            (void) ts_rbuf_end(&r);
            break;
        }
        FZ_CHECK(r.off <= r.len);
        FZ_CHECK(!r.err || ts_rbuf_left(&r) == 0);
        if (r.err) {
            FZ_CHECK(ts_get_u8(&r) == 0 && ts_get_u64(&r) == 0);
            FZ_CHECK(ts_get_str(&r, s2, sizeof(s2)) != 0 && s2[0] == '\0');
            FZ_CHECK(ts_get_blob(&r, &bl2, UINT32_MAX) == NULL);
            break;
        }
    }
    /* what was read without error was written back byte for byte */
    if (!r.err && !w.err) {
        FZ_CHECK(w.len == r.off);
        FZ_CHECK(w.len == 0 || memcmp(w.data, copy, w.len) == 0);
    }
    ts_wbuf_free(&w);
    free(copy);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_mode_t modes[] = { mode_stream, mode_header, mode_buf };

    return FZ_MODES(data, size, modes);
}
