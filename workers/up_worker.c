/*
 * up_worker.c -- the uploader worker (up_main): serves PEER_MAP and
 * PEER_GET to other nodes' downloaders on the node's shared listening
 * socket; this file is its event loop.
 *
 * Purpose: each uploader runs one event loop (net/ts_ev.h: the links' fds,
 * the stop fd, the tick timer, the "handle again" list); the listening
 * socket is in every uploader's epoll set with EPOLLEXCLUSIVE, so one
 * wakes per new link.  A link is persistent: requests are read into a fixed
 * per-link buffer, queued, and answered strictly in order (up_link.c reads
 * and parses, up_serve.c answers).  A link gets at most
 * TS_UP_HANDLE_ROUNDS_N answer/read rounds per wakeup; one with requests
 * still buffered (TLS-decrypted bytes epoll cannot see) is handled again
 * after the others (ts_ev_again).  Every TS_UP_TICK_MS a timer beats the
 * slot and enforces the links' deadlines (handshake, ticket, partial
 * frame, stalled send, idle).
 *
 * Locking: none.  Share and download text fields are copied with the
 * seqlock readers (node_share_snapshot/node_dl_snapshot); states, bits
 * and counters are atomics.  This worker's own part of the node's load
 * (queued GETs, active uploads) is mirrored in its slot's counter[0] and
 * counter[1] so reclaim can subtract it.
 *
 * Crash behaviour: a killed uploader's links close (the downloaders see
 * EOF and re-request elsewhere); the supervisor reclaims its load counts
 * and respawns it, and the new one joins the shared listening socket.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_log.h"
#include "up_int.h"


static void
up_loop_handle(up_t *u, int idx, uint32_t events)
{
    up_link_t  *k = u->conns[idx];
    int         rounds, before, was_ready;

    if (k == NULL) {
        return;
    }
    was_ready = k->ready;
    /* during the handshake any event may move it on; a TLS read may
     * also have been waiting for writability */
    if (((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || !k->ready
         || (k->rd_want != 0 && (events & EPOLLOUT)))
        && up_link_read(u, k) != 0)
    {
        up_link_close(u, idx, "read");
        return;
    }
    if (!k->ready) {
        if (up_link_ready(k) != 0) {
            up_link_close(u, idx, "no client certificate");
            return;
        }
        if (!k->ready) {
            up_link_events(u, k, idx);
            return;
        }
    }
    if (!was_ready) {
        atomic_fetch_add(&u->st->tls_ok[0], 1);
    }
    for (rounds = 0; ; rounds++) {
        if (up_serve_pump(u, k) != 0) {
            up_link_close(u, idx, "write");
            return;
        }
        /* answering may have made room in the queue for frames already
         * buffered here or, decrypted, inside the TLS layer (which epoll
         * does not report) */
        if (k->q_n >= TS_UP_QUEUE_N
            || (k->in_len == 0 && ts_conn_pending(k->c) <= 0))
        {
            break;
        }
        if (rounds == TS_UP_HANDLE_ROUNDS_N) {
            /* fairness: come back at once, after the other links */
            ts_ev_again(u->ev, &k->io);
            break;
        }
        before = k->q_n;
        if (up_link_read(u, k) != 0) {
            up_link_close(u, idx, "read");
            return;
        }
        if (k->q_n == before) {
            break;
        }
    }
    up_link_events(u, k, idx);
}


void
up_loop_io(ts_ev_t *ev, ts_ev_io_t *io, uint32_t events)
{
    up_link_t *k = (up_link_t *) ((char *) io - offsetof(up_link_t, io));

    up_loop_handle(io->data, k->idx, events);
}


/* Every ticket link k showed has expired: it counts as unauthenticated
 * again (and must show a new ticket within TS_NODE_UNAUTH_MS).  0, or -1
 * when the cap on such links is reached (the caller closes k). */
static int
up_loop_unauth_again(up_t *u, up_link_t *k, int64_t now)
{
    if (u->nunauth >= TS_NODE_UNAUTH_MAX_N) {
        return -1;
    }
    k->authed = 0;
    k->unauth_ms = now;
    u->nunauth++;
    return 0;
}


static void
up_loop_timeouts(up_t *u)
{
    int64_t     now = ts_now_ms();
    up_link_t  *k;
    int         i, busy;

    for (i = 0; i < TS_NODE_PEER_CONNS_N; i++) {
        k = u->conns[i];
        if (k == NULL) {
            continue;
        }
        busy = k->out_off < k->out.len || k->file_left > 0;
        if (!k->ready && now - k->born_ms > TS_TLS_HANDSHAKE_MS) {
            up_link_close(u, i, "handshake timeout");
        } else if (k->authed && ts_wall_ms() >= k->authed_until
                   && up_loop_unauth_again(u, k, now) != 0)
        {
            up_link_close(u, i, "its tickets expired and too many links hold "
                          "none");
        } else if (!k->authed && now - k->unauth_ms > u->unauth_ms) {
            up_link_close(u, i, k->authed_until != 0
                           ? "its tickets expired, no new one in time"
                           : "no valid ticket in time");
        } else if (k->frame_ms != 0
                   && now - k->frame_ms > TS_NODE_PEER_TIMEOUT_MS)
        {
            up_link_close(u, i, "frame timeout");
        } else if (busy && now - k->last_ms > TS_NODE_PEER_TIMEOUT_MS) {
            up_link_close(u, i, "send stalled");
        } else if (!busy && k->q_n == 0
                   && now - k->last_ms > TS_NODE_PEER_IDLE_MS)
        {
            up_link_close(u, i, "idle");
        }
    }
}


