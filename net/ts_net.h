/*
 * ts_net.h -- sockets and the one connection layer every link uses.
 *
 * All network I/O of Tessera goes through ts_conn_t: a socket with a
 * transport, plain (ts_conn_new) or TLS (ts_conn_new_tls, ts_tls.h); the
 * calls are the same for both.  Two styles:
 *   - non-blocking (event loops): ts_conn_read/ts_conn_write return -1
 *     with errno EAGAIN when they would block;
 *   - blocking with a deadline (clients, tools): *_full and the frame
 *     helpers poll(2) with a total timeout; they never hang.
 * A ts_conn_t belongs to one thread.  No shared state, nothing survives a
 * crash (the peer sees EOF/RST and retries).
 */
#ifndef TS_NET_H_INCLUDED
#define TS_NET_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "ts_addr.h"    /* ts_parse_hostport */
#include "ts_proto.h"

typedef struct ts_conn_s ts_conn_t;


/* Listening socket, non-blocking, SO_REUSEADDR; -1 with errno on error. */
int ts_net_listen(const char *ip, uint16_t port, int backlog);
/* Connect with a timeout; returns a blocking fd with TCP_NODELAY set, or
 * -1 (errno ETIMEDOUT, ECONNREFUSED, ...). */
int ts_net_connect(const char *ip, uint16_t port, int timeout_ms);
/* The two halves of a non-blocking connect, for event loops:
 * ts_net_connect_start returns a non-blocking fd whose connect is under
 * way (wait for it to become writable), or -1 with errno;
 * ts_net_connect_finish, once it is writable: 0 (connected, TCP_NODELAY
 * set, still non-blocking) or -1 with errno (ECONNREFUSED, ...). */
int ts_net_connect_start(const char *ip, uint16_t port);
int ts_net_connect_finish(int fd);
int ts_net_set_nonblock(int fd, int on);

/* Takes ownership of fd (closed by ts_conn_free). NULL on OOM; the fd
 * is closed then too. */
ts_conn_t *ts_conn_new(int fd);
void       ts_conn_free(ts_conn_t *c);
int        ts_conn_fd(const ts_conn_t *c);
/* Bytes already buffered inside the transport (0 for a plain socket; TLS
 * may hold decrypted bytes poll(2) cannot see).  Event loops read
 * again while this is > 0 before going back to poll. */
int        ts_conn_pending(ts_conn_t *c);

/* Blocking handshake with a deadline: 0, or -1 with errno ETIMEDOUT,
 * EPROTO (not TLS, bad certificate), EPERM (wrong identity),
 * ECONNRESET.  A plain connection returns 0 at once. */
int ts_conn_handshake(ts_conn_t *c, int timeout_ms);
/* One non-blocking handshake step, for event loops: 1 done (always for a
 * plain connection), 0 again (wait as ts_conn_want() says), -1 failed
 * (errno as for ts_conn_handshake, never ETIMEDOUT). */
int ts_conn_handshake_step(ts_conn_t *c);
/* 1 when application data can flow (always 1 for a plain connection). */
int ts_conn_ready(const ts_conn_t *c);
/* After an EAGAIN: 1 = wait for readable, 2 = wait for writable. */
int ts_conn_want(const ts_conn_t *c);
/* 1 if this connection is TLS. */
int ts_conn_is_tls(const ts_conn_t *c);

/* Raw I/O: >0 bytes, 0 = EOF (read only), -1 = error (errno EAGAIN if
 * the socket is non-blocking and would block). */
ssize_t ts_conn_read(ts_conn_t *c, void *buf, size_t n);
ssize_t ts_conn_write(ts_conn_t *c, const void *buf, size_t n);

/* sendfile(2) of n bytes of in_fd from *off (advanced) to the connection.
 * Non-blocking like ts_conn_write: >0 bytes sent, 0 = in_fd has no bytes
 * at *off (file shrank), -1 = error (errno EAGAIN if the socket would
 * block).  Over TLS the bytes are staged through a buffer and sent a
 * batch of records at a time (ts_tls_batch.c); a return counts bytes
 * whose records have left.  Defined in ts_net_sendfile.c. */
ssize_t ts_conn_sendfile(ts_conn_t *c, int in_fd, off_t *off, size_t n);

/* Deadline helpers: 0 on success, -1 on error/EOF/timeout (errno
 * ETIMEDOUT on timeout, ECONNRESET on EOF). */
int ts_conn_read_full(ts_conn_t *c, void *buf, size_t n, int timeout_ms);
int ts_conn_write_full(ts_conn_t *c, const void *buf, size_t n, int timeout_ms);

/* Send one frame.  0 or -1. */
int ts_conn_send_frame(ts_conn_t *c, uint8_t type, uint8_t flags,
                       uint64_t reqid, const void *payload, uint32_t len,
                       int timeout_ms);
/* Receive one frame within timeout_ms; *payload is malloc'd (free it;
 * NULL when len is 0).  A header over max_payload fails with EMSGSIZE
 * before anything is allocated; a bad header fails with EPROTO. */
int ts_conn_recv_frame(ts_conn_t *c, ts_frame_hdr_t *h, uint8_t **payload,
                       uint32_t max_payload, int timeout_ms);


#endif
