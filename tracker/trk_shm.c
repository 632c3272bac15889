/*
 * trk_shm.c -- the tracker's shm segment: its name, its layout and the
 * per-worker connection counters.
 *
 * Purpose: lay out the segment (worker slots, session cache, lock
 * stripes, stats block, login throttle, connection counters), bind the
 * table pointers of a mapped one, and sum or reset the connection
 * counters (also per address and per user bucket).  The session cache
 * is trk_sess.c, the login throttle and the keyed address hashes
 * trk_thr.c (all declared in trk_shm.h).
 *
 * The name: a running tracker's is /tessera-trk-<hash of its data
 * dir's real path> (trk_shm_use_dir, shm/ts_shm_name.c: a port is not
 * unique on a machine with network namespaces, a locked data dir is);
 * until trk_shm_use_dir is called (unit tests, fuzz targets) it is
 * /tessera-trk-<port>.
 *
 * Locking: nothing here takes a lock.  The stats block and the
 * connection counters are lock-free atomics (each worker writes only its
 * own slot's counters); the supervisor creates the segment, reclaims
 * claims and resets a dead worker's counters.
 *
 * Crash behaviour: the whole segment is a cache of tdb plus liveness
 * data; a stale segment is detected and replaced at the next start.  A
 * dead worker's counters are zeroed by the supervisor (trk_conns_reset).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ts_crypto.h"
#include "ts_log.h"
#include "trk_shm.h"
#include "ts_shm_name.h"

/* set once by the supervisor before the segment is made */
static char  trk_shm_dir_name[64];

static void
stripes_init(void *table, uint32_t capacity)
{
    ts_shlock_sh_t *l = table;
    uint32_t        i;

    for (i = 0; i < capacity; i++) {
        if (ts_shlock_init(&l[i]) != 0) {
            ts_err("ts_shlock_init() failed for stripe %u", i);
        }
    }
}


void
trk_shm_name(char *buf, size_t bufsz, uint16_t port)
{
    if (trk_shm_dir_name[0] != '\0') {
        snprintf(buf, bufsz, "%s", trk_shm_dir_name);
        return;
    }
    snprintf(buf, bufsz, "/tessera-trk-%u", (unsigned) port);
}


void
trk_shm_use_dir(const char *data_dir)
{
    if (ts_shm_name_dir(trk_shm_dir_name, sizeof(trk_shm_dir_name),
                        "tessera-trk", data_dir) != 0)
    {
        ts_warn("cannot resolve data directory %s (%s): the shm segment "
                "is named after the port", data_dir, strerror(errno));
        trk_shm_dir_name[0] = '\0';
    }
}


int
trk_shm_bind(trk_shm_t *t)
{
    uint32_t cap, esz;

    t->slots = ts_shm_table(&t->shm, TRK_TBL_SLOTS, &cap, &esz);
    if (t->slots == NULL || cap < TS_SUP_WORKERS_MAX_N
        || esz != sizeof(ts_slot_sh_t))
    {
        return -1;
    }
    t->sess = ts_shm_table(&t->shm, TRK_TBL_SESS, &cap, &esz);
    if (t->sess == NULL || cap != TS_SESSIONS_SHM_N
        || esz != sizeof(trk_sess_sh_t))
    {
        return -1;
    }
    t->stripes = ts_shm_table(&t->shm, TRK_TBL_STRIPES, &cap, &esz);
    if (t->stripes == NULL || cap != TS_TRK_SESS_STRIPES_N
        || esz != sizeof(ts_shlock_sh_t))
    {
        return -1;
    }
    t->stats = ts_shm_table(&t->shm, TRK_TBL_STATS, &cap, &esz);
    if (t->stats == NULL || esz != sizeof(trk_stats_sh_t)) {
        return -1;
    }
    t->thr = ts_shm_table(&t->shm, TRK_TBL_THR, &cap, &esz);
    if (t->thr == NULL || cap != TS_THROTTLE_SLOTS_N
        || esz != sizeof(trk_thr_sh_t))
    {
        return -1;
    }
    t->thr_lock = ts_shm_table(&t->shm, TRK_TBL_THRLOCK, &cap, &esz);
    if (t->thr_lock == NULL || cap != 1 || esz != sizeof(ts_shlock_sh_t)) {
        return -1;
    }
    t->conns = ts_shm_table(&t->shm, TRK_TBL_CONNS, &cap, &esz);
    if (t->conns == NULL || cap != TS_SUP_WORKERS_MAX_N
        || esz != sizeof(trk_conns_sh_t))
    {
        return -1;
    }
    t->reqs = ts_shm_table(&t->shm, TRK_TBL_REQS, &cap, &esz);
    if (t->reqs == NULL || cap != 1 || esz != sizeof(trk_reqs_sh_t)) {
        return -1;
    }
    return 0;
}


