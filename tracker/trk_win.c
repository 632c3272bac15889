/*
 * trk_win.c -- a request worker's input budget: how many bytes of
 * unfinished request frames its connections may hold.
 *
 * Purpose: bound input as the output is bounded.  A frame of at most
 * TS_TRK_IN_FREE_B bytes is read at once (every connection may hold
 * that much; a read never takes more than the frame being assembled
 * may still need, so nothing piles up behind it).  A bigger frame is
 * read only after its whole length is reserved from the worker's budget
 * (--worker-in-max); one that does not fit waits on a list, unread
 * (EPOLLIN off; served oldest first among the frames of the user with
 * the fewest frames waiting or reserved), until reservations go back (a frame consumed, a
 * connection closed) or its frame timeout closes it -- the frame clock
 * keeps running while it waits, so a stalled frame cannot hold its
 * place; once admitted it gets its whole frame timeout to arrive.
 * Frames of a proven peer tracker never wait (a few links each).  All
 * or nothing: a connection reading its frame can always finish it, so
 * stalled half-frames cannot deadlock the budget.  While frames wait, a
 * reserved one that gets no byte for TS_TRK_IN_STALL_MS loses its
 * connection (trk_win_stalled): a stalled frame holds its room for
 * seconds, not for its whole frame timeout.  A frame
 * longer than --conn-in-max closes its connection.  The tracker holds at
 * most --worker-in-max per worker plus TS_TRK_IN_FREE_B per connection
 * of input, whatever its peers send.
 *
 * Locking: the worker's event-loop thread only.
 *
 * Crash behaviour: nothing kept; budget and list die with the worker.
 */
#include "ts_clock.h"
#include "ts_log.h"
#include "trk_wconn.h"
#include "trk_wio.h"


size_t
trk_win_room(const trk_wconn_t *c)
{
    size_t lim = c->in_resv > TS_TRK_IN_FREE_B ? c->in_resv
                                                : TS_TRK_IN_FREE_B;

    if (c->in_wait || c->in_len >= lim) {
        return 0;
    }
    return lim - c->in_len;
}


/* Waiting or reserved frames per user bucket in this worker (the last
 * entry: links with no user); the wait list serves the least loaded
 * user first. */
static uint16_t  user_load[TS_TRK_USER_SLOTS_N + 1];


static void
load_enter(trk_wconn_t *c)
{
    if (!c->in_counted) {
        c->in_ukey = c->has_user ? c->ubucket : TS_TRK_USER_SLOTS_N;
        user_load[c->in_ukey]++;
        c->in_counted = 1;
    }
}


static void
load_leave(trk_wconn_t *c)
{
    if (c->in_counted) {
        user_load[c->in_ukey]--;
        c->in_counted = 0;
    }
}


/* Reserves need for c, an admitted waiter or a newcomer. */
static void
take(trk_wconn_t *c, size_t need)
{
    load_enter(c);
    c->in_resv = need;
    trk_wk.in_total += need;
}


int
trk_win_reserve(trk_wconn_t *c, size_t flen)
{
    if (flen > trk_wk.cfg->conn_in_max) {
        ts_info("%s: %zu-byte frame over --conn-in-max %u", c->peer, flen,
                trk_wk.cfg->conn_in_max);
        trk_wconn_close(c, NULL);
        return -1;
    }
    if (flen <= TS_TRK_IN_FREE_B || c->in_resv >= flen) {
        return 1;
    }
    if (c->link.tracker > 0) {
        /* a proven peer tracker (SYNC_*, a few links each): its frames
         * never wait, so a flood cannot stall replication */
        take(c, flen);
        return 1;
    }
    if (c->in_wait) {
        return 0;
    }
    /* nobody overtakes waiting frames: a newcomer queues behind them */
    if (trk_wk.lists[TRK_WL_WAIT].head == NULL
        && trk_wk.in_total + flen <= trk_wk.cfg->worker_in_max)
    {
        take(c, flen);
        return 1;
    }
    if (trk_wk.lists[TRK_WL_WAIT].head == NULL) {
        ts_info("input budget of this worker used (%llu of --worker-in-max "
                "%llu bytes): %zu-byte frame from %s waits",
                (unsigned long long) trk_wk.in_total,
                (unsigned long long) trk_wk.cfg->worker_in_max, flen,
                c->peer);
    }
    load_enter(c);
    c->in_wait = 1;
    c->in_need = flen;
    trk_wl_push(TRK_WL_WAIT, c);
    return 0;
}


int
trk_win_stalled(const trk_wconn_t *c, int64_t now)
{
    return c->in_resv > 0 && c->link.tracker == 0
           && trk_wk.lists[TRK_WL_WAIT].head != NULL
           && now - c->in_prog_ms > TS_TRK_IN_STALL_MS;
}


/* The waiter to serve next: of the user with the fewest frames waiting
 * or reserved here, the oldest.  One user's many stalled frames thus
 * cannot keep another user's frame waiting behind them. */
static trk_wconn_t *
next_waiter(void)
{
    trk_wconn_t *w, *best = NULL;

    for (w = trk_wk.lists[TRK_WL_WAIT].head; w != NULL;
         w = w->lnext[TRK_WL_WAIT])
    {
        if (best == NULL || user_load[w->in_ukey] < user_load[best->in_ukey])
        {
            best = w;
        }
    }
    return best;
}


void
trk_win_release(trk_wconn_t *c)
{
    trk_wconn_t *w;

    if (c->in_wait) {
        c->in_wait = 0;
        trk_wl_remove(TRK_WL_WAIT, c);
    }
    trk_wk.in_total -= c->in_resv;
    c->in_resv = 0;
    load_leave(c);
    while ((w = next_waiter()) != NULL
           && trk_wk.in_total + w->in_need <= trk_wk.cfg->worker_in_max)
    {
        trk_wl_remove(TRK_WL_WAIT, w);
        w->in_wait = 0;
        take(w, w->in_need);
        w->frame_ms = ts_now_ms();  /* its whole frame timeout to arrive */
        w->in_prog_ms = w->frame_ms;
        trk_wio_resume_read(w);
    }
}
