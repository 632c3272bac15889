/*
 * cli_ctl_io.h -- control frames on a socket, with deadlines
 * (cli_ctl_io.c; the frame format: cli_ctl_codec.h).
 *
 * Locking: one caller per descriptor.  Crash behaviour: nothing
 * persistent.
 */
#ifndef CLI_CTL_IO_H_INCLUDED
#define CLI_CTL_IO_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

/* Reads one frame: waits up to first_ms (-1: no limit) for its first
 * byte, then reads the rest within TS_CLI_CTL_FRAME_MS.  *body is
 * malloc'd and NUL-terminated.  0, or -1 with errno: ECONNRESET (closed
 * before a frame began), EPROTO (closed inside a frame), EMSGSIZE (a
 * length of 0 or above max: nothing of the body was read), EAGAIN (no
 * first byte within first_ms), ETIMEDOUT (a frame begun and not ended
 * in time), EINTR (a signal while waiting for the first byte), ENOMEM. */
int  cli_ctl_read(int fd, uint32_t max, int first_ms, uint8_t **body,
                  size_t *len);
/* Writes all of buf within timeout_ms.  0, or -1 with errno. */
int  cli_ctl_write(int fd, const void *buf, size_t n, int timeout_ms);

/* The control socket's address in state_dir: <state_dir>/control.sock,
 * or when that does not fit in sun_path (108 bytes), the same file
 * through an O_PATH descriptor of the directory,
 * /proc/self/fd/<*dirfd>/control.sock (*dirfd stays open while the
 * address is used; -1 when not needed).  0, or -1 with errno. */
int  cli_ctl_addr(const char *state_dir, struct sockaddr_un *sun,
                  int *dirfd);

#endif
