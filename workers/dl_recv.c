/*
 * dl_recv.c -- the downloader's receive path: reply framing on a link,
 * the MAP and AUTH replies, and each chunk's SHA1 check, pwrite into the
 * .part and done bit.
 *
 * Purpose: reads what a link's socket has (driving the TLS handshake
 * first while it runs), frames the replies in request order (a reply out
 * of order or malformed closes the link), and hands each whole reply to
 * its handler.  Every answer is decoded by workers/peer_msg.h, the codec
 * the fuzz target tests/fuzz/fuzz_peer.c exercises.  A chunk is received
 * into the link's buffer, verified against its SHA1, written with
 * pwrite() and only then marked done; the cache-hot buffer then feeds the
 * whole-file hash if the chunk is at the frontier (dl_frontier.c).  This
 * is the per-chunk path: no copy, no allocation (the link's chunk buffer
 * is allocated once), no lock.
 *
 * Locking: none taken.  The done bit is set by fetch_or, counters by
 * fetch_add; a chunk counts only while its claim is still ours.
 *
 * Crash behaviour: a chunk is marked done only after its hash matched and
 * pwrite() returned, so a chunk half written by a killed worker is simply
 * fetched again (its claim is reclaimed); the final whole-file SHA1
 * catches anything else.
 */
#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_log.h"
#include "dl_int.h"

/* The reply to a PEER_AUTH: accepted, or the peer refused this ticket
 * (forged, expired, another identity's): no MAP/GET of the download on
 * this link until the agent brings a new ticket. */
static void
dl_recv_auth(dl_t *w, dl_link_t *k, const dl_req_t *r, const uint8_t *p,
             size_t n)
{
    node_dl_sh_t *d = &w->dls[r->dl];
    dl_local_t   *l = &w->loc[r->dl];
    dl_auth_t    *a;
    ts_status_t   st;
    char          msg[PEER_MSG_MSG_B];

    if (atomic_load(&d->id) != r->dl_id || !l->active || l->id != r->dl_id)
    {
        return;
    }
    a = dl_link_auth(k, r->dl, r->dl_id);
    if (peer_msg_status_decode(p, n, &st, msg, sizeof(msg)) != 0) {
        st = TS_ERR_BADREQ;
        snprintf(msg, sizeof(msg), "malformed reply");
    }
    if (st == TS_OK) {
        if (a->bad_gen == r->gen) {
            a->bad_gen = 0;
        }
        return;
    }
    if (st == TS_ERR_INTERNAL || st == TS_ERR_BUSY) {
        /* the peer's trouble, not the ticket's: send it again later */
        if (a->sent_gen == r->gen) {
            a->sent_gen = 0;
        }
        a->hold_ms = ts_now_ms() + TS_DL_PAUSED_RETRY_MS;
        return;
    }
    if (a->bad_gen != r->gen) {
        ts_warn("peer %s refused our ticket for %s/%s: %s", k->addr,
                l->group, l->name, msg[0] ? msg : ts_status_name(st));
    }
    a->bad_gen = r->gen;
    if (atomic_load(&d->ticket_gen) == r->gen) {
        atomic_store(&d->denied, 1);
    }
}

/* A MAP/GET answered TS_ERR_PERM ("no valid ticket"): the link holds no
 * live authorization for the download (its ticket expired there, or none
 * was sent).  The ticket goes again with the next request, after a
 * pause; a refused one waits for the next ticket (dl_link_auth_ok). */
static void
dl_recv_no_ticket(dl_t *w, dl_link_t *k, const dl_req_t *r)
{
    dl_local_t *l = &w->loc[r->dl];
    dl_auth_t  *a = dl_link_auth(k, r->dl, r->dl_id);

    if (a->sent_gen != 0 && a->bad_gen != a->sent_gen) {
        ts_debug("peer %s: no valid ticket for %s/%s on the link", k->addr,
                 l->group, l->name);
    }
    a->sent_gen = 0;
    a->hold_ms = ts_now_ms() + TS_DL_PAUSED_RETRY_MS;
    l->dirty = 1;
}

