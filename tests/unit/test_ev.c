/*
 * test_ev.c -- unit tests for the event layer (net/ts_ev.h) over real
 * loopback sockets: timers fire in time order (equal times in arming
 * order, cancelled ones never, re-armed ones again); the stop fd ends
 * ts_ev_run; a connect past its deadline (a listener whose accept queue
 * is full drops SYNs) fails with ETIMEDOUT; a TLS handshake with a peer
 * that never speaks fails with ETIMEDOUT; frames are delivered whole and
 * in order, a paused link delivers nothing until resumed, and a header
 * over the maximum fails the link with EMSGSIZE before its payload; the
 * output queue refuses what would pass its cap (ENOBUFS) and counts what
 * it holds; a writer sends a file with ts_conn_sendfile after the queued
 * frame; a connected plain link exchanges frames both ways.
 *
 * Locking: single-threaded test process.
 * Crash behaviour: sockets and the mkdtemp key directory die with the
 * test (the directory is removed at the end); only 127.0.0.1 is used.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <cmocka.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_ev.h"
#include "ts_proto.h"

#include "net_fixture.h"

/* ---- helpers --------------------------------------------------------- */

#define T_WAIT_MS   5000            /* no test waits longer than this */

/* what the callbacks saw */
typedef struct {
    int       ready;
    int       closed;
    int       err;
    char      why[160];
    int       nframes;
    uint8_t   types[16];
    uint32_t  lens[16];
    int       pause_after;          /* pause input after this many */
    ts_ev_conn_t *ec;
} seen_t;

static void
on_ready(ts_ev_conn_t *ec)
{
    seen_t *s = ts_ev_conn_data(ec);

    s->ready++;
}

static void
on_frame(ts_ev_conn_t *ec, const ts_frame_hdr_t *h, const uint8_t *p)
{
    seen_t *s = ts_ev_conn_data(ec);

    if (s->nframes < 16) {
        s->types[s->nframes] = h->type;
        s->lens[s->nframes] = h->len;
    }
    s->nframes++;
    if (s->pause_after > 0 && s->nframes == s->pause_after) {
        ts_ev_conn_pause_input(ec, 1);
    }
}

static void
on_close(ts_ev_conn_t *ec, int err, const char *why)
{
    seen_t *s = ts_ev_conn_data(ec);

    s->closed++;
    s->err = err;
    snprintf(s->why, sizeof(s->why), "%s", why);
    s->ec = NULL;
}

static const ts_ev_conn_cb_t cbs = { on_ready, on_frame, on_close };

static ts_ev_conn_cfg_t
cfg_plain(void)
{
    ts_ev_conn_cfg_t c;

    memset(&c, 0, sizeof(c));
    c.max_frame_b = 1024;
    c.in_budget_b = 4096;
    c.out_max_b = 8192;
    c.connect_ms = 2000;
    c.handshake_ms = 2000;
    return c;
}

/* runs ev until *flag is set or T_WAIT_MS pass */
static void
run_until(ts_ev_t *ev, const int *flag)
{
    int64_t end = ts_deadline_ms(T_WAIT_MS);

    while (!*flag && ts_now_ms() < end) {
        assert_int_equal(ts_ev_run_once(ev, 50), 0);
    }
}

static void
put_frame(int fd, uint8_t type, uint32_t len, uint8_t fill)
{
    ts_frame_hdr_t h;
    uint8_t        buf[TS_FRAME_HDR_B + 2048];

    assert_true(len <= 2048);
    h.type = type;
    h.flags = 0;
    h.len = len;
    h.reqid = type;
    ts_frame_hdr_encode(buf, &h);
    memset(buf + TS_FRAME_HDR_B, fill, len);
    assert_int_equal(write(fd, buf, TS_FRAME_HDR_B + len),
                     (ssize_t) (TS_FRAME_HDR_B + len));
}

/* a plain link on one end of a socketpair; *peer gets the other end */
static ts_ev_conn_t *
adopt_pair(ts_ev_t *ev, const ts_ev_conn_cfg_t *cfg, seen_t *s, int *peer)
{
    int        sv[2];
    ts_conn_t *c;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    c = ts_conn_new(sv[0]);
    assert_non_null(c);
    s->ec = ts_ev_conn_adopt(ev, c, cfg, &cbs, s);
    assert_non_null(s->ec);
    *peer = sv[1];
    run_until(ev, &s->ready);
    assert_int_equal(s->ready, 1);
    return s->ec;
}

