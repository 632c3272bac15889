/*
 * dl_link.c -- the downloader's links to peers: connect, TLS handshake,
 * output queue and pipeline, and the PEER_AUTH tickets sent on them.
 *
 * Purpose: one persistent link per peer identity (address, the
 * certificate fingerprint the tracker listed for it), shared by every
 * download from that peer.  The connect is non-blocking: the socket waits
 * in the epoll set for EPOLLOUT until TS_NODE_CONNECT_MS and is not used
 * before it is up.  Every link is TLS (TS_TLS_PEER_CLIENT with our node
 * certificate) and the handshake fails unless the peer presents exactly
 * the listed certificate; a failure is that source failing (logged with
 * the address, backoff).  The handshake is driven through the epoll loop
 * like the connect before it, with a TS_TLS_HANDSHAKE_MS deadline.
 * Before the first MAP/GET of a download on a link, and again whenever the
 * agent renewed the download's ticket (node_dl_sh_t ticket_gen), PEER_AUTH
 * carries the ticket, pipelined.  A peer that refuses the ticket gets no
 * MAP/GET of that download until the next ticket; "no valid ticket"
 * (TS_ERR_PERM) to a MAP/GET re-sends it after TS_DL_PAUSED_RETRY_MS.
 * Requests are encoded by workers/peer_msg.h.
 *
 * Locking: none; links belong to one worker.  Closing a link releases the
 * chunk and map claims of its pending requests (ts_claim, by owner).
 *
 * Crash behaviour: a killed worker's links die with it; its claims and
 * in-flight counts are undone by node_reclaim() (see dl_worker.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_log.h"
#include "dl_int.h"

/* 1 if source src is the peer of link k: same address and identity */
int
dl_link_is_src(const node_src_sh_t *src, const dl_link_t *k)
{
    return strncmp(src->addr, k->addr, sizeof(src->addr)) == 0
           && memcmp(src->fp, k->fp, TS_FP_B) == 0;
}

void
dl_link_backoff(dl_t *w, const dl_link_t *k, int64_t until)
{
    int i, s;

    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        if (!w->loc[i].active) {
            continue;
        }
        for (s = 0; s < TS_NODE_SOURCES_N; s++) {
            node_src_sh_t *src = &w->dls[i].src[s];

            if (atomic_load(&src->state) != NODE_SRC_FREE
                && dl_link_is_src(src, k))
            {
                atomic_fetch_add(&src->errors, 1);
                atomic_store(&src->retry_after_ms, until);
            }
        }
    }
}

/* 1 if k's peer is a live source of an active download that peer
 * affinity gives to this worker (dl_pick_owned). */
int
dl_link_wanted(const dl_t *w, const dl_link_t *k)
{
    int i, s;

    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        if (!w->loc[i].active) {
            continue;
        }
        for (s = 0; s < TS_NODE_SOURCES_N; s++) {
            const node_src_sh_t *src = &w->dls[i].src[s];

            if (atomic_load(&src->state) == NODE_SRC_LIVE
                && dl_link_is_src(src, k) && dl_pick_owned(w, i, s))
            {
                return 1;
            }
        }
    }
    return 0;
}

void
dl_link_release(dl_t *w, dl_req_t *r)
{
    node_dl_sh_t *d = &w->dls[r->dl];

    if (r->kind == REQ_AUTH) {
        return;                 /* nothing claimed, nothing counted */
    }
    if (r->kind == REQ_GET && r->as > 0) {
        dl_blk_release(w, r);   /* the assembly may ask it again */
    }
    if (atomic_load(&d->id) == r->dl_id) {
        if (r->kind == REQ_GET) {
            if (!r->dup) {
                ts_claim_release(&node_dl_claims(w->shm, r->dl)[r->chunk],
                                 w->me);
            }
        } else {
            ts_claim_release(&d->src[r->src].map_owner, w->me);
        }
    }
    if (r->kind == REQ_GET) {
        dl_local_inflight_sub(w, r);
    }
}

/* Closes the connection, frees its claims; error = back off the peer.
 * why NULL: the caller has logged already. */
