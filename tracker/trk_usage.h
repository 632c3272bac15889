/*
 * trk_usage.h -- storage usage counters of tracker.tdb (trk_usage.c).
 *
 * Model: the usage of an owner is a sum over replicated keys.  Every
 * f/ record counts one file and its hash bytes (20 per chunk) for its
 * first uploader, for its group and for the tracker; a g/ record counts a
 * group for its (derived) owner; an s/ record a session for its user; an
 * m/ record one node and one share per entry for its user.  The sums are
 * kept in local-only q/ keys (trk_keys.h): q/u/<user>, q/g/<group>, q/t,
 * each 'Q', version 1, u32 n, n x u64 (indexed by TRK_USE_*).
 * trk_store.c updates them in the same transaction as every write or
 * merge of a counted key, so they are right on every tracker whatever
 * order the ops arrive in; trk_quota_rebuild() recomputes them at
 * start-up.
 *
 * Locking: inside the caller's tdb transaction, on the store's thread.
 *
 * Crash behaviour: the counters commit with the records they count.
 */
#ifndef TRK_USAGE_H_INCLUDED
#define TRK_USAGE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <tdb.h>
#include "ts_config.h"
#include "trk_merge.h"

/* The counters of one owner, indexed by these. */
enum {
    TRK_USE_FILES = 0,      /* f/ records (first uploader / group) */
    TRK_USE_HASH_B,         /* their chunk hashes, bytes */
    TRK_USE_GROUPS,         /* groups owned */
    TRK_USE_SESSIONS,       /* live sessions */
    TRK_USE_NODES,          /* nodes sharing (m/ records) */
    TRK_USE_SHARES,         /* (node, file) shares: m/ entries */
    TRK_USE_N
};

typedef struct {
    uint64_t v[TRK_USE_N];
} trk_use_t;

/* What one replicated key adds to its owners (trk_quota_part). */
typedef struct {
    char      user[TS_ID_MAX_B + 1];    /* "" = no user */
    char      group[TS_ID_MAX_B + 1];   /* "" = no group */
    trk_use_t u;
} trk_qpart_t;

/* The share of r, the envelope of key, in its owners' usage (zero for a
 * kind that is not counted, or no live value). */
void trk_usage_part(const void *key, size_t klen, const trk_rec_t *r,
                    trk_qpart_t *p);
/* Moves the counters from what a key added (before) to what it adds now
 * (after).  Inside the transaction; 0 or -1. */
int  trk_usage_change(struct tdb_context *tdb, const trk_qpart_t *before,
                      const trk_qpart_t *after);
/* The counters of a user ('u'), a group ('g') or the tracker ('t', name
 * ignored): 0 (absent: zeros) or -1. */
int  trk_usage_get(struct tdb_context *tdb, char kind, const char *name,
                   trk_use_t *u);
/* The key q/u/<name>, q/g/<name> or q/t into kb (TRK_KEY_B bytes). */
TDB_DATA trk_usage_key(char *kb, char kind, const char *name);
/* Raw q/ record k into v[nv] (zeros when absent): 0, 1 absent, -1. */
int  trk_usage_read(struct tdb_context *tdb, TDB_DATA k, uint64_t *v,
                    uint32_t nv);
int  trk_usage_store(struct tdb_context *tdb, TDB_DATA k, const uint64_t *v,
                     uint32_t nv);

#endif
