/*
 * cli_link.h -- the agent's tracker conversation (cli_link.c).  Internal
 * to the agent: commands use cli_agent.h.
 *
 * Locking: cli_link_tick takes cli_agent.mu itself; the others are
 * called with it held.  Crash behaviour: nothing persistent.
 */
#ifndef CLI_LINK_H_INCLUDED
#define CLI_LINK_H_INCLUDED

#include <stdint.h>

#include "node_shm.h"
#include "cli_finfo.h"
#include "cli_agent_priv.h"

/* fi's sources (never this node) into download idx's shm entry. */
void    cli_link_set_sources(ts_shm_t *shm, int idx, const cli_finfo_t *fi);
/* fi's ticket into e's shm entry when due for renewal (or force). */
void    cli_link_ticket_apply(ts_shm_t *shm, cli_dlent_t *e,
                              const cli_finfo_t *fi, int force);
/* When e's next FILE_INFO is due (monotonic ms). */
int64_t cli_link_next_info_ms(const cli_dlent_t *e, int64_t now);
/* One agent tick: collect, then the tracker requests, then their
 * results (takes and drops cli_agent.mu). */
void    cli_link_tick(void);

#endif
