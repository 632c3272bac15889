/*
 * cli_nodecmd.h -- the commands about the node itself rather than the
 * tracker: status (who runs here, what it is doing), wait (until the
 * running downloads end), shutdown (stop the node) and echo (a line a
 * script can look for in the output).
 *
 * Locking: see cli_nodecmd.c.  Crash behaviour: nothing persistent.
 */
#ifndef CLI_NODECMD_H_INCLUDED
#define CLI_NODECMD_H_INCLUDED

#include "cli_cmds.h"

extern const cli_cmd_t  cli_nodecmd_cmds[];

/* The agent: when it started (for status's uptime), and whether the
 * shutdown command asked the node to stop (the agent then tells its
 * supervisor, once the reply is out). */
void cli_nodecmd_started(void);
int  cli_nodecmd_stop_asked(void);

#endif
