/*
 * trk_ops.c -- the tracker's request handlers, dispatch and housekeeping.
 *
 * Purpose: turn one request payload into one reply payload.  Accounts
 * (create_user, login, logout, heartbeat), groups (types 20..27) and
 * STATUS are here; other files add theirs through trk_ops_register().
 *
 * Security (issue 5): a LOGIN stores the link's client certificate
 * fingerprint in the session; every logged-in request must come over a
 * link showing the same one (or none, if the login showed none), so a
 * token is bound to its node identity and a stolen token alone is
 * worthless.  Failed logins are counted per user and per address in the
 * shm throttle table; past TS_LOGIN_FAILS_*_N a LOGIN is refused with
 * TS_ERR_BUSY before the KDF runs (even with the right password) for a
 * period that doubles per failure; a success resets the user's counter.
 * A LOGOUT deletes the session record, which replicates, so the token is
 * refused on every tracker.
 *
 * Locking: runs on a worker's event-loop thread.  Write requests run in
 * one tdb transaction (tdb serialises them between workers); the session
 * cache takes one stripe lock at a time (trk_shm.c) and never while
 * waiting for anything else; the throttle table's lock is taken alone,
 * outside any stripe lock.  The housekeeper is one worker at a time,
 * chosen by a CAS on an owner word in shm.
 *
 * Crash behaviour: a request either committed with its reply-cache entry
 * or left nothing, so a client's retry with the same request id after a
 * crash gets the original answer and never applies twice.  Logins are not
 * cached (the reply holds the token); a retried login opens another
 * session.  A housekeeper that dies leaves its claim to the supervisor,
 * which frees it when it reaps the worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_crypto.h"
#include "ts_log.h"
#include "ts_net.h"
#include "trk_ops.h"
#include "trk_files.h"         /* G1: presence hooks */
#include "trk_oplog.h"         /* K1: status */

#define SESSION_GONE  "session expired; log in again"
#define OTHER_NODE    "this session belongs to another node identity; " \
                      "log in from this node"
#define BAD_LOGIN     "wrong user id or password"
#define MALFORMED     "malformed request"

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


static void
set_msg(trk_req_t *rq, const char *m)
{
    snprintf(rq->msg, sizeof(rq->msg), "%s", m);
}


/* ---- sessions ------------------------------------------------------- */

/* K1: the session was opened on an account that then lost a concurrent
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
 * must show the same client certificate (or none, if the login showed
 * none).  A token copied to another machine is worth nothing without
 * that node's key.  1 if the link may use a session of fingerprint fp. */
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


/* Logged-in request: the link has shown a valid token. */
static ts_status_t
authed(trk_req_t *rq)
{
    ts_status_t st = lost_account(rq);

    if (st == TS_OK && rq->env->link != NULL) {
        rq->env->link->authed = 1;
    }
    return st;
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
        set_msg(rq, "internal error");
        return TS_ERR_INTERNAL;
    }
    now = ts_now_ms();
    /* the identity check comes before the heartbeat is refreshed, so a
     * stolen token cannot even keep the session alive */
    rc = trk_sess_lookup_fp(env->shm, rq->tok_hash, now,
                            env->session_timeout_ms, 0, rq->user,
                            sizeof(rq->user), fp);
    if (rc == 1) {
        if (!link_matches(env, fp)) {
            rq->user[0] = '\0';
            set_msg(rq, OTHER_NODE);
            return TS_ERR_AUTH;
        }
        (void) trk_sess_lookup(env->shm, rq->tok_hash, now,
                               env->session_timeout_ms, 1, user_tmp,
                               sizeof(user_tmp));
        return authed(rq);
    }
    if (rc == 2) {
        set_msg(rq, SESSION_GONE);
        return TS_ERR_AUTH;
    }
    /* not cached (new worker, restarted tracker, full cache): tdb has the
     * truth; a session found there gets a fresh grace period */
    rc = trk_session_get(env->st, rq->tok_hash, &s);
    if (rc != 0) {
        if (rc < 0) {
            ts_warn("session lookup failed or record corrupt");
        }
        set_msg(rq, SESSION_GONE);
        return TS_ERR_AUTH;
    }
    if (!link_matches(env, s.fp)) {
        set_msg(rq, OTHER_NODE);
        return TS_ERR_AUTH;
    }
    snprintf(rq->user, sizeof(rq->user), "%s", s.user);
    (void) trk_sess_insert(env->shm, rq->tok_hash, s.user, s.fp, now);
    (void) trk_sess_lookup(env->shm, rq->tok_hash, now,
                           env->session_timeout_ms, 1, user_tmp,
                           sizeof(user_tmp));
    return authed(rq);
}


