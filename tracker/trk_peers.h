/*
 * trk_peers.h -- what the sync process tells the rest of the tracker
 * about its peers: which are up, since when all of them are, and the
 * leader (the lowest live id), all in the tracker's shm stats.
 *
 * Locking: lock-free; the sync process's main thread is the only
 * writer, anyone reads.  Crash behaviour: shm only; a new sync process
 * starts from "split" until its links are up again.
 */
#ifndef TRK_PEERS_H_INCLUDED
#define TRK_PEERS_H_INCLUDED

#include <stdint.h>

#include "trk_shm.h"

/* mask: the peers up now (bit i = tracker id i); want: every configured
 * peer; now: monotonic ms.  Logs a change of leader. */
void trk_peers_publish(trk_stats_sh_t *sb, uint32_t mask, uint32_t want,
                       int leader, int64_t now);

#endif
