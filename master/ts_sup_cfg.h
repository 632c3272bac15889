/*
 * ts_sup_cfg.h -- what a supervisor is given: its roles and its hooks
 * (ts_sup_config_t).  Reached through ts_sup.h; a header of its own so
 * that the child table (ts_sup_slot) and the lifecycle (ts_sup) share
 * the types without including each other.
 *
 * Locking: the hooks run in the supervisor process (on_child_init in the
 * child); the supervisor itself never takes a shm lock, so hooks must be
 * lock-free too (C11 atomics, CAS).
 *
 * Crash behaviour: see ts_sup.h.
 */
#ifndef TS_SUP_CFG_H_INCLUDED
#define TS_SUP_CFG_H_INCLUDED

#include <stdint.h>
#include <sys/types.h>
#include "ts_worker.h"

typedef struct {
    const char        *name;   /* process name (PR_SET_NAME, <= 15 chars) */
    int                count;
    ts_worker_main_pt  main;   /* return value = exit status */
    void              *arg;
} ts_sup_role_t;

typedef struct {
    const char          *name;       /* supervisor's process name */
    const ts_sup_role_t *roles;
    int                  nroles;
    int                  stop_deadline_ms;   /* 0 = TS_SUP_STOP_DEADLINE_MS */

    /* Optional hooks (may be NULL); hook_arg is passed to each. */
    void *hook_arg;
    /* In the child, right after fork, before ctx->main (e.g. attach shm). */
    void (*on_child_init)(const ts_worker_ctx_t *ctx, void *arg);
    /* In the supervisor after a spawn / after reaping (reclaim claims). */
    void (*on_spawn)(int slot, pid_t pid, uint32_t gen, int role, void *arg);
    void (*on_exit)(int slot, pid_t pid, uint32_t gen, int role,
                    int wstatus, void *arg);
    /* An fd to watch (e.g. the tracker's stdin for "quit"); -1 = none.
     * on_watch returns 1 to stop the node, 0 to go on, -1 to stop
     * watching (EOF). */
    int   watch_fd;
    int (*on_watch)(int fd, void *arg);
    /* Called every tick_ms (>0) in the supervisor. */
    int   tick_ms;
    void (*on_tick)(void *arg);

    /* Segment reset (both or neither).  reset_needed is polled every
     * TS_SUP_RESET_POLL_MS (e.g. the shm header's reset_needed flag);
     * when it returns 1 the supervisor stops every worker, reaps them
     * all (on_exit runs for each), calls on_reset to rebuild the
     * segment from durable state, and spawns the workers again.
     * on_reset returns 0, or -1 to stop the node (ts_sup_run returns 1). */
    int (*reset_needed)(void *arg);
    int (*on_reset)(void *arg);

    /* After SIGHUP (the logs already reopened, the workers signalled):
     * re-read what can be re-read without a restart. */
    void (*on_reload)(void *arg);
} ts_sup_config_t;

#endif
