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
 * calls (cli_agent.c holds its lock around every one).
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

#define CLI_STATE_FILE   "node.tdb"
#define CLI_REC_VERSION  1      /* shares; downloads written before 2 */
#define CLI_DL_VERSION   2      /* downloads: + the .part's identity */

typedef struct cli_state_s cli_state_t;

typedef struct {
    char      group[TS_ID_MAX_B + 1];
    char      name[TS_NAME_MAX_B + 1];
    char      path[PATH_MAX];
    uint64_t  size;
    int64_t   mtime_ns;
    uint32_t  nchunks;
    uint8_t   sha1[20];
} cli_share_rec_t;

typedef enum {
    CLI_DL_ACTIVE = 1,      /* running or paused */
    CLI_DL_DONE   = 2,
    CLI_DL_FAILED = 3
} cli_dl_state_t;

typedef struct {
    char      group[TS_ID_MAX_B + 1];
    char      name[TS_NAME_MAX_B + 1];
    char      dest[PATH_MAX];
    char      part[PATH_MAX];
    uint64_t  size;
    uint32_t  nchunks;
    uint8_t   sha1[20];
    uint8_t  *hashes;       /* nchunks x 20 (malloc; NULL when 0 chunks) */
    uint32_t  state;        /* cli_dl_state_t */
    char      error[256];   /* FAILED reason */
    uint8_t  *done;         /* (nchunks+7)/8 bytes, LSB first (malloc) */
    /* The .part this download made itself (O_EXCL) and may write: its
     * device, inode and birth time.  Whoever opens the .part or the renamed file
     * checks them, so a file put at either name by someone else is never
     * written, adopted or served.  Zero: a version-1 record, which pins
     * the .part it finds at its next start. */
    node_fid_t part_id;
} cli_dl_rec_t;

/* chunk count of a size; bitmap bytes of a chunk count */
uint32_t cli_nchunks(uint64_t size);
size_t   cli_bitmap_b(uint32_t nchunks);

/* ---- codec (pure; exported for tests) -------------------------------- */
void cli_share_encode(const cli_share_rec_t *r, ts_wbuf_t *b);
int  cli_share_decode(const void *p, size_t n, cli_share_rec_t *r);
void cli_dl_encode(const cli_dl_rec_t *r, ts_wbuf_t *b);
/* Fills r (allocating hashes and done); 0, or -1 with nothing allocated. */
int  cli_dl_decode(const void *p, size_t n, cli_dl_rec_t *r);
/* Allocates zeroed hashes and done for r->nchunks; 0 or -1. */
int  cli_dl_alloc(cli_dl_rec_t *r);
void cli_dl_free(cli_dl_rec_t *r);      /* frees the arrays only */
/* Deep copy (arrays duplicated); 0 or -1. */
int  cli_dl_copy(cli_dl_rec_t *dst, const cli_dl_rec_t *src);

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

#endif
