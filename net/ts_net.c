/*
 * ts_net.c -- sockets, address parsing, and ts_conn_t: the one connection
 * layer every Tessera link (client-tracker, tracker-tracker, peer-peer)
 * goes through.
 *
 * Purpose: a ts_conn_t is a socket plus a transport ops table
 * (ts_conn_int.h): the plain transport here (an OpenSSL socket BIO) or TLS
 * (ts_tls.c, set by ts_conn_new_tls).  The calls below dispatch through
 * the table, so no caller and no code here asks which one it is.  Raw
 * reads/writes map "should retry" to errno EAGAIN for event loops; the *_full and frame helpers poll(2) against one total
 * deadline taken from CLOCK_MONOTONIC, so they never hang, and a blocking
 * fd is switched to non-blocking for the duration of a write so a full
 * send buffer cannot outlive the deadline.  A frame's length is checked
 * against the caller's limit before anything is allocated for it.
 *
 * Locking: none.  A ts_conn_t belongs to one thread.  The only process
 * state is a one-time switch of SIGPIPE from "terminate" to "ignore"
 * (socket BIOs use write(2), and a peer that vanishes must cost only its
 * connection, never the process).
 * Crash behaviour: nothing persistent.  If the process dies the kernel
 * closes its sockets and the peer sees EOF or RST and retries.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>

#include "ts_config.h"
#include "ts_proto.h"
#include "ts_net.h"

#include "ts_conn_int.h"

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

static int
make_sockaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss,
              socklen_t *sl)
{
    struct sockaddr_in  *s4 = (struct sockaddr_in *) ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) ss;

    memset(ss, 0, sizeof(*ss));
    if (ip == NULL || ip[0] == '\0') {
        ip = "0.0.0.0";
    }
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        *sl = sizeof(*s4);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        *sl = sizeof(*s6);
        return 0;
    }
    errno = EINVAL;
    return -1;
}

/* ---- sockets --------------------------------------------------------- */

int
ts_net_set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0) {
        return -1;
    }
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl) < 0 ? -1 : 0;
}

int
ts_net_listen(const char *ip, uint16_t port, int backlog)
{
    struct sockaddr_storage ss;
    socklen_t               sl;
    int                     fd, one = 1, saved;

    if (make_sockaddr(ip, port, &ss, &sl) != 0) {
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
        goto fail;
    }
    if (ss.ss_family == AF_INET6
        && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
    {
        goto fail;
    }
    if (bind(fd, (struct sockaddr *) &ss, sl) < 0) {
        goto fail;
    }
    if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
        goto fail;
    }
    return fd;

fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

int
ts_net_connect_start(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t               sl;
    int                     fd, saved;

    if (ip == NULL || make_sockaddr(ip, port, &ss, &sl) != 0 || port == 0) {
        errno = EINVAL;
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    /* EINTR: the connect goes on asynchronously, same as EINPROGRESS; 0
     * (loopback) is reported writable at once like a finished one */
    if (connect(fd, (struct sockaddr *) &ss, sl) < 0 && errno != EINPROGRESS
        && errno != EINTR)
    {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int
ts_net_connect_finish(int fd)
{
    socklen_t el;
    int       soerr = 0, one = 1;

    el = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) < 0) {
        return -1;
    }
    if (soerr != 0) {
        errno = soerr;
        return -1;
    }
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
        return -1;
    }
    return 0;
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

/* ---- connections ----------------------------------------------------- */

static pthread_once_t sigpipe_once = PTHREAD_ONCE_INIT;

static void
ignore_sigpipe(void)
{
    struct sigaction sa;

    /* leave a handler the program installed on purpose alone */
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL
        && !(sa.sa_flags & SA_SIGINFO))
    {
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGPIPE, &sa, NULL);
    }
}

/* ---- the plain transport ---------------------------------------------- */

/* BIO_read or BIO_write with the ts_conn_read/ts_conn_write contract */
static ssize_t
plain_io(ts_conn_t *c, void *buf, size_t n, int is_write)
{
    int rc, saved;

    if (n > INT_MAX) {
        n = INT_MAX;
    }
    errno = 0;
    c->want = is_write ? 2 : 1;
    rc = is_write ? BIO_write(c->bio, buf, (int) n)
                  : BIO_read(c->bio, buf, (int) n);
    if (rc > 0) {
        return rc;
    }
    saved = errno;
    if (BIO_should_retry(c->bio)) {
        errno = EAGAIN;
        return -1;
    }
    if (!is_write && (rc == 0 || (saved == 0 && BIO_eof(c->bio)))) {
        return 0;
    }
    errno = saved ? saved : EIO;
    return -1;
}

static ssize_t
plain_read(ts_conn_t *c, void *buf, size_t n)
{
    return plain_io(c, buf, n, 0);
}

