/*
 * up_worker.c -- the uploader worker: serves PEER_MAP and PEER_GET to
 * other nodes' downloaders on the node's shared listening socket.
 *
 * Purpose: each uploader runs one epoll loop; the listening socket is in
 * every uploader's epoll set with EPOLLEXCLUSIVE, so one wakes per new
 * link.  A link is persistent: requests are read into a fixed per-link
 * buffer (the header's length is checked against TS_UP_REQ_MAX_B before a
 * byte of payload is taken, nothing is allocated per frame), queued, and
 * answered strictly in order.  Requests are decoded and answers encoded
 * by workers/peer_msg.h (the codec tests/fuzz/fuzz_peer.c exercises).  A
 * chunk goes out as a small header (ts_conn_write) followed by the bytes
 * straight from the page cache (ts_conn_sendfile), non-blocking, with the
 * send state kept per link.
 * Shares are served from their path after fstat/stat show the size and
 * mtime recorded at upload (else the share becomes STALE and is never
 * served again); downloads in progress are served from the .part (or the
 * final file), only for chunks whose done bit is set.  Open files are
 * cached per share/download entry and dup()ed for a send in progress.
 *
 * Security (issue 5): every accepted link is TLS (TS_TLS_PEER_SERVER
 * with the node's certificate; the peer must present a certificate, its
 * SHA-256 fingerprint is the peer's identity).  The handshake is driven
 * by the same non-blocking reads, epoll interest follows ts_conn_want(),
 * and it must finish within TS_TLS_HANDSHAKE_MS.  MAP/GET are answered
 * only for a (group, name) the link holds an unexpired authorization for
 * (up_auth.h), which a PEER_AUTH with a tracker-signed ticket naming the
 * link's fingerprint grants; otherwise TS_ERR_PERM "no valid ticket".  A
 * bad ticket gets TS_ERR_AUTH with the verifier's reason and costs
 * nothing else, up to TS_UP_BAD_AUTH_N of them on a link (then the link
 * closes: each costs a signature check).  A link that holds no valid
 * ticket -- none shown yet, or the last one expired -- counts as
 * unauthenticated, and is closed when it has been so for
 * TS_NODE_UNAUTH_MS.  Authorization is checked both when a
 * request is parsed (so AUTH/MAP/GET take effect strictly in stream
 * order) and when it is answered (a ticket that expired while the request
 * was queued no longer counts).  Caps at accept: TS_NODE_CONNS_ADDR_N
 * links from one address and TS_NODE_UNAUTH_MAX_N links without a ticket
 * yet -- counted per worker (there is no shared per-address table in the
 * node segment yet), so the node-wide limits are U times these.  Over a
 * cap the new link is closed at once.
 *
 * Locking: none.  Share and download text fields are copied with the
 * seqlock readers (node_share_snapshot/node_dl_snapshot); states, bits
 * and counters are atomics.  This worker's own part of the node's load
 * (queued GETs, active uploads) is mirrored in its slot's counter[0] and
 * counter[1] so reclaim can subtract it.
 *
 * Crash behaviour: a killed uploader's links close (the downloaders see
 * EOF and re-request elsewhere); the supervisor reclaims its load counts
 * and respawns it, and the new one joins the shared listening socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "ts_claim.h"
#include "ts_log.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "ts_sup.h"
#include "ts_ticket.h"
#include "ts_tls.h"
#include "node_shm.h"
#include "node.h"
#include "up_auth.h"
#include "peer_msg.h"


#define UP_KEY_LISTEN    ((uint64_t) -1)
#define UP_KEY_STOP      ((uint64_t) -2)

/* a PEER_AUTH carries a whole ticket; MAP/GET stay limited to
 * TS_UP_REQ_MAX_B (peer_msg_req_hdr_decode) */
#define UP_IN_MAX_B        PEER_MSG_REQ_IN_MAX_B
#define UP_MSG_B           128  /* a PEER_AUTH refusal's reason */
#define UP_HANDLE_ROUNDS_N 8    /* answer/read rounds per link per wakeup */

typedef struct {
    uint8_t   type;
    uint8_t   bad;              /* payload malformed */
    uint8_t   perm;             /* MAP/GET: authorized when parsed */
    uint8_t   status;           /* PEER_AUTH: the answer, decided when
                                   parsed */
    uint64_t  reqid;
    uint32_t  index;
    char      group[TS_ID_MAX_B + 1];
    char      name[TS_NAME_MAX_B + 1];
    char      msg[UP_MSG_B];    /* PEER_AUTH: the reason of a refusal */
} up_req_t;

_Static_assert(sizeof(((up_req_t *) 0)->group)
               == sizeof(((peer_msg_req_t *) 0)->group)
               && sizeof(((up_req_t *) 0)->name)
               == sizeof(((peer_msg_req_t *) 0)->name),
               "up_req_t and peer_msg_req_t name buffers differ");

typedef struct {
    uint8_t   b[16];            /* IPv6, or IPv4-mapped */
} up_addr_t;

