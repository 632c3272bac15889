/*
 * trk_index.c -- the local-only derived keys (y/...) kept in the same
 * transaction as the replicated records they are derived from.
 *
 * Purpose: trk_idx_note() is called by trk_store.c for every envelope it
 * stores (local write, merged op, snapshot batch) with the envelope
 * before and after; from the application values it keeps
 *   y/meta            counts of live users, groups, sessions, replies;
 *                     the number of replicated keys and the sum (mod
 *                     2^256) of their per-key hashes: the digest
 *   y/g/<2 hex>       live group ids, bucketed by the first byte of
 *                     sha256(id), each bucket a sorted list
 *   y/ug/<user>       the groups user is a member of: one sorted list
 *                     while short, else split into hash buckets
 *                     y/ug/<user>/<2 hex> (trk_index_ug.c)
 *   y/q<k>/...        expiry queue k (s: sessions, r: cached replies)
 *                     by wall-clock second, with a directory y/qd<k>
 * The rebuild at start-up is in trk_index_build.c.
 *
 * Locking: one thread per trk_store_t; the writes go into the caller's
 * transaction (a note outside one writes directly, as the store does).
 *
 * Crash behaviour: the keys commit or roll back with the data; a
 * start-up rebuilds them, so nothing here needs a repair of its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_clock.h"
#include "ts_crypto.h"
#include "ts_log.h"
#include "trk_index.h"
#include "trk_index_int.h"
#include "trk_keys.h"
#include "trk_merge.h"


/* ---- small records ---------------------------------------------------- */

TDB_DATA
trk_idx_key(char *buf, const char *a, const char *b)
{
    return trk_key(buf, TRK_KEY_INDEX, a, b);
}


/* A list key: 0 (l filled, maybe empty when absent) or -1 (corrupt). */
int
trk_idx_list_get(struct tdb_context *tdb, TDB_DATA k, trk_strlist_t *l)
{
    TDB_DATA  v;
    ts_rbuf_t r;
    char      tmp[TRK_IDX_ENTRY_B];
    uint32_t  i, cnt;
    int       rc = -1;

    memset(l, 0, sizeof(*l));
    v = tdb_fetch(tdb, k);
    if (v.dptr == NULL) {
        return 0;
    }
    ts_rbuf_init(&r, v.dptr, v.dsize);
    if (trk_codec_get_head(&r, TRK_IDX_REC) != 0) {
        goto out;
    }
    cnt = ts_get_u32(&r);
    if (r.err || (size_t) cnt > ts_rbuf_left(&r)) {
        goto out;
    }
    l->v = calloc(cnt ? cnt : 1, sizeof(*l->v));
    if (l->v == NULL) {
        goto out;
    }
    l->cap = cnt ? cnt : 1;
    for (i = 0; i < cnt; i++) {
        if (ts_get_str(&r, tmp, sizeof(tmp)) != 0) {
            goto out;
        }
        l->v[i] = strdup(tmp);
        if (l->v[i] == NULL) {
            goto out;
        }
        l->n++;
    }
    rc = 0;
out:
    free(v.dptr);
    if (rc != 0) {
        ts_err("corrupt index record %.*s", (int) k.dsize, (char *) k.dptr);
        trk_strlist_free(l);
        memset(l, 0, sizeof(*l));
    }
    return rc;
}


/* The room a list record of n bytes is given: the next power of two.
 * A list that grows into a larger class is stored once padded to it,
 * then with its exact bytes: tdb then rewrites the record in place (no
 * free-list search, no new allocation) for every later edit within the
 * class, so an edit dirties only the pages of the record itself. */
static size_t
room_of(size_t n)
{
    size_t r = 64;

    while (r < n) {
        r *= 2;
    }
    return r;
}


