/*
 * peer_msg.c -- the codec of the peer-to-peer messages (see peer_msg.h):
 * the one place where PEER_MAP / PEER_GET / PEER_AUTH requests, their
 * answers and the pushed PEER_HAVE are turned into bytes and back, shared by the uploader and
 * downloader workers, the unit tests and the fuzz target.
 *
 * Decoders accept only the canonical encoding the encoders produce:
 * every field is bounded (ts_buf), ids and names are validated, and a
 * byte left over is an error.  Nothing is allocated; decoded pointers
 * point into the caller's buffer.
 *
 * Locking: none; no state at all.  Crash behaviour: nothing persistent;
 * a crash loses nothing.
 */
#include <string.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "ts_proto.h"
#include "peer_msg.h"


/* 1 if the payload ended exactly and its (group, name) are valid */
static int
peer_msg_tail_ok(const ts_rbuf_t *rb, const char *group, const char *name)
{
    return ts_rbuf_end(rb) == 0 && ts_valid_id(group)
           && ts_valid_filename(name);
}


int
peer_msg_req_hdr_decode(const uint8_t in[TS_FRAME_HDR_B], ts_frame_hdr_t *h)
{
    if (ts_frame_hdr_decode(in, h, PEER_MSG_REQ_IN_MAX_B) != 0) {
        return -1;
    }
    if (h->type != TS_MSG_PEER_AUTH && h->len > TS_UP_REQ_MAX_B) {
        return -1;
    }
    return 0;
}


void
peer_msg_req_encode(ts_wbuf_t *b, uint8_t type, const char *group,
                    const char *name, uint32_t index)
{
    ts_put_str(b, group);
    ts_put_str(b, name);
    if (type == TS_MSG_PEER_GET) {
        ts_put_u32(b, index);
    }
}


void
peer_msg_range_encode(ts_wbuf_t *b, const char *group, const char *name,
                      uint32_t index, uint32_t off, uint32_t len)
{
    peer_msg_req_encode(b, TS_MSG_PEER_GET, group, name, index);
    ts_put_u32(b, off);
    ts_put_u32(b, len);
}


int
peer_msg_range_check(uint32_t off, uint32_t len, uint32_t chunk_len)
{
    if (chunk_len == 0 || chunk_len > TS_CHUNK_B || len == 0
        || off % TS_BLOCK_B != 0 || off >= chunk_len
        || len > chunk_len - off)
    {
        return -1;
    }
    if (len % TS_BLOCK_B != 0 && off + len != chunk_len) {
        return -1;
    }
    return 0;
}


int
peer_msg_req_decode(uint8_t type, const uint8_t *p, size_t n,
                    peer_msg_req_t *out)
{
    ts_rbuf_t  rb;

    memset(out, 0, sizeof(*out));
    if (type != TS_MSG_PEER_MAP && type != TS_MSG_PEER_GET) {
        return -1;
    }
    ts_rbuf_init(&rb, p, n);
    if (ts_get_str(&rb, out->group, sizeof(out->group)) != 0
        || ts_get_str(&rb, out->name, sizeof(out->name)) != 0)
    {
        goto bad;
    }
    if (type == TS_MSG_PEER_GET) {
        out->index = ts_get_u32(&rb);
        /* a ranged GET: exactly two more u32 (ts_rbuf_end says if any
         * byte is left over or one was missing) */
        if (ts_rbuf_left(&rb) > 0) {
            out->ranged = 1;
            out->off = ts_get_u32(&rb);
            out->len = ts_get_u32(&rb);
        }
    }
    if (peer_msg_tail_ok(&rb, out->group, out->name)) {
        return 0;
    }

bad:
    memset(out, 0, sizeof(*out));
    return -1;
}


void
peer_msg_auth_encode(ts_wbuf_t *b, const uint8_t *ticket, uint32_t len)
{
    ts_put_blob(b, ticket, len);
}


int
peer_msg_auth_decode(const uint8_t *p, size_t n, const uint8_t **ticket,
                     uint32_t *len)
{
    ts_rbuf_t       rb;
    const uint8_t  *tk;
    uint32_t        tn = 0;

    *ticket = NULL;
    *len = 0;
    ts_rbuf_init(&rb, p, n);
    tk = ts_get_blob(&rb, &tn, TS_TICKET_MAX_B);
    if (tk == NULL || tn == 0 || ts_rbuf_end(&rb) != 0) {
        return -1;
    }
    *ticket = tk;
    *len = tn;
    return 0;
}


