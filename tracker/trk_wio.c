/*
 * trk_wio.c -- a request worker's frames and replies on one connection:
 * reading and assembling request frames, running them through trk_ops
 * in order, queueing and writing the replies, the epoll mask.
 *
 * Purpose: assemble request frames (header first; the length is checked
 * against TS_FRAME_MAX_B before any buffer grows, and buffers grow only
 * as bytes really arrive: an idle connection holds no input buffer), run
 * each request through trk_ops in order and queue its REPLY.  Requests
 * may be pipelined; a connection whose login or create_user waits for
 * the KDF (trk_kdfq) is simply not read until it is done.  Each request
 * sees its link through env.link.
 *
 * TLS and the event loop: ts_conn_read/ts_conn_write drive the handshake
 * and may want the other direction (ts_conn_want) -- the epoll mask
 * follows; decrypted bytes buffered inside TLS (ts_conn_pending) are not
 * seen by epoll, so such a connection goes on the loop's again list
 * (ts_ev_again), served before the loop next sleeps.  A
 * plaintext client or garbage fails the handshake: the connection is
 * closed, and nothing else happens.
 *
 * Fairness and memory: one connection runs at most TS_TRK_REQS_PER_TURN_N
 * requests per loop turn (the rest waits on the again list, unread);
 * before login a frame may be at most TS_TRK_UNAUTH_FRAME_MAX_B (a bigger
 * one must start with a valid token of a logged-in request type); the
 * replies queued in this worker are summed, and above --worker-out-max
 * connections that have replies queued are not read until it drops
 * (backpressure); a connection with more than TS_TRK_OUT_MAX_B queued is
 * dropped.  Input is bounded the same way (trk_win.c): a frame over
 * TS_TRK_IN_FREE_B is read only once the worker's --worker-in-max budget
 * holds it.  A link over --max-conns-per-user (trk_wadm.c) is closed:
 * before a big first frame's payload is read, else after its reply.
 * Bad input closes that connection only.
 *
 * Locking: the worker's event-loop thread only.
 *
 * Crash behaviour: nothing durable; see trk_worker.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ts_clock.h"
#include "ts_log.h"
#include "ts_proto.h"
#include "trk_kdfq.h"
#include "trk_wbatch.h"
#include "trk_wconn.h"
#include "trk_wio.h"

static uint8_t  rbuf[TS_TRK_READ_CHUNK_B];      /* every read */


/* Reply bytes queued on c. */
static size_t
out_pending(const trk_wconn_t *c)
{
    return c->out.len - c->out_off;
}


/* Backpressure: the worker holds more queued replies than
 * --worker-out-max, and c is one of the connections they wait on. */
static int
backpressured(const trk_wconn_t *c)
{
    return trk_wk.out_total > trk_wk.cfg->worker_out_max && out_pending(c) > 0;
}


/* 1 if we read from c (and run its requests) now; 0 while it waits for
 * its KDF job, its queued replies, its next turn, or has ended. */
int
trk_wio_reading(const trk_wconn_t *c)
{
    return !c->eof && !c->job_pending && !c->backlog && !c->in_wait
           && out_pending(c) < TS_TRK_OUT_SOFT_B && !backpressured(c);
}


void
trk_wio_resume_read(trk_wconn_t *c)
{
    trk_wconn_queue(c);
}


static void
update_events(trk_wconn_t *c)
{
    uint32_t want;
    int      reading;

    want = 0;
    reading = !c->ready || (trk_wio_reading(c) && trk_win_room(c) > 0);
    if (reading) {
        /* TLS may need to write to go on reading (handshake) */
        want |= c->rwant == 2 ? EPOLLOUT : EPOLLIN;
        if (c->ready && ts_conn_pending(c->c) > 0) {
            trk_wconn_queue(c);
        }
    }
    if (c->out.len > c->out_off) {
        want |= c->wwant == 1 ? EPOLLIN : EPOLLOUT;
    }
    if (ts_ev_mod(trk_wk.ev, &c->io, want) != 0) {
        ts_err("epoll_ctl() failed: %s", strerror(errno));
    }
}


/* Writes what it can.  -1: the connection was closed. */
int
trk_wio_flush(trk_wconn_t *c)
{
    ssize_t n;

    while (c->out.len > c->out_off) {
        n = ts_conn_write(c->c, c->out.data + c->out_off,
                          c->out.len - c->out_off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                /* TLS may need to read before it can write on */
                c->wwant = errno == EAGAIN && ts_conn_is_tls(c->c)
                           && ts_conn_want(c->c) == 1 ? 1 : 0;
                break;
            }
            trk_wconn_close(c, "write failed");
            return -1;
        }
        c->wwant = 0;
        c->out_off += (size_t) n;
        trk_wk.out_total -= (uint64_t) n;
        c->wprog_ms = ts_now_ms();
    }
    if (c->out_off == c->out.len) {
        ts_wbuf_reset(&c->out);
        c->out_off = 0;
        c->drain_ms = 0;
        if (c->out.cap > TS_TRK_OUT_SOFT_B) {
            ts_wbuf_free(&c->out);
            ts_wbuf_init(&c->out);
        }
    }
    return 0;
}


