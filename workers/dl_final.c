/*
 * dl_final.c -- finalization of a download: the whole-file check, fsync,
 * the rename into place (never replacing an existing file) and DONE.
 *
 * Purpose: once every chunk is done, one worker (the finalize_owner claim)
 * moves the download ACTIVE -> FINALIZING, finishes the frontier hash
 * (or re-reads the .part when the frontier is incomplete or disagrees;
 * a fresh download, every chunk verified against the tracker's list
 * before its pwrite, needs neither: dl_fh_hashing),
 * fsyncs the .part, checks that its name still is the file it hashed,
 * renames it to dest with RENAME_NOREPLACE, fsyncs the directory and
 * records DONE.
 *
 * Locking: the finalize_owner claim (CAS 0 -> our owner word) makes one
 * worker the finalizer; state moves are CAS from the expected state of
 * the same download id.
 *
 * Crash behaviour: a finalizer killed before its rename leaves the
 * download FINALIZING with its claim: node_reclaim() moves it back to
 * ACTIVE and the next finalizer starts over.  One killed between its
 * rename and DONE leaves no .part: the next finalizer finds dest a regular
 * file of the right size and SHA1 and records DONE.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_file.h"
#include "ts_log.h"
#include "dl_int.h"

/*
 * 1 if dest already is the finished file: a regular file (not followed
 * through a symlink) of the right size whose SHA1 is the file's.  That is
 * what a finalizer killed between its rename and DONE leaves behind.
 */
static int
dl_final_dest_done(dl_t *w, const dl_local_t *l)
{
    int fd, ok;

    /* the renamed .part keeps its inode: nothing else is ours */
    fd = node_open_part(l->dest, O_RDONLY, &l->part_id);
    if (fd < 0) {
        return 0;
    }
    ok = ts_file_is_sha1(fd, l->size, l->sha1, w->fbuf, TS_DL_FINAL_BLOCK_B);
    close(fd);
    return ok;
}

/* Every chunk done and the frontier fed to the end: takes the finalize
 * claim and moves download i ACTIVE -> FINALIZING.  1 if we are its
 * finalizer now (*front: the frontier reached), else 0. */
static int
dl_final_begin(dl_t *w, int i, uint32_t *front)
{
    node_dl_sh_t     *d = &w->dls[i];
    dl_local_t       *l = &w->loc[i];
    _Atomic uint64_t *done = node_dl_done(w->shm, i);
    uint64_t          exp = 0;
    uint32_t          st = NODE_DL_ACTIVE, c;

    for (c = 0; c < l->nchunks; c++) {
        if (!node_bit_test(done, c)) {
            return 0;
        }
    }
    /* finish the frontier hash; if another worker is feeding it, it
     * comes back here itself when its turn ends */
    *front = dl_fh_advance(w, i, NULL, 0, UINT32_MAX - 1);
    if (*front == DL_FH_BUSY) {
        return 0;
    }
    if (!atomic_compare_exchange_strong(&d->finalize_owner, &exp, w->me)) {
        return 0;
    }
    if (atomic_load(&d->id) != l->id
        || !atomic_compare_exchange_strong(&d->state, &st, NODE_DL_FINALIZING))
    {
        ts_claim_release(&d->finalize_owner, w->me);
        return 0;
    }
    return 1;
}

/* The whole-file SHA1 of the .part (fd) against the download's: the
 * frontier's when it is complete and agrees, else the file read back.
 * 0 if it matches; -1 after failing the download (or moving it back to
 * ACTIVE when out of memory). */
static int
dl_final_verify(dl_t *w, int i, int fd, uint32_t front)
{
    dl_local_t *l = &w->loc[i];
    uint8_t     md[20];

    if (!dl_fh_hashing(w, i)) {
        /* every done bit was set right after that chunk verified in
         * memory and its pwrite returned, in this segment's life (a
         * restore from node.tdb sets `restored`): the file is good */
        return 0;
    }
    if (front == l->nchunks && dl_fh_final(w, i, md) == 0
        && memcmp(md, l->sha1, 20) == 0)
    {
        return 0;
    }
    /* no complete frontier hash (a read failed) or it disagrees: the
     * file itself decides, read back from the .part */
    atomic_fetch_add(&w->stats->fh_rereads, 1);
    ts_warn("download %s/%s: frontier hash %s; re-reading the .part",
            l->group, l->name, front == l->nchunks ? "mismatch"
                                                   : "incomplete");
    if (ts_file_sha1(fd, l->size, w->fbuf, TS_DL_FINAL_BLOCK_B, md) != 0) {
        if (errno == ENOMEM) {
            (void) dl_local_set_state(w, i, NODE_DL_FINALIZING,
                                      NODE_DL_ACTIVE, NULL);
            return -1;
        }
        ts_err("pread(\"%s\") failed: %s", l->part, strerror(errno));
        dl_local_fail(w, i, NODE_DL_FINALIZING,
                      "cannot read the .part file");
        return -1;
    }
    if (memcmp(md, l->sha1, 20) != 0) {
        dl_local_fail(w, i, NODE_DL_FINALIZING,
                      "whole-file SHA1 mismatch (the .part is kept)");
        return -1;
    }
    return 0;
}

