/*
 * trk_digest.c -- walks over the replicated state: every replicated key
 * with its envelope (snapshots), and the SHA-256 digest of them all, keys
 * sorted (STATUS, convergence checks).
 *
 * Locking: read traverses of a plain tdb handle; the caller's thread
 * owns it.
 *
 * Crash behaviour: writes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tdb.h>

#include "ts_crypto.h"
#include "ts_log.h"
#include "trk_oplog.h"

typedef struct {
    int (*fn)(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
              void *arg);
    void *arg;
} rep_walk_t;


static int
rep_walk(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    rep_walk_t *w = arg;

    (void) tdb;
    if (!trk_key_replicated(k.dptr, k.dsize)) {
        return 0;
    }
    return w->fn(k.dptr, k.dsize, v.dptr, v.dsize, w->arg);
}


int
trk_log_each_replicated(struct tdb_context *tdb,
                        int (*fn)(const uint8_t *k, size_t kl,
                                  const uint8_t *v, size_t vl, void *arg),
                        void *arg)
{
    rep_walk_t w;

    w.fn = fn;
    w.arg = arg;
    return tdb_traverse_read(tdb, rep_walk, &w) < 0 ? -1 : 0;
}


typedef struct {
    char    *key;
    size_t   klen;
    uint8_t  h[32];
} dg_row_t;

typedef struct {
    dg_row_t *rows;
    size_t    n;
    size_t    cap;
    int       err;
} dg_t;


static int
dg_collect(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
           void *arg)
{
    dg_t      *d = arg;
    dg_row_t  *nr;
    ts_wbuf_t  b;

    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 1024;
        nr = realloc(d->rows, d->cap * sizeof(*nr));
        if (nr == NULL) {
            d->err = 1;
            return -1;
        }
        d->rows = nr;
    }
    ts_wbuf_init(&b);
    ts_put_blob(&b, k, (uint32_t) kl);
    ts_put_blob(&b, v, (uint32_t) vl);
    d->rows[d->n].key = malloc(kl);
    if (b.err || d->rows[d->n].key == NULL
        || ts_sha256(b.data, b.len, d->rows[d->n].h) != 0)
    {
        free(d->rows[d->n].key);
        ts_wbuf_free(&b);
        d->err = 1;
        return -1;
    }
    memcpy(d->rows[d->n].key, k, kl);
    d->rows[d->n].klen = kl;
    d->n++;
    ts_wbuf_free(&b);
    return 0;
}


static int
dg_cmp(const void *a, const void *b)
{
    const dg_row_t *x = a, *y = b;
    int             c = memcmp(x->key, y->key,
                               x->klen < y->klen ? x->klen : y->klen);

    if (c != 0) {
        return c;
    }
    return x->klen == y->klen ? 0 : (x->klen < y->klen ? -1 : 1);
}


int
trk_log_digest(struct tdb_context *tdb, uint8_t out[32])
{
    dg_t      d;
    ts_wbuf_t b;
    size_t    i;
    int       rc = -1;

    memset(&d, 0, sizeof(d));
    ts_wbuf_init(&b);
    if (trk_log_each_replicated(tdb, dg_collect, &d) == 0 && !d.err) {
        if (d.n > 1) {
            qsort(d.rows, d.n, sizeof(*d.rows), dg_cmp);
        }
        for (i = 0; i < d.n; i++) {
            ts_put_raw(&b, d.rows[i].h, 32);
        }
        if (!b.err && ts_sha256(b.data, b.len, out) == 0) {
            rc = 0;
        }
    }
    for (i = 0; i < d.n; i++) {
        free(d.rows[i].key);
    }
    free(d.rows);
    ts_wbuf_free(&b);
    return rc;
}
