/*
 * ts_ev_conn.c -- framed connections on a ts_ev_t loop (ts_ev.h, level 3).
 *
 * Purpose: a link goes CONNECTING (non-blocking connect, EPOLLOUT,
 * deadline cfg.connect_ms) -> HANDSHAKE (TLS or plain, epoll interest
 * follows ts_conn_want(), deadline cfg.handshake_ms) -> READY.  Input is
 * read into a per-thread scratch buffer and only the bytes that arrived
 * are kept, so an idle link holds no input buffer; each frame header is
 * checked (shape, then length against cfg.max_frame_b) as soon as it is
 * whole, before its payload is buffered, and the input held never
 * exceeds cfg.in_budget_b.  Whole frames go to on_frame in order.
 * Output is one queue per link: a send over cfg.out_max_b fails, and
 * while more than cfg.out_soft_b is queued the link is not read (TCP
 * pushes back on the peer).  TLS may keep decrypted bytes epoll cannot
 * see, and a link stops after TS_EV_ROUNDS_N reads for fairness: such a
 * link goes on the loop's again list.  A read that needs the socket
 * writable, or a write that needs it readable (TLS), adds that event.
 *
 * Closing: every failure inside the layer only marks the link and puts
 * it on the again list; the loop then frees it and calls on_close once.
 * ts_ev_conn_close from a callback of the link is finished when that
 * callback returns, so the caller never sees its link vanish under it.
 *
 * Locking: none; one thread per loop.
 * Crash behaviour: nothing persistent; peers see EOF/RST.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_buf.h"
#include "ts_clock.h"
#include "ts_config.h"
#include "ts_ev.h"
#include "ts_ev_int.h"

enum { EC_CONNECTING = 1, EC_HANDSHAKE, EC_READY };

struct ts_ev_conn_s {
    ts_ev_t          *ev;
    ts_ev_io_t        io;
    ts_ev_timer_t     deadline;     /* connect, then handshake */
    ts_ev_conn_cfg_t  cfg;
    uint8_t           expect_fp[TS_FP_B];
    ts_ev_conn_cb_t   cb;
    void             *data;
    ts_conn_t        *c;            /* NULL while connecting */
    int               fd;
    int               state;
    int               paused, eof, drained;
    int               want_write;
    ts_ev_conn_writer_cb writer;
    int               depth;        /* inside a handler of this link */
    int               closing, close_err;
    char              why[160];
    uint8_t          *in;
    size_t            in_len, in_cap;
    ts_wbuf_t         out;
    size_t            out_off;
    uint32_t          rd_want, wr_want;  /* TLS: the other direction */
    int64_t           frame_ms, last_ms;
};

static __thread uint8_t ev_rbuf[TS_EV_READ_CHUNK_B];

static void ec_handle(ts_ev_t *ev, ts_ev_io_t *io, uint32_t events);

/* ---- closing --------------------------------------------------------- */

static size_t
ec_out_pending(const ts_ev_conn_t *ec)
{
    return ec->out.len - ec->out_off;
}

static void
ec_finish(ts_ev_conn_t *ec)
{
    ts_ev_conn_cb_t cb = ec->cb;
    char            why[sizeof(ec->why)];
    int             err = ec->close_err;

    ts_ev_del(ec->ev, &ec->io);
    ts_ev_timer_cancel(ec->ev, &ec->deadline);
    ts_ev_out_add(ec->ev, -(int64_t) ec_out_pending(ec));
    if (ec->c != NULL) {
        ts_conn_free(ec->c);
    } else if (ec->fd >= 0) {
        close(ec->fd);
    }
    free(ec->in);
    ts_wbuf_free(&ec->out);
    memcpy(why, ec->why, sizeof(why));
    if (cb.on_close != NULL) {
        cb.on_close(ec, err, why);
    }
    free(ec);
}

/* Marks ec for closing (the first reason wins); the loop finishes it. */
static void
ec_fail(ts_ev_conn_t *ec, int err, const char *why)
{
    if (ec->closing) {
        return;
    }
    ec->closing = 1;
    ec->close_err = err;
    snprintf(ec->why, sizeof(ec->why), "%s", why);
    ts_ev_again(ec->ev, &ec->io);
}