/* Queues one REPLY frame with payload p now.  -1: the connection was
 * closed. */
int
trk_wio_send(trk_wconn_t *c, uint64_t reqid, const ts_wbuf_t *p)
{
    uint8_t        hdr[TS_FRAME_HDR_B];
    ts_frame_hdr_t h;

    if (c->out.len - c->out_off + TS_FRAME_HDR_B + p->len > TS_TRK_OUT_MAX_B) {
        trk_wconn_close(c, "peer does not read its replies");
        return -1;
    }
    if (c->out.len == c->out_off) {
        c->wprog_ms = ts_now_ms();
        c->drain_ms = c->wprog_ms;
    }
    h.type = TS_MSG_REPLY;
    h.flags = TS_FF_REPLY;
    h.len = (uint32_t) p->len;
    h.reqid = reqid;
    ts_frame_hdr_encode(hdr, &h);
    {
        size_t before = c->out.len;

        ts_put_raw(&c->out, hdr, sizeof(hdr));
        ts_put_raw(&c->out, p->data, p->len);
        trk_wk.out_total += c->out.len - before;
    }
    if (c->out.err) {
        trk_wconn_close(c, "out of memory");
        return -1;
    }
    c->last_ms = ts_now_ms();
    if (trk_wio_flush(c) != 0) {
        return -1;
    }
    if (trk_wk.out_total > trk_wk.cfg->worker_out_max && !trk_wk.bp_on) {
        trk_wk.bp_on = 1;
        ts_warn("%llu bytes of replies queued in this worker (over "
                "--worker-out-max %llu): connections with queued replies "
                "are not read until it drops",
                (unsigned long long) trk_wk.out_total,
                (unsigned long long) trk_wk.cfg->worker_out_max);
    }
    return 0;
}


int
trk_wio_reply_w(trk_wconn_t *c, uint64_t reqid, const ts_wbuf_t *p,
                int write)
{
    int held = trk_wbatch_hold(c, reqid, p, write);

    if (held != 0) {
        return held < 0 ? -1 : 0;
    }
    return trk_wio_send(c, reqid, p);
}


int
trk_wio_reply(trk_wconn_t *c, uint64_t reqid, const ts_wbuf_t *p)
{
    return trk_wio_reply_w(c, reqid, p, 0);
}


/* 1 if c has nothing left to do after its peer closed. */
static int
finished(const trk_wconn_t *c)
{
    return c->eof && !c->job_pending && !c->backlog
           && c->out.len == c->out_off && !trk_wbatch_holding(c);
}


void
trk_wio_settle(trk_wconn_t *c)
{
    if (c->dead) {
        return;
    }
    if (finished(c)) {
        trk_wconn_close(c, "peer closed");
        return;
    }
    update_events(c);
}


static void
conn_busy_reply(trk_wconn_t *c, uint64_t reqid)
{
    ts_wbuf_reset(&trk_wk.scratch);
    ts_reply_begin(&trk_wk.scratch, TS_ERR_BUSY, "tracker busy; try again");
    (void) trk_wio_reply(c, reqid, &trk_wk.scratch);
}


/* Before login frames are small (LOGIN, CREATE_USER); a bigger one must
 * be a logged-in request with a valid token for this link, e.g. an
 * upload on a new link after a failover.  1 it is (the link counts as
 * logged in), 0 the token has not arrived yet, -1 it is not (closed). */
static int
big_before_login(trk_wconn_t *c, const ts_frame_hdr_t *h)
{
    int ok;

    if (c->in_len < TS_FRAME_HDR_B + TS_TOKEN_B) {
        return 0;
    }
    trk_wk.env.link = &c->link;
    ok = trk_ops_preauth(&trk_wk.env, h->type, c->in + TS_FRAME_HDR_B,
                         (uint32_t) (c->in_len - TS_FRAME_HDR_B));
    trk_wk.env.link = NULL;
    if (!ok) {
        ts_info("%s: %u-byte %s frame before login", c->peer,
                (unsigned) h->len, ts_msg_name(h->type));
        trk_wconn_close(c, NULL);
        return -1;
    }
    trk_wconn_authed(c);
    if (trk_wadm_user(c, c->link.user) != 0) {
        /* over --max-conns-per-user: before its payload costs anything */
        trk_wconn_close(c, NULL);
        return -1;
    }
    return 1;
}


