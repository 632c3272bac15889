/*
 * cli_node.c -- starts and stops the client's node (see cli_node.h).
 *
 * At a terminal (o->log_path set) the node logs to <state>/node.log:
 * its supervisor and workers for good (node.c), the CLI's own start
 * lines while node_start runs.
 *
 * In the agent process (cli_daemon.c) there is no node of our own: the
 * agent adopts the supervisor's node_t, whose segment it has mapped.
 *
 * Locking: main thread only.
 * Crash behaviour: nothing persistent; a killed CLI takes a node it did
 * not detach with it (PR_SET_PDEATHSIG in node_start) and the next start
 * replaces the stale shm segment.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ts_log.h"
#include "node.h"
#include "cli_node.h"

static node_t   cli_node;
static int      cli_node_up;
static node_t  *cli_node_adopted;   /* in the agent: the supervisor's */


/* node_start, with its start lines (segment, supervisor) in o->log_path
 * when one is given rather than on the terminal before the prompt. */
static int
cli_node_start_logged(node_opts_t *o)
{
    int  fd, saved, r, err;

    if (o->log_path[0] == '\0') {
        return node_start(&cli_node, o);
    }
    fd = open(o->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC
              | O_NOFOLLOW, 0600);
    saved = fd >= 0 ? fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3) : -1;
    if (saved < 0) {
        if (fd >= 0) {
            close(fd);
        }
        return node_start(&cli_node, o);
    }
    (void) dup2(fd, STDERR_FILENO);
    close(fd);
    r = node_start(&cli_node, o);
    err = errno;
    (void) dup2(saved, STDERR_FILENO);
    close(saved);
    errno = err;
    return r;
}


int
cli_node_start(node_opts_t *o)
{
    const char  *ip = o->ip;
    unsigned     port = o->port;
    int          err;

    errno = 0;
    if (cli_node_start_logged(o) != 0) {
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
    if (cli_node_adopted != NULL) {
        return cli_node_adopted;
    }
    return cli_node_up ? &cli_node : NULL;
}


void
cli_node_adopt(node_t *n)
{
    cli_node_adopted = n;
}


void
cli_node_stop(void)
{
    if (cli_node_up) {
        cli_node_up = 0;
        node_stop(&cli_node);
    }
}


int
cli_node_gone(void)
{
    return cli_node_up && !node_alive(&cli_node);
}