static int
idx_store(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, size_t old_n)
{
    TDB_DATA p;
    size_t   room = room_of(v.dsize);
    int      rc;

    if (old_n > 0 && room_of(old_n) >= room) {
        return tdb_store(tdb, k, v, TDB_REPLACE) == 0 ? 0 : -1;
    }
    p.dsize = room;
    p.dptr = calloc(1, room);
    if (p.dptr == NULL) {
        return -1;
    }
    memcpy(p.dptr, v.dptr, v.dsize);
    rc = tdb_store(tdb, k, p, TDB_REPLACE);
    free(p.dptr);
    if (rc == 0 && room != v.dsize) {
        rc = tdb_store(tdb, k, v, TDB_REPLACE);
    }
    return rc == 0 ? 0 : -1;
}


/* Stores l under k (an empty list deletes k): 0 / -1. */
int
trk_idx_list_put(struct tdb_context *tdb, TDB_DATA k, const trk_strlist_t *l)
{
    ts_wbuf_t b;

    if (l->n == 0) {
        return tdb_exists(tdb, k) && tdb_delete(tdb, k) != 0 ? -1 : 0;
    }
    ts_wbuf_init(&b);
    trk_strlist_encode(&b, TRK_IDX_REC, l);
    return trk_idx_put_wbuf(tdb, k, &b);
}


int
trk_idx_put_wbuf(struct tdb_context *tdb, TDB_DATA k, ts_wbuf_t *b)
{
    TDB_DATA v;
    int      rc;

    v.dptr = b->data;
    v.dsize = b->len;
    rc = b->err || tdb_store(tdb, k, v, TDB_REPLACE) != 0 ? -1 : 0;
    ts_wbuf_free(b);
    return rc;
}


/* strcmp order of entry e (n bytes, no NUL) against the string s. */
static int
entry_cmp(const uint8_t *e, size_t n, const char *s, size_t sl)
{
    int c = memcmp(e, s, n < sl ? n : sl);

    return c != 0 ? c : (n > sl) - (n < sl);
}


int
trk_idx_list_edit(struct tdb_context *tdb, TDB_DATA k, const char *s,
                  int add, uint32_t *count)
{
    TDB_DATA  v;
    ts_rbuf_t r;
    ts_wbuf_t b;
    size_t    sl = strlen(s), at = 0, old_n;
    uint32_t  i, cnt = 0;
    uint16_t  n;
    int       c = 1, rc = -1;

    /* the list is edited in its encoded form: a scan for the place, one
     * copy with the entry spliced in or out, no decode of the others */
    if (k.dsize == 0 || sl == 0 || sl >= TRK_IDX_ENTRY_B) {
        return -1;
    }
    v = tdb_fetch(tdb, k);
    if (v.dptr != NULL) {
        ts_rbuf_init(&r, v.dptr, v.dsize);
        if (trk_codec_get_head(&r, TRK_IDX_REC) != 0) {
            goto corrupt;
        }
        cnt = ts_get_u32(&r);
        for (i = 0; i < cnt && !r.err; i++) {
            at = r.off;
            n = ts_get_u16(&r);
            if (r.err || n > ts_rbuf_left(&r)) {
                goto corrupt;
            }
            c = entry_cmp(r.p + r.off, n, s, sl);
            if (c >= 0) {
                break;
            }
            r.off += n;
        }
        if (r.err || (i == cnt && ts_rbuf_end(&r) != 0)) {
            goto corrupt;
        }
        if (i == cnt) {
            at = r.off;
        }
    }
    if (count != NULL) {
        *count = cnt;
    }
    if ((add && c == 0) || (!add && c != 0)) {
        free(v.dptr);
        return 0;                       /* already (not) there */
    }
    if (!add && cnt == 1) {
        free(v.dptr);
        if (count != NULL) {
            *count = 0;
        }
        return tdb_delete(tdb, k) == 0 ? 1 : -1;
    }
    ts_wbuf_init(&b);
    trk_codec_put_head(&b, TRK_IDX_REC);
    ts_put_u32(&b, add ? cnt + 1 : cnt - 1);
    if (v.dptr != NULL) {
        ts_put_raw(&b, v.dptr + 6, at - 6);
    }
    if (add) {
        ts_put_str(&b, s);
    } else {
        at += 2 + sl;
    }
    old_n = 0;
    if (v.dptr != NULL) {
        ts_put_raw(&b, v.dptr + at, v.dsize - at);
        old_n = v.dsize;
    }
    free(v.dptr);
    if (count != NULL) {
        *count = add ? cnt + 1 : cnt - 1;
    }
    v.dptr = b.data;
    v.dsize = b.len;
    rc = b.err || idx_store(tdb, k, v, old_n) != 0 ? -1 : 1;
    ts_wbuf_free(&b);
    return rc;
corrupt:
    free(v.dptr);
    ts_err("corrupt index record %.*s", (int) k.dsize, (char *) k.dptr);
    return -1;
}


