/*
 * trk_merge.c -- mergeable records (see trk_merge.h, docs/REPLICATION.md).
 *
 * Purpose: one envelope format for every replicated tdb key, a merge that
 * is a semilattice join (so ops and snapshots may arrive in any order and
 * any number of times), and the per-kind split/join between an envelope
 * and the application value the rule code reads and writes.
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
#define APP_VERSION  1

#define ST_MEMBER    'm'
#define ST_PENDING   'p'


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


static uint8_t
key_app_kind(const void *key)
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


static void
elem_free(trk_elem_t *e)
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
        elem_free(&in->e[i]);
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


static uint8_t *
dup_bytes(const void *p, uint32_t n)
{
    uint8_t *d = malloc(n ? n : 1);

    if (d != NULL && n > 0) {
        memcpy(d, p, n);
    }
    return d;
}


static int
elem_set(trk_elem_t *e, const void *ek, uint32_t eklen, trk_stamp_t st,
         uint8_t tomb, const void *val, uint32_t vlen)
{
    uint8_t *k, *v;

    k = dup_bytes(ek, eklen);
    v = dup_bytes(val, vlen);
    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        return -1;
    }
    elem_free(e);
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


static int
ek_cmp(const uint8_t *a, uint32_t al, const uint8_t *b, uint32_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);

    if (c != 0) {
        return c;
    }
    return al == bl ? 0 : (al < bl ? -1 : 1);
}


/* Position of ek in in (sorted); *found set. */
static uint32_t
inc_find(const trk_inc_t *in, const void *ek, uint32_t eklen, int *found)
{
    uint32_t lo = 0, hi = in->n, mid;
    int      c;

    *found = 0;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = ek_cmp(in->e[mid].ek, in->e[mid].eklen, ek, eklen);
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
static trk_elem_t *
inc_insert_at(trk_inc_t *in, uint32_t pos)
{
    if (inc_reserve(in, 1) != 0) {
        return NULL;
    }
    memmove(&in->e[pos + 1], &in->e[pos], (in->n - pos) * sizeof(*in->e));
    memset(&in->e[pos], 0, sizeof(*in->e));
    in->n++;
    return &in->e[pos];
}


static trk_inc_t *
rec_find_inc(trk_rec_t *r, trk_stamp_t c, int create)
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
                || (j > 0 && ek_cmp(in->e[j - 1].ek, in->e[j - 1].eklen,
                                    k, kl) >= 0)
                || elem_set(&in->e[in->n], k, kl, st, tomb, v, vl) != 0)
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
    return ek_cmp(a->val, a->vlen, b->val, b->vlen);
}


static int
inc_merge(trk_inc_t *a, const trk_inc_t *b)
{
    uint32_t    i, pos;
    int         found, changed = 0;
    trk_elem_t *e;

    for (i = 0; i < b->n; i++) {
        const trk_elem_t *be = &b->e[i];

        pos = inc_find(a, be->ek, be->eklen, &found);
        if (found) {
            if (elem_beats(be, &a->e[pos]) <= 0) {
                continue;
            }
            e = &a->e[pos];
        } else {
            e = inc_insert_at(a, pos);
            if (e == NULL) {
                return -1;
            }
        }
        if (elem_set(e, be->ek, be->eklen, be->st, be->tomb, be->val,
                     be->vlen) != 0)
        {
            return -1;
        }
        changed = 1;
    }
    return changed;
}


