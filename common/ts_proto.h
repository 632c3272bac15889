/*
 * ts_proto.h -- the Tessera wire protocol: frame header, message types,
 * status codes, and the field layout of every message.  One codec for the
 * tracker, the client and the peers.
 *
 * Frame (network byte order), 16-byte header then payload:
 *   u8  magic 0x54 ('T')   u8 version (TS_PROTO_VERSION)
 *   u8  type (ts_msg_t)    u8 flags (TS_FF_*)
 *   u32 payload length     (<= the receiver's limit, checked before malloc)
 *   u64 request id         chosen by the requester; a reply echoes it.
 *                          Clients keep it across retries and failover, so
 *                          a tracker applies a write at most once.
 *
 * Payloads are ts_buf fields.  Every request that needs a login starts
 * with the session token as raw TS_TOKEN_B bytes ("tok" below).  A reply
 * (type TS_MSG_REPLY) is:  u16 status, str message (empty when OK), then
 * on OK the body listed for the request.
 *
 * No state, no locks: pure functions over caller buffers.
 */
#ifndef TS_PROTO_H_INCLUDED
#define TS_PROTO_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "ts_config.h"
#include "ts_buf.h"

#define TS_FRAME_MAGIC  0x54

#define TS_FF_REPLY     0x01
#define TS_FF_HAVE      0x02    /* PEER_MAP and its reply: see PEER_HAVE */

