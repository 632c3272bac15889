/*
 * ts_http.c -- the observability HTTP(S) server on libmicrohttpd: route
 * table, API key check, method and body rules, deadlines.
 *
 * Purpose: see ts_http.h for the rules a request must follow.  A POST's
 * head is judged first (route, method, key, type, announced length) and
 * only an accepted one has its body read, into a buffer of post_max_b
 * bytes allocated for that request: a body that grows past it (sent
 * chunked, with no length announced) is dropped as it comes and answered
 * 413 at its end, or cut at the request deadline.  MHD runs
 * in its external epoll mode on the caller's thread; ts_http_run() waits
 * at most max_ms for traffic, lets MHD do its work, then walks the open
 * connections and shuts down (shutdown(2), so MHD closes it itself) any
 * that missed its deadline: the request head must arrive within
 * request_ms (a POST's body too; a slowloris that dribbles a byte now and then
 * resets MHD's own idle timeout, not this one), and no connection lives
 * longer than lifetime_ms.
 *
 * Locking: none; one thread owns a server and its connection list (MHD
 * calls every callback from inside ts_http_run on that thread).
 *
 * Crash behaviour: nothing persistent.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <jansson.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_crypto.h"
#include "ts_log.h"
#include "ts_http.h"

/* One open connection and its deadlines. */
typedef struct hconn_s {
    struct hconn_s  *prev, *next;
    int              fd;
    int64_t          start_ms;
    int64_t          head_by_ms;    /* 0: no request head being read */
    int              cut;           /* shut down already */
} hconn_t;

struct ts_http_s {
    struct MHD_Daemon *d;
    ts_http_cfg_t      cfg;
    size_t             keylen;
    hconn_t           *conns;
    ts_http_stats_t    st;
};

/* The address of the first call of a request (MHD's *con_cls). */
static int  req_seen;

/* A POST whose body is being read (MHD's *con_cls until it is answered). */
typedef struct {
    const ts_http_post_route_t *rt;
    size_t                 len;
    int                    over;    /* past the cap: the rest is dropped */
    char                   buf[];   /* cfg.post_max_b bytes */
} hpost_t;


int
ts_http_tls_supported(void)
{
    return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
}


int
ts_http_is_loopback(const char *ip)
{
    struct in_addr   a4;
    struct in6_addr  a6;

    if (inet_pton(AF_INET, ip, &a4) == 1) {
        return (ntohl(a4.s_addr) >> 24) == 127;
    }
    if (inet_pton(AF_INET6, ip, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6)) {
            return 1;
        }
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return 0;
}


void
ts_http_reply(ts_http_resp_t *r, int status, const char *ctype, char *body,
              size_t len)
{
    if (!r->static_body) {
        free(r->body);
    }
    r->static_body = 0;
    r->status = status;
    r->ctype = ctype;
    r->body = body;
    r->len = len;
}


void
ts_http_error(ts_http_resp_t *r, int status, const char *msg)
{
    json_t *o = json_pack("{s:s, s:i}", "error", msg, "status", status);
    char   *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    ts_http_reply(r, status, "application/json", s, s != NULL ? strlen(s)
                                                             : 0);
}


/* ---- connections and deadlines -------------------------------------- */

static void
on_conn(void *cls, struct MHD_Connection *mc, void **sock_ctx,
        enum MHD_ConnectionNotificationCode code)
{
    ts_http_t                    *s = cls;
    hconn_t                      *c;
    const union MHD_ConnectionInfo *ci;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        c = calloc(1, sizeof(*c));
        ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (c == NULL || ci == NULL) {
            free(c);
            *sock_ctx = NULL;
            return;
        }
        c->fd = ci->connect_fd;
        c->start_ms = ts_now_ms();
        c->head_by_ms = c->start_ms + s->cfg.request_ms;
        c->next = s->conns;
        if (s->conns != NULL) {
            s->conns->prev = c;
        }
        s->conns = c;
        s->st.conns++;
        *sock_ctx = c;
        return;
    }
    /* closed: MHD closes the fd after this call */
    c = *sock_ctx;
    if (c == NULL) {
        return;
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    free(c);
    *sock_ctx = NULL;
}


static hconn_t *
conn_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci;

    ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}