static void
dl_recv_map(dl_t *w, dl_link_t *k, const dl_req_t *r, const uint8_t *p,
            size_t n)
{
    node_dl_sh_t      *d = &w->dls[r->dl];
    dl_local_t        *l = &w->loc[r->dl];
    peer_msg_map_t     m;
    uint32_t           i;
    _Atomic uint64_t  *map;

    if (atomic_load(&d->id) != r->dl_id || !l->active) {
        return;
    }
    /* a malformed answer changes nothing (a long message is no reason to
     * drop the link: the decoder truncates it) */
    if (peer_msg_map_decode(p, n, &m) != 0) {
        ts_warn("peer %s: bad PEER_MAP reply", k->addr);
        return;
    }
    map = node_dl_map(w->shm, r->dl, r->src);
    if (m.status == TS_ERR_PERM) {
        /* no valid ticket on the link: its map is unknown, not empty */
        dl_recv_no_ticket(w, k, r);
        atomic_store(&d->src[r->src].map_ms, 0);
        return;
    }
    if (m.status == TS_ERR_AUTH || m.status == TS_ERR_INTERNAL
        || m.status == TS_ERR_BUSY)
    {
        /* paused (its user logged out) or short of resources: a passing
         * state, so back off and ask again; its map stays as it was */
        dl_link_backoff(w, k, ts_now_ms() + TS_DL_PAUSED_RETRY_MS);
        atomic_store(&d->src[r->src].map_ms, 0);
        return;
    }
    if (m.status != TS_OK) {
        /* the peer no longer has the file: nothing from it */
        for (i = 0; i < (l->nchunks + 63) / 64; i++) {
            atomic_store(&map[i], 0);
        }
        atomic_store(&d->src[r->src].map_ms, ts_now_ms());
        l->dirty = 1;
        return;
    }
    if (m.nchunks != l->nchunks) {
        ts_warn("peer %s: bad PEER_MAP reply", k->addr);
        return;
    }
    atomic_store(&d->src[r->src].load, m.load);
    for (i = 0; i < (m.nchunks + 63) / 64; i++) {
        atomic_store(&map[i], peer_msg_map_word(&m, i));
    }
    dl_have_map_reply(w, k, r);
    atomic_store(&d->src[r->src].map_ms, ts_now_ms());
    l->dirty = 1;
}

/*
 * How many of this node's downloader workers have requests at source k
 * of download i right now (at least 1).  A peer's uploader shares its
 * bandwidth among the links it serves, so one link's transfer rate times
 * the number of our links it is serving estimates what the peer gives us
 * in all; without that, a peer we keep busy looks slower than one we
 * barely use, and the least-loaded choice drifts to the busier peer.
 */
static uint32_t
dl_recv_links(const dl_t *w, int i, uint32_t k)
{
    uint32_t n = 0;
    int      s;

    for (s = 0; s < TS_SUP_WORKERS_MAX_N; s++) {
        _Atomic uint32_t *col = node_slot_inflight(w->shm, s, i);

        if (col != NULL && atomic_load(&col[k]) > 0) {
            n++;
        }
    }
    return n > 0 ? n : 1;
}

static void
dl_recv_rate(node_src_sh_t *src, uint32_t len, int64_t us, uint32_t links)
{
    uint64_t sample, old;

    if (us < 1) {
        us = 1;
    }
    sample = (uint64_t) len * 1000000ull * links / (uint64_t) us;
    old = atomic_load(&src->rate_bps);
    atomic_store(&src->rate_bps, old == 0 ? sample : (old * 7 + sample) / 8);
}

/* The status of a GET reply that is not OK (k->st): what it says of
 * the peer.  0 if the reply is OK (the caller goes on), 1 if handled. */
int
dl_recv_status(dl_t *w, dl_link_t *k, const dl_req_t *r)
{
    dl_local_t *l = &w->loc[r->dl];

    if (k->st == TS_OK) {
        return 0;
    }
    if (k->st == TS_ERR_PERM) {
        /* no valid ticket on the link: the peer may well hold the chunk */
        dl_recv_no_ticket(w, k, r);
        return 1;
    }
    if (k->st == TS_ERR_AUTH || k->st == TS_ERR_INTERNAL
        || k->st == TS_ERR_BUSY)
    {
        /* paused or out of resources: try it again later, keep its map */
        dl_link_backoff(w, k, ts_now_ms() + TS_DL_PAUSED_RETRY_MS);
        ts_debug("peer %s: chunk %u of %s: status %u, backing off", k->addr,
                 r->chunk, l->name, k->st);
        return 1;
    }
    /* the peer lacks it (or its share went stale): not from it */
    node_bit_clear(node_dl_map(w->shm, r->dl, r->src), r->chunk);
    l->dirty = 1;
    ts_debug("peer %s: chunk %u of %s: status %u", k->addr, r->chunk,
             l->name, k->st);
    return 1;
}

/* Source s of download i sent bytes of chunk c that failed SHA1: one
 * failure more (dropped at TS_NODE_SRC_FAILS_MAX_N), the chunk avoided
 * there. */
