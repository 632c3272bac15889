/*
 * trk_files.c -- the tracker's file registry (message types 30..35).
 *
 * Purpose: groups share files by name.  A file's metadata (size, whole
 * SHA1, chunk hashes) lives in f/<group>/<name>; who serves it lives in
 * p/<group>/<name> (small, rewritten by every HAVE_CHUNKS); l/<group> lists
 * a group's names, m/<user>/<node> lists what one node shares, and
 * n/<user>/<node> lists the sessions logged in from a node, which is all
 * that presence needs: a source is online while one of those sessions is
 * live (shm session cache, or tdb when the cache does not know it).  The
 * key schema is described in trk_files.h.  FILE_INFO (issue 5) gives each
 * source's node fingerprint (from its newest live session) and, after
 * the membership check, a download ticket signed with this tracker's key
 * for the requesting link's certificate (trk_fctx_t.signer / req_fp).
 *
 * Locking: runs on a worker's event-loop thread with that worker's tdb
 * handle.  Writes run inside the dispatcher's transaction (or the caller's,
 * for the hooks), so tdb's locks serialise them between workers; every rule
 * checks before it writes.  Session liveness reads the shm cache with
 * touch = 0 (one stripe lock at a time, held only inside trk_shm.c).
 *
 * Crash behaviour: nothing here outlives a transaction half-done: a worker
 * killed mid-request leaves tdb as it was.  Indexes (l/, m/, n/) are
 * updated in the same transaction as the records they index.  A record
 * that fails to decode is an error for the request that met it
 * (TS_ERR_INTERNAL), except on leave/dissolve, where a corrupt file is
 * dropped so that a group can always be left.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tdb.h>

#include "ts_log.h"
#include "ts_net.h"
#include "trk_ops.h"
#include "trk_files.h"
#include "trk_keys.h"



#define BAD_NAME     "invalid file name"
#define NO_NODE      "this session has no node address; log in from a node"


/* 0 found, 1 absent (l empty), -1 error or corrupt. */
static int
strlist_get(trk_store_t *st, TDB_DATA key, uint8_t kind, uint32_t max,
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
static int
strlist_put(trk_store_t *st, TDB_DATA key, uint8_t kind, const trk_strlist_t *l)
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


typedef struct {
    uint32_t n;
    uint8_t  h[TS_TRK_NODE_SESSIONS_MAX_N][32];
} sesslist_t;


/* 0 found, 1 absent (empty), -1 error or corrupt. */
static int
sesslist_get(trk_store_t *st, TDB_DATA key, sesslist_t *s)
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
sesslist_put(trk_store_t *st, TDB_DATA key, const sesslist_t *s)
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


static int
srcs_put(trk_store_t *st, const char *group, const char *name,
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


static int
src_find(const trk_srcs_t *s, const char *user, const char *addr)
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


static void
src_remove_at(trk_srcs_t *s, uint32_t i)
{
    free(s->v[i].bitmap);
    memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(*s->v));
    s->n--;
}


/* The m/<user>/<addr> index: add (add = 1) or remove "group/name". */
static int
shares_update(trk_store_t *st, const char *user, const char *addr,
              const char *group, const char *name, int add)
{
    char      kb[TRK_KEY_B];
    char      ent[TRK_ENTRY_B + 1];
    TDB_DATA  key;
    trk_strlist_t l;
    int       rc;

    snprintf(ent, sizeof(ent), "%s/%s", group, name);
    key = trk_key(kb, TRK_KEY_SHARES, user, addr);
    rc = strlist_get(st, key, TRK_REC_SHARES, TS_TRK_NODE_SHARES_MAX_N, &l);
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
    if (rc < 0 || (rc > 0 && strlist_put(st, key, TRK_REC_SHARES, &l) != 0)) {
        trk_strlist_free(&l);
        return -1;
    }
    trk_strlist_free(&l);
    return 0;
}


/* Drops a file's records and its name from l/<group>; the callers fix
 * the m/ entries of its sources. */
static int
file_drop(trk_store_t *st, const char *group, const char *name)
{
    char      kb[TRK_KEY_B];
    TDB_DATA  key;
    trk_strlist_t l;
    int       rc;

    if (trk_kv_delete(st, trk_key(kb, TRK_KEY_FILE, group, name)) != 0
        || trk_kv_delete(st, trk_key(kb, TRK_KEY_SOURCES, group, name)) != 0)
    {
        return -1;
    }
    key = trk_key(kb, TRK_KEY_LIST, group, NULL);
    rc = strlist_get(st, key, TRK_REC_LIST, TS_TRK_GROUP_FILES_MAX_N, &l);
    if (rc == 1) {
        return 0;
    }
    if (rc < 0) {
        return -1;
    }
    rc = 0;
    if (trk_strlist_del(&l, name) > 0) {
        rc = strlist_put(st, key, TRK_REC_LIST, &l);
    }
    trk_strlist_free(&l);
    return rc;
}


/* ---- presence ------------------------------------------------------- */

static int
sess_live(const trk_fctx_t *c, const uint8_t h[32])
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
node_online(const trk_fctx_t *c, const char *user, const char *addr,
            uint8_t *fp)
{
    char          kb[TRK_KEY_B];
    sesslist_t   *sl;
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
    if (sesslist_get(c->st, trk_key(kb, TRK_KEY_NODE, user, addr), sl) == 0) {
        for (i = 0; i < sl->n && (!on || fp != NULL); i++) {
            if (!sess_live(c, sl->h[i])) {
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
static int
src_useful(const trk_fctx_t *c, const trk_src_t *e, uint8_t *fp)
{
    if (!e->complete && e->held == 0) {
        return 0;
    }
    return node_online(c, e->user, e->addr, fp);
}


int
trk_files_session_added(trk_store_t *st, const uint8_t h[32],
                        const char *user, const char *node_addr)
{
    char          kb[TRK_KEY_B];
    TDB_DATA      key;
    sesslist_t   *sl;
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
    if (sesslist_get(st, key, sl) < 0) {
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
    rc = sesslist_put(st, key, sl);
    free(sl);
    return rc;
}


int
trk_files_session_gone(trk_store_t *st, const uint8_t h[32])
{
    char          kb[TRK_KEY_B];
    TDB_DATA      key;
    sesslist_t   *sl;
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
    rc = sesslist_get(st, key, sl);
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
        rc = sesslist_put(st, key, sl);
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
drop_sources(trk_store_t *st, const char *group, const char *user)
{
    char       kb[TRK_KEY_B];
    TDB_DATA   lkey;
    trk_strlist_t  l;
    trk_srcs_t s;
    uint32_t   i, k;
    int        rc, changed, lchanged = 0, err = 0;

    lkey = trk_key(kb, TRK_KEY_LIST, group, NULL);
    rc = strlist_get(st, lkey, TRK_REC_LIST, TS_TRK_GROUP_FILES_MAX_N, &l);
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
            if (trk_kv_delete(st, trk_key(fk, TRK_KEY_FILE, group, l.v[i])) != 0
                || trk_kv_delete(st, trk_key(fk, TRK_KEY_SOURCES, group, l.v[i])) != 0)
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
                if (shares_update(st, s.v[k].user, s.v[k].addr, group,
                                  l.v[i], 0) != 0)
                {
                    err = 1;
                }
                src_remove_at(&s, k);
                changed = 1;
                continue;
            }
            k++;
        }
        if (s.n == 0) {
            char fk[TRK_KEY_B];
            if (trk_kv_delete(st, trk_key(fk, TRK_KEY_FILE, group, l.v[i])) != 0
                || trk_kv_delete(st, trk_key(fk, TRK_KEY_SOURCES, group, l.v[i])) != 0)
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
        if (changed && srcs_put(st, group, l.v[i], &s) != 0) {
            err = 1;
        }
        trk_srcs_free(&s);
        i++;
    }
    if (!err && lchanged && strlist_put(st, lkey, TRK_REC_LIST, &l) != 0) {
        err = 1;
    }
    trk_strlist_free(&l);
    return err ? -1 : 0;
}


int
trk_files_member_left(trk_store_t *st, const char *group, const char *user)
{
    return drop_sources(st, group, user);
}


int
trk_files_group_gone(trk_store_t *st, const char *group)
{
    return drop_sources(st, group, NULL);
}


/* ---- rules ---------------------------------------------------------- */

static ts_status_t
check_member(const trk_fctx_t *c, const char *group, char *msg,
             size_t msgsz)
{
    trk_group_t g;
    uint32_t    i;
    int         rc, found = 0;

    if (!ts_valid_id(group)) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ, TRK_BAD_GROUP_ID);
    }
    rc = trk_group_get(c->st, group, &g);
    if (rc == 1) {
        return trk_ops_fail(msg, msgsz, TS_ERR_NOTFOUND, "no such group '%s'",
                    group);
    }
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    for (i = 0; i < g.nmembers; i++) {
        if (strcmp(g.members[i].user, c->user) == 0) {
            found = 1;
        }
    }
    trk_group_free(&g);
    if (!found && trk_group_lost(c->st, group, c->user)) {
        /* K1: the user's incarnation of the group lost to an earlier
         * concurrent creation on another tracker; so did its files */
        return trk_ops_fail(msg, msgsz, TS_ERR_CONFLICT, "group '%s' was created "
                    "concurrently on another tracker and lost; your files "
                    "there are gone; create a new group", group);
    }
    if (!found) {
        return trk_ops_fail(msg, msgsz, TS_ERR_PERM, "not a member of '%s'", group);
    }
    return TS_OK;
}


static ts_status_t
check_file_args(const trk_fctx_t *c, const char *group, const char *name,
                int need_node, char *msg, size_t msgsz)
{
    if (!ts_valid_id(group)) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ, TRK_BAD_GROUP_ID);
    }
    if (!ts_valid_filename(name)) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ, BAD_NAME);
    }
    if (need_node && (c->node_addr == NULL || c->node_addr[0] == '\0')) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ, NO_NODE);
    }
    return check_member(c, group, msg, msgsz);
}


