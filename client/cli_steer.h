/*
 * cli_steer.h -- the commands that steer downloads (cli_steer.c) and the
 * end-of-input wait of a piped session.
 *
 * Locking: main thread only.  Crash behaviour: nothing persistent.
 */
#ifndef CLI_STEER_H_INCLUDED
#define CLI_STEER_H_INCLUDED

#include "cli_ctx.h"

/* cancel / pause / resume / retry / download_info <group> <file> */
int  cli_cmd_cancel(cli_ctx_t *ctx, int argc, char **argv);
int  cli_cmd_pause(cli_ctx_t *ctx, int argc, char **argv);
int  cli_cmd_resume(cli_ctx_t *ctx, int argc, char **argv);
int  cli_cmd_retry(cli_ctx_t *ctx, int argc, char **argv);
int  cli_cmd_download_info(cli_ctx_t *ctx, int argc, char **argv);

/* End of piped input: waits for the downloads running now to end (done,
 * failed, timed out; paused ones do not hold it: "N paused downloads
 * left"), prints how each ended.  Returns the number of downloads that
 * failed in this run. */
int  cli_steer_wait_end(cli_ctx_t *ctx);

#endif
