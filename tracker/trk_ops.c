/*
 * trk_ops.c -- the tracker's request dispatch: the op table, the session
 * check of logged-in requests and the reply cache.
 *
 * Purpose: turn one request payload into one reply payload.  The domain
 * files register their handlers through trk_ops_register(): accounts
 * (trk_accounts.c), presence (trk_presence.c), groups (trk_groups.c),
 * files (trk_files.c), STATUS (trk_status.c), SYNC_* (trk_sync.c).
 *
 * Security: every logged-in request must come over a link showing the
 * client certificate fingerprint its session was opened with, so a token
 * is bound to its node identity and a stolen token alone is worthless.
 * A session record without a fingerprint (written by an older version)
 * is not accepted in a TLS build (the client logs in again).  A token
 * read from tdb is re-checked after it enters the session cache, so a
 * concurrent logout cannot be undone by the cache.  A session of an
 * account an operator disabled is refused: the disable drops its cache
 * entries, and the tdb path reads the account's flag.
 *
 * Locking: runs on a worker's event-loop thread.  Write requests run in
 * one tdb transaction (tdb serialises them between workers) -- with group
 * commit (env->group_commit, the default) as one part of the worker's
 * batch, whose replies wait for its commit (trk_wbatch.c); the session
 * cache takes one stripe lock at a time (trk_shm.c) and never while
 * waiting for anything else.
 *
 * Crash behaviour: a request either committed with its reply-cache entry
 * or left nothing, so a client's retry with the same request id after a
 * crash gets the original answer and never applies twice.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_crypto.h"
#include "ts_log.h"
#include "ts_clock.h"
#include "ts_net.h"
#include "trk_userflag.h"
#include "trk_ops.h"

#define SESSION_GONE  "session expired; log in again"
#define OTHER_NODE    "this session belongs to another node identity; " \
                      "log in from this node"
#define OLD_SESSION   "session from an older version (no node identity); " \
                      "log in again"

static trk_op_t   op_table[TS_MSG_MAX_];
static int        op_set[TS_MSG_MAX_];


int
trk_ops_register(const trk_op_t *ops, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (ops[i].type == 0 || ops[i].type >= TS_MSG_MAX_
            || ops[i].type == TS_MSG_REPLY || ops[i].handler == NULL)
        {
            return -1;
        }
        op_table[ops[i].type] = ops[i];
        op_set[ops[i].type] = 1;
    }
    return 0;
}


void
trk_ops_msg(trk_req_t *rq, const char *m)
{
    snprintf(rq->msg, sizeof(rq->msg), "%s", m);
}


/* ---- sessions ------------------------------------------------------- */

/* The session was opened on an account that then lost a concurrent
 * creation on another tracker (first writer wins). */
static ts_status_t
lost_account(trk_req_t *rq)
{
    trk_session_t s;
    uint64_t      hlc;
    uint8_t       origin;

    if (trk_session_get(rq->env->st, rq->tok_hash, &s) != 0
        || s.user_hlc == 0
        || trk_user_stamp(rq->env->st, s.user, &hlc, &origin) != 0
        || (hlc == s.user_hlc && origin == s.user_origin)
        /* a create_user retried on another tracker after a failover made
         * a second incarnation with the same salt and hash: one account */
        || trk_user_same_account(rq->env->st, s.user, s.user_hlc,
                                 s.user_origin) == 1)
    {
        return TS_OK;
    }
    snprintf(rq->msg, sizeof(rq->msg), "account '%s' was created "
             "concurrently on another tracker and lost; create a new one",
             s.user);
    return TS_ERR_CONFLICT;
}


/* A token is bound to the node identity it logged in with: the link
 * must show the same client certificate.  A token copied to another
 * machine is worth nothing without that node's key.  1 if the link may
 * use a session of fingerprint fp. */
static int
link_matches(const trk_env_t *env, const uint8_t fp[TS_FP_B])
{
    static const uint8_t zero[TS_FP_B];
    const uint8_t       *mine;

    if (!ts_tls_enabled()) {
        return 1;               /* bench build: no identities */
    }
    mine = env->link != NULL && env->link->has_fp ? env->link->fp : zero;
    return ts_ct_equal(mine, fp, TS_FP_B);
}


