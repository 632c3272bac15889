/*
 * ts_tls_batch.c -- ts_conn_sendfile over TLS: file bytes are encrypted
 * a batch of records at a time and each batch leaves in one send(2).
 *
 * Purpose: TLS 1.3 records carry at most 16 KiB, and SSL_write with
 * partial writes sends each record with its own write(2); on a busy data
 * link that is one syscall and one TCP segment (and one wakeup of the
 * receiver) per 16 KiB.  Here the bytes are pread() into the
 * connection's staging buffer (TS_TLS_STAGE_B), SSL_write encrypts them
 * record by record into a private memory BIO (the connection's batch
 * buffer) instead of the socket, and the whole batch is sent at once.
 * The records are the ones SSL_write makes for the socket, in the same
 * order: only where the ciphertext waits changes.
 *
 * Contract (that of sendfile(2), see ts_net.h): *off and the return
 * value (at most n) count file bytes whose record has completely left; a
 * record half sent counts nothing yet, so the caller keeps calling until
 * the chunk's last record is out and never writes a frame in between.  A batch not
 * yet sent is flushed first by the next sendfile or ts_conn_write on the
 * connection (tls_write calls ts_tls_batch_flush), so no later byte can
 * overtake it.  Before the handshake ends, or when SSL_write fails, the
 * plain staged path (ts_conn_sendfile_staged) gives the usual errors.
 *
 * Locking: none; a ts_conn_t belongs to one thread.  The BIO method is
 * made once (pthread_once) and read-only afterwards.
 * Crash behaviour: nothing persistent; a dead sender's peer sees EOF/RST
 * and a truncated record, which its TLS layer rejects.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "ts_config.h"
#include "ts_conn_int.h"
#include "ts_net.h"

/* room one SSL_write must find in the batch buffer: one full record
 * (16 KiB, header, type byte, tag) with slack for a small handshake
 * message OpenSSL may put before it (a TLS 1.3 KeyUpdate answer) */
#define BATCH_RECORD_ROOM_B  (16384u + 2048u)
#define BATCH_B              (TS_TLS_STAGE_B + 2u * BATCH_RECORD_ROOM_B)

static BIO_METHOD     *batch_meth;
static pthread_once_t  batch_once = PTHREAD_ONCE_INIT;

/* the memory BIO: appends what SSL writes to the connection's batch */
static int
batch_write(BIO *b, const char *in, int inl)
{
    struct ts_conn_s *c = BIO_get_data(b);

    BIO_clear_retry_flags(b);
    if (c == NULL || inl < 0 || (size_t) inl > BATCH_B - c->batch_len) {
        return -1;              /* cannot happen: room is checked first */
    }
    memcpy(c->batch + c->batch_len, in, (size_t) inl);
    c->batch_len += (size_t) inl;
    return inl;
}

static long
batch_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void) b;
    (void) num;
    (void) ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
batch_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void
batch_meth_once(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "tessera TLS batch");

    if (m != NULL && (BIO_meth_set_write(m, batch_write) != 1
                      || BIO_meth_set_ctrl(m, batch_ctrl) != 1
                      || BIO_meth_set_create(m, batch_create) != 1))
    {
        BIO_meth_free(m);
        m = NULL;
    }
    batch_meth = m;
}

/* the batch buffer and its BIO, made on first use; 0 or -1 */
static int
batch_setup(struct ts_conn_s *c)
{
    if (c->batch_bio != NULL) {
        return 0;
    }
    pthread_once(&batch_once, batch_meth_once);
    if (batch_meth == NULL) {
        return -1;
    }
    c->batch = malloc(BATCH_B);
    c->batch_bio = c->batch ? BIO_new(batch_meth) : NULL;
    if (c->batch_bio == NULL) {
        free(c->batch);
        c->batch = NULL;
        return -1;
    }
    BIO_set_data(c->batch_bio, c);
    c->batch_len = c->batch_off = c->batch_unsaid = 0;
    c->rec_head = c->rec_n = 0;
    return 0;
}

void
ts_tls_batch_free(struct ts_conn_s *c)
{
    BIO_free(c->batch_bio);     /* NULL-safe */
    c->batch_bio = NULL;
    free(c->batch);
    c->batch = NULL;
}

