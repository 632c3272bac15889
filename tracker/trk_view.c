/*
 * trk_view.c -- between a merge envelope and the application value the
 * rule code reads and writes: the per-kind split (value -> elements) and
 * join (elements -> value), and the writes trk_rec_put / trk_rec_del.
 *
 * Purpose: a group is split into one element per member and per pending
 * request, a source list into one element per source, every other kind
 * into one element holding the whole value; join builds the value back
 * from the visible incarnation (trk_merge.c has the envelope and the
 * merge itself).
 *
 * Locking: none; pure functions on caller-owned memory.
 *
 * Crash behaviour: nothing persistent here.  Values that do not decode
 * are refused (-1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_config.h"
#include "ts_proto.h"
#include "trk_codec.h"
#include "trk_merge.h"

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
    s->e[s->n].ek = trk_dup_bytes(ek, eklen);
    s->e[s->n].eklen = eklen;
    s->e[s->n].val = trk_dup_bytes(val, vlen);
    s->e[s->n].vlen = vlen;
    if (s->e[s->n].ek == NULL || s->e[s->n].val == NULL) {
        trk_elem_free(&s->e[s->n]);
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
        trk_elem_free(&s->e[i]);
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

    if (vlen < 2 || v[0] != kind || v[1] != TRK_APP_VERSION) {
        return -1;
    }
    switch (kind) {
    case 'U': case 'F': case 'R': case 'S':
        return split_add(s, "", 0, v, (uint32_t) vlen);

    case 'G': {
        trk_group_t g;
        uint8_t     m = TRK_ST_MEMBER, pd = TRK_ST_PENDING;

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

    return c != 0 ? c : trk_ek_cmp(x->ek, x->eklen, y->ek, y->eklen);
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
            nm += in->e[i].val[0] == TRK_ST_MEMBER;
        }
    }
    if (nm == 0) {
        free(v);
        return 1;
    }
    qsort(v, n, sizeof(*v), stamp_order);
    ts_put_u8(out, 'G');
    ts_put_u8(out, TRK_APP_VERSION);
    /* the owner: the member that joined first */
    for (i = 0; i < n; i++) {
        if (v[i]->val[0] == TRK_ST_MEMBER) {
            ts_put_u16(out, (uint16_t) v[i]->eklen);
            ts_put_raw(out, v[i]->ek, v[i]->eklen);
            break;
        }
    }
    ts_put_u64(out, (uint64_t) n + 1);
    /* v is in stamp order: past a list's cap (two trackers admitted
     * members at once), the earliest stay and the rest are left out --
     * the same ones on every tracker; the next write of the group turns
     * them into tombstones */
    for (pass = 0; pass < 2; pass++) {
        uint8_t  want = pass == 0 ? TRK_ST_MEMBER : TRK_ST_PENDING;
        uint32_t max = pass == 0 ? TS_GROUP_MEMBERS_MAX_N
                                 : TS_GROUP_PENDING_MAX_N;
        uint32_t cnt = 0, put = 0;

        for (i = 0; i < n; i++) {
            cnt += v[i]->val[0] == want;
        }
        ts_put_u32(out, cnt < max ? cnt : max);
        for (i = 0; i < n && put < max; i++) {
            if (v[i]->val[0] == want) {
                ts_put_u16(out, (uint16_t) v[i]->eklen);
                ts_put_raw(out, v[i]->ek, v[i]->eklen);
                ts_put_u64(out, seq++);
                put++;
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


/* Which elements of in (from index 'from' on) a joined list keeps: those
 * ok() accepts and, when more than max do, only the max earliest by
 * stamp (newest != 0: the max latest).  Stamps and element keys are
 * replicated, so every tracker keeps the same ones; a merge of two
 * trackers' concurrent additions can thus never make a record that its
 * decoder refuses for being over its cap.  Sets keep[i] for each kept
 * element; returns how many, or -1 (out of memory). */
static int64_t
join_keep(const trk_inc_t *in, uint32_t from, uint32_t max, int newest,
          int (*ok)(const trk_elem_t *e, uint32_t arg), uint32_t arg,
          uint8_t *keep)
{
    const trk_elem_t **v;
    uint32_t           i, n = 0;

    for (i = from; i < in->n; i++) {
        keep[i] = (uint8_t) ok(&in->e[i], arg);
        n += keep[i];
    }
    if (n <= max) {
        return n;
    }
    v = malloc(n * sizeof(*v));
    if (v == NULL) {
        return -1;
    }
    n = 0;
    for (i = from; i < in->n; i++) {
        if (keep[i]) {
            v[n++] = &in->e[i];
            keep[i] = 0;
        }
    }
    qsort(v, n, sizeof(*v), stamp_order);
    for (i = newest ? n - max : 0; i < (newest ? n : max); i++) {
        keep[v[i] - in->e] = 1;
    }
    free(v);
    return max;
}


static int
elem_live(const trk_elem_t *e, uint32_t unused)
{
    return !e->tomb;
}


static int
src_live_fits(const trk_elem_t *e, uint32_t nchunks)
{
    return !e->tomb && src_fits(e, nchunks);
}


/* The cap of a list kind's decoder (trk_codec.c, trk_sources.c). */
static uint32_t
list_max(uint8_t kind)
{
    switch (kind) {
    case 'L': return TS_TRK_GROUP_FILES_MAX_N;
    case 'M': return TS_TRK_NODE_SHARES_MAX_N;
    default:  return TS_TRK_NODE_SESSIONS_MAX_N;
    }
}


static int
join_sources(const trk_inc_t *in, ts_wbuf_t *out)
{
    const trk_elem_t *hdr;
    uint8_t          *keep;
    uint32_t          i, hn;
    int64_t           n;

    if (in->n == 0 || in->e[0].eklen != 0 || in->e[0].tomb) {
        return 1;
    }
    hdr = &in->e[0];
    if (in->n <= 1 || hdr->vlen != 12) {
        return 1;
    }
    /* the header is LWW, sources are written against the header their
     * writer saw: after concurrent uploads of different contents they
     * may not fit; such sources are left out, and past the cap the
     * oldest updated ones */
    hn = (uint32_t) hdr->val[8] << 24 | (uint32_t) hdr->val[9] << 16
         | (uint32_t) hdr->val[10] << 8 | hdr->val[11];
    keep = calloc(in->n, 1);
    if (keep == NULL) {
        return -1;
    }
    n = join_keep(in, 1, TS_TRK_FILE_SOURCES_MAX_N, 1, src_live_fits, hn,
                  keep);
    if (n <= 0) {
        free(keep);
        return n < 0 ? -1 : 1;
    }
    ts_put_u8(out, 'P');
    ts_put_u8(out, TRK_APP_VERSION);
    ts_put_raw(out, hdr->val, 12);
    ts_put_u32(out, (uint32_t) n);
    for (i = 1; i < in->n; i++) {
        const trk_elem_t *e = &in->e[i];
        const uint8_t    *sl;

        if (!keep[i]) {
            continue;
        }
        sl = memchr(e->ek, '/', e->eklen);
        if (sl == NULL) {
            free(keep);
            return -1;
        }
        ts_put_u16(out, (uint16_t) (sl - e->ek));
        ts_put_raw(out, e->ek, (size_t) (sl - e->ek));
        ts_put_u16(out, (uint16_t) (e->eklen - (uint32_t) (sl - e->ek)
                                    - 1));
        ts_put_raw(out, sl + 1, e->eklen - (size_t) (sl - e->ek) - 1);
        ts_put_raw(out, e->val, e->vlen);
    }
    free(keep);
    return out->err ? -1 : 0;
}


/* l/ m/ n/: a list of names (L, M) or of session hashes (N).  Past the
 * cap, file names and shares keep the earliest added, sessions the
 * latest. */
static int
join_list(uint8_t kind, const trk_inc_t *in, ts_wbuf_t *out)
{
    uint8_t *keep;
    uint32_t i;
    int64_t  n;

    keep = calloc(in->n ? in->n : 1, 1);
    if (keep == NULL) {
        return -1;
    }
    n = join_keep(in, 0, list_max(kind), kind == 'N', elem_live, 0, keep);
    if (n <= 0) {
        free(keep);
        return n < 0 ? -1 : 1;
    }
    ts_put_u8(out, kind);
    ts_put_u8(out, TRK_APP_VERSION);
    ts_put_u32(out, (uint32_t) n);
    for (i = 0; i < in->n; i++) {
        if (!keep[i]) {
            continue;
        }
        if (kind != 'N') {
            ts_put_u16(out, (uint16_t) in->e[i].eklen);
        }
        ts_put_raw(out, in->e[i].ek, in->e[i].eklen);
    }
    free(keep);
    return out->err ? -1 : 0;
}


static int
join_value(uint8_t kind, const trk_inc_t *in, ts_wbuf_t *out)
{
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
        return join_sources(in, out);

    case 'L': case 'M': case 'N':
        return join_list(kind, in, out);

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
    return join_value(trk_key_app_kind(key), in, out);
}


/* ---- writes ------------------------------------------------------------ */

static int
elem_ek_order(const void *a, const void *b)
{
    const trk_elem_t *x = a, *y = b;

    return trk_ek_cmp(x->ek, x->eklen, y->ek, y->eklen);
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
    if (split_value(trk_key_app_kind(key), val, vlen, &sp) != 0) {
        goto done;
    }
    if (sp.n > 1) {
        qsort(sp.e, sp.n, sizeof(*sp.e), elem_ek_order);
    }
    if (trk_key_fww(key, klen)) {
        in = r->n > 0 ? &r->inc[0] : trk_rec_find_inc(r, s, 1);
    } else {
        in = trk_rec_find_inc(r, zero, 1);
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

        pos = trk_inc_find(in, sp.e[i].ek, sp.e[i].eklen, &found);
        if (found) {
            e = &in->e[pos];
            if (!e->tomb && e->vlen == sp.e[i].vlen
                && memcmp(e->val, sp.e[i].val, e->vlen) == 0)
            {
                continue;               /* unchanged: keeps its stamp */
            }
        } else {
            e = trk_inc_insert_at(in, pos);
            if (e == NULL) {
                goto done;
            }
        }
        if (trk_elem_set(e, sp.e[i].ek, sp.e[i].eklen, s, 0, sp.e[i].val,
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
            (void) trk_inc_find(&tmp, e->ek, e->eklen, &present);
        }
        (void) j;
        if (!present && trk_elem_set(e, e->ek, e->eklen, s, 1, "", 0) != 0) {
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
        trk_rec_prune(r);
        return 0;
    }
    for (i = 0; i < r->n; i++) {
        in = &r->inc[i];
        for (j = 0; j < in->n; j++) {
            if (!in->e[j].tomb
                && trk_elem_set(&in->e[j], in->e[j].ek, in->e[j].eklen, s, 1,
                            "", 0) != 0)
            {
                return -1;
            }
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
