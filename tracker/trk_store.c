/*
 * trk_store.c -- the tracker's transaction module: one tdb file
 * (<data-dir>/tracker.tdb) on ts_kv, replicated keys through their merge
 * envelopes, and one op log entry per committed transaction.
 *
 * Purpose: the domain rules read and write application values with
 * trk_kv_get/put/del (or the typed records of trk_records.c); writes of a
 * transaction are stamped with one HLC value and noted, and
 * trk_store_commit() appends the op that replicates them (trk_oplog.h) in
 * the same transaction -- the reply-cache entry of the request included.
 * Every write and merge of a counted key also moves the storage usage
 * counters (trk_usage.h) in that transaction.
 * Keys: trk_keys.h; records: trk_codec.h; envelopes: trk_merge.h.
 *
 * Locking: a trk_store_t is used by one thread only.  tdb's fcntl locks
 * make transactions of different worker processes serialise; readers
 * outside a transaction see only committed data.
 *
 * Crash behaviour: tdb transactions are crash-atomic (a recovery area is
 * written before data is overwritten; the next opener or locker replays
 * or discards it).  A process killed inside a transaction leaves nothing
 * of it, op included.  With --fsync off (TDB_NOSYNC) this still holds for
 * process crashes, not for power loss.  A record that fails to decode is
 * reported as an error to the request that met it and never trusted.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tdb.h>

#include "ts_crypto.h"
#include "ts_log.h"
#include "ts_kv.h"
#include "trk_store.h"
#include "trk_store_int.h"
#include "trk_index_hook.h"
#include "trk_keys.h"
#include "trk_merge.h"
#include "trk_oplog.h"
#include "trk_usage.h"
#include "trk_wake.h"

/* Hash chains of a file this process creates (--tdb-hash-size). */
static int               new_hash_n = TS_TRK_TDB_HASH_N;

/* Used when no tracker shm is attached (tests, tools). */
static _Atomic uint64_t  local_hlc;
static _Atomic uint64_t  local_wake;


trk_store_t *
trk_store_open(const char *path, int create, int nosync, char *err,
               size_t errlen)
{
    trk_store_t *st;

    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    st->origin = 1;
    st->hlc = &local_hlc;
    st->wake = &local_wake;
    st->kv = ts_kv_open(path, new_hash_n,
                        TDB_DEFAULT | (nosync ? TDB_NOSYNC : 0),
                        create ? O_CREAT : 0, err, errlen);
    if (st->kv == NULL) {
        free(st);
        return NULL;
    }
    st->tdb = ts_kv_tdb(st->kv);
    /* the opener that may create the file (the supervisor at start-up,
     * before any worker) builds the local indexes from the data */
    if (create && trk_idx_rebuild(st) != 0) {
        snprintf(err, errlen, "cannot build the indexes of %s", path);
        ts_kv_close(st->kv);
        free(st);
        return NULL;
    }
    return st;
}


void
trk_store_hash_size(int n)
{
    if (n > 0) {
        new_hash_n = n;
    }
}


void
trk_store_txn_reset(trk_store_t *st)
{
    size_t i;

    for (i = 0; i < st->nkeys; i++) {
        free(st->keys[i]);
    }
    st->nkeys = 0;
    st->stamp.hlc = 0;
    st->stamp.origin = 0;
    st->reqid = 0;
    st->idx.loaded = 0;
    st->idx.dirty = 0;
}


void
trk_store_close(trk_store_t *st)
{
    if (st == NULL) {
        return;
    }
    ts_kv_cancel(st->kv);
    trk_store_txn_reset(st);
    free(st->keys);
    ts_kv_close(st->kv);
    free(st);
}


int
trk_store_begin(trk_store_t *st)
{
    if (st->sub) {
        return -1;
    }
    trk_batch_leave(st);
    if (ts_kv_in_txn(st->kv) || ts_kv_begin(st->kv) != 0) {
        return -1;
    }
    trk_store_txn_reset(st);
    return 0;
}


/* The delta of key under stamp s, for the op of this transaction. */
static int
append_delta(void *arg, const char *key, trk_stamp_t s, trk_rec_t *d)
{
    trk_rec_t r;
    int       rc;

    if (trk_kv_rec(arg, key, strlen(key), &r) < 0) {
        return -1;
    }
    rc = trk_rec_delta(&r, s, d);
    trk_rec_free(&r);
    if (rc != 0) {
        trk_rec_free(d);
        return -1;
    }
    return 0;
}


int
trk_oplog_append(trk_store_t *st, trk_stamp_t s, uint64_t reqid,
                 char **keys, size_t nkeys)
{
    return trk_log_append(st->tdb, st->origin, s, reqid, keys, nkeys,
                          append_delta, st);
}


