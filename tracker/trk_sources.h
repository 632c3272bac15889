/*
 * trk_sources.h -- the file registry's records, presence and group hooks
 * (trk_sources.c), used by the file rules (trk_files.c, trk_file_info.c),
 * the account handlers (login, logout), the groups and the housekeeper.
 *
 * Keys and records: trk_keys.h, trk_codec.h.  Locking: one thread per
 * trk_store_t; every function that writes runs inside the caller's
 * transaction and checks before it writes.  Crash behaviour: nothing
 * outlives the caller's transaction half-done.
 */
#ifndef TRK_SOURCES_H_INCLUDED
#define TRK_SOURCES_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <tdb.h>
#include "ts_config.h"
#include "ts_buf.h"
#include "ts_proto.h"
#include "ts_ticket.h"
#include "trk_codec.h"
#include "trk_store.h"
#include "trk_shm.h"

/* Who asks, and how to tell whether a session is live.  shm may be NULL
 * (then tdb alone decides: a session record = live). */
typedef struct {
    trk_store_t *st;
    trk_shm_t   *shm;
    int64_t      now_ms;                /* monotonic */
    int64_t      timeout_ms;
    const char  *user;
    const char  *node_addr;             /* of the requesting session */
    /* FILE_INFO tickets; signer NULL = an empty ticket */
    ts_ticket_signer_t *signer;
    const uint8_t      *req_fp;         /* requesting link's client cert
                                           fingerprint, NULL = none */
    int64_t             ticket_ttl_ms;
    /* FILE_INFO: addresses the requester asks to leave out (sources
     * that never answered it); listed only to fill the sample */
    const char        (*excl)[TRK_ADDR_MAX_B];
    uint32_t            nexcl;
} trk_fctx_t;

/* Records: 0 found, 1 absent, -1 error or corrupt. */
int  trk_file_get(trk_store_t *st, const char *group, const char *name,
                  trk_file_t *f);
int  trk_srcs_get(trk_store_t *st, const char *group, const char *name,
                  trk_srcs_t *s);

/* l/ and m/ lists: 0 found, 1 absent (l empty), -1 error or corrupt;
 * put deletes the key when l is empty. */
int  trk_strlist_get(trk_store_t *st, TDB_DATA key, uint8_t kind,
                     uint32_t max, trk_strlist_t *l);
int  trk_strlist_put(trk_store_t *st, TDB_DATA key, uint8_t kind,
                     const trk_strlist_t *l);
/* p/<group>/<name> := s: 0 / -1. */
int  trk_srcs_put(trk_store_t *st, const char *group, const char *name,
                  const trk_srcs_t *s);
/* Index of source (user, addr) in s, or -1. */
int  trk_src_find(const trk_srcs_t *s, const char *user, const char *addr);
void trk_src_remove_at(trk_srcs_t *s, uint32_t i);
/* The m/<user>/<addr> index: add (add = 1) or remove "group/name". */
int  trk_shares_update(trk_store_t *st, const char *user, const char *addr,
                       const char *group, const char *name, int add);
/* Drops a file's records and its name from l/<group>; the callers fix
 * the m/ index of its sources. */
int  trk_file_drop(trk_store_t *st, const char *group, const char *name);
/* Forgets group/name's proven-source record (trk_srcpick.c) when the
 * file goes.  0 or -1. */
int  trk_proven_drop(trk_store_t *st, const char *group, const char *name);
/* A source worth handing out: online and holding something (fp gets the
 * node fingerprint of its newest live session). */
int  trk_src_useful(const trk_fctx_t *c, const trk_src_t *e, uint8_t *fp);

/* ---- hooks (inside the caller's transaction; 0 or -1) ----------------- */
/* A session h of user was created from node_addr (login). */
int trk_files_session_added(trk_store_t *st, const uint8_t h[32],
                            const char *user, const char *node_addr);
/* Session h is about to be deleted (logout, expiry): call before
 * trk_session_del(), it reads the session record. */
int trk_files_session_gone(trk_store_t *st, const uint8_t h[32]);
/* user left group (still existing): drops the user's sources there. */
int trk_files_member_left(trk_store_t *st, const char *group,
                          const char *user);
/* group was dissolved: its files go. */
int trk_files_group_gone(trk_store_t *st, const char *group);

#endif
