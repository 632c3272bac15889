/*
 * ts_worker.h -- the worker side of the supervisor: what a process forked
 * by ts_sup sees (its context, the ready/stop/orphan calls) and the one
 * entry the supervisor's fork path calls in the child.
 *
 * Locking: none; every call here runs in the worker process itself.
 *
 * Crash behaviour: a worker notices its supervisor's death two ways, by
 * PR_SET_PDEATHSIG (SIGTERM, which sets the stop flag) and by EOF on its
 * channel, so it never outlives the supervisor.
 */
#ifndef TS_WORKER_H_INCLUDED
#define TS_WORKER_H_INCLUDED

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

/* Set up in the child by the supervisor before main(): names the process,
 * sets the log role, PR_SET_PDEATHSIG, SIGTERM/SIGINT -> stop flag,
 * SIGPIPE ignored. */
void ts_worker_ready(const ts_worker_ctx_t *ctx);   /* tell: init done */
int  ts_worker_stopping(void);    /* 1 after SIGTERM or supervisor death */
/* For event loops: an fd that becomes readable when the worker should
 * stop (self-pipe); add it to epoll/poll. */
int  ts_worker_stop_fd(void);
/* 1 if the supervisor is gone (channel EOF); cheap, non-blocking. */
int  ts_worker_orphaned(const ts_worker_ctx_t *ctx);

/* Set the calling process's name as seen by ps (comm, 15 chars). */
void ts_proc_set_name(const char *name);

/* Called by the supervisor's fork path in the child, every signal still
 * blocked, the supervisor's own fds already closed: installs the worker's
 * signal handling and stop pipe, arms PR_SET_PDEATHSIG and names the
 * process.  0, or -1 if the child must _exit(1) (supervisor already gone
 * or no pipe). */
int  ts_worker_enter(pid_t supervisor, int chan, const char *name);

#endif
