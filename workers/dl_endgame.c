/*
 * dl_endgame.c -- the end of a download: the last missing chunks asked of
 * a second peer, and the loser's reply cancelled.
 *
 * Purpose: when every missing chunk is claimed (on its way) and no more
 * than TS_DL_ENDGAME_N are missing, a download's end waits on the slowest
 * of the peers those chunks were asked of.  A link of ours with room
 * then asks another holder for the same chunk (a leecher rather than a
 * seeder when one has it, as dl_pick_chunk does): a copy of the GET
 * (dl_req_t.dup) that holds no claim, whose verified bytes are written
 * and marked done like any other (the done bit is set once, whoever is
 * first).  Never to the peer the first request went to: ours is in our
 * links' queues, and a source another worker has requests at is left
 * out for a chunk another worker claimed.  Each chunk is copied once per
 * worker (loc->eg).  The reply
 * that loses is cancelled: a link whose only request is a GET for a chunk
 * that came from elsewhere meanwhile, with more than half of the reply
 * still to come, is closed quietly (no error, no backoff) and its bytes
 * are never read; a loser queued behind other requests is read and
 * dropped (the protocol answers in order).
 *
 * Locking: none; the claim words are only read here.  Crash behaviour: a
 * copy holds no claim and counts in the in-flight counts like any GET, so
 * node_reclaim() undoes a killed worker's copies as it does the rest.
 */
#include <string.h>

#include "ts_log.h"
#include "dl_int.h"

/* The source of our own GET for chunk c of download i, or -1. */
static int
dl_eg_mine(const dl_t *w, int i, uint32_t c, uint32_t id)
{
    int j, q;

    for (j = 0; j < TS_DL_LINKS_N; j++) {
        const dl_link_t *k = w->conns[j];

        for (q = 0; k != NULL && q < k->qn; q++) {
            const dl_req_t *r = &k->q[(k->qhead + q) % DL_LINK_QUEUE_N];

            if (r->kind == REQ_GET && r->dl == i && r->dl_id == id
                && r->chunk == c)
            {
                return r->src;
            }
        }
    }
    return -1;
}

/* 1 if another downloader worker of the node has a GET of download i
 * in flight at source s: a chunk whose claim is not ours may be there. */
static int
dl_eg_others_at(const dl_t *w, int i, int s)
{
    int slot;

    for (slot = 0; slot < TS_SUP_WORKERS_MAX_N; slot++) {
        _Atomic uint32_t *col = node_slot_inflight(w->shm, slot, i);

        if (slot != w->slot && col != NULL && atomic_load(&col[s]) > 0) {
            return 1;
        }
    }
    return 0;
}

static int
dl_eg_copied(const dl_local_t *l, uint32_t c)
{
    uint32_t j;

    for (j = 0; j < l->neg; j++) {
        if (l->eg[j] == c) {
            return 1;
        }
    }
    return 0;
}

/* One endgame copy for download i on an eligible link (elig, ks, maps as
 * dl_pick_links left them).  1 if sent, 0 if none is due. */
int
dl_eg_pick(dl_t *w, int i, uint32_t elig, dl_link_t **ks,
           _Atomic uint64_t **maps)
{
    dl_local_t       *l = &w->loc[i];
    node_dl_sh_t     *d = &w->dls[i];
    _Atomic uint64_t *done = node_dl_done(w->shm, i);
    _Atomic uint64_t *claims = node_dl_claims(w->shm, i);
    uint32_t          wd, c, e, missing;
    uint64_t          bits, cost, bcost;
    int               s, bs, busy, theirs;

    missing = l->nchunks - atomic_load(&d->chunks_done);
    if (missing == 0 || missing > TS_DL_ENDGAME_N
        || l->neg >= TS_DL_ENDGAME_N)
    {
        return 0;
    }
    for (wd = 0; wd < (l->nchunks + 63) / 64; wd++) {
        bits = ~atomic_load(&done[wd]);
        while (bits) {
            c = wd * 64 + (uint32_t) __builtin_ctzll(bits);
            bits &= bits - 1;
            if (c >= l->nchunks) {
                break;
            }
            if (atomic_load(&claims[c]) == 0 || dl_eg_copied(l, c)
                || dl_blk_has(w, i, c))
            {
                continue;       /* an assembly asks its blocks twice */
            }
            busy = dl_eg_mine(w, i, c, l->id);
            theirs = atomic_load(&claims[c]) != w->me;
            bs = -1;
            bcost = UINT64_MAX;
            for (e = elig; e; e &= e - 1) {
                s = __builtin_ctz(e);
                if (s == busy || !node_bit_test(maps[s], c)
                    || (theirs && dl_eg_others_at(w, i, s))
                    || (atomic_load(&d->src[s].complete) && l->npartial > 0
                        && l->avail[c] > l->ncomplete))
                {
                    continue;   /* a leecher has it: spare the seeder */
                }
                cost = dl_pick_cost(&d->src[s]);
                if (cost < bcost) {
                    bcost = cost;
                    bs = s;
                }
            }
            if (bs < 0) {
                continue;
            }
            l->eg[l->neg++] = c;
            ts_debug("endgame: chunk %u of %s asked of a second peer", c,
                     l->name);
            return dl_pick_send(w, i, bs, ks[bs], c, 1);
        }
    }
    return 0;
}

/* 1 if the download r was sent for is no longer being fetched: its entry
 * was reused, or it is finishing, done or failed. */
static int
dl_eg_ended(dl_t *w, const dl_req_t *r)
{
    uint32_t st = atomic_load(&w->dls[r->dl].state);

    return atomic_load(&w->dls[r->dl].id) != r->dl_id
           || (st != NODE_DL_ACTIVE && st != NODE_DL_PAUSED);
}

/* Cancels the replies still to come on k when every request queued on
 * it is a GET whose chunk came from another peer meanwhile or whose
 * download has ended (done, cancelled, failed), and most of the head
 * reply is still to come.  1 if k was closed. */
int
dl_eg_cancel(dl_t *w, dl_link_t *k)
{
    const dl_req_t *r;
    size_t          left;
    int             q;

    if (k->c == NULL || k->hs || k->qn == 0) {
        return 0;
    }
    for (q = 0; q < k->qn; q++) {
        r = &k->q[(k->qhead + q) % DL_LINK_QUEUE_N];
        if (r->kind != REQ_GET) {
            return 0;
        }
        if (dl_eg_ended(w, r)) {
            continue;       /* finished, cancelled or failed meanwhile */
        } else if (!node_bit_test(node_dl_done(w->shm, r->dl), r->chunk)
                   && !dl_blk_moot(w, r))
        {
            return 0;
        }
    }
    r = &k->q[k->qhead];
    left = k->rx == RX_DATA ? k->need : r->len;
    if (r->blk > 0 && k->qn == 1 && r->len < TS_CHUNK_B) {
        /* one block: a reconnect costs more than reading it */
        return 0;
    }
    if (k->qn == 1 && left * 2 <= r->len) {
        return 0;       /* nearly here: cheaper to read than to reconnect */
    }
    if (dl_eg_ended(w, r)) {
        ts_info("peer %s: the download of chunk %u ended before its reply "
                "came; the reply is cancelled (%d request%s dropped)",
                k->addr, r->chunk, k->qn, k->qn == 1 ? "" : "s");
    } else {
        ts_info("peer %s: chunk %u of %s came from another peer first; "
                "its reply is cancelled (%d request%s dropped)", k->addr,
                r->chunk, w->loc[r->dl].name, k->qn, k->qn == 1 ? "" : "s");
    }
    dl_link_close(w, k, 0, NULL);
    return 1;
}
