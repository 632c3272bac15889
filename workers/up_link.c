/*
 * up_link.c -- the uploader's links: accept with its caps, the TLS
 * handshake, epoll interest, reading and parsing requests, and PEER_AUTH.
 *
 * Purpose: every accepted link is TLS (TS_TLS_PEER_SERVER with the node's
 * certificate; the peer must present a certificate, its SHA-256
 * fingerprint is the peer's identity).  The handshake is driven by the
 * same non-blocking reads, epoll interest follows ts_conn_want(), and it
 * must finish within TS_TLS_HANDSHAKE_MS.  Requests are read into a fixed
 * per-link buffer (the header's length is checked against
 * TS_UP_REQ_MAX_B before a byte of payload is taken, nothing is allocated
 * per frame) and decoded by workers/peer_msg.h (the codec
 * tests/fuzz/fuzz_peer.c exercises).  MAP/GET are answered only for a
 * (group, name) the link holds an unexpired authorization for (up_auth.h),
 * which a PEER_AUTH with a tracker-signed ticket naming the link's
 * fingerprint grants; otherwise TS_ERR_PERM "no valid ticket".  A bad
 * ticket gets TS_ERR_AUTH with the verifier's reason and costs nothing
 * else, up to TS_UP_BAD_AUTH_N of them on a link (then the link closes:
 * each costs a signature check).  A link that holds no valid ticket --
 * none shown yet, or the last one expired -- counts as unauthenticated,
 * and is closed when it has been so for TS_NODE_UNAUTH_MS.  Authorization
 * is checked both when a request is parsed (so AUTH/MAP/GET take effect
 * strictly in stream order) and when it is answered (up_serve.c: a ticket
 * that expired while the request was queued no longer counts).  Caps at
 * accept: TS_NODE_CONNS_ADDR_N links from one address and
 * TS_NODE_UNAUTH_MAX_N links without a ticket yet -- counted per worker
 * (there is no shared per-address table in the node segment), so the
 * node-wide limits are U times these.  Over a cap the new link is closed
 * at once.
 *
 * Locking: none; links belong to one worker.  Crash behaviour: a killed
 * worker's links die with it (see up_worker.c).
 */
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
#include "up_int.h"


void
up_link_events(up_t *u, up_link_t *k, int idx)
{
    uint32_t            want = 0;

    if (!k->ready) {
        /* the handshake says which way it is blocked */
        want = ts_conn_want(k->c) == 2 ? EPOLLOUT : EPOLLIN;
    } else {
        /* stop reading while the queue is full: TCP pushes back on the
         * peer */
        if (k->q_n < TS_UP_QUEUE_N) {
            want |= EPOLLIN;
        }
        /* a link waiting for upload tokens sleeps on the rate timer */
        if (k->out_off < k->out.len || (k->file_left > 0 && !k->rate_wait))
        {
            want |= EPOLLOUT;
            want |= k->wr_want;     /* TLS: a write that must read first */
        }
        want |= k->rd_want;         /* TLS: a read that must write first */
    }
    (void) ts_ev_mod(u->ev, &k->io, want);
}


static void
up_link_accept_ev(ts_ev_t *ev, ts_ev_io_t *io, uint32_t events)
{
    up_link_accept(io->data);
}


void
up_link_listen(up_t *u, int on)
{
    if (on == u->listening) {
        return;
    }
    if (on) {
        if (ts_ev_add(u->ev, &u->listen_io, u->listen_fd,
                      EPOLLIN | EPOLLEXCLUSIVE, up_link_accept_ev, u) != 0)
        {
            ts_err("epoll_ctl(listen) failed: %s", strerror(errno));
            return;
        }
    } else {
        ts_ev_del(u->ev, &u->listen_io);
    }
    u->listening = on;
}


