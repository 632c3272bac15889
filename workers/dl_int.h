/*
 * dl_int.h -- the downloader worker's internal header: the worker state
 * (dl_t), its links (dl_link_t), its pipelined requests (dl_req_t) and
 * its private copy of each download (dl_local_t), shared by the
 * downloader's modules and by nothing else.  The way in from outside is
 * dl_main() in node.h.
 *
 *   dl_worker.c    the loop: init, epoll, scheduling, deadlines, cleanup
 *   dl_local.c     per-download snapshot, .part descriptor, state moves,
 *                  in-flight accounting
 *   dl_link.c      links: connect, TLS handshake, output, PEER_AUTH tickets
 *   dl_recv.c      the receive path: reply framing, MAP/AUTH replies,
 *                  chunk SHA1 verify, pwrite into the .part, done bit
 *   dl_win.c       each link's request window (rate x RTT) and deadlines
 *   dl_rate.c      the node-wide download cap: reads against the shared
 *                  token bucket, EPOLLIN off while it is empty
 *   dl_pick.c      chunk maps, crash re-verify, rarest-first and
 *                  least-loaded choice, chunk claims
 *   dl_endgame.c   the last chunks asked of a second peer, the loser's
 *                  reply cancelled
 *   dl_block.c     the last chunks as blocks (ranged GETs) from several
 *                  peers, assembled and verified as one chunk
 *   dl_frontier.c  the streaming whole-file SHA1 (node_fhash_sh_t)
 *   dl_final.c     finalization: whole-file check, fsync, rename, DONE
 *
 * Locking: none; a dl_t belongs to one worker process (one thread).  What
 * the workers share lives in the node segment (node_shm.h) and changes by
 * C11 atomics and ts_claim CAS words only.
 */
#ifndef DL_INT_H_INCLUDED
#define DL_INT_H_INCLUDED

#include <limits.h>
#include <stdint.h>
#include <stddef.h>
#include "ts_config.h"
#include "ts_buf.h"
#include "ts_claim.h"
#include "ts_ev.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "ts_shm.h"
#include "ts_sup.h"
#include "ts_tls.h"
#include "node_shm.h"
#include "node.h"
#include "peer_msg.h"

/* k->small holds a whole REPLY or a PEER_DATA head (peer_msg.h) */
#define DL_SMALL_MAX_B      PEER_MSG_MAP_MAX_B
_Static_assert(PEER_MSG_HEAD_MAX_B <= PEER_MSG_MAP_MAX_B,
               "a PEER_DATA head must fit in k->small");
/* a link's request queue: a full window and a PEER_AUTH per download */
#define DL_LINK_QUEUE_N     (TS_DL_WIN_MAX_N + TS_NODE_DOWNLOADS_N)
/* dl_fh_advance: another worker holds the frontier, or it was reset */
#define DL_FH_BUSY          UINT32_MAX

enum { REQ_GET = 1, REQ_MAP = 2, REQ_AUTH = 3 };
/* blocks of a chunk (a ranged GET asks one) */
#define DL_BLK_MAX_N        (TS_CHUNK_B / TS_BLOCK_B)
_Static_assert(TS_CHUNK_B % TS_BLOCK_B == 0 && DL_BLK_MAX_N <= 32,
               "a chunk must be whole blocks, at most 32");
/* RX_HAVE: the body of a pushed PEER_HAVE (dl_have.c), outside the
 * request order */
enum { RX_HDR = 0, RX_HEAD, RX_BODY, RX_DATA, RX_HAVE };
_Static_assert(PEER_MSG_HAVE_MAX_B <= DL_SMALL_MAX_B,
               "a PEER_HAVE must fit in k->small");

typedef struct {
    int       kind;
    int       dl;            /* download index */
    uint32_t  dl_id;         /* node_dl_sh_t.id when sent */
    int       src;
    uint32_t  chunk;
    uint32_t  len;           /* expected chunk (or block) length */
    uint32_t  gen;           /* REQ_AUTH: ticket generation sent;
                                as > 0: the assembly's generation */
    int       as;            /* assembly slot + 1 the bytes go to (then
                                dup: the assembly holds the claim) */
    int       blk;           /* block + 1 of a ranged GET; 0 = whole */
    uint32_t  off;           /* ranged GET: offset in the chunk */
    int       pub;           /* counted in shm inflight */
    int       dup;           /* endgame copy: the claim is another's */
    uint64_t  reqid;
    int64_t   sent_us;
} dl_req_t;

/* What one link's peer knows of one download's ticket.  A link is one
 * TLS session: the uploader remembers authorizations per link, so this
 * is reset whenever the link closes. */
