/*
 * trk_gc.c -- collecting tombstones and the age index that finds them.
 *
 * Purpose: a delete leaves a tombstone (a record's D stamp, or an element
 * tomb) so that an older copy met later cannot bring the value back.
 * Once every configured tracker has merged the tombstone and every op
 * stamped at or below it, no such older copy is left anywhere, and the
 * tombstone can go (the rule and why it is safe: docs/REPLICATION.md,
 * "Collecting tombstones").  Collection is local to each tracker, not an
 * op: every tracker decides by the same rule from the same version
 * vectors.
 *
 * The index: a store whose envelope gains a tombstone newer than the
 * ones it had notes "<stamp hex16><origin hex2>|<key>" (the largest
 * tombstone stamp then) in the open round, y/tg/<round hex16>/<slot>
 * (TS_TRK_GC_SLOTS_N sorted lists per round).  y/tr holds the open
 * round, y/tgl the lowest round not yet collected.  The trk-sync
 * process closes the open round (inside a transaction, so every note of
 * it has committed and is covered by the version vector it reads there),
 * waits until every tracker has acknowledged that vector (they all
 * merged the tombstones), then until every tracker has acknowledged
 * what each of them had logged by then (no op stamped below is still on
 * its way anywhere), and then rewrites only the keys of the closed
 * rounds, TS_TRK_GC_CHUNK_N per transaction.  No walk of the database.
 *
 * Locking: the notes run inside the writer's transaction (any process);
 * the steps open their own transactions, one thread (trk-sync's main
 * thread).  Crash behaviour: a round closes in one transaction, each
 * chunk of collection is one transaction; the index is rebuilt at start
 * (every tombstone in round 0) and the round machine, in memory, starts
 * again from its first stage: a crash only delays collection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_buf.h"
#include "ts_config.h"
#include "ts_log.h"
#include "trk_gc.h"
#include "trk_index_int.h"

#define GC_ENTRY_HEAD  19               /* "<hlc hex16><origin hex2>|" */


/* ---- the rule on one envelope ----------------------------------------- */

static void
stamp_max(trk_stamp_t *mx, trk_stamp_t s, int *have)
{
    if (!*have || trk_stamp_cmp(s, *mx) > 0) {
        *mx = s;
    }
    *have = 1;
}


int
trk_gc_tomb_max(const trk_rec_t *r, trk_stamp_t *mx)
{
    uint32_t i, j;
    int      have = 0;

    memset(mx, 0, sizeof(*mx));
    if (!trk_stamp_zero(r->d)) {
        stamp_max(mx, r->d, &have);
    }
    for (i = 0; i < r->n; i++) {
        for (j = 0; j < r->inc[i].n; j++) {
            if (r->inc[i].e[j].tomb) {
                stamp_max(mx, r->inc[i].e[j].st, &have);
            }
        }
    }
    return have;
}


int
trk_gc_prune(trk_rec_t *r, trk_stamp_t bound)
{
    trk_inc_t *in;
    uint32_t   i, j, k;
    int        changed = 0;

    if (!trk_stamp_zero(r->d) && trk_stamp_cmp(r->d, bound) <= 0) {
        /* every incarnation it ended is already pruned everywhere (the
         * merge drops C <= D), and no op that could carry one is left */
        memset(&r->d, 0, sizeof(r->d));
        changed = 1;
    }
    for (i = 0; i < r->n;) {
        in = &r->inc[i];
        for (j = 0, k = 0; j < in->n; j++) {
            if (in->e[j].tomb && trk_stamp_cmp(in->e[j].st, bound) <= 0) {
                trk_elem_free(&in->e[j]);
                changed = 1;
            } else {
                in->e[k++] = in->e[j];
            }
        }
        in->n = k;
        if (in->n == 0 && trk_stamp_zero(in->c)) {
            /* a set kind's only incarnation, left empty: nothing to keep
             * (a first-writer-wins creation C stays: it is not a tomb) */
            free(in->e);
            memmove(&r->inc[i], &r->inc[i + 1],
                    (r->n - i - 1) * sizeof(*r->inc));
            r->n--;
            changed = 1;
        } else {
            i++;
        }
    }
    return changed;
}


