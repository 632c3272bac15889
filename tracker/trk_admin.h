/*
 * trk_admin.h -- operator commands run as `tracker` modes: backup and
 * restore of tracker.tdb (trk_admin_backup.c), admin certificates and
 * the admin listing over TLS (trk_admin_cli.c; the tracker's side is
 * trk_admin_ops.c).
 *
 * Each returns the process exit code (0 ok, 1 failed, 2 bad usage) after
 * printing what it did on stdout or why it failed on stderr.
 */
#ifndef TRK_ADMIN_H_INCLUDED
#define TRK_ADMIN_H_INCLUDED

#include <stdint.h>

#include "ts_config.h"
#include "trk_keys.h"
#include "trk_store.h"

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

/* --make-admin-cert NAME: <pki>/admin-NAME.crt/.key from ca.key. */
int trk_admin_make_cert(const char *pki_dir, const char *name);
/* --admin: one listing (users, groups, sessions, files GROUP). */
int trk_admin_cmd(const trk_admin_req_t *a);

#endif