/* Adds (add) or removes s in the list at k. */
static int
list_edit(struct tdb_context *tdb, TDB_DATA k, const char *s, int add)
{
    return trk_idx_list_edit(tdb, k, s, add, NULL) < 0 ? -1 : 0;
}


TDB_DATA
trk_idx_group_bucket(char *buf, const char *group)
{
    uint8_t h[TS_SHA256_B];
    char    hex[3];

    (void) ts_sha256(group, strlen(group), h);
    snprintf(hex, sizeof(hex), "%02x", h[0]);
    return trk_idx_key(buf, "g", hex);
}


/* ---- meta ------------------------------------------------------------- */

static int
meta_load(struct tdb_context *tdb, trk_idx_meta_t *m)
{
    TDB_DATA  k, v;
    ts_rbuf_t r;
    char      kb[TRK_KEY_B];

    memset(m, 0, sizeof(*m));
    k = trk_idx_key(kb, "meta", NULL);
    v = tdb_fetch(tdb, k);
    m->loaded = 1;
    if (v.dptr == NULL) {
        return 0;
    }
    ts_rbuf_init(&r, v.dptr, v.dsize);
    if (ts_get_u32(&r) != TRK_IDX_VERSION) {
        r.err = 1;
    }
    m->users = ts_get_u64(&r);
    m->groups = ts_get_u64(&r);
    m->sessions = ts_get_u64(&r);
    m->replies = ts_get_u64(&r);
    m->nrep = ts_get_u64(&r);
    (void) ts_get_raw(&r, m->sum, sizeof(m->sum));
    free(v.dptr);
    if (r.err) {
        ts_err("corrupt index record y/meta (the next start rebuilds it)");
        return -1;
    }
    return 0;
}


int
trk_idx_meta_put(struct tdb_context *tdb, const trk_idx_meta_t *m)
{
    ts_wbuf_t b;
    TDB_DATA  k, v;
    char      kb[TRK_KEY_B];
    int       rc;

    ts_wbuf_init(&b);
    ts_put_u32(&b, TRK_IDX_VERSION);
    ts_put_u64(&b, m->users);
    ts_put_u64(&b, m->groups);
    ts_put_u64(&b, m->sessions);
    ts_put_u64(&b, m->replies);
    ts_put_u64(&b, m->nrep);
    ts_put_raw(&b, m->sum, sizeof(m->sum));
    k = trk_idx_key(kb, "meta", NULL);
    v.dptr = b.data;
    v.dsize = b.len;
    rc = b.err || tdb_store(tdb, k, v, TDB_REPLACE) != 0 ? -1 : 0;
    ts_wbuf_free(&b);
    return rc;
}


/* The per-key hash of the digest: sha256(u32 klen, key, u32 elen, env). */
int
trk_idx_key_hash(const void *key, size_t klen, TDB_DATA env, uint8_t h[32])
{
    ts_wbuf_t b;
    int       rc;

    ts_wbuf_init(&b);
    ts_put_blob(&b, key, (uint32_t) klen);
    ts_put_blob(&b, env.dptr, (uint32_t) env.dsize);
    rc = b.err || ts_sha256(b.data, b.len, h) != 0 ? -1 : 0;
    ts_wbuf_free(&b);
    return rc;
}


/* sum += h (sign 1) or sum -= h (sign -1), big-endian mod 2^256. */
void
trk_idx_sum(uint8_t sum[32], const uint8_t h[32], int sign)
{
    int      i, carry = 0, v;

    for (i = 31; i >= 0; i--) {
        if (sign > 0) {
            v = sum[i] + h[i] + carry;
            carry = v >> 8;
        } else {
            v = sum[i] - h[i] - carry;
            carry = v < 0;
            v += carry ? 256 : 0;
        }
        sum[i] = (uint8_t) v;
    }
}


