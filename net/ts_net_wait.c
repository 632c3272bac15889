/*
 * ts_net_wait.c -- the blocking calls of ts_net.h, each against one
 * deadline: connect, whole reads and writes, the TLS handshake, and
 * whole frames (for clients and tools; event loops use ts_ev.h).
 *
 * Purpose: every wait is a poll(2) for the direction the transport asked
 * for (a TLS read may need to write) with the time left until one total
 * deadline from CLOCK_MONOTONIC (ts_clock.h), so no call outlives its
 * timeout; EINTR restarts with the time that is left.  The fd runs
 * non-blocking for the duration of a call (restored after), so neither a
 * blocking socket nor a TLS record that arrives in pieces can hang.  A
 * frame's length is checked against the caller's limit before anything
 * is allocated for it; small frames leave in one write.
 *
 * Locking: none; a ts_conn_t belongs to one thread.
 * Crash behaviour: nothing persistent; the peer sees EOF/RST.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_proto.h"
#include "ts_net.h"

/*
 * Waits until fd is ready for events or the deadline passes.  0 = ready
 * (or an error condition the next read/write will report), -1 with errno
 * ETIMEDOUT, EBADF, ...  EINTR restarts with the time that is left.
 */
static int
wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd pfd;
    int           rc;

    for (;;) {
        pfd.fd = fd;
        pfd.events = events;
        pfd.revents = 0;
        rc = poll(&pfd, 1, ts_ms_left(deadline));
        if (rc < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (rc == 0) {
            if (ts_now_ms() >= deadline) {
                errno = ETIMEDOUT;
                return -1;
            }
            continue;
        }
        if (pfd.revents & POLLNVAL) {
            errno = EBADF;
            return -1;
        }
        return 0;
    }
}

