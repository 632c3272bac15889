/*
 * trk_quota.h -- storage quotas of the tracker: what each user, each
 * group and the whole tracker holds in tracker.tdb, the limits on it, and
 * the checks the write rules make before they add to it (trk_quota.c).
 *
 * Model: the usage counters of trk_usage.h; a quota is a limit on one of
 * them (user, group or whole tracker), checked before the write that
 * would pass it.  Limits: ts_config.h defaults, --quota NAME=VALUE.
 *
 * Locking: the functions taking a trk_store_t run inside (or open) one
 * of its transactions, on the store's thread.  The limits are set once
 * by the supervisor (trk_quota_option) before anything is forked and are
 * read-only afterwards.
 *
 * Crash behaviour: a check writes nothing; the rebuild commits whole or
 * not at all.
 */
#ifndef TRK_QUOTA_H_INCLUDED
#define TRK_QUOTA_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "ts_config.h"
#include "ts_proto.h"
#include "trk_store.h"
#include "trk_usage.h"

/* Limits, 0 = none.  user/group/tracker hold TRK_USE_N each (only the
 * counters that make sense are checked); file_size_b is the largest
 * file accepted. */
typedef struct {
    uint64_t user[TRK_USE_N];
    uint64_t group[TRK_USE_N];
    uint64_t tracker[TRK_USE_N];
    uint64_t file_size_b;
} trk_quota_t;

/* ---- limits (supervisor, before fork) -------------------------------- */
const trk_quota_t *trk_quota_limits(void);
/* One --quota NAME=VALUE: 0, or -1 with the reason in err. */
int  trk_quota_option(const char *arg, char *err, size_t errlen);
/* The --help lines of --quota. */
void trk_quota_usage_text(FILE *f);

/* ---- counters -------------------------------------------------------- */
/* Recomputes every q/ key from the records, in one transaction of its
 * own, and stores the limits in force (for --usage).  0 or -1. */
int  trk_quota_rebuild(trk_store_t *st);

/* ---- checks (write rules, inside their transaction) ------------------ */
/* Each returns TS_OK, or TS_ERR_LIMIT with the text the client prints in
 * msg ("quota exceeded: hash bytes of user alice (...)"; TS_ERR_INTERNAL
 * when a counter cannot be read). */
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
 * Exit code: 0, 1 if the database cannot be read, 2 for a bad name. */
int  trk_quota_usage_cmd(const char *data_dir, int id, const char *name);

#endif
