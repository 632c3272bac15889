/*
 * cli_ctl_cli.h -- the client end of the node's control socket
 * (<state>/control.sock, docs/CONTROL.md): connect, one request and its
 * reply, the events the node pushes in between.
 *
 * Locking: one link per thread.  Crash behaviour: nothing persistent.
 */
#ifndef CLI_CTL_CLI_H_INCLUDED
#define CLI_CTL_CLI_H_INCLUDED

#include <stdint.h>

#include "cli_ctl_codec.h"

typedef struct {
    int       fd;               /* -1 while not connected */
    uint64_t  id;               /* the last request's id */
} cli_ctl_link_t;

/* Shows a pushed event (the link reads it while waiting for a reply or
 * when told it is readable). */
typedef void (*cli_ctl_event_pt)(const cli_ctl_msg_t *m);

/* Connects, retrying every TS_CLI_CTL_RETRY_MS for up to wait_ms while
 * alive() says the node runs (alive NULL: no check).  0, or -1 with
 * errno of the last try. */
int   cli_ctl_cli_open(cli_ctl_link_t *l, const char *state_dir, int wait_ms,
                       int (*alive)(void));
void  cli_ctl_cli_close(cli_ctl_link_t *l);
/* Sends argv as one request and reads until its reply (waiting up to
 * wait_ms for it, -1 = no limit), events going to on_event.  0 with
 * *reply filled (cli_ctl_msg_free it); 1 when argv does not fit in a
 * request (nothing sent); -1 when the link broke (closed; the command's
 * outcome is unknown). */
int   cli_ctl_cli_call(cli_ctl_link_t *l, int argc, char **argv, int wait_ms,
                       cli_ctl_event_pt on_event, cli_ctl_msg_t *reply);
/* The link is readable outside a request: reads the event(s) there.
 * 0, or -1 when the link broke (closed). */
int   cli_ctl_cli_pending(cli_ctl_link_t *l, cli_ctl_event_pt on_event);

#endif
