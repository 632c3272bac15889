/*
 * up_int.h -- the uploader worker's internal header: the worker state
 * (up_t), its links (up_link_t) and their queued requests (up_req_t),
 * shared by the uploader's modules and by nothing else.  The way in from
 * outside is up_main() in node.h.
 *
 *   up_worker.c   the loop: init, epoll dispatch, per-link turns,
 *                 deadlines, cleanup
 *   up_link.c     links: accept and its caps, TLS handshake, epoll
 *                 interest, reading and parsing requests, PEER_AUTH
 *   up_rate.c     the node-wide upload cap: slices of chunks against
 *                 the shared token bucket, the rate timer
 *   up_serve.c    serving: (group, name) lookups, open files, MAP and
 *                 GET answers, chunk bytes by sendfile (or pread + TLS),
 *                 the node's load counts
 *   up_seed.c     super-seeding: a complete share's chunk sent to one
 *                 peer is refused to another for a while
 *   up_have.c     pushed holdings: new chunks of a download in progress
 *                 sent (PEER_HAVE) to the links that asked for its map
 *
 * Locking: none; an up_t belongs to one worker process (one thread).
 */
#ifndef UP_INT_H_INCLUDED
#define UP_INT_H_INCLUDED

#include <stdint.h>
#include <sys/types.h>
#include "ts_config.h"
#include "ts_buf.h"
#include "ts_claim.h"
#include "ts_ev.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "ts_sup.h"
#include "ts_ticket.h"
#include "ts_tls.h"
#include "node_shm.h"
#include "node.h"
#include "up_auth.h"
#include "peer_msg.h"

/* a PEER_AUTH carries a whole ticket; MAP/GET stay limited to
 * TS_UP_REQ_MAX_B (peer_msg_req_hdr_decode) */
#define UP_IN_MAX_B        PEER_MSG_REQ_IN_MAX_B

typedef struct {
    uint8_t   type;
    uint8_t   bad;              /* payload malformed */
    uint8_t   perm;             /* MAP/GET: authorized when parsed */
    uint8_t   status;           /* PEER_AUTH: the answer, decided when
                                   parsed */
    uint8_t   want_have;        /* PEER_MAP with TS_FF_HAVE */
    uint8_t   ranged;           /* PEER_GET: a ranged one (roff, rlen) */
    uint64_t  reqid;
    uint32_t  index;
    uint32_t  roff, rlen;       /* its range, checked when served */
    char      group[TS_ID_MAX_B + 1];
    char      name[TS_NAME_MAX_B + 1];
    char      msg[TS_UP_MSG_B];    /* PEER_AUTH: the reason of a refusal */
} up_req_t;

_Static_assert(sizeof(((up_req_t *) 0)->group)
               == sizeof(((peer_msg_req_t *) 0)->group)
               && sizeof(((up_req_t *) 0)->name)
               == sizeof(((peer_msg_req_t *) 0)->name),
               "up_req_t and peer_msg_req_t name buffers differ");

typedef struct {
    uint8_t   b[16];            /* IPv6, or IPv4-mapped */
} up_addr_t;

/* A link's subscription to a download's new chunks (up_have.c) */
typedef struct {
    int       used;
    int       dl;               /* download index */
    uint32_t  dl_id;            /* ... and its id then */
    uint32_t  seq;              /* the next have_ring sequence to push */
    int64_t   stall_ms;         /* waiting on an unwritten slot since */
    char      group[TS_ID_MAX_B + 1];
    char      name[TS_NAME_MAX_B + 1];
} up_have_sub_t;

typedef struct {
    ts_ev_io_t  io;             /* in the loop (io.data: the up_t) */
    int         idx;            /* in up_t conns[] */
    ts_conn_t  *c;
    int         fd;
    int64_t     born_ms;        /* accepted at: handshake, ticket deadlines */
    int64_t     last_ms;        /* last byte in or out */
    int64_t     frame_ms;       /* a partial frame began at */
    int         ready;          /* handshake done, peer identity known */
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
    uint32_t    chunk_len;      /* bytes of the reply's data (a chunk,
                                   or a ranged GET's range) */
    int         ranged;         /* the reply in progress is a range
                                   that does not end at the chunk's end
                                   (not counted as a chunk) */
    int         active;         /* counted in active_uploads */
    int         share_idx;      /* for per-share counters, or -1 */
    node_rate_credit_t rate_cr; /* upload-cap bytes reserved, not sent */
    int         rate_wait;      /* waiting for tokens (no EPOLLOUT), or
                                   held back for the fair share */
    int         fair_share;     /* complete share counted as asked by
                                   this link's peer (up_seed.c), or -1 */
    int         fair_slot;      /* its word in node_sent_sh_t fair, or -1 */
    int64_t     fair_held_ms;   /* held back since (ms), 0 = not held */
    int         lowat;          /* TCP_NOTSENT_LOWAT set */
    int         dl_idx;         /* the download the reply in progress is
                                   read from, or -1 (up_serve_drop) */
    uint32_t    dl_gen;         /* ... its id when its file was opened */
    uint32_t    chunk_idx;      /* ... the chunk */
    up_have_sub_t have[TS_UP_HAVE_SUBS_N];
} up_link_t;

