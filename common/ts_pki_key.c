/*
 * ts_pki_key.c -- the rule for private key files (owner-only, regular).
 *
 * Purpose: every private key Tessera loads (the CA's, a tracker's, a
 * node's, the ticket signing key) is refused when others can read or
 * write it, as ssh does, with a message that says how to fix it.
 *
 * Locking: none; reads file metadata only.
 * Crash behaviour: nothing persistent.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ts_pki_key.h"

int
ts_pki_key_private(const char *key_path, char *err, size_t errsz)
{
    struct stat st;

    if (lstat(key_path, &st) != 0) {
        snprintf(err, errsz, "%s: %s", key_path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errsz, "%s is not a regular file", key_path);
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errsz, "private key %s is accessible by others "
                 "(mode %03o); run: chmod 600 %s", key_path,
                 (unsigned) (st.st_mode & 0777), key_path);
        return -1;
    }
    return 0;
}