/* fsync of the verified .part (fd), then its rename to dest, never over
 * an existing file.  0 if renamed, 1 if the finished file already is
 * in place, -1 after failing the download. */
static int
dl_final_place(dl_t *w, int i, int fd)
{
    dl_local_t  *l = &w->loc[i];
    struct stat  a, b;
    char         why[256];
    int          err;

    if (fsync(fd) != 0) {
        ts_err("fsync(\"%s\") failed: %s", l->part, strerror(errno));
        dl_local_fail(w, i, NODE_DL_FINALIZING,
                      "fsync of the .part file failed");
        return -1;
    }
    /* the rename goes by name: the name must still be the file hashed */
    if (fstat(fd, &a) != 0 || lstat(l->part, &b) != 0
        || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
    {
        dl_local_fail(w, i, NODE_DL_FINALIZING, dl_local_part_why(ESTALE));
        return -1;
    }
    if (renameat2(AT_FDCWD, l->part, AT_FDCWD, l->dest, RENAME_NOREPLACE)
        == 0)
    {
        return 0;
    }
    err = errno;
    /* EEXIST / ENOENT: a killed finalizer may have renamed it already */
    if ((err == EEXIST || err == ENOENT) && dl_final_dest_done(w, l)) {
        return 1;
    }
    ts_err("renameat2(\"%s\") failed: %s", l->dest, strerror(err));
    snprintf(why, sizeof(why), "cannot rename into place: %s",
             err == EEXIST ? "destination exists" : strerror(err));
    dl_local_fail(w, i, NODE_DL_FINALIZING, why);
    return -1;
}

/* The finished file is at dest: the rename made durable, DONE recorded.
 * t0: finalization began, t1: the hash was done. */
static void
dl_final_done(dl_t *w, int i, int64_t t0, int64_t t1)
{
    node_dl_sh_t *d = &w->dls[i];
    dl_local_t   *l = &w->loc[i];
    int64_t       t2 = ts_now_ms();

    ts_file_fsync_dir(l->dest);        /* the rename durable too */
    if (atomic_load(&d->id) == l->id) {
        atomic_store(&d->finished_ms, ts_wall_ms());
        atomic_store(&d->waiting, 0);
    }
    if (!dl_local_set_state(w, i, NODE_DL_FINALIZING, NODE_DL_DONE, NULL)) {
        return;
    }
    ts_info("download %s/%s done: %llu bytes -> %s (final hash %lld ms, "
            "fsync+rename %lld ms, dir fsync %lld ms)", l->group, l->name,
            (unsigned long long) l->size, l->dest, (long long) (t1 - t0),
            (long long) (t2 - t1), (long long) (ts_now_ms() - t2));
}

void
dl_final_run(dl_t *w, int i)
{
    node_dl_sh_t *d = &w->dls[i];
    dl_local_t   *l = &w->loc[i];
    int64_t       t0 = ts_now_ms(), t1 = t0;
    uint32_t      front;
    int           fd, rc;

    if (!dl_final_begin(w, i, &front)) {
        return;
    }
    /* a fresh descriptor of whatever is at the .part's name now, never
     * created here: a finalizer killed after its rename left none, and
     * the finished file is then already at dest */
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
    fd = node_open_part(l->part, O_RDWR, &l->part_id);
    if (fd < 0 && errno == ENOENT && dl_final_dest_done(w, l)) {
        rc = 1;
    } else if (fd < 0) {
        int err = errno;

        ts_err("open(\"%s\") failed: %s", l->part, strerror(err));
        dl_local_fail(w, i, NODE_DL_FINALIZING, dl_local_part_why(err));
        rc = -1;
    } else {
        l->fd = fd;
        rc = 0;
        if (ftruncate(fd, (off_t) l->size) != 0) {
            ts_err("ftruncate(\"%s\") failed: %s", l->part,
                   strerror(errno));
            dl_local_fail(w, i, NODE_DL_FINALIZING,
                          "cannot size the .part file");
            rc = -1;
        }
        if (rc == 0) {
            rc = dl_final_verify(w, i, fd, front);
        }
        if (rc == 0) {
            t1 = ts_now_ms();
            rc = dl_final_place(w, i, fd);
        }
    }
    if (rc == 1) {
        ts_info("download %s/%s: %s is already in place", l->group,
                l->name, l->dest);
    }
    if (rc >= 0) {
        dl_final_done(w, i, t0, t1);
    }
    ts_claim_release(&d->finalize_owner, w->me);
    dl_local_drop(l);
}
