/*
 * cli_out.h -- the client's output helpers: the error line, the empty
 * list marker, names and sizes as the user sees them.
 *
 * Output rules (the user-visible contract): results on stdout; a failure
 * prints exactly one line "error: <reason>"; empty lists print nothing,
 * or "(none)" on a TTY.
 *
 * Locking: stdout is the main thread's; the formatters only write into
 * the caller's buffer.  Crash behaviour: nothing persistent.
 */
#ifndef CLI_OUT_H_INCLUDED
#define CLI_OUT_H_INCLUDED

#include <stddef.h>

#include "cli_ctx.h"
#include "cli_dlview.h"

/* Prints "error: <fmt...>" and returns -1. */
int  cli_out_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "(none)" when interactive; for empty lists. */
void cli_out_empty(cli_ctx_t *ctx);

/* A file name for output: as is, or in "..." with \" and \\ escapes when
 * it holds blanks, quotes or backslashes. */
void cli_out_quote(const char *name, char *out, size_t outsz);

/* A transfer rate in bytes per second: "512B", "1.5MiB" (no "/s"). */
void cli_out_rate(double bps, char *out, size_t outsz);
/* A time left in seconds: "42s", "3m07s", "1h05m"; "--" when unknown
 * (negative) or beyond 99 hours. */
void cli_out_eta(double secs, char *out, size_t outsz);

/* One show_downloads line: "[C] [group] name -> dest", "[F] ...: why",
 * "[D] [group] name pct% <state or rate/s ETA eta>". */
void cli_out_download(const cli_dlview_t *v);

#endif
