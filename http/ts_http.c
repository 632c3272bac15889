/*
 * ts_http.c -- the observability HTTP(S) server on libmicrohttpd: route
 * table, API key check, method and body rules, deadlines.
 *
 * Purpose: see ts_http.h for the rules a request must follow.  MHD runs
 * in its external epoll mode on the caller's thread; ts_http_run() waits
 * at most max_ms for traffic, lets MHD do its work, then walks the open
 * connections and shuts down (shutdown(2), so MHD closes it itself) any
 * that missed its deadline: the request head must arrive within
 * request_ms (a slowloris that dribbles a header byte now and then
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
#include <sys/socket.h>
#include <microhttpd.h>
#include <jansson.h>

#include "ts_clock.h"
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


static const ts_http_route_t *
route_of(ts_http_t *s, const char *url)
{
    const ts_http_route_t *r;
    int                    i;

    for (i = 0; i < s->cfg.nroutes; i++) {
        r = &s->cfg.routes[i];
        if (r->prefix ? strncmp(url, r->path, strlen(r->path)) == 0
                      : strcmp(url, r->path) == 0)
        {
            return r;
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
    } else {
        s->st.other++;
    }
}


/* Fills r for the request (method, url) on mc. */
static void
dispatch(ts_http_t *s, struct MHD_Connection *mc, const char *url,
         const char *method, ts_http_resp_t *r)
{
    const ts_http_route_t *rt;
    const char            *cl, *te;

    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
        ts_http_error(r, 405, "only GET is served here");
        return;
    }
    cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    te = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (te != NULL || (cl != NULL && strcmp(cl, "0") != 0)) {
        ts_http_error(r, 400, "a GET request carries no body");
        return;
    }
    rt = route_of(s, url);
    if (rt == NULL) {
        ts_http_error(r, 404, "no such path");
        return;
    }
    if (!rt->open && !key_ok(s, mc)) {
        ts_http_error(r, 401, "missing or wrong API key (send it in the "
                      "X-API-Key header)");
        return;
    }
    rt->fn(rt->arg, url, r);
    if (r->body == NULL) {
        ts_http_error(r, 500, "internal error");
    }
}


static enum MHD_Result
on_request(void *cls, struct MHD_Connection *mc, const char *url,
           const char *method, const char *version, const char *data,
           size_t *data_size, void **con_cls)
{
    ts_http_t             *s = cls;
    hconn_t               *c = conn_of(mc);
    ts_http_resp_t         r;
    struct MHD_Response   *resp;
    enum MHD_Result        ret;

    if (*con_cls != NULL) {
        /* body bytes of a refused request: dropped unread */
        *data_size = 0;
        return MHD_YES;
    }
    *con_cls = &req_seen;
    if (c != NULL) {
        c->head_by_ms = 0;          /* the head is in */
    }
    memset(&r, 0, sizeof(r));
    dispatch(s, mc, url, method, &r);
    if (r.body == NULL) {
        return MHD_NO;              /* out of memory: MHD closes */
    }
    count(s, r.status);
    resp = MHD_create_response_from_buffer(r.len, r.body,
        r.static_body ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        ts_http_reply(&r, 0, NULL, NULL, 0);    /* frees a malloc'd body */
        return MHD_NO;
    }
    (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                   r.ctype);
    (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                                   r.cache != NULL ? r.cache : "no-store");
    (void) MHD_add_response_header(resp, "X-Content-Type-Options",
                                   "nosniff");
    (void) MHD_add_response_header(resp, "Content-Security-Policy",
        r.csp != NULL ? r.csp : "default-src 'none'; frame-ancestors 'none'");
    (void) MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    if (r.status == 405) {
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET");
    }
    if (r.status >= 400) {
        /* a refused peer does not keep its slot */
        (void) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
                                       "close");
    }
    ret = MHD_queue_response(mc, (unsigned) r.status, resp);
    MHD_destroy_response(resp);
    return ret;
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
