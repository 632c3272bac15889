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

#include "ts_sup.h"

/* Tracker-local tunables (units in the names). */
#define TRK_SYNC_POLL_MS         2        /* new local op -> push */
#define TRK_SYNC_GOSSIP_MS       500      /* SYNC_ACK: heartbeat + sessions */
#define TRK_SYNC_PEER_DEAD_MS    3000     /* no answer: peer down */
#define TRK_SYNC_RPC_TIMEOUT_MS  10000    /* one SYNC_* request */
#define TRK_SYNC_CONNECT_MS      1000
#define TRK_SYNC_BACKOFF_MIN_MS  100
#define TRK_SYNC_BACKOFF_MAX_MS  2000
#define TRK_SYNC_BATCH_N         512      /* ops per SYNC_OPS */
#define TRK_SYNC_BATCH_B         (1u << 20)
#define TRK_SYNC_COMPACT_MS      5000
#define TRK_SYNC_GOSSIP_MAX_N    8192     /* session hashes per SYNC_ACK */

/* ts_sup role main; ctx->arg is the trk_config_t. */
int  trk_sync_main(const ts_worker_ctx_t *ctx);
/* Registers the SYNC_* handlers (also run as a constructor). */
void trk_sync_init(void);
/* ./tracker --status tracker_info.txt <id>: prints STATUS; exit code. */
int  trk_status_cmd(const char *info_path, int id);

#endif
