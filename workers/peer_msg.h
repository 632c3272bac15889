/*
 * peer_msg.h -- the codec of the peer-to-peer messages (PEER_MAP,
 * PEER_GET, PEER_AUTH and their answers, the pushed PEER_HAVE; layouts
 * in common/ts_proto.h):
 * what the uploader (up_link.c, up_serve.c) decodes from a downloader and
 * encodes back, and what the downloader (dl_link.c, dl_recv.c) encodes
 * and decodes.  The workers, the unit tests and the libFuzzer target
 * (tests/fuzz/fuzz_peer.c) all call these same functions.
 *
 * Every decoder is pure: caller buffers, no worker state, no allocation;
 * it returns 0, or -1 for anything but the exact canonical encoding
 * (every length bounded before use, ids checked with ts_valid_id, file
 * names with ts_valid_filename, statuses within ts_status_t, an OK answer
 * with an empty message, no byte left over).  On -1 the output holds
 * nothing usable.  Encoders append to a ts_wbuf_t (its ->err reports a
 * failure, as everywhere).
 *
 * Locking: none (no state).  Crash behaviour: nothing survives a crash;
 * nothing needs to.
 */
#ifndef PEER_MSG_H_INCLUDED
#define PEER_MSG_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "ts_proto.h"

/* ---- limits (bytes of a frame's payload) ------------------------------ */

/* a PEER_AUTH carries a whole ticket (u32 blob length + bytes) */
#define PEER_MSG_AUTH_MAX_B    (4u + TS_TICKET_MAX_B)
/* what an uploader accepts in one frame: MAP/GET stay within
 * TS_UP_REQ_MAX_B, only PEER_AUTH may be longer */
#define PEER_MSG_REQ_IN_MAX_B  (PEER_MSG_AUTH_MAX_B > TS_UP_REQ_MAX_B       \
                                ? PEER_MSG_AUTH_MAX_B : TS_UP_REQ_MAX_B)
/* a REPLY a downloader accepts (the MAP answer, the largest: head, load,
 * nchunks, the bitmap of the largest file, some slack) */
#define PEER_MSG_MAP_MAX_B     (4u + TS_STR_MAX_B + 8u + 4u                  \
                                + (uint32_t) (TS_FILE_MAX_CHUNKS_N / 8) + 8u)
/* the head of a PEER_DATA: status, message, load, index, length */
#define PEER_MSG_HEAD_MAX_B    (4u + TS_STR_MAX_B + 12u)
/* the least bytes of a PEER_DATA head: status and message length */
#define PEER_MSG_HEAD_MIN_B    4u
/* what a downloader accepts in one frame */
#define PEER_MSG_REPLY_IN_MAX_B (PEER_MSG_MAP_MAX_B + TS_CHUNK_B)
/* a PEER_HAVE: group, name, the count and its indices */
#define PEER_MSG_HAVE_MAX_B    (2u + TS_ID_MAX_B + 2u + TS_NAME_MAX_B + 4u  \
                                + 4u * TS_PEER_HAVE_MAX_N)
/* the copy of an answer's message a decoder keeps (longer: truncated) */
#define PEER_MSG_MSG_B         128

/* ---- requests (downloader -> uploader) -------------------------------- */

/* PEER_MAP: str group, str name.  PEER_GET: the same, then u32 index,
 * and for a ranged GET u32 offset, u32 length (bytes within the chunk). */
typedef struct {
    char      group[TS_ID_MAX_B + 1];
    char      name[TS_NAME_MAX_B + 1];
    uint32_t  index;            /* PEER_GET; 0 for a PEER_MAP */
    uint8_t   ranged;           /* a ranged PEER_GET */
    uint32_t  off, len;         /* its range (unchecked: see below) */
} peer_msg_req_t;

/* The header of a frame an uploader reads: ts_frame_hdr_decode within
 * PEER_MSG_REQ_IN_MAX_B, and a MAP/GET (any type but PEER_AUTH) within
 * TS_UP_REQ_MAX_B.  -1: the link must close. */
int  peer_msg_req_hdr_decode(const uint8_t in[TS_FRAME_HDR_B],
                             ts_frame_hdr_t *h);

/* type is TS_MSG_PEER_MAP or TS_MSG_PEER_GET. */
void peer_msg_req_encode(ts_wbuf_t *b, uint8_t type, const char *group,
                         const char *name, uint32_t index);
/* A ranged PEER_GET of len bytes at off within chunk index. */
void peer_msg_range_encode(ts_wbuf_t *b, const char *group, const char *name,
                           uint32_t index, uint32_t off, uint32_t len);
/* -1 for another type, a malformed payload, an invalid group id or file
 * name; out is then zeroed.  A ranged GET's offset and length are only
 * read here: peer_msg_range_check says whether they fit the chunk. */
int  peer_msg_req_decode(uint8_t type, const uint8_t *p, size_t n,
                         peer_msg_req_t *out);
/* 0 if [off, off + len) is a range a ranged GET may ask of a chunk of
 * chunk_len bytes (1..TS_CHUNK_B): 0 < len, offset a multiple of
 * TS_BLOCK_B, length a multiple too unless the range ends at the chunk's
 * end, off + len <= chunk_len (no overflow).  -1 otherwise. */
int  peer_msg_range_check(uint32_t off, uint32_t len, uint32_t chunk_len);

/* PEER_AUTH: blob ticket (1..TS_TICKET_MAX_B bytes). */
void peer_msg_auth_encode(ts_wbuf_t *b, const uint8_t *ticket, uint32_t len);
/* *ticket points into p (not copied); NULL and 0 on -1. */
int  peer_msg_auth_decode(const uint8_t *p, size_t n,
                          const uint8_t **ticket, uint32_t *len);

