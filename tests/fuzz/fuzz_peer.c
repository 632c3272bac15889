/*
 * fuzz_peer.c -- libFuzzer target: the peer-to-peer messages, through
 * the very codec the workers run (workers/peer_msg.h: up_link.c's
 * up_link_read / up_link_parse / up_link_parse_auth and dl_recv.c's
 * dl_recv_input / dl_recv_map / dl_recv_auth / dl_recv_head call these
 * functions and nothing else to read the wire).  PEER_AUTH is checked further with the
 * real ts_ticket_verify (CA made at start-up) and the real per-link
 * authorization table (workers/up_auth.h, header-only).
 *
 * fuzz.mk links this target against the client archive, so the codec
 * is the very object the workers are built from, instrumented alike.
 *
 * Input byte 0: even = uploader side, odd = downloader side; the rest is
 * the byte stream the other peer sends, frame after frame.
 *   uploader: frame headers pass peer_msg_req_hdr_decode (else the link
 *   closes), payloads peer_msg_auth_decode / peer_msg_req_decode.  A
 *   PEER_AUTH frame with flags bit 7 set carries a ticket that the
 *   harness parses and signs again with the genuine tracker key before
 *   the verifier sees it (issued now, default lifetime; bit 6: for this
 *   link's fingerprint), so the accepting paths are reached.  Oracles:
 *   whatever decodes re-encodes to the same bytes (canonical), names are
 *   valid, and a MAP/GET is authorized exactly when a ticket for its
 *   (group, name) was accepted earlier on the link (while at most
 *   TS_UP_AUTH_N distinct files were granted, so nothing was evicted).
 *   downloader: each frame answers a MAP or PEER_AUTH (type REPLY) or a
 *   GET (type PEER_DATA) of a download of nchunks = 1 + byte 1 chunks
 *   (the count a MAP answer must match, as in dl_recv_map);
 *   headers pass ts_frame_hdr_decode and peer_msg_reply_hdr_check, a
 *   PEER_DATA head is read piece by piece as dl_recv_input does
 *   (peer_msg_data_head_len, then peer_msg_data_decode), a REPLY goes to
 *   peer_msg_map_decode and peer_msg_status_decode.  A PEER_HAVE frame
 *   (peer_msg_is_have, pushed between replies, dl_have.c) passes
 *   peer_msg_have_hdr_check, then peer_msg_have_decode.  Oracles:
 *   re-encoding gives the same bytes, lengths add up to the frame, no
 *   bitmap bit past nchunks, the two REPLY decoders agree on refusals,
 *   and a decoded PEER_HAVE holds 1..TS_PEER_HAVE_MAX_N indices within
 *   the largest file and valid names.
 *
 * Locking: single-threaded.  Crash behaviour: PEM files in the temp dir.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_buf.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "ts_ticket.h"
#include "up_auth.h"
#include "peer_msg.h"
#include "fz_util.h"

#define FRAMES_MAX_N       64

static ts_ticket_verifier_t *verifier;
static ts_ticket_signer_t   *signer;
static uint8_t               link_fp[TS_FP_B];

typedef struct {
    char group[TS_ID_MAX_B + 1];
    char name[TS_NAME_MAX_B + 1];
} grant_t;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char ca[PATH_MAX], c1[PATH_MAX], k1[PATH_MAX], err[256];

    (void) argc;
    (void) argv;
    fz_quiet();
    fz_pki("pki", ca, c1, k1, NULL, NULL);
    verifier = ts_ticket_verifier_new(ca, err, sizeof(err));
    signer = ts_ticket_signer_new(1, c1, k1, err, sizeof(err));
    if (verifier == NULL || signer == NULL) {
        fz_fail(__FILE__, __LINE__, err);
    }
    memset(link_fp, 0xc3, sizeof(link_fp));
    return 0;
}


/* b holds exactly the n bytes at p */
static void
same_bytes(const ts_wbuf_t *b, const uint8_t *p, size_t n)
{
    FZ_CHECK(!b->err);
    FZ_CHECK(b->len == n);
    FZ_CHECK(n == 0 || memcmp(b->data, p, n) == 0);
}


/* The harness's re-signing of a PEER_AUTH payload (flags bit 7). */
static uint8_t *
resign(const uint8_t *p, uint32_t len, int for_link, uint32_t *outlen)
{
    const uint8_t *tk;
    uint32_t       tn;
    ts_ticket_t    t;
    ts_wbuf_t      tw, w;
    uint8_t       *out;

    if (peer_msg_auth_decode(p, len, &tk, &tn) != 0
        || ts_ticket_parse(tk, tn, &t, NULL, NULL, NULL, NULL, NULL) != 0)
    {
        return NULL;
    }
    t.issued_ms = (uint64_t) ts_wall_ms();
    t.expires_ms = t.issued_ms + TS_TICKET_TTL_MS;
    if (for_link) {
        memcpy(t.fp, link_fp, TS_FP_B);
    }
    ts_wbuf_init(&tw);
    ts_wbuf_init(&w);
    FZ_CHECK(ts_ticket_sign(signer, &t, &tw) == 0);
    peer_msg_auth_encode(&w, tw.data, (uint32_t) tw.len);
    FZ_CHECK(!w.err);
    ts_wbuf_free(&tw);
    out = fz_dup(w.data, w.len);
    *outlen = (uint32_t) w.len;
    ts_wbuf_free(&w);
    return out;
}


