/*
 * test_net.c -- unit tests for ts_net over real loopback TCP sockets:
 * address parsing, listen/connect, frames through ts_conn_t (including a
 * payload dribbled in many small writes by a child process), deadlines
 * (ETIMEDOUT within bounds), oversize headers (EMSGSIZE, nothing read or
 * allocated for the payload), bad headers (EPROTO), EOF mid-frame,
 * refused and timed-out connects, and writes to a vanished peer.
 *
 * Locking: single-threaded test process plus forked helpers.
 * Crash behaviour: every child is reaped by pid with a bounded wait and
 * SIGKILLed if it overstays; sockets die with the process.  Only
 * 127.0.0.1 is used.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "ts_config.h"
#include "ts_proto.h"
#include "ts_clock.h"
#include "ts_net.h"

#include "net_fixture.h"

/* ---- helpers --------------------------------------------------------- */

/* a connected loopback TCP pair: *cfd from ts_net_connect, *sfd accepted */
static void
tcp_pair(int *cfd, int *sfd)
{
    struct pollfd pfd;
    int           lfd;

    lfd = ts_net_listen("127.0.0.1", 0, 8);
    assert_true(lfd >= 0);
    *cfd = ts_net_connect("127.0.0.1", local_port(lfd), 2000);
    assert_true(*cfd >= 0);
    pfd.fd = lfd;
    pfd.events = POLLIN;
    assert_int_equal(poll(&pfd, 1, 2000), 1);
    *sfd = accept(lfd, NULL, NULL);
    assert_true(*sfd >= 0);
    close(lfd);
}

/* waits up to ms for the child, then SIGKILLs it; returns exit code or -1 */
static int
reap(pid_t pid, int ms)
{
    int status = 0, waited = 0;

    while (waited < ms) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        usleep(10000);
        waited += 10;
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static void
raw_write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n > 0) {
        ssize_t w = write(fd, b, n);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        assert_true(w > 0);
        b += w;
        n -= (size_t) w;
    }
}

static void
fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
    size_t i;

    for (i = 0; i < n; i++) {
        p[i] = (uint8_t) (i * 131 + seed + (i >> 11));
    }
}

/* ---- address parsing ------------------------------------------------- */

static void
test_parse_hostport(void **state)
{
    static const struct {
        const char *s;
        int         ok;
        const char *ip;
        unsigned    port;
    } tab[] = {
        { "1.2.3.4:80", 1, "1.2.3.4", 80 },
        { "1.2.3.4 80", 1, "1.2.3.4", 80 },
        { "127.0.0.1\t\t6000", 1, "127.0.0.1", 6000 },
        { "  127.0.0.1:6000  ", 1, "127.0.0.1", 6000 },
        { "[::1]:80", 1, "::1", 80 },
        { "[::1] 443", 1, "::1", 443 },
        { "::1 443", 1, "::1", 443 },
        { "10.0.0.1:1", 1, "10.0.0.1", 1 },
        { "10.0.0.1:65535", 1, "10.0.0.1", 65535 },
        { "10.0.0.1:0", 0, NULL, 0 },
        { "10.0.0.1:65536", 0, NULL, 0 },
        { "10.0.0.1:123456", 0, NULL, 0 },
        { "10.0.0.1:", 0, NULL, 0 },
        { "10.0.0.1", 0, NULL, 0 },
        { ":80", 0, NULL, 0 },
        { "", 0, NULL, 0 },
        { "   ", 0, NULL, 0 },
        { "10.0.0.1:+80", 0, NULL, 0 },
        { "10.0.0.1:-80", 0, NULL, 0 },
        { "10.0.0.1:8o", 0, NULL, 0 },
        { "10.0.0.1:80x", 0, NULL, 0 },
        { "10.0.0.1 80 90", 0, NULL, 0 },
        { "10.0.0.1:80:90", 0, NULL, 0 },
        { "256.1.1.1:80", 0, NULL, 0 },
        { "1.2.3:80", 0, NULL, 0 },
        { "localhost:80", 0, NULL, 0 },
        { "::1:80", 0, NULL, 0 },
        { "[::1]80", 0, NULL, 0 },
        { "[::1:80", 0, NULL, 0 },
        { "[1.2.3.4]:80", 0, NULL, 0 },
        { "[]:80", 0, NULL, 0 },
        { "1.2.3.4\n:80", 0, NULL, 0 },
    };
    char     ip[64];
    uint16_t port;
    size_t   i;

    for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        int rc;

        port = 0;
        rc = ts_parse_hostport(tab[i].s, ip, sizeof(ip), &port);
        if ((rc == 0) != tab[i].ok) {
            fail_msg("ts_parse_hostport(\"%s\") = %d", tab[i].s, rc);
        }
        if (tab[i].ok) {
            assert_string_equal(ip, tab[i].ip);
            assert_int_equal(port, tab[i].port);
        }
    }
    /* the ip buffer is too small for the address */
    assert_int_equal(ts_parse_hostport("127.0.0.1:80", ip, 9, &port), -1);
    assert_int_equal(ts_parse_hostport("127.0.0.1:80", ip, 10, &port), 0);
    assert_int_equal(ts_parse_hostport(NULL, ip, sizeof(ip), &port), -1);
}

