/*
 * trk_sync.c -- the tracker sync process ("trk-sync"): the sending side
 * of replication (docs/REPLICATION.md).
 *
 * Purpose: keep every other tracker up to date with this tracker's op
 * log (its own ops and relayed ones): one TLS link per peer (mutual:
 * this tracker presents its own CA-signed certificate and checks that
 * the peer's names the tracker id dialled), HELLO to learn the peer's
 * version vector, then SYNC_OPS batches in per-origin seq order, two in
 * flight (or a streamed SNAPSHOT, trk_snap.c, when the peer needs ops
 * compacted away or its data directory is new), woken by every local
 * commit (a futex on the op wake word, trk_wake.h); SYNC_ACK every
 * TS_SYNC_GOSSIP_MS carries the sessions that had requests here (soft state) and doubles
 * as the liveness probe from which the leader (lowest live id) is
 * chosen; the main thread elects and compacts the op log every
 * TS_SYNC_COMPACT_MS down to what every peer has.  The receiving side is
 * ordinary request workers (trk_syncops.c).
 *
 * Locking: the sync process runs one thread per peer plus the main
 * thread; they share one tdb handle under `mu` (tdb handles are not
 * thread-safe) and hold it only for local reads, never across network
 * I/O.  Leader and peer states go to the tracker shm as atomics.
 *
 * Crash behaviour: the sync process keeps nothing durable of its own; a
 * killed one is respawned by the supervisor and starts with HELLO again
 * (peers report their VV, so nothing is lost or applied twice: an op
 * whose seq the receiver already has is skipped).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_crypto.h"
#include "ts_log.h"
#include "ts_clock.h"
#include "ts_net.h"
#include "ts_tls.h"
#include "ts_trackers.h"
#include "trk_ops.h"
#include "trk_oplog.h"
#include "trk_merge.h"
#include "trk_gc.h"
#include "trk_rpc.h"
#include "trk_snap.h"
#include "trk_worker.h"
#include "trk_sync.h"
#include "trk_syncops.h"
#include "trk_wake.h"
#include "trk_peers.h"

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
    rc = trk_rpc_call(c, TS_MSG_SYNC_HELLO, &b, &frame, &r);
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

/* A SYNC_* request never exceeds this (frame limit minus room for the
 * header and the request's own fields). */
#define PUSH_FRAME_B   (TS_FRAME_MAX_B - TS_SYNC_FRAME_SLACK_B)

/* Streams a snapshot (trk_snap.c): the VV and the key list first, then
 * batches of at most --sync-snap-batch records / TS_SYNC_BATCH_B
 * bytes, each read under mu and sent without it; the receiver merges
 * each in its own transaction and stays fresh until the last, which
 * carries the VV. */
static int
do_snapshot(peer_t *p, ts_conn_t *c)
{
    trk_snap_t  s;
    trk_vv_t    vv;
    ts_wbuf_t   b;
    ts_rbuf_t   r;
    uint8_t    *frame;
    uint32_t    n;
    size_t      batches = 0;
    int64_t     t0 = ts_now_ms();
    int         rc, last = 0;

    pthread_mutex_lock(&mu);
    rc = trk_snap_open(sst, &s, &vv);
    pthread_mutex_unlock(&mu);
    if (rc != 0) {
        ts_err("cannot read the database for a snapshot to tracker %d",
               p->id);
        return -1;
    }
    ts_info("sending a snapshot to tracker %d (%zu records)", p->id, s.n);
    ts_wbuf_init(&b);
    while (rc == 0 && !last) {
        ts_wbuf_reset(&b);
        ts_put_u8(&b, (uint8_t) scfg->id);
        ts_put_u8(&b, 0);               /* last, patched below */
        ts_put_u32(&b, 0);              /* count, patched below */
        pthread_mutex_lock(&mu);
        last = trk_snap_next(sst, &s, &b, &n, TS_SYNC_BATCH_B,
                             scfg->snap_batch_n, PUSH_FRAME_B);
        pthread_mutex_unlock(&mu);
        if (last < 0 || b.err) {
            rc = -1;
            break;
        }
        b.data[1] = (uint8_t) last;
        b.data[2] = (uint8_t) (n >> 24);
        b.data[3] = (uint8_t) (n >> 16);
        b.data[4] = (uint8_t) (n >> 8);
        b.data[5] = (uint8_t) n;
        if (last) {
            trk_vv_encode(&b, &vv);
        }
        rc = trk_rpc_call(c, TS_MSG_SYNC_SNAPSHOT, &b, &frame, &r);
        if (rc == 0) {
            rc = last ? take_vv(p, &r) : 0;
            atomic_store(&p->last_ok_ms, ts_now_ms());
        }
        free(frame);
        batches++;
    }
    ts_wbuf_free(&b);
    if (rc == 0) {
        ts_info("snapshot of %zu records sent to tracker %d (%zu batches, "
                "%lld ms)", s.sent, p->id, batches,
                (long long) (ts_now_ms() - t0));
    } else {
        ts_warn("snapshot to tracker %d stopped after %zu of %zu records",
                p->id, s.sent, s.n);
    }
    trk_snap_close(&s);
    return rc;
}