/* A session without a node fingerprint: written by an older version (or by a
 * login without a certificate, no longer possible).  Not accepted in a
 * TLS build: the token would be bound to nobody. */
int
trk_ops_fp_missing(const uint8_t fp[TS_FP_B])
{
    static const uint8_t zero[TS_FP_B];

    return ts_tls_enabled() && ts_ct_equal(fp, zero, TS_FP_B);
}


/* Logged-in request: the link has shown a valid token. */
static ts_status_t
authed(trk_req_t *rq)
{
    ts_status_t st = lost_account(rq);

    if (st == TS_OK && rq->env->link != NULL) {
        rq->env->link->authed = 1;
        snprintf(rq->env->link->user, sizeof(rq->env->link->user), "%s",
                 rq->user);
    }
    return st;
}


/*
 * Puts session h (record s, just read from tdb) into the shm cache.  A
 * LOGOUT or a replicated delete may remove the record between that read
 * and the insert; its own trk_sess_remove() then ran before our insert
 * and would be undone.  So the record is read again AFTER the insert:
 * any delete that committed before this second read is seen here (and
 * the entry removed again); any later one removes our entry itself.
 * 0 cached (or the cache is full: tdb stays the truth), -1 gone.
 */
int
trk_ops_cache_session(trk_env_t *env, const uint8_t h[32],
                      const trk_session_t *s, int64_t now)
{
    trk_session_t again;

    if (trk_sess_insert(env->shm, h, s->user, s->fp, now) != 0) {
        return 0;
    }
    /* the same for a disable of the user (trk_admin_act.c): it drops the
     * user's cache entries after its commit, so one committed before this
     * read is seen here */
    if (trk_session_get(env->st, h, &again) != 0
        || trk_user_disabled(env->st, s->user) == 1)
    {
        trk_sess_remove(env->shm, h);
        return -1;
    }
    return 0;
}


/* A token with no session: "log in again" -- or, when the link last
 * showed a token of an account that is disabled now (its sessions were
 * ended by the disable), why not. */
static ts_status_t
session_gone(trk_req_t *rq)
{
    trk_link_t *l = rq->env->link;

    if (l != NULL && l->authed && l->user[0] != '\0'
        && trk_user_disabled(rq->env->st, l->user) == 1)
    {
        snprintf(rq->msg, sizeof(rq->msg), TRK_USER_DISABLED_MSG, l->user);
        return TS_ERR_AUTH;
    }
    trk_ops_msg(rq, SESSION_GONE);
    return TS_ERR_AUTH;
}