typedef struct {
    int       fd;
    uint32_t  gen;              /* share seq / download id when opened */
} up_fcache_t;

/* A chunk of a download this worker served lately (up_serve_drop);
 * dl1 == 0: an empty slot. */
typedef struct {
    uint32_t  dl1;              /* download index + 1 */
    uint32_t  gen;              /* its id (up_fcache_t gen) */
    uint32_t  chunk;
} up_drop_t;

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
    ts_ev_t           *ev;          /* the loop */
    ts_ev_io_t         listen_io;   /* the shared listening socket */
    ts_ev_timer_t      tick;        /* every TS_UP_TICK_MS: deadlines */
    int                listen_fd;
    int                listening;
    int                nconns;
    int                nunauth;     /* links that showed no ticket yet */
    ts_tls_t          *tls;
    ts_ticket_verifier_t *verifier; /* NULL while the CA is unreadable */
    int64_t            verifier_ms; /* last attempt to load it */
    int64_t            unauth_ms;   /* links must hold a ticket within */
    up_link_t         *conns[TS_NODE_PEER_CONNS_N];
    up_fcache_t        shares[TS_NODE_SHARES_N];
    up_fcache_t        dls[TS_NODE_DOWNLOADS_N];
    up_drop_t          served[TS_UP_DROP_LAG_N > 0 ? TS_UP_DROP_LAG_N : 1];
    uint32_t           nserved;     /* chunks noted in served[], ever */
    up_lookup_t        look[TS_UP_LOOKUP_N];
    int                look_next;
    node_share_sh_t    share_snap;
    node_dl_sh_t       dl_snap;
    ts_rate_sh_t      *rate;        /* the node's upload cap */
    ts_ev_timer_t      rate_timer;  /* wakes links waiting for tokens */
    int                rate_waiting; /* links with rate_wait set */
    ts_ev_timer_t      have_timer;  /* wakes links with chunks to push */
} up_t;

/* ---- up_worker.c: the loop ------------------------------------------ */
/* A link's epoll callback (io.data is the up_t). */
void up_loop_io(ts_ev_t *ev, ts_ev_io_t *io, uint32_t events);

/* ---- up_link.c: links ------------------------------------------------ */
void up_link_events(up_t *u, up_link_t *k, int idx);
void up_link_listen(up_t *u, int on);
void up_link_close(up_t *u, int idx, const char *why);
void up_link_accept(up_t *u);
int  up_link_again(up_link_t *k, uint32_t *want, int other);
ts_ticket_verifier_t *up_link_verifier(up_t *u);
int  up_link_ready(up_link_t *k);
int  up_link_read(up_t *u, up_link_t *k);

/* ---- up_serve.c: answers --------------------------------------------- */
void up_serve_queued(up_t *u, int d);
void up_serve_active(up_t *u, int d);
int  up_serve_pump(up_t *u, up_link_t *k);

/* ---- up_seed.c: super-seeding ------------------------------------------ */
/* 1 if chunk of complete share `share` may go to k's peer now (noted as
 * sent to it), 0 if another peer got it lately. */
int  up_seed_allow(up_t *u, const up_link_t *k, int share, uint32_t chunk);
/* 1 if k's GET of a chunk of complete share `share` must wait: its
 * peer got TS_UP_FAIR_LEAD_N chunks of it more than the least served
 * peer that asks for it too (k sleeps on the rate timer then).  Notes
 * k's peer as asking. */
int  up_fair_hold(up_t *u, up_link_t *k, int share);
/* A chunk of share went to k's peer; idle: k has no GET waiting. */
void up_fair_start(up_t *u, up_link_t *k, int share);
void up_fair_idle(up_t *u, up_link_t *k);

/* ---- up_have.c: pushed holdings --------------------------------------- */
void up_have_init(up_t *u);
/* PEER_MAP r (want_have) is answered from download dl (id): k is
 * subscribed to its new chunks from now on.  1 if so (the reply echoes
 * TS_FF_HAVE: up_have_ack), 0 when k's table is full. */
int  up_have_sub(up_t *u, up_link_t *k, const up_req_t *r, int dl,
                 uint32_t id);
/* Sets TS_FF_HAVE in the header of the frame built in b. */
void up_have_ack(ts_wbuf_t *b);
/* At a reply boundary (k->out empty): 1 if a PEER_HAVE was built in
 * k->out, 0 if there is nothing to push. */
int  up_have_emit(up_t *u, up_link_t *k);

/* ---- up_rate.c: the upload cap ------------------------------------------ */
void   up_rate_init(up_t *u);
/* Bytes of the chunk k may send now (its credit), or 0: k waits for the
 * rate timer (rate_wait set, no EPOLLOUT). */
size_t up_rate_allow(up_t *u, up_link_t *k);
/* A closing link gives back the credit it did not send. */
void   up_rate_drop(up_t *u, up_link_t *k);
/* n bytes left: of the chunk (file 1, from the credit) or of a reply
 * (file 0, charged). */
void   up_rate_sent(up_t *u, up_link_t *k, size_t n, int file);
/* The rate timer: every waiting link tries again. */
void   up_rate_resume(up_t *u);
/* k waits (rate_wait, no EPOLLOUT) until the rate timer at `at` (ms). */
void   up_rate_sleep(up_t *u, up_link_t *k, int64_t at);

#endif