/* A request is over: the next one's head has request_ms again. */
static void
on_done(void *cls, struct MHD_Connection *mc, void **con_cls,
        enum MHD_RequestTerminationCode code)
{
    ts_http_t *s = cls;
    hconn_t   *c = conn_of(mc);

    if (c != NULL) {
        c->head_by_ms = ts_now_ms() + s->cfg.request_ms;
    }
    if (*con_cls != NULL && *con_cls != &req_seen) {
        free(*con_cls);             /* a POST cut short */
    }
    *con_cls = NULL;
}


static void
deadlines(ts_http_t *s)
{
    int64_t  now = ts_now_ms();
    hconn_t *c;

    for (c = s->conns; c != NULL; c = c->next) {
        if (c->cut) {
            continue;
        }
        if ((c->head_by_ms != 0 && now > c->head_by_ms)
            || now - c->start_ms > s->cfg.lifetime_ms)
        {
            /* MHD sees end of stream and closes it on its next run */
            (void) shutdown(c->fd, SHUT_RDWR);
            c->cut = 1;
            s->st.deadline_closed++;
        }
    }
}


/* ---- requests --------------------------------------------------------- */

static int
key_ok(ts_http_t *s, struct MHD_Connection *mc)
{
    const char *k = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
                                                "X-API-Key");
    const char *a;

    if (k == NULL) {
        a = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
                                        MHD_HTTP_HEADER_AUTHORIZATION);
        if (a != NULL && strncmp(a, "Bearer ", 7) == 0) {
            k = a + 7;
        }
    }
    return k != NULL && strlen(k) == s->keylen
           && ts_ct_equal(k, s->cfg.api_key, s->keylen);
}


/* 1 if url is path (prefix: starts with it). */
static int
path_is(const char *url, const char *path, int prefix)
{
    return prefix ? strncmp(url, path, strlen(path)) == 0
                  : strcmp(url, path) == 0;
}


static const ts_http_post_route_t *
post_route_of(ts_http_t *s, const char *url)
{
    int  i;

    for (i = 0; i < s->cfg.nposts; i++) {
        if (path_is(url, s->cfg.posts[i].path, s->cfg.posts[i].prefix)) {
            return &s->cfg.posts[i];
        }
    }
    return NULL;
}


static const ts_http_route_t *
route_of(ts_http_t *s, const char *url)
{
    int  i;

    for (i = 0; i < s->cfg.nroutes; i++) {
        if (path_is(url, s->cfg.routes[i].path, s->cfg.routes[i].prefix)) {
            return &s->cfg.routes[i];
        }
    }
    return NULL;
}


static void
count(ts_http_t *s, int status)
{
    if (status >= 200 && status < 300) {
        s->st.ok++;
    } else if (status == 401) {
        s->st.unauthorized++;
    } else if (status == 404) {
        s->st.not_found++;
    } else if (status == 405) {
        s->st.bad_method++;
    } else if (status == 400) {
        s->st.bad_request++;
    } else if (status == 413) {
        s->st.too_large++;
    } else if (status == 415) {
        s->st.bad_type++;
    } else {
        s->st.other++;
    }
}


int
ts_http_body_parse(const char *ctype, const char *buf, size_t len,
                   json_t **out, char *err, size_t errsz)
{
    static const char  want[] = "application/json";
    json_error_t       je;
    size_t             n = sizeof(want) - 1;
    json_t            *o;

    *out = NULL;
    while (ctype != NULL && (*ctype == ' ' || *ctype == '\t')) {
        ctype++;
    }
    if (ctype == NULL || strncasecmp(ctype, want, n) != 0
        || (ctype[n] != '\0' && ctype[n] != ';' && ctype[n] != ' '))
    {
        snprintf(err, errsz, "the body must be JSON (Content-Type: "
                 "application/json)");
        return 415;
    }
    o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL) {
        snprintf(err, errsz, "the body is not JSON: %s (at byte %d)",
                 je.text, je.position);
        return 400;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        snprintf(err, errsz, "the body must be a JSON object");
        return 400;
    }
    *out = o;
    return 0;
}


static size_t
post_max(const ts_http_t *s)
{
    return s->cfg.post_max_b > 0 ? s->cfg.post_max_b : 4096;
}