void
ts_ev_conn_close(ts_ev_conn_t *ec, int err, const char *why)
{
    ec_fail(ec, err, why != NULL ? why : "closed");
    if (ec->depth == 0) {
        ec_finish(ec);
    }
}

static void
ec_deadline(ts_ev_t *ev, ts_ev_timer_t *t)
{
    ts_ev_conn_t *ec = t->data;

    ts_ev_conn_close(ec, ETIMEDOUT, ec->state == EC_CONNECTING
                                    ? "connect timed out"
                                    : "TLS handshake timed out");
}

/* ---- setting up ------------------------------------------------------ */

static ts_ev_conn_t *
ec_new(ts_ev_t *ev, const ts_ev_conn_cfg_t *cfg, const ts_ev_conn_cb_t *cb,
       void *data)
{
    ts_ev_conn_t *ec = calloc(1, sizeof(*ec));
    size_t        frame = TS_FRAME_HDR_B + (size_t) cfg->max_frame_b;

    if (ec == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    ec->ev = ev;
    ec->cfg = *cfg;
    if (cfg->expect_fp != NULL) {
        memcpy(ec->expect_fp, cfg->expect_fp, TS_FP_B);
        ec->cfg.expect_fp = ec->expect_fp;
    }
    if (ec->cfg.in_budget_b < frame) {
        ec->cfg.in_budget_b = frame;
    }
    if (ec->cfg.out_soft_b == 0 || ec->cfg.out_soft_b > ec->cfg.out_max_b) {
        ec->cfg.out_soft_b = ec->cfg.out_max_b;
    }
    ec->cb = *cb;
    ec->data = data;
    ec->fd = -1;
    ec->last_ms = ts_now_ms();
    ts_wbuf_init(&ec->out);
    ts_ev_timer_init(&ec->deadline, ec_deadline, ec);
    return ec;
}

/* arms the deadline of the phase ec enters (none for ms <= 0) */
static int
ec_phase(ts_ev_conn_t *ec, int state, int ms)
{
    ec->state = state;
    if (ms <= 0) {
        ts_ev_timer_cancel(ec->ev, &ec->deadline);
        return 0;
    }
    return ts_ev_timer_in(ec->ev, &ec->deadline, ms);
}

ts_ev_conn_t *
ts_ev_conn_connect(ts_ev_t *ev, const char *ip, uint16_t port,
                   const ts_ev_conn_cfg_t *cfg, const ts_ev_conn_cb_t *cb,
                   void *data)
{
    ts_ev_conn_t *ec = ec_new(ev, cfg, cb, data);
    int           saved;

    if (ec == NULL) {
        return NULL;
    }
    ec->fd = ts_net_connect_start(ip, port);
    if (ec->fd < 0
        || ts_ev_add(ev, &ec->io, ec->fd, EPOLLOUT, ec_handle, ec) != 0
        || ec_phase(ec, EC_CONNECTING, cfg->connect_ms) != 0)
    {
        saved = errno;
        ts_ev_del(ev, &ec->io);
        if (ec->fd >= 0) {
            close(ec->fd);
        }
        free(ec);
        errno = saved;
        return NULL;
    }
    return ec;
}

ts_ev_conn_t *
ts_ev_conn_adopt(ts_ev_t *ev, ts_conn_t *c, const ts_ev_conn_cfg_t *cfg,
                 const ts_ev_conn_cb_t *cb, void *data)
{
    ts_ev_conn_t *ec = ec_new(ev, cfg, cb, data);
    int           saved;

    if (ec == NULL) {
        ts_conn_free(c);
        return NULL;
    }
    ec->c = c;
    ec->fd = ts_conn_fd(c);
    if (ts_net_set_nonblock(ec->fd, 1) != 0
        || ts_ev_add(ev, &ec->io, ec->fd, EPOLLIN, ec_handle, ec) != 0
        || ec_phase(ec, EC_HANDSHAKE, cfg->handshake_ms) != 0)
    {
        saved = errno;
        ts_ev_del(ev, &ec->io);
        ts_ev_timer_cancel(ev, &ec->deadline);
        ts_conn_free(c);
        free(ec);
        errno = saved;
        return NULL;
    }
    /* a TLS client speaks first: the first step runs from the loop */
    ts_ev_again(ev, &ec->io);
    return ec;
}

/* ---- output ---------------------------------------------------------- */

static void
ec_flush(ts_ev_conn_t *ec)
{
    ssize_t n;

    while (ec->out_off < ec->out.len) {
        n = ts_conn_write(ec->c, ec->out.data + ec->out_off,
                          ec->out.len - ec->out_off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                ec->wr_want = ts_conn_is_tls(ec->c)
                              && ts_conn_want(ec->c) == 1 ? EPOLLIN : 0;
                return;
            }
            ec_fail(ec, errno, "write failed");
            return;
        }
        ec->wr_want = 0;
        ec->out_off += (size_t) n;
        ts_ev_out_add(ec->ev, -n);
        ec->last_ms = ts_now_ms();
    }
    ts_wbuf_reset(&ec->out);
    ec->out_off = 0;
    if (ec->out.cap > ec->cfg.out_soft_b) {
        ts_wbuf_free(&ec->out);
        ts_wbuf_init(&ec->out);
    }
    if (ec->eof) {
        ec_fail(ec, ec->in_len > 0 ? ECONNRESET : 0,
                ec->in_len > 0 ? "peer closed in the middle of a frame"
                               : "peer closed");
    }
}

