/*
 * cli_ctl_io.c -- reads and writes control frames (cli_ctl_io.h) on a
 * Unix socket with a deadline on every byte: a peer that opens a frame
 * and stalls, or announces more than the limit, costs at most
 * TS_CLI_CTL_FRAME_MS and nothing beyond the header it sent.
 *
 * Locking: none (the caller owns the descriptor).
 * Crash behaviour: nothing persistent.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "cli_ctl_codec.h"
#include "cli_ctl_io.h"


/* Waits until fd is ready for ev or the deadline (ms, monotonic) passes:
 * 0, or -1 with errno ETIMEDOUT / the poll error. */
static int
cli_ctl_wait(int fd, short ev, int64_t deadline)
{
    struct pollfd  p;
    int64_t        left;
    int            r;

    for ( ;; ) {
        left = deadline - ts_now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        p.fd = fd;
        p.events = ev;
        p.revents = 0;
        r = poll(&p, 1, left > 60000 ? 60000 : (int) left);
        if (r > 0) {
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
    }
}


/* Reads n bytes within the deadline: 0, or -1 (EPROTO on EOF). */
static int
cli_ctl_read_n(int fd, uint8_t *p, size_t n, int64_t deadline)
{
    ssize_t  r;

    while (n > 0) {
        if (cli_ctl_wait(fd, POLLIN, deadline) != 0) {
            return -1;
        }
        r = recv(fd, p, n, MSG_DONTWAIT);
        if (r == 0) {
            errno = EPROTO;
            return -1;
        }
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += r;
        n -= (size_t) r;
    }
    return 0;
}


int
cli_ctl_read(int fd, uint32_t max, int first_ms, uint8_t **body,
             size_t *len)
{
    uint8_t        hdr[CLI_CTL_HDR_B], *b;
    struct pollfd  p;
    uint32_t       n;
    ssize_t        r;
    int64_t        deadline;
    int            w;

    /* the first byte: as long as the caller waits */
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    w = poll(&p, 1, first_ms);
    if (w == 0) {
        errno = EAGAIN;
        return -1;
    }
    if (w < 0) {
        return -1;
    }
    r = recv(fd, hdr, 1, MSG_DONTWAIT);
    if (r == 0) {
        errno = ECONNRESET;
        return -1;
    }
    if (r < 0) {
        return -1;
    }
    /* the rest of the frame: within the frame deadline */
    deadline = ts_now_ms() + TS_CLI_CTL_FRAME_MS;
    if (cli_ctl_read_n(fd, hdr + 1, sizeof(hdr) - 1, deadline) != 0) {
        return -1;
    }
    if (cli_ctl_hdr_len(hdr, max, &n) != 0) {
        errno = EMSGSIZE;
        return -1;
    }
    b = malloc((size_t) n + 1);
    if (b == NULL) {
        errno = ENOMEM;
        return -1;
    }
    if (cli_ctl_read_n(fd, b, n, deadline) != 0) {
        int  err = errno;

        free(b);
        errno = err;
        return -1;
    }
    b[n] = '\0';
    *body = b;
    *len = n;
    return 0;
}


int
cli_ctl_write(int fd, const void *buf, size_t n, int timeout_ms)
{
    const uint8_t  *p = buf;
    int64_t         deadline = ts_now_ms() + timeout_ms;
    ssize_t         r;

    while (n > 0) {
        if (cli_ctl_wait(fd, POLLOUT, deadline) != 0) {
            return -1;
        }
        r = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += r;
        n -= (size_t) r;
    }
    return 0;
}


int
cli_ctl_addr(const char *state_dir, struct sockaddr_un *sun, int *dirfd)
{
    *dirfd = -1;
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/control.sock",
                 state_dir) < (int) sizeof(sun->sun_path))
    {
        return 0;
    }
    *dirfd = open(state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*dirfd < 0) {
        return -1;
    }
    snprintf(sun->sun_path, sizeof(sun->sun_path),
             "/proc/self/fd/%d/control.sock", *dirfd);
    return 0;
}
