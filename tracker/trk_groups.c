/*
 * trk_groups.c -- groups: the handlers of types 20..27 and their rules.
 *
 * Purpose: a group has an owner, members in join order and pending join
 * requests in request order (g/<group>, trk_codec.h).  Each rule checks
 * everything first and only then writes, inside the dispatcher's
 * transaction, so an error leaves no change.  When a member leaves or a
 * group dissolves, the file registry drops what it served there
 * (trk_files_member_left / trk_files_group_gone).
 *
 * Locking: runs on a worker's event-loop thread with that worker's tdb
 * handle; tdb's locks serialise the transactions of different workers.
 *
 * Crash behaviour: a request either committed with its reply-cache entry
 * or left nothing.  A record that fails to decode is an error
 * (TS_ERR_INTERNAL) for the request that met it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tdb.h>

#include "ts_log.h"
#include "trk_ops.h"
#include "trk_sources.h"
#include "trk_merge.h"
#include "trk_quota.h"
#include "trk_index.h"

/* ---- rules ---------------------------------------------------------- */



static int
find_member(const trk_member_t *list, uint32_t n, const char *user)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(list[i].user, user) == 0) {
            return (int) i;
        }
    }
    return -1;
}


/* "not a member", or the clearer conflict when user belonged to an
 * incarnation of the group that lost a concurrent creation. */
static ts_status_t
not_member(trk_store_t *st, const char *group, const char *user, char *msg,
           size_t msgsz)
{
    if (trk_group_lost(st, group, user)) {
        return trk_ops_fail(msg, msgsz, TS_ERR_CONFLICT,
                            "group '%s' was created concurrently on "
                            "another tracker and lost; create a new one",
                            group);
    }
    return trk_ops_fail(msg, msgsz, TS_ERR_PERM, "not a member of '%s'",
                        group);
}


static void
remove_at(trk_member_t *list, uint32_t *n, uint32_t i)
{
    memmove(&list[i], &list[i + 1], (*n - i - 1) * sizeof(*list));
    (*n)--;
}




ts_status_t
trk_do_create_group(trk_store_t *st, const char *user, const char *group,
                    char *msg, size_t msgsz)
{
    trk_group_t  g;
    trk_member_t m;
    int          rc;

    if (!ts_valid_id(group)) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ, TRK_BAD_GROUP_ID);
    }
    rc = trk_group_get(st, group, &g);
    if (rc == 0) {
        trk_group_free(&g);
        return trk_ops_fail(msg, msgsz, TS_ERR_EXISTS,
                            "group '%s' already exists", group);
    }
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    rc = (int) trk_quota_check_group(st, user, msg, msgsz);
    if (rc != TS_OK) {
        return (ts_status_t) rc;    /* msg names the quota */
    }
    memset(&g, 0, sizeof(g));
    memset(&m, 0, sizeof(m));
    snprintf(g.owner, sizeof(g.owner), "%s", user);
    snprintf(m.user, sizeof(m.user), "%s", user);
    m.seq = 1;
    g.next_join_seq = 2;
    g.nmembers = 1;
    g.members = &m;
    if (trk_group_put(st, group, &g) != 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    return TS_OK;
}


/* Loads a group for a rule; on failure fills msg. */
static ts_status_t
load_group(trk_store_t *st, const char *group, trk_group_t *g, char *msg,
           size_t msgsz)
{
    int rc;

    if (!ts_valid_id(group)) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ, TRK_BAD_GROUP_ID);
    }
    rc = trk_group_get(st, group, g);
    if (rc == 1) {
        return trk_ops_fail(msg, msgsz, TS_ERR_NOTFOUND, "no such group '%s'",
                            group);
    }
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    return TS_OK;
}