void
dl_recv_blame(dl_t *w, int i, int s, uint32_t c, const char *what)
{
    node_src_sh_t *src = &w->dls[i].src[s];
    dl_local_t    *l = &w->loc[i];
    uint32_t       f = atomic_fetch_add(&src->failures, 1) + 1;

    atomic_fetch_add(&w->stats->hash_failures, 1);
    l->avoid[c] = (uint8_t) (s + 1);
    ts_warn("peer %s: %s of chunk %u of %s failed SHA1 (%u bad)", src->addr,
            what, c, l->name, f);
    if (f >= TS_NODE_SRC_FAILS_MAX_N) {
        uint32_t live = NODE_SRC_LIVE;

        if (atomic_compare_exchange_strong(&src->state, &live,
                                           NODE_SRC_DROPPED))
        {
            ts_warn("peer %s dropped from %s/%s: %u bad chunks",
                    src->addr, l->group, l->name, f);
        }
        l->dirty = 1;
    }
}

/* Verified bytes (and chunks: 0 for a block) from source s of download
 * i: the node's and the source's counts and the per-peer table. */
void
dl_recv_count(dl_t *w, int i, int s, uint32_t chunks, uint32_t len)
{
    node_src_sh_t *src = &w->dls[i].src[s];

    atomic_fetch_add(&w->stats->bytes_down, len);
    atomic_fetch_add(&src->bytes, len);
    node_peer_count(w->shm, NODE_DIR_DOWN, src->addr, src->fp, chunks, len);
}

/* A GET reply of r->len bytes came on k: the source's rate and the
 * link's window follow. */
void
dl_recv_pace(dl_t *w, dl_link_t *k, const dl_req_t *r)
{
    dl_recv_rate(&w->dls[r->dl].src[r->src], r->len,
                 ts_now_us() - k->start_us, dl_recv_links(w, r->dl, r->src));
    dl_win_reply(k, r->len, ts_now_us() - (r->sent_us > k->start_us
                                           ? r->sent_us : k->start_us));
}

/* Chunk c of download i (id), len bytes in buf, verified: pwrite into
 * the .part, then its done bit and counts, credited to source s.  -1
 * when nothing was marked: the chunk was done already, the write failed
 * (the download failed) or, unless dup (no claim held), its claim is no
 * longer ours; 1 if this call set the done bit, 0 if a racer did. */
int
dl_recv_store(dl_t *w, int i, uint32_t id, uint32_t c, const uint8_t *buf,
              uint32_t len, int s, int dup)
{
    node_dl_sh_t     *d = &w->dls[i];
    dl_local_t       *l = &w->loc[i];
    uint64_t          off, old;
    size_t            put;
    ssize_t           n;
    int               fd;
    _Atomic uint64_t *done = node_dl_done(w->shm, i);

    if (node_bit_test(done, c)) {
        return -1;
    }
    fd = dl_local_part_fd(l);
    if (fd < 0) {
        dl_local_fail(w, i, NODE_DL_ACTIVE, dl_local_part_why(errno));
        return -1;
    }
    off = (uint64_t) c * TS_CHUNK_B;
    for (put = 0; put < len; put += (size_t) n) {
        n = pwrite(fd, buf + put, len - put, (off_t) (off + put));
        if (n < 0 && errno == EINTR) {
            n = 0;
            continue;
        }
        if (n <= 0) {
            ts_err("pwrite(\"%s\") failed: %s", l->part, strerror(errno));
            dl_local_fail(w, i, NODE_DL_ACTIVE,
                          "write to the .part file failed");
            return -1;
        }
    }
    dl_fh_wrote(l, fd, c);
    if (dup ? atomic_load(&d->id) != id
            : !dl_local_chunk_mine(w, i, id, c))
    {
        /* an endgame copy holds no claim: verified bytes are the same
         * whoever writes them, the done bit is set once */
        return -1;
    }
    atomic_store_explicit(&node_dl_srcof(w->shm, i)[c], (uint8_t) (s + 1),
                          memory_order_relaxed);
    old = atomic_fetch_or(&done[c >> 6], 1ull << (c & 63));
    if (old & (1ull << (c & 63))) {
        return 0;
    }
    node_dl_have_note(d, c);            /* pushed to who asked */
    atomic_fetch_add(&d->bytes_done, len);
    atomic_fetch_add(&d->chunks_done, 1);
    /* an endgame copy that lost the race by a hair is not counted */
    atomic_fetch_add(&w->stats->chunks_down, 1);
    atomic_fetch_add(&d->src[s].chunks, 1);
    return 1;
}

