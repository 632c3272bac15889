/*
 * trk_http_opt.h -- the HTTP endpoint's options, --http ADDR:PORT and
 * --no-http, and their --help text (trk_http_opt.c); trk_http_setup()
 * acts on them.
 *
 * Locking: none (the supervisor, before it forks).
 * Crash behaviour: nothing kept.
 */
#ifndef TRK_HTTP_OPT_H_INCLUDED
#define TRK_HTTP_OPT_H_INCLUDED

#include <stdio.h>

#define TRK_OPT_HTTP     1301       /* getopt values of --http, --no-http */
#define TRK_OPT_NO_HTTP  1302

typedef struct {
    const char *spec;               /* --http ADDR:PORT; NULL = default */
    int         off;                /* --no-http */
} trk_http_ask_t;

/* 1 if opt was --http or --no-http (taken, or exit 2), else 0. */
int  trk_http_option(int opt, const char *arg);
void trk_http_usage_text(FILE *f);
const trk_http_ask_t *trk_http_asked(void);

#endif