/* Finds the session of token tok: 0 (rq->user set) or a status. */
static ts_status_t
authenticate(trk_req_t *rq, const uint8_t tok[TS_TOKEN_B])
{
    trk_env_t     *env = rq->env;
    trk_session_t  s;
    char           user_tmp[TS_ID_MAX_B + 1];
    uint8_t        fp[TS_FP_B];
    int64_t        now;
    int            rc;

    if (ts_sha256(tok, TS_TOKEN_B, rq->tok_hash) != 0) {
        trk_ops_msg(rq, "internal error");
        return TS_ERR_INTERNAL;
    }
    now = ts_now_ms();
    /* the identity check comes before the heartbeat is refreshed, so a
     * stolen token cannot even keep the session alive */
    rc = trk_sess_lookup_fp(env->shm, rq->tok_hash, now,
                            env->session_timeout_ms, 0, rq->user,
                            sizeof(rq->user), fp);
    if (rc == 1) {
        if (trk_ops_fp_missing(fp)) {
            rq->user[0] = '\0';
            trk_ops_msg(rq, OLD_SESSION);
            return TS_ERR_AUTH;
        }
        if (!link_matches(env, fp)) {
            rq->user[0] = '\0';
            trk_ops_msg(rq, OTHER_NODE);
            return TS_ERR_AUTH;
        }
        (void) trk_sess_lookup(env->shm, rq->tok_hash, now,
                               env->session_timeout_ms, 1, user_tmp,
                               sizeof(user_tmp));
        return authed(rq);
    }
    if (rc == 2) {
        return session_gone(rq);
    }
    /* not cached (new worker, restarted tracker, full cache): tdb has the
     * truth; a session found there gets a fresh grace period */
    rc = trk_session_get(env->st, rq->tok_hash, &s);
    if (rc != 0) {
        if (rc < 0) {
            ts_warn("session lookup failed or record corrupt");
        }
        return session_gone(rq);
    }
    if (trk_ops_fp_missing(s.fp)) {
        trk_ops_msg(rq, OLD_SESSION);
        return TS_ERR_AUTH;
    }
    if (!link_matches(env, s.fp)) {
        trk_ops_msg(rq, OTHER_NODE);
        return TS_ERR_AUTH;
    }
    /* a cached session of a disabled account was dropped from the cache
     * by the disable (here or merged): every request then comes here */
    if (trk_user_disabled(env->st, s.user) == 1) {
        snprintf(rq->msg, sizeof(rq->msg), TRK_USER_DISABLED_MSG, s.user);
        return TS_ERR_AUTH;
    }
    if (trk_ops_cache_session(env, rq->tok_hash, &s, now) < 0) {
        /* logged out (here or elsewhere) between the read and the
         * insert, or the account was disabled meanwhile */
        return session_gone(rq);
    }
    snprintf(rq->user, sizeof(rq->user), "%s", s.user);
    (void) trk_sess_lookup(env->shm, rq->tok_hash, now,
                           env->session_timeout_ms, 1, user_tmp,
                           sizeof(user_tmp));
    return authed(rq);
}


/*
 * trk_ops_get_id -- reads one id string field into dst (TS_ID_MAX_B + 1
 * bytes).
 * 0 ok; -1 malformed field; -2 a well-formed string that is no valid id
 * (too long or bad characters), which the caller reports as a bad id.
 */
int
trk_ops_get_id(ts_rbuf_t *in, char *dst)
{
    char tmp[TS_STR_MAX_B + 1];

    if (ts_get_str(in, tmp, sizeof(tmp)) != 0) {
        return -1;
    }
    if (strlen(tmp) > TS_ID_MAX_B || !ts_valid_id(tmp)) {
        return -2;
    }
    memcpy(dst, tmp, strlen(tmp) + 1);
    return 0;
}



ts_status_t
trk_ops_fail(char *msg, size_t msgsz, ts_status_t st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, msgsz, fmt, ap);
    va_end(ap);
    return st;
}


/* ---- dispatch ------------------------------------------------------- */

void
trk_ops_reply(ts_wbuf_t *out, trk_req_t *rq, ts_status_t st)
{
    ts_wbuf_reset(out);
    ts_reply_begin(out, st, st == TS_OK ? "" : rq->msg);
    if (st == TS_OK && rq->body.len > 0) {
        ts_put_raw(out, rq->body.data, rq->body.len);
    }
    if (out->err) {
        ts_wbuf_reset(out);
        ts_reply_begin(out, TS_ERR_INTERNAL, "reply too large");
    }
}


