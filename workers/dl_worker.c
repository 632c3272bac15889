/*
 * dl_worker.c -- the downloader worker of a client node (dl_main): its
 * event loop.
 *
 * Purpose: one event loop (net/ts_ev.h: each link's fd with its callback,
 * the supervisor's stop fd) per worker process.  It keeps one persistent
 * link per peer identity (dl_link.c) for the peers peer affinity gives it
 * (dl_pick_owned), pipelines as many PEER_GETs on each as its measured
 * rate x RTT asks for (dl_win.c) and at most TS_DL_WORKER_INFLIGHT_MAX_N
 * in total, and
 * for every ACTIVE download in the node's segment: refreshes the sources'
 * chunk maps, re-verifies "maybe" chunks left on disk by a crash, picks
 * the rarest missing chunk that no one has claimed and sends it to the
 * least-loaded holder (dl_pick.c), verifies every received chunk before
 * writing it into the .part (dl_recv.c), hashes the file while it arrives
 * (dl_frontier.c) and finally renames it into place (dl_final.c).  This
 * file holds the loop itself: init, the epoll dispatch, the scheduling
 * pass, the link deadlines (connect, handshake, no byte back, a trickling
 * reply) and the cleanup.  dl_int.h lists the modules.
 *
 * ctx->arg points to the node_t (node_start's supervisor copy): its shm
 * and its opts (certificate and key paths, the slow-reply limit).
 *
 * Locking: none taken.  Text fields of a download are copied under its
 * seqlock; chunk claims, the map-refresh claim and the finalize claim are
 * CAS words owned by ts_owner_make(getpid(), ctx->generation); bits and
 * counters are C11 atomics.  Several workers may have the same .part open
 * and pwrite disjoint chunks into it.
 *
 * Crash behaviour: a SIGKILLed worker leaves claimed chunks, maybe a
 * map_owner or finalize_owner claim, and its published in-flight counts
 * (node_slot_inflight(shm, ctx->slot, dl)[src]: every GET counted in
 * src[s].inflight is counted there first).  node_reclaim() (node.c) undoes
 * all of it by owner: chunk claims -> 0, map_owner -> 0, finalize_owner ->
 * 0 with the download FINALIZING -> ACTIVE, and the dead slot's
 * per-source counts subtracted from src[s].inflight.  Every state change
 * is a CAS from the expected state of the same download id, so a stale
 * worker never overrides the CLI.  The modules' headers say what a kill
 * in the middle of each of them leaves.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_crypto.h"
#include "ts_log.h"
#include "dl_int.h"

static void
dl_loop_schedule(dl_t *w)
{
    int64_t now = ts_now_ms();
    int     i, progress;

    dl_blk_sweep(w);        /* assemblies whose chunk or download ended */
    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        node_dl_sh_t *d = &w->dls[i];
        dl_local_t   *l = &w->loc[i];

        if (!dl_local_snapshot(w, i)
            || atomic_load(&d->state) != NODE_DL_ACTIVE)
        {
            continue;
        }
        if (atomic_load(&d->chunks_done) >= l->nchunks) {
            dl_final_run(w, i);
            continue;
        }
        dl_local_ticket_refresh(w, i);
        dl_pick_maps(w, i, now);
        dl_pick_maybe(w, i);
        dl_fh_advance(w, i, NULL, 0, TS_DL_FH_BATCH_N);
        if (l->dirty || now - l->avail_ms >= TS_DL_AVAIL_MS) {
            dl_pick_avail(w, i, now);
        }
    }
    /* round-robin over downloads until our in-flight budget is used */
    do {
        progress = 0;
        for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
            if (w->inflight >= TS_DL_WORKER_INFLIGHT_MAX_N) {
                return;
            }
            if (!w->loc[i].active
                || atomic_load(&w->dls[i].state) != NODE_DL_ACTIVE)
            {
                continue;
            }
            progress |= dl_pick_one(w, i, now);
        }
    } while (progress);
}

/*
 * A peer that keeps a chunk's reply trickling (a byte now and then, so the
 * no-byte timeout never fires) would hold the chunk's claim for as long
 * as it likes.  A GET reply that has taken more than TS_DL_GET_SLOW_MS is
 * given up when another source has the chunk: the link closes (the claim
 * goes back), the peer's rate estimate becomes what it really delivered,
 * and it is left alone for TS_DL_SLOW_PENALTY_MS.  The only holder of a
 * chunk is waited for, however slow.  1 if k was closed.
 */