/* ---- timers ---------------------------------------------------------- */

static int fired[16], nfired;

static void
timer_note(ts_ev_t *ev, ts_ev_timer_t *t)
{
    int id = (int) (intptr_t) t->data;

    if (nfired < 16) {
        fired[nfired] = id;
    }
    nfired++;
    if (id == 4 && nfired == 1) {
        /* re-armed from its own callback: fires once more, last */
        assert_int_equal(ts_ev_timer_in(ev, t, 40), 0);
    }
}

static void
test_timers_in_order(void **state)
{
    ts_ev_t       *ev = ts_ev_new();
    ts_ev_timer_t  t[6];
    int64_t        now = ts_now_ms(), end;
    int            i;

    assert_non_null(ev);
    nfired = 0;
    for (i = 0; i < 6; i++) {
        ts_ev_timer_init(&t[i], timer_note, (void *) (intptr_t) i);
    }
    assert_int_equal(ts_ev_timer_at(ev, &t[0], now + 60), 0);
    assert_int_equal(ts_ev_timer_at(ev, &t[1], now + 20), 0);
    assert_int_equal(ts_ev_timer_at(ev, &t[2], now + 40), 0);
    assert_int_equal(ts_ev_timer_at(ev, &t[3], now + 20), 0); /* after 1 */
    assert_int_equal(ts_ev_timer_at(ev, &t[4], now + 10), 0);
    assert_int_equal(ts_ev_timer_at(ev, &t[5], now + 30), 0);
    ts_ev_timer_cancel(ev, &t[5]);
    assert_false(ts_ev_timer_armed(&t[5]));
    assert_true(ts_ev_timer_armed(&t[0]));
    /* re-arming moves a timer: 2 now comes after 0 */
    assert_int_equal(ts_ev_timer_at(ev, &t[2], now + 70), 0);

    end = ts_deadline_ms(T_WAIT_MS);
    while (nfired < 6 && ts_now_ms() < end) {
        assert_int_equal(ts_ev_run_once(ev, -1), 0);
    }
    assert_int_equal(nfired, 6);
    assert_int_equal(fired[0], 4);
    assert_int_equal(fired[1], 1);
    assert_int_equal(fired[2], 3);
    assert_int_equal(fired[3], 4);      /* re-armed at +10 for +40 */
    assert_int_equal(fired[4], 0);
    assert_int_equal(fired[5], 2);
    assert_true(ts_now_ms() - now >= 70);
    for (i = 0; i < 6; i++) {
        assert_false(ts_ev_timer_armed(&t[i]));
    }
    ts_ev_free(ev);
}

/* ---- the stop fd ----------------------------------------------------- */

static int stop_pipe[2];

static void
timer_stop(ts_ev_t *ev, ts_ev_timer_t *t)
{
    assert_int_equal(write(stop_pipe[1], "x", 1), 1);
}

static void
test_stop_fd_ends_loop(void **state)
{
    ts_ev_t       *ev = ts_ev_new();
    ts_ev_timer_t  t, never;
    int64_t        t0 = ts_now_ms();

    assert_non_null(ev);
    assert_int_equal(pipe(stop_pipe), 0);
    assert_int_equal(ts_ev_set_stop_fd(ev, stop_pipe[0]), 0);
    ts_ev_timer_init(&t, timer_stop, NULL);
    ts_ev_timer_init(&never, timer_stop, NULL);
    assert_int_equal(ts_ev_timer_in(ev, &t, 50), 0);
    assert_int_equal(ts_ev_timer_in(ev, &never, 60000), 0);
    assert_false(ts_ev_stopped(ev));
    assert_int_equal(ts_ev_run(ev), 0);
    assert_true(ts_ev_stopped(ev));
    assert_true(ts_now_ms() - t0 >= 45);
    assert_true(ts_now_ms() - t0 < 2000);
    ts_ev_timer_cancel(ev, &never);
    ts_ev_free(ev);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
}

/* ---- connect and handshake deadlines --------------------------------- */

