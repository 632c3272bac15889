/*
 * trk_codec.h -- the tracker's records and their codec (trk_codec.c).
 *
 * Every record starts with a kind byte and a version byte:
 *   'U' user      {salt[16], iterations, hash[20], created_ms,
 *                 optional u8 flags (TRK_USER_F_*, present only when
 *                 non-zero: an operator disabled the account)}
 *   'G' group     {owner, next_join_seq, members[(user, seq)] in join
 *                 order, pending[(user, seq)] in request order}
 *   'S' session   {user, node_addr, created_ms, user_hlc, user_origin,
 *                 node fp[32]} (a record of an older version has no fp:
 *                 zeros)
 *   'R' reply     {stored_ms, type, request hash[32], reply payload}
 *   'F' file      {size, sha1[20], nchunks, hashes[20 x nchunks],
 *                 created_ms, first uploader}
 *   'P' sources   {size, nchunks, list of (user, node_addr, complete,
 *                 chunks_held, bitmap when partial)}
 *   'L' names     a group's file names, sorted
 *   'M' shares    "group/name" of every file one node shares
 *   'N' node      sha256(token) of the sessions of one node
 * The keys they are stored under are in trk_keys.h.  decode returns 0 or
 * -1 and never crashes on any input (fuzzed).
 *
 * Locking: none; pure functions on caller memory.
 */
#ifndef TRK_CODEC_H_INCLUDED
#define TRK_CODEC_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "ts_config.h"
#include "ts_buf.h"
#include "ts_crypto.h"
#include "ts_proto.h"
#include "ts_tls.h"

#define TRK_ADDR_MAX_B      80          /* node "ip:port" in a session */
#define TRK_MSG_B           256         /* error text of one reply */

#define TRK_REC_USER     'U'
#define TRK_REC_GROUP    'G'
#define TRK_REC_SESSION  'S'
#define TRK_REC_REPLY    'R'
#define TRK_REC_FILE     'F'
#define TRK_REC_SRCS     'P'
#define TRK_REC_LIST     'L'
#define TRK_REC_SHARES   'M'
#define TRK_REC_NODE     'N'
#define TRK_REC_VERSION  1

/* One entry of an m/ list, "group/name", with its NUL. */
#define TRK_ENTRY_B  (TS_ID_MAX_B + 1 + TS_NAME_MAX_B + 1)

#define TRK_USER_F_DISABLED  0x01   /* logins and sessions refused */

typedef struct {
    uint8_t  salt[TS_KDF_SALT_B];
    uint32_t iterations;
    uint8_t  hash[TS_KDF_HASH_B];
    uint64_t created_ms;
    uint8_t  disabled;          /* 1: disabled by an operator */
} trk_user_t;

typedef struct {
    char     user[TS_ID_MAX_B + 1];
    uint64_t seq;
} trk_member_t;

typedef struct {
    char          owner[TS_ID_MAX_B + 1];
    uint64_t      next_join_seq;
    uint32_t      nmembers;
    uint32_t      npending;
    trk_member_t *members;      /* malloc'd, join order */
    trk_member_t *pending;      /* malloc'd, request order */
} trk_group_t;

typedef struct {
    char     user[TS_ID_MAX_B + 1];
    char     node_addr[TRK_ADDR_MAX_B];
    uint64_t created_ms;
    uint64_t user_hlc;          /* creation stamp of the user's account */
    uint8_t  user_origin;       /* incarnation at login (cluster) */
    uint8_t  fp[TS_FP_B];       /* the node's certificate fingerprint
                                   (TLS client cert of the login link;
                                   zeros: none) */
} trk_session_t;

typedef struct {
    uint64_t  size;
    uint8_t   sha1[20];
    uint32_t  nchunks;
    uint8_t  *hashes;                   /* malloc'd, 20 x nchunks */
    uint64_t  created_ms;
    char      uploader[TS_ID_MAX_B + 1];
} trk_file_t;

typedef struct {
    char      user[TS_ID_MAX_B + 1];
    char      addr[TRK_ADDR_MAX_B];
    uint8_t   complete;
    uint32_t  held;                     /* chunks held */
    uint32_t  bmlen;                    /* 0 when complete */
    uint8_t  *bitmap;                   /* malloc'd, NULL when complete */
} trk_src_t;

typedef struct {
    uint64_t   size;
    uint32_t   nchunks;
    uint32_t   n;
    trk_src_t *v;                       /* malloc'd */
} trk_srcs_t;

/* A sorted list of distinct strings (l/ and m/ records). */
typedef struct {
    uint32_t   n;
    uint32_t   cap;
    char     **v;
} trk_strlist_t;

/* The kind and version bytes; get: 0, or -1 for another kind/version. */
void trk_codec_put_head(ts_wbuf_t *b, uint8_t kind);
int  trk_codec_get_head(ts_rbuf_t *r, uint8_t kind);

/* Codec (exported for tests and fuzzing).  decode: 0 or -1. */
void trk_user_encode(ts_wbuf_t *b, const trk_user_t *u);
int  trk_user_decode(const void *p, size_t n, trk_user_t *u);
void trk_group_encode(ts_wbuf_t *b, const trk_group_t *g);
int  trk_group_decode(const void *p, size_t n, trk_group_t *g);
void trk_group_free(trk_group_t *g);
void trk_session_encode(ts_wbuf_t *b, const trk_session_t *s);
int  trk_session_decode(const void *p, size_t n, trk_session_t *s);

/* ---- codec (exported for tests; decode: 0 or -1, never a crash) ------- */
void trk_file_encode(ts_wbuf_t *b, const trk_file_t *f);
int  trk_file_decode(const void *p, size_t n, trk_file_t *f);
void trk_file_free(trk_file_t *f);
void trk_srcs_encode(ts_wbuf_t *b, const trk_srcs_t *s);
int  trk_srcs_decode(const void *p, size_t n, trk_srcs_t *s);
void trk_srcs_free(trk_srcs_t *s);

/* The chunk count of a file of size bytes. */
uint32_t trk_file_nchunks(uint64_t size);
/* Chunks set in a bitmap of nchunks bits (bits past nchunks ignored). */
uint32_t trk_bits_count(const uint8_t *bm, uint32_t nchunks);

/* String lists, kept sorted (bytewise), no duplicates.  find: 1 found
 * (*pos its index) or 0 (*pos where it would go); add: 1 added, 0
 * already there, -1 no memory; del: 1 removed, 0 not there. */
void trk_strlist_free(trk_strlist_t *l);
int  trk_strlist_find(const trk_strlist_t *l, const char *s, uint32_t *pos);
int  trk_strlist_add(trk_strlist_t *l, const char *s);
int  trk_strlist_del(trk_strlist_t *l, const char *s);
/* kind TRK_REC_LIST (file names) or TRK_REC_SHARES ("group/name");
 * decode: at most max entries, 0 or -1. */
void trk_strlist_encode(ts_wbuf_t *b, uint8_t kind, const trk_strlist_t *l);
int  trk_strlist_decode(const void *p, size_t n, uint8_t kind, uint32_t max,
                        trk_strlist_t *l);

#endif
