/*
 * trk_ops.c -- the tracker's request handlers, dispatch and housekeeping.
 *
 * Purpose: turn one request payload into one reply payload.  Accounts
 * (create_user, login, logout, heartbeat), groups (types 20..27) and
 * STATUS are here; other files add theirs through trk_ops_register().
 *
 * Security (issue 5): a LOGIN stores the link's client certificate
 * fingerprint in the session; every logged-in request must come over a
 * link showing the same one, so a token is bound to its node identity
 * and a stolen token alone is worthless.  In TLS builds a LOGIN without
 * a client certificate is refused, and a session record without a
 * fingerprint (written before issue 5) is not accepted (the client logs
 * in again).  The node address a LOGIN names is checked strictly (IPv4
 * or [IPv6], port 1..65535) and its IP must be the connection's.
 *
 * KDF work (the review): every LOGIN and CREATE_USER reserves its attempt
 * in the shm throttle table before its KDF job is queued -- per user and
 * per address for logins (failures past TS_LOGIN_FAILS_*_N, counting the
 * attempts still in progress, refuse with TS_ERR_BUSY for a period that
 * doubles per failure, even with the right password), KDF jobs in
 * progress per address (TS_TRK_KDF_ADDR_N) and create_users per address
 * (TS_TRK_CREATE_ADDR_N) -- so parallel attempts cannot get past the
 * limits; the KDF's end settles them (a success clears the user's
 * failures).  An account holds at most TS_TRK_SESSIONS_PER_USER_N
 * sessions (a login past that ends the least recently used).  A LOGOUT
 * deletes the session record, which replicates, so the token is refused
 * on every tracker; a token read from tdb is re-checked after it enters
 * the session cache, so a concurrent logout cannot be undone by the
 * cache.
 * STATUS (a full-database digest) is answered only over a link with a
 * tracker certificate of the cluster, from a per-worker cache that is
 * recomputed only when the state changed.
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
 * which frees it when it reaps the worker.  A worker that dies with KDF
 * jobs reserved leaves those reservations counted in shm: they lapse
 * after the throttle window (TS_LOGIN_WINDOW_MS), so at worst an address
 * or a user waits that long.  The STATUS cache is per process and starts
 * empty.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
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
#define OLD_SESSION   "session from an older version (no node identity); " \
                      "log in again"
#define NO_CERT       "log in needs the node's TLS client certificate (its " \
                      "node identity); this link shows none"

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


/* A session without a node fingerprint: written before issue 5 (or by a
 * login without a certificate, no longer possible).  Not accepted in a
 * TLS build: the token would be bound to nobody. */
