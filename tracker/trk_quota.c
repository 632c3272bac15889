/*
 * trk_quota.c -- storage usage counters and the quota checks of the
 * write rules (the model is in trk_quota.h; the limits, --quota and
 * --usage are in trk_quota_cmd.c).
 *
 * Purpose: trk_store.c calls trk_quota_part() on a counted key's
 * envelope before and after each write or merge and trk_quota_change()
 * with the two, which moves the difference into the q/ counters of the
 * owners involved (the uploader and group of a file, the owner of a
 * group, the user of a session or node).  As every replicated write and
 * every merge passes there, the counters follow the records exactly: the
 * ops of another tracker count the same as local writes, in any order.
 * The checks read the counters only (no walk of the database), inside
 * the request's transaction, so a check and the write it allows are
 * atomic on this tracker.
 *
 * Locking: on the store's thread, inside its transaction (rebuild opens
 * its own).  tdb's transaction lock serialises the workers.
 *
 * Crash behaviour: counters are written in the transaction of the write
 * they count and vanish with it.  A counter that would go below zero
 * (it drifted, e.g. a corrupt record was replaced) stops at zero; the
 * rebuild at start-up makes every counter exact again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tdb.h>

#include "ts_buf.h"
#include "ts_log.h"
#include "trk_ops.h"
#include "trk_keys.h"
#include "trk_quota.h"

#define QREC_KIND  'Q'


/* ---- counter records ------------------------------------------------- */

/* q/u/<name>, q/g/<name> or q/t. */
static TDB_DATA
qkey(char *kb, char kind, const char *name)
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