/* ---- clocks ---------------------------------------------------------- */

static void
test_clocks(void **state)
{
    int64_t a = ts_now_ms(), b;

    usleep(20000);
    b = ts_now_ms();
    assert_true(b - a >= 19 && b - a < 2000);
    /* after 2020-01-01 and before 2200 */
    assert_true(ts_wall_ms() > 1577836800000LL);
    assert_true(ts_wall_ms() < 7258118400000LL);
}

/* ---- frames ---------------------------------------------------------- */

static void
test_frame_roundtrip(void **state)
{
    int            cfd, sfd, fl;
    ts_conn_t     *c, *s;
    ts_frame_hdr_t h;
    uint8_t       *pl = NULL;

    tcp_pair(&cfd, &sfd);
    /* ts_net_connect hands back a blocking fd with TCP_NODELAY */
    fl = fcntl(cfd, F_GETFL);
    assert_int_equal(fl & O_NONBLOCK, 0);
    {
        int       nd = 0;
        socklen_t sl = sizeof(nd);

        assert_int_equal(getsockopt(cfd, IPPROTO_TCP, 1 /* TCP_NODELAY */,
                                    &nd, &sl), 0);
        assert_int_not_equal(nd, 0);
    }
    c = ts_conn_new(cfd);
    s = ts_conn_new(sfd);
    assert_non_null(c);
    assert_non_null(s);
    assert_int_equal(ts_conn_fd(c), cfd);
    assert_int_equal(ts_conn_pending(c), 0);

    assert_int_equal(ts_conn_send_frame(c, TS_MSG_LOGIN, 0, 77, "hello", 5,
                                        1000), 0);
    assert_int_equal(ts_conn_recv_frame(s, &h, &pl, 1024, 1000), 0);
    assert_int_equal(h.type, TS_MSG_LOGIN);
    assert_int_equal(h.flags, 0);
    assert_int_equal(h.len, 5);
    assert_true(h.reqid == 77);
    assert_non_null(pl);
    assert_memory_equal(pl, "hello", 5);
    free(pl);

    /* reply direction, empty payload: *payload stays NULL */
    assert_int_equal(ts_conn_send_frame(s, TS_MSG_REPLY, TS_FF_REPLY, 77,
                                        NULL, 0, 1000), 0);
    pl = (uint8_t *) 1;
    assert_int_equal(ts_conn_recv_frame(c, &h, &pl, 1024, 1000), 0);
    assert_int_equal(h.type, TS_MSG_REPLY);
    assert_int_equal(h.flags, TS_FF_REPLY);
    assert_int_equal(h.len, 0);
    assert_null(pl);

    /* several frames back to back, read one by one */
    assert_int_equal(ts_conn_send_frame(c, TS_MSG_HEARTBEAT, 0, 1, "a", 1,
                                        1000), 0);
    assert_int_equal(ts_conn_send_frame(c, TS_MSG_HEARTBEAT, 0, 2, "bb", 2,
                                        1000), 0);
    assert_int_equal(ts_conn_recv_frame(s, &h, &pl, 1024, 1000), 0);
    assert_true(h.reqid == 1);
    free(pl);
    assert_int_equal(ts_conn_recv_frame(s, &h, &pl, 1024, 1000), 0);
    assert_true(h.reqid == 2);
    assert_memory_equal(pl, "bb", 2);
    free(pl);

    /* the sender refuses a frame over the protocol maximum */
    errno = 0;
    assert_int_equal(ts_conn_send_frame(c, TS_MSG_HEARTBEAT, 0, 3, "x",
                                        TS_FRAME_MAX_B + 1, 1000), -1);
    assert_int_equal(errno, EMSGSIZE);

    /* non-blocking raw read with nothing there: EAGAIN */
    assert_int_equal(ts_net_set_nonblock(sfd, 1), 0);
    {
        char b[8];

        errno = 0;
        assert_int_equal(ts_conn_read(s, b, sizeof(b)), -1);
        assert_int_equal(errno, EAGAIN);
        assert_int_equal(ts_conn_write(c, "xyz", 3), 3);
        usleep(20000);
        assert_int_equal(ts_conn_read(s, b, sizeof(b)), 3);
        assert_memory_equal(b, "xyz", 3);
    }
    ts_conn_free(c);
    /* EOF on a raw read is 0 */
    {
        char          b[8];
        struct pollfd pfd = { sfd, POLLIN, 0 };

        assert_int_equal(poll(&pfd, 1, 2000), 1);
        assert_int_equal(ts_conn_read(s, b, sizeof(b)), 0);
    }
    ts_conn_free(s);
    ts_conn_free(NULL);
}

