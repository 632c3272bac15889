/*
 * ts_shlock.c -- robust process-shared mutexes for tables in shm.
 *
 * Purpose: the one lock type allowed in shared memory.  A plain
 * process-shared mutex would stay locked for ever if its holder died; a
 * robust one hands the next locker EOWNERDEAD instead, and this module
 * turns that into "repair the table, mark the mutex consistent, go on".
 * ERRORCHECK makes a relock by the same thread an error, not a deadlock.
 *
 * Locking: this is the lock.  The repair callback runs with the mutex
 * held, so it sees the table exactly as the dead holder left it.
 *
 * Crash behaviour: if the holder dies, the kernel's robust-futex list
 * marks the mutex; the next ts_shlock_lock() repairs and returns 1.  If
 * someone unlocked an EOWNERDEAD mutex without making it consistent it is
 * ENOTRECOVERABLE for good: we log it and return -1 so the caller can ask
 * for a tier-2 rebuild of the segment (reset_needed).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "ts_log.h"
#include "ts_shlock.h"

int
ts_shlock_init(ts_shlock_sh_t *l)
{
    int                  rc;
    pthread_mutexattr_t  attr;

    rc = pthread_mutexattr_init(&attr);
    if (rc != 0) {
        ts_err("pthread_mutexattr_init() failed: %s", strerror(rc));
        return -1;
    }

    rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (rc == 0) {
        rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    }
    if (rc == 0) {
        rc = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    }
    if (rc != 0) {
        ts_err("pthread_mutexattr_set*() failed: %s", strerror(rc));
        pthread_mutexattr_destroy(&attr);
        return -1;
    }

    rc = pthread_mutex_init(&l->mutex, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        ts_err("pthread_mutex_init() failed: %s", strerror(rc));
        return -1;
    }

    return 0;
}


int
ts_shlock_lock(ts_shlock_sh_t *l, ts_shlock_repair_pt repair, void *arg)
{
    int  rc;

    do {
        rc = pthread_mutex_lock(&l->mutex);
    } while (rc == EINTR || rc == EAGAIN);

    switch (rc) {
    case 0:
        return 0;

    case EOWNERDEAD:
        ts_warn("shm lock %p: previous holder died; repairing", (void *) l);
        if (repair != NULL) {
            repair(arg);
        }
        rc = pthread_mutex_consistent(&l->mutex);
        if (rc != 0) {
            ts_err("pthread_mutex_consistent() failed: %s", strerror(rc));
            pthread_mutex_unlock(&l->mutex);
            return -1;
        }
        return 1;

    case ENOTRECOVERABLE:
        ts_err("shm lock %p is not recoverable; segment needs a rebuild",
               (void *) l);
        return -1;

    default:
        ts_err("pthread_mutex_lock() failed: %s", strerror(rc));
        return -1;
    }
}


void
ts_shlock_unlock(ts_shlock_sh_t *l)
{
    int  rc;

    rc = pthread_mutex_unlock(&l->mutex);
    if (rc != 0) {
        ts_err("pthread_mutex_unlock() failed: %s", strerror(rc));
    }
}
