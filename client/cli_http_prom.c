/*
 * cli_http_prom.c -- the node's /metrics (Prometheus text format,
 * http/ts_prom.h): bytes and chunks per peer and direction, hash
 * failures, requests in flight, each download's bytes and size, worker
 * restarts per role, TLS handshakes, time spent waiting for the caps,
 * the caps themselves.
 *
 * Purpose: counters come from the node's shm as the workers keep them
 * (node_shm.h).  Per-peer series are bounded: the TS_NODE_HTTP_PEERS_TOP_N
 * peers of a direction that moved the most bytes keep their own label,
 * the rest (and the shm table's own overflow entry) are summed into
 * peer="other", so the sum over a direction's series is always the
 * node's total for it.
 *
 * Locking: atomic loads and the seqlock readers only.
 * Crash behaviour: memory only.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_config.h"
#include "ts_prom.h"
#include "node.h"
#include "node_shm.h"
#include "cli_http.h"

/* One peer series: its label and what it moved. */
typedef struct {
    const char *addr;               /* NULL: "other" */
    uint64_t    bytes, chunks;
} cli_prom_peer_t;

static int
cli_prom_cmp(const void *a, const void *b)
{
    const cli_prom_peer_t *x = a, *y = b;

    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}


/* The peers of direction dir into v (merged by address), the top ones
 * first; what falls off is added to *other.  The count kept. */
static int
cli_prom_peers(int dir, cli_prom_peer_t *v, cli_prom_peer_t *other)
{
    node_peer_sh_t *pt = node_peers(cli_http_shm());
    int             i, j, n = 0;

    other->addr = NULL;
    other->bytes = pt != NULL ? atomic_load(&pt[dir].bytes) : 0;
    other->chunks = pt != NULL ? atomic_load(&pt[dir].chunks) : 0;
    for (i = 2; pt != NULL && i < TS_NODE_PEER_STATS_N; i++) {
        if (atomic_load(&pt[i].state) != NODE_PEER_USED
            || (int) pt[i].dir != dir)
        {
            continue;
        }
        /* one series per address (a peer's certificate may change) */
        for (j = 0; j < n && strcmp(v[j].addr, pt[i].addr) != 0; j++) {
        }
        if (j == n) {
            v[n].addr = pt[i].addr;
            v[n].bytes = v[n].chunks = 0;
            n++;
        }
        v[j].bytes += atomic_load(&pt[i].bytes);
        v[j].chunks += atomic_load(&pt[i].chunks);
    }
    qsort(v, (size_t) n, sizeof(v[0]), cli_prom_cmp);
    for (i = TS_NODE_HTTP_PEERS_TOP_N; i < n; i++) {
        other->bytes += v[i].bytes;
        other->chunks += v[i].chunks;
    }
    return n < TS_NODE_HTTP_PEERS_TOP_N ? n : TS_NODE_HTTP_PEERS_TOP_N;
}


static void
cli_prom_peer_series(ts_prom_t *b)
{
    static cli_prom_peer_t  v[2][TS_NODE_PEER_STATS_N];
    static const char *const dirs[2] = { "up", "down" };
    cli_prom_peer_t         other[2];
    char                    l[256];
    int                     n[2], d, i, k;

    for (d = 0; d < 2; d++) {
        n[d] = cli_prom_peers(d, v[d], &other[d]);
    }
    for (k = 0; k < 2; k++) {
        const char *name = k == 0 ? "tessera_node_bytes_total"
                                  : "tessera_node_chunks_total";

        ts_prom_family(b, name, "counter", k == 0
                       ? "Verified chunk bytes moved, by direction and peer"
                       : "Verified chunks moved, by direction and peer");
        for (d = 0; d < 2; d++) {
            for (i = 0; i <= n[d]; i++) {
                const cli_prom_peer_t *p = i < n[d] ? &v[d][i] : &other[d];

                if (i == n[d] && p->chunks == 0) {
                    continue;           /* no "other" series of nothing */
                }
                l[0] = '\0';
                (void) ts_prom_label(l, sizeof(l), "direction", dirs[d]);
                (void) ts_prom_label(l, sizeof(l), "peer",
                                     p->addr != NULL ? p->addr : "other");
                ts_prom_u64(b, name, l, k == 0 ? p->bytes : p->chunks);
            }
        }
    }
}


static void
cli_prom_downloads(ts_prom_t *b)
{
    static node_dl_sh_t  d;
    const ts_shm_t      *shm = cli_http_shm();
    char                 l[3 * (TS_ID_MAX_B + TS_NAME_MAX_B) + 64];
    int                  i, k;

    for (k = 0; k < 2; k++) {
        const char *name = k == 0 ? "tessera_node_download_bytes"
                                  : "tessera_node_download_size_bytes";

        ts_prom_family(b, name, "gauge", k == 0
                       ? "Verified bytes of a download in the node"
                       : "Size of a download in the node");
        for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
            if (node_dl_snapshot(shm, i, &d) != 0) {
                continue;
            }
            l[0] = '\0';
            (void) ts_prom_label(l, sizeof(l), "group", d.group);
            (void) ts_prom_label(l, sizeof(l), "name", d.name);
            ts_prom_u64(b, name, l, k == 0
                        ? atomic_load(&node_dls(shm)[i].bytes_done)
                        : d.size);
        }
    }
}


/* Requests in flight: ours to sources ("down") and peers' to our
 * uploaders, received and not yet answered ("up"). */
