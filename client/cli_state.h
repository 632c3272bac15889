/*
 * cli_state.h -- node.tdb, the durable state of a client node: the files
 * it shares and its downloads, per user.
 *
 * Keys (no NUL stored):
 *   s/<user>/<group>/<name>   a share     {path, size, mtime_ns, nchunks,
 *                                          sha1}
 *   d/<user>/<group>/<name>   a download  {dest, part, size, nchunks, sha1,
 *                                          hashes, state, error, done,
 *                                          part_id}
 * user and group are ts_valid_id, name is ts_valid_filename, so '/' can
 * only be a separator.  Values use the bounded ts_buf codec with a version
 * byte; every field is checked on decode (lengths before allocation,
 * nchunks against size, the key's group and name against the record's),
 * so a corrupt record is rejected, never half-used.
 *
 * Locking: a cli_state_t belongs to the CLI process only (node workers
 * never open node.tdb) and is not thread-safe: the caller serialises all
 * calls (the agent holds its lock around every one).
 * Crash behaviour: every write is inside a tdb transaction (one per put
 * unless the caller opened a wider one with cli_state_begin), so after a
 * crash each record is either the old or the new version; a multi-record
 * change (a finished download becoming a share) commits as one.
 */
#ifndef CLI_STATE_H_INCLUDED
#define CLI_STATE_H_INCLUDED

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "node_shm.h"
#include "cli_rec.h"

#define CLI_STATE_FILE   "node.tdb"

typedef struct cli_state_s cli_state_t;

/* ---- the database ---------------------------------------------------- */
/* Opens (creating) <dir>/node.tdb.  NULL after logging why. */
cli_state_t *cli_state_open(const char *dir);
void         cli_state_close(cli_state_t *st);

/* An explicit transaction around several puts/deletes; 0 or -1. */
int  cli_state_begin(cli_state_t *st);
int  cli_state_commit(cli_state_t *st);
void cli_state_cancel(cli_state_t *st);

int  cli_state_share_put(cli_state_t *st, const char *user,
                         const cli_share_rec_t *r);
/* 0 found, 1 not found, -1 corrupt or error. */
int  cli_state_share_get(cli_state_t *st, const char *user,
                         const char *group, const char *name,
                         cli_share_rec_t *r);
int  cli_state_share_del(cli_state_t *st, const char *user,
                         const char *group, const char *name);

int  cli_state_dl_put(cli_state_t *st, const char *user,
                      const cli_dl_rec_t *r);
/* 0 found (free with cli_dl_free), 1 not found, -1 corrupt or error. */
int  cli_state_dl_get(cli_state_t *st, const char *user, const char *group,
                      const char *name, cli_dl_rec_t *r);
int  cli_state_dl_del(cli_state_t *st, const char *user, const char *group,
                      const char *name);

/* Calls fn for every valid record of user (corrupt ones are logged and
 * skipped).  The record passed to a dl callback is freed after it
 * returns unless the callback takes it (sets r->hashes = r->done = NULL).
 * Returns the number of records visited, or -1.  Callbacks must not
 * write to the database. */
typedef void (*cli_share_cb_t)(void *arg, cli_share_rec_t *r);
typedef void (*cli_dl_cb_t)(void *arg, cli_dl_rec_t *r);
int  cli_state_shares(cli_state_t *st, const char *user, cli_share_cb_t fn,
                      void *arg);
int  cli_state_dls(cli_state_t *st, const char *user, cli_dl_cb_t fn,
                   void *arg);
/* The same over every user's download records. */
int  cli_state_dls_all(cli_state_t *st, cli_dl_cb_t fn, void *arg);

#endif
