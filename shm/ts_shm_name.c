/*
 * ts_shm_name.c -- segment names that cannot collide between programs on
 * one machine.
 *
 * Purpose: POSIX shm names are global to the machine (one /dev/shm), but
 * ports and addresses are not: two nodes in two network namespaces may
 * both listen on 10.0.0.1:7000.  What two live programs can never share
 * is their state directory (each one locks it), so the name is a hash of
 * that directory's real path (symlinks and "." resolved, so every way of
 * naming the directory gives the same segment):
 *
 *     /tessera-node-<16 hex of SHA-256(realpath(state dir))>
 *
 * A restart with the same directory finds (and replaces) its own stale
 * segment whatever port it now uses.  Tools compute the same name from
 * the path (tests/system/procs.py segment_for_dir(); by hand
 * `printf %s "$(realpath DIR)" | sha256sum | cut -c1-16`).
 *
 * Locking: none.  Crash behaviour: nothing is created here.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_crypto.h"
#include "ts_shm_name.h"


int
ts_shm_name_dir(char *out, size_t outsz, const char *prefix,
                const char *dir)
{
    char     real[PATH_MAX];
    uint8_t  h[TS_SHA256_B];
    char     hex[TS_SHM_NAME_HASH_HEX + 1];
    int      i, n;

    if (dir == NULL || dir[0] == '\0') {
        errno = ENOENT;
        return -1;
    }
    if (realpath(dir, real) == NULL) {
        return -1;
    }
    if (ts_sha256(real, strlen(real), h) != 0) {
        errno = EIO;
        return -1;
    }
    for (i = 0; i < TS_SHM_NAME_HASH_HEX / 2; i++) {
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    }
    n = snprintf(out, outsz, "/%s-%s", prefix, hex);
    if (n < 0 || (size_t) n >= outsz) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}
