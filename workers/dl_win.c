/*
 * dl_win.c -- each peer link's request window and deadlines, from what
 * the link measures: its round trip time and its delivery rate.
 *
 * Purpose: a fixed number of GETs in flight is too few for a fast link
 * far away (the pipe drains between replies) and too many for a slow one
 * (chunks sit claimed at a peer that will take ages to send them, while
 * others could).  So each link keeps
 *   - rtt: the least time from sending a request to the first byte of its
 *     reply (a reply to a request that met an idle peer is a round trip;
 *     one that waited behind others is longer), drifting up slowly so a
 *     path that got longer is followed;
 *   - rate: bytes per second of its GET replies, an EWMA over the time
 *     from the previous reply's end (or the request, if the link was
 *     idle) to this one's end, i.e. what the link delivers while busy;
 * and asks for window = ceil(rate x rtt / chunk) + TS_DL_WIN_SPARE_N
 * chunks, within TS_DL_WIN_MIN_N .. TS_DL_WIN_MAX_N: the bandwidth-delay
 * product plus a margin.  The margin makes it grow: a window that is too
 * small leaves the link idle for a round trip per reply, the rate it
 * measures is window / rtt, and the next window is that plus the spare,
 * until the link, not the window, is the limit.  A link that slows down
 * (a narrower cap, loss) measures less and asks for less.
 *
 * The deadlines follow the same figures: a link with requests and no
 * byte back for TS_DL_NOBYTE_RTT_N round trips plus a chunk's time (at
 * least TS_DL_NOBYTE_MIN_MS, at most TS_NODE_PEER_TIMEOUT_MS) is dead;
 * a GET reply taking TS_DL_SLOW_X times its expected time (at least
 * TS_DL_SLOW_MIN_MS, at most the node's slow-reply limit) is slow, and is
 * given up only when another source holds the chunk (dl_worker.c).
 * Unmeasured links use the fixed limits.
 *
 * Locking: none; a link belongs to one worker.  Crash behaviour: nothing
 * here outlives the process; a new link starts measuring again.
 */
#include "ts_clock.h"
#include "dl_int.h"

_Static_assert(TS_DL_WIN_MAX_N + TS_NODE_DOWNLOADS_N <= DL_LINK_QUEUE_N,
               "a link's queue must hold a full window and the AUTHs");

void
dl_win_reset(dl_link_t *k)
{
    k->win = TS_NODE_PIPELINE_N;
    k->rtt_us = 0;
    k->lrate = 0;
}

/* The first byte of the head reply came sample_us after its request. */
void
dl_win_rtt(dl_link_t *k, int64_t sample_us)
{
    if (sample_us < 1) {
        sample_us = 1;
    }
    if (k->rtt_us == 0 || sample_us < k->rtt_us) {
        k->rtt_us = sample_us;
    } else {
        k->rtt_us += (sample_us - k->rtt_us) / 64;
    }
}

/* A GET reply of len bytes took us (since the link became busy with
 * it): the rate and the window follow. */
void
dl_win_reply(dl_link_t *k, uint32_t len, int64_t us)
{
    uint64_t sample, win;

    if (us < 1) {
        us = 1;
    }
    sample = (uint64_t) len * 1000000ull / (uint64_t) us;
    k->lrate = k->lrate == 0 ? sample : (k->lrate * 3 + sample) / 4;
    if (k->rtt_us == 0) {
        return;
    }
    win = (k->lrate * (uint64_t) k->rtt_us / 1000000ull + TS_CHUNK_B - 1)
          / TS_CHUNK_B + TS_DL_WIN_SPARE_N;
    if (win < TS_DL_WIN_MIN_N) {
        win = TS_DL_WIN_MIN_N;
    }
    if (win > TS_DL_WIN_MAX_N) {
        win = TS_DL_WIN_MAX_N;
    }
    k->win = (uint32_t) win;
}

/* Expected ms for one chunk's reply on k (a round trip and the chunk at
 * its rate), or -1 while unmeasured. */
static int64_t
dl_win_expect_ms(const dl_link_t *k)
{
    if (k->rtt_us == 0 || k->lrate == 0) {
        return -1;
    }
    return (k->rtt_us + (int64_t) ((uint64_t) TS_CHUNK_B * 1000000ull
                                   / k->lrate)) / 1000 + 1;
}

/* How long k may have requests out and get no byte back. */
int64_t
dl_win_nobyte_ms(const dl_link_t *k)
{
    int64_t e = dl_win_expect_ms(k), t;

    if (e < 0) {
        return TS_NODE_PEER_TIMEOUT_MS;
    }
    t = (int64_t) TS_DL_NOBYTE_RTT_N * (k->rtt_us / 1000 + 1) + e;
    if (t < TS_DL_NOBYTE_MIN_MS) {
        t = TS_DL_NOBYTE_MIN_MS;
    }
    return t < TS_NODE_PEER_TIMEOUT_MS ? t : TS_NODE_PEER_TIMEOUT_MS;
}

/* How long the head GET reply on k may take before it counts as slow;
 * limit is the node's (--slow-chunk-ms or TS_DL_GET_SLOW_MS). */
int64_t
dl_win_slow_ms(const dl_link_t *k, int64_t limit)
{
    int64_t e = dl_win_expect_ms(k), t;

    if (e < 0) {
        return limit;
    }
    t = (int64_t) TS_DL_SLOW_X * e;
    if (t < TS_DL_SLOW_MIN_MS) {
        t = TS_DL_SLOW_MIN_MS;
    }
    return t < limit ? t : limit;
}