/* Sets (user, addr) of c as a source: complete, or partial with bitmap.
 * 1 new source, 0 updated, -1 out of memory, -2 too many sources. */
static int
src_set(const trk_fctx_t *c, trk_srcs_t *s, int complete,
        const uint8_t *bm, uint32_t bmlen, uint32_t held)
{
    trk_src_t *e, *nv;
    uint8_t   *nb = NULL;
    int        i, added = 0;

    if (!complete) {
        nb = malloc(bmlen ? bmlen : 1);
        if (nb == NULL) {
            return -1;
        }
        memcpy(nb, bm, bmlen);
        /* bits past the last chunk mean nothing: keep them clear */
        if (s->nchunks % 8 && bmlen > 0) {
            nb[bmlen - 1] &= (uint8_t) ((1u << (s->nchunks % 8)) - 1);
        }
    }
    i = src_find(s, c->user, c->node_addr);
    if (i < 0) {
        if (s->n >= TS_TRK_FILE_SOURCES_MAX_N) {
            free(nb);
            return -2;
        }
        nv = realloc(s->v, (s->n + 1) * sizeof(*nv));
        if (nv == NULL) {
            free(nb);
            return -1;
        }
        s->v = nv;
        i = (int) s->n++;
        memset(&s->v[i], 0, sizeof(s->v[i]));
        snprintf(s->v[i].user, sizeof(s->v[i].user), "%s", c->user);
        snprintf(s->v[i].addr, sizeof(s->v[i].addr), "%s", c->node_addr);
        added = 1;
    }
    e = &s->v[i];
    free(e->bitmap);
    e->bitmap = nb;
    e->bmlen = complete ? 0 : bmlen;
    e->complete = complete ? 1 : 0;
    e->held = complete ? s->nchunks : held;
    return added;
}


