/*
 * trk_admin_ops.c -- ADMIN_LIST: an operator's paged listing of users,
 * groups, sessions or the files of a group; ADMIN_ACT: the request of
 * an operator's action (its rules: trk_admin_act.c).
 *
 * Purpose: answered only over a link whose client certificate chains to
 * the cluster CA and has the admin role (`tracker --make-admin-cert`,
 * ts_pki_role.c); a node's certificate, a tracker's, a user's token or
 * no certificate get TS_ERR_AUTH and nothing else.  A page is the
 * `limit` (1..TS_TRK_ADMIN_PAGE_MAX_N) smallest keys of the kind after
 * the cursor (the last name of the previous page, "" = from the start),
 * in byte order, each with a short detail; the reply ends with the
 * cursor of the next page ("" = no more).  Deleted records (tombstones)
 * are not listed.
 *
 * Cost: a page reads every record of the kind once (tdb keeps no key
 * order) under one read lock, keeping only the `limit` best candidates
 * (a sorted array: bounded memory); the reply is bounded by limit x
 * (key + detail) and stays far under the frame limit.  Operator-only,
 * so the whole-kind read is acceptable; users never reach it.
 *
 * Locking: a worker's event-loop thread; tdb's all-record read lock
 * during the walk (trk_store_walk).
 *
 * Crash behaviour: reads only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_config.h"
#include "ts_log.h"
#include "trk_admin.h"
#include "trk_codec.h"
#include "trk_keys.h"
#include "trk_merge.h"
#include "trk_ops.h"

typedef struct {
    const char  *prefix;            /* "u/", "g/", "s/", "f/<group>/" */
    size_t       plen;
    const char  *cursor;            /* names after this one */
    trk_admin_item_t *v;            /* sorted by key, at most max */
    uint32_t     n, max;
    int          more;              /* a candidate fell off the end */
    int          kind;
} adm_walk_t;


/* The detail text of one live record (value = application bytes). */
static void
adm_detail(int kind, const ts_wbuf_t *val, char *out, size_t outsz)
{
    trk_user_t     u;
    trk_group_t    g;
    trk_session_t  s;
    trk_file_t     f;

    out[0] = '\0';
    switch (kind) {
    case TS_ADMIN_USERS:
        if (trk_user_decode(val->data, val->len, &u) == 0) {
            snprintf(out, outsz, "created_ms=%" PRIu64 " disabled=%s",
                     u.created_ms, u.disabled ? "yes" : "no");
        }
        break;
    case TS_ADMIN_GROUPS:
        memset(&g, 0, sizeof(g));
        if (trk_group_decode(val->data, val->len, &g) == 0) {
            snprintf(out, outsz, "owner=%s members=%u pending=%u", g.owner,
                     g.nmembers, g.npending);
        }
        trk_group_free(&g);
        break;
    case TS_ADMIN_SESSIONS:
        if (trk_session_decode(val->data, val->len, &s) == 0) {
            snprintf(out, outsz, "user=%s node=%s created_ms=%" PRIu64,
                     s.user, s.node_addr, s.created_ms);
        }
        break;
    default:
        memset(&f, 0, sizeof(f));
        if (trk_file_decode(val->data, val->len, &f) == 0) {
            snprintf(out, outsz, "size=%" PRIu64 " chunks=%u uploader=%s",
                     f.size, f.nchunks, f.uploader);
        }
        trk_file_free(&f);
        break;
    }
}