typedef enum {
    TS_MSG_REPLY          = 1,

    /* accounts and sessions                     request fields -> OK body */
    TS_MSG_CREATE_USER    = 10, /* str user, str password          -> -     */
    TS_MSG_LOGIN          = 11, /* str user, str password, str node_addr
                                   ("ip:port" the node serves on)
                                   -> raw tok[16], u32 heartbeat_ms
                                   (how often the client must beat).  The
                                   node's fingerprint is taken from the
                                   TLS client certificate of the link.  */
    TS_MSG_LOGOUT         = 12, /* tok                             -> -     */
    TS_MSG_HEARTBEAT      = 13, /* tok                             -> -     */

    /* groups */
    TS_MSG_CREATE_GROUP   = 20, /* tok, str group                  -> -     */
    TS_MSG_JOIN_GROUP     = 21, /* tok, str group                  -> -     */
    TS_MSG_LEAVE_GROUP    = 22, /* tok, str group -> str new_owner ("" if
                                   none changed; "-" if dissolved)         */
    TS_MSG_LIST_REQUESTS  = 23, /* tok, str group -> u32 n, n x str user   */
    TS_MSG_ACCEPT_REQUEST = 24, /* tok, str group, str user        -> -     */
    TS_MSG_REJECT_REQUEST = 25, /* tok, str group, str user        -> -     */
    TS_MSG_LIST_GROUPS    = 26, /* tok -> u32 n, n x (str group, str owner,
                                   u32 members)                            */
    TS_MSG_LIST_MY_GROUPS = 27, /* tok -> u32 n, n x (str group, str owner,
                                   u32 members)                            */

    /* files.  hashes = raw 20-byte SHA1 per chunk, nchunks of them;
     * bitmap = blob of (nchunks+7)/8 bytes, chunk i = bit (i & 7) of
     * byte i/8.  A source is (user, node_addr of the login session); it
     * is online while that session lives. */
    TS_MSG_UPLOAD_FILE    = 30, /* tok, str group, str name, u64 size,
                                   raw sha1[20], u32 nchunks, hashes
                                   -> -   (this node = complete source)  */
    TS_MSG_LIST_FILES     = 31, /* tok, str group -> u32 n, n x (str name,
                                   u64 size, u32 sources_online)        */
    TS_MSG_FILE_INFO      = 32, /* tok, str group, str name -> u64 size,
                                   raw sha1[20], u32 nchunks, hashes,
                                   u32 nsrc, nsrc x (str addr, u8 complete,
                                   u32 chunks_held, raw fp[32])  (online
                                   sources, the requester's own node
                                   excluded; fp = the source node's
                                   certificate fingerprint), blob ticket
                                   (ts_ticket.h, for the requester's
                                   node fingerprint; empty if it showed
                                   no certificate).  Optional request
                                   tail: u32 n, n x str addr (n <= 64):
                                   sources that never answered the
                                   requester, listed only to fill.  The
                                   sources are a shuffled sample: at
                                   most 32, at most 4 of one user, those
                                   reported as serving first.           */
    TS_MSG_STOP_SHARE     = 33, /* tok, str group, str name -> -         */
    TS_MSG_HAVE_CHUNKS    = 34, /* tok, str group, str name, u8 complete,
                                   bitmap -> -  (partial source update).
                                   Optional tail: u32 n, n x (str addr,
                                   raw fp[32]) (n <= 32): sources that
                                   served this node verified chunks of
                                   the file since its last report      */
    TS_MSG_MY_SHARES      = 35, /* tok -> u32 n, n x (str group, str name,
                                   u8 complete)  (this user, this node)  */

    /* tracker administration */
    TS_MSG_STATUS         = 40, /* - -> str text (one "key: value" a line) */
    TS_MSG_ADMIN_LIST     = 41, /* u8 kind (TS_ADMIN_*), str group (files
                                   only, else ""), str cursor ("" = first
                                   page), u16 limit (1..1000)
                                   -> u32 n, n x (str name, str detail),
                                   str next_cursor ("" = last page).
                                   Only over a link with an admin
                                   certificate of the cluster CA.        */
    TS_MSG_ADMIN_ACT      = 42, /* u8 action (TS_ADMIN_ACT_*), str a,
                                   str b -> str text (what was done).
                                   disable-user / enable-user: a = user,
                                   b = ""; remove-file: a = group, b =
                                   file name.  Only over a link with an
                                   admin certificate (else TS_ERR_AUTH);
                                   NOTFOUND when there is no such user
                                   or file.                              */

    /* tracker <-> tracker (replication) */
    TS_MSG_SYNC_HELLO     = 50,
    TS_MSG_SYNC_OPS       = 51,
    TS_MSG_SYNC_ACK       = 52,
    TS_MSG_SYNC_SNAPSHOT  = 53,

    /* peer <-> peer, on the node's IP:PORT (uploader workers) */
    TS_MSG_PEER_HAVE      = 59, /* (uploader -> downloader, unsolicited:
                                   flags 0, reqid 0) str group, str name,
                                   u32 n (1..TS_PEER_HAVE_MAX_N), n x u32
                                   chunk index: chunks of that file the
                                   uploader's node verified since the map
                                   it sent.  Sent only on a link whose
                                   PEER_MAP of the file carried
                                   TS_FF_HAVE and whose OK reply echoed
                                   it, only between whole replies; a
                                   hint (a GET of such a chunk may still
                                   be refused), never needed for
                                   correctness.                          */
    TS_MSG_PEER_MAP       = 60, /* str group, str name -> REPLY: status,
                                   msg, u32 load, u32 nchunks, bitmap.
                                   Header flag TS_FF_HAVE on the request:
                                   "push me this file's new chunks"
                                   (PEER_HAVE); on an OK reply: "I will,
                                   on this link" (a peer that does not
                                   echo it pushes nothing).              */
    TS_MSG_PEER_GET       = 61, /* str group, str name, u32 index
                                   -> PEER_DATA.  Optional tail (a
                                   ranged GET): u32 offset, u32 length
                                   of bytes within the chunk; offset a
                                   multiple of TS_BLOCK_B, length a
                                   multiple too unless the range ends
                                   at the chunk's end, 0 < length,
                                   offset + length <= the chunk's
                                   length; anything else: PEER_DATA
                                   TS_ERR_BADREQ.  An uploader without
                                   ranges answers any tail BADREQ
                                   "malformed request" with index 0.
                                   The answer to a ranged GET is a
                                   PEER_DATA of length bytes.          */
    TS_MSG_PEER_DATA      = 62, /* (flags REPLY) u16 status, str msg,
                                   u32 load, u32 index, then on OK:
                                   u32 len + len bytes of chunk data.
                                   load = the peer's active uploads +
                                   queued requests.  Requests on one
                                   connection are answered in order.
                                   A seeder may answer NOTFOUND "chunk
                                   already in the swarm" for a chunk it
                                   sent another peer a moment ago
                                   (super-seeding, workers/up_seed.c):
                                   the asker takes it from that peer. */
    TS_MSG_PEER_AUTH      = 63, /* blob ticket -> REPLY (status, msg).
                                   Authorizes MAP/GET of the ticket's
                                   (group, name) on this link until it
                                   expires; the ticket must name the
                                   fingerprint of this link's client
                                   certificate.  Without one, MAP/GET
                                   get TS_ERR_PERM.                      */

    TS_MSG_MAX_           = 64
} ts_msg_t;

