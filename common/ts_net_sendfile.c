/*
 * ts_net_sendfile.c -- zero-copy file -> connection transfer for the
 * uploader (ts_conn_sendfile, declared in ts_net.h).
 *
 * Purpose: chunks go from the page cache to the socket with sendfile(2),
 * never through a user buffer.  This works on the plain socket under a
 * ts_conn_t; when TLS arrives, this file gets a pread + ts_conn_write
 * fallback for SSL BIOs (the caller's contract does not change).
 *
 * Locking: none; a ts_conn_t belongs to one thread.
 * Crash behaviour: nothing persistent; a dead sender's peer sees EOF/RST.
 */
#include <errno.h>
#include <sys/sendfile.h>
#include <sys/types.h>

#include "ts_net.h"

/* one call moves at most this much, so a big n cannot starve a loop */
#define TS_SENDFILE_MAX_B  (1u << 30)

ssize_t
ts_conn_sendfile(ts_conn_t *c, int in_fd, off_t *off, size_t n)
{
    ssize_t  rc;
    int      fd;

    if (n == 0) {
        return 0;
    }
    fd = ts_conn_fd(c);
    if (fd < 0 || in_fd < 0 || off == NULL) {
        errno = EBADF;
        return -1;
    }
    if (n > TS_SENDFILE_MAX_B) {
        n = TS_SENDFILE_MAX_B;
    }

    do {
        rc = sendfile(fd, in_fd, off, n);
    } while (rc < 0 && errno == EINTR);

    if (rc < 0 && errno == EWOULDBLOCK) {
        errno = EAGAIN;
    }
    return rc;
}
