/*
 * cli_rate.h -- the node's bandwidth caps as the user sets them: the
 * RATE syntax (--max-upload-rate, --max-download-rate, the rate command)
 * and the `rate` command (cli_rate.c).
 *
 * Locking: main thread only.  Crash behaviour: nothing persistent (the
 * caps live in the node's segment; options set them again at start).
 */
#ifndef CLI_RATE_H_INCLUDED
#define CLI_RATE_H_INCLUDED

#include <stdint.h>

#include "cli_ctx.h"

/* RATE: a decimal count of bytes per second with an optional suffix K,
 * M or G (powers of 1024, either case, "KiB"-style "iB" and a "/s" tail
 * allowed); 0 = unlimited.  0 and *out, or -1 for anything else (empty,
 * sign, junk, overflow, a cap below TS_RATE_MIN_BPS or above
 * TS_RATE_MAX_BPS). */
int cli_rate_parse(const char *s, uint64_t *out);

/* `rate [up RATE] [down RATE]`: sets the node's caps at once for every
 * worker; without arguments prints the caps and the rates measured over
 * TS_RATE_SAMPLE_MS. */
int cli_cmd_rate(cli_ctx_t *ctx, int argc, char **argv);

#endif
