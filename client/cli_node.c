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
cli_node_start(node_opts_t *o)
{
    const char  *ip = o->ip;
    unsigned     port = o->port;
    int          err;

    errno = 0;
    if (node_start(&cli_node, o) != 0) {
        err = errno;
        if (err == EADDRINUSE) {
            fprintf(stderr, "client: cannot serve on %s:%u: port already "
                    "in use\n", ip, port);
        } else {
            fprintf(stderr, "client: cannot start the node on %s:%u: %s\n",
                    ip, port,
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
