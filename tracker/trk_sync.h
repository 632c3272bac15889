/*
 * trk_sync.h -- the tracker sync process (role "trk-sync"), the sending
 * side of replication (docs/REPLICATION.md); trk_sync_init registers the
 * receiving side's TS_MSG_SYNC_* handlers (trk_syncops.h).
 *
 * Locking: see trk_sync.c (one thread per peer link; the process's one
 * tdb handle is shared under a mutex).
 */
#ifndef TRK_SYNC_H_INCLUDED
#define TRK_SYNC_H_INCLUDED

#include "ts_config.h"
#include "ts_sup.h"
#include "trk_syncops.h"

/* ts_sup role main; ctx->arg is the trk_config_t. */
int  trk_sync_main(const ts_worker_ctx_t *ctx);
/* Registers the SYNC_* handlers (trk_syncops_init; they also register
 * themselves from a constructor). */
void trk_sync_init(void);

#endif
