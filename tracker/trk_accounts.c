/*
 * trk_accounts.c -- accounts: CREATE_USER, LOGIN and LOGOUT.
 *
 * Purpose: create_user and login queue a KDF job (trk_kdf.c) and finish
 * after it (trk_ops_finish).  A LOGIN stores the link's client
 * certificate fingerprint in the session; every logged-in request must
 * come over a link showing the same one, so a token is bound to its node
 * identity and a stolen token alone is worthless.  A successful LOGIN
 * also makes that identity known to the user (trk_known.c), which the
 * login throttle lets past the failures strangers cause (trk_kdf.c).
 * In TLS builds a LOGIN
 * without a client certificate is refused.  The node address a LOGIN
 * names is checked strictly (trk_node_addr_check, trk_presence.c).  An
 * account holds at most TS_TRK_SESSIONS_PER_USER_N sessions (a login past
 * that ends the least recently used).  An account an operator disabled
 * (trk_admin_act.c) is refused once its password was right (a wrong one
 * gets the usual answer, so the flag tells a guesser nothing).  A
 * LOGOUT deletes the session record, which replicates, so the token is
 * refused on every tracker.
 *
 * Locking: runs on a worker's event-loop thread; writes run in one tdb
 * transaction (the dispatcher's, or the one trk_ops_finish opens).
 *
 * Crash behaviour: a create_user commits with its reply-cache entry or
 * leaves nothing.  Logins are not cached (the reply holds the token); a
 * retried login opens another session.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_clock.h"
#include "ts_crypto.h"
#include "ts_log.h"
#include "trk_userflag.h"
#include "trk_kdf.h"
#include "trk_known.h"
#include "trk_sources.h"

#define BAD_LOGIN     "wrong user id or password"
#define NO_CERT       "log in needs the node's TLS client certificate (its " \
                      "node identity); this link shows none"


static int
op_create_user(trk_req_t *rq)
{
    trk_env_t     *env = rq->env;
    trk_kdf_job_t *job;
    trk_user_t     u;
    int64_t        w;
    int            rc, why;

    rc = trk_kdf_job_new(rq, 0);
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
    rc = trk_kdf_reserve_addr(rq);
    if (rc != TS_OK) {
        return rc;
    }
    w = trk_kdf_reserve(env, job, 'c', job->addr, &env->thr_create,
                        TRK_HELD_CREATE,
                        &why);
    if (w > 0) {
        return trk_kdf_refuse(rq, 'c', why, w);
    }
    /* The salt is derived from the user id and the client's request id
     * (random per client, 64 bits): unique per creation, and the SAME
     * when a client retries this create_user on another tracker after a
     * failover.  Both trackers then store the same salt and hash, so the
     * two incarnations are one account (see lost_account() in
     * trk_ops.c). */
    {
        uint8_t  d[TS_SHA256_B];
        ts_wbuf_t sb;

        ts_wbuf_init(&sb);
        ts_put_str(&sb, "tessera/salt/1");
        ts_put_str(&sb, job->user);
        ts_put_u64(&sb, job->reqid);
        if (sb.err || ts_sha256(sb.data, sb.len, d) != 0) {
            ts_wbuf_free(&sb);
            trk_kdf_settle(env, job, 0, NULL, NULL);
            trk_kdf_job_free(job);
            rq->job = NULL;
            trk_ops_msg(rq, "internal error");
            return TS_ERR_INTERNAL;
        }
        ts_wbuf_free(&sb);
        memcpy(job->rec.salt, d, sizeof(job->rec.salt));
    }
    job->rec.iterations = env->kdf_iterations;
    job->rec.created_ms = (uint64_t) ts_wall_ms();
    return TRK_OP_DEFER;
}


/* ---- login ---------------------------------------------------------- */

