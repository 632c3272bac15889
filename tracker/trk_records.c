/*
 * trk_records.c -- the typed records of accounts, groups and sessions on
 * the tracker's store, the reply cache, and the store's maintenance walks
 * (counts, reply expiry, session listing).
 *
 * Purpose: get/put of u/ g/ s/ r/ records (keys in trk_keys.h, layouts in
 * trk_codec.h) through the replicated key-value layer of trk_store.c;
 * what the merge envelope says about an account or a group incarnation.
 *
 * Locking: one thread per trk_store_t; writes run inside the caller's
 * transaction; the walks are read traverses.
 *
 * Crash behaviour: nothing outlives a transaction half-done.  A record
 * that fails to decode is reported (-1) and never trusted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tdb.h>

#include "ts_crypto.h"
#include "ts_log.h"
#include "trk_store.h"
#include "trk_keys.h"
#include "trk_index.h"
#include "trk_merge.h"

int
trk_group_lost(trk_store_t *st, const char *group, const char *user)
{
    char      kb[TRK_KEY_B];
    TDB_DATA  k;
    trk_rec_t r;
    int       lost;

    k = trk_key(kb, TRK_KEY_GROUP, group, NULL);
    if (k.dsize == 0 || trk_kv_rec(st, kb, k.dsize, &r) != 0) {
        return 0;
    }
    lost = trk_rec_group_lost(&r, user);
    trk_rec_free(&r);
    return lost;
}


int
trk_user_stamp(trk_store_t *st, const char *user, uint64_t *hlc,
               uint8_t *origin)
{
    char             kb[TRK_KEY_B];
    TDB_DATA         k;
    trk_rec_t        r;
    const trk_inc_t *in;
    int              rc;

    k = trk_key(kb, TRK_KEY_USER, user, NULL);
    if (k.dsize == 0) {
        return -1;
    }
    rc = trk_kv_rec(st, kb, k.dsize, &r);
    if (rc != 0) {
        return rc;
    }
    in = trk_rec_visible(&r);
    rc = 1;
    if (in != NULL) {
        *hlc = in->c.hlc;
        *origin = in->c.origin;
        rc = 0;
    }
    trk_rec_free(&r);
    return rc;
}


static int
inc_user(const trk_inc_t *in, trk_user_t *u)
{
    uint32_t j;

    for (j = 0; j < in->n; j++) {
        if (!in->e[j].tomb) {
            return trk_user_decode(in->e[j].val, in->e[j].vlen, u);
        }
    }
    return -1;
}


int
trk_user_same_account(trk_store_t *st, const char *user, uint64_t hlc,
                      uint8_t origin)
{
    char             kb[TRK_KEY_B];
    TDB_DATA         k;
    trk_rec_t        r;
    const trk_inc_t *vis, *mine = NULL;
    trk_user_t       a, b;
    uint32_t         i;
    int              rc;

    k = trk_key(kb, TRK_KEY_USER, user, NULL);
    if (k.dsize == 0) {
        return -1;
    }
    rc = trk_kv_rec(st, kb, k.dsize, &r);
    if (rc != 0) {
        return -1;
    }
    vis = trk_rec_visible(&r);
    for (i = 0; i < r.n; i++) {
        if (r.inc[i].c.hlc == hlc && r.inc[i].c.origin == origin) {
            mine = &r.inc[i];
        }
    }
    rc = 0;
    if (vis != NULL && mine != NULL && inc_user(vis, &a) == 0
        && inc_user(mine, &b) == 0 && a.iterations == b.iterations
        && memcmp(a.salt, b.salt, sizeof(a.salt)) == 0
        && memcmp(a.hash, b.hash, sizeof(a.hash)) == 0)
    {
        rc = 1;
    }
    trk_rec_free(&r);
    return rc;
}


/* ---- typed records -------------------------------------------------- */

int
trk_user_get(trk_store_t *st, const char *user, trk_user_t *u)
{
    char     kb[TRK_KEY_B];
    TDB_DATA v;
    int      rc;

    rc = trk_kv_fetch(st, trk_key(kb, TRK_KEY_USER, user, NULL), &v);
    if (rc != 0) {
        return rc;
    }
    rc = trk_user_decode(v.dptr, v.dsize, u);
    free(v.dptr);
    if (rc != 0) {
        ts_err("corrupt user record for '%s'", user);
    }
    return rc;
}


int
trk_user_put(trk_store_t *st, const char *user, const trk_user_t *u)
{
    char      kb[TRK_KEY_B];
    ts_wbuf_t b;
    int       rc;

    ts_wbuf_init(&b);
    trk_user_encode(&b, u);
    rc = trk_kv_store(st, trk_key(kb, TRK_KEY_USER, user, NULL), &b);
    ts_wbuf_free(&b);
    return rc;
}


int
trk_group_get(trk_store_t *st, const char *group, trk_group_t *g)
{
    char     kb[TRK_KEY_B];
    TDB_DATA v;
    int      rc;

    memset(g, 0, sizeof(*g));
    rc = trk_kv_fetch(st, trk_key(kb, TRK_KEY_GROUP, group, NULL), &v);
    if (rc != 0) {
        return rc;
    }
    rc = trk_group_decode(v.dptr, v.dsize, g);
    free(v.dptr);
    if (rc != 0) {
        ts_err("corrupt group record for '%s'", group);
    }
    return rc;
}


