/*
 * trk_sync.c -- the tracker sync process ("trk-sync") and the SYNC_*
 * request handlers (docs/REPLICATION.md).
 *
 * Purpose: keep every other tracker up to date with this tracker's op
 * log (its own ops and relayed ones): one TLS link per peer (mutual:
 * this tracker presents its own CA-signed certificate and checks that
 * the peer's names the tracker id dialled; the receiving worker accepts
 * SYNC_* only from a link whose certificate proves the tracker id the
 * request claims, else TS_ERR_AUTH and the link is closed), HELLO to
 * learn the peer's version vector, then SYNC_OPS batches in per-origin
 * seq order (or a SNAPSHOT when the peer needs ops compacted away), woken
 * within TS_SYNC_POLL_MS of a local commit; SYNC_ACK every
 * TS_SYNC_GOSSIP_MS carries the sessions that had requests here (soft
 * state) and doubles as the liveness probe from which the leader (lowest
 * live id) is chosen.  The receiving side is ordinary request workers:
 * each SYNC_OPS / SYNC_SNAPSHOT batch is merged in one tdb transaction.
 *
 * Locking: the sync process runs one thread per peer plus the main
 * thread; they share one tdb handle under `mu` (tdb handles are not
 * thread-safe) and hold it only for local reads, never across network
 * I/O.  Leader and peer states go to the tracker shm as atomics.  The
 * handlers run on a worker's event-loop thread like every request.
 *
 * Crash behaviour: the sync process keeps nothing durable of its own; a
 * killed one is respawned by the supervisor and starts with HELLO again
 * (peers report their VV, so nothing is lost or applied twice: an op
 * whose seq the receiver already has is skipped).  A receiver killed in
 * the middle of a batch rolls the whole batch back; the sender resends.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_crypto.h"
#include "ts_log.h"
#include "ts_net.h"
#include "ts_tls.h"
#include "ts_trackers.h"
#include "trk_ops.h"
#include "trk_oplog.h"
#include "trk_merge.h"
#include "trk_worker.h"
#include "trk_sync.h"

typedef struct {
    int              id;
    char             ip[64];
    uint16_t         port;
    pthread_t        th;
    int              started;
    trk_vv_t         vv;            /* peer's last VV (under mu) */
    int              vv_known;
    _Atomic int64_t  last_ok_ms;
    _Atomic int      connected;
    char             last_err[160];  /* last dial failure logged */
} peer_t;

static pthread_mutex_t  mu = PTHREAD_MUTEX_INITIALIZER;
static trk_store_t     *sst;
static trk_config_t    *scfg;
static ts_tls_t        *cli_tls;     /* TRACKER_CLIENT, own certificate */
static peer_t           peers[TRK_ORIGINS_N];
static _Atomic int      sync_stop;


static int do_snapshot(peer_t *p, ts_conn_t *c);


/* ---- a blocking request/reply over one link ---------------------------- */

/* Sends one request and waits for its reply; on OK *body / *blen get the
 * reply body (inside *frame, which the caller frees).  0 ok, -1 link
 * error, -2 the peer refused (status != OK). */
static int
rpc(ts_conn_t *c, uint8_t type, const ts_wbuf_t *req, uint8_t **frame,
    ts_rbuf_t *body)
{
    ts_frame_hdr_t h;
    uint64_t       reqid = ts_random_u64();
    ts_status_t    s;
    char           msg[256];

    *frame = NULL;
    if (req->err || ts_conn_send_frame(c, type, 0, reqid, req->data,
                                       (uint32_t) req->len,
                                       TS_SYNC_RPC_TIMEOUT_MS) != 0)
    {
        return -1;
    }
    if (ts_conn_recv_frame(c, &h, frame, TS_FRAME_MAX_B,
                           TS_SYNC_RPC_TIMEOUT_MS) != 0)
    {
        return -1;
    }
    if (h.type != TS_MSG_REPLY || h.reqid != reqid) {
        return -1;
    }
    ts_rbuf_init(body, *frame, h.len);
    if (ts_reply_parse(body, &s, msg, sizeof(msg)) != 0) {
        return -1;
    }
    if (s != TS_OK) {
        ts_warn("tracker refused %s: %s", ts_msg_name(type), msg);
        return -2;
    }
    return 0;
}


/* The reply of every SYNC_* request ends with the peer's VV. */
static int
take_vv(peer_t *p, ts_rbuf_t *body)
{
    trk_vv_t vv;

    if (trk_vv_decode(body, &vv) != 0 || ts_rbuf_end(body) != 0) {
        return -1;
    }
    pthread_mutex_lock(&mu);
    p->vv = vv;
    p->vv_known = 1;
    pthread_mutex_unlock(&mu);
    atomic_store(&p->last_ok_ms, ts_now_ms());
    return 0;
}


