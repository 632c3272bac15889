/*
 * trk_shm.h -- the tracker's shared-memory segment (trk_shm.c names it):
 * worker slots, the session cache with its lock stripes, a stats /
 * housekeeper block, the failed-login throttle table, the per-worker
 * connection counters and the request counters (trk_metrics.h).
 *
 * Session cache (trk_sess.c): TS_SESSIONS_SHM_N entries split into
 * TS_TRK_SESS_STRIPES_N stripes; a session hashes (first bytes of
 * sha256(token)) to one stripe and is probed linearly inside it, under
 * that stripe's robust mutex.  An
 * entry is marked WRITING while it changes; the repair callback that runs
 * when a holder died frees every WRITING entry of the stripe, so a
 * half-written entry is never read (the session is then reloaded from tdb).
 *
 * Login throttle (trk_thr.c): TS_THROTTLE_SLOTS_N counters, keyed by a
 * keyed hash of (kind, name): the login kinds 'a' 'p' 'u' 'i' of
 * trk_thr.h ('i', known node identities, in the last TS_THR_NODE_SLOTS_N
 * slots, a region of their own); 'k'
 * (KDF jobs in progress) and 'c' (create_users) a peer address -- IPv6
 * addresses by their /TS_THR_V6_PREFIX_BITS prefix, IPv4-mapped ones as
 * IPv4 -- under one robust mutex (each use runs a KDF).  Per tracker,
 * not replicated.  A counter holds the failures of the current run and
 * the attempts still pending (reserved before their KDF job is queued,
 * so concurrent attempts count at once); it decays to nothing when its
 * last activity is older than its window.  A full probe window reuses a
 * free, stale, or else the least recently active entry that is neither
 * throttling nor holding pending attempts; if every entry of the window
 * is throttling or pending, the new name is refused as throttled, so a
 * flood of failures for made-up names can never flush a counter that
 * is refusing someone.
 *
 * Connection counters (trk_shm.c): one trk_conns_sh_t per worker slot,
 * written only by the worker that owns the slot (lock-free atomics) and
 * summed over all slots by whoever checks a cap.  A dead worker's counts
 * vanish when the supervisor resets its slot (trk_conns_reset).  They
 * count connections in all, not logged in, per address bucket (in all
 * and not logged in) and per user bucket (a keyed hash of the user id:
 * the user whose token or login was last seen on the connection).
 *
 * Crash behaviour: the whole segment is a cache of tdb plus liveness data.
 * A lost entry only costs a tdb lookup (and a fresh grace period).  A
 * worker that dies holding the throttle lock leaves at most one torn
 * counter; the repair callback clears the table (counters restart).
 */
#ifndef TRK_SHM_H_INCLUDED
#define TRK_SHM_H_INCLUDED

#include <stdatomic.h>
#include <stdint.h>
#include "ts_config.h"
#include "ts_shm.h"
#include "ts_claim.h"
#include "ts_shlock.h"
#include "ts_tls.h"
#include "trk_metrics.h"

#define TRK_SHM_LAYOUT_VERSION  6

enum {
    TRK_TBL_SLOTS   = 1,
    TRK_TBL_SESS    = 2,
    TRK_TBL_STRIPES = 3,
    TRK_TBL_STATS   = 4,
    TRK_TBL_THR     = 5,        /* failed-login counters */
    TRK_TBL_THRLOCK = 6,        /* one ts_shlock_sh_t for TRK_TBL_THR */
    TRK_TBL_CONNS   = 7,        /* connection counters per worker slot */
    TRK_TBL_REQS    = 8         /* request counters (trk_metrics.h) */
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
    uint8_t          fp[TS_FP_B];            /* node identity at login */
    _Atomic int64_t  last_hb_ms;             /* monotonic */
    _Atomic int64_t  local_hb_ms;            /* last request HERE (sync
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
    /* cluster (the sync process) */
    _Atomic uint64_t hlc;            /* hybrid logical clock */
    _Atomic uint64_t op_wake;        /* bumped after each logged commit */
    _Atomic int32_t  leader;         /* tracker id; 0 = not known yet */
    _Atomic uint32_t peers_up;       /* bit i = tracker id i is up */
    _Atomic int32_t  sync_pid;
    _Atomic uint64_t epoch;
    _Atomic int32_t  ntrackers;      /* lines in tracker_info.txt */
    uint8_t          key[32];        /* keys the throttle and address
                                        hashes; written once at create */
} trk_stats_sh_t;

