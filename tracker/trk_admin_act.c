/*
 * trk_admin_act.c -- the operator's write actions: disable-user,
 * enable-user and remove-file (ADMIN_ACT over TLS with an admin
 * certificate, and the same rules typed on the tracker console).
 *
 * Purpose:
 *   - disable-user USER sets the disabled flag of the account's record
 *     (trk_codec.h, TRK_USER_F_DISABLED).  The record is a replicated
 *     u/ key: the write is an op like any other and the flag merges
 *     last-writer-wins by the op's stamp, like every change of the
 *     record's one element (docs/REPLICATION.md).  In the same
 *     transaction every session of the user that this tracker knows
 *     ends (session record deleted, its node's presence updated: the
 *     user's sources go offline everywhere), and after the commit the
 *     session cache drops the user's entries.  A disabled account cannot
 *     log in (trk_accounts.c: told so once its password was right) and
 *     any token of it is refused (trk_ops.c), on every tracker once the
 *     op has merged there.
 *   - enable-user USER clears the flag (the ended sessions stay ended:
 *     the user logs in again).
 *   - remove-file GROUP NAME deletes the file record, its source list
 *     and its name in the group's list, and takes it off the share list
 *     of every node that served it: the same records and tombstones as
 *     the last owner's STOP_SHARE (trk_files.c).  Downloads of it then
 *     get "not found".
 * The merge side (trk_admin_merge_note/_end, called by trk_syncops.c
 * around every SYNC_OPS / SYNC_SNAPSHOT batch): a user record that a
 * batch turned disabled drops the user's cached sessions here at once
 * and ends the sessions this tracker holds in tdb in a transaction of
 * its own (a local op): sessions that were opened on this tracker
 * before it heard of the disable end through it.
 *
 * Cost: ending a user's sessions walks the database once (no index of
 * sessions by user exists): operator-triggered, once per disable per
 * tracker.
 *
 * Locking: a worker's event-loop thread (or the supervisor's console);
 * the module's merge notes are per process and a worker handles one
 * batch at a time.
 *
 * Crash behaviour: each action is one tdb transaction.  A worker killed
 * after a merged disable committed but before its own session cleanup
 * leaves those sessions refused (their requests read the flag) and,
 * since their heartbeats are refused, to the leader's expiry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_crypto.h"
#include "ts_log.h"
#include "trk_admin.h"
#include "trk_files.h"
#include "trk_keys.h"
#include "trk_merge.h"
#include "trk_ops.h"

/* The sessions of some users, found by a walk. */
typedef struct {
    const char (*users)[TS_ID_MAX_B + 1];
    uint32_t     nusers;
    uint8_t    (*h)[TS_SHA256_B];
    uint32_t     n, max;
} adm_sess_walk_t;


static int
adm_sess_one(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    adm_sess_walk_t *w = arg;
    trk_session_t    s;
    ts_wbuf_t        val;
    char             hex[2 * TS_SHA256_B + 1];
    uint32_t         i;

    (void) tdb;
    if (k.dsize != 2 + 2 * TS_SHA256_B || !trk_key_is(k.dptr, k.dsize, 's')
        || w->n == w->max)
    {
        return 0;
    }
    ts_wbuf_init(&val);
    if (trk_env_view(k.dptr, k.dsize, v.dptr, v.dsize, &val) == 0
        && trk_session_decode(val.data, val.len, &s) == 0)
    {
        for (i = 0; i < w->nusers; i++) {
            if (strcmp(s.user, w->users[i]) == 0) {
                memcpy(hex, k.dptr + 2, 2 * TS_SHA256_B);
                hex[2 * TS_SHA256_B] = '\0';
                if (ts_unhex(hex, w->h[w->n], TS_SHA256_B) == 0) {
                    w->n++;
                }
                break;
            }
        }
    }
    ts_wbuf_free(&val);
    return 0;
}


/* Inside a transaction: ends every session of users this store holds
 * (at most TS_TRK_ADMIN_USER_SESS_N), each as a logout does.  cut gets
 * the ended hashes for the cache.  0, or -1 (nothing to commit). */
