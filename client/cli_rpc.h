/*
 * cli_rpc.h -- the client's request/reply link to the trackers.
 *
 * One cli_rpc_t = the tracker list, the index of the tracker in use, one
 * persistent connection to it and a request-id generator (random 64-bit
 * start, +1 per logical request).  A logical request keeps its id across
 * retries and failover, so a tracker applies a write at most once.
 *
 * Every connection is TLS (TS_TLS_TRACKER_CLIENT): the tracker must show
 * a certificate of the cluster CA with the tracker role; which tracker it
 * is comes from that certificate (cli_rpc_current_id), not from its line
 * in tracker_info.txt, so a client may list any subset of the cluster in
 * any order.  We present the node certificate (the tracker takes our
 * node identity from it).  The context is process-wide, set once by
 * cli_rpc_tls_init() before any instance connects; a failed handshake
 * (another CA, a node's certificate, not TLS) makes that address
 * unusable for the attempt, is logged once per address with its reason,
 * and failover goes on.
 *
 * Locking: every call takes rpc->mu, so one cli_rpc_t may be shared by
 * threads (requests are then serialised); the heartbeat thread uses its
 * own instance so it never waits behind a slow command.  The TLS context
 * is read-only after cli_rpc_tls_init().
 * Crash behaviour: nothing persistent.  A tracker dying mid-request looks
 * like EOF or a timeout: the call moves to the next tracker and resends
 * the same request id.
 */
#ifndef CLI_RPC_H_INCLUDED
#define CLI_RPC_H_INCLUDED

#include <pthread.h>
#include <stdint.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "ts_proto.h"
#include "ts_net.h"
#include "ts_trackers.h"

typedef struct {
    pthread_mutex_t  mu;
    ts_trackers_t    trk;
    int              cur;           /* index into trk.t */
    ts_conn_t       *conn;          /* to trk.t[cur], or NULL */
    int              known_id[TS_TRACKERS_MAX_N];
                                    /* tracker id the certificate at
                                     * trk.t[i] proved last, 0 if none */
    uint64_t         next_reqid;
    int              log_failover;  /* 1: info line at each failover */
} cli_rpc_t;

typedef struct {
    ts_status_t  status;
    char         msg[TS_STR_MAX_B + 1];   /* "" when OK */
    uint8_t     *payload;                 /* whole reply payload (malloc) */
    uint32_t     len;
    ts_rbuf_t    body;                    /* positioned after the head */
} cli_reply_t;

/* Creates the process-wide TLS context: crt/key = the node certificate,
 * ca = the cluster CA.  Main thread, before any thread.  0, or -1 with
 * err.  Without it, links are plain (unit tests only). */
int  cli_rpc_tls_init(const char *crt, const char *key, const char *ca,
                      char *err, size_t errsz);
void cli_rpc_tls_free(void);

/* prefer: index (0-based) of the first tracker to use; clamped. */
int  cli_rpc_init(cli_rpc_t *rpc, const ts_trackers_t *trk, int prefer);
void cli_rpc_destroy(cli_rpc_t *rpc);
/* Drops the connection (the next call reconnects). */
void cli_rpc_disconnect(cli_rpc_t *rpc);
/* Index of the tracker in use (to point a second instance at it). */
int  cli_rpc_current(cli_rpc_t *rpc);
/* Id of the tracker the open connection reaches, as its certificate
 * says (not its line in tracker_info.txt); 0 when not connected. */
int  cli_rpc_current_id(cli_rpc_t *rpc);

/* One logical request with failover: up to TS_RPC_ATTEMPTS_N attempts,
 * each waiting TS_RPC_TIMEOUT_MS (TS_RPC_KDF_TIMEOUT_MS for CREATE_USER
 * and LOGIN).  Returns 0 when a reply arrived (any status; a TS_ERR_BUSY
 * reply is returned only if every attempt was busy), -1 when no tracker
 * answered (rep->msg says why).  Free rep with cli_reply_free(). */
int  cli_rpc_call(cli_rpc_t *rpc, uint8_t type, const void *payload,
                  uint32_t len, cli_reply_t *rep);
/* Same with explicit limits: attempts >= 1, timeout_ms per attempt
 * (0 = the default for the type). */
int  cli_rpc_call_ex(cli_rpc_t *rpc, uint8_t type, const void *payload,
                     uint32_t len, cli_reply_t *rep, int attempts,
                     int timeout_ms);
void cli_reply_free(cli_reply_t *rep);

#endif