/* Drops incarnations with C <= D (set kinds keep C = 0 and D = 0). */
static int
rec_prune(trk_rec_t *r)
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
        in = rec_find_inc(a, b->inc[i].c, 0);
        if (in == NULL) {
            if (a->n >= TS_TRK_REC_INC_MAX_N) {
                continue;           /* bounded; never in practice */
            }
            in = rec_find_inc(a, b->inc[i].c, 1);
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
    changed |= rec_prune(a);
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


const trk_inc_t *
trk_rec_visible(const trk_rec_t *r)
{
    return r->n > 0 ? &r->inc[0] : NULL;
}


/* ---- split: application value -> elements ----------------------------- */

typedef struct {
    uint32_t     n;
    uint32_t     cap;
    trk_elem_t  *e;        /* ek/val borrowed or owned per 'own' */
    ts_wbuf_t    store;    /* owns bytes of synthesized ek/val */
} split_t;


static int
split_add(split_t *s, const void *ek, uint32_t eklen, const void *val,
          uint32_t vlen)
{
    trk_elem_t *ne;

    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        ne = realloc(s->e, s->cap * sizeof(*ne));
        if (ne == NULL) {
            return -1;
        }
        s->e = ne;
    }
    memset(&s->e[s->n], 0, sizeof(*s->e));
    s->e[s->n].ek = dup_bytes(ek, eklen);
    s->e[s->n].eklen = eklen;
    s->e[s->n].val = dup_bytes(val, vlen);
    s->e[s->n].vlen = vlen;
    if (s->e[s->n].ek == NULL || s->e[s->n].val == NULL) {
        elem_free(&s->e[s->n]);
        return -1;
    }
    s->n++;
    return 0;
}


static void
split_free(split_t *s)
{
    uint32_t i;

    for (i = 0; i < s->n; i++) {
        elem_free(&s->e[i]);
    }
    free(s->e);
    memset(s, 0, sizeof(*s));
}


static int
split_value(uint8_t kind, const uint8_t *v, size_t vlen, split_t *s)
{
    ts_rbuf_t   r;
    uint32_t    i, n, bl;
    char        tmp[TS_STR_MAX_B + 1];
    uint8_t     h[32];
    ts_wbuf_t   b;
    const uint8_t *bm;

    if (vlen < 2 || v[0] != kind || v[1] != APP_VERSION) {
        return -1;
    }
    switch (kind) {
    case 'U': case 'F': case 'R': case 'S':
        return split_add(s, "", 0, v, (uint32_t) vlen);

    case 'G': {
        trk_group_t g;
        uint8_t     m = ST_MEMBER, pd = ST_PENDING;

        if (trk_group_decode(v, vlen, &g) != 0) {
            return -1;
        }
        for (i = 0; i < g.nmembers; i++) {
            if (split_add(s, g.members[i].user,
                          (uint32_t) strlen(g.members[i].user), &m, 1) != 0)
            {
                trk_group_free(&g);
                return -1;
            }
        }
        for (i = 0; i < g.npending; i++) {
            if (split_add(s, g.pending[i].user,
                          (uint32_t) strlen(g.pending[i].user), &pd, 1) != 0)
            {
                trk_group_free(&g);
                return -1;
            }
        }
        trk_group_free(&g);
        return 0;
    }

    case 'P': {
        trk_srcs_t ss;
        char       ek[TS_ID_MAX_B + 1 + TRK_ADDR_MAX_B + 1];
        int        rc = 0;

        if (trk_srcs_decode(v, vlen, &ss) != 0) {
            return -1;
        }
        ts_wbuf_init(&b);
        ts_put_u64(&b, ss.size);
        ts_put_u32(&b, ss.nchunks);
        if (b.err || split_add(s, "", 0, b.data, (uint32_t) b.len) != 0) {
            rc = -1;
        }
        for (i = 0; rc == 0 && i < ss.n; i++) {
            ts_wbuf_reset(&b);
            ts_put_u8(&b, ss.v[i].complete);
            ts_put_u32(&b, ss.v[i].held);
            ts_put_blob(&b, ss.v[i].bitmap, ss.v[i].bmlen);
            snprintf(ek, sizeof(ek), "%s/%s", ss.v[i].user, ss.v[i].addr);
            if (b.err || split_add(s, ek, (uint32_t) strlen(ek), b.data,
                                   (uint32_t) b.len) != 0)
            {
                rc = -1;
            }
        }
        ts_wbuf_free(&b);
        trk_srcs_free(&ss);
        return rc;
    }

    case 'L': case 'M':
        ts_rbuf_init(&r, v + 2, vlen - 2);
        n = ts_get_u32(&r);
        if (r.err || (size_t) n * 2 > ts_rbuf_left(&r)) {
            return -1;
        }
        for (i = 0; i < n; i++) {
            if (ts_get_str(&r, tmp, sizeof(tmp)) != 0
                || split_add(s, tmp, (uint32_t) strlen(tmp), "", 0) != 0)
            {
                return -1;
            }
        }
        return ts_rbuf_end(&r);

    case 'N':
        ts_rbuf_init(&r, v + 2, vlen - 2);
        n = ts_get_u32(&r);
        if (r.err || (size_t) n * 32 != ts_rbuf_left(&r)) {
            return -1;
        }
        for (i = 0; i < n; i++) {
            if (ts_get_raw(&r, h, 32) != 0 || split_add(s, h, 32, "", 0) != 0)
            {
                return -1;
            }
        }
        return 0;

    default:
        (void) bm;
        (void) bl;
        return -1;
    }
}