int
trk_group_put(trk_store_t *st, const char *group, const trk_group_t *g)
{
    char      kb[TRK_KEY_B];
    ts_wbuf_t b;
    int       rc;

    ts_wbuf_init(&b);
    trk_group_encode(&b, g);
    rc = trk_kv_store(st, trk_key(kb, TRK_KEY_GROUP, group, NULL), &b);
    ts_wbuf_free(&b);
    return rc;
}


int
trk_group_del(trk_store_t *st, const char *group)
{
    char kb[TRK_KEY_B];

    return trk_kv_delete(st, trk_key(kb, TRK_KEY_GROUP, group, NULL));
}


int
trk_session_get(trk_store_t *st, const uint8_t h[32], trk_session_t *s)
{
    char     kb[TRK_KEY_B];
    TDB_DATA v;
    int      rc;

    rc = trk_kv_fetch(st, trk_key_session(kb, h), &v);
    if (rc != 0) {
        return rc;
    }
    rc = trk_session_decode(v.dptr, v.dsize, s);
    free(v.dptr);
    return rc;
}


int
trk_session_put(trk_store_t *st, const uint8_t h[32], const trk_session_t *s)
{
    char      kb[TRK_KEY_B];
    ts_wbuf_t b;
    int       rc;

    ts_wbuf_init(&b);
    trk_session_encode(&b, s);
    rc = trk_kv_store(st, trk_key_session(kb, h), &b);
    ts_wbuf_free(&b);
    return rc;
}


int
trk_session_del(trk_store_t *st, const uint8_t h[32])
{
    char kb[TRK_KEY_B];

    return trk_kv_delete(st, trk_key_session(kb, h));
}


void
trk_req_hash(uint8_t type, const void *payload, size_t len,
             uint8_t out[TS_SHA256_B])
{
    ts_wbuf_t b;

    ts_wbuf_init(&b);
    ts_put_str(&b, "tessera/request/1");
    ts_put_u8(&b, type);
    ts_put_raw(&b, payload, len);
    if (b.err || ts_sha256(b.data, b.len, out) != 0) {
        /* no memory: a hash that matches nothing stored (a stored one
         * came from a successful sha256) */
        memset(out, 0, TS_SHA256_B);
        out[0] = 1;
    }
    ts_wbuf_free(&b);
}


int
trk_reply_get(trk_store_t *st, uint64_t reqid, uint8_t type,
              const uint8_t hash[TS_SHA256_B], ts_wbuf_t *out)
{
    char            kb[TRK_KEY_B];
    TDB_DATA        v;
    ts_rbuf_t       r;
    const uint8_t  *p;
    uint8_t         h[TS_SHA256_B];
    uint32_t        n;
    uint8_t         t;
    int             rc;

    rc = trk_kv_fetch(st, trk_key_reply(kb, reqid, hash), &v);
    if (rc != 0) {
        return rc;
    }
    ts_rbuf_init(&r, v.dptr, v.dsize);
    rc = -1;
    if (trk_codec_get_head(&r, TRK_REC_REPLY) == 0) {
        (void) ts_get_u64(&r);
        t = ts_get_u8(&r);
        (void) ts_get_raw(&r, h, sizeof(h));
        p = ts_get_blob(&r, &n, TS_FRAME_MAX_B);
        if (p != NULL && ts_rbuf_end(&r) == 0) {
            if (t != type || !ts_ct_equal(h, hash, sizeof(h))) {
                rc = 1;     /* another request that drew the same key */
            } else {
                ts_wbuf_reset(out);
                ts_put_raw(out, p, n);
                rc = out->err ? -1 : 0;
            }
        }
    }
    free(v.dptr);
    return rc;
}


int
trk_reply_put(trk_store_t *st, uint64_t reqid, uint8_t type,
              const uint8_t hash[TS_SHA256_B], const void *payload,
              size_t len, uint64_t now_wall_ms)
{
    char      kb[TRK_KEY_B];
    ts_wbuf_t b;
    int       rc;

    if (len > TS_FRAME_MAX_B) {
        return -1;
    }
    ts_wbuf_init(&b);
    trk_codec_put_head(&b, TRK_REC_REPLY);
    ts_put_u64(&b, now_wall_ms);
    ts_put_u8(&b, type);
    ts_put_raw(&b, hash, TS_SHA256_B);
    ts_put_blob(&b, payload, (uint32_t) len);
    rc = trk_kv_store(st, trk_key_reply(kb, reqid, hash), &b);
    ts_wbuf_free(&b);
    return rc;
}



static int
count_walk(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    trk_counts_t *c = arg;
    ts_wbuf_t     b;
    int           rc;

    (void) tdb;
    if (k.dsize < 2 || k.dptr[1] != '/' || !strchr("ugsr", k.dptr[0])) {
        return 0;
    }
    ts_wbuf_init(&b);
    rc = trk_env_view(k.dptr, k.dsize, v.dptr, v.dsize, &b);
    ts_wbuf_free(&b);
    if (rc != 0) {
        return 0;                   /* tombstones are not counted */
    }
    switch (k.dptr[0]) {
    case 'u': c->users++; break;
    case 'g': c->groups++; break;
    case 's': c->sessions++; break;
    case 'r': c->replies++; break;
    default: break;
    }
    return 0;
}