ts_status_t
trk_do_join_group(trk_store_t *st, const char *user, const char *group,
                  char *msg, size_t msgsz)
{
    trk_group_t   g;
    trk_member_t *np;
    ts_status_t   s;

    s = load_group(st, group, &g, msg, msgsz);
    if (s != TS_OK) {
        return s;
    }
    if (find_member(g.members, g.nmembers, user) >= 0) {
        s = trk_ops_fail(msg, msgsz, TS_ERR_STATE, "already a member of '%s'",
                         group);
        goto done;
    }
    if (find_member(g.pending, g.npending, user) >= 0) {
        s = trk_ops_fail(msg, msgsz, TS_ERR_STATE,
                         "a request to join '%s' is already pending", group);
        goto done;
    }
    if (g.npending >= TS_GROUP_PENDING_MAX_N) {
        s = trk_ops_fail(msg, msgsz, TS_ERR_LIMIT,
                         "too many pending requests for '%s'", group);
        goto done;
    }
    np = realloc(g.pending, (g.npending + 1) * sizeof(*np));
    if (np == NULL) {
        s = trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, "out of memory");
        goto done;
    }
    g.pending = np;
    memset(&np[g.npending], 0, sizeof(*np));
    snprintf(np[g.npending].user, sizeof(np->user), "%s", user);
    np[g.npending].seq = g.next_join_seq++;
    g.npending++;
    if (trk_group_put(st, group, &g) != 0) {
        s = trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }

done:
    trk_group_free(&g);
    return s;
}


ts_status_t
trk_do_leave_group(trk_store_t *st, const char *user, const char *group,
                   char *new_owner, size_t nosz, char *msg, size_t msgsz)
{
    trk_group_t g;
    ts_status_t s;
    int         i;

    snprintf(new_owner, nosz, "%s", "");
    s = load_group(st, group, &g, msg, msgsz);
    if (s != TS_OK) {
        return s;
    }
    i = find_member(g.members, g.nmembers, user);
    if (i < 0) {
        s = not_member(st, group, user, msg, msgsz);
        goto done;
    }
    remove_at(g.members, &g.nmembers, (uint32_t) i);
    if (g.nmembers == 0) {
        /* last member: the group and its pending requests go */
        /* a dissolved group's files go with it */
        if (trk_group_del(st, group) != 0
            || trk_files_group_gone(st, group) != 0)
        {
            s = trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
            goto done;
        }
        snprintf(new_owner, nosz, "%s", "-");
        goto done;
    }
    if (strcmp(g.owner, user) == 0) {
        /* members are kept in join order: the next one inherits */
        snprintf(g.owner, sizeof(g.owner), "%s", g.members[0].user);
        snprintf(new_owner, nosz, "%s", g.owner);
    }
    /* the leaver stops being a source of the group's files */
    if (trk_group_put(st, group, &g) != 0
        || trk_files_member_left(st, group, user) != 0)
    {
        s = trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }

done:
    trk_group_free(&g);
    return s;
}


/* Group commands that only the owner may run. */
static ts_status_t
load_owned(trk_store_t *st, const char *user, const char *group,
           trk_group_t *g, char *msg, size_t msgsz)
{
    ts_status_t s;

    s = load_group(st, group, g, msg, msgsz);
    if (s != TS_OK) {
        return s;
    }
    if (find_member(g->members, g->nmembers, user) < 0) {
        trk_group_free(g);
        return not_member(st, group, user, msg, msgsz);
    }
    if (strcmp(g->owner, user) != 0) {
        trk_group_free(g);
        return trk_ops_fail(msg, msgsz, TS_ERR_PERM,
                            "only the owner of '%s' can do that", group);
    }
    return TS_OK;
}


ts_status_t
trk_do_list_requests(trk_store_t *st, const char *user, const char *group,
                     ts_wbuf_t *body, char *msg, size_t msgsz)
{
    trk_group_t g;
    ts_status_t s;
    uint32_t    i;

    s = load_owned(st, user, group, &g, msg, msgsz);
    if (s != TS_OK) {
        return s;
    }
    ts_put_u32(body, g.npending);
    for (i = 0; i < g.npending; i++) {
        ts_put_str(body, g.pending[i].user);
    }
    trk_group_free(&g);
    return TS_OK;
}