void
dl_link_close(dl_t *w, dl_link_t *k, int error, const char *why)
{
    int64_t until;

    while (k->qn > 0) {
        dl_link_release(w, &k->q[k->qhead]);
        k->qhead = (k->qhead + 1) % DL_LINK_QUEUE_N;
        k->qn--;
    }
    k->qhead = 0;
    k->nauth = 0;
    k->hs = 0;
    dl_have_link_closed(w, k);
    /* the next link is a new TLS session: the peer knows no ticket */
    memset(k->auth, 0, sizeof(k->auth));
    if (k->c != NULL) {
        ts_ev_del(w->ev, &k->io);
        ts_conn_free(k->c);
        k->c = NULL;
        k->fd = -1;
    } else if (k->fd >= 0) {
        /* still connecting: a bare socket */
        ts_ev_del(w->ev, &k->io);
        close(k->fd);
        k->fd = -1;
    }
    k->connecting = 0;
    ts_wbuf_reset(&k->out);
    k->woff = 0;
    k->want_out = 0;
    k->rate_wait = 0;
    dl_rate_drop(w, k);
    k->rx = RX_HDR;
    k->got = 0;
    k->closed_ms = ts_now_ms();
    if (error) {
        k->errors++;
        until = TS_DL_BACKOFF_MIN_MS << (k->errors < 5 ? k->errors - 1 : 4);
        if (until > TS_DL_BACKOFF_MAX_MS) {
            until = TS_DL_BACKOFF_MAX_MS;
        }
        if (k->penalty_ms > 0) {
            until = k->penalty_ms;
            k->penalty_ms = 0;
        }
        k->retry_at_ms = ts_now_ms() + until;
        dl_link_backoff(w, k, k->retry_at_ms);
        /* the first failure is news; a peer that stays away is not */
        if (why != NULL) {
            ts_log(k->errors == 1 ? TS_LOG_WARN : TS_LOG_DEBUG,
                   "peer %s: %s; retry in %lld ms", k->addr, why,
                   (long long) until);
        }
    }
}

/* Frees a closed link and its buffers. */
void
dl_link_free(dl_link_t *k)
{
    ts_wbuf_free(&k->out);
    free(k->small);
    free(k->data);
    free(k);
}

/* The link to (addr, fp): one per peer identity, shared by every
 * download from it. */
static dl_link_t *
dl_link_find(dl_t *w, const char *addr, const uint8_t fp[TS_FP_B],
             int create)
{
    int        i, freei = -1;
    dl_link_t *k;

    for (i = 0; i < TS_DL_LINKS_N; i++) {
        if (w->conns[i] == NULL) {
            if (freei < 0) {
                freei = i;
            }
            continue;
        }
        if (strcmp(w->conns[i]->addr, addr) == 0
            && memcmp(w->conns[i]->fp, fp, TS_FP_B) == 0)
        {
            return w->conns[i];
        }
    }
    if (!create || freei < 0) {
        return NULL;
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL) {
        return NULL;
    }
    k->small = malloc(DL_SMALL_MAX_B);
    if (k->small == NULL) {
        free(k);
        return NULL;
    }
    snprintf(k->addr, sizeof(k->addr), "%s", addr);
    memcpy(k->fp, fp, TS_FP_B);
    k->fd = -1;
    k->closed_ms = ts_now_ms();
    ts_wbuf_init(&k->out);
    w->conns[freei] = k;
    return k;
}

/* Starts a non-blocking connect to ip:port: the socket goes into the
 * epoll set for EPOLLOUT and k->connecting is set; dl_link_connected()
 * finishes it, dl_loop_timeouts() enforces TS_NODE_CONNECT_MS.  0 or -1. */
