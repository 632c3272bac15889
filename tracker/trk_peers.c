/*
 * trk_peers.c -- publishes the peers' state for the tracker's other
 * processes (trk_peers.h).  peers_whole_ms lets the housekeeper tell a
 * whole cluster from a split one (trk_housekeep.c expires sessions more
 * slowly while split, so a partition logs no live node out).
 *
 * Locking: atomics only (one writer).  Crash behaviour: shm only.
 */
#include <stdatomic.h>

#include "ts_log.h"
#include "trk_peers.h"


void
trk_peers_publish(trk_stats_sh_t *sb, uint32_t mask, uint32_t want,
                  int leader, int64_t now)
{
    atomic_store(&sb->peers_up, mask);
    if (mask != want) {
        atomic_store(&sb->peers_whole_ms, 0);
    } else if (atomic_load(&sb->peers_whole_ms) == 0) {
        atomic_store(&sb->peers_whole_ms, now > 0 ? now : 1);
    }
    if (atomic_exchange(&sb->leader, leader) != leader) {
        ts_info("leader is now tracker %d", leader);
    }
}