static void
dl_recv_chunk(dl_t *w, dl_link_t *k, const dl_req_t *r)
{
    node_dl_sh_t     *d = &w->dls[r->dl];
    dl_local_t       *l = &w->loc[r->dl];
    node_src_sh_t    *src = &d->src[r->src];
    uint8_t           md[20];

    if (atomic_load(&d->id) != r->dl_id || !l->active) {
        return;
    }
    atomic_store(&src->load, k->load);
    if (dl_recv_status(w, k, r)) {
        return;
    }
    atomic_store(&src->errors, 0);
    k->errors = 0;
    SHA1(k->data, r->len, md);
    if (memcmp(md, node_dl_hashes(w->shm, r->dl) + 20ull * r->chunk, 20)
        != 0)
    {
        dl_recv_blame(w, r->dl, r->src, r->chunk, "the whole");
        return;
    }
    if (dl_recv_store(w, r->dl, r->dl_id, r->chunk, k->data, r->len,
                      r->src, r->dup) < 0)
    {
        return;
    }
    dl_recv_count(w, r->dl, r->src, 1, r->len);
    dl_recv_pace(w, k, r);
    /* the chunk is cache-hot: if it is the frontier, hash it from here */
    dl_fh_advance(w, r->dl, k->data, r->chunk, TS_DL_FH_BATCH_N);
}

/* A whole reply has arrived for the head request. */
static void
dl_recv_done(dl_t *w, dl_link_t *k)
{
    dl_req_t r = k->q[k->qhead];

    k->qhead = (k->qhead + 1) % DL_LINK_QUEUE_N;
    k->qn--;
    if (r.kind == REQ_GET && r.as > 0) {
        dl_blk_recv(w, k, &r);      /* a block, or a chunk to assemble */
    } else if (r.kind == REQ_GET) {
        dl_recv_chunk(w, k, &r);
    } else if (r.kind == REQ_AUTH) {
        k->nauth--;
        dl_recv_auth(w, k, &r, k->small, k->fh.len);
    } else {
        dl_recv_map(w, k, &r, k->small, k->fh.len);
    }
    dl_link_release(w, &r);
    k->rx = RX_HDR;
    k->got = 0;
    k->start_us = ts_now_us();
}

/* Parses a PEER_DATA head in k->small[0..got) (peer_msg.h).  Returns
 * bytes still needed for the head (>0), 0 when complete, -1 on a protocol
 * error (a malformed head, another chunk or length than asked for). */
static int
dl_recv_head(dl_link_t *k)
{
    const dl_req_t  *r = &k->q[k->qhead];
    peer_msg_data_t  h;
    long             need;

    need = peer_msg_data_head_len(k->small, k->got, k->fh.len);
    if (need < 0) {
        return -1;
    }
    if (k->got < (size_t) need) {
        return (int) ((size_t) need - k->got);
    }
    /* a peer without ranges answers a ranged GET "malformed" with
     * index 0 (ts_proto.h) */
    if (peer_msg_data_decode(k->small, k->got, k->fh.len, &h) != 0
        || (h.index != r->chunk
            && !(r->blk > 0 && h.status == TS_ERR_BADREQ && h.index == 0))
        || (h.status == TS_OK && h.len != r->len))
    {
        return -1;
    }
    k->st = (uint16_t) h.status;
    k->load = h.load;
    k->index = h.index;
    return 0;
}

/* ts_conn_read() returned n <= 0 on k: EOF, a handshake failure, a
 * read error (k closed: -1) or nothing more for now (0). */
static int
dl_recv_eof(dl_t *w, dl_link_t *k, ssize_t n)
{
    char why[96];

    if (n == 0) {
        if (k->hs) {
            dl_link_hs_fail(w, k, ECONNRESET);
            return -1;
        }
        /* an idle link the peer closed is no fault of the peer */
        dl_link_close(w, k, k->qn > 0 || k->got > 0,
                      "connection closed by peer");
        return -1;
    }
    if (errno == EAGAIN || errno == EINTR) {
        if (k->hs) {
            /* wait for what the handshake wants next */
            dl_link_events(w, k, ts_conn_want(k->c) == 2 ? EPOLLOUT
                                                         : EPOLLIN);
        }
        return 0;
    }
    if (k->hs) {
        dl_link_hs_fail(w, k, errno);
        return -1;
    }
    if (k->qn == 0 && k->got == 0) {
        /* an idle link broken by a peer going away (TLS may say so as
         * an error, not EOF): no fault of the peer */
        ts_debug("peer %s: idle link closed (%s)", k->addr,
                 strerror(errno));
        dl_link_close(w, k, 0, NULL);
        return -1;
    }
    snprintf(why, sizeof(why), "read failed: %s", strerror(errno));
    dl_link_close(w, k, 1, why);
    return -1;
}

