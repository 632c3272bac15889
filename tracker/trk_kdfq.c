/*
 * trk_kdfq.c -- a request worker's KDF threads and their job queues.
 *
 * Purpose: run PBKDF2 (trk_kdf_run) off the event loop, so that a login
 * or create_user does not stall the other connections: a FIFO of jobs,
 * TS_TRK_KDF_THREADS_N threads taking from it, a done list and an
 * eventfd that wakes the loop.  At most TS_TRK_KDF_QUEUE_N jobs are in
 * the pool (queued, running or done but not yet finished by the loop).
 *
 * Locking: one mutex + condition variable over both lists and the
 * count; a thread holds it only to take or put a job, never while
 * computing.  The threads touch nothing but their job.
 *
 * Crash behaviour: the pool dies with its worker; the connections of
 * the pending jobs die with it too (clients retry).  At a clean stop the
 * pending jobs are aborted so their throttle reservations are settled.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_log.h"
#include "trk_kdfq.h"

typedef struct {
    pthread_mutex_t   mu;
    pthread_cond_t    cv;
    trk_kdfq_item_t  *q_head, *q_tail;      /* to run */
    trk_kdfq_item_t  *d_head, *d_tail;      /* done */
    int               queued;
    int               stop;
    int               evfd;
    pthread_t         th[TS_TRK_KDF_THREADS_N];
    int               nth;
} kdf_pool_t;

static kdf_pool_t pool;


/* Appends it to the list (*head, *tail).  Under pool.mu. */
static void
list_put(trk_kdfq_item_t **head, trk_kdfq_item_t **tail, trk_kdfq_item_t *it)
{
    it->next = NULL;
    if (*tail != NULL) {
        (*tail)->next = it;
    } else {
        *head = it;
    }
    *tail = it;
}


static void *
kdf_thread(void *arg)
{
    trk_kdfq_item_t *it;
    uint64_t         one = 1;

    (void) arg;
    for (;;) {
        pthread_mutex_lock(&pool.mu);
        while (pool.q_head == NULL && !pool.stop) {
            pthread_cond_wait(&pool.cv, &pool.mu);
        }
        if (pool.stop) {
            pthread_mutex_unlock(&pool.mu);
            return NULL;
        }
        it = pool.q_head;
        pool.q_head = it->next;
        if (pool.q_head == NULL) {
            pool.q_tail = NULL;
        }
        pthread_mutex_unlock(&pool.mu);

        trk_kdf_run(it->job);

        pthread_mutex_lock(&pool.mu);
        list_put(&pool.d_head, &pool.d_tail, it);
        pthread_mutex_unlock(&pool.mu);
        if (write(pool.evfd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
            ts_err("write(eventfd) failed: %s", strerror(errno));
        }
    }
}


int
trk_kdfq_start(void)
{
    int i, rc;

    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.cv, NULL);
    pool.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pool.evfd < 0) {
        ts_err("eventfd() failed: %s", strerror(errno));
        return -1;
    }
    for (i = 0; i < TS_TRK_KDF_THREADS_N; i++) {
        rc = pthread_create(&pool.th[i], NULL, kdf_thread, NULL);
        if (rc != 0) {
            ts_err("pthread_create() failed: %s", strerror(rc));
            return -1;
        }
        pool.nth++;
    }
    return 0;
}


int
trk_kdfq_fd(void)
{
    return pool.evfd;
}


/* Aborts and frees every job of the list. */
static void
abort_all(trk_env_t *env, trk_kdfq_item_t *it)
{
    trk_kdfq_item_t *next;

    for (; it != NULL; it = next) {
        next = it->next;
        trk_kdf_job_abort(env, it->job);
        free(it);
    }
}


void
trk_kdfq_stop(trk_env_t *env)
{
    int i;

    pthread_mutex_lock(&pool.mu);
    pool.stop = 1;
    pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    for (i = 0; i < pool.nth; i++) {
        pthread_join(pool.th[i], NULL);
    }
    abort_all(env, pool.q_head);
    abort_all(env, pool.d_head);
    pool.q_head = pool.d_head = NULL;
}


int
trk_kdfq_submit(trk_kdf_job_t *job, uint32_t idx, uint64_t cid)
{
    trk_kdfq_item_t *it;

    pthread_mutex_lock(&pool.mu);
    if (pool.queued >= TS_TRK_KDF_QUEUE_N) {
        pthread_mutex_unlock(&pool.mu);
        return -1;
    }
    it = calloc(1, sizeof(*it));
    if (it == NULL) {
        pthread_mutex_unlock(&pool.mu);
        return -1;
    }
    it->job = job;
    it->idx = idx;
    it->cid = cid;
    it->t0_us = ts_now_us();
    list_put(&pool.q_head, &pool.q_tail, it);
    pool.queued++;
    pthread_cond_signal(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    return 0;
}


trk_kdfq_item_t *
trk_kdfq_take(void)
{
    trk_kdfq_item_t *list;
    uint64_t         v;

    if (read(pool.evfd, &v, sizeof(v)) < 0 && errno != EAGAIN) {
        ts_err("read(eventfd) failed: %s", strerror(errno));
    }
    pthread_mutex_lock(&pool.mu);
    list = pool.d_head;
    pool.d_head = pool.d_tail = NULL;
    pthread_mutex_unlock(&pool.mu);
    return list;
}


void
trk_kdfq_release(trk_kdfq_item_t *it)
{
    pthread_mutex_lock(&pool.mu);
    pool.queued--;
    pthread_mutex_unlock(&pool.mu);
    (void) it;
}
