/*
 * trk_merge.c -- mergeable records (see trk_merge.h, docs/REPLICATION.md).
 *
 * Purpose: one envelope format for every replicated tdb key, a merge that
 * is a semilattice join (so ops and snapshots may arrive in any order and
 * any number of times), and the delta of one stamp.  The per-kind
 * split/join between an envelope and the application value is in
 * trk_view.c.
 *
 * Locking: none; pure functions on caller-owned memory.
 *
 * Crash behaviour: nothing persistent here.  A decode of hostile or
 * corrupt bytes fails with -1 after bounds checks; it never allocates
 * more than the bytes present justify.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_config.h"
#include "ts_proto.h"
#include "trk_codec.h"
#include "trk_merge.h"

#define ENV_MAGIC    'E'
#define ENV_VERSION  1


int
trk_stamp_cmp(trk_stamp_t a, trk_stamp_t b)
{
    if (a.hlc != b.hlc) {
        return a.hlc < b.hlc ? -1 : 1;
    }
    if (a.origin != b.origin) {
        return a.origin < b.origin ? -1 : 1;
    }
    return 0;
}


int
trk_stamp_zero(trk_stamp_t a)
{
    return a.hlc == 0 && a.origin == 0;
}


int
trk_key_replicated(const void *key, size_t klen)
{
    const char *k = key;

    if (klen < 3 || k[1] != '/') {
        return 0;
    }
    return strchr("ugsrfplmn", k[0]) != NULL && k[0] != '\0';
}


int
trk_key_fww(const void *key, size_t klen)
{
    const char *k = key;

    return klen >= 3 && k[1] == '/' && strchr("ufrg", k[0]) != NULL
           && k[0] != '\0';
}


uint8_t
trk_key_app_kind(const void *key)
{
    switch (((const char *) key)[0]) {
    case 'u': return 'U';
    case 'g': return 'G';
    case 's': return 'S';
    case 'r': return 'R';
    case 'f': return 'F';
    case 'p': return 'P';
    case 'l': return 'L';
    case 'm': return 'M';
    case 'n': return 'N';
    default:  return 0;
    }
}


/* ---- memory ---------------------------------------------------------- */

void
trk_rec_init(trk_rec_t *r)
{
    memset(r, 0, sizeof(*r));
}


void
trk_elem_free(trk_elem_t *e)
{
    free(e->ek);
    free(e->val);
    e->ek = NULL;
    e->val = NULL;
}


static void
inc_free(trk_inc_t *in)
{
    uint32_t i;

    for (i = 0; i < in->n; i++) {
        trk_elem_free(&in->e[i]);
    }
    free(in->e);
    in->e = NULL;
    in->n = in->cap = 0;
}


void
trk_rec_free(trk_rec_t *r)
{
    uint32_t i;

    for (i = 0; i < r->n; i++) {
        inc_free(&r->inc[i]);
    }
    free(r->inc);
    trk_rec_init(r);
}


uint8_t *
trk_dup_bytes(const void *p, uint32_t n)
{
    uint8_t *d = malloc(n ? n : 1);

    if (d != NULL && n > 0) {
        memcpy(d, p, n);
    }
    return d;
}


int
trk_elem_set(trk_elem_t *e, const void *ek, uint32_t eklen, trk_stamp_t st,
             uint8_t tomb, const void *val, uint32_t vlen)
{
    uint8_t *k, *v;

    k = trk_dup_bytes(ek, eklen);
    v = trk_dup_bytes(val, vlen);
    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        return -1;
    }
    trk_elem_free(e);
    e->ek = k;
    e->eklen = eklen;
    e->st = st;
    e->tomb = tomb;
    e->val = v;
    e->vlen = vlen;
    return 0;
}


static int
inc_reserve(trk_inc_t *in, uint32_t extra)
{
    trk_elem_t *ne;
    uint32_t    cap;

    if (in->n + extra <= in->cap) {
        return 0;
    }
    cap = in->cap ? in->cap * 2 : 8;
    while (cap < in->n + extra) {
        cap *= 2;
    }
    ne = realloc(in->e, cap * sizeof(*ne));
    if (ne == NULL) {
        return -1;
    }
    memset(ne + in->cap, 0, (cap - in->cap) * sizeof(*ne));
    in->e = ne;
    in->cap = cap;
    return 0;
}


