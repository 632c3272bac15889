/*
 * cli_daemon.h -- the node's agent: the process of the node (a role of
 * the node supervisor, beside the uploaders and downloaders) that holds
 * the tracker session, runs the commands and serves the control socket
 * every CLI attaches to.
 *
 * The CLI fills a cli_daemon_cfg_t and hands cli_daemon_main to the node
 * as its agent role before it forks the node (node_opts_t.agent_main):
 * the supervisor's children inherit the configuration with the memory
 * image.  When the agent dies, the supervisor starts a new one; that one
 * republishes the shares and downloads from node.tdb and resumes the
 * saved session (<state>/session), so no new login is needed.
 *
 * Locking: the configuration is written once before the fork.  Crash
 * behaviour: see cli_daemon.c.
 */
#ifndef CLI_DAEMON_H_INCLUDED
#define CLI_DAEMON_H_INCLUDED

#include <stdint.h>

#include "ts_config.h"
#include "ts_trackers.h"
#include "ts_worker.h"

typedef struct {
    ts_trackers_t  trk;
    int            prefer;              /* tracker to try first, 0-based */
    char           ca[4096];
    char           crt[4200];
    char           key[4200];
    char           state_dir[4096];
    char           node_addr[96];       /* "ip:port" the node serves on */
    uint8_t        node_fp[TS_FP_B];
    int            source_timeout_s;    /* --source-timeout */
} cli_daemon_cfg_t;

/* Before the node is forked. */
void cli_daemon_configure(const cli_daemon_cfg_t *cfg);
/* The agent role (ts_worker_main_pt). */
int  cli_daemon_main(const ts_worker_ctx_t *wctx);

#endif
