/*
 * ts_conn_int.h -- the private layout of ts_conn_t, shared by the three
 * files that implement it: ts_net.c (plain sockets, deadlines, frames),
 * ts_tls.c (TLS sessions) and ts_net_sendfile.c (chunk sending), and the
 * transport ops table each kind of connection fills in.  Nothing
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

#include "ts_config.h"

struct ts_conn_s;

/*
 * What a transport does; the plain socket (ts_net.c) and TLS (ts_tls.c)
 * each fill one in.  read/write/sendfile: the contracts of ts_conn_read,
 * ts_conn_write and ts_conn_sendfile (c->want set after EAGAIN).
 * pending: bytes buffered inside the transport that poll(2) cannot see.
 * handshake: one non-blocking step: 1 done, 0 again (c->want set), -1
 * failed (errno EPROTO, EPERM for a wrong identity, ECONNRESET).
 * close: frees the transport's state and closes c->fd (not c itself).
 */
typedef struct ts_conn_ops_s {
    ssize_t (*read)(struct ts_conn_s *c, void *buf, size_t n);
    ssize_t (*write)(struct ts_conn_s *c, const void *buf, size_t n);
    int     (*pending)(struct ts_conn_s *c);
    ssize_t (*sendfile)(struct ts_conn_s *c, int in_fd, off_t *off,
                        size_t n);
    int     (*handshake)(struct ts_conn_s *c);
    void    (*close)(struct ts_conn_s *c);
    int       is_tls;
} ts_conn_ops_t;

struct ts_conn_s {
    const ts_conn_ops_t *ops;
    int       fd;
    BIO      *bio;          /* plain connection: socket BIO (else NULL) */
    SSL      *ssl;          /* TLS connection (else NULL) */
    int       want;         /* after EAGAIN: 1 readable, 2 writable */
    int       ready;        /* application data can flow */
    int       failed;       /* identity check failed: errno EPERM */
    int       strict;       /* the handshake verifies a CA chain */
    int       expect_tracker;       /* TRACKER_CLIENT: server must be N
                                     * (0: any tracker of the CA) */
    int       reject_said;          /* the verify callback set the error
                                     * text of a refused certificate */
    int       has_expect_fp;
    uint8_t   expect_fp[32];
    int       has_peer_fp;
    uint8_t   peer_fp[32];
    int       peer_tracker;         /* CA-signed tracker id, else 0 */
    int       peer_admin;           /* CA-signed admin certificate */
    uint8_t  *stage;                /* sendfile over TLS: pread buffer */
    size_t    stage_len, stage_pos;
    /* sendfile over TLS (ts_tls_batch.c): records encrypted into batch
     * and not yet sent; record i ends at batch offset rec_end[i] and
     * carries rec_plain[i] file bytes */
    BIO      *batch_bio;
    uint8_t  *batch;
    size_t    batch_len, batch_off;
    size_t    batch_unsaid;         /* file bytes sent, not yet returned */
    uint32_t  rec_end[TS_TLS_BATCH_REC_N];
    uint32_t  rec_plain[TS_TLS_BATCH_REC_N];
    int       rec_head, rec_n;
};

/* ts_net_sendfile.c: sendfile(2) straight to the socket (plain), and the
 * staged copy through ts_conn_write for transports that must see the
 * bytes (TLS). */
ssize_t ts_conn_sendfile_direct(struct ts_conn_s *c, int in_fd, off_t *off,
                                size_t n);
ssize_t ts_conn_sendfile_staged(struct ts_conn_s *c, int in_fd, off_t *off,
                                size_t n);
/* the stage holds file bytes from off on (pread() when it is used up):
 * how many of them (at most n) start at stage_pos; 0 the file has no
 * bytes at off, -1 error (errno) */
ssize_t ts_conn_stage_fill(struct ts_conn_s *c, int in_fd, off_t off,
                           size_t n);

/* ts_tls_batch.c: the TLS sendfile (a batch of records per send), the
 * flush of a batch not yet sent (1 empty, 0 EAGAIN, -1 error) that every
 * TLS write does first, and freeing the batch (tls_close). */
ssize_t ts_tls_sendfile(struct ts_conn_s *c, int in_fd, off_t *off,
                        size_t n);
int     ts_tls_batch_flush(struct ts_conn_s *c);
void    ts_tls_batch_free(struct ts_conn_s *c);

#endif
