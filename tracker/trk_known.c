/*
 * trk_known.c -- the node identities known to a user: what lets the
 * owner's own nodes past a login throttle that strangers drive.
 *
 * Purpose: a successful LOGIN records the node's TLS client certificate
 * fingerprint under the local key x/known/<user> (not replicated: each
 * tracker learns the nodes that logged in through it), at most
 * TS_LOGIN_KNOWN_NODES_N of them, the least recently seen replaced.  The
 * record carries the creation stamp of the account it was learned for;
 * after a merge made another incarnation of the name visible, the list
 * no longer matches and counts as empty.  A node that logged in through
 * another tracker is known here too while its session lives: sessions
 * replicate with their fingerprint, found through the n/<user>/<node>
 * index of the node address the LOGIN names.
 *
 * Record: 'K', version, user_hlc u64, user_origin u8, n u32, then n x
 * (fp[32], last seen wall ms u64).  Decoded strictly; a corrupt record
 * counts as empty and is rewritten by the next login.
 *
 * Locking: the store's (one thread per trk_store_t); writes inside the
 * caller's transaction.  Crash behaviour: written in the transaction of
 * the login that learned it, so a crash leaves the old list or the new.
 */
#include <stdlib.h>
#include <string.h>

#include "trk_keys.h"
#include "trk_known.h"

#define KNOWN_REC  'K'

typedef struct {
    uint8_t  fp[TS_FP_B];
    uint64_t seen_ms;               /* wall clock, last login */
} known_ent_t;

typedef struct {
    uint64_t    user_hlc;           /* the account incarnation */
    uint8_t     user_origin;
    uint32_t    n;
    known_ent_t v[TS_LOGIN_KNOWN_NODES_N];
} known_t;


/* 0 decoded (k filled), 1 absent, -1 error or corrupt. */
static int
known_get(trk_store_t *st, const char *user, known_t *k)
{
    char      kb[TRK_KEY_B];
    TDB_DATA  v;
    ts_rbuf_t r;
    uint32_t  i;
    int       rc;

    memset(k, 0, sizeof(*k));
    rc = trk_kv_fetch(st, trk_key(kb, TRK_KEY_LOCAL, "known", user), &v);
    if (rc != 0) {
        return rc;
    }
    ts_rbuf_init(&r, v.dptr, v.dsize);
    rc = -1;
    if (trk_codec_get_head(&r, KNOWN_REC) == 0) {
        k->user_hlc = ts_get_u64(&r);
        k->user_origin = ts_get_u8(&r);
        k->n = ts_get_u32(&r);
        if (!r.err && k->n <= TS_LOGIN_KNOWN_NODES_N
            && ts_rbuf_left(&r) == (size_t) k->n * (TS_FP_B + 8))
        {
            for (i = 0; i < k->n; i++) {
                (void) ts_get_raw(&r, k->v[i].fp, TS_FP_B);
                k->v[i].seen_ms = ts_get_u64(&r);
            }
            rc = r.err ? -1 : 0;
        }
    }
    free(v.dptr);
    if (rc != 0) {
        memset(k, 0, sizeof(*k));
    }
    return rc;
}


static int
known_put(trk_store_t *st, const char *user, const known_t *k)
{
    char      kb[TRK_KEY_B];
    ts_wbuf_t b;
    uint32_t  i;
    int       rc;

    ts_wbuf_init(&b);
    trk_codec_put_head(&b, KNOWN_REC);
    ts_put_u64(&b, k->user_hlc);
    ts_put_u8(&b, k->user_origin);
    ts_put_u32(&b, k->n);
    for (i = 0; i < k->n; i++) {
        ts_put_raw(&b, k->v[i].fp, TS_FP_B);
        ts_put_u64(&b, k->v[i].seen_ms);
    }
    rc = trk_kv_store(st, trk_key(kb, TRK_KEY_LOCAL, "known", user), &b);
    ts_wbuf_free(&b);
    return rc;
}


