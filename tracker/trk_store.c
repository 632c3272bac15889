/*
 * trk_store.c -- the tracker's tdb: record codec and account/group rules.
 *
 * Purpose: everything the tracker keeps durably lives in one tdb file
 * (<data-dir>/tracker.tdb).  This file owns its key schema (see
 * trk_store.h), encodes records with ts_buf and decodes them strictly, and
 * implements the group rules as check-then-write functions meant to run in
 * one transaction together with the reply-cache entry of the request.
 *
 * Locking: a trk_store_t is used by one thread only.  tdb's fcntl locks
 * make transactions of different worker processes serialise; readers
 * outside a transaction see only committed data.
 *
 * Crash behaviour: tdb transactions are crash-atomic (a recovery area is
 * written before data is overwritten; the next opener or locker replays
 * or discards it).  A process killed inside a transaction leaves nothing
 * of it.  With --fsync off (TDB_NOSYNC) this still holds for process
 * crashes, not for power loss.  A record that fails to decode is reported
 * as an error to the request that met it and never trusted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tdb.h>

#include "ts_crypto.h"
#include "ts_log.h"
#include "trk_store.h"
#include "trk_files.h"         /* G1: leave/dissolve hooks */
#include "trk_merge.h"
#include "trk_oplog.h"

#define REC_USER     'U'
#define REC_GROUP    'G'
#define REC_SESSION  'S'
#define REC_REPLY    'R'
#define REC_VERSION  1

#define KEY_B        (2 + 2 * TS_SHA256_B + 1)

struct trk_store_s {
    struct tdb_context *tdb;
    int                 in_txn;
    /* K1: replication */
    int                 origin;
    _Atomic uint64_t   *hlc;
    _Atomic uint64_t   *wake;
    trk_stamp_t         stamp;      /* of this transaction's writes */
    uint64_t            reqid;
    char              **keys;       /* replicated keys written */
    size_t              nkeys;
    size_t              capkeys;
};

/* Used when no tracker shm is attached (tests, tools). */
static _Atomic uint64_t  local_hlc;
static _Atomic uint64_t  local_wake;


static void
store_log(struct tdb_context *tdb, enum tdb_debug_level level,
          const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
store_log(struct tdb_context *tdb, enum tdb_debug_level level,
          const char *fmt, ...)
{
    char     line[512];
    size_t   n;
    va_list  ap;

    (void) tdb;
    if (level > TDB_DEBUG_WARNING) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    n = strlen(line);
    while (n > 0 && line[n - 1] == '\n') {
        line[--n] = '\0';
    }
    ts_log(level == TDB_DEBUG_FATAL ? TS_LOG_ERROR : TS_LOG_WARN,
           "tdb: %s", line);
}


trk_store_t *
trk_store_open(const char *path, int create, int nosync, char *err,
               size_t errlen)
{
    trk_store_t                 *st;
    struct tdb_logging_context   lctx;
    int                          flags;

    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    lctx.log_fn = store_log;
    lctx.log_private = NULL;
    flags = TDB_DEFAULT | (nosync ? TDB_NOSYNC : 0);
    errno = 0;
    st->origin = 1;
    st->hlc = &local_hlc;
    st->wake = &local_wake;
    st->tdb = tdb_open_ex(path, TS_TRK_TDB_HASH_SIZE, flags,
                          O_RDWR | (create ? O_CREAT : 0), 0600, &lctx,
                          NULL);
    if (st->tdb == NULL) {
        snprintf(err, errlen, "cannot open database %s: %s", path,
                 errno ? strerror(errno) : "not a tdb file");
        free(st);
        return NULL;
    }
    return st;
}


static void
txn_reset(trk_store_t *st)
{
    size_t i;

    for (i = 0; i < st->nkeys; i++) {
        free(st->keys[i]);
    }
    st->nkeys = 0;
    st->stamp.hlc = 0;
    st->stamp.origin = 0;
    st->reqid = 0;
}


void
trk_store_close(trk_store_t *st)
{
    if (st == NULL) {
        return;
    }
    if (st->in_txn) {
        tdb_transaction_cancel(st->tdb);
    }
    txn_reset(st);
    free(st->keys);
    tdb_close(st->tdb);
    free(st);
}


int
trk_store_begin(trk_store_t *st)
{
    if (st->in_txn) {
        return -1;
    }
    if (tdb_transaction_start(st->tdb) != 0) {
        ts_err("tdb_transaction_start() failed: %s", tdb_errorstr(st->tdb));
        return -1;
    }
    st->in_txn = 1;
    txn_reset(st);
    return 0;
}


int
trk_store_commit(trk_store_t *st)
{
    int logged;

    if (!st->in_txn) {
        return -1;
    }
    /* K1: the op that replicates this transaction commits with it */
    logged = st->nkeys > 0;
    if (logged && trk_oplog_append(st, st->stamp, st->reqid, st->keys,
                                   st->nkeys) != 0)
    {
        ts_err("cannot append to the op log");
        trk_store_cancel(st);
        return -1;
    }
    st->in_txn = 0;
    txn_reset(st);
    if (tdb_transaction_commit(st->tdb) != 0) {
        /* tdb cancels a transaction whose commit failed */
        ts_err("tdb_transaction_commit() failed: %s", tdb_errorstr(st->tdb));
        return -1;
    }
    if (logged) {
        atomic_fetch_add(st->wake, 1);
    }
    return 0;
}


void
trk_store_cancel(trk_store_t *st)
{
    if (st->in_txn) {
        tdb_transaction_cancel(st->tdb);
        st->in_txn = 0;
    }
    txn_reset(st);
}


int
trk_store_in_txn(const trk_store_t *st)
{
    return st->in_txn;
}


const char *
trk_store_errstr(trk_store_t *st)
{
    return tdb_errorstr(st->tdb);
}


/* G1: raw handle for trk_files.c (its own key kinds). */
struct tdb_context *
trk_store_tdb(trk_store_t *st)
{
    return st->tdb;
}


/* ---- keys and raw access ------------------------------------------- */

static TDB_DATA
mkkey(char *buf, size_t bufsz, char kind, const char *name)
{
    TDB_DATA k;
    int      n;

    n = snprintf(buf, bufsz, "%c/%s", kind, name);
    if (n < 0 || (size_t) n >= bufsz) {
        n = 0;
    }
    k.dptr = (unsigned char *) buf;
    k.dsize = (size_t) n;
    return k;
}


static TDB_DATA
hashkey(char *buf, const uint8_t h[32])
{
    char hex[2 * TS_SHA256_B + 1];

    ts_hex(h, TS_SHA256_B, hex);
    return mkkey(buf, KEY_B, 's', hex);
}


/* 0 found (*out malloc'd, the application value), 1 absent, -1 error. */
static int
raw_get(trk_store_t *st, TDB_DATA key, TDB_DATA *out)
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
    *out = tdb_fetch(st->tdb, key);
    if (out->dptr == NULL) {
        return tdb_error(st->tdb) == TDB_ERR_NOEXIST ? 1 : -1;
    }
    return 0;
}