int
trk_store_commit(trk_store_t *st)
{
    int logged;

    if (st->sub) {
        return trk_batch_sub_commit(st);
    }
    if (!ts_kv_in_txn(st->kv) || st->batch) {
        return -1;
    }
    /* the op that replicates this transaction commits with it */
    logged = st->nkeys > 0;
    if (logged && trk_oplog_append(st, st->stamp, st->reqid, st->keys,
                                   st->nkeys) != 0)
    {
        ts_err("cannot append to the op log");
        trk_store_cancel(st);
        return -1;
    }
    if (trk_idx_flush(st, &st->idx) != 0) {
        ts_err("cannot update the database indexes");
        trk_store_cancel(st);
        return -1;
    }
    trk_store_txn_reset(st);
    if (ts_kv_commit(st->kv) != 0) {
        return -1;
    }
    if (logged) {
        trk_wake_bump(st->wake);
    }
    return 0;
}


void
trk_store_cancel(trk_store_t *st)
{
    if (st->sub) {
        trk_batch_sub_cancel(st);
        return;
    }
    if (st->batch) {
        return;                 /* the batch is not this caller's */
    }
    ts_kv_cancel(st->kv);
    trk_store_txn_reset(st);
}


int
trk_store_in_txn(const trk_store_t *st)
{
    return st->sub || (!st->batch && ts_kv_in_txn(st->kv));
}


const char *
trk_store_errstr(trk_store_t *st)
{
    return ts_kv_errstr(st->kv);
}


/* The tdb handle, for the op log (trk_apply.c) and the traverses. */
struct tdb_context *
trk_store_tdb(trk_store_t *st)
{
    return st->tdb;
}


/* ---- keys and raw access ------------------------------------------- */

/* 0 found (*out malloc'd, the application value), 1 absent, -1 error. */
int
trk_kv_fetch(trk_store_t *st, TDB_DATA key, TDB_DATA *out)
{
    ts_wbuf_t b;
    int       rc;

    if (key.dsize == 0) {
        return -1;
    }
    if (trk_key_replicated(key.dptr, key.dsize)) {
        ts_wbuf_init(&b);
        rc = trk_kv_get(st, (const char *) key.dptr, key.dsize, &b);
        if (rc == 0) {
            out->dptr = b.data;     /* ownership passes to the caller */
            out->dsize = b.len;
        } else {
            ts_wbuf_free(&b);
        }
        return rc;
    }
    return ts_kv_fetch(st->kv, key, out);
}


int
trk_kv_store(trk_store_t *st, TDB_DATA key, const ts_wbuf_t *b)
{
    TDB_DATA v;

    if (key.dsize == 0 || b->err) {
        return -1;
    }
    if (trk_key_replicated(key.dptr, key.dsize)) {
        return trk_kv_put(st, (const char *) key.dptr, key.dsize, b->data,
                          b->len);
    }
    trk_batch_leave(st);
    v.dptr = b->data;
    v.dsize = b->len;
    st->nwrites++;
    return ts_kv_store(st->kv, key, v);
}


int
trk_kv_delete(trk_store_t *st, TDB_DATA key)
{
    if (key.dsize == 0) {
        return -1;
    }
    if (trk_key_replicated(key.dptr, key.dsize)) {
        return trk_kv_del(st, (const char *) key.dptr, key.dsize);
    }
    trk_batch_leave(st);
    st->nwrites++;
    return ts_kv_delete(st->kv, key);
}


/* ---- replicated keys ---------------------------------------------- */

void
trk_store_set_origin(trk_store_t *st, int origin, void *hlc_word,
                     void *wake_word)
{
    st->origin = origin;
    if (hlc_word != NULL) {
        st->hlc = hlc_word;
    }
    if (wake_word != NULL) {
        st->wake = wake_word;
    }
}


int
trk_store_origin(const trk_store_t *st)
{
    return st->origin;
}


void
trk_store_set_reqid(trk_store_t *st, uint64_t reqid)
{
    st->reqid = reqid;
}


/* Like trk_kv_rec() but -2 for a record that does not decode. */
static int
kv_rec_ex(trk_store_t *st, const char *key, size_t klen, trk_rec_t *rec)
{
    TDB_DATA k, v;
    int      rc;

    k.dptr = (unsigned char *) key;
    k.dsize = klen;
    rc = ts_kv_fetch(st->kv, k, &v);
    if (rc != 0) {
        trk_rec_init(rec);
        return rc;
    }
    rc = trk_rec_decode(v.dptr, v.dsize, rec);
    free(v.dptr);
    if (rc != 0) {
        ts_err("corrupt envelope for %.*s", (int) klen, key);
        return -2;
    }
    return 0;
}