static int
dl_loop_slow(dl_t *w, dl_link_t *k, int64_t now)
{
    const dl_req_t *r = &k->q[k->qhead];
    node_src_sh_t  *src;
    int64_t         t0, age_us;
    uint64_t        got;
    char            why[128];

    if (k->c == NULL || k->qn == 0) {
        return 0;
    }
    t0 = r->sent_us > k->start_us ? r->sent_us : k->start_us;
    age_us = ts_now_us() - t0;
    if (age_us <= dl_win_slow_ms(k, w->slow_ms) * 1000
        || k->rate_held_ms * 1000 >= t0)    /* our own cap held it back */
    {
        return 0;
    }
    if (r->kind != REQ_GET) {
        /* a MAP or AUTH reply is a few KiB at most */
        dl_link_close(w, k, 1, "reply too slow");
        return 1;
    }
    if (atomic_load(&w->dls[r->dl].id) != r->dl_id
        || !dl_pick_elsewhere(w, r->dl, r->src, r->chunk, now))
    {
        return 0;
    }
    got = (k->rx == RX_DATA && r->len >= k->need) ? r->len - k->need : 0;
    src = &w->dls[r->dl].src[r->src];
    atomic_store(&src->rate_bps, got * 1000000ull / (uint64_t) age_us + 1);
    snprintf(why, sizeof(why), "chunk %u too slow (%llu of %u bytes in "
             "%lld ms)", r->chunk, (unsigned long long) got, r->len,
             (long long) (age_us / 1000));
    k->penalty_ms = TS_DL_SLOW_PENALTY_MS;
    dl_link_close(w, k, 1, why);
    return 1;
}

/*
 * Frees links that are closed and no longer wanted, so the table (one
 * slot per peer identity ever met) cannot fill up for good: links closed
 * for TS_DL_LINK_LINGER_MS past their retry time, and, when the table is
 * more than three quarters full, every closed link past its retry time.
 * Runs between turns of the loop only, on links whose fd is out of it.
 */
static void
dl_loop_reap(dl_t *w, int64_t now)
{
    dl_link_t *k;
    int        i, used = 0, crowded;

    for (i = 0; i < TS_DL_LINKS_N; i++) {
        used += w->conns[i] != NULL;
    }
    crowded = used > TS_DL_LINKS_N / 4 * 3;
    for (i = 0; i < TS_DL_LINKS_N; i++) {
        k = w->conns[i];
        if (k != NULL && k->c != NULL && !k->hs && k->qn == 0
            && now - k->last_rx_ms > TS_DL_UNOWNED_IDLE_MS
            && !dl_link_wanted(w, k))
        {
            /* another worker serves this peer now (peer affinity): one
             * flow per peer and node */
            dl_link_close(w, k, 0, "");
            continue;
        }
        if (k == NULL || k->c != NULL || k->fd >= 0 || k->connecting
            || k->qn > 0 || now < k->retry_at_ms
            || (!crowded && now - k->closed_ms < TS_DL_LINK_LINGER_MS))
        {
            continue;
        }
        dl_link_free(k);
        w->conns[i] = NULL;
    }
}

static void
dl_loop_timeouts(dl_t *w)
{
    int64_t now = ts_now_ms();
    int     i;

    dl_loop_reap(w, now);

    for (i = 0; i < TS_DL_LINKS_N; i++) {
        dl_link_t *k = w->conns[i];

        if (k != NULL && k->connecting && now >= k->connect_until_ms) {
            dl_link_close(w, k, 1, "connect failed");
            continue;
        }
        if (k != NULL && k->c != NULL && k->hs
            && now >= k->connect_until_ms)
        {
            dl_link_hs_fail(w, k, ETIMEDOUT);
            continue;
        }
        if (k != NULL && k->c != NULL && k->qn > 0
            && now - k->last_rx_ms > dl_win_nobyte_ms(k)
            && now - k->rate_held_ms > dl_win_nobyte_ms(k))  /* our cap */
        {
            dl_link_close(w, k, 1, "timed out");
            continue;
        }
        if (k != NULL && !dl_eg_cancel(w, k)) {
            (void) dl_loop_slow(w, k, now);
        }
    }
}

static void
dl_loop_cleanup(dl_t *w)
{
    int i;

    for (i = 0; i < TS_DL_LINKS_N; i++) {
        dl_link_t *k = w->conns[i];

        if (k == NULL) {
            continue;
        }
        dl_link_close(w, k, 0, "");
        dl_link_free(k);
        w->conns[i] = NULL;
    }
    dl_blk_cleanup(w);
    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        dl_local_drop(&w->loc[i]);
    }
    ts_wbuf_free(&w->pl);
    free(w->fbuf);
    if (w->ev != NULL) {
        ts_ev_timer_cancel(w->ev, &w->rate_timer);
    }
    ts_ev_free(w->ev);
    w->ev = NULL;
    if (w->tls != NULL) {
        ts_tls_ctx_free(w->tls);
        w->tls = NULL;
    }
}

/* Sets w up for ctx: the node's segment, our TLS context, the buffers,
 * the event loop with the stop fd; *slot is our worker slot (or NULL).
 * 0, or the exit code after logging why. */