/* A GET's route, or NULL with r answered. */
static const ts_http_route_t *
get_route(ts_http_t *s, struct MHD_Connection *mc, const char *url,
          ts_http_resp_t *r)
{
    const ts_http_route_t *rt;
    const char            *cl, *te;

    cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    te = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (te != NULL || (cl != NULL && strcmp(cl, "0") != 0)) {
        ts_http_error(r, 400, "a GET request carries no body");
        return NULL;
    }
    rt = route_of(s, url);
    if (rt == NULL && post_route_of(s, url) != NULL) {
        ts_http_error(r, 405, "only POST is served here");
        r->allow = "POST";
        return NULL;
    }
    if (rt == NULL) {
        ts_http_error(r, 404, "no such path");
        return NULL;
    }
    if (!rt->open && !key_ok(s, mc)) {
        ts_http_error(r, 401, "missing or wrong API key (send it in the "
                      "X-API-Key header)");
        return NULL;
    }
    return rt;
}


/* A POST's route, or NULL with r answered. */
static const ts_http_post_route_t *
post_route(ts_http_t *s, struct MHD_Connection *mc, const char *url,
           ts_http_resp_t *r)
{
    const ts_http_post_route_t *rt = post_route_of(s, url);

    if (rt == NULL && route_of(s, url) != NULL) {
        ts_http_error(r, 405, "only GET is served here");
        r->allow = "GET";
        return NULL;
    }
    if (rt == NULL) {
        ts_http_error(r, 404, "no such path");
        return NULL;
    }
    if (!key_ok(s, mc)) {
        ts_http_error(r, 401, "missing or wrong API key (send it in the "
                      "X-API-Key header)");
        return NULL;
    }
    return rt;
}


/* Fills r for the request (method, url) on mc, or for a POST that may
 * go on returns its body's buffer (r untouched). */
static hpost_t *
dispatch(ts_http_t *s, struct MHD_Connection *mc, const char *url,
         const char *method, ts_http_resp_t *r)
{
    const ts_http_route_t *rt;
    const ts_http_post_route_t *pr;
    const char            *cl, *ct;
    char                   err[160];
    json_t                *o;
    hpost_t               *p;
    int                    post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;

    if ((!post && strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        || (post && s->cfg.nposts == 0))
    {
        /* Allow: what the path takes (GET alone without POST routes) */
        pr = s->cfg.nposts > 0 ? post_route_of(s, url) : NULL;
        rt = pr != NULL ? route_of(s, url) : NULL;
        ts_http_error(r, 405, pr == NULL ? "only GET is served here"
                      : "only GET and POST are served here");
        r->allow = pr == NULL ? "GET" : rt != NULL ? "GET, POST" : "POST";
        return NULL;
    }
    if (!post) {
        rt = get_route(s, mc, url, r);
        if (rt == NULL) {
            return NULL;
        }
        rt->fn(rt->arg, url, r);
        if (r->body == NULL) {
            ts_http_error(r, 500, "internal error");
        }
        return NULL;
    }
    pr = post_route(s, mc, url, r);
    if (pr == NULL) {
        return NULL;
    }
    /* the type now, so a wrong one is refused before its body is read */
    ct = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ts_http_body_parse(ct, "{}", 2, &o, err, sizeof(err)) != 0) {
        ts_http_error(r, 415, err);
        return NULL;
    }
    json_decref(o);
    cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL && (strlen(cl) > 12 || strtoull(cl, NULL, 10)
                                          > post_max(s)))
    {
        snprintf(err, sizeof(err), "the body is over %zu bytes",
                 post_max(s));
        ts_http_error(r, 413, err);
        return NULL;
    }
    p = malloc(sizeof(*p) + post_max(s));
    if (p == NULL) {
        ts_http_error(r, 503, "out of memory");
        return NULL;
    }
    p->rt = pr;
    p->len = 0;
    p->over = 0;
    return p;
}


