/*
 * trk_snap.c -- the sending side of a streamed snapshot
 * (docs/REPLICATION.md "Sync protocol"): the replicated keys are listed
 * in one read traverse and their envelopes read batch by batch, so the
 * sender holds the key list plus one batch, not the whole database.
 *
 * Why this is a consistent snapshot: the VV is read before the listing,
 * so every op it counts is in the state the listing and the later reads
 * see; a value read later is at least as new (merging is idempotent and
 * commutative, so "newer" is never wrong); a key made after the listing
 * belongs to an op above that VV, which the delta push sends after the
 * snapshot; a key gone before its read (a collected tombstone) is
 * skipped, as it would be absent from a later listing too.
 *
 * Locking: plain reads of the store's tdb handle (no transaction); the
 * caller serialises use of the handle.  The traverse takes tdb's read
 * lock for its duration (keys only: a short walk).
 *
 * Crash behaviour: writes nothing; a killed sender leaves the receiver
 * marked fresh, and the next link sends a snapshot again.
 */
#include <stdlib.h>
#include <string.h>
#include <tdb.h>

#include "ts_config.h"
#include "trk_store.h"
#include "trk_merge.h"
#include "trk_snap.h"


static int
snap_list(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    trk_snap_t *s = arg;

    (void) tdb;
    (void) v;
    if (!trk_key_replicated(k.dptr, k.dsize)) {
        return 0;
    }
    if (k.dsize > TS_SYNC_SNAP_KEY_MAX_B) {
        return 0;               /* cannot be stored (key limits); never sent */
    }
    ts_put_u16(&s->keys, (uint16_t) k.dsize);
    ts_put_raw(&s->keys, k.dptr, k.dsize);
    s->n++;
    return s->keys.err ? -1 : 0;
}


int
trk_snap_open(trk_store_t *st, trk_snap_t *s, trk_vv_t *vv)
{
    memset(s, 0, sizeof(*s));
    ts_wbuf_init(&s->keys);
    /* the VV first: the state read after it holds at least its ops */
    if (trk_vv_load(st, vv) != 0
        || tdb_traverse_read(trk_store_tdb(st), snap_list, s) < 0
        || s->keys.err)
    {
        trk_snap_close(s);
        return -1;
    }
    return 0;
}


int
trk_snap_next(trk_store_t *st, trk_snap_t *s, ts_wbuf_t *b, uint32_t *n,
              size_t max_b, uint32_t max_n, size_t frame_b)
{
    ts_rbuf_t  r;
    TDB_DATA   k, v;
    size_t     start = b->len;
    uint16_t   kl;

    *n = 0;
    while (s->pos < s->keys.len && *n < max_n && b->len - start < max_b) {
        ts_rbuf_init(&r, s->keys.data + s->pos, s->keys.len - s->pos);
        kl = ts_get_u16(&r);
        k.dptr = (unsigned char *) s->keys.data + s->pos + 2;
        k.dsize = kl;
        v = tdb_fetch(trk_store_tdb(st), k);
        if (v.dptr == NULL) {
            s->pos += 2 + (size_t) kl;      /* gone since the listing */
            continue;
        }
        if (*n > 0 && b->len + 8 + kl + v.dsize > frame_b) {
            free(v.dptr);
            break;                          /* next batch */
        }
        if (b->len + 8 + kl + v.dsize > frame_b) {
            free(v.dptr);                   /* cannot be: records are */
            return -1;                      /* bounded by the frame */
        }
        ts_put_blob(b, k.dptr, kl);
        ts_put_blob(b, v.dptr, (uint32_t) v.dsize);
        free(v.dptr);
        s->pos += 2 + (size_t) kl;
        (*n)++;
        s->sent++;
        if (b->err) {
            return -1;
        }
    }
    return s->pos >= s->keys.len ? 1 : 0;
}


void
trk_snap_close(trk_snap_t *s)
{
    ts_wbuf_free(&s->keys);
    memset(s, 0, sizeof(*s));
}