typedef struct {
    uint32_t    dl_id;       /* download id this state is for */
    uint32_t    sent_gen;    /* ticket generation sent (0 = none) */
    uint32_t    bad_gen;     /* generation the peer refused (0 = none) */
    int64_t     hold_ms;     /* no MAP/GET of the download before */
} dl_auth_t;

typedef struct {
    ts_ev_io_t  io;          /* in the loop while fd is (io.data: dl_t) */
    char        addr[64];
    uint8_t     fp[TS_FP_B]; /* the identity the tracker gave for addr */
    ts_conn_t  *c;
    int         fd;
    int         connecting;  /* fd in the epoll set for EPOLLOUT, no c */
    int         hs;          /* c exists, TLS handshake not finished */
    int         hs_warned;   /* a handshake failure was logged */
    int64_t     connect_until_ms;   /* connect, then handshake deadline */
    int64_t     retry_at_ms;
    int         errors;
    int         norange;     /* answered a ranged GET "bad request": the
                                peer serves whole chunks only */
    int64_t     penalty_ms;  /* next error close: back off this long */
    int64_t     closed_ms;   /* made or last closed at */
    dl_auth_t   auth[TS_NODE_DOWNLOADS_N];
    /* requests, answered in order */
    dl_req_t    q[DL_LINK_QUEUE_N];
    int         qhead, qn;
    int         nauth;       /* PEER_AUTHs among the qn */
    uint32_t    win;         /* GETs + MAPs it may have out (dl_win.c) */
    int64_t     rtt_us;      /* least request -> first byte, drifting */
    uint64_t    lrate;       /* bytes/s of its GET replies, EWMA */
    /* output */
    ts_wbuf_t   out;
    size_t      woff;
    int         want_out;
    /* input */
    int         rx;
    uint8_t     hdr[TS_FRAME_HDR_B];
    ts_frame_hdr_t fh;
    size_t      got;
    size_t      need;
    uint8_t    *small;       /* DL_SMALL_MAX_B */
    uint8_t    *data;        /* TS_CHUNK_B, allocated once */
    uint16_t    st;
    uint32_t    load;
    uint32_t    index;
    int64_t     last_rx_ms;
    int64_t     start_us;    /* current reply started (for rate) */
    node_rate_credit_t rate_cr; /* download-cap bytes reserved, not read */
    int         rate_wait;   /* waiting for tokens: EPOLLIN removed */
    int64_t     rate_held_ms; /* last time the cap held this link back */
} dl_link_t;

typedef struct {
    /* copied under the entry's seqlock (dl_local_snapshot) */
    char       group[TS_ID_MAX_B + 1];
    char       name[TS_NAME_MAX_B + 1];
    node_fid_t part_id;      /* the .part the CLI made (node_open_part) */
    char       part[PATH_MAX];
    char       dest[PATH_MAX];
    uint64_t   size;
    uint32_t   nchunks;
    uint8_t    sha1[20];
    /* this worker's own state of the download */
    int        active;
    uint32_t   id;           /* node_dl_sh_t.id snapshotted */
    int        fd;
    uint16_t  *avail;
    uint8_t   *avoid;        /* src+1 that sent bad data for a chunk */
    int64_t    avail_ms;
    uint16_t   ncomplete;    /* usable complete sources (dl_pick_avail) */
    uint16_t   npartial;     /* usable partial sources with a map */
    uint32_t   eg[TS_DL_ENDGAME_N];  /* chunks this worker asked twice */
    uint32_t   neg;
    int        dirty;
    uint32_t   fh_next;      /* frontier last seen (a lower bound) */
    uint32_t   wrote[TS_DL_DROP_LAG_N > 0 ? TS_DL_DROP_LAG_N : 1];
                             /* chunk+1 of our last pwrite()s (a ring) */
    uint32_t   nwrote;       /* pwrite()s so far (ring position) */
    uint64_t   wb_off;       /* writeback started up to here */
    uint32_t   tgen;         /* ticket generation copied (0 = none) */
    uint32_t   tlen;
    uint8_t    ticket[TS_TICKET_MAX_B];
} dl_local_t;

/* A chunk being assembled from blocks (dl_block.c): its claim is held by
 * the worker for as long as the assembly lives. */
typedef struct {
    int        used;
    uint32_t   gen;          /* bumped at each use (stale replies) */
    int        dl;
    uint32_t   dl_id;
    uint32_t   chunk;
    uint32_t   len;
    uint32_t   nblk;
    uint32_t   got;          /* bit b: block b is in buf */
    int        whole;        /* the blocks failed SHA1: a whole copy */
    int        whole_out;    /* ... is on its way */
    uint8_t    asked[DL_BLK_MAX_N];  /* requests in flight for block b */
    uint8_t    from[DL_BLK_MAX_N];   /* src + 1 whose bytes block b is */
    uint32_t   at[DL_BLK_MAX_N];     /* sources asked for block b */
    int64_t    asked_ms[DL_BLK_MAX_N];
    uint8_t   *buf;          /* TS_CHUNK_B, allocated once */
} dl_asm_t;