typedef struct {
    uint64_t key;                    /* keyed hash; 0 = free */
    uint32_t fails;                  /* failures in the current run */
    uint32_t pending;                /* attempts reserved, not done */
    uint32_t limit;                  /* the cfg limit it was counted with */
    uint32_t pad;
    int64_t  last_ms;                /* monotonic, last failure */
    int64_t  pend_ms;                /* monotonic, last reservation */
    int64_t  window_ms;              /* the cfg window it was counted with */
} trk_thr_sh_t;

typedef struct {
    _Atomic uint32_t total;          /* open connections */
    _Atomic uint32_t unauth;         /* not (yet) logged in */
    _Atomic uint32_t addr[TS_ADDR_SLOTS_N];  /* by address bucket */
    _Atomic uint32_t addr_unauth[TS_ADDR_SLOTS_N]; /* ... not logged in */
    _Atomic uint32_t user[TS_TRK_USER_SLOTS_N];    /* by user bucket */
} trk_conns_sh_t;

typedef struct {
    ts_shm_t        shm;
    ts_slot_sh_t   *slots;
    trk_sess_sh_t  *sess;
    ts_shlock_sh_t *stripes;
    trk_stats_sh_t *stats;
    trk_thr_sh_t   *thr;
    ts_shlock_sh_t *thr_lock;
    trk_conns_sh_t *conns;           /* TS_SUP_WORKERS_MAX_N */
    trk_reqs_sh_t  *reqs;            /* one */
} trk_shm_t;

/* What one throttle counter allows (trk_thr_*). */
typedef struct {
    uint32_t limit;                  /* failures before refusals start */
    int64_t  window_ms;              /* forgotten after this long quiet */
    int64_t  delay_min_ms;           /* first refusal period, doubles */
    int64_t  delay_max_ms;           /* ... up to this */
} trk_thr_cfg_t;

/* Creator (supervisor): creates the segment (replacing a stale one). */
int  trk_shm_create(trk_shm_t *t, uint16_t port);
/* Fills the table pointers of an already mapped segment. */
int  trk_shm_bind(trk_shm_t *t);
void trk_shm_name(char *buf, size_t bufsz, uint16_t port);
/* From now on this process's segment is named after data_dir (which
 * must exist), not the port (trk_shm.c). */
void trk_shm_use_dir(const char *data_dir);

/* Session cache.  Results: 1 found live (user filled, heartbeat refreshed
 * if touch), 0 absent, 2 expired (marked so), -1 lock failure. */
int  trk_sess_lookup(trk_shm_t *t, const uint8_t h[32], int64_t now_ms,
                     int64_t timeout_ms, int touch, char *user,
                     size_t usersz);
/* Like trk_sess_lookup; fp (may be NULL) gets the session's node
 * fingerprint when found live. */
int  trk_sess_lookup_fp(trk_shm_t *t, const uint8_t h[32], int64_t now_ms,
                        int64_t timeout_ms, int touch, char *user,
                        size_t usersz, uint8_t *fp);
/* Inserts or refreshes a live entry (last heartbeat = now). 0 / -1 full.
 * fp: the node fingerprint of the session (NULL = none, zeros). */
int  trk_sess_insert(trk_shm_t *t, const uint8_t h[32], const char *user,
                     const uint8_t *fp, int64_t now_ms);
void trk_sess_remove(trk_shm_t *t, const uint8_t h[32]);
/* A peer saw a request of session h: refresh its heartbeat if cached
 * (live or expired-but-kept entries alike).  1 refreshed, 0 absent. */
int  trk_sess_refresh(trk_shm_t *t, const uint8_t h[32], int64_t now_ms);
/* Sessions with a request on this tracker since since_ms. */
void trk_sess_each_local(trk_shm_t *t, int64_t since_ms,
                         void (*fn)(const uint8_t h[32], void *arg),
                         void *arg);
/* Visits the cached sessions (live or expired) of user: fn gets each
 * one's token hash and last heartbeat (monotonic ms), outside the lock.
 * A memory walk of the cache, one stripe lock at a time. */