static void
test_connect_deadline(void **state)
{
    ts_ev_t          *ev = ts_ev_new();
    ts_ev_conn_cfg_t  cfg = cfg_plain();
    seen_t            s;
    int               lfd, fill[64], nfill = 0, i, hung = 0;
    uint16_t          port;
    int64_t           t0;

    assert_non_null(ev);
    lfd = ts_net_listen("127.0.0.1", 0, 1);
    assert_true(lfd >= 0);
    port = local_port(lfd);
    /* never accepted: once the queue is full, SYNs are dropped and a
     * connect hangs */
    while (nfill < 64 && !hung) {
        fill[nfill] = ts_net_connect("127.0.0.1", port, 100);
        if (fill[nfill] < 0) {
            assert_int_equal(errno, ETIMEDOUT);
            hung = 1;
        } else {
            nfill++;
        }
    }
    if (!hung) {
        for (i = 0; i < nfill; i++) {
            close(fill[i]);
        }
        close(lfd);
        ts_ev_free(ev);
        skip();
    }
    memset(&s, 0, sizeof(s));
    cfg.connect_ms = 200;
    t0 = ts_now_ms();
    s.ec = ts_ev_conn_connect(ev, "127.0.0.1", port, &cfg, &cbs, &s);
    assert_non_null(s.ec);
    run_until(ev, &s.closed);
    assert_int_equal(s.closed, 1);
    assert_int_equal(s.ready, 0);
    assert_int_equal(s.err, ETIMEDOUT);
    assert_true(ts_now_ms() - t0 >= 190);
    assert_true(ts_now_ms() - t0 < 3000);
    for (i = 0; i < nfill; i++) {
        close(fill[i]);
    }
    close(lfd);
    ts_ev_free(ev);
}

static char keydir[64];

static void
test_handshake_deadline(void **state)
{
    ts_ev_t          *ev = ts_ev_new();
    ts_ev_conn_cfg_t  cfg = cfg_plain();
    seen_t            s;
    char              err[256], crt[128], key[128];
    ts_tls_t         *tls;
    int               lfd, sv[2];
    int64_t           t0;
    ts_conn_t        *c;

    assert_non_null(ev);
    snprintf(keydir, sizeof(keydir), "/tmp/test_ev.XXXXXX");
    assert_non_null(mkdtemp(keydir));
    assert_int_equal(ts_pki_ensure_node(keydir, NULL, err, sizeof(err)), 0);
    snprintf(crt, sizeof(crt), "%s/node.crt", keydir);
    snprintf(key, sizeof(key), "%s/node.key", keydir);

    /* client side: the listener completes TCP (backlog) and never
     * speaks TLS */
    tls = ts_tls_ctx_new(TS_TLS_PEER_CLIENT, crt, key, NULL, err,
                         sizeof(err));
    assert_non_null(tls);
    lfd = ts_net_listen("127.0.0.1", 0, 8);
    assert_true(lfd >= 0);
    memset(&s, 0, sizeof(s));
    cfg.tls = tls;
    cfg.handshake_ms = 200;
    t0 = ts_now_ms();
    s.ec = ts_ev_conn_connect(ev, "127.0.0.1", local_port(lfd), &cfg, &cbs,
                              &s);
    assert_non_null(s.ec);
    run_until(ev, &s.closed);
    assert_int_equal(s.closed, 1);
    assert_int_equal(s.ready, 0);
    if (ts_tls_enabled()) {
        assert_int_equal(s.err, ETIMEDOUT);
        assert_true(ts_now_ms() - t0 >= 190);
        assert_true(ts_now_ms() - t0 < 3000);
    }
    close(lfd);
    ts_tls_ctx_free(tls);

    /* server side: an adopted TLS link whose client never writes */
    tls = ts_tls_ctx_new(TS_TLS_PEER_SERVER, crt, key, NULL, err,
                         sizeof(err));
    assert_non_null(tls);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    c = ts_conn_new_tls(sv[0], tls, 0, NULL);
    assert_non_null(c);
    memset(&s, 0, sizeof(s));
    cfg.tls = NULL;
    t0 = ts_now_ms();
    s.ec = ts_ev_conn_adopt(ev, c, &cfg, &cbs, &s);
    assert_non_null(s.ec);
    run_until(ev, &s.closed);
    if (ts_tls_enabled()) {
        assert_int_equal(s.closed, 1);
        assert_int_equal(s.err, ETIMEDOUT);
        assert_true(ts_now_ms() - t0 >= 190);
    } else if (s.ec != NULL) {
        ts_ev_conn_close(s.ec, 0, NULL);
    }
    close(sv[1]);
    ts_tls_ctx_free(tls);
    ts_ev_free(ev);
    snprintf(err, sizeof(err), "rm -rf '%s'", keydir);
    assert_int_equal(system(err), 0);
}