static int
use_store(struct tdb_context *tdb, TDB_DATA k, const uint64_t *v,
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


/* Raw q/ record into v (zeros when absent): 0 or -1. */
static int
qrec_get(struct tdb_context *tdb, TDB_DATA k, uint64_t *v, uint32_t nv)
{
    TDB_DATA d;

    memset(v, 0, nv * sizeof(*v));
    if (k.dsize == 0) {
        return -1;
    }
    d = tdb_fetch(tdb, k);
    if (d.dptr == NULL) {
        return tdb_error(tdb) == TDB_ERR_NOEXIST ? 0 : -1;
    }
    use_decode(&d, v, nv);
    free(d.dptr);
    return 0;
}


int
trk_quota_get(trk_store_t *st, char kind, const char *name, trk_use_t *u)
{
    char kb[TRK_KEY_B];

    return qrec_get(trk_store_tdb(st), qkey(kb, kind, name), u->v, TRK_USE_N);
}


/* Adds d to the counters of (kind, name); all zero: the key goes. */
static int
bump(trk_store_t *st, char kind, const char *name, const int64_t *d)
{
    struct tdb_context *tdb = trk_store_tdb(st);
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
    k = qkey(kb, kind, name);
    if (qrec_get(tdb, k, v, TRK_USE_N) != 0) {
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
    return use_store(tdb, k, v, TRK_USE_N);
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
trk_quota_part(const void *key, size_t klen, const trk_rec_t *r,
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
move(trk_store_t *st, char kind, const char *bname, const trk_use_t *b,
     const char *aname, const trk_use_t *a, int nf)
{
    int64_t d[TRK_USE_N];
    int     i;

    memset(d, 0, sizeof(d));
    if (strcmp(bname, aname) == 0) {
        for (i = 0; i < nf; i++) {
            d[i] = (int64_t) a->v[i] - (int64_t) b->v[i];
        }
        return bump(st, kind, aname, d);
    }
    for (i = 0; i < nf; i++) {
        d[i] = -(int64_t) b->v[i];
    }
    if (bump(st, kind, bname, d) != 0) {
        return -1;
    }
    for (i = 0; i < nf; i++) {
        d[i] = (int64_t) a->v[i];
    }
    return bump(st, kind, aname, d);
}


int
trk_quota_change(trk_store_t *st, const trk_qpart_t *before,
                 const trk_qpart_t *after)
{
    static const char none[1] = "";

    if (move(st, 'u', before->user, &before->u, after->user, &after->u,
             TRK_USE_N) != 0
        || move(st, 'g', before->group, &before->u, after->group, &after->u,
                TRK_USE_HASH_B + 1) != 0
        || move(st, 't', none, &before->u, none, &after->u, TRK_USE_N) != 0)
    {
        ts_err("cannot update the usage counters");
        return -1;
    }
    return 0;
}


/* ---- rebuild --------------------------------------------------------- */

/* The counters of one owner while rebuilding: "<kind>/<name>". */
typedef struct {
    char     key[2 + TS_ID_MAX_B + 1];
    uint64_t v[TRK_USE_N];
} acc_ent_t;

typedef struct {
    acc_ent_t  *e;          /* open addressing, key[0] == 0: free */
    size_t      cap;        /* power of two */
    size_t      n;
    char      **old;        /* q/ keys found, to delete */
    size_t      nold, capold;
    int         err;
} acc_t;


static size_t
acc_hash(const char *s)
{
    size_t h = 1469598103934665603ull;

    while (*s != '\0') {
        h = (h ^ (unsigned char) *s++) * 1099511628211ull;
    }
    return h;
}


static acc_ent_t *
acc_find(acc_t *a, const char *key)
{
    acc_ent_t *ne;
    size_t     i, j, oc;

    if (a->n * 2 >= a->cap) {
        oc = a->cap;
        ne = calloc(oc ? oc * 2 : 1024, sizeof(*ne));
        if (ne == NULL) {
            return NULL;
        }
        a->cap = oc ? oc * 2 : 1024;
        for (i = 0; i < oc; i++) {
            if (a->e[i].key[0] == '\0') {
                continue;
            }
            j = acc_hash(a->e[i].key) & (a->cap - 1);
            while (ne[j].key[0] != '\0') {
                j = (j + 1) & (a->cap - 1);
            }
            ne[j] = a->e[i];
        }
        free(a->e);
        a->e = ne;
    }
    i = acc_hash(key) & (a->cap - 1);
    while (a->e[i].key[0] != '\0' && strcmp(a->e[i].key, key) != 0) {
        i = (i + 1) & (a->cap - 1);
    }
    if (a->e[i].key[0] == '\0') {
        snprintf(a->e[i].key, sizeof(a->e[i].key), "%s", key);
        a->n++;
    }
    return &a->e[i];
}


static void
acc_add(acc_t *a, char kind, const char *name, const trk_use_t *u, int nf)
{
    char       k[sizeof(((acc_ent_t *) 0)->key)];
    acc_ent_t *e;
    int        i;

    if (kind != 't' && name[0] == '\0') {
        return;
    }
    snprintf(k, sizeof(k), "%c/%s", kind, name);
    e = acc_find(a, k);
    if (e == NULL) {
        a->err = 1;
        return;
    }
    for (i = 0; i < nf; i++) {
        e->v[i] += u->v[i];
    }
}


static int
rebuild_visit(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    acc_t       *a = arg;
    trk_rec_t    r;
    trk_qpart_t  p;
    char       **no;

    (void) tdb;
    if (trk_key_is(k.dptr, k.dsize, TRK_KEY_QUOTA)) {
        if (a->nold == a->capold) {
            a->capold = a->capold ? a->capold * 2 : 256;
            no = realloc(a->old, a->capold * sizeof(*no));
            if (no == NULL) {
                a->err = 1;
                return -1;
            }
            a->old = no;
        }
        a->old[a->nold] = strndup((const char *) k.dptr, k.dsize);
        if (a->old[a->nold] == NULL) {
            a->err = 1;
            return -1;
        }
        a->nold++;
        return 0;
    }
    if (!trk_key_replicated(k.dptr, k.dsize)
        || trk_rec_decode(v.dptr, v.dsize, &r) != 0)
    {
        return 0;           /* a corrupt record counts nothing */
    }
    trk_quota_part(k.dptr, k.dsize, &r, &p);
    trk_rec_free(&r);
    acc_add(a, 'u', p.user, &p.u, TRK_USE_N);
    acc_add(a, 'g', p.group, &p.u, TRK_USE_HASH_B + 1);
    acc_add(a, 't', "", &p.u, TRK_USE_N);
    return a->err ? -1 : 0;
}


/* Deletes the old q/ keys and stores the new counters and the limits. */
static int
rebuild_write(trk_store_t *st, acc_t *a)
{
    struct tdb_context *tdb = trk_store_tdb(st);
    const trk_quota_t  *q = trk_quota_limits();
    char      kb[TRK_KEY_B];
    uint64_t  lim[3 * TRK_USE_N + 1];
    TDB_DATA  k;
    size_t    i;

    for (i = 0; i < a->nold; i++) {
        k.dptr = (unsigned char *) a->old[i];
        k.dsize = strlen(a->old[i]);
        if (tdb_delete(tdb, k) != 0) {
            return -1;
        }
    }
    for (i = 0; i < a->cap; i++) {
        if (a->e[i].key[0] == '\0') {
            continue;
        }
        k = qkey(kb, a->e[i].key[0], a->e[i].key + 2);
        if (k.dsize == 0 || use_store(tdb, k, a->e[i].v, TRK_USE_N) != 0) {
            return -1;
        }
    }
    memcpy(lim, q->user, sizeof(q->user));
    memcpy(lim + TRK_USE_N, q->group, sizeof(q->group));
    memcpy(lim + 2 * TRK_USE_N, q->tracker, sizeof(q->tracker));
    lim[3 * TRK_USE_N] = q->file_size_b;
    return use_store(tdb, trk_key(kb, TRK_KEY_QUOTA, "limits", NULL), lim,
                     3 * TRK_USE_N + 1);
}


int
trk_quota_rebuild(trk_store_t *st)
{
    acc_t  a;
    size_t i;
    int    rc;

    memset(&a, 0, sizeof(a));
    if (trk_store_begin(st) != 0) {
        return -1;
    }
    /* a traverse of the transaction: no writer can slip in between the
     * count and the store of the counters */
    rc = trk_store_walk(st, rebuild_visit, &a);
    if (rc == 0 && !a.err) {
        rc = rebuild_write(st, &a);
    } else {
        rc = -1;
    }
    if (rc == 0) {
        rc = trk_store_commit(st);
    } else {
        trk_store_cancel(st);
    }
    if (rc == 0) {
        ts_info("usage counters rebuilt: %zu users, groups and totals", a.n);
    } else {
        ts_err("cannot rebuild the usage counters");
    }
    for (i = 0; i < a.nold; i++) {
        free(a.old[i]);
    }
    free(a.old);
    free(a.e);
    return rc;
}


/* ---- checks ---------------------------------------------------------- */

/* "64 MiB", "2.5 MiB", "100 bytes" into out. */
static const char *
fmt_bytes(uint64_t b, char *out, size_t outsz)
{
    static const char *unit[] = { "KiB", "MiB", "GiB", "TiB" };
    int                i;

    for (i = 3; i >= 0; i--) {
        uint64_t m = 1ull << (10 * (i + 1));

        if (b >= m) {
            if (b % m == 0) {
                snprintf(out, outsz, "%llu %s", (unsigned long long) (b / m),
                         unit[i]);
            } else {
                snprintf(out, outsz, "%.1f %s", (double) b / (double) m,
                         unit[i]);
            }
            return out;
        }
    }
    snprintf(out, outsz, "%llu bytes", (unsigned long long) b);
    return out;
}


/* TS_OK if used + add fits limit (0 = none); else the refusal. */
static ts_status_t
over(const char *what, const char *whose, uint64_t used, uint64_t add,
     uint64_t limit, int bytes, char *msg, size_t msgsz)
{
    char l[32], u[32], a[32];

    if (limit == 0 || (used <= limit && add <= limit - used)) {
        return TS_OK;
    }
    if (!bytes) {
        return trk_ops_fail(msg, msgsz, TS_ERR_LIMIT,
                            "quota exceeded: %s of %s (%llu)", what, whose,
                            (unsigned long long) limit);
    }
    return trk_ops_fail(msg, msgsz, TS_ERR_LIMIT,
                        "quota exceeded: %s of %s (%s; %s used, this file "
                        "needs %s)", what, whose,
                        fmt_bytes(limit, l, sizeof(l)),
                        fmt_bytes(used, u, sizeof(u)),
                        fmt_bytes(add, a, sizeof(a)));
}


ts_status_t
trk_quota_check_size(uint64_t size, char *msg, size_t msgsz)
{
    const trk_quota_t *q = trk_quota_limits();
    char               s[32], m[32];

    if (q->file_size_b == 0 || size <= q->file_size_b) {
        return TS_OK;
    }
    return trk_ops_fail(msg, msgsz, TS_ERR_LIMIT,
                        "file too large: %s (this tracker takes at most %s)",
                        fmt_bytes(size, s, sizeof(s)),
                        fmt_bytes(q->file_size_b, m, sizeof(m)));
}


ts_status_t
trk_quota_check_file(trk_store_t *st, const char *user, const char *group,
                     uint32_t nchunks, char *msg, size_t msgsz)
{
    const trk_quota_t *q = trk_quota_limits();
    trk_use_t          u, g, t;
    char               wu[TS_ID_MAX_B + 8], wg[TS_ID_MAX_B + 8];
    uint64_t           hb = (uint64_t) nchunks * 20;
    ts_status_t        s;

    if (trk_quota_get(st, 'u', user, &u) != 0
        || trk_quota_get(st, 'g', group, &g) != 0
        || trk_quota_get(st, 't', NULL, &t) != 0)
    {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    snprintf(wu, sizeof(wu), "user %s", user);
    snprintf(wg, sizeof(wg), "group %s", group);
    s = over("files", wu, u.v[TRK_USE_FILES], 1, q->user[TRK_USE_FILES], 0,
             msg, msgsz);
    if (s == TS_OK) {
        s = over("hash bytes", wu, u.v[TRK_USE_HASH_B], hb,
                 q->user[TRK_USE_HASH_B], 1, msg, msgsz);
    }
    if (s == TS_OK) {
        s = over("files", wg, g.v[TRK_USE_FILES], 1, q->group[TRK_USE_FILES],
                 0, msg, msgsz);
    }
    if (s == TS_OK) {
        s = over("hash bytes", wg, g.v[TRK_USE_HASH_B], hb,
                 q->group[TRK_USE_HASH_B], 1, msg, msgsz);
    }
    if (s == TS_OK) {
        s = over("files", "this tracker", t.v[TRK_USE_FILES], 1,
                 q->tracker[TRK_USE_FILES], 0, msg, msgsz);
    }
    if (s == TS_OK) {
        s = over("hash bytes", "this tracker", t.v[TRK_USE_HASH_B], hb,
                 q->tracker[TRK_USE_HASH_B], 1, msg, msgsz);
    }
    return s;
}


ts_status_t
trk_quota_check_share(trk_store_t *st, const char *user, const char *addr,
                      char *msg, size_t msgsz)
{
    const trk_quota_t *q = trk_quota_limits();
    trk_use_t          u;
    ts_wbuf_t          b;
    char               kb[TRK_KEY_B], wu[TS_ID_MAX_B + 8];
    TDB_DATA           k;
    ts_status_t        s;
    int                rc;

    if (trk_quota_get(st, 'u', user, &u) != 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    snprintf(wu, sizeof(wu), "user %s", user);
    s = over("shares", wu, u.v[TRK_USE_SHARES], 1, q->user[TRK_USE_SHARES],
             0, msg, msgsz);
    if (s != TS_OK || q->user[TRK_USE_NODES] == 0
        || u.v[TRK_USE_NODES] < q->user[TRK_USE_NODES])
    {
        return s;
    }
    /* at the node limit: only a node that shares already may add more */
    k = trk_key(kb, TRK_KEY_SHARES, user, addr);
    ts_wbuf_init(&b);
    rc = k.dsize == 0 ? -1 : trk_kv_get(st, (const char *) k.dptr, k.dsize,
                                        &b);
    ts_wbuf_free(&b);
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    return rc == 0 ? TS_OK
           : over("nodes", wu, u.v[TRK_USE_NODES], 1, q->user[TRK_USE_NODES],
                  0, msg, msgsz);
}


ts_status_t
trk_quota_check_group(trk_store_t *st, const char *user, char *msg,
                      size_t msgsz)
{
    trk_use_t u;
    char      wu[TS_ID_MAX_B + 8];

    if (trk_quota_get(st, 'u', user, &u) != 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    snprintf(wu, sizeof(wu), "user %s", user);
    return over("owned groups", wu, u.v[TRK_USE_GROUPS], 1,
                trk_quota_limits()->user[TRK_USE_GROUPS], 0, msg, msgsz);
}