static int
granted(const grant_t *g, int ng, const char *group, const char *name)
{
    int i;

    for (i = 0; i < ng; i++) {
        if (strcmp(g[i].group, group) == 0 && strcmp(g[i].name, name) == 0) {
            return 1;
        }
    }
    return 0;
}


/* up_link_parse_auth: decode, verify, grant */
static void
up_auth_frame(up_auth_tab_t *tab, grant_t *g, int *ng, const uint8_t *pl,
              uint32_t len)
{
    ts_ticket_t     t;
    ts_wbuf_t       w;
    const uint8_t  *tk;
    uint32_t        tn;
    char            err[128];
    int64_t         now;

    if (peer_msg_auth_decode(pl, len, &tk, &tn) != 0) {
        FZ_CHECK(tk == NULL && tn == 0);
        return;                         /* TS_ERR_BADREQ */
    }
    FZ_CHECK(tn > 0 && tn <= TS_TICKET_MAX_B && tk == pl + 4);
    ts_wbuf_init(&w);
    peer_msg_auth_encode(&w, tk, tn);
    same_bytes(&w, pl, len);
    ts_wbuf_free(&w);

    now = ts_wall_ms();
    if (ts_ticket_verify(verifier, tk, tn, now, link_fp, &t, err,
                         sizeof(err)) != 0)
    {
        return;
    }
    FZ_CHECK(memcmp(t.fp, link_fp, TS_FP_B) == 0);
    FZ_CHECK((int64_t) t.expires_ms > now);
    if (up_auth_put(tab, t.group, t.name, (int64_t) t.expires_ms, now) == 0
        && !granted(g, *ng, t.group, t.name) && *ng <= TS_UP_AUTH_N)
    {
        snprintf(g[*ng].group, sizeof(g[*ng].group), "%s", t.group);
        snprintf(g[*ng].name, sizeof(g[*ng].name), "%s", t.name);
        (*ng)++;
    }
}


/* up_link_parse of a MAP / GET */
static void
up_req_frame(const up_auth_tab_t *tab, const grant_t *g, int ng,
             uint8_t type, const uint8_t *pl, uint32_t len)
{
    peer_msg_req_t  m;
    ts_wbuf_t       w;
    int             perm;

    if (peer_msg_req_decode(type, pl, len, &m) != 0) {
        FZ_CHECK(m.group[0] == '\0' && m.name[0] == '\0' && m.index == 0
                 && m.ranged == 0 && m.off == 0 && m.len == 0);
        return;                         /* TS_ERR_BADREQ */
    }
    FZ_CHECK(ts_valid_id(m.group) && ts_valid_filename(m.name));
    FZ_CHECK(type == TS_MSG_PEER_GET || (m.index == 0 && !m.ranged));
    ts_wbuf_init(&w);
    if (m.ranged) {
        /* up_serve_get's rule: whatever passes fits the chunk */
        uint32_t clen = (m.index % TS_CHUNK_B) + 1;

        if (peer_msg_range_check(m.off, m.len, clen) == 0) {
            FZ_CHECK(m.len > 0 && m.off < clen && m.len <= clen - m.off
                     && m.off % TS_BLOCK_B == 0
                     && (m.len % TS_BLOCK_B == 0 || m.off + m.len == clen));
        }
        peer_msg_range_encode(&w, m.group, m.name, m.index, m.off, m.len);
    } else {
        FZ_CHECK(m.off == 0 && m.len == 0);
        peer_msg_req_encode(&w, type, m.group, m.name, m.index);
    }
    same_bytes(&w, pl, len);
    ts_wbuf_free(&w);
    perm = up_auth_ok(tab, m.group, m.name, ts_wall_ms());
    if (ng <= TS_UP_AUTH_N) {
        FZ_CHECK(perm == granted(g, ng, m.group, m.name));
    }
}