ts_status_t
trk_do_upload(const trk_fctx_t *c, const char *group, const char *name,
              uint64_t size, const uint8_t sha1[20], uint32_t nchunks,
              const uint8_t *hashes, char *msg, size_t msgsz)
{
    char        kb[TRK_KEY_B];
    TDB_DATA    lkey;
    trk_file_t  f;
    trk_srcs_t  s;
    trk_strlist_t   l;
    ts_wbuf_t   b;
    ts_status_t st;
    int         rc, added;

    if (size > TS_FILE_MAX_B) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ, "file too large (max %llu "
                    "bytes)", (unsigned long long) TS_FILE_MAX_B);
    }
    if (nchunks != trk_file_nchunks(size)) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ,
                    "chunk count does not match the size");
    }
    st = check_file_args(c, group, name, 1, msg, msgsz);
    if (st != TS_OK) {
        return st;
    }
    rc = trk_file_get(c->st, group, name, &f);
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    if (rc == 0) {
        /* the same name again: only the same content adds a source */
        int same = f.size == size && f.nchunks == nchunks
                   && memcmp(f.sha1, sha1, 20) == 0
                   && memcmp(f.hashes, hashes, (size_t) nchunks * 20) == 0;
        trk_file_free(&f);
        if (!same) {
            return trk_ops_fail(msg, msgsz, TS_ERR_EXISTS, "a different file named "
                        "'%s' is already shared in '%s'", name, group);
        }
        rc = trk_srcs_get(c->st, group, name, &s);
        if (rc < 0) {
            return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
        }
        if (rc == 0 && (s.size != size || s.nchunks != nchunks)) {
            /* sources of a concurrent upload of other contents (the
             * LWW header): not sources of this file */
            trk_srcs_free(&s);
            rc = 1;
        }
        if (rc == 1) {
            memset(&s, 0, sizeof(s));
        }
        s.size = size;
        s.nchunks = nchunks;
        added = src_set(c, &s, 1, NULL, 0, nchunks);
        if (added == -2) {
            trk_srcs_free(&s);
            return trk_ops_fail(msg, msgsz, TS_ERR_LIMIT,
                        "too many sources for '%s'", name);
        }
        rc = added < 0 ? -1 : srcs_put(c->st, group, name, &s);
        trk_srcs_free(&s);
        if (rc == 0 && added) {
            rc = shares_update(c->st, c->user, c->node_addr, group, name, 1);
        }
        if (rc == -2) {
            return trk_ops_fail(msg, msgsz, TS_ERR_LIMIT,
                        "this node shares too many files");
        }
        return rc == 0 ? TS_OK : trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }

    /* a new file */
    lkey = trk_key(kb, TRK_KEY_LIST, group, NULL);
    rc = strlist_get(c->st, lkey, TRK_REC_LIST, TS_TRK_GROUP_FILES_MAX_N, &l);
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    if (l.n >= TS_TRK_GROUP_FILES_MAX_N) {
        trk_strlist_free(&l);
        return trk_ops_fail(msg, msgsz, TS_ERR_LIMIT, "too many files in '%s'",
                    group);
    }
    rc = shares_update(c->st, c->user, c->node_addr, group, name, 1);
    if (rc == -2) {
        trk_strlist_free(&l);
        return trk_ops_fail(msg, msgsz, TS_ERR_LIMIT,
                    "this node shares too many files");
    }
    memset(&f, 0, sizeof(f));
    f.size = size;
    memcpy(f.sha1, sha1, 20);
    f.nchunks = nchunks;
    f.hashes = (uint8_t *) hashes;
    f.created_ms = (uint64_t) ts_wall_ms();
    snprintf(f.uploader, sizeof(f.uploader), "%s", c->user);
    memset(&s, 0, sizeof(s));
    s.size = size;
    s.nchunks = nchunks;
    if (rc == 0 && (trk_strlist_add(&l, name) < 0
                    || src_set(c, &s, 1, NULL, 0, nchunks) < 0))
    {
        rc = -1;
    }
    if (rc == 0) {
        ts_wbuf_init(&b);
        trk_file_encode(&b, &f);
        rc = trk_kv_store(c->st, trk_key(kb, TRK_KEY_FILE, group, name), &b);
        ts_wbuf_free(&b);
    }
    if (rc == 0) {
        rc = srcs_put(c->st, group, name, &s);
    }
    if (rc == 0) {
        rc = strlist_put(c->st, trk_key(kb, TRK_KEY_LIST, group, NULL), TRK_REC_LIST, &l);
    }
    trk_srcs_free(&s);
    trk_strlist_free(&l);
    return rc == 0 ? TS_OK : trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
}