/* ---- join: elements -> application value ------------------------------ */

static int
stamp_order(const void *a, const void *b)
{
    const trk_elem_t *x = *(trk_elem_t * const *) a;
    const trk_elem_t *y = *(trk_elem_t * const *) b;
    int               c = trk_stamp_cmp(x->st, y->st);

    return c != 0 ? c : ek_cmp(x->ek, x->eklen, y->ek, y->eklen);
}


static int
join_group(const trk_inc_t *in, ts_wbuf_t *out)
{
    trk_elem_t **v;
    uint32_t     i, n = 0, nm = 0, seq = 1;
    int          pass;

    v = malloc((in->n ? in->n : 1) * sizeof(*v));
    if (v == NULL) {
        return -1;
    }
    for (i = 0; i < in->n; i++) {
        if (!in->e[i].tomb && in->e[i].vlen == 1 && in->e[i].eklen > 0
            && in->e[i].eklen <= TS_ID_MAX_B)
        {
            v[n++] = &in->e[i];
            nm += in->e[i].val[0] == ST_MEMBER;
        }
    }
    if (nm == 0) {
        free(v);
        return 1;
    }
    qsort(v, n, sizeof(*v), stamp_order);
    ts_put_u8(out, 'G');
    ts_put_u8(out, APP_VERSION);
    /* the owner: the member that joined first */
    for (i = 0; i < n; i++) {
        if (v[i]->val[0] == ST_MEMBER) {
            ts_put_u16(out, (uint16_t) v[i]->eklen);
            ts_put_raw(out, v[i]->ek, v[i]->eklen);
            break;
        }
    }
    ts_put_u64(out, (uint64_t) n + 1);
    for (pass = 0; pass < 2; pass++) {
        uint8_t want = pass == 0 ? ST_MEMBER : ST_PENDING;
        uint32_t cnt = 0;

        for (i = 0; i < n; i++) {
            cnt += v[i]->val[0] == want;
        }
        ts_put_u32(out, cnt);
        for (i = 0; i < n; i++) {
            if (v[i]->val[0] == want) {
                ts_put_u16(out, (uint16_t) v[i]->eklen);
                ts_put_raw(out, v[i]->ek, v[i]->eklen);
                ts_put_u64(out, seq++);
            }
        }
    }
    free(v);
    return out->err ? -1 : 0;
}


/* 1 if a p/ source element (u8 complete, u32 held, blob bitmap) is
 * consistent with a header of nchunks chunks. */
static int
src_fits(const trk_elem_t *e, uint32_t nchunks)
{
    ts_rbuf_t      r;
    const uint8_t *bm;
    uint32_t       bml, held, cnt = 0, i;
    uint8_t        complete;

    if (memchr(e->ek, '/', e->eklen) == NULL) {
        return 0;
    }
    ts_rbuf_init(&r, e->val, e->vlen);
    complete = ts_get_u8(&r);
    held = ts_get_u32(&r);
    bm = ts_get_blob(&r, &bml, (nchunks + 7) / 8);
    if (r.err || ts_rbuf_left(&r) != 0 || complete > 1) {
        return 0;
    }
    if (complete) {
        return bml == 0 && held == nchunks;
    }
    if (bml != (nchunks + 7) / 8 || (bml > 0 && bm == NULL)) {
        return 0;
    }
    for (i = 0; i < nchunks; i++) {
        cnt += (bm[i / 8] >> (i % 8)) & 1u;
    }
    return cnt == held;
}