/* ---- frames ---------------------------------------------------------- */

static seen_t *resume_s;

static void
timer_resume(ts_ev_t *ev, ts_ev_timer_t *t)
{
    ts_ev_conn_pause_input(resume_s->ec, 0);
}

static void
test_frames_in_order_and_pause(void **state)
{
    ts_ev_t          *ev = ts_ev_new();
    ts_ev_conn_cfg_t  cfg = cfg_plain();
    ts_ev_timer_t     t;
    seen_t            s;
    int               peer, i;

    assert_non_null(ev);
    memset(&s, 0, sizeof(s));
    s.pause_after = 2;
    adopt_pair(ev, &cfg, &s, &peer);
    put_frame(peer, 1, 0, 0);
    put_frame(peer, 2, 1024, 0xaa);     /* the maximum is allowed */
    put_frame(peer, 3, 7, 0xbb);
    put_frame(peer, 4, 100, 0xcc);
    for (i = 0; i < 10; i++) {
        assert_int_equal(ts_ev_run_once(ev, 20), 0);
    }
    /* paused after the second: the rest waits, buffered or unread */
    assert_int_equal(s.nframes, 2);
    assert_true(ts_ev_conn_in_pending(s.ec) <= cfg.in_budget_b);
    resume_s = &s;
    ts_ev_timer_init(&t, timer_resume, NULL);
    assert_int_equal(ts_ev_timer_in(ev, &t, 10), 0);
    for (i = 0; i < 20 && s.nframes < 4; i++) {
        assert_int_equal(ts_ev_run_once(ev, 20), 0);
    }
    assert_int_equal(s.nframes, 4);
    for (i = 0; i < 4; i++) {
        assert_int_equal(s.types[i], i + 1);
    }
    assert_int_equal(s.lens[1], 1024);
    assert_int_equal(s.lens[2], 7);
    assert_int_equal(ts_ev_conn_in_pending(s.ec), 0);
    assert_int_equal(ts_ev_conn_frame_ms(s.ec), 0);

    /* a larger maximum lets a larger frame through */
    ts_ev_conn_set_max_frame(s.ec, 2048);
    put_frame(peer, 5, 2000, 0xdd);
    for (i = 0; i < 20 && s.nframes < 5; i++) {
        assert_int_equal(ts_ev_run_once(ev, 20), 0);
    }
    assert_int_equal(s.nframes, 5);
    assert_int_equal(s.lens[4], 2000);

    /* the peer closes: the link ends cleanly */
    close(peer);
    run_until(ev, &s.closed);
    assert_int_equal(s.closed, 1);
    assert_int_equal(s.err, 0);
    ts_ev_free(ev);
}

static void
test_frame_too_big(void **state)
{
    ts_ev_t          *ev = ts_ev_new();
    ts_ev_conn_cfg_t  cfg = cfg_plain();
    ts_frame_hdr_t    h;
    uint8_t           hdr[TS_FRAME_HDR_B];
    seen_t            s;
    int               peer;

    assert_non_null(ev);
    memset(&s, 0, sizeof(s));
    adopt_pair(ev, &cfg, &s, &peer);
    put_frame(peer, 1, 5, 0x11);
    /* a header announcing one byte more than the maximum, no payload:
     * refused on the header alone */
    h.type = 2;
    h.flags = 0;
    h.len = cfg.max_frame_b + 1;
    h.reqid = 2;
    ts_frame_hdr_encode(hdr, &h);
    assert_int_equal(write(peer, hdr, sizeof(hdr)), (ssize_t) sizeof(hdr));
    run_until(ev, &s.closed);
    assert_int_equal(s.closed, 1);
    assert_int_equal(s.err, EMSGSIZE);
    assert_int_equal(s.nframes, 1);
    close(peer);

    /* garbage instead of a header: EPROTO */
    memset(&s, 0, sizeof(s));
    adopt_pair(ev, &cfg, &s, &peer);
    memset(hdr, 0x5a, sizeof(hdr));
    assert_int_equal(write(peer, hdr, sizeof(hdr)), (ssize_t) sizeof(hdr));
    run_until(ev, &s.closed);
    assert_int_equal(s.err, EPROTO);
    assert_int_equal(s.nframes, 0);
    close(peer);
    ts_ev_free(ev);
}

