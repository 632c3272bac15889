/*
 * ts_www_data.h -- the dashboard's files as the binary carries them: the
 * table that tools/embed.c generates at build time (build/.../gen/
 * ts_www_data.c) from www/ and the chart library, read by ts_www.c.
 *
 * Locking: constant data.  Crash behaviour: none.
 */
#ifndef TS_WWW_DATA_H_INCLUDED
#define TS_WWW_DATA_H_INCLUDED

#include <stddef.h>

typedef struct {
    const char           *name;     /* "index.html", "assets/app.js" */
    const unsigned char  *data;     /* NUL-terminated after len bytes */
    size_t                len;
} ts_www_file_t;

extern const ts_www_file_t ts_www_files[];
extern const int           ts_www_nfiles;

#endif
