/*
 * trk_syncops.c -- the TS_MSG_SYNC_* request handlers: the receiving side
 * of replication (docs/REPLICATION.md), run by every request worker.
 *
 * Purpose: SYNC_HELLO answers with this tracker's id, epoch and version
 * vector; SYNC_OPS and SYNC_SNAPSHOT merge a batch of a peer's op log (or
 * of its database) in one tdb transaction, then drop from the session
 * cache the sessions the batch removed; SYNC_ACK refreshes the sessions
 * that had requests on the peer.  Each is accepted only from a link whose
 * TLS certificate proves the tracker id the request claims (else
 * TS_ERR_AUTH and the link is closed after the reply).  The table is
 * registered with trk_ops_register like every other op table.
 *
 * Locking: the handlers run on a worker's event-loop thread like every
 * request; the batch's transaction is the worker's (trk_ops).
 *
 * Crash behaviour: a worker killed in the middle of a batch rolls the
 * whole batch back; the sender resends (an op whose seq is already here
 * is skipped).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_clock.h"
#include "ts_crypto.h"
#include "ts_log.h"
#include "trk_admin.h"
#include "trk_ops.h"
#include "trk_oplog.h"
#include "trk_merge.h"
#include "trk_gc.h"
#include "trk_syncops.h"
#include "trk_wake.h"

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
typedef struct {
    uint8_t  h[TS_SYNC_SESS_TOUCHED_N][32];
    uint32_t n;
} sess_touched_t;


static void
note_session_key(const uint8_t *k, uint32_t kl, void *arg)
{
    sess_touched_t *t = arg;

    /* "s/" + 64 hex digits (trk_store.c) */
    if (kl == 2 + 64 && k[0] == 's' && k[1] == '/'
        && t->n < TS_SYNC_SESS_TOUCHED_N)
    {
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
        trk_wake_bump(&rq->env->shm->stats->op_wake);
    }
}


/* A SYNC_OPS or SYNC_SNAPSHOT batch begins: its transaction, and the
 * list of session keys it touches (*touched NULL if no memory: the
 * housekeeper will drop them).  TS_OK or TS_ERR_BUSY. */
static int
batch_begin(trk_req_t *rq, sess_touched_t **touched)
{
    if (trk_store_begin(rq->env->st) != 0) {
        snprintf(rq->msg, sizeof(rq->msg), "tracker database busy");
        return TS_ERR_BUSY;
    }
    *touched = calloc(1, sizeof(**touched));
    return TS_OK;
}


/* The batch ends: committed unless failed (or the commit fails: what is
 * the error's name); then a session the merge deleted (a logout or an
 * expiry elsewhere) stops working here now, not at the next
 * housekeeping.  Frees touched.  TS_OK or TS_ERR_BADREQ. */
static int
batch_end(trk_req_t *rq, sess_touched_t *touched, int failed,
          const char *what)
{
    if (failed || trk_store_commit(rq->env->st) != 0) {
        trk_store_cancel(rq->env->st);
        trk_admin_merge_end(rq->env, 0);
        free(touched);
        snprintf(rq->msg, sizeof(rq->msg), "%s or database error", what);
        return TS_ERR_BADREQ;
    }
    if (touched != NULL) {
        drop_gone_sessions(rq, touched);
        free(touched);
    }
    trk_admin_merge_end(rq->env, 1);    /* users disabled elsewhere */
    return TS_OK;
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
    if ((st = batch_begin(rq, &touched)) != TS_OK) {
        return st;
    }
    for (i = 0; i < n; i++) {
        op = ts_get_blob(&rq->in, &len, TS_FRAME_MAX_B);
        if (op == NULL) {
            rc = -1;
            break;
        }
        if (touched != NULL) {
            (void) trk_oplog_each_key(op, len, note_session_key, touched);
        }
        (void) trk_oplog_each_key(op, len, trk_admin_merge_note,
                                  rq->env->st);
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
    if ((st = batch_end(rq, touched, rc < 0, "bad op")) != TS_OK) {
        return st;
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
    if ((st = batch_begin(rq, &touched)) != TS_OK) {
        return st;
    }
    for (i = 0; i < n && rc == 0; i++) {
        k = ts_get_blob(&rq->in, &kl, TS_SYNC_SNAP_KEY_MAX_B);
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
        trk_admin_merge_note(k, kl, rq->env->st);
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
    if (rc == 0 && trk_gc_snapshot_mark(rq->env->st, last) != 0) {
        rc = -1;                /* no collection round closes meanwhile */
    }
    if (rc == 0 && trk_hlc_persist(rq->env->st, maxhlc) != 0) {
        rc = -1;
    }
    trk_hlc_observe(&rq->env->shm->stats->hlc, maxhlc);
    st = batch_end(rq, touched, rc != 0 || ts_rbuf_end(&rq->in) != 0,
                   "bad snapshot");
    if (st != TS_OK) {
        return st;
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
trk_syncops_init(void)
{
    static const trk_op_t ops[] = {
        { TS_MSG_SYNC_HELLO,    0, 0, op_sync_hello },
        { TS_MSG_SYNC_OPS,      0, 0, op_sync_ops },
        { TS_MSG_SYNC_ACK,      0, 0, op_sync_ack },
        { TS_MSG_SYNC_SNAPSHOT, 0, 0, op_sync_snapshot },
    };

    (void) trk_ops_register(ops, sizeof(ops) / sizeof(ops[0]));
}


static void trk_syncops_ctor(void) __attribute__((constructor));

static void
trk_syncops_ctor(void)
{
    trk_syncops_init();
}
