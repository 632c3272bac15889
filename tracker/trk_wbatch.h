/*
 * trk_wbatch.h -- a request worker's group commit: the replies of one
 * event-loop turn wait until the tdb transaction their writes share is
 * durable (trk_store_sub_begin / trk_store_batch_end).
 *
 * Locking: the worker's event-loop thread only.
 * Crash behaviour: held replies are memory only; a worker that dies
 * before the commit sent none of them, and the clients' retries (same
 * request ids) find either the committed reply-cache entries or nothing.
 */
#ifndef TRK_WBATCH_H_INCLUDED
#define TRK_WBATCH_H_INCLUDED

#include <stdint.h>
#include "ts_buf.h"
#include "trk_wconn.h"

/* 1: the reply (payload p, copied) is held until trk_wbatch_end -- a
 * batch is open or ran in this turn, or c already has replies held (its
 * replies keep their order); 0: send it now.  write: the request wrote,
 * so its reply becomes "try again" if the batch fails.  -1: out of
 * memory (c was closed). */
int  trk_wbatch_hold(trk_wconn_t *c, uint64_t reqid, const ts_wbuf_t *p,
                     int write);
/* 1 while c has replies held. */
int  trk_wbatch_holding(const trk_wconn_t *c);
/* The end of a loop turn: commits the batch (one fsync) and sends every
 * held reply to the connections still open, through send (trk_wio_send),
 * then calls settle (trk_wio_settle) on each of them. */
typedef int  (*trk_wbatch_send_fn)(trk_wconn_t *c, uint64_t reqid,
                                   const ts_wbuf_t *p);
typedef void (*trk_wbatch_settle_fn)(trk_wconn_t *c);
void trk_wbatch_end(trk_wbatch_send_fn send, trk_wbatch_settle_fn settle);

#endif
