/*
 * trk_snap.h -- the sending side of a streamed snapshot: a cursor over
 * the replicated keys, read in bounded batches (trk_snap.c).
 *
 * Locking: one thread per trk_store_t handle at a time (the sync process
 * calls these under its store mutex, never across network I/O).
 */
#ifndef TRK_SNAP_H_INCLUDED
#define TRK_SNAP_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "ts_buf.h"
#include "trk_oplog.h"

typedef struct {
    ts_wbuf_t keys;     /* the key list: n x (u16 length, key bytes) */
    size_t    pos;      /* offset in keys of the next key to send */
    size_t    n;        /* keys listed */
    size_t    sent;     /* records put in batches so far */
} trk_snap_t;

/* Starts a snapshot: *vv gets this tracker's VV, then one read traverse
 * lists every replicated key (keys only: the values are read batch by
 * batch).  0, or -1 (database error or no memory; s is freed). */
int  trk_snap_open(trk_store_t *st, trk_snap_t *s, trk_vv_t *vv);
/* Appends to b the next records (blob key, blob envelope) up to max_n
 * records or until b passes max_b bytes (one record always fits if the
 * frame allows it: frame_b), *n of them; a key gone since the listing is
 * skipped.  1 when no key is left after this batch, 0 if some are, -1 on
 * error. */
int  trk_snap_next(trk_store_t *st, trk_snap_t *s, ts_wbuf_t *b,
                   uint32_t *n, size_t max_b, uint32_t max_n,
                   size_t frame_b);
void trk_snap_close(trk_snap_t *s);

#endif
