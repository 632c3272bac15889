/*
 * ts_tls.c -- TLS 1.3 sessions for ts_conn_t and the four link roles
 * (contexts, certificate checks, the TLS side of the connection ops).
 * See ts_tls.h for who checks what; the PKI files behind it (cluster CA,
 * tracker certificates, node identities) are made in ts_pki.c.
 *
 * Purpose: one place where OpenSSL's TLS is configured: TLS 1.3 only,
 * AES-128-GCM first (AES-NI/VAES make it the cheapest AEAD here), no
 * session tickets (nothing to resume, nothing to leak), partial writes so
 * event loops see write(2) semantics, read-ahead so one recv() takes
 * several records (into a buffer small enough, TS_TLS_READ_BUF_B, to stay
 * in cache until SSL_read copies the plaintext out), and file bytes sent
 * a batch of records per send(2) (ts_tls_batch.c).  Keys are Ed25519 (fast handshakes, small tickets).
 * Identity checks happen inside the handshake where the role allows it:
 * the tracker role of a tracker server (chain to the cluster CA, then
 * ts_pki_x509_tracker_role in the verify callback at depth 0; the id it
 * proves, or the id a tracker-to-tracker link dialled) and a pinned peer
 * fingerprint (the same place), so a wrong peer never gets to exchange
 * application data.  A tracker server accepts any client certificate
 * (nodes are self-signed) and decides afterwards, in
 * ts_conn_peer_tracker(), whether it is a CA-signed tracker certificate.
 *
 * Locking: SSL_CTXs are read-only after ts_tls_ctx_new() and may be shared
 * by threads; one SSL belongs to its connection's thread.  The last error
 * text is thread-local.
 * Crash behaviour: nothing persistent; a dead end's peer sees EOF/RST.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ts_config.h"
#include "ts_conn_int.h"
#include "ts_pki_int.h"
#include "ts_tls.h"

struct ts_tls_s {
    SSL_CTX       *ctx;
    ts_tls_role_t  role;
    X509_STORE    *ca;      /* TRACKER_SERVER: to recognise trackers */
};

#define TS_TLS_CIPHERS \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

