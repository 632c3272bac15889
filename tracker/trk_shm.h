/*
 * trk_shm.h -- the tracker's shared-memory segment /tessera-trk-<port>:
 * worker slots, the session cache with its lock stripes, and a stats /
 * housekeeper block.
 *
 * Session cache: TS_SESSIONS_SHM_N entries split into TS_TRK_SESS_STRIPES_N
 * stripes; a session hashes (first bytes of sha256(token)) to one stripe
 * and is probed linearly inside it, under that stripe's robust mutex.  An
 * entry is marked WRITING while it changes; the repair callback that runs
 * when a holder died frees every WRITING entry of the stripe, so a
 * half-written entry is never read (the session is then reloaded from tdb).
 *
 * Crash behaviour: the whole segment is a cache of tdb plus liveness data.
 * A lost entry only costs a tdb lookup (and a fresh grace period).
 */
#ifndef TRK_SHM_H_INCLUDED
#define TRK_SHM_H_INCLUDED

#include <stdatomic.h>
#include <stdint.h>
#include "ts_config.h"
#include "ts_shm.h"
#include "ts_claim.h"
#include "ts_shlock.h"

#define TRK_SHM_LAYOUT_VERSION  2

enum {
    TRK_TBL_SLOTS   = 1,
    TRK_TBL_SESS    = 2,
    TRK_TBL_STRIPES = 3,
    TRK_TBL_STATS   = 4
};

enum {
    TRK_SESS_FREE    = 0,
    TRK_SESS_LIVE    = 1,
    TRK_SESS_EXPIRED = 2,   /* kept until tdb forgets it: no revival */
    TRK_SESS_TOMB    = 3,   /* deleted; probing continues past it */
    TRK_SESS_WRITING = 4
};

typedef struct {
    _Atomic uint32_t state;
    uint32_t         pad;
    uint8_t          h[32];                  /* sha256(token) */
    char             user[TS_ID_MAX_B + 1];
    _Atomic int64_t  last_hb_ms;             /* monotonic */
    _Atomic int64_t  local_hb_ms;            /* last request HERE (K1
                                                gossip); 0 = none */
} trk_sess_sh_t;

typedef struct {
    _Atomic uint64_t hk_owner;       /* housekeeper claim (ts_owner_t) */
    _Atomic int64_t  hk_last_ms;     /* monotonic, last finished pass */
    _Atomic int64_t  start_wall_ms;
    _Atomic int32_t  sup_pid;
    _Atomic uint32_t workers_n;
    _Atomic uint32_t ready_logged;
    _Atomic uint64_t lock_repairs;
    /* K1: cluster */
    _Atomic uint64_t hlc;            /* hybrid logical clock */
    _Atomic uint64_t op_wake;        /* bumped after each logged commit */
    _Atomic int32_t  leader;         /* tracker id; 0 = not known yet */
    _Atomic uint32_t peers_up;       /* bit i = tracker id i is up */
    _Atomic int32_t  sync_pid;
    _Atomic uint64_t epoch;
    _Atomic int32_t  ntrackers;      /* lines in tracker_info.txt */
} trk_stats_sh_t;

typedef struct {
    ts_shm_t        shm;
    ts_slot_sh_t   *slots;
    trk_sess_sh_t  *sess;
    ts_shlock_sh_t *stripes;
    trk_stats_sh_t *stats;
} trk_shm_t;

/* Creator (supervisor): creates the segment (replacing a stale one). */
int  trk_shm_create(trk_shm_t *t, uint16_t port);
/* Fills the table pointers of an already mapped segment. */
int  trk_shm_bind(trk_shm_t *t);
void trk_shm_name(char *buf, size_t bufsz, uint16_t port);

/* Session cache.  Results: 1 found live (user filled, heartbeat refreshed
 * if touch), 0 absent, 2 expired (marked so), -1 lock failure. */
int  trk_sess_lookup(trk_shm_t *t, const uint8_t h[32], int64_t now_ms,
                     int64_t timeout_ms, int touch, char *user,
                     size_t usersz);
/* Inserts or refreshes a live entry (last heartbeat = now). 0 / -1 full. */
int  trk_sess_insert(trk_shm_t *t, const uint8_t h[32], const char *user,
                     int64_t now_ms);
void trk_sess_remove(trk_shm_t *t, const uint8_t h[32]);
/* K1: a peer saw a request of session h: refresh its heartbeat if cached
 * (live or expired-but-kept entries alike).  1 refreshed, 0 absent. */
int  trk_sess_refresh(trk_shm_t *t, const uint8_t h[32], int64_t now_ms);
/* K1: sessions with a request on this tracker since since_ms. */
void trk_sess_each_local(trk_shm_t *t, int64_t since_ms,
                         void (*fn)(const uint8_t h[32], void *arg),
                         void *arg);
/* Visits every non-free entry (copy, outside the lock). state is the
 * entry's state, with live entries older than timeout reported EXPIRED. */
void trk_sess_each(trk_shm_t *t, int64_t now_ms, int64_t timeout_ms,
                   void (*fn)(const uint8_t h[32], int state, void *arg),
                   void *arg);

#endif
