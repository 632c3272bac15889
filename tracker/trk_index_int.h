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
#include "ts_buf.h"
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
/* Stores the bytes of b under k and frees b: 0 / -1. */
int  trk_idx_put_wbuf(struct tdb_context *tdb, TDB_DATA k, ts_wbuf_t *b);
/* Adds (add) or removes s in the sorted list at k without decoding it:
 * 1 changed, 0 already so, -1 error; *count (may be NULL) gets the
 * number of entries after. */
int  trk_idx_list_edit(struct tdb_context *tdb, TDB_DATA k, const char *s,
                       int add, uint32_t *count);
/* Appends a copy of every entry of src to dst (no sorting): 0 / -1. */
int  trk_idx_list_append(trk_strlist_t *dst, const trk_strlist_t *src);
int  trk_idx_meta_put(struct tdb_context *tdb, const trk_idx_meta_t *m);
int  trk_idx_key_hash(const void *key, size_t klen, TDB_DATA env,
                      uint8_t h[32]);
/* The digest of a sum of per-key hashes over n keys. */
int  trk_idx_digest_of(const uint8_t sum[32], uint64_t n, uint8_t out[32]);
void trk_idx_sum(uint8_t sum[32], const uint8_t h[32], int sign);
/* The groups of a user (trk_index_ug.c): y/ug/<user> is the sorted list
 * while it has at most TS_TRK_IDX_UG_INLINE_N entries; above, it is a
 * record TRK_IDX_SPLIT holding the count, and the entries are in
 * TS_TRK_IDX_UG_BUCKETS_N sorted lists y/ug/<user>/<2 hex> by a hash of
 * the group id.  The form depends only on the count, so a rebuild and
 * any sequence of edits give the same records. */
#define TRK_IDX_SPLIT    'Z'
TDB_DATA trk_idx_ug_key(char *buf, const char *user);
TDB_DATA trk_idx_ug_bucket(char *buf, const char *user, const char *group);
/* Inside a transaction: adds (add) or removes group: 0 / -1. */
int  trk_idx_ug_edit(struct tdb_context *tdb, const char *user,
                     const char *group, int add);
int  trk_idx_ug_get(struct tdb_context *tdb, const char *user,
                    trk_strlist_t *out);
/* Writes the whole index of user from sorted (the rebuild): 0 / -1. */
int  trk_idx_ug_put(struct tdb_context *tdb, const char *user,
                    const trk_strlist_t *sorted);

#define TRK_IDX_Q_SLOTS  8              /* records per queue second */

/* The queue record of kind for second b and slot; the slot of an entry;
 * the directory of kind (sorted hex16 seconds) stored. */
TDB_DATA trk_idx_qkey(char *buf, char kind, uint64_t b, unsigned slot);
unsigned trk_idx_qslot(const char *entry);
int  trk_idx_dir_put(struct tdb_context *tdb, char kind,
                     const trk_strlist_t *d);

#endif
