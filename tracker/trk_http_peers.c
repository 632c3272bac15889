/*
 * trk_http_peers.c -- the HTTP process's view of the other trackers: one
 * thread per peer asks its STATUS over the ordinary tracker protocol
 * (TLS, this tracker's own certificate, which STATUS requires) every
 * TS_HTTP_PEER_POLL_MS and keeps the last answer for /api/v1/cluster
 * and /metrics.
 *
 * Bounds: connect within TS_HTTP_PEER_CONNECT_MS, the handshake and the
 * exchange each within TS_HTTP_PEER_RPC_MS, a reply of at most
 * TS_HTTP_PEER_REPLY_MAX_B; the link is kept between polls and dropped
 * on any failure (the next poll dials again).  The peer's text is parsed
 * field by field into numbers and a checked hex digest: nothing of it is
 * passed on verbatim.  A handler never waits for a peer: it reads the
 * table.
 *
 * Locking: `mu` guards the table (copied out by trk_http_peers_get) and
 * the stop flag; a thread holds it only to store a result or to sleep on
 * the condition variable, never across network I/O.
 *
 * Crash behaviour: nothing kept; a restarted process polls afresh.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ts_clock.h"
#include "ts_crypto.h"
#include "ts_log.h"
#include "ts_net.h"
#include "ts_tls.h"
#include "trk_http.h"

typedef struct {
    trk_http_peer_t  v;             /* under mu */
    char             ip[64];
    uint16_t         port;
    pthread_t        th;
    int              started;
    ts_conn_t       *c;             /* the thread's own */
    uint64_t         n0;            /* requests at the last poll */
    int64_t          t0;
} peer_t;

static pthread_mutex_t  mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t   cv = PTHREAD_COND_INITIALIZER;
static int              stopping;
static peer_t           peers[TS_TRACKERS_MAX_N];
static int              npeers;
static ts_tls_t        *ptls;


uint64_t
trk_http_vv_ahead(const trk_vv_t *a, const trk_vv_t *b)
{
    uint64_t n = 0;
    int      o;

    for (o = 1; o < TRK_ORIGINS_N; o++) {
        if (a->seq[o] > b->seq[o]) {
            n += a->seq[o] - b->seq[o];
        }
    }
    return n;
}


/* "1:5,2:7" into vv; 0 or -1. */
static int
parse_vv(const char *s, trk_vv_t *vv)
{
    char               *end;
    unsigned long       o;
    unsigned long long  q;

    memset(vv, 0, sizeof(*vv));
    while (*s != '\0') {
        errno = 0;
        o = strtoul(s, &end, 10);
        if (end == s || *end != ':' || o == 0 || o >= TRK_ORIGINS_N) {
            return -1;
        }
        s = end + 1;
        q = strtoull(s, &end, 10);
        if (end == s || errno != 0 || (*end != ',' && *end != '\0')) {
            return -1;
        }
        vv->seq[o] = q;
        s = *end == ',' ? end + 1 : end;
    }
    return 0;
}


static int
hex64(const char *s)
{
    int i;

    for (i = 0; i < 64; i++) {
        if (strchr("0123456789abcdef", s[i]) == NULL || s[i] == '\0') {
            return 0;
        }
    }
    return s[64] == '\0';
}


/* One "key: value" line of STATUS into v. */
static void
parse_line(trk_http_peer_t *v, const char *k, const char *val)
{
    unsigned long long n = strtoull(val, NULL, 10);

    if (strcmp(k, "users") == 0) {
        v->users = n;
    } else if (strcmp(k, "groups") == 0) {
        v->groups = n;
    } else if (strcmp(k, "sessions") == 0) {
        v->sessions = n;
    } else if (strcmp(k, "ops_logged") == 0) {
        v->ops = n;
    } else if (strcmp(k, "tombstones") == 0) {
        v->tombs = n;
    } else if (strcmp(k, "uptime_s") == 0) {
        v->uptime_s = (int64_t) n;
    } else if (strcmp(k, "leader") == 0 && n < TRK_ORIGINS_N) {
        v->leader = (int) n;
    } else if (strcmp(k, "requests") == 0) {
        v->requests = n;
        v->has_requests = 1;
    } else if (strcmp(k, "digest") == 0 && hex64(val)) {
        memcpy(v->digest, val, 65);
    } else if (strcmp(k, "vv") == 0 && parse_vv(val, &v->vv) != 0) {
        memset(&v->vv, 0, sizeof(v->vv));
    }
}


static int
parse_status(char *text, trk_http_peer_t *v)
{
    char *line, *save = NULL, *colon;

    v->digest[0] = '\0';
    v->has_requests = 0;
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save))
    {
        colon = strstr(line, ": ");
        if (colon != NULL) {
            *colon = '\0';
            parse_line(v, line, colon + 2);
        }
    }
    return v->digest[0] != '\0' ? 0 : -1;
}


/* One STATUS exchange on p's link (dialled if need be).  0, or -1 with
 * the reason in err. */
