/*
 * trk_store_int.h -- the tracker store's private state, shared by
 * trk_store.c (transactions, keys, envelopes) and trk_store_batch.c
 * (group commit).  Nothing else includes it: the store's public calls
 * are in trk_store.h.
 *
 * Locking: a trk_store_t belongs to one thread.  Crash behaviour: memory
 * only.
 */
#ifndef TRK_STORE_INT_H_INCLUDED
#define TRK_STORE_INT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "ts_kv.h"
#include "trk_index_hook.h"
#include "trk_merge.h"

struct trk_store_s {
    ts_kv_t            *kv;
    struct tdb_context *tdb;        /* ts_kv_tdb(kv) */
    /* replication */
    int                 origin;
    _Atomic uint64_t   *hlc;
    _Atomic uint64_t   *wake;
    trk_stamp_t         stamp;      /* of this transaction's writes */
    uint64_t            reqid;
    char              **keys;       /* replicated keys written */
    size_t              nkeys;
    size_t              capkeys;
    uint64_t            nwrites;    /* records stored or deleted, ever */
    /* group commit: one tdb transaction for several requests */
    int                 batch;      /* its transaction is open */
    int                 sub;        /* a request's part of it runs */
    uint64_t            sub_writes; /* nwrites when that part began */
    uint32_t            batch_n;    /* requests in it so far */
    int                 batch_ops;  /* it appended ops (wake trk-sync) */
    int                 batch_seen; /* a batch ran since the last end */
    int                 batch_failed; /* ... and failed */
    trk_idx_meta_t      idx;        /* index counters of this txn */
};

/* Forgets the keys, stamp, request id and index counters of the
 * transaction (or batch part) that ended. */
void trk_store_txn_reset(struct trk_store_s *st);
/* Group commit, for trk_store.c: before anything that is not a part of
 * the open batch touches the store (commits the batch); the end of a
 * part by trk_store_commit (0, or -1: the batch failed) or by
 * trk_store_cancel. */
void trk_batch_leave(struct trk_store_s *st);
int  trk_batch_sub_commit(struct trk_store_s *st);
void trk_batch_sub_cancel(struct trk_store_s *st);

#endif
