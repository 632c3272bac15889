/*
 * trk_index_build.c -- rebuilding the local indexes (trk_index.h) from
 * the replicated keys: at start-up, by the supervisor, before any worker
 * runs.
 *
 * Purpose: the indexes are derived data; building them again from what
 * the database holds makes them right whatever happened before (a
 * binary without them ran on this directory, a crash, a bug).  One read
 * traverse gathers everything in memory, then one transaction drops
 * every y/ key and writes the new ones.  Sessions are not queued here:
 * the first housekeeping pass of a new shm segment looks at all of them.
 *
 * Locking: the read traverse holds tdb's whole-file read lock; the
 * writes are one transaction.  Meant to run alone (the supervisor before
 * it starts workers); a concurrent writer would only make the result
 * stale until the next start.
 *
 * Crash behaviour: the transaction commits whole or not at all; the
 * next start rebuilds again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_clock.h"
#include "ts_log.h"
#include "trk_index.h"
#include "trk_index_int.h"
#include "trk_merge.h"
#include "trk_gc.h"

#define UG_PREFIX    "y/ug/"
#define UG_PREFIX_B  (sizeof(UG_PREFIX) - 1)

typedef struct {
    char *key;                  /* the index key */
    char *entry;
} pair_t;

typedef struct {
    trk_idx_meta_t m;
    pair_t        *p;
    size_t         n, cap;
    TDB_DATA      *old;         /* y/ keys found */
    size_t         nold, capold;
    trk_strlist_t  rdir;        /* reply queue seconds */
    uint64_t       tombs;       /* tombstone index entries (trk_gc.h) */
    int            err;
} build_t;


static int
add_pair(build_t *w, TDB_DATA k, const char *entry)
{
    pair_t *np;

    if (k.dsize == 0) {
        return 0;
    }
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 1024;
        np = realloc(w->p, w->cap * sizeof(*np));
        if (np == NULL) {
            return -1;
        }
        w->p = np;
    }
    w->p[w->n].key = strndup((const char *) k.dptr, k.dsize);
    w->p[w->n].entry = strdup(entry);
    if (w->p[w->n].key == NULL || w->p[w->n].entry == NULL) {
        free(w->p[w->n].key);
        free(w->p[w->n].entry);
        return -1;
    }
    w->n++;
    return 0;
}


static int
add_old(build_t *w, TDB_DATA k)
{
    TDB_DATA *nk;

    if (w->nold == w->capold) {
        w->capold = w->capold ? w->capold * 2 : 256;
        nk = realloc(w->old, w->capold * sizeof(*nk));
        if (nk == NULL) {
            return -1;
        }
        w->old = nk;
    }
    w->old[w->nold].dptr = malloc(k.dsize);
    if (w->old[w->nold].dptr == NULL) {
        return -1;
    }
    memcpy(w->old[w->nold].dptr, k.dptr, k.dsize);
    w->old[w->nold].dsize = k.dsize;
    w->nold++;
    return 0;
}


/* The index entries of one live group value. */
static int
build_group(build_t *w, const char *gid, const ts_wbuf_t *val)
{
    trk_group_t g;
    char        kb[TRK_KEY_B];
    uint32_t    i;
    int         rc;

    if (add_pair(w, trk_idx_group_bucket(kb, gid), gid) != 0) {
        return -1;
    }
    if (trk_group_decode(val->data, val->len, &g) != 0) {
        return 0;
    }
    for (rc = 0, i = 0; rc == 0 && i < g.nmembers; i++) {
        rc = add_pair(w, trk_idx_ug_key(kb, g.members[i].user), gid);
    }
    trk_group_free(&g);
    return rc;
}


static int
build_reply(build_t *w, const char *key, size_t klen, const ts_wbuf_t *val)
{
    ts_rbuf_t r;
    uint64_t  stored = 0, b;
    char      e[TRK_IDX_ENTRY_B], kb[TRK_KEY_B], sec[17];

    ts_rbuf_init(&r, val->data, val->len);
    if (trk_codec_get_head(&r, TRK_REC_REPLY) == 0) {
        stored = ts_get_u64(&r);
    }
    snprintf(e, sizeof(e), "%016llx|%.*s", (unsigned long long) stored,
             (int) klen, key);
    b = stored / TS_TRK_IDX_Q_UNIT_MS;
    snprintf(sec, sizeof(sec), "%016llx", (unsigned long long) b);
    if (trk_strlist_add(&w->rdir, sec) < 0) {
        return -1;
    }
    return add_pair(w, trk_idx_qkey(kb, TRK_IDX_Q_REPLY, b,
                                    trk_idx_qslot(e)), e);
}


/* A tombstone goes into round 0 of the collection index (trk_gc.h). */
static int
build_tomb(build_t *w, const char *key, size_t klen, TDB_DATA v)
{
    char     kb[TRK_KEY_B], eb[TRK_IDX_ENTRY_B];
    TDB_DATA ik;
    int      rc = trk_gc_build_entry(key, klen, v, kb, &ik, eb, sizeof(eb));

    if (rc > 0 && add_pair(w, ik, eb) != 0) {
        rc = -1;
    }
    w->tombs += rc > 0;
    if (rc < 0) {
        w->err = 1;
    }
    return rc < 0 ? -1 : 0;
}