/* The body of POST p is in (or over its cap: over = 1): r := the answer. */
static void
post_run(ts_http_t *s, struct MHD_Connection *mc, const char *url,
         hpost_t *p, int over, ts_http_resp_t *r)
{
    char    err[200];
    json_t *o;
    int     st;

    if (over) {
        snprintf(err, sizeof(err), "the body is over %zu bytes",
                 post_max(s));
        ts_http_error(r, 413, err);
        return;
    }
    st = ts_http_body_parse(MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
                                MHD_HTTP_HEADER_CONTENT_TYPE),
                            p->buf, p->len, &o, err, sizeof(err));
    if (st != 0) {
        ts_http_error(r, st, err);
        return;
    }
    p->rt->fn(p->rt->arg, url, o, r);
    json_decref(o);
    if (r->body == NULL) {
        ts_http_error(r, 500, "internal error");
    }
}


/* Queues r on mc (taking its body). */
static enum MHD_Result
answer(ts_http_t *s, struct MHD_Connection *mc, ts_http_resp_t *r)
{
    struct MHD_Response   *resp;
    enum MHD_Result        ret;

    if (r->body == NULL) {
        return MHD_NO;              /* out of memory: MHD closes */
    }
    count(s, r->status);
    resp = MHD_create_response_from_buffer(r->len, r->body,
        r->static_body ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        ts_http_reply(r, 0, NULL, NULL, 0);     /* frees a malloc'd body */
        return MHD_NO;
    }
    (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                   r->ctype);
    (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                                   r->cache != NULL ? r->cache : "no-store");
    (void) MHD_add_response_header(resp, "X-Content-Type-Options",
                                   "nosniff");
    (void) MHD_add_response_header(resp, "Content-Security-Policy",
        r->csp != NULL ? r->csp : "default-src 'none'; frame-ancestors 'none'");
    (void) MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    if (r->status == 405) {
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                       r->allow != NULL ? r->allow : "GET");
    }
    if (r->status >= 400) {
        /* a refused peer does not keep its slot */
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
                                       "close");
    }
    ret = MHD_queue_response(mc, (unsigned) r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}


static enum MHD_Result
on_request(void *cls, struct MHD_Connection *mc, const char *url,
           const char *method, const char *version, const char *data,
           size_t *data_size, void **con_cls)
{
    ts_http_t             *s = cls;
    hconn_t               *c = conn_of(mc);
    hpost_t               *p = *con_cls;
    ts_http_resp_t         r;
    int                    over;

    memset(&r, 0, sizeof(r));
    if (p == (hpost_t *) (void *) &req_seen) {
        /* body bytes of a refused or answered request: dropped unread */
        *data_size = 0;
        return MHD_YES;
    }
    if (p != NULL) {
        /* a POST's body: gathered up to its cap, run when all is in */
        if (*data_size > 0) {
            /* libmicrohttpd takes no answer before the body is in: what
             * is over the cap is dropped unread, the request deadline
             * bounds how long that may go on */
            p->over |= *data_size > post_max(s) - p->len;
            if (!p->over) {
                memcpy(p->buf + p->len, data, *data_size);
                p->len += *data_size;
            }
            *data_size = 0;
            return MHD_YES;
        }
        over = p->over;
        if (c != NULL) {
            c->head_by_ms = 0;      /* the whole request is in */
        }
        post_run(s, mc, url, p, over, &r);
        free(p);
        *con_cls = &req_seen;
        return answer(s, mc, &r);
    }
    *con_cls = &req_seen;
    p = dispatch(s, mc, url, method, &r);
    if (p != NULL) {
        /* the body too must be in within request_ms of the start */
        *con_cls = p;               /* MHD calls again with the body */
        return MHD_YES;
    }
    if (c != NULL) {
        c->head_by_ms = 0;          /* the request is in */
    }
    return answer(s, mc, &r);
}


/* MHD's own unescaping, except that a decoded NUL ("%00") would cut the
 * C string short ("/a.js%00.png" read as "/a.js"): such a path becomes
 * one that no route has (404). */
static size_t
on_unescape(void *cls, struct MHD_Connection *mc, char *s)
{
    size_t n = MHD_http_unescape(s);

    if (strlen(s) != n) {
        strcpy(s, "/\x7f");            /* never longer than "%00" */
        n = 2;
    }
    return n;
}


static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[256];

    if (ts_log_get_level() < TS_LOG_DEBUG) {
        return;
    }
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    ts_debug("http: %s", line);
}


/* ---- the server ------------------------------------------------------- */

