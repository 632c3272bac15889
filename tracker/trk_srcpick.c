/*
 * trk_srcpick.c -- the sources one FILE_INFO reply lists, and the
 * "proven" memory that ranks them.
 *
 * Purpose: a file may have up to TS_TRK_FILE_SOURCES_MAX_N sources and a
 * client keeps TS_NODE_SOURCES_N of them, so the reply is a sample: never
 * the first N of the record (one member with many sessions would fill it
 * with addresses nobody listens on and starve the honest seeder).  The
 * sample is shuffled afresh for each request, holds at most
 * TS_TRK_FINFO_SOURCES_N live sources and at most TS_TRK_FINFO_USER_SRC_N
 * of any one user (all the user's sessions together), and is filled in
 * this order of preference, random within each tier:
 *
 *   0  proven: another user's node reported, within TS_TRK_PROVEN_TTL_MS,
 *      that this source served it verified chunks (HAVE_CHUNKS tail);
 *      at most half the list, the rest of them rank as below;
 *   1  complete sources;
 *   2  partial sources;
 *   3  sources the requester asked to leave out (its dead ones): only to
 *      fill what is left, so a client that excluded everything still
 *      gets the list back.
 *
 * The proven record x/pv/<group>/<name> is local to this tracker (x/ keys
 * are not replicated): a hint, bounded (TS_TRK_PROVEN_N entries, the
 * oldest replaced), rebuilt by later reports, dropped with the file.
 * Only reports about another user's node count, so one account cannot
 * vouch for its own sessions.
 *
 * Locking: runs on a worker's event-loop thread with that worker's tdb
 * handle; trk_proven_note/drop inside the caller's transaction.  Liveness
 * reads the shm session cache (trk_src_useful, touch = 0).
 *
 * Crash behaviour: writes only inside the caller's transaction; a proven
 * record that does not decode is treated as empty and rewritten.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tdb.h>

#include "ts_clock.h"
#include "ts_crypto.h"
#include "ts_log.h"
#include "trk_keys.h"
#include "trk_srcpick.h"

#define PV_REC_KIND  'V'        /* local record kind byte (not replicated) */

enum { TIER_PROVEN = 0, TIER_COMPLETE, TIER_PARTIAL, TIER_EXCLUDED,
       TIERS_N, TIER_DONE = 0xFF };

typedef struct {
    char     user[TS_ID_MAX_B + 1];
    char     addr[TRK_ADDR_MAX_B];
    uint64_t ms;                /* wall clock of the last report */
} pv_ent_t;

typedef struct {
    uint32_t n;
    pv_ent_t v[TS_TRK_PROVEN_N];
} pv_t;


/* "x/pv/<group>/<name>" */
static TDB_DATA
pv_key(char *kb, const char *group, const char *name)
{
    TDB_DATA k;
    int      n;

    n = snprintf(kb, TRK_KEY_B, "%c/pv/%s/%s", TRK_KEY_LOCAL, group, name);
    k.dptr = (unsigned char *) kb;
    k.dsize = n > 0 && n < TRK_KEY_B ? (size_t) n : 0;
    return k;
}


/* 0 (absent or corrupt = empty) or -1 (tdb error). */
static int
pv_get(trk_store_t *st, const char *group, const char *name, pv_t *pv)
{
    char      kb[TRK_KEY_B];
    TDB_DATA  v;
    ts_rbuf_t r;
    uint32_t  i;
    int       rc;

    pv->n = 0;
    rc = trk_kv_fetch(st, pv_key(kb, group, name), &v);
    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }
    ts_rbuf_init(&r, v.dptr, v.dsize);
    rc = trk_codec_get_head(&r, PV_REC_KIND);
    pv->n = ts_get_u32(&r);
    if (rc != 0 || r.err || pv->n > TS_TRK_PROVEN_N) {
        pv->n = 0;
    }
    for (i = 0; i < pv->n; i++) {
        if (ts_get_str(&r, pv->v[i].user, sizeof(pv->v[i].user)) != 0
            || ts_get_str(&r, pv->v[i].addr, sizeof(pv->v[i].addr)) != 0)
        {
            break;
        }
        pv->v[i].ms = ts_get_u64(&r);
    }
    if (i < pv->n || r.err || ts_rbuf_end(&r) != 0) {
        ts_warn("proven-source record of '%s' in '%s' does not decode; "
                "dropped", name, group);
        pv->n = 0;
    }
    free(v.dptr);
    return 0;
}


static int
pv_put(trk_store_t *st, const char *group, const char *name, const pv_t *pv)
{
    char      kb[TRK_KEY_B];
    ts_wbuf_t b;
    uint32_t  i;
    int       rc;

    if (pv->n == 0) {
        return trk_kv_delete(st, pv_key(kb, group, name)) < 0 ? -1 : 0;
    }
    ts_wbuf_init(&b);
    trk_codec_put_head(&b, PV_REC_KIND);
    ts_put_u32(&b, pv->n);
    for (i = 0; i < pv->n; i++) {
        ts_put_str(&b, pv->v[i].user);
        ts_put_str(&b, pv->v[i].addr);
        ts_put_u64(&b, pv->v[i].ms);
    }
    rc = trk_kv_store(st, pv_key(kb, group, name), &b);
    ts_wbuf_free(&b);
    return rc;
}