static int
poll_once(peer_t *p, trk_http_peer_t *v, char *err, size_t errsz)
{
    ts_frame_hdr_t  h;
    ts_rbuf_t       r;
    ts_status_t     st;
    uint8_t        *frame = NULL;
    char            msg[256], *text;
    uint64_t        reqid = ts_random_u64();
    int             fd, rc = -1;

    if (p->c == NULL) {
        fd = ts_net_connect(p->ip, p->port, TS_HTTP_PEER_CONNECT_MS);
        if (fd < 0) {
            snprintf(err, errsz, "connect: %s", strerror(errno));
            return -1;
        }
        p->c = ts_conn_new_tls(fd, ptls, p->v.id, NULL);
        if (p->c == NULL || ts_conn_handshake(p->c, TS_HTTP_PEER_RPC_MS) != 0)
        {
            snprintf(err, errsz, "TLS handshake failed");
            return -1;
        }
    }
    if (ts_conn_send_frame(p->c, TS_MSG_STATUS, 0, reqid, NULL, 0,
                           TS_HTTP_PEER_RPC_MS) != 0
        || ts_conn_recv_frame(p->c, &h, &frame, TS_HTTP_PEER_REPLY_MAX_B,
                              TS_HTTP_PEER_RPC_MS) != 0
        || h.type != TS_MSG_REPLY || h.reqid != reqid)
    {
        snprintf(err, errsz, "no STATUS reply within %d ms",
                 TS_HTTP_PEER_RPC_MS);
        free(frame);
        return -1;
    }
    ts_rbuf_init(&r, frame, h.len);
    text = malloc(TS_STR_MAX_B + 1);
    if (ts_reply_parse(&r, &st, msg, sizeof(msg)) != 0 || st != TS_OK) {
        snprintf(err, errsz, "STATUS refused");
    } else if (text == NULL || ts_get_str(&r, text, TS_STR_MAX_B + 1) != 0
               || parse_status(text, v) != 0)
    {
        snprintf(err, errsz, "malformed STATUS reply");
    } else {
        rc = 0;
    }
    free(text);
    free(frame);
    return rc;
}


static void *
peer_main(void *arg)
{
    peer_t          *p = arg;
    trk_http_peer_t  v;
    struct timespec  ts;
    char             err[128];
    int64_t          now;
    int              rc;

    pthread_mutex_lock(&mu);
    while (!stopping) {
        v = p->v;
        pthread_mutex_unlock(&mu);
        err[0] = '\0';
        rc = poll_once(p, &v, err, sizeof(err));
        if (rc != 0) {
            ts_conn_free(p->c);
            p->c = NULL;
        }
        now = ts_now_ms();
        pthread_mutex_lock(&mu);
        v.polled = 1;
        v.reachable = rc == 0;
        snprintf(v.err, sizeof(v.err), "%s", err);
        if (rc == 0) {
            v.ok_ms = now;
            if (p->t0 != 0 && v.has_requests && v.requests >= p->n0
                && now > p->t0)
            {
                v.req_rate = (double) (v.requests - p->n0) * 1000.0
                             / (double) (now - p->t0);
            }
            p->t0 = now;
            p->n0 = v.requests;
        }
        p->v = v;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += TS_HTTP_PEER_POLL_MS / 1000;
        ts.tv_nsec += (long) (TS_HTTP_PEER_POLL_MS % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!stopping
               && pthread_cond_timedwait(&cv, &mu, &ts) != ETIMEDOUT)
        {
        }
    }
    pthread_mutex_unlock(&mu);
    ts_conn_free(p->c);
    p->c = NULL;
    return NULL;
}


int
trk_http_peers_start(const trk_config_t *cfg)
{
    char  err[512];
    int   i;

    npeers = 0;
    stopping = 0;
    if (cfg->trackers.n < 2) {
        return 0;
    }
    ptls = ts_tls_ctx_new(TS_TLS_TRACKER_CLIENT, cfg->crt_path,
                          cfg->key_path, cfg->ca_path, err, sizeof(err));
    if (ptls == NULL) {
        ts_err("http: cannot set up TLS to the other trackers: %s", err);
        return -1;
    }
    for (i = 1; i <= cfg->trackers.n && npeers < TS_TRACKERS_MAX_N; i++) {
        peer_t *p = &peers[npeers];

        if (i == cfg->id) {
            continue;
        }
        memset(p, 0, sizeof(*p));
        p->v.id = i;
        snprintf(p->ip, sizeof(p->ip), "%s", cfg->trackers.t[i - 1].ip);
        p->port = cfg->trackers.t[i - 1].port;
        snprintf(p->v.addr, sizeof(p->v.addr), "%s%s%s:%u",
                 strchr(cfg->trackers.t[i - 1].ip, ':') ? "[" : "",
                 cfg->trackers.t[i - 1].ip,
                 strchr(cfg->trackers.t[i - 1].ip, ':') ? "]" : "",
                 (unsigned) p->port);
        npeers++;
        if (pthread_create(&p->th, NULL, peer_main, p) != 0) {
            ts_err("http: cannot start the poll thread of tracker %d", i);
            npeers--;
            continue;
        }
        p->started = 1;
    }
    return 0;
}


void
trk_http_peers_stop(void)
{
    struct timespec  ts;
    int              i, left = 0;

    pthread_mutex_lock(&mu);
    stopping = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    /* a thread inside a poll may take its whole deadline: the process is
     * about to exit, so it is waited for only briefly, then left */
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 500L * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    for (i = 0; i < npeers; i++) {
        if (peers[i].started && pthread_timedjoin_np(peers[i].th, NULL, &ts)
                                != 0)
        {
            left++;
        }
        peers[i].started = 0;
    }
    if (left == 0) {
        ts_tls_ctx_free(ptls);
        ptls = NULL;
    }
}


int
trk_http_peers_get(trk_http_peer_t *out, int max)
{
    int i, n = 0;

    pthread_mutex_lock(&mu);
    for (i = 0; i < npeers && n < max; i++) {
        out[n++] = peers[i].v;
    }
    pthread_mutex_unlock(&mu);
    return n;
}
