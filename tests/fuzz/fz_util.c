/*
 * fz_util.c -- helpers shared by the libFuzzer targets (see fz_util.h).
 *
 * Locking: none; every target runs its inputs on one thread.
 * Crash behaviour: the temp directory is removed by an atexit handler;
 * after a crash tests/fuzz/run.sh removes the $TMPDIR it gave us.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sanitizer/common_interface_defs.h>
#include <tdb.h>

#include "ts_log.h"
#include "ts_tls.h"
#include "fz_util.h"

static char tmpdir[512];


void
fz_quiet(void)
{
    ts_log_set_role("fuzz");
    ts_log_set_level(TS_LOG_ERROR);
}


/* weak: the set-up of a target that defines none */
__attribute__((weak)) void
fz_init(void)
{
}


/* weak: a target's own LLVMFuzzerInitialize replaces it */
__attribute__((weak)) int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fz_quiet();
    fz_init();
    return 0;
}


int
fz_modes(const uint8_t *data, size_t size, const fz_mode_t *modes,
         size_t nmodes)
{
    uint8_t *p;
    size_t   n;

    if (size == 0) {
        return 0;
    }
    n = size - 1;
    p = fz_dup(data + 1, n);
    modes[data[0] % nmodes](p, n);
    free(p);
    return 0;
}


static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb;
    (void) flag;
    (void) ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}


int
fz_rm_rf(const char *path)
{
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}


static void
tmpdir_cleanup(void)
{
    if (tmpdir[0] != '\0') {
        (void) fz_rm_rf(tmpdir);
        tmpdir[0] = '\0';
    }
}


const char *
fz_tmpdir(void)
{
    const char *base;

    if (tmpdir[0] != '\0') {
        return tmpdir;
    }
    base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0') {
        base = "/tmp";
    }
    snprintf(tmpdir, sizeof(tmpdir), "%s/tessera-fuzz.XXXXXX", base);
    if (mkdtemp(tmpdir) == NULL) {
        fz_fail(__FILE__, __LINE__, "mkdtemp() of the fuzz temp dir");
    }
    atexit(tmpdir_cleanup);
    return tmpdir;
}


int
fz_write_file(const char *path, const void *p, size_t n)
{
    int     fd;
    ssize_t w;
    size_t  off = 0;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1) {
        return -1;
    }
    while (off < n) {
        w = write(fd, (const uint8_t *) p + off, n - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t) w;
    }
    return close(fd);
}


int
fz_read_file(const char *path, uint8_t **out, size_t *n)
{
    struct stat sb;
    uint8_t    *buf;
    ssize_t     r;
    size_t      off = 0;
    int         fd;

    *out = NULL;
    *n = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return -1;
    }
    if (fstat(fd, &sb) != 0 || (buf = malloc((size_t) sb.st_size + 1))
                               == NULL)
    {
        close(fd);
        return -1;
    }
    while (off < (size_t) sb.st_size) {
        r = read(fd, buf + off, (size_t) sb.st_size - off);
        if (r <= 0) {
            break;
        }
        off += (size_t) r;
    }
    close(fd);
    *out = buf;
    *n = off;
    return 0;
}


void
fz_in_init(fz_in_t *in, const uint8_t *p, size_t n)
{
    in->p = p;
    in->n = n;
    in->off = 0;
}


uint8_t
fz_u8(fz_in_t *in)
{
    return in->off < in->n ? in->p[in->off++] : 0;
}


uint16_t
fz_u16(fz_in_t *in)
{
    uint16_t v = fz_u8(in);

    return (uint16_t) (v << 8 | fz_u8(in));
}


uint32_t
fz_u32(fz_in_t *in)
{
    uint32_t v = fz_u16(in);

    return v << 16 | fz_u16(in);
}


const uint8_t *
fz_take(fz_in_t *in, size_t n, size_t *got)
{
    const uint8_t *q = in->p + in->off;

    if (n > in->n - in->off) {
        n = in->n - in->off;
    }
    in->off += n;
    *got = n;
    return q;
}


size_t
fz_left(const fz_in_t *in)
{
    return in->n - in->off;
}


uint8_t *
fz_dup(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);

    if (q == NULL) {
        abort();
    }
    if (n > 0) {
        memcpy(q, p, n);
    }
    return q;
}


void
fz_fail(const char *file, int line, const char *what)
{
    char buf[512];

    snprintf(buf, sizeof(buf), "fuzz invariant broken at %s:%d: %s",
             file, line, what);
    /* stderr is closed under -close_fd_mask; this goes to the report fd */
    __sanitizer_report_error_summary(buf);
    abort();
}


void
fz_pki(const char *name, char *ca, char *crt1, char *key1, char *crt2,
       char *key2)
{
    char dir[PATH_MAX], err[256];

    snprintf(dir, sizeof(dir), "%s/%s", fz_tmpdir(), name);
    if (ts_pki_ensure_ca(dir, err, sizeof(err)) != 0
        || ts_pki_ensure_tracker(dir, 1, "127.0.0.1", err, sizeof(err)) != 0
        || ts_pki_ensure_tracker(dir, 2, "127.0.0.2", err, sizeof(err)) != 0)
    {
        fz_fail(__FILE__, __LINE__, err);
    }
    if (ca != NULL) {
        snprintf(ca, PATH_MAX, "%s/ca.crt", dir);
    }
    if (crt1 != NULL) {
        snprintf(crt1, PATH_MAX, "%s/tracker-1.crt", dir);
    }
    if (key1 != NULL) {
        snprintf(key1, PATH_MAX, "%s/tracker-1.key", dir);
    }
    if (crt2 != NULL) {
        snprintf(crt2, PATH_MAX, "%s/tracker-2.crt", dir);
    }
    if (key2 != NULL) {
        snprintf(key2, PATH_MAX, "%s/tracker-2.key", dir);
    }
}


static int
save_rec(struct tdb_context *tdb, TDB_DATA k, TDB_DATA v, void *arg)
{
    ts_wbuf_t *b = arg;

    (void) tdb;
    ts_put_blob(b, k.dptr, (uint32_t) k.dsize);
    ts_put_blob(b, v.dptr, (uint32_t) v.dsize);
    return 0;
}


void
fz_tdb_save(struct tdb_context *tdb, ts_wbuf_t *out)
{
    ts_wbuf_init(out);
    if (tdb_traverse_read(tdb, save_rec, out) < 0 || out->err) {
        fz_fail(__FILE__, __LINE__, "saving a tdb");
    }
}


void
fz_tdb_restore(struct tdb_context *tdb, const ts_wbuf_t *saved)
{
    ts_rbuf_t r;
    TDB_DATA  k, v;
    uint32_t  kl, vl;

    if (tdb_transaction_start(tdb) != 0 || tdb_wipe_all(tdb) != 0) {
        fz_fail(__FILE__, __LINE__, tdb_errorstr(tdb));
    }
    ts_rbuf_init(&r, saved->data, saved->len);
    while (ts_rbuf_left(&r) > 0) {
        k.dptr = (unsigned char *) ts_get_blob(&r, &kl, UINT32_MAX);
        v.dptr = (unsigned char *) ts_get_blob(&r, &vl, UINT32_MAX);
        k.dsize = kl;
        v.dsize = vl;
        if (r.err || tdb_store(tdb, k, v, TDB_INSERT) != 0) {
            fz_fail(__FILE__, __LINE__, "restoring a tdb");
        }
    }
    if (tdb_transaction_commit(tdb) != 0) {
        fz_fail(__FILE__, __LINE__, tdb_errorstr(tdb));
    }
}
