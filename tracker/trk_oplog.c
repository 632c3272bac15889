/*
 * trk_oplog.c -- the op log, the stored version vector, epoch and HLC
 * mark (the clock itself and the VV codec are in trk_vv.c).
 *
 * Purpose: turn one committed transaction into one replicable op
 * (o/<origin>/<seq>), apply ops received from peers exactly once and in
 * per-origin order, find the ops a peer lacks, compact what every tracker
 * has (the state digest is in trk_digest.c).  Works on a
 * plain tdb handle: the caller gives the deltas of a local op and merges
 * the keys of a received one through callbacks (trk_apply.c does both
 * for the tracker store), so nothing here calls up into the store.
 *
 * Locking: writers run inside the caller's tdb transaction, so seq
 * allocation and the VV bump are serialised between worker processes by
 * tdb's transaction lock.  The HLC word lives in the tracker shm and is
 * advanced with compare-and-swap only.
 *
 * Crash behaviour: an op, its effects and the VV move together in one
 * transaction; a crash leaves either all or none.  Compaction deletes in
 * its own transaction and records the floor first, so a peer never gets
 * a delta with a hole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tdb.h>

#include "ts_clock.h"
#include "ts_crypto.h"
#include "ts_log.h"
#include "ts_net.h"
#include "trk_oplog.h"

#define OP_MAGIC    'O'
#define OP_VERSION  1
#define NEWSEG_KEY  "x/newseg"   /* next local op starts a new segment */


/* ---- small local records --------------------------------------------- */

static TDB_DATA
key_of(char *buf, size_t sz, const char *prefix, int o)
{
    TDB_DATA k;
    int      n;

    n = snprintf(buf, sz, "%s%02x", prefix, o);
    k.dptr = (unsigned char *) buf;
    k.dsize = n > 0 && (size_t) n < sz ? (size_t) n : 0;
    return k;
}


static int
u64_get(struct tdb_context *tdb, TDB_DATA k, uint64_t *v)
{
    TDB_DATA  d;
    ts_rbuf_t r;

    *v = 0;
    d = tdb_fetch(tdb, k);
    if (d.dptr == NULL) {
        return tdb_error(tdb) == TDB_ERR_NOEXIST ? 1 : -1;
    }
    ts_rbuf_init(&r, d.dptr, d.dsize);
    *v = ts_get_u64(&r);
    free(d.dptr);
    return ts_rbuf_end(&r) == 0 ? 0 : -1;
}


static int
u64_put(struct tdb_context *tdb, TDB_DATA k, uint64_t v)
{
    uint8_t  b[8];
    TDB_DATA d;
    int      i;

    for (i = 0; i < 8; i++) {
        b[i] = (uint8_t) (v >> (56 - 8 * i));
    }
    d.dptr = b;
    d.dsize = 8;
    return tdb_store(tdb, k, d, TDB_REPLACE) == 0 ? 0 : -1;
}


static int
vv_get1(struct tdb_context *tdb, int o, uint64_t *v)
{
    char kb[32];

    return u64_get(tdb, key_of(kb, sizeof(kb), "v/", o), v)
           < 0 ? -1 : 0;
}


static int
vv_put1(struct tdb_context *tdb, int o, uint64_t v)
{
    char kb[32];

    return u64_put(tdb, key_of(kb, sizeof(kb), "v/", o), v);
}


int
trk_log_vv_load(struct tdb_context *tdb, trk_vv_t *vv)
{
    int o;

    memset(vv, 0, sizeof(*vv));
    for (o = 1; o < TRK_ORIGINS_N; o++) {
        if (vv_get1(tdb, o, &vv->seq[o]) != 0) {
            return -1;
        }
    }
    return 0;
}



