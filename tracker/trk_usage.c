/*
 * trk_usage.c -- the storage usage counters of tracker.tdb: what each
 * counted key adds to its owners, and the local-only q/ records that
 * hold the sums (the model is in trk_usage.h; the quotas built on them
 * are in trk_quota.c).
 *
 * Purpose: trk_store.c calls trk_usage_part() on a counted key's
 * envelope before and after each write or merge and trk_usage_change()
 * with the two, which moves the difference into the q/ counters of the
 * owners involved (the uploader and group of a file, the owner of a
 * group, the user of a session or node).  As every replicated write and
 * every merge passes there, the counters follow the records exactly: the
 * ops of another tracker count the same as local writes, in any order.
 *
 * Locking: on the store's thread, inside its tdb transaction (the
 * caller's); tdb's transaction lock serialises the workers.
 *
 * Crash behaviour: counters are written in the transaction of the write
 * they count and vanish with it.  A counter that would go below zero
 * (it drifted, e.g. a corrupt record was replaced) stops at zero; the
 * rebuild at start-up (trk_quota_rebuild) makes every counter exact.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tdb.h>

#include "ts_buf.h"
#include "ts_log.h"
#include "trk_keys.h"
#include "trk_usage.h"

#define QREC_KIND  'Q'

/* ---- counter records ------------------------------------------------- */

/* q/u/<name>, q/g/<name> or q/t. */
TDB_DATA
trk_usage_key(char *kb, char kind, const char *name)
{
    char k[2] = { kind, '\0' };

    return trk_key(kb, TRK_KEY_QUOTA, k, kind == 't' ? NULL : name);
}


/* 'Q', version, u32 n, n x u64 (a longer record from a newer version
 * keeps its first fields). */
static void
use_decode(const TDB_DATA *d, uint64_t *v, uint32_t nv)
{
    ts_rbuf_t r;
    uint32_t  i, n;

    memset(v, 0, nv * sizeof(*v));
    ts_rbuf_init(&r, d->dptr, d->dsize);
    if (ts_get_u8(&r) != QREC_KIND || ts_get_u8(&r) != 1) {
        return;
    }
    n = ts_get_u32(&r);
    for (i = 0; i < n && i < nv && !r.err; i++) {
        v[i] = ts_get_u64(&r);
    }
    if (r.err) {
        memset(v, 0, nv * sizeof(*v));
    }
}


int
trk_usage_store(struct tdb_context *tdb, TDB_DATA k, const uint64_t *v,
                uint32_t nv)
{
    ts_wbuf_t b;
    TDB_DATA  d;
    uint32_t  i;
    int       rc;

    ts_wbuf_init(&b);
    ts_put_u8(&b, QREC_KIND);
    ts_put_u8(&b, 1);
    ts_put_u32(&b, nv);
    for (i = 0; i < nv; i++) {
        ts_put_u64(&b, v[i]);
    }
    d.dptr = b.data;
    d.dsize = b.len;
    rc = b.err || tdb_store(tdb, k, d, TDB_REPLACE) != 0 ? -1 : 0;
    ts_wbuf_free(&b);
    return rc;
}


int
trk_usage_read(struct tdb_context *tdb, TDB_DATA k, uint64_t *v, uint32_t nv)
{
    TDB_DATA d;

    memset(v, 0, nv * sizeof(*v));
    if (k.dsize == 0) {
        return -1;
    }
    d = tdb_fetch(tdb, k);
    if (d.dptr == NULL) {
        return tdb_error(tdb) == TDB_ERR_NOEXIST ? 1 : -1;
    }
    use_decode(&d, v, nv);
    free(d.dptr);
    return 0;
}


int
trk_usage_get(struct tdb_context *tdb, char kind, const char *name,
              trk_use_t *u)
{
    char kb[TRK_KEY_B];

    return trk_usage_read(tdb, trk_usage_key(kb, kind, name), u->v,
                          TRK_USE_N) < 0 ? -1 : 0;
}


/* Adds d to the counters of (kind, name); all zero: the key goes. */
static int
bump(struct tdb_context *tdb, char kind, const char *name, const int64_t *d)
{
    char      kb[TRK_KEY_B];
    TDB_DATA  k;
    uint64_t  v[TRK_USE_N];
    int       i, any = 0, zero = 1;

    for (i = 0; i < TRK_USE_N; i++) {
        any |= d[i] != 0;
    }
    if (!any || (kind != 't' && name[0] == '\0')) {
        return 0;
    }
    k = trk_usage_key(kb, kind, name);
    if (trk_usage_read(tdb, k, v, TRK_USE_N) < 0) {
        return -1;
    }
    for (i = 0; i < TRK_USE_N; i++) {
        if (d[i] < 0 && (uint64_t) -d[i] > v[i]) {
            ts_debug("usage counter %c/%s below zero; kept at 0", kind, name);
            v[i] = 0;
        } else {
            v[i] += (uint64_t) d[i];
        }
        zero &= v[i] == 0;
    }
    if (zero) {
        return tdb_delete(tdb, k) == 0 || tdb_error(tdb) == TDB_ERR_NOEXIST
               ? 0 : -1;
    }
    return trk_usage_store(tdb, k, v, TRK_USE_N);
}