static void
uploader(const uint8_t *p, size_t n)
{
    up_auth_tab_t  *tab = malloc(sizeof(*tab));
    grant_t        *g = calloc(TS_UP_AUTH_N + 1, sizeof(*g));
    ts_frame_hdr_t  h;
    uint8_t        *own, *signed_;
    uint32_t        len;
    int             ng = 0, frames;

    FZ_CHECK(tab != NULL && g != NULL);
    up_auth_init(tab);
    for (frames = 0; frames < FRAMES_MAX_N && n >= TS_FRAME_HDR_B; frames++)
    {
        if (peer_msg_req_hdr_decode(p, &h) != 0) {
            break;                      /* link closed */
        }
        FZ_CHECK(h.len <= PEER_MSG_REQ_IN_MAX_B);
        FZ_CHECK(h.type == TS_MSG_PEER_AUTH || h.len <= TS_UP_REQ_MAX_B);
        if (n - TS_FRAME_HDR_B < h.len) {
            break;                      /* frame unfinished */
        }
        /* an exact-size copy: a read past the payload shows */
        own = fz_dup(p + TS_FRAME_HDR_B, h.len);
        len = h.len;
        p += TS_FRAME_HDR_B + h.len;
        n -= TS_FRAME_HDR_B + h.len;
        if (h.flags & TS_FF_REPLY) {
            free(own);
            break;                      /* a peer never sends replies */
        }
        if (h.type == TS_MSG_PEER_AUTH) {
            if (h.flags & 0x80) {
                signed_ = resign(own, len, h.flags & 0x40, &len);
                if (signed_ != NULL) {
                    free(own);
                    own = signed_;
                } else {
                    len = h.len;
                }
            }
            up_auth_frame(tab, g, &ng, own, len);
        } else if (h.type == TS_MSG_PEER_MAP || h.type == TS_MSG_PEER_GET) {
            up_req_frame(tab, g, ng, h.type, own, len);
        }
        free(own);
    }
    free(tab);
    free(g);
}


/* dl_parse_head on a PEER_DATA payload of flen bytes at p (exact size),
 * read as dl_recv_input reads it: the first 4 bytes, then what
 * peer_msg_data_head_len asks for */
static void
dl_data_frame(const uint8_t *p, uint32_t flen)
{
    peer_msg_data_t  d;
    ts_wbuf_t        w;
    size_t           got;
    long             need;

    got = flen < PEER_MSG_HEAD_MIN_B ? flen : PEER_MSG_HEAD_MIN_B;
    for (;;) {
        need = peer_msg_data_head_len(p, got, flen);
        if (need < 0) {
            return;                     /* "bad PEER_DATA" */
        }
        FZ_CHECK(need >= (long) PEER_MSG_HEAD_MIN_B
                 && need <= (long) PEER_MSG_HEAD_MAX_B
                 && (uint32_t) need <= flen);
        if (got >= (size_t) need) {
            break;
        }
        got = (size_t) need;
    }
    if (peer_msg_data_decode(p, got, flen, &d) != 0) {
        FZ_CHECK(d.head_len == 0 && d.len == 0);
        return;
    }
    FZ_CHECK(d.head_len == got);
    FZ_CHECK(d.status <= TS_ERR_INTERNAL);
    if (d.status == TS_OK) {
        FZ_CHECK(d.msg[0] == '\0');
        FZ_CHECK(d.len <= TS_CHUNK_B && got + d.len == flen);
    } else {
        FZ_CHECK(d.len == 0 && got == flen);
    }
    /* canonical: the head re-encodes to its bytes (when the message was
     * not truncated in the copy) */
    if (strlen(d.msg) < PEER_MSG_MSG_B - 1) {
        ts_wbuf_init(&w);
        peer_msg_data_encode(&w, d.status, d.msg, d.load, d.index, d.len);
        same_bytes(&w, p, got);
        ts_wbuf_free(&w);
    }
}