uint64_t
trk_log_epoch_get(struct tdb_context *tdb, int create)
{
    TDB_DATA            k, f;
    uint64_t            e = 0;

    k.dptr = (unsigned char *) "x/epoch";
    k.dsize = 7;
    if (u64_get(tdb, k, &e) == 0 && e != 0) {
        return e;
    }
    if (!create) {
        return 0;
    }
    e = ts_random_u64() | 1;
    if (tdb_transaction_start(tdb) != 0) {
        return 0;
    }
    f.dptr = (unsigned char *) "x/fresh";
    f.dsize = 7;
    /* a new directory takes one full snapshot from a peer (it may hold
     * older ops of its own id that a seq comparison would skip) */
    if (u64_put(tdb, k, e) != 0 || u64_put(tdb, f, 1) != 0) {
        tdb_transaction_cancel(tdb);
        return 0;
    }
    if (tdb_transaction_commit(tdb) != 0) {
        return 0;               /* tdb cancels a failed commit */
    }
    return e;
}


int
trk_log_fresh(struct tdb_context *tdb, int clear)
{
    TDB_DATA k;

    k.dptr = (unsigned char *) "x/fresh";
    k.dsize = 7;
    if (clear) {
        (void) tdb_delete(tdb, k);
        return 0;
    }
    return tdb_exists(tdb, k) ? 1 : 0;
}


static int
hlc_raise(struct tdb_context *tdb, uint64_t hlc)
{
    TDB_DATA k;
    uint64_t v = 0;

    k.dptr = (unsigned char *) "x/hlc";
    k.dsize = 5;
    if (u64_get(tdb, k, &v) < 0) {
        v = 0;
    }
    return hlc > v ? u64_put(tdb, k, hlc) : 0;
}


int
trk_log_hlc_persist(struct tdb_context *tdb, uint64_t hlc)
{
    return hlc_raise(tdb, hlc);
}


uint64_t
trk_log_hlc_saved(struct tdb_context *tdb)
{
    TDB_DATA k;
    uint64_t v = 0;

    k.dptr = (unsigned char *) "x/hlc";
    k.dsize = 5;
    (void) u64_get(tdb, k, &v);
    return v;
}


/* Segment starts of an origin (first seqs of its epochs), sorted. */
static int
segs_get(struct tdb_context *tdb, int o, uint64_t *v, uint32_t *n)
{
    char      kb[32];
    TDB_DATA  d;
    ts_rbuf_t r;
    uint32_t  i, cnt;

    *n = 0;
    d = tdb_fetch(tdb, key_of(kb, sizeof(kb), "x/seg/", o));
    if (d.dptr == NULL) {
        return 0;
    }
    ts_rbuf_init(&r, d.dptr, d.dsize);
    cnt = ts_get_u32(&r);
    if (cnt > TS_TRK_OPLOG_SEGS_MAX_N || (size_t) cnt * 8 != ts_rbuf_left(&r)) {
        free(d.dptr);
        return -1;
    }
    for (i = 0; i < cnt; i++) {
        v[i] = ts_get_u64(&r);
    }
    *n = cnt;
    free(d.dptr);
    return 0;
}


static int
segs_add(struct tdb_context *tdb, int o, uint64_t start)
{
    char      kb[32];
    uint64_t  v[TS_TRK_OPLOG_SEGS_MAX_N];
    uint32_t  n, i;
    ts_wbuf_t b;
    TDB_DATA  d;
    int       rc;

    if (segs_get(tdb, o, v, &n) != 0) {
        n = 0;
    }
    for (i = 0; i < n; i++) {
        if (v[i] == start) {
            return 0;
        }
    }
    if (n == TS_TRK_OPLOG_SEGS_MAX_N) {
        memmove(v, v + 1, (n - 1) * sizeof(*v));
        n--;
    }
    for (i = n; i > 0 && v[i - 1] > start; i--) {
        v[i] = v[i - 1];
    }
    v[i] = start;
    n++;
    ts_wbuf_init(&b);
    ts_put_u32(&b, n);
    for (i = 0; i < n; i++) {
        ts_put_u64(&b, v[i]);
    }
    d.dptr = b.data;
    d.dsize = b.len;
    rc = b.err ? -1 : tdb_store(tdb, key_of(kb, sizeof(kb), "x/seg/", o), d, TDB_REPLACE);
    ts_wbuf_free(&b);
    return rc == 0 ? 0 : -1;
}