static int
dl_link_start(dl_t *w, dl_link_t *k, const char *ip, uint16_t port)
{
    struct sockaddr_storage  ss;
    struct sockaddr_in      *s4 = (struct sockaddr_in *) &ss;
    struct sockaddr_in6     *s6 = (struct sockaddr_in6 *) &ss;
    socklen_t                sl;
    int                      fd;

    memset(&ss, 0, sizeof(ss));
    if (port != 0 && inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        sl = sizeof(*s4);
    } else if (port != 0 && inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        sl = sizeof(*s6);
    } else {
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    /* 0 (rare, loopback) is finished by EPOLLOUT like EINPROGRESS */
    if (connect(fd, (struct sockaddr *) &ss, sl) < 0
        && errno != EINPROGRESS && errno != EINTR)
    {
        close(fd);
        return -1;
    }
    if (ts_ev_add(w->ev, &k->io, fd, EPOLLOUT, dl_loop_io, w) != 0) {
        ts_err("epoll_ctl() failed: %s", strerror(errno));
        close(fd);
        return -1;
    }
    k->fd = fd;
    k->connecting = 1;
    k->connect_until_ms = ts_now_ms() + TS_NODE_CONNECT_MS;
    return 0;
}

/* 1 if fp is all zero (no identity known) */
static int
dl_link_fp_zero(const uint8_t fp[TS_FP_B])
{
    int i;

    for (i = 0; i < TS_FP_B; i++) {
        if (fp[i] != 0) {
            return 0;
        }
    }
    return 1;
}

void
dl_link_events(dl_t *w, dl_link_t *k, uint32_t events)
{
    if (ts_ev_mod(w->ev, &k->io, events) != 0) {
        ts_err("epoll_ctl() failed: %s", strerror(errno));
    }
}

/* EPOLLOUT/ERR/HUP on a connecting k: TCP is up (the TLS handshake
 * starts, driven by dl_recv_input through the epoll loop, deadline
 * TS_TLS_HANDSHAKE_MS) or failed (closed, backoff). */
void
dl_link_connected(dl_t *w, dl_link_t *k)
{
    socklen_t          el;
    int                soerr = 0, one = 1, fd = k->fd;

    el = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) < 0
        || soerr != 0
        || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
    {
        dl_link_close(w, k, 1, "connect failed");
        return;
    }
    k->connecting = 0;
    /* the peer must prove the identity the tracker listed for it (a TLS
     * build without a listed identity never gets this far) */
    k->c = ts_conn_new_tls(fd, w->tls, 0, ts_tls_enabled() ? k->fp : NULL);
    if (k->c == NULL) {
        /* fd closed by ts_conn_new_tls (and so out of the epoll set;
         * the loop forgets it too) */
        ts_ev_del(w->ev, &k->io);
        k->fd = -1;
        dl_link_close(w, k, 1, "out of memory");
        return;
    }
    k->hs = 1;
    dl_win_reset(k);
    k->want_out = 0;
    k->rate_wait = 0;
    dl_rate_drop(w, k);
    k->rx = RX_HDR;
    k->got = 0;
    k->last_rx_ms = ts_now_ms();
    k->connect_until_ms = k->last_rx_ms + TS_TLS_HANDSHAKE_MS;
    (void) dl_recv_input(w, k);
}

/* The handshake of k finished: the link carries requests from now on. */
void
dl_link_hs_done(dl_t *w, dl_link_t *k)
{
    k->hs = 0;
    k->hs_warned = 0;
    atomic_fetch_add(&w->stats->tls_ok[1], 1);
    k->want_out = 0;
    k->last_rx_ms = ts_now_ms();
    dl_link_events(w, k, EPOLLIN);
    w->need = 1;
}

/* A failed handshake (errno from ts_conn_read): that source failed;
 * logged with the address and the reason, then backoff as for any
 * failure.  The first failure of a streak is a warning. */
void
dl_link_hs_fail(dl_t *w, dl_link_t *k, int err)
{
    char why[256];

    if (err == EPERM) {
        snprintf(why, sizeof(why), "refused: its certificate is not the "
                 "identity the tracker listed for it");
    } else if (err == ECONNRESET || err == EPIPE) {
        snprintf(why, sizeof(why), "connection reset during the TLS "
                 "handshake");
    } else {
        snprintf(why, sizeof(why), "TLS handshake failed (%s%s%s)",
                 strerror(err), ts_tls_last_error()[0] ? ": " : "",
                 ts_tls_last_error());
    }
    ts_log(k->hs_warned ? TS_LOG_DEBUG : TS_LOG_WARN, "peer %s: %s",
           k->addr, why);
    k->hs_warned = 1;
    atomic_fetch_add(&w->stats->tls_fail[1], 1);
    dl_link_close(w, k, 1, NULL);
}

