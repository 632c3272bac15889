/*
 * trk_wbatch.c -- a request worker's group commit: replies held until
 * the writes of their loop turn are durable (see trk_wbatch.h).
 *
 * Purpose: trk_ops runs every write request of a loop turn as a part of
 * one tdb transaction (trk_store_sub_begin); their replies, and every
 * other reply produced while that batch is open, are held here in the
 * order they were made.  At the end of the turn (trk_worker.c's loop)
 * trk_wbatch_end commits the batch -- one fsync for all of them -- and
 * only then sends the replies.  If the batch failed, each write's reply
 * becomes TS_ERR_BUSY "try again": none of the batch is durable, and a
 * client's retry with the same request id runs it afresh (or, had a
 * part been committed by an earlier flush, finds its reply-cache entry).
 * Reads in the turn see the batch's writes before they are durable; they
 * are answered after the commit too, so no client sees a write before
 * the tracker has it on disk (only a failed commit could contradict a
 * read, and that fails the writes it showed).
 *
 * Memory: the held payloads are copies, at most one turn's replies (each
 * connection runs at most TS_TRK_REQS_PER_TURN_N requests a turn).
 *
 * Locking: the worker's event-loop thread only.
 *
 * Crash behaviour: nothing durable here; see trk_wbatch.h.
 */
#include <stdlib.h>
#include <string.h>

#include "ts_log.h"
#include "ts_proto.h"
#include "trk_store.h"
#include "trk_wbatch.h"
#include "trk_wconn.h"

typedef struct {
    trk_wconn_t *c;
    uint64_t     cid;           /* c->id when held: c may be gone */
    uint64_t     reqid;
    int          write;
    ts_wbuf_t    p;
} held_t;

static held_t  *held;
static size_t   nheld;
static size_t   capheld;


int
trk_wbatch_holding(const trk_wconn_t *c)
{
    size_t i;

    for (i = nheld; i > 0; i--) {
        if (held[i - 1].c == c && held[i - 1].cid == c->id) {
            return 1;
        }
    }
    return 0;
}


int
trk_wbatch_hold(trk_wconn_t *c, uint64_t reqid, const ts_wbuf_t *p,
                int write)
{
    held_t *h;

    if (!trk_store_batch_pending(trk_wk.env.st) && !trk_wbatch_holding(c)) {
        return 0;
    }
    if (nheld == capheld) {
        size_t  ncap = capheld ? capheld * 2 : 64;
        held_t *nh = realloc(held, ncap * sizeof(*nh));

        if (nh == NULL) {
            trk_wconn_close(c, "out of memory");
            return -1;
        }
        held = nh;
        capheld = ncap;
    }
    h = &held[nheld];
    h->c = c;
    h->cid = c->id;
    h->reqid = reqid;
    h->write = write;
    ts_wbuf_init(&h->p);
    ts_put_raw(&h->p, p->data, p->len);
    if (h->p.err) {
        ts_wbuf_free(&h->p);
        trk_wconn_close(c, "out of memory");
        return -1;
    }
    nheld++;
    return 1;
}


static int
alive(const held_t *h)
{
    return !h->c->dead && h->c->id == h->cid;
}


void
trk_wbatch_end(trk_wbatch_send_fn send_fn, trk_wbatch_settle_fn settle_fn)
{
    ts_wbuf_t busy;
    size_t    i, n = nheld;
    int       failed;

    failed = trk_store_batch_end(trk_wk.env.st) != 0;
    if (n == 0) {
        return;
    }
    if (failed) {
        ts_warn("a group commit failed: %s; its writes are answered "
                "\"try again\"", trk_store_errstr(trk_wk.env.st));
    }
    ts_wbuf_init(&busy);
    ts_reply_begin(&busy, TS_ERR_BUSY,
                   "tracker database write failed; try again");
    nheld = 0;
    for (i = 0; i < n; i++) {
        held_t *h = &held[i];

        /* in the order they were made */
        if (alive(h)) {
            (void) send_fn(h->c, h->reqid,
                           failed && h->write ? &busy : &h->p);
        }
    }
    for (i = 0; i < n; i++) {
        if (alive(&held[i])) {
            settle_fn(held[i].c);
        }
        ts_wbuf_free(&held[i].p);
    }
    ts_wbuf_free(&busy);
}