static int
do_hello(peer_t *p, ts_conn_t *c)
{
    ts_wbuf_t  b;
    ts_rbuf_t  r;
    uint8_t   *frame;
    trk_vv_t   mine;
    int        rc, id, fresh = 0;

    pthread_mutex_lock(&mu);
    rc = trk_vv_load(sst, &mine);
    pthread_mutex_unlock(&mu);
    if (rc != 0) {
        return -1;
    }
    ts_wbuf_init(&b);
    ts_put_u8(&b, (uint8_t) scfg->id);
    ts_put_u64(&b, atomic_load(&scfg->shm.stats->epoch));
    trk_vv_encode(&b, &mine);
    rc = rpc(c, TS_MSG_SYNC_HELLO, &b, &frame, &r);
    ts_wbuf_free(&b);
    if (rc == 0) {
        id = ts_get_u8(&r);
        (void) ts_get_u64(&r);
        fresh = ts_get_u8(&r);
        if (id != p->id) {
            ts_warn("tracker at %s:%u says it is %d, not %d", p->ip,
                    (unsigned) p->port, id, p->id);
            rc = -1;
        } else {
            rc = take_vv(p, &r);
        }
    }
    free(frame);
    if (rc == 0 && fresh == 1) {
        /* a new data directory: one full snapshot first */
        rc = do_snapshot(p, c);
    }
    return rc;
}


/* ---- snapshot ---------------------------------------------------------- */

typedef struct {
    ts_wbuf_t *batches;
    uint32_t  *counts;
    size_t     n;
    size_t     cap;
    int        err;
} snap_t;


static int
snap_collect(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
             void *arg)
{
    snap_t    *s = arg;
    ts_wbuf_t *nb;
    uint32_t  *nc;

    if (s->n == 0 || s->batches[s->n - 1].len + kl + vl + 8
                     > TS_SYNC_BATCH_B)
    {
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 16;
            nb = realloc(s->batches, s->cap * sizeof(*nb));
            if (nb == NULL) {
                s->err = 1;
                return -1;
            }
            s->batches = nb;
            nc = realloc(s->counts, s->cap * sizeof(*nc));
            if (nc == NULL) {
                s->err = 1;
                return -1;
            }
            s->counts = nc;
        }
        ts_wbuf_init(&s->batches[s->n]);
        s->counts[s->n] = 0;
        s->n++;
    }
    ts_put_blob(&s->batches[s->n - 1], k, (uint32_t) kl);
    ts_put_blob(&s->batches[s->n - 1], v, (uint32_t) vl);
    s->counts[s->n - 1]++;
    return s->batches[s->n - 1].err ? -1 : 0;
}


static int
do_snapshot(peer_t *p, ts_conn_t *c)
{
    snap_t     s;
    trk_vv_t   vv;
    ts_wbuf_t  b;
    ts_rbuf_t  r;
    uint8_t   *frame;
    size_t     i, total = 0;
    int        rc = 0;

    memset(&s, 0, sizeof(s));
    pthread_mutex_lock(&mu);
    /* the VV first: the state read after it holds at least its ops */
    if (trk_vv_load(sst, &vv) != 0
        || trk_each_replicated(sst, snap_collect, &s) != 0 || s.err)
    {
        rc = -1;
    }
    pthread_mutex_unlock(&mu);
    ts_info("sending a snapshot to tracker %d (%zu batches)", p->id, s.n);
    ts_wbuf_init(&b);
    for (i = 0; rc == 0 && (i < s.n || (i == 0 && s.n == 0)); i++) {
        int last = i + 1 >= s.n;

        ts_wbuf_reset(&b);
        ts_put_u8(&b, (uint8_t) scfg->id);
        ts_put_u8(&b, (uint8_t) last);
        ts_put_u32(&b, s.n ? s.counts[i] : 0);
        if (s.n) {
            ts_put_raw(&b, s.batches[i].data, s.batches[i].len);
            total += s.counts[i];
        }
        if (last) {
            trk_vv_encode(&b, &vv);
        }
        rc = rpc(c, TS_MSG_SYNC_SNAPSHOT, &b, &frame, &r);
        if (rc == 0) {
            rc = last ? take_vv(p, &r) : 0;
        }
        free(frame);
    }
    ts_wbuf_free(&b);
    for (i = 0; i < s.n; i++) {
        ts_wbuf_free(&s.batches[i]);
    }
    free(s.batches);
    free(s.counts);
    if (rc == 0) {
        ts_info("snapshot of %zu records sent to tracker %d", total, p->id);
    }
    return rc;
}


/* ---- ops ---------------------------------------------------------------- */

/* A SYNC_OPS request never exceeds this (frame limit minus room for the
 * header and the request's own fields). */
