/*
 * ts_shlock.h -- robust, process-shared mutexes for tables in shm.
 *
 * A ts_shlock_sh_t lives in shared memory and is initialised once by the
 * segment creator.  If its holder dies, the next locker gets EOWNERDEAD
 * while holding it: ts_shlock_lock() then calls the table's repair
 * callback, marks the mutex consistent and returns normally (1 instead of
 * 0, so callers may count it).  ENOTRECOVERABLE (someone unlocked without
 * repair) returns -1: the caller sets reset_needed (ts_shm_lock() in
 * ts_shm.h does) and the supervisor rebuilds the segment (tier 2).
 */
#ifndef TS_SHLOCK_H_INCLUDED
#define TS_SHLOCK_H_INCLUDED

#include <pthread.h>

typedef struct {
    pthread_mutex_t mutex;
} ts_shlock_sh_t;

typedef void (*ts_shlock_repair_pt)(void *arg);

int  ts_shlock_init(ts_shlock_sh_t *l);          /* 0 or -1 */
/* 0 locked, 1 locked after repairing a dead owner's state, -1 failed. */
int  ts_shlock_lock(ts_shlock_sh_t *l, ts_shlock_repair_pt repair, void *arg);
void ts_shlock_unlock(ts_shlock_sh_t *l);

#endif
