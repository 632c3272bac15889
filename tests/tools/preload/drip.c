/*
 * drip.c -- LD_PRELOAD shim for the system tests: makes a node's uploader
 * a slow-drip peer, one that keeps each reply trickling so that the
 * downloader's no-byte timeout never fires (tests/system/test_sec_files.py).
 *
 * Every write(2), send(2) and writev(2) on a TCP socket whose local port
 * is TS_DRIP_PORT (the node's own port: the links its uploaders accepted)
 * first sleeps TS_DRIP_MS milliseconds; everything else, the client's
 * links to its tracker included, is untouched.  Over TLS each write is
 * one record (16 KiB), so the peer sees a record every TS_DRIP_MS.
 *
 * Locking: none (the uploader is single-threaded; the sleep blocks only
 * the calling thread).  Crash behaviour: nothing persistent.
 */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static int  drip_port = -1;     /* -1: not read yet, 0: off */
static long drip_ms;

static int
drip_fd(int fd)
{
    struct sockaddr_storage ss;
    socklen_t               sl = sizeof(ss);
    int                     port, e = errno;

    if (drip_port < 0) {
        const char *p = getenv("TS_DRIP_PORT"), *m = getenv("TS_DRIP_MS");

        drip_port = p != NULL ? atoi(p) : 0;
        drip_ms = m != NULL ? atol(m) : 1000;
    }
    if (drip_port <= 0
        || getsockname(fd, (struct sockaddr *) &ss, &sl) != 0)
    {
        errno = e;
        return 0;
    }
    if (ss.ss_family == AF_INET) {
        port = ntohs(((struct sockaddr_in *) &ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        port = ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
    } else {
        port = -1;
    }
    errno = e;
    return port == drip_port;
}

static void
drip_sleep(void)
{
    struct timespec ts = { drip_ms / 1000, (drip_ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

ssize_t
write(int fd, const void *buf, size_t n)
{
    static ssize_t (*real)(int, const void *, size_t);

    if (real == NULL) {
        real = (ssize_t (*)(int, const void *, size_t)) dlsym(RTLD_NEXT,
                                                              "write");
    }
    if (drip_fd(fd)) {
        drip_sleep();
    }
    return real(fd, buf, n);
}

ssize_t
send(int fd, const void *buf, size_t n, int flags)
{
    static ssize_t (*real)(int, const void *, size_t, int);

    if (real == NULL) {
        real = (ssize_t (*)(int, const void *, size_t, int))
               dlsym(RTLD_NEXT, "send");
    }
    if (drip_fd(fd)) {
        drip_sleep();
    }
    return real(fd, buf, n, flags);
}

ssize_t
writev(int fd, const struct iovec *iov, int n)
{
    static ssize_t (*real)(int, const struct iovec *, int);

    if (real == NULL) {
        real = (ssize_t (*)(int, const struct iovec *, int))
               dlsym(RTLD_NEXT, "writev");
    }
    if (drip_fd(fd)) {
        drip_sleep();
    }
    return real(fd, iov, n);
}