typedef struct {
    const ts_worker_ctx_t *ctx;
    const node_t    *node;
    ts_tls_t        *tls;    /* TS_TLS_PEER_CLIENT, our node certificate */
    int              need;   /* a link became usable: schedule now */
    const ts_shm_t  *shm;
    node_dl_sh_t    *dls;
    node_stats_sh_t *stats;
    ts_owner_t       me;
    int              slot;
    int              inst;   /* our index among the node's downloaders */
    int              ndl;    /* the node's downloaders (peer affinity) */
    ts_ev_t         *ev;     /* the loop */
    int              inflight;
    uint64_t         reqid;
    uint64_t         rnd;
    dl_link_t       *conns[TS_DL_LINKS_N];
    dl_local_t       loc[TS_NODE_DOWNLOADS_N];
    ts_wbuf_t        pl;
    uint8_t         *fbuf;   /* finalize / maybe re-hash buffer */
    int64_t          slow_ms; /* dl_loop_slow's limit */
    ts_rate_sh_t    *rate;   /* the node's download cap */
    ts_ev_timer_t    rate_timer; /* wakes links waiting for tokens */
    int              rate_waiting; /* links with rate_wait set */
    dl_asm_t         as[TS_DL_ASM_N]; /* chunks assembled from blocks */
} dl_t;

/* The length of chunk i (the last one may be short). */
static inline uint32_t
dl_local_chunk_len(const dl_local_t *l, uint32_t i)
{
    uint64_t off = (uint64_t) i * TS_CHUNK_B;

    return (uint32_t) (l->size - off < TS_CHUNK_B ? l->size - off
                                                   : TS_CHUNK_B);
}

/* ---- dl_worker.c: the loop ------------------------------------------ */
/* A link's epoll callback (io.data is the dl_t). */
void dl_loop_io(ts_ev_t *ev, ts_ev_io_t *io, uint32_t events);

/* ---- dl_local.c: the worker's copy of each download ------------------ */
void dl_local_drop(dl_local_t *l);
int  dl_local_snapshot(dl_t *w, int i);
int  dl_local_part_fd(dl_local_t *l);
const char *dl_local_part_why(int err);
int  dl_local_set_state(dl_t *w, int i, uint32_t from, uint32_t to,
                        const char *why);
void dl_local_fail(dl_t *w, int i, uint32_t from, const char *why);
int  dl_local_chunk_mine(dl_t *w, int i, uint32_t id, uint32_t c);
void dl_local_ticket_refresh(dl_t *w, int i);
int  dl_local_inflight_add(dl_t *w, int i, int s);
void dl_local_inflight_sub(dl_t *w, const dl_req_t *r);

/* ---- dl_win.c: per-link window and deadlines ------------------------ */
void    dl_win_reset(dl_link_t *k);
void    dl_win_rtt(dl_link_t *k, int64_t sample_us);
void    dl_win_reply(dl_link_t *k, uint32_t len, int64_t us);
int64_t dl_win_nobyte_ms(const dl_link_t *k);
int64_t dl_win_slow_ms(const dl_link_t *k, int64_t limit);

/* ---- dl_rate.c: the download cap ------------------------------------- */
void   dl_rate_init(dl_t *w);
/* How much of `want` bytes k may read now (its credit), or 0: k waits
 * for the rate timer with EPOLLIN removed. */
size_t dl_rate_allow(dl_t *w, dl_link_t *k, size_t want);
/* Gives back the credit k did not read (it closes or starts over). */
void   dl_rate_drop(dl_t *w, dl_link_t *k);
/* n bytes were read on k. */
void   dl_rate_got(dl_t *w, dl_link_t *k, size_t n);
/* From the loop's idle pass: resumes waiting links if the timer is not
 * armed (it could not be). */
void   dl_rate_idle(dl_t *w);

/* ---- dl_link.c: links to peers --------------------------------------- */
void dl_link_backoff(dl_t *w, const dl_link_t *k, int64_t until);
void dl_link_release(dl_t *w, dl_req_t *r);
int  dl_link_wanted(const dl_t *w, const dl_link_t *k);
void dl_link_close(dl_t *w, dl_link_t *k, int error, const char *why);
void dl_link_free(dl_link_t *k);
void dl_link_events(dl_t *w, dl_link_t *k, uint32_t events);
void dl_link_connected(dl_t *w, dl_link_t *k);
void dl_link_hs_done(dl_t *w, dl_link_t *k);
void dl_link_hs_fail(dl_t *w, dl_link_t *k, int err);
dl_link_t *dl_link_get(dl_t *w, const node_src_sh_t *src);
int  dl_link_flush(dl_t *w, dl_link_t *k);
dl_auth_t *dl_link_auth(dl_link_t *k, int i, uint32_t id);
int  dl_link_auth_ok(dl_t *w, dl_link_t *k, int i, int64_t now);
int  dl_link_send(dl_t *w, dl_link_t *k, uint8_t type, const dl_req_t *r);

