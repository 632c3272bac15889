/*
 * up_have.c -- the uploader's side of pushed holdings: a downloader that
 * asked for the map of a file this node is still downloading is told of
 * every chunk of it the node verifies afterwards (PEER_HAVE), at once,
 * on the same link, instead of learning it at its next map poll.
 *
 * Purpose: a PEER_MAP with TS_FF_HAVE (up_req_t want_have) that is
 * answered from a download in progress subscribes the link to that
 * download (up to TS_UP_HAVE_SUBS_N per link; a full table means no
 * subscription, and the reply does not echo the flag, so the asker keeps
 * polling).  The subscription remembers a position in the download's
 * ring of lately verified chunks (node_dl_sh_t have_ring), taken before
 * the map's bitmap is built, so every chunk is in the map or pushed
 * (some in both).  At every reply boundary (up_serve_pump) the link
 * sends what the ring gained since, at most TS_PEER_HAVE_MAX_N chunks a
 * frame, before the next answer; an idle link is woken for it by a timer
 * that runs every TS_UP_HAVE_CHECK_MS while any link subscribes.  A
 * subscription ends with its link, when the download entry is reused or
 * no longer servable, once a finished download's last chunks went out,
 * or when the link's authorization for the file has expired.  A reader
 * that fell more than the ring behind skips what was overwritten, and a
 * slot reserved by a downloader killed before it
 * wrote it is skipped after TS_UP_HAVE_STALL_MS: the asker's slow map
 * poll (TS_DL_MAP_PUSHED_MS) covers both.
 *
 * Locking: none; the ring is read with atomic loads (each slot carries
 * its sequence), subscriptions belong to the link's worker.
 *
 * Crash behaviour: a killed uploader's links and subscriptions die with
 * it; the askers see the link close and poll again.
 */
#include <string.h>

#include "ts_clock.h"
#include "ts_log.h"
#include "up_int.h"

static int
up_have_servable(node_dl_sh_t *d)
{
    uint32_t st = atomic_load(&d->state);

    return st == NODE_DL_ACTIVE || st == NODE_DL_FINALIZING
           || st == NODE_DL_DONE;
}

int
up_have_sub(up_t *u, up_link_t *k, const up_req_t *r, int dl, uint32_t id)
{
    node_dl_sh_t  *d = &node_dls(u->shm)[dl];
    up_have_sub_t *s = NULL;
    int            i;

    for (i = 0; i < TS_UP_HAVE_SUBS_N; i++) {
        up_have_sub_t *e = &k->have[i];

        if (e->used && e->dl == dl && e->dl_id == id) {
            s = e;              /* asked again: a fresh map, a fresh start */
            break;
        }
        if (s == NULL && !e->used) {
            s = e;
        }
    }
    if (s == NULL) {
        return 0;               /* full: this one keeps polling */
    }
    s->used = 1;
    s->dl = dl;
    s->dl_id = id;
    s->seq = atomic_load(&d->have_seq);
    s->stall_ms = 0;
    memcpy(s->group, r->group, sizeof(s->group));
    memcpy(s->name, r->name, sizeof(s->name));
    if (!ts_ev_timer_armed(&u->have_timer)) {
        (void) ts_ev_timer_in(u->ev, &u->have_timer, TS_UP_HAVE_CHECK_MS);
    }
    return 1;
}

/* The chunks sub s has not pushed yet, into idx (at most
 * TS_PEER_HAVE_MAX_N); their count.  Ends s if its download is gone. */
static uint32_t
up_have_collect(up_t *u, up_have_sub_t *s, uint32_t *idx, int64_t now)
{
    node_dl_sh_t *d = &node_dls(u->shm)[s->dl];
    uint32_t      head, tag, n = 0;
    uint64_t      e;
    int           over;

    if (atomic_load(&d->id) != s->dl_id || !up_have_servable(d)) {
        s->used = 0;
        return 0;
    }
    /* read before the sequence: a download that is no longer ACTIVE
     * verified its last chunk (and noted it) before it left ACTIVE */
    over = atomic_load(&d->state) != NODE_DL_ACTIVE;
    head = atomic_load(&d->have_seq);
    if (head - s->seq > TS_NODE_HAVE_RING_N) {
        /* fell behind the ring: what was overwritten is the poll's */
        s->seq = head - TS_NODE_HAVE_RING_N;
    }
    while (s->seq != head && n < TS_PEER_HAVE_MAX_N) {
        e = atomic_load(&d->have_ring[s->seq % TS_NODE_HAVE_RING_N]);
        tag = (uint32_t) (e >> 32);
        if (tag != s->seq + 1) {
            if ((int32_t) (tag - (s->seq + 1)) < 0) {
                /* reserved, not written yet: wait for it a while */
                if (s->stall_ms == 0) {
                    s->stall_ms = now;
                }
                if (now - s->stall_ms < TS_UP_HAVE_STALL_MS) {
                    break;
                }
            }
            s->stall_ms = 0;
            s->seq++;
            continue;
        }
        s->stall_ms = 0;
        idx[n++] = (uint32_t) e;
        s->seq++;
    }
    if (over && s->seq == head) {
        s->used = 0;            /* all pushed; nothing more will come */
    }
    return n;
}