void
up_link_close(up_t *u, int idx, const char *why)
{
    up_link_t  *k = u->conns[idx];

    if (k == NULL) {
        return;
    }
    if (why != NULL) {
        ts_debug("peer link %d closed: %s", k->fd, why);
    }
    if (!k->authed) {
        u->nunauth--;
    }
    if (!k->ready) {
        atomic_fetch_add(&u->st->tls_fail[0], 1);
    }
    /* requests never answered no longer count as load */
    up_serve_queued(u, -k->q_n);
    if (k->active) {
        up_serve_active(u, -1);
    }
    if (k->file_fd >= 0) {
        close(k->file_fd);
    }
    up_rate_drop(u, k);
    ts_ev_del(u->ev, &k->io);
    ts_conn_free(k->c);
    ts_wbuf_free(&k->out);
    free(k);
    u->conns[idx] = NULL;
    u->nconns--;
    if (u->nconns < TS_NODE_PEER_CONNS_N) {
        up_link_listen(u, 1);
    }
}


static void
up_link_addr_of(const struct sockaddr_storage *ss, up_addr_t *a)
{
    const struct sockaddr_in   *s4 = (const struct sockaddr_in *) ss;
    const struct sockaddr_in6  *s6 = (const struct sockaddr_in6 *) ss;

    memset(a, 0, sizeof(*a));
    if (ss->ss_family == AF_INET6) {
        memcpy(a->b, &s6->sin6_addr, 16);
    } else if (ss->ss_family == AF_INET) {
        a->b[10] = 0xff;
        a->b[11] = 0xff;
        memcpy(a->b + 12, &s4->sin_addr, 4);
    }
}


/* Links of this worker from address a. */
static int
up_link_addr_count(const up_t *u, const up_addr_t *a)
{
    int  i, n = 0;

    for (i = 0; i < TS_NODE_PEER_CONNS_N; i++) {
        if (u->conns[i] != NULL
            && memcmp(u->conns[i]->addr.b, a->b, sizeof(a->b)) == 0)
        {
            n++;
        }
    }
    return n;
}


void
up_link_accept(up_t *u)
{
    struct sockaddr_storage  ss;
    socklen_t                sl;
    up_addr_t                a;
    up_link_t               *k;
    int                      fd, i, n, one = 1;

    for (n = 0; n < TS_UP_ACCEPT_BURST; n++) {
        if (u->nconns >= TS_NODE_PEER_CONNS_N) {
            up_link_listen(u, 0);
            return;
        }
        sl = sizeof(ss);
        memset(&ss, 0, sizeof(ss));
        fd = accept4(u->listen_fd, (struct sockaddr *) &ss, &sl,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
                && errno != ECONNABORTED)
            {
                ts_warn("accept4() failed: %s", strerror(errno));
            }
            return;
        }
        /* caps: close at once (nothing was read, nothing is owed) */
        up_link_addr_of(&ss, &a);
        if (u->nunauth >= TS_NODE_UNAUTH_MAX_N) {
            ts_debug("peer link refused: %d links without a ticket",
                     u->nunauth);
            close(fd);
            continue;
        }
        if (up_link_addr_count(u, &a) >= TS_NODE_CONNS_ADDR_N) {
            ts_debug("peer link refused: %d links from that address",
                     TS_NODE_CONNS_ADDR_N);
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        for (i = 0; i < TS_NODE_PEER_CONNS_N; i++) {
            if (u->conns[i] == NULL) {
                break;
            }
        }
        k = calloc(1, sizeof(*k));
        if (k == NULL) {
            ts_err("out of memory for a peer link");
            close(fd);
            return;
        }
        k->c = ts_conn_new_tls(fd, u->tls, 0, NULL);
        if (k->c == NULL) {
            ts_err("out of memory for a peer link");
            free(k);
            return;
        }
        k->fd = fd;
        k->file_fd = -1;
        k->share_idx = -1;
        k->fair_share = -1;
        k->fair_slot = -1;
        k->dl_idx = -1;
        k->addr = a;
        k->born_ms = ts_now_ms();
        k->last_ms = k->born_ms;
        k->unauth_ms = k->born_ms;
        up_auth_init(&k->auth);
        ts_wbuf_init(&k->out);

        k->idx = i;
        if (ts_ev_add(u->ev, &k->io, fd, EPOLLIN, up_loop_io, u) != 0) {
            ts_err("epoll_ctl(peer) failed: %s", strerror(errno));
            ts_conn_free(k->c);
            free(k);
            return;
        }
        u->conns[i] = k;
        u->nconns++;
        u->nunauth++;
    }
}


