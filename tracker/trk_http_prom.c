/*
 * trk_http_prom.c -- /metrics: the tracker's figures in the Prometheus
 * text format (http/ts_prom.h).
 *
 * Names follow the Prometheus conventions: prefix tessera_tracker_,
 * counters end in _total, durations are _seconds (histograms), ages
 * _seconds; gauges carry the plain unit-less count.  Labels: type (the
 * request, lower case: "login"), result ("ok", "auth", ... as
 * ts_status_name, lower case; "other"), peer (a tracker id), origin (a
 * version vector entry).  The families are listed in README.md.
 *
 * Locking: the trk-http main thread; shm by relaxed atomic loads, tdb
 * through trk_http_db.c, the peer table by copy.
 *
 * Crash behaviour: writes nothing.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_crypto.h"
#include "ts_prom.h"
#include "trk_http.h"

#define P "tessera_tracker_"


static void
lower(char *dst, size_t dsz, const char *src)
{
    size_t i;

    for (i = 0; i + 1 < dsz && src[i] != '\0'; i++) {
        dst[i] = (char) tolower((unsigned char) src[i]);
    }
    dst[i] = '\0';
}


static uint64_t
ld(_Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}


/* Requests by type and result, and their latency histogram by type. */
static void
prom_requests(ts_prom_t *b, trk_reqs_sh_t *m)
{
    double    le[TRK_MET_BUCKETS_N];
    uint64_t  c[TRK_MET_BUCKETS_N + 1], sum;
    char      lb[256], tn[32], rn[32];
    int       t, s, i, any;

    ts_prom_family(b, P "requests_total", "counter",
                   "Requests answered, by message type and result.");
    for (t = 0; t < TS_MSG_MAX_; t++) {
        for (s = 0; s < TRK_MET_STATUS_N; s++) {
            uint64_t n = ld(&m->reqs[t][s]);

            if (n == 0) {
                continue;
            }
            lower(tn, sizeof(tn), ts_msg_name((unsigned) t));
            lower(rn, sizeof(rn), s < TRK_MET_STATUS_N - 1
                  ? ts_status_name((ts_status_t) s) : "other");
            lb[0] = '\0';
            (void) ts_prom_label(lb, sizeof(lb), "type", tn);
            (void) ts_prom_label(lb, sizeof(lb), "result", rn);
            ts_prom_u64(b, P "requests_total", lb, n);
        }
    }
    for (i = 0; i < TRK_MET_BUCKETS_N; i++) {
        le[i] = trk_met_le_us[i] / 1e6;
    }
    ts_prom_family(b, P "request_duration_seconds", "histogram",
                   "Time from a whole request frame to its reply (a "
                   "write's reply then waits for the group commit).");
    for (t = 0; t < TS_MSG_MAX_; t++) {
        any = 0;
        for (i = 0; i <= TRK_MET_BUCKETS_N; i++) {
            c[i] = ld(&m->lat[t][i]);
            any |= c[i] != 0;
        }
        if (!any) {
            continue;
        }
        sum = ld(&m->lat_sum_us[t]);
        lower(tn, sizeof(tn), ts_msg_name((unsigned) t));
        lb[0] = '\0';
        (void) ts_prom_label(lb, sizeof(lb), "type", tn);
        ts_prom_histogram(b, P "request_duration_seconds", lb, le, c,
                          TRK_MET_BUCKETS_N, c[TRK_MET_BUCKETS_N],
                          sum / 1e6);
    }
    ts_prom_family(b, P "commit_duration_seconds", "histogram",
                   "Duration of one group commit (tdb commit and fsync).");
    for (i = 0; i <= TRK_MET_BUCKETS_N; i++) {
        c[i] = ld(&m->commit[i]);
    }
    ts_prom_histogram(b, P "commit_duration_seconds", "", le, c,
                      TRK_MET_BUCKETS_N, c[TRK_MET_BUCKETS_N],
                      ld(&m->commit_sum_us) / 1e6);
}


static void
gauge(ts_prom_t *b, const char *name, const char *help, uint64_t v)
{
    ts_prom_family(b, name, "gauge", help);
    ts_prom_u64(b, name, "", v);
}