static int           conn_idx = -1;     /* SSL ex_data: the ts_conn_t */
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void
tls_init_once(void)
{
    conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

const char *
ts_tls_last_error(void)
{
    return ts_pki_last_error();
}

int
ts_tls_enabled(void)
{
#ifdef TS_TLS_OFF
    return 0;
#else
    return 1;
#endif
}

/* ---- contexts -------------------------------------------------------- */

/* Accept-any callback for the roles whose peers are self-signed; the
 * pinned fingerprint (PEER_CLIENT) is checked here at depth 0. */
static int
verify_any(int ok, X509_STORE_CTX *sc)
{
    SSL              *ssl;
    struct ts_conn_s *c;
    X509             *x;
    uint8_t           fp[TS_FP_B];

    (void) ok;
    if (X509_STORE_CTX_get_error_depth(sc) != 0) {
        return 1;
    }
    ssl = X509_STORE_CTX_get_ex_data(sc,
                                     SSL_get_ex_data_X509_STORE_CTX_idx());
    c = ssl ? SSL_get_ex_data(ssl, conn_idx) : NULL;
    x = X509_STORE_CTX_get_current_cert(sc);
    if (c == NULL || x == NULL || ts_pki_x509_fp(x, fp) != 0) {
        return 0;
    }
    if (c->has_expect_fp && CRYPTO_memcmp(fp, c->expect_fp, TS_FP_B) != 0) {
        c->failed = 1;
        X509_STORE_CTX_set_error(sc, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return 1;
}

/*
 * The client end of a tracker link (TRACKER_CLIENT).  OpenSSL has built
 * and checked the chain to the cluster CA; at depth 0, once the chain
 * holds, the server must also carry the tracker role (ts_pki_role.c), and
 * its id comes from the certificate.  A link that dialled a given tracker
 * (tracker to tracker, `tracker --status`) also needs that id; a client
 * takes whichever tracker of the cluster answers.  A refusal is explained
 * in the thread's error text (reject_said) before the handshake fails.
 */
static int
verify_tracker(int ok, X509_STORE_CTX *sc)
{
    SSL              *ssl;
    struct ts_conn_s *c;
    X509             *x;
    char              why[200];
    int               id;

    if (!ok || X509_STORE_CTX_get_error_depth(sc) != 0) {
        return ok;              /* a chain error: io_fail explains it */
    }
    ssl = X509_STORE_CTX_get_ex_data(sc,
                                     SSL_get_ex_data_X509_STORE_CTX_idx());
    c = ssl ? SSL_get_ex_data(ssl, conn_idx) : NULL;
    x = X509_STORE_CTX_get_current_cert(sc);
    if (c == NULL || x == NULL) {
        return 0;
    }
    id = ts_pki_x509_tracker_role(x, X509_PURPOSE_SSL_SERVER, why,
                                  sizeof(why));
    if (id > 0 && c->expect_tracker > 0 && id != c->expect_tracker) {
        snprintf(why, sizeof(why), "it is tracker %d, not tracker %d", id,
                 c->expect_tracker);
        id = 0;
    }
    if (id == 0) {
        ts_pki_set_errf("peer certificate rejected: %s", why);
        c->reject_said = 1;
        X509_STORE_CTX_set_error(sc, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    c->peer_tracker = id;
    return 1;
}

ts_tls_t *
ts_tls_ctx_new(ts_tls_role_t role, const char *crt, const char *key,
               const char *ca, char *err, size_t errsz)
{
    ts_tls_t *t;
    int       server = role == TS_TLS_TRACKER_SERVER
                       || role == TS_TLS_PEER_SERVER;
    long      mode;

    pthread_once(&tls_once, tls_init_once);
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    t->role = role;
    t->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (t->ctx == NULL
        || !SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION)
        || !SSL_CTX_set_ciphersuites(t->ctx, TS_TLS_CIPHERS))
    {
        ts_pki_set_err("cannot create a TLS context", err, errsz);
        goto fail;
    }
    mode = SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
    if (role == TS_TLS_TRACKER_SERVER || role == TS_TLS_TRACKER_CLIENT) {
        mode |= SSL_MODE_RELEASE_BUFFERS;   /* many idle control links */
    } else {
        /* bulk data: one recv() takes several records */
        SSL_CTX_set_read_ahead(t->ctx, 1);
        SSL_CTX_set_default_read_buffer_len(t->ctx, TS_TLS_READ_BUF_B);
    }
    SSL_CTX_set_mode(t->ctx, mode);
    /* a peer that closes without close_notify reads as EOF: frames carry
     * their own lengths, so truncation is detected there */
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION
                                | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
    if (server) {
        SSL_CTX_set_num_tickets(t->ctx, 0);
    }
    if (crt != NULL && key != NULL) {
        if (ts_pki_key_private(key, err, errsz) != 0) {
            goto fail;
        }
        if (SSL_CTX_use_certificate_file(t->ctx, crt, SSL_FILETYPE_PEM) != 1
            || SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM)
               != 1
            || SSL_CTX_check_private_key(t->ctx) != 1)
        {
            ts_pki_set_err(crt, err, errsz);
            goto fail;
        }
    } else if (server) {
        snprintf(err, errsz, "a TLS server needs a certificate and a key");
        goto fail;
    }
    switch (role) {
    case TS_TLS_TRACKER_CLIENT:
        if (ca == NULL || SSL_CTX_load_verify_locations(t->ctx, ca, NULL)
                          != 1)
        {
            ts_pki_set_err(ca ? ca : "no CA file", err, errsz);
            goto fail;
        }
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, verify_tracker);
        break;
    case TS_TLS_TRACKER_SERVER:
        if (ca == NULL) {
            snprintf(err, errsz, "no CA file");
            goto fail;
        }
        t->ca = X509_STORE_new();
        if (t->ca == NULL || X509_STORE_load_file(t->ca, ca) != 1) {
            ts_pki_set_err(ca, err, errsz);
            goto fail;
        }
        /* ask for a certificate; any will do (nodes are self-signed) */
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, verify_any);
        break;
    case TS_TLS_PEER_SERVER:
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER
                           | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_any);
        break;
    case TS_TLS_PEER_CLIENT:
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, verify_any);
        break;
    default:
        snprintf(err, errsz, "bad TLS role");
        goto fail;
    }
    return t;

fail:
    ts_tls_ctx_free(t);
    return NULL;
}

void
ts_tls_ctx_free(ts_tls_t *t)
{
    if (t == NULL) {
        return;
    }
    SSL_CTX_free(t->ctx);
    X509_STORE_free(t->ca);
    free(t);
}

/* ---- connections ----------------------------------------------------- */

static ssize_t tls_read(struct ts_conn_s *c, void *buf, size_t n);
static ssize_t tls_write(struct ts_conn_s *c, const void *buf, size_t n);
static int     tls_pending(struct ts_conn_s *c);
static int     tls_handshake_step(struct ts_conn_s *c);
static void    tls_close(struct ts_conn_s *c);

