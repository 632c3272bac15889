/*
 * dl_rate.c -- the downloader's side of the node-wide download cap.
 *
 * Purpose: bytes are read from a peer link only against tokens from the
 * node's download bucket (node_rate_sh_t.down, shared by every
 * downloader worker, whatever the sources).  A link reserves what its
 * next read wants, at most TS_RATE_SLICE_B, and keeps it as credit for
 * the reads that follow.  Reserved rather than taken once there, so the
 * links of all downloaders are served in the order they asked (one the
 * scheduler wakes late is not starved by the others).  Until the
 * reservation is due the link stops reading: EPOLLIN is removed, so the socket's receive window fills
 * and TCP slows the sender; the worker's rate timer, armed for the time
 * the bucket can serve, then re-arms EPOLLIN and reads on.  Nothing
 * spins: an EPOLLHUP/EPOLLERR reported while a link waits (epoll reports
 * those whatever the interest) is read through at once and charged, so
 * the link's end is seen.
 *
 * The waiting time is ours, not the peer's: a link's no-byte clock is
 * restarted when it resumes, and rate_held_ms tells dl_loop_slow not to
 * blame a peer for a reply our cap held back.
 *
 * Locking: none (one worker process; the bucket is lock-free).
 * Crash behaviour: a killed worker loses at most its links' unused
 * credit; nothing to repair.  A link that closes or starts over gives
 * its credit back (dl_rate_drop).
 */
#include <sys/epoll.h>

#include "ts_clock.h"
#include "dl_int.h"


static void
dl_rate_fire(ts_ev_t *ev, ts_ev_timer_t *t)
{
    dl_t      *w = t->data;
    dl_link_t *k;
    int64_t    now = ts_now_ms();
    int        i;

    if (w->rate_waiting == 0) {
        return;
    }
    w->rate_waiting = 0;
    for (i = 0; i < TS_DL_LINKS_N; i++) {
        k = w->conns[i];
        if (k == NULL || !k->rate_wait) {
            continue;
        }
        k->rate_wait = 0;
        if (k->c == NULL) {
            continue;
        }
        k->last_rx_ms = now;
        k->rate_held_ms = now;
        dl_link_events(w, k, EPOLLIN | (k->want_out ? EPOLLOUT : 0));
        dl_loop_io(w->ev, &k->io, EPOLLIN);
    }
}


void
dl_rate_init(dl_t *w)
{
    node_rate_sh_t *r = node_rate(w->shm);

    w->rate = r != NULL ? &r->down : NULL;
    ts_ev_timer_init(&w->rate_timer, dl_rate_fire, w);
}


size_t
dl_rate_allow(dl_t *w, dl_link_t *k, size_t want)
{
    int64_t  wait_ns, at;
    int      ms;

    if (w->rate == NULL || k->hs) {
        return want;
    }
    if (k->rate_wait) {
        /* HUP/ERR while waiting: read through, charged (dl_rate_got) */
        return want;
    }
    wait_ns = node_rate_credit(w->rate, &k->rate_cr, want, ts_rate_now_ns());
    if (wait_ns > 0) {
        ms = node_rate_wait_ms(wait_ns);
        k->rate_wait = 1;
        k->rate_held_ms = ts_now_ms();
        w->rate_waiting++;
        dl_link_events(w, k, k->want_out ? EPOLLOUT : 0);
        at = ts_now_ms() + ms;
        atomic_fetch_add(&w->stats->rate_wait_ns[1], (uint64_t) ms * 1000000);
        if (!ts_ev_timer_armed(&w->rate_timer) || w->rate_timer.at_ms > at) {
            (void) ts_ev_timer_at(w->ev, &w->rate_timer, at);
        }
        return 0;
    }
    return k->rate_cr.left_B < want ? k->rate_cr.left_B : want;
}


void
dl_rate_drop(dl_t *w, dl_link_t *k)
{
    if (w->rate != NULL) {
        node_rate_credit_drop(w->rate, &k->rate_cr);
    }
    k->rate_cr.left_B = 0;
}


void
dl_rate_got(dl_t *w, dl_link_t *k, size_t n)
{
    if (w->rate == NULL || k->hs) {
        return;
    }
    if (k->rate_wait || n > k->rate_cr.left_B) {
        /* read without (enough) credit: counted as debt */
        ts_rate_charge(w->rate, k->rate_wait ? n : n - k->rate_cr.left_B,
                       ts_rate_now_ns());
        if (!k->rate_wait) {
            k->rate_cr.left_B = 0;
        }
        return;
    }
    k->rate_cr.left_B -= n;
}


/* The worker's loop runs the timer; a failed arm (ENOMEM) is retried by
 * the idle pass. */
void
dl_rate_idle(dl_t *w)
{
    if (w->rate_waiting > 0 && !ts_ev_timer_armed(&w->rate_timer)) {
        dl_rate_fire(w->ev, &w->rate_timer);
    }
}