/* Runs the whole frame h (flen bytes) at the head of c's input and
 * queues its reply, or hands it to the KDF threads.  0 go on with the
 * next frame, 1 stop reading (a KDF job, or the link closes after the
 * reply), -1 the connection was closed. */
static int
run_one(trk_wconn_t *c, const ts_frame_hdr_t *h, size_t flen)
{
    trk_kdf_job_t  *job;
    trk_do_t        what;
    int64_t         t0 = ts_now_us();

    trk_wk.env.link = &c->link;
    what = trk_ops_handle(&trk_wk.env, h->type, h->reqid,
                          c->in + TS_FRAME_HDR_B, h->len, &trk_wk.scratch,
                          &job);
    trk_wk.env.link = NULL;
    if (what == TRK_DO_REPLY) {
        trk_metrics_note(trk_wk.env.shm->reqs, h->type, trk_wk.scratch.data,
                         trk_wk.scratch.len, ts_now_us() - t0);
    }
    if (c->link.authed) {
        trk_wconn_authed(c);
        if (trk_wadm_user(c, c->link.user) != 0) {
            /* over --max-conns-per-user: this answer, then the link
             * closes */
            c->link.close_after = 1;
        }
    }
    ts_debug("%s %s reqid %016llx", c->peer, ts_msg_name(h->type),
             (unsigned long long) h->reqid);
    memmove(c->in, c->in + flen, c->in_len - flen);
    c->in_len -= flen;
    c->frame_ms = c->in_len > 0 ? ts_now_ms() : 0;
    if (what == TRK_DO_CLOSE) {
        ts_info("unexpected %s frame from %s", ts_msg_name(h->type),
                c->peer);
        trk_wconn_close(c, NULL);
        return -1;
    }
    if (what == TRK_DO_DEFER) {
        if (trk_kdfq_submit(job, c->idx, c->id) != 0) {
            trk_kdf_job_abort(&trk_wk.env, job);
            conn_busy_reply(c, h->reqid);
            return c->dead ? -1 : 0;
        }
        c->job_pending = 1;
        return 1;
    }
    if (trk_wio_reply_w(c, h->reqid, &trk_wk.scratch,
                        trk_ops_is_write(h->type)) != 0)
    {
        return -1;
    }
    if (c->link.close_after) {
        /* e.g. SYNC_* without the tracker certificate: the reply
         * goes out, then the link closes; nothing more is read */
        c->eof = 1;
        c->in_len = 0;
        c->frame_ms = 0;
        return 1;
    }
    return 0;
}


/* Runs the complete frames in the input buffer, in order, until one must
 * wait or TS_TRK_REQS_PER_TURN_N have run (the rest goes on the ready
 * list for the next loop turn).  -1: the connection was closed. */
int
trk_wio_process(trk_wconn_t *c)
{
    ts_frame_hdr_t  h;
    size_t          flen;
    int             ran = 0, ok, rc;

    c->backlog = 0;
    while (!c->job_pending && out_pending(c) < TS_TRK_OUT_SOFT_B
           && !backpressured(c))
    {
        if (c->in_len < TS_FRAME_HDR_B) {
            break;
        }
        if (ts_frame_hdr_decode(c->in, &h, TS_FRAME_MAX_B) != 0) {
            ts_info("bad frame header from %s", c->peer);
            trk_wconn_close(c, NULL);
            return -1;
        }
        if (h.flags & TS_FF_REPLY) {
            ts_info("unexpected reply frame from %s", c->peer);
            trk_wconn_close(c, NULL);
            return -1;
        }
        if ((c->unauth || c->promoted)
            && h.len > TS_TRK_UNAUTH_FRAME_MAX_B)
        {
            ok = big_before_login(c, &h);
            if (ok < 0) {
                return -1;
            }
            if (ok == 0) {
                break;
            }
        }
        flen = TS_FRAME_HDR_B + (size_t) h.len;
        ok = trk_win_reserve(c, flen);
        if (ok < 0) {
            return -1;
        }
        if (ok == 0) {
            break;              /* waits for the worker's input budget */
        }
        if (c->in_len < flen) {
            break;
        }
        if (ran == TS_TRK_REQS_PER_TURN_N) {
            /* fair share used: timers and the other connections first */
            c->backlog = 1;
            trk_wconn_queue(c);
            break;
        }
        ran++;
        rc = run_one(c, &h, flen);
        if (rc < 0) {
            return -1;
        }
        if (c->in_resv > 0) {
            trk_win_release(c);     /* the frame is consumed */
        }
        if (rc > 0) {
            break;
        }
    }
    if (finished(c)) {
        trk_wconn_close(c, "peer closed");
        return -1;
    }
    update_events(c);
    return 0;
}


