/*
 * trk_metrics.c -- the request counters in the tracker's shm (see
 * trk_metrics.h): what a worker adds per request and per group commit.
 *
 * Locking: relaxed atomic adds only; never a lock, never a wait.
 *
 * Crash behaviour: a worker killed between two adds leaves a count
 * without its latency sample; nothing else.
 */
#include "ts_buf.h"
#include "trk_metrics.h"

const uint32_t trk_met_le_us[TRK_MET_BUCKETS_N] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
    500000, 1000000, 2500000
};


static int
bucket(int64_t us)
{
    int i;

    for (i = 0; i < TRK_MET_BUCKETS_N; i++) {
        if (us <= (int64_t) trk_met_le_us[i]) {
            return i;
        }
    }
    return TRK_MET_BUCKETS_N;
}


void
trk_metrics_note(trk_reqs_sh_t *m, uint8_t type, const uint8_t *reply,
                 size_t len, int64_t us)
{
    ts_rbuf_t r;
    unsigned  st;

    if (m == NULL || type >= TS_MSG_MAX_) {
        return;
    }
    ts_rbuf_init(&r, reply, len);
    st = ts_get_u16(&r);
    if (r.err || st >= TRK_MET_STATUS_N - 1) {
        st = TRK_MET_STATUS_N - 1;
    }
    if (us < 0) {
        us = 0;
    }
    atomic_fetch_add_explicit(&m->reqs[type][st], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->lat[type][bucket(us)], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&m->lat_sum_us[type], (uint64_t) us,
                              memory_order_relaxed);
}


void
trk_metrics_commit(trk_reqs_sh_t *m, int64_t us)
{
    if (m == NULL) {
        return;
    }
    if (us < 0) {
        us = 0;
    }
    atomic_fetch_add_explicit(&m->commit[bucket(us)], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&m->commit_sum_us, (uint64_t) us,
                              memory_order_relaxed);
}


uint64_t
trk_metrics_total(const trk_reqs_sh_t *m)
{
    uint64_t n = 0;
    int      t, s;

    if (m == NULL) {
        return 0;
    }
    for (t = 0; t < TS_MSG_MAX_; t++) {
        for (s = 0; s < TRK_MET_STATUS_N; s++) {
            n += atomic_load_explicit(&m->reqs[t][s], memory_order_relaxed);
        }
    }
    return n;
}
