/*
 * trk_merge_int.h -- the envelope helpers that trk_merge.c shares with
 * trk_view.c (not for other files: use trk_merge.h).
 *
 * Locking: none; pure functions on caller-owned memory.
 */
#ifndef TRK_MERGE_INT_H_INCLUDED
#define TRK_MERGE_INT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "trk_merge.h"

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
