/*
 * trk_wadm.c -- a request worker's admission of connections: the caps
 * checked at accept, eviction of idle connections not logged in, and
 * the per-user connection cap.
 *
 * Purpose: a new connection is checked against the caps on connections
 * in all (--max-conns), from its address (--max-conns-per-addr), not
 * logged in from its address (--max-unauth-per-addr) and not logged in
 * at all (--max-unauth; at these two a worker makes room from its own
 * links, and one holding less than its share admits anyway, so the
 * pool stays under the cap plus the other workers' shares).  When one
 * of these two, or the cap of the tracker, is full, the oldest
 * connection of this worker that is not logged in and not in the middle
 * of a password check is closed to make room: of the same address for
 * the per-address cap, else of the address holding the most such links
 * here (a link still in a young TLS handshake only if nothing else can
 * go).  So idle junk cannot hold the pool: an honest client's new link
 * (a heartbeat after a reconnect, a login) gets in unless its own
 * address floods the pool faster than it can log in; a link that shows
 * the certificate of a live session is kept (it is that node's) rather
 * than closed.  The per-address cap on all links refuses, as it always
 * did (the links not logged in among them are capped far lower).  A
 * link that logs in, or shows a valid token or a tracker certificate,
 * leaves the pool at once.  Each link is also counted under the user
 * whose token or login it last showed (keyed hash buckets in shm,
 * summed over the workers): one more than --max-conns-per-user is
 * closed, so what one user can make the tracker hold is that cap times
 * the frame limit.
 *
 * Locking: the worker's event-loop thread only.  The shm counters are
 * lock-free atomics written only by this worker (its slot).
 *
 * Crash behaviour: nothing durable; a dead worker's counters are zeroed
 * with its slot (trk_conns_reset).
 */
#include <stdio.h>
#include <string.h>

#include "ts_clock.h"
#include "ts_log.h"
#include "trk_wconn.h"

#define SCOPE_NONE  (UINT32_MAX - 1)   /* victim(): nobody makes room */

static int64_t   evict_log_ms;
static uint32_t  evicted_n;
static int64_t   user_log_ms;
static uint32_t  user_refused_n;


void
trk_wl_push(int list, trk_wconn_t *c)
{
    trk_wlist_t *l = &trk_wk.lists[list];

    if (c->on_list[list]) {
        return;
    }
    c->lnext[list] = NULL;
    c->lprev[list] = l->tail;
    if (l->tail != NULL) {
        l->tail->lnext[list] = c;
    } else {
        l->head = c;
    }
    l->tail = c;
    c->on_list[list] = 1;
}


void
trk_wl_remove(int list, trk_wconn_t *c)
{
    trk_wlist_t *l = &trk_wk.lists[list];

    if (!c->on_list[list]) {
        return;
    }
    if (c->lprev[list] != NULL) {
        c->lprev[list]->lnext[list] = c->lnext[list];
    } else {
        l->head = c->lnext[list];
    }
    if (c->lnext[list] != NULL) {
        c->lnext[list]->lprev[list] = c->lprev[list];
    } else {
        l->tail = c->lprev[list];
    }
    c->lprev[list] = NULL;
    c->lnext[list] = NULL;
    c->on_list[list] = 0;
}


void
trk_wadm_unauth_add(trk_wconn_t *c)
{
    if (c->unauth) {
        return;
    }
    c->unauth = 1;
    atomic_fetch_add(&trk_wk.my_counts->unauth, 1);
    atomic_fetch_add(&trk_wk.my_counts->addr_unauth[c->bucket], 1);
    trk_wl_push(TRK_WL_UNAUTH, c);
}


void
trk_wadm_unauth_drop(trk_wconn_t *c)
{
    if (!c->unauth) {
        return;
    }
    c->unauth = 0;
    atomic_fetch_sub(&trk_wk.my_counts->unauth, 1);
    atomic_fetch_sub(&trk_wk.my_counts->addr_unauth[c->bucket], 1);
    trk_wl_remove(TRK_WL_UNAUTH, c);
}


/* May c be closed to make room?  Not while its password check runs;
 * in the first pass (strict) not while its TLS handshake is young
 * either (a new honest link is usually there), unless nothing else is
 * left. */
static int
evictable(const trk_wconn_t *c, int strict, int64_t now)
{
    if (c->job_pending) {
        return 0;
    }
    return !strict || c->ready || now - c->acc_ms >= TS_TRK_EVICT_GRACE_MS;
}


/* The connection to close for a new one: of address bucket the oldest
 * (scope = bucket); for a tracker-wide cap (scope UINT32_MAX) the oldest
 * of the address holding the most such links in this worker, so a
 * flood from a few addresses makes room from its own links.  NULL if
 * none may go. */
static trk_wconn_t *
victim(uint32_t scope)
{
    trk_wconn_t *c, *v;
    uint32_t     n, best;
    int64_t      now = ts_now_ms();
    int          strict;

    if (scope == SCOPE_NONE) {
        return NULL;
    }
    for (strict = 1; strict >= 0; strict--) {
        v = NULL;
        best = 0;
        for (c = trk_wk.lists[TRK_WL_UNAUTH].head; c != NULL;
             c = c->lnext[TRK_WL_UNAUTH])
        {
            if (!evictable(c, strict, now)) {
                continue;
            }
            if (scope != UINT32_MAX) {
                if (c->bucket == scope) {
                    return c;
                }
                continue;
            }
            n = atomic_load(&trk_wk.my_counts->addr_unauth[c->bucket]);
            if (n > best) {
                best = n;
                v = c;
            }
        }
        if (v != NULL) {
            return v;
        }
    }
    return NULL;
}


