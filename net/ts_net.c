/*
 * ts_net.c -- sockets (listen, connect) and ts_conn_t: the one connection
 * layer every Tessera link (client-tracker, tracker-tracker, peer-peer)
 * goes through.
 *
 * Purpose: a ts_conn_t is a socket plus a transport ops table
 * (ts_conn_int.h): the plain transport here (an OpenSSL socket BIO) or TLS
 * (ts_tls.c, set by ts_conn_new_tls).  The calls below dispatch through
 * the table, so no caller and no code here asks which one it is.  Raw
 * reads/writes map "should retry" to errno EAGAIN for event loops; the
 * blocking calls with a deadline (connect, *_full, frames, handshake) are
 * in ts_net_wait.c, the event loops' layer in ts_ev.c.
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
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>

#include "ts_config.h"
#include "ts_proto.h"
#include "ts_net.h"

#include "ts_conn_int.h"

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

/* ---- the plain transport --------------------------------------------- */

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

int
ts_conn_handshake_step(ts_conn_t *c)
{
    if (c == NULL) {
        errno = EINVAL;
        return -1;
    }
    return c->ready ? 1 : c->ops->handshake(c);
}