static int
join_value(uint8_t kind, const trk_inc_t *in, ts_wbuf_t *out)
{
    uint32_t i, n = 0, hn;
    const trk_elem_t *hdr = NULL;

    for (i = 0; i < in->n; i++) {
        n += !in->e[i].tomb;
    }
    switch (kind) {
    case 'U': case 'F': case 'R': case 'S':
        if (in->n != 1 || in->e[0].tomb || in->e[0].eklen != 0) {
            return 1;
        }
        ts_put_raw(out, in->e[0].val, in->e[0].vlen);
        return out->err ? -1 : 0;

    case 'G':
        return join_group(in, out);

    case 'P':
        if (in->n == 0 || in->e[0].eklen != 0 || in->e[0].tomb) {
            return 1;
        }
        hdr = &in->e[0];
        if (n <= 1 || hdr->vlen != 12) {
            return 1;
        }
        /* the header is LWW, sources are written against the header
         * their writer saw: after concurrent uploads of different
         * contents they may not fit; such sources are left out */
        hn = (uint32_t) hdr->val[8] << 24 | (uint32_t) hdr->val[9] << 16
             | (uint32_t) hdr->val[10] << 8 | hdr->val[11];
        n = 0;
        for (i = 1; i < in->n; i++) {
            n += !in->e[i].tomb && src_fits(&in->e[i], hn);
        }
        if (n == 0) {
            return 1;
        }
        ts_put_u8(out, 'P');
        ts_put_u8(out, APP_VERSION);
        ts_put_raw(out, hdr->val, 12);
        ts_put_u32(out, n);
        for (i = 1; i < in->n; i++) {
            const trk_elem_t *e = &in->e[i];
            const uint8_t    *sl;

            if (e->tomb || !src_fits(e, hn)) {
                continue;
            }
            sl = memchr(e->ek, '/', e->eklen);
            if (sl == NULL) {
                return -1;
            }
            ts_put_u16(out, (uint16_t) (sl - e->ek));
            ts_put_raw(out, e->ek, (size_t) (sl - e->ek));
            ts_put_u16(out, (uint16_t) (e->eklen - (uint32_t) (sl - e->ek)
                                        - 1));
            ts_put_raw(out, sl + 1, e->eklen - (size_t) (sl - e->ek) - 1);
            ts_put_raw(out, e->val, e->vlen);
        }
        return out->err ? -1 : 0;

    case 'L': case 'M': case 'N':
        if (n == 0) {
            return 1;
        }
        ts_put_u8(out, kind);
        ts_put_u8(out, APP_VERSION);
        ts_put_u32(out, n);
        for (i = 0; i < in->n; i++) {
            if (in->e[i].tomb) {
                continue;
            }
            if (kind != 'N') {
                ts_put_u16(out, (uint16_t) in->e[i].eklen);
            }
            ts_put_raw(out, in->e[i].ek, in->e[i].eklen);
        }
        return out->err ? -1 : 0;

    default:
        return -1;
    }
}


int
trk_rec_view(const trk_rec_t *r, const void *key, size_t klen,
             ts_wbuf_t *out)
{
    const trk_inc_t *in;

    ts_wbuf_reset(out);
    if (!trk_key_replicated(key, klen)) {
        return -1;
    }
    in = trk_rec_visible(r);
    if (in == NULL) {
        return 1;
    }
    return join_value(key_app_kind(key), in, out);
}


/* ---- writes ------------------------------------------------------------ */

static int
elem_ek_order(const void *a, const void *b)
{
    const trk_elem_t *x = a, *y = b;

    return ek_cmp(x->ek, x->eklen, y->ek, y->eklen);
}


