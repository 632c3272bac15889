/*
 * trk_kdf.c -- the KDF jobs of CREATE_USER and LOGIN and their throttle
 * reservations.
 *
 * Purpose: PBKDF2 runs off the event loop.  Before a job is queued its
 * attempt is reserved in the shm throttle table (counting the attempts
 * still in progress, so parallel attempts cannot get past the limits;
 * past a limit TS_ERR_BUSY for a period that doubles per failure, even
 * with the right password).  A login from a node identity that logged
 * in to the user before (trk_known.c) is counted only per (user, node),
 * TS_LOGIN_FAILS_NODE_N; any other per address (TS_LOGIN_FAILS_ADDR_N)
 * and per (user, address) (TS_LOGIN_FAILS_USER_N), so a stranger's
 * guesses lock out nobody but the stranger.  The per-user safety net
 * counts the addresses that reached their (user, address) limit: at
 * TS_LOGIN_USER_ADDRS_N of them, logins from unknown nodes are refused
 * for a while; one address cannot trip it alone and the owner's known
 * nodes pass it.  Also KDF jobs in progress per address
 * (TS_TRK_KDF_ADDR_N) and create_users per address
 * (TS_TRK_CREATE_ADDR_N).  The KDF's end settles them (a success clears
 * the counter of the user it was checked under).  The handlers that
 * queue the jobs are in trk_accounts.c.
 *
 * Locking: trk_kdf_run() runs in a KDF thread and touches nothing but its
 * job; everything else runs on a worker's event-loop thread.  The
 * throttle table's lock is taken alone (trk_shm.c), outside any stripe
 * lock.
 *
 * Crash behaviour: a worker that dies with KDF jobs reserved leaves those
 * reservations counted in shm: they lapse after the throttle window
 * (TS_LOGIN_WINDOW_MS), so at worst an address or a user waits that long.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_clock.h"
#include "ts_crypto.h"
#include "ts_log.h"
#include "trk_kdf.h"
#include "trk_thr.h"

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




/* Reserves one attempt of name in a throttle counter; records it in
 * job->held.  0 = go ahead, else the ms to wait (and *why). */