/* the TLS transport (unused in a TS_TLS_OFF build) */
static const ts_conn_ops_t tls_ops __attribute__((unused)) = {
    tls_read, tls_write, tls_pending, ts_tls_sendfile,
    tls_handshake_step, tls_close, 1
};

ts_conn_t *
ts_conn_new_tls(int fd, ts_tls_t *t, int expect_tracker,
                const uint8_t *expect_fp)
{
#ifdef TS_TLS_OFF
    (void) t;
    (void) expect_tracker;
    (void) expect_fp;
    return ts_conn_new(fd);
#else
    ts_conn_t *c;
    int        server;

    if (t == NULL) {
        close(fd);
        errno = EINVAL;
        return NULL;
    }
    c = ts_conn_new(fd);        /* SIGPIPE, fd checks */
    if (c == NULL) {
        return NULL;
    }
    server = t->role == TS_TLS_TRACKER_SERVER || t->role == TS_TLS_PEER_SERVER;
    c->ssl = SSL_new(t->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1
        || SSL_set_ex_data(c->ssl, conn_idx, c) != 1)
    {
        ts_pki_set_err("cannot start a TLS session", NULL, 0);
        SSL_free(c->ssl);       /* NULL-safe */
        c->ssl = NULL;
        ts_conn_free(c);
        errno = ENOMEM;
        return NULL;
    }
    /* the socket BIO of the plain path is not used; keep the fd open
     * (SSL_set_fd made a NOCLOSE BIO, tls_close closes the fd) */
    BIO_set_close(c->bio, BIO_NOCLOSE);
    BIO_free_all(c->bio);
    c->bio = NULL;
    c->ops = &tls_ops;
    c->ready = 0;
    if (server) {
        SSL_set_accept_state(c->ssl);
    } else {
        SSL_set_connect_state(c->ssl);
    }
    c->strict = t->role == TS_TLS_TRACKER_CLIENT;   /* CA chain checked */
    if (t->role == TS_TLS_TRACKER_CLIENT && expect_tracker > 0) {
        c->expect_tracker = expect_tracker;     /* verify_tracker checks */
    }
    if (t->role == TS_TLS_PEER_CLIENT && expect_fp != NULL) {
        c->has_expect_fp = 1;
        memcpy(c->expect_fp, expect_fp, TS_FP_B);
    }
    c->want = server ? 1 : 2;
    /* remember the CA store for ts_conn_peer_tracker (server side) */
    if (t->role == TS_TLS_TRACKER_SERVER) {
        SSL_set_app_data(c->ssl, t);
    }
    return c;
#endif
}

/* after the handshake: who is the peer */
static int
after_handshake(struct ts_conn_s *c)
{
    X509           *x = SSL_get1_peer_certificate(c->ssl);
    ts_tls_t       *t = SSL_get_app_data(c->ssl);
    X509_STORE_CTX *sc;
    char            why[200];
    int             id, admin;

    c->ready = 1;
    if (x == NULL) {
        return 0;
    }
    if (ts_pki_x509_fp(x, c->peer_fp) == 0) {
        c->has_peer_fp = 1;
    }
    /* server side: a dialling tracker proves itself by the CA chain and
     * the tracker role (for client use); a node is known by its
     * fingerprint.  (The client side learnt peer_tracker in
     * verify_tracker.) */
    admin = t != NULL && t->ca != NULL
            && ts_pki_x509_admin_role(x, why, sizeof(why));
    if (t != NULL && t->ca != NULL
        && (ts_pki_x509_tracker_id(x) > 0 || admin))
    {
        sc = X509_STORE_CTX_new();
        if (sc != NULL && X509_STORE_CTX_init(sc, t->ca, x, NULL) == 1
            && X509_verify_cert(sc) == 1)
        {
            /* an operator's certificate (the admin role) is no tracker */
            id = admin ? 0 : ts_pki_x509_tracker_role(
                     x, X509_PURPOSE_SSL_CLIENT, why, sizeof(why));
            c->peer_tracker = id;
            c->peer_admin = admin;
        }
        X509_STORE_CTX_free(sc);
        ERR_clear_error();
    }
    X509_free(x);
    return 0;
}

