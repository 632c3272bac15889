/*
 * trk_http_setup.c -- the HTTP endpoint's start-up, in the supervisor
 * before it forks: where to listen, the listen socket, the API key and,
 * for a non-loopback address, the certificate HTTPS serves.
 *
 * Purpose: --no-http turns it off.  --http ADDR:PORT is bound or the
 * tracker does not start (a clear message).  Without --http it listens
 * on 127.0.0.1 at the tracker's port + TS_HTTP_PORT_OFFSET; if that port
 * does not exist or is taken the endpoint stays off with a warning (the
 * tracker itself is what matters).  A loopback address is served over
 * plain HTTP; any other only over HTTPS with this tracker's own
 * certificate and key (pki/tracker-N.crt, .key), which needs a
 * libmicrohttpd built with GnuTLS: without it such an address is
 * refused.  The API key is <data>/http-api.key (ts_http_key.h), made at
 * the first start.
 *
 * Locking: none (the supervisor, alone).
 *
 * Crash behaviour: the socket and the PEM texts live in the supervisor
 * and are inherited by every trk-http it forks, so a restarted one
 * serves on the same socket at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_addr.h"
#include "ts_config.h"
#include "ts_http.h"
#include "ts_http_key.h"
#include "ts_log.h"
#include "ts_net.h"
#include "trk_http.h"
#include "trk_http_opt.h"


/* HTTPS: the certificate and key, and one trial start of the TLS layer
 * so a key GnuTLS cannot use fails here.  0 or -1 (logged). */
static int
setup_tls(trk_config_t *cfg)
{
    char err[256];

    if (!ts_http_tls_supported()) {
        ts_err("--http %s:%u is not a loopback address and this "
               "libmicrohttpd has no TLS support: refusing to serve the "
               "API in plaintext (use a loopback address)", cfg->http_ip,
               (unsigned) cfg->http_port);
        return -1;
    }
    cfg->http_crt_pem = ts_http_pem_read(cfg->crt_path);
    cfg->http_key_pem = ts_http_pem_read(cfg->key_path);
    if (cfg->http_crt_pem == NULL || cfg->http_key_pem == NULL) {
        ts_err("HTTPS: cannot read %s and %s: %s", cfg->crt_path,
               cfg->key_path, strerror(errno));
        return -1;
    }
    if (ts_http_tls_check(cfg->http_crt_pem, cfg->http_key_pem, err,
                          sizeof(err)) != 0)
    {
        ts_err("HTTPS with %s: %s", cfg->crt_path, err);
        return -1;
    }
    return 0;
}


/* Where to listen: 1 explicit, 0 the default, -1 off, -2 refused
 * (logged). */
static int
setup_addr(trk_config_t *cfg)
{
    const trk_http_ask_t *a = trk_http_asked();
    unsigned              port;

    if (a->off) {
        return -1;
    }
    /* the supervisor runs at most TS_SUP_WORKERS_MAX_N processes */
    if (cfg->workers + (cfg->trackers.n > 1) + 1 > TS_SUP_WORKERS_MAX_N) {
        ts_log(a->spec != NULL ? TS_LOG_ERROR : TS_LOG_WARN,
               "no HTTP endpoint: %d workers%s leave no room for it (at "
               "most %d processes; lower --workers)", cfg->workers,
               cfg->trackers.n > 1 ? " and the sync process" : "",
               TS_SUP_WORKERS_MAX_N);
        return a->spec != NULL ? -2 : -1;
    }
    if (a->spec != NULL) {
        (void) ts_parse_hostport(a->spec, cfg->http_ip, sizeof(cfg->http_ip),
                                 &cfg->http_port);
        return 1;
    }
    port = (unsigned) cfg->port + TS_HTTP_PORT_OFFSET;
    if (port > 65535) {
        ts_warn("no HTTP endpoint: the default port (%u + %d) is over "
                "65535; give --http ADDR:PORT", (unsigned) cfg->port,
                TS_HTTP_PORT_OFFSET);
        return -1;
    }
    snprintf(cfg->http_ip, sizeof(cfg->http_ip), "127.0.0.1");
    cfg->http_port = (uint16_t) port;
    return 0;
}


int
trk_http_setup(trk_config_t *cfg)
{
    char  err[512];
    int   explicit, created, tls;

    cfg->http_fd = -1;
    explicit = setup_addr(cfg);
    if (explicit < 0) {
        return explicit == -2 ? -1 : 0;
    }
    tls = !ts_http_is_loopback(cfg->http_ip);
    if (tls && setup_tls(cfg) != 0) {
        return -1;
    }
    if (snprintf(cfg->http_key_path, sizeof(cfg->http_key_path),
                 "%s/http-api.key", cfg->data_dir)
        >= (int) sizeof(cfg->http_key_path))
    {
        ts_err("data directory path too long for http-api.key");
        return -1;
    }
    if (ts_http_key_load(cfg->http_key_path, cfg->http_api_key,
                         sizeof(cfg->http_api_key), &created, err,
                         sizeof(err)) != 0)
    {
        ts_err("HTTP endpoint: %s", err);
        return -1;
    }
    cfg->http_fd = ts_net_listen(cfg->http_ip, cfg->http_port,
                                 TS_HTTP_BACKLOG_N);
    if (cfg->http_fd < 0) {
        if (explicit) {
            ts_err("cannot listen on --http %s:%u: %s", cfg->http_ip,
                   (unsigned) cfg->http_port, strerror(errno));
            return -1;
        }
        ts_warn("no HTTP endpoint: cannot listen on %s:%u (the default, "
                "tracker port + %d): %s; give --http ADDR:PORT or "
                "--no-http", cfg->http_ip, (unsigned) cfg->http_port,
                TS_HTTP_PORT_OFFSET, strerror(errno));
        return 0;
    }
    ts_info("HTTP endpoint on %s://%s%s%s:%u (API key %s in %s)",
            tls ? "https" : "http", strchr(cfg->http_ip, ':') ? "[" : "",
            cfg->http_ip, strchr(cfg->http_ip, ':') ? "]" : "",
            (unsigned) cfg->http_port, created ? "made" : "kept",
            cfg->http_key_path);
    return 0;
}


void
trk_http_teardown(trk_config_t *cfg)
{
    if (cfg->http_fd >= 0) {
        close(cfg->http_fd);
        cfg->http_fd = -1;
    }
    if (cfg->http_key_pem != NULL) {
        explicit_bzero(cfg->http_key_pem, strlen(cfg->http_key_pem));
    }
    free(cfg->http_key_pem);
    free(cfg->http_crt_pem);
    cfg->http_key_pem = cfg->http_crt_pem = NULL;
    explicit_bzero(cfg->http_api_key, sizeof(cfg->http_api_key));
}