static uint64_t
floor_get(struct tdb_context *tdb, int o)
{
    char     kb[32];
    uint64_t v = 0;

    (void) u64_get(tdb, key_of(kb, sizeof(kb), "x/floor/", o),
                   &v);
    return v;
}


static int
floor_put(struct tdb_context *tdb, int o, uint64_t v)
{
    char kb[32];

    return u64_put(tdb, key_of(kb, sizeof(kb), "x/floor/", o),
                   v);
}


static TDB_DATA
opkey(char *kb, size_t sz, int o, uint64_t seq)
{
    TDB_DATA k;
    int      n;

    n = snprintf(kb, sz, "o/%02x/%016llx", o, (unsigned long long) seq);
    k.dptr = (unsigned char *) kb;
    k.dsize = n > 0 && (size_t) n < sz ? (size_t) n : 0;
    return k;
}


/* ---- append ------------------------------------------------------------ */

int
trk_log_append(struct tdb_context *tdb, int o, trk_stamp_t s,
               uint64_t reqid, char **keys, size_t nkeys,
               trk_log_delta_fn delta, void *arg)
{
    uint64_t            cur, seq, prev;
    ts_wbuf_t           b, e;
    trk_rec_t           d;
    size_t              i;
    char                kb[64];
    TDB_DATA            k, v, nk;
    int                 rc = -1;

    if (o < 1 || o >= TRK_ORIGINS_N || vv_get1(tdb, o, &cur) != 0) {
        return -1;
    }
    nk.dptr = (unsigned char *) NEWSEG_KEY;
    nk.dsize = sizeof(NEWSEG_KEY) - 1;
    if (cur == 0 || tdb_exists(tdb, nk)) {
        /* a new data directory (or one that adopted its own origin's
         * seq from a snapshot): start a new segment above any seq an
         * earlier directory of this tracker id can have used */
        seq = (uint64_t) ts_wall_ms() << 16;
        if (seq <= cur) {
            seq = cur + 1;
        }
        prev = 0;
        if (segs_add(tdb, o, seq) != 0) {
            return -1;
        }
        if (tdb_exists(tdb, nk) && tdb_delete(tdb, nk) != 0) {
            return -1;
        }
    } else {
        seq = cur + 1;
        prev = cur;
    }
    ts_wbuf_init(&b);
    ts_wbuf_init(&e);
    ts_put_u8(&b, OP_MAGIC);
    ts_put_u8(&b, OP_VERSION);
    ts_put_u8(&b, (uint8_t) o);
    ts_put_u64(&b, seq);
    ts_put_u64(&b, prev);
    ts_put_u64(&b, s.hlc);
    ts_put_u64(&b, reqid);
    ts_put_u32(&b, (uint32_t) nkeys);
    for (i = 0; i < nkeys; i++) {
        if (delta(arg, keys[i], s, &d) != 0) {
            goto done;
        }
        ts_wbuf_reset(&e);
        trk_rec_encode(&e, &d);
        ts_put_blob(&b, keys[i], (uint32_t) strlen(keys[i]));
        ts_put_blob(&b, e.data, (uint32_t) e.len);
        trk_rec_free(&d);
    }
    if (b.err || e.err) {
        goto done;
    }
    k = opkey(kb, sizeof(kb), o, seq);
    v.dptr = b.data;
    v.dsize = b.len;
    if (tdb_store(tdb, k, v, TDB_REPLACE) != 0 || vv_put1(tdb, o, seq) != 0) {
        goto done;
    }
    if (hlc_raise(tdb, s.hlc) != 0) {
        goto done;
    }
    rc = 0;

done:
    ts_wbuf_free(&b);
    ts_wbuf_free(&e);
    return rc;
}


/* ---- apply ------------------------------------------------------------- */