/* ---- output ---------------------------------------------------------- */

static void
test_output_cap(void **state)
{
    ts_ev_t          *ev = ts_ev_new();
    ts_ev_conn_cfg_t  cfg = cfg_plain();
    seen_t            s;
    uint8_t           big[1000];
    size_t            queued;
    int               peer, i, sndbuf = 4096, rc = 0, n;

    assert_non_null(ev);
    memset(&s, 0, sizeof(s));
    memset(big, 0x42, sizeof(big));
    cfg.out_max_b = 8192;
    cfg.out_soft_b = 4096;
    adopt_pair(ev, &cfg, &s, &peer);
    setsockopt(ts_conn_fd(ts_ev_conn_conn(s.ec)), SOL_SOCKET, SO_SNDBUF,
               &sndbuf, sizeof(sndbuf));
    /* the peer never reads: the socket fills, then the queue, then the
     * cap refuses whole frames */
    for (i = 0; i < 10000; i++) {
        rc = ts_ev_conn_send_frame(s.ec, 9, 0, (uint64_t) i, big,
                                   sizeof(big));
        if (rc != 0) {
            break;
        }
    }
    assert_int_equal(rc, -1);
    assert_int_equal(errno, ENOBUFS);
    queued = ts_ev_conn_out_pending(s.ec);
    assert_true(queued <= cfg.out_max_b);
    assert_true(queued + TS_FRAME_HDR_B + sizeof(big) > cfg.out_max_b);
    assert_int_equal(ts_ev_out_total(ev), queued);
    /* a small one may still fit or not, but never past the cap */
    (void) ts_ev_conn_send(s.ec, "x", 1);
    assert_true(ts_ev_conn_out_pending(s.ec) <= cfg.out_max_b);

    /* the peer reads everything: the queue drains */
    for (i = 0; i < 200 && ts_ev_conn_out_pending(s.ec) > 0; i++) {
        uint8_t sink[65536];

        assert_int_equal(ts_ev_run_once(ev, 10), 0);
        do {
            n = (int) recv(peer, sink, sizeof(sink), MSG_DONTWAIT);
        } while (n > 0);
    }
    assert_int_equal(ts_ev_conn_out_pending(s.ec), 0);
    assert_int_equal(ts_ev_out_total(ev), 0);
    ts_ev_conn_close(s.ec, 0, "done");
    assert_int_equal(s.closed, 1);
    assert_string_equal(s.why, "done");
    close(peer);
    ts_ev_free(ev);
}

/* ---- a writer for output the queue does not hold ------------------- */

static int    wr_fd = -1;
static off_t  wr_off, wr_size;
static int    wr_calls;

static void
file_writer(ts_ev_conn_t *ec)
{
    ssize_t n;

    wr_calls++;
    while (wr_off < wr_size) {
        n = ts_conn_sendfile(ts_ev_conn_conn(ec), wr_fd, &wr_off,
                             (size_t) (wr_size - wr_off));
        if (n < 0) {
            assert_int_equal(errno, EAGAIN);
            return;
        }
        assert_true(n > 0);
        ts_ev_conn_touch(ec);
    }
    ts_ev_conn_want_write(ec, 0);
}