ts_status_t
trk_do_list_files(const trk_fctx_t *c, const char *group, ts_wbuf_t *body,
                  char *msg, size_t msgsz)
{
    char        kb[TRK_KEY_B];
    trk_strlist_t   l;
    trk_srcs_t  s;
    trk_file_t  f;
    ts_wbuf_t   rows;
    ts_status_t st;
    uint32_t    i, k, n = 0, on;
    uint64_t    size;
    int         rc;

    st = check_member(c, group, msg, msgsz);
    if (st != TS_OK) {
        return st;
    }
    rc = strlist_get(c->st, trk_key(kb, TRK_KEY_LIST, group, NULL), TRK_REC_LIST,
                     TS_TRK_GROUP_FILES_MAX_N, &l);
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    ts_wbuf_init(&rows);
    for (i = 0; i < l.n; i++) {
        if (trk_srcs_get(c->st, group, l.v[i], &s) != 0) {
            continue;       /* logged; one bad file does not hide all */
        }
        on = 0;
        size = s.size;
        if (trk_file_get(c->st, group, l.v[i], &f) == 0) {
            /* sources of a concurrent upload that lost do not count */
            if (f.size == s.size && f.nchunks == s.nchunks) {
                for (k = 0; k < s.n; k++) {
                    on += (uint32_t) src_useful(c, &s.v[k], NULL);
                }
            }
            size = f.size;
            trk_file_free(&f);
        }
        ts_put_str(&rows, l.v[i]);
        ts_put_u64(&rows, size);
        ts_put_u32(&rows, on);
        n++;
        trk_srcs_free(&s);
    }
    trk_strlist_free(&l);
    ts_put_u32(body, n);
    ts_put_raw(body, rows.data, rows.len);
    rc = rows.err;
    ts_wbuf_free(&rows);
    return rc ? trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, "listing too large")
              : TS_OK;
}