static int
fp_missing(const uint8_t fp[TS_FP_B])
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
static int
cache_session(trk_env_t *env, const uint8_t h[32], const trk_session_t *s,
              int64_t now)
{
    trk_session_t again;

    if (trk_sess_insert(env->shm, h, s->user, s->fp, now) != 0) {
        return 0;
    }
    if (trk_session_get(env->st, h, &again) != 0) {
        trk_sess_remove(env->shm, h);
        return -1;
    }
    return 0;
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
        if (fp_missing(fp)) {
            rq->user[0] = '\0';
            set_msg(rq, OLD_SESSION);
            return TS_ERR_AUTH;
        }
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
    if (fp_missing(s.fp)) {
        set_msg(rq, OLD_SESSION);
        return TS_ERR_AUTH;
    }
    if (!link_matches(env, s.fp)) {
        set_msg(rq, OTHER_NODE);
        return TS_ERR_AUTH;
    }
    if (cache_session(env, rq->tok_hash, &s, now) < 0) {
        /* logged out (here or elsewhere) between the read and the insert */
        set_msg(rq, SESSION_GONE);
        return TS_ERR_AUTH;
    }
    snprintf(rq->user, sizeof(rq->user), "%s", s.user);
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

    if (op->is_write || type == TS_MSG_CREATE_USER) {
        /* the reply cache is keyed by id AND bytes: a genuine retry is
         * byte-identical (token included); another request that drew or
         * copied the id is never answered from it */
        trk_req_hash(type, payload, len, rq.req_hash);
    }
    if (op->is_write) {
        if (trk_store_begin(env->st) != 0) {
            set_msg(&rq, "tracker database busy");
            build_reply(out, &rq, TS_ERR_BUSY);
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
        } else if (trk_reply_put(env->st, reqid, type, rq.req_hash,
                                 out->data, out->len,
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
    job->ran = 1;
}


void
trk_kdf_job_free(trk_kdf_job_t *job)
{
    if (job != NULL) {
        explicit_bzero(job, sizeof(*job));
        free(job);
    }
}


/* Throttle reservations a job holds (job->held). */
#define HELD_USER    0x1u       /* 'u' failed logins of the user */
#define HELD_ADDR    0x2u       /* 'a' failed logins from the address */
#define HELD_KDF     0x4u       /* 'k' KDF jobs in progress, address */
#define HELD_CREATE  0x8u       /* 'c' create_users from the address */


/* Reserves one attempt of name in a throttle counter; records it in
 * job->held.  0 = go ahead, else the ms to wait (and *why). */
static int64_t
reserve(trk_env_t *env, trk_kdf_job_t *job, char kind, const char *name,
        const trk_thr_cfg_t *cfg, unsigned bit, int *why)
{
    int64_t w;

    *why = TRK_THR_OK;
    if (name[0] == '\0' || cfg->limit == 0) {
        return 0;               /* no address (unit tests), or no cap */
    }
    w = trk_thr_reserve(env->shm, kind, name, cfg, ts_now_ms(), why);
    if (w == 0) {
        job->held |= bit;
    }
    return w;
}


/* Settles the reservations job holds; failed: its login failed (counts
 * for the user and the address).  *fu / *fa (may be NULL) get the
 * failures now counted. */
static void
settle(trk_env_t *env, trk_kdf_job_t *job, int failed, uint32_t *fu,
       uint32_t *fa)
{
    int64_t  now = ts_now_ms();
    uint32_t u = 0, a = 0;

    if (job->held & HELD_USER) {
        u = trk_thr_done(env->shm, 'u', job->user, &env->thr_user, now,
                         failed);
    }
    if (job->held & HELD_ADDR) {
        a = trk_thr_done(env->shm, 'a', job->addr, &env->thr_addr, now,
                         failed);
    }
    if (job->held & HELD_KDF) {
        (void) trk_thr_done(env->shm, 'k', job->addr, &env->thr_kdf, now,
                            0);
    }
    if (job->held & HELD_CREATE) {
        /* a create_user whose KDF ran counts, whatever its outcome; one
         * refused or dropped before it only releases its place */
        (void) trk_thr_done(env->shm, 'c', job->addr, &env->thr_create,
                            now, job->ran);
    }
    job->held = 0;
    if (fu != NULL) {
        *fu = u;
    }
    if (fa != NULL) {
        *fa = a;
    }
}


void
trk_kdf_job_abort(trk_env_t *env, trk_kdf_job_t *job)
{
    if (job == NULL) {
        return;
    }
    settle(env, job, 0, NULL, NULL);
    trk_kdf_job_free(job);
}


/* Refuses rq for a throttle: frees the job after releasing what it holds
 * and sets the message.  Returns TS_ERR_BUSY. */
static int
refuse_throttled(trk_req_t *rq, char kind, int why, int64_t wait)
{
    trk_kdf_job_t *job = rq->job;
    long long      s = (long long) ((wait + 999) / 1000);

    if (kind == 'k') {
        snprintf(rq->msg, sizeof(rq->msg), "too many password checks from "
                 "your address in progress; try again in %lld s", s);
    } else if (kind == 'c') {
        snprintf(rq->msg, sizeof(rq->msg), "too many accounts created from "
                 "your address; try again in %lld s", s);
    } else if (why == TRK_THR_PENDING) {
        snprintf(rq->msg, sizeof(rq->msg), "too many login attempts in "
                 "progress; try again in %lld s", s);
    } else {
        snprintf(rq->msg, sizeof(rq->msg), "too many failed logins; try "
                 "again in %lld s", s);
    }
    ts_info("%s %s%s%s from %s refused: %s (%lld ms)",
            job->type == TS_MSG_LOGIN ? "login" : "create_user",
            job->type == TS_MSG_LOGIN ? "for '" : "of '", job->user, "'",
            job->addr[0] ? job->addr : "-",
            kind == 'k' ? "KDF jobs in progress from the address"
            : kind == 'c' ? "create_user rate of the address"
            : kind == 'u' ? "user throttled" : "address throttled",
            (long long) wait);
    settle(rq->env, job, 0, NULL, NULL);
    trk_kdf_job_free(job);
    rq->job = NULL;
    return TS_ERR_BUSY;
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
    memcpy(job->req_hash, rq->req_hash, sizeof(job->req_hash));
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
    if (rq->env->link != NULL) {
        snprintf(job->addr, sizeof(job->addr), "%s", rq->env->link->addr);
        if (rq->env->link->has_fp) {
            memcpy(job->fp, rq->env->link->fp, TS_FP_B);
        }
    }
    rq->job = job;
    return TS_OK;
}


/* Unauthenticated KDF work from one address: at most TS_TRK_KDF_ADDR_N
 * jobs in progress.  0 or TS_ERR_BUSY (job freed). */
static int
reserve_kdf(trk_req_t *rq)
{
    int64_t w;
    int     why;

    w = reserve(rq->env, rq->job, 'k', rq->job->addr, &rq->env->thr_kdf,
                HELD_KDF, &why);
    return w > 0 ? refuse_throttled(rq, 'k', why, w) : TS_OK;
}


static int
op_create_user(trk_req_t *rq)
{
    trk_env_t     *env = rq->env;
    trk_kdf_job_t *job;
    trk_user_t     u;
    int64_t        w;
    int            rc, why;

    rc = kdf_job_new(rq, 0);
    if (rc != TS_OK) {
        return rc;
    }
    job = rq->job;
    /* cheap answers first, so a duplicate costs no KDF (a retry of a
     * create_user that was done was answered from the reply cache by
     * trk_ops_handle); the final check is repeated in the transaction of
     * trk_ops_finish() */
    rc = trk_user_get(env->st, job->user, &u);
    if (rc == 0) {
        snprintf(rq->msg, sizeof(rq->msg), "user '%s' already exists",
                 job->user);
        trk_kdf_job_free(job);
        rq->job = NULL;
        return TS_ERR_EXISTS;
    }
    /* anyone may ask: the KDF work an address can cause is bounded */
    rc = reserve_kdf(rq);
    if (rc != TS_OK) {
        return rc;
    }
    w = reserve(env, job, 'c', job->addr, &env->thr_create, HELD_CREATE,
                &why);
    if (w > 0) {
        return refuse_throttled(rq, 'c', why, w);
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
            settle(env, job, 0, NULL, NULL);
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


/* ---- node addresses ------------------------------------------------- */

/* The IP of text (no port): 4 (a4 set), 6 (a6 set; an IPv4-mapped one
 * is returned as 4), or 0. */
static int
ip_of(const char *text, struct in_addr *a4, struct in6_addr *a6)
{
    if (inet_pton(AF_INET, text, a4) == 1) {
        return 4;
    }
    if (inet_pton(AF_INET6, text, a6) != 1) {
        return 0;
    }
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
        memcpy(a4, &a6->s6_addr[12], 4);
        return 4;
    }
    return 6;
}


int
trk_node_addr_check(const char *s, const char *peer, char *canon,
                    size_t canonsz, char *why, size_t whysz)
{
    struct in_addr   n4, p4;
    struct in6_addr  n6, p6;
    char             ip[INET6_ADDRSTRLEN], txt[INET6_ADDRSTRLEN];
    const char      *end, *p;
    unsigned long    port = 0;
    size_t           iplen, k;
    int              fam, pfam;

    /* "a.b.c.d:PORT" or "[v6]:PORT", nothing else: it goes to other
     * members as a download source and into logs */
    end = NULL;
    if (s[0] == '[') {
        end = strchr(s, ']');
        if (end == NULL || end[1] != ':') {
            goto bad;
        }
        iplen = (size_t) (end - s - 1);
        p = end + 2;
        if (iplen == 0 || iplen >= sizeof(ip)) {
            goto bad;
        }
        memcpy(ip, s + 1, iplen);
        ip[iplen] = '\0';
        if (inet_pton(AF_INET6, ip, &n6) != 1) {
            goto bad;
        }
    } else {
        end = strchr(s, ':');
        if (end == NULL) {
            goto bad;
        }
        iplen = (size_t) (end - s);
        p = end + 1;
        if (iplen == 0 || iplen >= sizeof(ip)) {
            goto bad;
        }
        memcpy(ip, s, iplen);
        ip[iplen] = '\0';
        if (inet_pton(AF_INET, ip, &n4) != 1) {
            goto bad;
        }
    }
    for (k = 0; p[k] != '\0'; k++) {
        if (p[k] < '0' || p[k] > '9' || k >= 5) {
            goto bad;
        }
        port = port * 10 + (unsigned long) (p[k] - '0');
    }
    if (k == 0 || p[0] == '0' || port < 1 || port > 65535) {
        goto bad;
    }
    fam = ip_of(ip, &n4, &n6);
    pfam = peer != NULL ? ip_of(peer, &p4, &p6) : 0;
    if (pfam == 0) {
        snprintf(why, whysz, "the connection's own address is unknown");
        return -2;
    }
    /* a node serving on every address (0.0.0.0, ::) is reached where its
     * connection comes from */
    if ((fam == 4 && n4.s_addr == htonl(INADDR_ANY))
        || (fam == 6 && IN6_IS_ADDR_UNSPECIFIED(&n6)))
    {
        fam = pfam;
        n4 = p4;
        n6 = p6;
    }
    if (fam == 4) {
        inet_ntop(AF_INET, &n4, txt, sizeof(txt));
        snprintf(canon, canonsz, "%s:%lu", txt, port);
    } else {
        inet_ntop(AF_INET6, &n6, txt, sizeof(txt));
        snprintf(canon, canonsz, "[%s]:%lu", txt, port);
    }
    /* like opentracker: a node serves on the address it comes from */
    if (pfam != fam || (fam == 4 ? memcmp(&n4, &p4, 4) != 0
                                 : memcmp(&n6, &p6, 16) != 0))
    {
        snprintf(why, whysz, "node address %s is not this connection's "
                 "address %s: a node must serve on the IP it connects from",
                 canon, peer);
        return -2;
    }
    return 0;

bad:
    snprintf(why, whysz, "invalid node address (want IPv4:PORT or "
             "[IPv6]:PORT, PORT 1-65535)");
    return -1;
}


/* ---- login ---------------------------------------------------------- */

static int
op_login(trk_req_t *rq)
{
    trk_env_t     *env = rq->env;
    trk_kdf_job_t *job;
    char           canon[TRK_ADDR_MAX_B], why[TRK_MSG_B];
    int64_t        w;
    int            rc, wy;

    rc = kdf_job_new(rq, 1);
    if (rc != TS_OK) {
        return rc;
    }
    job = rq->job;
    /* the token will be bound to the link's certificate: without one it
     * would be bound to nobody */
    if (ts_tls_enabled() && (env->link == NULL || !env->link->has_fp)) {
        trk_kdf_job_free(job);
        rq->job = NULL;
        set_msg(rq, NO_CERT);
        return TS_ERR_AUTH;
    }
    rc = trk_node_addr_check(job->node_addr,
                             env->link != NULL ? env->link->addr : NULL,
                             canon, sizeof(canon), why, sizeof(why));
    if (rc != 0) {
        ts_info("login for '%s' from %s refused: %s", job->user,
                job->addr[0] ? job->addr : "-",
                rc == -1 ? "bad node address" : why);
        trk_kdf_job_free(job);
        rq->job = NULL;
        set_msg(rq, why);
        return TS_ERR_BADREQ;
    }
    snprintf(job->node_addr, sizeof(job->node_addr), "%s", canon);
    /* refused before the KDF runs: a throttled guess costs nothing; the
     * attempt counts from now on, so parallel guesses are limited too */
    rc = reserve_kdf(rq);
    if (rc != TS_OK) {
        return rc;
    }
    w = reserve(env, job, 'a', job->addr, &env->thr_addr, HELD_ADDR, &wy);
    if (w > 0) {
        return refuse_throttled(rq, 'a', wy, w);
    }
    w = reserve(env, job, 'u', job->user, &env->thr_user, HELD_USER, &wy);
    if (w > 0) {
        return refuse_throttled(rq, 'u', wy, w);
    }
    rc = trk_user_get(env->st, job->user, &job->rec);
    if (rc < 0) {
        settle(env, job, 0, NULL, NULL);
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
    settle(env, job, 0, NULL, NULL);
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
    if (trk_reply_get(env->st, job->reqid, job->type, job->req_hash, out)
        == 0)
    {
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
    if (trk_reply_put(env->st, job->reqid, job->type, job->req_hash,
                      out->data, out->len, (uint64_t) ts_wall_ms()) != 0
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


/* ---- sessions per user ---------------------------------------------- */

typedef struct {
    uint8_t  h[TS_SHA256_B];
    int64_t  hb_ms;             /* last heartbeat (monotonic) */
} sess_age_t;

typedef struct {
    sess_age_t *v;
    size_t      n;
    size_t      cap;
} user_sess_t;


static void
collect_user_sess(const uint8_t h[32], int64_t hb_ms, void *arg)
{
    user_sess_t *u = arg;
    sess_age_t  *nv;

    if (u->n == u->cap) {
        u->cap = u->cap ? u->cap * 2 : 64;
        nv = realloc(u->v, u->cap * sizeof(*nv));
        if (nv == NULL) {
            u->cap = u->n;
            return;
        }
        u->v = nv;
    }
    memcpy(u->v[u->n].h, h, TS_SHA256_B);
    u->v[u->n].hb_ms = hb_ms;
    u->n++;
}


static int
age_cmp(const void *a, const void *b)
{
    const sess_age_t *x = a, *y = b;

    return x->hb_ms < y->hb_ms ? -1
           : x->hb_ms > y->hb_ms ? 1
           : memcmp(x->h, y->h, TS_SHA256_B);
}


/* The sessions of user to end so that a new one fits the cap: the
 * least recently used first, at most what one replicated op can carry (a
 * user far over the cap comes down over several logins).  Counted in
 * the session cache (a memory walk, not a database one): the cap is
 * what keeps one account from filling it, and a session only tdb knows
 * is expired by the housekeeper.  *n gets how many; the array is
 * malloc'd (NULL when none). */
static sess_age_t *
sessions_over_cap(trk_env_t *env, const char *user, size_t *n)
{
    user_sess_t u;
    size_t      drop;

    memset(&u, 0, sizeof(u));
    *n = 0;
    trk_sess_each_user(env->shm, user, collect_user_sess, &u);
    if (u.n < TS_TRK_SESSIONS_PER_USER_N) {
        free(u.v);
        return NULL;
    }
    qsort(u.v, u.n, sizeof(*u.v), age_cmp);
    drop = u.n - TS_TRK_SESSIONS_PER_USER_N + 1;
    if (drop > TS_TRK_EXPIRE_CHUNK_N / 4) {
        drop = TS_TRK_EXPIRE_CHUNK_N / 4;
    }
    *n = drop;
    return u.v;
}


static void
finish_login(trk_env_t *env, trk_kdf_job_t *job, int deliver, ts_wbuf_t *out)
{
    trk_req_t      rq;
    trk_session_t  s, old;
    uint8_t        tok[TS_TOKEN_B];
    uint8_t        h[TS_SHA256_B];
    sess_age_t    *drop;
    size_t         ndrop, i;
    int            bad;

    memset(&rq, 0, sizeof(rq));
    ts_wbuf_init(&rq.body);
    if (job->kdf_err != 0) {
        settle(env, job, 0, NULL, NULL);
        set_msg(&rq, "key derivation failed");
        build_reply(out, &rq, TS_ERR_INTERNAL);
        return;
    }
    if (!job->user_found
        || !ts_ct_equal(job->out, job->rec.hash, sizeof(job->out)))
    {
        uint32_t fu, fa;

        set_msg(&rq, BAD_LOGIN);
        build_reply(out, &rq, TS_ERR_AUTH);
        settle(env, job, 1, &fu, &fa);
        ts_info("failed login for '%s' from %s (%u for the user, %u from "
                "the address)", job->user, job->addr[0] ? job->addr : "-",
                fu, fa);
        return;
    }
    /* a success clears the user's failures (not the address's: one good
     * account must not launder guesses at others) */
    settle(env, job, 0, NULL, NULL);
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
    /* one account holds at most TS_TRK_SESSIONS_PER_USER_N sessions (so
     * it cannot fill the session cache): the least recently used make
     * room */
    drop = sessions_over_cap(env, job->user, &ndrop);
    /* G1: the node's presence record learns the session in the same
     * transaction */
    bad = trk_store_begin(env->st) != 0;
    for (i = 0; !bad && i < ndrop; i++) {
        if (trk_session_get(env->st, drop[i].h, &old) == 0) {
            bad = trk_files_session_gone(env->st, drop[i].h) != 0
                  || trk_session_del(env->st, drop[i].h) < 0;
        }
    }
    if (bad
        || trk_session_put(env->st, h, &s) != 0
        || trk_files_session_added(env->st, h, s.user, s.node_addr) != 0
        || trk_store_commit(env->st) != 0)
    {
        trk_store_cancel(env->st);
        free(drop);
        set_msg(&rq, "tracker database error");
        build_reply(out, &rq, TS_ERR_INTERNAL);
        return;
    }
    for (i = 0; i < ndrop; i++) {
        trk_sess_remove(env->shm, drop[i].h);
    }
    if (ndrop > 0) {
        ts_info("'%s' is at %d sessions: ended the %zu least recently "
                "used", s.user, TS_TRK_SESSIONS_PER_USER_N, ndrop);
    }
    free(drop);
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

/* What STATUS reports of the database: a full read of it (digest, counts,
 * op log size), kept per worker and recomputed only when the state
 * changed -- every commit that changes replicated state bumps the shm
 * op_wake word, and every op it applies moves the version vector.  Not
 * rate-limited by time: two trackers showing digests of different ages
 * would look converged when they are not. */
static struct {
    int                valid;
    const trk_store_t *st;
    uint64_t           wake;
    trk_vv_t           vv;
    uint8_t            dg[32];
    trk_counts_t       c;
    long               ops;
} status_cache;


static int
status_db(trk_env_t *env, const trk_vv_t *vv)
{
    uint64_t wake = atomic_load(&env->shm->stats->op_wake);

    if (status_cache.valid && status_cache.st == env->st
        && status_cache.wake == wake
        && memcmp(&status_cache.vv, vv, sizeof(*vv)) == 0)
    {
        return 0;
    }
    status_cache.valid = 0;
    ts_debug("STATUS: reading the whole database (state changed)");
    if (trk_digest(env->st, status_cache.dg) != 0
        || trk_store_count(env->st, &status_cache.c) != 0)
    {
        return -1;
    }
    status_cache.ops = trk_oplog_count(env->st);
    status_cache.st = env->st;
    status_cache.wake = wake;
    status_cache.vv = *vv;
    status_cache.valid = 1;
    return 0;
}


static int
op_status(trk_req_t *rq)
{
    trk_env_t      *env = rq->env;
    trk_stats_sh_t *sb = env->shm->stats;
    char            text[2048];
    char            vvs[TRK_ORIGINS_N * 28], dhex[65], peers[256];
    trk_vv_t        vv;
    uint32_t        up_mask;
    int             i, active, n, nt;
    size_t          pl;
    int64_t         up;

    /* a full read of the database: only for the cluster's own trackers
     * (`tracker --status` shows this tracker's certificate), never for
     * an anonymous caller */
    if (ts_tls_enabled() && (env->link == NULL || env->link->tracker == 0)) {
        ts_debug("STATUS from %s refused: no tracker certificate",
                 env->link != NULL && env->link->addr[0] ? env->link->addr
                                                         : "?");
        set_msg(rq, "STATUS is answered only over a link with a tracker "
                    "certificate of this cluster (tracker --status, run "
                    "where pki/tracker-N.crt and .key are)");
        return TS_ERR_AUTH;
    }
    if (ts_rbuf_end(&rq->in) != 0) {
        set_msg(rq, MALFORMED);
        return TS_ERR_BADREQ;
    }
    if (trk_vv_load(env->st, &vv) != 0 || status_db(env, &vv) != 0) {
        set_msg(rq, "tracker database error");
        return TS_ERR_INTERNAL;
    }
    trk_vv_format(&vv, vvs, sizeof(vvs));
    ts_hex(status_cache.dg, 32, dhex);
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
             (unsigned long long) status_cache.c.users,
             (unsigned long long) status_cache.c.groups,
             (unsigned long long) status_cache.c.sessions,
             (long long) (up < 0 ? 0 : up));
    n = (int) strlen(text);
    snprintf(text + n, sizeof(text) - (size_t) n,
             "leader: %d\nvv: %s\ndigest: %s\nepoch: %016llx\npeers: %s\n"
             "ops_logged: %ld\nsync_pid: %d\n",
             (int) atomic_load(&sb->leader), vvs, dhex,
             (unsigned long long) atomic_load(&sb->epoch), peers,
             status_cache.ops, (int) atomic_load(&sb->sync_pid));
    ts_put_str(&rq->body, text);
    return TS_OK;
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
trk_ops_kdf_defaults(trk_thr_cfg_t *kdf, trk_thr_cfg_t *create)
{
    /* 'k' counts only attempts in progress (they never fail): limit */
    kdf->limit = TS_TRK_KDF_ADDR_N;
    kdf->window_ms = TS_LOGIN_WINDOW_MS;
    kdf->delay_min_ms = TS_LOGIN_DELAY_MIN_MS;
    kdf->delay_max_ms = TS_LOGIN_DELAY_MAX_MS;
    *create = *kdf;
    create->limit = TS_TRK_CREATE_ADDR_N;
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


/* Deletes the sessions of list (those keep(h) still says go) in bounded
 * transactions: each is one op that must fit a frame (a session delete
 * also writes its presence records).  Returns how many, or -1. */
static int
delete_sessions(trk_env_t *env, const hash_list_t *list,
                int (*go)(trk_env_t *env, const uint8_t h[32]))
{
    size_t i, j = 0;
    int    deleted = 0;

    for (i = 0; i < list->n && deleted >= 0; i += j) {
        if (trk_store_begin(env->st) != 0) {
            return -1;
        }
        for (j = 0; j < TS_TRK_EXPIRE_CHUNK_N / 4 && i + j < list->n; j++) {
            if (!go(env, list->h[i + j])) {
                continue;
            }
            /* G1: presence record first (it reads the session) */
            (void) trk_files_session_gone(env->st, list->h[i + j]);
            if (trk_session_del(env->st, list->h[i + j]) == 0) {
                deleted++;
            }
        }
        if (trk_store_commit(env->st) != 0) {
            deleted = -1;
        }
    }
    return deleted;
}


/* A cache entry found expired: still expired?  A gossiped heartbeat may
 * have revived it since the walk (re-checked under its stripe lock). */
static int
still_expired(trk_env_t *env, const uint8_t h[32])
{
    char user[TS_ID_MAX_B + 1];

    return trk_sess_lookup(env->shm, h, ts_now_ms(), env->session_timeout_ms,
                           0, user, sizeof(user)) == 2;
}


/* A session only tdb knows (no cache place): still without one? */
static int
still_uncached(trk_env_t *env, const uint8_t h[32])
{
    char user[TS_ID_MAX_B + 1];

    return trk_sess_lookup(env->shm, h, ts_now_ms(), env->session_timeout_ms,
                           0, user, sizeof(user)) == 0;
}


static void
housekeep_pass(trk_env_t *env, int64_t now)
{
    hash_list_t    tdbs;
    shm_walk_t     sw;
    hash_list_t    gone;
    trk_session_t  s;
    char           user[TS_ID_MAX_B + 1];
    uint64_t       cutoff;
    size_t         i;
    int            rc, deleted, dropped, rr, leader;

    memset(&tdbs, 0, sizeof(tdbs));
    memset(&sw, 0, sizeof(sw));
    memset(&gone, 0, sizeof(gone));
    cutoff = (uint64_t) ts_wall_ms() - (uint64_t) env->session_timeout_ms;

    /* 1. sessions in tdb that no worker has cached get a grace period
     *    (e.g. after a restart), so live clients keep working.  Those
     *    that find no place in the cache (it is full) have nothing that
     *    times them out: once older than a session timeout they go, like
     *    sessions without a node fingerprint (never accepted again) */
    trk_store_each_session(env->st, collect_tdb, &tdbs);
    for (i = 0; i < tdbs.n; i++) {
        rc = trk_sess_lookup(env->shm, tdbs.h[i], now,
                             env->session_timeout_ms, 0, user, sizeof(user));
        if (rc != 0 || trk_session_get(env->st, tdbs.h[i], &s) != 0) {
            continue;
        }
        if (fp_missing(s.fp)) {
            hash_list_add(&gone, tdbs.h[i]);
        } else if (trk_sess_insert(env->shm, tdbs.h[i], s.user, s.fp, now)
                   != 0)
        {
            if (s.created_ms < cutoff) {
                hash_list_add(&gone, tdbs.h[i]);
            }
        } else if (trk_session_get(env->st, tdbs.h[i], &s) != 0) {
            /* deleted meanwhile: see cache_session() */
            trk_sess_remove(env->shm, tdbs.h[i]);
        }
    }

    /* 2. expired sessions leave tdb first, then the cache (the cache
     *    entry, kept EXPIRED meanwhile, stops a reload from tdb) */
    trk_sess_each(env->shm, now, env->session_timeout_ms, collect_shm, &sw);
    /* K1: only the leader expires (its deletes replicate as ops) */
    leader = atomic_load(&env->shm->stats->leader) == env->tracker_id;
    deleted = 0;
    dropped = 0;
    if (leader) {
        deleted = delete_sessions(env, &sw.expired, still_expired);
        if (deleted >= 0) {
            dropped = delete_sessions(env, &gone, still_uncached);
            if (dropped < 0) {
                deleted = -1;
            }
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
    if (dropped > 0) {
        ts_info("expired %d session(s) the session cache had no place for "
                "(or without a node identity)", dropped);
    }

    /* 4. the reply cache (leader only, like sessions) */
    rr = !leader ? 0 : trk_store_expire_replies(env->st, (uint64_t) ts_wall_ms()
                                  - (uint64_t) TS_REPLY_CACHE_TTL_S * 1000);
    if (rr > 0) {
        ts_debug("expired %d cached replies", rr);
    }
    free(tdbs.h);
    free(gone.h);
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
