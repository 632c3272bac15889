/*
 * trk_worker.h -- a tracker request worker (role "trk-worker").
 *
 * The supervisor fills one trk_config_t (trk_opts.h) before forking
 * (listen socket and shm mapping included); every worker inherits it
 * read-only.
 */
#ifndef TRK_WORKER_H_INCLUDED
#define TRK_WORKER_H_INCLUDED

#include "ts_sup.h"
#include "trk_opts.h"

#define TRK_ROLE_WORKER     1
#define TRK_ROLE_SYNC       2

/* ts_sup role main; ctx->arg is the trk_config_t. */
int trk_worker_main(const ts_worker_ctx_t *ctx);

#endif