/* ---- ops ---------------------------------------------------------------- */

/* Fills b with the next SYNC_OPS batch for p (sender id, count, ops in
 * per-origin seq order; *n ops), op being the scratch buffer, built on
 * the assumption that the peer has *from; *upto gets the VV it will have
 * once the batch is applied, *snap = 1 if it needs a snapshot instead.
 * 0, or -1 (database error). */
static int
push_fill(ts_wbuf_t *b, ts_wbuf_t *op, const trk_vv_t *from, trk_vv_t *upto,
          uint32_t *n, int *snap)
{
    trk_vv_t  mine;
    uint64_t  after, seq;
    int       o, rc, full = 0;

    ts_wbuf_reset(b);
    ts_put_u8(b, (uint8_t) scfg->id);
    ts_put_u32(b, 0);                   /* count, patched by the caller */
    *n = 0;
    *snap = 0;
    *upto = *from;
    pthread_mutex_lock(&mu);
    rc = trk_vv_load(sst, &mine);
    for (o = 1; rc == 0 && o < TRK_ORIGINS_N && !*snap && !full; o++) {
        after = from->seq[o];
        while (mine.seq[o] > after && *n < TS_SYNC_BATCH_N
               && b->len < TS_SYNC_BATCH_B)
        {
            rc = trk_oplog_next(sst, o, after, &seq);
            if (rc == 2) {
                *snap = 1;
                rc = 0;
                break;
            }
            if (rc != 0) {
                rc = 0;
                break;
            }
            if (trk_oplog_get(sst, o, seq, op) != 0) {
                break;
            }
            if (b->len + 4 + op->len > PUSH_FRAME_B) {
                if (*n > 0) {
                    full = 1;           /* send what is there first */
                    break;
                }
                /* cannot happen (every op is bounded); a snapshot
                 * still gets its effects across */
                ts_err("op %d/%llu too big for a frame (%zu bytes)", o,
                       (unsigned long long) seq, op->len);
                *snap = 1;
                break;
            }
            ts_put_blob(b, op->data, (uint32_t) op->len);
            (*n)++;
            after = seq;
        }
        upto->seq[o] = after;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}


/* Reads the reply of the SYNC_OPS batch reqid: the peer's VV.  0 / -1. */
static int
push_reply(peer_t *p, ts_conn_t *c, uint64_t reqid)
{
    ts_rbuf_t  r;
    uint8_t   *frame;
    int        rc;

    rc = trk_rpc_recv(c, TS_MSG_SYNC_OPS, reqid, &frame, &r);
    if (rc == 0) {
        rc = take_vv(p, &r);
    }
    free(frame);
    return rc == 0 ? 0 : -1;
}


/* 1 if the peer's last VV differs from *was (progress), or covers all of
 * *upto (when upto is not NULL: everything sent was applied). */
static int
peer_vv_is(peer_t *p, const trk_vv_t *was, const trk_vv_t *upto)
{
    int o, yes = 1;

    pthread_mutex_lock(&mu);
    if (upto == NULL) {
        yes = memcmp(was, &p->vv, sizeof(*was)) != 0;
    } else {
        for (o = 1; o < TRK_ORIGINS_N; o++) {
            yes = yes && p->vv.seq[o] >= upto->seq[o];
        }
    }
    pthread_mutex_unlock(&mu);
    return yes;
}


/* Sends what the peer lacks, at most TS_SYNC_PUSH_ROUNDS_N batches, two
 * in flight: batch k+1 is built (on the VV the peer will have after
 * batch k) and sent before batch k's reply is read, so the peer's worker
 * applies one while the next travels.  A batch the peer did not apply
 * whole (an order it refused) stops the pipeline: the one behind it is
 * drained and the next is built on the VV the peer reported.  0 done (or
 * no progress), 1 more to send, -1 link error. */
static int
do_push(peer_t *p, ts_conn_t *c)
{
    trk_vv_t   base, upto, fly_from, fly_upto;
    ts_wbuf_t  b, op;
    uint64_t   reqid, fly_id = 0;
    uint32_t   n;
    int        rc, snap, rounds = 0, sent = 0, flying = 0;

    ts_wbuf_init(&b);
    ts_wbuf_init(&op);
    for (;;) {
        if (++sent > TS_SYNC_PUSH_ROUNDS_N) {
            /* bounded: the caller gossips if due and comes back */
            rc = 1;
            break;
        }
        if (flying) {
            base = fly_upto;
        } else {
            pthread_mutex_lock(&mu);
            base = p->vv;
            pthread_mutex_unlock(&mu);
        }
        rc = push_fill(&b, &op, &base, &upto, &n, &snap);
        if (rc != 0 || b.err) {
            rc = -1;
            break;
        }
        if (flying && (snap || n == 0)) {
            /* decide on what the peer reports, not on what was sent */
            flying = 0;
            if ((rc = push_reply(p, c, fly_id)) != 0) {
                break;
            }
            if (!peer_vv_is(p, &fly_from, NULL)) {
                break;                  /* no progress: wait for a wake */
            }
            sent--;
            continue;
        }
        if (snap) {
            rc = do_snapshot(p, c);
            if (rc != 0 || ++rounds > TS_SYNC_SNAP_ROUNDS_N) {
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
        if ((rc = trk_rpc_send(c, TS_MSG_SYNC_OPS, &b, &reqid)) != 0) {
            break;
        }
        if (flying) {
            if ((rc = push_reply(p, c, fly_id)) != 0) {
                break;
            }
            if (!peer_vv_is(p, NULL, &fly_upto)) {
                /* batch k stopped early: batch k+1 was built on ops the
                 * peer lacks; its reply, then rebuild from the peer */
                flying = 0;
                if ((rc = push_reply(p, c, reqid)) != 0) {
                    break;
                }
                if (!peer_vv_is(p, &fly_from, NULL)) {
                    break;
                }
                continue;
            }
        }
        flying = 1;
        fly_id = reqid;
        fly_from = base;
        fly_upto = upto;
    }
    if (flying && rc >= 0 && push_reply(p, c, fly_id) != 0) {
        rc = -1;
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
    rc = trk_rpc_call(c, TS_MSG_SYNC_ACK, &b, &frame, &r);
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
        usleep((useconds_t) (ms < TS_SYNC_NAP_SLICE_MS
                             ? ms : TS_SYNC_NAP_SLICE_MS) * 1000);
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
                /* nothing to push: sleep until a commit or the gossip */
                trk_wake_wait(&scfg->shm.stats->op_wake, seen,
                              TS_SYNC_GOSSIP_MS - (now - last_gossip));
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
    uint32_t mask = 0, want = 0;
    int      i, leader = scfg->id;
    int64_t  now = ts_now_ms();

    for (i = 1; i <= scfg->trackers.n; i++) {
        if (i == scfg->id) {
            continue;
        }
        want |= 1u << i;
        if (atomic_load(&peers[i].connected)
            && now - atomic_load(&peers[i].last_ok_ms) < TS_SYNC_PEER_DEAD_MS)
        {
            mask |= 1u << i;
            if (i < leader) {
                leader = i;
            }
        }
    }
    trk_peers_publish(scfg->shm.stats, mask, want, leader, now);
}


/* Compacts up to upto.  The first pass of this process walks the op log
 * (whatever an earlier run left); later ones delete only the seqs
 * between the last pass's bound and this one, and nothing at all when
 * the bound did not move (an idle cluster).  A bound that went down (an
 * origin restarted its seqs in a new data directory) walks again. */
static int
compact_since(const trk_vv_t *upto)
{
    static trk_vv_t last;
    static int      have_last;
    int             o, n = -2, same = 1;

    for (o = 1; o < TRK_ORIGINS_N; o++) {
        if (upto->seq[o] < last.seq[o]) {
            have_last = 0;
        }
        same = same && upto->seq[o] == last.seq[o];
    }
    if (have_last && same) {
        return 0;
    }
    if (have_last) {
        n = trk_oplog_compact_range(sst, &last, upto);
    }
    if (n == -2) {
        n = trk_oplog_compact(sst, upto);
    }
    if (n >= 0) {
        last = *upto;
        have_last = 1;
    }
    return n;
}


/* With mu held: the minimum (upto) and the maximum (hi, may be NULL)
 * VV over this tracker and every configured peer as last reported.
 * 0, or -1 while some tracker has not acknowledged anything yet. */
static int
acked_vv(trk_vv_t *upto, trk_vv_t *hi)
{
    int i, o;

    if (trk_vv_load(sst, upto) != 0) {
        return -1;
    }
    if (hi != NULL) {
        *hi = *upto;
    }
    for (i = 1; i <= scfg->trackers.n; i++) {
        if (i == scfg->id) {
            continue;
        }
        if (!peers[i].vv_known) {
            return -1;          /* every tracker must have acknowledged */
        }
        for (o = 1; o < TRK_ORIGINS_N; o++) {
            if (peers[i].vv.seq[o] < upto->seq[o]) {
                upto->seq[o] = peers[i].vv.seq[o];
            }
            if (hi != NULL && peers[i].vv.seq[o] > hi->seq[o]) {
                hi->seq[o] = peers[i].vv.seq[o];
            }
        }
    }
    return 0;
}


/* One step of tombstone collection (trk_gc.h) by the same acknowledged
 * VVs as the compaction.  1 when collection work is left. */
static int
gc_step(void)
{
    static trk_gc_t g;
    trk_vv_t        lo, hi;
    int             n = 0, more = 0;

    pthread_mutex_lock(&mu);
    if (acked_vv(&lo, &hi) == 0) {
        n = trk_gc_step(sst, &g, &lo, &hi, TS_TRK_GC_STEP_N, &more);
    }
    pthread_mutex_unlock(&mu);
    if (n > 0) {
        ts_debug("collected the tombstones of %d keys", n);
    } else if (n < 0) {
        ts_warn("tombstone collection failed; it starts over");
    }
    return more;
}


static void
compact(void)
{
    trk_vv_t upto;
    int      n;

    pthread_mutex_lock(&mu);
    if (acked_vv(&upto, NULL) != 0) {
        pthread_mutex_unlock(&mu);
        return;
    }
    n = compact_since(&upto);
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
    int64_t  last_compact = ts_now_ms(), last_gc = ts_now_ms();
    int      gc_more = 0;

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
        if (scfg->gc_ms > 0
            && (gc_more || ts_now_ms() - last_gc >= scfg->gc_ms))
        {
            gc_more = gc_step();
            last_gc = ts_now_ms();
        }
        usleep(TS_SYNC_MAIN_TICK_MS * 1000);
    }
    atomic_store(&sync_stop, 1);
    trk_wake_bump(&scfg->shm.stats->op_wake);   /* the sleepers see it */
    for (i = 1; i <= scfg->trackers.n; i++) {
        if (peers[i].started) {
            pthread_join(peers[i].th, NULL);
        }
    }
    trk_store_close(sst);
    ts_tls_ctx_free(cli_tls);
    return 0;
}


/* The SYNC_* handlers live in trk_syncops.c; this name stays for the
 * callers that register them through trk_sync.h. */
void
trk_sync_init(void)
{
    trk_syncops_init();
}
