/*
 * trk_merge.h -- mergeable records: the envelope every replicated tdb key
 * holds, its codec, the merge rule, and the translation between an
 * envelope and the application value the rules use (trk_merge.c: the
 * envelope, its codec and the merge; trk_view.c: split and join).
 *
 * Model (docs/REPLICATION.md): an envelope is {D, incarnations sorted by
 * creation stamp C > D, each with elements sorted by key, each element
 * (stamp, tomb, bytes)}.  merge() is a semilattice join: commutative,
 * associative, idempotent.  Keys u/ f/ r/ g/ are "first writer wins"
 * (the smallest C is visible); s/ p/ l/ m/ n/ have one incarnation C = 0
 * whose elements form add/remove sets.
 *
 * No locks, no I/O: pure functions over caller memory.  Nothing survives
 * a crash here; the encoded envelopes are stored by trk_store.c inside a
 * tdb transaction.
 */
#ifndef TRK_MERGE_H_INCLUDED
#define TRK_MERGE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "ts_config.h"
#include "ts_buf.h"

typedef struct {
    uint64_t hlc;          /* 48-bit wall ms << 16 | 16-bit counter */
    uint8_t  origin;       /* tracker id; 0 only in the zero stamp */
} trk_stamp_t;

typedef struct {
    uint8_t     *ek;       /* element key (may hold any byte) */
    uint32_t     eklen;
    trk_stamp_t  st;
    uint8_t      tomb;
    uint8_t     *val;
    uint32_t     vlen;
} trk_elem_t;

typedef struct {
    trk_stamp_t  c;        /* creation stamp; zero for set kinds */
    uint32_t     n;
    uint32_t     cap;
    trk_elem_t  *e;
} trk_inc_t;

typedef struct {
    trk_stamp_t  d;        /* last whole-record delete, zero = none */
    uint32_t     n;
    uint32_t     cap;
    trk_inc_t   *inc;
} trk_rec_t;


int  trk_stamp_cmp(trk_stamp_t a, trk_stamp_t b);
int  trk_stamp_zero(trk_stamp_t a);

/* 1 if key is a replicated key (u/ g/ s/ r/ f/ p/ l/ m/ n/). */
int  trk_key_replicated(const void *key, size_t klen);
/* 1 if the key's kind is first-writer-wins (u/ f/ r/ g/). */
int  trk_key_fww(const void *key, size_t klen);

void trk_rec_init(trk_rec_t *r);
void trk_rec_free(trk_rec_t *r);
int  trk_rec_copy(trk_rec_t *dst, const trk_rec_t *src);
void trk_rec_encode(ts_wbuf_t *b, const trk_rec_t *r);
int  trk_rec_decode(const void *p, size_t n, trk_rec_t *r);   /* 0 / -1 */

/* a := merge(a, b).  Returns 1 if a changed, 0 if not, -1 no memory. */
int  trk_rec_merge(trk_rec_t *a, const trk_rec_t *b);
/* Largest stamp anywhere in r (for the HLC receive rule). */
trk_stamp_t trk_rec_max_stamp(const trk_rec_t *r);

/* The visible incarnation (smallest C) or NULL. */
const trk_inc_t *trk_rec_visible(const trk_rec_t *r);

/* Application value of key from r into out (reset first): 0 ok, 1 the
 * key has no live value, -1 error. */
int  trk_rec_view(const trk_rec_t *r, const void *key, size_t klen,
                  ts_wbuf_t *out);
/* The application value of an encoded envelope env of key (a record met
 * in a traverse): 0 (out filled), 1 no live value, -1 corrupt. */
int  trk_env_view(const void *key, size_t klen, const void *env,
                  size_t envlen, ts_wbuf_t *out);
/* Writes application value (val, vlen) under stamp s: diff against the
 * visible incarnation (or start one).  0 ok, -1 bad value / memory. */
int  trk_rec_put(trk_rec_t *r, const void *key, size_t klen,
                 const void *val, size_t vlen, trk_stamp_t s);
/* Deletes the key's value under stamp s.  0 ok (also if absent). */
int  trk_rec_del(trk_rec_t *r, const void *key, size_t klen, trk_stamp_t s);
/* Replaces stamp 'from' by 'to' wherever r holds it (delete, creation
 * and element stamps).  For a transaction that has to raise its stamp
 * after writing: valid only while r holds no stamp between the two. */
void trk_rec_restamp(trk_rec_t *r, trk_stamp_t from, trk_stamp_t to);
/* The part of r written under stamp s (a delta that merges like r). */
int  trk_rec_delta(const trk_rec_t *r, trk_stamp_t s, trk_rec_t *out);

/* Group helpers: 1 if user is a member ('m') of a non-visible incarnation
 * and not of the visible one (lost a concurrent creation). */
int  trk_rec_group_lost(const trk_rec_t *r, const char *user);

/* ---- shared by trk_merge.c and trk_view.c only ------------------------- */
#define TRK_APP_VERSION  1          /* of the values split into elements */
#define TRK_ST_MEMBER    'm'        /* group element: a member */
#define TRK_ST_PENDING   'p'        /* group element: a join request */

/* The record kind ('G', 'P', ...) of a replicated key, 0 if none. */
uint8_t      trk_key_app_kind(const void *key);
void         trk_elem_free(trk_elem_t *e);
uint8_t     *trk_dup_bytes(const void *p, uint32_t n);
/* e := (ek, stamp st, tomb, val): 0 / -1 no memory. */
int          trk_elem_set(trk_elem_t *e, const void *ek, uint32_t eklen,
                          trk_stamp_t st, uint8_t tomb, const void *val,
                          uint32_t vlen);
int          trk_ek_cmp(const uint8_t *a, uint32_t al, const uint8_t *b,
                        uint32_t bl);
/* Position of element key ek in in (sorted); *found 1 if there. */
uint32_t     trk_inc_find(const trk_inc_t *in, const void *ek,
                          uint32_t eklen, int *found);
trk_elem_t  *trk_inc_insert_at(trk_inc_t *in, uint32_t pos);
/* The incarnation created at c (create: added when absent), or NULL. */
trk_inc_t   *trk_rec_find_inc(trk_rec_t *r, trk_stamp_t c, int create);
/* Drops incarnations with C <= D (set kinds keep C = 0 and D = 0). */
int          trk_rec_prune(trk_rec_t *r);

#endif
