/*
 * trk_store.h -- the tracker's durable state: the transaction module
 * (trk_store.c), the typed records of accounts, groups, sessions and the
 * reply cache (trk_records.c), and the rules of accounts and groups
 * (trk_accounts.c, trk_groups.c) that run inside one transaction.
 *
 * Keys: trk_keys.h.  Records and their codec: trk_codec.h.  Every record
 * is decoded strictly, so a corrupt record is an error (TS_ERR_INTERNAL
 * for the request that met it), never a crash.
 *
 * Locking: a trk_store_t belongs to one thread of one process (tdb is not
 * thread-safe and a file may be opened once per process).  Between
 * processes tdb's fcntl locks serialise transactions.  The trk_do_*()
 * rule functions below must run inside trk_store_begin()/commit(): they
 * check everything first and only then write, so an error leaves no
 * change.
 */
#ifndef TRK_STORE_H_INCLUDED
#define TRK_STORE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <tdb.h>
#include "ts_config.h"
#include "ts_buf.h"
#include "ts_crypto.h"
#include "ts_proto.h"
#include "ts_tls.h"
#include "trk_codec.h"


typedef struct trk_store_s trk_store_t;


/* ---- open, close, transactions ---------------------------------------- */
/* Opens (creating if create) path.  nosync: TDB_NOSYNC.  NULL on failure
 * with a reason in err. */
trk_store_t *trk_store_open(const char *path, int create, int nosync,
                            char *err, size_t errlen);
void trk_store_close(trk_store_t *st);
/* Hash chains of a tdb file trk_store_open() creates from now on (an
 * existing file keeps its own); default TS_TRK_TDB_HASH_N. */
void trk_store_hash_size(int n);
int  trk_store_begin(trk_store_t *st);      /* 0 or -1 */
int  trk_store_commit(trk_store_t *st);     /* 0 or -1 (cancelled) */
void trk_store_cancel(trk_store_t *st);
int  trk_store_in_txn(const trk_store_t *st);
/* Group commit (see trk_store.c): sub_begin opens a request's part of
 * the worker's batch (0 or -1), ended by trk_store_commit/cancel as
 * usual; batch_end commits the batch: 0, or -1 if a batch since the last
 * end failed (none of its parts is durable).  batch_pending: a batch is
 * open or ran since the last end. */
int  trk_store_sub_begin(trk_store_t *st);
int  trk_store_batch_end(trk_store_t *st);
int  trk_store_batch_pending(const trk_store_t *st);
/* tdb_errorstr of the last failure. */
const char *trk_store_errstr(trk_store_t *st);
/* The tdb handle (the op log, traverses).  Same thread rules as the
 * store itself. */
struct tdb_context;
struct tdb_context *trk_store_tdb(trk_store_t *st);

/* ---- cluster: every replicated key goes through these ---------------- */
/* Keys u/ g/ s/ r/ f/ p/ l/ m/ n/ hold merge envelopes (trk_merge.h);
 * get returns the application value.  Writes inside a transaction are
 * stamped with one HLC value and recorded; trk_store_commit() appends one
 * op (trk_oplog.h) for them in the same transaction.  0 ok / 1 absent /
 * -1 error, like the raw record functions. */
struct trk_rec_s;
void trk_store_set_origin(trk_store_t *st, int origin, void *hlc_word,
                          void *wake_word);
int  trk_store_origin(const trk_store_t *st);
void trk_store_set_reqid(trk_store_t *st, uint64_t reqid);
int  trk_kv_get(trk_store_t *st, const char *key, size_t klen,
                ts_wbuf_t *out);
int  trk_kv_put(trk_store_t *st, const char *key, size_t klen,
                const void *val, size_t vlen);
int  trk_kv_del(trk_store_t *st, const char *key, size_t klen);
/* Envelope of a key (trk_rec_t *): 0 / 1 absent / -1. */
int  trk_kv_rec(trk_store_t *st, const char *key, size_t klen, void *rec);
/* Merges a received envelope into key (no op is logged for it). */
/* For tombstone collection (trk_gc.c), inside a transaction, with no op
 * and no stamp: stores envelope rec (a trk_rec_t *) under key, or
 * deletes the key (rec NULL; a record without a live value).  0 / -1. */
int  trk_kv_replace(trk_store_t *st, const char *key, size_t klen,
                    const void *rec);
/* Tells the STATUS caches that the state moved without an op. */
void trk_store_wake(trk_store_t *st);
int  trk_kv_merge(trk_store_t *st, const char *key, size_t klen,
                  const void *rec);
/* 1 if user is a member of a losing incarnation of group only. */
int  trk_group_lost(trk_store_t *st, const char *group, const char *user);
/* The visible creation stamp of user's account: 0 / 1 absent / -1. */
/* 1 if the incarnation of user created at (hlc, origin) holds the same
 * credentials (salt, iterations, hash) as the visible one: a create_user
 * that a failover retry applied twice.  0 otherwise, -1 on error. */
int  trk_user_same_account(trk_store_t *st, const char *user, uint64_t hlc,
                           uint8_t origin);
int  trk_user_stamp(trk_store_t *st, const char *user, uint64_t *hlc,
                    uint8_t *origin);

