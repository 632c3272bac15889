/*
 * cli_part.c -- a download's .part file and its finished file on disk:
 * made exclusively, reopened only when it is still the download's own
 * inode (node_open_part), removed only when the name still is that file.
 *
 * Locking: none of its own; the agent calls these with cli_agent.mu
 * held (restores) or on the main thread before the download exists.
 * Crash behaviour: a .part is created durably (fsync of its directory);
 * a killed client leaves it for the next login to reopen, and a
 * finished file renamed into place before DONE was recorded is found
 * again by its size and SHA1 (cli_part_dest_is_done).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_file.h"
#include "node.h"
#include "cli_state.h"
#include "cli_part.h"


/* 1 if path is a regular file (not a symlink) of the record's size whose
 * SHA1 is the record's: the finished file, renamed into place by a
 * downloader killed before DONE was recorded. */
int
cli_part_dest_is_done(const cli_dl_rec_t *r)
{
    uint8_t     *buf;
    int          fd, ok;

    /* the renamed .part keeps its inode: nothing else is ours */
    fd = node_open_part(r->dest, O_RDONLY, &r->part_id);
    if (fd < 0) {
        return 0;
    }
    buf = malloc(TS_CHUNK_B);
    ok = buf != NULL && ts_file_is_sha1(fd, r->size, r->sha1, buf,
                                        TS_CHUNK_B);
    free(buf);
    close(fd);
    return ok;
}


int
cli_part_create(const char *part, node_fid_t *id, char *err, size_t errsz)
{
    int          fd;

    fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              0644);
    if (fd < 0) {
        if (errno == EEXIST) {
            snprintf(err, errsz, "'%s' already exists", part);
        } else {
            snprintf(err, errsz, "cannot create '%s': %s", part,
                     strerror(errno));
        }
        return -1;
    }
    if (node_fid_of(fd, id) != 0) {
        snprintf(err, errsz, "cannot create '%s': %s", part,
                 strerror(errno));
        close(fd);
        (void) unlink(part);
        return -1;
    }
    close(fd);
    node_fsync_dir_of(part);
    return 0;
}


void
cli_part_unlink(const char *part, const node_fid_t *id)
{
    int fd = node_open_part(part, O_RDONLY, id);

    if (fd >= 0) {
        close(fd);
        (void) unlink(part);
    }
}


/* The .part of a download being put back (a node start, a login): 1 and
 * its size in *have if it is there and is the download's own file (a
 * version-1 record adopts the regular file it finds and pins it); 0 if
 * it is missing and was made anew (empty); -1 with the reason in why if
 * another file has taken its name or it cannot be made.  *dirty is set
 * when the record changed (a new or newly pinned .part). */
int
cli_part_reopen(cli_dl_rec_t *r, uint64_t *have, int *dirty, char *why,
                size_t whysz)
{
    static const node_fid_t  zero;
    struct stat              sb;
    char                     err[PATH_MAX + 64];
    int                      fd, unpinned;

    *have = 0;
    unpinned = memcmp(&r->part_id, &zero, sizeof(zero)) == 0;
    fd = node_open_part(r->part, O_RDONLY, unpinned ? NULL : &r->part_id);
    if (fd >= 0) {
        if (fstat(fd, &sb) != 0 || (unpinned
                                    && node_fid_of(fd, &r->part_id) != 0))
        {
            snprintf(why, whysz, "cannot use '%s': %s", r->part,
                     strerror(errno));
            close(fd);
            return -1;
        }
        close(fd);
        *dirty |= unpinned;
        *have = (uint64_t) sb.st_size;
        return 1;
    }
    if (errno != ENOENT) {
        snprintf(why, whysz, "another file has taken the name of '%s'; "
                 "not adopted", r->part);
        return -1;
    }
    if (cli_part_create(r->part, &r->part_id, err, sizeof(err)) != 0) {
        snprintf(why, whysz, "%s", err);
        return -1;
    }
    *dirty = 1;
    return 0;
}


/* 1 if part is path + ".part" */
int
cli_part_of(const char *path, const char *part)
{
    size_t n = strlen(path);

    return strncmp(path, part, n) == 0 && strcmp(part + n, ".part") == 0;
}


/* Removes the .part of a cancelled (or never served) download, only if
 * the name still is that file, and makes the removal durable (fsync of
 * the directory).  max_b >= 0: only when it holds at most that many
 * bytes.  1 removed, 0 not there (or not ours, or larger), -1 unlink
 * failed. */
int
cli_part_remove(const char *part, const node_fid_t *id, int64_t max_b)
{
    struct stat  sb;
    int          fd = node_open_part(part, O_RDONLY, id);

    if (fd < 0) {
        return 0;
    }
    if (max_b >= 0 && (fstat(fd, &sb) != 0 || sb.st_size > max_b)) {
        close(fd);
        return 0;
    }
    close(fd);
    if (unlink(part) != 0) {
        return errno == ENOENT ? 0 : -1;
    }
    ts_file_fsync_dir(part);
    return 1;
}