/* After a failed ts_conn_read/write/sendfile: 0 if it would only block
 * (*want gets the other event a TLS link may need first: a read that
 * must write, a write that must read), -1 if the link is broken. */
int
up_link_again(up_link_t *k, uint32_t *want, int other)
{
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
        return -1;
    }
    *want = 0;
    if (ts_conn_is_tls(k->c) && ts_conn_want(k->c) == other) {
        *want = other == 1 ? EPOLLIN : EPOLLOUT;
    }
    return 0;
}


/* The verifier needs the cluster CA; if it could not be read at start
 * (not there yet), try again now and then. */
ts_ticket_verifier_t *
up_link_verifier(up_t *u)
{
    char     err[256];
    int64_t  now;

    if (u->verifier != NULL) {
        return u->verifier;
    }
    now = ts_now_ms();
    if (u->verifier_ms != 0 && now - u->verifier_ms < TS_UP_TICK_MS * 10) {
        return NULL;
    }
    u->verifier_ms = now;
    err[0] = '\0';
    u->verifier = ts_ticket_verifier_new(u->node->opts.ca_path, err,
                                         sizeof(err));
    if (u->verifier == NULL) {
        ts_err("cannot check download tickets: CA \"%s\": %s",
               u->node->opts.ca_path, err);
    }
    return u->verifier;
}


/* PEER_AUTH: verifies the ticket now, so that the requests behind it on
 * the link see its effect; the answer goes out in turn. */
static void
up_link_parse_auth(up_t *u, up_link_t *k, up_req_t *r, const uint8_t *p,
    uint32_t len)
{
    ts_ticket_verifier_t  *v;
    ts_ticket_t            t;
    const uint8_t         *tk;
    uint32_t               tn;
    int64_t                now = ts_wall_ms();
    char                   err[TS_UP_MSG_B];

    if (peer_msg_auth_decode(p, len, &tk, &tn) != 0) {
        r->bad = 1;
        r->status = TS_ERR_BADREQ;
        snprintf(r->msg, sizeof(r->msg), "malformed request");
        return;
    }
    v = up_link_verifier(u);
    if (v == NULL) {
        r->status = TS_ERR_AUTH;
        snprintf(r->msg, sizeof(r->msg), "peer cannot check tickets");
        return;
    }
    err[0] = '\0';
    /* the ticket must name this link's certificate; only a TS_TLS_OFF
     * build has no identities to compare */
#ifndef TS_TLS_OFF
    if (!k->has_fp) {
        r->status = TS_ERR_AUTH;
        snprintf(r->msg, sizeof(r->msg), "no certificate on this link");
        k->bad_auth++;
        return;
    }
#endif
    if (ts_ticket_verify(v, tk, tn, now, k->has_fp ? k->fp : NULL, &t,
                         err, sizeof(err)) != 0)
    {
        r->status = TS_ERR_AUTH;
        snprintf(r->msg, sizeof(r->msg), "%s",
                 err[0] != '\0' ? err : "invalid ticket");
        ts_debug("peer link %d: ticket refused: %s", k->fd, r->msg);
        k->bad_auth++;
        return;
    }
    if (up_auth_put(&k->auth, t.group, t.name, (int64_t) t.expires_ms,
                    now) != 0)
    {
        r->status = TS_ERR_AUTH;
        snprintf(r->msg, sizeof(r->msg), "expired");
        return;
    }
    r->status = TS_OK;
    k->authed_until = up_auth_until(&k->auth);
    if (!k->authed) {
        k->authed = 1;
        u->nunauth--;
    }
}


