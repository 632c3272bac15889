/*
 * trk_kdfq.h -- a request worker's KDF threads and their job queues: the
 * hand-off of password checks (login, create_user) from the event loop.
 *
 * One pool per worker process.  The loop submits a job tagged with its
 * connection (index and id); a thread runs trk_kdf_run() on it and puts
 * it on the done list, then wakes the loop through an eventfd
 * (trk_kdfq_fd); the loop takes the done list and finishes each job.
 */
#ifndef TRK_KDFQ_H_INCLUDED
#define TRK_KDFQ_H_INCLUDED

#include <stdint.h>
#include "trk_ops.h"

typedef struct trk_kdfq_item_s {
    struct trk_kdfq_item_s *next;
    trk_kdf_job_t          *job;
    uint32_t                idx;    /* the connection's index ... */
    uint64_t                cid;    /* ... and id: is it still there? */
    int64_t                 t0_us;  /* submitted (monotonic), metrics */
} trk_kdfq_item_t;

/* Starts TS_TRK_KDF_THREADS_N threads.  0 or -1 (logged). */
int  trk_kdfq_start(void);
/* The eventfd that becomes readable when jobs are done. */
int  trk_kdfq_fd(void);
/* Queues job for connection (idx, cid).  -1: TS_TRK_KDF_QUEUE_N jobs are
 * in the pool already (or no memory): the caller answers BUSY. */
int  trk_kdfq_submit(trk_kdf_job_t *job, uint32_t idx, uint64_t cid);
/* Clears the eventfd and takes the done list (oldest first); each item
 * is the caller's: trk_kdfq_release it before finishing its job, then
 * free() it. */
trk_kdfq_item_t *trk_kdfq_take(void);
/* A taken item no longer counts against the queue cap (its job is
 * about to be finished, which may submit the connection's next one). */
void trk_kdfq_release(trk_kdfq_item_t *it);
/* Stops and joins the threads; aborts (trk_kdf_job_abort with env) the
 * jobs still queued or done. */
void trk_kdfq_stop(trk_env_t *env);

#endif