void trk_sess_each_user(trk_shm_t *t, const char *user,
                        void (*fn)(const uint8_t h[32], int64_t hb_ms,
                                   void *arg),
                        void *arg);
/* Visits every non-free entry (copy, outside the lock). state is the
 * entry's state, with live entries older than timeout reported EXPIRED. */
void trk_sess_each(trk_shm_t *t, int64_t now_ms, int64_t timeout_ms,
                   void (*fn)(const uint8_t h[32], int state, void *arg),
                   void *arg);

/* 1 if a live session of node fingerprint fp is cached (user filled),
 * else 0.  A memory walk of the cache, one stripe lock at a time. */
int  trk_sess_fp_live(trk_shm_t *t, const uint8_t fp[TS_FP_B], int64_t now_ms,
                      int64_t timeout_ms, char *user, size_t usersz);

/* ---- failed-login throttle ------------------------------------------ */
/* kind: see trk_thr.h ('a', 'k', 'c': a peer address).  How many ms a
 * login for name is still refused (0 = go ahead). */
int64_t trk_thr_wait_ms(trk_shm_t *t, char kind, const char *name,
                        const trk_thr_cfg_t *cfg, int64_t now_ms);
/* Counts one failure; returns the failures now counted. */
uint32_t trk_thr_fail(trk_shm_t *t, char kind, const char *name,
                      const trk_thr_cfg_t *cfg, int64_t now_ms);
/* Forgets name's failures (a successful login resets its user); the
 * attempts still pending stay counted. */
void trk_thr_reset(trk_shm_t *t, char kind, const char *name);

/* Why trk_thr_reserve refused. */
enum {
    TRK_THR_OK       = 0,
    TRK_THR_FAILURES = 1,            /* too many failures: doubling wait */
    TRK_THR_PENDING  = 2,            /* failures + attempts in progress
                                        reach the limit */
    TRK_THR_FULL     = 3             /* no counter can be had: every entry
                                        of its probe window is throttling */
};

/* Before the work (the KDF job) is queued: if name may go ahead, counts
 * one pending attempt for it and returns 0; else returns how many ms to
 * wait (> 0; nothing counted) and *why (may be NULL) says why.  A
 * limit of 0 never refuses and counts nothing. */
int64_t trk_thr_reserve(trk_shm_t *t, char kind, const char *name,
                        const trk_thr_cfg_t *cfg, int64_t now_ms, int *why);
/* The reserved attempt is over: failed = 1 counts it as a failure (the
 * doubling refusal period starts from now).  Returns the failures now
 * counted. */
uint32_t trk_thr_done(trk_shm_t *t, char kind, const char *name,
                      const trk_thr_cfg_t *cfg, int64_t now_ms, int failed);
/* The key a peer address is counted under (kinds 'a', 'k', 'c' and the
 * connection buckets): an IPv4 address as it is, an IPv4-mapped IPv6 one
 * as IPv4, any other IPv6 one as its /TS_THR_V6_PREFIX_BITS prefix
 * ("2001:db8:1:2::/64"); anything else unchanged. */
void trk_addr_norm(const char *addr, char *out, size_t outsz);

/* ---- connection counters -------------------------------------------- */
/* The counter bucket of a peer address (keyed hash of trk_addr_norm(),
 * < TS_ADDR_SLOTS_N). */
uint32_t trk_addr_bucket(const trk_shm_t *t, const char *addr);
/* Sums over every worker slot (any may be NULL). */
void trk_conns_sum(const trk_shm_t *t, uint32_t bucket, uint32_t *total,
                   uint32_t *in_bucket, uint32_t *unauth);
/* Not-logged-in connections of address bucket, summed over the slots. */
uint32_t trk_conns_addr_unauth(const trk_shm_t *t, uint32_t bucket);
/* The counter bucket of a user id (keyed hash, < TS_TRK_USER_SLOTS_N). */
uint32_t trk_user_bucket(const trk_shm_t *t, const char *user);
/* Connections of user bucket ubucket, summed over the slots. */
uint32_t trk_conns_user(const trk_shm_t *t, uint32_t ubucket);
/* Zeroes slot's counters (worker start; supervisor after a death). */
void trk_conns_reset(trk_shm_t *t, int slot);

#endif