int
trk_gc_empty(const trk_rec_t *r)
{
    return trk_stamp_zero(r->d) && r->n == 0;
}


int
trk_gc_vv_covers(const trk_vv_t *a, const trk_vv_t *b)
{
    int o;

    for (o = 1; o < TRK_ORIGINS_N; o++) {
        if (a->seq[o] < b->seq[o]) {
            return 0;
        }
    }
    return 1;
}


/* ---- the round machine ------------------------------------------------ */

int
trk_gc_advance(trk_gc_t *g, const trk_vv_t *lo, const trk_vv_t *hi)
{
    if (g->stage == TRK_GC_MERGED && trk_gc_vv_covers(lo, &g->need)) {
        /* every tracker merged all we had when the round closed, so each
         * one's clock is above every tombstone of the round: what each
         * has logged by now (hi holds each one's own entry) is all it
         * will ever log at or below them */
        g->need = *hi;
        g->stage = TRK_GC_STABLE;
    }
    if (g->stage == TRK_GC_STABLE && trk_gc_vv_covers(lo, &g->need)) {
        g->stage = TRK_GC_COLLECT;
    }
    return g->stage;
}


/* ---- the index -------------------------------------------------------- */

static TDB_DATA
u64_key(char *buf, const char *name)
{
    return trk_idx_key(buf, name, NULL);
}


static int
u64_get(struct tdb_context *tdb, const char *name, uint64_t *v)
{
    char     kb[TRK_KEY_B];
    TDB_DATA d = tdb_fetch(tdb, u64_key(kb, name));
    int      rc = 0, i;

    *v = 0;
    if (d.dptr == NULL) {
        return 0;
    }
    if (d.dsize == 8) {
        for (i = 0; i < 8; i++) {
            *v = *v << 8 | d.dptr[i];
        }
    } else {
        rc = -1;
    }
    free(d.dptr);
    return rc;
}


static int
u64_put(struct tdb_context *tdb, const char *name, uint64_t v)
{
    char     kb[TRK_KEY_B];
    uint8_t  b[8];
    TDB_DATA d;
    int      i;

    for (i = 7; i >= 0; i--, v >>= 8) {
        b[i] = (uint8_t) v;             /* big-endian */
    }
    d.dptr = b;
    d.dsize = sizeof(b);
    return tdb_store(tdb, u64_key(kb, name), d, TDB_REPLACE) == 0 ? 0 : -1;
}


/* The number of entries the index holds (y/tgn) moves by delta. */
static int
count_add(struct tdb_context *tdb, int64_t delta)
{
    uint64_t n;

    if (u64_get(tdb, "tgn", &n) != 0) {
        return -1;
    }
    n = delta < 0 && (uint64_t) -delta > n ? 0 : n + (uint64_t) delta;
    return u64_put(tdb, "tgn", n);
}


int
trk_gc_count_put(struct tdb_context *tdb, uint64_t n)
{
    return u64_put(tdb, "tgn", n);
}


static TDB_DATA
round_key(char *buf, uint64_t round, unsigned slot)
{
    char hex[24];

    snprintf(hex, sizeof(hex), "%016llx/%u", (unsigned long long) round,
             slot);
    return trk_idx_key(buf, "tg", hex);
}


static unsigned
entry_slot(const char *key, size_t klen)
{
    unsigned h = 0;
    size_t   i;

    for (i = 0; i < klen; i++) {
        h = h * 31u + (unsigned char) key[i];
    }
    return h % TS_TRK_GC_SLOTS_N;
}


/* The entry of key with bound mx into ebuf; 0, or -1 if it cannot be
 * an entry (too long, or a NUL byte): such a key is never collected. */
