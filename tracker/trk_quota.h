/*
 * trk_quota.h -- storage quotas of the tracker: what each user, each
 * group and the whole tracker holds in tracker.tdb, the limits on it, and
 * the checks the write rules make before they add to it (trk_quota.c).
 *
 * Model: the usage of an owner is a sum over replicated keys.  Every
 * f/ record counts one file and its hash bytes (20 per chunk) for its
 * first uploader, for its group and for the tracker; a g/ record counts a
 * group for its (derived) owner; an s/ record a session for its user; an
 * m/ record one node and one share per entry for its user.  The sums are
 * kept in local-only q/ keys (trk_keys.h), updated by trk_store.c in the
 * same transaction as every write or merge of a counted key, so they are
 * right on every tracker whatever order the ops arrive in, and rebuilt
 * from the records at start-up (trk_quota_rebuild).
 *
 * Locking: the functions taking a trk_store_t run inside (or open) one
 * of its transactions, on the store's thread.  The limits are set once
 * by the supervisor (trk_quota_option) before anything is forked and are
 * read-only afterwards.
 *
 * Crash behaviour: counters commit with the records they count; a crash
 * leaves both as they were.  A counter that drifted (a corrupt record
 * replaced) is right again after the next start-up.
 */
#ifndef TRK_QUOTA_H_INCLUDED
#define TRK_QUOTA_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "ts_config.h"
#include "ts_proto.h"
#include "trk_store.h"
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

/* Limits, 0 = none.  user/group/tracker hold TRK_USE_N each (only the
 * counters that make sense are checked); file_size_b is the largest
 * file accepted. */
typedef struct {
    uint64_t user[TRK_USE_N];
    uint64_t group[TRK_USE_N];
    uint64_t tracker[TRK_USE_N];
    uint64_t file_size_b;
} trk_quota_t;

/* What one replicated key adds to its owners (trk_quota_part). */
typedef struct {
    char      user[TS_ID_MAX_B + 1];    /* "" = no user */
    char      group[TS_ID_MAX_B + 1];   /* "" = no group */
    trk_use_t u;
} trk_qpart_t;

/* ---- limits (supervisor, before fork) -------------------------------- */
const trk_quota_t *trk_quota_limits(void);
/* One --quota NAME=VALUE: 0, or -1 with the reason in err. */
int  trk_quota_option(const char *arg, char *err, size_t errlen);
/* The --help lines of --quota. */
void trk_quota_usage_text(FILE *f);

/* ---- counting (trk_store.c, on every write and merge) ---------------- */
/* The share of r, the envelope of key, in its owners' usage (zero for a
 * kind that is not counted, or no live value). */
void trk_quota_part(const void *key, size_t klen, const trk_rec_t *r,
                    trk_qpart_t *p);
/* Moves the counters from what the key added (before) to what it adds
 * now (after).  Inside the store's transaction; 0 or -1. */
int  trk_quota_change(trk_store_t *st, const trk_qpart_t *before,
                      const trk_qpart_t *after);
/* Recomputes every q/ key from the records, in one transaction of its
 * own, and stores the limits in force (for --usage).  0 or -1. */
int  trk_quota_rebuild(trk_store_t *st);
/* The counters of a user ('u'), a group ('g') or the tracker ('t', name
 * ignored): 0 (absent: zeros) or -1. */
int  trk_quota_get(trk_store_t *st, char kind, const char *name,
                   trk_use_t *u);

/* ---- checks (write rules, inside their transaction) ------------------ */
/* Each returns TS_OK, or TS_ERR_LIMIT / TS_ERR_BADREQ with the text the
 * client prints in msg ("quota exceeded: hash bytes of user alice ..."). */
ts_status_t trk_quota_check_size(uint64_t size, char *msg, size_t msgsz);
ts_status_t trk_quota_check_file(trk_store_t *st, const char *user,
                                 const char *group, uint32_t nchunks,
                                 char *msg, size_t msgsz);
/* user adds a source from node addr (a new entry of m/<user>/<addr>). */
ts_status_t trk_quota_check_share(trk_store_t *st, const char *user,
                                  const char *addr, char *msg, size_t msgsz);
ts_status_t trk_quota_check_group(trk_store_t *st, const char *user,
                                  char *msg, size_t msgsz);

/* ---- operators ------------------------------------------------------- */
/* tracker --usage NAME: prints the usage of user NAME, group NAME and
 * the tracker from <data_dir>/tracker.tdb (data_dir NULL: the default
 * ./tsr-tracker-<id>; opened read-only, the tracker may be running).
 * Exit code: 0, or 1 if the database cannot be read. */
int  trk_quota_usage_cmd(const char *data_dir, int id, const char *name);

#endif