/* the child writes one frame a few bytes at a time, with pauses */
static void
dribble_child(int fd, const uint8_t *payload, uint32_t len)
{
    ts_frame_hdr_t h = { TS_MSG_PEER_DATA, 0, len, 0xabcdef };
    uint8_t        hdr[TS_FRAME_HDR_B];
    size_t         off, k;
    int            n = 0;

    ts_frame_hdr_encode(hdr, &h);
    /* the header itself arrives in three pieces */
    if (write(fd, hdr, 3) != 3) {
        _exit(2);
    }
    usleep(20000);
    if (write(fd, hdr + 3, 9) != 9) {
        _exit(2);
    }
    usleep(20000);
    if (write(fd, hdr + 12, 4) != 4) {
        _exit(2);
    }
    for (off = 0; off < len; off += k) {
        ssize_t w;

        k = 1 + (off * 7 % 1500);
        if (k > len - off) {
            k = len - off;
        }
        w = write(fd, payload + off, k);
        if (w <= 0) {
            _exit(3);
        }
        k = (size_t) w;
        if (++n % 32 == 0) {
            usleep(1000);
        }
    }
    _exit(0);
}

static void
test_frame_split_writes(void **state)
{
    int            cfd, sfd;
    uint32_t       len = 300 * 1000 + 7;
    uint8_t       *want = malloc(len), *pl = NULL;
    ts_conn_t     *s;
    ts_frame_hdr_t h;
    pid_t          pid;
    int64_t        t0;

    assert_non_null(want);
    fill_pattern(want, len, 5);
    tcp_pair(&cfd, &sfd);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sfd);
        dribble_child(cfd, want, len);
    }
    close(cfd);
    s = ts_conn_new(sfd);
    assert_non_null(s);
    t0 = ts_now_ms();
    assert_int_equal(ts_conn_recv_frame(s, &h, &pl, TS_FRAME_MAX_B, 10000), 0);
    assert_true(ts_now_ms() - t0 < 10000);
    assert_int_equal(h.type, TS_MSG_PEER_DATA);
    assert_int_equal(h.len, len);
    assert_true(h.reqid == 0xabcdef);
    assert_memory_equal(pl, want, len);
    free(pl);
    assert_int_equal(reap(pid, 5000), 0);
    ts_conn_free(s);
    free(want);
}

