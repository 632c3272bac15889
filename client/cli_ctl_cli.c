/*
 * cli_ctl_cli.c -- the client end of the control socket (cli_ctl_cli.h).
 *
 * A request is one frame (cli_ctl_codec.h); the node answers with one
 * reply frame carrying the request's id, and may push event frames at
 * any time (log lines, downloads ending).  Replies to other ids (a
 * request abandoned on an earlier link) are skipped.  A reply is waited
 * for as long as the caller says (TS_CLI_CTL_CMD_WAIT_MS for a command;
 * no limit for "wait", which ends when the downloads do, a sourceless
 * one after --source-timeout), a frame once begun TS_CLI_CTL_FRAME_MS
 * (cli_ctl_io.c); a node that dies closes the link, which ends either.
 *
 * Locking: none (one link per thread).  Crash behaviour: nothing
 * persistent; a node that dies mid-request breaks the link (-1).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "cli_ctl_io.h"
#include "cli_ctl_cli.h"


static int
cli_ctl_cli_connect(const char *state_dir)
{
    struct sockaddr_un  sun;
    int                 fd, dirfd, r, err;

    if (cli_ctl_addr(state_dir, &sun, &dirfd) != 0) {
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
        if (dirfd >= 0) {
            close(dirfd);
        }
        errno = err;
        return -1;
    }
    r = connect(fd, (struct sockaddr *) &sun, sizeof(sun));
    err = errno;
    if (dirfd >= 0) {
        close(dirfd);
    }
    if (r != 0) {
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}


int
cli_ctl_cli_open(cli_ctl_link_t *l, const char *state_dir, int wait_ms,
                 int (*alive)(void))
{
    int64_t  deadline = ts_now_ms() + wait_ms;
    int      err;

    for ( ;; ) {
        l->fd = cli_ctl_cli_connect(state_dir);
        if (l->fd >= 0) {
            return 0;
        }
        err = errno;
        if (err == ENAMETOOLONG || ts_now_ms() >= deadline
            || (alive != NULL && !alive()))
        {
            errno = err;
            return -1;
        }
        usleep(TS_CLI_CTL_RETRY_MS * 1000);
    }
}


void
cli_ctl_cli_close(cli_ctl_link_t *l)
{
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
}


/* One message from the link within wait_ms: 0 with *m, -1 broken. */
static int
cli_ctl_cli_recv(cli_ctl_link_t *l, int wait_ms, cli_ctl_msg_t *m)
{
    uint8_t  *body;
    size_t    n;
    char      err[256];
    int       r;

    if (cli_ctl_read(l->fd, TS_CLI_CTL_REPLY_MAX_B, wait_ms, &body, &n) != 0)
    {
        return -1;
    }
    r = cli_ctl_msg_parse(body, n, m, err, sizeof(err));
    free(body);
    if (r != 0) {
        fprintf(stderr, "client: bad message from the node: %s\n", err);
        return -1;
    }
    return 0;
}


int
cli_ctl_cli_call(cli_ctl_link_t *l, int argc, char **argv, int wait_ms,
                 cli_ctl_event_pt on_event, cli_ctl_msg_t *reply)
{
    json_t   *rq;
    uint8_t  *f;
    size_t    n;
    int       r;

    if (l->fd < 0) {
        return -1;
    }
    rq = cli_ctl_req_make(++l->id, argc, argv);
    if (rq == NULL || cli_ctl_frame(rq, TS_CLI_CTL_REQ_MAX_B, &f, &n) != 0) {
        json_decref(rq);
        return 1;
    }
    json_decref(rq);
    r = cli_ctl_write(l->fd, f, n, TS_CLI_CTL_WRITE_MS);
    free(f);
    if (r != 0) {
        cli_ctl_cli_close(l);
        return -1;
    }
    for ( ;; ) {
        if (cli_ctl_cli_recv(l, wait_ms, reply) != 0) {
            cli_ctl_cli_close(l);
            return -1;
        }
        if (reply->is_event) {
            if (on_event != NULL) {
                on_event(reply);
            }
            cli_ctl_msg_free(reply);
            continue;
        }
        if (reply->id != l->id) {
            cli_ctl_msg_free(reply);    /* not the answer to this one */
            continue;
        }
        return 0;
    }
}


int
cli_ctl_cli_pending(cli_ctl_link_t *l, cli_ctl_event_pt on_event)
{
    struct pollfd  pfd;
    cli_ctl_msg_t  m;

    if (l->fd < 0) {
        return -1;
    }
    for ( ;; ) {
        pfd.fd = l->fd;
        pfd.events = POLLIN;
        if (poll(&pfd, 1, 0) <= 0) {
            return 0;                   /* nothing more now */
        }
        if (cli_ctl_cli_recv(l, TS_CLI_CTL_FRAME_MS, &m) != 0) {
            cli_ctl_cli_close(l);
            return -1;
        }
        if (m.is_event && on_event != NULL) {
            on_event(&m);
        }
        cli_ctl_msg_free(&m);
    }
}