int
up_have_emit(up_t *u, up_link_t *k)
{
    static const uint8_t zero[TS_FRAME_HDR_B];
    uint32_t             idx[TS_PEER_HAVE_MAX_N], n;
    int64_t              now = ts_now_ms();
    int                  i;

    for (i = 0; i < TS_UP_HAVE_SUBS_N; i++) {
        up_have_sub_t *s = &k->have[i];

        if (!s->used) {
            continue;
        }
        if (!up_auth_ok(&k->auth, s->group, s->name, ts_wall_ms())) {
            s->used = 0;        /* its ticket expired: nothing more */
            continue;
        }
        n = up_have_collect(u, s, idx, now);
        if (n == 0) {
            continue;
        }
        ts_wbuf_reset(&k->out);
        ts_put_raw(&k->out, zero, sizeof(zero));
        peer_msg_have_encode(&k->out, s->group, s->name, idx, n);
        if (k->out.err) {
            /* out of memory: these few are the poll's */
            ts_wbuf_reset(&k->out);
            return 0;
        }
        ts_frame_hdr_make(k->out.data, TS_MSG_PEER_HAVE, 0, 0,
                          (uint32_t) (k->out.len - TS_FRAME_HDR_B));
        atomic_fetch_add(&u->st->haves_sent, n);
        return 1;
    }
    return 0;
}

/* 1 if a subscription of k has chunks to push (or waits on a slot);
 * one whose download is gone, or over with everything pushed, ends. */
static int
up_have_due(up_t *u, up_link_t *k, int *any)
{
    int i, due = 0;

    for (i = 0; i < TS_UP_HAVE_SUBS_N; i++) {
        up_have_sub_t *s = &k->have[i];
        node_dl_sh_t  *d = &node_dls(u->shm)[s->dl];
        int            over;

        if (!s->used) {
            continue;
        }
        over = atomic_load(&d->id) != s->dl_id || !up_have_servable(d)
               || atomic_load(&d->state) != NODE_DL_ACTIVE;
        if (atomic_load(&d->have_seq) != s->seq) {
            due = 1;
        } else if (over) {
            s->used = 0;
            continue;
        }
        *any = 1;
    }
    return due;
}

/* Every TS_UP_HAVE_CHECK_MS while a link subscribes: a link idle at a
 * reply boundary with chunks to push is handled again (its pump sends
 * them); a busy one sends them at its next boundary anyway. */
static void
up_have_tick(ts_ev_t *ev, ts_ev_timer_t *t)
{
    up_t      *u = t->data;
    up_link_t *k;
    int        i, any = 0;

    for (i = 0; i < TS_NODE_PEER_CONNS_N; i++) {
        k = u->conns[i];
        if (k != NULL && k->ready && up_have_due(u, k, &any)
            && k->out_off >= k->out.len && k->file_left == 0)
        {
            ts_ev_again(ev, &k->io);
        }
    }
    if (any) {
        (void) ts_ev_timer_in(ev, t, TS_UP_HAVE_CHECK_MS);
    }
}

void
up_have_init(up_t *u)
{
    ts_ev_timer_init(&u->have_timer, up_have_tick, u);
}

void
up_have_ack(ts_wbuf_t *b)
{
    ts_frame_hdr_t h;

    if (b->err || b->len < TS_FRAME_HDR_B
        || ts_frame_hdr_decode(b->data, &h, UINT32_MAX) != 0)
    {
        return;
    }
    h.flags |= TS_FF_HAVE;
    ts_frame_hdr_encode(b->data, &h);
}
