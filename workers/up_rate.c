/*
 * up_rate.c -- the uploader's side of the node-wide upload cap.
 *
 * Purpose: a chunk's bytes leave only against tokens from the node's
 * upload bucket (node_rate_sh_t.up, shared by every uploader).  A link
 * reserves at most TS_RATE_SLICE_B at a time and keeps it as credit;
 * each sendfile is limited to that credit, so after EAGAIN the same
 * bytes are offered again (as TLS requires) and the cap binds what
 * actually goes out.  Unlimited, the whole chunk is one grant and one
 * sendfile, as without a cap.  A reservation the bucket cannot cover yet
 * comes with the time it will be: the link stops asking for EPOLLOUT
 * (up_link_events) and sleeps on the worker's rate timer until then; the
 * timer then pumps every waiting link again.  Nothing spins.  Because
 * the bytes are reserved rather than taken once there, links of several
 * uploader processes are served in the order they asked: a process the
 * scheduler wakes late still finds its slice, instead of finding it
 * taken by one that woke sooner, again and again.
 *
 * Small replies (chunk headers, maps) are charged without waiting: the
 * bucket may go into debt, which later grants wait out.
 *
 * Locking: none (one worker process; the bucket is lock-free).
 * Crash behaviour: a killed worker loses at most its links' unused
 * credit (a slice each); nothing to repair.  A closed link gives its
 * credit back (up_rate_drop).
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


void
up_rate_sleep(up_t *u, up_link_t *k, int64_t at)
{
    if (!k->rate_wait) {
        k->rate_wait = 1;
        u->rate_waiting++;
    }
    if (!ts_ev_timer_armed(&u->rate_timer) || u->rate_timer.at_ms > at) {
        /* on ENOMEM the worker's tick resumes it instead */
        (void) ts_ev_timer_at(u->ev, &u->rate_timer, at);
    }
}


size_t
up_rate_allow(up_t *u, up_link_t *k)
{
    int64_t  wait_ns;
    int      ms;

    if (u->rate == NULL) {
        return k->file_left;
    }
    wait_ns = node_rate_credit(u->rate, &k->rate_cr, k->file_left,
                               ts_rate_now_ns());
    if (wait_ns > 0) {
        ms = node_rate_wait_ms(wait_ns);
        atomic_fetch_add(&u->st->rate_wait_ns[0], (uint64_t) ms * 1000000);
        up_rate_sleep(u, k, ts_now_ms() + ms);
        return 0;
    }
    k->rate_wait = 0;           /* its time came before its timer */
    return k->rate_cr.left_B < k->file_left ? k->rate_cr.left_B
                                            : k->file_left;
}


void
up_rate_drop(up_t *u, up_link_t *k)
{
    if (u->rate != NULL) {
        node_rate_credit_drop(u->rate, &k->rate_cr);
    }
}


void
up_rate_sent(up_t *u, up_link_t *k, size_t n, int file)
{
    if (u->rate == NULL) {
        return;
    }
    if (file) {
        k->rate_cr.left_B -= n < k->rate_cr.left_B ? n : k->rate_cr.left_B;
    } else {
        ts_rate_charge(u->rate, n, ts_rate_now_ns());
    }
}
