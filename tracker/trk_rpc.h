/*
 * trk_rpc.h -- one blocking request/reply over a tracker-to-tracker link.
 */
#ifndef TRK_RPC_H_INCLUDED
#define TRK_RPC_H_INCLUDED

#include <stdint.h>
#include "ts_buf.h"
#include "ts_net.h"
#include "ts_proto.h"

/* Sends one request of type with payload req and waits for its reply
 * (TS_SYNC_RPC_TIMEOUT_MS each way); on OK *body is the reply body
 * (inside *frame, which the caller frees).  0 ok, -1 link error, -2 the
 * peer refused (status != OK, logged). */
/* A request sent now and its reply read later (pipelining: replies come
 * in request order). */
int trk_rpc_send(ts_conn_t *c, uint8_t type, const ts_wbuf_t *req,
                 uint64_t *reqid);
int trk_rpc_recv(ts_conn_t *c, uint8_t type, uint64_t reqid,
                 uint8_t **frame, ts_rbuf_t *body);
int trk_rpc_call(ts_conn_t *c, uint8_t type, const ts_wbuf_t *req,
                 uint8_t **frame, ts_rbuf_t *body);

#endif
