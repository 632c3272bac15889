/*
 * trk_http_api.c -- the JSON answers of the tracker's HTTP endpoint:
 * /healthz (liveness and readiness, without the API key),
 * /api/v1/status (this tracker) and /api/v1/cluster (every tracker, from
 * the peer table of trk_http_peers.c).
 *
 * README.md lists the fields.  Every count is a JSON integer, every rate
 * a number per second, every age in seconds (-1: never), the digest and
 * epoch hex text, a version vector an object {"origin": seq}.
 *
 * Locking: the trk-http main thread (MHD's callbacks); shm by atomic
 * loads, tdb through trk_http_db.c, the peer table by copy.
 *
 * Crash behaviour: writes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_crypto.h"
#include "trk_http.h"


/* body := o (taken); 500 if it cannot be printed. */
static void
reply_json(ts_http_resp_t *r, int status, json_t *o)
{
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    if (s == NULL) {
        ts_http_error(r, 500, "out of memory");
        return;
    }
    ts_http_reply(r, status, "application/json", s, strlen(s));
}


static json_t *
vv_json(const trk_vv_t *vv)
{
    json_t *o = json_object();
    char    k[16];
    int     i;

    for (i = 1; i < TRK_ORIGINS_N; i++) {
        if (vv->seq[i] != 0) {
            snprintf(k, sizeof(k), "%d", i);
            json_object_set_new(o, k, json_integer((json_int_t) vv->seq[i]));
        }
    }
    return o;
}


static json_t *
health_json(const trk_config_t *cfg, int *ready_out)
{
    char    why[8][TRK_HTTP_WHY_B];
    int     live, ready, n, i;
    json_t *o, *a = json_array();

    live = trk_http_health(cfg, &ready, why, 8, &n);
    for (i = 0; i < n; i++) {
        json_array_append_new(a, json_string(why[i]));
    }
    o = json_pack("{s:b, s:b, s:o}", "live", live, "ready", ready,
                  "reasons", a);
    *ready_out = ready;
    return o;
}


void
trk_http_get_healthz(void *arg, const char *path, ts_http_resp_t *r)
{
    const trk_config_t *cfg = arg;
    int                 ready;
    json_t             *o = health_json(cfg, &ready);

    json_object_set_new(o, "tracker_id", json_integer(cfg->id));
    reply_json(r, ready ? 200 : 503, o);
}


static json_t *
peers_up_json(const trk_config_t *cfg)
{
    uint32_t  up = atomic_load(&cfg->shm.stats->peers_up);
    json_t   *o = json_object();
    char      k[16];
    int       i;

    for (i = 1; i <= cfg->trackers.n && i < TRK_ORIGINS_N; i++) {
        if (i != cfg->id) {
            snprintf(k, sizeof(k), "%d", i);
            json_object_set_new(o, k, json_string((up >> i) & 1 ? "up"
                                                                : "down"));
        }
    }
    return o;
}


/* This tracker, as /api/v1/status shows it. */
static json_t *
self_json(const trk_config_t *cfg)
{
    const trk_http_db_t *d = trk_http_db(cfg);
    trk_stats_sh_t      *sb = cfg->shm.stats;
    uint32_t             total = 0, unauth = 0;
    int64_t              up;
    char                 dg[65], ep[17], addr[96];
    int                  ready;
    json_t              *o;

    trk_conns_sum(&cfg->shm, 0, &total, NULL, &unauth);
    ts_hex(d->digest, 32, dg);
    snprintf(ep, sizeof(ep), "%016llx",
             (unsigned long long) atomic_load(&sb->epoch));
    snprintf(addr, sizeof(addr), "%s:%u", cfg->ip, (unsigned) cfg->port);
    up = (ts_wall_ms() - atomic_load(&sb->start_wall_ms)) / 1000;
    o = health_json(cfg, &ready);
    json_object_update_new(o, json_pack(
        "{s:i, s:s, s:s, s:i, s:I, s:I, s:{s:i, s:i}, s:{s:i, s:i}}",
        "tracker_id", cfg->id, "version", TS_VERSION_STRING,
        "address", addr, "pid", (int) atomic_load(&sb->sup_pid),
        "start_time_ms", (json_int_t) atomic_load(&sb->start_wall_ms),
        "uptime_s", (json_int_t) (up < 0 ? 0 : up),
        "workers", "configured", cfg->workers,
        "active", trk_http_workers_active(cfg),
        "connections", "open", (int) total, "not_logged_in", (int) unauth));
    json_object_set_new(o, "store_open", json_boolean(d->store_ok));
    if (!d->store_ok) {
        json_object_set_new(o, "store_error", json_string(d->store_err));
    } else {
        json_object_update_new(o, json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:o, s:b}",
            "users", (json_int_t) d->c.users,
            "groups", (json_int_t) d->c.groups,
            "files", (json_int_t) d->use.v[TRK_USE_FILES],
            "shares", (json_int_t) d->use.v[TRK_USE_SHARES],
            "nodes", (json_int_t) d->use.v[TRK_USE_NODES],
            "oplog_entries", (json_int_t) d->ops,
            "tombstones", (json_int_t) d->tombs,
            "digest", dg, "vv", vv_json(&d->vv),
            "snapshot_merging", d->snap_merging));
    }
    json_object_update_new(o, json_pack(
        "{s:{s:I, s:i}, s:s, s:i, s:o, s:I, s:f, s:i, s:i}",
        "sessions", "replicated", (json_int_t) d->c.sessions,
        "live_here", (int) trk_http_sessions_live(cfg),
        "epoch", ep, "leader", (int) atomic_load(&sb->leader),
        "sync_links", peers_up_json(cfg),
        "requests_total", (json_int_t) trk_metrics_total(cfg->shm.reqs),
        "request_rate_per_s", trk_http_req_rate(cfg),
        "sync_pid", (int) atomic_load(&sb->sync_pid),
        "http_pid", (int) atomic_load(&cfg->shm.reqs->http_pid)));
    return o;
}


