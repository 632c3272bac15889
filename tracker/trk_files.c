/*
 * trk_files.c -- the tracker's file registry: the write rules (UPLOAD_FILE,
 * STOP_SHARE, HAVE_CHUNKS) and the handlers of types 30..35.
 *
 * Purpose: groups share files by name.  A file's metadata (size, whole
 * SHA1, chunk hashes) lives in f/<group>/<name>; who serves it lives in
 * p/<group>/<name> (small, rewritten by every HAVE_CHUNKS); the indexes
 * l/ and m/ and the presence records n/ are kept by trk_sources.c (keys
 * in trk_keys.h).  The read rules (LIST_FILES, FILE_INFO, MY_SHARES) are
 * in trk_file_info.c.  A write that adds a file or a source checks the
 * storage quotas first (trk_quota.h): the largest file size, then the
 * uploader's, the group's and the tracker's files and hash bytes, then
 * the uploader's shares and nodes.
 *
 * Locking: runs on a worker's event-loop thread with that worker's tdb
 * handle.  Writes run inside the dispatcher's transaction, so tdb's locks
 * serialise them between workers; every rule checks before it writes.
 *
 * Crash behaviour: a worker killed mid-request leaves tdb as it was.  A
 * record that fails to decode is an error for the request that met it
 * (TS_ERR_INTERNAL).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tdb.h>

#include "ts_log.h"
#include "ts_clock.h"
#include "ts_net.h"
#include "trk_ops.h"
#include "trk_files.h"
#include "trk_keys.h"
#include "trk_quota.h"
#include "trk_srcpick.h"



#define BAD_NAME     "invalid file name"
#define BAD_NEW_NAME "invalid file name: %s; a new file name must be " \
                     "printable UTF-8"
#define NO_NODE      "this session has no node address; log in from a node"


/* ---- rules ---------------------------------------------------------- */

ts_status_t
trk_files_check_member(const trk_fctx_t *c, const char *group, char *msg,
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
        /* the user's incarnation of the group lost to an earlier
         * concurrent creation on another tracker; so did its files */
        return trk_ops_fail(msg, msgsz, TS_ERR_CONFLICT,
                            "group '%s' was created concurrently on "
                            "another tracker and lost; your files there "
                            "are gone; create a new group", group);
    }
    if (!found) {
        return trk_ops_fail(msg, msgsz, TS_ERR_PERM, "not a member of '%s'",
                            group);
    }
    return TS_OK;
}


ts_status_t
trk_files_check_args(const trk_fctx_t *c, const char *group, const char *name,
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
    return trk_files_check_member(c, group, msg, msgsz);
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
    i = trk_src_find(s, c->user, c->node_addr);
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
    char        why[128];
    int         rc, added;

    if (size > TS_FILE_MAX_B) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ,
                            "file too large (max %llu "
                            "bytes)", (unsigned long long) TS_FILE_MAX_B);
    }
    if (nchunks != trk_file_nchunks(size)) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ,
                            "chunk count does not match the size");
    }
    st = trk_quota_check_size(size, msg, msgsz);
    if (st == TS_OK) {
        st = trk_files_check_args(c, group, name, 1, msg, msgsz);
    }
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
            return trk_ops_fail(msg, msgsz, TS_ERR_EXISTS,
                                "a different file named "
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
        if (trk_src_find(&s, c->user, c->node_addr) < 0) {
            st = trk_quota_check_share(c->st, c->user, c->node_addr, msg,
                                       msgsz);
            if (st != TS_OK) {
                trk_srcs_free(&s);
                return st;
            }
        }
        added = src_set(c, &s, 1, NULL, 0, nchunks);
        if (added == -2) {
            trk_srcs_free(&s);
            return trk_ops_fail(msg, msgsz, TS_ERR_LIMIT,
                                "too many sources for '%s'", name);
        }
        rc = added < 0 ? -1 : trk_srcs_put(c->st, group, name, &s);
        trk_srcs_free(&s);
        if (rc == 0 && added) {
            rc = trk_shares_update(c->st, c->user, c->node_addr, group, name,
                                   1);
        }
        if (rc == -2) {
            return trk_ops_fail(msg, msgsz, TS_ERR_LIMIT,
                                "this node shares too many files");
        }
        return rc == 0 ? TS_OK : trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL,
                                              TRK_DB_FAIL);
    }

    /* a new file: its name must also be one every member's terminal
     * shows as it is (names stored before this rule only get escaped) */
    if (!ts_valid_new_filename(name, why, sizeof(why))) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ, BAD_NEW_NAME, why);
    }
    lkey = trk_key(kb, TRK_KEY_LIST, group, NULL);
    rc = trk_strlist_get(c->st, lkey, TRK_REC_LIST, TS_TRK_GROUP_FILES_MAX_N,
                         &l);
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    if (l.n >= TS_TRK_GROUP_FILES_MAX_N) {
        trk_strlist_free(&l);
        return trk_ops_fail(msg, msgsz, TS_ERR_LIMIT, "too many files in '%s'",
                            group);
    }
    st = trk_quota_check_file(c->st, c->user, group, nchunks, msg, msgsz);
    if (st == TS_OK) {
        st = trk_quota_check_share(c->st, c->user, c->node_addr, msg, msgsz);
    }
    if (st != TS_OK) {
        trk_strlist_free(&l);
        return st;
    }
    rc = trk_shares_update(c->st, c->user, c->node_addr, group, name, 1);
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
        rc = trk_srcs_put(c->st, group, name, &s);
    }
    if (rc == 0) {
        rc = trk_strlist_put(c->st, trk_key(kb, TRK_KEY_LIST, group, NULL),
                             TRK_REC_LIST, &l);
    }
    trk_srcs_free(&s);
    trk_strlist_free(&l);
    return rc == 0 ? TS_OK : trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL,
                                          TRK_DB_FAIL);
}


