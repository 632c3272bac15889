/*
 * ts_net_sendfile.c -- zero-copy file -> connection transfer for the
 * uploader (ts_conn_sendfile, declared in ts_net.h).
 *
 * Purpose: chunks go from the page cache to the socket with sendfile(2),
 * never through a user buffer, on a plain connection.  On a TLS
 * connection the bytes must pass through the cipher in user space: they
 * are pread() into a per-connection staging buffer (TS_TLS_STAGE_B,
 * allocated on first use, filled by ts_conn_stage_fill) and encrypted
 * once: a batch of records per send(2) on an established link
 * (ts_tls_batch.c), or here, record by record through ts_conn_write
 * (ts_conn_sendfile_staged, the path before the handshake ends and after
 * an SSL_write error).  The staged bytes are the ones at *off, so a
 * partial write or EAGAIN resumes from the stage without reading again;
 * *off and the return value count bytes that actually left, as with
 * sendfile(2).
 *
 * Locking: none; a ts_conn_t belongs to one thread.
 * Crash behaviour: nothing persistent; a dead sender's peer sees EOF/RST.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/types.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_conn_int.h"
#include "ts_net.h"

ssize_t
ts_conn_stage_fill(ts_conn_t *c, int in_fd, off_t off, size_t n)
{
    ssize_t r;
    size_t  want;

    if (c->stage == NULL) {
        c->stage = malloc(TS_TLS_STAGE_B);
        if (c->stage == NULL) {
            errno = ENOMEM;
            return -1;
        }
        c->stage_len = c->stage_pos = 0;
    }
    if (c->stage_pos >= c->stage_len) {
        want = n < TS_TLS_STAGE_B ? n : TS_TLS_STAGE_B;
        do {
            r = pread(in_fd, c->stage, want, off);
        } while (r < 0 && errno == EINTR);
        if (r <= 0) {
            return r;           /* 0: the file has no bytes at off */
        }
        c->stage_len = (size_t) r;
        c->stage_pos = 0;
    }
    want = c->stage_len - c->stage_pos;
    return (ssize_t) (want < n ? want : n);
}

ssize_t
ts_conn_sendfile_staged(ts_conn_t *c, int in_fd, off_t *off, size_t n)
{
    ssize_t r, w;

    r = ts_conn_stage_fill(c, in_fd, *off, n);
    if (r <= 0) {
        return r;
    }
    w = ts_conn_write(c, c->stage + c->stage_pos, (size_t) r);
    if (w > 0) {
        c->stage_pos += (size_t) w;
        *off += w;
        if (c->stage_pos >= c->stage_len) {
            c->stage_pos = c->stage_len = 0;
        }
    }
    return w;
}

ssize_t
ts_conn_sendfile(ts_conn_t *c, int in_fd, off_t *off, size_t n)
{
    if (n == 0) {
        return 0;
    }
    if (c == NULL) {
        errno = EBADF;
        return -1;
    }
    return c->ops->sendfile(c, in_fd, off, n);
}

ssize_t
ts_conn_sendfile_direct(ts_conn_t *c, int in_fd, off_t *off, size_t n)
{
    ssize_t  rc;
    int      fd;

    fd = ts_conn_fd(c);
    if (fd < 0 || in_fd < 0 || off == NULL) {
        errno = EBADF;
        return -1;
    }
    if (n > TS_NET_SENDFILE_MAX_B) {
        n = TS_NET_SENDFILE_MAX_B;
    }

    do {
        rc = sendfile(fd, in_fd, off, n);
    } while (rc < 0 && errno == EINTR);

    if (rc < 0 && errno == EWOULDBLOCK) {
        errno = EAGAIN;
    }
    return rc;
}