static int  ec_reading(const ts_ev_conn_t *ec);
static void ec_update(ts_ev_conn_t *ec);

static int
ec_queue(ts_ev_conn_t *ec, const void *a, size_t an, const void *b,
         size_t bn)
{
    size_t len0 = ec->out.len;

    if (ec->closing) {
        errno = EPIPE;
        return -1;
    }
    if (ec_out_pending(ec) + an + bn > ec->cfg.out_max_b) {
        errno = ENOBUFS;
        return -1;
    }
    ts_put_raw(&ec->out, a, an);
    if (bn > 0) {
        ts_put_raw(&ec->out, b, bn);
    }
    if (ec->out.err) {
        /* no half frame may stay queued */
        ec->out.len = len0;
        ec->out.err = 0;
        errno = ENOMEM;
        return -1;
    }
    ts_ev_out_add(ec->ev, (int64_t) (an + bn));
    if (ec->state == EC_READY) {
        ec_flush(ec);
    }
    if (ec->depth == 0 && !ec->closing) {
        ec_update(ec);
    }
    return 0;
}

int
ts_ev_conn_send(ts_ev_conn_t *ec, const void *p, size_t n)
{
    return ec_queue(ec, p, n, NULL, 0);
}

int
ts_ev_conn_send_frame(ts_ev_conn_t *ec, uint8_t type, uint8_t flags,
                      uint64_t reqid, const void *payload, uint32_t len)
{
    uint8_t hdr[TS_FRAME_HDR_B];

    if (len > 0 && payload == NULL) {
        errno = EINVAL;
        return -1;
    }
    ts_frame_hdr_make(hdr, type, flags, reqid, len);
    return ec_queue(ec, hdr, sizeof(hdr), payload, len);
}

/* ---- input ----------------------------------------------------------- */

/* Delivers the whole frames buffered; a bad header fails the link even
 * while input is paused (nothing more is read for it). */
static void
ec_dispatch(ts_ev_conn_t *ec)
{
    ts_frame_hdr_t h;
    size_t         off = 0, flen;

    while (!ec->closing && ec->in_len - off >= TS_FRAME_HDR_B) {
        if (ts_frame_hdr_decode(ec->in + off, &h, UINT32_MAX) != 0) {
            ec_fail(ec, EPROTO, "bad frame header");
            return;
        }
        if (h.len > ec->cfg.max_frame_b) {
            ec_fail(ec, EMSGSIZE, "frame too big");
            return;
        }
        flen = TS_FRAME_HDR_B + (size_t) h.len;
        if (ec->paused || ec->in_len - off < flen) {
            break;
        }
        ec->cb.on_frame(ec, &h, ec->in + off + TS_FRAME_HDR_B);
        off += flen;
    }
    if (off == 0) {
        return;
    }
    memmove(ec->in, ec->in + off, ec->in_len - off);
    ec->in_len -= off;
    ec->frame_ms = ec->in_len > 0 ? ts_now_ms() : 0;
}

/* 1 if ec may read now */
static int
ec_reading(const ts_ev_conn_t *ec)
{
    return ec->state == EC_READY && !ec->closing && !ec->paused && !ec->eof
           && ec->in_len < ec->cfg.in_budget_b
           && ec_out_pending(ec) <= ec->cfg.out_soft_b;
}

