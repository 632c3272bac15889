/*
 * cli_node.h -- the client's node: started with the CLI on its <IP>:<PORT>
 * and stopped when the CLI exits (exit, EOF, SIGTERM/SIGINT).
 *
 * The node (workers/node.h) is one supervisor process forked by the CLI
 * with uploader and downloader workers; this module only owns the
 * node_t and its options.
 *
 * Locking: main thread only (start before any other thread exists, stop
 * after the agent thread has been joined).
 * Crash behaviour: if the CLI dies, the supervisor gets SIGTERM through
 * PR_SET_PDEATHSIG and its workers follow; the shm segment is replaced by
 * the next start on the same port.
 */
#ifndef CLI_NODE_H_INCLUDED
#define CLI_NODE_H_INCLUDED

#include <stdint.h>
#include "node.h"

/* Starts the node as o says: ip:port, worker counts and limits (0 =
 * default) and identity (crt/key = the node certificate and key, ca =
 * the cluster CA, which uploaders verify tickets with).  0, or -1 after
 * printing a clear error on stderr (port in use, ...). */
int      cli_node_start(node_opts_t *o);
/* The running node, or NULL. */
node_t  *cli_node_get(void);
/* Stops the node (idempotent). */
void     cli_node_stop(void);
/* The agent process: n (the supervisor's node, mapped) is the node. */
void     cli_node_adopt(node_t *n);
/* The node's supervisor is gone (reaped): 1.  0 while it runs or when
 * this process started none. */
int      cli_node_gone(void);

#endif
