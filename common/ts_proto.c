/*
 * ts_proto.c -- frame header codec, reply head, names and the validation
 * of identifiers and file names that arrive from the network (and the
 * stricter rule for the file names a user creates).
 *
 * Purpose: the single place that knows the 16-byte frame header layout
 * (see ts_proto.h).  A decoded header is only trusted after its magic,
 * version, type and length have been checked, and the length check
 * happens before any caller allocates for the payload.
 *
 * Locking: none; pure functions over caller buffers.
 * Crash behaviour: no state, nothing to recover.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "ts_esc.h"
#include "ts_proto.h"

static void
be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}

void
ts_frame_hdr_encode(uint8_t out[TS_FRAME_HDR_B], const ts_frame_hdr_t *h)
{
    out[0] = TS_FRAME_MAGIC;
    out[1] = TS_PROTO_VERSION;
    out[2] = h->type;
    out[3] = h->flags;
    be32(out + 4, h->len);
    be32(out + 8, (uint32_t) (h->reqid >> 32));
    be32(out + 12, (uint32_t) h->reqid);
}

int
ts_frame_hdr_decode(const uint8_t in[TS_FRAME_HDR_B], ts_frame_hdr_t *h,
                    uint32_t max_payload)
{
    uint32_t len;
    uint64_t reqid = 0;
    int      i;

    if (in[0] != TS_FRAME_MAGIC || in[1] != TS_PROTO_VERSION) {
        return -1;
    }
    if (in[2] == 0 || in[2] >= TS_MSG_MAX_) {
        return -1;
    }
    len = ((uint32_t) in[4] << 24) | ((uint32_t) in[5] << 16)
          | ((uint32_t) in[6] << 8) | (uint32_t) in[7];
    if (len > max_payload) {
        return -1;
    }
    for (i = 8; i < 16; i++) {
        reqid = (reqid << 8) | in[i];
    }
    h->type = in[2];
    h->flags = in[3];
    h->len = len;
    h->reqid = reqid;
    return 0;
}

void
ts_frame_hdr_make(uint8_t out[TS_FRAME_HDR_B], uint8_t type, uint8_t flags,
                  uint64_t reqid, uint32_t len)
{
    ts_frame_hdr_t h;

    h.type = type;
    h.flags = flags;
    h.len = len;
    h.reqid = reqid;
    ts_frame_hdr_encode(out, &h);
}

void
ts_frame_build(ts_wbuf_t *out, uint8_t type, uint8_t flags, uint64_t reqid,
               const void *payload, uint32_t len)
{
    uint8_t hdr[TS_FRAME_HDR_B];

    ts_wbuf_reset(out);
    if (ts_wbuf_reserve(out, TS_FRAME_HDR_B + (size_t) len) != 0) {
        return;
    }
    ts_frame_hdr_make(hdr, type, flags, reqid, len);
    ts_put_raw(out, hdr, sizeof(hdr));
    ts_put_raw(out, payload, len);
}

void
ts_reply_begin(ts_wbuf_t *b, ts_status_t st, const char *msg)
{
    ts_put_u16(b, (uint16_t) st);
    ts_put_str(b, st == TS_OK ? "" : msg);
}

int
ts_reply_parse(ts_rbuf_t *r, ts_status_t *st, char *msg, size_t msgsz)
{
    uint16_t s;
    char     tmp[TS_STR_MAX_B + 1];

    if (msg && msgsz > 0) {
        msg[0] = '\0';
    }
    s = ts_get_u16(r);
    /* read into a full-size buffer so a long message only truncates the
     * caller's copy instead of failing the whole reply */
    if (ts_get_str(r, tmp, sizeof(tmp)) != 0) {
        return -1;
    }
    if (s > TS_ERR_INTERNAL) {
        r->err = 1;
        return -1;
    }
    *st = (ts_status_t) s;
    if (msg && msgsz > 0) {
        size_t n = strlen(tmp);

        if (n > msgsz - 1) {
            n = msgsz - 1;
        }
        memcpy(msg, tmp, n);
        msg[n] = '\0';
    }
    return 0;
}

