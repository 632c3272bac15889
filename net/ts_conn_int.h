/*
 * ts_conn_int.h -- the private layout of ts_conn_t, shared by the three
 * files that implement it: ts_net.c (plain sockets, deadlines, frames),
 * ts_tls.c (TLS sessions) and ts_net_sendfile.c (chunk sending).  Nothing
 * else includes this; callers only see ts_net.h and ts_tls.h.
 *
 * Locking: none; a ts_conn_t belongs to one thread.
 * Crash behaviour: nothing persistent.
 */
#ifndef TS_CONN_INT_H_INCLUDED
#define TS_CONN_INT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>

struct ts_conn_s {
    int       fd;
    BIO      *bio;          /* plain connection: socket BIO (else NULL) */
    SSL      *ssl;          /* TLS connection (else NULL) */
    int       want;         /* after EAGAIN: 1 readable, 2 writable */
    int       ready;        /* application data can flow */
    int       failed;       /* identity check failed: errno EPERM */
    int       strict;       /* the handshake verifies a CA chain */
    int       expect_tracker;       /* TRACKER_CLIENT: server must be N */
    int       has_expect_fp;
    uint8_t   expect_fp[32];
    int       has_peer_fp;
    uint8_t   peer_fp[32];
    int       peer_tracker;         /* CA-signed tracker id, else 0 */
    uint8_t  *stage;                /* sendfile over TLS: pread buffer */
    size_t    stage_len, stage_pos;
};

/* ts_tls.c: I/O on a TLS connection, same contract as ts_conn_read /
 * ts_conn_write; pending bytes inside the TLS layer; teardown. */
ssize_t ts_tls_read(struct ts_conn_s *c, void *buf, size_t n);
ssize_t ts_tls_write(struct ts_conn_s *c, const void *buf, size_t n);
int     ts_tls_pending(struct ts_conn_s *c);
void    ts_tls_conn_free(struct ts_conn_s *c);
/* One non-blocking handshake step: 1 done, 0 again (c->want set), -1
 * failed (errno EPROTO, EPERM for a wrong identity, ECONNRESET). */
int     ts_tls_handshake_step(struct ts_conn_s *c);

#endif
