/*
 * trk_oplog.h -- the replication op log, version vector, epoch and hybrid
 * logical clock (docs/REPLICATION.md).
 *
 * Local tdb keys:  o/<origin hex2>/<seq hex16>  op record
 *                  v/<origin hex2>              u64 highest seq applied
 *                  x/epoch  x/hlc  x/seg/<o>  x/floor/<o>  x/fresh
 *                  x/newseg (next local op starts a new segment)
 * Op record: u8 'O', u8 version, u8 origin, u64 seq, u64 prev, u64 hlc,
 *            u64 reqid, u32 n, n x (blob key, blob delta envelope).
 *
 * Locking: every function that writes runs inside the caller's tdb
 * transaction (trk_store_begin/commit; trk_log_epoch_get and
 * trk_log_compact run their own), which serialises seq allocation
 * between worker processes.  The HLC is one atomic word in the tracker
 * shm, advanced by CAS.
 *
 * Crash behaviour: an op, its effects and the VV bump commit together or
 * not at all.  The HLC high-water mark is persisted with every op (local
 * or received) and snapshot batch, so a restarted tracker never stamps
 * below a stored stamp.
 */
#ifndef TRK_OPLOG_H_INCLUDED
#define TRK_OPLOG_H_INCLUDED

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <tdb.h>
#include "ts_config.h"
#include "ts_buf.h"
#include "trk_merge.h"

/* The tracker store (trk_store.h); the functions below that take one are
 * defined in trk_apply.c on top of the trk_log_*() functions, which work
 * on a plain tdb handle (trk_oplog.c). */
typedef struct trk_store_s trk_store_t;

#define TRK_ORIGINS_N  (TS_TRACKERS_MAX_N + 1)     /* index 1..16 */

typedef struct {
    uint64_t seq[TRK_ORIGINS_N];
} trk_vv_t;

/* HLC: 48-bit wall ms << 16 | counter; strictly increasing per tracker. */
uint64_t trk_hlc_next(_Atomic uint64_t *h);
void     trk_hlc_observe(_Atomic uint64_t *h, uint64_t seen);

int  trk_vv_load(trk_store_t *st, trk_vv_t *vv);            /* 0 / -1 */
void trk_vv_encode(ts_wbuf_t *b, const trk_vv_t *vv);
int  trk_vv_decode(ts_rbuf_t *r, trk_vv_t *vv);              /* 0 / -1 */
/* "1:5,2:7" (origins with seq 0 omitted). */
void trk_vv_format(const trk_vv_t *vv, char *out, size_t outsz);

/* The data directory's epoch; created (random) when absent.  0 on error. */
uint64_t trk_epoch_get(trk_store_t *st, int create);
/* 1 while a new data directory has not merged a full snapshot yet;
 * clear (inside a transaction) drops the mark. */
int      trk_fresh(trk_store_t *st, int clear);
/* Persisted HLC high-water mark (0 if none). */
uint64_t trk_hlc_saved(trk_store_t *st);
/* Raises the persisted mark to hlc if it is below (inside a txn). */
int      trk_hlc_persist(trk_store_t *st, uint64_t hlc);

/* Called by trk_store_commit() inside the transaction: appends one op
 * for the keys written under stamp s.  0 / -1. */
int  trk_oplog_append(trk_store_t *st, trk_stamp_t s, uint64_t reqid,
                      char **keys, size_t nkeys);

/* Calls fn for every key an op writes (structure only; nothing checked
 * beyond the framing).  0, or -1 for a malformed op. */
int  trk_oplog_each_key(const uint8_t *op, size_t n,
                        void (*fn)(const uint8_t *k, uint32_t kl, void *arg),
                        void *arg);

/* Applies one received op inside the caller's transaction.  Returns 1
 * applied, 0 already had it, 2 out of order (stop the batch), -1 bad op
 * or database error.  *maxhlc gets the largest stamp seen. */
int  trk_oplog_apply(trk_store_t *st, const uint8_t *op, size_t n,
                     uint64_t *maxhlc);

/* Next op of origin after seq `after`: 0 found (*seq), 1 none yet,
 * 2 the peer needs ops this log no longer holds (send a snapshot). */
int  trk_oplog_next(trk_store_t *st, int origin, uint64_t after,
                    uint64_t *seq);
