/*
 * trk_codec.c -- every tracker record's encode and decode.
 *
 * Purpose: each record starts with a kind byte and a version byte and is
 * written with ts_buf; decode checks every field and every bound (ids,
 * counts, the chunk count of a size, the bits of a bitmap), so a corrupt
 * or hostile record is an error (-1), never a crash.  The decoders are
 * fuzzed (tests/fuzz/fuzz_records.c).
 *
 * Locking: none; pure functions on caller memory.
 *
 * Crash behaviour: nothing durable here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trk_codec.h"

void
trk_codec_put_head(ts_wbuf_t *b, uint8_t kind)
{
    ts_put_u8(b, kind);
    ts_put_u8(b, TRK_REC_VERSION);
}


int
trk_codec_get_head(ts_rbuf_t *r, uint8_t kind)
{
    uint8_t k, v;

    k = ts_get_u8(r);
    v = ts_get_u8(r);
    return (r->err || k != kind || v != TRK_REC_VERSION) ? -1 : 0;
}


/* ---- users, groups, sessions ------------------------------------------ */

void
trk_user_encode(ts_wbuf_t *b, const trk_user_t *u)
{
    trk_codec_put_head(b, TRK_REC_USER);
    ts_put_raw(b, u->salt, sizeof(u->salt));
    ts_put_u32(b, u->iterations);
    ts_put_raw(b, u->hash, sizeof(u->hash));
    ts_put_u64(b, u->created_ms);
    if (u->disabled) {
        /* optional flags byte: written only when set, so the record of an
         * account never disabled is byte-identical to older versions' */
        ts_put_u8(b, TRK_USER_F_DISABLED);
    }
}


int
trk_user_decode(const void *p, size_t n, trk_user_t *u)
{
    ts_rbuf_t r;

    ts_rbuf_init(&r, p, n);
    if (trk_codec_get_head(&r, TRK_REC_USER) != 0) {
        return -1;
    }
    ts_get_raw(&r, u->salt, sizeof(u->salt));
    u->iterations = ts_get_u32(&r);
    ts_get_raw(&r, u->hash, sizeof(u->hash));
    u->created_ms = ts_get_u64(&r);
    u->disabled = 0;
    if (r.err == 0 && ts_rbuf_left(&r) == 1) {
        /* the flags byte: only a known, non-zero value (one encoding) */
        if (ts_get_u8(&r) != TRK_USER_F_DISABLED) {
            return -1;
        }
        u->disabled = 1;
    }
    if (ts_rbuf_end(&r) != 0 || u->iterations == 0) {
        return -1;
    }
    return 0;
}