int
trk_shm_create(trk_shm_t *t, uint16_t port)
{
    char                name[64];
    const ts_shm_spec_t specs[] = {
        { TRK_TBL_SLOTS, sizeof(ts_slot_sh_t), TS_SUP_WORKERS_MAX_N, NULL },
        { TRK_TBL_SESS, sizeof(trk_sess_sh_t), TS_SESSIONS_SHM_N, NULL },
        { TRK_TBL_STRIPES, sizeof(ts_shlock_sh_t), TS_TRK_SESS_STRIPES_N,
          stripes_init },
        { TRK_TBL_STATS, sizeof(trk_stats_sh_t), 1, NULL },
        { TRK_TBL_THR, sizeof(trk_thr_sh_t), TS_THROTTLE_SLOTS_N, NULL },
        { TRK_TBL_THRLOCK, sizeof(ts_shlock_sh_t), 1, stripes_init },
        { TRK_TBL_CONNS, sizeof(trk_conns_sh_t), TS_SUP_WORKERS_MAX_N,
          NULL },
        { TRK_TBL_REQS, sizeof(trk_reqs_sh_t), 1, NULL },
    };

    memset(t, 0, sizeof(*t));
    trk_shm_name(name, sizeof(name), port);
    if (ts_shm_create(&t->shm, name, TRK_SHM_LAYOUT_VERSION, specs,
                      (int) (sizeof(specs) / sizeof(specs[0]))) != 0)
    {
        return -1;
    }
    if (trk_shm_bind(t) != 0) {
        ts_shm_detach(&t->shm);
        ts_shm_unlink(name);
        errno = EPROTO;
        return -1;
    }
    /* before any worker exists: keys the throttle and address hashes so
     * that nobody can aim collisions at someone else's counter */
    if (ts_random(t->stats->key, sizeof(t->stats->key)) != 0) {
        ts_shm_detach(&t->shm);
        ts_shm_unlink(name);
        errno = EIO;
        return -1;
    }
    return 0;
}


/* ---- connection counters ----------------------------------------------- */

void
trk_conns_sum(const trk_shm_t *t, uint32_t bucket, uint32_t *total,
              uint32_t *in_bucket, uint32_t *unauth)
{
    uint32_t i, a = 0, b = 0, u = 0;

    for (i = 0; i < TS_SUP_WORKERS_MAX_N; i++) {
        a += atomic_load(&t->conns[i].total);
        u += atomic_load(&t->conns[i].unauth);
        if (bucket < TS_ADDR_SLOTS_N) {
            b += atomic_load(&t->conns[i].addr[bucket]);
        }
    }
    if (total != NULL) {
        *total = a;
    }
    if (in_bucket != NULL) {
        *in_bucket = b;
    }
    if (unauth != NULL) {
        *unauth = u;
    }
}


void
trk_conns_reset(trk_shm_t *t, int slot)
{
    trk_conns_sh_t *c;
    uint32_t        i;

    if (slot < 0 || slot >= TS_SUP_WORKERS_MAX_N) {
        return;
    }
    c = &t->conns[slot];
    atomic_store(&c->total, 0);
    atomic_store(&c->unauth, 0);
    for (i = 0; i < TS_ADDR_SLOTS_N; i++) {
        atomic_store(&c->addr[i], 0);
        atomic_store(&c->addr_unauth[i], 0);
    }
    for (i = 0; i < TS_TRK_USER_SLOTS_N; i++) {
        atomic_store(&c->user[i], 0);
    }
}


uint32_t
trk_conns_addr_unauth(const trk_shm_t *t, uint32_t bucket)
{
    uint32_t i, n = 0;

    for (i = 0; bucket < TS_ADDR_SLOTS_N && i < TS_SUP_WORKERS_MAX_N; i++) {
        n += atomic_load(&t->conns[i].addr_unauth[bucket]);
    }
    return n;
}


/* sha256(key, 'U', user): keyed, so that nobody can pick user ids that
 * share an honest user's bucket (and its cap). */
uint32_t
trk_user_bucket(const trk_shm_t *t, const char *user)
{
    uint8_t  buf[32 + 1 + TS_ID_MAX_B], d[TS_SHA256_B];
    size_t   n = strnlen(user, TS_ID_MAX_B);

    memcpy(buf, t->stats->key, 32);
    buf[32] = 'U';
    memcpy(buf + 33, user, n);
    if (ts_sha256(buf, 33 + n, d) != 0) {
        return 0;               /* cannot happen: one shared bucket */
    }
    return ((uint32_t) d[0] << 24 | (uint32_t) d[1] << 16
            | (uint32_t) d[2] << 8 | d[3]) % TS_TRK_USER_SLOTS_N;
}


uint32_t
trk_conns_user(const trk_shm_t *t, uint32_t ubucket)
{
    uint32_t i, n = 0;

    for (i = 0; ubucket < TS_TRK_USER_SLOTS_N && i < TS_SUP_WORKERS_MAX_N;
         i++)
    {
        n += atomic_load(&t->conns[i].user[ubucket]);
    }
    return n;
}