/* Index of (user, addr) in pv, or -1. */
static int
pv_find(const pv_t *pv, const char *user, const char *addr)
{
    uint32_t i;

    for (i = 0; i < pv->n; i++) {
        if (strcmp(pv->v[i].user, user) == 0
            && strcmp(pv->v[i].addr, addr) == 0)
        {
            return (int) i;
        }
    }
    return -1;
}


int
trk_proven_drop(trk_store_t *st, const char *group, const char *name)
{
    char kb[TRK_KEY_B];

    /* absent (1) is fine: most files have no proven source */
    return trk_kv_delete(st, pv_key(kb, group, name)) < 0 ? -1 : 0;
}


int
trk_proven_note(const trk_fctx_t *c, const char *group, const char *name,
                const trk_served_t *sv, uint32_t n)
{
    trk_srcs_t  s;
    pv_t       *pv;
    uint8_t     fp[TS_FP_B];
    uint64_t    now = (uint64_t) ts_wall_ms();
    uint32_t    i, k, old;
    int         j, rc, changed = 0;

    if (n == 0 || trk_srcs_get(c->st, group, name, &s) != 0) {
        return 0;               /* nothing to note, or no such file */
    }
    pv = malloc(sizeof(*pv));
    if (pv == NULL || pv_get(c->st, group, name, pv) != 0) {
        free(pv);
        trk_srcs_free(&s);
        return -1;
    }
    for (i = 0; i < n; i++) {
        for (k = 0; k < s.n; k++) {
            /* one user cannot vouch for its own nodes */
            if (strcmp(s.v[k].addr, sv[i].addr) != 0
                || strcmp(s.v[k].user, c->user) == 0
                || !trk_src_useful(c, &s.v[k], fp)
                || memcmp(fp, sv[i].fp, TS_FP_B) != 0)
            {
                continue;
            }
            j = pv_find(pv, s.v[k].user, s.v[k].addr);
            if (j < 0 && pv->n < TS_TRK_PROVEN_N) {
                j = (int) pv->n++;
            } else if (j < 0) {
                for (old = 0, j = 1; j < (int) pv->n; j++) {
                    if (pv->v[j].ms < pv->v[old].ms) {
                        old = (uint32_t) j;
                    }
                }
                j = (int) old;          /* the oldest report makes room */
            }
            snprintf(pv->v[j].user, sizeof(pv->v[j].user), "%s",
                     s.v[k].user);
            snprintf(pv->v[j].addr, sizeof(pv->v[j].addr), "%s",
                     s.v[k].addr);
            pv->v[j].ms = now;
            changed = 1;
        }
    }
    /* forget what is stale or no longer a source of the file */
    for (i = 0, k = 0; i < pv->n; i++) {
        if (pv->v[i].ms + TS_TRK_PROVEN_TTL_MS < now
            || trk_src_find(&s, pv->v[i].user, pv->v[i].addr) < 0)
        {
            changed = 1;
            continue;
        }
        pv->v[k++] = pv->v[i];
    }
    pv->n = k;
    rc = changed ? pv_put(c->st, group, name, pv) : 0;
    free(pv);
    trk_srcs_free(&s);
    return rc;
}


/* ---- request tails ---------------------------------------------------- */

int
trk_srcpick_get_addrs(ts_rbuf_t *r, char (*out)[TRK_ADDR_MAX_B],
                      uint32_t max, uint32_t *n)
{
    uint32_t i;

    *n = 0;
    if (ts_rbuf_left(r) == 0) {
        return 0;
    }
    *n = ts_get_u32(r);
    if (r->err || *n > max) {
        *n = 0;
        return -1;
    }
    for (i = 0; i < *n; i++) {
        if (ts_get_str(r, out[i], TRK_ADDR_MAX_B) != 0) {
            *n = 0;
            return -1;
        }
    }
    return ts_rbuf_end(r) == 0 ? 0 : -1;
}


int
trk_srcpick_get_served(ts_rbuf_t *r, trk_served_t *out, uint32_t *n)
{
    uint32_t i;

    *n = 0;
    if (ts_rbuf_left(r) == 0) {
        return 0;
    }
    *n = ts_get_u32(r);
    if (r->err || *n > TS_NODE_SOURCES_N) {
        *n = 0;
        return -1;
    }
    for (i = 0; i < *n; i++) {
        if (ts_get_str(r, out[i].addr, sizeof(out[i].addr)) != 0) {
            *n = 0;
            return -1;
        }
        ts_get_raw(r, out[i].fp, TS_FP_B);
    }
    return !r->err && ts_rbuf_end(r) == 0 ? 0 : -1;
}


