/*
 * trk_thr.h -- the names of the login throttle's composite counters
 * (trk_thr.c); the counters themselves are declared in trk_shm.h.
 *
 * A LOGIN is counted under these kinds (each a keyed hash of its name):
 *   'a' <address>            failures from the address, any user
 *   'p' <user>/<address>     failures for the user from the address
 *   'u' <user>               addresses whose 'p' counter reached its
 *                            limit in the window (the per-user safety
 *                            net: one address counts once)
 *   'i' <user>/<hex fp>      failures of one known node identity for the
 *                            user; these counters live in a region of the
 *                            table of their own (TS_THR_NODE_SLOTS_N)
 * Addresses are normalised as trk_addr_norm() says (IPv6 per /64).
 *
 * Locking: none (pure functions on caller memory).  Crash behaviour:
 * nothing kept.
 */
#ifndef TRK_THR_H_INCLUDED
#define TRK_THR_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "ts_config.h"
#include "ts_tls.h"
#include "trk_shm.h"

/* Room for the longest composite name ("<user>/<64 hex>"). */
#define TRK_THR_NAME_B  (TS_ID_MAX_B + 1 + 2 * TS_FP_B + 1 + 8)

/* "<user>/<normalised address>": the 'p' counter's name. */
void trk_thr_pair_name(const char *user, const char *addr, char *out,
                       size_t outsz);
/* "<user>/<hex of fp>": the 'i' counter's name. */
void trk_thr_node_name(const char *user, const uint8_t fp[TS_FP_B],
                       char *out, size_t outsz);

#endif
