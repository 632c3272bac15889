/*
 * trk_quota.c -- the storage quotas: the checks the write rules make
 * before they add to what a user, a group or the tracker holds, and the
 * rebuild of the usage counters (trk_usage.h) at start-up.
 *
 * Purpose: a check reads the counters only (three small records, no walk
 * of the database) inside the request's transaction, so a check and the
 * write it allows are atomic on this tracker.  A refusal is
 * TS_ERR_LIMIT with a text naming the quota, its limit, what is used and
 * what the write needed; the client prints it as it is.
 *
 * Locking: on the store's thread, inside its transaction (the rebuild
 * opens its own, before the workers start).
 *
 * Crash behaviour: a check writes nothing; a rebuild commits whole or
 * not at all.
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
    trk_usage_part(k.dptr, k.dsize, &r, &p);
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
        k = trk_usage_key(kb, a->e[i].key[0], a->e[i].key + 2);
        if (k.dsize == 0 || trk_usage_store(tdb, k, a->e[i].v, TRK_USE_N) != 0) {
            return -1;
        }
    }
    memcpy(lim, q->user, sizeof(q->user));
    memcpy(lim + TRK_USE_N, q->group, sizeof(q->group));
    memcpy(lim + 2 * TRK_USE_N, q->tracker, sizeof(q->tracker));
    lim[3 * TRK_USE_N] = q->file_size_b;
    return trk_usage_store(tdb, trk_key(kb, TRK_KEY_QUOTA, "limits", NULL), lim,
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

    if (trk_usage_get(trk_store_tdb(st), 'u', user, &u) != 0
        || trk_usage_get(trk_store_tdb(st), 'g', group, &g) != 0
        || trk_usage_get(trk_store_tdb(st), 't', NULL, &t) != 0)
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

    if (trk_usage_get(trk_store_tdb(st), 'u', user, &u) != 0) {
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

    if (trk_usage_get(trk_store_tdb(st), 'u', user, &u) != 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    snprintf(wu, sizeof(wu), "user %s", user);
    return over("owned groups", wu, u.v[TRK_USE_GROUPS], 1,
                trk_quota_limits()->user[TRK_USE_GROUPS], 0, msg, msgsz);
}
