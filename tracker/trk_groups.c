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
#include "trk_files.h"

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