#define PUSH_FRAME_B   (TS_FRAME_MAX_B - 64 * 1024)

/* Sends what the peer lacks, at most TS_SYNC_PUSH_ROUNDS_N batches: 0 done
 * (or no progress), 1 more to send, -1 link error. */
static int
do_push(peer_t *p, ts_conn_t *c)
{
    trk_vv_t   mine, theirs;
    ts_wbuf_t  b, op;
    ts_rbuf_t  r;
    uint8_t   *frame;
    uint64_t   after, seq;
    uint32_t   n;
    int        o, rc, snap, full, rounds = 0, sent = 0;

    ts_wbuf_init(&b);
    ts_wbuf_init(&op);
    for (;;) {
        if (++sent > TS_SYNC_PUSH_ROUNDS_N) {
            /* bounded: the caller gossips if due and comes back */
            rc = 1;
            break;
        }
        ts_wbuf_reset(&b);
        ts_put_u8(&b, (uint8_t) scfg->id);
        ts_put_u32(&b, 0);               /* count, patched below */
        n = 0;
        snap = 0;
        pthread_mutex_lock(&mu);
        theirs = p->vv;
        rc = trk_vv_load(sst, &mine);
        full = 0;
        for (o = 1; rc == 0 && o < TRK_ORIGINS_N && !snap && !full; o++) {
            after = theirs.seq[o];
            while (mine.seq[o] > after && n < TS_SYNC_BATCH_N
                   && b.len < TS_SYNC_BATCH_B)
            {
                rc = trk_oplog_next(sst, o, after, &seq);
                if (rc == 2) {
                    snap = 1;
                    rc = 0;
                    break;
                }
                if (rc != 0) {
                    rc = 0;
                    break;
                }
                if (trk_oplog_get(sst, o, seq, &op) != 0) {
                    break;
                }
                if (b.len + 4 + op.len > PUSH_FRAME_B) {
                    if (n > 0) {
                        full = 1;       /* send what is there first */
                        break;
                    }
                    /* cannot happen (every op is bounded); a snapshot
                     * still gets its effects across */
                    ts_err("op %d/%llu too big for a frame (%zu bytes)", o,
                           (unsigned long long) seq, op.len);
                    snap = 1;
                    break;
                }
                ts_put_blob(&b, op.data, (uint32_t) op.len);
                n++;
                after = seq;
            }
        }
        pthread_mutex_unlock(&mu);
        if (rc != 0 || b.err) {
            rc = -1;
            break;
        }
        if (snap) {
            rc = do_snapshot(p, c);
            if (rc != 0 || ++rounds > 3) {
                break;
            }
            continue;
        }
        if (n == 0) {
            rc = 0;
            break;
        }
        b.data[1] = (uint8_t) (n >> 24);
        b.data[2] = (uint8_t) (n >> 16);
        b.data[3] = (uint8_t) (n >> 8);
        b.data[4] = (uint8_t) n;
        rc = rpc(c, TS_MSG_SYNC_OPS, &b, &frame, &r);
        if (rc == 0) {
            rc = take_vv(p, &r);
        }
        free(frame);
        if (rc != 0) {
            break;
        }
        pthread_mutex_lock(&mu);
        /* no progress (e.g. an order the peer refused): wait for the
         * next wake-up or gossip instead of spinning */
        rc = memcmp(&theirs, &p->vv, sizeof(theirs)) == 0;
        pthread_mutex_unlock(&mu);
        if (rc) {
            rc = 0;
            break;
        }
    }
    ts_wbuf_free(&b);
    ts_wbuf_free(&op);
    return rc;
}


/* ---- gossip ------------------------------------------------------------- */

typedef struct {
    ts_wbuf_t *b;
    uint32_t   n;
} gossip_t;


static void
gossip_add(const uint8_t h[32], void *arg)
{
    gossip_t *g = arg;

    if (g->n < TS_SYNC_GOSSIP_MAX_N) {
        ts_put_raw(g->b, h, 32);
        g->n++;
    }
}


static int
do_gossip(peer_t *p, ts_conn_t *c)
{
    ts_wbuf_t  b, hs;
    ts_rbuf_t  r;
    uint8_t   *frame;
    gossip_t   g;
    int        rc;

    ts_wbuf_init(&hs);
    g.b = &hs;
    g.n = 0;
    trk_sess_each_local(&scfg->shm, ts_now_ms() - 3 * TS_SYNC_GOSSIP_MS,
                        gossip_add, &g);
    ts_wbuf_init(&b);
    ts_put_u8(&b, (uint8_t) scfg->id);
    ts_put_u8(&b, (uint8_t) atomic_load(&scfg->shm.stats->leader));
    ts_put_u32(&b, g.n);
    ts_put_raw(&b, hs.data, hs.len);
    rc = rpc(c, TS_MSG_SYNC_ACK, &b, &frame, &r);
    if (rc == 0) {
        rc = take_vv(p, &r);
    }
    free(frame);
    ts_wbuf_free(&b);
    ts_wbuf_free(&hs);
    return rc;
}


