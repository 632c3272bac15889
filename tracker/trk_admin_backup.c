/*
 * trk_admin_backup.c -- `tracker --backup FILE` and `tracker --restore
 * FILE`: a consistent copy of tracker.tdb and its return into a fresh
 * data directory.
 *
 * Purpose: --backup opens the tracker.tdb of a tracker (running or not),
 * takes tdb's all-record read lock (writers wait, readers do not; the
 * copy holds it for as long as one pass over the file takes), copies
 * every record into FILE.tmp inside one transaction of that new file,
 * checks the copy (tdb_check), fsyncs it and renames it to FILE.  The
 * copy is what tdb's own tdbbackup makes; doing it here keeps the hash
 * size and needs no extra tool.
 *
 * --restore checks FILE (tdb_check, and that it is a tracker database:
 * it has x/epoch) and writes it as <data dir>/tracker.tdb, which must not
 * exist yet.  The copy drops x/epoch and x/fresh and sets x/newseg, so
 * the restored tracker starts as a new data directory of its id
 * (docs/REPLICATION.md): it takes one full snapshot from a peer before
 * deltas, and its own next ops start a new seq segment above anything
 * the lost directory wrote after the backup.  It then converges with the
 * cluster; alone, it serves the backup's state.
 *
 * Locking: tdb's fcntl locks only (the all-record read lock on the
 * source).  Runs in a short-lived command process, never in a worker.
 *
 * Crash behaviour: only FILE.tmp (or tracker.tdb.tmp) is ever partial;
 * the rename makes the result appear whole or not at all, and a stale
 * .tmp is removed by the next run.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <tdb.h>
#include <unistd.h>

#include "trk_admin.h"

typedef struct {
    struct tdb_context *dst;
    int                 restore;    /* drop x/epoch, x/fresh */
    long                n;
    int                 err;
} bk_copy_t;


static int
bk_copy_one(struct tdb_context *src, TDB_DATA k, TDB_DATA v, void *arg)
{
    bk_copy_t *c = arg;

    (void) src;
    if (c->restore
        && ((k.dsize == 7 && memcmp(k.dptr, "x/epoch", 7) == 0)
            || (k.dsize == 7 && memcmp(k.dptr, "x/fresh", 7) == 0)))
    {
        return 0;
    }
    if (tdb_store(c->dst, k, v, TDB_INSERT) != 0) {
        c->err = 1;
        return -1;
    }
    c->n++;
    return 0;
}


/* fsync of a file by path (0 or -1). */
static int
bk_fsync_path(const char *path, int dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
    int rc;

    if (fd < 0) {
        return -1;
    }
    rc = fsync(fd);
    close(fd);
    return rc;
}


/* The directory of path into out ("." when none). */
static void
bk_dir_of(const char *path, char *out, size_t sz)
{
    const char *s = strrchr(path, '/');

    if (s == NULL) {
        snprintf(out, sz, ".");
    } else if (s == path) {
        snprintf(out, sz, "/");
    } else {
        snprintf(out, sz, "%.*s", (int) (s - path), path);
    }
}


/* Copies src into a new tdb at tmp, then renames it to dst_path.
 * 0, or 1 after printing why. */
static int
bk_write_copy(struct tdb_context *src, const char *tmp, const char *dst_path,
              int restore, long *nrec)
{
    struct tdb_context *dst;
    bk_copy_t           c;
    TDB_DATA            k, v;
    char                dir[PATH_MAX];

    (void) unlink(tmp);
    dst = tdb_open(tmp, tdb_hash_size(src), TDB_DEFAULT,
                   O_RDWR | O_CREAT | O_EXCL, 0600);
    if (dst == NULL) {
        fprintf(stderr, "tracker: cannot create %s: %s\n", tmp,
                strerror(errno));
        return 1;
    }
    memset(&c, 0, sizeof(c));
    c.dst = dst;
    c.restore = restore;
    if (tdb_transaction_start(dst) != 0
        || tdb_traverse_read(src, bk_copy_one, &c) < 0 || c.err)
    {
        fprintf(stderr, "tracker: copy into %s failed: %s\n", tmp,
                tdb_errorstr(dst));
        goto fail;
    }
    if (restore) {
        k.dptr = (unsigned char *) "x/newseg";
        k.dsize = 8;
        v.dptr = (unsigned char *) "1";
        v.dsize = 1;
        if (tdb_store(dst, k, v, TDB_REPLACE) != 0) {
            fprintf(stderr, "tracker: copy into %s failed: %s\n", tmp,
                    tdb_errorstr(dst));
            goto fail;
        }
    }
    if (tdb_transaction_commit(dst) != 0 || tdb_check(dst, NULL, NULL) != 0) {
        fprintf(stderr, "tracker: %s failed its check\n", tmp);
        tdb_close(dst);
        (void) unlink(tmp);
        return 1;
    }
    tdb_close(dst);
    bk_dir_of(dst_path, dir, sizeof(dir));
    if (bk_fsync_path(tmp, 0) != 0 || rename(tmp, dst_path) != 0
        || bk_fsync_path(dir, 1) != 0)
    {
        fprintf(stderr, "tracker: cannot write %s: %s\n", dst_path,
                strerror(errno));
        (void) unlink(tmp);
        return 1;
    }
    *nrec = c.n;
    return 0;

fail:
    tdb_close(dst);
    (void) unlink(tmp);
    return 1;
}


