/*
 * ts_ev.h -- the one event layer of Tessera's event loops (the
 * downloader and uploader workers, the tracker request worker).
 *
 * Purpose: what each loop would otherwise write again -- epoll
 * registration, timers, the supervisor's stop fd, a "handle again before
 * sleeping" list (TLS keeps decrypted bytes epoll cannot see; fairness
 * caps), and, for a framed link, a non-blocking connect and a TLS
 * handshake each with a deadline, a per-connection output queue with a
 * byte cap and backpressure, and ts_proto frame assembly with the length
 * checked against a maximum before anything is buffered for it.
 *
 * Three levels; a loop may adopt any of them alone, in this order:
 *   1. ts_ev_t + ts_ev_io_t: a registered fd and its callback (the
 *      caller embeds the ts_ev_io_t in its own struct: no allocation);
 *      ts_ev_set_stop_fd; ts_ev_again; ts_ev_run / ts_ev_run_once.
 *   2. ts_ev_timer_t: one-shot timers on the monotonic clock (ts_clock),
 *      embedded by the caller, fired in time order (equal times in the
 *      order they were armed).
 *   3. ts_ev_conn_t: a framed connection (allocated by the layer) that
 *      reports whole frames, readiness and its close through callbacks;
 *      output the queue does not hold (sendfile) goes through a writer
 *      callback that runs when the socket may take more.
 *
 * Threading: a ts_ev_t and everything registered with it belong to the
 * thread that runs it; nothing here locks.  Other threads wake the loop
 * through an fd of their own (an eventfd registered as a ts_ev_io_t).
 *
 * Ownership: the caller owns ts_ev_io_t and ts_ev_timer_t memory and
 * must ts_ev_del / ts_ev_timer_cancel them before freeing it; deleting an
 * io during dispatch is safe (a later event of the same batch for it is
 * dropped).  A ts_ev_conn_t is owned by the layer: it owns its ts_conn_t
 * and its fd, and is freed right after its on_close callback returns
 * (so on_close is where the caller drops its pointer).  ts_ev_free does
 * not close conns: close them first.
 *
 * Callbacks run from ts_ev_run_once only (ts_ev_conn_close called outside
 * a callback runs on_close at once).  A conn callback may call anything
 * on its own conn, including ts_ev_conn_close: the close then completes
 * when the callback returns.
 *
 * Crash behaviour: nothing persistent; the kernel closes the fds of a
 * dead process and peers see EOF/RST.
 */
#ifndef TS_EV_H_INCLUDED
#define TS_EV_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "ts_proto.h"
#include "ts_net.h"
#include "ts_tls.h"

/* ---- the loop, fds --------------------------------------------------- */

typedef struct ts_ev_s    ts_ev_t;
typedef struct ts_ev_io_s ts_ev_io_t;

/* events: the epoll bits that fired (EPOLLIN, EPOLLOUT, EPOLLHUP,
 * EPOLLERR), or 0 when called from the again list. */
typedef void (*ts_ev_io_cb)(ts_ev_t *ev, ts_ev_io_t *io, uint32_t events);

struct ts_ev_io_s {
    int          fd;
    uint32_t     events;        /* the mask registered now */
    ts_ev_io_cb  cb;
    void        *data;          /* the caller's */
    /* private to ts_ev.c */
    int          added;
    int          again;
    ts_ev_io_t  *again_next;
};

ts_ev_t *ts_ev_new(void);               /* NULL with errno */
void     ts_ev_free(ts_ev_t *ev);

/* Registers fd with the epoll mask events (EPOLLIN, EPOLLOUT, also
 * EPOLLEXCLUSIVE for a listening socket several processes share).  The
 * fd stays the caller's.  0 or -1 with errno. */
int  ts_ev_add(ts_ev_t *ev, ts_ev_io_t *io, int fd, uint32_t events,
               ts_ev_io_cb cb, void *data);
/* Changes the mask; no system call when it is unchanged.  0 or -1. */
int  ts_ev_mod(ts_ev_t *ev, ts_ev_io_t *io, uint32_t events);
/* Unregisters (also from the again list); safe on an io never added. */
void ts_ev_del(ts_ev_t *ev, ts_ev_io_t *io);
/* io's callback runs once more (events 0) before the loop next sleeps. */
void ts_ev_again(ts_ev_t *ev, ts_ev_io_t *io);

