/*
 * trk_index_int.h -- what the index modules share (trk_index.c, the
 * queues in trk_index_q.c, the rebuild in trk_index_build.c); not for
 * other callers.
 *
 * No state and no locks of its own: the functions work on the store's
 * tdb handle inside the caller's transaction.
 */
#ifndef TRK_INDEX_INT_H_INCLUDED
#define TRK_INDEX_INT_H_INCLUDED

#include <stdint.h>
#include <tdb.h>
#include "trk_codec.h"
#include "trk_index_hook.h"
#include "trk_keys.h"

#define TRK_IDX_REC      'Y'            /* record kind of an index list */
#define TRK_IDX_ENTRY_B  (TRK_KEY_B + 24)

TDB_DATA trk_idx_key(char *buf, const char *a, const char *b);
TDB_DATA trk_idx_group_bucket(char *buf, const char *group);
int  trk_idx_list_get(struct tdb_context *tdb, TDB_DATA k, trk_strlist_t *l);
int  trk_idx_list_put(struct tdb_context *tdb, TDB_DATA k,
                      const trk_strlist_t *l);
/* Appends a copy of every entry of src to dst (no sorting): 0 / -1. */
int  trk_idx_list_append(trk_strlist_t *dst, const trk_strlist_t *src);
int  trk_idx_meta_put(struct tdb_context *tdb, const trk_idx_meta_t *m);
int  trk_idx_key_hash(const void *key, size_t klen, TDB_DATA env,
                      uint8_t h[32]);
/* The digest of a sum of per-key hashes over n keys. */
int  trk_idx_digest_of(const uint8_t sum[32], uint64_t n, uint8_t out[32]);
void trk_idx_sum(uint8_t sum[32], const uint8_t h[32], int sign);
#define TRK_IDX_Q_SLOTS  8              /* records per queue second */

/* The queue record of kind for second b and slot; the slot of an entry;
 * the directory of kind (sorted hex16 seconds) stored. */
TDB_DATA trk_idx_qkey(char *buf, char kind, uint64_t b, unsigned slot);
unsigned trk_idx_qslot(const char *entry);
int  trk_idx_dir_put(struct tdb_context *tdb, char kind,
                     const trk_strlist_t *d);

#endif