static int
bk_db_path(const char *data_dir, int id, char *out, size_t sz)
{
    int n = data_dir != NULL
            ? snprintf(out, sz, "%s/tracker.tdb", data_dir)
            : snprintf(out, sz, "./tsr-tracker-%d/tracker.tdb", id);

    if (n < 0 || (size_t) n >= sz) {
        fprintf(stderr, "tracker: data directory path too long\n");
        return -1;
    }
    return 0;
}


int
trk_backup_cmd(const char *data_dir, int id, const char *file)
{
    struct tdb_context *src;
    char                db[PATH_MAX], tmp[PATH_MAX];
    long                n = 0;
    int                 rc;

    if (bk_db_path(data_dir, id, db, sizeof(db)) != 0
        || snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= (int) sizeof(tmp))
    {
        return 2;
    }
    /* read-write: tdb takes the all-record lock only on such a handle;
     * nothing is written to it */
    src = tdb_open(db, 0, TDB_DEFAULT, O_RDWR, 0);
    if (src == NULL) {
        fprintf(stderr, "tracker: cannot open %s: %s\n", db,
                strerror(errno));
        return 1;
    }
    /* one consistent state: no transaction commits while we copy */
    if (tdb_lockall_read(src) != 0) {
        fprintf(stderr, "tracker: cannot lock %s: %s\n", db,
                tdb_errorstr(src));
        tdb_close(src);
        return 1;
    }
    rc = bk_write_copy(src, tmp, file, 0, &n);
    tdb_unlockall_read(src);
    tdb_close(src);
    if (rc == 0) {
        printf("backup of %s written to %s (%ld records)\n", db, file, n);
    }
    return rc;
}


int
trk_restore_cmd(const char *data_dir, int id, const char *file)
{
    struct tdb_context *src;
    struct stat         sb;
    char                db[PATH_MAX], tmp[PATH_MAX], dir[PATH_MAX];
    long                n = 0;
    int                 rc;

    if (bk_db_path(data_dir, id, db, sizeof(db)) != 0
        || snprintf(tmp, sizeof(tmp), "%s.tmp", db) >= (int) sizeof(tmp))
    {
        return 2;
    }
    if (stat(db, &sb) == 0) {
        fprintf(stderr, "tracker: %s exists: restore only into a fresh "
                "data directory\n", db);
        return 1;
    }
    bk_dir_of(db, dir, sizeof(dir));
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "tracker: cannot create %s: %s\n", dir,
                strerror(errno));
        return 1;
    }
    /* nobody else has the backup open: no locks needed (and a read-only
     * handle could not take them) */
    src = tdb_open(file, 0, TDB_NOLOCK, O_RDONLY, 0);
    if (src == NULL) {
        fprintf(stderr, "tracker: cannot open backup %s: %s\n", file,
                strerror(errno));
        return 1;
    }
    if (tdb_check(src, NULL, NULL) != 0
        || !tdb_exists(src, (TDB_DATA) { (unsigned char *) "x/epoch", 7 }))
    {
        fprintf(stderr, "tracker: %s is not a tracker database backup\n",
                file);
        tdb_close(src);
        return 1;
    }
    rc = bk_write_copy(src, tmp, db, 1, &n);
    tdb_close(src);
    if (rc == 0) {
        printf("restored %s into %s (%ld records); start the tracker: it "
               "takes one snapshot from a peer, then converges\n",
               file, db, n);
    }
    return rc;
}
