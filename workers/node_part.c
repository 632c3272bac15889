/*
 * node_part.c -- a download's files as the node opens them: the identity
 * of a file (device, inode, birth time), opening a .part or its renamed
 * final file only if it is the one the CLI made, and the directory fsync
 * (node.h).
 *
 * Purpose: a worker never creates a download's file and never follows a
 * symlink to one (O_NOFOLLOW), so a file someone else put at the name is
 * never written or read as ours.
 *
 * Locking: none; no state.  Crash behaviour: nothing is written here but
 * a directory's fsync.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_file.h"
#include "node.h"


void
node_fsync_dir_of(const char *path)
{
    ts_file_fsync_dir(path);
}


int
node_fid_of(int fd, node_fid_t *id)
{
    struct statx sx;

    memset(id, 0, sizeof(*id));
    if (statx(fd, "", AT_EMPTY_PATH, STATX_INO | STATX_BTIME, &sx) != 0) {
        return -1;
    }
    id->dev = ((uint64_t) sx.stx_dev_major << 32) | sx.stx_dev_minor;
    id->ino = sx.stx_ino;
    if (sx.stx_mask & STATX_BTIME) {
        id->btime_ns = (int64_t) sx.stx_btime.tv_sec * 1000000000
                       + sx.stx_btime.tv_nsec;
    }
    return 0;
}


int
node_fid_eq(const node_fid_t *a, const node_fid_t *b)
{
    return a->dev == b->dev && a->ino == b->ino
           && (a->btime_ns == 0 || b->btime_ns == 0
               || a->btime_ns == b->btime_ns);
}


int
node_open_part(const char *path, int flags, const node_fid_t *id)
{
    static const node_fid_t  zero;
    struct stat              sb;
    node_fid_t               have;
    int                      fd, e;

    /* O_NONBLOCK: a FIFO put at the name must not block the open */
    fd = open(path, (flags & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_NOFOLLOW
                    | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        return -1;              /* ELOOP: a symlink took the name */
    }
    if (fstat(fd, &sb) != 0) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(sb.st_mode)
        || (id != NULL && memcmp(id, &zero, sizeof(zero)) != 0
            && (node_fid_of(fd, &have) != 0 || !node_fid_eq(&have, id))))
    {
        close(fd);
        errno = ESTALE;
        return -1;
    }
    (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}
