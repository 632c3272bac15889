/*
 * trk_metrics.h -- the request counters of the tracker's shm segment
 * (table TRK_TBL_REQS): requests by message type and reply status, a
 * latency histogram per type, the group-commit histogram, and the pid
 * of the HTTP process that exports them (trk_http*.c).
 *
 * Latency of a request: from its whole frame read to its reply made --
 * the handler, and for create_user / login also the KDF queue and
 * thread.  A write's reply then waits for its loop turn's group commit,
 * which has a histogram of its own (one sample per commit).
 *
 * Locking: lock-free; every worker adds with relaxed atomic fetch_add,
 * the HTTP process reads with atomic loads.  A reader may see one
 * request's count before its latency: the figures are for monitoring.
 *
 * Crash behaviour: counters live only in shm; a segment rebuilt after a
 * reset starts them at zero again (Prometheus treats that as a counter
 * reset).  A killed worker loses nothing already counted.
 */
#ifndef TRK_METRICS_H_INCLUDED
#define TRK_METRICS_H_INCLUDED

#include <stdatomic.h>
#include <stdint.h>
#include "ts_proto.h"

#define TRK_MET_BUCKETS_N   14      /* latency bounds, trk_met_le_us */
#define TRK_MET_STATUS_N    12      /* TS_OK..TS_ERR_INTERNAL, other */

typedef struct {
    _Atomic uint64_t reqs[TS_MSG_MAX_][TRK_MET_STATUS_N];
    /* per bucket (not cumulative); [TRK_MET_BUCKETS_N] = above the last */
    _Atomic uint64_t lat[TS_MSG_MAX_][TRK_MET_BUCKETS_N + 1];
    _Atomic uint64_t lat_sum_us[TS_MSG_MAX_];
    _Atomic uint64_t commit[TRK_MET_BUCKETS_N + 1];
    _Atomic uint64_t commit_sum_us;
    _Atomic int32_t  http_pid;       /* the trk-http process, 0 = none */
    _Atomic uint32_t http_starts;    /* times it was (re)started */
} trk_reqs_sh_t;

/* The upper bounds of the latency buckets, microseconds. */
extern const uint32_t trk_met_le_us[TRK_MET_BUCKETS_N];

/* One request of type answered by the reply payload (len bytes, which
 * begins with its u16 status) after us microseconds.  m may be NULL. */
void trk_metrics_note(trk_reqs_sh_t *m, uint8_t type, const uint8_t *reply,
                      size_t len, int64_t us);
/* One group commit that took us microseconds. */
void trk_metrics_commit(trk_reqs_sh_t *m, int64_t us);
/* The sum of every request counted (all types and results). */
uint64_t trk_metrics_total(const trk_reqs_sh_t *m);

#endif
