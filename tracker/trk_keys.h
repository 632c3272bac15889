/*
 * trk_keys.h -- the tracker's tdb key schema: every prefix and the key
 * builders.  All keys are ASCII, "<kind>/...":
 *
 * Replicated (values are merge envelopes, trk_merge.h; record layouts in
 * trk_codec.h):
 *   u/<user>              user account
 *   g/<group>             group (owner, members, pending requests)
 *   s/<hex sha256(t)>     session of token t (the token is never stored)
 *   r/<reqid hex16>/<first 8 bytes of the request hash, hex>
 *                         cached reply: only a byte-identical retry of
 *                         the request finds it
 *   f/<group>/<name>      file (size, sha1, chunk hashes, uploader)
 *   p/<group>/<name>      the file's sources (apart from the hashes, so
 *                         HAVE_CHUNKS rewrites a small record)
 *   l/<group>             the group's file names, sorted
 *   m/<user>/<node_addr>  "group/name" of every file that node shares
 *   n/<user>/<node_addr>  sha256(token) of the sessions from that node
 * Local to one tracker (trk_oplog.h):
 *   o/<origin hex2>/<seq hex16>  op record
 *   v/<origin hex2>              highest seq applied from origin
 *   x/...                        epoch, HLC mark, segments, floors
 *   q/u/<user>, q/g/<group>, q/t storage usage counters (trk_quota.h),
 *   q/limits                     derived from f/ g/ s/ m/, rebuilt at start
 *   y/...                        derived indexes (trk_index.h): counts
 *                                and digest, group lists, expiry queues;
 *                                rebuilt at start-up
 *
 * Header-only; no state, no locks (the builders write into the caller's
 * buffer), nothing that a crash could leave behind.
 */
#ifndef TRK_KEYS_H_INCLUDED
#define TRK_KEYS_H_INCLUDED

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <tdb.h>
#include "ts_config.h"
#include "ts_crypto.h"
#include "ts_proto.h"
#include "trk_codec.h"

#define TRK_KEY_USER     'u'
#define TRK_KEY_GROUP    'g'
#define TRK_KEY_SESSION  's'
#define TRK_KEY_REPLY    'r'
#define TRK_KEY_FILE     'f'
#define TRK_KEY_SOURCES  'p'
#define TRK_KEY_LIST     'l'
#define TRK_KEY_SHARES   'm'
#define TRK_KEY_NODE     'n'
#define TRK_KEY_OP       'o'
#define TRK_KEY_VV       'v'
#define TRK_KEY_LOCAL    'x'
#define TRK_KEY_QUOTA    'q'
#define TRK_KEY_INDEX    'y'

/* Room for the longest key ("m/<user>/<node_addr>", "f/<group>/<name>",
 * "s/<64 hex>"). */
#define TRK_KEY_B  (2 + TRK_ADDR_MAX_B + 2 + TS_ID_MAX_B + TS_NAME_MAX_B + 16)

/* 1 if key k (n bytes) is of kind (the "<kind>/" prefix). */
static inline int
trk_key_is(const void *k, size_t n, char kind)
{
    const char *p = k;

    return n >= 2 && p[0] == kind && p[1] == '/';
}

/* "<kind>/<a>" or "<kind>/<a>/<b>" (b NULL) into buf (TRK_KEY_B bytes);
 * an empty key (dsize 0) when it does not fit. */
static inline TDB_DATA
trk_key(char *buf, char kind, const char *a, const char *b)
{
    TDB_DATA k;
    int      n;

    if (b != NULL) {
        n = snprintf(buf, TRK_KEY_B, "%c/%s/%s", kind, a, b);
    } else {
        n = snprintf(buf, TRK_KEY_B, "%c/%s", kind, a);
    }
    if (n < 0 || n >= TRK_KEY_B) {
        n = 0;
    }
    k.dptr = (unsigned char *) buf;
    k.dsize = (size_t) n;
    return k;
}

/* s/<hex of h>: the session of the token whose sha256 is h. */
static inline TDB_DATA
trk_key_session(char *buf, const uint8_t h[TS_SHA256_B])
{
    char hex[2 * TS_SHA256_B + 1];

    ts_hex(h, TS_SHA256_B, hex);
    return trk_key(buf, TRK_KEY_SESSION, hex, NULL);
}

/* r/<reqid>/<first 8 bytes of the request hash>: a request with the
 * same id but other bytes has another key, so it can neither read nor
 * overwrite the reply of the first one. */
static inline TDB_DATA
trk_key_reply(char *buf, uint64_t reqid, const uint8_t hash[TS_SHA256_B])
{
    char hex[40];

    snprintf(hex, sizeof(hex), "%016llx/%02x%02x%02x%02x%02x%02x%02x%02x",
             (unsigned long long) reqid, hash[0], hash[1], hash[2], hash[3],
             hash[4], hash[5], hash[6], hash[7]);
    return trk_key(buf, TRK_KEY_REPLY, hex, NULL);
}

#endif
