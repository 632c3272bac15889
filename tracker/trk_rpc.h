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
int trk_rpc_call(ts_conn_t *c, uint8_t type, const ts_wbuf_t *req,
                 uint8_t **frame, ts_rbuf_t *body);

#endif