/* Appends blob ticket: the requester may fetch group/name until now +
 * TTL.  0, or -1 when signing failed. */
static int
put_ticket(const trk_fctx_t *c, const char *group, const char *name,
           ts_wbuf_t *body)
{
    ts_ticket_t  t;
    ts_wbuf_t    tb;
    int          rc;

    /* no certificate, no ticket (the bench build has no certificates and
     * gets tickets for the zero fingerprint) */
    if (c->signer == NULL || (c->req_fp == NULL && ts_tls_enabled())) {
        ts_put_blob(body, NULL, 0);
        return 0;
    }
    memset(&t, 0, sizeof(t));
    snprintf(t.group, sizeof(t.group), "%s", group);
    snprintf(t.name, sizeof(t.name), "%s", name);
    if (c->req_fp != NULL) {
        memcpy(t.fp, c->req_fp, TS_FP_B);
    }
    t.issued_ms = (uint64_t) ts_wall_ms();
    t.expires_ms = t.issued_ms + (uint64_t) (c->ticket_ttl_ms > 0
                                             ? c->ticket_ttl_ms
                                             : TS_TICKET_TTL_MS);
    ts_wbuf_init(&tb);
    rc = ts_ticket_sign(c->signer, &t, &tb);
    if (rc == 0 && !tb.err && tb.len <= TS_TICKET_MAX_B) {
        ts_put_blob(body, tb.data, (uint32_t) tb.len);
    } else {
        ts_err("cannot sign a download ticket for '%s' in '%s'", name,
               group);
        rc = -1;
    }
    ts_wbuf_free(&tb);
    return rc;
}


ts_status_t
trk_do_file_info(const trk_fctx_t *c, const char *group, const char *name,
                 ts_wbuf_t *body, char *msg, size_t msgsz)
{
    trk_file_t  f;
    trk_srcs_t  s;
    ts_wbuf_t   rows;
    ts_status_t st;
    uint8_t     fp[TS_FP_B];
    uint32_t    k, n = 0;
    int         rc;

    st = check_file_args(c, group, name, 0, msg, msgsz);
    if (st != TS_OK) {
        return st;
    }
    rc = trk_file_get(c->st, group, name, &f);
    if (rc == 1) {
        return trk_ops_fail(msg, msgsz, TS_ERR_NOTFOUND, "no file '%s' in '%s'",
                    name, group);
    }
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    rc = trk_srcs_get(c->st, group, name, &s);
    if (rc < 0) {
        trk_file_free(&f);
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    if (rc == 0 && (s.size != f.size || s.nchunks != f.nchunks)) {
        /* concurrent uploads of different contents: the sources are
         * those of the other (losing) file, none of this one */
        trk_srcs_free(&s);
        rc = 1;
    }
    ts_wbuf_init(&rows);
    for (k = 0; rc == 0 && k < s.n; k++) {
        if (c->node_addr != NULL && strcmp(s.v[k].user, c->user) == 0
            && strcmp(s.v[k].addr, c->node_addr) == 0)
        {
            continue;                   /* the requester's own node */
        }
        if (!src_useful(c, &s.v[k], fp)) {
            continue;
        }
        ts_put_str(&rows, s.v[k].addr);
        ts_put_u8(&rows, s.v[k].complete);
        ts_put_u32(&rows, s.v[k].held);
        ts_put_raw(&rows, fp, TS_FP_B);
        n++;
    }
    if (rc == 0) {
        trk_srcs_free(&s);
    }
    ts_put_u64(body, f.size);
    ts_put_raw(body, f.sha1, 20);
    ts_put_u32(body, f.nchunks);
    ts_put_raw(body, f.hashes, (size_t) f.nchunks * 20);
    ts_put_u32(body, n);
    ts_put_raw(body, rows.data, rows.len);
    rc = rows.err;
    ts_wbuf_free(&rows);
    trk_file_free(&f);
    if (rc) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, "reply too large");
    }
    /* the membership check above is what gates the ticket */
    if (put_ticket(c, group, name, body) != 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, "cannot sign a ticket");
    }
    return TS_OK;
}


