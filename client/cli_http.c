/*
 * cli_http.c -- the node's HTTP process (role "node-http"): its route
 * table, its loop, the rate sampler and the actions it hands to the
 * agent.
 *
 * Purpose: serve /healthz (no key), /metrics and the JSON API under
 * /api/v1 (API key) on the socket the CLI bound (cli_http_setup.c),
 * HTTPS when it loaded the node's certificate.  The loop runs the server
 * for at most TS_HTTP_TICK_MS at a time, then looks at the stop flag and
 * takes a rate sample every TS_NODE_HTTP_SAMPLE_MS: the node's byte
 * totals, each download's verified bytes and each upload peer's bytes,
 * so "bytes/s now" is the difference of two samples.  An action (POST)
 * is one command on the agent's control socket (docs/CONTROL.md), with
 * its reply returned as the agent gave it.
 *
 * Locking: one thread.  Shm is read with atomic loads and the seqlock
 * readers only.  An action waits for the agent's reply (at most
 * TS_NODE_HTTP_CTL_MS) on this thread: other requests wait meanwhile,
 * the node's data plane never does.
 *
 * Crash behaviour: a killed node-http is forked again by the node
 * supervisor on the same listen socket; it keeps nothing (a restarted
 * one's first rates are 0 until its second sample).  It reports itself
 * ready before its server starts, so a failure there exits 1 and is
 * respawned with backoff.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_log.h"
#include "ts_www.h"
#include "node.h"
#include "node_shm.h"
#include "cli_ctl_cli.h"
#include "cli_http.h"

/* The last two samples of what the rates are computed from. */
typedef struct {
    int64_t   at_ms;
    uint64_t  up_B, down_B;
    uint64_t  dl_B[TS_NODE_DOWNLOADS_N];
    uint32_t  dl_id[TS_NODE_DOWNLOADS_N];
    uint64_t  peer_B[TS_NODE_PEER_STATS_N];
} cli_http_sample_t;

static const ts_shm_t    *hshm;
static ts_http_t         *hsrv;
static cli_http_sample_t  hs[2];        /* [1] the latest, [0] before */
static int                hs_n;


const ts_shm_t *
cli_http_shm(void)
{
    return hshm;
}


const ts_http_stats_t *
cli_http_server_stats(void)
{
    return hsrv != NULL ? ts_http_stats(hsrv) : NULL;
}


static void
cli_http_sample(void)
{
    node_stats_sh_t *st = node_stats(hshm);
    node_dl_sh_t    *dls = node_dls(hshm);
    node_peer_sh_t  *pt = node_peers(hshm);
    cli_http_sample_t *s = &hs[1];
    int              i;

    if (st == NULL || dls == NULL || pt == NULL) {
        return;
    }
    hs[0] = hs[1];
    s->at_ms = ts_now_ms();
    s->up_B = atomic_load(&st->bytes_up);
    s->down_B = atomic_load(&st->bytes_down);
    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        s->dl_id[i] = atomic_load(&dls[i].id);
        s->dl_B[i] = atomic_load(&dls[i].bytes_done);
    }
    for (i = 0; i < TS_NODE_PEER_STATS_N; i++) {
        s->peer_B[i] = atomic_load(&pt[i].bytes);
    }
    if (hs_n < 2) {
        hs_n++;
    }
}


/* Bytes/s between the two samples of a counter (0 if it went back). */
static double
cli_http_per_s(uint64_t before, uint64_t now)
{
    int64_t  dt = hs[1].at_ms - hs[0].at_ms;

    if (hs_n < 2 || dt <= 0 || now < before) {
        return 0;
    }
    return (double) (now - before) * 1000.0 / (double) dt;
}


double
cli_http_rate_node(int up)
{
    return up ? cli_http_per_s(hs[0].up_B, hs[1].up_B)
              : cli_http_per_s(hs[0].down_B, hs[1].down_B);
}


double
cli_http_rate_dl(int idx, uint32_t id)
{
    if (idx < 0 || idx >= TS_NODE_DOWNLOADS_N || hs[0].dl_id[idx] != id
        || hs[1].dl_id[idx] != id)
    {
        return 0;
    }
    return cli_http_per_s(hs[0].dl_B[idx], hs[1].dl_B[idx]);
}