static int
rec_reserve(trk_rec_t *r, uint32_t extra)
{
    trk_inc_t *ni;
    uint32_t   cap;

    if (r->n + extra <= r->cap) {
        return 0;
    }
    cap = r->cap ? r->cap * 2 : 2;
    while (cap < r->n + extra) {
        cap *= 2;
    }
    ni = realloc(r->inc, cap * sizeof(*ni));
    if (ni == NULL) {
        return -1;
    }
    memset(ni + r->cap, 0, (cap - r->cap) * sizeof(*ni));
    r->inc = ni;
    r->cap = cap;
    return 0;
}


int
trk_ek_cmp(const uint8_t *a, uint32_t al, const uint8_t *b, uint32_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);

    if (c != 0) {
        return c;
    }
    return al == bl ? 0 : (al < bl ? -1 : 1);
}


/* Position of ek in in (sorted); *found set. */
uint32_t
trk_inc_find(const trk_inc_t *in, const void *ek, uint32_t eklen, int *found)
{
    uint32_t lo = 0, hi = in->n, mid;
    int      c;

    *found = 0;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = trk_ek_cmp(in->e[mid].ek, in->e[mid].eklen, ek, eklen);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}


/* Inserts a zeroed element at pos. */
trk_elem_t *
trk_inc_insert_at(trk_inc_t *in, uint32_t pos)
{
    if (inc_reserve(in, 1) != 0) {
        return NULL;
    }
    memmove(&in->e[pos + 1], &in->e[pos], (in->n - pos) * sizeof(*in->e));
    memset(&in->e[pos], 0, sizeof(*in->e));
    in->n++;
    return &in->e[pos];
}


trk_inc_t *
trk_rec_find_inc(trk_rec_t *r, trk_stamp_t c, int create)
{
    uint32_t i;
    int      cmp;

    for (i = 0; i < r->n; i++) {
        cmp = trk_stamp_cmp(r->inc[i].c, c);
        if (cmp == 0) {
            return &r->inc[i];
        }
        if (cmp > 0) {
            break;
        }
    }
    if (!create || rec_reserve(r, 1) != 0) {
        return NULL;
    }
    memmove(&r->inc[i + 1], &r->inc[i], (r->n - i) * sizeof(*r->inc));
    memset(&r->inc[i], 0, sizeof(*r->inc));
    r->inc[i].c = c;
    r->n++;
    return &r->inc[i];
}


int
trk_rec_copy(trk_rec_t *dst, const trk_rec_t *src)
{
    trk_rec_init(dst);
    dst->d = src->d;
    return trk_rec_merge(dst, src) < 0 ? -1 : 0;
}


/* ---- codec ----------------------------------------------------------- */

static void
put_stamp(ts_wbuf_t *b, trk_stamp_t s)
{
    ts_put_u64(b, s.hlc);
    ts_put_u8(b, s.origin);
}


static trk_stamp_t
get_stamp(ts_rbuf_t *r)
{
    trk_stamp_t s;

    s.hlc = ts_get_u64(r);
    s.origin = ts_get_u8(r);
    return s;
}


void
trk_rec_encode(ts_wbuf_t *b, const trk_rec_t *r)
{
    uint32_t i, j;

    ts_put_u8(b, ENV_MAGIC);
    ts_put_u8(b, ENV_VERSION);
    put_stamp(b, r->d);
    ts_put_u32(b, r->n);
    for (i = 0; i < r->n; i++) {
        put_stamp(b, r->inc[i].c);
        ts_put_u32(b, r->inc[i].n);
        for (j = 0; j < r->inc[i].n; j++) {
            const trk_elem_t *e = &r->inc[i].e[j];

            ts_put_blob(b, e->ek, e->eklen);
            put_stamp(b, e->st);
            ts_put_u8(b, e->tomb);
            ts_put_blob(b, e->val, e->vlen);
        }
    }
}


