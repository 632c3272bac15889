/*
 * trk_gc.h -- collecting tombstones (record deletes D and element
 * tombs) once every configured tracker has merged them and every op
 * older than them (trk_gc.c; the rule is in docs/REPLICATION.md,
 * "Collecting tombstones").
 *
 * The age index: every store of an envelope that gains a tombstone notes
 * "<bound>|<key>" in the open collection round (y/tg/<round>/<slot>);
 * the trk-sync process closes a round, waits until the acknowledged
 * version vectors prove the rule, then rewrites only the keys of the
 * closed rounds, without an op.
 *
 * Locking: like the store (one thread per trk_store_t, inside its
 * transactions).  Crash behaviour: the index is local and rebuilt at
 * start-up with every tombstone in round 0; the round machine lives in
 * the memory of trk-sync and starts again from its first stage.
 */
#ifndef TRK_GC_H_INCLUDED
#define TRK_GC_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <tdb.h>
#include "trk_merge.h"
#include "trk_oplog.h"
#include "trk_store.h"

/* ---- the rule on one envelope (pure) ----------------------------------- */

/* 1 if r holds a tombstone (D set, or a tomb element); *mx its largest
 * stamp.  0 if none. */
int  trk_gc_tomb_max(const trk_rec_t *r, trk_stamp_t *mx);
/* Drops from r every tombstone stamped at or below bound (D, tomb
 * elements, and set-kind incarnations left empty).  1 changed, 0 not. */
int  trk_gc_prune(trk_rec_t *r, trk_stamp_t bound);
/* 1 if r holds nothing at all (the key can go). */
int  trk_gc_empty(const trk_rec_t *r);
/* 1 if a[o] >= b[o] for every origin. */
int  trk_gc_vv_covers(const trk_vv_t *a, const trk_vv_t *b);

/* ---- the round machine (pure; driven by trk-sync) ---------------------- */

enum {
    TRK_GC_IDLE    = 0,         /* next: close the open round */
    TRK_GC_MERGED  = 1,         /* wait: every tracker has what we had */
    TRK_GC_STABLE  = 2,         /* wait: ... and every op older */
    TRK_GC_COLLECT = 3          /* collect the closed rounds */
};

typedef struct {
    int      stage;             /* TRK_GC_* */
    uint64_t closed;            /* last round closed */
    trk_vv_t need;              /* VV every tracker must have acked */
} trk_gc_t;

/* One decision: lo = the minimum acknowledged VV over every configured
 * tracker (also this one), hi = the maximum.  Moves g to its next stage
 * when the VVs allow it; returns g->stage. */
int  trk_gc_advance(trk_gc_t *g, const trk_vv_t *lo, const trk_vv_t *hi);

/* ---- the index (inside the caller's transaction) ----------------------- */

/* From trk_idx_note(): key goes from envelope old to nv (dsize 0: the
 * key is being collected).  0 / -1. */
int  trk_gc_note(struct tdb_context *tdb, const char *key, size_t klen,
                 TDB_DATA old, TDB_DATA nv);
/* From the index rebuild: the index key (into kbuf, TRK_KEY_B) and
 * entry (into ebuf, TRK_IDX_ENTRY_B) for envelope v of key in round 0.
 * 1 filled, 0 no tombstone, -1 corrupt. */
int  trk_gc_build_entry(const char *key, size_t klen, TDB_DATA v,
                        char *kbuf, TDB_DATA *ik, char *ebuf, size_t eb);
/* From the index rebuild: the number of entries it wrote.  0 / -1. */
int  trk_gc_count_put(struct tdb_context *tdb, uint64_t n);
/* From a SYNC_SNAPSHOT batch: a snapshot is being merged (last 0) or
 * was merged whole (last 1).  While one is open no round closes. */
int  trk_gc_snapshot_mark(trk_store_t *st, int last);

/* ---- the steps (each opens its own transactions) ----------------------- */

/* One step of g with the acknowledged VVs lo and hi (see
 * trk_gc_advance): closes a round, or collects at most max_keys keys
 * of the closed rounds.  Returns the number of keys rewritten or
 * deleted, or -1; *more = 1 when collection work is left. */
int  trk_gc_step(trk_store_t *st, trk_gc_t *g, const trk_vv_t *lo,
                 const trk_vv_t *hi, uint32_t max_keys, int *more);
/* A tracker alone (no trk-sync): one step with its own VV as every
 * tracker's, from the housekeeper.  Keys collected, or -1. */
int  trk_gc_alone(trk_store_t *st);
/* Index entries waiting (a maintained count, y/tgn): 0 / -1. */
int  trk_gc_pending(trk_store_t *st, uint64_t *n);

#endif