typedef struct {
    ts_conn_t  *c;
    int         fd;
    uint32_t    events;
    int64_t     born_ms;        /* accepted at: handshake, ticket deadlines */
    int64_t     last_ms;        /* last byte in or out */
    int64_t     frame_ms;       /* a partial frame began at */
    int         ready;          /* handshake done, peer identity known */
    int         again;          /* has buffered requests: handle it again
                                   without waiting for epoll */
    int         authed;         /* holds an unexpired ticket */
    int64_t     authed_until;   /* wall clock: the last ticket's expiry */
    int64_t     unauth_ms;      /* unauthenticated since (monotonic) */
    int         bad_auth;       /* tickets refused on this link */
    int         has_fp;
    uint32_t    rd_want;        /* a read's EAGAIN needs this event too */
    uint32_t    wr_want;        /* a write's EAGAIN needs this event too */
    uint8_t     fp[TS_FP_B];    /* the peer's certificate fingerprint */
    up_addr_t   addr;
    up_auth_tab_t auth;
    size_t      in_len;
    uint8_t     in[TS_FRAME_HDR_B + UP_IN_MAX_B];
    up_req_t    q[TS_UP_QUEUE_N];
    int         q_head;
    int         q_n;
    /* output: out[out_off..] then file bytes */
    ts_wbuf_t   out;
    size_t      out_off;
    int         file_fd;        /* dup()ed; -1 when none */
    off_t       file_off;
    size_t      file_left;
    uint32_t    chunk_len;
    int         active;         /* counted in active_uploads */
    int         share_idx;      /* for per-share counters, or -1 */
} up_conn_t;

typedef struct {
    int       fd;
    uint32_t  gen;              /* share seq / download id when opened */
} up_fcache_t;

typedef struct {
    char      group[TS_ID_MAX_B + 1];
    char      name[TS_NAME_MAX_B + 1];
    int       share;            /* share index or -1 */
    int       dl;               /* download index or -1 */
} up_lookup_t;

typedef struct {
    const ts_worker_ctx_t *ctx;
    node_t            *node;
    const ts_shm_t    *shm;
    node_stats_sh_t   *st;
    ts_slot_sh_t      *slot;
    ts_owner_t         me;
    int                ep;
    int                listen_fd;
    int                listening;
    int                nconns;
    int                nunauth;     /* links that showed no ticket yet */
    int                nagain;      /* links with again set */
    ts_tls_t          *tls;
    ts_ticket_verifier_t *verifier; /* NULL while the CA is unreadable */
    int64_t            verifier_ms; /* last attempt to load it */
    int64_t            unauth_ms;   /* links must hold a ticket within */
    up_conn_t         *conns[TS_NODE_PEER_CONNS_N];
    up_fcache_t        shares[TS_NODE_SHARES_N];
    up_fcache_t        dls[TS_NODE_DOWNLOADS_N];
    up_lookup_t        look[TS_UP_LOOKUP_N];
    int                look_next;
    node_share_sh_t    share_snap;
    node_dl_sh_t       dl_snap;
} up_t;


/* ---- load accounting -------------------------------------------------- */

/*
 * Up: slot first, then the node total; down: the node total first (never
 * below 0), then the slot.  A kill in between either way leaves the slot
 * holding at least what we added to the total, so reclaim can only
 * over-subtract (saturating here), never leak load.
 */
static void
up_sat_dec(_Atomic uint32_t *v, uint32_t n)
{
    uint32_t cur = atomic_load(v), nv;

    do {
        nv = cur > n ? cur - n : 0;
    } while (!atomic_compare_exchange_weak(v, &cur, nv));
}


static void
up_queued_add(up_t *u, int d)
{
    if (d > 0) {
        atomic_fetch_add(&u->slot->counter[0], (uint64_t) d);
        atomic_fetch_add(&u->st->queued, (uint32_t) d);
    } else if (d < 0) {
        up_sat_dec(&u->st->queued, (uint32_t) -d);
        atomic_fetch_sub(&u->slot->counter[0], (uint64_t) -d);
    }
}


static void
up_active_add(up_t *u, int d)
{
    if (d > 0) {
        atomic_fetch_add(&u->slot->counter[1], 1);
        atomic_fetch_add(&u->st->active_uploads, 1);
    } else {
        up_sat_dec(&u->st->active_uploads, 1);
        atomic_fetch_sub(&u->slot->counter[1], 1);
    }
}


static uint32_t
up_load(up_t *u)
{
    return atomic_load(&u->st->active_uploads) + atomic_load(&u->st->queued);
}


/* ---- links ------------------------------------------------------------ */

static void
up_set_events(up_t *u, up_conn_t *k, int idx)
{
    struct epoll_event  ev;
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
        if (k->out_off < k->out.len || k->file_left > 0) {
            want |= EPOLLOUT;
            want |= k->wr_want;     /* TLS: a write that must read first */
        }
        want |= k->rd_want;         /* TLS: a read that must write first */
    }
    if (want == k->events) {
        return;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = want;
    ev.data.u64 = (uint64_t) idx;
    if (epoll_ctl(u->ep, EPOLL_CTL_MOD, k->fd, &ev) == 0) {
        k->events = want;
    }
}