static int
raw_put(trk_store_t *st, TDB_DATA key, const ts_wbuf_t *b)
{
    TDB_DATA v;

    if (key.dsize == 0 || b->err) {
        return -1;
    }
    if (trk_key_replicated(key.dptr, key.dsize)) {
        return trk_kv_put(st, (const char *) key.dptr, key.dsize, b->data,
                          b->len);
    }
    v.dptr = b->data;
    v.dsize = b->len;
    if (tdb_store(st->tdb, key, v, TDB_REPLACE) != 0) {
        ts_err("tdb_store() failed: %s", tdb_errorstr(st->tdb));
        return -1;
    }
    return 0;
}


static int
raw_del(trk_store_t *st, TDB_DATA key)
{
    if (key.dsize == 0) {
        return -1;
    }
    if (trk_key_replicated(key.dptr, key.dsize)) {
        return trk_kv_del(st, (const char *) key.dptr, key.dsize);
    }
    if (tdb_delete(st->tdb, key) != 0) {
        return tdb_error(st->tdb) == TDB_ERR_NOEXIST ? 1 : -1;
    }
    return 0;
}


/* ---- K1: replicated keys ------------------------------------------ */

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
    v = tdb_fetch(st->tdb, k);
    if (v.dptr == NULL) {
        trk_rec_init(rec);
        return tdb_error(st->tdb) == TDB_ERR_NOEXIST ? 1 : -1;
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


static int
rec_store(trk_store_t *st, const char *key, size_t klen, const trk_rec_t *r)
{
    ts_wbuf_t b;
    TDB_DATA  k, v;
    int       rc = 0;

    ts_wbuf_init(&b);
    trk_rec_encode(&b, r);
    k.dptr = (unsigned char *) key;
    k.dsize = klen;
    v.dptr = b.data;
    v.dsize = b.len;
    if (b.err || tdb_store(st->tdb, k, v, TDB_REPLACE) != 0) {
        ts_err("tdb_store() failed: %s", tdb_errorstr(st->tdb));
        rc = -1;
    }
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


/* A write outside a transaction gets one of its own. */
static int
kv_write(trk_store_t *st, const char *key, size_t klen, const void *val,
         size_t vlen, int del)
{
    trk_rec_t r;
    ts_wbuf_t view;
    int       rc, own = 0;

    if (!st->in_txn) {
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
    /* the write's stamp must be above everything it overwrites, even if
     * the clock was behind a stamp merged from a peer */
    trk_hlc_observe(st->hlc, trk_rec_max_stamp(&r).hlc);
    if (note_key(st, key, klen) != 0) {
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

    if (!trk_key_replicated(key, klen)) {
        return -1;
    }
    rc = kv_rec_ex(st, key, klen, &r);
    if (rc == -1) {
        return -1;
    }
    if (rc == -2) {
        /* a stored record that does not decode (logged by kv_rec_ex)
         * must not refuse every batch forever: it counts as empty and
         * the merged record replaces it */
        trk_rec_free(&r);
        trk_rec_init(&r);
        rc = trk_rec_merge(&r, rec);
        rc = rc < 0 ? -1 : 1;
    } else {
        rc = trk_rec_merge(&r, rec);
    }
    if (rc > 0) {
        rc = rec_store(st, key, klen, &r);
    }
    trk_rec_free(&r);
    return rc < 0 ? -1 : 0;
}


int
trk_group_lost(trk_store_t *st, const char *group, const char *user)
{
    char      kb[KEY_B + TS_ID_MAX_B];
    TDB_DATA  k;
    trk_rec_t r;
    int       lost;

    k = mkkey(kb, sizeof(kb), 'g', group);
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
    char             kb[KEY_B + TS_ID_MAX_B];
    TDB_DATA         k;
    trk_rec_t        r;
    const trk_inc_t *in;
    int              rc;

    k = mkkey(kb, sizeof(kb), 'u', user);
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
    char             kb[KEY_B + TS_ID_MAX_B];
    TDB_DATA         k;
    trk_rec_t        r;
    const trk_inc_t *vis, *mine = NULL;
    trk_user_t       a, b;
    uint32_t         i;
    int              rc;

    k = mkkey(kb, sizeof(kb), 'u', user);
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


static void
put_head(ts_wbuf_t *b, uint8_t kind)
{
    ts_put_u8(b, kind);
    ts_put_u8(b, REC_VERSION);
}


static int
get_head(ts_rbuf_t *r, uint8_t kind)
{
    uint8_t k, v;

    k = ts_get_u8(r);
    v = ts_get_u8(r);
    return (r->err || k != kind || v != REC_VERSION) ? -1 : 0;
}


/* ---- codec ---------------------------------------------------------- */

void
trk_user_encode(ts_wbuf_t *b, const trk_user_t *u)
{
    put_head(b, REC_USER);
    ts_put_raw(b, u->salt, sizeof(u->salt));
    ts_put_u32(b, u->iterations);
    ts_put_raw(b, u->hash, sizeof(u->hash));
    ts_put_u64(b, u->created_ms);
}


int
trk_user_decode(const void *p, size_t n, trk_user_t *u)
{
    ts_rbuf_t r;

    ts_rbuf_init(&r, p, n);
    if (get_head(&r, REC_USER) != 0) {
        return -1;
    }
    ts_get_raw(&r, u->salt, sizeof(u->salt));
    u->iterations = ts_get_u32(&r);
    ts_get_raw(&r, u->hash, sizeof(u->hash));
    u->created_ms = ts_get_u64(&r);
    if (ts_rbuf_end(&r) != 0 || u->iterations == 0) {
        return -1;
    }
    return 0;
}


void
trk_group_encode(ts_wbuf_t *b, const trk_group_t *g)
{
    uint32_t i;

    put_head(b, REC_GROUP);
    ts_put_str(b, g->owner);
    ts_put_u64(b, g->next_join_seq);
    ts_put_u32(b, g->nmembers);
    for (i = 0; i < g->nmembers; i++) {
        ts_put_str(b, g->members[i].user);
        ts_put_u64(b, g->members[i].seq);
    }
    ts_put_u32(b, g->npending);
    for (i = 0; i < g->npending; i++) {
        ts_put_str(b, g->pending[i].user);
        ts_put_u64(b, g->pending[i].seq);
    }
}


static int
decode_list(ts_rbuf_t *r, uint32_t *n, trk_member_t **list, uint32_t max)
{
    uint32_t i, cnt;

    cnt = ts_get_u32(r);
    /* each entry takes at least 2 + 1 + 8 bytes: a bogus count fails here
     * before anything is allocated */
    if (r->err || cnt > max || (size_t) cnt * 11 > ts_rbuf_left(r)) {
        return -1;
    }
    *list = calloc(cnt ? cnt : 1, sizeof(trk_member_t));
    if (*list == NULL) {
        return -1;
    }
    *n = cnt;
    for (i = 0; i < cnt; i++) {
        if (ts_get_str(r, (*list)[i].user, sizeof((*list)[i].user)) != 0
            || !ts_valid_id((*list)[i].user))
        {
            return -1;
        }
        (*list)[i].seq = ts_get_u64(r);
    }
    return r->err ? -1 : 0;
}


int
trk_group_decode(const void *p, size_t n, trk_group_t *g)
{
    ts_rbuf_t r;
    uint32_t  i;
    int       owner_ok;

    memset(g, 0, sizeof(*g));
    ts_rbuf_init(&r, p, n);
    if (get_head(&r, REC_GROUP) != 0
        || ts_get_str(&r, g->owner, sizeof(g->owner)) != 0)
    {
        goto bad;
    }
    g->next_join_seq = ts_get_u64(&r);
    if (decode_list(&r, &g->nmembers, &g->members,
                    TS_GROUP_MEMBERS_MAX_N) != 0
        || decode_list(&r, &g->npending, &g->pending,
                       TS_GROUP_PENDING_MAX_N) != 0
        || ts_rbuf_end(&r) != 0 || g->nmembers == 0)
    {
        goto bad;
    }
    owner_ok = 0;
    for (i = 0; i < g->nmembers; i++) {
        if (strcmp(g->members[i].user, g->owner) == 0) {
            owner_ok = 1;
        }
    }
    if (!owner_ok) {
        goto bad;
    }
    return 0;

bad:
    trk_group_free(g);
    return -1;
}


void
trk_group_free(trk_group_t *g)
{
    free(g->members);
    free(g->pending);
    g->members = NULL;
    g->pending = NULL;
    g->nmembers = 0;
    g->npending = 0;
}


void
trk_session_encode(ts_wbuf_t *b, const trk_session_t *s)
{
    put_head(b, REC_SESSION);
    ts_put_str(b, s->user);
    ts_put_str(b, s->node_addr);
    ts_put_u64(b, s->created_ms);
    ts_put_u64(b, s->user_hlc);
    ts_put_u8(b, s->user_origin);
    ts_put_raw(b, s->fp, TS_FP_B);
}


int
trk_session_decode(const void *p, size_t n, trk_session_t *s)
{
    ts_rbuf_t r;

    ts_rbuf_init(&r, p, n);
    if (get_head(&r, REC_SESSION) != 0
        || ts_get_str(&r, s->user, sizeof(s->user)) != 0
        || ts_get_str(&r, s->node_addr, sizeof(s->node_addr)) != 0)
    {
        return -1;
    }
    s->created_ms = ts_get_u64(&r);
    s->user_hlc = ts_get_u64(&r);
    s->user_origin = ts_get_u8(&r);
    /* the node fingerprint came with issue 5: older records end here */
    memset(s->fp, 0, sizeof(s->fp));
    if (!r.err && ts_rbuf_left(&r) == TS_FP_B) {
        (void) ts_get_raw(&r, s->fp, TS_FP_B);
    }
    if (ts_rbuf_end(&r) != 0 || !ts_valid_id(s->user)) {
        return -1;
    }
    return 0;
}


/* ---- typed records -------------------------------------------------- */

int
trk_user_get(trk_store_t *st, const char *user, trk_user_t *u)
{
    char     kb[KEY_B + TS_ID_MAX_B];
    TDB_DATA v;
    int      rc;

    rc = raw_get(st, mkkey(kb, sizeof(kb), 'u', user), &v);
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
    char      kb[KEY_B + TS_ID_MAX_B];
    ts_wbuf_t b;
    int       rc;

    ts_wbuf_init(&b);
    trk_user_encode(&b, u);
    rc = raw_put(st, mkkey(kb, sizeof(kb), 'u', user), &b);
    ts_wbuf_free(&b);
    return rc;
}


int
trk_group_get(trk_store_t *st, const char *group, trk_group_t *g)
{
    char     kb[KEY_B + TS_ID_MAX_B];
    TDB_DATA v;
    int      rc;

    memset(g, 0, sizeof(*g));
    rc = raw_get(st, mkkey(kb, sizeof(kb), 'g', group), &v);
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
    char      kb[KEY_B + TS_ID_MAX_B];
    ts_wbuf_t b;
    int       rc;

    ts_wbuf_init(&b);
    trk_group_encode(&b, g);
    rc = raw_put(st, mkkey(kb, sizeof(kb), 'g', group), &b);
    ts_wbuf_free(&b);
    return rc;
}


int
trk_group_del(trk_store_t *st, const char *group)
{
    char kb[KEY_B + TS_ID_MAX_B];

    return raw_del(st, mkkey(kb, sizeof(kb), 'g', group));
}


int
trk_session_get(trk_store_t *st, const uint8_t h[32], trk_session_t *s)
{
    char     kb[KEY_B];
    TDB_DATA v;
    int      rc;

    rc = raw_get(st, hashkey(kb, h), &v);
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
    char      kb[KEY_B];
    ts_wbuf_t b;
    int       rc;

    ts_wbuf_init(&b);
    trk_session_encode(&b, s);
    rc = raw_put(st, hashkey(kb, h), &b);
    ts_wbuf_free(&b);
    return rc;
}


int
trk_session_del(trk_store_t *st, const uint8_t h[32])
{
    char kb[KEY_B];

    return raw_del(st, hashkey(kb, h));
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


/* r/<reqid>/<first 8 bytes of the request hash>: a request with the
 * same id but other bytes has another key, so it can neither read nor
 * overwrite the reply of the first one. */
static TDB_DATA
replykey(char *kb, uint64_t reqid, const uint8_t hash[TS_SHA256_B])
{
    char hex[40];

    snprintf(hex, sizeof(hex), "%016llx/%02x%02x%02x%02x%02x%02x%02x%02x",
             (unsigned long long) reqid, hash[0], hash[1], hash[2], hash[3],
             hash[4], hash[5], hash[6], hash[7]);
    return mkkey(kb, KEY_B, 'r', hex);
}


int
trk_reply_get(trk_store_t *st, uint64_t reqid, uint8_t type,
              const uint8_t hash[TS_SHA256_B], ts_wbuf_t *out)
{
    char            kb[KEY_B];
    TDB_DATA        v;
    ts_rbuf_t       r;
    const uint8_t  *p;
    uint8_t         h[TS_SHA256_B];
    uint32_t        n;
    uint8_t         t;
    int             rc;

    rc = raw_get(st, replykey(kb, reqid, hash), &v);
    if (rc != 0) {
        return rc;
    }
    ts_rbuf_init(&r, v.dptr, v.dsize);
    rc = -1;
    if (get_head(&r, REC_REPLY) == 0) {
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
    char      kb[KEY_B];
    ts_wbuf_t b;
    int       rc;

    if (len > TS_FRAME_MAX_B) {
        return -1;
    }
    ts_wbuf_init(&b);
    put_head(&b, REC_REPLY);
    ts_put_u64(&b, now_wall_ms);
    ts_put_u8(&b, type);
    ts_put_raw(&b, hash, TS_SHA256_B);
    ts_put_blob(&b, payload, (uint32_t) len);
    rc = raw_put(st, replykey(kb, reqid, hash), &b);
    ts_wbuf_free(&b);
    return rc;
}


/* ---- rules ---------------------------------------------------------- */

static ts_status_t
fail(char *msg, size_t msgsz, ts_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static ts_status_t
fail(char *msg, size_t msgsz, ts_status_t st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, msgsz, fmt, ap);
    va_end(ap);
    return st;
}

#define BAD_USER_ID  "invalid user id (use 1..64 characters of A-Z a-z 0-9 . _ -)"
#define BAD_GROUP_ID "invalid group id (use 1..64 characters of A-Z a-z 0-9 . _ -)"
#define DB_FAIL      "tracker database error"


static int
find_member(const trk_member_t *list, uint32_t n, const char *user)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(list[i].user, user) == 0) {
            return (int) i;
        }
    }
    return -1;
}


/* K1: "not a member", or the clearer conflict when user belonged to an
 * incarnation of the group that lost a concurrent creation. */
static ts_status_t
not_member(trk_store_t *st, const char *group, const char *user, char *msg,
           size_t msgsz)
{
    if (trk_group_lost(st, group, user)) {
        return fail(msg, msgsz, TS_ERR_CONFLICT, "group '%s' was created "
                    "concurrently on another tracker and lost; create a "
                    "new one", group);
    }
    return fail(msg, msgsz, TS_ERR_PERM, "not a member of '%s'", group);
}


static void
remove_at(trk_member_t *list, uint32_t *n, uint32_t i)
{
    memmove(&list[i], &list[i + 1], (*n - i - 1) * sizeof(*list));
    (*n)--;
}


ts_status_t
trk_do_create_user(trk_store_t *st, const char *user, const trk_user_t *u,
                   char *msg, size_t msgsz)
{
    trk_user_t old;
    int        rc;

    if (!ts_valid_id(user)) {
        return fail(msg, msgsz, TS_ERR_BADREQ, BAD_USER_ID);
    }
    rc = trk_user_get(st, user, &old);
    if (rc == 0) {
        return fail(msg, msgsz, TS_ERR_EXISTS, "user '%s' already exists",
                    user);
    }
    if (rc < 0 || trk_user_put(st, user, u) != 0) {
        return fail(msg, msgsz, TS_ERR_INTERNAL, DB_FAIL);
    }
    return TS_OK;
}


int
trk_password_ok(const trk_user_t *u, const char *pw)
{
    uint8_t h[TS_KDF_HASH_B];

    if (ts_pbkdf2_sha1(pw, strlen(pw), u->salt, sizeof(u->salt),
                       u->iterations, h, sizeof(h)) != 0)
    {
        return 0;
    }
    return ts_ct_equal(h, u->hash, sizeof(h));
}


ts_status_t
trk_do_create_group(trk_store_t *st, const char *user, const char *group,
                    char *msg, size_t msgsz)
{
    trk_group_t  g;
    trk_member_t m;
    int          rc;

    if (!ts_valid_id(group)) {
        return fail(msg, msgsz, TS_ERR_BADREQ, BAD_GROUP_ID);
    }
    rc = trk_group_get(st, group, &g);
    if (rc == 0) {
        trk_group_free(&g);
        return fail(msg, msgsz, TS_ERR_EXISTS, "group '%s' already exists",
                    group);
    }
    if (rc < 0) {
        return fail(msg, msgsz, TS_ERR_INTERNAL, DB_FAIL);
    }
    memset(&g, 0, sizeof(g));
    memset(&m, 0, sizeof(m));
    snprintf(g.owner, sizeof(g.owner), "%s", user);
    snprintf(m.user, sizeof(m.user), "%s", user);
    m.seq = 1;
    g.next_join_seq = 2;
    g.nmembers = 1;
    g.members = &m;
    if (trk_group_put(st, group, &g) != 0) {
        return fail(msg, msgsz, TS_ERR_INTERNAL, DB_FAIL);
    }
    return TS_OK;
}


/* Loads a group for a rule; on failure fills msg. */
static ts_status_t
load_group(trk_store_t *st, const char *group, trk_group_t *g, char *msg,
           size_t msgsz)
{
    int rc;

    if (!ts_valid_id(group)) {
        return fail(msg, msgsz, TS_ERR_BADREQ, BAD_GROUP_ID);
    }
    rc = trk_group_get(st, group, g);
    if (rc == 1) {
        return fail(msg, msgsz, TS_ERR_NOTFOUND, "no such group '%s'",
                    group);
    }
    if (rc < 0) {
        return fail(msg, msgsz, TS_ERR_INTERNAL, DB_FAIL);
    }
    return TS_OK;
}


ts_status_t
trk_do_join_group(trk_store_t *st, const char *user, const char *group,
                  char *msg, size_t msgsz)
{
    trk_group_t   g;
    trk_member_t *np;
    ts_status_t   s;

    s = load_group(st, group, &g, msg, msgsz);
    if (s != TS_OK) {
        return s;
    }
    if (find_member(g.members, g.nmembers, user) >= 0) {
        s = fail(msg, msgsz, TS_ERR_STATE, "already a member of '%s'", group);
        goto done;
    }
    if (find_member(g.pending, g.npending, user) >= 0) {
        s = fail(msg, msgsz, TS_ERR_STATE,
                 "a request to join '%s' is already pending", group);
        goto done;
    }
    if (g.npending >= TS_GROUP_PENDING_MAX_N) {
        s = fail(msg, msgsz, TS_ERR_LIMIT,
                 "too many pending requests for '%s'", group);
        goto done;
    }
    np = realloc(g.pending, (g.npending + 1) * sizeof(*np));
    if (np == NULL) {
        s = fail(msg, msgsz, TS_ERR_INTERNAL, "out of memory");
        goto done;
    }
    g.pending = np;
    memset(&np[g.npending], 0, sizeof(*np));
    snprintf(np[g.npending].user, sizeof(np->user), "%s", user);
    np[g.npending].seq = g.next_join_seq++;
    g.npending++;
    if (trk_group_put(st, group, &g) != 0) {
        s = fail(msg, msgsz, TS_ERR_INTERNAL, DB_FAIL);
    }

done:
    trk_group_free(&g);
    return s;
}


ts_status_t
trk_do_leave_group(trk_store_t *st, const char *user, const char *group,
                   char *new_owner, size_t nosz, char *msg, size_t msgsz)
{
    trk_group_t g;
    ts_status_t s;
    int         i;

    snprintf(new_owner, nosz, "%s", "");
    s = load_group(st, group, &g, msg, msgsz);
    if (s != TS_OK) {
        return s;
    }
    i = find_member(g.members, g.nmembers, user);
    if (i < 0) {
        s = not_member(st, group, user, msg, msgsz);
        goto done;
    }
    remove_at(g.members, &g.nmembers, (uint32_t) i);
    if (g.nmembers == 0) {
        /* last member: the group and its pending requests go */
        /* G1: a dissolved group's files go with it */
        if (trk_group_del(st, group) != 0
            || trk_files_group_gone(st, group) != 0)
        {
            s = fail(msg, msgsz, TS_ERR_INTERNAL, DB_FAIL);
            goto done;
        }
        snprintf(new_owner, nosz, "%s", "-");
        goto done;
    }
    if (strcmp(g.owner, user) == 0) {
        /* members are kept in join order: the next one inherits */
        snprintf(g.owner, sizeof(g.owner), "%s", g.members[0].user);
        snprintf(new_owner, nosz, "%s", g.owner);
    }
    /* G1: the leaver stops being a source of the group's files */
    if (trk_group_put(st, group, &g) != 0
        || trk_files_member_left(st, group, user) != 0)
    {
        s = fail(msg, msgsz, TS_ERR_INTERNAL, DB_FAIL);
    }

done:
    trk_group_free(&g);
    return s;
}


/* Group commands that only the owner may run. */
static ts_status_t
load_owned(trk_store_t *st, const char *user, const char *group,
           trk_group_t *g, char *msg, size_t msgsz)
{
    ts_status_t s;

    s = load_group(st, group, g, msg, msgsz);
    if (s != TS_OK) {
        return s;
    }
    if (find_member(g->members, g->nmembers, user) < 0) {
        trk_group_free(g);
        return not_member(st, group, user, msg, msgsz);
    }
    if (strcmp(g->owner, user) != 0) {
        trk_group_free(g);
        return fail(msg, msgsz, TS_ERR_PERM,
                    "only the owner of '%s' can do that", group);
    }
    return TS_OK;
}


ts_status_t
trk_do_list_requests(trk_store_t *st, const char *user, const char *group,
                     ts_wbuf_t *body, char *msg, size_t msgsz)
{
    trk_group_t g;
    ts_status_t s;
    uint32_t    i;

    s = load_owned(st, user, group, &g, msg, msgsz);
    if (s != TS_OK) {
        return s;
    }
    ts_put_u32(body, g.npending);
    for (i = 0; i < g.npending; i++) {
        ts_put_str(body, g.pending[i].user);
    }
    trk_group_free(&g);
    return TS_OK;
}


ts_status_t
trk_do_accept(trk_store_t *st, const char *owner, const char *group,
              const char *user, int accept, char *msg, size_t msgsz)
{
    trk_group_t   g;
    trk_member_t *nm;
    ts_status_t   s;
    int           i;

    if (!ts_valid_id(user)) {
        return fail(msg, msgsz, TS_ERR_BADREQ, BAD_USER_ID);
    }
    s = load_owned(st, owner, group, &g, msg, msgsz);
    if (s != TS_OK) {
        return s;
    }
    i = find_member(g.pending, g.npending, user);
    if (i < 0) {
        s = fail(msg, msgsz, TS_ERR_NOTFOUND,
                 "no pending request from '%s' for '%s'", user, group);
        goto done;
    }
    remove_at(g.pending, &g.npending, (uint32_t) i);
    if (accept) {
        if (g.nmembers >= TS_GROUP_MEMBERS_MAX_N) {
            s = fail(msg, msgsz, TS_ERR_LIMIT, "group '%s' is full", group);
            goto done;
        }
        nm = realloc(g.members, (g.nmembers + 1) * sizeof(*nm));
        if (nm == NULL) {
            s = fail(msg, msgsz, TS_ERR_INTERNAL, "out of memory");
            goto done;
        }
        g.members = nm;
        memset(&nm[g.nmembers], 0, sizeof(*nm));
        snprintf(nm[g.nmembers].user, sizeof(nm->user), "%s", user);
        nm[g.nmembers].seq = g.next_join_seq++;
        g.nmembers++;
    }
    if (trk_group_put(st, group, &g) != 0) {
        s = fail(msg, msgsz, TS_ERR_INTERNAL, DB_FAIL);
    }

done:
    trk_group_free(&g);
    return s;
}


/* ---- listings and maintenance --------------------------------------- */

/* K1: the application value of a replicated record met in a traverse:
 * 0 (out filled), 1 no live value, -1 corrupt. */
static int
walk_view(TDB_DATA k, TDB_DATA v, ts_wbuf_t *out)
{
    trk_rec_t r;
    int       rc;

    if (trk_rec_decode(v.dptr, v.dsize, &r) != 0) {
        return -1;
    }
    rc = trk_rec_view(&r, k.dptr, k.dsize, out);
    trk_rec_free(&r);
    return rc;
}


typedef struct {
    char     name[TS_ID_MAX_B + 1];
    char     owner[TS_ID_MAX_B + 1];
    uint32_t members;
} grp_row_t;

typedef struct {
    const char *member_of;
    grp_row_t  *rows;
    size_t      n;
    size_t      cap;
    int         err;
} grp_walk_t;


static int
group_walk(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    grp_walk_t  *w = arg;
    trk_group_t  g;
    grp_row_t   *nr;
    size_t       nl;

    (void) tdb;
    if (k.dsize < 3 || k.dptr[0] != 'g' || k.dptr[1] != '/') {
        return 0;
    }
    nl = k.dsize - 2;
    if (nl > TS_ID_MAX_B) {
        return 0;
    }
    {
        ts_wbuf_t b;
        int       rc;

        ts_wbuf_init(&b);
        rc = walk_view(k, v, &b);
        if (rc == 0) {
            rc = trk_group_decode(b.data, b.len, &g);
        }
        ts_wbuf_free(&b);
        if (rc == 1) {
            return 0;               /* dissolved: a tombstone */
        }
        if (rc != 0) {
            ts_warn("skipping a corrupt group record");
            return 0;
        }
    }
    if (w->member_of != NULL
        && find_member(g.members, g.nmembers, w->member_of) < 0)
    {
        trk_group_free(&g);
        return 0;
    }
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 64;
        nr = realloc(w->rows, w->cap * sizeof(*nr));
        if (nr == NULL) {
            w->err = 1;
            trk_group_free(&g);
            return -1;
        }
        w->rows = nr;
    }
    memcpy(w->rows[w->n].name, k.dptr + 2, nl);
    w->rows[w->n].name[nl] = '\0';
    snprintf(w->rows[w->n].owner, sizeof(w->rows[0].owner), "%s", g.owner);
    w->rows[w->n].members = g.nmembers;
    w->n++;
    trk_group_free(&g);
    return 0;
}


static int
row_cmp(const void *a, const void *b)
{
    return strcmp(((const grp_row_t *) a)->name,
                  ((const grp_row_t *) b)->name);
}


ts_status_t
trk_do_list_groups(trk_store_t *st, const char *member_of, ts_wbuf_t *body,
                   char *msg, size_t msgsz)
{
    grp_walk_t w;
    size_t     i;
    int        rc;

    memset(&w, 0, sizeof(w));
    w.member_of = member_of;
    if (st->in_txn) {
        rc = tdb_traverse(st->tdb, group_walk, &w);
    } else {
        /* one read lock over the whole file instead of one fcntl lock per
         * hash chain (thousands of syscalls per listing) */
        if (tdb_lockall_read(st->tdb) != 0) {
            return fail(msg, msgsz, TS_ERR_INTERNAL, DB_FAIL);
        }
        rc = tdb_traverse_read(st->tdb, group_walk, &w);
        tdb_unlockall_read(st->tdb);
    }
    if (rc < 0 || w.err) {
        free(w.rows);
        return fail(msg, msgsz, TS_ERR_INTERNAL, DB_FAIL);
    }
    if (w.n > 1) {
        qsort(w.rows, w.n, sizeof(*w.rows), row_cmp);
    }
    ts_put_u32(body, (uint32_t) w.n);
    for (i = 0; i < w.n; i++) {
        ts_put_str(body, w.rows[i].name);
        ts_put_str(body, w.rows[i].owner);
        ts_put_u32(body, w.rows[i].members);
    }
    free(w.rows);
    return TS_OK;
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
    rc = walk_view(k, v, &b);
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
    return tdb_traverse_read(st->tdb, count_walk, c) < 0 ? -1 : 0;
}


typedef struct {
    uint64_t   cutoff;
    TDB_DATA  *keys;
    size_t     n;
    size_t     cap;
    int        err;
} old_walk_t;


static int
old_reply_walk(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    old_walk_t *w = arg;
    ts_rbuf_t   r;
    uint64_t    stored;
    TDB_DATA   *nk;

    (void) tdb;
    if (k.dsize < 3 || k.dptr[0] != 'r' || k.dptr[1] != '/') {
        return 0;
    }
    {
        ts_wbuf_t b;
        int       rc;

        ts_wbuf_init(&b);
        rc = walk_view(k, v, &b);
        if (rc != 0) {
            ts_wbuf_free(&b);
            return 0;               /* already a tombstone (or corrupt) */
        }
        ts_rbuf_init(&r, b.data, b.len);
        stored = 0;
        if (get_head(&r, REC_REPLY) == 0) {
            stored = ts_get_u64(&r);
        }
        ts_wbuf_free(&b);
    }
    /* a reply record that does not decode is useless: expire it too */
    if (!r.err && stored >= w->cutoff) {
        return 0;
    }
    if (w->n == w->cap || w->n >= 100000) {
        if (w->n >= 100000) {
            return -1;      /* enough for one pass */
        }
        w->cap = w->cap ? w->cap * 2 : 64;
        nk = realloc(w->keys, w->cap * sizeof(*nk));
        if (nk == NULL) {
            w->err = 1;
            return -1;
        }
        w->keys = nk;
    }
    w->keys[w->n].dptr = malloc(k.dsize);
    if (w->keys[w->n].dptr == NULL) {
        w->err = 1;
        return -1;
    }
    memcpy(w->keys[w->n].dptr, k.dptr, k.dsize);
    w->keys[w->n].dsize = k.dsize;
    w->n++;
    return 0;
}


int
trk_store_expire_replies(trk_store_t *st, uint64_t cutoff_wall_ms)
{
    old_walk_t w;
    size_t     i, j = 0;
    int        rc;

    memset(&w, 0, sizeof(w));
    w.cutoff = cutoff_wall_ms;
    tdb_traverse_read(st->tdb, old_reply_walk, &w);
    rc = (int) w.n;
    /* bounded transactions: each one is one op, which must fit a
     * SYNC_OPS frame (TS_TRK_EXPIRE_CHUNK_N keys at most) */
    for (i = 0; i < w.n && rc >= 0; i += j) {
        if (trk_store_begin(st) != 0) {
            rc = -1;
            break;
        }
        for (j = 0; j < TS_TRK_EXPIRE_CHUNK_N && i + j < w.n; j++) {
            (void) raw_del(st, w.keys[i + j]);
        }
        if (trk_store_commit(st) != 0) {
            rc = -1;
        }
    }
    for (i = 0; i < w.n; i++) {
        free(w.keys[i].dptr);
    }
    free(w.keys);
    return rc;
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
    rc = walk_view(k, v, &b);
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
    return tdb_traverse_read(st->tdb, sess_walk, &w) < 0 ? -1 : 0;
}