static int
dl_loop_init(dl_t *w, const ts_worker_ctx_t *ctx, ts_slot_sh_t **slot)
{
    uint32_t            cap = 0;
    int                 i, sfd;
    char                err[256];

    memset(w, 0, sizeof(*w));
    w->ctx = ctx;
    w->node = (const node_t *) ctx->arg;
    w->slow_ms = w->node->opts.slow_chunk_ms > 0
                 ? w->node->opts.slow_chunk_ms : TS_DL_GET_SLOW_MS;
    w->shm = w->node != NULL ? &w->node->shm : NULL;
    w->me = ts_owner_make(getpid(), ctx->generation);
    w->slot = ctx->slot;
    w->inst = ctx->instance >= 0 ? ctx->instance : 0;
    w->ndl = w->node != NULL && w->node->opts.downloaders > 0
             ? w->node->opts.downloaders : TS_NODE_DOWNLOADERS_N;
    *slot = NULL;
    if (w->shm == NULL || w->slot < 0 || w->slot >= TS_SUP_WORKERS_MAX_N) {
        ts_err("downloader: no segment or bad slot");
        return 2;
    }
    /* our node certificate goes to every peer: its fingerprint is the
     * identity our tickets name */
    w->tls = ts_tls_ctx_new(TS_TLS_PEER_CLIENT, w->node->opts.crt_path,
                            w->node->opts.key_path, NULL, err, sizeof(err));
    if (w->tls == NULL) {
        ts_err("downloader: TLS setup failed: %s", err);
        return 2;
    }
    w->dls = node_dls(w->shm);
    w->stats = node_stats(w->shm);
    if (w->dls == NULL || w->stats == NULL) {
        ts_err("downloader: segment without downloads table");
        return 2;
    }
    if (ts_shm_table(w->shm, NODE_T_SLOTS, &cap, NULL) != NULL
        && (uint32_t) w->slot < cap)
    {
        *slot = &node_slots(w->shm)[w->slot];
    }
    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        w->loc[i].fd = -1;
    }
    w->rnd = ts_random_u64() | 1;
    ts_wbuf_init(&w->pl);
    w->fbuf = malloc(TS_DL_FINAL_BLOCK_B);
    w->ev = ts_ev_new();
    if (w->fbuf == NULL || w->ev == NULL) {
        ts_err("downloader init failed: %s", strerror(errno));
        dl_loop_cleanup(w);
        return 1;
    }
    sfd = ts_worker_stop_fd();
    if (sfd >= 0) {
        (void) ts_ev_set_stop_fd(w->ev, sfd);
    }
    dl_rate_init(w);
    return 0;
}

/* One epoll event on link k.  1 if a link changed so that the
 * scheduling pass should run now. */
static int
dl_loop_event(dl_t *w, dl_link_t *k, uint32_t events)
{
    int before;

    if (k->connecting) {
        dl_link_connected(w, k);
        return 1;
    }
    if (k->c == NULL) {
        return 0;
    }
    if (k->hs) {
        /* the handshake reads and writes as it needs */
        (void) dl_recv_input(w, k);
        return 1;
    }
    if ((events & EPOLLOUT) || k->woff < k->out.len) {
        if (dl_link_flush(w, k) != 0) {
            dl_link_close(w, k, 1, "write failed");
            return 1;
        }
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        before = k->qn;
        if (dl_recv_input(w, k) != 0 || k->qn != before) {
            return 1;
        }
    }
    return 0;
}

void
dl_loop_io(ts_ev_t *ev, ts_ev_io_t *io, uint32_t events)
{
    dl_t      *w = io->data;
    dl_link_t *k = (dl_link_t *) ((char *) io - offsetof(dl_link_t, io));

    if (dl_loop_event(w, k, events)) {
        w->need = 1;
    }
}

int
dl_main(const ts_worker_ctx_t *ctx)
{
    static dl_t         w;
    ts_slot_sh_t       *slot;
    int                 rc;
    int64_t             last_sched = 0, now;

    rc = dl_loop_init(&w, ctx, &slot);
    if (rc != 0) {
        return rc;
    }
    if (slot != NULL) {
        ts_slot_set_active(slot, w.me);
    }
    ts_worker_ready(ctx);
    ts_debug("downloader ready (slot %d)", w.slot);

    while (!ts_worker_stopping() && !ts_ev_stopped(w.ev)) {
        if (ts_ev_run_once(w.ev, TS_NODE_IDLE_POLL_MS) != 0) {
            ts_err("epoll_wait() failed: %s", strerror(errno));
            break;
        }
        now = ts_now_ms();
        if (w.need || now - last_sched >= TS_NODE_IDLE_POLL_MS) {
            w.need = 0;
            dl_loop_timeouts(&w);
            dl_rate_idle(&w);
            dl_loop_schedule(&w);
            last_sched = now;
            if (slot != NULL && atomic_load(&slot->owner) == w.me) {
                ts_slot_beat(slot);
            }
        }
        if (ts_worker_orphaned(ctx)) {
            break;
        }
    }
    dl_loop_cleanup(&w);
    return 0;
}
