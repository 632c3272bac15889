/*
 * trk_index_ug.c -- the local index of the groups each user is a member
 * of (y/ug/...), read by LIST_MY_GROUPS and kept by trk_index.c's note
 * of every group envelope stored.
 *
 * Purpose: a user in a few groups costs one small record, read and
 * rewritten whole; a user in many (a bot that creates or joins
 * thousands) must not make every join, leave or merged op rewrite a list
 * of all of them.  So the record y/ug/<user> holds the sorted list while
 * it has at most TS_TRK_IDX_UG_INLINE_N entries; above that it holds only
 * the count (record kind TRK_IDX_SPLIT) and the entries live in
 * TS_TRK_IDX_UG_BUCKETS_N sorted lists y/ug/<user>/<2 hex>, the bucket
 * chosen by the first byte of sha256(group id).  An edit then rewrites
 * one bucket of about n / TS_TRK_IDX_UG_BUCKETS_N entries and the small
 * count record; a read of a split index merges the buckets.  The form
 * depends only on the count (a list crossing the threshold is split or
 * joined again at once), so the start-up rebuild, local writes and ops
 * merged from another tracker all leave the same records.
 *
 * Locking: none of its own; the writes run inside the caller's tdb
 * transaction, the reads are plain fetches (the caller may hold the read
 * lock of trk_store_read_begin() for a consistent view).  Crash
 * behaviour: the records commit or roll back with the transaction; the
 * start-up rebuild writes them again from the group records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_buf.h"
#include "ts_config.h"
#include "ts_crypto.h"
#include "ts_log.h"
#include "trk_index_int.h"

#if TS_TRK_IDX_UG_BUCKETS_N < 1 || TS_TRK_IDX_UG_BUCKETS_N > 256
#error "TS_TRK_IDX_UG_BUCKETS_N must be 1..256"
#endif


TDB_DATA
trk_idx_ug_key(char *buf, const char *user)
{
    return trk_idx_key(buf, "ug", user);
}


static TDB_DATA
bucket_key(char *buf, const char *user, unsigned b)
{
    char a[TRK_KEY_B], hex[3];

    snprintf(a, sizeof(a), "ug/%s", user);
    snprintf(hex, sizeof(hex), "%02x", b);
    return trk_idx_key(buf, a, hex);
}


static unsigned
bucket_of(const char *group)
{
    uint8_t h[TS_SHA256_B];

    (void) ts_sha256(group, strlen(group), h);
    return h[0] % TS_TRK_IDX_UG_BUCKETS_N;
}


TDB_DATA
trk_idx_ug_bucket(char *buf, const char *user, const char *group)
{
    return bucket_key(buf, user, bucket_of(group));
}


/* The form of y/ug/<user>: 0 absent, TRK_IDX_REC a list, TRK_IDX_SPLIT
 * split with *n entries; -1 corrupt. */
static int
head_get(struct tdb_context *tdb, TDB_DATA k, uint32_t *n)
{
    TDB_DATA  v;
    ts_rbuf_t r;
    int       form;

    *n = 0;
    v = tdb_fetch(tdb, k);
    if (v.dptr == NULL) {
        return 0;
    }
    form = v.dsize > 0 ? v.dptr[0] : -1;
    if (form == TRK_IDX_SPLIT) {
        ts_rbuf_init(&r, v.dptr, v.dsize);
        if (trk_codec_get_head(&r, TRK_IDX_SPLIT) != 0) {
            form = -1;
        }
        *n = ts_get_u32(&r);
        if (ts_rbuf_end(&r) != 0 || *n <= TS_TRK_IDX_UG_INLINE_N) {
            form = -1;
        }
    } else if (form != TRK_IDX_REC) {
        form = -1;
    }
    free(v.dptr);
    if (form < 0) {
        ts_err("corrupt index record %.*s", (int) k.dsize, (char *) k.dptr);
    }
    return form;
}


static int
head_put_split(struct tdb_context *tdb, TDB_DATA k, uint32_t n)
{
    ts_wbuf_t b;

    ts_wbuf_init(&b);
    trk_codec_put_head(&b, TRK_IDX_SPLIT);
    ts_put_u32(&b, n);
    return trk_idx_put_wbuf(tdb, k, &b);
}


static int
str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


/* The entries of the buckets of a split index, sorted; with drop, the
 * bucket records are deleted as they are read.  0 / -1. */
