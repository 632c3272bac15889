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
 *    child, SIGKILL to stragglers after the deadline.
 * The supervisor never takes a shm lock; it only calls the on_exit hook,
 * which reclaims a dead worker's claims with lock-free CAS.
 */
#ifndef TS_SUP_H_INCLUDED
#define TS_SUP_H_INCLUDED

#include <stdint.h>
#include <sys/types.h>

typedef struct {
    int         slot;          /* 0..total-1, stable across respawns */
    int         role;          /* index into cfg->roles */
    int         instance;      /* 0..count-1 within the role */
    uint32_t    generation;    /* bumped at every spawn of this slot */
    const char *role_name;
    void       *arg;           /* the role's arg */
    int         channel_fd;    /* to the supervisor */
} ts_worker_ctx_t;

typedef int (*ts_worker_main_pt)(const ts_worker_ctx_t *ctx);

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
} ts_sup_config_t;

/* Runs until stopped.  Returns 0 after a requested stop, 1 after a crash
 * loop or a fatal worker exit.  Installs its own signal handlers. */
int  ts_sup_run(const ts_sup_config_t *cfg);
/* Request a graceful stop (async-signal-safe). */
void ts_sup_stop(void);
/* pids of live workers of a role (for tests and status); returns count. */
int  ts_sup_pids(int role, pid_t *out, int max);

/* ---- helpers for worker processes ------------------------------------ */
/* Called by the supervisor in the child before main(): names the process,
 * sets the log role, PR_SET_PDEATHSIG, SIGTERM/SIGINT -> stop flag,
 * SIGPIPE ignored, other children's channels closed. */
void ts_worker_ready(const ts_worker_ctx_t *ctx);   /* tell: init done */
int  ts_worker_stopping(void);    /* 1 after SIGTERM or supervisor death */
/* For event loops: an fd that becomes readable when the worker should
 * stop (self-pipe); add it to epoll/poll. */
int  ts_worker_stop_fd(void);
/* 1 if the supervisor is gone (channel EOF); cheap, non-blocking. */
int  ts_worker_orphaned(const ts_worker_ctx_t *ctx);

/* Set the calling process's name as seen by ps (comm, 15 chars). */
void ts_proc_set_name(const char *name);

#endif
