/*
 * cli_hold.h -- what the node holds, collected and told (cli_hold.c).
 * Internal to the agent: commands use cli_agent.h.
 *
 * Locking: every function is called with cli_agent.mu held.
 * Crash behaviour: cli_hold.c.
 */
#ifndef CLI_HOLD_H_INCLUDED
#define CLI_HOLD_H_INCLUDED

#include <stdint.h>

#include "node_shm.h"
#include "cli_state.h"
#include "cli_agent_priv.h"

/* STOP_SHARE (group, name) at the next tick, until the tracker heard it;
 * cli_hold_unqueue_stop forgets it (shared again, or heard). */
void cli_hold_queue_stop(const char *group, const char *name);
void cli_hold_unqueue_stop(const char *group, const char *name);
/* Reads the node's progress into the entries; persists what changed. */
void cli_hold_collect(int64_t now);
/* Shares the uploaders found changed on disk: dropped and reported. */
void cli_hold_stale(void);
/* cli_state_shares callback (arg: the shm): serves the share, or queues
 * its STOP_SHARE when the file changed while the node was down. */
void cli_hold_load_share(void *arg, cli_share_rec_t *r);
/* Publishes and persists a share.  0, or -1 (share table full). */
int  cli_hold_share_add(const cli_share_rec_t *r);
/* Stops serving (group, name) and forgets it: 0, or 1 if not shared. */
int  cli_hold_share_stop(const char *group, const char *name);
/* Every share out of shm, the STOP_SHARE queue emptied. */
void cli_hold_unload(ts_shm_t *shm);

#endif
