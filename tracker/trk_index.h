/*
 * trk_index.h -- the tracker's local-only derived keys (y/...): counts,
 * an order-independent digest, the group list, each user's groups and
 * the expiry queues of sessions and cached replies (trk_index.c).
 *
 * They exist so that no request and no periodic pass has to walk the
 * whole database: LIST_GROUPS reads the group list, LIST_MY_GROUPS the
 * user's list, STATUS the counts and the digest, the housekeeper only the
 * queue buckets that are due.
 *
 * Every store of a replicated envelope (a local write, a merged op, a
 * snapshot batch: all go through trk_store.c's one store function) calls
 * trk_idx_note() with the envelope before and after, in the same
 * transaction, so the indexes commit or roll back with the data.  They
 * are never replicated and are rebuilt from the replicated keys when the
 * supervisor opens the database at start-up (trk_idx_rebuild()).
 *
 * Locking: like the store (one thread per trk_store_t; tdb transactions
 * serialise processes).  Crash behaviour: nothing of its own -- the keys
 * live in the store's transactions, and a start-up rebuilds them.
 */
#ifndef TRK_INDEX_H_INCLUDED
#define TRK_INDEX_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <tdb.h>
#include "trk_codec.h"
#include "trk_store.h"
#include "trk_index_hook.h"


/* Counts and digest (docs/REPLICATION.md) from y/meta: 0 / -1. */
int  trk_idx_status(trk_store_t *st, trk_counts_t *c, uint8_t digest[32]);

/* The ids of every live group (member_of NULL) or of the groups user
 * member_of belongs to, sorted.  0 / -1. */
int  trk_idx_groups(trk_store_t *st, const char *member_of,
                    trk_strlist_t *out);

/* Queue entries due by now_ms (kind TRK_IDX_Q_*), oldest bucket first,
 * at least max when there are that many: session entries are the hex
 * of the hash, reply entries "<16 hex stored ms>|<r/ key>".  0 / -1. */
int  trk_idx_due(trk_store_t *st, char kind, uint64_t now_ms, size_t max,
                 trk_strlist_t *out);
/* Inside a transaction: removes the entries of done (sorted; those
 * trk_idx_due returned) from the buckets due by now_ms.  0 / -1. */
int  trk_idx_done(trk_store_t *st, char kind, uint64_t now_ms,
                  const trk_strlist_t *done);
/* Inside a transaction: queues entry (kind TRK_IDX_Q_*) at at_ms. */
int  trk_idx_queue(trk_store_t *st, char kind, uint64_t at_ms,
                   const char *entry);

#endif