trk_do_t
trk_ops_handle(trk_env_t *env, uint8_t type, uint64_t reqid,
               const uint8_t *payload, uint32_t len, ts_wbuf_t *out,
               trk_kdf_job_t **job)
{
    trk_req_t       rq;
    const trk_op_t *op;
    uint8_t         tok[TS_TOKEN_B];
    int             st;

    *job = NULL;
    if (type >= TS_MSG_MAX_ || type == TS_MSG_REPLY
        || strcmp(ts_msg_name(type), "?") == 0)
    {
        return TRK_DO_CLOSE;       /* not a message type at all */
    }
    memset(&rq, 0, sizeof(rq));
    rq.env = env;
    rq.type = type;
    rq.reqid = reqid;
    ts_wbuf_init(&rq.body);
    ts_rbuf_init(&rq.in, payload, len);

    if (!op_set[type]) {
        trk_ops_msg(&rq, "request not supported by this tracker");
        trk_ops_reply(out, &rq, TS_ERR_BADREQ);
        return TRK_DO_REPLY;
    }
    op = &op_table[type];

    if (op->is_write || type == TS_MSG_CREATE_USER) {
        /* the reply cache is keyed by id AND bytes: a genuine retry is
         * byte-identical (token included); another request that drew or
         * copied the id is never answered from it */
        trk_req_hash(type, payload, len, rq.req_hash);
    }
    if (op->is_write) {
        if ((env->group_commit ? trk_store_sub_begin(env->st)
                               : trk_store_begin(env->st)) != 0)
        {
            trk_ops_msg(&rq, "tracker database busy");
            trk_ops_reply(out, &rq, TS_ERR_BUSY);
            return TRK_DO_REPLY;
        }
        trk_store_set_reqid(env->st, reqid);
        if (trk_reply_get(env->st, reqid, type, rq.req_hash, out) == 0) {
            /* already served: answer as before, change nothing */
            trk_store_cancel(env->st);
            ts_debug("request %016llx answered from the reply cache",
                     (unsigned long long) reqid);
            return TRK_DO_REPLY;
        }
    } else if (type == TS_MSG_CREATE_USER
               && trk_reply_get(env->st, reqid, type, rq.req_hash, out) == 0)
    {
        /* a retried create_user that was done: no KDF, no throttle */
        ts_debug("request %016llx answered from the reply cache",
                 (unsigned long long) reqid);
        return TRK_DO_REPLY;
    }

    st = TS_OK;
    if (op->needs_login) {
        if (ts_get_raw(&rq.in, tok, sizeof(tok)) != 0) {
            trk_ops_msg(&rq, TRK_MALFORMED);
            st = TS_ERR_BADREQ;
        } else {
            st = authenticate(&rq, tok);
        }
        explicit_bzero(tok, sizeof(tok));
    }
    if (st == TS_OK) {
        st = op->handler(&rq);
    }

    if (st == TRK_OP_DEFER) {
        /* only non-write ops defer (they manage their own transactions) */
        ts_wbuf_free(&rq.body);
        *job = rq.job;
        return TRK_DO_DEFER;
    }

    trk_ops_reply(out, &rq, (ts_status_t) st);
    if (op->is_write) {
        /* Only a write that changed something is cached under its request
         * id: a refused one changed nothing (handlers check before they
         * write), so a retry -- say after a re-login on another tracker --
         * is judged afresh instead of getting a stale error back. */
        if (st != TS_OK) {
            trk_store_cancel(env->st);
        } else if (trk_reply_put(env->st, reqid, type, rq.req_hash,
                                 out->data, out->len,
                                 (uint64_t) ts_wall_ms()) != 0
                   || trk_store_commit(env->st) != 0)
        {
            trk_store_cancel(env->st);
            trk_ops_msg(&rq, TRK_DB_FAIL);
            trk_ops_reply(out, &rq, TS_ERR_INTERNAL);
            rq.drop_session = 0;
        }
    }
    if (rq.drop_session) {
        trk_sess_remove(env->shm, rq.tok_hash);
    }
    ts_wbuf_free(&rq.body);
    return TRK_DO_REPLY;
}


int
trk_ops_is_write(uint8_t type)
{
    return type < TS_MSG_MAX_ && op_set[type] && op_table[type].is_write;
}


int
trk_ops_preauth(trk_env_t *env, uint8_t type, const uint8_t *payload,
                uint32_t len)
{
    trk_req_t rq;
    int       st;

    if (type >= TS_MSG_MAX_ || !op_set[type] || !op_table[type].needs_login
        || len < TS_TOKEN_B)
    {
        return 0;
    }
    memset(&rq, 0, sizeof(rq));
    rq.env = env;
    rq.type = type;
    ts_wbuf_init(&rq.body);
    st = authenticate(&rq, payload);
    ts_wbuf_free(&rq.body);
    return st == TS_OK;
}


void
trk_ops_init(void)
{
    trk_accounts_register();
    trk_presence_register();
    trk_groups_register();
    trk_status_register();
}