/* The op record bytes (out reset first): 0, 1 absent, -1. */
int  trk_oplog_get(trk_store_t *st, int origin, uint64_t seq,
                   ts_wbuf_t *out);
/* Deletes ops every tracker has (seq <= upto[origin]); own transaction.
 * Returns how many or -1. */
int  trk_oplog_compact(trk_store_t *st, const trk_vv_t *upto);
/* Raises the VV to max(own, vv) after a snapshot (inside a txn). */
int  trk_oplog_adopt(trk_store_t *st, const trk_vv_t *vv);
/* Number of op records kept. */
long trk_oplog_count(trk_store_t *st);
/* The same without a traverse (the STATUS figure): the ops of each
 * origin's last segment above its compaction floor, up to vv. */
long trk_oplog_count_kept(trk_store_t *st, const trk_vv_t *vv);
/* Compaction when every op at or below from is deleted already: probes
 * from < seq <= upto instead of walking (-2: range too wide). */
int  trk_oplog_compact_range(trk_store_t *st, const trk_vv_t *from,
                             const trk_vv_t *upto);

/* The state digest (docs/REPLICATION.md): from the maintained sum of
 * the per-key hashes (trk_index.h), no walk. */
int  trk_digest(trk_store_t *st, uint8_t out[32]);

/* Calls fn(key, klen, env, envlen, arg) for every replicated key (read
 * traverse; fn copies what it keeps). */
int  trk_each_replicated(trk_store_t *st,
                         int (*fn)(const uint8_t *k, size_t kl,
                                   const uint8_t *v, size_t vl, void *arg),
                         void *arg);

/* ---- the same on a plain tdb handle (trk_oplog.c) ---------------------- */
/* Gives the delta envelope of key written under stamp s (*d, freed by
 * the caller): 0 / -1. */
typedef int (*trk_log_delta_fn)(void *arg, const char *key, trk_stamp_t s,
                                trk_rec_t *d);
/* Merges a received envelope into key: 0 / -1. */
typedef int (*trk_log_merge_fn)(void *arg, const uint8_t *key, uint32_t kl,
                                const trk_rec_t *rec);

int      trk_log_vv_load(struct tdb_context *tdb, trk_vv_t *vv);
uint64_t trk_log_epoch_get(struct tdb_context *tdb, int create);
int      trk_log_fresh(struct tdb_context *tdb, int clear);
uint64_t trk_log_hlc_saved(struct tdb_context *tdb);
int      trk_log_hlc_persist(struct tdb_context *tdb, uint64_t hlc);
/* Appends one op of origin o for keys (their deltas from delta()). */
int      trk_log_append(struct tdb_context *tdb, int o, trk_stamp_t s,
                        uint64_t reqid, char **keys, size_t nkeys,
                        trk_log_delta_fn delta, void *arg);
/* Checks and records a received op; merge() applies each key. */
int      trk_log_apply(struct tdb_context *tdb, const uint8_t *op, size_t n,
                       uint64_t *maxhlc, trk_log_merge_fn merge, void *arg);
int      trk_log_next(struct tdb_context *tdb, int origin, uint64_t after,
                      uint64_t *seq);
int      trk_log_get(struct tdb_context *tdb, int origin, uint64_t seq,
                     ts_wbuf_t *out);
int      trk_log_compact(struct tdb_context *tdb, const trk_vv_t *upto);
/* self: this tracker's origin (its next op starts a new segment when the
 * snapshot raised its own seq). */
int      trk_log_adopt(struct tdb_context *tdb, int self, const trk_vv_t *vv);
long     trk_log_count(struct tdb_context *tdb);
/* By seq range, no traverse: compaction of from < seq <= upto (-2: a
 * range too wide, use trk_log_compact) and the count of the ops kept
 * (trk_oplog_count_kept). */
int      trk_log_compact_range(struct tdb_context *tdb, const trk_vv_t *from,
                               const trk_vv_t *upto);
long     trk_log_count_kept(struct tdb_context *tdb, const trk_vv_t *vv);
int      trk_log_digest(struct tdb_context *tdb, uint8_t out[32]);
int      trk_log_each_replicated(struct tdb_context *tdb,
                                 int (*fn)(const uint8_t *k, size_t kl,
                                           const uint8_t *v, size_t vl,
                                           void *arg),
                                 void *arg);

#endif