static int
adm_end_sessions(trk_store_t *st, const char (*users)[TS_ID_MAX_B + 1],
                 uint32_t nusers, trk_admin_cut_t *cut)
{
    adm_sess_walk_t w;
    uint32_t        i;

    memset(&w, 0, sizeof(w));
    w.users = users;
    w.nusers = nusers;
    w.max = TS_TRK_ADMIN_USER_SESS_N;
    w.h = malloc(w.max * sizeof(*w.h));
    if (w.h == NULL || trk_store_walk(st, adm_sess_one, &w) != 0) {
        free(w.h);
        return -1;
    }
    for (i = 0; i < w.n; i++) {
        if (trk_files_session_gone(st, w.h[i]) != 0
            || trk_session_del(st, w.h[i]) < 0)
        {
            free(w.h);
            return -1;
        }
    }
    cut->h = w.h;
    cut->n = w.n;
    return 0;
}


void
trk_admin_cut_cache(trk_shm_t *shm, const char *user,
                    trk_admin_cut_t *cut)
{
    uint32_t i;

    for (i = 0; shm != NULL && cut != NULL && i < cut->n; i++) {
        trk_sess_remove(shm, cut->h[i]);
    }
    if (user != NULL && shm != NULL) {
        trk_admin_uncache_user(shm, user);
    }
    if (cut != NULL) {
        free(cut->h);
        cut->h = NULL;
        cut->n = 0;
    }
}


static void
adm_uncache_one(const uint8_t h[32], int64_t hb_ms, void *arg)
{
    (void) hb_ms;
    trk_sess_remove(arg, h);
}


void
trk_admin_uncache_user(trk_shm_t *shm, const char *user)
{
    trk_sess_each_user(shm, user, adm_uncache_one, shm);
}


static ts_status_t
adm_set_disabled(trk_store_t *st, const char *user, int on,
                 trk_admin_cut_t *cut, char *msg, size_t msgsz)
{
    char       one[1][TS_ID_MAX_B + 1];
    trk_user_t u;
    int        rc, was;

    if (!ts_valid_id(user)) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ, TRK_BAD_USER_ID);
    }
    rc = trk_user_get(st, user, &u);
    if (rc != 0) {
        return rc > 0 ? trk_ops_fail(msg, msgsz, TS_ERR_NOTFOUND,
                                     "no user '%s'", user)
                      : trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL,
                                     TRK_DB_FAIL);
    }
    was = u.disabled;
    u.disabled = (uint8_t) (on != 0);
    if (was != u.disabled && trk_user_put(st, user, &u) != 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    /* also when it was disabled already: a session merged since ends */
    snprintf(one[0], sizeof(one[0]), "%s", user);
    if (on && adm_end_sessions(st, (const char (*)[TS_ID_MAX_B + 1]) one, 1,
                               cut) != 0)
    {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    if (on) {
        snprintf(msg, msgsz, "user '%s' %s; %u session(s) ended", user,
                 was ? "was already disabled" : "disabled", cut->n);
    } else {
        snprintf(msg, msgsz, "user '%s' %s", user,
                 was ? "enabled" : "was not disabled");
    }
    return TS_OK;
}


static ts_status_t
adm_remove_file(trk_store_t *st, const char *group, const char *name,
                char *msg, size_t msgsz)
{
    trk_file_t  f;
    trk_srcs_t  s;
    uint32_t    i, n = 0;
    int         rc;

    if (!ts_valid_id(group)) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ, TRK_BAD_GROUP_ID);
    }
    if (!ts_valid_filename(name)) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ, "invalid file name");
    }
    memset(&f, 0, sizeof(f));
    rc = trk_file_get(st, group, name, &f);
    if (rc != 0) {
        return rc > 0 ? trk_ops_fail(msg, msgsz, TS_ERR_NOTFOUND,
                                     "no file '%s' in group '%s'", name,
                                     group)
                      : trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL,
                                     TRK_DB_FAIL);
    }
    trk_file_free(&f);
    rc = trk_srcs_get(st, group, name, &s);
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    /* every node that served it forgets it in its share list */
    for (i = 0; rc == 0 && i < s.n; i++) {
        if (trk_shares_update(st, s.v[i].user, s.v[i].addr, group, name, 0)
            != 0)
        {
            trk_srcs_free(&s);
            return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
        }
        n++;
    }
    if (rc == 0) {
        trk_srcs_free(&s);
    }
    if (trk_file_drop(st, group, name) != 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    snprintf(msg, msgsz, "file '%s' of group '%s' removed (%u source(s))",
             name, group, n);
    return TS_OK;
}