int
trk_log_apply(struct tdb_context *tdb, const uint8_t *op, size_t n,
              uint64_t *maxhlc, trk_log_merge_fn merge, void *arg)
{
    ts_rbuf_t           r;
    uint8_t             o;
    uint64_t            seq, prev, hlc, cur;
    uint32_t            cnt, i, kl, el;
    const uint8_t      *k, *e;
    trk_rec_t           rec;
    trk_stamp_t         mx;
    char                kb[64];
    TDB_DATA            key, val;

    ts_rbuf_init(&r, op, n);
    if (ts_get_u8(&r) != OP_MAGIC || ts_get_u8(&r) != OP_VERSION) {
        return -1;
    }
    o = ts_get_u8(&r);
    seq = ts_get_u64(&r);
    prev = ts_get_u64(&r);
    hlc = ts_get_u64(&r);
    (void) ts_get_u64(&r);
    cnt = ts_get_u32(&r);
    if (r.err || o == 0 || o >= TRK_ORIGINS_N || seq == 0
        || (size_t) cnt * 8 > ts_rbuf_left(&r))
    {
        return -1;
    }
    if (vv_get1(tdb, o, &cur) != 0) {
        return -1;
    }
    if (seq <= cur) {
        return 0;
    }
    if (prev != cur && prev != 0) {
        return 2;
    }
    if (hlc > *maxhlc) {
        *maxhlc = hlc;
    }
    for (i = 0; i < cnt; i++) {
        k = ts_get_blob(&r, &kl, TS_TRK_OP_KEY_MAX_B);
        e = ts_get_blob(&r, &el, TS_FRAME_MAX_B);
        if (r.err || k == NULL || e == NULL || !trk_key_replicated(k, kl)
            || trk_rec_decode(e, el, &rec) != 0)
        {
            return -1;
        }
        mx = trk_rec_max_stamp(&rec);
        if (mx.hlc > *maxhlc) {
            *maxhlc = mx.hlc;
        }
        if (merge(arg, k, kl, &rec) != 0) {
            trk_rec_free(&rec);
            return -1;
        }
        trk_rec_free(&rec);
    }
    if (ts_rbuf_end(&r) != 0) {
        return -1;
    }
    /* kept so that this tracker can relay it */
    key = opkey(kb, sizeof(kb), o, seq);
    val.dptr = (unsigned char *) op;
    val.dsize = n;
    if (tdb_store(tdb, key, val, TDB_REPLACE) != 0 || vv_put1(tdb, o, seq) != 0
        || (prev == 0 && segs_add(tdb, o, seq) != 0)
        || hlc_raise(tdb, *maxhlc) != 0)
    {
        return -1;
    }
    return 1;
}


int
trk_oplog_each_key(const uint8_t *op, size_t n,
                   void (*fn)(const uint8_t *k, uint32_t kl, void *arg),
                   void *arg)
{
    ts_rbuf_t      r;
    uint32_t       cnt, i, kl, el;
    const uint8_t *k, *e;

    ts_rbuf_init(&r, op, n);
    if (ts_get_u8(&r) != OP_MAGIC || ts_get_u8(&r) != OP_VERSION) {
        return -1;
    }
    (void) ts_get_u8(&r);
    (void) ts_get_u64(&r);
    (void) ts_get_u64(&r);
    (void) ts_get_u64(&r);
    (void) ts_get_u64(&r);
    cnt = ts_get_u32(&r);
    if (r.err || (size_t) cnt * 8 > ts_rbuf_left(&r)) {
        return -1;
    }
    for (i = 0; i < cnt; i++) {
        k = ts_get_blob(&r, &kl, TS_TRK_OP_KEY_MAX_B);
        e = ts_get_blob(&r, &el, TS_FRAME_MAX_B);
        if (k == NULL || e == NULL) {
            return -1;
        }
        fn(k, kl, arg);
    }
    return 0;
}


int
trk_log_get(struct tdb_context *tdb, int origin, uint64_t seq,
            ts_wbuf_t *out)
{
    char                kb[64];
    TDB_DATA            d;

    d = tdb_fetch(tdb, opkey(kb, sizeof(kb), origin, seq));
    if (d.dptr == NULL) {
        return tdb_error(tdb) == TDB_ERR_NOEXIST ? 1 : -1;
    }
    ts_wbuf_reset(out);
    ts_put_raw(out, d.dptr, d.dsize);
    free(d.dptr);
    return out->err ? -1 : 0;
}