/* ---- answers (uploader -> downloader) --------------------------------- */

/* The header of an answer to a request of req_type, already decoded
 * within PEER_MSG_REPLY_IN_MAX_B: a PEER_GET is answered by PEER_DATA, a
 * PEER_MAP or PEER_AUTH by a REPLY within PEER_MSG_MAP_MAX_B.  0 if h
 * fits, -1 if not. */
int  peer_msg_reply_hdr_check(const ts_frame_hdr_t *h, uint8_t req_type);

/* A REPLY with no body: the answer to a PEER_AUTH, and any refused MAP
 * (encoded with ts_reply_begin).  msg gets a copy of the message,
 * truncated to msgsz - 1 bytes. */
int  peer_msg_status_decode(const uint8_t *p, size_t n, ts_status_t *st,
                            char *msg, size_t msgsz);

/* The answer to a PEER_MAP. */
typedef struct {
    ts_status_t    status;
    char           msg[PEER_MSG_MSG_B];     /* "" when OK */
    /* OK only (0 / NULL otherwise): */
    uint32_t       load;
    uint32_t       nchunks;
    const uint8_t *bitmap;      /* into the decoded buffer: chunk i is bit
                                   (i & 7) of byte i / 8 */
    uint32_t       bitmap_len;  /* exactly (nchunks + 7) / 8 */
} peer_msg_map_t;

/* Appends an OK answer: head, load, nchunks and a bitmap of
 * (nchunks + 7) / 8 bytes, every chunk set when all, else none.  Returns
 * the bitmap's bytes in b (valid until b grows) for the caller to set
 * bits in, or NULL when b->err. */
uint8_t *peer_msg_map_encode(ts_wbuf_t *b, uint32_t load, uint32_t nchunks,
                             int all);
/* An OK answer: nchunks <= TS_FILE_MAX_CHUNKS_N, a bitmap of exactly
 * (nchunks + 7) / 8 bytes with no bit set past nchunks.  Another status:
 * the head alone. */
int  peer_msg_map_decode(const uint8_t *p, size_t n, peer_msg_map_t *m);
/* Bits 64 * w .. 64 * w + 63 of a decoded OK map as one word (chunk
 * 64 * w + j = bit j), for node_dl_map's layout; 0 past the end. */
uint64_t peer_msg_map_word(const peer_msg_map_t *m, uint32_t w);

/* The head of a PEER_DATA payload: u16 status, str msg, u32 load,
 * u32 index, and on OK u32 len, followed by len bytes of the chunk (the
 * rest of the frame). */
typedef struct {
    ts_status_t  status;
    char         msg[PEER_MSG_MSG_B];
    uint32_t     load;
    uint32_t     index;
    uint32_t     len;           /* OK: chunk bytes after the head; else 0 */
    uint32_t     head_len;      /* bytes of the head */
} peer_msg_data_t;

/* Appends a PEER_DATA head (len is written only for TS_OK); the chunk's
 * bytes follow it in the frame, outside b or appended by the caller. */
void peer_msg_data_encode(ts_wbuf_t *b, ts_status_t st, const char *msg,
                          uint32_t load, uint32_t index, uint32_t len);
/* For a head read piece by piece: given the first got bytes of a
 * PEER_DATA payload of flen bytes, the length the whole head has
 * (PEER_MSG_HEAD_MIN_B while got is less than that), or -1 when no valid
 * head of flen bytes starts so (flen too short, a bad status, a message
 * too long, a head longer than flen). */
long peer_msg_data_head_len(const uint8_t *p, size_t got, uint32_t flen);
/* The head in p[0..n) (n = its whole length, as peer_msg_data_head_len
 * says) of a payload of flen bytes: not OK, the head is the whole
 * payload; OK, the message is empty, len <= TS_CHUNK_B and head + len is
 * exactly flen. */
int  peer_msg_data_decode(const uint8_t *p, size_t n, uint32_t flen,
                          peer_msg_data_t *d);

/* ---- pushed holdings (uploader -> downloader, unsolicited) ------------ */

/* PEER_HAVE: str group, str name, u32 n, n x u32 chunk index. */
typedef struct {
    char      group[TS_ID_MAX_B + 1];
    char      name[TS_NAME_MAX_B + 1];
    uint32_t  n;                            /* 1..TS_PEER_HAVE_MAX_N */
    uint32_t  idx[TS_PEER_HAVE_MAX_N];      /* each < TS_FILE_MAX_CHUNKS_N */
} peer_msg_have_t;

/* 1 if a frame header a downloader read is a PEER_HAVE (it is then
 * handled outside the request order); 0 if not.  Whether it fits is
 * peer_msg_have_hdr_check's to say. */
int  peer_msg_is_have(const ts_frame_hdr_t *h);
/* A PEER_HAVE header: flags 0, reqid 0, 0 < len <= PEER_MSG_HAVE_MAX_B.
 * 0 if so, -1 if not (the link must close). */
int  peer_msg_have_hdr_check(const ts_frame_hdr_t *h);
/* n: 1..TS_PEER_HAVE_MAX_N (more are not encoded: b->err). */
void peer_msg_have_encode(ts_wbuf_t *b, const char *group, const char *name,
                          const uint32_t *idx, uint32_t n);
/* -1 for a malformed payload, an invalid group id or file name, n of 0
 * or over TS_PEER_HAVE_MAX_N, an index of TS_FILE_MAX_CHUNKS_N or more;
 * out is then zeroed.  Whether an index is within the file is the
 * caller's to check (it knows the file). */
int  peer_msg_have_decode(const uint8_t *p, size_t n, peer_msg_have_t *out);

#endif