int
ts_net_connect(const char *ip, uint16_t port, int timeout_ms)
{
    int64_t deadline = ts_deadline_ms(timeout_ms);
    int     fd, saved;

    fd = ts_net_connect_start(ip, port);
    if (fd < 0) {
        return -1;
    }
    if (wait_fd(fd, POLLOUT, deadline) != 0 || ts_net_connect_finish(fd) != 0
        || ts_net_set_nonblock(fd, 0) != 0)
    {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/*
 * Both directions run the fd non-blocking for the duration of the call
 * (restored after), so neither a blocking socket nor a TLS record that
 * arrives in pieces can outlive the deadline.  After EAGAIN the wait is
 * for the direction the layer asked for: a TLS read may need to write.
 */
static int
nonblock_begin(int fd, int *fl)
{
    *fl = fcntl(fd, F_GETFL);
    if (*fl < 0) {
        return -1;
    }
    if (!(*fl & O_NONBLOCK) && fcntl(fd, F_SETFL, *fl | O_NONBLOCK) < 0) {
        return -1;
    }
    return 0;
}

static void
nonblock_end(int fd, int fl)
{
    int saved = errno;

    if (!(fl & O_NONBLOCK)) {
        fcntl(fd, F_SETFL, fl);
    }
    errno = saved;
}

static short
want_events(const ts_conn_t *c)
{
    return ts_conn_want(c) == 2 ? POLLOUT : POLLIN;
}

/* reads (or writes) all n bytes by the deadline: 0, or -1 with errno */
static int
full_until(ts_conn_t *c, void *buf, size_t n, int64_t deadline,
           int is_write)
{
    uint8_t *p = buf;
    size_t   done = 0;
    ssize_t  r;
    int      fl, rc = 0;

    if (nonblock_begin(ts_conn_fd(c), &fl) != 0) {
        return -1;
    }
    while (done < n) {
        r = is_write ? ts_conn_write(c, p + done, n - done)
                     : ts_conn_read(c, p + done, n - done);
        if (r > 0) {
            done += (size_t) r;
            continue;
        }
        if (r == 0) {
            errno = ECONNRESET;
            rc = -1;
            break;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            rc = -1;
            break;
        }
        if (wait_fd(ts_conn_fd(c), want_events(c), deadline) != 0) {
            rc = -1;
            break;
        }
    }
    nonblock_end(ts_conn_fd(c), fl);
    return rc;
}

static int
read_full_until(ts_conn_t *c, void *buf, size_t n, int64_t deadline)
{
    return full_until(c, buf, n, deadline, 0);
}

static int
write_full_until(ts_conn_t *c, const void *buf, size_t n, int64_t deadline)
{
    return full_until(c, (void *) buf, n, deadline, 1);
}

int
ts_conn_handshake(ts_conn_t *c, int timeout_ms)
{
    int64_t deadline = ts_deadline_ms(timeout_ms);
    int     fl, rc;

    if (c == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (ts_conn_ready(c)) {
        return 0;
    }
    if (nonblock_begin(ts_conn_fd(c), &fl) != 0) {
        return -1;
    }
    for (;;) {
        rc = ts_conn_handshake_step(c);
        if (rc != 0) {
            break;
        }
        if (wait_fd(ts_conn_fd(c), want_events(c), deadline) != 0) {
            rc = -1;
            break;
        }
    }
    nonblock_end(ts_conn_fd(c), fl);
    return rc > 0 ? 0 : -1;
}

int
ts_conn_read_full(ts_conn_t *c, void *buf, size_t n, int timeout_ms)
{
    return read_full_until(c, buf, n, ts_deadline_ms(timeout_ms));
}

int
ts_conn_write_full(ts_conn_t *c, const void *buf, size_t n, int timeout_ms)
{
    return write_full_until(c, buf, n, ts_deadline_ms(timeout_ms));
}

int
ts_conn_send_frame(ts_conn_t *c, uint8_t type, uint8_t flags,
                   uint64_t reqid, const void *payload, uint32_t len,
                   int timeout_ms)
{
    uint8_t  hdr[TS_FRAME_HDR_B];
    uint8_t *one;
    int64_t  deadline = ts_deadline_ms(timeout_ms);
    int      rc;

    if (len > 0 && payload == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (len > TS_FRAME_MAX_B) {
        errno = EMSGSIZE;
        return -1;
    }
    ts_frame_hdr_make(hdr, type, flags, reqid, len);

    /* small frames leave in one segment; big ones are not copied */
    if (len <= TS_NET_COALESCE_B) {
        one = malloc(TS_FRAME_HDR_B + (size_t) len);
        if (one != NULL) {
            memcpy(one, hdr, TS_FRAME_HDR_B);
            if (len > 0) {
                memcpy(one + TS_FRAME_HDR_B, payload, len);
            }
            rc = write_full_until(c, one, TS_FRAME_HDR_B + (size_t) len,
                                  deadline);
            free(one);
            return rc;
        }
    }
    if (write_full_until(c, hdr, TS_FRAME_HDR_B, deadline) != 0) {
        return -1;
    }
    return len ? write_full_until(c, payload, len, deadline) : 0;
}

int
ts_conn_recv_frame(ts_conn_t *c, ts_frame_hdr_t *h, uint8_t **payload,
                   uint32_t max_payload, int timeout_ms)
{
    uint8_t  hdr[TS_FRAME_HDR_B];
    uint8_t *buf = NULL;
    int64_t  deadline = ts_deadline_ms(timeout_ms);
    int      saved;

    *payload = NULL;
    if (read_full_until(c, hdr, sizeof(hdr), deadline) != 0) {
        return -1;
    }
    /* first the shape (magic, version, type), then the size, so the two
     * failures get distinct errnos */
    if (ts_frame_hdr_decode(hdr, h, UINT32_MAX) != 0) {
        errno = EPROTO;
        return -1;
    }
    if (h->len > max_payload) {
        errno = EMSGSIZE;
        return -1;
    }
    if (h->len == 0) {
        return 0;
    }
    buf = malloc(h->len);
    if (buf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    if (read_full_until(c, buf, h->len, deadline) != 0) {
        saved = errno;
        free(buf);
        errno = saved;
        return -1;
    }
    *payload = buf;
    return 0;
}