int
trk_kv_rec(trk_store_t *st, const char *key, size_t klen, void *rec)
{
    int rc = kv_rec_ex(st, key, klen, rec);

    return rc < 0 ? -1 : rc;
}


/* Every store of a replicated envelope (local write, merge, snapshot)
 * comes here: the local indexes follow in the same transaction. */
static int
rec_store(trk_store_t *st, const char *key, size_t klen, const trk_rec_t *r)
{
    ts_wbuf_t b;
    TDB_DATA  k, v, old;
    int       rc = 0;

    ts_wbuf_init(&b);
    trk_rec_encode(&b, r);
    k.dptr = (unsigned char *) key;
    k.dsize = klen;
    v.dptr = b.data;
    v.dsize = b.len;
    st->nwrites++;
    old = tdb_fetch(st->tdb, k);
    if (b.err
        || trk_idx_note(st, &st->idx, key, klen, old, v) != 0
        || ts_kv_store(st->kv, k, v) != 0
        || (!ts_kv_in_txn(st->kv) && trk_idx_flush(st, &st->idx) != 0))
    {
        rc = -1;
    }
    free(old.dptr);
    ts_wbuf_free(&b);
    return rc;
}


int
trk_kv_get(trk_store_t *st, const char *key, size_t klen, ts_wbuf_t *out)
{
    trk_rec_t r;
    int       rc;

    rc = trk_kv_rec(st, key, klen, &r);
    if (rc != 0) {
        return rc;
    }
    rc = trk_rec_view(&r, key, klen, out);
    trk_rec_free(&r);
    return rc;
}


static int
note_key(trk_store_t *st, const char *key, size_t klen)
{
    size_t   i;
    char   **nk;

    if (trk_stamp_zero(st->stamp)) {
        st->stamp.hlc = trk_hlc_next(st->hlc);
        st->stamp.origin = (uint8_t) st->origin;
    }
    for (i = 0; i < st->nkeys; i++) {
        if (strlen(st->keys[i]) == klen && memcmp(st->keys[i], key, klen) == 0)
        {
            return 0;
        }
    }
    if (st->nkeys == st->capkeys) {
        st->capkeys = st->capkeys ? st->capkeys * 2 : 16;
        nk = realloc(st->keys, st->capkeys * sizeof(*nk));
        if (nk == NULL) {
            return -1;
        }
        st->keys = nk;
    }
    st->keys[st->nkeys] = strndup(key, klen);
    if (st->keys[st->nkeys] == NULL) {
        return -1;
    }
    st->nkeys++;
    return 0;
}


/* The guard of every write: its stamp must be above every stamp of the
 * record it overwrites, even if the clock was behind a stamp merged from
 * a peer (else the write would lose to what it overwrote).  A
 * transaction takes its stamp at its first write; when a later key holds
 * a stamp at or above it, the transaction takes a new, higher stamp and
 * the keys it already wrote are re-stamped, so that every key carries
 * the one stamp its op is logged under.  Nothing those keys hold lies
 * between the two stamps: each was below the old one when written.  A
 * key this transaction wrote before holds its own stamp, which is no
 * reason to move. */
static int
stamp_above(trk_store_t *st, trk_rec_t *r)
{
    trk_stamp_t m = trk_rec_max_stamp(r), old = st->stamp, nw;
    trk_rec_t   w;
    size_t      i;
    int         rc;

    trk_hlc_observe(st->hlc, m.hlc);
    /* equal: this transaction wrote the key before (stamps are unique) */
    if (trk_stamp_zero(old) || trk_stamp_cmp(m, old) <= 0) {
        return 0;
    }
    nw.hlc = trk_hlc_next(st->hlc);
    nw.origin = (uint8_t) st->origin;
    for (i = 0; i < st->nkeys; i++) {
        size_t klen = strlen(st->keys[i]);

        rc = kv_rec_ex(st, st->keys[i], klen, &w);
        if (rc != 0) {
            if (rc < 0) {
                return -1;
            }
            continue;
        }
        trk_rec_restamp(&w, old, nw);
        rc = rec_store(st, st->keys[i], klen, &w);
        trk_rec_free(&w);
        if (rc != 0) {
            return -1;
        }
    }
    /* r, read before, is one of them if this transaction wrote it */
    trk_rec_restamp(r, old, nw);
    st->stamp = nw;
    return 0;
}