int64_t
trk_kdf_reserve(trk_env_t *env, trk_kdf_job_t *job, char kind,
                const char *name,
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


/* The known-node counter ('i'): generous, and off with the per-user one
 * (--login-fails-user 0). */
static void
kdf_cfg_node(const trk_env_t *env, trk_thr_cfg_t *c)
{
    *c = env->thr_user;
    c->limit = env->thr_user.limit > 0 ? TS_LOGIN_FAILS_NODE_N : 0;
}


/* The per-user safety net ('u'): counts addresses, not failures. */
static void
kdf_cfg_net(const trk_env_t *env, trk_thr_cfg_t *c)
{
    *c = env->thr_user;
    c->limit = env->thr_user.limit > 0 ? TS_LOGIN_USER_ADDRS_N : 0;
    if (c->delay_min_ms < TS_LOGIN_NET_DELAY_MIN_MS) {
        c->delay_min_ms = TS_LOGIN_NET_DELAY_MIN_MS;
    }
    if (c->delay_max_ms < c->delay_min_ms) {
        c->delay_max_ms = c->delay_min_ms;
    }
}


/* Settles the login counters ('p', 'i') job holds; *fu gets the
 * failures now counted. */
static void
kdf_settle_login(trk_env_t *env, trk_kdf_job_t *job, int failed,
                 int64_t now, uint32_t *fu)
{
    char          nm[TRK_THR_NAME_B];
    trk_thr_cfg_t c;

    if (job->held & TRK_HELD_PAIR) {
        trk_thr_pair_name(job->user, job->addr, nm, sizeof(nm));
        *fu = trk_thr_done(env->shm, 'p', nm, &env->thr_user, now, failed);
        kdf_cfg_net(env, &c);
        /* this address has just reached its limit for the user: one more
         * address for the safety net (an address counts once per run of
         * its own counter, which never ends while it keeps failing) */
        if (failed && c.limit > 0 && *fu == env->thr_user.limit) {
            (void) trk_thr_fail(env->shm, 'u', job->user, &c, now);
        }
    }
    if (job->held & TRK_HELD_NODE) {
        trk_thr_node_name(job->user, job->fp, nm, sizeof(nm));
        kdf_cfg_node(env, &c);
        *fu = trk_thr_done(env->shm, 'i', nm, &c, now, failed);
    }
}


/* Settles the reservations job holds; failed: its login failed (counts
 * for the counters it reserved).  *fu / *fa (may be NULL) get the
 * failures now counted. */
void
trk_kdf_settle(trk_env_t *env, trk_kdf_job_t *job, int failed, uint32_t *fu,
               uint32_t *fa)
{
    int64_t  now = ts_now_ms();
    uint32_t u = 0, a = 0;

    kdf_settle_login(env, job, failed, now, &u);
    if (job->held & TRK_HELD_ADDR) {
        a = trk_thr_done(env->shm, 'a', job->addr, &env->thr_addr, now,
                         failed);
    }
    if (job->held & TRK_HELD_KDF) {
        (void) trk_thr_done(env->shm, 'k', job->addr, &env->thr_kdf, now,
                            0);
    }
    if (job->held & TRK_HELD_CREATE) {
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


int
trk_kdf_reserve_login(trk_req_t *rq, int known)
{
    trk_env_t     *env = rq->env;
    trk_kdf_job_t *job = rq->job;
    char           nm[TRK_THR_NAME_B];
    trk_thr_cfg_t  c;
    int64_t        w;
    int            why;

    /* KDF work in progress from the address; a known node is refused
     * only by what is really in progress, never because strangers have
     * filled the table */
    w = trk_kdf_reserve(env, job, 'k', job->addr, &env->thr_kdf,
                        TRK_HELD_KDF, &why);
    if (w > 0 && !(known && why == TRK_THR_FULL)) {
        return trk_kdf_refuse(rq, 'k', why, w);
    }
    if (known) {
        /* the owner's node (or a thief of its key): only its own
         * counter, which strangers cannot drive */
        kdf_cfg_node(env, &c);
        trk_thr_node_name(job->user, job->fp, nm, sizeof(nm));
        w = trk_kdf_reserve(env, job, 'i', nm, &c, TRK_HELD_NODE, &why);
        if (w == 0) {
            return TS_OK;
        }
        if (why != TRK_THR_FULL) {
            return trk_kdf_refuse(rq, 'i', why, w);
        }
        /* its region is full of refusing counters: counted as any node */
    }
    w = trk_kdf_reserve(env, job, 'a', job->addr, &env->thr_addr,
                        TRK_HELD_ADDR, &why);
    if (w > 0) {
        return trk_kdf_refuse(rq, 'a', why, w);
    }
    trk_thr_pair_name(job->user, job->addr, nm, sizeof(nm));
    w = trk_kdf_reserve(env, job, 'p', nm, &env->thr_user, TRK_HELD_PAIR,
                        &why);
    if (w > 0) {
        return trk_kdf_refuse(rq, 'p', why, w);
    }
    kdf_cfg_net(env, &c);
    w = c.limit > 0 ? trk_thr_wait_ms(env->shm, 'u', job->user, &c,
                                      ts_now_ms())
                    : 0;
    return w > 0 ? trk_kdf_refuse(rq, 'u', TRK_THR_FAILURES, w) : TS_OK;
}


void
trk_kdf_login_ok(trk_env_t *env, const trk_kdf_job_t *job)
{
    char nm[TRK_THR_NAME_B];

    if (job->held & TRK_HELD_PAIR) {
        trk_thr_pair_name(job->user, job->addr, nm, sizeof(nm));
        trk_thr_reset(env->shm, 'p', nm);
    }
    if (job->held & TRK_HELD_NODE) {
        trk_thr_node_name(job->user, job->fp, nm, sizeof(nm));
        trk_thr_reset(env->shm, 'i', nm);
    }
}


void
trk_kdf_job_abort(trk_env_t *env, trk_kdf_job_t *job)
{
    if (job == NULL) {
        return;
    }
    trk_kdf_settle(env, job, 0, NULL, NULL);
    trk_kdf_job_free(job);
}


/* Refuses rq for a throttle: frees the job after releasing what it holds
 * and sets the message.  Returns TS_ERR_BUSY. */
int
trk_kdf_refuse(trk_req_t *rq, char kind, int why, int64_t wait)
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
    } else if (kind == 'u') {
        snprintf(rq->msg, sizeof(rq->msg), "too many failed logins for "
                 "this user from many addresses; a node that logged in "
                 "to it before is let in; try again in %lld s", s);
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
            : kind == 'p' ? "user throttled from the address"
            : kind == 'i' ? "known node throttled"
            : kind == 'u' ? "user throttled from many addresses"
            : "address throttled",
            (long long) wait);
    trk_kdf_settle(rq->env, job, 0, NULL, NULL);
    trk_kdf_job_free(job);
    rq->job = NULL;
    return TS_ERR_BUSY;
}


/* Reads user + password into a new job; status on error. */
int
trk_kdf_job_new(trk_req_t *rq, int with_addr)
{
    trk_kdf_job_t *job;
    int            rc;

    job = calloc(1, sizeof(*job));
    if (job == NULL) {
        trk_ops_msg(rq, "out of memory");
        return TS_ERR_INTERNAL;
    }
    job->type = rq->type;
    job->reqid = rq->reqid;
    memcpy(job->req_hash, rq->req_hash, sizeof(job->req_hash));
    rc = trk_ops_get_id(&rq->in, job->user);
    if (rc == -1
        || ts_get_str(&rq->in, job->password, sizeof(job->password)) != 0
        || (with_addr
            && ts_get_str(&rq->in, job->node_addr,
                          sizeof(job->node_addr)) != 0)
        || ts_rbuf_end(&rq->in) != 0)
    {
        trk_kdf_job_free(job);
        trk_ops_msg(rq, TRK_MALFORMED);
        return TS_ERR_BADREQ;
    }
    if (rc == -2) {
        trk_kdf_job_free(job);
        trk_ops_msg(rq, TRK_BAD_USER_ID);
        return TS_ERR_BADREQ;
    }
    if (job->password[0] == '\0') {
        trk_kdf_job_free(job);
        trk_ops_msg(rq, "the password must not be empty");
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
int
trk_kdf_reserve_addr(trk_req_t *rq)
{
    int64_t w;
    int     why;

    w = trk_kdf_reserve(rq->env, rq->job, 'k', rq->job->addr,
                        &rq->env->thr_kdf,
                        TRK_HELD_KDF, &why);
    return w > 0 ? trk_kdf_refuse(rq, 'k', why, w) : TS_OK;
}


/* ---- defaults ------------------------------------------------------- */

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