/* a frame bigger than the coalescing limit, sent with ts_conn_send_frame
 * by another process while this one reads */
static void
test_frame_large_from_child(void **state)
{
    int            cfd, sfd;
    uint32_t       len = 3u << 20;
    uint8_t       *want = malloc(len), *pl = NULL;
    ts_conn_t     *s;
    ts_frame_hdr_t h;
    pid_t          pid;

    assert_non_null(want);
    fill_pattern(want, len, 9);
    tcp_pair(&cfd, &sfd);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ts_conn_t *c;

        close(sfd);
        c = ts_conn_new(cfd);
        if (c == NULL
            || ts_conn_send_frame(c, TS_MSG_SYNC_SNAPSHOT, 0, 5, want, len,
                                  10000) != 0)
        {
            _exit(1);
        }
        ts_conn_free(c);
        _exit(0);
    }
    close(cfd);
    s = ts_conn_new(sfd);
    assert_int_equal(ts_conn_recv_frame(s, &h, &pl, TS_FRAME_MAX_B, 10000), 0);
    assert_int_equal(h.len, len);
    assert_memory_equal(pl, want, len);
    free(pl);
    assert_int_equal(reap(pid, 5000), 0);
    ts_conn_free(s);
    free(want);
}

static void
test_recv_timeout(void **state)
{
    int            cfd, sfd;
    ts_conn_t     *s;
    ts_frame_hdr_t h;
    uint8_t       *pl = NULL, hdr[TS_FRAME_HDR_B];
    int64_t        t0, dt;
    ts_frame_hdr_t fh = { TS_MSG_STATUS, 0, 100, 9 };

    tcp_pair(&cfd, &sfd);
    s = ts_conn_new(sfd);

    /* nothing at all */
    t0 = ts_now_ms();
    errno = 0;
    assert_int_equal(ts_conn_recv_frame(s, &h, &pl, 1024, 300), -1);
    dt = ts_now_ms() - t0;
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(dt >= 290 && dt < 1500);
    assert_null(pl);

    /* a header and part of the payload: the deadline is for the frame */
    ts_frame_hdr_encode(hdr, &fh);
    raw_write_all(cfd, hdr, sizeof(hdr));
    raw_write_all(cfd, "0123456789", 10);
    t0 = ts_now_ms();
    errno = 0;
    assert_int_equal(ts_conn_recv_frame(s, &h, &pl, 1024, 300), -1);
    dt = ts_now_ms() - t0;
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(dt >= 290 && dt < 1500);
    assert_null(pl);

    /* a zero timeout with nothing there fails at once */
    t0 = ts_now_ms();
    {
        char b[4];

        assert_int_equal(ts_conn_read_full(s, b, 4, 0), -1);
        assert_int_equal(errno, ETIMEDOUT);
    }
    assert_true(ts_now_ms() - t0 < 200);
    close(cfd);
    ts_conn_free(s);
}