/* ---- dispatch ------------------------------------------------------- */

static void
build_reply(ts_wbuf_t *out, trk_req_t *rq, ts_status_t st)
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
        set_msg(&rq, "request not supported by this tracker");
        build_reply(out, &rq, TS_ERR_BADREQ);
        return TRK_DO_REPLY;
    }
    op = &op_table[type];

    if (op->is_write) {
        if (trk_store_begin(env->st) != 0) {
            set_msg(&rq, "tracker database busy");
            build_reply(out, &rq, TS_ERR_BUSY);
            return TRK_DO_REPLY;
        }
        trk_store_set_reqid(env->st, reqid);
        if (trk_reply_get(env->st, reqid, type, out) == 0) {
            /* already served: answer as before, change nothing */
            trk_store_cancel(env->st);
            ts_debug("request %016llx answered from the reply cache",
                     (unsigned long long) reqid);
            return TRK_DO_REPLY;
        }
    }

    st = TS_OK;
    if (op->needs_login) {
        if (ts_get_raw(&rq.in, tok, sizeof(tok)) != 0) {
            set_msg(&rq, MALFORMED);
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

    build_reply(out, &rq, (ts_status_t) st);
    if (op->is_write) {
        /* Only a write that changed something is cached under its request
         * id: a refused one changed nothing (handlers check before they
         * write), so a retry -- say after a re-login on another tracker --
         * is judged afresh instead of getting a stale error back. */
        if (st != TS_OK) {
            trk_store_cancel(env->st);
        } else if (trk_reply_put(env->st, reqid, type, out->data, out->len,
                                 (uint64_t) ts_wall_ms()) != 0
                   || trk_store_commit(env->st) != 0)
        {
            trk_store_cancel(env->st);
            set_msg(&rq, "tracker database error");
            build_reply(out, &rq, TS_ERR_INTERNAL);
            rq.drop_session = 0;
        }
    }
    if (rq.drop_session) {
        trk_sess_remove(env->shm, rq.tok_hash);
    }
    ts_wbuf_free(&rq.body);
    return TRK_DO_REPLY;
}


/* ---- KDF requests --------------------------------------------------- */

void
trk_kdf_run(trk_kdf_job_t *job)
{
    job->kdf_err = ts_pbkdf2_sha1(job->password, strlen(job->password),
                                  job->rec.salt, sizeof(job->rec.salt),
                                  job->rec.iterations, job->out,
                                  sizeof(job->out));
}


void
trk_kdf_job_free(trk_kdf_job_t *job)
{
    if (job != NULL) {
        explicit_bzero(job, sizeof(*job));
        free(job);
    }
}


/* Reads user + password into a new job; status on error. */
static int get_id(ts_rbuf_t *in, char *dst);


static int
kdf_job_new(trk_req_t *rq, int with_addr)
{
    trk_kdf_job_t *job;
    int            rc;

    job = calloc(1, sizeof(*job));
    if (job == NULL) {
        set_msg(rq, "out of memory");
        return TS_ERR_INTERNAL;
    }
    job->type = rq->type;
    job->reqid = rq->reqid;
    rc = get_id(&rq->in, job->user);
    if (rc == -1
        || ts_get_str(&rq->in, job->password, sizeof(job->password)) != 0
        || (with_addr
            && ts_get_str(&rq->in, job->node_addr,
                          sizeof(job->node_addr)) != 0)
        || ts_rbuf_end(&rq->in) != 0)
    {
        trk_kdf_job_free(job);
        set_msg(rq, MALFORMED);
        return TS_ERR_BADREQ;
    }
    if (rc == -2) {
        trk_kdf_job_free(job);
        set_msg(rq, "invalid user id (use 1..64 characters of "
                    "A-Z a-z 0-9 . _ -)");
        return TS_ERR_BADREQ;
    }
    if (job->password[0] == '\0') {
        trk_kdf_job_free(job);
        set_msg(rq, "the password must not be empty");
        return TS_ERR_BADREQ;
    }
    rq->job = job;
    return TS_OK;
}


static int
op_create_user(trk_req_t *rq)
{
    trk_env_t     *env = rq->env;
    trk_kdf_job_t *job;
    trk_user_t     u;
    ts_wbuf_t      cached;
    int            rc;

    rc = kdf_job_new(rq, 0);
    if (rc != TS_OK) {
        return rc;
    }
    job = rq->job;
    /* cheap answers first, so a duplicate costs no KDF; the final check
     * is repeated in the transaction of trk_ops_finish() */
    ts_wbuf_init(&cached);
    rc = trk_reply_get(env->st, rq->reqid, rq->type, &cached);
    ts_wbuf_free(&cached);
    if (rc != 0) {
        rc = trk_user_get(env->st, job->user, &u);
        if (rc == 0) {
            snprintf(rq->msg, sizeof(rq->msg), "user '%s' already exists",
                     job->user);
            trk_kdf_job_free(job);
            rq->job = NULL;
            return TS_ERR_EXISTS;
        }
    }
    /* The salt is derived from the user id and the client's request id
     * (random per client, 64 bits): unique per creation, and the SAME
     * when a client retries this create_user on another tracker after a
     * failover.  Both trackers then store the same salt and hash, so the
     * two incarnations are one account (see lost_account()). */
    {
        uint8_t  d[TS_SHA256_B];
        ts_wbuf_t sb;

        ts_wbuf_init(&sb);
        ts_put_str(&sb, "tessera/salt/1");
        ts_put_str(&sb, job->user);
        ts_put_u64(&sb, job->reqid);
        if (sb.err || ts_sha256(sb.data, sb.len, d) != 0) {
            ts_wbuf_free(&sb);
            trk_kdf_job_free(job);
            rq->job = NULL;
            set_msg(rq, "internal error");
            return TS_ERR_INTERNAL;
        }
        ts_wbuf_free(&sb);
        memcpy(job->rec.salt, d, sizeof(job->rec.salt));
    }
    job->rec.iterations = env->kdf_iterations;
    job->rec.created_ms = (uint64_t) ts_wall_ms();
    return TRK_OP_DEFER;
}


/* ms a login of user from addr must still wait (failed-login throttle). */
static int64_t
login_wait_ms(trk_env_t *env, const char *user, const char *addr)
{
    int64_t now = ts_now_ms(), wu, wa = 0;

    wu = trk_thr_wait_ms(env->shm, 'u', user, &env->thr_user, now);
    if (addr[0] != '\0') {
        wa = trk_thr_wait_ms(env->shm, 'a', addr, &env->thr_addr, now);
    }
    return wu > wa ? wu : wa;
}


static int
op_login(trk_req_t *rq)
{
    trk_env_t     *env = rq->env;
    trk_kdf_job_t *job;
    int64_t        wait;
    int            rc;

    rc = kdf_job_new(rq, 1);
    if (rc != TS_OK) {
        return rc;
    }
    job = rq->job;
    if (env->link != NULL) {
        snprintf(job->addr, sizeof(job->addr), "%s", env->link->addr);
        if (env->link->has_fp) {
            memcpy(job->fp, env->link->fp, TS_FP_B);
        }
    }
    /* refused before the KDF runs: a throttled guess costs nothing */
    wait = login_wait_ms(env, job->user, job->addr);
    if (wait > 0) {
        snprintf(rq->msg, sizeof(rq->msg), "too many failed logins; try "
                 "again in %lld s", (long long) ((wait + 999) / 1000));
        ts_info("login for '%s' from %s refused: throttled for %lld ms",
                job->user, job->addr[0] ? job->addr : "-", (long long) wait);
        trk_kdf_job_free(job);
        rq->job = NULL;
        return TS_ERR_BUSY;
    }
    rc = trk_user_get(env->st, job->user, &job->rec);
    if (rc < 0) {
        trk_kdf_job_free(job);
        rq->job = NULL;
        set_msg(rq, "tracker database error");
        return TS_ERR_INTERNAL;
    }
    job->user_found = (rc == 0);
    if (!job->user_found) {
        /* same work for an unknown user, so timing tells nothing */
        memset(&job->rec, 0, sizeof(job->rec));
        (void) ts_random(job->rec.salt, sizeof(job->rec.salt));
        job->rec.iterations = env->kdf_iterations;
    }
    return TRK_OP_DEFER;
}


static void
finish_create_user(trk_env_t *env, trk_kdf_job_t *job, ts_wbuf_t *out)
{
    trk_req_t  rq;
    int        st;

    memset(&rq, 0, sizeof(rq));
    ts_wbuf_init(&rq.body);
    if (job->kdf_err != 0) {
        set_msg(&rq, "key derivation failed");
        build_reply(out, &rq, TS_ERR_INTERNAL);
        return;
    }
    memcpy(job->rec.hash, job->out, sizeof(job->rec.hash));
    if (trk_store_begin(env->st) != 0) {
        set_msg(&rq, "tracker database busy");
        build_reply(out, &rq, TS_ERR_BUSY);
        return;
    }
    if (trk_reply_get(env->st, job->reqid, job->type, out) == 0) {
        trk_store_cancel(env->st);
        return;
    }
    st = trk_do_create_user(env->st, job->user, &job->rec, rq.msg,
                            sizeof(rq.msg));
    build_reply(out, &rq, (ts_status_t) st);
    if (st != TS_OK) {
        trk_store_cancel(env->st);      /* nothing changed, nothing cached */
        return;
    }
    if (trk_reply_put(env->st, job->reqid, job->type, out->data, out->len,
                      (uint64_t) ts_wall_ms()) != 0
        || trk_store_commit(env->st) != 0)
    {
        trk_store_cancel(env->st);
        set_msg(&rq, "tracker database error");
        build_reply(out, &rq, TS_ERR_INTERNAL);
        return;
    }
    if (st == TS_OK) {
        ts_info("user '%s' created", job->user);
    }
}


static void
finish_login(trk_env_t *env, trk_kdf_job_t *job, int deliver, ts_wbuf_t *out)
{
    trk_req_t      rq;
    trk_session_t  s;
    uint8_t        tok[TS_TOKEN_B];
    uint8_t        h[TS_SHA256_B];

    memset(&rq, 0, sizeof(rq));
    ts_wbuf_init(&rq.body);
    if (job->kdf_err != 0) {
        set_msg(&rq, "key derivation failed");
        build_reply(out, &rq, TS_ERR_INTERNAL);
        return;
    }
    if (!job->user_found
        || !ts_ct_equal(job->out, job->rec.hash, sizeof(job->out)))
    {
        uint32_t fu, fa = 0;
        int64_t  now = ts_now_ms();

        set_msg(&rq, BAD_LOGIN);
        build_reply(out, &rq, TS_ERR_AUTH);
        fu = trk_thr_fail(env->shm, 'u', job->user, &env->thr_user, now);
        if (job->addr[0] != '\0') {
            fa = trk_thr_fail(env->shm, 'a', job->addr, &env->thr_addr, now);
        }
        ts_info("failed login for '%s' from %s (%u for the user, %u from "
                "the address)", job->user, job->addr[0] ? job->addr : "-",
                fu, fa);
        return;
    }
    /* a success clears the user's failures (not the address's: one good
     * account must not launder guesses at others) */
    trk_thr_reset(env->shm, 'u', job->user);
    if (!deliver) {
        return;
    }
    memset(&s, 0, sizeof(s));
    memcpy(s.fp, job->fp, TS_FP_B);
    snprintf(s.user, sizeof(s.user), "%s", job->user);
    snprintf(s.node_addr, sizeof(s.node_addr), "%s", job->node_addr);
    s.created_ms = (uint64_t) ts_wall_ms();
    /* K1: bound to this incarnation of the account */
    (void) trk_user_stamp(env->st, job->user, &s.user_hlc, &s.user_origin);
    if (ts_random(tok, sizeof(tok)) != 0
        || ts_sha256(tok, sizeof(tok), h) != 0)
    {
        set_msg(&rq, "internal error");
        build_reply(out, &rq, TS_ERR_INTERNAL);
        return;
    }
    /* G1: the node's presence record learns the session in the same
     * transaction */
    if (trk_store_begin(env->st) != 0
        || trk_session_put(env->st, h, &s) != 0
        || trk_files_session_added(env->st, h, s.user, s.node_addr) != 0
        || trk_store_commit(env->st) != 0)
    {
        trk_store_cancel(env->st);
        set_msg(&rq, "tracker database error");
        build_reply(out, &rq, TS_ERR_INTERNAL);
        return;
    }
    (void) trk_sess_insert(env->shm, h, s.user, s.fp, ts_now_ms());
    job->logged_in = 1;
    {
        char u[TS_ID_MAX_B + 1];

        /* a request here: gossip it to the peers */
        (void) trk_sess_lookup(env->shm, h, ts_now_ms(),
                               env->session_timeout_ms, 1, u, sizeof(u));
    }
    ts_put_raw(&rq.body, tok, sizeof(tok));
    /* the heartbeat period this tracker wants: a third of its timeout */
    ts_put_u32(&rq.body, (uint32_t) (env->session_timeout_ms / 3 > 100
                                     ? env->session_timeout_ms / 3 : 100));
    build_reply(out, &rq, TS_OK);
    ts_wbuf_free(&rq.body);
    explicit_bzero(tok, sizeof(tok));
    ts_info("'%s' logged in from node %s", s.user,
            s.node_addr[0] ? s.node_addr : "-");
}


void
trk_ops_finish(trk_env_t *env, trk_kdf_job_t *job, int deliver,
               ts_wbuf_t *out)
{
    ts_wbuf_reset(out);
    if (job->type == TS_MSG_CREATE_USER) {
        finish_create_user(env, job, out);
    } else {
        finish_login(env, job, deliver, out);
    }
}


/* ---- accounts ------------------------------------------------------- */

static int
op_logout(trk_req_t *rq)
{
    int rc;

    if (ts_rbuf_end(&rq->in) != 0) {
        set_msg(rq, MALFORMED);
        return TS_ERR_BADREQ;
    }
    /* G1: this node's sources go offline with the session */
    rc = trk_files_session_gone(rq->env->st, rq->tok_hash);
    if (rc == 0) {
        rc = trk_session_del(rq->env->st, rq->tok_hash);
    }
    if (rc < 0) {
        set_msg(rq, "tracker database error");
        return TS_ERR_INTERNAL;
    }
    rq->drop_session = 1;
    ts_info("'%s' logged out", rq->user);
    return TS_OK;
}


static int
op_heartbeat(trk_req_t *rq)
{
    if (ts_rbuf_end(&rq->in) != 0) {
        set_msg(rq, MALFORMED);
        return TS_ERR_BADREQ;
    }
    return TS_OK;      /* authenticate() refreshed the heartbeat */
}


/* ---- groups --------------------------------------------------------- */

/* Reads n id strings (the whole rest of the payload). */
/*
 * get_id -- reads one id string field into dst (TS_ID_MAX_B + 1 bytes).
 * 0 ok; -1 malformed field; -2 a well-formed string that is no valid id
 * (too long or bad characters), which the caller reports as a bad id.
 */
static int
get_id(ts_rbuf_t *in, char *dst)
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


/* Reads one or two id strings (the whole rest of the payload). */
static int
get_ids(trk_req_t *rq, char *a, char *b)
{
    int ra, rb = 0;

    ra = get_id(&rq->in, a);
    if (ra == 0 && b != NULL) {
        rb = get_id(&rq->in, b);
    }
    if (ra == -1 || rb == -1 || (ra == 0 && rb == 0
                                 && ts_rbuf_end(&rq->in) != 0))
    {
        set_msg(rq, MALFORMED);
        return -1;
    }
    if (ra == -2 || rb == -2) {
        /* the first field is always the group, the second a user */
        set_msg(rq, ra == -2 ? "invalid group id (use 1..64 characters of "
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
        set_msg(rq, MALFORMED);
        return TS_ERR_BADREQ;
    }
    return trk_do_list_groups(rq->env->st,
                              rq->type == TS_MSG_LIST_MY_GROUPS
                              ? rq->user : NULL,
                              &rq->body, rq->msg, sizeof(rq->msg));
}


/* ---- status --------------------------------------------------------- */

static int
op_status(trk_req_t *rq)
{
    trk_env_t      *env = rq->env;
    trk_stats_sh_t *sb = env->shm->stats;
    trk_counts_t    c;
    char            text[2048];
    char            vvs[TRK_ORIGINS_N * 28], dhex[65], peers[256];
    uint8_t         dg[32];
    trk_vv_t        vv;
    uint32_t        up_mask;
    int             i, active, n, nt;
    size_t          pl;
    int64_t         up;

    if (trk_vv_load(env->st, &vv) != 0 || trk_digest(env->st, dg) != 0) {
        set_msg(rq, "tracker database error");
        return TS_ERR_INTERNAL;
    }
    trk_vv_format(&vv, vvs, sizeof(vvs));
    ts_hex(dg, 32, dhex);
    up_mask = atomic_load(&sb->peers_up);
    nt = atomic_load(&sb->ntrackers);
    peers[0] = '\0';
    pl = 0;
    for (i = 1; i <= nt && i < TRK_ORIGINS_N; i++) {
        if (i == env->tracker_id) {
            continue;
        }
        n = snprintf(peers + pl, sizeof(peers) - pl, "%s%d=%s",
                     pl ? "," : "", i, (up_mask >> i) & 1 ? "up" : "down");
        if (n < 0 || (size_t) n >= sizeof(peers) - pl) {
            break;
        }
        pl += (size_t) n;
    }
    if (trk_store_count(env->st, &c) != 0) {
        set_msg(rq, "tracker database error");
        return TS_ERR_INTERNAL;
    }
    active = 0;
    for (i = 0; i < TS_SUP_WORKERS_MAX_N; i++) {
        if (atomic_load(&env->shm->slots[i].state) == TS_SLOT_ACTIVE) {
            active++;
        }
    }
    up = (ts_wall_ms() - atomic_load(&sb->start_wall_ms)) / 1000;
    snprintf(text, sizeof(text),
             "tracker_id: %d\npid: %d\nworkers: %d\nusers: %llu\n"
             "groups: %llu\nsessions: %llu\nuptime_s: %lld\n",
             env->tracker_id, (int) atomic_load(&sb->sup_pid), active,
             (unsigned long long) c.users, (unsigned long long) c.groups,
             (unsigned long long) c.sessions, (long long) (up < 0 ? 0 : up));
    n = (int) strlen(text);
    snprintf(text + n, sizeof(text) - (size_t) n,
             "leader: %d\nvv: %s\ndigest: %s\nepoch: %016llx\npeers: %s\n"
             "ops_logged: %ld\nsync_pid: %d\n",
             (int) atomic_load(&sb->leader), vvs, dhex,
             (unsigned long long) atomic_load(&sb->epoch), peers,
             trk_oplog_count(env->st), (int) atomic_load(&sb->sync_pid));
    ts_put_str(&rq->body, text);
    return TS_OK;
}


void
trk_ops_thr_defaults(trk_thr_cfg_t *user, trk_thr_cfg_t *addr)
{
    user->limit = TS_LOGIN_FAILS_USER_N;
    user->window_ms = TS_LOGIN_WINDOW_MS;
    user->delay_min_ms = TS_LOGIN_DELAY_MIN_MS;
    user->delay_max_ms = TS_LOGIN_DELAY_MAX_MS;
    *addr = *user;
    addr->limit = TS_LOGIN_FAILS_ADDR_N;
}


void
trk_ops_init(void)
{
    static const trk_op_t ops[] = {
        { TS_MSG_CREATE_USER,    0, 0, op_create_user },
        { TS_MSG_LOGIN,          0, 0, op_login },
        { TS_MSG_LOGOUT,         1, 1, op_logout },
        { TS_MSG_HEARTBEAT,      1, 0, op_heartbeat },
        { TS_MSG_CREATE_GROUP,   1, 1, op_create_group },
        { TS_MSG_JOIN_GROUP,     1, 1, op_join_group },
        { TS_MSG_LEAVE_GROUP,    1, 1, op_leave_group },
        { TS_MSG_LIST_REQUESTS,  1, 0, op_list_requests },
        { TS_MSG_ACCEPT_REQUEST, 1, 1, op_accept },
        { TS_MSG_REJECT_REQUEST, 1, 1, op_accept },
        { TS_MSG_LIST_GROUPS,    1, 0, op_list_groups },
        { TS_MSG_LIST_MY_GROUPS, 1, 0, op_list_groups },
        { TS_MSG_STATUS,         0, 0, op_status },
    };

    (void) trk_ops_register(ops, sizeof(ops) / sizeof(ops[0]));
}


/* ---- housekeeping --------------------------------------------------- */

typedef struct {
    uint8_t (*h)[TS_SHA256_B];
    size_t    n;
    size_t    cap;
} hash_list_t;


static void
hash_list_add(hash_list_t *l, const uint8_t h[32])
{
    uint8_t (*nh)[TS_SHA256_B];

    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        nh = realloc(l->h, l->cap * sizeof(*nh));
        if (nh == NULL) {
            l->cap = l->n;
            return;
        }
        l->h = nh;
    }
    memcpy(l->h[l->n++], h, TS_SHA256_B);
}


static void
collect_tdb(const uint8_t h[32], void *arg)
{
    hash_list_add(arg, h);
}


typedef struct {
    hash_list_t expired;
    hash_list_t all;
} shm_walk_t;


static void
collect_shm(const uint8_t h[32], int state, void *arg)
{
    shm_walk_t *w = arg;

    if (state == TRK_SESS_EXPIRED) {
        hash_list_add(&w->expired, h);
    }
    hash_list_add(&w->all, h);
}


static void
housekeep_pass(trk_env_t *env, int64_t now)
{
    hash_list_t    tdbs;
    shm_walk_t     sw;
    trk_session_t  s;
    char           user[TS_ID_MAX_B + 1];
    size_t         i, j = 0;
    int            rc, deleted, rr, leader;

    memset(&tdbs, 0, sizeof(tdbs));
    memset(&sw, 0, sizeof(sw));

    /* 1. sessions in tdb that no worker has cached get a grace period
     *    (e.g. after a restart), so live clients keep working */
    trk_store_each_session(env->st, collect_tdb, &tdbs);
    for (i = 0; i < tdbs.n; i++) {
        rc = trk_sess_lookup(env->shm, tdbs.h[i], now,
                             env->session_timeout_ms, 0, user, sizeof(user));
        if (rc == 0 && trk_session_get(env->st, tdbs.h[i], &s) == 0) {
            (void) trk_sess_insert(env->shm, tdbs.h[i], s.user, s.fp, now);
        }
    }

    /* 2. expired sessions leave tdb first, then the cache (the cache
     *    entry, kept EXPIRED meanwhile, stops a reload from tdb) */
    trk_sess_each(env->shm, now, env->session_timeout_ms, collect_shm, &sw);
    deleted = 0;
    /* K1: only the leader expires (its deletes replicate as ops) */
    leader = atomic_load(&env->shm->stats->leader) == env->tracker_id;
    /* in bounded transactions: each is one op that must fit a frame (a
     * session delete also writes its presence records) */
    for (i = 0; leader && i < sw.expired.n && deleted >= 0; i += j) {
        if (trk_store_begin(env->st) != 0) {
            break;
        }
        for (j = 0; j < TS_TRK_EXPIRE_CHUNK_N / 4 && i + j < sw.expired.n;
             j++)
        {
            /* a gossiped heartbeat may have revived it since the walk:
             * re-check under its stripe lock (2 = still expired) */
            if (trk_sess_lookup(env->shm, sw.expired.h[i + j], ts_now_ms(),
                                env->session_timeout_ms, 0, user,
                                sizeof(user)) != 2)
            {
                continue;
            }
            /* G1: presence record first (it reads the session) */
            (void) trk_files_session_gone(env->st, sw.expired.h[i + j]);
            if (trk_session_del(env->st, sw.expired.h[i + j]) == 0) {
                deleted++;
            }
        }
        if (trk_store_commit(env->st) != 0) {
            deleted = -1;
        }
    }
    /* 3. cache entries whose tdb record is gone (expired above, logged
     *    out, or a stale reload) */
    if (deleted >= 0) {
        for (i = 0; i < sw.all.n; i++) {
            if (trk_session_get(env->st, sw.all.h[i], &s) == 1) {
                trk_sess_remove(env->shm, sw.all.h[i]);
            }
        }
    }
    if (deleted > 0) {
        ts_info("expired %d session(s)", deleted);
    }

    /* 4. the reply cache (leader only, like sessions) */
    rr = !leader ? 0 : trk_store_expire_replies(env->st, (uint64_t) ts_wall_ms()
                                  - (uint64_t) TS_REPLY_CACHE_TTL_S * 1000);
    if (rr > 0) {
        ts_debug("expired %d cached replies", rr);
    }
    free(tdbs.h);
    free(sw.expired.h);
    free(sw.all.h);
}


void
trk_housekeep(trk_env_t *env, int64_t now)
{
    trk_stats_sh_t *sb = env->shm->stats;

    if (now - atomic_load(&sb->hk_last_ms) < TS_HOUSEKEEP_MS) {
        return;
    }
    if (!ts_claim_try(&sb->hk_owner, env->me)) {
        return;
    }
    /* re-check: another worker may have just finished a pass */
    if (now - atomic_load(&sb->hk_last_ms) >= TS_HOUSEKEEP_MS) {
        housekeep_pass(env, now);
        atomic_store(&sb->hk_last_ms, ts_now_ms());
    }
    ts_claim_release(&sb->hk_owner, env->me);
}
