/*
 * trk_store_batch.c -- group commit in the tracker's store: several
 * requests' writes in one tdb transaction and one fsync (see
 * trk_store.h for the calls, trk_wbatch.c for the worker's side).
 *
 * Purpose: a request worker runs the write requests of one event-loop
 * turn as parts of one batch; each part appends its own op (own stamp,
 * own request id and reply-cache entry) like a transaction of its own,
 * and the batch commits once at the end of the turn.
 *
 * Locking: like the store: one thread per trk_store_t; the open batch
 * holds tdb's transaction lock, so other workers wait for its commit.
 *
 * Crash behaviour: a process killed with a batch open leaves nothing of
 * it (a tdb transaction); no reply of it was sent (trk_wbatch.c).
 */
#include <stdatomic.h>
#include <stdint.h>

#include "ts_config.h"
#include "ts_log.h"
#include "ts_kv.h"
#include "trk_index_hook.h"
#include "trk_oplog.h"
#include "trk_store.h"
#include "trk_store_int.h"
#include "trk_wake.h"


/*
 * A request worker runs the write requests of one event-loop turn in one
 * tdb transaction: each request is a "part" (trk_store_sub_begin, then
 * the usual trk_store_commit or trk_store_cancel) that appends its own op
 * with its own stamp and reply-cache entry, and trk_store_batch_end
 * commits them all with one fsync.  The worker holds every reply of the
 * turn until then (trk_wbatch.c), so a write is acknowledged only once
 * it is durable.  tdb has no savepoints: a part refused before it wrote
 * (the rule of every handler) leaves the batch alone, but one that wrote
 * and then failed takes the whole batch with it, and every request in
 * it is answered "try again" -- safe, since a retry with the same request
 * id is answered from the reply cache if it did commit.  Any other
 * transaction or write outside a part first commits the open batch. */

int
trk_store_sub_begin(trk_store_t *st)
{
    if (st->sub) {
        return -1;
    }
    if (!st->batch) {
        if (ts_kv_in_txn(st->kv) || ts_kv_begin(st->kv) != 0) {
            return -1;
        }
        st->batch = 1;
        st->batch_n = 0;
        st->batch_ops = 0;
        st->batch_seen = 1;
    }
    trk_store_txn_reset(st);
    st->sub = 1;
    st->sub_writes = st->nwrites;
    return 0;
}


/* Commits the open batch.  0, or -1 (its requests are lost). */
static int
batch_flush(trk_store_t *st)
{
    int ops = st->batch_ops;

    st->batch = 0;
    st->batch_ops = 0;
    if (ts_kv_commit(st->kv) != 0) {
        st->batch_failed = 1;
        return -1;
    }
    if (ops) {
        trk_wake_bump(st->wake);
    }
    return 0;
}


/* Before anything that is not a part of the batch touches the store. */
void
trk_batch_leave(trk_store_t *st)
{
    if (st->batch && !st->sub) {
        (void) batch_flush(st);
    }
}


int
trk_batch_sub_commit(trk_store_t *st)
{
    if (st->nkeys > 0 && trk_oplog_append(st, st->stamp, st->reqid, st->keys,
                                          st->nkeys) != 0)
    {
        ts_err("cannot append to the op log");
        trk_batch_sub_cancel(st);
        return -1;
    }
    if (trk_idx_flush(st, &st->idx) != 0) {
        ts_err("cannot update the database indexes");
        trk_batch_sub_cancel(st);
        return -1;
    }
    st->batch_ops |= st->nkeys > 0;
    trk_store_txn_reset(st);
    st->sub = 0;
    if (++st->batch_n >= TS_TRK_BATCH_MAX_N) {
        return batch_flush(st);
    }
    return 0;
}


void
trk_batch_sub_cancel(trk_store_t *st)
{
    int wrote = st->nwrites != st->sub_writes;

    trk_store_txn_reset(st);
    st->sub = 0;
    if (wrote) {
        ts_warn("a request failed after writing: its group commit of %u "
                "request(s) is rolled back", (unsigned) st->batch_n + 1);
        ts_kv_cancel(st->kv);
        st->batch = 0;
        st->batch_ops = 0;
        st->batch_failed = 1;
    }
}


int
trk_store_batch_pending(const trk_store_t *st)
{
    return st->batch || st->batch_seen;
}


int
trk_store_batch_end(trk_store_t *st)
{
    int failed;

    if (st->sub) {
        trk_batch_sub_cancel(st);
    }
    if (st->batch) {
        (void) batch_flush(st);
    }
    failed = st->batch_failed;
    st->batch_failed = 0;
    st->batch_seen = 0;
    return failed ? -1 : 0;
}
