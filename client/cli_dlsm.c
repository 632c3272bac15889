/*
 * cli_dlsm.c -- the rules of a download's life as the user steers it:
 * cancel, pause, resume and retry by state, and the no-source clock (see
 * the diagram in cli_dlsm.h).
 *
 * Locking: none (pure functions over the caller's values).
 * Crash behaviour: nothing persistent.
 */
#include <stddef.h>
#include <stdint.h>

#include "node_shm.h"
#include "cli_rec.h"
#include "cli_exit.h"
#include "cli_dlsm.h"


/* The file is being renamed into place right now (or was): the
 * downloaders own it until the agent records it as done. */
static int
cli_dlsm_finishing(uint32_t nst, const char **why)
{
    if (nst == NODE_DL_FINALIZING || nst == NODE_DL_DONE) {
        *why = "is being finished; try again in a moment";
        return CLI_EXIT_CONFLICT;
    }
    return CLI_EXIT_OK;
}


int
cli_dlsm_op(uint32_t st, uint32_t nst, cli_dlop_t op, uint32_t *next,
            const char **why)
{
    *next = st;
    *why = NULL;
    if (st == CLI_DL_DONE) {
        *why = op == CLI_DLOP_CANCEL
               ? "is complete (stop_share stops serving it)"
               : "is already complete";
        return CLI_EXIT_EXISTS;
    }
    if (st != CLI_DL_ACTIVE && st != CLI_DL_PAUSED && st != CLI_DL_FAILED) {
        *why = "has an unknown state";
        return CLI_EXIT_FAILURE;
    }
    switch (op) {
    case CLI_DLOP_CANCEL:
        if (st != CLI_DL_FAILED && cli_dlsm_finishing(nst, why) != 0) {
            return CLI_EXIT_CONFLICT;
        }
        *next = 0;
        return CLI_EXIT_OK;
    case CLI_DLOP_PAUSE:
        if (st == CLI_DL_FAILED) {
            *why = "has failed (retry restarts it)";
            return CLI_EXIT_FAILURE;
        }
        if (st == CLI_DL_ACTIVE && cli_dlsm_finishing(nst, why) != 0) {
            return CLI_EXIT_CONFLICT;
        }
        *next = CLI_DL_PAUSED;
        return CLI_EXIT_OK;
    case CLI_DLOP_RESUME:
        if (st == CLI_DL_FAILED) {
            *why = "has failed (retry restarts it)";
            return CLI_EXIT_FAILURE;
        }
        *next = CLI_DL_ACTIVE;
        return CLI_EXIT_OK;
    case CLI_DLOP_RETRY:
        if (st != CLI_DL_FAILED) {
            *why = st == CLI_DL_PAUSED
                   ? "has not failed; it is paused (resume "
                     "continues it)"
                   : "has not failed; it is running";
            return CLI_EXIT_FAILURE;
        }
        *next = CLI_DL_ACTIVE;
        return CLI_EXIT_OK;
    }
    *why = "cannot take that operation";
    return CLI_EXIT_USAGE;
}


int
cli_dlsm_stalled(int64_t *since_ms, uint64_t *seen, uint64_t bytes,
                 int held, int64_t now, int64_t timeout_ms)
{
    /* held, new bytes, or a first look: the clock starts again from now */
    if (held || *since_ms == 0 || bytes != *seen) {
        *since_ms = now;
        *seen = bytes;
        return 0;
    }
    return timeout_ms > 0 && now - *since_ms >= timeout_ms;
}
