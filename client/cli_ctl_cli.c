/*
 * cli_ctl_cli.c -- ./client --attach -s DIR: sends each input line as a
 * request to the node's control socket (<DIR>/control.sock) and prints
 * the reply: its lines on stdout and its "error: ..." line on stderr,
 * or with --json the reply object as one line.  Events the node pushes
 * while a command runs (its warnings) go to stderr (--json: stdout).  Input lines are split
 * as the node's own prompt splits them (cli_parse_line); "exit" (or
 * EOF) detaches and leaves the node running.
 *
 * Locking: single-threaded.  Crash behaviour: nothing persistent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ts_config.h"
#include "cli_exit.h"
#include "cli_parse.h"
#include "cli_out.h"
#include "cli_ctl_codec.h"
#include "cli_ctl_io.h"
#include "cli_ctl_cli.h"

/* How long a command may run on the node before we give up, ms. */
#define CLI_CTL_CLI_WAIT_MS  (10 * 60 * 1000)


static int
cli_ctl_cli_connect(const char *state_dir)
{
    struct sockaddr_un  sun;
    int                 fd;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/control.sock",
                 state_dir) >= (int) sizeof(sun.sun_path))
    {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) != 0) {
        int  err = errno;

        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}


/* --json: the message as it came, one compact line on stdout. */
static void
cli_ctl_cli_dump(const cli_ctl_msg_t *m)
{
    char  *dump;

    dump = json_dumps(m->root, JSON_COMPACT);
    if (dump != NULL) {
        printf("%s\n", dump);
        free(dump);
    }
}


/* Prints a reply; its class (CLI_EXIT_OK when it succeeded). */
static int
cli_ctl_cli_print(const cli_ctl_msg_t *m, int json)
{
    const char  *s;
    size_t       i;

    if (json) {
        cli_ctl_cli_dump(m);
    } else {
        for (i = 0; m->lines != NULL && i < json_array_size(m->lines); i++) {
            s = json_string_value(json_array_get(m->lines, i));
            /* the node escaped every line already (ts_esc) */
            fprintf(strncmp(s, "error: ", 7) == 0 ? stderr : stdout, "%s\n",
                    s);
        }
        if (!m->ok && (m->lines == NULL || json_array_size(m->lines) == 0)) {
            cli_out_eline("error: %s", m->error);
        }
    }
    fflush(stdout);
    return m->ok ? CLI_EXIT_OK : m->exit;
}


/* A pushed event (a node's warning, ...): its lines on stderr, or with
 * --json the object on stdout. */
static void
cli_ctl_cli_event(const cli_ctl_msg_t *m, int json)
{
    size_t  i;

    if (json) {
        cli_ctl_cli_dump(m);
        return;
    }
    for (i = 0; m->lines != NULL && i < json_array_size(m->lines); i++) {
        fprintf(stderr, "%s\n",
                json_string_value(json_array_get(m->lines, i)));
    }
}


/* One request and its reply: the class, or -1 when the link is gone. */
static int
cli_ctl_cli_one(int fd, uint64_t id, cli_args_t *a, int json)
{
    cli_ctl_msg_t  m;
    json_t        *rq;
    uint8_t       *f, *body;
    size_t         n;
    char           err[256];
    int            r;

    rq = cli_ctl_req_make(id, a->argc, a->argv);
    if (rq == NULL || cli_ctl_frame(rq, TS_CLI_CTL_REQ_MAX_B, &f, &n) != 0) {
        json_decref(rq);
        cli_out_eline("error: command too long for the control socket");
        return CLI_EXIT_USAGE;
    }
    json_decref(rq);
    r = cli_ctl_write(fd, f, n, TS_CLI_CTL_WRITE_MS);
    free(f);
    if (r != 0) {
        return -1;
    }
    for ( ;; ) {
        if (cli_ctl_read(fd, TS_CLI_CTL_REPLY_MAX_B, CLI_CTL_CLI_WAIT_MS,
                         &body, &n) != 0)
        {
            return -1;
        }
        r = cli_ctl_msg_parse(body, n, &m, err, sizeof(err));
        free(body);
        if (r != 0) {
            cli_out_eline("client: bad reply from the node: %s", err);
            return -1;
        }
        if (m.is_event) {
            cli_ctl_cli_event(&m, json);
            cli_ctl_msg_free(&m);
            continue;
        }
        if (m.id != id) {
            cli_ctl_msg_free(&m);       /* not the answer to this one */
            continue;
        }
        r = cli_ctl_cli_print(&m, json);
        cli_ctl_msg_free(&m);
        return r;
    }
}


int
cli_ctl_cli_run(const char *state_dir, int json)
{
    char        line[8192], err[128];
    cli_args_t  a;
    uint64_t    id = 0;
    int         fd, r, last = CLI_EXIT_OK;

    fd = cli_ctl_cli_connect(state_dir);
    if (fd < 0) {
        fprintf(stderr, "client: no node answers on %s/control.sock: %s\n",
                state_dir, strerror(errno));
        return CLI_EXIT_NODE;
    }
    while (fgets(line, sizeof(line), stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (cli_parse_line(line, &a, err, sizeof(err)) != 0) {
            cli_out_eline("error: %s", err);
            last = CLI_EXIT_USAGE;
            continue;
        }
        if (a.argc == 0) {
            continue;
        }
        if (strcmp(a.argv[0], "exit") == 0 || strcmp(a.argv[0], "quit") == 0)
        {
            break;                      /* detach: the node keeps running */
        }
        r = cli_ctl_cli_one(fd, ++id, &a, json);
        if (r < 0) {
            fprintf(stderr, "client: the node closed the control "
                    "connection\n");
            close(fd);
            return CLI_EXIT_NODE;
        }
        if (r != CLI_EXIT_OK) {
            last = r;
        }
    }
    close(fd);
    return last;
}