static int
fp_set(const uint8_t fp[TS_FP_B])
{
    static const uint8_t zero[TS_FP_B];

    return memcmp(fp, zero, TS_FP_B) != 0;
}


/* 1 if a session of node_addr's n/ index, made by fp for this
 * incarnation of user, is still in tdb. */
static int
known_by_session(trk_store_t *st, const char *user, const char *node_addr,
                 const uint8_t fp[TS_FP_B], uint64_t hlc, uint8_t origin)
{
    char          kb[TRK_KEY_B];
    TDB_DATA      v;
    ts_rbuf_t     r;
    trk_session_t s;
    uint8_t       h[TS_SHA256_B];
    uint32_t      i, n;
    int           found = 0;

    if (node_addr == NULL || node_addr[0] == '\0'
        || trk_kv_fetch(st, trk_key(kb, TRK_KEY_NODE, user, node_addr), &v)
           != 0)
    {
        return 0;
    }
    ts_rbuf_init(&r, v.dptr, v.dsize);
    n = trk_codec_get_head(&r, TRK_REC_NODE) == 0 ? ts_get_u32(&r) : 0;
    for (i = 0; !found && !r.err && i < n && i < TS_TRK_NODE_SESSIONS_MAX_N;
         i++)
    {
        if (ts_get_raw(&r, h, sizeof(h)) != 0) {
            break;
        }
        found = trk_session_get(st, h, &s) == 0
                && memcmp(s.fp, fp, TS_FP_B) == 0
                && strcmp(s.user, user) == 0
                && s.user_hlc == hlc && s.user_origin == origin;
    }
    free(v.dptr);
    return found;
}


int
trk_known_has(trk_store_t *st, const char *user, const char *node_addr,
              const uint8_t fp[TS_FP_B])
{
    known_t  *k;
    uint64_t  hlc;
    uint8_t   origin;
    uint32_t  i;
    int       found = 0;

    if (!fp_set(fp) || trk_user_stamp(st, user, &hlc, &origin) != 0) {
        return 0;                   /* no identity, or no such account */
    }
    k = malloc(sizeof(*k));
    if (k == NULL) {
        return 0;
    }
    if (known_get(st, user, k) == 0 && k->user_hlc == hlc
        && k->user_origin == origin)
    {
        for (i = 0; i < k->n && !found; i++) {
            found = memcmp(k->v[i].fp, fp, TS_FP_B) == 0;
        }
    }
    free(k);
    return found ? 1 : known_by_session(st, user, node_addr, fp, hlc,
                                        origin);
}


int
trk_known_add(trk_store_t *st, const char *user, const uint8_t fp[TS_FP_B],
              uint64_t wall_ms)
{
    known_t  *k;
    uint64_t  hlc;
    uint8_t   origin;
    uint32_t  i, old = 0;
    int       rc;

    if (!fp_set(fp) || trk_user_stamp(st, user, &hlc, &origin) != 0) {
        return 0;                   /* nothing to bind it to */
    }
    k = malloc(sizeof(*k));
    if (k == NULL) {
        return -1;
    }
    if (known_get(st, user, k) != 0 || k->user_hlc != hlc
        || k->user_origin != origin)
    {
        memset(k, 0, sizeof(*k));   /* none yet, or another incarnation's */
        k->user_hlc = hlc;
        k->user_origin = origin;
    }
    for (i = 0; i < k->n; i++) {
        if (memcmp(k->v[i].fp, fp, TS_FP_B) == 0) {
            break;
        }
        if (k->v[i].seen_ms < k->v[old].seen_ms) {
            old = i;
        }
    }
    if (i == k->n) {
        i = k->n < TS_LOGIN_KNOWN_NODES_N ? k->n++ : old;
        memcpy(k->v[i].fp, fp, TS_FP_B);
    }
    k->v[i].seen_ms = wall_ms;
    rc = known_put(st, user, k);
    free(k);
    return rc;
}