/* keeps the n bytes just read; 0 or -1 (failed) */
static int
ec_keep(ts_ev_conn_t *ec, const uint8_t *p, size_t n)
{
    uint8_t *nb;
    size_t   need = ec->in_len + n, ncap;

    if (need > ec->in_cap) {
        ncap = ec->in_cap * 2 > need ? ec->in_cap * 2 : need;
        if (ncap > ec->cfg.in_budget_b) {
            ncap = ec->cfg.in_budget_b;
        }
        nb = realloc(ec->in, ncap);
        if (nb == NULL) {
            ec_fail(ec, ENOMEM, "out of memory");
            return -1;
        }
        ec->in = nb;
        ec->in_cap = ncap;
    }
    memcpy(ec->in + ec->in_len, p, n);
    if (ec->in_len == 0) {
        ec->frame_ms = ts_now_ms();
    }
    ec->in_len = need;
    ec->last_ms = ts_now_ms();
    return 0;
}

static void
ec_input(ts_ev_conn_t *ec)
{
    size_t  room;
    ssize_t n;
    int     rounds;

    ec->drained = 0;
    for (rounds = 0; ; rounds++) {
        ec_dispatch(ec);
        if (!ec_reading(ec) || rounds == TS_EV_ROUNDS_N) {
            break;
        }
        room = ec->cfg.in_budget_b - ec->in_len;
        n = ts_conn_read(ec->c, ev_rbuf,
                         room < sizeof(ev_rbuf) ? room : sizeof(ev_rbuf));
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                ec->rd_want = ts_conn_is_tls(ec->c)
                              && ts_conn_want(ec->c) == 2 ? EPOLLOUT : 0;
                ec->drained = 1;
                break;
            }
            ec_fail(ec, errno, "read failed");
            return;
        }
        ec->rd_want = 0;
        if (n == 0) {
            ec->eof = 1;
            ec_dispatch(ec);
            break;
        }
        if (ec_keep(ec, ev_rbuf, (size_t) n) != 0) {
            return;
        }
    }
    if (ec->in_len == 0 && ec->in != NULL) {
        free(ec->in);
        ec->in = NULL;
        ec->in_cap = 0;
    }
    if (ec->eof && ec_out_pending(ec) == 0) {
        ec_flush(ec);           /* nothing to send: closes */
    }
}

/* ---- the handler ----------------------------------------------------- */

static void
ec_ready(ts_ev_conn_t *ec)
{
    ts_ev_timer_cancel(ec->ev, &ec->deadline);
    ec->state = EC_READY;
    ec->last_ms = ts_now_ms();
    if (ec->cb.on_ready != NULL) {
        ec->cb.on_ready(ec);
    }
}

static void
ec_handshake(ts_ev_conn_t *ec)
{
    char why[sizeof(ec->why)];
    int  rc = ts_conn_handshake_step(ec->c);

    if (rc > 0) {
        ec_ready(ec);
        return;
    }
    if (rc < 0) {
        snprintf(why, sizeof(why), "TLS handshake failed%s%s",
                 ts_tls_last_error()[0] ? ": " : "", ts_tls_last_error());
        ec_fail(ec, errno, why);
    }
}

static void
ec_connected(ts_ev_conn_t *ec)
{
    int fd = ec->fd;

    if (ts_net_connect_finish(fd) != 0) {
        ec_fail(ec, errno, "connect failed");
        return;
    }
    ec->c = ec->cfg.tls != NULL
            ? ts_conn_new_tls(fd, ec->cfg.tls, ec->cfg.expect_tracker,
                              ec->cfg.expect_fp)
            : ts_conn_new(fd);
    if (ec->c == NULL) {
        /* the fd was closed (and so left the epoll set) */
        ts_ev_del(ec->ev, &ec->io);
        ec->fd = -1;
        ec_fail(ec, ENOMEM, "out of memory");
        return;
    }
    if (ec_phase(ec, EC_HANDSHAKE, ec->cfg.handshake_ms) != 0) {
        ec_fail(ec, ENOMEM, "out of memory");
        return;
    }
    ec_handshake(ec);
}

