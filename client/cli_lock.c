/*
 * cli_lock.c -- one node per state directory.  Two nodes on one
 * directory would both write node.tdb's shares and downloads and each
 * would publish the other's .part files, so the second start is refused.
 *
 * The lock is flock(LOCK_EX | LOCK_NB) on <state>/node.lock (mode 0600),
 * taken before the node is forked; the open descriptor is inherited by
 * the node supervisor and its workers (they fork, never exec), so the
 * lock lasts while any process of this node lives.  The file holds
 * the pid of the node's supervisor (first the client that took it), as
 * text, for the message of a CLI that finds the node running.
 *
 * Locking: main thread only.  Crash behaviour: the kernel drops an flock
 * with its last holder; the file left behind is rewritten by the next
 * start.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cli_lock.h"

/* Kept open for the life of the process: closing it would drop the lock. */
static int  cli_lock_fd = -1;


/* The pid written in the lock file, or 0 when it holds none. */
static pid_t
cli_lock_read_pid(int fd)
{
    char     buf[32];
    ssize_t  n;
    long     v;
    char    *end;

    n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    errno = 0;
    v = strtol(buf, &end, 10);
    if (errno != 0 || end == buf || v <= 0 || v > 0x7fffffffL) {
        return 0;
    }
    return (pid_t) v;
}


int
cli_lock_take(const char *state_dir, pid_t *holder)
{
    char  path[4200], pid[32];
    int   fd, n;

    *holder = 0;
    if (snprintf(path, sizeof(path), "%s/node.lock", state_dir)
        >= (int) sizeof(path))
    {
        errno = ENAMETOOLONG;
        return -2;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return -2;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int  err = errno;

        if (err == EWOULDBLOCK) {
            *holder = cli_lock_read_pid(fd);
            close(fd);
            return -1;
        }
        close(fd);
        errno = err;
        return -2;
    }
    n = snprintf(pid, sizeof(pid), "%ld\n", (long) getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t) n, 0) != n) {
        int  err = errno;

        close(fd);
        errno = err;
        return -2;
    }
    cli_lock_fd = fd;
    return 0;
}


int
cli_lock_note_pid(pid_t pid)
{
    char  buf[32];
    int   n;

    if (cli_lock_fd < 0) {
        errno = EBADF;
        return -1;
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long) pid);
    if (ftruncate(cli_lock_fd, 0) != 0
        || pwrite(cli_lock_fd, buf, (size_t) n, 0) != n)
    {
        return -1;
    }
    return 0;
}


int
cli_lock_held(const char *state_dir)
{
    char  path[4200];
    int   fd, held;

    if (snprintf(path, sizeof(path), "%s/node.lock", state_dir)
        >= (int) sizeof(path))
    {
        return 0;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return 0;
    }
    /* a shared try fails only while someone holds it exclusively */
    held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    if (!held) {
        (void) flock(fd, LOCK_UN);
    }
    close(fd);
    return held;
}
