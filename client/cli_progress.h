/*
 * cli_progress.h -- download progress: rate samples and the view of an
 * entry (cli_progress.c).  Internal to the agent.
 *
 * Locking: called with cli_agent.mu held.  Crash behaviour: memory only.
 */
#ifndef CLI_PROGRESS_H_INCLUDED
#define CLI_PROGRESS_H_INCLUDED

#include <stdint.h>

#include "cli_dlview.h"
#include "cli_agent_priv.h"

/* One sample (monotonic ms, bytes verified) into e's window. */
void cli_progress_sample(cli_dlent_t *e, int64_t now, uint64_t bytes);
/* What a command shows of entry e at now (monotonic ms). */
void cli_progress_view(const cli_dlent_t *e, int64_t now, cli_dlview_t *v);

#endif