typedef enum {
    TS_OK            = 0,
    TS_ERR_BADREQ    = 1,   /* malformed or invalid argument */
    TS_ERR_AUTH      = 2,   /* not logged in, bad credentials, expired */
    TS_ERR_EXISTS    = 3,
    TS_ERR_NOTFOUND  = 4,
    TS_ERR_PERM      = 5,   /* not owner / not member */
    TS_ERR_STATE     = 6,   /* already member, already pending, ... */
    TS_ERR_LIMIT     = 7,   /* a table or list is full */
    TS_ERR_BUSY      = 8,   /* try again (another tracker, later) */
    TS_ERR_CONFLICT  = 9,   /* lost a concurrent creation (cluster) */
    TS_ERR_INTERNAL  = 10
} ts_status_t;

typedef struct {
    uint8_t  type;
    uint8_t  flags;
    uint32_t len;
    uint64_t reqid;
} ts_frame_hdr_t;

/* Header codec.  decode returns 0, or -1 for a bad magic, version or type,
 * or a length over max_payload (so nothing is allocated for it). */
void ts_frame_hdr_encode(uint8_t out[TS_FRAME_HDR_B], const ts_frame_hdr_t *h);
int  ts_frame_hdr_decode(const uint8_t in[TS_FRAME_HDR_B], ts_frame_hdr_t *h,
                         uint32_t max_payload);

/* Encodes the header of a frame with these fields. */
void ts_frame_hdr_make(uint8_t out[TS_FRAME_HDR_B], uint8_t type,
                       uint8_t flags, uint64_t reqid, uint32_t len);

/* Builds a whole frame (header + payload) into out (reset first). */
void ts_frame_build(ts_wbuf_t *out, uint8_t type, uint8_t flags,
                    uint64_t reqid, const void *payload, uint32_t len);

/* Reply payload head: status + message.  Body fields follow via ts_put_*. */
void ts_reply_begin(ts_wbuf_t *b, ts_status_t st, const char *msg);
/* Parses the head of a reply; msg gets the message ("" when OK). */
int  ts_reply_parse(ts_rbuf_t *r, ts_status_t *st, char *msg, size_t msgsz);

const char *ts_msg_name(unsigned type);        /* "LOGIN", "?" if unknown */
const char *ts_status_name(ts_status_t st);

/* ---- validation of names that arrive from anywhere ------------------- */
/* user/group ids: 1..64 chars of [A-Za-z0-9._-] */
int ts_valid_id(const char *s);

/* ADMIN_LIST kinds */
enum {
    TS_ADMIN_USERS    = 1,
    TS_ADMIN_GROUPS   = 2,
    TS_ADMIN_SESSIONS = 3,
    TS_ADMIN_FILES    = 4
};
/* ADMIN_ACT actions */
enum {
    TS_ADMIN_ACT_DISABLE     = 1,   /* disable-user USER */
    TS_ADMIN_ACT_ENABLE      = 2,   /* enable-user USER */
    TS_ADMIN_ACT_REMOVE_FILE = 3    /* remove-file GROUP NAME */
};
/* the rule of ts_valid_id, for error messages */
#define TS_ID_RULE  "use 1..64 characters of A-Z a-z 0-9 . _ -"
/* file names: 1..255 bytes, no '/', no control chars (< 0x20, 0x7f),
 * not "." or "..", valid as a single path component. */
int ts_valid_filename(const char *s);
/* a file name a user may create (UPLOAD_FILE, on the client before it
 * sends and on the tracker): ts_valid_filename and nothing ts_esc.h
 * would rewrite, i.e. well-formed UTF-8 with no C1 control, no
 * bidirectional control and no line separator.  Names stored before
 * this rule (or merged from a tracker without it) stay readable under
 * ts_valid_filename and are escaped wherever they are shown.  On 0,
 * why (if not NULL) gets the reason, e.g. "U+202E (a bidirectional
 * control) at byte 3". */
int ts_valid_new_filename(const char *s, char *why, size_t whysz);

#endif