void
trk_group_encode(ts_wbuf_t *b, const trk_group_t *g)
{
    uint32_t i;

    trk_codec_put_head(b, TRK_REC_GROUP);
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
    if (trk_codec_get_head(&r, TRK_REC_GROUP) != 0
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
    trk_codec_put_head(b, TRK_REC_SESSION);
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
    if (trk_codec_get_head(&r, TRK_REC_SESSION) != 0
        || ts_get_str(&r, s->user, sizeof(s->user)) != 0
        || ts_get_str(&r, s->node_addr, sizeof(s->node_addr)) != 0)
    {
        return -1;
    }
    s->created_ms = ts_get_u64(&r);
    s->user_hlc = ts_get_u64(&r);
    s->user_origin = ts_get_u8(&r);
    /* records of older versions have no node fingerprint: they end here */
    memset(s->fp, 0, sizeof(s->fp));
    if (!r.err && ts_rbuf_left(&r) == TS_FP_B) {
        (void) ts_get_raw(&r, s->fp, TS_FP_B);
    }
    if (ts_rbuf_end(&r) != 0 || !ts_valid_id(s->user)) {
        return -1;
    }
    return 0;
}



uint32_t
trk_file_nchunks(uint64_t size)
{
    return (uint32_t) ((size + TS_CHUNK_B - 1) / TS_CHUNK_B);
}


/* Chunks set in a bitmap of nchunks bits (bits past nchunks ignored). */
uint32_t
trk_bits_count(const uint8_t *bm, uint32_t nchunks)
{
    uint32_t i, n = 0, full = nchunks / 8;

    for (i = 0; i < full; i++) {
        n += (uint32_t) __builtin_popcount(bm[i]);
    }
    if (nchunks % 8) {
        n += (uint32_t) __builtin_popcount(bm[full]
                                           & ((1u << (nchunks % 8)) - 1));
    }
    return n;
}


/* ---- codec: files --------------------------------------------------- */

void
trk_file_encode(ts_wbuf_t *b, const trk_file_t *f)
{
    trk_codec_put_head(b, TRK_REC_FILE);
    ts_put_u64(b, f->size);
    ts_put_raw(b, f->sha1, sizeof(f->sha1));
    ts_put_u32(b, f->nchunks);
    ts_put_raw(b, f->hashes, (size_t) f->nchunks * 20);
    ts_put_u64(b, f->created_ms);
    ts_put_str(b, f->uploader);
}


int
trk_file_decode(const void *p, size_t n, trk_file_t *f)
{
    ts_rbuf_t r;

    memset(f, 0, sizeof(*f));
    ts_rbuf_init(&r, p, n);
    if (trk_codec_get_head(&r, TRK_REC_FILE) != 0) {
        return -1;
    }
    f->size = ts_get_u64(&r);
    ts_get_raw(&r, f->sha1, sizeof(f->sha1));
    f->nchunks = ts_get_u32(&r);
    /* the counts are checked against the bytes present before malloc */
    if (r.err || f->size > TS_FILE_MAX_B
        || f->nchunks != trk_file_nchunks(f->size)
        || (size_t) f->nchunks * 20 > ts_rbuf_left(&r))
    {
        return -1;
    }
    f->hashes = malloc(f->nchunks ? (size_t) f->nchunks * 20 : 1);
    if (f->hashes == NULL) {
        return -1;
    }
    ts_get_raw(&r, f->hashes, (size_t) f->nchunks * 20);
    f->created_ms = ts_get_u64(&r);
    if (ts_get_str(&r, f->uploader, sizeof(f->uploader)) != 0
        || ts_rbuf_end(&r) != 0 || !ts_valid_id(f->uploader))
    {
        trk_file_free(f);
        return -1;
    }
    return 0;
}


void
trk_file_free(trk_file_t *f)
{
    free(f->hashes);
    f->hashes = NULL;
}


/* ---- codec: sources ------------------------------------------------- */

void
trk_srcs_encode(ts_wbuf_t *b, const trk_srcs_t *s)
{
    uint32_t i;

    trk_codec_put_head(b, TRK_REC_SRCS);
    ts_put_u64(b, s->size);
    ts_put_u32(b, s->nchunks);
    ts_put_u32(b, s->n);
    for (i = 0; i < s->n; i++) {
        ts_put_str(b, s->v[i].user);
        ts_put_str(b, s->v[i].addr);
        ts_put_u8(b, s->v[i].complete);
        ts_put_u32(b, s->v[i].held);
        ts_put_blob(b, s->v[i].bitmap, s->v[i].bmlen);
    }
}


void
trk_srcs_free(trk_srcs_t *s)
{
    uint32_t i;

    if (s->v != NULL) {
        for (i = 0; i < s->n; i++) {
            free(s->v[i].bitmap);
        }
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}


int
trk_srcs_decode(const void *p, size_t n, trk_srcs_t *s)
{
    ts_rbuf_t       r;
    trk_src_t      *e;
    const uint8_t  *bm;
    uint32_t        i, cnt, bml, want;

    memset(s, 0, sizeof(*s));
    ts_rbuf_init(&r, p, n);
    if (trk_codec_get_head(&r, TRK_REC_SRCS) != 0) {
        return -1;
    }
    s->size = ts_get_u64(&r);
    s->nchunks = ts_get_u32(&r);
    cnt = ts_get_u32(&r);
    /* an entry takes at least 2+1 + 2 + 1 + 4 + 4 bytes */
    if (r.err || s->size > TS_FILE_MAX_B
        || s->nchunks != trk_file_nchunks(s->size)
        || cnt > TS_TRK_FILE_SOURCES_MAX_N
        || (size_t) cnt * 14 > ts_rbuf_left(&r))
    {
        return -1;
    }
    s->v = calloc(cnt ? cnt : 1, sizeof(*s->v));
    if (s->v == NULL) {
        return -1;
    }
    want = (s->nchunks + 7) / 8;
    for (i = 0; i < cnt; i++) {
        e = &s->v[i];
        s->n = i + 1;                   /* so trk_srcs_free sees it */
        if (ts_get_str(&r, e->user, sizeof(e->user)) != 0
            || ts_get_str(&r, e->addr, sizeof(e->addr)) != 0
            || !ts_valid_id(e->user) || e->addr[0] == '\0')
        {
            goto bad;
        }
        e->complete = ts_get_u8(&r);
        e->held = ts_get_u32(&r);
        bm = ts_get_blob(&r, &bml, want);
        if (r.err || e->complete > 1) {
            goto bad;
        }
        if (e->complete) {
            if (bml != 0 || e->held != s->nchunks) {
                goto bad;
            }
            continue;
        }
        if (bml != want || bm == NULL) {
            goto bad;
        }
        e->bitmap = malloc(bml ? bml : 1);
        if (e->bitmap == NULL) {
            goto bad;
        }
        memcpy(e->bitmap, bm, bml);
        e->bmlen = bml;
        if (trk_bits_count(e->bitmap, s->nchunks) != e->held) {
            goto bad;
        }
    }
    s->n = cnt;
    if (ts_rbuf_end(&r) != 0) {
        goto bad;
    }
    return 0;

bad:
    trk_srcs_free(s);
    return -1;
}


/* ---- string lists (l/, m/) -------------------------------------------- */

void
trk_strlist_free(trk_strlist_t *l)
{
    uint32_t i;

    for (i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}


/* Kept sorted (bytewise), no duplicates. */
int
trk_strlist_find(const trk_strlist_t *l, const char *s, uint32_t *pos)
{
    uint32_t lo = 0, hi = l->n, mid;
    int      c;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = strcmp(l->v[mid], s);
        if (c == 0) {
            *pos = mid;
            return 1;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *pos = lo;
    return 0;
}


/* 1 added, 0 already there, -1 out of memory. */
int
trk_strlist_add(trk_strlist_t *l, const char *s)
{
    uint32_t   pos;
    char     **nv;
    char      *d;

    if (trk_strlist_find(l, s, &pos)) {
        return 0;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        nv = realloc(l->v, l->cap * sizeof(*nv));
        if (nv == NULL) {
            return -1;
        }
        l->v = nv;
    }
    d = strdup(s);
    if (d == NULL) {
        return -1;
    }
    memmove(&l->v[pos + 1], &l->v[pos], (l->n - pos) * sizeof(*l->v));
    l->v[pos] = d;
    l->n++;
    return 1;
}


/* 1 removed, 0 not there. */
int
trk_strlist_del(trk_strlist_t *l, const char *s)
{
    uint32_t pos;

    if (!trk_strlist_find(l, s, &pos)) {
        return 0;
    }
    free(l->v[pos]);
    memmove(&l->v[pos], &l->v[pos + 1], (l->n - pos - 1) * sizeof(*l->v));
    l->n--;
    return 1;
}


void
trk_strlist_encode(ts_wbuf_t *b, uint8_t kind, const trk_strlist_t *l)
{
    uint32_t i;

    trk_codec_put_head(b, kind);
    ts_put_u32(b, l->n);
    for (i = 0; i < l->n; i++) {
        ts_put_str(b, l->v[i]);
    }
}


/* Entries of l/ are file names; of m/ "group/name". */
static int
entry_valid(uint8_t kind, const char *s)
{
    char        g[TS_ID_MAX_B + 1];
    const char *slash;
    size_t      gl;

    if (kind == TRK_REC_LIST) {
        return ts_valid_filename(s);
    }
    slash = strchr(s, '/');
    if (slash == NULL) {
        return 0;
    }
    gl = (size_t) (slash - s);
    if (gl == 0 || gl > TS_ID_MAX_B) {
        return 0;
    }
    memcpy(g, s, gl);
    g[gl] = '\0';
    return ts_valid_id(g) && ts_valid_filename(slash + 1);
}


int
trk_strlist_decode(const void *p, size_t n, uint8_t kind, uint32_t max,
               trk_strlist_t *l)
{
    ts_rbuf_t r;
    char      tmp[TRK_ENTRY_B + 1];
    uint32_t  i, cnt;

    memset(l, 0, sizeof(*l));
    ts_rbuf_init(&r, p, n);
    if (trk_codec_get_head(&r, kind) != 0) {
        return -1;
    }
    cnt = ts_get_u32(&r);
    if (r.err || cnt > max || (size_t) cnt * 3 > ts_rbuf_left(&r)) {
        return -1;
    }
    l->v = calloc(cnt ? cnt : 1, sizeof(*l->v));
    if (l->v == NULL) {
        return -1;
    }
    l->cap = cnt ? cnt : 1;
    for (i = 0; i < cnt; i++) {
        if (ts_get_str(&r, tmp, sizeof(tmp)) != 0 || !entry_valid(kind, tmp)
            || (i > 0 && strcmp(l->v[i - 1], tmp) >= 0))
        {
            goto bad;
        }
        l->v[i] = strdup(tmp);
        if (l->v[i] == NULL) {
            goto bad;
        }
        l->n = i + 1;
    }
    if (ts_rbuf_end(&r) != 0) {
        goto bad;
    }
    return 0;

bad:
    trk_strlist_free(l);
    return -1;
}