static int
entry_make(char *ebuf, size_t eb, const char *key, size_t klen,
           trk_stamp_t mx)
{
    if (klen + GC_ENTRY_HEAD + 1 > eb || memchr(key, '\0', klen) != NULL) {
        return -1;
    }
    snprintf(ebuf, eb, "%016llx%02x|%.*s", (unsigned long long) mx.hlc,
             mx.origin, (int) klen, key);
    return 0;
}


static int
env_tomb_max(TDB_DATA v, trk_stamp_t *mx)
{
    trk_rec_t r;
    int       rc;

    if (v.dsize == 0) {
        return 0;
    }
    if (trk_rec_decode(v.dptr, v.dsize, &r) != 0) {
        return -1;
    }
    rc = trk_gc_tomb_max(&r, mx);
    trk_rec_free(&r);
    return rc;
}


int
trk_gc_note(struct tdb_context *tdb, const char *key, size_t klen,
            TDB_DATA old, TDB_DATA nv)
{
    trk_strlist_t l;
    trk_stamp_t   mo, mn;
    uint64_t      round;
    char          kb[TRK_KEY_B], eb[TRK_IDX_ENTRY_B];
    int           ho, hn, rc;

    hn = env_tomb_max(nv, &mn);
    if (hn <= 0) {
        return 0;               /* no tombstone (or not ours to judge) */
    }
    ho = env_tomb_max(old, &mo);
    if (ho > 0 && trk_stamp_cmp(mn, mo) <= 0) {
        /* nothing newer than what an entry already covers (a tombstone
         * merged late with a lower stamp goes with that entry) */
        return 0;
    }
    if (entry_make(eb, sizeof(eb), key, klen, mn) != 0) {
        return 0;
    }
    if (u64_get(tdb, "tr", &round) != 0) {
        return -1;
    }
    if (trk_idx_list_get(tdb, round_key(kb, round, entry_slot(key, klen)),
                         &l) != 0)
    {
        return -1;
    }
    rc = trk_strlist_add(&l, eb);
    if (rc > 0) {
        rc = trk_idx_list_put(tdb, round_key(kb, round,
                                             entry_slot(key, klen)), &l);
        rc = rc == 0 ? count_add(tdb, 1) : rc;
    }
    trk_strlist_free(&l);
    return rc < 0 ? -1 : 0;
}


int
trk_gc_build_entry(const char *key, size_t klen, TDB_DATA v, char *kbuf,
                   TDB_DATA *ik, char *ebuf, size_t eb)
{
    trk_stamp_t mx;
    int         rc = env_tomb_max(v, &mx);

    if (rc <= 0) {
        return rc;
    }
    if (entry_make(ebuf, eb, key, klen, mx) != 0) {
        return 0;
    }
    *ik = round_key(kbuf, 0, entry_slot(key, klen));
    return 1;
}


int
trk_gc_snapshot_mark(trk_store_t *st, int last)
{
    struct tdb_context *tdb = trk_store_tdb(st);
    TDB_DATA            k, v;
    uint8_t             one = 1;

    /* a local x/ key: the index rebuild must not drop it, as the tombs
     * of a half-merged snapshot are not covered by the VV yet */
    k.dptr = (unsigned char *) "x/gcsnap";
    k.dsize = 8;
    if (last) {
        return tdb_exists(tdb, k) && tdb_delete(tdb, k) != 0 ? -1 : 0;
    }
    v.dptr = &one;
    v.dsize = 1;
    return tdb_exists(tdb, k) || tdb_store(tdb, k, v, TDB_REPLACE) == 0
           ? 0 : -1;
}


int
trk_gc_pending(trk_store_t *st, uint64_t *n)
{
    return u64_get(trk_store_tdb(st), "tgn", n);
}


/* ---- the steps -------------------------------------------------------- */