double
cli_http_rate_peer(int pidx)
{
    if (pidx < 0 || pidx >= TS_NODE_PEER_STATS_N) {
        return 0;
    }
    return cli_http_per_s(hs[0].peer_B[pidx], hs[1].peer_B[pidx]);
}


/* ---- actions: commands on the agent's control socket ------------------ */

/* r := the agent's reply to argv, as {"ok","exit","error","lines"}. */
static void
cli_http_ctl(ts_http_resp_t *r, int argc, char **argv)
{
    const cli_http_cfg_t *c = cli_http_cfg();
    cli_ctl_link_t        l;
    cli_ctl_msg_t         m;
    json_t               *o;
    int                   rc;

    memset(&l, 0, sizeof(l));          /* request ids start at 1 */
    if (cli_ctl_cli_open(&l, c->state_dir, 1000, NULL) != 0) {
        ts_http_error(r, 503, "the node's agent does not answer on its "
                      "control socket");
        return;
    }
    memset(&m, 0, sizeof(m));
    rc = cli_ctl_cli_call(&l, argc, argv, TS_NODE_HTTP_CTL_MS, NULL, &m);
    cli_ctl_cli_close(&l);
    if (rc != 0) {
        ts_http_error(r, rc == 1 ? 400 : 503, rc == 1
                      ? "the arguments do not fit in a command"
                      : "the agent did not answer the command");
        return;
    }
    o = json_object();
    if (o != NULL) {
        json_object_set_new(o, "ok", json_boolean(m.ok));
        json_object_set_new(o, "exit", json_integer(m.exit));
        json_object_set_new(o, "error", m.error != NULL
                            ? json_string(m.error) : json_null());
        json_object_set_new(o, "lines", m.lines != NULL
                            ? json_incref(m.lines) : json_array());
    }
    cli_ctl_msg_free(&m);
    cli_http_json(r, o);
}


/* A string member of a POST body: NULL (and r answered) if absent or
 * not a non-empty string without NUL bytes. */
static const char *
cli_http_str(json_t *body, const char *key, ts_http_resp_t *r)
{
    json_t     *v = json_object_get(body, key);
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    char        msg[96];

    if (s == NULL || s[0] == '\0' || strlen(s) != json_string_length(v)) {
        snprintf(msg, sizeof(msg), "\"%s\" must be a non-empty string",
                 key);
        ts_http_error(r, 400, msg);
        return NULL;
    }
    return s;
}


/* POST /api/v1/downloads {"group","name","dest"}: download_file. */
static void
cli_http_post_download(void *arg, const char *path, json_t *body,
                       ts_http_resp_t *r)
{
    const char *g, *n, *d;
    char       *argv[4];

    if (json_object_size(body) != 3) {
        ts_http_error(r, 400, "the body must be {\"group\", \"name\", "
                      "\"dest\"} and nothing else");
        return;
    }
    if ((g = cli_http_str(body, "group", r)) == NULL
        || (n = cli_http_str(body, "name", r)) == NULL
        || (d = cli_http_str(body, "dest", r)) == NULL)
    {
        return;
    }
    if (d[0] != '/') {
        ts_http_error(r, 400, "\"dest\" must be an absolute path");
        return;
    }
    argv[0] = (char *) "download_file";
    argv[1] = (char *) g;
    argv[2] = (char *) n;
    argv[3] = (char *) d;
    cli_http_ctl(r, 4, argv);
}


/* POST /api/v1/downloads/<group>/<name>/<action>, an empty object. */
static void
cli_http_post_action(void *arg, const char *path, json_t *body,
                     ts_http_resp_t *r)
{
    static const char *const acts[] = { "cancel", "pause", "resume",
                                        "retry" };
    char    rest[TS_ID_MAX_B + TS_NAME_MAX_B + 64];
    char   *g, *n, *a, *argv[3];
    size_t  i, pl = strlen("/api/v1/downloads/");

    if (json_object_size(body) != 0) {
        ts_http_error(r, 400, "an action's body is {}");
        return;
    }
    if (strlen(path) - pl >= sizeof(rest)) {
        ts_http_error(r, 404, "no such download");
        return;
    }
    memcpy(rest, path + pl, strlen(path) - pl + 1);
    if (cli_http_split(rest, &g, &n, &a) != 0) {
        ts_http_error(r, 404, "no such path (/api/v1/downloads/<group>/"
                      "<name>/<action>)");
        return;
    }
    for (i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
        if (strcmp(a, acts[i]) == 0) {
            argv[0] = (char *) acts[i];
            argv[1] = g;
            argv[2] = n;
            cli_http_ctl(r, 3, argv);
            return;
        }
    }
    ts_http_error(r, 404, "no such action (cancel, pause, resume, retry)");
}