static void
up_listen_on(up_t *u, int on)
{
    struct epoll_event  ev;

    if (on == u->listening) {
        return;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u64 = UP_KEY_LISTEN;
    if (on) {
        if (epoll_ctl(u->ep, EPOLL_CTL_ADD, u->listen_fd, &ev) != 0) {
            ts_err("epoll_ctl(listen) failed: %s", strerror(errno));
            return;
        }
    } else {
        epoll_ctl(u->ep, EPOLL_CTL_DEL, u->listen_fd, NULL);
    }
    u->listening = on;
}


static void
up_close(up_t *u, int idx, const char *why)
{
    up_conn_t  *k = u->conns[idx];

    if (k == NULL) {
        return;
    }
    if (why != NULL) {
        ts_debug("peer link %d closed: %s", k->fd, why);
    }
    if (!k->authed) {
        u->nunauth--;
    }
    if (k->again) {
        u->nagain--;
    }
    /* requests never answered no longer count as load */
    up_queued_add(u, -k->q_n);
    if (k->active) {
        up_active_add(u, -1);
    }
    if (k->file_fd >= 0) {
        close(k->file_fd);
    }
    epoll_ctl(u->ep, EPOLL_CTL_DEL, k->fd, NULL);
    ts_conn_free(k->c);
    ts_wbuf_free(&k->out);
    free(k);
    u->conns[idx] = NULL;
    u->nconns--;
    if (u->nconns < TS_NODE_PEER_CONNS_N) {
        up_listen_on(u, 1);
    }
}


static void
up_addr_of(const struct sockaddr_storage *ss, up_addr_t *a)
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
up_addr_count(const up_t *u, const up_addr_t *a)
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


static void
up_accept(up_t *u)
{
    struct epoll_event       ev;
    struct sockaddr_storage  ss;
    socklen_t                sl;
    up_addr_t                a;
    up_conn_t               *k;
    int                      fd, i, n, one = 1;

    for (n = 0; n < TS_UP_ACCEPT_BURST; n++) {
        if (u->nconns >= TS_NODE_PEER_CONNS_N) {
            up_listen_on(u, 0);
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
        up_addr_of(&ss, &a);
        if (u->nunauth >= TS_NODE_UNAUTH_MAX_N) {
            ts_debug("peer link refused: %d links without a ticket",
                     u->nunauth);
            close(fd);
            continue;
        }
        if (up_addr_count(u, &a) >= TS_NODE_CONNS_ADDR_N) {
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
        k->addr = a;
        k->born_ms = ts_now_ms();
        k->last_ms = k->born_ms;
        k->unauth_ms = k->born_ms;
        up_auth_init(&k->auth);
        ts_wbuf_init(&k->out);

        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.u64 = (uint64_t) i;
        if (epoll_ctl(u->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            ts_err("epoll_ctl(peer) failed: %s", strerror(errno));
            ts_conn_free(k->c);
            free(k);
            return;
        }
        k->events = EPOLLIN;
        u->conns[i] = k;
        u->nconns++;
        u->nunauth++;
    }
}


/* ---- lookups ---------------------------------------------------------- */

static int64_t
up_mtime_ns(const struct stat *sb)
{
    return (int64_t) sb->st_mtim.tv_sec * 1000000000LL + sb->st_mtim.tv_nsec;
}


/* Finds (group, name): *share = READY/STALE share index (snapshot in
 * u->share_snap) or -1, *dl = download index (snapshot in u->dl_snap)
 * or -1. */
static void
up_find(up_t *u, const char *group, const char *name, int *share, int *dl)
{
    node_share_sh_t  *sh = node_shares(u->shm);
    node_dl_sh_t     *dls = node_dls(u->shm);
    up_lookup_t      *l;
    uint32_t          state;
    int               i, s = -1, d = -1;

    *share = -1;
    *dl = -1;

    for (i = 0; i < TS_UP_LOOKUP_N; i++) {
        l = &u->look[i];
        if (strcmp(l->group, group) == 0 && strcmp(l->name, name) == 0) {
            s = l->share;
            d = l->dl;
            goto verify;
        }
    }

scan:
    s = -1;
    d = -1;
    for (i = 0; i < TS_NODE_SHARES_N; i++) {
        state = atomic_load_explicit(&sh[i].state, memory_order_acquire);
        if (state != NODE_SHARE_READY && state != NODE_SHARE_STALE) {
            continue;
        }
        if (node_share_snapshot(u->shm, i, &u->share_snap) == 0
            && strcmp(u->share_snap.group, group) == 0
            && strcmp(u->share_snap.name, name) == 0)
        {
            s = i;
            break;
        }
    }
    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        if (atomic_load(&dls[i].state) == NODE_DL_FREE) {
            continue;
        }
        if (node_dl_snapshot(u->shm, i, &u->dl_snap) == 0
            && strcmp(u->dl_snap.group, group) == 0
            && strcmp(u->dl_snap.name, name) == 0)
        {
            d = i;
            break;
        }
    }
    l = &u->look[u->look_next];
    u->look_next = (u->look_next + 1) % TS_UP_LOOKUP_N;
    snprintf(l->group, sizeof(l->group), "%s", group);
    snprintf(l->name, sizeof(l->name), "%s", name);
    l->share = s;
    l->dl = d;
    l = NULL;

verify:
    /* a cached answer is re-checked against the entries themselves; a
     * miss (or a changed entry) falls back to a full scan once */
    if (s >= 0) {
        if (node_share_snapshot(u->shm, s, &u->share_snap) != 0
            || strcmp(u->share_snap.group, group) != 0
            || strcmp(u->share_snap.name, name) != 0
            || (atomic_load(&u->share_snap.state) != NODE_SHARE_READY
                && atomic_load(&u->share_snap.state) != NODE_SHARE_STALE))
        {
            if (l != NULL) {
                l->group[0] = '\0';
                goto scan;
            }
            s = -1;
        }
    }
    if (d >= 0) {
        if (node_dl_snapshot(u->shm, d, &u->dl_snap) != 0
            || strcmp(u->dl_snap.group, group) != 0
            || strcmp(u->dl_snap.name, name) != 0)
        {
            if (l != NULL) {
                l->group[0] = '\0';
                goto scan;
            }
            d = -1;
        }
    }
    if (s < 0 && d < 0 && l != NULL) {
        /* maybe added since it was cached */
        l->group[0] = '\0';
        goto scan;
    }
    *share = s;
    *dl = d;
}


static void
up_share_stale(up_t *u, int idx, const char *why)
{
    node_share_sh_t  *sh = &node_shares(u->shm)[idx];
    uint32_t          exp = NODE_SHARE_READY;

    if (atomic_compare_exchange_strong(&sh->state, &exp, NODE_SHARE_STALE)) {
        ts_warn("share %s/%s (%s): file changed on disk (%s); "
                "no longer served", u->share_snap.group, u->share_snap.name,
                u->share_snap.path, why);
    }
    if (u->shares[idx].fd >= 0) {
        close(u->shares[idx].fd);
        u->shares[idx].fd = -1;
    }
}


/* An fd for share idx (snapshot in u->share_snap) whose file still has
 * the recorded size and mtime; -1 after marking it STALE (or on an open
 * error: *why says which). */
static int
up_share_fd(up_t *u, int idx, const char **why)
{
    up_fcache_t     *fc = &u->shares[idx];
    node_share_sh_t *sn = &u->share_snap;
    struct stat      fsb, psb;
    uint32_t         gen = atomic_load(&sn->seq);

    if (fc->fd >= 0 && fc->gen != gen) {
        close(fc->fd);
        fc->fd = -1;
    }
    if (stat(sn->path, &psb) != 0) {
        up_share_stale(u, idx, strerror(errno));
        *why = "file changed on disk";
        return -1;
    }
    if ((uint64_t) psb.st_size != sn->size
        || up_mtime_ns(&psb) != sn->mtime_ns)
    {
        up_share_stale(u, idx, "size or mtime differ");
        *why = "file changed on disk";
        return -1;
    }
    if (fc->fd >= 0) {
        if (fstat(fc->fd, &fsb) != 0 || fsb.st_ino != psb.st_ino
            || fsb.st_dev != psb.st_dev)
        {
            /* replaced by an identical-looking file: reopen the path */
            close(fc->fd);
            fc->fd = -1;
        } else if ((uint64_t) fsb.st_size != sn->size
                   || up_mtime_ns(&fsb) != sn->mtime_ns)
        {
            up_share_stale(u, idx, "size or mtime differ");
            *why = "file changed on disk";
            return -1;
        }
    }
    if (fc->fd < 0) {
        fc->fd = open(sn->path, O_RDONLY | O_CLOEXEC);
        if (fc->fd < 0) {
            ts_warn("open(\"%s\") failed: %s", sn->path, strerror(errno));
            *why = "file not readable";
            return -1;
        }
        fc->gen = gen;
        if (fstat(fc->fd, &fsb) != 0 || (uint64_t) fsb.st_size != sn->size
            || up_mtime_ns(&fsb) != sn->mtime_ns)
        {
            up_share_stale(u, idx, "size or mtime differ");
            *why = "file changed on disk";
            return -1;
        }
    }
    return fc->fd;
}


/* An fd for download idx (snapshot in u->dl_snap): the .part, or the
 * final file once renamed. */
static int
up_dl_fd(up_t *u, int idx)
{
    up_fcache_t   *fc = &u->dls[idx];
    node_dl_sh_t  *sn = &u->dl_snap;
    uint32_t       gen = atomic_load(&sn->id);

    if (fc->fd >= 0 && fc->gen != gen) {
        close(fc->fd);
        fc->fd = -1;
    }
    if (fc->fd < 0) {
        /* only the download's own file, under either name (the rename
         * keeps the inode): never a symlink or a file put there later */
        if (atomic_load(&sn->state) != NODE_DL_DONE) {
            fc->fd = node_open_part(sn->part, O_RDONLY, &sn->part_id);
        }
        if (fc->fd < 0) {
            fc->fd = node_open_part(sn->dest, O_RDONLY, &sn->part_id);
        }
        if (fc->fd < 0) {
            return -1;
        }
        fc->gen = gen;
    }
    return fc->fd;
}


static int
up_dl_servable(const node_dl_sh_t *d)
{
    uint32_t st = atomic_load(&((node_dl_sh_t *) d)->state);

    return st == NODE_DL_ACTIVE || st == NODE_DL_FINALIZING
           || st == NODE_DL_DONE;
}


/* ---- replies ---------------------------------------------------------- */

static void
up_frame_begin(ts_wbuf_t *b)
{
    static const uint8_t zero[TS_FRAME_HDR_B];

    ts_wbuf_reset(b);
    ts_put_raw(b, zero, sizeof(zero));
}


static void
up_frame_end(ts_wbuf_t *b, uint8_t type, uint64_t reqid, uint32_t extra)
{
    ts_frame_hdr_t  h;

    if (b->err || b->len < TS_FRAME_HDR_B) {
        return;
    }
    h.type = type;
    h.flags = TS_FF_REPLY;
    h.len = (uint32_t) (b->len - TS_FRAME_HDR_B) + extra;
    h.reqid = reqid;
    ts_frame_hdr_encode(b->data, &h);
}


/* MAP/GET r may be answered: the link held an unexpired authorization
 * for its (group, name) when r was parsed and still does. */
static int
up_authorized(const up_conn_t *k, const up_req_t *r)
{
    return r->perm && up_auth_ok(&k->auth, r->group, r->name, ts_wall_ms());
}


static void
up_reply_auth(up_conn_t *k, const up_req_t *r)
{
    ts_wbuf_t  *b = &k->out;

    up_frame_begin(b);
    ts_reply_begin(b, (ts_status_t) r->status,
                   r->status == TS_OK ? NULL : r->msg);
    up_frame_end(b, TS_MSG_REPLY, r->reqid, 0);
}


static void
up_reply_map(up_t *u, up_conn_t *k, const up_req_t *r)
{
    ts_wbuf_t        *b = &k->out;
    _Atomic uint64_t *done;
    uint8_t          *bits;
    uint32_t          n, i;
    int               s, d;
    const char       *why = NULL;

    up_frame_begin(b);

    if (r->bad) {
        ts_reply_begin(b, TS_ERR_BADREQ, "malformed request");
        goto out;
    }
    if (!up_authorized(k, r)) {
        ts_reply_begin(b, TS_ERR_PERM, "no valid ticket");
        goto out;
    }
    if (atomic_load(&u->st->paused)) {
        ts_reply_begin(b, TS_ERR_AUTH, "peer is not sharing right now");
        goto out;
    }
    up_find(u, r->group, r->name, &s, &d);

    if (s >= 0 && atomic_load(&u->share_snap.state) == NODE_SHARE_READY
        && up_share_fd(u, s, &why) >= 0)
    {
        (void) peer_msg_map_encode(b, up_load(u), u->share_snap.nchunks, 1);
        goto out;
    }
    if (d >= 0 && up_dl_servable(&u->dl_snap)) {
        n = u->dl_snap.nchunks;
        done = node_dl_done(u->shm, d);
        bits = peer_msg_map_encode(b, up_load(u), n, 0);
        if (bits != NULL) {
            for (i = 0; i < n; i++) {
                if (node_bit_test(done, i)) {
                    bits[i >> 3] |= (uint8_t) (1u << (i & 7));
                }
            }
        }
        goto out;
    }
    if (s >= 0 || why != NULL) {
        ts_reply_begin(b, TS_ERR_STATE, why ? why : "file changed on disk");
    } else {
        ts_reply_begin(b, TS_ERR_NOTFOUND, "unknown file");
    }

out:
    up_frame_end(b, TS_MSG_REPLY, r->reqid, 0);
}


static void
up_data_error(up_t *u, up_conn_t *k, const up_req_t *r, ts_status_t st,
    const char *msg)
{
    ts_wbuf_t  *b = &k->out;

    up_frame_begin(b);
    peer_msg_data_encode(b, st, msg, up_load(u), r->index, 0);
    up_frame_end(b, TS_MSG_PEER_DATA, r->reqid, 0);
}


static void
up_reply_get(up_t *u, up_conn_t *k, const up_req_t *r)
{
    ts_wbuf_t   *b = &k->out;
    struct stat  sb;
    uint64_t     size, off;
    uint32_t     n, len;
    int          s, d, fd = -1;
    const char  *why = NULL;

    if (r->bad) {
        up_data_error(u, k, r, TS_ERR_BADREQ, "malformed request");
        return;
    }
    if (!up_authorized(k, r)) {
        up_data_error(u, k, r, TS_ERR_PERM, "no valid ticket");
        return;
    }
    if (atomic_load(&u->st->paused)) {
        up_data_error(u, k, r, TS_ERR_AUTH, "peer is not sharing right now");
        return;
    }
    up_find(u, r->group, r->name, &s, &d);

    k->share_idx = -1;
    if (s >= 0 && atomic_load(&u->share_snap.state) == NODE_SHARE_READY) {
        n = u->share_snap.nchunks;
        size = u->share_snap.size;
        if (r->index >= n) {
            up_data_error(u, k, r, TS_ERR_BADREQ, "chunk index out of range");
            return;
        }
        fd = up_share_fd(u, s, &why);
        if (fd >= 0) {
            k->share_idx = s;
        }
    }
    if (fd < 0 && d >= 0 && up_dl_servable(&u->dl_snap)) {
        n = u->dl_snap.nchunks;
        size = u->dl_snap.size;
        if (r->index >= n) {
            up_data_error(u, k, r, TS_ERR_BADREQ, "chunk index out of range");
            return;
        }
        if (!node_bit_test(node_dl_done(u->shm, d), r->index)) {
            up_data_error(u, k, r, TS_ERR_NOTFOUND, "chunk not available");
            return;
        }
        fd = up_dl_fd(u, d);
        off = (uint64_t) r->index * TS_CHUNK_B;
        len = (uint32_t) (size - off < TS_CHUNK_B ? size - off : TS_CHUNK_B);
        if (fd < 0 || fstat(fd, &sb) != 0
            || (uint64_t) sb.st_size < off + len)
        {
            up_data_error(u, k, r, TS_ERR_NOTFOUND, "chunk not available");
            return;
        }
        why = NULL;
    }
    if (fd < 0) {
        if (s >= 0 || why != NULL) {
            up_data_error(u, k, r, TS_ERR_STATE,
                          why ? why : "file changed on disk");
        } else {
            up_data_error(u, k, r, TS_ERR_NOTFOUND, "unknown file");
        }
        return;
    }

    off = (uint64_t) r->index * TS_CHUNK_B;
    len = (uint32_t) (size - off < TS_CHUNK_B ? size - off : TS_CHUNK_B);

    k->file_fd = dup(fd);
    if (k->file_fd < 0) {
        ts_err("dup() failed: %s", strerror(errno));
        up_data_error(u, k, r, TS_ERR_INTERNAL, "out of file descriptors");
        return;
    }
    k->file_off = (off_t) off;
    k->file_left = len;
    k->chunk_len = len;
    k->active = 1;
    up_active_add(u, 1);

    up_frame_begin(b);
    peer_msg_data_encode(b, TS_OK, NULL, up_load(u), r->index, len);
    up_frame_end(b, TS_MSG_PEER_DATA, r->reqid, len);
}


/* A chunk went out completely. */
static void
up_chunk_sent(up_t *u, up_conn_t *k)
{
    node_share_sh_t *sh;

    close(k->file_fd);
    k->file_fd = -1;
    if (k->active) {
        k->active = 0;
        up_active_add(u, -1);
        atomic_fetch_add(&u->st->chunks_up, 1);
        atomic_fetch_add(&u->st->bytes_up, k->chunk_len);
        atomic_fetch_add(&u->slot->counter[2], 1);
        atomic_fetch_add(&u->slot->counter[3], k->chunk_len);
        if (k->share_idx >= 0) {
            sh = &node_shares(u->shm)[k->share_idx];
            atomic_fetch_add(&sh->chunks_served, 1);
            atomic_fetch_add(&sh->bytes_served, k->chunk_len);
        }
    }
}


/* After a failed ts_conn_read/write/sendfile: 0 if it would only block
 * (*want gets the other event a TLS link may need first: a read that
 * must write, a write that must read), -1 if the link is broken. */
static int
up_again(up_conn_t *k, uint32_t *want, int other)
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


/* Sends what is pending, then answers queued requests in order.  0, or
 * -1 when the link must close.  A partial write keeps out_off /
 * file_off / file_left where the bytes stopped; after EAGAIN the same
 * remaining bytes are offered again, as TLS requires. */
static int
up_pump(up_t *u, up_conn_t *k)
{
    up_req_t  *r;
    ssize_t    w;

    for (;;) {
        while (k->out_off < k->out.len) {
            w = ts_conn_write(k->c, k->out.data + k->out_off,
                              k->out.len - k->out_off);
            if (w < 0) {
                return up_again(k, &k->wr_want, 1);
            }
            k->wr_want = 0;
            k->out_off += (size_t) w;
            k->last_ms = ts_now_ms();
        }
        while (k->file_left > 0) {
            w = ts_conn_sendfile(k->c, k->file_fd, &k->file_off,
                                 k->file_left);
            if (w < 0) {
                return up_again(k, &k->wr_want, 1);
            }
            k->wr_want = 0;
            if (w == 0) {
                /* the file shrank under us: the frame cannot be finished */
                ts_warn("file shrank while sending a chunk; link closed");
                return -1;
            }
            k->file_left -= (size_t) w;
            k->last_ms = ts_now_ms();
        }
        if (k->file_fd >= 0) {
            up_chunk_sent(u, k);
        }
        ts_wbuf_reset(&k->out);
        k->out_off = 0;

        if (k->q_n == 0) {
            return 0;
        }
        r = &k->q[k->q_head];
        k->q_head = (k->q_head + 1) % TS_UP_QUEUE_N;
        k->q_n--;
        up_queued_add(u, -1);

        if (r->type == TS_MSG_PEER_MAP) {
            up_reply_map(u, k, r);
        } else if (r->type == TS_MSG_PEER_GET) {
            up_reply_get(u, k, r);
        } else if (r->type == TS_MSG_PEER_AUTH) {
            up_reply_auth(k, r);
        } else {
            up_frame_begin(&k->out);
            ts_reply_begin(&k->out, TS_ERR_BADREQ, "unexpected message");
            up_frame_end(&k->out, TS_MSG_REPLY, r->reqid, 0);
        }
        if (k->out.err) {
            ts_err("out of memory for a reply; link closed");
            return -1;
        }
    }
}


/* The verifier needs the cluster CA; if it could not be read at start
 * (not there yet), try again now and then. */
static ts_ticket_verifier_t *
up_verifier(up_t *u)
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
up_parse_auth(up_t *u, up_conn_t *k, up_req_t *r, const uint8_t *p,
    uint32_t len)
{
    ts_ticket_verifier_t  *v;
    ts_ticket_t            t;
    const uint8_t         *tk;
    uint32_t               tn;
    int64_t                now = ts_wall_ms();
    char                   err[UP_MSG_B];

    if (peer_msg_auth_decode(p, len, &tk, &tn) != 0) {
        r->bad = 1;
        r->status = TS_ERR_BADREQ;
        snprintf(r->msg, sizeof(r->msg), "malformed request");
        return;
    }
    v = up_verifier(u);
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
up_parse(up_t *u, up_conn_t *k, const ts_frame_hdr_t *h, const uint8_t *p)
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
        up_parse_auth(u, k, r, p, h->len);
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
        } else {
            r->bad = 1;
        }
        r->perm = !r->bad
                  && up_auth_ok(&k->auth, r->group, r->name, ts_wall_ms());
    }
    k->q_n++;
    up_queued_add(u, 1);
    return 0;
}


/* The handshake is complete: learn the peer's identity.  0, or -1 when
 * the link must close (no client certificate in a TLS build). */
static int
up_ready(up_conn_t *k)
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
static int
up_read(up_t *u, up_conn_t *k)
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
            if (up_parse(u, k, &h, k->in + used + TS_FRAME_HDR_B) != 0) {
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
         * loop reads until EAGAIN (or a full queue, and then up_handle
         * comes back when the queue has room: ts_conn_pending) */
        n = ts_conn_read(k->c, k->in + k->in_len, sizeof(k->in) - k->in_len);
        if (n < 0) {
            return up_again(k, &k->rd_want, 2);
        }
        if (n == 0) {
            return -1;
        }
        k->rd_want = 0;
        if (!k->ready && up_ready(k) != 0) {
            return -1;
        }
        k->in_len += (size_t) n;
        k->last_ms = ts_now_ms();
        if (k->frame_ms == 0) {
            k->frame_ms = k->last_ms;
        }
    }
}