static void
test_writer_sendfile(void **state)
{
    ts_ev_t          *ev = ts_ev_new();
    ts_ev_conn_cfg_t  cfg = cfg_plain();
    seen_t            s;
    char              path[] = "/tmp/test_ev_file.XXXXXX";
    uint8_t           blk[4096], got[65536];
    size_t            have = 0, at, total;
    int               peer, i, bad = 0;
    ssize_t           n;
    int64_t           end;

    assert_non_null(ev);
    wr_fd = mkstemp(path);
    assert_true(wr_fd >= 0);
    unlink(path);
    for (i = 0; i < 64; i++) {
        memset(blk, i, sizeof(blk));
        assert_int_equal(write(wr_fd, blk, sizeof(blk)), sizeof(blk));
    }
    wr_size = 64 * (off_t) sizeof(blk);
    wr_off = 0;
    wr_calls = 0;
    total = TS_FRAME_HDR_B + 2 + (size_t) wr_size;
    memset(&s, 0, sizeof(s));
    adopt_pair(ev, &cfg, &s, &peer);
    /* a queued frame goes first, then the file's bytes */
    assert_int_equal(ts_ev_conn_send_frame(s.ec, 7, 0, 1, "hd", 2), 0);
    ts_ev_conn_set_writer(s.ec, file_writer);
    ts_ev_conn_want_write(s.ec, 1);
    end = ts_deadline_ms(T_WAIT_MS);
    while (have < total && ts_now_ms() < end) {
        assert_int_equal(ts_ev_run_once(ev, 10), 0);
        while ((n = recv(peer, got, sizeof(got), MSG_DONTWAIT)) > 0) {
            for (i = 0; i < n; i++) {
                at = have + (size_t) i;
                if (at >= TS_FRAME_HDR_B + 2
                    && got[i] != (uint8_t) ((at - TS_FRAME_HDR_B - 2)
                                            / sizeof(blk)))
                {
                    bad++;
                }
            }
            have += (size_t) n;
        }
    }
    assert_int_equal(have, total);
    assert_int_equal(bad, 0);
    assert_true(wr_calls >= 1);
    ts_ev_conn_close(s.ec, 0, NULL);
    close(peer);
    close(wr_fd);
    ts_ev_free(ev);
}

/* ---- a connected plain link, both ways ------------------------------- */

static void
test_connect_exchange(void **state)
{
    ts_ev_t          *ev = ts_ev_new();
    ts_ev_conn_cfg_t  cfg = cfg_plain();
    seen_t            cs, ss;
    int               lfd, afd;
    int64_t           end;

    assert_non_null(ev);
    lfd = ts_net_listen("127.0.0.1", 0, 8);
    assert_true(lfd >= 0);
    memset(&cs, 0, sizeof(cs));
    memset(&ss, 0, sizeof(ss));
    cs.ec = ts_ev_conn_connect(ev, "127.0.0.1", local_port(lfd), &cfg, &cbs,
                               &cs);
    assert_non_null(cs.ec);
    /* queued before the link is up: goes out once it is */
    assert_int_equal(ts_ev_conn_send_frame(cs.ec, 5, 0, 1, "hello", 5), 0);
    end = ts_deadline_ms(T_WAIT_MS);
    afd = -1;
    while (afd < 0 && ts_now_ms() < end) {
        assert_int_equal(ts_ev_run_once(ev, 10), 0);
        afd = accept(lfd, NULL, NULL);
    }
    assert_true(afd >= 0);
    ss.ec = ts_ev_conn_adopt(ev, ts_conn_new(afd), &cfg, &cbs, &ss);
    assert_non_null(ss.ec);
    run_until(ev, &ss.nframes);
    assert_int_equal(cs.ready, 1);
    assert_int_equal(ss.nframes, 1);
    assert_int_equal(ss.types[0], 5);
    assert_int_equal(ss.lens[0], 5);
    assert_int_equal(ts_ev_conn_send_frame(ss.ec, 6, TS_FF_REPLY, 1, NULL, 0),
                     0);
    run_until(ev, &cs.nframes);
    assert_int_equal(cs.types[0], 6);
    ts_ev_conn_close(cs.ec, 0, NULL);
    run_until(ev, &ss.closed);
    assert_int_equal(ss.err, 0);
    close(lfd);
    ts_ev_free(ev);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_in_order),
        cmocka_unit_test(test_stop_fd_ends_loop),
        cmocka_unit_test(test_connect_deadline),
        cmocka_unit_test(test_handshake_deadline),
        cmocka_unit_test(test_frames_in_order_and_pause),
        cmocka_unit_test(test_frame_too_big),
        cmocka_unit_test(test_output_cap),
        cmocka_unit_test(test_writer_sendfile),
        cmocka_unit_test(test_connect_exchange),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