/* A connected conn (TLS up) to source src with room in its pipeline,
 * or NULL (in backoff, connecting, handshaking, failed, pipeline full). */
dl_link_t *
dl_link_get(dl_t *w, const node_src_sh_t *src)
{
    dl_link_t          *k;
    char                ip[64], addr[64];
    uint8_t             fp[TS_FP_B];
    uint16_t            port;
    uint32_t            nb;

    /* addr and fp are written while the source entry is FREE */
    memcpy(addr, src->addr, sizeof(addr));
    addr[sizeof(addr) - 1] = '\0';
    memcpy(fp, src->fp, TS_FP_B);
    k = dl_link_find(w, addr, fp, 1);
    if (k == NULL) {
        return NULL;
    }
    if (k->c != NULL) {
        /* room for a request and the PEER_AUTH that may precede it; the
         * window counts chunks' worth: the blocks of a chunk as one */
        nb = dl_blk_queued(k);
        return !k->hs && (uint32_t) (k->qn - k->nauth) - nb
                         + (nb + DL_BLK_MAX_N - 1) / DL_BLK_MAX_N < k->win
               && k->qn + 2 <= DL_LINK_QUEUE_N ? k : NULL;
    }
    if (k->connecting || ts_now_ms() < k->retry_at_ms) {
        return NULL;
    }
    if (ts_tls_enabled() && dl_link_fp_zero(fp)) {
        /* no identity to check it against: never trusted */
        if (!k->hs_warned) {
            ts_warn("peer %s: refused: the tracker listed no certificate "
                    "fingerprint for it", addr);
            k->hs_warned = 1;
        }
        k->errors = 4;
        dl_link_close(w, k, 1, NULL);
        return NULL;
    }
    if (ts_parse_hostport(addr, ip, sizeof(ip), &port) != 0) {
        k->retry_at_ms = ts_now_ms() + TS_DL_BACKOFF_MAX_MS;
        return NULL;
    }
    if (dl_link_start(w, k, ip, port) != 0) {
        dl_link_close(w, k, 1, "connect failed");
    }
    return NULL;
}

static void
dl_link_want_out(dl_t *w, dl_link_t *k, int on)
{
    if (k->want_out == on || k->c == NULL || k->hs) {
        return;
    }
    /* no EPOLLIN while the download cap holds k back (dl_rate.c) */
    (void) ts_ev_mod(w->ev, &k->io, (k->rate_wait ? 0 : EPOLLIN)
                                    | (on ? EPOLLOUT : 0));
    k->want_out = on;
}

int
dl_link_flush(dl_t *w, dl_link_t *k)
{
    ssize_t n;

    while (k->woff < k->out.len) {
        n = ts_conn_write(k->c, k->out.data + k->woff, k->out.len - k->woff);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                /* TLS may need to read first: EPOLLIN alone then, and
                 * the loop retries the flush on any event of k */
                dl_link_want_out(w, k, ts_conn_want(k->c) != 1);
                return 0;
            }
            return -1;
        }
        k->woff += (size_t) n;
    }
    ts_wbuf_reset(&k->out);
    k->woff = 0;
    dl_link_want_out(w, k, 0);
    return 0;
}

/* The peer-side authorization state of download i on link k (reset when
 * the download entry was reused). */
dl_auth_t *
dl_link_auth(dl_link_t *k, int i, uint32_t id)
{
    dl_auth_t *a = &k->auth[i];

    if (a->dl_id != id) {
        memset(a, 0, sizeof(*a));
        a->dl_id = id;
    }
    return a;
}

/* 1 if MAP/GET of download i may go on link k now: not while the peer
 * refused the current ticket (a new one comes with the agent's next
 * renewal: no hammering) or within a hold after "no valid ticket". */