static void
up_handle(up_t *u, int idx, uint32_t events)
{
    up_conn_t  *k = u->conns[idx];
    int         rounds, before;

    if (k == NULL) {
        return;
    }
    if (k->again) {
        k->again = 0;
        u->nagain--;
    }
    /* during the handshake any event may move it on; a TLS read may
     * also have been waiting for writability */
    if (((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || !k->ready
         || (k->rd_want != 0 && (events & EPOLLOUT)))
        && up_read(u, k) != 0)
    {
        up_close(u, idx, "read");
        return;
    }
    if (!k->ready) {
        if (up_ready(k) != 0) {
            up_close(u, idx, "no client certificate");
            return;
        }
        if (!k->ready) {
            up_set_events(u, k, idx);
            return;
        }
    }
    for (rounds = 0; ; rounds++) {
        if (up_pump(u, k) != 0) {
            up_close(u, idx, "write");
            return;
        }
        /* answering may have made room in the queue for frames already
         * buffered here or, decrypted, inside the TLS layer (which epoll
         * does not report) */
        if (k->q_n >= TS_UP_QUEUE_N
            || (k->in_len == 0 && ts_conn_pending(k->c) <= 0))
        {
            break;
        }
        if (rounds == UP_HANDLE_ROUNDS_N) {
            /* fairness: come back at once, after the other links */
            k->again = 1;
            u->nagain++;
            break;
        }
        before = k->q_n;
        if (up_read(u, k) != 0) {
            up_close(u, idx, "read");
            return;
        }
        if (k->q_n == before) {
            break;
        }
    }
    up_set_events(u, k, idx);
}


/* Every ticket link k showed has expired: it counts as unauthenticated
 * again (and must show a new ticket within TS_NODE_UNAUTH_MS).  0, or -1
 * when the cap on such links is reached (the caller closes k). */
static int
up_unauth_again(up_t *u, up_conn_t *k, int64_t now)
{
    if (u->nunauth >= TS_NODE_UNAUTH_MAX_N) {
        return -1;
    }
    k->authed = 0;
    k->unauth_ms = now;
    u->nunauth++;
    return 0;
}


static void
up_timeouts(up_t *u)
{
    int64_t     now = ts_now_ms();
    up_conn_t  *k;
    int         i, busy;

    for (i = 0; i < TS_NODE_PEER_CONNS_N; i++) {
        k = u->conns[i];
        if (k == NULL) {
            continue;
        }
        busy = k->out_off < k->out.len || k->file_left > 0;
        if (!k->ready && now - k->born_ms > TS_TLS_HANDSHAKE_MS) {
            up_close(u, i, "handshake timeout");
        } else if (k->authed && ts_wall_ms() >= k->authed_until
                   && up_unauth_again(u, k, now) != 0)
        {
            up_close(u, i, "its tickets expired and too many links hold "
                     "none");
        } else if (!k->authed && now - k->unauth_ms > u->unauth_ms) {
            up_close(u, i, k->authed_until != 0
                           ? "its tickets expired, no new one in time"
                           : "no valid ticket in time");
        } else if (k->frame_ms != 0
                   && now - k->frame_ms > TS_NODE_PEER_TIMEOUT_MS)
        {
            up_close(u, i, "frame timeout");
        } else if (busy && now - k->last_ms > TS_NODE_PEER_TIMEOUT_MS) {
            up_close(u, i, "send stalled");
        } else if (!busy && k->q_n == 0
                   && now - k->last_ms > TS_NODE_PEER_IDLE_MS)
        {
            up_close(u, i, "idle");
        }
    }
}


static void
up_free_keys(up_t *u)
{
    if (u->verifier != NULL) {
        ts_ticket_verifier_free(u->verifier);
    }
    if (u->tls != NULL) {
        ts_tls_ctx_free(u->tls);
    }
}


int
up_main(const ts_worker_ctx_t *ctx)
{
    struct epoll_event  ev, evs[TS_UP_EV_N];
    up_t               *u;
    int64_t             last_tick = 0, now;
    int                 i, n, rc = 0;
    char                err[256];

    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        ts_err("out of memory");
        return 1;
    }
    u->ctx = ctx;
    u->node = ctx->arg;
    u->unauth_ms = u->node->opts.ticket_wait_ms > 0
                   ? u->node->opts.ticket_wait_ms : TS_NODE_UNAUTH_MS;
    u->shm = &u->node->shm;
    u->st = node_stats(u->shm);
    u->slot = &node_slots(u->shm)[ctx->slot];
    u->me = ts_owner_make(getpid(), ctx->generation);
    u->listen_fd = u->node->listen_fd;
    for (i = 0; i < TS_NODE_SHARES_N; i++) {
        u->shares[i].fd = -1;
    }
    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        u->dls[i].fd = -1;
    }

    err[0] = '\0';
    u->tls = ts_tls_ctx_new(TS_TLS_PEER_SERVER, u->node->opts.crt_path,
                            u->node->opts.key_path, NULL, err, sizeof(err));
    if (u->tls == NULL) {
        ts_err("cannot serve peers: node certificate \"%s\": %s",
               u->node->opts.crt_path, err);
        free(u);
        return 1;
    }
    /* NULL if the CA cannot be read yet: retried on the next PEER_AUTH */
    (void) up_verifier(u);

    u->ep = epoll_create1(EPOLL_CLOEXEC);
    if (u->ep < 0) {
        ts_err("epoll_create1() failed: %s", strerror(errno));
        up_free_keys(u);
        free(u);
        return 1;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.u64 = UP_KEY_STOP;
    if (ts_worker_stop_fd() >= 0) {
        epoll_ctl(u->ep, EPOLL_CTL_ADD, ts_worker_stop_fd(), &ev);
    }
    up_listen_on(u, 1);
    if (!u->listening) {
        close(u->ep);
        up_free_keys(u);
        free(u);
        return 2;
    }

    ts_slot_set_active(u->slot, u->me);
    ts_worker_ready(ctx);

    while (!ts_worker_stopping() && !ts_worker_orphaned(ctx)) {
        n = epoll_wait(u->ep, evs, TS_UP_EV_N,
                       u->nagain > 0 ? 0 : TS_UP_TICK_MS);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            ts_err("epoll_wait() failed: %s", strerror(errno));
            rc = 1;
            break;
        }
        for (i = 0; i < n; i++) {
            if (evs[i].data.u64 == UP_KEY_STOP) {
                continue;
            }
            if (evs[i].data.u64 == UP_KEY_LISTEN) {
                up_accept(u);
                continue;
            }
            if (evs[i].data.u64 < TS_NODE_PEER_CONNS_N) {
                up_handle(u, (int) evs[i].data.u64, evs[i].events);
            }
        }
        /* links with requests left in their buffers (TLS-decrypted ones
         * epoll cannot see) */
        for (i = 0; u->nagain > 0 && i < TS_NODE_PEER_CONNS_N; i++) {
            if (u->conns[i] != NULL && u->conns[i]->again) {
                up_handle(u, i, 0);
            }
        }
        now = ts_now_ms();
        if (now - last_tick >= TS_UP_TICK_MS) {
            last_tick = now;
            ts_slot_beat(u->slot);
            up_timeouts(u);
        }
    }

    for (i = 0; i < TS_NODE_PEER_CONNS_N; i++) {
        up_close(u, i, NULL);
    }
    for (i = 0; i < TS_NODE_SHARES_N; i++) {
        if (u->shares[i].fd >= 0) {
            close(u->shares[i].fd);
        }
    }
    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        if (u->dls[i].fd >= 0) {
            close(u->dls[i].fd);
        }
    }
    close(u->ep);
    up_free_keys(u);
    free(u);
    return rc;
}
