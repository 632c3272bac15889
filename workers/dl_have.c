/*
 * dl_have.c -- the downloader's side of pushed holdings: PEER_HAVE
 * frames a partial source sends on its own when it verified new chunks.
 *
 * Purpose: every PEER_MAP goes out with TS_FF_HAVE (dl_link.c); a peer
 * that echoes the flag on its OK reply pushes, on this link, the chunks
 * of that file it verifies from then on (common/ts_proto.h), so what the
 * other leechers hold is known about a round trip after they hold it,
 * not up to TS_DL_MAP_REFRESH_MS later.  Such a source is marked in shm
 * (push_owner = this worker) and its map is polled only every
 * TS_DL_MAP_PUSHED_MS, the fallback for a push that went missing; when
 * the link closes (or this worker dies: node_reclaim) the mark goes and
 * the usual poll resumes.  A PEER_HAVE arrives between whole replies,
 * never inside one; it is framed here (RX_HAVE, into the link's small
 * buffer), decoded by workers/peer_msg.h (bounded count, indices within
 * the largest file, valid names; anything else closes the link) and only
 * sets bits of that source's map: a hint the GET's answer may still
 * refute (dl_recv.c clears the bit then).
 *
 * Locking: none; map bits are set by fetch_or, push_owner is a plain
 * atomic (compare-exchange when it is cleared).
 *
 * Crash behaviour: nothing but map bits and the mark; see node_reclaim.
 */
#include <string.h>

#include "ts_log.h"
#include "dl_int.h"

int
dl_have_frame(dl_t *w, dl_link_t *k)
{
    if (peer_msg_have_hdr_check(&k->fh) != 0) {
        dl_link_close(w, k, 1, "bad PEER_HAVE");
        return -1;
    }
    k->rx = RX_HAVE;
    k->got = 0;
    k->need = k->fh.len;
    return 0;
}

/* The download of (group, name) active here, or -1. */
static int
dl_have_find(const dl_t *w, const peer_msg_have_t *h)
{
    int i;

    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        const dl_local_t *l = &w->loc[i];

        if (l->active && atomic_load(&w->dls[i].id) == l->id
            && strcmp(l->group, h->group) == 0
            && strcmp(l->name, h->name) == 0)
        {
            return i;
        }
    }
    return -1;
}

int
dl_have_recv(dl_t *w, dl_link_t *k)
{
    peer_msg_have_t  h;
    dl_local_t      *l;
    uint32_t         j, n, set = 0;
    int              i, s;

    k->rx = RX_HDR;
    k->got = 0;
    if (peer_msg_have_decode(k->small, k->fh.len, &h) != 0) {
        dl_link_close(w, k, 1, "bad PEER_HAVE");
        return -1;
    }
    i = dl_have_find(w, &h);
    if (i < 0) {
        return 0;               /* a download that ended meanwhile */
    }
    l = &w->loc[i];
    for (s = 0; s < TS_NODE_SOURCES_N; s++) {
        node_src_sh_t    *src = &w->dls[i].src[s];
        _Atomic uint64_t *map;

        if (atomic_load(&src->state) != NODE_SRC_LIVE
            || atomic_load(&src->complete) || !dl_link_is_src(src, k))
        {
            continue;
        }
        map = node_dl_map(w->shm, i, s);
        for (j = 0, n = 0; j < h.n; j++) {
            if (h.idx[j] < l->nchunks) {
                node_bit_set(map, h.idx[j]);
                n++;
            }
        }
        atomic_fetch_add(&src->pushed, n);
        set += n;
    }
    if (set > 0) {
        l->dirty = 1;
    }
    return 0;
}

void
dl_have_map_reply(dl_t *w, const dl_link_t *k, const dl_req_t *r)
{
    node_src_sh_t *src = &w->dls[r->dl].src[r->src];

    atomic_store(&src->push_owner,
                 (k->fh.flags & TS_FF_HAVE) ? (uint64_t) w->me : 0);
}

void
dl_have_link_closed(dl_t *w, const dl_link_t *k)
{
    int      i, s;
    uint64_t me;

    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        if (!w->loc[i].active) {
            continue;
        }
        for (s = 0; s < TS_NODE_SOURCES_N; s++) {
            node_src_sh_t *src = &w->dls[i].src[s];

            me = (uint64_t) w->me;
            if (atomic_load(&src->push_owner) == me
                && dl_link_is_src(src, k))
            {
                (void) atomic_compare_exchange_strong(&src->push_owner, &me,
                                                      0);
            }
        }
    }
}
