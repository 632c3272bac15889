/*
 * trk_http_opt.c -- --http ADDR:PORT and --no-http (see trk_http_opt.h).
 *
 * The address is checked here only for its form; trk_http_setup() binds
 * it and decides HTTP or HTTPS.
 *
 * Locking: none.  Crash behaviour: nothing kept.
 */
#include <stdint.h>
#include <stdlib.h>

#include "ts_addr.h"
#include "ts_config.h"
#include "trk_http_opt.h"

static trk_http_ask_t  asked;


int
trk_http_option(int opt, const char *arg)
{
    char      ip[64];
    uint16_t  port;

    if (opt == TRK_OPT_NO_HTTP) {
        asked.off = 1;
        return 1;
    }
    if (opt != TRK_OPT_HTTP) {
        return 0;
    }
    if (ts_parse_hostport(arg, ip, sizeof(ip), &port) != 0 || port == 0) {
        fprintf(stderr, "tracker: bad --http '%s' (IP:PORT, e.g. "
                "127.0.0.1:8443 or [::1]:8443; try --help)\n", arg);
        exit(2);
    }
    asked.spec = arg;
    return 1;
}


void
trk_http_usage_text(FILE *f)
{
    fprintf(f,
        "  HTTP endpoint (/metrics, /healthz, /api/v1/status, "
        "/api/v1/cluster):\n"
        "      --http ADDR:PORT        listen there (default 127.0.0.1 and "
        "the tracker's\n"
        "                              port + %d); a non-loopback address "
        "is served\n"
        "                              over HTTPS with this tracker's "
        "certificate; the\n"
        "                              API key (header X-API-Key) is in "
        "<data>/http-api.key\n"
        "      --no-http               no HTTP endpoint\n",
        TS_HTTP_PORT_OFFSET);
}


const trk_http_ask_t *
trk_http_asked(void)
{
    return &asked;
}
