/*
 * trk_index_q.c -- the expiry queues of the local indexes: sessions that
 * became live in tdb (the housekeeper gives them a place in the session
 * cache or ends them) and cached replies by the time they were stored
 * (the housekeeper deletes them once older than the reply TTL).
 *
 * Purpose: the housekeeper reads only the buckets that are due instead
 * of walking every record.  A queue is bucket records
 * y/q<kind>/<second hex16>/<slot> (TS_TRK_IDX_Q_UNIT_MS of wall-clock
 * time, its entries spread over TRK_IDX_Q_SLOTS records), each a sorted
 * list, and the directory y/qd<kind>: the sorted seconds that hold
 * entries, so that a pass reads only records that exist.
 *
 * Locking: the writes run inside the caller's transaction; the reads are
 * plain fetches (one chain lock each).  Crash behaviour: none of its own
 * (the transaction); the start-up rebuild refills the reply queue, and
 * the first housekeeping pass of a new shm segment looks at every
 * session, so a lost entry costs nothing lasting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_buf.h"
#include "ts_config.h"
#include "trk_index.h"
#include "trk_index_int.h"


int
trk_idx_list_append(trk_strlist_t *dst, const trk_strlist_t *src)
{
    char     **nv;
    uint32_t   i;

    if (dst->n + src->n > dst->cap) {
        nv = realloc(dst->v, (size_t) (dst->n + src->n) * sizeof(*nv));
        if (nv == NULL) {
            return -1;
        }
        dst->v = nv;
        dst->cap = dst->n + src->n;
    }
    for (i = 0; i < src->n; i++) {
        dst->v[dst->n] = strdup(src->v[i]);
        if (dst->v[dst->n] == NULL) {
            return -1;
        }
        dst->n++;
    }
    return 0;
}


/* Bucket (second b, slot of the entry's hash) of queue kind. */
TDB_DATA
trk_idx_qkey(char *buf, char kind, uint64_t b, unsigned slot)
{
    char q[4], hex[24];

    snprintf(q, sizeof(q), "q%c", kind);
    snprintf(hex, sizeof(hex), "%016llx/%u", (unsigned long long) b, slot);
    return trk_idx_key(buf, q, hex);
}


unsigned
trk_idx_qslot(const char *entry)
{
    unsigned h = 0;

    /* spreads one second's entries over a few records so that a busy
     * second does not rewrite one large list per entry (not a hash of
     * anything secret: any spread will do) */
    for (; *entry != '\0'; entry++) {
        h = h * 31u + (unsigned char) *entry;
    }
    return h % TRK_IDX_Q_SLOTS;
}


/* The directory of kind: the sorted hex16 seconds that hold entries. */
static TDB_DATA
dir_key(char *buf, char kind)
{
    char q[4];

    snprintf(q, sizeof(q), "qd%c", kind);
    return trk_idx_key(buf, q, NULL);
}


int
trk_idx_dir_put(struct tdb_context *tdb, char kind, const trk_strlist_t *d)
{
    char kb[TRK_KEY_B];

    return trk_idx_list_put(tdb, dir_key(kb, kind), d);
}


int
trk_idx_queue(trk_store_t *st, char kind, uint64_t at_ms, const char *entry)
{
    struct tdb_context *tdb = trk_store_tdb(st);
    char                kb[TRK_KEY_B], sec[17];
    uint64_t            b = at_ms / TS_TRK_IDX_Q_UNIT_MS;
    unsigned            slot = trk_idx_qslot(entry);
    uint32_t            n;
    int                 rc;

    rc = trk_idx_list_edit(tdb, trk_idx_qkey(kb, kind, b, slot), entry, 1,
                           &n);
    if (rc <= 0 || n != 1) {
        return rc < 0 ? -1 : 0;
    }
    /* a new record: the directory learns its second */
    snprintf(sec, sizeof(sec), "%016llx", (unsigned long long) b);
    return trk_idx_list_edit(tdb, dir_key(kb, kind), sec, 1, NULL) < 0
           ? -1 : 0;
}


/* Calls fn for every bucket record of kind due by now_ms (second order)
 * until fn returns non-zero; the directory is read once.  0 / -1. */