/* A write outside a transaction gets one of its own. */
static int
kv_write(trk_store_t *st, const char *key, size_t klen, const void *val,
         size_t vlen, int del)
{
    trk_rec_t r;
    ts_wbuf_t view;
    int       rc, own = 0;
    trk_qpart_t q0, q1;             /* the key's usage, before and after */

    trk_batch_leave(st);
    if (!ts_kv_in_txn(st->kv)) {
        if (trk_store_begin(st) != 0) {
            return -1;
        }
        own = 1;
    }
    rc = kv_rec_ex(st, key, klen, &r);
    if (rc == -2 && del) {
        /* a corrupt record can always be deleted: it becomes a
         * tombstone (set kinds: an empty envelope) */
        trk_rec_init(&r);
        if (note_key(st, key, klen) != 0) {
            goto fail;
        }
        if (trk_key_fww(key, klen)) {
            r.d = st->stamp;
        }
        if (rec_store(st, key, klen, &r) != 0) {
            goto fail;
        }
        if (own && trk_store_commit(st) != 0) {
            return -1;
        }
        return 0;
    }
    if (rc < 0) {
        goto fail;
    }
    if (del) {
        /* deleting nothing writes nothing (and logs no key) */
        ts_wbuf_init(&view);
        rc = trk_rec_view(&r, key, klen, &view);
        ts_wbuf_free(&view);
        if (rc != 0) {
            trk_rec_free(&r);
            if (own) {
                trk_store_cancel(st);
            }
            return rc < 0 ? -1 : 1;
        }
    }
    trk_usage_part(key, klen, &r, &q0);
    if (stamp_above(st, &r) != 0 || note_key(st, key, klen) != 0) {
        goto fail;
    }
    if (del) {
        rc = trk_rec_del(&r, key, klen, st->stamp);
    } else {
        rc = trk_rec_put(&r, key, klen, val, vlen, st->stamp);
    }
    if (rc != 0 || rec_store(st, key, klen, &r) != 0) {
        goto fail;
    }
    trk_usage_part(key, klen, &r, &q1);
    if (trk_usage_change(st->tdb, &q0, &q1) != 0) {
        goto fail;
    }
    trk_rec_free(&r);
    if (own && trk_store_commit(st) != 0) {
        return -1;
    }
    return 0;

fail:
    trk_rec_free(&r);
    if (own) {
        trk_store_cancel(st);
    }
    return -1;
}


int
trk_kv_put(trk_store_t *st, const char *key, size_t klen, const void *val,
           size_t vlen)
{
    return kv_write(st, key, klen, val, vlen, 0);
}


int
trk_kv_del(trk_store_t *st, const char *key, size_t klen)
{
    return kv_write(st, key, klen, NULL, 0, 1);
}


int
trk_kv_merge(trk_store_t *st, const char *key, size_t klen, const void *rec)
{
    trk_rec_t r;
    int       rc;
    trk_qpart_t q0, q1;             /* the key's usage, before and after */

    if (!trk_key_replicated(key, klen)) {
        return -1;
    }
    rc = kv_rec_ex(st, key, klen, &r);
    if (rc == -1) {
        return -1;
    }
    memset(&q0, 0, sizeof(q0));
    if (rc == -2) {
        /* a stored record that does not decode (logged by kv_rec_ex)
         * must not refuse every batch forever: it counts as empty and
         * the merged record replaces it */
        trk_rec_free(&r);
        trk_rec_init(&r);
        rc = trk_rec_merge(&r, rec);
        rc = rc < 0 ? -1 : 1;
    } else {
        trk_usage_part(key, klen, &r, &q0);
        rc = trk_rec_merge(&r, rec);
    }
    if (rc > 0) {
        rc = rec_store(st, key, klen, &r);
        trk_usage_part(key, klen, &r, &q1);
        rc = rc == 0 ? trk_usage_change(st->tdb, &q0, &q1) : rc;
    }
    trk_rec_free(&r);
    return rc < 0 ? -1 : 0;
}


int
trk_store_walk(trk_store_t *st,
               int (*fn)(struct tdb_context *, TDB_DATA, TDB_DATA, void *),
               void *arg)
{
    int rc;

    if (ts_kv_in_txn(st->kv)) {
        return ts_kv_walk(st->kv, fn, arg) < 0 ? -1 : 0;
    }
    /* one read lock over the whole file instead of one fcntl lock per
     * hash chain (thousands of syscalls per listing) */
    if (tdb_lockall_read(st->tdb) != 0) {
        return -1;
    }
    rc = tdb_traverse_read(st->tdb, fn, arg);
    tdb_unlockall_read(st->tdb);
    return rc < 0 ? -1 : 0;
}


int
trk_store_read_begin(trk_store_t *st)
{
    if (ts_kv_in_txn(st->kv)) {
        return 0;
    }
    return tdb_lockall_read(st->tdb) == 0;
}


void
trk_store_read_end(trk_store_t *st, int locked)
{
    if (locked) {
        tdb_unlockall_read(st->tdb);
    }
}
