/*
 * trk_sources.c -- who serves a file, and whether they are online: the
 * f/ p/ l/ m/ n/ records of the file registry, the presence hooks of
 * login and logout, and the clean-up when a member leaves or a group
 * dissolves.
 *
 * Purpose: a source (user, node_addr) is online while one of the sessions
 * listed in its n/ record is live: live in the shm session cache, or
 * absent from it and still present in tdb (grace after a restart).  The
 * indexes (l/, m/, n/) are kept in the same transaction as the records
 * they index.
 *
 * Locking: runs on a worker's event-loop thread with that worker's tdb
 * handle, inside the caller's transaction.  Session liveness reads the
 * shm cache with touch = 0 (one stripe lock at a time, held only inside
 * trk_shm.c).
 *
 * Crash behaviour: nothing outlives a transaction half-done.  On leave
 * and dissolve a corrupt file record is dropped, so that a group can
 * always be left.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tdb.h>

#include "ts_log.h"
#include "trk_keys.h"
#include "trk_sources.h"

/* The sessions of one node (an n/ record). */
typedef struct {
    uint32_t n;
    uint8_t  h[TS_TRK_NODE_SESSIONS_MAX_N][32];
} trk_sesslist_t;

/* 0 found, 1 absent (l empty), -1 error or corrupt. */
int
trk_strlist_get(trk_store_t *st, TDB_DATA key, uint8_t kind, uint32_t max,
                trk_strlist_t *l)
{
    TDB_DATA v;
    int      rc;

    memset(l, 0, sizeof(*l));
    rc = trk_kv_fetch(st, key, &v);
    if (rc != 0) {
        return rc;
    }
    rc = trk_strlist_decode(v.dptr, v.dsize, kind, max, l);
    free(v.dptr);
    if (rc != 0) {
        ts_err("corrupt record %.*s", (int) key.dsize, (char *) key.dptr);
    }
    return rc;
}


/* Stores l, or deletes the key when l is empty. */
int
trk_strlist_put(trk_store_t *st, TDB_DATA key, uint8_t kind,
                const trk_strlist_t *l)
{
    ts_wbuf_t b;
    int       rc;

    if (l->n == 0) {
        return trk_kv_delete(st, key);
    }
    ts_wbuf_init(&b);
    trk_strlist_encode(&b, kind, l);
    rc = trk_kv_store(st, key, &b);
    ts_wbuf_free(&b);
    return rc;
}


/* 0 found, 1 absent (empty), -1 error or corrupt. */
static int
trk_sesslist_get(trk_store_t *st, TDB_DATA key, trk_sesslist_t *s)
{
    TDB_DATA  v;
    ts_rbuf_t r;
    uint32_t  i;
    int       rc;

    s->n = 0;
    rc = trk_kv_fetch(st, key, &v);
    if (rc != 0) {
        return rc;
    }
    ts_rbuf_init(&r, v.dptr, v.dsize);
    rc = -1;
    if (trk_codec_get_head(&r, TRK_REC_NODE) == 0) {
        s->n = ts_get_u32(&r);
        if (!r.err && s->n <= TS_TRK_NODE_SESSIONS_MAX_N
            && ts_rbuf_left(&r) == (size_t) s->n * 32)
        {
            for (i = 0; i < s->n; i++) {
                ts_get_raw(&r, s->h[i], 32);
            }
            rc = ts_rbuf_end(&r);
        }
    }
    free(v.dptr);
    if (rc != 0) {
        s->n = 0;
        ts_err("corrupt record %.*s", (int) key.dsize, (char *) key.dptr);
    }
    return rc;
}


static int
trk_sesslist_put(trk_store_t *st, TDB_DATA key, const trk_sesslist_t *s)
{
    ts_wbuf_t b;
    uint32_t  i;
    int       rc;

    if (s->n == 0) {
        return trk_kv_delete(st, key);
    }
    ts_wbuf_init(&b);
    trk_codec_put_head(&b, TRK_REC_NODE);
    ts_put_u32(&b, s->n);
    for (i = 0; i < s->n; i++) {
        ts_put_raw(&b, s->h[i], 32);
    }
    rc = trk_kv_store(st, key, &b);
    ts_wbuf_free(&b);
    return rc;
}


/* ---- typed records -------------------------------------------------- */