ts_status_t
trk_do_stop_share(const trk_fctx_t *c, const char *group, const char *name,
                  char *msg, size_t msgsz)
{
    trk_srcs_t  s;
    ts_status_t st;
    int         rc, i;

    st = trk_files_check_args(c, group, name, 0, msg, msgsz);
    if (st != TS_OK) {
        return st;
    }
    rc = trk_srcs_get(c->st, group, name, &s);
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    i = rc == 0 ? trk_src_find(&s, c->user, c->node_addr ? c->node_addr : "")
                : -1;
    if (i < 0) {
        if (rc == 0) {
            trk_srcs_free(&s);
        }
        return trk_ops_fail(msg, msgsz, TS_ERR_NOTFOUND,
                            "not sharing '%s' in '%s'", name, group);
    }
    trk_src_remove_at(&s, (uint32_t) i);
    rc = trk_shares_update(c->st, c->user, c->node_addr, group, name, 0);
    if (rc == 0) {
        /* the last source (online or not) takes the file with it */
        rc = s.n == 0 ? trk_file_drop(c->st, group, name)
                      : trk_srcs_put(c->st, group, name, &s);
    }
    trk_srcs_free(&s);
    return rc == 0 ? TS_OK : trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL,
                                          TRK_DB_FAIL);
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

    st = trk_files_check_args(c, group, name, 1, msg, msgsz);
    if (st != TS_OK) {
        return st;
    }
    rc = trk_srcs_get(c->st, group, name, &s);
    if (rc == 1) {
        return trk_ops_fail(msg, msgsz, TS_ERR_NOTFOUND,
                            "no file '%s' in '%s'", name, group);
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
    if (trk_src_find(&s, c->user, c->node_addr) < 0) {
        st = trk_quota_check_share(c->st, c->user, c->node_addr, msg, msgsz);
        if (st != TS_OK) {
            trk_srcs_free(&s);
            return st;
        }
    }
    added = src_set(c, &s, complete, bitmap, bmlen, held);
    if (added == -2) {
        trk_srcs_free(&s);
        return trk_ops_fail(msg, msgsz, TS_ERR_LIMIT,
                            "too many sources for '%s'", name);
    }
    rc = added < 0 ? -1 : trk_srcs_put(c->st, group, name, &s);
    trk_srcs_free(&s);
    if (rc == 0 && added) {
        rc = trk_shares_update(c->st, c->user, c->node_addr, group, name, 1);
        if (rc == -2) {
            return trk_ops_fail(msg, msgsz, TS_ERR_LIMIT,
                                "this node shares too many files");
        }
    }
    return rc == 0 ? TS_OK : trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL,
                                          TRK_DB_FAIL);
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
    char          ex[TS_TRK_FINFO_EXCLUDE_N][TRK_ADDR_MAX_B];
    uint32_t      nex;
    int           st;

    /* optional tail: the addresses to leave out (trk_srcpick.h) */
    if (get_group_name(rq, g, sizeof(g), nm, sizeof(nm)) != 0
        || trk_srcpick_get_addrs(&rq->in, ex, TS_TRK_FINFO_EXCLUDE_N,
                                 &nex) != 0)
    {
        return malformed(rq);
    }
    st = req_ctx(rq, &c, &sess);
    if (st != TS_OK) {
        return st;
    }
    c.excl = (const char (*)[TRK_ADDR_MAX_B]) ex;
    c.nexcl = nex;
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
    uint32_t       bml, nsv;
    uint8_t        complete;
    trk_served_t   sv[TS_NODE_SOURCES_N];
    int            st;

    if (get_group_name(rq, g, sizeof(g), nm, sizeof(nm)) != 0) {
        return TS_ERR_BADREQ;
    }
    complete = ts_get_u8(&rq->in);
    bm = ts_get_blob(&rq->in, &bml, (TS_FILE_MAX_CHUNKS_N + 7) / 8 + 1);
    /* optional tail: the sources that served these chunks */
    if (bm == NULL || complete > 1
        || trk_srcpick_get_served(&rq->in, sv, &nsv) != 0)
    {
        return malformed(rq);
    }
    st = req_ctx(rq, &c, &sess);
    if (st != TS_OK) {
        return st;
    }
    st = trk_do_have_chunks(&c, g, nm, complete, bm, bml, rq->msg,
                            sizeof(rq->msg));
    if (st == TS_OK && trk_proven_note(&c, g, nm, sv, nsv) != 0) {
        st = trk_ops_fail(rq->msg, sizeof(rq->msg), TS_ERR_INTERNAL,
                          TRK_DB_FAIL);
    }
    return st;
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