static void
test_recv_oversize_and_bad(void **state)
{
    int            cfd, sfd;
    ts_conn_t     *s;
    ts_frame_hdr_t h, fh = { TS_MSG_UPLOAD_FILE, 0, 0, 1 };
    uint8_t       *pl = NULL, hdr[TS_FRAME_HDR_B];
    int64_t        t0;

    /* oversize: fails at once with EMSGSIZE, without waiting for (or
     * allocating) a payload that is never sent */
    tcp_pair(&cfd, &sfd);
    s = ts_conn_new(sfd);
    fh.len = 0xfffffff0u;
    ts_frame_hdr_encode(hdr, &fh);
    raw_write_all(cfd, hdr, sizeof(hdr));
    t0 = ts_now_ms();
    errno = 0;
    assert_int_equal(ts_conn_recv_frame(s, &h, &pl, 1u << 20, 5000), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_true(ts_now_ms() - t0 < 1000);
    assert_null(pl);
    /* one byte over the caller's limit */
    fh.len = 1025;
    ts_frame_hdr_encode(hdr, &fh);
    raw_write_all(cfd, hdr, sizeof(hdr));
    errno = 0;
    assert_int_equal(ts_conn_recv_frame(s, &h, &pl, 1024, 5000), -1);
    assert_int_equal(errno, EMSGSIZE);

    /* bad magic */
    fh.len = 0;
    ts_frame_hdr_encode(hdr, &fh);
    hdr[0] = 'G';                  /* "GET / HTTP/1.1" hits a Tessera port */
    raw_write_all(cfd, hdr, sizeof(hdr));
    errno = 0;
    assert_int_equal(ts_conn_recv_frame(s, &h, &pl, 1024, 5000), -1);
    assert_int_equal(errno, EPROTO);
    /* bad version */
    ts_frame_hdr_encode(hdr, &fh);
    hdr[1] = 99;
    raw_write_all(cfd, hdr, sizeof(hdr));
    errno = 0;
    assert_int_equal(ts_conn_recv_frame(s, &h, &pl, 1024, 5000), -1);
    assert_int_equal(errno, EPROTO);
    /* bad type */
    ts_frame_hdr_encode(hdr, &fh);
    hdr[2] = 0;
    raw_write_all(cfd, hdr, sizeof(hdr));
    errno = 0;
    assert_int_equal(ts_conn_recv_frame(s, &h, &pl, 1024, 5000), -1);
    assert_int_equal(errno, EPROTO);
    ts_conn_free(s);
    close(cfd);
}

static void
test_recv_eof(void **state)
{
    int            cfd, sfd;
    ts_conn_t     *s;
    ts_frame_hdr_t h, fh = { TS_MSG_STATUS, 0, 100, 1 };
    uint8_t       *pl = NULL, hdr[TS_FRAME_HDR_B];
    int64_t        t0;

    /* EOF in the middle of the payload */
    tcp_pair(&cfd, &sfd);
    s = ts_conn_new(sfd);
    ts_frame_hdr_encode(hdr, &fh);
    raw_write_all(cfd, hdr, sizeof(hdr));
    raw_write_all(cfd, "partial", 7);
    close(cfd);
    t0 = ts_now_ms();
    errno = 0;
    assert_int_equal(ts_conn_recv_frame(s, &h, &pl, 1024, 5000), -1);
    assert_int_equal(errno, ECONNRESET);
    assert_true(ts_now_ms() - t0 < 1000);
    assert_null(pl);
    ts_conn_free(s);

    /* EOF in the middle of the header */
    tcp_pair(&cfd, &sfd);
    s = ts_conn_new(sfd);
    raw_write_all(cfd, hdr, 5);
    close(cfd);
    errno = 0;
    assert_int_equal(ts_conn_recv_frame(s, &h, &pl, 1024, 5000), -1);
    assert_int_equal(errno, ECONNRESET);
    ts_conn_free(s);
}

/* ---- connect --------------------------------------------------------- */

static void
test_connect_refused(void **state)
{
    int      lfd, fd;
    uint16_t port;
    int64_t  t0;

    /* a port that was just free: listen, note it, close */
    lfd = ts_net_listen("127.0.0.1", 0, 1);
    assert_true(lfd >= 0);
    port = local_port(lfd);
    close(lfd);
    t0 = ts_now_ms();
    errno = 0;
    fd = ts_net_connect("127.0.0.1", port, 2000);
    assert_int_equal(fd, -1);
    assert_int_equal(errno, ECONNREFUSED);
    assert_true(ts_now_ms() - t0 < 500);

    errno = 0;
    assert_int_equal(ts_net_connect("not-an-ip", 80, 100), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(ts_net_connect("127.0.0.1", 0, 100), -1);
}

static void
test_listen(void **state)
{
    int lfd, lfd2, one = 0;
    socklen_t sl = sizeof(one);

    lfd = ts_net_listen("127.0.0.1", 0, 4);
    assert_true(lfd >= 0);
    assert_true(fcntl(lfd, F_GETFL) & O_NONBLOCK);
    assert_int_equal(getsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, &sl), 0);
    assert_int_not_equal(one, 0);
    /* a second listener on the same port fails with EADDRINUSE */
    errno = 0;
    lfd2 = ts_net_listen("127.0.0.1", local_port(lfd), 4);
    assert_int_equal(lfd2, -1);
    assert_int_equal(errno, EADDRINUSE);
    close(lfd);
    errno = 0;
    assert_int_equal(ts_net_listen("bogus", 1234, 4), -1);
    assert_int_equal(errno, EINVAL);
}

/* a listener whose accept queue is full drops SYNs, so connect must give
 * up at its deadline with ETIMEDOUT */
static void
test_connect_timeout(void **state)
{
    int      lfd, fds[32], n = 0, i, timed_out = 0;
    uint16_t port;
    int64_t  t0, dt = 0;

    lfd = ts_net_listen("127.0.0.1", 0, 1);
    assert_true(lfd >= 0);
    port = local_port(lfd);
    for (i = 0; i < 32 && !timed_out; i++) {
        t0 = ts_now_ms();
        errno = 0;
        fds[n] = ts_net_connect("127.0.0.1", port, 200);
        if (fds[n] >= 0) {
            n++;
            continue;
        }
        dt = ts_now_ms() - t0;
        assert_int_equal(errno, ETIMEDOUT);
        timed_out = 1;
    }
    assert_true(timed_out);
    assert_true(dt >= 190 && dt < 1500);
    for (i = 0; i < n; i++) {
        close(fds[i]);
    }
    close(lfd);
}

/* ---- writes ---------------------------------------------------------- */

static void
test_write_deadline_and_dead_peer(void **state)
{
    int        cfd, sfd, fl, i, rc = 0;
    ts_conn_t *c;
    size_t     big = 64u << 20;
    uint8_t   *buf = calloc(1, big);
    int64_t    t0, dt;

    assert_non_null(buf);
    tcp_pair(&cfd, &sfd);
    c = ts_conn_new(cfd);
    /* the peer never reads: a blocking fd must still honour the deadline */
    t0 = ts_now_ms();
    errno = 0;
    assert_int_equal(ts_conn_write_full(c, buf, big, 300), -1);
    dt = ts_now_ms() - t0;
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(dt >= 290 && dt < 1500);
    /* and it is blocking again afterwards */
    fl = fcntl(cfd, F_GETFL);
    assert_int_equal(fl & O_NONBLOCK, 0);

    /* the peer goes away: writes fail (EPIPE/ECONNRESET), no SIGPIPE */
    close(sfd);
    for (i = 0; i < 50 && rc == 0; i++) {
        rc = ts_conn_write_full(c, "x", 1, 500);
        if (rc == 0) {
            usleep(10000);
        }
    }
    assert_int_equal(rc, -1);
    assert_true(errno == EPIPE || errno == ECONNRESET);
    ts_conn_free(c);
    free(buf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_hostport),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_frame_roundtrip),
        cmocka_unit_test(test_frame_split_writes),
        cmocka_unit_test(test_frame_large_from_child),
        cmocka_unit_test(test_recv_timeout),
        cmocka_unit_test(test_recv_oversize_and_bad),
        cmocka_unit_test(test_recv_eof),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_write_deadline_and_dead_peer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