/* dl_recv_map / dl_recv_auth on a REPLY payload */
static void
dl_reply_frame(const uint8_t *p, uint32_t len, uint32_t nchunks)
{
    peer_msg_map_t   m;
    ts_status_t      st;
    ts_wbuf_t        w;
    uint8_t         *bits;
    char             msg[PEER_MSG_MSG_B];
    uint64_t         v;
    uint32_t         i;
    int              rs;

    rs = peer_msg_status_decode(p, len, &st, msg, sizeof(msg));
    if (peer_msg_map_decode(p, len, &m) != 0) {
        FZ_CHECK(m.bitmap == NULL && m.nchunks == 0);
        /* a refusal is a map answer too */
        FZ_CHECK(rs != 0 || st == TS_OK);
        return;
    }
    ts_wbuf_init(&w);
    if (m.status != TS_OK) {
        FZ_CHECK(rs == 0 && st == m.status && strcmp(msg, m.msg) == 0);
        FZ_CHECK(m.bitmap == NULL && m.nchunks == 0 && m.load == 0);
        if (strlen(m.msg) < PEER_MSG_MSG_B - 1) {
            ts_reply_begin(&w, m.status, m.msg);
            same_bytes(&w, p, len);
        }
        ts_wbuf_free(&w);
        return;
    }
    FZ_CHECK(rs != 0);                  /* an OK map has a body */
    FZ_CHECK(m.msg[0] == '\0' && m.nchunks <= TS_FILE_MAX_CHUNKS_N);
    FZ_CHECK(m.bitmap_len == (m.nchunks + 7) / 8);
    FZ_CHECK(m.bitmap_len == 0
             || (m.bitmap >= p && m.bitmap + m.bitmap_len == p + len));
    bits = peer_msg_map_encode(&w, m.load, m.nchunks, 0);
    FZ_CHECK(bits != NULL);
    if (m.bitmap_len > 0) {
        memcpy(bits, m.bitmap, m.bitmap_len);
    }
    same_bytes(&w, p, len);
    ts_wbuf_free(&w);
    /* the worker's words: no chunk past the last */
    for (i = 0; i < (m.nchunks + 63) / 64; i++) {
        v = peer_msg_map_word(&m, i);
        if (i == (m.nchunks - 1) / 64 && (m.nchunks & 63)) {
            FZ_CHECK((v >> (m.nchunks & 63)) == 0);
        }
    }
    FZ_CHECK(peer_msg_map_word(&m, (m.nchunks + 63) / 64) == 0);
    /* the worker takes it only for its download's chunk count */
    FZ_CHECK(m.nchunks != nchunks || (nchunks + 63) / 64 <= 4);
}


/* dl_have_recv on a PEER_HAVE payload */
static void
dl_have_frame(const uint8_t *p, uint32_t len)
{
    peer_msg_have_t  h;
    ts_wbuf_t        w;
    uint32_t         i;

    if (peer_msg_have_decode(p, len, &h) != 0) {
        FZ_CHECK(h.n == 0 && h.group[0] == '\0');
        return;
    }
    FZ_CHECK(h.n >= 1 && h.n <= TS_PEER_HAVE_MAX_N);
    FZ_CHECK(ts_valid_id(h.group) && ts_valid_filename(h.name));
    for (i = 0; i < h.n; i++) {
        FZ_CHECK(h.idx[i] < TS_FILE_MAX_CHUNKS_N);
    }
    ts_wbuf_init(&w);
    peer_msg_have_encode(&w, h.group, h.name, h.idx, h.n);
    same_bytes(&w, p, len);
    ts_wbuf_free(&w);
}


static void
downloader(uint32_t nchunks, const uint8_t *p, size_t n)
{
    ts_frame_hdr_t  h;
    uint8_t        *own;
    int             frames;

    for (frames = 0; frames < FRAMES_MAX_N && n >= TS_FRAME_HDR_B; frames++)
    {
        if (ts_frame_hdr_decode(p, &h, PEER_MSG_REPLY_IN_MAX_B) != 0) {
            break;                      /* "unexpected or bad frame" */
        }
        if (peer_msg_is_have(&h)) {
            if (peer_msg_have_hdr_check(&h) != 0
                || n - TS_FRAME_HDR_B < h.len)
            {
                break;                  /* "bad PEER_HAVE" */
            }
            own = fz_dup(p + TS_FRAME_HDR_B, h.len);
            p += TS_FRAME_HDR_B + h.len;
            n -= TS_FRAME_HDR_B + h.len;
            dl_have_frame(own, h.len);
            free(own);
            continue;
        }
        /* the request this answers: a GET for PEER_DATA, else a MAP or
         * a PEER_AUTH (the same checks) */
        if (peer_msg_reply_hdr_check(&h, h.type == TS_MSG_PEER_DATA
                                         ? TS_MSG_PEER_GET
                                         : TS_MSG_PEER_MAP) != 0)
        {
            FZ_CHECK(peer_msg_reply_hdr_check(&h, TS_MSG_PEER_AUTH) != 0
                     || h.type == TS_MSG_PEER_DATA);
            break;                      /* "reply out of order" */
        }
        if (n - TS_FRAME_HDR_B < h.len) {
            break;
        }
        own = fz_dup(p + TS_FRAME_HDR_B, h.len);
        p += TS_FRAME_HDR_B + h.len;
        n -= TS_FRAME_HDR_B + h.len;
        if (h.type == TS_MSG_PEER_DATA) {
            dl_data_frame(own, h.len);
        } else {
            FZ_CHECK(h.len <= PEER_MSG_MAP_MAX_B);
            dl_reply_frame(own, h.len, nchunks);
        }
        free(own);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *p;

    if (size < 2) {
        return 0;
    }
    p = fz_dup(data + 2, size - 2);
    if (data[0] & 1) {
        downloader(1 + data[1], p, size - 2);
    } else {
        uploader(p, size - 2);
    }
    free(p);
    return 0;
}