/* Counts of the database and of this process's shm. */
static void
prom_local(ts_prom_t *b, const trk_config_t *cfg, const trk_http_db_t *d)
{
    trk_stats_sh_t *sb = cfg->shm.stats;
    uint32_t        total = 0, unauth = 0;
    char            lb[64], k[16];
    int             ready, n, i;
    char            why[4][TRK_HTTP_WHY_B];

    (void) trk_http_health(cfg, &ready, why, 4, &n);
    gauge(b, P "ready", "1 when /healthz says ready.", (uint64_t) ready);
    gauge(b, P "store_open", "1 when tracker.tdb is open and readable.",
          (uint64_t) d->store_ok);
    ts_prom_family(b, P "start_time_seconds", "gauge",
                   "When the tracker started, seconds since 1970.");
    ts_prom_num(b, P "start_time_seconds", "",
                atomic_load(&sb->start_wall_ms) / 1000.0);
    gauge(b, P "users", "Accounts.", d->c.users);
    gauge(b, P "groups", "Groups.", d->c.groups);
    gauge(b, P "files", "File records.", d->use.v[TRK_USE_FILES]);
    gauge(b, P "shares", "(node, file) shares.", d->use.v[TRK_USE_SHARES]);
    gauge(b, P "sessions", "Sessions in the replicated store.",
          d->c.sessions);
    gauge(b, P "sessions_live_here",
          "Live sessions in this tracker's session cache.",
          trk_http_sessions_live(cfg));
    gauge(b, P "oplog_entries", "Op log entries kept.", (uint64_t) d->ops);
    gauge(b, P "tombstones", "Tombstones waiting for collection.", d->tombs);
    trk_conns_sum(&cfg->shm, 0, &total, NULL, &unauth);
    ts_prom_family(b, P "connections", "gauge",
                   "Open client connections (all, not logged in).");
    ts_prom_u64(b, P "connections", "state=\"all\"", total);
    ts_prom_u64(b, P "connections", "state=\"not_logged_in\"", unauth);
    ts_prom_family(b, P "workers", "gauge",
                   "Request workers (configured, active).");
    ts_prom_u64(b, P "workers", "state=\"configured\"",
                (uint64_t) cfg->workers);
    ts_prom_u64(b, P "workers", "state=\"active\"",
                (uint64_t) trk_http_workers_active(cfg));
    ts_prom_family(b, P "lock_repairs_total", "counter",
                   "Shared-memory locks repaired after a holder died.");
    ts_prom_u64(b, P "lock_repairs_total", "", atomic_load(&sb->lock_repairs));
    ts_prom_family(b, P "version_vector", "gauge",
                   "Highest op sequence applied, by origin tracker.");
    for (i = 1; i < TRK_ORIGINS_N; i++) {
        if (d->vv.seq[i] != 0) {
            snprintf(k, sizeof(k), "%d", i);
            lb[0] = '\0';
            (void) ts_prom_label(lb, sizeof(lb), "origin", k);
            ts_prom_u64(b, P "version_vector", lb, d->vv.seq[i]);
        }
    }
}


/* The per-peer families (all but the first two need a good STATUS):
 * each family's samples follow its own # TYPE line, as the format
 * requires. */
enum { PEER_UP, PEER_REACH, PEER_AGE, PEER_AGREE, PEER_VV_EQ, PEER_BEHIND,
       PEER_MISSING, PEER_KINDS };

static void
prom_peer_family(ts_prom_t *b, int kind, const trk_http_peer_t *ps, int n,
                 const trk_http_db_t *d, const char *dg, uint32_t up)
{
    static const char *const names[PEER_KINDS][2] = {
        { P "peer_up", "1 when the sync link to the peer is up." },
        { P "peer_reachable",
          "1 when the peer answered its last STATUS poll." },
        { P "peer_status_age_seconds",
          "Age of the peer's last good STATUS answer." },
        { P "peer_digest_agree", "1 when the peer's digest equals ours." },
        { P "peer_vv_equal", "1 when the peer's version vector equals "
          "ours (then digest_agree 0 means divergence)." },
        { P "replication_lag_ops", "Ops one side has and the other "
          "lacks (direction behind: the peer lacks ours; missing: we "
          "lack its)." },
        { NULL, NULL },
    };
    const char *name = names[kind == PEER_MISSING ? PEER_BEHIND : kind][0];
    char        lb[96], id[16];
    int         i;

    if (kind != PEER_MISSING) {
        ts_prom_family(b, name, "gauge", names[kind][1]);
    }
    for (i = 0; i < n; i++) {
        if (kind > PEER_REACH && (ps[i].ok_ms == 0 || !d->store_ok)) {
            continue;
        }
        snprintf(id, sizeof(id), "%d", ps[i].id);
        lb[0] = '\0';
        (void) ts_prom_label(lb, sizeof(lb), "peer", id);
        switch (kind) {
        case PEER_UP:
            ts_prom_u64(b, name, lb, (up >> ps[i].id) & 1);
            break;
        case PEER_REACH:
            ts_prom_u64(b, name, lb, (uint64_t) ps[i].reachable);
            break;
        case PEER_AGE:
            ts_prom_num(b, name, lb, (ts_now_ms() - ps[i].ok_ms) / 1000.0);
            break;
        case PEER_AGREE:
            ts_prom_u64(b, name, lb, strcmp(dg, ps[i].digest) == 0);
            break;
        case PEER_VV_EQ:
            ts_prom_u64(b, name, lb,
                        memcmp(&d->vv, &ps[i].vv, sizeof(d->vv)) == 0);
            break;
        case PEER_BEHIND:
            (void) ts_prom_label(lb, sizeof(lb), "direction", "behind");
            ts_prom_u64(b, name, lb, trk_http_vv_ahead(&d->vv, &ps[i].vv));
            break;
        default:
            (void) ts_prom_label(lb, sizeof(lb), "direction", "missing");
            ts_prom_u64(b, name, lb, trk_http_vv_ahead(&ps[i].vv, &d->vv));
            break;
        }
    }
}