static void
ec_update(ts_ev_conn_t *ec)
{
    uint32_t m = 0;

    if (ec->state == EC_CONNECTING) {
        m = EPOLLOUT;
    } else if (ec->state == EC_HANDSHAKE) {
        m = ts_conn_want(ec->c) == 2 ? EPOLLOUT : EPOLLIN;
    } else {
        if (ec_reading(ec)) {
            m |= EPOLLIN | ec->rd_want;
            /* input stopped with bytes left (budget, fairness, TLS) */
            if (!ec->drained) {
                ts_ev_again(ec->ev, &ec->io);
            }
        }
        if (ec_out_pending(ec) > 0) {
            m |= EPOLLOUT | ec->wr_want;
        } else if (ec->want_write && ec->writer != NULL) {
            m |= EPOLLOUT;
        }
    }
    if (ts_ev_mod(ec->ev, &ec->io, m) != 0) {
        ec_fail(ec, errno, "epoll_ctl failed");
    }
}

static void
ec_handle(ts_ev_t *ev, ts_ev_io_t *io, uint32_t events)
{
    ts_ev_conn_t *ec = io->data;

    ec->depth++;
    if (!ec->closing && ec->state == EC_CONNECTING) {
        if (events != 0) {
            ec_connected(ec);
        }
    } else if (!ec->closing && ec->state == EC_HANDSHAKE) {
        ec_handshake(ec);
    }
    if (!ec->closing && ec->state == EC_READY) {
        if (ec_out_pending(ec) > 0) {
            ec_flush(ec);
        }
        if (!ec->closing && ec_out_pending(ec) == 0 && ec->want_write
            && ec->writer != NULL && (events & EPOLLOUT || events == 0))
        {
            ec->writer(ec);
        }
        if (!ec->closing) {
            ec_input(ec);
        }
        if (!ec->closing && (events & EPOLLERR)) {
            ec_fail(ec, ECONNRESET, "connection error");
        } else if (!ec->closing && (events & EPOLLHUP)
                   && !ec_reading(ec))
        {
            ec_fail(ec, ECONNRESET, "peer gone");
        }
    }
    ec->depth--;
    if (ec->closing) {
        ec_finish(ec);
        return;
    }
    ec_update(ec);
}

/* ---- accessors ------------------------------------------------------- */

void
ts_ev_conn_pause_input(ts_ev_conn_t *ec, int paused)
{
    if (ec->paused == !!paused) {
        return;
    }
    ec->paused = !!paused;
    if (!ec->paused) {
        ec->drained = 0;        /* frames may be buffered: deliver them */
    }
    if (ec->depth == 0 && !ec->closing) {
        ec_update(ec);
    }
}

void
ts_ev_conn_set_writer(ts_ev_conn_t *ec, ts_ev_conn_writer_cb cb)
{
    ec->writer = cb;
}

void
ts_ev_conn_want_write(ts_ev_conn_t *ec, int on)
{
    if (ec->want_write == !!on) {
        return;
    }
    ec->want_write = !!on;
    if (ec->depth == 0 && !ec->closing) {
        ec_update(ec);
    }
}

void
ts_ev_conn_touch(ts_ev_conn_t *ec)
{
    ec->last_ms = ts_now_ms();
}

void
ts_ev_conn_set_max_frame(ts_ev_conn_t *ec, uint32_t max_frame_b)
{
    size_t frame = TS_FRAME_HDR_B + (size_t) max_frame_b;

    ec->cfg.max_frame_b = max_frame_b;
    if (ec->cfg.in_budget_b < frame) {
        ec->cfg.in_budget_b = frame;
    }
}

ts_conn_t *
ts_ev_conn_conn(const ts_ev_conn_t *ec)
{
    return ec->c;
}

void *
ts_ev_conn_data(const ts_ev_conn_t *ec)
{
    return ec->data;
}

int
ts_ev_conn_ready(const ts_ev_conn_t *ec)
{
    return ec->state == EC_READY;
}

size_t
ts_ev_conn_out_pending(const ts_ev_conn_t *ec)
{
    return ec_out_pending(ec);
}

size_t
ts_ev_conn_in_pending(const ts_ev_conn_t *ec)
{
    return ec->in_len;
}

int64_t
ts_ev_conn_frame_ms(const ts_ev_conn_t *ec)
{
    return ec->frame_ms;
}

int64_t
ts_ev_conn_last_ms(const ts_ev_conn_t *ec)
{
    return ec->last_ms;
}
