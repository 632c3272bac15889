/*
 * trk_rpc.c -- one blocking request/reply over a tracker-to-tracker link
 * (the sync process's links and `tracker --status`).
 *
 * Purpose: send one request frame and wait for its reply, within
 * TS_SYNC_RPC_TIMEOUT_MS each way; check that the reply answers this
 * request and parse its status.  The sync process may also send a
 * request before reading the previous one's reply (trk_rpc_send, then
 * trk_rpc_recv): a worker answers a link's requests in order.
 *
 * Locking: none; the caller owns the link.
 *
 * Crash behaviour: nothing kept; a broken link is the caller's to drop.
 */
#include "ts_crypto.h"
#include "ts_log.h"
#include "trk_rpc.h"

/* Sends one request without waiting: *reqid names its reply.  0 / -1. */
int
trk_rpc_send(ts_conn_t *c, uint8_t type, const ts_wbuf_t *req,
             uint64_t *reqid)
{
    *reqid = ts_random_u64();
    if (req->err || ts_conn_send_frame(c, type, 0, *reqid, req->data,
                                       (uint32_t) req->len,
                                       TS_SYNC_RPC_TIMEOUT_MS) != 0)
    {
        return -1;
    }
    return 0;
}


/* Reads the reply to the request reqid of type (replies come in request
 * order on a link); on OK *body gets the reply body (inside *frame,
 * which the caller frees).  0 ok, -1 link error, -2 refused. */
int
trk_rpc_recv(ts_conn_t *c, uint8_t type, uint64_t reqid, uint8_t **frame,
             ts_rbuf_t *body)
{
    ts_frame_hdr_t h;
    ts_status_t    s;
    char           msg[256];

    *frame = NULL;
    if (ts_conn_recv_frame(c, &h, frame, TS_FRAME_MAX_B,
                           TS_SYNC_RPC_TIMEOUT_MS) != 0)
    {
        return -1;
    }
    if (h.type != TS_MSG_REPLY || h.reqid != reqid) {
        return -1;
    }
    ts_rbuf_init(body, *frame, h.len);
    if (ts_reply_parse(body, &s, msg, sizeof(msg)) != 0) {
        return -1;
    }
    if (s != TS_OK) {
        ts_warn("tracker refused %s: %s", ts_msg_name(type), msg);
        return -2;
    }
    return 0;
}


/* Sends one request and waits for its reply (trk_rpc_send, then
 * trk_rpc_recv). */
int
trk_rpc_call(ts_conn_t *c, uint8_t type, const ts_wbuf_t *req, uint8_t **frame,
             ts_rbuf_t *body)
{
    uint64_t reqid;

    *frame = NULL;
    if (trk_rpc_send(c, type, req, &reqid) != 0) {
        return -1;
    }
    return trk_rpc_recv(c, type, reqid, frame, body);
}
