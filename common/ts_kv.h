/*
 * ts_kv.h -- a small wrapper around one tdb file: open with a hash size
 * and flags (tdb messages go to ts_log), one transaction at a time with
 * clear errors, fetch / store / delete, read traverse.
 *
 * Used by the tracker's store (tracker/trk_store.c); meant for the node's
 * state file too.
 *
 * Locking: a ts_kv_t belongs to one thread of one process (tdb is not
 * thread-safe and a file may be opened once per process); tdb's fcntl
 * locks serialise the transactions of different processes.
 *
 * Crash behaviour: tdb transactions are crash-atomic (a recovery area is
 * written before data is overwritten; the next opener replays or
 * discards it).  With TDB_NOSYNC this holds for process crashes, not for
 * power loss.
 */
#ifndef TS_KV_H_INCLUDED
#define TS_KV_H_INCLUDED

#include <stddef.h>
#include <sys/types.h>
#include <tdb.h>

typedef struct ts_kv_s ts_kv_t;

/* Opens path read-write (mode 0600 when open_flags has O_CREAT; also
 * O_CLOEXEC, ...) with hash_size chains (0: tdb's default) and tdb_flags
 * (TDB_DEFAULT, TDB_NOSYNC, ...).  NULL on failure with the reason in
 * err. */
ts_kv_t *ts_kv_open(const char *path, int hash_size, int tdb_flags,
                    int open_flags, char *err, size_t errlen);
/* Cancels an open transaction, closes.  NULL is a no-op. */
void     ts_kv_close(ts_kv_t *kv);
struct tdb_context *ts_kv_tdb(ts_kv_t *kv);

/* begin: 0, or -1 (already in one, or tdb failed: logged);
 * commit: 0, or -1 (not in one, or the commit failed: tdb cancelled it;
 * logged); cancel: no-op outside a transaction. */
int      ts_kv_begin(ts_kv_t *kv);
int      ts_kv_commit(ts_kv_t *kv);
void     ts_kv_cancel(ts_kv_t *kv);
int      ts_kv_in_txn(const ts_kv_t *kv);
const char *ts_kv_errstr(ts_kv_t *kv);

/* fetch: 0 (out->dptr malloc'd, the caller frees), 1 absent, -1 error;
 * store: 0 / -1 (logged); delete: 0, 1 absent, -1 error. */
int      ts_kv_fetch(ts_kv_t *kv, TDB_DATA key, TDB_DATA *out);
int      ts_kv_store(ts_kv_t *kv, TDB_DATA key, TDB_DATA val);
int      ts_kv_delete(ts_kv_t *kv, TDB_DATA key);
/* A read traverse (or a plain one inside a transaction, which sees its
 * own writes): the number of records, or -1. */
int      ts_kv_walk(ts_kv_t *kv, tdb_traverse_func fn, void *arg);

#endif
