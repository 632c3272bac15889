/*
 * trk_srcpick.h -- which sources a FILE_INFO reply lists (trk_srcpick.c):
 * a bounded, shuffled sample of the live sources, proven ones first, at
 * most TS_TRK_FINFO_USER_SRC_N of one user, the requester's dead ones
 * last; and the "proven" memory behind it (sources that another user's
 * node reported as having served it verified chunks, HAVE_CHUNKS).
 *
 * Locking: one thread per trk_store_t; trk_proven_note and
 * trk_proven_drop write inside the caller's transaction.  Crash
 * behaviour: the proven records are local-only hints (x/pv/ keys, not
 * replicated, rebuilt by later reports); losing them costs only the
 * preference.
 */
#ifndef TRK_SRCPICK_H_INCLUDED
#define TRK_SRCPICK_H_INCLUDED

#include <stdint.h>
#include "ts_config.h"
#include "ts_buf.h"
#include "trk_codec.h"
#include "trk_sources.h"

/* One "this source served me" report: the address and the certificate
 * fingerprint the requester saw it with. */
typedef struct {
    char     addr[TRK_ADDR_MAX_B];
    uint8_t  fp[TS_FP_B];
} trk_served_t;

/* Appends the source rows of a FILE_INFO reply for s (the file's p/
 * record) to rows, n = how many: (str addr, u8 complete, u32 held,
 * raw fp).  0, or -1 (no memory). */
int trk_srcpick_rows(const trk_fctx_t *c, const char *group,
                     const char *name, const trk_srcs_t *s, ts_wbuf_t *rows,
                     uint32_t *n);

/* Reads the optional tail of a request: u32 n, n x str addr (FILE_INFO's
 * exclusions, n <= max) into out (max entries).  An empty tail is n = 0.
 * 0, or -1 malformed. */
int trk_srcpick_get_addrs(ts_rbuf_t *r, char (*out)[TRK_ADDR_MAX_B],
                          uint32_t max, uint32_t *n);

/* HAVE_CHUNKS' optional tail: u32 n, n x (str addr, raw fp[32]), n <=
 * TS_NODE_SOURCES_N.  0, or -1 malformed. */
int trk_srcpick_get_served(ts_rbuf_t *r, trk_served_t *out, uint32_t *n);

/* c's node reports that the sources in sv served it verified chunks of
 * group/name: those of another user, listed at that address with that
 * fingerprint, are remembered as proven (inside the caller's
 * transaction).  0 or -1. */
int trk_proven_note(const trk_fctx_t *c, const char *group,
                    const char *name, const trk_served_t *sv, uint32_t n);

#endif