static int
build_walk(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    build_t    *w = arg;
    const char *key = (const char *) k.dptr;
    ts_wbuf_t   val;
    uint8_t     h[32];
    char        gid[TS_ID_MAX_B + 1];
    int         rc = 0;

    (void) tdb;
    if (trk_key_is(k.dptr, k.dsize, TRK_KEY_INDEX)) {
        return add_old(w, k) == 0 ? 0 : (w->err = 1, -1);
    }
    if (!trk_key_replicated(k.dptr, k.dsize)) {
        return 0;
    }
    if (trk_idx_key_hash(k.dptr, k.dsize, v, h) != 0) {
        w->err = 1;
        return -1;
    }
    trk_idx_sum(w->m.sum, h, 1);
    w->m.nrep++;
    if (build_tomb(w, key, k.dsize, v) != 0) {
        return -1;
    }
    if (!strchr("ugsr", key[0])) {
        return 0;
    }
    ts_wbuf_init(&val);
    if (trk_env_view(k.dptr, k.dsize, v.dptr, v.dsize, &val) != 0) {
        ts_wbuf_free(&val);
        return 0;                       /* no live value */
    }
    switch (key[0]) {
    case TRK_KEY_USER:    w->m.users++; break;
    case TRK_KEY_SESSION: w->m.sessions++; break;
    case TRK_KEY_REPLY:
        w->m.replies++;
        rc = build_reply(w, key, k.dsize, &val);
        break;
    default:
        w->m.groups++;
        if (k.dsize - 2 <= TS_ID_MAX_B) {
            memcpy(gid, key + 2, k.dsize - 2);
            gid[k.dsize - 2] = '\0';
            rc = build_group(w, gid, &val);
        }
        break;
    }
    ts_wbuf_free(&val);
    if (rc != 0) {
        w->err = 1;
        return -1;
    }
    return 0;
}


static int
pair_cmp(const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    int           c = strcmp(x->key, y->key);

    return c != 0 ? c : strcmp(x->entry, y->entry);
}


/* Writes the gathered lists: one per distinct index key. */
static int
build_write(struct tdb_context *tdb, build_t *w)
{
    trk_strlist_t l;
    TDB_DATA      k;
    size_t        i, j;
    int           rc = 0;

    for (i = 0; i < w->nold && rc == 0; i++) {
        rc = tdb_delete(tdb, w->old[i]) == 0 ? 0 : -1;
    }
    if (w->n > 1) {
        qsort(w->p, w->n, sizeof(*w->p), pair_cmp);
    }
    for (i = 0; i < w->n && rc == 0; i = j) {
        memset(&l, 0, sizeof(l));
        for (j = i; j < w->n && strcmp(w->p[j].key, w->p[i].key) == 0; j++) {
            if (trk_strlist_add(&l, w->p[j].entry) < 0) {
                rc = -1;
                break;
            }
        }
        k.dptr = (unsigned char *) w->p[i].key;
        k.dsize = strlen(w->p[i].key);
        if (rc == 0 && strncmp(w->p[i].key, UG_PREFIX, UG_PREFIX_B) == 0) {
            /* a user's groups: a list or buckets, by the count */
            rc = trk_idx_ug_put(tdb, w->p[i].key + UG_PREFIX_B, &l);
        } else if (rc == 0) {
            rc = trk_idx_list_put(tdb, k, &l);
        }
        trk_strlist_free(&l);
    }
    if (rc == 0) {
        rc = trk_idx_dir_put(tdb, TRK_IDX_Q_REPLY, &w->rdir);
    }
    if (rc == 0) {
        rc = trk_idx_meta_put(tdb, &w->m);
    }
    if (rc == 0) {
        rc = trk_gc_count_put(tdb, w->tombs);
    }
    return rc;
}


int
trk_idx_rebuild(trk_store_t *st)
{
    struct tdb_context *tdb = trk_store_tdb(st);
    build_t             w;
    size_t              i;
    int64_t             t0 = ts_now_ms();
    int                 rc = -1;

    memset(&w, 0, sizeof(w));
    if (tdb_lockall_read(tdb) == 0) {
        rc = tdb_traverse_read(tdb, build_walk, &w) < 0 || w.err ? -1 : 0;
        tdb_unlockall_read(tdb);
    }
    if (rc == 0) {
        if (tdb_transaction_start(tdb) != 0) {
            rc = -1;
        } else if (build_write(tdb, &w) != 0) {
            tdb_transaction_cancel(tdb);
            rc = -1;
        } else if (tdb_transaction_commit(tdb) != 0) {
            rc = -1;
        }
    }
    for (i = 0; i < w.n; i++) {
        free(w.p[i].key);
        free(w.p[i].entry);
    }
    for (i = 0; i < w.nold; i++) {
        free(w.old[i].dptr);
    }
    free(w.p);
    free(w.old);
    trk_strlist_free(&w.rdir);
    if (rc != 0) {
        ts_err("cannot rebuild the local indexes of the tracker database");
    } else {
        ts_info("indexes rebuilt: %llu replicated keys, %llu users, %llu "
                "groups, %llu sessions in %lld ms",
                (unsigned long long) w.m.nrep,
                (unsigned long long) w.m.users,
                (unsigned long long) w.m.groups,
                (unsigned long long) w.m.sessions,
                (long long) (ts_now_ms() - t0));
    }
    return rc;
}
