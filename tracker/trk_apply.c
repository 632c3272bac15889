/*
 * trk_apply.c -- replication on the tracker store: applying a received op,
 * and the op log, version vector, epoch and HLC mark of a trk_store_t.
 *
 * Purpose: the op log itself works on a plain tdb handle (trk_oplog.c);
 * this file gives it the store's handle, origin and transaction, and
 * merges each key of a received op through the store's envelope layer
 * (trk_kv_merge), so the op log never calls up into the store.  The op
 * of a local transaction is appended by trk_store_commit() (trk_store.c).
 *
 * Locking: one thread per trk_store_t; trk_oplog_apply runs inside the
 * caller's transaction; trk_epoch_get and trk_oplog_compact open their
 * own, and refuse (0 / -1) inside one.
 *
 * Crash behaviour: an applied op, its effects and the VV bump commit
 * together or not at all (the caller's transaction).
 */
#include <stdlib.h>
#include <string.h>

#include "trk_store.h"
#include "trk_oplog.h"
#include "trk_index.h"


static int
apply_merge(void *arg, const uint8_t *key, uint32_t kl, const trk_rec_t *rec)
{
    return trk_kv_merge(arg, (const char *) key, kl, rec);
}


int
trk_oplog_apply(trk_store_t *st, const uint8_t *op, size_t n,
                uint64_t *maxhlc)
{
    return trk_log_apply(trk_store_tdb(st), op, n, maxhlc, apply_merge, st);
}


int
trk_vv_load(trk_store_t *st, trk_vv_t *vv)
{
    return trk_log_vv_load(trk_store_tdb(st), vv);
}


uint64_t
trk_epoch_get(trk_store_t *st, int create)
{
    uint64_t e = trk_log_epoch_get(trk_store_tdb(st), 0);

    if (e != 0 || !create || trk_store_in_txn(st)) {
        return e;               /* creating needs a transaction of its own */
    }
    return trk_log_epoch_get(trk_store_tdb(st), 1);
}


int
trk_fresh(trk_store_t *st, int clear)
{
    return trk_log_fresh(trk_store_tdb(st), clear);
}


uint64_t
trk_hlc_saved(trk_store_t *st)
{
    return trk_log_hlc_saved(trk_store_tdb(st));
}


int
trk_hlc_persist(trk_store_t *st, uint64_t hlc)
{
    return trk_log_hlc_persist(trk_store_tdb(st), hlc);
}


int
trk_oplog_next(trk_store_t *st, int origin, uint64_t after, uint64_t *seq)
{
    return trk_log_next(trk_store_tdb(st), origin, after, seq);
}


int
trk_oplog_get(trk_store_t *st, int origin, uint64_t seq, ts_wbuf_t *out)
{
    return trk_log_get(trk_store_tdb(st), origin, seq, out);
}


int
trk_oplog_compact(trk_store_t *st, const trk_vv_t *upto)
{
    if (trk_store_in_txn(st)) {
        return -1;
    }
    return trk_log_compact(trk_store_tdb(st), upto);
}


int
trk_oplog_adopt(trk_store_t *st, const trk_vv_t *vv)
{
    return trk_log_adopt(trk_store_tdb(st), trk_store_origin(st), vv);
}


long
trk_oplog_count(trk_store_t *st)
{
    return trk_log_count(trk_store_tdb(st));
}


long
trk_oplog_count_kept(trk_store_t *st, const trk_vv_t *vv)
{
    return trk_log_count_kept(trk_store_tdb(st), vv);
}


int
trk_oplog_compact_range(trk_store_t *st, const trk_vv_t *from,
                        const trk_vv_t *upto)
{
    if (trk_store_in_txn(st)) {
        return -1;
    }
    return trk_log_compact_range(trk_store_tdb(st), from, upto);
}


int
trk_digest(trk_store_t *st, uint8_t out[32])
{
    trk_counts_t c;

    return trk_idx_status(st, &c, out);
}


int
trk_each_replicated(trk_store_t *st,
                    int (*fn)(const uint8_t *k, size_t kl, const uint8_t *v,
                              size_t vl, void *arg),
                    void *arg)
{
    return trk_log_each_replicated(trk_store_tdb(st), fn, arg);
}