int
trk_store_count(trk_store_t *st, trk_counts_t *c)
{
    memset(c, 0, sizeof(*c));
    return tdb_traverse_read(trk_store_tdb(st), count_walk, c) < 0 ? -1 : 0;
}


/* 1 if key has a live value. */
static int
kv_live(trk_store_t *st, TDB_DATA k)
{
    TDB_DATA v;

    if (trk_kv_fetch(st, k, &v) != 0) {
        return 0;
    }
    free(v.dptr);
    return 1;
}


/* One chunk of due reply-queue entries (from i on): deletes those stored
 * before cutoff that are still live (when may_delete), and takes every
 * handled entry off the queue, in one transaction (one op).  *next gets
 * where the next chunk starts; returns how many were deleted or -1. */
static int
expire_chunk(trk_store_t *st, const trk_strlist_t *due, uint32_t i,
             uint64_t cutoff, int may_delete, uint32_t *next)
{
    trk_strlist_t done;
    TDB_DATA      k;
    uint64_t      stored;
    const char   *bar;
    int           n = 0, rc, live;

    memset(&done, 0, sizeof(done));
    if (trk_store_begin(st) != 0) {
        return -1;
    }
    for (; i < due->n && n < TS_TRK_EXPIRE_CHUNK_N; i++) {
        bar = strchr(due->v[i], '|');
        stored = strtoull(due->v[i], NULL, 16);
        if (bar == NULL || stored >= cutoff) {
            if (bar == NULL) {
                (void) trk_strlist_add(&done, due->v[i]);
            }
            continue;               /* not old enough yet */
        }
        k.dptr = (unsigned char *) bar + 1;
        k.dsize = strlen(bar + 1);
        live = kv_live(st, k);
        if (live && !may_delete) {
            continue;               /* the leader deletes it */
        }
        if (live) {
            rc = trk_kv_delete(st, k);
            if (rc < 0) {
                continue;
            }
            n++;
        }
        if (trk_strlist_add(&done, due->v[i]) < 0) {
            break;
        }
    }
    *next = i;
    rc = trk_idx_done(st, TRK_IDX_Q_REPLY, cutoff, &done);
    trk_strlist_free(&done);
    if (rc != 0 || trk_store_commit(st) != 0) {
        trk_store_cancel(st);
        return -1;
    }
    return n;
}


int
trk_store_expire_replies_ex(trk_store_t *st, uint64_t cutoff_wall_ms,
                            int may_delete)
{
    trk_strlist_t due;
    uint32_t      i = 0;
    int           rc = 0, n;

    if (trk_idx_due(st, TRK_IDX_Q_REPLY, cutoff_wall_ms,
                    TS_TRK_EXPIRE_PASS_MAX_N, &due) != 0)
    {
        return -1;
    }
    /* bounded transactions: each one is one op, which must fit a
     * SYNC_OPS frame (TS_TRK_EXPIRE_CHUNK_N keys at most) */
    while (rc >= 0 && i < due.n) {
        n = expire_chunk(st, &due, i, cutoff_wall_ms, may_delete, &i);
        rc = n < 0 ? -1 : rc + n;
    }
    trk_strlist_free(&due);
    return rc;
}


int
trk_store_expire_replies(trk_store_t *st, uint64_t cutoff_wall_ms)
{
    return trk_store_expire_replies_ex(st, cutoff_wall_ms, 1);
}


typedef struct {
    void (*fn)(const uint8_t h[32], void *arg);
    void  *arg;
} sess_walk_t;


static int
sess_walk(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    sess_walk_t *w = arg;
    uint8_t      h[TS_SHA256_B];
    char         hex[2 * TS_SHA256_B + 1];
    ts_wbuf_t    b;
    int          rc;

    (void) tdb;
    if (k.dsize != 2 + 2 * TS_SHA256_B || k.dptr[0] != 's'
        || k.dptr[1] != '/')
    {
        return 0;
    }
    ts_wbuf_init(&b);
    rc = trk_env_view(k.dptr, k.dsize, v.dptr, v.dsize, &b);
    ts_wbuf_free(&b);
    if (rc != 0) {
        return 0;                   /* a logged-out or expired session */
    }
    memcpy(hex, k.dptr + 2, 2 * TS_SHA256_B);
    hex[2 * TS_SHA256_B] = '\0';
    if (ts_unhex(hex, h, sizeof(h)) == 0) {
        w->fn(h, w->arg);
    }
    return 0;
}


int
trk_store_each_session(trk_store_t *st,
                       void (*fn)(const uint8_t h[32], void *arg), void *arg)
{
    sess_walk_t w;

    w.fn = fn;
    w.arg = arg;
    return tdb_traverse_read(trk_store_tdb(st), sess_walk, &w) < 0 ? -1 : 0;
}
