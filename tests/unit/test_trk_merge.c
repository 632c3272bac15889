/*
 * test_trk_merge.c -- merge rules of replicated records (trk_merge.c,
 * trk_view.c) and convergence of real tdb stores exchanging ops
 * (trk_oplog.c, trk_apply.c).
 *
 * Purpose: show that merge is commutative, associative and idempotent
 * (a seeded random set of deltas merged in many orders gives one
 * encoding), the conflict rules (earlier creation wins, LWW elements,
 * derived owner, tombstones win over older adds, no resurrection), and
 * that stores written while partitioned and then fed each other's ops in
 * any interleaving end with the same digest, also when a transaction
 * overwrites a key stamped above its own clock.
 *
 * Locking: single-threaded; each store is its own tdb file in a temp dir.
 * Crash behaviour: the temp dir is removed by the teardown.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ts_buf.h"
#include "ts_clock.h"
#include "ts_config.h"
#include "trk_store.h"
#include "trk_codec.h"
#include "trk_merge.h"
#include "trk_oplog.h"

static unsigned seed;


static trk_stamp_t
stamp(uint64_t h, uint8_t o)
{
    trk_stamp_t s;

    s.hlc = h;
    s.origin = o;
    return s;
}


static void
enc(const trk_rec_t *r, ts_wbuf_t *b)
{
    ts_wbuf_reset(b);
    trk_rec_encode(b, r);
    assert_int_equal(b->err, 0);
}


/* A random delta: set kind (C = 0) or an incarnation kind. */
static void
rand_rec(trk_rec_t *r, int fww)
{
    trk_inc_t *in;
    uint32_t   i, n;
    char       ek[8];
    char       val[8];

    trk_rec_init(r);
    if (fww && rand_r(&seed) % 4 == 0) {
        r->d = stamp(100 + rand_r(&seed) % 50, 1 + rand_r(&seed) % 3);
    }
    r->inc = calloc(2, sizeof(*r->inc));
    r->cap = 2;
    r->n = 1;
    in = &r->inc[0];
    in->c = fww ? stamp(90 + rand_r(&seed) % 80, 1 + rand_r(&seed) % 3)
                : stamp(0, 0);
    if (!trk_stamp_zero(r->d) && trk_stamp_cmp(in->c, r->d) <= 0) {
        r->n = 0;                       /* a delta never holds C <= D */
        return;
    }
    n = 1 + rand_r(&seed) % 4;
    in->e = calloc(n, sizeof(*in->e));
    in->cap = n;
    for (i = 0; i < n; i++) {
        int  dup = 0;
        uint32_t j;

        snprintf(ek, sizeof(ek), "k%u", rand_r(&seed) % 5);
        for (j = 0; j < in->n; j++) {
            dup |= strcmp((char *) in->e[j].ek, ek) == 0;
        }
        if (dup) {
            continue;
        }
        snprintf(val, sizeof(val), "v%u", rand_r(&seed) % 3);
        /* keep sorted: insert in order */
        for (j = in->n; j > 0 && strcmp((char *) in->e[j - 1].ek, ek) > 0;
             j--)
        {
            in->e[j] = in->e[j - 1];
        }
        memset(&in->e[j], 0, sizeof(in->e[j]));
        in->e[j].ek = (uint8_t *) strdup(ek);
        in->e[j].eklen = (uint32_t) strlen(ek);
        in->e[j].st = stamp(100 + rand_r(&seed) % 20, 1 + rand_r(&seed) % 3);
        in->e[j].tomb = rand_r(&seed) % 3 == 0;
        in->e[j].val = (uint8_t *) strdup(val);
        in->e[j].vlen = (uint32_t) strlen(val);
        in->n++;
    }
}