/* ---- the sample --------------------------------------------------------- */

/* xorshift64*: the shuffle needs no secrecy, only a fresh order per
 * request (seeded from ts_random_u64) */
static uint64_t
sp_next(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545F4914F6CDD1Dull;
}


static int
sp_tier(const trk_fctx_t *c, const trk_src_t *e, const pv_t *pv,
        uint64_t now)
{
    uint32_t i;
    int      j;

    for (i = 0; i < c->nexcl; i++) {
        if (strcmp(c->excl[i], e->addr) == 0) {
            return TIER_EXCLUDED;
        }
    }
    j = pv_find(pv, e->user, e->addr);
    if (j >= 0 && pv->v[j].ms + TS_TRK_PROVEN_TTL_MS >= now) {
        return TIER_PROVEN;
    }
    return e->complete ? TIER_COMPLETE : TIER_PARTIAL;
}


/* The index of user's row counter (*nusers for a user not seen yet), or
 * -1 when the user has its TS_TRK_FINFO_USER_SRC_N rows already. */
static int
sp_user_slot(const char **users, const uint32_t *cnt, uint32_t nusers,
             const char *user)
{
    uint32_t i;

    for (i = 0; i < nusers; i++) {
        if (strcmp(users[i], user) == 0) {
            return cnt[i] >= TS_TRK_FINFO_USER_SRC_N ? -1 : (int) i;
        }
    }
    return (int) nusers;
}


int
trk_srcpick_rows(const trk_fctx_t *c, const char *group, const char *name,
                 const trk_srcs_t *s, ts_wbuf_t *rows, uint32_t *n)
{
    const char *users[TS_TRK_FINFO_SOURCES_N];
    uint32_t    cnt[TS_TRK_FINFO_SOURCES_N];
    uint32_t    nusers = 0, m = 0, i, j, t, k, lim;
    uint8_t     fp[TS_FP_B];
    uint64_t    x, now = (uint64_t) ts_wall_ms();
    uint16_t   *ord;
    uint8_t    *tier;
    pv_t       *pv;
    int         u;

    *n = 0;
    ord = malloc((s->n ? s->n : 1) * sizeof(*ord));
    tier = malloc(s->n ? s->n : 1);
    pv = malloc(sizeof(*pv));
    if (ord == NULL || tier == NULL || pv == NULL) {
        free(ord);
        free(tier);
        free(pv);
        return -1;
    }
    if (pv_get(c->st, group, name, pv) != 0) {
        pv->n = 0;                  /* a hint only: rank without it */
    }
    for (k = 0; k < s->n && k < TS_TRK_FILE_SOURCES_MAX_N; k++) {
        if (c->node_addr != NULL && strcmp(s->v[k].user, c->user) == 0
            && strcmp(s->v[k].addr, c->node_addr) == 0)
        {
            continue;                   /* the requester's own node */
        }
        tier[k] = (uint8_t) sp_tier(c, &s->v[k], pv, now);
        ord[m++] = (uint16_t) k;
    }
    /* Fisher-Yates */
    x = ts_random_u64() | 1;
    for (i = m; i > 1; i--) {
        uint16_t tmp;

        j = (uint32_t) (sp_next(&x) % i);
        tmp = ord[i - 1];
        ord[i - 1] = ord[j];
        ord[j] = tmp;
    }
    for (t = 0; t < TIERS_N && *n < TS_TRK_FINFO_SOURCES_N; t++) {
        /* proven sources fill half the list at most: reports are the
         * word of other members, and colluding accounts could vouch for
         * dead nodes; the other half stays a fair draw */
        lim = t == TIER_PROVEN ? TS_TRK_FINFO_SOURCES_N / 2
                               : TS_TRK_FINFO_SOURCES_N;
        for (i = 0; i < m && *n < lim; i++) {
            const trk_src_t *e = &s->v[ord[i]];

            if (tier[ord[i]] != t) {
                continue;
            }
            tier[ord[i]] = TIER_DONE;
            /* the cap first (cheap), liveness after (tdb and shm) */
            u = sp_user_slot(users, cnt, nusers, e->user);
            if (u < 0 || !trk_src_useful(c, e, fp)) {
                continue;
            }
            if (u == (int) nusers) {
                users[nusers] = e->user;
                cnt[nusers++] = 0;
            }
            cnt[u]++;
            ts_put_str(rows, e->addr);
            ts_put_u8(rows, e->complete);
            ts_put_u32(rows, e->held);
            ts_put_raw(rows, fp, TS_FP_B);
            (*n)++;
        }
        for (i = 0; t == TIER_PROVEN && i < m; i++) {
            if (tier[ord[i]] == TIER_PROVEN) {      /* past the half */
                tier[ord[i]] = s->v[ord[i]].complete ? TIER_COMPLETE
                                                     : TIER_PARTIAL;
            }
        }
    }
    free(ord);
    free(tier);
    free(pv);
    return 0;
}