ts_status_t
trk_do_stop_share(const trk_fctx_t *c, const char *group, const char *name,
                  char *msg, size_t msgsz)
{
    trk_srcs_t  s;
    ts_status_t st;
    int         rc, i;

    st = check_file_args(c, group, name, 0, msg, msgsz);
    if (st != TS_OK) {
        return st;
    }
    rc = trk_srcs_get(c->st, group, name, &s);
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    i = rc == 0 ? src_find(&s, c->user, c->node_addr ? c->node_addr : "")
                : -1;
    if (i < 0) {
        if (rc == 0) {
            trk_srcs_free(&s);
        }
        return trk_ops_fail(msg, msgsz, TS_ERR_NOTFOUND, "not sharing '%s' in '%s'",
                    name, group);
    }
    src_remove_at(&s, (uint32_t) i);
    rc = shares_update(c->st, c->user, c->node_addr, group, name, 0);
    if (rc == 0) {
        /* the last source (online or not) takes the file with it */
        rc = s.n == 0 ? file_drop(c->st, group, name)
                      : srcs_put(c->st, group, name, &s);
    }
    trk_srcs_free(&s);
    return rc == 0 ? TS_OK : trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
}


ts_status_t
trk_do_have_chunks(const trk_fctx_t *c, const char *group, const char *name,
                   int complete, const uint8_t *bitmap, uint32_t bmlen,
                   char *msg, size_t msgsz)
{
    trk_srcs_t  s;
    ts_status_t st;
    uint32_t    held;
    int         rc, added;

    st = check_file_args(c, group, name, 1, msg, msgsz);
    if (st != TS_OK) {
        return st;
    }
    rc = trk_srcs_get(c->st, group, name, &s);
    if (rc == 1) {
        return trk_ops_fail(msg, msgsz, TS_ERR_NOTFOUND, "no file '%s' in '%s'",
                    name, group);
    }
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    if (bmlen != (s.nchunks + 7) / 8 || (bmlen > 0 && bitmap == NULL)) {
        trk_srcs_free(&s);
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ,
                    "chunk bitmap of %u bytes, %u expected", bmlen,
                    (s.nchunks + 7) / 8);
    }
    held = bmlen ? trk_bits_count(bitmap, s.nchunks) : 0;
    if (complete && held != s.nchunks) {
        trk_srcs_free(&s);
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ,
                    "a complete source must hold every chunk");
    }
    if (held == s.nchunks) {
        complete = 1;
    }
    added = src_set(c, &s, complete, bitmap, bmlen, held);
    if (added == -2) {
        trk_srcs_free(&s);
        return trk_ops_fail(msg, msgsz, TS_ERR_LIMIT, "too many sources for '%s'",
                    name);
    }
    rc = added < 0 ? -1 : srcs_put(c->st, group, name, &s);
    trk_srcs_free(&s);
    if (rc == 0 && added) {
        rc = shares_update(c->st, c->user, c->node_addr, group, name, 1);
        if (rc == -2) {
            return trk_ops_fail(msg, msgsz, TS_ERR_LIMIT,
                        "this node shares too many files");
        }
    }
    return rc == 0 ? TS_OK : trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
}


