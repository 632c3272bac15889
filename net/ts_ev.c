/*
 * ts_ev.c -- the event loop of ts_ev.h: epoll registration, the again
 * list, the stop fd, and timers.  Framed connections are in ts_ev_conn.c.
 *
 * Purpose: one epoll set per loop; each registered ts_ev_io_t is the
 * epoll data pointer, so dispatch is a call through it.  Deleting an io
 * while a batch is being dispatched clears the rest of the batch's
 * entries for it, so a callback may close and free any other link.
 * Timers are a binary min-heap of pointers ordered by (due time, arming
 * sequence): equal due times fire in the order they were armed.  Each
 * turn waits until the next timer at the latest, not at all when the
 * again list has entries, then dispatches events, the again list, and
 * the timers that are due (a timer armed by a callback for "now" fires
 * in the same turn).
 *
 * Locking: none; a loop belongs to one thread (ts_ev.h).
 * Crash behaviour: nothing persistent; the epoll fd dies with the process.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_ev.h"
#include "ts_ev_int.h"

struct ts_ev_s {
    int                 ep;
    int                 stopped;
    ts_ev_io_t          stop_io;
    ts_ev_io_t         *again_head;     /* for the next turn */
    ts_ev_io_t         *again_cur;      /* being run now */
    /* the batch being dispatched (ts_ev_del clears entries in it) */
    struct epoll_event  evs[TS_EV_EVENTS_N];
    int                 nevs;
    int                 cur;
    /* timers: heap[0] is the next due */
    ts_ev_timer_t     **heap;
    size_t              nheap, capheap;
    uint64_t            seq;
    uint64_t            out_total;
};

