/*
 * cli_ctl_srv.c -- the node's control socket: other processes of the
 * same user (./client --attach, scripts) run the node's commands through
 * <state>/control.sock and get each command's output as a JSON reply
 * (docs/CONTROL.md).
 *
 * The socket is created in the state directory (0700) and chmod'ed 0600;
 * every connection's peer uid (SO_PEERCRED) must be ours, else it gets
 * an error reply and is closed.  At most TS_CLI_CTL_CONN_N connections
 * are served at once, one thread each; the one too many is told so and
 * closed.  A connection must send its first request within
 * TS_CLI_CTL_FIRST_MS, every frame within TS_CLI_CTL_FRAME_MS once begun,
 * and take its reply within TS_CLI_CTL_WRITE_MS.  A bad request (not
 * JSON, wrong types, unknown command) gets an error reply and the link
 * stays; a bad frame (length 0 or above TS_CLI_CTL_REQ_MAX_B, cut short,
 * stalled) gets an error reply when possible and the link is closed.
 *
 * A request runs the command handler exactly as the terminal does,
 * through cli_cmd_run (so new commands work here with no change), with
 * its output captured (cli_out_capture_begin) into the reply.  "exit" is
 * refused: it ends a terminal session, not a request.
 *
 * Events: a line the node prints on stderr outside a request (the
 * agent's warnings, say a share changed on disk) is pushed as
 * {"event":"log","lines":[...]} to every connection that has sent a
 * valid request; one that does not take it within TS_CLI_CTL_EVENT_MS
 * is shut down.
 *
 * Locking: commands run under cli_cmd_run's mutex, one at a time with
 * the terminal's; srv_mu guards the slots (a connection's descriptor and
 * attached flag), each slot's wmu its writes (a reply and an event
 * never interleave).  Crash behaviour:
 * a killed client leaves the socket file, replaced at the next start.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_log.h"
#include "cli_cmds.h"
#include "cli_out.h"
#include "cli_ctl_codec.h"
#include "cli_ctl_io.h"
#include "cli_ctl_srv.h"

static int              srv_fd = -1;
static int              srv_stop[2] = { -1, -1 };
static char             srv_path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
static int              srv_dirfd = -1;     /* see cli_ctl_addr */
static pthread_t        srv_thr;
static int              srv_up;
static cli_ctx_t        srv_ctx;        /* commands' context: not a tty */
static pthread_mutex_t  srv_mu = PTHREAD_MUTEX_INITIALIZER;
static int              srv_conns;      /* live connection threads */

/* One per connection thread: its descriptor and the lock that keeps a
 * reply and a pushed event from interleaving on it.  attached: it has
 * sent a valid request, so it gets events. */
typedef struct {
    int              fd;
    int              attached;
    pthread_mutex_t  wmu;
} srv_slot_t;

static srv_slot_t       srv_slots[TS_CLI_CTL_CONN_N];
static volatile int     srv_closing;


/* Frames obj and writes it (under wmu when given); 0 or -1.  obj is
 * freed. */
static int
srv_send_locked(int fd, pthread_mutex_t *wmu, json_t *obj, int timeout_ms)
{
    uint8_t  *f;
    size_t    n;
    int       r = -1;

    if (obj == NULL) {
        return -1;
    }
    if (cli_ctl_frame(obj, TS_CLI_CTL_REPLY_MAX_B, &f, &n) == 0) {
        if (wmu != NULL) {
            pthread_mutex_lock(wmu);
        }
        r = cli_ctl_write(fd, f, n, timeout_ms);
        if (wmu != NULL) {
            pthread_mutex_unlock(wmu);
        }
        free(f);
    }
    json_decref(obj);
    return r;
}


static int
srv_send(int fd, json_t *obj)
{
    return srv_send_locked(fd, NULL, obj, TS_CLI_CTL_WRITE_MS);
}


/* cli_out's sink: a stderr line of the node as a "log" event to every
 * attached connection.  A connection that does not take it within
 * TS_CLI_CTL_EVENT_MS is shut down (its thread then ends). */
static void
srv_event(const char *line)
{
    int  i, fd;

    if (srv_closing) {
        return;
    }
    pthread_mutex_lock(&srv_mu);
    for (i = 0; i < TS_CLI_CTL_CONN_N; i++) {
        fd = srv_slots[i].fd;
        if (fd < 0 || !srv_slots[i].attached) {
            continue;
        }
        if (srv_send_locked(fd, &srv_slots[i].wmu,
                            cli_ctl_event("log", line),
                            TS_CLI_CTL_EVENT_MS) != 0)
        {
            (void) shutdown(fd, SHUT_RDWR);
            srv_slots[i].attached = 0;
        }
    }
    pthread_mutex_unlock(&srv_mu);
}


