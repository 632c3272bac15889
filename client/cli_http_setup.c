/*
 * cli_http_setup.c -- the node's HTTP endpoint's start-up, in the CLI
 * before it forks the node: where to listen, the listen socket, the API
 * key and, for an address other than loopback, the certificate HTTPS
 * serves.
 *
 * Purpose: --no-http turns it off.  --http ADDR:PORT is bound or the
 * client does not start (a clear message).  Without --http it listens on
 * 127.0.0.1 at the node's port + TS_HTTP_PORT_OFFSET; if that port does
 * not exist or is taken the endpoint stays off with a warning (the node
 * itself is what matters).  A loopback address is served over plain
 * HTTP; any other only over HTTPS with the node's own certificate and
 * key (<state>/node.crt, node.key), which needs a libmicrohttpd built
 * with GnuTLS.  The API key is <state>/http-api.key (ts_http_key.h),
 * made at the first start, mode 0600.
 *
 * Locking: none (the CLI's main thread, before any fork).
 *
 * Crash behaviour: the socket and the PEM texts live in the CLI's memory
 * and are inherited by the node supervisor and every node-http it
 * forks, so a restarted one serves on the same socket at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_addr.h"
#include "ts_clock.h"
#include "ts_config.h"
#include "ts_http.h"
#include "ts_http_key.h"
#include "ts_log.h"
#include "ts_net.h"
#include "cli_http.h"

static cli_http_cfg_t  hcfg = { .fd = -1 };


const cli_http_cfg_t *
cli_http_cfg(void)
{
    return &hcfg;
}


/* HTTPS: the node's certificate and key, tried once by the TLS layer. */
static int
cli_http_tls(const char *crt, const char *key)
{
    char err[256];

    if (!ts_http_tls_supported()) {
        ts_err("--http %s:%u is not a loopback address and this "
               "libmicrohttpd has no TLS support: refusing to serve the "
               "API in plaintext (use a loopback address)", hcfg.ip,
               (unsigned) hcfg.port);
        return -1;
    }
    hcfg.crt_pem = ts_http_pem_read(crt);
    hcfg.key_pem = ts_http_pem_read(key);
    if (hcfg.crt_pem == NULL || hcfg.key_pem == NULL) {
        ts_err("HTTPS: cannot read %s and %s: %s", crt, key,
               strerror(errno));
        return -1;
    }
    if (ts_http_tls_check(hcfg.crt_pem, hcfg.key_pem, err, sizeof(err))
        != 0)
    {
        ts_err("HTTPS with %s: %s", crt, err);
        return -1;
    }
    hcfg.tls = 1;
    return 0;
}


/* Where to listen: 1 explicit, 0 the default, -1 off. */
static int
cli_http_where(const cli_http_ask_t *ask, uint16_t node_port)
{
    unsigned  port = (unsigned) node_port + TS_HTTP_PORT_OFFSET;

    if (ask->off) {
        return -1;
    }
    if (ask->spec != NULL) {
        (void) ts_parse_hostport(ask->spec, hcfg.ip, sizeof(hcfg.ip),
                                 &hcfg.port);
        return 1;
    }
    if (port > 65535) {
        ts_warn("no HTTP endpoint: the default port (%u + %d) is over "
                "65535; give --http ADDR:PORT", (unsigned) node_port,
                TS_HTTP_PORT_OFFSET);
        return -1;
    }
    snprintf(hcfg.ip, sizeof(hcfg.ip), "127.0.0.1");
    hcfg.port = (uint16_t) port;
    return 0;
}


int
cli_http_setup(const cli_http_ask_t *ask, const char *state_dir,
               uint16_t node_port, const char *node_addr, const char *crt,
               const char *key)
{
    char  err[512];
    int   explicit, created;

    hcfg.fd = -1;
    hcfg.started_ms = ts_wall_ms();
    explicit = cli_http_where(ask, node_port);
    if (explicit < 0) {
        return 0;
    }
    if (snprintf(hcfg.state_dir, sizeof(hcfg.state_dir), "%s", state_dir)
        >= (int) sizeof(hcfg.state_dir)
        || snprintf(hcfg.node_addr, sizeof(hcfg.node_addr), "%s",
                    node_addr) >= (int) sizeof(hcfg.node_addr)
        || snprintf(hcfg.key_path, sizeof(hcfg.key_path), "%s/http-api.key",
                    state_dir) >= (int) sizeof(hcfg.key_path))
    {
        ts_err("state directory path too long for http-api.key");
        return -1;
    }
    if (!ts_http_is_loopback(hcfg.ip) && cli_http_tls(crt, key) != 0) {
        return -1;
    }
    if (ts_http_key_load(hcfg.key_path, hcfg.api_key, sizeof(hcfg.api_key),
                         &created, err, sizeof(err)) != 0)
    {
        ts_err("HTTP endpoint: %s", err);
        return -1;
    }
    hcfg.fd = ts_net_listen(hcfg.ip, hcfg.port, TS_HTTP_BACKLOG_N);
    if (hcfg.fd < 0) {
        if (explicit) {
            ts_err("cannot listen on --http %s:%u: %s", hcfg.ip,
                   (unsigned) hcfg.port, strerror(errno));
            return -1;
        }
        ts_warn("no HTTP endpoint: cannot listen on %s:%u (the default, "
                "node port + %d): %s; give --http ADDR:PORT or --no-http",
                hcfg.ip, (unsigned) hcfg.port, TS_HTTP_PORT_OFFSET,
                strerror(errno));
        return 0;
    }
    ts_info("HTTP endpoint on %s://%s%s%s:%u (API key %s in %s)",
            hcfg.tls ? "https" : "http", strchr(hcfg.ip, ':') ? "[" : "",
            hcfg.ip, strchr(hcfg.ip, ':') ? "]" : "", (unsigned) hcfg.port,
            created ? "made" : "kept", hcfg.key_path);
    return 0;
}


void
cli_http_teardown(void)
{
    if (hcfg.fd >= 0) {
        close(hcfg.fd);
        hcfg.fd = -1;
    }
    if (hcfg.key_pem != NULL) {
        explicit_bzero(hcfg.key_pem, strlen(hcfg.key_pem));
    }
    free(hcfg.key_pem);
    free(hcfg.crt_pem);
    hcfg.key_pem = hcfg.crt_pem = NULL;
    explicit_bzero(hcfg.api_key, sizeof(hcfg.api_key));
}