static int
buckets_get(struct tdb_context *tdb, const char *user, int drop,
            trk_strlist_t *out)
{
    trk_strlist_t l;
    TDB_DATA      k;
    char          kb[TRK_KEY_B];
    unsigned      b;
    int           rc = 0;

    memset(out, 0, sizeof(*out));
    for (b = 0; rc == 0 && b < TS_TRK_IDX_UG_BUCKETS_N; b++) {
        k = bucket_key(kb, user, b);
        if (trk_idx_list_get(tdb, k, &l) != 0) {
            rc = -1;
            break;
        }
        if (l.n > 0) {
            rc = trk_idx_list_append(out, &l);
            if (rc == 0 && drop && tdb_delete(tdb, k) != 0) {
                rc = -1;
            }
        }
        trk_strlist_free(&l);
    }
    if (rc != 0) {
        trk_strlist_free(out);
        memset(out, 0, sizeof(*out));
        return -1;
    }
    /* the buckets are disjoint and each sorted: one sort merges them */
    if (out->n > 1) {
        qsort(out->v, out->n, sizeof(*out->v), str_cmp);
    }
    return 0;
}


int
trk_idx_ug_get(struct tdb_context *tdb, const char *user, trk_strlist_t *out)
{
    char     kb[TRK_KEY_B];
    uint32_t n;
    int      form;

    memset(out, 0, sizeof(*out));
    form = head_get(tdb, trk_idx_ug_key(kb, user), &n);
    if (form < 0) {
        return -1;
    }
    if (form == TRK_IDX_SPLIT) {
        return buckets_get(tdb, user, 0, out);
    }
    return form == 0 ? 0 : trk_idx_list_get(tdb, trk_idx_ug_key(kb, user),
                                            out);
}


int
trk_idx_ug_put(struct tdb_context *tdb, const char *user,
               const trk_strlist_t *sorted)
{
    trk_strlist_t *bl;
    char           kb[TRK_KEY_B];
    unsigned       b;
    uint32_t       i;
    int            rc = 0;

    if (sorted->n <= TS_TRK_IDX_UG_INLINE_N) {
        return trk_idx_list_put(tdb, trk_idx_ug_key(kb, user), sorted);
    }
    bl = calloc(TS_TRK_IDX_UG_BUCKETS_N, sizeof(*bl));
    if (bl == NULL) {
        return -1;
    }
    /* in sorted order, so every add appends */
    for (i = 0; rc == 0 && i < sorted->n; i++) {
        rc = trk_strlist_add(&bl[bucket_of(sorted->v[i])], sorted->v[i]) < 0
             ? -1 : 0;
    }
    for (b = 0; b < TS_TRK_IDX_UG_BUCKETS_N; b++) {
        if (rc == 0) {
            rc = trk_idx_list_put(tdb, bucket_key(kb, user, b), &bl[b]);
        }
        trk_strlist_free(&bl[b]);
    }
    free(bl);
    if (rc == 0) {
        rc = head_put_split(tdb, trk_idx_ug_key(kb, user), sorted->n);
    }
    return rc;
}


/* A list that grew past the threshold becomes buckets. */
static int
split(struct tdb_context *tdb, const char *user)
{
    trk_strlist_t l;
    char          kb[TRK_KEY_B];
    int           rc;

    if (trk_idx_list_get(tdb, trk_idx_ug_key(kb, user), &l) != 0) {
        return -1;
    }
    rc = trk_idx_ug_put(tdb, user, &l);
    trk_strlist_free(&l);
    return rc;
}


/* A split index that shrank to the threshold becomes one list again. */
static int
join(struct tdb_context *tdb, const char *user)
{
    trk_strlist_t l;
    char          kb[TRK_KEY_B];
    int           rc;

    if (buckets_get(tdb, user, 1, &l) != 0) {
        return -1;
    }
    rc = trk_idx_list_put(tdb, trk_idx_ug_key(kb, user), &l);
    trk_strlist_free(&l);
    return rc;
}


int
trk_idx_ug_edit(struct tdb_context *tdb, const char *user, const char *group,
                int add)
{
    TDB_DATA hk;
    char     kb[TRK_KEY_B], bk[TRK_KEY_B];
    uint32_t n, cnt;
    int      form, rc;

    hk = trk_idx_ug_key(kb, user);
    form = head_get(tdb, hk, &n);
    if (form < 0 || hk.dsize == 0) {
        return -1;
    }
    if (form != TRK_IDX_SPLIT) {
        rc = trk_idx_list_edit(tdb, hk, group, add, &cnt);
        if (rc <= 0) {
            return rc < 0 ? -1 : 0;
        }
        return cnt > TS_TRK_IDX_UG_INLINE_N ? split(tdb, user) : 0;
    }
    rc = trk_idx_list_edit(tdb, trk_idx_ug_bucket(bk, user, group), group,
                           add, NULL);
    if (rc <= 0) {
        return rc < 0 ? -1 : 0;
    }
    n = add ? n + 1 : n - 1;
    if (n <= TS_TRK_IDX_UG_INLINE_N) {
        return join(tdb, user);
    }
    return head_put_split(tdb, hk, n);
}