/* A link that shows the node certificate of a live session is that
 * node's new link (a heartbeat after a reconnect): it leaves the pool,
 * counted under the session's user, instead of being closed.  Checked
 * once per link, only when it would be closed (a walk of the session
 * cache).  1 it left the pool. */
static int
promote(trk_wconn_t *c)
{
    char user[TS_ID_MAX_B + 1];

    if (!c->ready || !c->link.has_fp || c->fp_checked) {
        return 0;
    }
    c->fp_checked = 1;
    if (!trk_sess_fp_live(trk_wk.env.shm, c->link.fp, ts_now_ms(),
                          trk_wk.env.session_timeout_ms, user, sizeof(user))
        || trk_wadm_user(c, user) != 0)
    {
        return 0;
    }
    trk_wadm_unauth_drop(c);
    c->promoted = 1;            /* still only small frames before a token */
    ts_debug("%s shows the certificate of a session of '%s': kept",
             c->peer, user);
    return 1;
}


/* Closes victim to make room under cap why; logs at most once per
 * TS_TRK_LOG_EVERY_MS. */
static void
evict(trk_wconn_t *victim, const char *why)
{
    int64_t now = ts_now_ms();

    evicted_n++;
    if (now - evict_log_ms >= TS_TRK_LOG_EVERY_MS) {
        ts_warn("closed %u connection(s) not logged in to make room since "
                "the last report (last: %s, open %lld ms, at the %s)",
                evicted_n, victim->peer,
                (long long) (now - victim->acc_ms), why);
        evict_log_ms = now;
        evicted_n = 0;
    }
    trk_wconn_close(victim, NULL);
}


/* This worker's share of a tracker-wide cap (at least 1). */
static uint32_t
share(uint32_t cap)
{
    uint32_t w = trk_wk.cfg->workers > 0 ? (uint32_t) trk_wk.cfg->workers : 1;

    return cap / w > 0 ? cap / w : 1;
}


/* Which cap a new connection from bucket would break, or NULL; *scope
 * is the bucket whose connections may make room (UINT32_MAX: any,
 * SCOPE_NONE: none may). */
static const char *
over_cap(uint32_t bucket, uint32_t *scope)
{
    const trk_config_t *cfg = trk_wk.cfg;
    uint32_t            total, in_bucket, unauth;

    trk_conns_sum(trk_wk.env.shm, bucket, &total, &in_bucket, &unauth);
    *scope = UINT32_MAX;
    if (total >= cfg->conns_max) {
        return "connection cap of the tracker";
    }
    *scope = SCOPE_NONE;
    if (in_bucket >= cfg->conns_addr) {
        /* its own links, of which those not logged in are capped far
         * lower: refused, as before */
        return "connection cap per address";
    }
    *scope = bucket;
    /* a worker makes room only from its own links: at a cap on links
     * not logged in, one holding less than its share of the cap admits
     * anyway (the others make room from theirs), so the pool may exceed
     * the cap by the other workers' shares at most */
    if (trk_conns_addr_unauth(trk_wk.env.shm, bucket) >= cfg->unauth_addr
        && atomic_load(&trk_wk.my_counts->addr_unauth[bucket])
           >= share(cfg->unauth_addr))
    {
        return "cap per address on connections not logged in";
    }
    *scope = UINT32_MAX;
    if (unauth >= cfg->unauth_max
        && atomic_load(&trk_wk.my_counts->unauth) >= share(cfg->unauth_max))
    {
        return "cap on connections not logged in";
    }
    return NULL;
}


const char *
trk_wadm_admit(uint32_t bucket)
{
    trk_wconn_t *v;
    const char  *why;
    uint32_t     scope;
    int          k;

    /* each eviction frees one place under every cap it counted in; a
     * promotion only under the caps on links not logged in */
    for (k = 0; k < 16; k++) {
        why = over_cap(bucket, &scope);
        if (why == NULL) {
            return NULL;
        }
        v = victim(scope);
        if (v == NULL) {
            return why;
        }
        if (!promote(v)) {
            evict(v, why);
        }
    }
    return over_cap(bucket, &scope);
}


void
trk_wadm_user_drop(trk_wconn_t *c)
{
    if (c->has_user) {
        atomic_fetch_sub(&trk_wk.my_counts->user[c->ubucket], 1);
        c->has_user = 0;
    }
}


int
trk_wadm_user(trk_wconn_t *c, const char *user)
{
    uint32_t ub, n;
    int64_t  now;

    if (user[0] == '\0' || (c->has_user && strcmp(c->user, user) == 0)) {
        return 0;
    }
    ub = trk_user_bucket(trk_wk.env.shm, user);
    if (c->has_user && c->ubucket == ub) {
        snprintf(c->user, sizeof(c->user), "%s", user);
        return 0;
    }
    trk_wadm_user_drop(c);
    n = trk_conns_user(trk_wk.env.shm, ub);
    if (trk_wk.cfg->conns_user > 0 && n >= trk_wk.cfg->conns_user) {
        now = ts_now_ms();
        user_refused_n++;
        if (now - user_log_ms >= TS_TRK_LOG_EVERY_MS) {
            ts_warn("closed %u connection(s) over --max-conns-per-user %u "
                    "since the last report (last: '%s' from %s)",
                    user_refused_n, trk_wk.cfg->conns_user, user, c->peer);
            user_log_ms = now;
            user_refused_n = 0;
        }
        return -1;
    }
    atomic_fetch_add(&trk_wk.my_counts->user[ub], 1);
    c->has_user = 1;
    c->ubucket = ub;
    snprintf(c->user, sizeof(c->user), "%s", user);
    return 0;
}