int
trk_file_get(trk_store_t *st, const char *group, const char *name,
             trk_file_t *f)
{
    char     kb[TRK_KEY_B];
    TDB_DATA v;
    int      rc;

    memset(f, 0, sizeof(*f));
    rc = trk_kv_fetch(st, trk_key(kb, TRK_KEY_FILE, group, name), &v);
    if (rc != 0) {
        return rc;
    }
    rc = trk_file_decode(v.dptr, v.dsize, f);
    free(v.dptr);
    if (rc != 0) {
        ts_err("corrupt file record for '%s' in '%s'", name, group);
    }
    return rc;
}


int
trk_srcs_get(trk_store_t *st, const char *group, const char *name,
             trk_srcs_t *s)
{
    char     kb[TRK_KEY_B];
    TDB_DATA v;
    int      rc;

    memset(s, 0, sizeof(*s));
    rc = trk_kv_fetch(st, trk_key(kb, TRK_KEY_SOURCES, group, name), &v);
    if (rc != 0) {
        return rc;
    }
    rc = trk_srcs_decode(v.dptr, v.dsize, s);
    free(v.dptr);
    if (rc != 0) {
        ts_err("corrupt source record for '%s' in '%s'", name, group);
    }
    return rc;
}


int
trk_srcs_put(trk_store_t *st, const char *group, const char *name,
             const trk_srcs_t *s)
{
    char      kb[TRK_KEY_B];
    ts_wbuf_t b;
    int       rc;

    ts_wbuf_init(&b);
    trk_srcs_encode(&b, s);
    rc = trk_kv_store(st, trk_key(kb, TRK_KEY_SOURCES, group, name), &b);
    ts_wbuf_free(&b);
    return rc;
}


int
trk_src_find(const trk_srcs_t *s, const char *user, const char *addr)
{
    uint32_t i;

    for (i = 0; i < s->n; i++) {
        if (strcmp(s->v[i].user, user) == 0
            && strcmp(s->v[i].addr, addr) == 0)
        {
            return (int) i;
        }
    }
    return -1;
}


void
trk_src_remove_at(trk_srcs_t *s, uint32_t i)
{
    free(s->v[i].bitmap);
    memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(*s->v));
    s->n--;
}


/* The m/<user>/<addr> index: add (add = 1) or remove "group/name". */
int
trk_shares_update(trk_store_t *st, const char *user, const char *addr,
                  const char *group, const char *name, int add)
{
    char      kb[TRK_KEY_B];
    char      ent[TRK_ENTRY_B + 1];
    TDB_DATA  key;
    trk_strlist_t l;
    int       rc;

    snprintf(ent, sizeof(ent), "%s/%s", group, name);
    key = trk_key(kb, TRK_KEY_SHARES, user, addr);
    rc = trk_strlist_get(st, key, TRK_REC_SHARES, TS_TRK_NODE_SHARES_MAX_N,
                         &l);
    if (rc < 0) {
        /* an index that does not decode is rebuilt from what follows:
         * MY_SHARES checks every entry against p/ anyway */
        memset(&l, 0, sizeof(l));
    }
    if (add) {
        if (l.n >= TS_TRK_NODE_SHARES_MAX_N) {
            trk_strlist_free(&l);
            return -2;
        }
        rc = trk_strlist_add(&l, ent);
    } else {
        rc = trk_strlist_del(&l, ent);
    }
    if (rc < 0 || (rc > 0 && trk_strlist_put(st, key, TRK_REC_SHARES,
                                             &l) != 0)) {
        trk_strlist_free(&l);
        return -1;
    }
    trk_strlist_free(&l);
    return 0;
}


/* Drops a file's records and its name from l/<group>; the callers fix
 * the m/ entries of its sources. */
int
trk_file_drop(trk_store_t *st, const char *group, const char *name)
{
    char      kb[TRK_KEY_B];
    TDB_DATA  key;
    trk_strlist_t l;
    int       rc;

    if (trk_kv_delete(st, trk_key(kb, TRK_KEY_FILE, group, name)) != 0
        || trk_kv_delete(st, trk_key(kb, TRK_KEY_SOURCES, group, name)) != 0
        || trk_proven_drop(st, group, name) != 0)
    {
        return -1;
    }
    key = trk_key(kb, TRK_KEY_LIST, group, NULL);
    rc = trk_strlist_get(st, key, TRK_REC_LIST, TS_TRK_GROUP_FILES_MAX_N, &l);
    if (rc == 1) {
        return 0;
    }
    if (rc < 0) {
        return -1;
    }
    rc = 0;
    if (trk_strlist_del(&l, name) > 0) {
        rc = trk_strlist_put(st, key, TRK_REC_LIST, &l);
    }
    trk_strlist_free(&l);
    return rc;
}