/* A run of reads outside a transaction under one read lock of the whole
 * file: tdb otherwise takes and drops an fcntl lock on a hash chain for
 * every fetch, and a listing of many records spends most of its time
 * there.  1 if locked (end with trk_store_read_end), 0 if not (inside a
 * transaction, or the lock failed: each read then locks for itself).
 * Writers of other processes wait while it is held: keep runs short. */
int  trk_store_read_begin(trk_store_t *st);
void trk_store_read_end(trk_store_t *st, int locked);

/* Calls fn for every record: inside a transaction a traverse of it,
 * else a read traverse under one whole-file read lock.  0 / -1. */
int trk_store_walk(trk_store_t *st,
                   int (*fn)(struct tdb_context *, TDB_DATA, TDB_DATA,
                             void *),
                   void *arg);

/* Record access by tdb key (replicated keys through the envelope, others
 * raw): fetch 0 (out->dptr malloc'd, the application value) / 1 absent /
 * -1; store 0 / -1 (b->err counts as an error); delete 0 / 1 absent /
 * -1.  An empty key (dsize 0) is an error. */
int trk_kv_fetch(trk_store_t *st, TDB_DATA key, TDB_DATA *out);
int trk_kv_store(trk_store_t *st, TDB_DATA key, const ts_wbuf_t *b);
int trk_kv_delete(trk_store_t *st, TDB_DATA key);

/* ---- typed records, trk_records.c (0 found, 1 absent, -1 error) ------- */
int trk_user_get(trk_store_t *st, const char *user, trk_user_t *u);
int trk_user_put(trk_store_t *st, const char *user, const trk_user_t *u);
int trk_group_get(trk_store_t *st, const char *group, trk_group_t *g);
int trk_group_put(trk_store_t *st, const char *group, const trk_group_t *g);
int trk_group_del(trk_store_t *st, const char *group);
int trk_session_get(trk_store_t *st, const uint8_t h[32], trk_session_t *s);
int trk_session_put(trk_store_t *st, const uint8_t h[32],
                    const trk_session_t *s);
int trk_session_del(trk_store_t *st, const uint8_t h[32]);

/* Reply cache, keyed by request id AND a hash of the whole request
 * (trk_req_hash: type + payload, token included), so only a genuine,
 * byte-identical retry is answered from it.  get copies the cached reply
 * payload into out (reset first) when the entry exists and was stored
 * for the same type and hash: 0, 1 absent, -1 error. */
void trk_req_hash(uint8_t type, const void *payload, size_t len,
                  uint8_t out[TS_SHA256_B]);
int trk_reply_get(trk_store_t *st, uint64_t reqid, uint8_t type,
                  const uint8_t hash[TS_SHA256_B], ts_wbuf_t *out);
int trk_reply_put(trk_store_t *st, uint64_t reqid, uint8_t type,
                  const uint8_t hash[TS_SHA256_B], const void *payload,
                  size_t len, uint64_t now_wall_ms);


/* ---- rules (inside a transaction) ------------------------------------- */
/* Each returns a status and, on error, the user-visible text in msg. */
ts_status_t trk_do_create_user(trk_store_t *st, const char *user,
                               const trk_user_t *u, char *msg, size_t msgsz);
/* Checks a password against a stored user (runs the KDF; no tdb). */
int trk_password_ok(const trk_user_t *u, const char *pw);
ts_status_t trk_do_create_group(trk_store_t *st, const char *user,
                                const char *group, char *msg, size_t msgsz);
ts_status_t trk_do_join_group(trk_store_t *st, const char *user,
                              const char *group, char *msg, size_t msgsz);
/* new_owner: "" when ownership did not change, "-" when dissolved. */
ts_status_t trk_do_leave_group(trk_store_t *st, const char *user,
                               const char *group, char *new_owner,
                               size_t nosz, char *msg, size_t msgsz);
/* Appends u32 n + n x str user to body. */
ts_status_t trk_do_list_requests(trk_store_t *st, const char *user,
                                 const char *group, ts_wbuf_t *body,
                                 char *msg, size_t msgsz);
ts_status_t trk_do_accept(trk_store_t *st, const char *owner,
                          const char *group, const char *user, int accept,
                          char *msg, size_t msgsz);
/* Appends u32 n + n x (str group, str owner, u32 members), sorted by
 * group id; only groups member_of belongs to when it is not NULL. */
ts_status_t trk_do_list_groups(trk_store_t *st, const char *member_of,
                               ts_wbuf_t *body, char *msg, size_t msgsz);

/* ---- maintenance ------------------------------------------------------ */
typedef struct {
    uint64_t users;
    uint64_t groups;
    uint64_t sessions;
    uint64_t replies;
} trk_counts_t;

int trk_store_count(trk_store_t *st, trk_counts_t *c);
/* Deletes reply-cache entries stored before cutoff_wall_ms (found in the
 * reply queue of the local indexes, no walk), in
 * transactions of at most TS_TRK_EXPIRE_CHUNK_N keys; returns how many
 * or -1. */
int trk_store_expire_replies(trk_store_t *st, uint64_t cutoff_wall_ms);
/* The same from the reply queue (trk_index.h); without may_delete (not
 * the leader) only entries whose reply is gone leave the queue. */
int trk_store_expire_replies_ex(trk_store_t *st, uint64_t cutoff_wall_ms,
                                int may_delete);
/* Calls fn for every session hash in the store (read traverse). */
int trk_store_each_session(trk_store_t *st,
                           void (*fn)(const uint8_t h[32], void *arg),
                           void *arg);

#endif