int
trk_rec_decode(const void *p, size_t n, trk_rec_t *r)
{
    ts_rbuf_t       rb;
    uint32_t        ninc, nel, i, j, kl, vl;
    const uint8_t  *k, *v;
    trk_inc_t      *in;
    trk_stamp_t     st;
    uint8_t         tomb;

    trk_rec_init(r);
    ts_rbuf_init(&rb, p, n);
    if (ts_get_u8(&rb) != ENV_MAGIC || ts_get_u8(&rb) != ENV_VERSION) {
        return -1;
    }
    r->d = get_stamp(&rb);
    ninc = ts_get_u32(&rb);
    if (rb.err || ninc > TS_TRK_REC_INC_MAX_N
        || (size_t) ninc * 13 > ts_rbuf_left(&rb)
        || rec_reserve(r, ninc) != 0)
    {
        goto bad;
    }
    for (i = 0; i < ninc; i++) {
        in = &r->inc[r->n++];
        in->c = get_stamp(&rb);
        nel = ts_get_u32(&rb);
        /* an element takes at least 4 + 9 + 1 + 4 bytes */
        if (rb.err || nel > TS_TRK_REC_ELEM_MAX_N
            || (size_t) nel * 18 > ts_rbuf_left(&rb)
            || (i > 0 && trk_stamp_cmp(r->inc[i - 1].c, in->c) >= 0)
            || inc_reserve(in, nel) != 0)
        {
            goto bad;
        }
        for (j = 0; j < nel; j++) {
            k = ts_get_blob(&rb, &kl, TS_FRAME_MAX_B);
            st = get_stamp(&rb);
            tomb = ts_get_u8(&rb);
            v = ts_get_blob(&rb, &vl, TS_FRAME_MAX_B);
            if (rb.err || k == NULL || v == NULL || tomb > 1
                || (j > 0 && trk_ek_cmp(in->e[j - 1].ek, in->e[j - 1].eklen,
                                    k, kl) >= 0)
                || trk_elem_set(&in->e[in->n], k, kl, st, tomb, v, vl) != 0)
            {
                goto bad;
            }
            in->n++;
        }
    }
    if (ts_rbuf_end(&rb) != 0) {
        goto bad;
    }
    return 0;

bad:
    trk_rec_free(r);
    return -1;
}


/* ---- merge ----------------------------------------------------------- */

/* >0 if a beats b as the value of one element. */
static int
elem_beats(const trk_elem_t *a, const trk_elem_t *b)
{
    int c = trk_stamp_cmp(a->st, b->st);

    if (c != 0) {
        return c;
    }
    if (a->tomb != b->tomb) {
        return a->tomb ? 1 : -1;
    }
    return trk_ek_cmp(a->val, a->vlen, b->val, b->vlen);
}


static int
inc_merge(trk_inc_t *a, const trk_inc_t *b)
{
    uint32_t    i, pos;
    int         found, changed = 0;
    trk_elem_t *e;

    for (i = 0; i < b->n; i++) {
        const trk_elem_t *be = &b->e[i];

        pos = trk_inc_find(a, be->ek, be->eklen, &found);
        if (found) {
            if (elem_beats(be, &a->e[pos]) <= 0) {
                continue;
            }
            e = &a->e[pos];
        } else {
            e = trk_inc_insert_at(a, pos);
            if (e == NULL) {
                return -1;
            }
        }
        if (trk_elem_set(e, be->ek, be->eklen, be->st, be->tomb, be->val,
                     be->vlen) != 0)
        {
            return -1;
        }
        changed = 1;
    }
    return changed;
}


/* Drops incarnations with C <= D (set kinds keep C = 0 and D = 0). */
int
trk_rec_prune(trk_rec_t *r)
{
    uint32_t i, k = 0;
    int      changed = 0;

    for (i = 0; i < r->n; i++) {
        if (!trk_stamp_zero(r->d) && trk_stamp_cmp(r->inc[i].c, r->d) <= 0) {
            inc_free(&r->inc[i]);
            changed = 1;
            continue;
        }
        r->inc[k++] = r->inc[i];
    }
    r->n = k;
    return changed;
}