static int
op_login(trk_req_t *rq)
{
    trk_env_t     *env = rq->env;
    trk_kdf_job_t *job;
    char           canon[TRK_ADDR_MAX_B], why[TRK_MSG_B];
    int            rc, known;

    rc = trk_kdf_job_new(rq, 1);
    if (rc != TS_OK) {
        return rc;
    }
    job = rq->job;
    /* the token will be bound to the link's certificate: without one it
     * would be bound to nobody */
    if (ts_tls_enabled() && (env->link == NULL || !env->link->has_fp)) {
        trk_kdf_job_free(job);
        rq->job = NULL;
        trk_ops_msg(rq, NO_CERT);
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
        trk_ops_msg(rq, why);
        return TS_ERR_BADREQ;
    }
    snprintf(job->node_addr, sizeof(job->node_addr), "%s", canon);
    /* refused before the KDF runs: a throttled guess costs nothing; the
     * attempt counts from now on, so parallel guesses are limited too.
     * A node identity that logged in to this user before is counted on
     * its own, so strangers' failures do not lock its owner out */
    known = env->link != NULL && env->link->has_fp
            && trk_known_has(env->st, job->user, job->node_addr,
                             job->fp) == 1;
    rc = trk_kdf_reserve_login(rq, known);
    if (rc != TS_OK) {
        return rc;
    }
    rc = trk_user_get(env->st, job->user, &job->rec);
    if (rc < 0) {
        trk_kdf_settle(env, job, 0, NULL, NULL);
        trk_kdf_job_free(job);
        rq->job = NULL;
        trk_ops_msg(rq, TRK_DB_FAIL);
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
    trk_kdf_settle(env, job, 0, NULL, NULL);
    if (job->kdf_err != 0) {
        trk_ops_msg(&rq, "key derivation failed");
        trk_ops_reply(out, &rq, TS_ERR_INTERNAL);
        return;
    }
    memcpy(job->rec.hash, job->out, sizeof(job->rec.hash));
    if (trk_store_begin(env->st) != 0) {
        trk_ops_msg(&rq, "tracker database busy");
        trk_ops_reply(out, &rq, TS_ERR_BUSY);
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
    trk_ops_reply(out, &rq, (ts_status_t) st);
    if (st != TS_OK) {
        trk_store_cancel(env->st);      /* nothing changed, nothing cached */
        return;
    }
    if (trk_reply_put(env->st, job->reqid, job->type, job->req_hash,
                      out->data, out->len, (uint64_t) ts_wall_ms()) != 0
        || trk_store_commit(env->st) != 0)
    {
        trk_store_cancel(env->st);
        trk_ops_msg(&rq, TRK_DB_FAIL);
        trk_ops_reply(out, &rq, TS_ERR_INTERNAL);
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
        trk_kdf_settle(env, job, 0, NULL, NULL);
        trk_ops_msg(&rq, "key derivation failed");
        trk_ops_reply(out, &rq, TS_ERR_INTERNAL);
        return;
    }
    if (!job->user_found
        || !ts_ct_equal(job->out, job->rec.hash, sizeof(job->out)))
    {
        uint32_t fu, fa;

        trk_ops_msg(&rq, BAD_LOGIN);
        trk_ops_reply(out, &rq, TS_ERR_AUTH);
        trk_kdf_settle(env, job, 1, &fu, &fa);
        ts_info("failed login for '%s' from %s (%u for the user, %u from "
                "the address)", job->user, job->addr[0] ? job->addr : "-",
                fu, fa);
        return;
    }
    /* a success clears the user's failures it was counted under (not
     * the address's: one good account must not launder guesses at others;
     * nor the safety net's: strangers at many addresses are not undone
     * by the owner) */
    trk_kdf_login_ok(env, job);
    trk_kdf_settle(env, job, 0, NULL, NULL);
    if (!deliver) {
        return;
    }
    memset(&s, 0, sizeof(s));
    memcpy(s.fp, job->fp, TS_FP_B);
    snprintf(s.user, sizeof(s.user), "%s", job->user);
    snprintf(s.node_addr, sizeof(s.node_addr), "%s", job->node_addr);
    s.created_ms = (uint64_t) ts_wall_ms();
    /* bound to this incarnation of the account */
    (void) trk_user_stamp(env->st, job->user, &s.user_hlc, &s.user_origin);
    if (ts_random(tok, sizeof(tok)) != 0
        || ts_sha256(tok, sizeof(tok), h) != 0)
    {
        trk_ops_msg(&rq, "internal error");
        trk_ops_reply(out, &rq, TS_ERR_INTERNAL);
        return;
    }
    /* one account holds at most TS_TRK_SESSIONS_PER_USER_N sessions (so
     * it cannot fill the session cache): the least recently used make
     * room */
    drop = sessions_over_cap(env, job->user, &ndrop);
    /* the node's presence record learns the session in the same
     * transaction */
    bad = trk_store_begin(env->st) != 0;
    /* read in the login's own transaction: a disable that committed
     * before it is seen, one after it finds and ends this session */
    if (!bad && trk_user_disabled(env->st, job->user) == 1) {
        trk_store_cancel(env->st);
        free(drop);
        ts_info("login for '%s' from %s refused: the account is disabled",
                job->user, job->addr[0] ? job->addr : "-");
        snprintf(rq.msg, sizeof(rq.msg), TRK_USER_DISABLED_MSG, job->user);
        trk_ops_reply(out, &rq, TS_ERR_AUTH);
        return;
    }
    for (i = 0; !bad && i < ndrop; i++) {
        if (trk_session_get(env->st, drop[i].h, &old) == 0) {
            bad = trk_files_session_gone(env->st, drop[i].h) != 0
                  || trk_session_del(env->st, drop[i].h) < 0;
        }
    }
    /* this node identity is known to the user from now on */
    if (bad
        || trk_known_add(env->st, s.user, s.fp, s.created_ms) != 0
        || trk_session_put(env->st, h, &s) != 0
        || trk_files_session_added(env->st, h, s.user, s.node_addr) != 0
        || trk_store_commit(env->st) != 0)
    {
        trk_store_cancel(env->st);
        free(drop);
        trk_ops_msg(&rq, TRK_DB_FAIL);
        trk_ops_reply(out, &rq, TS_ERR_INTERNAL);
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
    ts_put_u32(&rq.body, (uint32_t) (env->session_timeout_ms / 3
                                     > TS_TRK_HEARTBEAT_MIN_MS
                                     ? env->session_timeout_ms / 3
                                     : TS_TRK_HEARTBEAT_MIN_MS));
    trk_ops_reply(out, &rq, TS_OK);
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
        trk_ops_msg(rq, TRK_MALFORMED);
        return TS_ERR_BADREQ;
    }
    /* this node's sources go offline with the session */
    rc = trk_files_session_gone(rq->env->st, rq->tok_hash);
    if (rc == 0) {
        rc = trk_session_del(rq->env->st, rq->tok_hash);
    }
    if (rc < 0) {
        trk_ops_msg(rq, TRK_DB_FAIL);
        return TS_ERR_INTERNAL;
    }
    rq->drop_session = 1;
    ts_info("'%s' logged out", rq->user);
    return TS_OK;
}




void
trk_accounts_register(void)
{
    static const trk_op_t ops[] = {
        { TS_MSG_CREATE_USER,    0, 0, op_create_user },
        { TS_MSG_LOGIN,          0, 0, op_login },
        { TS_MSG_LOGOUT,         1, 1, op_logout },
    };

    (void) trk_ops_register(ops, sizeof(ops) / sizeof(ops[0]));
}
ts_status_t
trk_do_create_user(trk_store_t *st, const char *user, const trk_user_t *u,
                   char *msg, size_t msgsz)
{
    trk_user_t old;
    int        rc;

    if (!ts_valid_id(user)) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ, TRK_BAD_USER_ID);
    }
    rc = trk_user_get(st, user, &old);
    if (rc == 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_EXISTS,
                            "user '%s' already exists", user);
    }
    if (rc < 0 || trk_user_put(st, user, u) != 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    return TS_OK;
}


int
trk_password_ok(const trk_user_t *u, const char *pw)
{
    uint8_t h[TS_KDF_HASH_B];

    if (ts_pbkdf2_sha1(pw, strlen(pw), u->salt, sizeof(u->salt),
                       u->iterations, h, sizeof(h)) != 0)
    {
        return 0;
    }
    return ts_ct_equal(h, u->hash, sizeof(h));
}
