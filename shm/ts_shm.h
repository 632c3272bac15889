/*
 * ts_shm.h -- one POSIX shared-memory segment per node (tracker or client).
 *
 * Layout: a versioned header, then fixed tables at offsets listed in the
 * header's directory.  Only offsets are stored, never pointers, so any
 * process may map the segment at any address.  Every struct that lives in
 * the segment has a _sh_t type.
 *
 * Locking: the header is written once by the creator before any other
 * process attaches; after that only C11 atomics in it change (boot_epoch,
 * reset_needed).  Tables bring their own robust locks (ts_shlock.h) or are
 * lock-free.
 *
 * Crash behaviour: the segment is a cache.  Everything in it can be rebuilt
 * from tdb and the disk.  A segment left by a dead node (creator pid gone),
 * or with a wrong magic/version/size, is detected by ts_shm_create() and
 * replaced.  A segment whose creator is alive is refused (EBUSY), so two
 * nodes never share one by accident.
 */
#ifndef TS_SHM_H_INCLUDED
#define TS_SHM_H_INCLUDED

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "ts_config.h"
#include "ts_shlock.h"

#define TS_SHM_MAGIC 0x54534d31u   /* "TSM1" */

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "lock-free int atomics needed");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "lock-free 64-bit atomics needed");

typedef struct {
    uint32_t id;              /* caller's table id, 0 = unused entry */
    uint32_t entry_size;      /* bytes per entry */
    uint32_t capacity;        /* entries */
    uint32_t pad;
    uint64_t offset;          /* from the segment start, 64-byte aligned */
} ts_shm_table_sh_t;

typedef struct {
    uint32_t          magic;
    uint32_t          layout_version;   /* caller's layout version */
    uint32_t          header_size;
    uint32_t          ntables;
    uint64_t          total_size;
    _Atomic int32_t   creator_pid;
    _Atomic uint32_t  reset_needed;     /* tier 2: rebuild everything */
    _Atomic uint64_t  boot_epoch;       /* bumped on every (re)creation */
    ts_shm_table_sh_t tables[TS_SHM_TABLES_MAX_N];
} ts_shm_hdr_sh_t;

/* A table the caller wants: init() runs once in the creator on zeroed
 * memory (may be NULL). */
typedef struct {
    uint32_t id;
    uint32_t entry_size;
    uint32_t capacity;
    void   (*init)(void *table, uint32_t capacity);
} ts_shm_spec_t;

typedef struct {
    char             name[64];     /* "/tessera-..." */
    void            *base;
    size_t           size;
    ts_shm_hdr_sh_t *hdr;
} ts_shm_t;

/* Size the segment from the specs, create it (replacing a stale one),
 * zero it, run each init().  0, or -1 with errno (EBUSY: a live node owns
 * the name). */
int  ts_shm_create(ts_shm_t *s, const char *name, uint32_t layout_version,
                   const ts_shm_spec_t *specs, int nspecs);
/* Map an existing segment and validate its header.  0 or -1 (EPROTO:
 * bad header or version). */
int  ts_shm_attach(ts_shm_t *s, const char *name, uint32_t layout_version);
void ts_shm_detach(ts_shm_t *s);
int  ts_shm_unlink(const char *name);
/* Table base for id (NULL if absent); *capacity, *entry_size if non-NULL. */
void *ts_shm_table(const ts_shm_t *s, uint32_t id, uint32_t *capacity,
                   uint32_t *entry_size);
/* Total bytes a layout needs (for logs and tests). */
size_t ts_shm_layout_size(const ts_shm_spec_t *specs, int nspecs);

/* ---- tier-2 reset ---------------------------------------------------
 * A lock in the segment that cannot be repaired (ENOTRECOVERABLE) makes
 * the whole segment suspect: whoever meets it sets reset_needed, and the
 * supervisor (its reset_needed hook reads ts_shm_reset_needed) stops
 * every worker and has the segment rebuilt from durable state. */
/* Sets reset_needed (logged once per segment generation). */
void ts_shm_request_reset(ts_shm_t *s);
/* 1 if reset_needed is set. */
int  ts_shm_reset_needed(const ts_shm_t *s);
/* ts_shlock_lock() on a lock in segment s; a lock that cannot be taken
 * (-1: not recoverable) also sets reset_needed. */
int  ts_shm_lock(ts_shm_t *s, ts_shlock_sh_t *l, ts_shlock_repair_pt repair,
                 void *arg);
/* In-place rebuild for a segment whose other users keep their mapping:
 * zeroes the tables listed in ids (as at create, then their spec's
 * init()), clears reset_needed and starts a new boot_epoch.  Only while
 * no worker runs.  0, or -1 (an id not in both specs and segment, or a
 * size that differs). */
int  ts_shm_reinit(ts_shm_t *s, const ts_shm_spec_t *specs, int nspecs,
                   const uint32_t *ids, int nids);

#endif