/* Sends what the batch holds; *plain: the file bytes of the records that
 * completed now.  1 all sent, 0 some left (EAGAIN), -1 error (errno). */
static int
batch_send(struct ts_conn_s *c, size_t *plain)
{
    ssize_t w;

    *plain = 0;
    while (c->batch_off < c->batch_len) {
        w = send(c->fd, c->batch + c->batch_off, c->batch_len - c->batch_off,
                 MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            if (errno == EWOULDBLOCK) {
                errno = EAGAIN;
            }
            break;
        }
        c->batch_off += (size_t) w;
    }
    while (c->rec_head < c->rec_n
           && c->rec_end[c->rec_head] <= c->batch_off)
    {
        *plain += c->rec_plain[c->rec_head++];
    }
    if (c->batch_off >= c->batch_len) {
        c->batch_len = c->batch_off = 0;
        c->rec_head = c->rec_n = 0;
        return 1;
    }
    if (errno == EAGAIN) {
        c->want = 2;
        return 0;
    }
    return -1;
}

int
ts_tls_batch_flush(struct ts_conn_s *c)
{
    size_t plain;
    int    rc;

    if (c->batch_len == 0) {
        return 1;
    }
    rc = batch_send(c, &plain);
    /* bytes counted here were never reported by sendfile: a caller that
     * writes a frame now has given up on its chunk (the link closes) */
    if (rc == 0) {
        errno = EAGAIN;
    }
    return rc;
}

/* SSL_write the staged bytes [stage_pos, stage_pos + want) into the
 * batch, record by record: the plain bytes taken (0: nothing could be
 * encrypted) */
static size_t
batch_fill(struct ts_conn_s *c, size_t want)
{
    BIO    *sock = SSL_get_rbio(c->ssl);
    size_t  took = 0, done;

    if (sock == NULL || !BIO_up_ref(c->batch_bio)) {
        return 0;
    }
    SSL_set0_wbio(c->ssl, c->batch_bio);
    while (took < want && c->rec_n < TS_TLS_BATCH_REC_N
           && BATCH_B - c->batch_len >= BATCH_RECORD_ROOM_B)
    {
        done = 0;
        if (SSL_write_ex(c->ssl, c->stage + c->stage_pos + took, want - took,
                         &done) != 1 || done == 0)
        {
            break;
        }
        took += done;
        c->rec_end[c->rec_n] = c->batch_len;
        c->rec_plain[c->rec_n++] = (uint32_t) done;
    }
    if (BIO_up_ref(sock)) {
        SSL_set0_wbio(c->ssl, sock);     /* drops SSL's batch reference */
    }
    if (took == 0) {
        c->batch_len = 0;       /* an alert of a failing write, if any:
                                 * the staged path below writes again */
        c->rec_n = c->rec_head = 0;
    }
    c->stage_pos += took;
    return took;
}

ssize_t
ts_tls_sendfile(struct ts_conn_s *c, int in_fd, off_t *off, size_t n)
{
    size_t  plain = 0;
    ssize_t r;
    int     rc = 1;

    if (c->batch_len == 0 && c->batch_unsaid == 0) {
        if (!c->ready || c->failed || batch_setup(c) != 0) {
            return ts_conn_sendfile_staged(c, in_fd, off, n);
        }
        r = ts_conn_stage_fill(c, in_fd, *off, n);
        if (r <= 0) {
            return r;           /* 0: the file has no bytes at *off */
        }
        if (ERR_peek_error() != 0) {
            ERR_clear_error();
        }
        if (batch_fill(c, (size_t) r) == 0) {
            return ts_conn_sendfile_staged(c, in_fd, off, n);
        }
        if (c->stage_pos >= c->stage_len) {
            c->stage_pos = c->stage_len = 0;
        }
    }
    if (c->batch_len > 0) {
        rc = batch_send(c, &plain);
        c->batch_unsaid += plain;
    }
    /* never more than this call's n (an upload cap may have shrunk since
     * the batch was made): the rest is told by the next call */
    plain = c->batch_unsaid < n ? c->batch_unsaid : n;
    c->batch_unsaid -= plain;
    *off += (off_t) plain;
    if (plain > 0) {
        return (ssize_t) plain;
    }
    if (rc == 0) {
        errno = EAGAIN;
    }
    return -1;
}