int
trk_log_next(struct tdb_context *tdb, int origin, uint64_t after,
             uint64_t *seq)
{
    char                kb[64];
    uint64_t            segs[TS_TRK_OPLOG_SEGS_MAX_N], mine;
    uint32_t            n, i;

    if (vv_get1(tdb, origin, &mine) != 0 || mine <= after) {
        return 1;
    }
    if (after < floor_get(tdb, origin)) {
        return 2;
    }
    if (tdb_exists(tdb, opkey(kb, sizeof(kb), origin, after + 1))) {
        *seq = after + 1;
        return 0;
    }
    if (segs_get(tdb, origin, segs, &n) != 0) {
        return 2;
    }
    for (i = 0; i < n; i++) {
        if (segs[i] > after) {
            if (tdb_exists(tdb, opkey(kb, sizeof(kb), origin, segs[i]))) {
                *seq = segs[i];
                return 0;
            }
            break;
        }
    }
    return 2;
}


int
trk_log_adopt(struct tdb_context *tdb, int self, const trk_vv_t *vv)
{
    uint64_t            cur;
    TDB_DATA            nk;
    int                 o;

    nk.dptr = (unsigned char *) NEWSEG_KEY;
    nk.dsize = sizeof(NEWSEG_KEY) - 1;
    for (o = 1; o < TRK_ORIGINS_N; o++) {
        if (vv_get1(tdb, o, &cur) != 0) {
            return -1;
        }
        if (vv->seq[o] > cur) {
            /* the ops up to there are in the state, not in this log */
            if (vv_put1(tdb, o, vv->seq[o]) != 0
                || floor_put(tdb, o, vv->seq[o]) != 0)
            {
                return -1;
            }
            /* our own origin's old seqs came from an earlier directory:
             * ops of it that this snapshot lacks may exist elsewhere, so
             * the next local op must not continue that sequence */
            if (o == self && u64_put(tdb, nk, 1) != 0) {
                return -1;
            }
        }
    }
    return 0;
}


/* ---- compaction and counting ------------------------------------------- */

typedef struct {
    const trk_vv_t *upto;
    TDB_DATA       *keys;
    size_t          n;
    size_t          cap;
    uint64_t        top[TRK_ORIGINS_N];
    long            count;
} op_walk_t;


static int
parse_opkey(TDB_DATA k, int *o, uint64_t *seq)
{
    char buf[32];
    unsigned int oo;
    unsigned long long s;

    if (k.dsize != 2 + 2 + 1 + 16 || k.dptr[0] != 'o' || k.dptr[1] != '/') {
        return -1;
    }
    memcpy(buf, k.dptr, k.dsize);
    buf[k.dsize] = '\0';
    if (sscanf(buf, "o/%2x/%16llx", &oo, &s) != 2 || oo == 0
        || oo >= TRK_ORIGINS_N)
    {
        return -1;
    }
    *o = (int) oo;
    *seq = s;
    return 0;
}


static int
op_walk(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    op_walk_t *w = arg;
    TDB_DATA  *nk;
    int        o;
    uint64_t   seq;

    (void) tdb;
    (void) v;
    if (parse_opkey(k, &o, &seq) != 0) {
        return 0;
    }
    w->count++;
    if (w->upto == NULL || seq > w->upto->seq[o]) {
        return 0;
    }
    if (w->n == w->cap) {
        if (w->n >= TS_TRK_COMPACT_PASS_MAX_N) {
            return -1;
        }
        w->cap = w->cap ? w->cap * 2 : 256;
        nk = realloc(w->keys, w->cap * sizeof(*nk));
        if (nk == NULL) {
            return -1;
        }
        w->keys = nk;
    }
    w->keys[w->n].dptr = malloc(k.dsize);
    if (w->keys[w->n].dptr == NULL) {
        return -1;
    }
    memcpy(w->keys[w->n].dptr, k.dptr, k.dsize);
    w->keys[w->n].dsize = k.dsize;
    w->n++;
    if (seq > w->top[o]) {
        w->top[o] = seq;
    }
    return 0;
}