ts_status_t
trk_do_accept(trk_store_t *st, const char *owner, const char *group,
              const char *user, int accept, char *msg, size_t msgsz)
{
    trk_group_t   g;
    trk_member_t *nm;
    ts_status_t   s;
    int           i;

    if (!ts_valid_id(user)) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ, TRK_BAD_USER_ID);
    }
    s = load_owned(st, owner, group, &g, msg, msgsz);
    if (s != TS_OK) {
        return s;
    }
    i = find_member(g.pending, g.npending, user);
    if (i < 0) {
        s = trk_ops_fail(msg, msgsz, TS_ERR_NOTFOUND,
                         "no pending request from '%s' for '%s'", user, group);
        goto done;
    }
    remove_at(g.pending, &g.npending, (uint32_t) i);
    if (accept) {
        if (g.nmembers >= TS_GROUP_MEMBERS_MAX_N) {
            s = trk_ops_fail(msg, msgsz, TS_ERR_LIMIT, "group '%s' is full",
                             group);
            goto done;
        }
        nm = realloc(g.members, (g.nmembers + 1) * sizeof(*nm));
        if (nm == NULL) {
            s = trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, "out of memory");
            goto done;
        }
        g.members = nm;
        memset(&nm[g.nmembers], 0, sizeof(*nm));
        snprintf(nm[g.nmembers].user, sizeof(nm->user), "%s", user);
        nm[g.nmembers].seq = g.next_join_seq++;
        g.nmembers++;
    }
    if (trk_group_put(st, group, &g) != 0) {
        s = trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }

done:
    trk_group_free(&g);
    return s;
}


typedef struct {
    char     name[TS_ID_MAX_B + 1];
    char     owner[TS_ID_MAX_B + 1];
    uint32_t members;
} grp_row_t;

static int
row_cmp(const void *a, const void *b)
{
    return strcmp(((const grp_row_t *) a)->name,
                  ((const grp_row_t *) b)->name);
}


/* From the group index (trk_index.h): only the listed groups are read,
 * never the whole database. */
