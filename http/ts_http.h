/*
 * ts_http.h -- a small, hardened HTTP(S) server for the observability
 * endpoints (metrics, health, JSON API) of trackers and nodes, on
 * libmicrohttpd.
 *
 * The owner gives it a listen socket it has already bound, a route table
 * and an API key; ts_http_run() then serves for at most a given time
 * and returns, so the owner's loop can check its stop flag.  Everything
 * runs on the calling thread (MHD's external epoll mode): a handler
 * must not block, and a slow or hostile peer costs one connection slot
 * until a deadline closes it.
 *
 * What a request must be (all else is refused, with a JSON error body):
 *   - GET on a route, or POST on a POST route: any other method is 405
 *     (Allow: the path's methods), and a GET that announces a body
 *     (Content-Length > 0, Transfer-Encoding) is 400;
 *   - a POST carries one JSON object (Content-Type application/json,
 *     else 415) of at most post_max_b bytes (else 413, before any of it
 *     is read when Content-Length says so) that jansson parses (else
 *     400); the handler gets it parsed (ts_http_body_parse);
 *   - the path must be a route: exact, or a prefix route ending in '/'
 *     (for static assets later): else 404;
 *   - routes not marked open need the API key, in the header
 *     "X-API-Key: <key>" or "Authorization: Bearer <key>" (compared in
 *     constant time): else 401;
 *   - the request head (line and headers) must fit in mem_limit_b (MHD
 *     answers 431 or 414 and closes) and arrive within request_ms of the
 *     connection's start or of the previous response; a connection is
 *     closed after idle_timeout_s without traffic and lifetime_ms in all;
 *   - at most conns_max connections at once, conns_per_ip from one
 *     address: a connection over a cap is accepted and closed at once.
 *
 * Locking: a server belongs to the thread that runs it; handlers run on
 * that thread.  The counters (ts_http_stats) are plain integers read on
 * the same thread.
 *
 * Crash behaviour: nothing persistent; a killed server process just
 * drops its connections (clients retry).
 */
#ifndef TS_HTTP_H_INCLUDED
#define TS_HTTP_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/* What a handler answers: status, content type and a malloc'd body
 * (the server frees it, unless static_body says it is constant data).
 * cache and csp, when set, replace the default Cache-Control
 * ("no-store") and Content-Security-Policy (nothing may load). */
typedef struct {
    int          status;
    const char  *ctype;
    char        *body;
    size_t       len;
    int          static_body;   /* 1: body is constant, never freed */
    const char  *cache;         /* Cache-Control, NULL: "no-store" */
    const char  *csp;           /* Content-Security-Policy, NULL: none */
    const char  *allow;             /* a 405's Allow header (the server's) */
} ts_http_resp_t;

/* path: the request path (a prefix route sees the whole path).  Fills r;
 * a handler that leaves r->body NULL answers 500. */
typedef void (*ts_http_handler_pt)(void *arg, const char *path,
                                   ts_http_resp_t *r);
/* A POST: body is the request's JSON object (the server frees it). */
struct json_t;
typedef void (*ts_http_post_pt)(void *arg, const char *path,
                                struct json_t *body, ts_http_resp_t *r);

typedef struct {
    const char         *path;       /* "/metrics"; prefix: "/ui/" */
    int                 prefix;     /* 1: every path below path */
    int                 open;       /* 1: served without the API key */
    ts_http_handler_pt  fn;         /* GET */
    void               *arg;
} ts_http_route_t;

/* A POST route (a table of its own, matched the same way). */
typedef struct {
    const char         *path;
    int                 prefix;
    ts_http_post_pt     fn;
    void               *arg;
} ts_http_post_route_t;

typedef struct {
    int                    listen_fd;   /* bound and listening */
    const char            *tls_cert;    /* PEM text; NULL = plain HTTP */
    const char            *tls_key;     /* PEM text */
    const char            *api_key;     /* hex text, required */
    const ts_http_route_t *routes;
    int                    nroutes;
    const ts_http_post_route_t *posts;  /* POST routes (key required) */
    int                    nposts;
    unsigned               conns_max;
    unsigned               conns_per_ip;
    unsigned               idle_timeout_s;
    int64_t                request_ms;
    int64_t                lifetime_ms;
    size_t                 mem_limit_b;
    size_t                 post_max_b;  /* largest POST body; 0 = 4096 */
} ts_http_cfg_t;

/* What the server has answered since it started. */
typedef struct {
    uint64_t ok;                /* 2xx */
    uint64_t unauthorized;      /* 401 */
    uint64_t not_found;         /* 404 */
    uint64_t bad_method;        /* 405 */
    uint64_t bad_request;       /* 400 */
    uint64_t other;             /* any other status we answered */
    uint64_t conns;             /* connections accepted */
    uint64_t deadline_closed;   /* closed by request_ms / lifetime_ms */
    uint64_t too_large;         /* 413 */
    uint64_t bad_type;          /* 415 */
} ts_http_stats_t;

typedef struct ts_http_s ts_http_t;

/* 1 if this libmicrohttpd was built with TLS (GnuTLS). */
int  ts_http_tls_supported(void);
/* 0 if the TLS layer accepts this certificate and key (PEM texts), else
 * -1 with a reason in err. */
int  ts_http_tls_check(const char *cert, const char *key, char *err,
                       size_t errsz);
/* Starts serving cfg (copied; the strings must outlive the server).
 * NULL with a reason in err. */
ts_http_t *ts_http_start(const ts_http_cfg_t *cfg, char *err, size_t errsz);
/* Serves for at most max_ms, enforcing the deadlines.  0, or -1 if the
 * server failed (logged). */
int  ts_http_run(ts_http_t *s, int max_ms);
/* Stops and frees (open connections are closed). */
void ts_http_stop(ts_http_t *s);
const ts_http_stats_t *ts_http_stats(const ts_http_t *s);

/* r := a JSON object {"error": msg, "status": status}. */
void ts_http_error(ts_http_resp_t *r, int status, const char *msg);
/* r := status with body (malloc'd, taken over; NULL -> 500). */
void ts_http_reply(ts_http_resp_t *r, int status, const char *ctype,
                   char *body, size_t len);

/* cfg := zero, then the TS_HTTP_* limits of common/ts_config.h
 * (connections, deadlines, head size) and the socket, key and PEMs
 * given (cert NULL: plain HTTP). */
void ts_http_cfg_defaults(ts_http_cfg_t *cfg, int listen_fd,
                          const char *api_key, const char *cert,
                          const char *key);
/* The whole of a small text file (a PEM, < 64 KiB), NUL-terminated and
 * malloc'd; NULL with errno (EFBIG: empty or too big). */
char *ts_http_pem_read(const char *path);

/* A POST body's checks, without the server: ctype is the request's
 * Content-Type (NULL: none), buf/len the body.  0 with *out the parsed
 * object (json_decref it), or the HTTP status to answer (415 or 400)
 * with a reason in err. */
int  ts_http_body_parse(const char *ctype, const char *buf, size_t len,
                        struct json_t **out, char *err, size_t errsz);

/* 1 if ip (numeric IPv4 or IPv6 text) is a loopback address
 * (127.0.0.0/8, ::1, ::ffff:127.x.y.z). */
int  ts_http_is_loopback(const char *ip);

#endif