/* ---- one thread per peer ------------------------------------------------ */

static void
nap_ms(int ms)
{
    int64_t end = ts_now_ms() + ms;

    while (!atomic_load(&sync_stop) && ts_now_ms() < end) {
        usleep(ms < 20 ? (useconds_t) ms * 1000 : 20000);
    }
}


/* Logs a failed dial once per distinct reason (a peer that is down must
 * not fill the log every backoff period). */
static void
dial_failed(peer_t *p, const char *why)
{
    if (strcmp(p->last_err, why) != 0) {
        snprintf(p->last_err, sizeof(p->last_err), "%s", why);
        ts_warn("sync link to tracker %d at %s:%u: %s", p->id, p->ip,
                (unsigned) p->port, why);
    }
}


/* Connects to the peer and completes a mutually authenticated TLS
 * handshake with it within the deadlines.  NULL on failure. */
static ts_conn_t *
dial(peer_t *p)
{
    ts_conn_t *c;
    char       why[160];
    int        fd;

    fd = ts_net_connect(p->ip, p->port, TS_SYNC_CONNECT_MS);
    if (fd < 0) {
        return NULL;            /* down: nothing worth a log line */
    }
    c = ts_conn_new_tls(fd, cli_tls, p->id, NULL);
    if (c == NULL) {
        return NULL;
    }
    if (ts_conn_handshake(c, (int) scfg->handshake_ms) != 0) {
        snprintf(why, sizeof(why), "TLS handshake failed: %s",
                 ts_tls_last_error()[0] ? ts_tls_last_error()
                                        : strerror(errno));
        dial_failed(p, why);
        ts_conn_free(c);
        return NULL;
    }
    return c;
}