ts_status_t
trk_admin_act(trk_store_t *st, int action, const char *a, const char *b,
              trk_admin_cut_t *cut, char *msg, size_t msgsz)
{
    memset(cut, 0, sizeof(*cut));
    switch (action) {
    case TS_ADMIN_ACT_DISABLE:
    case TS_ADMIN_ACT_ENABLE:
        if (b[0] != '\0') {
            return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ,
                                "disable-user and enable-user take one "
                                "user name");
        }
        return adm_set_disabled(st, a, action == TS_ADMIN_ACT_DISABLE, cut,
                                msg, msgsz);
    case TS_ADMIN_ACT_REMOVE_FILE:
        return adm_remove_file(st, a, b, msg, msgsz);
    default:
        return trk_ops_fail(msg, msgsz, TS_ERR_BADREQ, "unknown admin "
                            "action (disable-user, enable-user, "
                            "remove-file)");
    }
}


ts_status_t
trk_admin_act_txn(trk_store_t *st, trk_shm_t *shm, int action,
                  const char *a, const char *b, uint64_t reqid, char *msg,
                  size_t msgsz)
{
    trk_admin_cut_t cut;
    ts_status_t     rc;

    if (trk_store_begin(st) != 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_BUSY,
                            "tracker database busy");
    }
    trk_store_set_reqid(st, reqid);
    rc = trk_admin_act(st, action, a, b, &cut, msg, msgsz);
    if (rc != TS_OK) {
        trk_store_cancel(st);
        free(cut.h);
        return rc;
    }
    if (trk_store_commit(st) != 0) {
        trk_store_cancel(st);
        free(cut.h);
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    /* after the commit: a request reading tdb now sees the change */
    if (shm != NULL) {
        trk_admin_cut_cache(shm, action == TS_ADMIN_ACT_DISABLE ? a : NULL,
                            &cut);
    }
    free(cut.h);
    return TS_OK;
}


/* ---- the merge side ------------------------------------------------- */

/* One user record a batch merged, with its flag before the batch. */
typedef struct {
    char     user[TS_ID_MAX_B + 1];
    uint8_t  was;
} adm_note_t;

/* The user records of the batch being merged (notes in batch order; a
 * user may come more than once, its first note holds the state before
 * the batch).  Grown as needed: bounded by the keys of one batch. */
static struct {
    adm_note_t *v;
    uint32_t    n, cap;
    int         lost;               /* no memory for a note: check the
                                       whole session cache instead */
} adm_merged;


static void
adm_merged_reset(void)
{
    free(adm_merged.v);
    memset(&adm_merged, 0, sizeof(adm_merged));
}


void
trk_admin_merge_note(const uint8_t *k, uint32_t kl, void *st)
{
    adm_note_t *nv, *e;
    uint32_t    cap;

    if (!trk_key_is(k, kl, 'u') || kl - 2 > TS_ID_MAX_B) {
        return;
    }
    if (adm_merged.n == adm_merged.cap) {
        cap = adm_merged.cap ? adm_merged.cap * 2 : 64;
        nv = realloc(adm_merged.v, cap * sizeof(*nv));
        if (nv == NULL) {
            adm_merged.lost = 1;
            return;
        }
        adm_merged.v = nv;
        adm_merged.cap = cap;
    }
    e = &adm_merged.v[adm_merged.n++];
    memcpy(e->user, k + 2, kl - 2);
    e->user[kl - 2] = '\0';
    e->was = (uint8_t) (trk_user_disabled(st, e->user) == 1);
}


typedef struct {
    uint8_t  (*h)[TS_SHA256_B];
    uint32_t   n, cap;
} adm_scan_t;


