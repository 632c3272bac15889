/*
 * node_rate.c -- the node's bandwidth caps: where they live in the
 * segment and how they are changed.
 *
 * Purpose: one upload and one download token bucket (shm/ts_rate.h) in
 * the node's segment (table NODE_T_RATE), shared by every uploader and
 * downloader worker, so a cap is node-wide whatever the number of
 * workers, links and sources.  node_start sets them from the options;
 * node_rate_set changes them while the node runs (the client's `rate`
 * command).
 *
 * Locking: none (the buckets are lock-free).  Crash behaviour: a cache;
 * the node sets the caps again whenever it starts.
 */
#include "ts_config.h"
#include "node.h"


node_rate_sh_t *
node_rate(const ts_shm_t *s)
{
    return ts_shm_table(s, NODE_T_RATE, NULL, NULL);
}


int
node_rate_set(const ts_shm_t *s, int64_t up_Bps, int64_t down_Bps)
{
    node_rate_sh_t *r = node_rate(s);

    if (r == NULL) {
        return -1;
    }
    if (up_Bps >= 0) {
        ts_rate_set(&r->up, (uint64_t) up_Bps, 0);
    }
    if (down_Bps >= 0) {
        ts_rate_set(&r->down, (uint64_t) down_Bps, 0);
    }
    return 0;
}


int
node_rate_get(const ts_shm_t *s, node_rate_now_t *out)
{
    node_rate_sh_t *r = node_rate(s);

    if (r == NULL) {
        return -1;
    }
    out->up_Bps = atomic_load(&r->up.rate_Bps);
    out->down_Bps = atomic_load(&r->down.rate_Bps);
    out->up_total_B = atomic_load(&r->up.taken_B);
    out->down_total_B = atomic_load(&r->down.taken_B);
    out->at_ns = ts_rate_now_ns();
    return 0;
}


int
node_rate_wait_ms(int64_t wait_ns)
{
    int64_t ms = (wait_ns + 999999) / 1000000;

    if (ms < 1) {
        return 1;
    }
    return ms > TS_RATE_WAIT_MAX_MS ? TS_RATE_WAIT_MAX_MS : (int) ms;
}
