/*
 * cli_ctl_srv.h -- the node's control socket, <state>/control.sock
 * (cli_ctl_srv.c; the protocol: docs/CONTROL.md).
 *
 * Locking: start and stop from the main thread; the server's own
 * threads run commands under cli_cmd_run's lock.  Crash behaviour: a
 * socket file left by a killed client is replaced by the next start
 * (node.lock says nobody else serves it).
 */
#ifndef CLI_CTL_SRV_H_INCLUDED
#define CLI_CTL_SRV_H_INCLUDED

#include "cli_ctx.h"

/* Binds <state_dir>/control.sock (mode 0600) and starts the accept
 * thread; commands run with a copy of ctx.  0, or -1 after a warning. */
int  cli_ctl_srv_start(const cli_ctx_t *ctx, const char *state_dir);
/* Stops accepting, waits for a running request to end and unlinks the
 * socket. */
void cli_ctl_srv_stop(void);

#endif