void
trk_http_get_status(void *arg, const char *path, ts_http_resp_t *r)
{
    reply_json(r, 200, self_json(arg));
}


/* One other tracker's row of /api/v1/cluster. */
static json_t *
peer_json(const trk_config_t *cfg, const trk_http_peer_t *p,
          const trk_http_db_t *d, const char *mydg, int *agree)
{
    uint32_t  up = atomic_load(&cfg->shm.stats->peers_up);
    int64_t   age = p->ok_ms ? (ts_now_ms() - p->ok_ms) / 1000 : -1;
    json_t   *o;

    o = json_pack("{s:i, s:b, s:s, s:b, s:s, s:I}", "id", p->id,
                  "self", 0, "address", p->addr, "reachable", p->reachable,
                  "sync_link", (up >> p->id) & 1 ? "up" : "down",
                  "status_age_s", (json_int_t) age);
    if (!p->reachable) {
        json_object_set_new(o, "error", json_string(p->polled ? p->err
                                                   : "not polled yet"));
        *agree = 0;
    }
    if (p->ok_ms == 0) {
        return o;
    }
    json_object_update_new(o, json_pack(
        "{s:i, s:o, s:s, s:I, s:I, s:I, s:I, s:I, s:f}",
        "leader", p->leader, "vv", vv_json(&p->vv), "digest", p->digest,
        "sessions", (json_int_t) p->sessions,
        "users", (json_int_t) p->users, "groups", (json_int_t) p->groups,
        "oplog_entries", (json_int_t) p->ops,
        "uptime_s", (json_int_t) p->uptime_s,
        "request_rate_per_s", p->req_rate));
    if (d->store_ok) {
        /* behind: ops here it lacks; missing: ops there we lack */
        json_object_update_new(o, json_pack(
            "{s:I, s:I, s:b, s:b}",
            "lag_ops_behind", (json_int_t) trk_http_vv_ahead(&d->vv, &p->vv),
            "lag_ops_missing_here",
            (json_int_t) trk_http_vv_ahead(&p->vv, &d->vv),
            "vv_equal", memcmp(&d->vv, &p->vv, sizeof(p->vv)) == 0,
            "digest_agrees", strcmp(mydg, p->digest) == 0));
        if (strcmp(mydg, p->digest) != 0) {
            *agree = 0;
        }
    }
    return o;
}


void
trk_http_get_cluster(void *arg, const char *path, ts_http_resp_t *r)
{
    const trk_config_t  *cfg = arg;
    const trk_http_db_t *d = trk_http_db(cfg);
    trk_http_peer_t      ps[TS_TRACKERS_MAX_N];
    json_t              *me, *a = json_array();
    char                 dg[65];
    int                  i, n, agree = d->store_ok, nup = 1;

    ts_hex(d->digest, 32, dg);
    me = self_json(cfg);
    json_object_set_new(me, "id", json_integer(cfg->id));
    json_object_set_new(me, "self", json_true());
    json_object_set_new(me, "reachable", json_true());
    json_array_append_new(a, me);
    n = trk_http_peers_get(ps, TS_TRACKERS_MAX_N);
    for (i = 0; i < n; i++) {
        json_array_append_new(a, peer_json(cfg, &ps[i], d, dg, &agree));
        nup += ps[i].reachable;
    }
    reply_json(r, 200, json_pack(
        "{s:i, s:i, s:i, s:i, s:b, s:o}",
        "tracker_id", cfg->id,
        "leader", (int) atomic_load(&cfg->shm.stats->leader),
        "trackers_total", cfg->trackers.n, "trackers_reachable", nup,
        "digests_agree", agree, "trackers", a));
}