static void
test_merge_laws(void **state)
{
    enum { N = 12, ORDERS = 40 };
    trk_rec_t  d[N], acc, ref, tmp, ab, ba;
    ts_wbuf_t  b1, b2;
    int        perm[N], i, k, fww;

    (void) state;
    ts_wbuf_init(&b1);
    ts_wbuf_init(&b2);
    for (fww = 0; fww < 2; fww++) {
        for (i = 0; i < N; i++) {
            rand_rec(&d[i], fww);
        }
        /* commutative + idempotent on pairs */
        for (i = 0; i + 1 < N; i++) {
            assert_int_equal(trk_rec_copy(&ab, &d[i]), 0);
            assert_true(trk_rec_merge(&ab, &d[i + 1]) >= 0);
            assert_int_equal(trk_rec_copy(&ba, &d[i + 1]), 0);
            assert_true(trk_rec_merge(&ba, &d[i]) >= 0);
            enc(&ab, &b1);
            enc(&ba, &b2);
            assert_int_equal(b1.len, b2.len);
            assert_memory_equal(b1.data, b2.data, b1.len);
            assert_int_equal(trk_rec_merge(&ab, &d[i]), 0);   /* no change */
            assert_int_equal(trk_rec_merge(&ab, &ab), 0);
            trk_rec_free(&ab);
            trk_rec_free(&ba);
        }
        /* any order (and duplicates) of the whole set: one result */
        trk_rec_init(&ref);
        for (i = 0; i < N; i++) {
            assert_true(trk_rec_merge(&ref, &d[i]) >= 0);
        }
        enc(&ref, &b1);
        for (k = 0; k < ORDERS; k++) {
            for (i = 0; i < N; i++) {
                perm[i] = i;
            }
            for (i = N - 1; i > 0; i--) {
                int j = (int) (rand_r(&seed) % (unsigned) (i + 1)), t;

                t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
            trk_rec_init(&acc);
            for (i = 0; i < N; i++) {
                /* associativity: fold pairs first half the time */
                if (k % 2 && i + 1 < N) {
                    assert_int_equal(trk_rec_copy(&tmp, &d[perm[i]]), 0);
                    assert_true(trk_rec_merge(&tmp, &d[perm[i + 1]]) >= 0);
                    assert_true(trk_rec_merge(&acc, &tmp) >= 0);
                    trk_rec_free(&tmp);
                    i++;
                    continue;
                }
                assert_true(trk_rec_merge(&acc, &d[perm[i]]) >= 0);
                if (rand_r(&seed) % 4 == 0) {
                    assert_true(trk_rec_merge(&acc, &d[perm[i]]) == 0);
                }
            }
            enc(&acc, &b2);
            assert_int_equal(b1.len, b2.len);
            assert_memory_equal(b1.data, b2.data, b1.len);
            trk_rec_free(&acc);
        }
        trk_rec_free(&ref);
        for (i = 0; i < N; i++) {
            trk_rec_free(&d[i]);
        }
    }
    ts_wbuf_free(&b1);
    ts_wbuf_free(&b2);
}


/* ---- conflict rules on real application values --------------------------- */

static void
user_val(ts_wbuf_t *b, uint64_t created)
{
    trk_user_t u;

    memset(&u, 0, sizeof(u));
    u.iterations = 1;
    u.created_ms = created;
    ts_wbuf_reset(b);
    trk_user_encode(b, &u);
}


static void
test_first_writer_wins(void **state)
{
    trk_rec_t  a, b, m1, m2;
    ts_wbuf_t  v, out;
    trk_user_t u;

    (void) state;
    ts_wbuf_init(&v);
    ts_wbuf_init(&out);
    trk_rec_init(&a);
    trk_rec_init(&b);
    user_val(&v, 111);
    assert_int_equal(trk_rec_put(&a, "u/x", 3, v.data, v.len,
                                 stamp(500, 2)), 0);
    user_val(&v, 222);
    assert_int_equal(trk_rec_put(&b, "u/x", 3, v.data, v.len,
                                 stamp(700, 1)), 0);
    assert_int_equal(trk_rec_copy(&m1, &a), 0);
    assert_true(trk_rec_merge(&m1, &b) > 0);
    assert_int_equal(trk_rec_copy(&m2, &b), 0);
    assert_true(trk_rec_merge(&m2, &a) > 0);
    /* the earlier (hlc, origin) is visible on both sides */
    assert_int_equal(trk_rec_view(&m1, "u/x", 3, &out), 0);
    assert_int_equal(trk_user_decode(out.data, out.len, &u), 0);
    assert_int_equal(u.created_ms, 111);
    assert_int_equal(trk_rec_view(&m2, "u/x", 3, &out), 0);
    assert_int_equal(trk_user_decode(out.data, out.len, &u), 0);
    assert_int_equal(u.created_ms, 111);
    assert_int_equal(trk_rec_visible(&m2)->c.hlc, 500);
    /* same hlc: the smaller origin wins */
    trk_rec_free(&b);
    trk_rec_init(&b);
    assert_int_equal(trk_rec_put(&b, "u/x", 3, v.data, v.len,
                                 stamp(500, 1)), 0);
    assert_true(trk_rec_merge(&m1, &b) > 0);
    assert_int_equal(trk_rec_visible(&m1)->c.origin, 1);
    trk_rec_free(&a);
    trk_rec_free(&b);
    trk_rec_free(&m1);
    trk_rec_free(&m2);
    ts_wbuf_free(&v);
    ts_wbuf_free(&out);
}


static void
group_val(ts_wbuf_t *b, const char *const *members, int nm,
          const char *const *pending, int np)
{
    trk_group_t  g;
    trk_member_t m[8], p[8];
    int          i;

    memset(&g, 0, sizeof(g));
    memset(m, 0, sizeof(m));
    memset(p, 0, sizeof(p));
    snprintf(g.owner, sizeof(g.owner), "%s", members[0]);
    for (i = 0; i < nm; i++) {
        snprintf(m[i].user, sizeof(m[i].user), "%s", members[i]);
        m[i].seq = (uint64_t) i + 1;
    }
    for (i = 0; i < np; i++) {
        snprintf(p[i].user, sizeof(p[i].user), "%s", pending[i]);
        p[i].seq = (uint64_t) (nm + i + 1);
    }
    g.nmembers = (uint32_t) nm;
    g.npending = (uint32_t) np;
    g.members = m;
    g.pending = p;
    g.next_join_seq = (uint64_t) (nm + np + 1);
    ts_wbuf_reset(b);
    trk_group_encode(b, &g);
}


static void
test_group_rules(void **state)
{
    static const char *const alice[] = { "alice" };
    static const char *const ab[] = { "alice", "bob" };
    static const char *const abc[] = { "alice", "bob", "carol" };
    static const char *const bc[] = { "bob", "carol" };
    static const char *const cb[] = { "carol", "bob" };
    static const char *const dave[] = { "dave" };
    trk_rec_t   r, old, other;
    ts_wbuf_t   v, out;
    trk_group_t g;

    (void) state;
    ts_wbuf_init(&v);
    ts_wbuf_init(&out);
    trk_rec_init(&r);
    group_val(&v, alice, 1, NULL, 0);
    assert_int_equal(trk_rec_put(&r, "g/t", 3, v.data, v.len,
                                 stamp(10, 1)), 0);
    group_val(&v, alice, 1, ab + 1, 1);                /* bob asks */
    assert_int_equal(trk_rec_put(&r, "g/t", 3, v.data, v.len,
                                 stamp(20, 2)), 0);
    group_val(&v, ab, 2, NULL, 0);                     /* accepted */
    assert_int_equal(trk_rec_put(&r, "g/t", 3, v.data, v.len,
                                 stamp(30, 1)), 0);
    group_val(&v, abc, 3, NULL, 0);
    assert_int_equal(trk_rec_put(&r, "g/t", 3, v.data, v.len,
                                 stamp(40, 3)), 0);
    assert_int_equal(trk_rec_copy(&old, &r), 0);
    /* the owner leaves: the member who joined next owns the group, even
     * if the application lists the members in another order */
    group_val(&v, cb, 2, NULL, 0);
    assert_int_equal(trk_rec_put(&r, "g/t", 3, v.data, v.len,
                                 stamp(50, 2)), 0);
    assert_int_equal(trk_rec_view(&r, "g/t", 3, &out), 0);
    assert_int_equal(trk_group_decode(out.data, out.len, &g), 0);
    assert_string_equal(g.owner, "bob");
    assert_int_equal(g.nmembers, 2);
    trk_group_free(&g);
    (void) bc;
    /* the leave (a tombstone) beats the older add when merged back */
    assert_int_equal(trk_rec_merge(&old, &r) > 0, 1);
    assert_int_equal(trk_rec_view(&old, "g/t", 3, &out), 0);
    assert_int_equal(trk_group_decode(out.data, out.len, &g), 0);
    assert_string_equal(g.owner, "bob");
    trk_group_free(&g);
    /* and merging the old state again changes nothing */
    trk_rec_free(&old);
    /* dissolve, then a new incarnation: old snapshots cannot resurrect */
    assert_int_equal(trk_rec_copy(&old, &r), 0);
    assert_int_equal(trk_rec_del(&r, "g/t", 3, stamp(60, 1)), 0);
    assert_int_equal(trk_rec_view(&r, "g/t", 3, &out), 1);
    assert_int_equal(trk_rec_merge(&r, &old), 0);
    assert_int_equal(trk_rec_view(&r, "g/t", 3, &out), 1);
    group_val(&v, dave, 1, NULL, 0);
    assert_int_equal(trk_rec_put(&r, "g/t", 3, v.data, v.len,
                                 stamp(70, 2)), 0);
    assert_int_equal(trk_rec_merge(&r, &old), 0);
    assert_int_equal(trk_rec_view(&r, "g/t", 3, &out), 0);
    assert_int_equal(trk_group_decode(out.data, out.len, &g), 0);
    assert_string_equal(g.owner, "dave");
    assert_int_equal(g.nmembers, 1);
    trk_group_free(&g);
    /* concurrent creation: the later incarnation loses whole, and its
     * members are told */
    trk_rec_init(&other);
    group_val(&v, cb, 1, NULL, 0);                     /* carol */
    assert_int_equal(trk_rec_put(&other, "g/t", 3, v.data, v.len,
                                 stamp(75, 3)), 0);
    assert_true(trk_rec_merge(&r, &other) > 0);
    assert_int_equal(trk_rec_view(&r, "g/t", 3, &out), 0);
    assert_int_equal(trk_group_decode(out.data, out.len, &g), 0);
    assert_string_equal(g.owner, "dave");
    trk_group_free(&g);
    assert_int_equal(trk_rec_group_lost(&r, "carol"), 1);
    assert_int_equal(trk_rec_group_lost(&r, "dave"), 0);
    trk_rec_free(&other);
    trk_rec_free(&old);
    trk_rec_free(&r);
    ts_wbuf_free(&v);
    ts_wbuf_free(&out);
}


static void
test_set_lww(void **state)
{
    trk_rec_t r, a;
    ts_wbuf_t v, out;

    (void) state;
    ts_wbuf_init(&v);
    ts_wbuf_init(&out);
    trk_rec_init(&r);
    /* an l/ list: add x, y at 10; remove x at 20 */
    ts_put_u8(&v, 'L');
    ts_put_u8(&v, 1);
    ts_put_u32(&v, 2);
    ts_put_str(&v, "x");
    ts_put_str(&v, "y");
    assert_int_equal(trk_rec_put(&r, "l/g", 3, v.data, v.len,
                                 stamp(10, 1)), 0);
    assert_int_equal(trk_rec_copy(&a, &r), 0);
    ts_wbuf_reset(&v);
    ts_put_u8(&v, 'L');
    ts_put_u8(&v, 1);
    ts_put_u32(&v, 1);
    ts_put_str(&v, "y");
    assert_int_equal(trk_rec_put(&r, "l/g", 3, v.data, v.len,
                                 stamp(20, 2)), 0);
    /* old add merged later: x stays removed */
    assert_int_equal(trk_rec_merge(&r, &a), 0);
    assert_int_equal(trk_rec_view(&r, "l/g", 3, &out), 0);
    assert_int_equal(out.len, 2 + 4 + 3);
    /* re-add at 30 wins over the tombstone */
    ts_wbuf_reset(&v);
    ts_put_u8(&v, 'L');
    ts_put_u8(&v, 1);
    ts_put_u32(&v, 2);
    ts_put_str(&v, "x");
    ts_put_str(&v, "y");
    assert_int_equal(trk_rec_put(&a, "l/g", 3, v.data, v.len,
                                 stamp(30, 1)), 0);
    trk_rec_free(&a);
    trk_rec_init(&a);
    ts_wbuf_reset(&v);
    ts_put_u8(&v, 'L');
    ts_put_u8(&v, 1);
    ts_put_u32(&v, 1);
    ts_put_str(&v, "x");
    assert_int_equal(trk_rec_put(&a, "l/g", 3, v.data, v.len,
                                 stamp(30, 1)), 0);
    assert_true(trk_rec_merge(&r, &a) > 0);
    assert_int_equal(trk_rec_view(&r, "l/g", 3, &out), 0);
    assert_int_equal(out.len, 2 + 4 + 3 + 3);
    trk_rec_free(&a);
    trk_rec_free(&r);
    ts_wbuf_free(&v);
    ts_wbuf_free(&out);
}


/* ---- real stores exchanging ops ------------------------------------------ */

static char dir[64];

static trk_store_t *
open_store(const char *name, int origin)
{
    char         path[128], err[256];
    trk_store_t *st;

    snprintf(path, sizeof(path), "%s/%s.tdb", dir, name);
    st = trk_store_open(path, 1, 1, err, sizeof(err));
    assert_non_null(st);
    trk_store_set_origin(st, origin, NULL, NULL);
    return st;
}


static void
random_writes(trk_store_t *st, int n, const char *tag)
{
    static const char *const users[] = { "a", "b", "c", "d" };
    char       m[TRK_MSG_B], no[TS_ID_MAX_B + 1], g[16];
    trk_user_t u;
    int        i, op;

    memset(&u, 0, sizeof(u));
    u.iterations = 1;
    for (i = 0; i < n; i++) {
        const char *who = users[rand_r(&seed) % 4];

        snprintf(g, sizeof(g), "g%u", rand_r(&seed) % 3);
        op = (int) (rand_r(&seed) % 6);
        assert_int_equal(trk_store_begin(st), 0);
        u.created_ms = (uint64_t) (tag[0]);
        switch (op) {
        case 0: (void) trk_do_create_user(st, who, &u, m, sizeof(m)); break;
        case 1: (void) trk_do_create_group(st, who, g, m, sizeof(m)); break;
        case 2: (void) trk_do_join_group(st, who, g, m, sizeof(m)); break;
        case 3: (void) trk_do_accept(st, "a", g, who, 1, m, sizeof(m));
                (void) trk_do_accept(st, "b", g, who, 1, m, sizeof(m));
                break;
        case 4: (void) trk_do_leave_group(st, who, g, no, sizeof(no), m,
                                          sizeof(m));
                break;
        default:
                {
                    static const uint8_t rh[TS_SHA256_B];

                    (void) trk_reply_put(st, (uint64_t) rand_r(&seed), 20,
                                         rh, "ok", 2, 1);
                }
                break;
        }
        assert_int_equal(trk_store_commit(st), 0);
        usleep(200);
    }
}


typedef struct {
    ts_wbuf_t *ops;
    size_t     n;
} oplist_t;


static void
collect_ops(trk_store_t *st, int origin, oplist_t *l)
{
    uint64_t after = 0, seq;

    l->ops = calloc(4096, sizeof(*l->ops));
    l->n = 0;
    while (trk_oplog_next(st, origin, after, &seq) == 0) {
        ts_wbuf_init(&l->ops[l->n]);
        assert_int_equal(trk_oplog_get(st, origin, seq, &l->ops[l->n]), 0);
        l->n++;
        after = seq;
    }
}


static void
apply_all(trk_store_t *st, oplist_t *l, size_t from, size_t to)
{
    uint64_t mx = 0;
    size_t   i;

    assert_int_equal(trk_store_begin(st), 0);
    for (i = from; i < to && i < l->n; i++) {
        assert_true(trk_oplog_apply(st, l->ops[i].data, l->ops[i].len, &mx)
                    >= 0);
    }
    assert_int_equal(trk_store_commit(st), 0);
}


static void
test_stores_converge(void **state)
{
    trk_store_t *a, *b, *c1, *c2;
    oplist_t     la, lb;
    uint8_t      da[32], db[32], d1[32], d2[32];
    size_t       i, j;

    (void) state;
    snprintf(dir, sizeof(dir), "/tmp/test_trk_merge.XXXXXX");
    assert_non_null(mkdtemp(dir));
    a = open_store("a", 1);
    b = open_store("b", 2);
    c1 = open_store("c1", 3);
    c2 = open_store("c2", 4);
    /* partitioned: both sides write, conflicting ids included */
    random_writes(a, 150, "A");
    random_writes(b, 150, "B");
    collect_ops(a, 1, &la);
    collect_ops(b, 2, &lb);
    printf("ops: %zu + %zu\n", la.n, lb.n);
    assert_true(la.n > 20 && lb.n > 20);
    /* heal: each side gets the other's ops; twice (duplicates) */
    apply_all(a, &lb, 0, lb.n);
    apply_all(b, &la, 0, la.n);
    apply_all(b, &la, 0, la.n);
    /* c1: all of A then all of B; c2: random interleaving in chunks */
    apply_all(c1, &la, 0, la.n);
    apply_all(c1, &lb, 0, lb.n);
    i = j = 0;
    while (i < la.n || j < lb.n) {
        size_t k = 1 + rand_r(&seed) % 7;

        if (j >= lb.n || (i < la.n && rand_r(&seed) % 2)) {
            apply_all(c2, &la, i, i + k);
            i += k;
        } else {
            apply_all(c2, &lb, j, j + k);
            j += k;
        }
    }
    assert_int_equal(trk_digest(a, da), 0);
    assert_int_equal(trk_digest(b, db), 0);
    assert_int_equal(trk_digest(c1, d1), 0);
    assert_int_equal(trk_digest(c2, d2), 0);
    assert_memory_equal(da, db, 32);
    assert_memory_equal(da, d1, 32);
    assert_memory_equal(da, d2, 32);
    for (i = 0; i < la.n; i++) {
        ts_wbuf_free(&la.ops[i]);
    }
    for (i = 0; i < lb.n; i++) {
        ts_wbuf_free(&lb.ops[i]);
    }
    free(la.ops);
    free(lb.ops);
    trk_store_close(a);
    trk_store_close(b);
    trk_store_close(c1);
    trk_store_close(c2);
    {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);
    }
}


