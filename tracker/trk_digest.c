/*
 * trk_digest.c -- walks over the replicated state: every replicated key
 * with its envelope (snapshots), and the state digest computed from
 * scratch (tests and checks; STATUS reads the maintained one).
 *
 * Locking: read traverses of a plain tdb handle; the caller's thread
 * owns it.
 *
 * Crash behaviour: writes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tdb.h>

#include "ts_crypto.h"
#include "ts_log.h"
#include "trk_oplog.h"
#include "trk_index_int.h"

typedef struct {
    int (*fn)(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
              void *arg);
    void *arg;
} rep_walk_t;


static int
rep_walk(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    rep_walk_t *w = arg;

    (void) tdb;
    if (!trk_key_replicated(k.dptr, k.dsize)) {
        return 0;
    }
    return w->fn(k.dptr, k.dsize, v.dptr, v.dsize, w->arg);
}


int
trk_log_each_replicated(struct tdb_context *tdb,
                        int (*fn)(const uint8_t *k, size_t kl,
                                  const uint8_t *v, size_t vl, void *arg),
                        void *arg)
{
    rep_walk_t w;

    w.fn = fn;
    w.arg = arg;
    return tdb_traverse_read(tdb, rep_walk, &w) < 0 ? -1 : 0;
}


/* The digest from scratch (a walk): the same value trk_idx_status()
 * keeps incrementally -- sha256("tessera-digest-2", the sum mod 2^256 of
 * the per-key hashes, u64 number of keys).  For tests and checks. */
typedef struct {
    uint8_t  sum[32];
    uint64_t n;
    int      err;
} dg_t;


static int
dg_add(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
    dg_t     *d = arg;
    TDB_DATA  env;
    uint8_t   h[32];

    env.dptr = (unsigned char *) v;
    env.dsize = vl;
    if (trk_idx_key_hash(k, kl, env, h) != 0) {
        d->err = 1;
        return -1;
    }
    trk_idx_sum(d->sum, h, 1);
    d->n++;
    return 0;
}


int
trk_log_digest(struct tdb_context *tdb, uint8_t out[32])
{
    dg_t d;

    memset(&d, 0, sizeof(d));
    if (trk_log_each_replicated(tdb, dg_add, &d) != 0 || d.err) {
        return -1;
    }
    return trk_idx_digest_of(d.sum, d.n, out);
}
