/*
 * dl_rate.c -- the downloader's side of the node-wide download cap.
 *
 * Purpose: bytes are read from a peer link only against tokens from the
 * node's download bucket (node_rate_sh_t.down, shared by every
 * downloader worker, whatever the sources).  A link asks for what its
 * next read wants, at most TS_RATE_SLICE_B, and keeps the grant as
 * credit for the reads that follow.  When the bucket is short the link
 * stops reading: EPOLLIN is removed, so the socket's receive window fills
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
 * credit; nothing to repair.
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
    uint64_t  g;
    int64_t   wait_ns, at;

    if (w->rate == NULL || k->hs) {
        return want;
    }
    if (k->rate_wait) {
        /* HUP/ERR while waiting: read through, charged (dl_rate_got) */
        return want;
    }
    if (k->rate_credit == 0) {
        if (atomic_load_explicit(&w->rate->rate_Bps, memory_order_relaxed)
            != 0 && want > TS_RATE_SLICE_B)
        {
            want = TS_RATE_SLICE_B;
        }
        wait_ns = ts_rate_take(w->rate, want, TS_RATE_SLICE_MIN_B,
                               ts_rate_now_ns(), &g);
        if (wait_ns > 0) {
            k->rate_wait = 1;
            k->rate_held_ms = ts_now_ms();
            w->rate_waiting++;
            dl_link_events(w, k, k->want_out ? EPOLLOUT : 0);
            at = ts_now_ms() + node_rate_wait_ms(wait_ns);
            atomic_fetch_add(&w->stats->rate_wait_ns[1],
                             (uint64_t) node_rate_wait_ms(wait_ns) * 1000000);
            if (!ts_ev_timer_armed(&w->rate_timer)
                || w->rate_timer.at_ms > at)
            {
                (void) ts_ev_timer_at(w->ev, &w->rate_timer, at);
            }
            return 0;
        }
        k->rate_credit = (size_t) g;
    }
    return k->rate_credit < want ? k->rate_credit : want;
}


void
dl_rate_got(dl_t *w, dl_link_t *k, size_t n)
{
    if (w->rate == NULL || k->hs) {
        return;
    }
    if (k->rate_wait || n > k->rate_credit) {
        /* read without (enough) credit: counted as debt */
        ts_rate_charge(w->rate, k->rate_wait ? n : n - k->rate_credit,
                       ts_rate_now_ns());
        if (!k->rate_wait) {
            k->rate_credit = 0;
        }
        return;
    }
    k->rate_credit -= n;
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
