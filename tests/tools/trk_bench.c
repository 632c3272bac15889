/*
 * trk_bench.c -- load generator for one tracker: N concurrent logged-in
 * connections, each a thread doing blocking request/reply, measuring
 * requests per second and p50/p99 latency of a read (LIST_GROUPS) and a
 * write (CREATE_GROUP with unique names) over a fixed duration each.
 *
 * Usage: trk_bench [-c CONNS] [-d SECONDS] [-g GROUPS] [-p PREFIX]
 *                  [-a CA_CRT [-i TRACKER_ID] [-s NODE_DIR]] IP:PORT
 *   GROUPS: groups each connection creates before the read phase (2),
 *   so LIST_GROUPS returns CONNS x GROUPS groups.
 *   -a: TLS, as a client does (role TRACKER_CLIENT, the tracker's chain
 *   checked against CA_CRT and its CN against TRACKER_ID, default 1);
 *   -s: present the node certificate of NODE_DIR (made if missing), as
 *   the CLI does.  Without -a the connections are plaintext (only a
 *   `make BUILD=notls` tracker accepts those).  Each connection does its
 *   handshake once, before the clock starts.
 *
 * Locking: each thread owns its connection and its latency array; the
 * phases are separated by a pthread barrier and the main thread merges
 * the arrays after joining.  Crash behaviour: nothing persistent; the
 * tracker sees closed connections (the users and groups created stay in
 * its data dir, which bench/run.sh throws away).
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ts_buf.h"
#include "ts_config.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "ts_tls.h"

#define BENCH_CONNS_MAX_N    1024
#define BENCH_IO_TIMEOUT_MS  10000

typedef struct {
    int         idx;
    ts_conn_t  *conn;
    uint8_t     tok[TS_TOKEN_B];
    uint64_t    reqid;
    uint64_t   *lat;                   /* nanoseconds */
    size_t      nlat;
    size_t      caplat;
    uint64_t    errors;
    int         failed;
} bench_thr_t;

typedef enum { PH_READ = 0, PH_WRITE = 1, PH_N = 2 } bench_phase_t;

static const char *ph_names[PH_N] = { "LIST_GROUPS", "CREATE_GROUP" };

static char               g_ip[64];
static uint16_t           g_port;
static int                g_conns = 64;
static int                g_secs = 5;
static int                g_pre_groups = 2;   /* per connection, -g */
static char               g_prefix[32];
static pthread_barrier_t  g_barrier;
static _Atomic int        g_phase_stop;
static bench_thr_t       *g_thr;
static ts_tls_t          *g_tls;              /* -a: NULL = plaintext */
static int                g_tracker_id = 1;   /* -i */

/* per phase, per thread results, copied out before the next phase */
static uint64_t          *g_res_lat[PH_N];
static size_t             g_res_n[PH_N];
static uint64_t           g_res_err[PH_N];
static double             g_res_secs[PH_N];
static pthread_mutex_t    g_res_mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

/* One request; returns the status (or -1 on a transport error) and puts
 * the reply payload in *body (malloc'd) for the caller to parse. */
static int
rpc(bench_thr_t *t, uint8_t type, const ts_wbuf_t *req, uint8_t **body,
    uint32_t *blen, char *msg, size_t msgsz)
{
    ts_frame_hdr_t h;
    ts_rbuf_t      r;
    ts_status_t    st;
    uint8_t       *p = NULL;

    t->reqid++;
    if (ts_conn_send_frame(t->conn, type, 0, t->reqid, req->data,
                           (uint32_t) req->len, BENCH_IO_TIMEOUT_MS) != 0)
    {
        return -1;
    }
    if (ts_conn_recv_frame(t->conn, &h, &p, TS_FRAME_MAX_B,
                           BENCH_IO_TIMEOUT_MS) != 0)
    {
        return -1;
    }
    if (h.type != TS_MSG_REPLY || h.reqid != t->reqid) {
        free(p);
        return -1;
    }
    ts_rbuf_init(&r, p, h.len);
    if (ts_reply_parse(&r, &st, msg, msgsz) != 0) {
        free(p);
        return -1;
    }
    if (body != NULL) {
        *body = p;
        *blen = h.len;
    } else {
        free(p);
    }
    return (int) st;
}

