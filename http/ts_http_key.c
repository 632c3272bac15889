/*
 * ts_http_key.c -- the API key file of an HTTP endpoint (see
 * ts_http_key.h): create once, then read and check.
 *
 * Locking: none (one process, before it forks).
 *
 * Crash behaviour: temporary file, fsync, rename, fsync of the directory:
 * a crash leaves no key file (the next start makes one) or a whole one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_crypto.h"
#include "ts_file.h"
#include "ts_http_key.h"

#define KEY_HEX_B  (2 * TS_HTTP_KEY_B)


static int
key_create(const char *path, char *err, size_t errsz)
{
    uint8_t  raw[TS_HTTP_KEY_B];
    char     hex[KEY_HEX_B + 2], tmp[4096];
    int      fd, ok;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int) sizeof(tmp)) {
        snprintf(err, errsz, "key file path too long");
        return -1;
    }
    if (ts_random(raw, sizeof(raw)) != 0) {
        snprintf(err, errsz, "no random bytes for the API key");
        return -1;
    }
    ts_hex(raw, sizeof(raw), hex);
    explicit_bzero(raw, sizeof(raw));
    hex[KEY_HEX_B] = '\n';
    hex[KEY_HEX_B + 1] = '\0';
    (void) unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errsz, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    ok = write(fd, hex, KEY_HEX_B + 1) == KEY_HEX_B + 1 && fsync(fd) == 0;
    explicit_bzero(hex, sizeof(hex));
    if (close(fd) != 0 || !ok || rename(tmp, path) != 0) {
        snprintf(err, errsz, "cannot write %s: %s", path, strerror(errno));
        (void) unlink(tmp);
        return -1;
    }
    ts_file_fsync_dir(path);
    return 0;
}


int
ts_http_key_load(const char *path, char *key, size_t keysz, int *created,
                 char *err, size_t errsz)
{
    struct stat  sb;
    char         buf[KEY_HEX_B + 2];
    ssize_t      n;
    int          fd, i;

    *created = 0;
    if (keysz < KEY_HEX_B + 1) {
        snprintf(err, errsz, "key buffer too small");
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
        if (key_create(path, err, errsz) != 0) {
            return -1;
        }
        *created = 1;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    }
    if (fd < 0) {
        snprintf(err, errsz, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)
        || (sb.st_mode & 077) != 0 || sb.st_uid != geteuid())
    {
        snprintf(err, errsz, "%s must be a regular file of this user that "
                 "no one else may read or write (chmod 600 %s)", path,
                 path);
        close(fd);
        return -1;
    }
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n == KEY_HEX_B + 1 && buf[KEY_HEX_B] == '\n') {
        n--;
    }
    for (i = 0; i < n && i < KEY_HEX_B; i++) {
        if (strchr("0123456789abcdef", buf[i]) == NULL || buf[i] == '\0') {
            break;
        }
    }
    if (n != KEY_HEX_B || i != KEY_HEX_B) {
        explicit_bzero(buf, sizeof(buf));
        snprintf(err, errsz, "%s does not hold one key of %d hex digits "
                 "(remove it: a new one is made at the next start)", path,
                 KEY_HEX_B);
        return -1;
    }
    memcpy(key, buf, KEY_HEX_B);
    key[KEY_HEX_B] = '\0';
    explicit_bzero(buf, sizeof(buf));
    return 0;
}