/* ---- dl_recv.c: the receive path ------------------------------------- */
int  dl_recv_input(dl_t *w, dl_link_t *k);
int  dl_recv_status(dl_t *w, dl_link_t *k, const dl_req_t *r);
void dl_recv_blame(dl_t *w, int i, int s, uint32_t c, const char *what);
void dl_recv_count(dl_t *w, int i, int s, uint32_t chunks, uint32_t len);
void dl_recv_pace(dl_t *w, dl_link_t *k, const dl_req_t *r);
int  dl_recv_store(dl_t *w, int i, uint32_t id, uint32_t c,
                   const uint8_t *buf, uint32_t len, int s, int dup);

/* ---- dl_have.c: pushed holdings (PEER_HAVE) ---------------------------- */
/* 1 if (addr, fp) of source src is k's peer */
int  dl_link_is_src(const node_src_sh_t *src, const dl_link_t *k);
/* A PEER_HAVE header is in k->fh: its body is read next (RX_HAVE).  0,
 * or -1 after closing k (a header that does not fit). */
int  dl_have_frame(dl_t *w, dl_link_t *k);
/* Its whole body is in k->small: the source's map gets the chunks.  0,
 * or -1 after closing k (malformed). */
int  dl_have_recv(dl_t *w, dl_link_t *k);
/* An OK PEER_MAP reply of source r->src came on k: did the peer promise
 * pushes (TS_FF_HAVE echoed)? */
void dl_have_map_reply(dl_t *w, const dl_link_t *k, const dl_req_t *r);
/* k is closing: the pushes on it stop, its sources are polled again. */
void dl_have_link_closed(dl_t *w, const dl_link_t *k);

/* ---- dl_pick.c: what to fetch from whom ------------------------------ */
void dl_pick_maps(dl_t *w, int i, int64_t now);
void dl_pick_maybe(dl_t *w, int i);
void dl_pick_avail(dl_t *w, int i, int64_t now);
int  dl_pick_one(dl_t *w, int i, int64_t now);
int  dl_pick_elsewhere(dl_t *w, int i, int src, uint32_t c, int64_t now);
int  dl_pick_spill(dl_t *w, int i, int64_t now, uint32_t elig, int bs,
                   uint32_t pick);
int  dl_pick_owned(const dl_t *w, int i, int s);
uint64_t dl_pick_cost(const node_src_sh_t *src);
int  dl_pick_send(dl_t *w, int i, int bs, dl_link_t *k, uint32_t pick,
                  int dup);

/* ---- dl_endgame.c: the last chunks from two peers -------------------- */
int  dl_eg_pick(dl_t *w, int i, uint32_t elig, dl_link_t **ks,
                _Atomic uint64_t **maps);
int  dl_eg_cancel(dl_t *w, dl_link_t *k);

/* ---- dl_block.c: the last chunks as blocks from several peers -------- */
int  dl_blk_start(dl_t *w, int i, int64_t now, uint32_t c);
int  dl_blk_pick(dl_t *w, int i, int64_t now, uint32_t elig,
                 dl_link_t **ks, _Atomic uint64_t **maps);
void dl_blk_recv(dl_t *w, dl_link_t *k, const dl_req_t *r);
void dl_blk_release(dl_t *w, const dl_req_t *r);
int  dl_blk_moot(const dl_t *w, const dl_req_t *r);
int  dl_blk_has(const dl_t *w, int i, uint32_t c);
uint32_t dl_blk_queued(const dl_link_t *k);
void dl_blk_sweep(dl_t *w);
void dl_blk_cleanup(dl_t *w);

/* ---- dl_frontier.c: the streaming whole-file SHA1 -------------------- */
uint32_t dl_fh_advance(dl_t *w, int i, const uint8_t *buf, uint32_t chunk,
                       uint32_t max);
int  dl_fh_final(dl_t *w, int i, uint8_t md[20]);
int  dl_fh_hashing(const dl_t *w, int i);
void dl_fh_wrote(dl_local_t *l, int fd, uint32_t chunk);

/* ---- dl_final.c: finalization ---------------------------------------- */
void dl_final_run(dl_t *w, int i);

#endif