static int
lat_push(bench_thr_t *t, uint64_t ns)
{
    uint64_t *n;

    if (t->nlat == t->caplat) {
        size_t cap = t->caplat ? t->caplat * 2 : 4096;

        n = realloc(t->lat, cap * sizeof(*n));
        if (n == NULL) {
            return -1;
        }
        t->lat = n;
        t->caplat = cap;
    }
    t->lat[t->nlat++] = ns;
    return 0;
}

static int
setup(bench_thr_t *t)
{
    ts_wbuf_t  b;
    char       user[64], node[96], msg[256];
    uint8_t   *body = NULL;
    uint32_t   blen = 0;
    int        fd, st, i;

    fd = ts_net_connect(g_ip, g_port, TS_RPC_CONNECT_MS);
    if (fd < 0) {
        fprintf(stderr, "trk_bench: connect %s:%u: %s\n", g_ip, g_port,
                strerror(errno));
        return -1;
    }
    t->conn = g_tls != NULL ? ts_conn_new_tls(fd, g_tls, g_tracker_id, NULL)
                            : ts_conn_new(fd);
    if (t->conn == NULL) {
        return -1;
    }
    if (g_tls != NULL && ts_conn_handshake(t->conn, BENCH_IO_TIMEOUT_MS) != 0)
    {
        fprintf(stderr, "trk_bench: TLS with %s:%u: %s\n", g_ip, g_port,
                ts_tls_last_error()[0] ? ts_tls_last_error()
                                       : strerror(errno));
        return -1;
    }
    t->reqid = ((uint64_t) getpid() << 40) ^ ((uint64_t) t->idx << 24);

    snprintf(user, sizeof(user), "%su%d", g_prefix, t->idx);
    snprintf(node, sizeof(node), "127.0.0.1:%d", 40000 + t->idx);
    ts_wbuf_init(&b);
    ts_put_str(&b, user);
    ts_put_str(&b, "benchpw");
    st = rpc(t, TS_MSG_CREATE_USER, &b, NULL, NULL, msg, sizeof(msg));
    if (st != TS_OK && st != TS_ERR_EXISTS) {
        fprintf(stderr, "trk_bench: create_user %s: %d %s\n", user, st, msg);
        ts_wbuf_free(&b);
        return -1;
    }
    ts_wbuf_reset(&b);
    ts_put_str(&b, user);
    ts_put_str(&b, "benchpw");
    ts_put_str(&b, node);
    st = rpc(t, TS_MSG_LOGIN, &b, &body, &blen, msg, sizeof(msg));
    if (st != TS_OK) {
        fprintf(stderr, "trk_bench: login %s: %d %s\n", user, st, msg);
        free(body);
        ts_wbuf_free(&b);
        return -1;
    }
    {
        ts_rbuf_t r;
        char      m2[8];
        ts_status_t s2;

        ts_rbuf_init(&r, body, blen);
        if (ts_reply_parse(&r, &s2, m2, sizeof(m2)) != 0
            || ts_get_raw(&r, t->tok, TS_TOKEN_B) != 0)
        {
            fprintf(stderr, "trk_bench: bad login reply\n");
            free(body);
            ts_wbuf_free(&b);
            return -1;
        }
    }
    free(body);

    /* a few groups so that LIST_GROUPS has something to say */
    for (i = 0; i < g_pre_groups; i++) {
        char g[64];

        snprintf(g, sizeof(g), "%spre%d_%d", g_prefix, t->idx, i);
        ts_wbuf_reset(&b);
        ts_put_raw(&b, t->tok, TS_TOKEN_B);
        ts_put_str(&b, g);
        st = rpc(t, TS_MSG_CREATE_GROUP, &b, NULL, NULL, msg, sizeof(msg));
        if (st != TS_OK && st != TS_ERR_EXISTS) {
            fprintf(stderr, "trk_bench: create_group %s: %d %s\n", g, st,
                    msg);
            ts_wbuf_free(&b);
            return -1;
        }
    }
    ts_wbuf_free(&b);
    return 0;
}