ts_status_t
trk_do_list_groups(trk_store_t *st, const char *member_of, ts_wbuf_t *body,
                   char *msg, size_t msgsz)
{
    trk_strlist_t ids;
    trk_group_t   g;
    grp_row_t    *rows;
    size_t        i, n = 0;
    int           rc, locked;

    locked = trk_store_read_begin(st);
    if (trk_idx_groups(st, member_of, &ids) != 0) {
        trk_store_read_end(st, locked);
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    rows = calloc(ids.n ? ids.n : 1, sizeof(*rows));
    if (rows == NULL) {
        trk_store_read_end(st, locked);
        trk_strlist_free(&ids);
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    for (i = 0; i < ids.n; i++) {
        rc = trk_group_get(st, ids.v[i], &g);
        if (rc != 0) {
            continue;           /* dissolved meanwhile, or corrupt */
        }
        if (member_of == NULL
            || find_member(g.members, g.nmembers, member_of) >= 0)
        {
            snprintf(rows[n].name, sizeof(rows[n].name), "%s", ids.v[i]);
            snprintf(rows[n].owner, sizeof(rows[n].owner), "%s", g.owner);
            rows[n].members = g.nmembers;
            n++;
        }
        trk_group_free(&g);
    }
    trk_store_read_end(st, locked);
    trk_strlist_free(&ids);
    if (n > 1) {
        qsort(rows, n, sizeof(*rows), row_cmp);
    }
    ts_put_u32(body, (uint32_t) n);
    for (i = 0; i < n; i++) {
        ts_put_str(body, rows[i].name);
        ts_put_str(body, rows[i].owner);
        ts_put_u32(body, rows[i].members);
    }
    free(rows);
    return TS_OK;
}


/* ---- handlers ------------------------------------------------------ */

/* Reads one or two id strings (the whole rest of the payload). */
static int
get_ids(trk_req_t *rq, char *a, char *b)
{
    int ra, rb = 0;

    ra = trk_ops_get_id(&rq->in, a);
    if (ra == 0 && b != NULL) {
        rb = trk_ops_get_id(&rq->in, b);
    }
    if (ra == -1 || rb == -1 || (ra == 0 && rb == 0
                                 && ts_rbuf_end(&rq->in) != 0))
    {
        trk_ops_msg(rq, TRK_MALFORMED);
        return -1;
    }
    if (ra == -2 || rb == -2) {
        /* the first field is always the group, the second a user */
        trk_ops_msg(rq, ra == -2 ? "invalid group id (use 1..64 characters of "
                               "A-Z a-z 0-9 . _ -)"
                             : "invalid user id (use 1..64 characters of "
                               "A-Z a-z 0-9 . _ -)");
        return -1;
    }
    return 0;
}


static int
op_create_group(trk_req_t *rq)
{
    char g[TS_ID_MAX_B + 1];
    int  st;

    if (get_ids(rq, g, NULL) != 0) {
        return TS_ERR_BADREQ;
    }
    st = trk_do_create_group(rq->env->st, rq->user, g, rq->msg,
                             sizeof(rq->msg));
    if (st == TS_OK) {
        ts_info("'%s' created group '%s'", rq->user, g);
    }
    return st;
}


static int
op_join_group(trk_req_t *rq)
{
    char g[TS_ID_MAX_B + 1];

    if (get_ids(rq, g, NULL) != 0) {
        return TS_ERR_BADREQ;
    }
    return trk_do_join_group(rq->env->st, rq->user, g, rq->msg,
                             sizeof(rq->msg));
}


static int
op_leave_group(trk_req_t *rq)
{
    char g[TS_ID_MAX_B + 1];
    char no[TS_ID_MAX_B + 1];
    int  st;

    if (get_ids(rq, g, NULL) != 0) {
        return TS_ERR_BADREQ;
    }
    st = trk_do_leave_group(rq->env->st, rq->user, g, no, sizeof(no),
                            rq->msg, sizeof(rq->msg));
    if (st == TS_OK) {
        ts_put_str(&rq->body, no);
    }
    return st;
}


static int
op_list_requests(trk_req_t *rq)
{
    char g[TS_ID_MAX_B + 1];

    if (get_ids(rq, g, NULL) != 0) {
        return TS_ERR_BADREQ;
    }
    return trk_do_list_requests(rq->env->st, rq->user, g, &rq->body,
                                rq->msg, sizeof(rq->msg));
}


static int
op_accept(trk_req_t *rq)
{
    char g[TS_ID_MAX_B + 1];
    char u[TS_ID_MAX_B + 1];

    if (get_ids(rq, g, u) != 0) {
        return TS_ERR_BADREQ;
    }
    return trk_do_accept(rq->env->st, rq->user, g, u,
                         rq->type == TS_MSG_ACCEPT_REQUEST, rq->msg,
                         sizeof(rq->msg));
}


static int
op_list_groups(trk_req_t *rq)
{
    if (ts_rbuf_end(&rq->in) != 0) {
        trk_ops_msg(rq, TRK_MALFORMED);
        return TS_ERR_BADREQ;
    }
    return trk_do_list_groups(rq->env->st,
                              rq->type == TS_MSG_LIST_MY_GROUPS
                              ? rq->user : NULL,
                              &rq->body, rq->msg, sizeof(rq->msg));
}




void
trk_groups_register(void)
{
    static const trk_op_t ops[] = {
        { TS_MSG_CREATE_GROUP,   1, 1, op_create_group },
        { TS_MSG_JOIN_GROUP,     1, 1, op_join_group },
        { TS_MSG_LEAVE_GROUP,    1, 1, op_leave_group },
        { TS_MSG_LIST_REQUESTS,  1, 0, op_list_requests },
        { TS_MSG_ACCEPT_REQUEST, 1, 1, op_accept },
        { TS_MSG_REJECT_REQUEST, 1, 1, op_accept },
        { TS_MSG_LIST_GROUPS,    1, 0, op_list_groups },
        { TS_MSG_LIST_MY_GROUPS, 1, 0, op_list_groups },
    };

    (void) trk_ops_register(ops, sizeof(ops) / sizeof(ops[0]));
}
