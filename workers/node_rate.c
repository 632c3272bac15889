/*
 * node_rate.c -- the node's bandwidth caps: where they live in the
 * segment and how they are changed.
 *
 * Purpose: one upload and one download token bucket (shm/ts_rate.h) in
 * the node's segment (table NODE_T_RATE), shared by every uploader and
 * downloader worker, so a cap is node-wide whatever the number of
 * workers, links and sources.  node_start sets them from the options;
 * node_rate_set changes them while the node runs (the client's `rate`
 * command).  node_rate_credit is a link's share: bytes reserved ahead
 * (ts_rate_reserve), so links of different workers are served in the
 * order they asked, whoever the scheduler wakes first.
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


void
node_rate_credit_drop(ts_rate_sh_t *b, node_rate_credit_t *c)
{
    if (c->left_B > 0) {
        ts_rate_refund(b, c->left_B);
    }
    c->left_B = 0;
}


int64_t
node_rate_credit(ts_rate_sh_t *b, node_rate_credit_t *c, size_t want,
                 int64_t now_ns)
{
    uint64_t  n, rate;

    rate = atomic_load_explicit(&b->rate_Bps, memory_order_relaxed);
    if (c->left_B > 0 && c->due_ns > now_ns && rate != c->at_Bps) {
        /* the cap changed while this link waited: ask again at the new
         * rate rather than wait out the old one */
        node_rate_credit_drop(b, c);
    }
    if (c->left_B == 0) {
        n = want;
        if (rate != 0 && n > TS_RATE_SLICE_B) {
            n = TS_RATE_SLICE_B;
        }
        /* reserved, not taken once there: the links of all workers are
         * served in the order they asked */
        c->due_ns = now_ns + ts_rate_reserve(b, &n, now_ns, &c->at_Bps);
        c->left_B = (size_t) n;
    }
    return c->due_ns > now_ns ? c->due_ns - now_ns : 0;
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