static void *
peer_main(void *arg)
{
    peer_t    *p = arg;
    ts_conn_t *c;
    int        backoff = TS_SYNC_BACKOFF_MIN_MS, rc;
    uint64_t   wake, seen;
    int64_t    last_gossip, now;

    while (!atomic_load(&sync_stop)) {
        c = dial(p);
        if (c == NULL) {
            nap_ms(backoff);
            backoff = backoff * 2 > TS_SYNC_BACKOFF_MAX_MS
                      ? TS_SYNC_BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        if (do_hello(p, c) != 0) {
            ts_conn_free(c);
            nap_ms(backoff);
            backoff = backoff * 2 > TS_SYNC_BACKOFF_MAX_MS
                      ? TS_SYNC_BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        ts_info("sync link to tracker %d up", p->id);
        p->last_err[0] = '\0';
        atomic_store(&p->connected, 1);
        backoff = TS_SYNC_BACKOFF_MIN_MS;
        seen = (uint64_t) -1;
        last_gossip = 0;
        rc = 0;
        while (!atomic_load(&sync_stop) && rc == 0) {
            wake = atomic_load(&scfg->shm.stats->op_wake);
            now = ts_now_ms();
            if (now - last_gossip >= TS_SYNC_GOSSIP_MS) {
                /* the heartbeat first, even under a steady write load */
                rc = do_gossip(p, c);
                last_gossip = now;
                if (rc == 0) {
                    seen = wake;
                    rc = do_push(p, c);   /* the peer's VV may lag */
                }
            } else if (wake != seen) {
                seen = wake;
                rc = do_push(p, c);
            } else {
                usleep(TS_SYNC_POLL_MS * 1000);
            }
            if (rc == 1) {
                seen = (uint64_t) -1;     /* more to send: come back */
                rc = 0;
            }
        }
        atomic_store(&p->connected, 0);
        ts_conn_free(c);
        if (!atomic_load(&sync_stop)) {
            ts_info("sync link to tracker %d down", p->id);
            nap_ms(backoff);
        }
    }
    return NULL;
}


/* ---- main thread: leader, compaction ------------------------------------ */

static void
elect(void)
{
    uint32_t mask = 0;
    int      i, leader = scfg->id;
    int64_t  now = ts_now_ms();

    for (i = 1; i <= scfg->trackers.n; i++) {
        if (i == scfg->id) {
            continue;
        }
        if (atomic_load(&peers[i].connected)
            && now - atomic_load(&peers[i].last_ok_ms) < TS_SYNC_PEER_DEAD_MS)
        {
            mask |= 1u << i;
            if (i < leader) {
                leader = i;
            }
        }
    }
    atomic_store(&scfg->shm.stats->peers_up, mask);
    if (atomic_exchange(&scfg->shm.stats->leader, leader) != leader) {
        ts_info("leader is now tracker %d", leader);
    }
}


static void
compact(void)
{
    trk_vv_t upto;
    int      i, o, n;

    pthread_mutex_lock(&mu);
    if (trk_vv_load(sst, &upto) != 0) {
        pthread_mutex_unlock(&mu);
        return;
    }
    for (i = 1; i <= scfg->trackers.n; i++) {
        if (i == scfg->id) {
            continue;
        }
        if (!peers[i].vv_known) {
            pthread_mutex_unlock(&mu);
            return;             /* every tracker must have acknowledged */
        }
        for (o = 1; o < TRK_ORIGINS_N; o++) {
            if (peers[i].vv.seq[o] < upto.seq[o]) {
                upto.seq[o] = peers[i].vv.seq[o];
            }
        }
    }
    n = trk_oplog_compact(sst, &upto);
    pthread_mutex_unlock(&mu);
    if (n > 0) {
        ts_debug("compacted %d ops every tracker has", n);
    }
}


int
trk_sync_main(const ts_worker_ctx_t *ctx)
{
    char     err[512];
    int      i;
    int64_t  last_compact = ts_now_ms();

    scfg = ctx->arg;
    sst = trk_store_open(scfg->db_path, 0, scfg->nosync, err, sizeof(err));
    if (sst == NULL) {
        ts_err("%s", err);
        return 1;
    }
    trk_store_set_origin(sst, scfg->id, (void *) &scfg->shm.stats->hlc,
                         (void *) &scfg->shm.stats->op_wake);
    cli_tls = ts_tls_ctx_new(TS_TLS_TRACKER_CLIENT, scfg->crt_path,
                             scfg->key_path, scfg->ca_path, err,
                             sizeof(err));
    if (cli_tls == NULL) {
        ts_err("cannot set up TLS for the sync links: %s", err);
        trk_store_close(sst);
        return 1;
    }
    atomic_store(&scfg->shm.stats->sync_pid, (int32_t) getpid());
    for (i = 1; i <= scfg->trackers.n; i++) {
        peers[i].id = i;
        snprintf(peers[i].ip, sizeof(peers[i].ip), "%s",
                 scfg->trackers.t[i - 1].ip);
        peers[i].port = scfg->trackers.t[i - 1].port;
    }
    ts_worker_ready(ctx);
    for (i = 1; i <= scfg->trackers.n; i++) {
        if (i == scfg->id) {
            continue;
        }
        if (pthread_create(&peers[i].th, NULL, peer_main, &peers[i]) != 0) {
            ts_err("pthread_create() failed: %s", strerror(errno));
            return 1;
        }
        peers[i].started = 1;
    }
    while (!ts_worker_stopping() && !ts_worker_orphaned(ctx)) {
        elect();
        if (ts_now_ms() - last_compact >= TS_SYNC_COMPACT_MS) {
            compact();
            last_compact = ts_now_ms();
        }
        usleep(50 * 1000);
    }
    atomic_store(&sync_stop, 1);
    for (i = 1; i <= scfg->trackers.n; i++) {
        if (peers[i].started) {
            pthread_join(peers[i].th, NULL);
        }
    }
    trk_store_close(sst);
    ts_tls_ctx_free(cli_tls);
    return 0;
}


/* ---- receiving side: request handlers ----------------------------------- */

/* The sending tracker's id, after checking that the link proves it:
 * its TLS client certificate is CA-signed for exactly that tracker.
 * -1 with *st (BADREQ: not a peer id; AUTH: not proven -- and the link
 * is closed after the reply). */
static int
sync_from(trk_req_t *rq, int *st)
{
    trk_link_t *l = rq->env->link;
    int         from = ts_get_u8(&rq->in);

    if (rq->in.err || from < 1 || from >= TRK_ORIGINS_N
        || from > atomic_load(&rq->env->shm->stats->ntrackers)
        || from == rq->env->tracker_id)
    {
        snprintf(rq->msg, sizeof(rq->msg), "not a peer tracker");
        *st = TS_ERR_BADREQ;
        return -1;
    }
    if (ts_tls_enabled() && (l == NULL || l->tracker != from)) {
        snprintf(rq->msg, sizeof(rq->msg), "%s is only accepted from "
                 "tracker %d's certificate", ts_msg_name(rq->type), from);
        ts_warn("%s claiming tracker %d from %s refused: the link %s",
                ts_msg_name(rq->type), from,
                l != NULL && l->addr[0] ? l->addr : "?",
                l == NULL || l->tracker == 0
                ? "has no tracker certificate"
                : "proves another tracker");
        if (l != NULL) {
            l->close_after = 1;
        }
        *st = TS_ERR_AUTH;
        return -1;
    }
    return from;
}


static int
reply_vv(trk_req_t *rq)
{
    trk_vv_t vv;

    if (trk_vv_load(rq->env->st, &vv) != 0) {
        snprintf(rq->msg, sizeof(rq->msg), "tracker database error");
        return TS_ERR_INTERNAL;
    }
    trk_vv_encode(&rq->body, &vv);
    return TS_OK;
}


static int
op_sync_hello(trk_req_t *rq)
{
    trk_vv_t vv;
    int      st;

    if (sync_from(rq, &st) < 0) {
        return st;
    }
    (void) ts_get_u64(&rq->in);
    if (trk_vv_decode(&rq->in, &vv) != 0 || ts_rbuf_end(&rq->in) != 0) {
        snprintf(rq->msg, sizeof(rq->msg), "malformed request");
        return TS_ERR_BADREQ;
    }
    ts_put_u8(&rq->body, (uint8_t) rq->env->tracker_id);
    ts_put_u64(&rq->body, atomic_load(&rq->env->shm->stats->epoch));
    ts_put_u8(&rq->body, (uint8_t) trk_fresh(rq->env->st, 0));
    return reply_vv(rq);
}


/* Session keys a batch touched: after the commit, those whose record is
 * gone (a logout or an expiry elsewhere) leave the session cache at once,
 * so a revoked token stops working here within the replication delay
 * (the housekeeper would get there too, within TS_HOUSEKEEP_MS). */
#define SESS_TOUCHED_N  1024

typedef struct {
    uint8_t  h[SESS_TOUCHED_N][32];
    uint32_t n;
} sess_touched_t;


static void
note_session_key(const uint8_t *k, uint32_t kl, void *arg)
{
    sess_touched_t *t = arg;

    /* "s/" + 64 hex digits (trk_store.c) */
    if (kl == 2 + 64 && k[0] == 's' && k[1] == '/' && t->n < SESS_TOUCHED_N) {
        char hex[65];

        memcpy(hex, k + 2, 64);
        hex[64] = '\0';
        if (ts_unhex(hex, t->h[t->n], 32) == 0) {
            t->n++;
        }
    }
}


static void
drop_gone_sessions(trk_req_t *rq, const sess_touched_t *t)
{
    trk_session_t s;
    uint32_t      i;

    for (i = 0; i < t->n; i++) {
        if (trk_session_get(rq->env->st, t->h[i], &s) == 1) {
            trk_sess_remove(rq->env->shm, t->h[i]);
        }
    }
}


typedef struct {
    uint8_t (*h)[32];
    size_t    n;
    size_t    cap;
} cached_t;


static void
note_cached(const uint8_t h[32], int state, void *arg)
{
    cached_t *c = arg;
    uint8_t (*nh)[32];

    (void) state;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        nh = realloc(c->h, c->cap * sizeof(*nh));
        if (nh == NULL) {
            c->cap = c->n;
            return;
        }
        c->h = nh;
    }
    memcpy(c->h[c->n++], h, 32);
}


/* After a whole snapshot: every cached session whose record the merged
 * state no longer has leaves the cache (the keys of one batch were
 * dropped already; this also catches sessions the snapshot removed in
 * ways the batch keys do not show). */
static void
drop_cached_gone(trk_req_t *rq)
{
    cached_t      c;
    trk_session_t s;
    size_t        i;

    memset(&c, 0, sizeof(c));
    trk_sess_each(rq->env->shm, ts_now_ms(), rq->env->session_timeout_ms,
                  note_cached, &c);
    for (i = 0; i < c.n; i++) {
        if (trk_session_get(rq->env->st, c.h[i], &s) == 1) {
            trk_sess_remove(rq->env->shm, c.h[i]);
        }
    }
    free(c.h);
}


static void
applied(trk_req_t *rq, uint64_t maxhlc, int any)
{
    trk_hlc_observe(&rq->env->shm->stats->hlc, maxhlc);
    if (any) {
        /* our own sync process relays what we just learnt */
        atomic_fetch_add(&rq->env->shm->stats->op_wake, 1);
    }
}


static int
op_sync_ops(trk_req_t *rq)
{
    const uint8_t *op;
    uint32_t       n, i, len;
    uint64_t       maxhlc = 0;
    int            rc = 0, any = 0, st;
    sess_touched_t *touched;

    if (sync_from(rq, &st) < 0) {
        return st;
    }
    n = ts_get_u32(&rq->in);
    if (rq->in.err || n > 4 * TS_SYNC_BATCH_N
        || (size_t) n * 4 > ts_rbuf_left(&rq->in))
    {
        snprintf(rq->msg, sizeof(rq->msg), "malformed request");
        return TS_ERR_BADREQ;
    }
    if (trk_store_begin(rq->env->st) != 0) {
        snprintf(rq->msg, sizeof(rq->msg), "tracker database busy");
        return TS_ERR_BUSY;
    }
    touched = calloc(1, sizeof(*touched));  /* NULL: the housekeeper */
    for (i = 0; i < n; i++) {
        op = ts_get_blob(&rq->in, &len, TS_FRAME_MAX_B);
        if (op == NULL) {
            rc = -1;
            break;
        }
        if (touched != NULL) {
            (void) trk_oplog_each_key(op, len, note_session_key, touched);
        }
        rc = trk_oplog_apply(rq->env->st, op, len, &maxhlc);
        if (rc < 0) {
            break;
        }
        any |= rc == 1;
        if (rc == 2) {
            ts_debug("op out of order from tracker; batch stops here");
            rc = 0;
            break;
        }
        rc = 0;
    }
    /* raise the clock before the merged stamps become visible, so no
     * local write in between can be stamped below them */
    trk_hlc_observe(&rq->env->shm->stats->hlc, maxhlc);
    if (rc < 0 || trk_store_commit(rq->env->st) != 0) {
        trk_store_cancel(rq->env->st);
        free(touched);
        snprintf(rq->msg, sizeof(rq->msg), "bad op or database error");
        return TS_ERR_BADREQ;
    }
    if (touched != NULL) {
        drop_gone_sessions(rq, touched);
        free(touched);
    }
    applied(rq, maxhlc, any);
    return reply_vv(rq);
}


static int
op_sync_snapshot(trk_req_t *rq)
{
    const uint8_t *k, *v;
    uint32_t       n, i, kl, vl;
    trk_rec_t      rec;
    trk_stamp_t    mx;
    trk_vv_t       vv;
    uint64_t       maxhlc = 0;
    int            last, rc = 0, st;
    sess_touched_t *touched;

    if (sync_from(rq, &st) < 0) {
        return st;
    }
    last = ts_get_u8(&rq->in);
    n = ts_get_u32(&rq->in);
    if (rq->in.err || last > 1 || (size_t) n * 8 > ts_rbuf_left(&rq->in)) {
        snprintf(rq->msg, sizeof(rq->msg), "malformed request");
        return TS_ERR_BADREQ;
    }
    if (trk_store_begin(rq->env->st) != 0) {
        snprintf(rq->msg, sizeof(rq->msg), "tracker database busy");
        return TS_ERR_BUSY;
    }
    touched = calloc(1, sizeof(*touched));  /* NULL: the housekeeper */
    for (i = 0; i < n && rc == 0; i++) {
        k = ts_get_blob(&rq->in, &kl, 4096);
        v = ts_get_blob(&rq->in, &vl, TS_FRAME_MAX_B);
        if (k == NULL || v == NULL || !trk_key_replicated(k, kl)
            || trk_rec_decode(v, vl, &rec) != 0)
        {
            rc = -1;
            break;
        }
        if (touched != NULL) {
            note_session_key(k, kl, touched);
        }
        mx = trk_rec_max_stamp(&rec);
        if (mx.hlc > maxhlc) {
            maxhlc = mx.hlc;
        }
        rc = trk_kv_merge(rq->env->st, (const char *) k, kl, &rec);
        trk_rec_free(&rec);
    }
    if (rc == 0 && last) {
        if (trk_vv_decode(&rq->in, &vv) != 0
            || trk_oplog_adopt(rq->env->st, &vv) != 0
            || trk_fresh(rq->env->st, 1) != 0)
        {
            rc = -1;
        }
    }
    if (rc == 0 && trk_hlc_persist(rq->env->st, maxhlc) != 0) {
        rc = -1;
    }
    trk_hlc_observe(&rq->env->shm->stats->hlc, maxhlc);
    if (rc != 0 || ts_rbuf_end(&rq->in) != 0
        || trk_store_commit(rq->env->st) != 0)
    {
        trk_store_cancel(rq->env->st);
        free(touched);
        snprintf(rq->msg, sizeof(rq->msg), "bad snapshot or database error");
        return TS_ERR_BADREQ;
    }
    /* like SYNC_OPS: a session the merge deleted (a logout or an expiry
     * elsewhere) stops working here now, not at the next housekeeping */
    if (touched != NULL) {
        drop_gone_sessions(rq, touched);
        free(touched);
    }
    if (last) {
        drop_cached_gone(rq);
    }
    applied(rq, maxhlc, 1);
    if (last) {
        ts_info("snapshot merged");
    }
    return reply_vv(rq);
}


static int
op_sync_ack(trk_req_t *rq)
{
    uint32_t n, i;
    uint8_t  h[32];
    int64_t  now = ts_now_ms();
    int      st;

    if (sync_from(rq, &st) < 0) {
        return st;
    }
    (void) ts_get_u8(&rq->in);          /* the sender's leader (info) */
    n = ts_get_u32(&rq->in);
    if (rq->in.err || n > TS_SYNC_GOSSIP_MAX_N
        || (size_t) n * 32 != ts_rbuf_left(&rq->in))
    {
        snprintf(rq->msg, sizeof(rq->msg), "malformed request");
        return TS_ERR_BADREQ;
    }
    for (i = 0; i < n; i++) {
        ts_get_raw(&rq->in, h, 32);
        (void) trk_sess_refresh(rq->env->shm, h, now);
    }
    return reply_vv(rq);
}


void
trk_sync_init(void)
{
    static const trk_op_t ops[] = {
        { TS_MSG_SYNC_HELLO,    0, 0, op_sync_hello },
        { TS_MSG_SYNC_OPS,      0, 0, op_sync_ops },
        { TS_MSG_SYNC_ACK,      0, 0, op_sync_ack },
        { TS_MSG_SYNC_SNAPSHOT, 0, 0, op_sync_snapshot },
    };

    (void) trk_ops_register(ops, sizeof(ops) / sizeof(ops[0]));
}


static void trk_sync_ctor(void) __attribute__((constructor));

static void
trk_sync_ctor(void)
{
    trk_sync_init();
}


/* ---- ./tracker --status --------------------------------------------------- */

int
trk_status_cmd(const char *info_path, int id, const char *ca_path,
               const char *crt_path, const char *key_path)
{
    ts_trackers_t  t;
    ts_tls_t      *tls;
    ts_conn_t     *c;
    ts_wbuf_t      b;
    ts_rbuf_t      r;
    uint8_t       *frame = NULL;
    char           err[512];
    char          *text;
    int            fd, rc;

    if (ts_trackers_load(info_path, &t, err, sizeof(err)) != 0) {
        fprintf(stderr, "tracker: %s\n", err);
        return 2;
    }
    if (id < 1 || id > t.n) {
        fprintf(stderr, "tracker: no tracker %d in %s\n", id, info_path);
        return 2;
    }
    /* STATUS reads the whole database: trackers answer it only to a
     * link showing a tracker certificate of their CA -- this machine's
     * own (run it where the tracker runs) */
    if (ts_tls_enabled()
        && (access(crt_path, R_OK) != 0 || access(key_path, R_OK) != 0))
    {
        fprintf(stderr, "tracker: --status needs a tracker certificate "
                "and key of the cluster (%s, %s): %s; run it on the "
                "tracker's machine or give --pki\n", crt_path, key_path,
                strerror(errno));
        return 2;
    }
    tls = ts_tls_ctx_new(TS_TLS_TRACKER_CLIENT, crt_path, key_path, ca_path,
                         err, sizeof(err));
    if (tls == NULL) {
        fprintf(stderr, "tracker: cannot use the CA certificate %s or the "
                "tracker certificate %s: %s (see --pki)\n", ca_path,
                crt_path, err);
        return 2;
    }
    fd = ts_net_connect(t.t[id - 1].ip, t.t[id - 1].port, 2000);
    if (fd < 0) {
        fprintf(stderr, "tracker: cannot reach tracker %d at %s:%u\n", id,
                t.t[id - 1].ip, (unsigned) t.t[id - 1].port);
        ts_tls_ctx_free(tls);
        return 1;
    }
    c = ts_conn_new_tls(fd, tls, id, NULL);
    if (c == NULL || ts_conn_handshake(c, TS_TLS_HANDSHAKE_MS) != 0) {
        fprintf(stderr, "tracker: TLS with tracker %d at %s:%u failed: %s\n",
                id, t.t[id - 1].ip, (unsigned) t.t[id - 1].port,
                ts_tls_last_error()[0] ? ts_tls_last_error()
                                       : strerror(errno));
        ts_conn_free(c);
        ts_tls_ctx_free(tls);
        return 1;
    }
    ts_wbuf_init(&b);
    rc = rpc(c, TS_MSG_STATUS, &b, &frame, &r);
    ts_wbuf_free(&b);
    text = malloc(TS_STR_MAX_B + 1);
    if (rc == 0 && text != NULL && ts_get_str(&r, text, TS_STR_MAX_B + 1) == 0)
    {
        fputs(text, stdout);
        rc = 0;
    } else {
        fprintf(stderr, "tracker: no STATUS answer from tracker %d%s\n", id,
                rc == -2 ? " (refused; see the log line above)" : "");
        rc = 1;
    }
    free(text);
    free(frame);
    ts_conn_free(c);
    ts_tls_ctx_free(tls);
    return rc;
}