/* ---- the process ------------------------------------------------------ */

static int
cli_http_serve(const ts_worker_ctx_t *ctx, ts_slot_sh_t *slot,
               ts_owner_t me)
{
    const cli_http_cfg_t *c = cli_http_cfg();
    ts_http_cfg_t         hc;
    ts_http_t            *srv;
    char                  err[256];
    int64_t               next = 0;
    ts_http_route_t       routes[7 + TS_WWW_ROUTES_N] = {
        { "/healthz",           0, 1, cli_http_get_healthz, NULL },
        { "/metrics",           0, 0, cli_http_get_metrics, NULL },
        { "/api/v1/node",       0, 0, cli_http_get_node, NULL },
        { "/api/v1/downloads",  0, 0, cli_http_get_downloads, NULL },
        { "/api/v1/downloads/", 1, 0, cli_http_get_dl_sub, NULL },
        { "/api/v1/shares",     0, 0, cli_http_get_shares, NULL },
        { "/api/v1/uploads",    0, 0, cli_http_get_uploads, NULL },
        /* + the dashboard (http/ts_www.h): "/" and "/assets/", open */
    };
    const ts_http_post_route_t posts[] = {
        { "/api/v1/downloads",  0, cli_http_post_download, NULL },
        { "/api/v1/downloads/", 1, cli_http_post_action, NULL },
    };

    ts_http_cfg_defaults(&hc, c->fd, c->api_key, c->tls ? c->crt_pem : NULL,
                         c->key_pem);
    hc.routes = routes;
    hc.nroutes = ts_www_routes(routes, 7, 7 + TS_WWW_ROUTES_N, "node");
    hc.posts = posts;
    hc.nposts = (int) (sizeof(posts) / sizeof(posts[0]));
    hc.post_max_b = TS_NODE_HTTP_POST_MAX_B;
    srv = ts_http_start(&hc, err, sizeof(err));
    if (srv == NULL) {
        ts_err("http: %s", err);
        return 1;
    }
    hsrv = srv;
    ts_debug("node-http ready");
    while (!ts_worker_stopping() && !ts_worker_orphaned(ctx)) {
        if (ts_http_run(srv, TS_HTTP_TICK_MS) != 0) {
            break;
        }
        if (ts_now_ms() >= next) {
            cli_http_sample();
            next = ts_now_ms() + TS_NODE_HTTP_SAMPLE_MS;
        }
        if (slot != NULL && atomic_load(&slot->owner) == me) {
            ts_slot_beat(slot);
        }
    }
    hsrv = NULL;
    ts_http_stop(srv);
    return 0;
}


int
cli_http_main(const ts_worker_ctx_t *ctx)
{
    node_t          *n = ctx->arg;
    ts_slot_sh_t    *slots = node_slots(&n->shm);
    ts_slot_sh_t    *slot = NULL;
    node_stats_sh_t *st = node_stats(&n->shm);
    ts_owner_t       me = ts_owner_make(getpid(), ctx->generation);
    int              rc;

    hshm = &n->shm;
    if (slots != NULL && ctx->slot >= 0 && ctx->slot < TS_SUP_WORKERS_MAX_N)
    {
        slot = &slots[ctx->slot];
        ts_slot_set_active(slot, me);
    }
    if (st != NULL) {
        atomic_store(&st->http_pid, (int32_t) getpid());
        atomic_fetch_add(&st->http_starts, 1);
    }
    /* ready before the server starts: one that cannot start is retried
     * with the supervisor's backoff, never a crash loop of the node */
    ts_worker_ready(ctx);
    cli_http_sample();
    rc = cli_http_serve(ctx, slot, me);
    if (st != NULL) {
        atomic_store(&st->http_pid, 0);
    }
    return rc;
}
