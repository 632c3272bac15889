/*
 * trk_known.h -- the node identities known to a user (trk_known.c): the
 * certificate fingerprints that logged in to the account before, which
 * the login throttle lets through (trk_kdf.c).
 *
 * Locking: like the store (one thread per trk_store_t); trk_known_add()
 * runs inside the caller's transaction.  Crash behaviour: the list is
 * written in the login's own transaction, so it is there or not.
 */
#ifndef TRK_KNOWN_H_INCLUDED
#define TRK_KNOWN_H_INCLUDED

#include <stdint.h>
#include "ts_tls.h"
#include "trk_store.h"

/* 1 if identity fp logged in to (this incarnation of) user before: in
 * this tracker's list, or in a session from node_addr that tdb still
 * holds (sessions replicate, so a login on another tracker counts while
 * its session lives).  0 otherwise (and on any error). */
int trk_known_has(trk_store_t *st, const char *user, const char *node_addr,
                  const uint8_t fp[TS_FP_B]);
/* Remembers fp for user (seen at wall_ms); the least recently seen of
 * TS_LOGIN_KNOWN_NODES_N makes room.  Inside a transaction.  0 / -1. */
int trk_known_add(trk_store_t *st, const char *user,
                  const uint8_t fp[TS_FP_B], uint64_t wall_ms);

#endif