/* ---- presence ------------------------------------------------------- */

static int
trk_sess_live(const trk_fctx_t *c, const uint8_t h[32])
{
    trk_session_t s;
    char          user[TS_ID_MAX_B + 1];
    int           rc;

    if (c->shm != NULL) {
        rc = trk_sess_lookup(c->shm, h, c->now_ms, c->timeout_ms, 0, user,
                             sizeof(user));
        if (rc == 1) {
            return 1;
        }
        if (rc == 2) {
            return 0;
        }
    }
    /* not cached: tdb decides (a session reloaded after a restart is
     * live until the housekeeper or a request says otherwise) */
    return trk_session_get(c->st, h, &s) == 0;
}


/* 1 if one of the node's sessions is live.  fp != NULL: fp gets the
 * node fingerprint of its newest live session (zeros if none). */
static int
trk_node_online(const trk_fctx_t *c, const char *user, const char *addr,
                uint8_t *fp)
{
    char          kb[TRK_KEY_B];
    trk_sesslist_t   *sl;
    trk_session_t s;
    uint64_t      newest = 0;
    uint32_t      i;
    int           on = 0;

    if (fp != NULL) {
        memset(fp, 0, TS_FP_B);
    }
    sl = malloc(sizeof(*sl));
    if (sl == NULL) {
        return 0;
    }
    if (trk_sesslist_get(c->st, trk_key(kb, TRK_KEY_NODE, user, addr), sl)
        == 0)
    {
        for (i = 0; i < sl->n && (!on || fp != NULL); i++) {
            if (!trk_sess_live(c, sl->h[i])) {
                continue;
            }
            /* a node that came back with a new key has a newer session */
            if (fp != NULL && trk_session_get(c->st, sl->h[i], &s) == 0
                && (!on || s.created_ms >= newest))
            {
                newest = s.created_ms;
                memcpy(fp, s.fp, TS_FP_B);
            }
            on = 1;
        }
    }
    free(sl);
    return on;
}


/* A source worth handing out: online and holding something (fp as for
 * node_online). */
int
trk_src_useful(const trk_fctx_t *c, const trk_src_t *e, uint8_t *fp)
{
    if (!e->complete && e->held == 0) {
        return 0;
    }
    return trk_node_online(c, e->user, e->addr, fp);
}


int
trk_files_session_added(trk_store_t *st, const uint8_t h[32],
                        const char *user, const char *node_addr)
{
    char          kb[TRK_KEY_B];
    TDB_DATA      key;
    trk_sesslist_t   *sl;
    trk_session_t s;
    uint32_t      i, j;
    int           rc;

    if (node_addr == NULL || node_addr[0] == '\0') {
        return 0;
    }
    sl = malloc(sizeof(*sl));
    if (sl == NULL) {
        return -1;
    }
    key = trk_key(kb, TRK_KEY_NODE, user, node_addr);
    if (trk_sesslist_get(st, key, sl) < 0) {
        sl->n = 0;                      /* rebuilt from this login on */
    }
    /* forget sessions that tdb no longer has (missed hooks, crashes) */
    for (i = 0, j = 0; i < sl->n; i++) {
        if (memcmp(sl->h[i], h, 32) == 0
            || trk_session_get(st, sl->h[i], &s) != 0)
        {
            continue;
        }
        memmove(sl->h[j++], sl->h[i], 32);
    }
    sl->n = j;
    if (sl->n == TS_TRK_NODE_SESSIONS_MAX_N) {
        memmove(sl->h[0], sl->h[1], (sl->n - 1) * 32);    /* oldest out */
        sl->n--;
    }
    memcpy(sl->h[sl->n++], h, 32);
    rc = trk_sesslist_put(st, key, sl);
    free(sl);
    return rc;
}


