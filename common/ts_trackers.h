/*
 * ts_trackers.h -- tracker_info.txt.
 *
 * One tracker per line, "IP:PORT" or "IP PORT"; blank lines and lines
 * starting with '#' (after optional blanks) are skipped; a trailing
 * "# comment" is allowed.  Ids are 1-based positions among tracker lines.
 * A malformed line is an error that names the file and the line number.
 */
#ifndef TS_TRACKERS_H_INCLUDED
#define TS_TRACKERS_H_INCLUDED

#include <stdint.h>
#include <stddef.h>
#include "ts_config.h"

typedef struct {
    char     ip[64];
    uint16_t port;
    int      line;          /* line number in the file, for messages */
} ts_tracker_addr_t;

typedef struct {
    int               n;
    ts_tracker_addr_t t[TS_TRACKERS_MAX_N];
} ts_trackers_t;

/* 0 on success; -1 with a message like
 * "tracker_info.txt:3: bad port '99999'" in err. */
int ts_trackers_load(const char *path, ts_trackers_t *out, char *err,
                     size_t errlen);
/* Same, from a string (for tests and fuzzing). */
int ts_trackers_parse(const char *text, size_t len, const char *name,
                      ts_trackers_t *out, char *err, size_t errlen);

#endif