/* maps a failed SSL call to errno / return value; sets c->want */
static ssize_t
io_fail(struct ts_conn_s *c, int rc, int is_read)
{
    int  e = SSL_get_error(c->ssl, rc);
    long vr;
    char why[160];

    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->want = 1;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        c->want = 2;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        if (is_read) {
            return 0;
        }
        errno = EPIPE;
        return -1;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0 && (errno == 0 || errno == EAGAIN)) {
            /* EOF without close_notify */
            if (is_read) {
                return 0;
            }
            errno = ECONNRESET;
            return -1;
        }
        if (errno == 0) {
            errno = EIO;
        }
        ts_pki_set_err("TLS", NULL, 0);
        return -1;
    default:
        vr = SSL_get_verify_result(c->ssl);
        if (c->failed) {
            ts_pki_set_errf("peer certificate does not "
                     "match the fingerprint the tracker gave");
            ERR_clear_error();
            errno = EPERM;
        } else if (c->reject_said && c->strict) {
            ERR_clear_error();          /* verify_tracker said why */
            errno = EPERM;
        } else if (vr != X509_V_OK && !SSL_is_init_finished(c->ssl)
                   && c->strict)
        {
            ts_pki_set_errf("peer certificate rejected: %s",
                            ts_pki_chain_reason(vr, why, sizeof(why)));
            ERR_clear_error();
            errno = EPERM;
        } else {
            ts_pki_set_err("TLS", NULL, 0);
            errno = EPROTO;
        }
        c->failed = 1;
        return -1;
    }
}

/* before an SSL call: a link whose identity check failed stays failed */
static int
tls_begin(struct ts_conn_s *c)
{
    if (c->failed) {
        errno = EPERM;
        return -1;
    }
    if (ERR_peek_error() != 0) {
        ERR_clear_error();      /* (clearing an empty queue costs more) */
    }
    errno = 0;
    return 0;
}

/* SSL_read_ex or SSL_write_ex with the ts_conn_read/ts_conn_write
 * contract; the handshake moves on inside either */
static ssize_t
tls_io(struct ts_conn_s *c, void *buf, size_t n, int is_write)
{
    size_t done = 0;
    int    rc;

    if (tls_begin(c) != 0) {
        return -1;
    }
    rc = is_write ? SSL_write_ex(c->ssl, buf, n, &done)
                  : SSL_read_ex(c->ssl, buf, n, &done);
    if (!c->ready && SSL_is_init_finished(c->ssl)) {
        after_handshake(c);
    }
    if (rc == 1) {
        return (ssize_t) done;
    }
    return io_fail(c, rc, !is_write);
}

static ssize_t
tls_read(struct ts_conn_s *c, void *buf, size_t n)
{
    return tls_io(c, buf, n, 0);
}

static ssize_t
tls_write(struct ts_conn_s *c, const void *buf, size_t n)
{
    int rc = ts_tls_batch_flush(c);     /* records sendfile left first */

    if (rc <= 0) {
        return -1;                      /* EAGAIN (want set) or error */
    }
    return tls_io(c, (void *) buf, n, 1);
}

static int
tls_handshake_step(struct ts_conn_s *c)
{
    int rc;

    if (tls_begin(c) != 0) {
        return -1;
    }
    rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        if (!c->ready) {
            after_handshake(c);
        }
        return 1;
    }
    if (io_fail(c, rc, 0) < 0 && errno == EAGAIN) {
        return 0;
    }
    if (errno == 0 || errno == EPIPE) {
        errno = ECONNRESET;
    }
    return -1;
}

static int
tls_pending(struct ts_conn_s *c)
{
    int n = SSL_pending(c->ssl);

    if (n > 0) {
        return n;
    }
    return SSL_has_pending(c->ssl) ? 1 : 0;
}

static void
tls_close(struct ts_conn_s *c)
{
    /* no close_notify round trip: the fd may be non-blocking and the peer
     * gone; the frame layer knows where messages end */
    SSL_free(c->ssl);
    c->ssl = NULL;
    ts_tls_batch_free(c);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

int
ts_conn_peer_fp(const ts_conn_t *c, uint8_t fp[TS_FP_B])
{
    if (c == NULL || !c->ready || !c->has_peer_fp) {
        memset(fp, 0, TS_FP_B);
        return -1;
    }
    memcpy(fp, c->peer_fp, TS_FP_B);
    return 0;
}

int
ts_conn_peer_admin(const ts_conn_t *c)
{
    return c != NULL && c->ready ? c->peer_admin : 0;
}


int
ts_conn_peer_tracker(const ts_conn_t *c)
{
    return c != NULL && c->ready ? c->peer_tracker : 0;
}