ts_ev_t *
ts_ev_new(void)
{
    ts_ev_t *ev = calloc(1, sizeof(*ev));

    if (ev == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    ev->ep = epoll_create1(EPOLL_CLOEXEC);
    if (ev->ep < 0) {
        free(ev);
        return NULL;
    }
    ev->stop_io.fd = -1;
    return ev;
}

void
ts_ev_free(ts_ev_t *ev)
{
    if (ev == NULL) {
        return;
    }
    close(ev->ep);
    free(ev->heap);
    free(ev);
}

/* ---- fds ------------------------------------------------------------- */

int
ts_ev_add(ts_ev_t *ev, ts_ev_io_t *io, int fd, uint32_t events,
          ts_ev_io_cb cb, void *data)
{
    struct epoll_event e;

    memset(io, 0, sizeof(*io));
    io->fd = fd;
    io->cb = cb;
    io->data = data;
    memset(&e, 0, sizeof(e));
    e.events = events;
    e.data.ptr = io;
    if (epoll_ctl(ev->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
        return -1;
    }
    io->events = events;
    io->added = 1;
    return 0;
}

int
ts_ev_mod(ts_ev_t *ev, ts_ev_io_t *io, uint32_t events)
{
    struct epoll_event e;

    if (!io->added) {
        errno = EINVAL;
        return -1;
    }
    if (events == io->events) {
        return 0;
    }
    memset(&e, 0, sizeof(e));
    e.events = events;
    e.data.ptr = io;
    if (epoll_ctl(ev->ep, EPOLL_CTL_MOD, io->fd, &e) != 0) {
        return -1;
    }
    io->events = events;
    return 0;
}

static void
again_unlink(ts_ev_io_t **pp, ts_ev_io_t *io)
{
    for (; *pp != NULL; pp = &(*pp)->again_next) {
        if (*pp == io) {
            *pp = io->again_next;
            return;
        }
    }
}

void
ts_ev_del(ts_ev_t *ev, ts_ev_io_t *io)
{
    int i;

    if (io->again) {
        again_unlink(&ev->again_head, io);
        again_unlink(&ev->again_cur, io);
        io->again = 0;
        io->again_next = NULL;
    }
    for (i = ev->cur + 1; i < ev->nevs; i++) {
        if (ev->evs[i].data.ptr == io) {
            ev->evs[i].data.ptr = NULL;
        }
    }
    if (io->added) {
        epoll_ctl(ev->ep, EPOLL_CTL_DEL, io->fd, NULL);
        io->added = 0;
    }
}

void
ts_ev_again(ts_ev_t *ev, ts_ev_io_t *io)
{
    if (io->again) {
        return;
    }
    io->again = 1;
    io->again_next = ev->again_head;
    ev->again_head = io;
}

static void
stop_fired(ts_ev_t *ev, ts_ev_io_t *io, uint32_t events)
{
    ev->stopped = 1;
}

int
ts_ev_set_stop_fd(ts_ev_t *ev, int fd)
{
    ts_ev_del(ev, &ev->stop_io);
    if (fd < 0) {
        return 0;
    }
    return ts_ev_add(ev, &ev->stop_io, fd, EPOLLIN, stop_fired, NULL);
}

void
ts_ev_stop(ts_ev_t *ev)
{
    ev->stopped = 1;
}

int
ts_ev_stopped(const ts_ev_t *ev)
{
    return ev->stopped;
}

/* ---- timers ---------------------------------------------------------- */

static int
timer_before(const ts_ev_timer_t *a, const ts_ev_timer_t *b)
{
    return a->at_ms < b->at_ms || (a->at_ms == b->at_ms && a->seq < b->seq);
}

static void
heap_set(ts_ev_t *ev, size_t i, ts_ev_timer_t *t)
{
    ev->heap[i] = t;
    t->slot = i + 1;
}

static void
heap_up(ts_ev_t *ev, size_t i)
{
    ts_ev_timer_t *t = ev->heap[i];

    while (i > 0 && timer_before(t, ev->heap[(i - 1) / 2])) {
        heap_set(ev, i, ev->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(ev, i, t);
}

static void
heap_down(ts_ev_t *ev, size_t i)
{
    ts_ev_timer_t *t = ev->heap[i];
    size_t         c;

    for (;;) {
        c = 2 * i + 1;
        if (c >= ev->nheap) {
            break;
        }
        if (c + 1 < ev->nheap && timer_before(ev->heap[c + 1], ev->heap[c])) {
            c++;
        }
        if (!timer_before(ev->heap[c], t)) {
            break;
        }
        heap_set(ev, i, ev->heap[c]);
        i = c;
    }
    heap_set(ev, i, t);
}

void
ts_ev_timer_init(ts_ev_timer_t *t, ts_ev_timer_cb cb, void *data)
{
    memset(t, 0, sizeof(*t));
    t->cb = cb;
    t->data = data;
}

int
ts_ev_timer_armed(const ts_ev_timer_t *t)
{
    return t->slot != 0;
}

void
ts_ev_timer_cancel(ts_ev_t *ev, ts_ev_timer_t *t)
{
    ts_ev_timer_t *last;
    size_t         i;

    if (t->slot == 0) {
        return;
    }
    i = t->slot - 1;
    t->slot = 0;
    ev->nheap--;
    if (i == ev->nheap) {
        return;
    }
    last = ev->heap[ev->nheap];
    heap_set(ev, i, last);
    heap_up(ev, i);
    heap_down(ev, last->slot - 1);
}

int
ts_ev_timer_at(ts_ev_t *ev, ts_ev_timer_t *t, int64_t at_ms)
{
    ts_ev_timer_t **nh;
    size_t          ncap;

    ts_ev_timer_cancel(ev, t);
    if (ev->nheap == ev->capheap) {
        ncap = ev->capheap ? ev->capheap * 2 : TS_EV_TIMERS_INIT_N;
        nh = realloc(ev->heap, ncap * sizeof(*nh));
        if (nh == NULL) {
            errno = ENOMEM;
            return -1;
        }
        ev->heap = nh;
        ev->capheap = ncap;
    }
    t->at_ms = at_ms;
    t->seq = ++ev->seq;
    ev->nheap++;
    heap_set(ev, ev->nheap - 1, t);
    heap_up(ev, ev->nheap - 1);
    return 0;
}

int
ts_ev_timer_in(ts_ev_t *ev, ts_ev_timer_t *t, int ms)
{
    return ts_ev_timer_at(ev, t, ts_deadline_ms(ms));
}

static void
timers_fire(ts_ev_t *ev)
{
    int64_t        now = ts_now_ms();
    ts_ev_timer_t *t;

    while (ev->nheap > 0 && ev->heap[0]->at_ms <= now) {
        t = ev->heap[0];
        ts_ev_timer_cancel(ev, t);
        t->cb(ev, t);
    }
}

/* ---- turns ----------------------------------------------------------- */

static int
wait_ms(const ts_ev_t *ev, int max_wait_ms)
{
    int left;

    if (ev->again_head != NULL) {
        return 0;
    }
    if (ev->nheap == 0) {
        return max_wait_ms;
    }
    left = ts_ms_left(ev->heap[0]->at_ms);
    return max_wait_ms >= 0 && max_wait_ms < left ? max_wait_ms : left;
}

static void
again_run(ts_ev_t *ev)
{
    ts_ev_io_t *io;

    /* entries added while this runs wait for the next turn */
    ev->again_cur = ev->again_head;
    ev->again_head = NULL;
    while ((io = ev->again_cur) != NULL) {
        ev->again_cur = io->again_next;
        io->again = 0;
        io->again_next = NULL;
        io->cb(ev, io, 0);
    }
}

int
ts_ev_run_once(ts_ev_t *ev, int max_wait_ms)
{
    ts_ev_io_t *io;
    int         n;

    n = epoll_wait(ev->ep, ev->evs, TS_EV_EVENTS_N, wait_ms(ev, max_wait_ms));
    if (n < 0) {
        if (errno != EINTR) {
            return -1;
        }
        n = 0;
    }
    ev->nevs = n;
    for (ev->cur = 0; ev->cur < n; ev->cur++) {
        io = ev->evs[ev->cur].data.ptr;
        if (io != NULL) {
            io->cb(ev, io, ev->evs[ev->cur].events);
        }
    }
    ev->nevs = 0;
    ev->cur = 0;
    again_run(ev);
    timers_fire(ev);
    return 0;
}

int
ts_ev_run(ts_ev_t *ev)
{
    while (!ev->stopped) {
        if (ts_ev_run_once(ev, -1) != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- for ts_ev_conn.c ------------------------------------------------ */

void
ts_ev_out_add(ts_ev_t *ev, int64_t delta)
{
    ev->out_total = (uint64_t) ((int64_t) ev->out_total + delta);
}

uint64_t
ts_ev_out_total(const ts_ev_t *ev)
{
    return ev->out_total;
}