static int
round_has_entries(struct tdb_context *tdb, uint64_t lo, uint64_t hi)
{
    char     kb[TRK_KEY_B];
    uint64_t r;
    unsigned s;

    for (r = lo; r <= hi; r++) {
        for (s = 0; s < TS_TRK_GC_SLOTS_N; s++) {
            if (tdb_exists(tdb, round_key(kb, r, s))) {
                return 1;
            }
        }
    }
    return 0;
}


/* Closes the open round if it (or an older one) holds entries and no
 * snapshot is half merged: 1 closed, 0 not now, -1 error. */
static int
close_round(trk_store_t *st, trk_gc_t *g)
{
    struct tdb_context *tdb = trk_store_tdb(st);
    TDB_DATA            snap;
    uint64_t            lo, round;
    trk_vv_t            vv;

    snap.dptr = (unsigned char *) "x/gcsnap";
    snap.dsize = 8;
    if (u64_get(tdb, "tgl", &lo) != 0 || u64_get(tdb, "tr", &round) != 0) {
        return -1;
    }
    if (!round_has_entries(tdb, lo, round) || tdb_exists(tdb, snap)) {
        return 0;               /* an idle tracker writes nothing */
    }
    if (trk_store_begin(st) != 0) {
        return -1;
    }
    /* inside the transaction every note of the round has committed, and
     * the VV read here covers the ops that made them */
    if (tdb_exists(tdb, snap) || u64_get(tdb, "tr", &round) != 0
        || trk_vv_load(st, &vv) != 0 || u64_put(tdb, "tr", round + 1) != 0)
    {
        trk_store_cancel(st);
        return 0;
    }
    if (trk_store_commit(st) != 0) {
        return -1;
    }
    g->closed = round;
    g->need = vv;
    g->stage = TRK_GC_MERGED;
    return 1;
}


/* Key loses its tombstones stamped at or below bound, with no op; the
 * key goes when nothing is left.  1 changed, 0 nothing to do, -1. */
static int
collect_key(trk_store_t *st, const char *key, size_t klen,
            trk_stamp_t bound)
{
    TDB_DATA  k, v;
    trk_rec_t r;
    int       rc;

    k.dptr = (unsigned char *) key;
    k.dsize = klen;
    v = tdb_fetch(trk_store_tdb(st), k);
    if (v.dptr == NULL) {
        return 0;               /* gone meanwhile */
    }
    rc = trk_rec_decode(v.dptr, v.dsize, &r);
    free(v.dptr);
    if (rc != 0) {
        return 0;               /* not ours to repair: the merge does */
    }
    rc = 0;
    if (trk_gc_prune(&r, bound)) {
        rc = trk_kv_replace(st, key, klen, trk_gc_empty(&r) ? NULL : &r)
             == 0 ? 1 : -1;
    }
    trk_rec_free(&r);
    return rc;
}


/* Collects the entries of list l (bucket k) up to max: each key loses
 * the tombstones at or below its entry's bound.  Returns the entries
 * taken (they leave l) or -1. */
static int
collect_list(trk_store_t *st, TDB_DATA k, trk_strlist_t *l, uint32_t max,
             uint32_t *keys)
{
    struct tdb_context *tdb = trk_store_tdb(st);
    trk_stamp_t         b;
    trk_strlist_t       rest;
    const char         *e;
    char                hex[17];
    uint32_t            i, take = l->n < max ? l->n : max;
    int                 rc = 0;

    for (i = 0; i < take && rc >= 0; i++) {
        e = l->v[i];
        if (strlen(e) <= GC_ENTRY_HEAD || e[GC_ENTRY_HEAD - 1] != '|') {
            continue;           /* not an entry: it just leaves */
        }
        memcpy(hex, e, 16);
        hex[16] = '\0';
        b.hlc = strtoull(hex, NULL, 16);
        memcpy(hex, e + 16, 2);
        hex[2] = '\0';
        b.origin = (uint8_t) strtoul(hex, NULL, 16);
        rc = collect_key(st, e + GC_ENTRY_HEAD, strlen(e + GC_ENTRY_HEAD), b);
        if (rc > 0) {
            (*keys)++;
        }
    }
    if (rc < 0) {
        return -1;
    }
    memset(&rest, 0, sizeof(rest));
    rest.v = l->v + take;
    rest.n = l->n - take;
    return trk_idx_list_put(tdb, k, &rest) == 0
           && count_add(tdb, -(int64_t) take) == 0 ? (int) take : -1;
}