ts_status_t
trk_do_my_shares(const trk_fctx_t *c, ts_wbuf_t *body, char *msg,
                 size_t msgsz)
{
    char        kb[TRK_KEY_B];
    char        g[TS_ID_MAX_B + 1];
    trk_strlist_t   l;
    trk_srcs_t  s;
    ts_wbuf_t   rows;
    const char *slash;
    uint32_t    i, n = 0;
    int         rc, k;

    if (c->node_addr == NULL || c->node_addr[0] == '\0') {
        ts_put_u32(body, 0);
        return TS_OK;
    }
    rc = strlist_get(c->st, trk_key(kb, TRK_KEY_SHARES, c->user, c->node_addr),
                     TRK_REC_SHARES, TS_TRK_NODE_SHARES_MAX_N, &l);
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    ts_wbuf_init(&rows);
    for (i = 0; i < l.n; i++) {
        slash = strchr(l.v[i], '/');        /* entry_valid() checked it */
        memcpy(g, l.v[i], (size_t) (slash - l.v[i]));
        g[slash - l.v[i]] = '\0';
        if (trk_srcs_get(c->st, g, slash + 1, &s) != 0) {
            continue;
        }
        k = src_find(&s, c->user, c->node_addr);
        if (k >= 0) {
            ts_put_str(&rows, g);
            ts_put_str(&rows, slash + 1);
            ts_put_u8(&rows, s.v[k].complete);
            n++;
        }
        trk_srcs_free(&s);
    }
    trk_strlist_free(&l);
    ts_put_u32(body, n);
    ts_put_raw(body, rows.data, rows.len);
    rc = rows.err;
    ts_wbuf_free(&rows);
    return rc ? trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, "reply too large") : TS_OK;
}


/* ---- wire handlers -------------------------------------------------- */

/* Fills c for a logged-in request; node holds the session's node_addr. */
static int
req_ctx(trk_req_t *rq, trk_fctx_t *c, trk_session_t *sess)
{
    int rc;

    rc = trk_session_get(rq->env->st, rq->tok_hash, sess);
    if (rc != 0) {
        snprintf(rq->msg, sizeof(rq->msg), "%s",
                 rc < 0 ? TRK_DB_FAIL : "session expired; log in again");
        return rc < 0 ? TS_ERR_INTERNAL : TS_ERR_AUTH;
    }
    memset(c, 0, sizeof(*c));
    c->st = rq->env->st;
    c->shm = rq->env->shm;
    c->now_ms = ts_now_ms();
    c->timeout_ms = rq->env->session_timeout_ms;
    c->user = rq->user;
    c->node_addr = sess->node_addr;
    c->signer = rq->env->signer;
    c->ticket_ttl_ms = rq->env->ticket_ttl_ms;
    if (rq->env->link != NULL && rq->env->link->has_fp) {
        c->req_fp = rq->env->link->fp;
    }
    return TS_OK;
}


/* Reads a group id and (name != NULL) a file name.  The values are
 * validated by the rules; here only the framing counts.  -1 malformed. */
static int
get_group_name(trk_req_t *rq, char *group, size_t gsz, char *name,
               size_t nsz)
{
    if (ts_get_str(&rq->in, group, gsz) != 0
        || (name != NULL && ts_get_str(&rq->in, name, nsz) != 0))
    {
        snprintf(rq->msg, sizeof(rq->msg), "%s", TRK_MALFORMED);
        return -1;
    }
    return 0;
}


static int
malformed(trk_req_t *rq)
{
    snprintf(rq->msg, sizeof(rq->msg), "%s", TRK_MALFORMED);
    return TS_ERR_BADREQ;
}


static int
op_upload(trk_req_t *rq)
{
    trk_fctx_t     c;
    trk_session_t  sess;
    char           g[TS_STR_MAX_B + 1], nm[TS_STR_MAX_B + 1];
    uint8_t        sha1[20];
    uint64_t       size;
    uint32_t       nchunks;
    const uint8_t *hashes;
    int            st;

    if (get_group_name(rq, g, sizeof(g), nm, sizeof(nm)) != 0) {
        return TS_ERR_BADREQ;
    }
    size = ts_get_u64(&rq->in);
    ts_get_raw(&rq->in, sha1, sizeof(sha1));
    nchunks = ts_get_u32(&rq->in);
    /* the hashes are the rest: exactly 20 bytes per announced chunk */
    if (rq->in.err || nchunks > TS_FILE_MAX_CHUNKS_N + 1
        || ts_rbuf_left(&rq->in) != (size_t) nchunks * 20)
    {
        return malformed(rq);
    }
    hashes = rq->in.p + rq->in.off;
    st = req_ctx(rq, &c, &sess);
    if (st != TS_OK) {
        return st;
    }
    st = trk_do_upload(&c, g, nm, size, sha1, nchunks, hashes, rq->msg,
                       sizeof(rq->msg));
    if (st == TS_OK) {
        ts_info("'%s' shares '%s' in '%s' (%llu bytes) from %s", rq->user,
                nm, g, (unsigned long long) size, sess.node_addr);
    }
    return st;
}


