/*
 * trk_sync.h -- the tracker sync process (role "trk-sync") and the request
 * handlers for TS_MSG_SYNC_* that every request worker runs
 * (docs/REPLICATION.md).
 *
 * Locking: see trk_sync.c (one thread per peer link; the process's one
 * tdb handle is shared under a mutex).  The handlers run on a worker's
 * event-loop thread like every other request.
 */
#ifndef TRK_SYNC_H_INCLUDED
#define TRK_SYNC_H_INCLUDED

#include "ts_config.h"
#include "ts_sup.h"

/* ts_sup role main; ctx->arg is the trk_config_t. */
int  trk_sync_main(const ts_worker_ctx_t *ctx);
/* Registers the SYNC_* handlers (also run as a constructor). */
void trk_sync_init(void);
/* ./tracker --status tracker_info.txt <id>: prints STATUS; exit code.
 * TLS; ca_path verifies the tracker; crt_path/key_path (a tracker
 * certificate of the same CA: STATUS is answered only to trackers) are
 * presented as the client certificate. */
int  trk_status_cmd(const char *info_path, int id, const char *ca_path,
                    const char *crt_path, const char *key_path);

#endif