static int
adm_walk_one(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    adm_walk_t *w = arg;
    ts_wbuf_t   val;
    size_t      nlen = k.dsize - w->plen;
    uint32_t    lo, hi, mid;
    char        name[TRK_KEY_B];

    (void) tdb;
    if (k.dsize <= w->plen || k.dsize >= sizeof(name)
        || memcmp(k.dptr, w->prefix, w->plen) != 0)
    {
        return 0;
    }
    memcpy(name, k.dptr + w->plen, nlen);
    name[nlen] = '\0';
    if (memchr(name, '/', nlen) != NULL || memchr(name, '\0', nlen) != NULL
        || strcmp(name, w->cursor) <= 0)
    {
        return 0;                   /* another kind's key, or paged past */
    }
    if (w->n == w->max && strcmp(name, w->v[w->n - 1].key) >= 0) {
        w->more = 1;
        return 0;
    }
    ts_wbuf_init(&val);
    if (trk_env_view(k.dptr, k.dsize, v.dptr, v.dsize, &val) != 0) {
        ts_wbuf_free(&val);
        return 0;                   /* deleted (or unreadable): not listed */
    }
    lo = 0;
    hi = w->n;
    while (lo < hi) {
        mid = (lo + hi) / 2;
        if (strcmp(w->v[mid].key, name) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (w->n == w->max) {
        w->more = 1;                /* the largest one falls off */
        w->n--;
    }
    memmove(&w->v[lo + 1], &w->v[lo], (w->n - lo) * sizeof(w->v[0]));
    memcpy(w->v[lo].key, name, nlen + 1);
    adm_detail(w->kind, &val, w->v[lo].detail, sizeof(w->v[lo].detail));
    w->n++;
    ts_wbuf_free(&val);
    return 0;
}


/* One str field into dst: 0, or -1 with the message set ("malformed"
 * when the request ends inside it, too_long when it does not fit). */
static int
adm_get_str(trk_req_t *rq, char *dst, size_t dstsz, const char *too_long)
{
    size_t left = ts_rbuf_left(&rq->in), n;

    if (rq->in.err || left < 2) {
        trk_ops_msg(rq, TRK_MALFORMED);
        return -1;
    }
    n = ((size_t) rq->in.p[rq->in.off] << 8) | rq->in.p[rq->in.off + 1];
    if (n > left - 2) {
        trk_ops_msg(rq, TRK_MALFORMED);
        return -1;
    }
    if (ts_get_str(&rq->in, dst, dstsz) != 0) {
        trk_ops_msg(rq, n >= dstsz ? too_long : TRK_MALFORMED);
        return -1;
    }
    return 0;
}


/* Reads kind, group, cursor and limit; 0, or an error status (msg set). */
static int
adm_parse(trk_req_t *rq, int *kind, char *group, size_t gsz, char *cursor,
          size_t csz, uint32_t *limit)
{
    *kind = ts_get_u8(&rq->in);
    if (adm_get_str(rq, group, gsz, "bad group (too long)") != 0
        || adm_get_str(rq, cursor, csz, "bad cursor (too long: a name from "
                       "the previous page)") != 0)
    {
        return TS_ERR_BADREQ;
    }
    *limit = ts_get_u16(&rq->in);
    if (ts_rbuf_end(&rq->in) != 0) {
        trk_ops_msg(rq, TRK_MALFORMED);
        return TS_ERR_BADREQ;
    }
    if (*kind < TS_ADMIN_USERS || *kind > TS_ADMIN_FILES) {
        trk_ops_msg(rq, "unknown listing (users, groups, sessions, files)");
        return TS_ERR_BADREQ;
    }
    if (*limit < 1 || *limit > TS_TRK_ADMIN_PAGE_MAX_N) {
        snprintf(rq->msg, sizeof(rq->msg), "bad limit %u (1..%d)", *limit,
                 TS_TRK_ADMIN_PAGE_MAX_N);
        return TS_ERR_BADREQ;
    }
    if ((*kind == TS_ADMIN_FILES) != (group[0] != '\0')) {
        trk_ops_msg(rq, *kind == TS_ADMIN_FILES ? "files needs a group"
                                                : "only files takes a group");
        return TS_ERR_BADREQ;
    }
    if (group[0] != '\0' && !ts_valid_id(group)) {
        trk_ops_msg(rq, "bad group id");
        return TS_ERR_BADREQ;
    }
    return 0;
}


int
trk_admin_page(trk_store_t *st, struct tdb_context *tdb, int kind,
               const char *group, const char *cursor, uint32_t limit,
               trk_admin_item_t **items, uint32_t *n, int *more)
{
    static const char *const prefixes[] = { "", "u/", "g/", "s/", "f/" };
    adm_walk_t  w;
    char        prefix[TS_ID_MAX_B + 4];
    int         rc;

    snprintf(prefix, sizeof(prefix), "%s%s%s", prefixes[kind], group,
             group[0] ? "/" : "");
    memset(&w, 0, sizeof(w));
    w.prefix = prefix;
    w.plen = strlen(prefix);
    w.cursor = cursor;
    w.kind = kind;
    w.max = limit;
    w.v = malloc(limit * sizeof(w.v[0]));
    if (w.v == NULL) {
        return -1;
    }
    if (st != NULL) {
        rc = trk_store_walk(st, adm_walk_one, &w);
    } else if (tdb_lockall_read(tdb) == 0) {
        rc = tdb_traverse_read(tdb, adm_walk_one, &w) < 0 ? -1 : 0;
        tdb_unlockall_read(tdb);
    } else {
        rc = -1;
    }
    if (rc != 0) {
        free(w.v);
        return -2;
    }
    *items = w.v;
    *n = w.n;
    *more = w.more;
    return 0;
}


int
trk_admin_link_ok(trk_req_t *rq)
{
    if (rq->env->link == NULL || !rq->env->link->admin) {
        ts_info("%s from %s refused: no admin certificate",
                ts_msg_name(rq->type), rq->env->link != NULL
                && rq->env->link->addr[0] ? rq->env->link->addr : "?");
        trk_ops_msg(rq, "admin requests are answered only over a link with "
                    "an admin certificate of this cluster (tracker "
                    "--make-admin-cert NAME)");
        return 0;
    }
    return 1;
}


static int
op_admin_list(trk_req_t *rq)
{
    trk_admin_item_t *v;
    char        group[TS_ID_MAX_B + 1], cursor[TS_TRK_ADMIN_CURSOR_MAX_B + 1];
    uint32_t    i, n, limit;
    int         kind, rc, more;

    if (!trk_admin_link_ok(rq)) {
        return TS_ERR_AUTH;
    }
    rc = adm_parse(rq, &kind, group, sizeof(group), cursor, sizeof(cursor),
                   &limit);
    if (rc != 0) {
        return rc;
    }
    rc = trk_admin_page(rq->env->st, NULL, kind, group, cursor, limit, &v,
                        &n, &more);
    if (rc != 0) {
        trk_ops_msg(rq, rc == -1 ? "out of memory" : "tracker database busy");
        return rc == -1 ? TS_ERR_INTERNAL : TS_ERR_BUSY;
    }
    ts_put_u32(&rq->body, n);
    for (i = 0; i < n; i++) {
        ts_put_str(&rq->body, v[i].key);
        ts_put_str(&rq->body, v[i].detail);
    }
    ts_put_str(&rq->body, more && n > 0 ? v[n - 1].key : "");
    free(v);
    return 0;
}


/* ADMIN_ACT: u8 action, str a, str b -> str what was done.  Its own
 * transaction (not the dispatcher's group commit), so the session cache
 * is cut only after the change is durable. */
static int
op_admin_act(trk_req_t *rq)
{
    char  a[TS_ID_MAX_B + 1], b[TS_NAME_MAX_B + 1];
    int   action, rc;

    if (!trk_admin_link_ok(rq)) {
        return TS_ERR_AUTH;
    }
    action = ts_get_u8(&rq->in);
    if (adm_get_str(rq, a, sizeof(a), "bad name (too long: at most "
                    "64 characters)") != 0
        || adm_get_str(rq, b, sizeof(b), "bad file name (too long)") != 0)
    {
        return TS_ERR_BADREQ;
    }
    if (ts_rbuf_end(&rq->in) != 0) {
        trk_ops_msg(rq, TRK_MALFORMED);
        return TS_ERR_BADREQ;
    }
    rc = trk_admin_act_txn(rq->env->st, rq->env->shm, action, a, b,
                           rq->reqid, rq->msg, sizeof(rq->msg));
    if (rc == TS_OK) {
        ts_info("admin (certificate link from %s): %s",
                rq->env->link->addr[0] ? rq->env->link->addr : "?", rq->msg);
        ts_put_str(&rq->body, rq->msg);
        rq->msg[0] = '\0';
    }
    return rc;
}


static void trk_admin_ops_ctor(void) __attribute__((constructor));

static void
trk_admin_ops_ctor(void)
{
    static const trk_op_t ops[] = {
        { TS_MSG_ADMIN_LIST, 0, 0, op_admin_list },
        { TS_MSG_ADMIN_ACT,  0, 0, op_admin_act },
    };

    (void) trk_ops_register(ops, sizeof(ops) / sizeof(ops[0]));
}