static void
cli_prom_inflight(ts_prom_t *b, const node_stats_sh_t *st)
{
    node_dl_sh_t *dls = node_dls(cli_http_shm());
    uint64_t      down = 0;
    int           i, j;

    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        for (j = 0; j < TS_NODE_SOURCES_N; j++) {
            down += atomic_load(&dls[i].src[j].inflight);
        }
    }
    ts_prom_family(b, "tessera_node_requests_in_flight", "gauge",
                   "Chunk requests sent and not yet answered");
    ts_prom_u64(b, "tessera_node_requests_in_flight", "direction=\"down\"",
                down);
    ts_prom_u64(b, "tessera_node_requests_in_flight", "direction=\"up\"",
                atomic_load(&st->queued));
}


static void
cli_prom_node(ts_prom_t *b, const node_stats_sh_t *st)
{
    static const char *const roles[NODE_ROLES_N] = { "uploader",
        "downloader", "agent", "node-http" };
    node_rate_now_t  rn;
    char             l[64];
    int              i;

    ts_prom_family(b, "tessera_node_hash_failures_total", "counter",
                   "Chunks that failed their SHA1 check");
    ts_prom_u64(b, "tessera_node_hash_failures_total", "",
                atomic_load(&st->hash_failures));
    ts_prom_family(b, "tessera_node_worker_restarts_total", "counter",
                   "Node workers forked again after they exited");
    for (i = 0; i < NODE_ROLES_N; i++) {
        l[0] = '\0';
        (void) ts_prom_label(l, sizeof(l), "role", roles[i]);
        ts_prom_u64(b, "tessera_node_worker_restarts_total", l,
                    atomic_load(&st->restarts[i]));
    }
    ts_prom_family(b, "tessera_node_tls_handshakes_total", "counter",
                   "Peer TLS handshakes (in: to our uploaders, out: ours)");
    for (i = 0; i < 4; i++) {
        snprintf(l, sizeof(l), "direction=\"%s\",result=\"%s\"",
                 i / 2 == 0 ? "in" : "out", i % 2 == 0 ? "ok" : "fail");
        ts_prom_u64(b, "tessera_node_tls_handshakes_total", l,
                    i % 2 == 0 ? atomic_load(&st->tls_ok[i / 2])
                               : atomic_load(&st->tls_fail[i / 2]));
    }
    ts_prom_family(b, "tessera_node_rate_limit_wait_seconds_total",
                   "counter", "Time links slept for the bandwidth caps' "
                   "tokens, summed over links");
    for (i = 0; i < 2; i++) {
        ts_prom_num(b, "tessera_node_rate_limit_wait_seconds_total",
                    i == 0 ? "direction=\"up\"" : "direction=\"down\"",
                    (double) atomic_load(&st->rate_wait_ns[i]) / 1e9);
    }
    memset(&rn, 0, sizeof(rn));
    (void) node_rate_get(cli_http_shm(), &rn);
    ts_prom_family(b, "tessera_node_rate_cap_bytes_per_second", "gauge",
                   "The node-wide bandwidth caps (0 = none)");
    ts_prom_u64(b, "tessera_node_rate_cap_bytes_per_second",
                "direction=\"up\"", rn.up_Bps);
    ts_prom_u64(b, "tessera_node_rate_cap_bytes_per_second",
                "direction=\"down\"", rn.down_Bps);
}


/* The HTTP process's own counters. */
static void
cli_prom_http(ts_prom_t *b, const node_stats_sh_t *st)
{
    static const char *const codes[] = { "2xx", "400", "401", "404", "405",
                                         "413", "415", "other" };
    const ts_http_stats_t   *s = cli_http_server_stats();
    uint64_t                 v[8];
    char                     l[32];
    int                      i;

    ts_prom_family(b, "tessera_node_http_process_starts_total", "counter",
                   "Times the node-http process was started");
    ts_prom_u64(b, "tessera_node_http_process_starts_total", "",
                atomic_load(&st->http_starts));
    if (s == NULL) {
        return;
    }
    v[0] = s->ok;
    v[1] = s->bad_request;
    v[2] = s->unauthorized;
    v[3] = s->not_found;
    v[4] = s->bad_method;
    v[5] = s->too_large;
    v[6] = s->bad_type;
    v[7] = s->other;
    ts_prom_family(b, "tessera_node_http_responses_total", "counter",
                   "HTTP answers of this process, by code");
    for (i = 0; i < 8; i++) {
        snprintf(l, sizeof(l), "code=\"%s\"", codes[i]);
        ts_prom_u64(b, "tessera_node_http_responses_total", l, v[i]);
    }
    ts_prom_family(b, "tessera_node_http_deadline_closed_total", "counter",
                   "HTTP connections closed for a missed deadline");
    ts_prom_u64(b, "tessera_node_http_deadline_closed_total", "",
                s->deadline_closed);
}


void
cli_http_get_metrics(void *arg, const char *path, ts_http_resp_t *r)
{
    node_stats_sh_t *st = node_stats(cli_http_shm());
    ts_prom_t        b;
    char            *s;
    size_t           len;

    if (st == NULL || node_dls(cli_http_shm()) == NULL) {
        ts_http_error(r, 503, "the node's segment is not readable");
        return;
    }
    ts_prom_init(&b, TS_HTTP_BODY_MAX_B);
    cli_prom_peer_series(&b);
    cli_prom_inflight(&b, st);
    cli_prom_node(&b, st);
    cli_prom_downloads(&b);
    cli_prom_http(&b, st);
    s = ts_prom_take(&b, &len);
    ts_prom_free(&b);
    if (s == NULL) {
        ts_http_error(r, 500, "metrics too large");
        return;
    }
    ts_http_reply(r, 200, TS_PROM_CTYPE, s, len);
}
