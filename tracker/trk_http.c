/*
 * trk_http.c -- the tracker's HTTP process (role "trk-http"): its routes
 * and its loop.
 *
 * Purpose: serve /healthz (no key), /metrics, /api/v1/status and
 * /api/v1/cluster (API key) on the socket the supervisor bound
 * (trk_http_setup.c), HTTPS when the supervisor loaded a certificate.
 * The web dashboard (http/ts_www.c) adds "/" and "/assets/" to the table.
 * The loop runs the server for at most TS_HTTP_TICK_MS at a time, then
 * looks at the stop flag and the supervisor's channel and refreshes the
 * request-rate sample, so the process is idle between requests apart
 * from that tick and the peer polls.
 *
 * Locking: one main thread (the server and every handler) plus the peer
 * threads of trk_http_peers.c.  Shm is read with atomic loads only.
 *
 * Crash behaviour: a killed trk-http is forked again by the supervisor
 * on the same listen socket; it keeps nothing.  It reports itself ready
 * before its server starts, so a failure there exits 1 and is respawned
 * with backoff (not counted as a start-up crash loop, which would stop
 * the tracker); a store it cannot open is reported by /healthz (not
 * ready) and retried, not fatal.
 */
#include <string.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_log.h"
#include "ts_www.h"
#include "trk_http.h"

static ts_http_t  *srv;


const ts_http_stats_t *
trk_http_server_stats(void)
{
    return srv != NULL ? ts_http_stats(srv) : NULL;
}


int
trk_http_main(const ts_worker_ctx_t *ctx)
{
    trk_config_t    *cfg = ctx->arg;
    ts_http_cfg_t    hc;
    char             err[256];
    ts_http_route_t  routes[4 + TS_WWW_ROUTES_N] = {
        { "/healthz",        0, 1, trk_http_get_healthz, cfg },
        { "/metrics",        0, 0, trk_http_get_metrics, cfg },
        { "/api/v1/status",  0, 0, trk_http_get_status, cfg },
        { "/api/v1/cluster", 0, 0, trk_http_get_cluster, cfg },
    };
    int              nroutes;

    atomic_store(&cfg->shm.reqs->http_pid, (int32_t) getpid());
    atomic_fetch_add(&cfg->shm.reqs->http_starts, 1);
    memset(&hc, 0, sizeof(hc));
    hc.listen_fd = cfg->http_fd;
    hc.tls_cert = cfg->http_crt_pem;
    hc.tls_key = cfg->http_key_pem;
    hc.api_key = cfg->http_api_key;
    /* the dashboard ("/", "/assets/"): open, the page asks for the key */
    nroutes = ts_www_routes(routes, 4, (int) (sizeof(routes)
                                              / sizeof(routes[0])),
                            "tracker");
    hc.routes = routes;
    hc.nroutes = nroutes;
    hc.conns_max = TS_HTTP_CONNS_MAX_N;
    hc.conns_per_ip = TS_HTTP_CONNS_PER_IP_N;
    hc.idle_timeout_s = TS_HTTP_IDLE_TIMEOUT_S;
    hc.request_ms = TS_HTTP_REQUEST_MS;
    hc.lifetime_ms = TS_HTTP_LIFETIME_MS;
    hc.mem_limit_b = TS_HTTP_HEAD_MAX_B;
    /* ready before the server starts: a server that cannot start is
     * retried with the supervisor's backoff, never taken for a crash
     * loop that would stop the whole tracker */
    ts_worker_ready(ctx);
    srv = ts_http_start(&hc, err, sizeof(err));
    if (srv == NULL) {
        ts_err("http: %s", err);
        return 1;
    }
    /* the peer table fills in the background; a failure there leaves
     * the cluster view empty, not the endpoint down */
    (void) trk_http_peers_start(cfg);
    (void) trk_http_db(cfg);
    ts_debug("http process ready");
    while (!ts_worker_stopping() && !ts_worker_orphaned(ctx)) {
        if (ts_http_run(srv, TS_HTTP_TICK_MS) != 0) {
            break;
        }
        (void) trk_http_req_rate(cfg);
    }
    ts_http_stop(srv);
    srv = NULL;
    trk_http_peers_stop();
    trk_http_db_close();
    atomic_store(&cfg->shm.reqs->http_pid, 0);
    return 0;
}
