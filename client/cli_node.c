/*
 * cli_node.c -- starts and stops the client's node (see cli_node.h).
 *
 * Locking: main thread only.
 * Crash behaviour: nothing persistent; a killed CLI takes the node with
 * it (PR_SET_PDEATHSIG in node_start) and the next start replaces the
 * stale shm segment.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ts_log.h"
#include "node.h"
#include "cli_node.h"

static node_t  cli_node;
static int     cli_node_up;


int
cli_node_start(const char *ip, uint16_t port, int uploaders,
               int downloaders, const char *crt, const char *key,
               const char *ca)
{
    node_opts_t  o;
    int          err;

    memset(&o, 0, sizeof(o));
    snprintf(o.ip, sizeof(o.ip), "%s", ip);
    o.port = port;
    o.uploaders = uploaders;
    o.downloaders = downloaders;
    snprintf(o.crt_path, sizeof(o.crt_path), "%s", crt);
    snprintf(o.key_path, sizeof(o.key_path), "%s", key);
    snprintf(o.ca_path, sizeof(o.ca_path), "%s", ca);

    errno = 0;
    if (node_start(&cli_node, &o) != 0) {
        err = errno;
        if (err == EADDRINUSE) {
            fprintf(stderr, "client: cannot serve on %s:%u: port already "
                    "in use\n", ip, (unsigned) port);
        } else {
            fprintf(stderr, "client: cannot start the node on %s:%u: %s\n",
                    ip, (unsigned) port,
                    err != 0 ? strerror(err) : "see the log above");
        }
        return -1;
    }
    cli_node_up = 1;
    return 0;
}


node_t *
cli_node_get(void)
{
    return cli_node_up ? &cli_node : NULL;
}


void
cli_node_stop(void)
{
    if (cli_node_up) {
        cli_node_up = 0;
        node_stop(&cli_node);
    }
}
