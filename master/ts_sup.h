/*
 * ts_sup.h -- the supervisor: preforks workers by role, reaps, respawns,
 * stops.  Used by trackers (trk-worker xN, trk-sync x1) and client nodes
 * (uploader xN, downloader xM) alike.
 *
 * Model (nginx + PostgreSQL postmaster):
 *  - a private child table (never in shm); signal handlers only set flags
 *    and write a byte to a self-pipe; the loop polls, reaps with
 *    waitpid(WNOHANG) and decides;
 *  - each child gets a socketpair channel: it writes "R" when ready
 *    (ts_worker_ready) and sees EOF when the supervisor dies; children
 *    also set PR_SET_PDEATHSIG, so no orphan outlives its supervisor;
 *  - a dead worker is respawned in its slot at once (well within 100 ms);
 *    a worker that keeps dying young gets exponential backoff
 *    (TS_SUP_BACKOFF_*); TS_SUP_STARTUP_FAILS_N deaths in a row before
 *    READY, or an exit status of 2 (fatal), is a crash loop: the
 *    supervisor logs it, stops everything and returns 1;
 *  - SIGTERM/SIGINT (or ts_sup_stop()): graceful stop, SIGTERM to every
 *    child, SIGKILL to stragglers after the deadline;
 *  - segment reset: when the reset_needed hook says so (a shm lock went
 *    ENOTRECOVERABLE), every worker is stopped the same way, on_reset
 *    rebuilds the segment from durable state, and the workers start
 *    again with new pids.
 * The supervisor never takes a shm lock; it only calls the on_exit hook,
 * which reclaims a dead worker's claims with lock-free CAS.
 */
#ifndef TS_SUP_H_INCLUDED
#define TS_SUP_H_INCLUDED

#include "ts_sup_cfg.h"
#include "ts_worker.h"

/* Runs until stopped.  Returns 0 after a requested stop, 1 after a crash
 * loop or a fatal worker exit.  Installs its own signal handlers. */
int  ts_sup_run(const ts_sup_config_t *cfg);
/* Request a graceful stop (async-signal-safe). */
void ts_sup_stop(void);
/* pids of live workers of a role (for tests and status); returns count. */
int  ts_sup_pids(int role, pid_t *out, int max);

/* The worker-side calls (ts_worker_ready, ts_worker_stopping,
 * ts_worker_stop_fd, ts_worker_orphaned, ts_proc_set_name) are declared in
 * ts_worker.h, included above. */

#endif
