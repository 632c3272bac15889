/*
 * trk_index_hook.h -- what the tracker store (trk_store.c) calls of the
 * local indexes (trk_index.h): the note on every envelope store, the
 * flush before a commit, the rebuild at start-up.  Apart from
 * trk_index.h so that the store does not include the index's reader API
 * (which includes the store's header).
 *
 * No state of its own; the same locking as the store (one thread per
 * store handle, inside its transaction).
 */
#ifndef TRK_INDEX_HOOK_H_INCLUDED
#define TRK_INDEX_HOOK_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <tdb.h>

struct trk_store_s;

#define TRK_IDX_VERSION      1
#define TRK_IDX_Q_SESSION    's'        /* queue kinds */
#define TRK_IDX_Q_REPLY      'r'

/* The counters of y/meta, kept in the store handle during a transaction
 * and written once by trk_idx_flush() before the commit. */
typedef struct {
    int      loaded;
    int      dirty;
    uint64_t users, groups, sessions, replies;
    uint64_t nrep;                      /* replicated keys stored */
    uint8_t  sum[32];                   /* sum of key hashes mod 2^256 */
} trk_idx_meta_t;

/* The hook: key (a replicated key) goes from envelope old (dsize 0: no
 * record) to envelope nv.  0 or -1 (the transaction must fail). */
int  trk_idx_note(struct trk_store_s *st, trk_idx_meta_t *m, const char *key,
                  size_t klen, TDB_DATA old, TDB_DATA nv);
/* Writes the counters if the transaction changed them: 0 / -1. */
int  trk_idx_flush(struct trk_store_s *st, trk_idx_meta_t *m);

/* Drops every y/ key and builds them again from the replicated keys, in
 * one transaction of its own.  0 / -1. */
int  trk_idx_rebuild(struct trk_store_s *st);

#endif