/* A whole frame header is in k->hdr: it must be the reply to the head
 * request; sets up what is read next.  0, or -1 after closing k. */
static int
dl_recv_frame(dl_t *w, dl_link_t *k)
{
    const dl_req_t *r;

    if (ts_frame_hdr_decode(k->hdr, &k->fh, PEER_MSG_REPLY_IN_MAX_B) == 0
        && peer_msg_is_have(&k->fh))
    {
        return dl_have_frame(w, k);     /* pushed, not a reply */
    }
    if (k->qn == 0
        || ts_frame_hdr_decode(k->hdr, &k->fh, PEER_MSG_REPLY_IN_MAX_B) != 0)
    {
        dl_link_close(w, k, 1, "unexpected or bad frame");
        return -1;
    }
    r = &k->q[k->qhead];
    if (k->fh.reqid != r->reqid
        || peer_msg_reply_hdr_check(&k->fh,
                                    r->kind == REQ_GET ? TS_MSG_PEER_GET
                                    : r->kind == REQ_AUTH ? TS_MSG_PEER_AUTH
                                    : TS_MSG_PEER_MAP) != 0)
    {
        dl_link_close(w, k, 1, "reply out of order");
        return -1;
    }
    k->got = 0;
    /* a round trip, or more when the request waited behind others */
    dl_win_rtt(k, ts_now_us() - r->sent_us);
    if (r->kind != REQ_GET) {
        k->rx = RX_BODY;
        k->need = k->fh.len;
        if (k->need == 0) {
            dl_recv_done(w, k);
        }
        return 0;
    }
    k->rx = RX_HEAD;
    k->need = k->fh.len < 4 ? k->fh.len : 4;
    if (k->need == 0) {
        dl_link_close(w, k, 1, "empty PEER_DATA");
        return -1;
    }
    return 0;
}

/* Reads what the socket has (driving the TLS handshake first while it
 * runs).  Reads until EAGAIN, so bytes TLS has already decrypted
 * (ts_conn_pending(), which epoll cannot see) are never left behind.
 * 0, or -1 after closing the connection. */
int
dl_recv_input(dl_t *w, dl_link_t *k)
{
    ssize_t  n;
    int      rc;
    uint8_t *dst;
    size_t   want;

    for ( ;; ) {
        switch (k->rx) {
        case RX_HDR:
            dst = k->hdr + k->got;
            want = TS_FRAME_HDR_B - k->got;
            break;
        case RX_HEAD:
        case RX_BODY:
        case RX_HAVE:
            dst = k->small + k->got;
            want = k->need;
            break;
        default:
            dst = k->data + k->got;
            want = k->need;
            break;
        }
        /* the node's download cap: read only what it granted */
        want = dl_rate_allow(w, k, want);
        if (want == 0) {
            return 0;
        }
        n = ts_conn_read(k->c, dst, want);
        if (k->hs && (n > 0 || ts_conn_ready(k->c))) {
            dl_link_hs_done(w, k);
        }
        if (n <= 0) {
            return dl_recv_eof(w, k, n);
        }
        dl_rate_got(w, k, (size_t) n);
        k->last_rx_ms = ts_now_ms();
        k->got += (size_t) n;
        if (k->rx != RX_HDR) {
            k->need -= (size_t) n;
        }
        if (k->rx == RX_HDR) {
            if (k->got >= TS_FRAME_HDR_B && dl_recv_frame(w, k) != 0) {
                return -1;
            }
            continue;
        }
        if (k->need > 0) {
            continue;
        }
        if (k->rx == RX_HAVE) {
            if (dl_have_recv(w, k) != 0) {
                return -1;
            }
            continue;
        }
        if (k->rx == RX_BODY || k->rx == RX_DATA) {
            dl_recv_done(w, k);
            continue;
        }
        /* RX_HEAD */
        rc = dl_recv_head(k);
        if (rc < 0) {
            dl_link_close(w, k, 1, "bad PEER_DATA");
            return -1;
        }
        if (rc > 0) {
            k->need = (size_t) rc;
            continue;
        }
        if (k->st != TS_OK) {
            dl_recv_done(w, k);
            continue;
        }
        if (k->data == NULL) {
            k->data = malloc(TS_CHUNK_B);
            if (k->data == NULL) {
                dl_link_close(w, k, 1, "out of memory");
                return -1;
            }
        }
        k->rx = RX_DATA;
        k->got = 0;
        k->need = k->q[k->qhead].len;
        if (k->need == 0) {
            dl_recv_done(w, k);
        }
    }
}
