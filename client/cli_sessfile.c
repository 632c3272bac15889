/*
 * cli_sessfile.c -- the saved tracker session (see cli_sessfile.h).
 *
 * Format (one field per line, every line checked when read back):
 *     tessera-session 1
 *     user <user id>
 *     token <hex>
 *     heartbeat_ms <n>
 *     tracker <n>
 *
 * Locking: none.  Crash behaviour: temp file, fsync, rename, fsync of
 * the directory; a torn or foreign file is refused by the reader.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_crypto.h"
#include "ts_file.h"
#include "cli_sessfile.h"

#define CLI_SESSFILE_MAX_B  1024      /* a valid file is far smaller */
#define CLI_SESSFILE_STR_(x)  #x
#define CLI_SESSFILE_STR(x)   CLI_SESSFILE_STR_(x)
/* one more than allowed, so an over-long field is seen and refused */
#define CLI_SESSFILE_USER_W   65
#define CLI_SESSFILE_HEX_W    33
_Static_assert(CLI_SESSFILE_USER_W == TS_ID_MAX_B + 1, "user field width");
_Static_assert(CLI_SESSFILE_HEX_W == 2 * TS_TOKEN_B + 1, "token width");


/* 1 if s is a user id as the tracker accepts them: printable, no blank */
static int
cli_sessfile_user_ok(const char *s)
{
    size_t  n = strlen(s);
    size_t  i;

    if (n == 0 || n > TS_ID_MAX_B) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] == 0x7f) {
            return 0;
        }
    }
    return 1;
}


int
cli_sessfile_save(const char *path, const cli_sessfile_t *f)
{
    char     tmp[4300], hex[2 * TS_TOKEN_B + 1], buf[CLI_SESSFILE_MAX_B];
    int      fd, n, err;

    if (!cli_sessfile_user_ok(f->user)
        || snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int) sizeof(tmp))
    {
        errno = EINVAL;
        return -1;
    }
    ts_hex(f->tok, TS_TOKEN_B, hex);
    n = snprintf(buf, sizeof(buf), "tessera-session 1\nuser %s\ntoken %s\n"
                 "heartbeat_ms %d\ntracker %d\n", f->user, hex,
                 f->heartbeat_ms, f->tracker);
    if (n < 0 || n >= (int) sizeof(buf)) {
        errno = EINVAL;
        return -1;
    }
    (void) unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
              0600);
    if (fd < 0) {
        return -1;
    }
    if (write(fd, buf, (size_t) n) != n || fsync(fd) != 0) {
        err = errno != 0 ? errno : EIO;
        close(fd);
        (void) unlink(tmp);
        errno = err;
        return -1;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        err = errno;
        (void) unlink(tmp);
        errno = err;
        return -1;
    }
    ts_file_fsync_dir(path);
    return 0;
}


int
cli_sessfile_load(const char *path, cli_sessfile_t *f)
{
    char         buf[CLI_SESSFILE_MAX_B + 1];
    char         user[CLI_SESSFILE_USER_W + 1], hex[CLI_SESSFILE_HEX_W + 1];
    struct stat  sb;
    ssize_t      n;
    int          fd, hb, trk, used = 0;

    memset(f, 0, sizeof(*f));
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return -1;
    }
    /* ours only: a regular file, this uid's, no one else may read it */
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)
        || sb.st_uid != geteuid() || (sb.st_mode & 077) != 0)
    {
        close(fd);
        return -1;
    }
    n = read(fd, buf, CLI_SESSFILE_MAX_B);
    close(fd);
    if (n <= 0 || n >= CLI_SESSFILE_MAX_B) {
        return -1;
    }
    buf[n] = '\0';
    if (sscanf(buf, "tessera-session 1\nuser %"
               CLI_SESSFILE_STR(CLI_SESSFILE_USER_W) "s\ntoken %"
               CLI_SESSFILE_STR(CLI_SESSFILE_HEX_W) "s\n"
               "heartbeat_ms %d\ntracker %d\n%n", user, hex, &hb, &trk,
               &used) != 4
        || used != (int) n)
    {
        return -1;
    }
    if (!cli_sessfile_user_ok(user)
        || strlen(hex) != 2 * TS_TOKEN_B
        || ts_unhex(hex, f->tok, TS_TOKEN_B) != 0
        || hb < 0 || hb > 3600 * 1000 || trk < 0 || trk > 1024)
    {
        return -1;
    }
    if (strlen(user) >= sizeof(f->user)) {
        return -1;
    }
    memcpy(f->user, user, strlen(user) + 1);
    f->heartbeat_ms = hb;
    f->tracker = trk;
    return 0;
}


void
cli_sessfile_remove(const char *path)
{
    if (path != NULL && path[0] != '\0' && unlink(path) == 0) {
        ts_file_fsync_dir(path);
    }
}