int
trk_files_session_gone(trk_store_t *st, const uint8_t h[32])
{
    char          kb[TRK_KEY_B];
    TDB_DATA      key;
    trk_sesslist_t   *sl;
    trk_session_t s;
    uint32_t      i;
    int           rc;

    rc = trk_session_get(st, h, &s);
    if (rc != 0 || s.node_addr[0] == '\0') {
        return 0;            /* nothing indexed for it (or unreadable) */
    }
    sl = malloc(sizeof(*sl));
    if (sl == NULL) {
        return -1;
    }
    key = trk_key(kb, TRK_KEY_NODE, s.user, s.node_addr);
    rc = trk_sesslist_get(st, key, sl);
    if (rc < 0) {
        rc = trk_kv_delete(st, key);        /* corrupt: this node is offline */
    } else if (rc == 0) {
        for (i = 0; i < sl->n; i++) {
            if (memcmp(sl->h[i], h, 32) == 0) {
                memmove(sl->h[i], sl->h[i + 1], (sl->n - i - 1) * 32);
                sl->n--;
                break;
            }
        }
        rc = trk_sesslist_put(st, key, sl);
    } else {
        rc = 0;
    }
    free(sl);
    return rc;
}


/* ---- group hooks ---------------------------------------------------- */

/* For each file of group: drops the sources of user (user NULL: all, and
 * the file with them).  Files left without a source go. */
static int
trk_drop_sources(trk_store_t *st, const char *group, const char *user)
{
    char       kb[TRK_KEY_B];
    TDB_DATA   lkey;
    trk_strlist_t  l;
    trk_srcs_t s;
    uint32_t   i, k;
    int        rc, changed, lchanged = 0, err = 0;

    lkey = trk_key(kb, TRK_KEY_LIST, group, NULL);
    rc = trk_strlist_get(st, lkey, TRK_REC_LIST, TS_TRK_GROUP_FILES_MAX_N, &l);
    if (rc == 1) {
        return 0;
    }
    if (rc < 0) {
        /* unreadable index: the group's files can no longer be found
         * through it; let the member leave, the orphans stay unlisted */
        return user == NULL ? trk_kv_delete(st, lkey) : 0;
    }
    for (i = 0; i < l.n && !err; ) {
        rc = trk_srcs_get(st, group, l.v[i], &s);
        if (rc != 0) {
            /* absent or corrupt: drop what is left of the file */
            char fk[TRK_KEY_B];
            if (trk_kv_delete(st, trk_key(fk, TRK_KEY_FILE, group,
                              l.v[i])) != 0
                || trk_kv_delete(st, trk_key(fk, TRK_KEY_SOURCES, group,
                                 l.v[i])) != 0
                || trk_proven_drop(st, group, l.v[i]) != 0)
            {
                err = 1;
            }
            free(l.v[i]);
            memmove(&l.v[i], &l.v[i + 1], (l.n - i - 1) * sizeof(*l.v));
            l.n--;
            lchanged = 1;
            continue;
        }
        changed = 0;
        for (k = 0; k < s.n; ) {
            if (user == NULL || strcmp(s.v[k].user, user) == 0) {
                if (trk_shares_update(st, s.v[k].user, s.v[k].addr, group,
                                      l.v[i], 0) != 0)
                {
                    err = 1;
                }
                trk_src_remove_at(&s, k);
                changed = 1;
                continue;
            }
            k++;
        }
        if (s.n == 0) {
            char fk[TRK_KEY_B];
            if (trk_kv_delete(st, trk_key(fk, TRK_KEY_FILE, group,
                              l.v[i])) != 0
                || trk_kv_delete(st, trk_key(fk, TRK_KEY_SOURCES, group,
                                 l.v[i])) != 0
                || trk_proven_drop(st, group, l.v[i]) != 0)
            {
                err = 1;
            }
            trk_srcs_free(&s);
            free(l.v[i]);
            memmove(&l.v[i], &l.v[i + 1], (l.n - i - 1) * sizeof(*l.v));
            l.n--;
            lchanged = 1;
            continue;
        }
        if (changed && trk_srcs_put(st, group, l.v[i], &s) != 0) {
            err = 1;
        }
        trk_srcs_free(&s);
        i++;
    }
    if (!err && lchanged && trk_strlist_put(st, lkey, TRK_REC_LIST, &l) != 0) {
        err = 1;
    }
    trk_strlist_free(&l);
    return err ? -1 : 0;
}


int
trk_files_member_left(trk_store_t *st, const char *group, const char *user)
{
    return trk_drop_sources(st, group, user);
}


int
trk_files_group_gone(trk_store_t *st, const char *group)
{
    return trk_drop_sources(st, group, NULL);
}


