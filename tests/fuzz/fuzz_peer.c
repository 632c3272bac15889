/*
 * fuzz_peer.c -- libFuzzer target: the peer-to-peer messages.
 *
 * The uploader's request parsing (up_read / up_parse / up_parse_auth in
 * workers/up_worker.c) is static inside the worker, so this target
 * replays the same steps on the input with the real pieces they call:
 * ts_frame_hdr_decode with the same limits, the same ts_buf field
 * sequence for PEER_MAP / PEER_GET, and for PEER_AUTH the real
 * ts_ticket_verify (CA made at start-up) and the real per-link
 * authorization table (workers/up_auth.h, header-only).  The downloader's
 * reply parsing (dl_got_map, dl_parse_head in workers/dl_worker.c) is
 * replayed the same way.
 *
 * Input byte 0: even = uploader side, odd = downloader side; the rest is
 * the byte stream the other peer sends, frame after frame.
 *   uploader: a frame with flags bit 7 set carries a ticket that the
 *   harness parses and signs again with the genuine tracker key before
 *   the verifier sees it (issued now, default lifetime; bit 6: for this
 *   link's fingerprint), so the accepting paths are reached.  Oracle: a
 *   MAP/GET is authorized exactly when a ticket for its (group, name)
 *   was accepted earlier on the link (while at most TS_UP_AUTH_N
 *   distinct files were granted, so nothing was evicted).
 *   downloader: each frame answers a MAP (type REPLY) or a GET (type
 *   PEER_DATA) of a download of nchunks = 1 + byte 1 chunks.
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
#include "fz_util.h"

#define UP_AUTH_REQ_MAX_B  (4u + TS_TICKET_MAX_B)
#define UP_IN_MAX_B        (UP_AUTH_REQ_MAX_B > TS_UP_REQ_MAX_B            \
                            ? UP_AUTH_REQ_MAX_B : TS_UP_REQ_MAX_B)
#define DL_MAP_MAX_B       (4 + TS_STR_MAX_B + 8 + 4                       \
                            + TS_FILE_MAX_CHUNKS_N / 8)
#define FRAMES_MAX_N       64

static ts_ticket_verifier_t *verifier;
static ts_ticket_signer_t   *signer;
static uint8_t               link_fp[TS_FP_B];

typedef struct {
    char group[TS_ID_MAX_B + 1];
    char name[TS_NAME_MAX_B + 1];
} grant_t;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


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


/* The harness's re-signing of a PEER_AUTH payload (flags bit 7). */
static uint8_t *
resign(const uint8_t *p, uint32_t len, int for_link, uint32_t *outlen)
{
    ts_rbuf_t      rb;
    const uint8_t *tk;
    uint32_t       tn;
    ts_ticket_t    t;
    ts_wbuf_t      tw, w;
    uint8_t       *out;

    ts_rbuf_init(&rb, p, len);
    tk = ts_get_blob(&rb, &tn, TS_TICKET_MAX_B);
    if (tk == NULL
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
    ts_put_blob(&w, tw.data, (uint32_t) tw.len);
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


static void
uploader(const uint8_t *p, size_t n)
{
    up_auth_tab_t  *tab = malloc(sizeof(*tab));
    grant_t        *g = calloc(TS_UP_AUTH_N + 1, sizeof(*g));
    ts_frame_hdr_t  h;
    ts_rbuf_t       rb;
    ts_ticket_t     t;
    const uint8_t  *pl, *tk;
    uint8_t        *own;
    uint32_t        len, tn;
    char            group[TS_ID_MAX_B + 1], name[TS_NAME_MAX_B + 1];
    char            err[128];
    int             ng = 0, frames, bad, perm, ok;
    int64_t         now;

    FZ_CHECK(tab != NULL && g != NULL);
    up_auth_init(tab);
    for (frames = 0; frames < FRAMES_MAX_N && n >= TS_FRAME_HDR_B; frames++)
    {
        if (ts_frame_hdr_decode(p, &h, UP_IN_MAX_B) != 0
            || (h.type != TS_MSG_PEER_AUTH && h.len > TS_UP_REQ_MAX_B)
            || n - TS_FRAME_HDR_B < h.len)
        {
            break;                      /* link closed (or frame unfinished) */
        }
        pl = p + TS_FRAME_HDR_B;
        len = h.len;
        p += TS_FRAME_HDR_B + h.len;
        n -= TS_FRAME_HDR_B + h.len;
        if (h.flags & TS_FF_REPLY) {
            break;
        }
        own = NULL;
        if (h.type == TS_MSG_PEER_AUTH) {
            if (h.flags & 0x80) {
                own = resign(pl, len, h.flags & 0x40, &len);
                if (own != NULL) {
                    pl = own;
                }
            }
            own = own ? own : fz_dup(pl, len);
            ts_rbuf_init(&rb, own, len);
            tk = ts_get_blob(&rb, &tn, TS_TICKET_MAX_B);
            if (tk == NULL || tn == 0 || ts_rbuf_end(&rb) != 0) {
                free(own);
                continue;               /* TS_ERR_BADREQ */
            }
            now = ts_wall_ms();
            ok = ts_ticket_verify(verifier, tk, tn, now, link_fp, &t, err,
                                  sizeof(err)) == 0;
            if (ok) {
                FZ_CHECK(memcmp(t.fp, link_fp, TS_FP_B) == 0);
                FZ_CHECK((int64_t) t.expires_ms > now);
                if (up_auth_put(tab, t.group, t.name, (int64_t) t.expires_ms,
                                now) == 0
                    && !granted(g, ng, t.group, t.name) && ng <= TS_UP_AUTH_N)
                {
                    snprintf(g[ng].group, sizeof(g[ng].group), "%s", t.group);
                    snprintf(g[ng].name, sizeof(g[ng].name), "%s", t.name);
                    ng++;
                }
            }
            free(own);
        } else if (h.type == TS_MSG_PEER_MAP || h.type == TS_MSG_PEER_GET) {
            own = fz_dup(pl, len);
            ts_rbuf_init(&rb, own, len);
            bad = ts_get_str(&rb, group, sizeof(group)) != 0
                  || ts_get_str(&rb, name, sizeof(name)) != 0;
            if (h.type == TS_MSG_PEER_GET) {
                (void) ts_get_u32(&rb);
            }
            if (ts_rbuf_end(&rb) != 0 || !ts_valid_id(group)
                || !ts_valid_filename(name))
            {
                bad = 1;
            }
            perm = !bad && up_auth_ok(tab, group, name, ts_wall_ms());
            if (!bad && ng <= TS_UP_AUTH_N) {
                FZ_CHECK(perm == granted(g, ng, group, name));
            }
            free(own);
        }
    }
    free(tab);
    free(g);
}


/* dl_parse_head of workers/dl_worker.c on a complete head */
static int
data_head(const uint8_t *p, uint32_t flen, uint32_t chunk, uint32_t clen)
{
    uint16_t st, mlen;
    size_t   need;
    uint32_t index, len;

    if (flen < 4) {
        return -1;
    }
    st = (uint16_t) (p[0] << 8 | p[1]);
    mlen = (uint16_t) (p[2] << 8 | p[3]);
    if (mlen > TS_STR_MAX_B) {
        return -1;
    }
    need = 4 + (size_t) mlen + 8 + (st == TS_OK ? 4 : 0);
    if (need > flen) {
        return -1;
    }
    p += 4 + mlen;
    (void) ((uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
            | (uint32_t) p[2] << 8 | p[3]);     /* load */
    index = (uint32_t) p[4] << 24 | (uint32_t) p[5] << 16
            | (uint32_t) p[6] << 8 | p[7];
    if (index != chunk) {
        return -1;
    }
    if (st != TS_OK) {
        return need == flen ? 0 : -1;
    }
    len = (uint32_t) p[8] << 24 | (uint32_t) p[9] << 16
          | (uint32_t) p[10] << 8 | p[11];
    if (len != clen || (uint64_t) need + len != flen) {
        return -1;
    }
    return 0;
}


static void
downloader(uint32_t nchunks, const uint8_t *p, size_t n)
{
    ts_frame_hdr_t  h;
    ts_rbuf_t       rb;
    ts_status_t     st;
    char            msg[128];
    uint32_t        nch, blen, i, b;
    const uint8_t  *bm;
    uint8_t        *own;
    uint64_t        map[4];
    int             frames;

    for (frames = 0; frames < FRAMES_MAX_N && n >= TS_FRAME_HDR_B; frames++)
    {
        if (ts_frame_hdr_decode(p, &h, DL_MAP_MAX_B + TS_CHUNK_B) != 0
            || (h.type != TS_MSG_REPLY && h.type != TS_MSG_PEER_DATA)
            || (h.type == TS_MSG_REPLY && h.len > DL_MAP_MAX_B)
            || n - TS_FRAME_HDR_B < h.len)
        {
            break;
        }
        own = fz_dup(p + TS_FRAME_HDR_B, h.len);
        p += TS_FRAME_HDR_B + h.len;
        n -= TS_FRAME_HDR_B + h.len;
        if (h.type == TS_MSG_PEER_DATA) {
            (void) data_head(own, h.len, (uint32_t) (h.reqid % nchunks),
                             h.len > 16 ? h.len - 16 : 0);
            free(own);
            continue;
        }
        /* dl_got_map */
        ts_rbuf_init(&rb, own, h.len);
        if (ts_reply_parse(&rb, &st, msg, sizeof(msg)) != 0 && rb.err) {
            free(own);
            continue;
        }
        if (st == TS_OK) {
            (void) ts_get_u32(&rb);
            nch = ts_get_u32(&rb);
            bm = ts_get_blob(&rb, &blen,
                             (uint32_t) (TS_FILE_MAX_CHUNKS_N / 8));
            if (!rb.err && nch == nchunks && blen == (nch + 7) / 8) {
                memset(map, 0, sizeof(map));
                for (i = 0; i < (nch + 63) / 64; i++) {
                    uint64_t v = 0;

                    for (b = 0; b < 8 && i * 8 + b < blen; b++) {
                        v |= (uint64_t) bm[i * 8 + b] << (8 * b);
                    }
                    if (i == (nch - 1) / 64 && (nch & 63)) {
                        v &= (1ull << (nch & 63)) - 1;
                    }
                    FZ_CHECK(i < 4);
                    map[i] = v;
                }
            }
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