/* Runs one checked request; the reply. */
static json_t *
srv_run(cli_ctl_req_t *rq)
{
    cli_out_cap_t  cap;
    json_t        *rep;
    int            r, cls;

    if (srv_closing) {
        return cli_ctl_reply_err(1, rq->id, CLI_EXIT_NODE,
                                 "the node is stopping", NULL);
    }
    if (strcmp(rq->cmd, "exit") == 0) {
        return cli_ctl_reply_err(1, rq->id, CLI_EXIT_USAGE,
                                 "exit ends a terminal session: close the "
                                 "connection to detach", NULL);
    }
    cli_out_capture_begin(&cap);
    r = cli_cmd_run(&srv_ctx, rq->argc, rq->argv);
    cli_out_capture_end(&cap);
    if (r == 0) {
        json_decref(cap.error);
        return cli_ctl_reply_ok(rq->id, CLI_EXIT_OK, cap.lines, cap.result);
    }
    json_decref(cap.result);
    cls = cap.cls != CLI_EXIT_OK ? cap.cls : CLI_EXIT_FAILURE;
    rep = cli_ctl_reply_err(1, rq->id, cls,
                            cap.error != NULL ? json_string_value(cap.error)
                            : "the command failed", cap.lines);
    json_decref(cap.error);
    return rep;
}


/* The error reply for a frame that cannot be read, when one makes sense. */
static void
srv_frame_error(int fd, int err)
{
    char  msg[128];

    if (err == EMSGSIZE) {
        snprintf(msg, sizeof(msg), "a request frame must hold 1 to %d bytes",
                 TS_CLI_CTL_REQ_MAX_B);
    } else if (err == ETIMEDOUT) {
        snprintf(msg, sizeof(msg), "a request frame was not completed "
                 "within %d ms", TS_CLI_CTL_FRAME_MS);
    } else if (err == EAGAIN) {
        snprintf(msg, sizeof(msg), "no request within %d ms",
                 TS_CLI_CTL_FIRST_MS);
    } else {
        return;                 /* closed by the peer: nobody to tell */
    }
    (void) srv_send(fd, cli_ctl_reply_err(0, 0, CLI_EXIT_USAGE, msg, NULL));
}


/* One connection: requests until it closes, errs or the node stops. */
static void *
srv_conn(void *arg)
{
    srv_slot_t     *slot = arg;
    int             fd = slot->fd;
    int64_t         first_by = ts_now_ms() + TS_CLI_CTL_FIRST_MS;
    int             served = 0, err;
    uint8_t        *body;
    size_t          len;
    char            emsg[256];
    cli_ctl_req_t   rq;
    json_t         *rep;

    while (!srv_closing) {
        /* wake up each second to notice a stop */
        if (cli_ctl_read(fd, TS_CLI_CTL_REQ_MAX_B, 1000, &body, &len) != 0) {
            err = errno;
            if (err == EAGAIN && (served || ts_now_ms() < first_by)) {
                continue;       /* idle between requests, or not late */
            }
            srv_frame_error(fd, err);
            break;
        }
        served = 1;
        if (cli_ctl_req_parse(body, len, &rq, emsg, sizeof(emsg)) != 0) {
            rep = cli_ctl_reply_err(rq.has_id, rq.id, CLI_EXIT_USAGE, emsg,
                                    NULL);
        } else {
            rep = srv_run(&rq);
            cli_ctl_req_free(&rq);
            slot->attached = 1;         /* events from now on */
        }
        free(body);
        if (srv_send_locked(fd, &slot->wmu, rep, TS_CLI_CTL_WRITE_MS) != 0) {
            break;
        }
    }
    pthread_mutex_lock(&srv_mu);
    close(fd);
    slot->fd = -1;
    slot->attached = 0;
    srv_conns--;
    pthread_mutex_unlock(&srv_mu);
    return NULL;
}


