/*
 * fuzz_trackers.c -- libFuzzer target: tracker_info.txt
 * (common/ts_trackers.h).
 *
 * The input is the file's text.  ts_trackers_parse gets it from an
 * exact-size buffer (no NUL after it, so a read past the end shows);
 * every 16th input also goes through ts_trackers_load from a file in the
 * temp dir, and both must agree.  On success each entry has an IPv4
 * address text that fits, a port > 0 and increasing line numbers; on
 * failure the message names the file.
 *
 * Locking: single-threaded.  Crash behaviour: one file in the temp dir.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_trackers.h"
#include "fz_util.h"

static char     path[600];
static unsigned count;


void
fz_init(void)
{
    snprintf(path, sizeof(path), "%s/tracker_info.txt", fz_tmpdir());
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ts_trackers_t *a, *b;
    char           err[512], err2[512];
    char          *copy;
    int            rc, rc2, i;

    a = calloc(2, sizeof(*a));
    FZ_CHECK(a != NULL);
    b = a + 1;
    copy = (char *) fz_dup(data, size);
    rc = ts_trackers_parse(copy, size, "tracker_info.txt", a, err,
                           sizeof(err));
    if (rc == 0) {
        FZ_CHECK(a->n >= 1 && a->n <= TS_TRACKERS_MAX_N);
        for (i = 0; i < a->n; i++) {
            FZ_CHECK(memchr(a->t[i].ip, '\0', sizeof(a->t[i].ip)) != NULL);
            FZ_CHECK(a->t[i].port > 0);
            FZ_CHECK(i == 0 || a->t[i].line > a->t[i - 1].line);
        }
    } else {
        FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
        FZ_CHECK(strstr(err, "tracker_info.txt") != NULL);
    }
    if (count++ % 16 == 0) {
        FZ_CHECK(fz_write_file(path, data, size) == 0);
        rc2 = ts_trackers_load(path, b, err2, sizeof(err2));
        FZ_CHECK((rc == 0) == (rc2 == 0));
        if (rc == 0) {
            FZ_CHECK(a->n == b->n);
            for (i = 0; i < a->n; i++) {
                FZ_CHECK(strcmp(a->t[i].ip, b->t[i].ip) == 0
                         && a->t[i].port == b->t[i].port);
            }
        }
    }
    free(copy);
    free(a);
    return 0;
}
