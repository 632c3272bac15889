/*
 * cli_ctx.h -- the context every client command and the agent share:
 * the tracker link, the session and who this node is.
 *
 * It sits at the bottom of client/ (only cli_rpc.h and cli_session.h
 * below it), so that commands, output helpers and the agent can all see
 * it without seeing each other.
 *
 * Locking: filled by cli_main.c before any thread starts, then read-only
 * except want_exit (main thread only).  Crash behaviour: memory only.
 */
#ifndef CLI_CTX_H_INCLUDED
#define CLI_CTX_H_INCLUDED

#include <stdint.h>

#include "ts_config.h"
#include "ts_tls.h"
#include "cli_rpc.h"
#include "cli_session.h"

typedef struct {
    cli_rpc_t      *rpc;
    cli_session_t  *sess;
    char            node_addr[96];    /* "ip:port" this node serves on */
    uint8_t         node_fp[TS_FP_B]; /* this node's certificate
                                         fingerprint: its identity */
    const char     *state_dir;
    int             tty;              /* interactive: "(none)" for empty */
    int             want_exit;        /* set by the exit command */
    void           *ext;              /* for later command files */
} cli_ctx_t;

#endif