/* ---- what a key counts ----------------------------------------------- */

/* The first path element after "<kind>/" of key into out. */
static void
key_name(const char *k, size_t klen, char *out, size_t outsz)
{
    size_t i, n = 0;

    for (i = 2; i < klen && k[i] != '/' && n + 1 < outsz; i++) {
        out[n++] = k[i];
    }
    out[n] = '\0';
}


/* An f/ value: 'F', version, size, sha1, nchunks, hashes, created,
 * uploader (trk_file_encode); parsed without copying the hashes. */
static void
part_file(const ts_wbuf_t *view, trk_qpart_t *p)
{
    ts_rbuf_t r;
    uint8_t   sha1[20];
    uint32_t  n;

    ts_rbuf_init(&r, view->data, view->len);
    if (trk_codec_get_head(&r, TRK_REC_FILE) != 0) {
        return;
    }
    (void) ts_get_u64(&r);
    (void) ts_get_raw(&r, sha1, sizeof(sha1));
    n = ts_get_u32(&r);
    if (r.err || ts_rbuf_left(&r) < (size_t) n * 20) {
        return;
    }
    r.off += (size_t) n * 20;
    (void) ts_get_u64(&r);
    if (ts_get_str(&r, p->user, sizeof(p->user)) != 0) {
        p->user[0] = '\0';
    }
    p->u.v[TRK_USE_FILES] = 1;
    p->u.v[TRK_USE_HASH_B] = (uint64_t) n * 20;
}


void
trk_usage_part(const void *key, size_t klen, const trk_rec_t *r,
               trk_qpart_t *p)
{
    const char   *k = key;
    ts_wbuf_t     view;
    trk_group_t   g;
    trk_session_t s;

    memset(p, 0, sizeof(*p));
    if (klen < 3 || k[1] != '/'
        || (k[0] != 'f' && k[0] != 'g' && k[0] != 's' && k[0] != 'm'))
    {
        return;
    }
    ts_wbuf_init(&view);
    if (trk_rec_view(r, key, klen, &view) != 0) {
        ts_wbuf_free(&view);
        return;                             /* no live value */
    }
    switch (k[0]) {
    case 'f':
        key_name(k, klen, p->group, sizeof(p->group));
        part_file(&view, p);
        break;
    case 'g':
        if (trk_group_decode(view.data, view.len, &g) == 0) {
            snprintf(p->user, sizeof(p->user), "%s", g.owner);
            p->u.v[TRK_USE_GROUPS] = 1;
            trk_group_free(&g);
        }
        break;
    case 's':
        if (trk_session_decode(view.data, view.len, &s) == 0) {
            snprintf(p->user, sizeof(p->user), "%s", s.user);
            p->u.v[TRK_USE_SESSIONS] = 1;
        }
        break;
    default:                                /* m/<user>/<addr> */
        if (view.len >= 6) {
            key_name(k, klen, p->user, sizeof(p->user));
            p->u.v[TRK_USE_NODES] = 1;
            p->u.v[TRK_USE_SHARES] = (uint64_t) view.data[2] << 24
                                     | (uint64_t) view.data[3] << 16
                                     | (uint64_t) view.data[4] << 8
                                     | view.data[5];
        }
        break;
    }
    ts_wbuf_free(&view);
}


/* Moves counters of one kind from (bname, b) to (aname, a); only the
 * fields below nf. */
static int
move(struct tdb_context *tdb, char kind, const char *bname, const trk_use_t *b,
     const char *aname, const trk_use_t *a, int nf)
{
    int64_t d[TRK_USE_N];
    int     i;

    memset(d, 0, sizeof(d));
    if (strcmp(bname, aname) == 0) {
        for (i = 0; i < nf; i++) {
            d[i] = (int64_t) a->v[i] - (int64_t) b->v[i];
        }
        return bump(tdb, kind, aname, d);
    }
    for (i = 0; i < nf; i++) {
        d[i] = -(int64_t) b->v[i];
    }
    if (bump(tdb, kind, bname, d) != 0) {
        return -1;
    }
    for (i = 0; i < nf; i++) {
        d[i] = (int64_t) a->v[i];
    }
    return bump(tdb, kind, aname, d);
}


int
trk_usage_change(struct tdb_context *tdb, const trk_qpart_t *before,
                 const trk_qpart_t *after)
{
    static const char none[1] = "";

    if (move(tdb, 'u', before->user, &before->u, after->user, &after->u,
             TRK_USE_N) != 0
        || move(tdb, 'g', before->group, &before->u, after->group, &after->u,
                TRK_USE_HASH_B + 1) != 0
        || move(tdb, 't', none, &before->u, none, &after->u, TRK_USE_N) != 0)
    {
        ts_err("cannot update the usage counters");
        return -1;
    }
    return 0;
}