/* An l/ value holding the one name n. */
static void
list_val(ts_wbuf_t *b, const char *n)
{
    trk_strlist_t l;

    memset(&l, 0, sizeof(l));
    assert_int_equal(trk_strlist_add(&l, n), 1);
    ts_wbuf_reset(b);
    trk_strlist_encode(b, TRK_REC_LIST, &l);
    trk_strlist_free(&l);
}


/* One transaction writes two keys; the second holds a stamp above the
 * transaction's clock (merged from a peer whose clock runs ahead).  The
 * write must still win everywhere: the transaction's stamp is raised
 * above the second key's and the first key re-stamped, so the peer that
 * applies the op ends with the same value and the same digest. */
static void
test_txn_stamp_above_every_key(void **state)
{
    trk_store_t *a, *b;
    trk_rec_t    p;
    ts_wbuf_t    v, out;
    oplist_t     la;
    trk_strlist_t l;
    uint8_t      da[32], db[32];
    uint32_t     pos;
    size_t       i;
    char         cmd[128];

    (void) state;
    snprintf(dir, sizeof(dir), "/tmp/test_trk_merge.XXXXXX");
    assert_non_null(mkdtemp(dir));
    a = open_store("sa", 1);
    b = open_store("sb", 2);
    ts_wbuf_init(&v);
    ts_wbuf_init(&out);
    /* both hold l/g2 = {old}, stamped an hour ahead of a's clock */
    trk_rec_init(&p);
    list_val(&v, "old");
    assert_int_equal(trk_rec_put(&p, "l/g2", 4, v.data, v.len,
                                 stamp(((uint64_t) ts_wall_ms() + 3600000)
                                       << 16, 2)), 0);
    assert_int_equal(trk_store_begin(a), 0);
    assert_int_equal(trk_kv_merge(a, "l/g2", 4, &p), 0);
    assert_int_equal(trk_store_commit(a), 0);
    assert_int_equal(trk_store_begin(b), 0);
    assert_int_equal(trk_kv_merge(b, "l/g2", 4, &p), 0);
    assert_int_equal(trk_store_commit(b), 0);
    trk_rec_free(&p);
    /* one transaction on a: l/g1 first, then l/g2 */
    assert_int_equal(trk_store_begin(a), 0);
    list_val(&v, "x");
    assert_int_equal(trk_kv_put(a, "l/g1", 4, v.data, v.len), 0);
    list_val(&v, "new");
    assert_int_equal(trk_kv_put(a, "l/g2", 4, v.data, v.len), 0);
    assert_int_equal(trk_store_commit(a), 0);
    collect_ops(a, 1, &la);
    assert_int_equal(la.n, 1);
    apply_all(b, &la, 0, la.n);
    /* b took the write on both keys */
    assert_int_equal(trk_kv_get(b, "l/g2", 4, &out), 0);
    assert_int_equal(trk_strlist_decode(out.data, out.len, TRK_REC_LIST,
                                        10, &l), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(trk_strlist_find(&l, "new", &pos), 1);
    trk_strlist_free(&l);
    assert_int_equal(trk_kv_get(b, "l/g1", 4, &out), 0);
    assert_int_equal(trk_digest(a, da), 0);
    assert_int_equal(trk_digest(b, db), 0);
    assert_memory_equal(da, db, 32);
    for (i = 0; i < la.n; i++) {
        ts_wbuf_free(&la.ops[i]);
    }
    free(la.ops);
    ts_wbuf_free(&v);
    ts_wbuf_free(&out);
    trk_store_close(a);
    trk_store_close(b);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_laws),
        cmocka_unit_test(test_first_writer_wins),
        cmocka_unit_test(test_group_rules),
        cmocka_unit_test(test_set_lww),
        cmocka_unit_test(test_stores_converge),
        cmocka_unit_test(test_txn_stamp_above_every_key),
    };
    const char *s = getenv("TS_SEED");

    seed = s != NULL ? (unsigned) strtoul(s, NULL, 10)
                     : (unsigned) getpid();
    printf("test_trk_merge seed %u (set TS_SEED to repeat)\n", seed);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