int
peer_msg_reply_hdr_check(const ts_frame_hdr_t *h, uint8_t req_type)
{
    if (req_type == TS_MSG_PEER_GET) {
        return h->type == TS_MSG_PEER_DATA ? 0 : -1;
    }
    if (req_type != TS_MSG_PEER_MAP && req_type != TS_MSG_PEER_AUTH) {
        return -1;
    }
    return h->type == TS_MSG_REPLY && h->len <= PEER_MSG_MAP_MAX_B ? 0 : -1;
}


/* The head of a REPLY or PEER_DATA: status and message.  An OK answer
 * carries no message (ts_proto.h); a long one is truncated in the copy. */
static int
peer_msg_head(ts_rbuf_t *rb, ts_status_t *st, char *msg, size_t msgsz)
{
    if (ts_reply_parse(rb, st, msg, msgsz) != 0) {
        return -1;
    }
    /* the message's length field: 0 for OK (read back: 2 bytes after
     * the status) */
    if (*st == TS_OK && (rb->p[2] != 0 || rb->p[3] != 0)) {
        return -1;
    }
    return 0;
}


int
peer_msg_status_decode(const uint8_t *p, size_t n, ts_status_t *st,
                       char *msg, size_t msgsz)
{
    ts_rbuf_t  rb;

    ts_rbuf_init(&rb, p, n);
    if (peer_msg_head(&rb, st, msg, msgsz) != 0 || ts_rbuf_end(&rb) != 0) {
        if (msg != NULL && msgsz > 0) {
            msg[0] = '\0';
        }
        return -1;
    }
    return 0;
}


uint8_t *
peer_msg_map_encode(ts_wbuf_t *b, uint32_t load, uint32_t nchunks, int all)
{
    uint32_t  nbytes = (uint32_t) (((uint64_t) nchunks + 7) / 8);
    uint8_t  *bits;

    ts_reply_begin(b, TS_OK, NULL);
    ts_put_u32(b, load);
    ts_put_u32(b, nchunks);
    ts_put_u32(b, nbytes);
    if (b->err || ts_wbuf_reserve(b, nbytes) != 0) {
        return NULL;
    }
    bits = b->data + b->len;
    memset(bits, all ? 0xff : 0, nbytes);
    if (all && (nchunks & 7)) {
        bits[nbytes - 1] = (uint8_t) ((1u << (nchunks & 7)) - 1);
    }
    b->len += nbytes;
    return bits;
}


int
peer_msg_map_decode(const uint8_t *p, size_t n, peer_msg_map_t *m)
{
    ts_rbuf_t       rb;
    const uint8_t  *bm;
    uint32_t        blen;

    memset(m, 0, sizeof(*m));
    ts_rbuf_init(&rb, p, n);
    if (peer_msg_head(&rb, &m->status, m->msg, sizeof(m->msg)) != 0) {
        goto bad;
    }
    if (m->status != TS_OK) {
        if (ts_rbuf_end(&rb) != 0) {
            goto bad;
        }
        return 0;
    }
    m->load = ts_get_u32(&rb);
    m->nchunks = ts_get_u32(&rb);
    bm = ts_get_blob(&rb, &blen, (uint32_t) (TS_FILE_MAX_CHUNKS_N / 8));
    if (bm == NULL || ts_rbuf_end(&rb) != 0
        || m->nchunks > TS_FILE_MAX_CHUNKS_N
        || blen != (m->nchunks + 7) / 8)
    {
        goto bad;
    }
    /* no chunk past the file's last */
    if ((m->nchunks & 7) && (bm[blen - 1] >> (m->nchunks & 7)) != 0) {
        goto bad;
    }
    m->bitmap = bm;
    m->bitmap_len = blen;
    return 0;

bad:
    memset(m, 0, sizeof(*m));
    return -1;
}


uint64_t
peer_msg_map_word(const peer_msg_map_t *m, uint32_t w)
{
    uint64_t  v = 0;
    uint32_t  b;
    size_t    i;

    for (b = 0; b < 8; b++) {
        i = (size_t) w * 8 + b;
        if (i >= m->bitmap_len) {
            break;
        }
        v |= (uint64_t) m->bitmap[i] << (8 * b);
    }
    return v;
}