/* The cluster: leader, links, lag, digest agreement. */
static void
prom_cluster(ts_prom_t *b, const trk_config_t *cfg, const trk_http_db_t *d)
{
    trk_http_peer_t  ps[TS_TRACKERS_MAX_N];
    uint32_t         up = atomic_load(&cfg->shm.stats->peers_up);
    int              leader = atomic_load(&cfg->shm.stats->leader);
    char             dg[65];
    int              i, n;

    gauge(b, P "leader", "Id of the tracker this one takes as leader.",
          (uint64_t) (leader < 0 ? 0 : leader));
    gauge(b, P "is_leader", "1 when this tracker is the leader.",
          (uint64_t) (leader == cfg->id));
    n = trk_http_peers_get(ps, TS_TRACKERS_MAX_N);
    if (n == 0) {
        return;
    }
    ts_hex(d->digest, 32, dg);
    for (i = 0; i < PEER_KINDS; i++) {
        prom_peer_family(b, i, ps, n, d, dg, up);
    }
}


/* The HTTP server's own counters. */
static void
prom_http(ts_prom_t *b, const trk_config_t *cfg)
{
    const ts_http_stats_t *s = trk_http_server_stats();

    ts_prom_family(b, P "http_process_starts_total", "counter",
                   "Times the trk-http process was started.");
    ts_prom_u64(b, P "http_process_starts_total", "",
                atomic_load(&cfg->shm.reqs->http_starts));
    if (s == NULL) {
        return;
    }
    ts_prom_family(b, P "http_responses_total", "counter",
                   "HTTP answers of this process, by code class.");
    ts_prom_u64(b, P "http_responses_total", "code=\"2xx\"", s->ok);
    ts_prom_u64(b, P "http_responses_total", "code=\"400\"", s->bad_request);
    ts_prom_u64(b, P "http_responses_total", "code=\"401\"", s->unauthorized);
    ts_prom_u64(b, P "http_responses_total", "code=\"404\"", s->not_found);
    ts_prom_u64(b, P "http_responses_total", "code=\"405\"", s->bad_method);
    ts_prom_u64(b, P "http_responses_total", "code=\"other\"", s->other);
    ts_prom_family(b, P "http_connections_total", "counter",
                   "HTTP connections accepted by this process.");
    ts_prom_u64(b, P "http_connections_total", "", s->conns);
    ts_prom_family(b, P "http_deadline_closed_total", "counter",
                   "HTTP connections closed for a missed deadline.");
    ts_prom_u64(b, P "http_deadline_closed_total", "", s->deadline_closed);
}


void
trk_http_get_metrics(void *arg, const char *path, ts_http_resp_t *r)
{
    const trk_config_t  *cfg = arg;
    const trk_http_db_t *d = trk_http_db(cfg);
    ts_prom_t            b;
    char                 lb[128], id[16];
    size_t               len;
    char                *text;

    ts_prom_init(&b, TS_HTTP_BODY_MAX_B);
    snprintf(id, sizeof(id), "%d", cfg->id);
    lb[0] = '\0';
    (void) ts_prom_label(lb, sizeof(lb), "version", TS_VERSION_STRING);
    (void) ts_prom_label(lb, sizeof(lb), "tracker_id", id);
    ts_prom_family(&b, P "info", "gauge",
                   "Always 1; the labels name the build and tracker.");
    ts_prom_u64(&b, P "info", lb, 1);
    prom_requests(&b, cfg->shm.reqs);
    prom_local(&b, cfg, d);
    prom_cluster(&b, cfg, d);
    prom_http(&b, cfg);
    text = ts_prom_take(&b, &len);
    if (text == NULL) {
        ts_http_error(r, 500, "metrics text too large");
        return;
    }
    ts_http_reply(r, 200, TS_PROM_CTYPE, text, len);
}