int
dl_link_auth_ok(dl_t *w, dl_link_t *k, int i, int64_t now)
{
    dl_local_t *l = &w->loc[i];
    dl_auth_t  *a = dl_link_auth(k, i, l->id);

    if (l->tgen == 0 && ts_tls_enabled()) {
        return 0;               /* no ticket yet: the agent brings one */
    }
    if (l->tgen != 0 && a->bad_gen == l->tgen) {
        return 0;
    }
    return now >= a->hold_ms;
}

/* Appends one frame to k's output; the pipeline entry r (copied) waits
 * for its reply.  0, or -1 with nothing added. */
static int
dl_link_queue(dl_t *w, dl_link_t *k, uint8_t type, const dl_req_t *r)
{
    ts_frame_hdr_t  h;
    uint8_t         hb[TS_FRAME_HDR_B];
    dl_req_t       *q;
    size_t          len0;

    if (w->pl.err || k->qn >= DL_LINK_QUEUE_N) {
        return -1;
    }
    h.type = type;
    /* a map request asks for the file's new chunks pushed (PEER_HAVE) */
    h.flags = type == TS_MSG_PEER_MAP ? TS_FF_HAVE : 0;
    h.len = (uint32_t) w->pl.len;
    h.reqid = ++w->reqid;
    ts_frame_hdr_encode(hb, &h);
    len0 = k->out.len;
    ts_put_raw(&k->out, hb, sizeof(hb));
    ts_put_raw(&k->out, w->pl.data, w->pl.len);
    if (k->out.err) {
        /* no half frame may stay queued: drop what this call added */
        k->out.len = len0;
        k->out.err = 0;
        return -1;
    }
    if (k->qn == 0) {
        k->last_rx_ms = ts_now_ms();
        k->start_us = ts_now_us();      /* the head reply starts now */
    }
    q = &k->q[(k->qhead + k->qn) % DL_LINK_QUEUE_N];
    *q = *r;
    q->reqid = h.reqid;
    q->sent_us = ts_now_us();
    k->qn++;
    if (r->kind == REQ_AUTH) {
        k->nauth++;
    }
    return 0;
}

/* Queues a request frame on k; r is copied into the pipeline.  Before the
 * first MAP/GET of a download on the link, and whenever the download's
 * ticket was renewed since, PEER_AUTH with the ticket goes first
 * (pipelined: answered in order, no need to wait for it). */
int
dl_link_send(dl_t *w, dl_link_t *k, uint8_t type, const dl_req_t *r)
{
    dl_local_t     *l = &w->loc[r->dl];
    dl_auth_t      *a = dl_link_auth(k, r->dl, l->id);
    dl_req_t        ar;

    if (l->tlen > 0 && a->sent_gen != l->tgen) {
        ts_wbuf_reset(&w->pl);
        peer_msg_auth_encode(&w->pl, l->ticket, l->tlen);
        ar = (dl_req_t) { .kind = REQ_AUTH, .dl = r->dl, .dl_id = l->id,
                          .src = r->src, .gen = l->tgen };
        if (dl_link_queue(w, k, TS_MSG_PEER_AUTH, &ar) != 0) {
            return -1;
        }
        a->sent_gen = l->tgen;
    }
    ts_wbuf_reset(&w->pl);
    if (type == TS_MSG_PEER_GET && r->blk > 0) {
        peer_msg_range_encode(&w->pl, l->group, l->name, r->chunk, r->off,
                              r->len);
    } else {
        peer_msg_req_encode(&w->pl, type, l->group, l->name, r->chunk);
    }
    if (dl_link_queue(w, k, type, r) != 0) {
        /* a PEER_AUTH queued above stays: it is harmless and answered */
        if (dl_link_flush(w, k) != 0) {
            dl_link_close(w, k, 1, "write failed");
        }
        return -1;
    }
    if (dl_link_flush(w, k) != 0) {
        dl_link_close(w, k, 1, "write failed");
        return 1;   /* queued and released again: not an error to undo */
    }
    return 0;
}