int
trk_idx_flush(trk_store_t *st, trk_idx_meta_t *m)
{
    int rc = 0;

    if (m->loaded && m->dirty) {
        rc = trk_idx_meta_put(trk_store_tdb(st), m);
    }
    m->loaded = 0;
    m->dirty = 0;
    return rc;
}


/* ---- the hook --------------------------------------------------------- */

/* The members of a group envelope's live value (an empty list when the
 * group is dissolved or absent).  0 / -1. */
static int
env_members(const char *key, size_t klen, TDB_DATA env, trk_strlist_t *out)
{
    trk_group_t g;
    ts_wbuf_t   b;
    uint32_t    i;
    int         rc;

    memset(out, 0, sizeof(*out));
    if (env.dsize == 0) {
        return 0;
    }
    ts_wbuf_init(&b);
    rc = trk_env_view(key, klen, env.dptr, env.dsize, &b);
    /* a dissolved or corrupt group lists nobody */
    if (rc == 0 && trk_group_decode(b.data, b.len, &g) == 0) {
        for (i = 0; rc == 0 && i < g.nmembers; i++) {
            if (trk_strlist_add(out, g.members[i].user) < 0) {
                rc = -1;
            }
        }
        trk_group_free(&g);
    }
    ts_wbuf_free(&b);
    return rc < 0 ? -1 : 0;
}


/* A group's members moved from old to new: y/ug/ lists follow. */
static int
note_group(struct tdb_context *tdb, const char *key, size_t klen,
           TDB_DATA old, TDB_DATA nv, int was, int is)
{
    trk_strlist_t a, b;
    char          kb[TRK_KEY_B], gid[TS_ID_MAX_B + 1];
    uint32_t      i, pos;
    int           rc = 0;

    if (klen - 2 > TS_ID_MAX_B) {
        return 0;                       /* not a group id: nothing to list */
    }
    memcpy(gid, key + 2, klen - 2);
    gid[klen - 2] = '\0';
    if (was != is
        && list_edit(tdb, trk_idx_group_bucket(kb, gid), gid, is) != 0)
    {
        return -1;
    }
    if (env_members(key, klen, old, &a) != 0) {
        return -1;
    }
    if (env_members(key, klen, nv, &b) != 0) {
        trk_strlist_free(&a);
        return -1;
    }
    for (i = 0; rc == 0 && i < a.n; i++) {
        if (!trk_strlist_find(&b, a.v[i], &pos)) {
            rc = trk_idx_ug_edit(tdb, a.v[i], gid, 0);
        }
    }
    for (i = 0; rc == 0 && i < b.n; i++) {
        if (!trk_strlist_find(&a, b.v[i], &pos)) {
            rc = trk_idx_ug_edit(tdb, b.v[i], gid, 1);
        }
    }
    trk_strlist_free(&a);
    trk_strlist_free(&b);
    return rc;
}


/* 1 if env holds a live value of key (0: none or corrupt); the value of
 * a cached reply also gives its stored time. */
static int
env_live(const char *key, size_t klen, TDB_DATA env, uint64_t *stored_ms)
{
    ts_wbuf_t b;
    ts_rbuf_t r;
    int       rc;

    if (env.dsize == 0) {
        return 0;
    }
    ts_wbuf_init(&b);
    rc = trk_env_view(key, klen, env.dptr, env.dsize, &b);
    if (rc == 0 && stored_ms != NULL) {
        ts_rbuf_init(&r, b.data, b.len);
        *stored_ms = 0;
        if (trk_codec_get_head(&r, TRK_REC_REPLY) == 0) {
            *stored_ms = ts_get_u64(&r);
        }
    }
    ts_wbuf_free(&b);
    return rc == 0;
}