int
trk_log_compact(struct tdb_context *tdb, const trk_vv_t *upto)
{
    op_walk_t           w;
    size_t              i;
    int                 o, rc;

    memset(&w, 0, sizeof(w));
    w.upto = upto;
    tdb_traverse_read(tdb, op_walk, &w);
    rc = (int) w.n;
    if (w.n > 0) {
        if (tdb_transaction_start(tdb) != 0) {
            rc = -1;
        } else {
            for (o = 1; o < TRK_ORIGINS_N; o++) {
                if (w.top[o] > floor_get(tdb, o)) {
                    (void) floor_put(tdb, o, w.top[o]);
                }
            }
            for (i = 0; i < w.n; i++) {
                (void) tdb_delete(tdb, w.keys[i]);
            }
            if (tdb_transaction_commit(tdb) != 0) {
                rc = -1;
            }
        }
    }
    for (i = 0; i < w.n; i++) {
        free(w.keys[i].dptr);
    }
    free(w.keys);
    return rc;
}


long
trk_log_count(struct tdb_context *tdb)
{
    op_walk_t w;

    memset(&w, 0, sizeof(w));
    if (tdb_traverse_read(tdb, op_walk, &w) < 0) {
        return -1;
    }
    return w.count;
}




/* ---- compaction and counting by seq range (no traverse) ---------------- */

/* Deletes the ops o/<o>/<seq> for from[o] < seq <= upto[o] that exist,
 * probing each key: for a compaction that knows every op at or below
 * from[] is gone already.  Ranges wider than TS_TRK_COMPACT_PASS_MAX_N
 * are left to the traverse (returns -2 without writing).  How many, or
 * -1. */
int
trk_log_compact_range(struct tdb_context *tdb, const trk_vv_t *from,
                      const trk_vv_t *upto)
{
    char     kb[32];
    uint64_t s;
    int      o, n = 0;

    for (o = 1; o < TRK_ORIGINS_N; o++) {
        if (upto->seq[o] > from->seq[o]
            && upto->seq[o] - from->seq[o] > TS_TRK_COMPACT_PASS_MAX_N)
        {
            return -2;
        }
    }
    if (tdb_transaction_start(tdb) != 0) {
        return -1;
    }
    for (o = 1; o < TRK_ORIGINS_N; o++) {
        if (upto->seq[o] <= from->seq[o]) {
            continue;
        }
        if (upto->seq[o] > floor_get(tdb, o)) {
            (void) floor_put(tdb, o, upto->seq[o]);
        }
        for (s = from->seq[o] + 1; s <= upto->seq[o]; s++) {
            if (tdb_delete(tdb, opkey(kb, sizeof(kb), o, s)) == 0) {
                n++;
            }
        }
    }
    return tdb_transaction_commit(tdb) == 0 ? n : -1;
}


/* Op records of each origin's current run: seqs are dense from the
 * start of the origin's last segment (x/seg/) to its VV entry, and those
 * at or below the compaction floor are gone, so the count is arithmetic;
 * ops of an older segment not compacted yet are not counted.  Without a
 * known segment the keys are probed down from vv (at most
 * TS_TRK_COMPACT_PASS_MAX_N). */
long
trk_log_count_kept(struct tdb_context *tdb, const trk_vv_t *vv)
{
    char     kb[32];
    uint64_t s, f, segs[TS_TRK_OPLOG_SEGS_MAX_N];
    uint32_t nseg;
    long     n = 0, k;
    int      o;

    for (o = 1; o < TRK_ORIGINS_N; o++) {
        f = floor_get(tdb, o);
        if (vv->seq[o] <= f) {
            continue;
        }
        if (segs_get(tdb, o, segs, &nseg) == 0 && nseg > 0
            && segs[nseg - 1] <= vv->seq[o])
        {
            s = segs[nseg - 1] - 1 > f ? segs[nseg - 1] - 1 : f;
            n += (long) (vv->seq[o] - s);
            continue;
        }
        for (s = vv->seq[o], k = 0; s > f && k < TS_TRK_COMPACT_PASS_MAX_N;
             s--, k++)
        {
            if (!tdb_exists(tdb, opkey(kb, sizeof(kb), o, s))) {
                break;
            }
            n++;
        }
    }
    return n;
}