static ssize_t
plain_write(ts_conn_t *c, const void *buf, size_t n)
{
    return plain_io(c, (void *) buf, n, 1);
}

static int
plain_pending(ts_conn_t *c)
{
    size_t n = BIO_ctrl_pending(c->bio);

    return n > INT_MAX ? INT_MAX : (int) n;
}

static int
plain_handshake(ts_conn_t *c)
{
    return 1;                   /* nothing to agree on */
}

static void
plain_close(ts_conn_t *c)
{
    BIO_free_all(c->bio);       /* BIO_CLOSE: closes the fd */
    c->bio = NULL;
    c->fd = -1;
}

static const ts_conn_ops_t plain_ops = {
    plain_read, plain_write, plain_pending, ts_conn_sendfile_direct,
    plain_handshake, plain_close, 0
};

/* ---- connections: the calls every transport shares ------------------- */

ts_conn_t *
ts_conn_new(int fd)
{
    ts_conn_t *c;

    if (fd < 0) {
        errno = EBADF;
        return NULL;
    }
    pthread_once(&sigpipe_once, ignore_sigpipe);
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    c->ops = &plain_ops;
    c->ready = 1;
    c->fd = fd;
    c->bio = BIO_new_socket(fd, BIO_CLOSE);
    if (c->bio == NULL) {
        free(c);
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    return c;
}

void
ts_conn_free(ts_conn_t *c)
{
    int saved = errno;

    if (c == NULL) {
        return;
    }
    c->ops->close(c);
    free(c->stage);
    free(c);
    errno = saved;
}

int
ts_conn_fd(const ts_conn_t *c)
{
    return c ? c->fd : -1;
}

int
ts_conn_pending(ts_conn_t *c)
{
    return c != NULL ? c->ops->pending(c) : 0;
}

ssize_t
ts_conn_read(ts_conn_t *c, void *buf, size_t n)
{
    return n == 0 ? 0 : c->ops->read(c, buf, n);
}

ssize_t
ts_conn_write(ts_conn_t *c, const void *buf, size_t n)
{
    return n == 0 ? 0 : c->ops->write(c, buf, n);
}

int
ts_conn_ready(const ts_conn_t *c)
{
    return c != NULL && c->ready;
}

int
ts_conn_want(const ts_conn_t *c)
{
    return c != NULL && c->want == 2 ? 2 : 1;
}

int
ts_conn_is_tls(const ts_conn_t *c)
{
    return c != NULL && c->ops->is_tls;
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
want_events(const ts_conn_t *c, short dflt)
{
    if (c->want == 1) {
        return POLLIN;
    }
    if (c->want == 2) {
        return POLLOUT;
    }
    return dflt;
}

static int
read_full_until(ts_conn_t *c, void *buf, size_t n, int64_t deadline)
{
    uint8_t *p = buf;
    size_t   got = 0;
    ssize_t  r;
    int      fl, rc = 0;

    if (nonblock_begin(c->fd, &fl) != 0) {
        return -1;
    }
    while (got < n) {
        r = ts_conn_read(c, p + got, n - got);
        if (r > 0) {
            got += (size_t) r;
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
        if (wait_fd(c->fd, want_events(c, POLLIN), deadline) != 0) {
            rc = -1;
            break;
        }
    }
    nonblock_end(c->fd, fl);
    return rc;
}

static int
write_full_until(ts_conn_t *c, const void *buf, size_t n, int64_t deadline)
{
    const uint8_t *p = buf;
    size_t         done = 0;
    ssize_t        w;
    int            fl, rc = 0;

    if (nonblock_begin(c->fd, &fl) != 0) {
        return -1;
    }
    while (done < n) {
        w = ts_conn_write(c, p + done, n - done);
        if (w > 0) {
            done += (size_t) w;
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            rc = -1;
            break;
        }
        if (wait_fd(c->fd, want_events(c, POLLOUT), deadline) != 0) {
            rc = -1;
            break;
        }
    }
    nonblock_end(c->fd, fl);
    return rc;
}

int
ts_conn_handshake_step(ts_conn_t *c)
{
    if (c == NULL) {
        errno = EINVAL;
        return -1;
    }
    return c->ready ? 1 : c->ops->handshake(c);
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
    if (c->ready) {
        return 0;
    }
    if (nonblock_begin(c->fd, &fl) != 0) {
        return -1;
    }
    for (;;) {
        rc = ts_conn_handshake_step(c);
        if (rc != 0) {
            break;
        }
        if (wait_fd(c->fd, want_events(c, POLLIN), deadline) != 0) {
            rc = -1;
            break;
        }
    }
    nonblock_end(c->fd, fl);
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