/* The loop stops when fd becomes readable (the supervisor's stop pipe or
 * eventfd; it is never read here, so it stays readable).  -1 = none. */
int  ts_ev_set_stop_fd(ts_ev_t *ev, int fd);
/* Stops ts_ev_run after the current turn (from any callback). */
void ts_ev_stop(ts_ev_t *ev);
/* 1 once the stop fd fired or ts_ev_stop was called. */
int  ts_ev_stopped(const ts_ev_t *ev);

/* One turn: waits at most max_wait_ms (-1 = until an event; less when a
 * timer is due or the again list is not empty), dispatches the events,
 * the again list and the due timers.  0, or -1 with errno when epoll
 * failed (EINTR is not a failure). */
int  ts_ev_run_once(ts_ev_t *ev, int max_wait_ms);
/* Turns until stopped.  0, or -1 as ts_ev_run_once. */
int  ts_ev_run(ts_ev_t *ev);

/* ---- timers ---------------------------------------------------------- */

typedef struct ts_ev_timer_s ts_ev_timer_t;
typedef void (*ts_ev_timer_cb)(ts_ev_t *ev, ts_ev_timer_t *t);

struct ts_ev_timer_s {
    int64_t         at_ms;      /* monotonic (ts_now_ms) due time */
    ts_ev_timer_cb  cb;
    void           *data;       /* the caller's */
    /* private to ts_ev.c */
    size_t          slot;       /* heap index + 1; 0 = not armed */
    uint64_t        seq;
};

void ts_ev_timer_init(ts_ev_timer_t *t, ts_ev_timer_cb cb, void *data);
/* Arms (or re-arms) t for the monotonic time at_ms / ms from now.  A
 * fired timer is disarmed before its callback runs, which may re-arm it.
 * 0 or -1 (ENOMEM). */
int  ts_ev_timer_at(ts_ev_t *ev, ts_ev_timer_t *t, int64_t at_ms);
int  ts_ev_timer_in(ts_ev_t *ev, ts_ev_timer_t *t, int ms);
void ts_ev_timer_cancel(ts_ev_t *ev, ts_ev_timer_t *t);
int  ts_ev_timer_armed(const ts_ev_timer_t *t);

/* ---- framed connections ---------------------------------------------- */

typedef struct ts_ev_conn_s ts_ev_conn_t;

typedef struct {
    uint32_t    max_frame_b;    /* payload bytes a header may announce;
                                   more fails the link with EMSGSIZE */
    size_t      in_budget_b;    /* input bytes held at most (raised to
                                   one whole frame); when full, reading
                                   stops until frames are taken */
    size_t      out_max_b;      /* queued output over this: the send
                                   fails with ENOBUFS, nothing queued */
    size_t      out_soft_b;     /* queued output over this: input is not
                                   read (backpressure; 0 = out_max_b) */
    int         connect_ms;     /* ts_ev_conn_connect: TCP deadline */
    int         handshake_ms;   /* TLS handshake deadline (0: none) */
    ts_tls_t   *tls;            /* connect: NULL = plain */
    int         expect_tracker; /* connect: ts_conn_new_tls arguments */
    const uint8_t *expect_fp;   /* connect: copied; NULL = none */
} ts_ev_conn_cfg_t;

typedef struct {
    /* The link can carry frames (TCP up, TLS handshake done): peer
     * identity is available through ts_ev_conn_conn().  May be NULL. */
    void (*on_ready)(ts_ev_conn_t *ec);
    /* One whole frame; payload (h->len bytes) is borrowed until return.
     * Pause input or close from here as needed. */
    void (*on_frame)(ts_ev_conn_t *ec, const ts_frame_hdr_t *h,
                     const uint8_t *payload);
    /* The link ended, once: err 0 (the peer closed and all output was
     * sent, or ts_ev_conn_close(ec, 0, ...)), ETIMEDOUT (connect or
     * handshake deadline), EMSGSIZE / EPROTO (bad frame), ECONNREFUSED,
     * EPERM (wrong identity), ECONNRESET, ENOMEM, ...; why says it in
     * words.  ec is freed when this returns. */
    void (*on_close)(ts_ev_conn_t *ec, int err, const char *why);
} ts_ev_conn_cb_t;