int
trk_rec_merge(trk_rec_t *a, const trk_rec_t *b)
{
    uint32_t   i;
    int        changed = 0, rc;
    trk_inc_t *in;

    if (trk_stamp_cmp(b->d, a->d) > 0) {
        a->d = b->d;
        changed = 1;
    }
    for (i = 0; i < b->n; i++) {
        if (!trk_stamp_zero(a->d) && trk_stamp_cmp(b->inc[i].c, a->d) <= 0) {
            continue;
        }
        in = trk_rec_find_inc(a, b->inc[i].c, 0);
        if (in == NULL) {
            if (a->n >= TS_TRK_REC_INC_MAX_N) {
                continue;           /* bounded; never in practice */
            }
            in = trk_rec_find_inc(a, b->inc[i].c, 1);
            if (in == NULL) {
                return -1;
            }
            changed = 1;
        }
        rc = inc_merge(in, &b->inc[i]);
        if (rc < 0) {
            return -1;
        }
        changed |= rc;
    }
    changed |= trk_rec_prune(a);
    return changed;
}


trk_stamp_t
trk_rec_max_stamp(const trk_rec_t *r)
{
    trk_stamp_t m = r->d;
    uint32_t    i, j;

    for (i = 0; i < r->n; i++) {
        if (trk_stamp_cmp(r->inc[i].c, m) > 0) {
            m = r->inc[i].c;
        }
        for (j = 0; j < r->inc[i].n; j++) {
            if (trk_stamp_cmp(r->inc[i].e[j].st, m) > 0) {
                m = r->inc[i].e[j].st;
            }
        }
    }
    return m;
}


void
trk_rec_restamp(trk_rec_t *r, trk_stamp_t from, trk_stamp_t to)
{
    uint32_t i, j;

    if (trk_stamp_cmp(r->d, from) == 0) {
        r->d = to;
    }
    for (i = 0; i < r->n; i++) {
        if (trk_stamp_cmp(r->inc[i].c, from) == 0) {
            r->inc[i].c = to;
        }
        for (j = 0; j < r->inc[i].n; j++) {
            if (trk_stamp_cmp(r->inc[i].e[j].st, from) == 0) {
                r->inc[i].e[j].st = to;
            }
        }
    }
}


const trk_inc_t *
trk_rec_visible(const trk_rec_t *r)
{
    return r->n > 0 ? &r->inc[0] : NULL;
}


int
trk_rec_delta(const trk_rec_t *r, trk_stamp_t s, trk_rec_t *out)
{
    uint32_t    i, j;
    trk_inc_t  *in;

    trk_rec_init(out);
    out->d = r->d;
    for (i = 0; i < r->n; i++) {
        const trk_inc_t *src = &r->inc[i];
        int              whole = trk_stamp_cmp(src->c, s) == 0;

        in = NULL;
        for (j = 0; j < src->n; j++) {
            if (!whole && trk_stamp_cmp(src->e[j].st, s) != 0) {
                continue;
            }
            if (in == NULL) {
                in = trk_rec_find_inc(out, src->c, 1);
                if (in == NULL) {
                    return -1;
                }
            }
            if (inc_reserve(in, 1) != 0
                || trk_elem_set(&in->e[in->n], src->e[j].ek, src->e[j].eklen,
                            src->e[j].st, src->e[j].tomb, src->e[j].val,
                            src->e[j].vlen) != 0)
            {
                return -1;
            }
            in->n++;
        }
        if (whole && in == NULL && trk_rec_find_inc(out, src->c, 1) == NULL) {
            return -1;
        }
    }
    return 0;
}


int
trk_rec_group_lost(const trk_rec_t *r, const char *user)
{
    uint32_t i, pos;
    int      found;
    size_t   ul = strlen(user);

    if (r->n == 0) {
        return 0;
    }
    pos = trk_inc_find(&r->inc[0], user, (uint32_t) ul, &found);
    if (found && !r->inc[0].e[pos].tomb) {
        return 0;
    }
    for (i = 1; i < r->n; i++) {
        pos = trk_inc_find(&r->inc[i], user, (uint32_t) ul, &found);
        if (found && !r->inc[i].e[pos].tomb
            && r->inc[i].e[pos].val[0] == TRK_ST_MEMBER)
        {
            return 1;
        }
    }
    return 0;
}