int
trk_rec_put(trk_rec_t *r, const void *key, size_t klen, const void *val,
            size_t vlen, trk_stamp_t s)
{
    split_t     sp;
    trk_inc_t  *in;
    trk_stamp_t zero = { 0, 0 };
    uint32_t    i, pos;
    int         found, rc = -1;
    uint8_t    *seen = NULL;

    if (!trk_key_replicated(key, klen)) {
        return -1;
    }
    memset(&sp, 0, sizeof(sp));
    if (split_value(key_app_kind(key), val, vlen, &sp) != 0) {
        goto done;
    }
    if (sp.n > 1) {
        qsort(sp.e, sp.n, sizeof(*sp.e), elem_ek_order);
    }
    if (trk_key_fww(key, klen)) {
        in = r->n > 0 ? &r->inc[0] : rec_find_inc(r, s, 1);
    } else {
        in = rec_find_inc(r, zero, 1);
    }
    if (in == NULL) {
        goto done;
    }
    seen = calloc(in->n + sp.n + 1, 1);
    if (seen == NULL) {
        goto done;
    }
    for (i = 0; i < sp.n; i++) {
        trk_elem_t *e;

        pos = inc_find(in, sp.e[i].ek, sp.e[i].eklen, &found);
        if (found) {
            e = &in->e[pos];
            if (!e->tomb && e->vlen == sp.e[i].vlen
                && memcmp(e->val, sp.e[i].val, e->vlen) == 0)
            {
                continue;               /* unchanged: keeps its stamp */
            }
        } else {
            e = inc_insert_at(in, pos);
            if (e == NULL) {
                goto done;
            }
        }
        if (elem_set(e, sp.e[i].ek, sp.e[i].eklen, s, 0, sp.e[i].val,
                     sp.e[i].vlen) != 0)
        {
            goto done;
        }
    }
    /* live elements the new value lacks become tombstones */
    for (i = 0; i < in->n; i++) {
        trk_elem_t *e = &in->e[i];
        uint32_t    j;
        int         present = 0;

        if (e->tomb) {
            continue;
        }
        {
            trk_inc_t tmp;

            tmp.e = sp.e;
            tmp.n = sp.n;
            (void) inc_find(&tmp, e->ek, e->eklen, &present);
        }
        (void) j;
        if (!present && elem_set(e, e->ek, e->eklen, s, 1, "", 0) != 0) {
            goto done;
        }
    }
    rc = 0;

done:
    free(seen);
    split_free(&sp);
    return rc;
}


int
trk_rec_del(trk_rec_t *r, const void *key, size_t klen, trk_stamp_t s)
{
    uint32_t   i, j;
    trk_inc_t *in;

    if (trk_key_fww(key, klen)) {
        if (r->n == 0) {
            return 0;
        }
        r->d = s;
        rec_prune(r);
        return 0;
    }
    for (i = 0; i < r->n; i++) {
        in = &r->inc[i];
        for (j = 0; j < in->n; j++) {
            if (!in->e[j].tomb
                && elem_set(&in->e[j], in->e[j].ek, in->e[j].eklen, s, 1,
                            "", 0) != 0)
            {
                return -1;
            }
        }
    }
    return 0;
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
                in = rec_find_inc(out, src->c, 1);
                if (in == NULL) {
                    return -1;
                }
            }
            if (inc_reserve(in, 1) != 0
                || elem_set(&in->e[in->n], src->e[j].ek, src->e[j].eklen,
                            src->e[j].st, src->e[j].tomb, src->e[j].val,
                            src->e[j].vlen) != 0)
            {
                return -1;
            }
            in->n++;
        }
        if (whole && in == NULL && rec_find_inc(out, src->c, 1) == NULL) {
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
    pos = inc_find(&r->inc[0], user, (uint32_t) ul, &found);
    if (found && !r->inc[0].e[pos].tomb) {
        return 0;
    }
    for (i = 1; i < r->n; i++) {
        pos = inc_find(&r->inc[i], user, (uint32_t) ul, &found);
        if (found && !r->inc[i].e[pos].tomb
            && r->inc[i].e[pos].val[0] == ST_MEMBER)
        {
            return 1;
        }
    }
    return 0;
}


int
trk_env_view(const void *key, size_t klen, const void *env, size_t envlen,
             ts_wbuf_t *out)
{
    trk_rec_t r;
    int       rc;

    if (trk_rec_decode(env, envlen, &r) != 0) {
        return -1;
    }
    rc = trk_rec_view(&r, key, klen, out);
    trk_rec_free(&r);
    return rc;
}
