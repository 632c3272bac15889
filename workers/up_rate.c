/*
 * up_rate.c -- the uploader's side of the node-wide upload cap.
 *
 * Purpose: a chunk's bytes leave only against tokens from the node's
 * upload bucket (node_rate_sh_t.up, shared by every uploader).  A link
 * asks for at most TS_RATE_SLICE_B at a time and keeps what it got as
 * credit; each sendfile is limited to that credit, so after EAGAIN the
 * same bytes are offered again (as TLS requires) and the cap binds what
 * actually goes out.  Unlimited, the whole chunk is one grant and one
 * sendfile, as without a cap.  A link whose grant was refused stops
 * asking for EPOLLOUT (up_link_events) and sleeps on the worker's rate
 * timer, armed for the earliest time the bucket can serve one; the
 * timer then pumps every waiting link again.  Nothing spins.
 *
 * Small replies (chunk headers, maps) are charged without waiting: the
 * bucket may go into debt, which later grants wait out.
 *
 * Locking: none (one worker process; the bucket is lock-free).
 * Crash behaviour: a killed worker loses at most its links' unused
 * credit (a slice each); nothing to repair.
 */
#include <sys/epoll.h>

#include "ts_clock.h"
#include "up_int.h"


static void
up_rate_fire(ts_ev_t *ev, ts_ev_timer_t *t)
{
    up_rate_resume(t->data);
}


void
up_rate_init(up_t *u)
{
    node_rate_sh_t *r = node_rate(u->shm);

    u->rate = r != NULL ? &r->up : NULL;
    ts_ev_timer_init(&u->rate_timer, up_rate_fire, u);
}


/* Wakes every link waiting for tokens: it tries again (and waits again
 * if the bucket is still short). */
void
up_rate_resume(up_t *u)
{
    up_link_t *k;
    int64_t    now = ts_now_ms();
    int        i;

    if (u->rate_waiting == 0) {
        return;
    }
    u->rate_waiting = 0;
    for (i = 0; i < TS_NODE_PEER_CONNS_N; i++) {
        k = u->conns[i];
        if (k == NULL || !k->rate_wait) {
            continue;
        }
        k->rate_wait = 0;
        /* waiting on our own cap is not the peer stalling */
        k->last_ms = now;
        up_loop_io(u->ev, &k->io, EPOLLOUT);
    }
}


size_t
up_rate_allow(up_t *u, up_link_t *k)
{
    uint64_t  g;
    int64_t   wait_ns, at;
    size_t    want;

    if (u->rate == NULL) {
        return k->file_left;
    }
    if (k->rate_credit == 0) {
        want = k->file_left;
        if (atomic_load_explicit(&u->rate->rate_Bps, memory_order_relaxed)
            != 0 && want > TS_RATE_SLICE_B)
        {
            want = TS_RATE_SLICE_B;
        }
        wait_ns = ts_rate_take(u->rate, want, TS_RATE_SLICE_MIN_B,
                               ts_rate_now_ns(), &g);
        if (wait_ns > 0) {
            k->rate_wait = 1;
            u->rate_waiting++;
            at = ts_now_ms() + node_rate_wait_ms(wait_ns);
            atomic_fetch_add(&u->st->rate_wait_ns[0],
                             (uint64_t) node_rate_wait_ms(wait_ns) * 1000000);
            if (!ts_ev_timer_armed(&u->rate_timer)
                || u->rate_timer.at_ms > at)
            {
                /* on ENOMEM the worker's tick resumes it instead */
                (void) ts_ev_timer_at(u->ev, &u->rate_timer, at);
            }
            return 0;
        }
        k->rate_credit = (size_t) g;
        k->rate_wait = 0;       /* granted before its timer: EPOLLOUT again */
    }
    return k->rate_credit < k->file_left ? k->rate_credit : k->file_left;
}


void
up_rate_sent(up_t *u, up_link_t *k, size_t n, int file)
{
    if (u->rate == NULL) {
        return;
    }
    if (file) {
        k->rate_credit -= n < k->rate_credit ? n : k->rate_credit;
    } else {
        ts_rate_charge(u->rate, n, ts_rate_now_ns());
    }
}