static int
op_list_files(trk_req_t *rq)
{
    trk_fctx_t    c;
    trk_session_t sess;
    char          g[TS_STR_MAX_B + 1];
    int           st;

    if (get_group_name(rq, g, sizeof(g), NULL, 0) != 0
        || ts_rbuf_end(&rq->in) != 0)
    {
        return malformed(rq);
    }
    st = req_ctx(rq, &c, &sess);
    if (st != TS_OK) {
        return st;
    }
    return trk_do_list_files(&c, g, &rq->body, rq->msg, sizeof(rq->msg));
}


static int
op_file_info(trk_req_t *rq)
{
    trk_fctx_t    c;
    trk_session_t sess;
    char          g[TS_STR_MAX_B + 1], nm[TS_STR_MAX_B + 1];
    int           st;

    if (get_group_name(rq, g, sizeof(g), nm, sizeof(nm)) != 0
        || ts_rbuf_end(&rq->in) != 0)
    {
        return malformed(rq);
    }
    st = req_ctx(rq, &c, &sess);
    if (st != TS_OK) {
        return st;
    }
    return trk_do_file_info(&c, g, nm, &rq->body, rq->msg, sizeof(rq->msg));
}


static int
op_stop_share(trk_req_t *rq)
{
    trk_fctx_t    c;
    trk_session_t sess;
    char          g[TS_STR_MAX_B + 1], nm[TS_STR_MAX_B + 1];
    int           st;

    if (get_group_name(rq, g, sizeof(g), nm, sizeof(nm)) != 0
        || ts_rbuf_end(&rq->in) != 0)
    {
        return malformed(rq);
    }
    st = req_ctx(rq, &c, &sess);
    if (st != TS_OK) {
        return st;
    }
    st = trk_do_stop_share(&c, g, nm, rq->msg, sizeof(rq->msg));
    if (st == TS_OK) {
        ts_info("'%s' stopped sharing '%s' in '%s' from %s", rq->user, nm,
                g, sess.node_addr);
    }
    return st;
}


static int
op_have_chunks(trk_req_t *rq)
{
    trk_fctx_t     c;
    trk_session_t  sess;
    char           g[TS_STR_MAX_B + 1], nm[TS_STR_MAX_B + 1];
    const uint8_t *bm;
    uint32_t       bml;
    uint8_t        complete;
    int            st;

    if (get_group_name(rq, g, sizeof(g), nm, sizeof(nm)) != 0) {
        return TS_ERR_BADREQ;
    }
    complete = ts_get_u8(&rq->in);
    bm = ts_get_blob(&rq->in, &bml, (TS_FILE_MAX_CHUNKS_N + 7) / 8 + 1);
    if (bm == NULL || complete > 1 || ts_rbuf_end(&rq->in) != 0) {
        return malformed(rq);
    }
    st = req_ctx(rq, &c, &sess);
    if (st != TS_OK) {
        return st;
    }
    return trk_do_have_chunks(&c, g, nm, complete, bm, bml, rq->msg,
                              sizeof(rq->msg));
}


static int
op_my_shares(trk_req_t *rq)
{
    trk_fctx_t    c;
    trk_session_t sess;
    int           st;

    if (ts_rbuf_end(&rq->in) != 0) {
        return malformed(rq);
    }
    st = req_ctx(rq, &c, &sess);
    if (st != TS_OK) {
        return st;
    }
    return trk_do_my_shares(&c, &rq->body, rq->msg, sizeof(rq->msg));
}


void
trk_files_init(void)
{
    static const trk_op_t ops[] = {
        { TS_MSG_UPLOAD_FILE, 1, 1, op_upload },
        { TS_MSG_LIST_FILES,  1, 0, op_list_files },
        { TS_MSG_FILE_INFO,   1, 0, op_file_info },
        { TS_MSG_STOP_SHARE,  1, 1, op_stop_share },
        { TS_MSG_HAVE_CHUNKS, 1, 1, op_have_chunks },
        { TS_MSG_MY_SHARES,   1, 0, op_my_shares },
    };

    (void) trk_ops_register(ops, sizeof(ops) / sizeof(ops[0]));
}


/* trk_ops_init() only sets its own entries, so registering before it (at
 * program start) is safe and needs no change in the mains. */
static void trk_files_ctor(void) __attribute__((constructor));

static void
trk_files_ctor(void)
{
    trk_files_init();
}