ts_http_t *
ts_http_start(const ts_http_cfg_t *cfg, char *err, size_t errsz)
{
    ts_http_t    *s;
    unsigned int  flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    int           tls = cfg->tls_cert != NULL;

    if (cfg->api_key == NULL || strlen(cfg->api_key) < 16) {
        snprintf(err, errsz, "no API key");
        return NULL;
    }
    if (tls && !ts_http_tls_supported()) {
        snprintf(err, errsz, "this libmicrohttpd has no TLS support");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->keylen = strlen(cfg->api_key);
    if (tls) {
        flags |= MHD_USE_TLS;
    }
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket) cfg->listen_fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) cfg->conns_max,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) cfg->conns_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) cfg->idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) cfg->mem_limit_b,
        MHD_OPTION_NOTIFY_CONNECTION, on_conn, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, s,
        MHD_OPTION_UNESCAPE_CALLBACK, on_unescape, s,
        tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, cfg->tls_key,
        MHD_OPTION_HTTPS_MEM_CERT, cfg->tls_cert,
        MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-ALL:+VERS-TLS1.3",
        MHD_OPTION_END);
    if (s->d == NULL) {
        snprintf(err, errsz, "libmicrohttpd did not start%s (errno %s)",
                 tls ? " with TLS (is the certificate's key type usable "
                       "by GnuTLS?)" : "", strerror(errno));
        free(s);
        return NULL;
    }
    return s;
}


void
ts_http_cfg_defaults(ts_http_cfg_t *cfg, int listen_fd, const char *api_key,
                     const char *cert, const char *key)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen_fd = listen_fd;
    cfg->api_key = api_key;
    cfg->tls_cert = cert;
    cfg->tls_key = cert != NULL ? key : NULL;
    cfg->conns_max = TS_HTTP_CONNS_MAX_N;
    cfg->conns_per_ip = TS_HTTP_CONNS_PER_IP_N;
    cfg->idle_timeout_s = TS_HTTP_IDLE_TIMEOUT_S;
    cfg->request_ms = TS_HTTP_REQUEST_MS;
    cfg->lifetime_ms = TS_HTTP_LIFETIME_MS;
    cfg->mem_limit_b = TS_HTTP_HEAD_MAX_B;
}


char *
ts_http_pem_read(const char *path)
{
    FILE   *f = fopen(path, "re");
    char   *p;
    size_t  n;

    if (f == NULL) {
        return NULL;
    }
    p = calloc(1, 65536 + 1);
    n = p != NULL ? fread(p, 1, 65536, f) : 0;
    fclose(f);
    if (p != NULL && (n == 0 || n == 65536)) {
        free(p);
        errno = EFBIG;
        return NULL;
    }
    return p;
}


int
ts_http_tls_check(const char *cert, const char *key, char *err,
                  size_t errsz)
{
    struct MHD_Daemon *d;

    if (!ts_http_tls_supported()) {
        snprintf(err, errsz, "this libmicrohttpd has no TLS support");
        return -1;
    }
    d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_TLS | MHD_USE_NO_LISTEN_SOCKET,
                         0, NULL, NULL, on_request, NULL,
                         MHD_OPTION_HTTPS_MEM_KEY, key,
                         MHD_OPTION_HTTPS_MEM_CERT, cert,
                         MHD_OPTION_HTTPS_PRIORITIES,
                         "NORMAL:-VERS-ALL:+VERS-TLS1.3", MHD_OPTION_END);
    if (d == NULL) {
        snprintf(err, errsz, "GnuTLS (libmicrohttpd) cannot use this "
                 "certificate and key");
        return -1;
    }
    MHD_stop_daemon(d);
    return 0;
}


int
ts_http_run(ts_http_t *s, int max_ms)
{
    if (MHD_run_wait(s->d, max_ms) != MHD_YES) {
        ts_err("http: the server's event loop failed: %s", strerror(errno));
        return -1;
    }
    deadlines(s);
    return 0;
}


void
ts_http_stop(ts_http_t *s)
{
    if (s == NULL) {
        return;
    }
    MHD_stop_daemon(s->d);
    free(s);
}


const ts_http_stats_t *
ts_http_stats(const ts_http_t *s)
{
    return &s->st;
}
