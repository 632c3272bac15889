/*
 * ts_sup_slot.h -- the supervisor's child table: one slot per worker,
 * each with its own state, and the steps that fork, read, reap, signal
 * and back off.  Private to master/ (ts_sup.c drives it).
 *
 * Slot states (sup_slot_state_t):
 *   IDLE      no process; spawned when the loop next runs (start, reset)
 *   STARTING  forked, has not said "R" yet
 *   RUNNING   said "R"
 *   BACKOFF   died while running; respawned at next_spawn_at
 *   STOPPING  sent SIGTERM (stop or reset), not reaped yet
 *   EXITED    reaped during a stop or reset: never respawned until
 *             sup_slots_rearm()
 *
 * Locking: the table lives in the supervisor's private memory and is
 * touched only by the supervisor's loop, never by signal handlers.
 *
 * Crash behaviour: a child that dies is reaped by sup_slots_reap(), which
 * calls the on_exit hook (claims reclaimed) before the slot is respawned;
 * a crash loop (exit status 2, or TS_SUP_STARTUP_FAILS_N deaths before
 * "R") is reported to the caller, who stops everything.
 */
#ifndef TS_SUP_SLOT_H_INCLUDED
#define TS_SUP_SLOT_H_INCLUDED

#include <poll.h>
#include <stdint.h>
#include <sys/types.h>
#include "ts_sup_cfg.h"

typedef enum {
    SUP_SLOT_IDLE = 0,
    SUP_SLOT_STARTING,
    SUP_SLOT_RUNNING,
    SUP_SLOT_BACKOFF,
    SUP_SLOT_STOPPING,
    SUP_SLOT_EXITED
} sup_slot_state_t;

/* Checks the roles and fills the table (every slot IDLE).  sup_fds are
 * the supervisor's own fds, closed in each child.  The slot count, or -1
 * after logging what is wrong. */
int      sup_slots_init(const ts_sup_config_t *cfg, const int sup_fds[2]);
/* Closes the channels and empties the table. */
void     sup_slots_close(void);
/* Forks every IDLE or BACKOFF slot whose time has come. */
void     sup_slots_spawn_due(const ts_sup_config_t *cfg, int64_t now);
/* ms until the next respawn is due (0 = now), or -1 if none waits. */
int64_t  sup_slots_next_spawn_in(int64_t now);
/* Adds each open channel to pfd (up to max); slot_of[i] = its slot. */
int      sup_slots_pollfds(struct pollfd *pfd, int *slot_of, int max);
/* Reads what slot's child wrote ("R" = ready); closes it on EOF. */
void     sup_slot_read(int slot);
/* Reaps every dead child without blocking; stopping: no respawn, no
 * crash-loop accounting.  1 if a crash loop was seen. */
int      sup_slots_reap(const ts_sup_config_t *cfg, int stopping);
/* Sends signo to every live child (SIGTERM also marks it STOPPING). */
void     sup_slots_signal(int signo);
/* After SIGKILL: waits for every live child. */
void     sup_slots_reap_blocking(const ts_sup_config_t *cfg);
/* Live children (any slot with a pid). */
int      sup_slots_live(void);
/* pids of live children of a role; returns count. */
int      sup_slots_pids(int role, pid_t *out, int max);
/* After a reset: every EXITED slot goes back to IDLE with a clean
 * backoff history, so the next sup_slots_spawn_due() starts it. */
void     sup_slots_rearm(void);

#endif
