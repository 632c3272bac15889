/*
 * trk_admin.h -- operator commands run as `tracker` modes: backup and
 * restore of tracker.tdb (trk_admin_backup.c), admin certificates and
 * the admin listing and actions over TLS (trk_admin_cli.c; the
 * tracker's side is trk_admin_ops.c and trk_admin_act.c).
 *
 * Each returns the process exit code (0 ok, 1 failed, 2 bad usage) after
 * printing what it did on stdout or why it failed on stderr.
 */
#ifndef TRK_ADMIN_H_INCLUDED
#define TRK_ADMIN_H_INCLUDED

#include <stdint.h>

#include "ts_config.h"
#include "trk_keys.h"
#include "trk_ops.h"
#include "trk_store.h"
#include "trk_userflag.h"

struct tdb_context;

/* One entry of an admin listing: the name and a short detail text. */
typedef struct {
    char  key[TRK_KEY_B];
    char  detail[320];
} trk_admin_item_t;

/* One page of a listing (trk_admin_ops.c): the limit (1..1000) smallest
 * names of kind (TS_ADMIN_*; files: of group) after cursor, live records
 * only, from st (a worker) or from tdb (the console); *items malloc'd
 * (the caller frees), *more set when names remain after the page.
 * 0, -1 out of memory, -2 the database could not be read. */
int trk_admin_page(trk_store_t *st, struct tdb_context *tdb, int kind,
                   const char *group, const char *cursor, uint32_t limit,
                   trk_admin_item_t **items, uint32_t *n, int *more);

/* --backup FILE: a consistent copy of <data dir>/tracker.tdb (the
 * default dir ./tsr-tracker-<id> when data_dir is NULL). */
int trk_backup_cmd(const char *data_dir, int id, const char *file);
/* --restore FILE: FILE (a --backup) becomes <data dir>/tracker.tdb of a
 * fresh data directory. */
int trk_restore_cmd(const char *data_dir, int id, const char *file);

/* `--admin NAME ... tracker_info.txt <id> COMMAND [ARG]` */
typedef struct {
    const char  *info_path;
    int          id;
    const char  *pki_dir;           /* admin-NAME.crt/.key are here */
    const char  *ca_path;           /* <pki>/ca.crt */
    const char  *name;              /* NAME */
    char       **args;              /* COMMAND [ARG] */
    int          nargs;
    int          json;              /* --json */
    uint32_t     limit;             /* --limit: entries to print */
    const char  *cursor;            /* --cursor: start after it ("") */
} trk_admin_req_t;

/* ---- operator write actions (trk_admin_act.c) ------------------------ */
/* The sessions an action ended, to drop from the session cache once it
 * committed (h malloc'd). */
typedef struct {
    uint8_t  (*h)[TS_SHA256_B];
    uint32_t   n;
} trk_admin_cut_t;

/* Inside a transaction: action TS_ADMIN_ACT_* on a (user or group) and b
 * (file name or "").  TS_OK with what was done in msg, or an error with
 * its text (nothing written).  cut as above (zeroed first). */
ts_status_t trk_admin_act(trk_store_t *st, int action, const char *a,
                          const char *b, trk_admin_cut_t *cut, char *msg,
                          size_t msgsz);
/* The same in a transaction of its own (st not in one), then the cache
 * (shm may be NULL).  reqid: the op's request id (0: none). */
ts_status_t trk_admin_act_txn(trk_store_t *st, trk_shm_t *shm, int action,
                              const char *a, const char *b, uint64_t reqid,
                              char *msg, size_t msgsz);
/* Drops cut's sessions and (user not NULL) every cached session of user
 * from the session cache; frees cut->h. */
void trk_admin_cut_cache(trk_shm_t *shm, const char *user,
                         trk_admin_cut_t *cut);
void trk_admin_uncache_user(trk_shm_t *shm, const char *user);
/* Around a SYNC batch: note each key before it merges (st: the store,
 * inside the batch's transaction), then end (committed 0: the batch
 * rolled back). */
void trk_admin_merge_note(const uint8_t *k, uint32_t kl, void *st);
void trk_admin_merge_end(trk_env_t *env, int committed);
/* The ADMIN_* requests need a link with an admin certificate: 1 if rq's
 * has one, else 0 with the refusal in rq->msg (and a log line). */
int  trk_admin_link_ok(trk_req_t *rq);

/* --make-admin-cert NAME: <pki>/admin-NAME.crt/.key from ca.key. */
int trk_admin_make_cert(const char *pki_dir, const char *name);
/* --admin: a listing (users, groups, sessions, files GROUP) or an
 * action (disable-user U, enable-user U, remove-file GROUP NAME). */
int trk_admin_cmd(const trk_admin_req_t *a);

#endif