static int
each_due(struct tdb_context *tdb, char kind, uint64_t now_ms,
         trk_strlist_t *dir,
         int (*fn)(struct tdb_context *, TDB_DATA, trk_strlist_t *, void *),
         void *arg)
{
    trk_strlist_t l;
    char          kb[TRK_KEY_B];
    uint64_t      b, end = now_ms / TS_TRK_IDX_Q_UNIT_MS;
    uint32_t      i;
    unsigned      slot;
    int           rc = 0;

    if (trk_idx_list_get(tdb, dir_key(kb, kind), dir) != 0) {
        return -1;
    }
    for (i = 0; rc == 0 && i < dir->n; i++) {
        b = strtoull(dir->v[i], NULL, 16);
        if (b > end) {
            break;
        }
        for (slot = 0; rc == 0 && slot < TRK_IDX_Q_SLOTS; slot++) {
            if (trk_idx_list_get(tdb, trk_idx_qkey(kb, kind, b, slot), &l)
                != 0)
            {
                return -1;
            }
            rc = fn(tdb, trk_idx_qkey(kb, kind, b, slot), &l, arg);
            trk_strlist_free(&l);
        }
    }
    return rc < 0 ? -1 : 0;
}


typedef struct {
    trk_strlist_t *out;
    size_t         max;
} due_t;


static int
due_fn(struct tdb_context *tdb, TDB_DATA k, trk_strlist_t *l, void *arg)
{
    due_t *d = arg;

    (void) tdb;
    (void) k;
    if (trk_idx_list_append(d->out, l) != 0) {
        return -1;
    }
    return d->out->n >= d->max ? 1 : 0;
}


int
trk_idx_due(trk_store_t *st, char kind, uint64_t now_ms, size_t max,
            trk_strlist_t *out)
{
    trk_strlist_t dir;
    due_t         d;
    int           rc;

    memset(out, 0, sizeof(*out));
    d.out = out;
    d.max = max;
    rc = each_due(trk_store_tdb(st), kind, now_ms, &dir, due_fn, &d);
    trk_strlist_free(&dir);
    if (rc != 0) {
        trk_strlist_free(out);
    }
    return rc;
}


typedef struct {
    const trk_strlist_t *done;
    trk_strlist_t        empty;     /* seconds that emptied */
    uint64_t             sec;       /* second of the records seen */
    int                  left;      /* entries left in that second */
    int                  err;
} done_t;


/* Drops the second just finished from the directory if it emptied. */
static void
done_second(done_t *d, uint64_t next_sec)
{
    char sec[17];

    if (d->sec != UINT64_MAX && d->sec != next_sec && d->left == 0) {
        snprintf(sec, sizeof(sec), "%016llx", (unsigned long long) d->sec);
        if (trk_strlist_add(&d->empty, sec) < 0) {
            d->err = 1;
        }
    }
    if (d->sec != next_sec) {
        d->left = 0;
    }
    d->sec = next_sec;
}


static int
done_fn(struct tdb_context *tdb, TDB_DATA k, trk_strlist_t *l, void *arg)
{
    done_t   *d = arg;
    uint32_t  i, pos;
    int       changed = 0;
    char      sec[17];

    memcpy(sec, k.dptr + 5, 16);        /* "y/q<k>/<16 hex>/<slot>" */
    sec[16] = '\0';
    done_second(d, strtoull(sec, NULL, 16));
    for (i = 0; i < l->n;) {
        if (trk_strlist_find(d->done, l->v[i], &pos)) {
            (void) trk_strlist_del(l, l->v[i]);
            changed = 1;
        } else {
            i++;
        }
    }
    d->left += (int) l->n;
    if (changed && trk_idx_list_put(tdb, k, l) != 0) {
        d->err = 1;
        return -1;
    }
    return 0;
}


int
trk_idx_done(trk_store_t *st, char kind, uint64_t now_ms,
             const trk_strlist_t *done)
{
    struct tdb_context *tdb = trk_store_tdb(st);
    trk_strlist_t       dir;
    done_t              d;
    uint32_t            i;
    int                 rc;

    if (done->n == 0) {
        return 0;
    }
    memset(&d, 0, sizeof(d));
    d.done = done;
    d.sec = UINT64_MAX;
    rc = each_due(tdb, kind, now_ms, &dir, done_fn, &d);
    if (rc == 0 && !d.err) {
        done_second(&d, UINT64_MAX - 1);
        for (i = 0; i < d.empty.n; i++) {
            (void) trk_strlist_del(&dir, d.empty.v[i]);
        }
        if (d.empty.n > 0) {
            rc = trk_idx_dir_put(tdb, kind, &dir);
        }
    }
    trk_strlist_free(&d.empty);
    trk_strlist_free(&dir);
    return rc == 0 && !d.err ? 0 : -1;
}
