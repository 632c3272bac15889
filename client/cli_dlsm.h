/*
 * cli_dlsm.h -- the rules of a download's life as the user steers it
 * (cli_dlsm.c): which of cancel, pause, resume and retry a download in a
 * given state allows and what it becomes, and the no-source timeout.
 *
 *            pause            (no chunk for --source-timeout, or an
 *   ACTIVE --------> PAUSED    error of the node)
 *     ^  ^  <--------   |      ACTIVE --------> FAILED --retry--> ACTIVE
 *     |  |   resume     |      ACTIVE --------> DONE (a share)
 *     |  +--------------+--- cancel (any but DONE, FINALIZING): the record
 *     |                       and the .part go
 *
 * Pure logic, so the unit tests drive every edge (test_cli_dlsm.c); the
 * agent (cli_down.c) applies the result to shm, node.tdb and the disk.
 *
 * Locking: none (pure functions).  Crash behaviour: nothing persistent.
 */
#ifndef CLI_DLSM_H_INCLUDED
#define CLI_DLSM_H_INCLUDED

#include <stdint.h>

typedef enum {
    CLI_DLOP_CANCEL = 1,
    CLI_DLOP_PAUSE,
    CLI_DLOP_RESUME,
    CLI_DLOP_RETRY
} cli_dlop_t;

/* What op does to a download whose record state is st (cli_dl_state_t)
 * and whose node state is nst (node_dl_state_t; NODE_DL_FREE when it is
 * not in the node's table).  CLI_EXIT_OK with *next the record's new
 * state (0: the record goes; the same state: nothing to do), or a
 * failure class (cli_exit.h) with the reason in *why (it follows
 * "'<file>' from '<group>' "). */
int  cli_dlsm_op(uint32_t st, uint32_t nst, cli_dlop_t op, uint32_t *next,
                 const char **why);

/* The no-source clock of a running download, at each look (now,
 * monotonic ms): bytes is what it has verified; held = it cannot fetch
 * now (paused, logged out, not in the node's table), which stops the
 * clock.  *since_ms / *seen are the clock's state (since 0 = not started).
 * 1 when no chunk came for timeout_ms of running time, else 0. */
int  cli_dlsm_stalled(int64_t *since_ms, uint64_t *seen, uint64_t bytes,
                      int held, int64_t now, int64_t timeout_ms);

#endif