const char *
ts_msg_name(unsigned type)
{
    switch (type) {
    case TS_MSG_REPLY:          return "REPLY";
    case TS_MSG_CREATE_USER:    return "CREATE_USER";
    case TS_MSG_LOGIN:          return "LOGIN";
    case TS_MSG_LOGOUT:         return "LOGOUT";
    case TS_MSG_HEARTBEAT:      return "HEARTBEAT";
    case TS_MSG_CREATE_GROUP:   return "CREATE_GROUP";
    case TS_MSG_JOIN_GROUP:     return "JOIN_GROUP";
    case TS_MSG_LEAVE_GROUP:    return "LEAVE_GROUP";
    case TS_MSG_LIST_REQUESTS:  return "LIST_REQUESTS";
    case TS_MSG_ACCEPT_REQUEST: return "ACCEPT_REQUEST";
    case TS_MSG_REJECT_REQUEST: return "REJECT_REQUEST";
    case TS_MSG_LIST_GROUPS:    return "LIST_GROUPS";
    case TS_MSG_LIST_MY_GROUPS: return "LIST_MY_GROUPS";
    case TS_MSG_UPLOAD_FILE:    return "UPLOAD_FILE";
    case TS_MSG_LIST_FILES:     return "LIST_FILES";
    case TS_MSG_FILE_INFO:      return "FILE_INFO";
    case TS_MSG_STOP_SHARE:     return "STOP_SHARE";
    case TS_MSG_HAVE_CHUNKS:    return "HAVE_CHUNKS";
    case TS_MSG_MY_SHARES:      return "MY_SHARES";
    case TS_MSG_STATUS:         return "STATUS";
    case TS_MSG_ADMIN_LIST:     return "ADMIN_LIST";
    case TS_MSG_ADMIN_ACT:      return "ADMIN_ACT";
    case TS_MSG_SYNC_HELLO:     return "SYNC_HELLO";
    case TS_MSG_SYNC_OPS:       return "SYNC_OPS";
    case TS_MSG_SYNC_ACK:       return "SYNC_ACK";
    case TS_MSG_SYNC_SNAPSHOT:  return "SYNC_SNAPSHOT";
    case TS_MSG_PEER_HAVE:      return "PEER_HAVE";
    case TS_MSG_PEER_MAP:       return "PEER_MAP";
    case TS_MSG_PEER_GET:       return "PEER_GET";
    case TS_MSG_PEER_DATA:      return "PEER_DATA";
    case TS_MSG_PEER_AUTH:      return "PEER_AUTH";
    default:                    return "?";
    }
}

const char *
ts_status_name(ts_status_t st)
{
    switch (st) {
    case TS_OK:           return "OK";
    case TS_ERR_BADREQ:   return "BADREQ";
    case TS_ERR_AUTH:     return "AUTH";
    case TS_ERR_EXISTS:   return "EXISTS";
    case TS_ERR_NOTFOUND: return "NOTFOUND";
    case TS_ERR_PERM:     return "PERM";
    case TS_ERR_STATE:    return "STATE";
    case TS_ERR_LIMIT:    return "LIMIT";
    case TS_ERR_BUSY:     return "BUSY";
    case TS_ERR_CONFLICT: return "CONFLICT";
    case TS_ERR_INTERNAL: return "INTERNAL";
    default:              return "?";
    }
}

int
ts_valid_id(const char *s)
{
    size_t i;

    if (s == NULL || s[0] == '\0') {
        return 0;
    }
    for (i = 0; s[i] != '\0'; i++) {
        unsigned char c = (unsigned char) s[i];

        if (i >= TS_ID_MAX_B) {
            return 0;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
        {
            return 0;
        }
    }
    return 1;
}

int
ts_valid_filename(const char *s)
{
    size_t i;

    if (s == NULL || s[0] == '\0') {
        return 0;
    }
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
        return 0;
    }
    for (i = 0; s[i] != '\0'; i++) {
        unsigned char c = (unsigned char) s[i];

        if (i >= TS_NAME_MAX_B) {
            return 0;
        }
        if (c == '/' || c < 0x20 || c == 0x7f) {
            return 0;
        }
    }
    return 1;
}


int
ts_valid_new_filename(const char *s, char *why, size_t whysz)
{
    char  tmp[96];

    if (!ts_valid_filename(s)) {
        if (why != NULL && whysz > 0) {
            snprintf(why, whysz, "no '/', control characters, '.' or '..'");
        }
        return 0;
    }
    if (ts_esc_why(s, tmp, sizeof(tmp)) != 0) {
        if (why != NULL && whysz > 0) {
            snprintf(why, whysz, "%s", tmp);
        }
        return 0;
    }
    if (why != NULL && whysz > 0) {
        why[0] = '\0';
    }
    return 1;
}