/* Appends the n bytes just read (in rbuf) to c's input buffer.  -1: the
 * connection was closed (no memory). */
static int
in_append(trk_wconn_t *c, size_t n)
{
    ts_frame_hdr_t  h;
    uint8_t        *nb;
    size_t          need, ncap, flen;

    need = c->in_len + n;
    if (need > c->in_cap) {
        /* doubling, but never past the frame being assembled (once
         * its header is known) plus this read */
        ncap = c->in_cap * 2 > need ? c->in_cap * 2 : need;
        if (c->in_len >= TS_FRAME_HDR_B
            && ts_frame_hdr_decode(c->in, &h, TS_FRAME_MAX_B) == 0)
        {
            flen = TS_FRAME_HDR_B + (size_t) h.len;
            if (ncap > flen && flen >= need) {
                ncap = flen;
            } else if (ncap > need && flen < need) {
                ncap = need;
            }
        }
        if (ncap > need && ncap > TS_TRK_IN_FREE_B && c->in_resv == 0) {
            ncap = need > TS_TRK_IN_FREE_B ? need : TS_TRK_IN_FREE_B;
        }
        nb = realloc(c->in, ncap);
        if (nb == NULL) {
            trk_wconn_close(c, "out of memory");
            return -1;
        }
        c->in = nb;
        c->in_cap = ncap;
    }
    memcpy(c->in + c->in_len, rbuf, n);
    c->in_prog_ms = ts_now_ms();
    if (c->in_len == 0) {
        c->frame_ms = c->in_prog_ms;
    }
    c->in_len += n;
    return 0;
}


void
trk_wio_read(trk_wconn_t *c)
{
    ssize_t n;
    size_t  room;

    room = trk_win_room(c);
    if (c->ready && (!trk_wio_reading(c) || room == 0)) {
        update_events(c);
        return;
    }
    if (room > sizeof(rbuf)) {
        room = sizeof(rbuf);
    }
    /* read into the worker's buffer, keep only what arrived: an idle
     * connection holds no input buffer, one in the middle of a frame
     * holds that frame's bytes so far (a header is checked against
     * TS_FRAME_MAX_B as soon as it is whole, in trk_wio_process), and
     * never more than the input budget allows (trk_win.c) */
    n = ts_conn_read(c->c, rbuf, room);
    if (!c->ready && ts_conn_ready(c->c)) {
        trk_wconn_on_ready(c);
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            c->rwant = errno == EAGAIN && ts_conn_is_tls(c->c)
                       && ts_conn_want(c->c) == 2 ? 2 : 0;
            update_events(c);
            return;
        }
        if (!c->ready) {
            ts_info("TLS handshake with %s failed: %s", c->peer,
                    ts_tls_last_error()[0] ? ts_tls_last_error()
                                           : strerror(errno));
            trk_wconn_close(c, NULL);
            return;
        }
        trk_wconn_close(c, "read failed");
        return;
    }
    c->rwant = 0;
    if (n == 0 && !c->ready) {
        trk_wconn_close(c, "closed during the TLS handshake");
        return;
    }
    if (n == 0) {
        c->eof = 1;
    } else {
        if (in_append(c, (size_t) n) != 0) {
            return;
        }
    }
    if (trk_wio_process(c) != 0) {
        return;
    }
    if (c->in_len == 0 && c->in != NULL) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
}


/* An epoll event of a connection. */
static void
conn_event(trk_wconn_t *c, uint32_t ev)
{
    if (ev & (EPOLLERR | EPOLLHUP) && !(ev & EPOLLIN)) {
        trk_wconn_close(c, "socket error");
        return;
    }
    if (!c->ready) {
        trk_wio_read(c);        /* drives the handshake */
        return;
    }
    if ((ev & EPOLLOUT) || ((ev & EPOLLIN) && c->wwant == 1)) {
        if (c->out.len > c->out_off && trk_wio_flush(c) != 0) {
            return;
        }
        if (trk_wio_process(c) != 0) {
            return;
        }
    }
    if ((ev & EPOLLIN) || ((ev & EPOLLOUT) && c->rwant == 2)) {
        trk_wio_read(c);
    }
}


void
trk_wio_on_io(ts_ev_t *ev, ts_ev_io_t *io, uint32_t events)
{
    trk_wconn_t *c = io->data;

    /* a closed connection has left the loop; it is freed after the
     * turn */
    if (c->dead) {
        return;
    }
    if (events != 0) {
        conn_event(c, events);
        return;
    }
    /* from the again list: its next share of requests, then what TLS
     * holds */
    if (c->backlog && (trk_wio_process(c) != 0 || c->backlog)) {
        return;
    }
    if (!c->dead) {
        trk_wio_read(c);
    }
}