/* Parses one complete frame into the queue.  -1 = drop the link. */
static int
up_link_parse(up_t *u, up_link_t *k, const ts_frame_hdr_t *h, const uint8_t *p)
{
    up_req_t        *r;
    peer_msg_req_t   m;

    if (h->flags & TS_FF_REPLY) {
        ts_info("unexpected frame from a peer; link closed");
        return -1;      /* a peer never sends us replies */
    }
    r = &k->q[(k->q_head + k->q_n) % TS_UP_QUEUE_N];
    memset(r, 0, offsetof(up_req_t, group) + 1);
    r->name[0] = '\0';
    r->msg[0] = '\0';
    r->type = h->type;
    r->reqid = h->reqid;

    if (h->type == TS_MSG_PEER_AUTH) {
        up_link_parse_auth(u, k, r, p, h->len);
        if (k->bad_auth > TS_UP_BAD_AUTH_N) {
            ts_info("peer link closed: more than %d refused tickets",
                    TS_UP_BAD_AUTH_N);
            return -1;
        }
    } else if (h->type == TS_MSG_PEER_MAP || h->type == TS_MSG_PEER_GET) {
        if (peer_msg_req_decode(h->type, p, h->len, &m) == 0) {
            memcpy(r->group, m.group, sizeof(r->group));
            memcpy(r->name, m.name, sizeof(r->name));
            r->index = m.index;
            r->ranged = m.ranged;
            r->roff = m.off;
            r->rlen = m.len;
        } else {
            r->bad = 1;
        }
        r->perm = !r->bad
                  && up_auth_ok(&k->auth, r->group, r->name, ts_wall_ms());
        r->want_have = h->type == TS_MSG_PEER_MAP
                       && (h->flags & TS_FF_HAVE) != 0;
    }
    k->q_n++;
    up_serve_queued(u, 1);
    return 0;
}


/* The handshake is complete: learn the peer's identity.  0, or -1 when
 * the link must close (no client certificate in a TLS build). */
int
up_link_ready(up_link_t *k)
{
    if (k->ready || !ts_conn_ready(k->c)) {
        return 0;
    }
    k->ready = 1;
    if (ts_conn_peer_fp(k->c, k->fp) == 0) {
        k->has_fp = 1;
    } else if (ts_tls_enabled()) {
        ts_info("peer link without a client certificate; closed");
        return -1;
    }
    return 0;
}


/* Reads and parses what the link has.  -1 = drop the link. */
int
up_link_read(up_t *u, up_link_t *k)
{
    ts_frame_hdr_t  h;
    size_t          used, need;
    ssize_t         n;

    for (;;) {
        /* take complete frames out of the buffer */
        used = 0;
        while (k->q_n < TS_UP_QUEUE_N && k->in_len - used >= TS_FRAME_HDR_B) {
            if (peer_msg_req_hdr_decode(k->in + used, &h) != 0) {
                ts_info("bad frame from a peer; link closed");
                return -1;
            }
            need = TS_FRAME_HDR_B + h.len;
            if (k->in_len - used < need) {
                break;
            }
            if (up_link_parse(u, k, &h, k->in + used + TS_FRAME_HDR_B) != 0) {
                return -1;
            }
            used += need;
        }
        if (used > 0) {
            memmove(k->in, k->in + used, k->in_len - used);
            k->in_len -= used;
        }
        /* the deadline runs from the first byte of an unfinished frame */
        if (k->in_len == 0) {
            k->frame_ms = 0;
        } else if (used > 0 || k->frame_ms == 0) {
            k->frame_ms = ts_now_ms();
        }
        if (k->q_n >= TS_UP_QUEUE_N || k->in_len == sizeof(k->in)) {
            return 0;
        }

        /* a TLS link may hold decrypted bytes epoll cannot see: this
         * loop reads until EAGAIN (or a full queue, and then up_loop_handle
         * comes back when the queue has room: ts_conn_pending) */
        n = ts_conn_read(k->c, k->in + k->in_len, sizeof(k->in) - k->in_len);
        if (n < 0) {
            return up_link_again(k, &k->rd_want, 2);
        }
        if (n == 0) {
            return -1;
        }
        k->rd_want = 0;
        if (!k->ready && up_link_ready(k) != 0) {
            return -1;
        }
        k->in_len += (size_t) n;
        k->last_ms = ts_now_ms();
        if (k->frame_ms == 0) {
            k->frame_ms = k->last_ms;
        }
    }
}