static void
run_phase(bench_thr_t *t, bench_phase_t ph)
{
    ts_wbuf_t  b;
    char       msg[256], g[64];
    uint64_t   n = 0, t0;
    int        st;

    ts_wbuf_init(&b);
    t->nlat = 0;
    t->errors = 0;
    while (!g_phase_stop && !t->failed) {
        ts_wbuf_reset(&b);
        ts_put_raw(&b, t->tok, TS_TOKEN_B);
        if (ph == PH_WRITE) {
            snprintf(g, sizeof(g), "%sw%d_%" PRIu64, g_prefix, t->idx, n);
            ts_put_str(&b, g);
        }
        n++;
        t0 = now_ns();
        st = rpc(t, ph == PH_READ ? TS_MSG_LIST_GROUPS : TS_MSG_CREATE_GROUP,
                 &b, NULL, NULL, msg, sizeof(msg));
        if (st < 0) {
            t->failed = 1;
            t->errors++;
            break;
        }
        if (st != TS_OK) {
            t->errors++;
            continue;
        }
        if (lat_push(t, now_ns() - t0) != 0) {
            t->failed = 1;
        }
    }
    ts_wbuf_free(&b);

    pthread_mutex_lock(&g_res_mu);
    {
        uint64_t *n2 = realloc(g_res_lat[ph],
                               (g_res_n[ph] + t->nlat + 1) * sizeof(*n2));
        if (n2 != NULL) {
            memcpy(n2 + g_res_n[ph], t->lat, t->nlat * sizeof(*n2));
            g_res_lat[ph] = n2;
            g_res_n[ph] += t->nlat;
        }
        g_res_err[ph] += t->errors;
    }
    pthread_mutex_unlock(&g_res_mu);
}

static void *
thr_main(void *arg)
{
    bench_thr_t *t = arg;
    int          ph;

    if (setup(t) != 0) {
        t->failed = 1;
    }
    pthread_barrier_wait(&g_barrier);          /* all set up */
    for (ph = 0; ph < PH_N; ph++) {
        pthread_barrier_wait(&g_barrier);      /* phase start */
        run_phase(t, (bench_phase_t) ph);
        pthread_barrier_wait(&g_barrier);      /* phase end */
    }
    return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return x < y ? -1 : x > y;
}

static double
pct_us(const uint64_t *v, size_t n, double p)
{
    size_t i;

    if (n == 0) {
        return 0;
    }
    i = (size_t) (p * (double) (n - 1) + 0.5);
    return (double) v[i] / 1000.0;
}

static void
usage(void)
{
    fprintf(stderr, "usage: trk_bench [-c CONNS] [-d SECONDS] [-g GROUPS] "
            "[-p PREFIX] [-a CA_CRT [-i TRACKER_ID] [-s NODE_DIR]] "
            "IP:PORT\n");
}

