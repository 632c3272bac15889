/*
 * ts_file.c -- the SHA1 of an open file and the directory fsync
 * (ts_file.h).
 *
 * Purpose: the whole-file checks of a download (the downloader's
 * finalization and its "already in place" test, the CLI's restart check)
 * read the file the same way: pread() in blocks from offset 0, EINTR
 * retried, a short read an error.
 *
 * Locking: none.  Crash behaviour: nothing is written; a process killed
 * here leaves no trace.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_crypto.h"
#include "ts_file.h"

int
ts_file_sha1(int fd, uint64_t size, uint8_t *buf, size_t bufsz,
             uint8_t md[20])
{
    ts_sha1_t *h;
    uint64_t   off;
    ssize_t    n = 0;
    int        err = 0;

    h = ts_sha1_new();
    if (h == NULL) {
        errno = ENOMEM;
        return -1;
    }
    for (off = 0; off < size; off += (uint64_t) n) {
        size_t want = size - off < bufsz ? (size_t) (size - off) : bufsz;

        n = pread(fd, buf, want, (off_t) off);
        if (n < 0 && errno == EINTR) {
            n = 0;
            continue;
        }
        if (n <= 0) {
            err = n < 0 ? errno : EIO;
            break;
        }
        ts_sha1_update(h, buf, (size_t) n);
    }
    ts_sha1_final(h, md);
    ts_sha1_free(h);
    if (off != size) {
        errno = err;
        return -1;
    }
    return 0;
}

int
ts_file_is_sha1(int fd, uint64_t size, const uint8_t sha1[20],
                uint8_t *buf, size_t bufsz)
{
    struct stat sb;
    uint8_t     md[20];

    if (fstat(fd, &sb) != 0 || (uint64_t) sb.st_size != size) {
        return 0;
    }
    return ts_file_sha1(fd, size, buf, bufsz, md) == 0
           && memcmp(md, sha1, 20) == 0;
}

void
ts_file_fsync_dir(const char *path)
{
    char   dir[PATH_MAX], *slash;
    int    dfd;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == dir) {
        slash[1] = '\0';
    } else {
        *slash = '\0';
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void) fsync(dfd);
        close(dfd);
    }
}