static void
up_loop_free_keys(up_t *u)
{
    if (u->verifier != NULL) {
        ts_ticket_verifier_free(u->verifier);
    }
    if (u->tls != NULL) {
        ts_tls_ctx_free(u->tls);
    }
}


/* Every TS_UP_TICK_MS: the slot's heartbeat and the links' deadlines. */
static void
up_loop_tick(ts_ev_t *ev, ts_ev_timer_t *t)
{
    up_t *u = t->data;

    ts_slot_beat(u->slot);
    up_rate_resume(u);      /* in case the rate timer could not be armed */
    up_loop_timeouts(u);
    (void) ts_ev_timer_in(ev, t, TS_UP_TICK_MS);
}


/* A new uploader for ctx: the node's segment and listening socket, our
 * TLS context, the event loop with the stop fd, the listening socket and
 * the tick.  NULL after logging why (*rc: the exit code). */
static up_t *
up_loop_init(const ts_worker_ctx_t *ctx, int *rc)
{
    up_t               *u;
    int                 i;
    char                err[256];

    *rc = 1;
    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        ts_err("out of memory");
        return NULL;
    }
    u->ctx = ctx;
    u->node = ctx->arg;
    u->unauth_ms = u->node->opts.ticket_wait_ms > 0
                   ? u->node->opts.ticket_wait_ms : TS_NODE_UNAUTH_MS;
    u->shm = &u->node->shm;
    u->st = node_stats(u->shm);
    u->slot = &node_slots(u->shm)[ctx->slot];
    u->me = ts_owner_make(getpid(), ctx->generation);
    u->listen_fd = u->node->listen_fd;
    for (i = 0; i < TS_NODE_SHARES_N; i++) {
        u->shares[i].fd = -1;
    }
    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        u->dls[i].fd = -1;
    }

    err[0] = '\0';
    u->tls = ts_tls_ctx_new(TS_TLS_PEER_SERVER, u->node->opts.crt_path,
                            u->node->opts.key_path, NULL, err, sizeof(err));
    if (u->tls == NULL) {
        ts_err("cannot serve peers: node certificate \"%s\": %s",
               u->node->opts.crt_path, err);
        free(u);
        return NULL;
    }
    /* NULL if the CA cannot be read yet: retried on the next PEER_AUTH */
    (void) up_link_verifier(u);

    u->ev = ts_ev_new();
    if (u->ev == NULL) {
        ts_err("epoll_create1() failed: %s", strerror(errno));
        up_loop_free_keys(u);
        free(u);
        return NULL;
    }
    if (ts_worker_stop_fd() >= 0) {
        (void) ts_ev_set_stop_fd(u->ev, ts_worker_stop_fd());
    }
    ts_ev_timer_init(&u->tick, up_loop_tick, u);
    up_rate_init(u);
    up_have_init(u);
    up_link_listen(u, 1);
    if (!u->listening || ts_ev_timer_in(u->ev, &u->tick, TS_UP_TICK_MS) != 0)
    {
        ts_ev_del(u->ev, &u->listen_io);
        ts_ev_free(u->ev);
        up_loop_free_keys(u);
        free(u);
        *rc = 2;
        return NULL;
    }
    *rc = 0;
    return u;
}

/* Closes every link and cached file, then frees u. */
static void
up_loop_cleanup(up_t *u)
{
    int i;

    for (i = 0; i < TS_NODE_PEER_CONNS_N; i++) {
        up_link_close(u, i, NULL);
    }
    for (i = 0; i < TS_NODE_SHARES_N; i++) {
        if (u->shares[i].fd >= 0) {
            close(u->shares[i].fd);
        }
    }
    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        if (u->dls[i].fd >= 0) {
            close(u->dls[i].fd);
        }
    }
    ts_ev_timer_cancel(u->ev, &u->tick);
    ts_ev_timer_cancel(u->ev, &u->rate_timer);
    ts_ev_timer_cancel(u->ev, &u->have_timer);
    ts_ev_del(u->ev, &u->listen_io);
    ts_ev_free(u->ev);
    up_loop_free_keys(u);
    free(u);
}


int
up_main(const ts_worker_ctx_t *ctx)
{
    up_t *u;
    int   rc;

    u = up_loop_init(ctx, &rc);
    if (u == NULL) {
        return rc;
    }
    ts_slot_set_active(u->slot, u->me);
    ts_worker_ready(ctx);

    while (!ts_worker_stopping() && !ts_worker_orphaned(ctx)
           && !ts_ev_stopped(u->ev))
    {
        if (ts_ev_run_once(u->ev, TS_UP_TICK_MS) != 0) {
            ts_err("epoll_wait() failed: %s", strerror(errno));
            rc = 1;
            break;
        }
    }
    up_loop_cleanup(u);
    return rc;
}