int
main(int argc, char **argv)
{
    pthread_t  *tids;
    const char *ca = NULL, *node_dir = NULL;
    char        crt[4096], key[4096], err[512];
    int         i, opt, ph, nfailed = 0;
    uint64_t    t0;

    snprintf(g_prefix, sizeof(g_prefix), "b%d_", (int) getpid());
    while ((opt = getopt(argc, argv, "c:d:g:p:a:i:s:h")) != -1) {
        switch (opt) {
        case 'a':
            ca = optarg;
            break;
        case 'i':
            g_tracker_id = atoi(optarg);
            break;
        case 's':
            node_dir = optarg;
            break;
        case 'c':
            g_conns = atoi(optarg);
            break;
        case 'd':
            g_secs = atoi(optarg);
            break;
        case 'g':
            g_pre_groups = atoi(optarg);
            break;
        case 'p':
            snprintf(g_prefix, sizeof(g_prefix), "%s", optarg);
            break;
        case 'h':
            usage();
            return 0;
        default:
            usage();
            return 2;
        }
    }
    if (optind != argc - 1 || g_conns < 1 || g_conns > BENCH_CONNS_MAX_N
        || g_secs < 1 || g_secs > 3600
        || g_pre_groups < 0 || g_pre_groups > 10000
        || ts_parse_hostport(argv[optind], g_ip, sizeof(g_ip), &g_port) != 0)
    {
        usage();
        return 2;
    }
    if (ca != NULL) {
        if (node_dir != NULL) {
            if (ts_pki_ensure_node(node_dir, NULL, err, sizeof(err)) != 0) {
                fprintf(stderr, "trk_bench: %s\n", err);
                return 1;
            }
            snprintf(crt, sizeof(crt), "%s/node.crt", node_dir);
            snprintf(key, sizeof(key), "%s/node.key", node_dir);
        }
        g_tls = ts_tls_ctx_new(TS_TLS_TRACKER_CLIENT,
                               node_dir != NULL ? crt : NULL,
                               node_dir != NULL ? key : NULL, ca, err,
                               sizeof(err));
        if (g_tls == NULL) {
            fprintf(stderr, "trk_bench: %s\n", err);
            return 1;
        }
    }
    printf("connections: %s\n", g_tls == NULL ? "plaintext"
           : !ts_tls_enabled() ? "plaintext (TS_TLS_OFF build)"
           : node_dir != NULL ? "TLS 1.3, node certificate"
           : "TLS 1.3, no client certificate");

    g_thr = calloc((size_t) g_conns, sizeof(*g_thr));
    tids = calloc((size_t) g_conns, sizeof(*tids));
    if (g_thr == NULL || tids == NULL) {
        fprintf(stderr, "trk_bench: out of memory\n");
        return 1;
    }
    pthread_barrier_init(&g_barrier, NULL, (unsigned) g_conns + 1);
    for (i = 0; i < g_conns; i++) {
        g_thr[i].idx = i;
        if (pthread_create(&tids[i], NULL, thr_main, &g_thr[i]) != 0) {
            fprintf(stderr, "trk_bench: pthread_create failed\n");
            return 1;
        }
    }
    pthread_barrier_wait(&g_barrier);
    for (i = 0; i < g_conns; i++) {
        nfailed += g_thr[i].failed;
    }
    if (nfailed) {
        fprintf(stderr, "trk_bench: %d of %d connections failed to set up\n",
                nfailed, g_conns);
    }

    for (ph = 0; ph < PH_N; ph++) {
        g_phase_stop = 0;
        t0 = now_ns();
        pthread_barrier_wait(&g_barrier);
        usleep((useconds_t) g_secs * 1000000u);
        g_phase_stop = 1;
        pthread_barrier_wait(&g_barrier);
        g_res_secs[ph] = (double) (now_ns() - t0) / 1e9;
    }
    for (i = 0; i < g_conns; i++) {
        pthread_join(tids[i], NULL);
    }

    printf("%-13s %6s %6s %10s %10s %10s %10s %7s\n", "request", "conns",
           "secs", "requests", "req/s", "p50_us", "p99_us", "errors");
    for (ph = 0; ph < PH_N; ph++) {
        qsort(g_res_lat[ph], g_res_n[ph], sizeof(uint64_t), cmp_u64);
        printf("%-13s %6d %6.1f %10zu %10.0f %10.0f %10.0f %7" PRIu64 "\n",
               ph_names[ph], g_conns, g_res_secs[ph], g_res_n[ph],
               (double) g_res_n[ph] / g_res_secs[ph],
               pct_us(g_res_lat[ph], g_res_n[ph], 0.50),
               pct_us(g_res_lat[ph], g_res_n[ph], 0.99), g_res_err[ph]);
    }

    nfailed = 0;
    for (i = 0; i < g_conns; i++) {
        nfailed += g_thr[i].failed;
        if (g_thr[i].conn != NULL) {
            ts_conn_free(g_thr[i].conn);
        }
        free(g_thr[i].lat);
    }
    for (ph = 0; ph < PH_N; ph++) {
        free(g_res_lat[ph]);
    }
    free(g_thr);
    free(tids);
    ts_tls_ctx_free(g_tls);
    pthread_barrier_destroy(&g_barrier);
    if (nfailed) {
        fprintf(stderr, "trk_bench: %d connections failed\n", nfailed);
        return 1;
    }
    return 0;
}
