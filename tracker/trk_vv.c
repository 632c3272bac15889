/*
 * trk_vv.c -- the hybrid logical clock and version vectors: pure
 * functions, no storage (the op log keeps both durable, trk_oplog.c).
 *
 * Purpose: an HLC value is 48-bit wall ms << 16 | counter, strictly
 * increasing per tracker; a version vector holds the highest op seq
 * applied per origin, encoded for SYNC and printed for STATUS.
 *
 * Locking: the HLC is one atomic word in the tracker shm, advanced by
 * compare-and-swap only; the rest works on caller memory.
 *
 * Crash behaviour: nothing persistent here.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "ts_clock.h"
#include "trk_oplog.h"

uint64_t
trk_hlc_next(_Atomic uint64_t *h)
{
    uint64_t old, wall, nv;

    old = atomic_load(h);
    do {
        wall = (uint64_t) ts_wall_ms() << 16;
        nv = wall > old ? wall : old + 1;
    } while (!atomic_compare_exchange_weak(h, &old, nv));
    return nv;
}


void
trk_hlc_observe(_Atomic uint64_t *h, uint64_t seen)
{
    uint64_t old = atomic_load(h);

    while (seen > old && !atomic_compare_exchange_weak(h, &old, seen)) {
    }
}

void
trk_vv_encode(ts_wbuf_t *b, const trk_vv_t *vv)
{
    int      o;
    uint32_t n = 0;

    for (o = 1; o < TRK_ORIGINS_N; o++) {
        n += vv->seq[o] != 0;
    }
    ts_put_u32(b, n);
    for (o = 1; o < TRK_ORIGINS_N; o++) {
        if (vv->seq[o] != 0) {
            ts_put_u8(b, (uint8_t) o);
            ts_put_u64(b, vv->seq[o]);
        }
    }
}


int
trk_vv_decode(ts_rbuf_t *r, trk_vv_t *vv)
{
    uint32_t n, i;
    uint8_t  o;
    uint64_t s;

    memset(vv, 0, sizeof(*vv));
    n = ts_get_u32(r);
    if (r->err || n >= TRK_ORIGINS_N) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        o = ts_get_u8(r);
        s = ts_get_u64(r);
        if (r->err || o == 0 || o >= TRK_ORIGINS_N) {
            return -1;
        }
        vv->seq[o] = s;
    }
    return 0;
}


void
trk_vv_format(const trk_vv_t *vv, char *out, size_t outsz)
{
    size_t len = 0;
    int    o, n;

    out[0] = '\0';
    for (o = 1; o < TRK_ORIGINS_N; o++) {
        if (vv->seq[o] == 0) {
            continue;
        }
        n = snprintf(out + len, outsz - len, "%s%d:%llu", len ? "," : "", o,
                     (unsigned long long) vv->seq[o]);
        if (n < 0 || (size_t) n >= outsz - len) {
            return;
        }
        len += (size_t) n;
    }
}