/* A reply or session that became live joins its expiry queue. */
static int
note_queue(trk_store_t *st, const char *key, size_t klen, uint64_t stored)
{
    char e[TRK_IDX_ENTRY_B];

    if (key[0] == TRK_KEY_SESSION) {
        snprintf(e, sizeof(e), "%.*s", (int) (klen - 2), key + 2);
        return trk_idx_queue(st, TRK_IDX_Q_SESSION,
                             (uint64_t) ts_wall_ms(), e);
    }
    snprintf(e, sizeof(e), "%016llx|%.*s", (unsigned long long) stored,
             (int) klen, key);
    return trk_idx_queue(st, TRK_IDX_Q_REPLY, stored, e);
}


int
trk_idx_note(trk_store_t *st, trk_idx_meta_t *m, const char *key,
             size_t klen, TDB_DATA old, TDB_DATA nv)
{
    struct tdb_context *tdb = trk_store_tdb(st);
    uint8_t             h[32];
    uint64_t           *cnt = NULL, stored = 0;
    int                 was, is;

    if (!m->loaded && meta_load(tdb, m) != 0) {
        return -1;
    }
    if (old.dsize == 0) {
        m->nrep++;
    } else if (trk_idx_key_hash(key, klen, old, h) == 0) {
        trk_idx_sum(m->sum, h, -1);
    } else {
        return -1;
    }
    if (trk_idx_key_hash(key, klen, nv, h) != 0) {
        return -1;
    }
    trk_idx_sum(m->sum, h, 1);
    m->dirty = 1;
    switch (key[0]) {
    case TRK_KEY_USER:    cnt = &m->users; break;
    case TRK_KEY_GROUP:   cnt = &m->groups; break;
    case TRK_KEY_SESSION: cnt = &m->sessions; break;
    case TRK_KEY_REPLY:   cnt = &m->replies; break;
    default:              return 0;
    }
    was = env_live(key, klen, old, NULL);
    is = env_live(key, klen, nv, key[0] == TRK_KEY_REPLY ? &stored : NULL);
    *cnt = *cnt + (uint64_t) is - (uint64_t) was;
    if (key[0] == TRK_KEY_GROUP) {
        return note_group(tdb, key, klen, old, nv, was, is);
    }
    if (is && !was && key[0] != TRK_KEY_USER) {
        return note_queue(st, key, klen, stored);
    }
    return 0;
}


/* ---- reads ------------------------------------------------------------ */

int
trk_idx_status(trk_store_t *st, trk_counts_t *c, uint8_t digest[32])
{
    trk_idx_meta_t m;

    if (meta_load(trk_store_tdb(st), &m) != 0) {
        return -1;
    }
    c->users = m.users;
    c->groups = m.groups;
    c->sessions = m.sessions;
    c->replies = m.replies;
    return digest == NULL ? 0 : trk_idx_digest_of(m.sum, m.nrep, digest);
}


int
trk_idx_digest_of(const uint8_t sum[32], uint64_t n, uint8_t out[32])
{
    ts_wbuf_t b;
    int       rc;

    ts_wbuf_init(&b);
    ts_put_raw(&b, "tessera-digest-2", 16);
    ts_put_raw(&b, sum, 32);
    ts_put_u64(&b, n);
    rc = b.err || ts_sha256(b.data, b.len, out) != 0 ? -1 : 0;
    ts_wbuf_free(&b);
    return rc;
}


int
trk_idx_groups(trk_store_t *st, const char *member_of, trk_strlist_t *out)
{
    struct tdb_context *tdb = trk_store_tdb(st);
    trk_strlist_t       l;
    char                kb[TRK_KEY_B], hex[3];
    int                 b;

    if (member_of != NULL) {
        return trk_idx_ug_get(tdb, member_of, out);
    }
    memset(out, 0, sizeof(*out));
    for (b = 0; b < 256; b++) {
        snprintf(hex, sizeof(hex), "%02x", b);
        if (trk_idx_list_get(tdb, trk_idx_key(kb, "g", hex), &l) != 0) {
            trk_strlist_free(out);
            return -1;
        }
        /* the buckets are disjoint: append, the caller sorts */
        if (trk_idx_list_append(out, &l) != 0) {
            trk_strlist_free(&l);
            trk_strlist_free(out);
            return -1;
        }
        trk_strlist_free(&l);
    }
    return 0;
}