static void
adm_scan_one(const uint8_t h[32], int state, void *arg)
{
    adm_scan_t *s = arg;
    void       *nh;

    (void) state;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        nh = realloc(s->h, s->cap * sizeof(*s->h));
        if (nh == NULL) {
            s->cap = s->n;
            return;
        }
        s->h = nh;
    }
    memcpy(s->h[s->n++], h, TS_SHA256_B);
}


/* A note was lost (no memory): every cached session whose user is
 * disabled now leaves the cache. */
static void
adm_scan_cache(trk_env_t *env)
{
    adm_scan_t    s;
    trk_session_t r;
    uint32_t      i;

    memset(&s, 0, sizeof(s));
    trk_sess_each(env->shm, ts_now_ms(), env->session_timeout_ms,
                  adm_scan_one, &s);
    for (i = 0; i < s.n; i++) {
        if (trk_session_get(env->st, s.h[i], &r) == 0
            && trk_user_disabled(env->st, r.user) == 1)
        {
            trk_sess_remove(env->shm, s.h[i]);
        }
    }
    free(s.h);
}


/* The noted users disabled now, once each (first note's state), into
 * out (at most adm_merged.n); those newly disabled first.  Returns how
 * many; *fresh gets how many were not disabled before the batch. */
static uint32_t
adm_disabled_now(trk_env_t *env, adm_note_t *out, uint32_t *fresh)
{
    uint32_t i, j, n = 0, k;

    *fresh = 0;
    for (i = 0; i < adm_merged.n; i++) {
        for (j = 0; j < n; j++) {
            if (strcmp(out[j].user, adm_merged.v[i].user) == 0) {
                break;
            }
        }
        if (j < n || trk_user_disabled(env->st, adm_merged.v[i].user) != 1) {
            continue;           /* seen already, or not disabled */
        }
        out[n++] = adm_merged.v[i];
    }
    /* the newly disabled to the front, for the session cleanup */
    for (i = 0, k = 0; i < n; i++) {
        if (!out[i].was) {
            adm_note_t t = out[k];

            out[k++] = out[i];
            out[i] = t;
        }
    }
    *fresh = k;
    return n;
}


void
trk_admin_merge_end(trk_env_t *env, int committed)
{
    char            (*now)[TS_ID_MAX_B + 1];
    adm_note_t       *dis;
    trk_admin_cut_t   cut;
    uint32_t          i, n, fresh;

    if (!committed || env->shm == NULL
        || (adm_merged.n == 0 && !adm_merged.lost))
    {
        adm_merged_reset();
        return;
    }
    dis = malloc((adm_merged.n ? adm_merged.n : 1) * sizeof(*dis));
    now = malloc((adm_merged.n ? adm_merged.n : 1) * sizeof(*now));
    if (dis == NULL || now == NULL) {
        adm_merged.lost = 1;
    }
    n = dis != NULL && now != NULL ? adm_disabled_now(env, dis, &fresh) : 0;
    for (i = 0; i < n; i++) {
        /* refused from now on: no cached entry may answer for it */
        trk_admin_uncache_user(env->shm, dis[i].user);
        memcpy(now[i], dis[i].user, sizeof(now[i]));
    }
    if (adm_merged.lost) {
        adm_scan_cache(env);
    }
    adm_merged_reset();
    /* the sessions this tracker holds of the users just disabled end
     * here too (those opened here before the disable arrived) */
    memset(&cut, 0, sizeof(cut));
    if (n > 0 && fresh > 0 && trk_store_begin(env->st) == 0) {
        trk_store_set_reqid(env->st, 0);
        if (adm_end_sessions(env->st, (const char (*)[TS_ID_MAX_B + 1]) now,
                             fresh, &cut) != 0
            || trk_store_commit(env->st) != 0)
        {
            trk_store_cancel(env->st);
            ts_warn("cannot end the sessions of a disabled user here; "
                    "they are refused and expire");
        } else if (cut.n > 0) {
            ts_info("ended %u session(s) of %u user(s) disabled on another "
                    "tracker", cut.n, fresh);
        }
        trk_admin_cut_cache(env->shm, NULL, &cut);
    }
    free(dis);
    free(now);
}