void
peer_msg_data_encode(ts_wbuf_t *b, ts_status_t st, const char *msg,
                     uint32_t load, uint32_t index, uint32_t len)
{
    ts_reply_begin(b, st, st == TS_OK ? NULL : msg);
    ts_put_u32(b, load);
    ts_put_u32(b, index);
    if (st == TS_OK) {
        ts_put_u32(b, len);
    }
}


long
peer_msg_data_head_len(const uint8_t *p, size_t got, uint32_t flen)
{
    uint16_t  st, mlen;
    size_t    need;

    if (flen < PEER_MSG_HEAD_MIN_B) {
        return -1;
    }
    if (got < PEER_MSG_HEAD_MIN_B) {
        return PEER_MSG_HEAD_MIN_B;
    }
    st = (uint16_t) (p[0] << 8 | p[1]);
    mlen = (uint16_t) (p[2] << 8 | p[3]);
    if (st > TS_ERR_INTERNAL || mlen > TS_STR_MAX_B) {
        return -1;
    }
    need = 4 + (size_t) mlen + 8 + (st == TS_OK ? 4 : 0);
    if (need > flen) {
        return -1;
    }
    return (long) need;
}


int
peer_msg_data_decode(const uint8_t *p, size_t n, uint32_t flen,
                     peer_msg_data_t *d)
{
    ts_rbuf_t  rb;
    long       hl;

    memset(d, 0, sizeof(*d));
    hl = peer_msg_data_head_len(p, n, flen);
    if (hl < (long) PEER_MSG_HEAD_MIN_B || (size_t) hl != n) {
        goto bad;
    }
    ts_rbuf_init(&rb, p, n);
    if (peer_msg_head(&rb, &d->status, d->msg, sizeof(d->msg)) != 0) {
        goto bad;
    }
    d->load = ts_get_u32(&rb);
    d->index = ts_get_u32(&rb);
    if (d->status == TS_OK) {
        d->len = ts_get_u32(&rb);
    }
    if (ts_rbuf_end(&rb) != 0) {
        goto bad;
    }
    if (d->status != TS_OK ? n != flen
                           : (d->len > TS_CHUNK_B
                              || (uint64_t) n + d->len != flen))
    {
        goto bad;
    }
    d->head_len = (uint32_t) n;
    return 0;

bad:
    memset(d, 0, sizeof(*d));
    return -1;
}


int
peer_msg_is_have(const ts_frame_hdr_t *h)
{
    return h->type == TS_MSG_PEER_HAVE;
}


int
peer_msg_have_hdr_check(const ts_frame_hdr_t *h)
{
    return h->type == TS_MSG_PEER_HAVE && h->flags == 0 && h->reqid == 0
           && h->len > 0 && h->len <= PEER_MSG_HAVE_MAX_B ? 0 : -1;
}


void
peer_msg_have_encode(ts_wbuf_t *b, const char *group, const char *name,
                     const uint32_t *idx, uint32_t n)
{
    uint32_t i;

    if (n == 0 || n > TS_PEER_HAVE_MAX_N) {
        b->err = 1;
        return;
    }
    ts_put_str(b, group);
    ts_put_str(b, name);
    ts_put_u32(b, n);
    for (i = 0; i < n; i++) {
        ts_put_u32(b, idx[i]);
    }
}


int
peer_msg_have_decode(const uint8_t *p, size_t n, peer_msg_have_t *out)
{
    ts_rbuf_t  rb;
    uint32_t   i;

    memset(out, 0, sizeof(*out));
    if (n > PEER_MSG_HAVE_MAX_B) {
        return -1;
    }
    ts_rbuf_init(&rb, p, n);
    if (ts_get_str(&rb, out->group, sizeof(out->group)) != 0
        || ts_get_str(&rb, out->name, sizeof(out->name)) != 0)
    {
        goto bad;
    }
    out->n = ts_get_u32(&rb);
    if (out->n == 0 || out->n > TS_PEER_HAVE_MAX_N) {
        goto bad;
    }
    for (i = 0; i < out->n; i++) {
        out->idx[i] = ts_get_u32(&rb);
        if (out->idx[i] >= TS_FILE_MAX_CHUNKS_N) {
            goto bad;
        }
    }
    if (peer_msg_tail_ok(&rb, out->group, out->name)) {
        return 0;
    }

bad:
    memset(out, 0, sizeof(*out));
    return -1;
}
