/*
 * trk_wio.h -- a request worker's frames and replies on one connection
 * (inside the worker).
 */
#ifndef TRK_WIO_H_INCLUDED
#define TRK_WIO_H_INCLUDED

#include <stdint.h>
#include "ts_buf.h"
#include "trk_wconn.h"

/* 1 if we read from c (and run its requests) now; 0 while it waits for
 * its KDF job, its queued replies, its next turn, or has ended. */
int  trk_wio_reading(const trk_wconn_t *c);
/* c got its input budget: it is read again (before the loop sleeps). */
void trk_wio_resume_read(trk_wconn_t *c);
/* Writes what it can.  -1: the connection was closed. */
int  trk_wio_flush(trk_wconn_t *c);
/* Queues one REPLY frame with payload p, or holds it until the group
 * commit of this loop turn is durable (trk_wbatch.h; write: the request
 * wrote).  -1: the connection was closed. */
int  trk_wio_reply(trk_wconn_t *c, uint64_t reqid, const ts_wbuf_t *p);
int  trk_wio_reply_w(trk_wconn_t *c, uint64_t reqid, const ts_wbuf_t *p,
                     int write);
/* Queues it now, whatever is held (for trk_wbatch.c).  -1: closed. */
int  trk_wio_send(trk_wconn_t *c, uint64_t reqid, const ts_wbuf_t *p);
/* After replies were sent from outside its own callbacks: closes c if its
 * peer has closed and nothing is left, else sets its epoll mask. */
void trk_wio_settle(trk_wconn_t *c);
/* Runs the complete frames in the input buffer, in order, until one must
 * wait or TS_TRK_REQS_PER_TURN_N have run (the rest goes on the ready
 * list).  -1: the connection was closed. */
int  trk_wio_process(trk_wconn_t *c);
/* Reads what c has (driving the TLS handshake first) and runs it. */
void trk_wio_read(trk_wconn_t *c);
/* The io callback of every connection (io->data is the trk_wconn_t):
 * an epoll event, or events 0 from the again list (whole frames waiting
 * for their turn, or bytes TLS holds). */
void trk_wio_on_io(ts_ev_t *ev, ts_ev_io_t *io, uint32_t events);

#endif