/* Collects up to max entries of rounds lo..g->closed, in transactions
 * of at most TS_TRK_GC_CHUNK_N entries.  Keys changed, or -1. */
static int
collect(trk_store_t *st, trk_gc_t *g, uint32_t max, int *more)
{
    struct tdb_context *tdb = trk_store_tdb(st);
    trk_strlist_t       l;
    char                kb[TRK_KEY_B];
    uint64_t            lo, r;
    uint32_t            done = 0, keys = 0, chunk;
    unsigned            s;
    int                 n;

    *more = 1;
    if (u64_get(tdb, "tgl", &lo) != 0) {
        return -1;
    }
    for (r = lo; r <= g->closed; r++) {
        for (s = 0; s < TS_TRK_GC_SLOTS_N; s++) {
            while (tdb_exists(tdb, round_key(kb, r, s))) {
                if (done >= max) {
                    return (int) keys;
                }
                chunk = max - done < TS_TRK_GC_CHUNK_N ? max - done
                                                       : TS_TRK_GC_CHUNK_N;
                if (trk_store_begin(st) != 0) {
                    return -1;
                }
                n = trk_idx_list_get(tdb, round_key(kb, r, s), &l) == 0
                    ? collect_list(st, round_key(kb, r, s), &l, chunk, &keys)
                    : -1;
                trk_strlist_free(&l);
                if (n < 0 || trk_store_commit(st) != 0) {
                    trk_store_cancel(st);
                    return -1;
                }
                trk_store_wake(st);     /* STATUS: the digest moved */
                done += (uint32_t) n;
            }
        }
    }
    /* the lowest round left only moves up (the housekeeper of a lone
     * tracker runs in whichever worker claims it, each with its own
     * machine, so another may have collected further already) */
    if (trk_store_begin(st) != 0 || u64_get(tdb, "tgl", &lo) != 0
        || (g->closed + 1 > lo && u64_put(tdb, "tgl", g->closed + 1) != 0)
        || trk_store_commit(st) != 0)
    {
        trk_store_cancel(st);
        return -1;
    }
    *more = 0;
    return (int) keys;
}


int
trk_gc_alone(trk_store_t *st)
{
    static trk_gc_t g;          /* per worker process: a new one starts
                                   over, which only delays */
    trk_vv_t        vv;
    int             more;

    /* one step a pass: the round closed by one pass is collected by the
     * next (this tracker is every tracker that must have acked) */
    if (trk_vv_load(st, &vv) != 0) {
        return -1;
    }
    return trk_gc_step(st, &g, &vv, &vv, TS_TRK_GC_STEP_N, &more);
}


int
trk_gc_step(trk_store_t *st, trk_gc_t *g, const trk_vv_t *lo,
            const trk_vv_t *hi, uint32_t max_keys, int *more)
{
    int rc;

    *more = 0;
    switch (trk_gc_advance(g, lo, hi)) {
    case TRK_GC_IDLE:
        return close_round(st, g) < 0 ? -1 : 0;
    case TRK_GC_COLLECT:
        rc = collect(st, g, max_keys, more);
        if (rc >= 0 && !*more) {
            g->stage = TRK_GC_IDLE;
        }
        if (rc < 0) {
            /* the store will say why; start over (a safe delay) */
            memset(g, 0, sizeof(*g));
        }
        return rc;
    default:
        return 0;
    }
}