/* Starts a non-blocking connect to ip:port (TLS per cfg->tls once TCP is
 * up), each phase with its deadline.  NULL with errno (nothing
 * registered, no callback) when it cannot even start. */
ts_ev_conn_t *ts_ev_conn_connect(ts_ev_t *ev, const char *ip, uint16_t port,
                                 const ts_ev_conn_cfg_t *cfg,
                                 const ts_ev_conn_cb_t *cb, void *data);
/* Adopts a connection (accepted, or connected some other way; plain or
 * from ts_conn_new_tls): it is made non-blocking and its handshake runs
 * with cfg->handshake_ms.  On failure (NULL, errno) c is freed too. */
ts_ev_conn_t *ts_ev_conn_adopt(ts_ev_t *ev, ts_conn_t *c,
                               const ts_ev_conn_cfg_t *cfg,
                               const ts_ev_conn_cb_t *cb, void *data);

/* Queues bytes (a whole frame: never half of one) and writes what the
 * socket takes now.  0, or -1 with errno ENOBUFS (over out_max_b),
 * ENOMEM, EPIPE (closing); nothing queued then.  A write error closes
 * the link from the loop, never inside this call. */
int  ts_ev_conn_send(ts_ev_conn_t *ec, const void *p, size_t n);
int  ts_ev_conn_send_frame(ts_ev_conn_t *ec, uint8_t type, uint8_t flags,
                           uint64_t reqid, const void *payload,
                           uint32_t len);
/* Input on or off (a full request queue, a job pending); on again, the
 * frames already buffered are delivered from the loop. */
void ts_ev_conn_pause_input(ts_ev_conn_t *ec, int paused);
/* Ends the link (see on_close for err); from a callback of ec the close
 * completes when that callback returns. */
void ts_ev_conn_close(ts_ev_conn_t *ec, int err, const char *why);

/* Output the queue does not hold (a chunk sent with ts_conn_sendfile):
 * while ts_ev_conn_want_write(ec, 1) is on, the writer runs from the
 * loop whenever the queue is empty and the socket may take more.  It
 * writes on ts_ev_conn_conn(ec) itself (EAGAIN is fine: it runs again
 * when the socket is writable), calls ts_ev_conn_touch on progress, and
 * turns want_write off when it has nothing left. */
typedef void (*ts_ev_conn_writer_cb)(ts_ev_conn_t *ec);
void ts_ev_conn_set_writer(ts_ev_conn_t *ec, ts_ev_conn_writer_cb cb);
void ts_ev_conn_want_write(ts_ev_conn_t *ec, int on);
/* A byte went in or out (ts_ev_conn_last_ms is now). */
void ts_ev_conn_touch(ts_ev_conn_t *ec);
/* Changes cfg.max_frame_b (e.g. larger once the peer logged in); the
 * input budget grows to one whole frame if needed. */
void ts_ev_conn_set_max_frame(ts_ev_conn_t *ec, uint32_t max_frame_b);

ts_conn_t *ts_ev_conn_conn(const ts_ev_conn_t *ec);  /* NULL connecting */
void      *ts_ev_conn_data(const ts_ev_conn_t *ec);
int        ts_ev_conn_ready(const ts_ev_conn_t *ec);
size_t     ts_ev_conn_out_pending(const ts_ev_conn_t *ec);   /* bytes */
size_t     ts_ev_conn_in_pending(const ts_ev_conn_t *ec);    /* bytes */
/* When the unfinished frame in the input began (monotonic ms), 0 if
 * none; when a byte last went in or out. */
int64_t    ts_ev_conn_frame_ms(const ts_ev_conn_t *ec);
int64_t    ts_ev_conn_last_ms(const ts_ev_conn_t *ec);
/* Output queued on all conns of ev (for a loop-wide cap). */
uint64_t   ts_ev_out_total(const ts_ev_t *ev);

#endif
