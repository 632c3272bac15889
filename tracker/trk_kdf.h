/*
 * trk_kdf.h -- the KDF jobs of CREATE_USER and LOGIN and their throttle
 * reservations (trk_kdf.c); used by the account handlers.
 *
 * Locking: event-loop thread only, except trk_kdf_run() (trk_ops.h),
 * which runs in a KDF thread on its job alone.  Crash behaviour: the
 * reservations of a worker that dies lapse after TS_LOGIN_WINDOW_MS.
 */
#ifndef TRK_KDF_H_INCLUDED
#define TRK_KDF_H_INCLUDED

#include <stdint.h>
#include "trk_ops.h"

/* Throttle reservations a job holds (job->held). */
#define TRK_HELD_ADDR    0x2u   /* 'a' failed logins from the address */
#define TRK_HELD_KDF     0x4u   /* 'k' KDF jobs in progress, address */
#define TRK_HELD_CREATE  0x8u   /* 'c' create_users from the address */
#define TRK_HELD_PAIR    0x10u  /* 'p' failed logins of the user from the
                                   address */
#define TRK_HELD_NODE    0x20u  /* 'i' failed logins of a known node */

/* Reads user + password (+ node address when with_addr) into a new job,
 * rq->job: TS_OK or a status (no job). */
int     trk_kdf_job_new(trk_req_t *rq, int with_addr);
/* Reserves one attempt of name in throttle counter kind; records it in
 * job->held (bit).  0 = go ahead, else the ms to wait (and *why). */
int64_t trk_kdf_reserve(trk_env_t *env, trk_kdf_job_t *job, char kind,
                        const char *name, const trk_thr_cfg_t *cfg,
                        unsigned bit, int *why);
/* Settles the reservations job holds; failed: its login failed (counts
 * for the counters it reserved).  *fu (the user's from this address or
 * this known node) / *fa (the address's) (may be NULL) get the failures
 * now counted. */
void    trk_kdf_settle(trk_env_t *env, trk_kdf_job_t *job, int failed,
                       uint32_t *fu, uint32_t *fa);
/* Refuses rq for a throttle: frees the job after releasing what it holds
 * and sets the message.  Returns TS_ERR_BUSY. */
int     trk_kdf_refuse(trk_req_t *rq, char kind, int why, int64_t wait);
/* The login throttles of rq's job (trk_thr.h lists the counters): KDF
 * jobs in progress from the address ('k', as trk_kdf_reserve_addr), then a
 * known node identity (known: it logged in to the user before) is
 * counted alone under 'i'; any other node under 'a' and 'p', and is
 * refused while the user's safety net 'u' is tripped.  A known node whose
 * counter region has no room is counted as any other.  TS_OK or
 * TS_ERR_BUSY (job freed). */
int     trk_kdf_reserve_login(trk_req_t *rq, int known);
/* A LOGIN of job succeeded: forgets the failures of the counters it was
 * checked under (never the address's, nor the safety net's). */
void    trk_kdf_login_ok(trk_env_t *env, const trk_kdf_job_t *job);
/* Unauthenticated KDF work from one address: at most TS_TRK_KDF_ADDR_N
 * jobs in progress.  TS_OK or TS_ERR_BUSY (job freed). */
int     trk_kdf_reserve_addr(trk_req_t *rq);

#endif