/* A new connection: the peer must be us, and there must be room. */
static void
srv_admit(int fd)
{
    struct ucred    uc;
    socklen_t       sl = sizeof(uc);
    pthread_attr_t  at;
    pthread_t       t;
    srv_slot_t     *slot;
    int             i;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &sl) != 0
        || uc.uid != geteuid())
    {
        (void) srv_send(fd, cli_ctl_reply_err(0, 0, CLI_EXIT_DENIED,
                        "this node belongs to another user", NULL));
        close(fd);
        return;
    }
    slot = NULL;
    pthread_mutex_lock(&srv_mu);
    for (i = 0; i < TS_CLI_CTL_CONN_N && slot == NULL; i++) {
        if (srv_slots[i].fd < 0) {
            slot = &srv_slots[i];
            slot->fd = fd;
            slot->attached = 0;
            srv_conns++;
        }
    }
    pthread_mutex_unlock(&srv_mu);
    if (slot == NULL) {
        (void) srv_send(fd, cli_ctl_reply_err(0, 0, CLI_EXIT_LIMIT,
                        "too many control connections", NULL));
        close(fd);
        return;
    }
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, srv_conn, slot) != 0) {
        pthread_mutex_lock(&srv_mu);
        close(fd);
        slot->fd = -1;
        srv_conns--;
        pthread_mutex_unlock(&srv_mu);
    }
    pthread_attr_destroy(&at);
}


static void *
srv_accept(void *arg)
{
    struct pollfd  p[2];
    int            fd;

    (void) arg;
    while (!srv_closing) {
        p[0].fd = srv_fd;
        p[0].events = POLLIN;
        p[1].fd = srv_stop[0];
        p[1].events = POLLIN;
        if (poll(p, 2, -1) < 0) {
            continue;
        }
        if (p[1].revents != 0) {
            break;
        }
        fd = accept4(srv_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            srv_admit(fd);
        }
    }
    return NULL;
}


int
cli_ctl_srv_start(const cli_ctx_t *ctx, const char *state_dir)
{
    struct sockaddr_un  sun;
    sigset_t            all, old;
    int                 i;

    srv_ctx = *ctx;
    srv_ctx.tty = 0;
    for (i = 0; i < TS_CLI_CTL_CONN_N; i++) {
        srv_slots[i].fd = -1;
        srv_slots[i].attached = 0;
        pthread_mutex_init(&srv_slots[i].wmu, NULL);
    }
    /* a long state dir is reached through a descriptor (cli_ctl_addr),
     * kept open for the unlink at the end */
    if (cli_ctl_addr(state_dir, &sun, &srv_dirfd) != 0) {
        cli_out_eline("warning: no control socket in %s: %s", state_dir,
                      strerror(errno));
        return -1;
    }
    memcpy(srv_path, sun.sun_path, sizeof(srv_path));
    /* node.lock is ours: a socket file here is a dead node's */
    (void) unlink(srv_path);
    srv_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (srv_fd < 0
        || bind(srv_fd, (struct sockaddr *) &sun, sizeof(sun)) != 0
        || chmod(srv_path, 0600) != 0
        || listen(srv_fd, TS_CLI_CTL_CONN_N) != 0
        || pipe2(srv_stop, O_CLOEXEC) != 0)
    {
        cli_out_eline("warning: no control socket %s: %s", srv_path,
                      strerror(errno));
        if (srv_fd >= 0) {
            close(srv_fd);
            srv_fd = -1;
        }
        return -1;
    }
    /* the server's threads take no signal: the main loop's are its own */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    if (pthread_create(&srv_thr, NULL, srv_accept, NULL) != 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        close(srv_fd);
        srv_fd = -1;
        return -1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    srv_up = 1;
    cli_out_set_sink(srv_event);
    return 0;
}


void
cli_ctl_srv_stop(void)
{
    int64_t  until;
    int      n;

    if (!srv_up) {
        return;
    }
    srv_up = 0;
    cli_out_set_sink(NULL);
    srv_closing = 1;
    (void) !write(srv_stop[1], "x", 1);
    pthread_join(srv_thr, NULL);
    close(srv_fd);
    (void) unlink(srv_path);
    if (srv_dirfd >= 0) {
        close(srv_dirfd);
        srv_dirfd = -1;
    }
    /* connection threads notice within a second (or after their command) */
    until = ts_now_ms() + 3000;
    do {
        pthread_mutex_lock(&srv_mu);
        n = srv_conns;
        pthread_mutex_unlock(&srv_mu);
        if (n > 0) {
            usleep(20000);
        }
    } while (n > 0 && ts_now_ms() < until);
}
