/*
 * ts_tls.c -- TLS 1.3 sessions for ts_conn_t, the four link roles, and the
 * PKI files behind them (cluster CA, tracker certificates, node
 * identities).  See ts_tls.h for who checks what.
 *
 * Purpose: one place where OpenSSL's TLS is configured: TLS 1.3 only,
 * AES-128-GCM first (AES-NI/VAES make it the cheapest AEAD here), no
 * session tickets (nothing to resume, nothing to leak), partial writes so
 * event loops see write(2) semantics, read-ahead so one recv() takes
 * several records.  Keys are Ed25519 (fast handshakes, small tickets).
 * Identity checks happen inside the handshake where the role allows it:
 * the tracker name (SSL_set1_host on "tessera-tracker-N") and a pinned
 * peer fingerprint (the verify callback at depth 0), so a wrong peer
 * never gets to exchange application data.  A tracker server accepts any
 * client certificate (nodes are self-signed) and decides afterwards, in
 * ts_conn_peer_tracker(), whether it is a CA-signed tracker certificate.
 *
 * Locking: SSL_CTXs are read-only after ts_tls_ctx_new() and may be shared
 * by threads; one SSL belongs to its connection's thread.  The last error
 * text is thread-local.  PKI creation takes flock(<dir>/.lock) so that
 * trackers started together create one CA.
 * Crash behaviour: PEM files are written to a temp file, fsynced and
 * renamed (keys 0600), then the directory is fsynced; a kill leaves the
 * old state or the new one, at worst a stale temp file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ts_config.h"
#include "ts_conn_int.h"
#include "ts_tls.h"

struct ts_tls_s {
    SSL_CTX       *ctx;
    ts_tls_role_t  role;
    X509_STORE    *ca;      /* TRACKER_SERVER: to recognise trackers */
};

#define TS_TLS_CIPHERS \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TS_TLS_TRACKER_CN  "tessera-tracker-"
#define TS_TLS_NODE_CN     "tessera-node"

static __thread char tls_err[256];
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
    return tls_err;
}

/* records the OpenSSL error queue (or what) as this thread's last error */
static void
set_err(const char *what, char *err, size_t errsz)
{
    unsigned long e = ERR_peek_last_error();
    char          buf[160];

    buf[0] = '\0';
    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
    }
    snprintf(tls_err, sizeof(tls_err), "%s%s%s", what, buf[0] ? ": " : "",
             buf);
    ERR_clear_error();
    if (err != NULL && errsz > 0) {
        snprintf(err, errsz, "%s", tls_err);
    }
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

/* ---- PKI files ------------------------------------------------------ */

static int
file_exists(const char *p)
{
    struct stat st;

    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int
fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0) {
        return -1;
    }
    (void) fsync(fd);
    close(fd);
    return 0;
}

/* writes key (if key) or cert as PEM to path atomically */
static int
write_pem(const char *dir, const char *path, EVP_PKEY *key, X509 *crt)
{
    char  tmp[PATH_MAX];
    FILE *f;
    int   fd, ok;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long) getpid())
        >= (int) sizeof(tmp))
    {
        errno = ENAMETOOLONG;
        return -1;
    }
    /* a fresh file of our own: never one left there (or linked there)
     * with another mode or owner */
    if (unlink(tmp) != 0 && errno != ENOENT) {
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
              key != NULL ? 0600 : 0644);
    if (fd < 0) {
        return -1;
    }
    if (fchmod(fd, key != NULL ? 0600 : 0644) != 0) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        unlink(tmp);
        return -1;
    }
    ok = key != NULL ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL,
                                            NULL)
                     : PEM_write_X509(f, crt);
    if (!ok || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        unlink(tmp);
        errno = EIO;
        return -1;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return fsync_dir(dir);
}

static EVP_PKEY *
load_key(const char *path)
{
    FILE     *f = fopen(path, "r");
    EVP_PKEY *k;

    if (f == NULL) {
        return NULL;
    }
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

static X509 *
load_crt(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x;

    if (f == NULL) {
        return NULL;
    }
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static int
add_ext(X509 *crt, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX      v3;
    X509_EXTENSION *ext;
    int             ok;

    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, crt, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (ext == NULL) {
        return -1;
    }
    ok = X509_add_ext(crt, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/*
 * A new certificate for key with common name cn, signed by ca_key with
 * ca_crt as issuer (self-signed when ca_crt is NULL).  is_ca: CA basic
 * constraints.  san: subjectAltName value or NULL.
 */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, EVP_PKEY *ca_key, X509 *ca_crt,
          int is_ca, const char *san)
{
    X509          *x = X509_new();
    X509_NAME     *name;
    unsigned char  serial[16];
    BIGNUM        *bn = NULL;

    if (x == NULL || RAND_bytes(serial, sizeof(serial)) != 1) {
        goto fail;
    }
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (bn == NULL || !X509_set_version(x, 2)
        || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL
        || X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL
        || X509_time_adj_ex(X509_getm_notAfter(x), TS_TLS_CERT_DAYS_N, 0,
                            NULL) == NULL
        || !X509_set_pubkey(x, key))
    {
        goto fail;
    }
    name = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                    (const unsigned char *) "Tessera", -1,
                                    -1, 0)
        || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       (const unsigned char *) cn, -1, -1, 0)
        || !X509_set_issuer_name(x, ca_crt ? X509_get_subject_name(ca_crt)
                                           : name))
    {
        goto fail;
    }
    if (add_ext(x, ca_crt ? ca_crt : x, NID_basic_constraints,
                is_ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE")
        != 0
        || add_ext(x, ca_crt ? ca_crt : x, NID_key_usage,
                   is_ca ? "critical,keyCertSign,cRLSign"
                         : "critical,digitalSignature") != 0
        || add_ext(x, ca_crt ? ca_crt : x, NID_subject_key_identifier,
                   "hash") != 0
        || (san != NULL
            && add_ext(x, ca_crt ? ca_crt : x, NID_subject_alt_name, san)
               != 0))
    {
        goto fail;
    }
    if (!is_ca) {
        if (add_ext(x, ca_crt ? ca_crt : x, NID_ext_key_usage,
                    "serverAuth,clientAuth") != 0)
        {
            goto fail;
        }
    }
    /* Ed25519 signs the whole message: no digest */
    if (X509_sign(x, ca_key, NULL) <= 0) {
        goto fail;
    }
    BN_free(bn);
    return x;

fail:
    BN_free(bn);
    X509_free(x);
    return NULL;
}

static EVP_PKEY *
new_key(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
}

/* mkdir -p of one level, mode 0700 */
static int
ensure_dir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return -1;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static int
lock_dir(const char *dir)
{
    char path[PATH_MAX];
    int  fd;

    snprintf(path, sizeof(path), "%s/.lock", dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return -1;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static void
unlock_dir(int fd)
{
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
}

int
ts_pki_ensure_ca(const char *dir, char *err, size_t errsz)
{
    char      crt_p[PATH_MAX], key_p[PATH_MAX];
    EVP_PKEY *key = NULL;
    X509     *crt = NULL;
    int       lk, rc = -1, hc, hk;

    if (ensure_dir(dir) != 0) {
        snprintf(err, errsz, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(crt_p, sizeof(crt_p), "%s/ca.crt", dir);
    snprintf(key_p, sizeof(key_p), "%s/ca.key", dir);
    lk = lock_dir(dir);
    if (lk < 0) {
        snprintf(err, errsz, "cannot lock %s: %s", dir, strerror(errno));
        return -1;
    }
    hc = file_exists(crt_p);
    hk = file_exists(key_p);
    if (hc) {
        rc = 0;                 /* the key may be kept elsewhere: fine */
        goto out;
    }
    if (hk) {
        snprintf(err, errsz, "%s exists but %s does not: restore ca.crt",
                 key_p, crt_p);
        goto out;
    }
    key = new_key();
    crt = key ? make_cert(key, "Tessera cluster CA", key, NULL, 1, NULL)
              : NULL;
    if (crt == NULL) {
        set_err("cannot create the cluster CA", err, errsz);
        goto out;
    }
    if (write_pem(dir, key_p, key, NULL) != 0
        || write_pem(dir, crt_p, NULL, crt) != 0)
    {
        snprintf(err, errsz, "cannot write the CA into %s: %s", dir,
                 strerror(errno));
        goto out;
    }
    rc = 0;
out:
    unlock_dir(lk);
    EVP_PKEY_free(key);
    X509_free(crt);
    return rc;
}

/* 1 if crt is signed by ca_crt and currently valid */
static int
signed_by(X509 *crt, X509 *ca_crt)
{
    X509_STORE     *st = X509_STORE_new();
    X509_STORE_CTX *sc = X509_STORE_CTX_new();
    int             ok = 0;

    if (st != NULL && sc != NULL && X509_STORE_add_cert(st, ca_crt) == 1
        && X509_STORE_CTX_init(sc, st, crt, NULL) == 1)
    {
        ok = X509_verify_cert(sc) == 1;
    }
    X509_STORE_CTX_free(sc);
    X509_STORE_free(st);
    ERR_clear_error();
    return ok;
}

int
ts_pki_ensure_tracker(const char *dir, int id, const char *ip, char *err,
                      size_t errsz)
{
    char      crt_p[PATH_MAX], key_p[PATH_MAX], ca_p[PATH_MAX],
              cakey_p[PATH_MAX], cn[64], san[160];
    EVP_PKEY *key = NULL, *ca_key = NULL;
    X509     *crt = NULL, *ca_crt = NULL;
    int       lk, rc = -1;

    if (id <= 0 || id > TS_TRACKERS_MAX_N) {
        snprintf(err, errsz, "bad tracker id %d", id);
        return -1;
    }
    snprintf(crt_p, sizeof(crt_p), "%s/tracker-%d.crt", dir, id);
    snprintf(key_p, sizeof(key_p), "%s/tracker-%d.key", dir, id);
    snprintf(ca_p, sizeof(ca_p), "%s/ca.crt", dir);
    snprintf(cakey_p, sizeof(cakey_p), "%s/ca.key", dir);
    snprintf(cn, sizeof(cn), TS_TLS_TRACKER_CN "%d", id);
    lk = lock_dir(dir);
    if (lk < 0) {
        snprintf(err, errsz, "cannot lock %s: %s", dir, strerror(errno));
        return -1;
    }
    ca_crt = load_crt(ca_p);
    if (ca_crt == NULL) {
        snprintf(err, errsz, "no cluster CA certificate at %s", ca_p);
        goto out;
    }
    if (file_exists(crt_p) && file_exists(key_p)) {
        crt = load_crt(crt_p);
        if (crt != NULL && signed_by(crt, ca_crt)) {
            rc = 0;
            goto out;
        }
        X509_free(crt);
        crt = NULL;
        /* not from this CA (or unreadable): issue a new one if we can */
    }
    if (file_exists(cakey_p) && ts_pki_key_private(cakey_p, err, errsz) != 0)
    {
        goto out;
    }
    ca_key = load_key(cakey_p);
    if (ca_key == NULL) {
        snprintf(err, errsz, "no valid certificate for tracker %d at %s and "
                 "no %s to issue one (run `tracker --init-pki` where the "
                 "CA key is, and copy tracker-%d.crt/.key here)", id, crt_p,
                 cakey_p, id);
        goto out;
    }
    if (ip != NULL && ip[0] != '\0') {
        snprintf(san, sizeof(san), "DNS:%s,IP:%s", cn, ip);
    } else {
        snprintf(san, sizeof(san), "DNS:%s", cn);
    }
    key = new_key();
    crt = key ? make_cert(key, cn, ca_key, ca_crt, 0, san) : NULL;
    if (crt == NULL) {
        set_err("cannot issue the tracker certificate", err, errsz);
        goto out;
    }
    if (write_pem(dir, key_p, key, NULL) != 0
        || write_pem(dir, crt_p, NULL, crt) != 0)
    {
        snprintf(err, errsz, "cannot write %s: %s", crt_p, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    unlock_dir(lk);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    X509_free(crt);
    X509_free(ca_crt);
    return rc;
}

static int
cert_fp(X509 *x, uint8_t fp[TS_FP_B])
{
    unsigned int n = 0;

    if (X509_digest(x, EVP_sha256(), fp, &n) != 1 || n != TS_FP_B) {
        return -1;
    }
    return 0;
}

int
ts_pki_cert_fp(const char *crt_path, uint8_t fp[TS_FP_B])
{
    X509 *x = load_crt(crt_path);
    int   rc;

    if (x == NULL) {
        ERR_clear_error();
        return -1;
    }
    rc = cert_fp(x, fp);
    X509_free(x);
    return rc;
}

int
ts_pki_ensure_node(const char *state_dir, uint8_t fp[TS_FP_B], char *err,
                   size_t errsz)
{
    char      crt_p[PATH_MAX], key_p[PATH_MAX];
    EVP_PKEY *key = NULL;
    X509     *crt = NULL;
    int       lk, rc = -1;

    if (ensure_dir(state_dir) != 0) {
        snprintf(err, errsz, "cannot create %s: %s", state_dir,
                 strerror(errno));
        return -1;
    }
    snprintf(crt_p, sizeof(crt_p), "%s/node.crt", state_dir);
    snprintf(key_p, sizeof(key_p), "%s/node.key", state_dir);
    lk = lock_dir(state_dir);
    if (lk < 0) {
        snprintf(err, errsz, "cannot lock %s: %s", state_dir,
                 strerror(errno));
        return -1;
    }
    if (file_exists(crt_p) && file_exists(key_p)) {
        if (ts_pki_key_private(key_p, err, errsz) != 0) {
            goto out;
        }
        crt = load_crt(crt_p);
        key = load_key(key_p);
        if (crt != NULL && key != NULL && X509_check_private_key(crt, key)) {
            rc = 0;
            goto done;
        }
        snprintf(err, errsz, "%s and %s do not match (or are unreadable); "
                 "remove both to make a new node identity", crt_p, key_p);
        ERR_clear_error();
        goto out;
    }
    key = new_key();
    crt = key ? make_cert(key, TS_TLS_NODE_CN, key, NULL, 0, NULL) : NULL;
    if (crt == NULL) {
        set_err("cannot create the node identity", err, errsz);
        goto out;
    }
    if (write_pem(state_dir, key_p, key, NULL) != 0
        || write_pem(state_dir, crt_p, NULL, crt) != 0)
    {
        snprintf(err, errsz, "cannot write %s: %s", crt_p, strerror(errno));
        goto out;
    }
    rc = 0;
done:
    if (fp != NULL && cert_fp(crt, fp) != 0) {
        snprintf(err, errsz, "cannot fingerprint %s", crt_p);
        rc = -1;
    }
out:
    unlock_dir(lk);
    EVP_PKEY_free(key);
    X509_free(crt);
    return rc;
}

/* ---- contexts ------------------------------------------------------- */

/* "tessera-tracker-N" -> N (1..TS_TRACKERS_MAX_N), else 0 */
static int
tracker_id_of(X509 *x)
{
    char   cn[80];
    char  *end;
    long   v;
    size_t pl = strlen(TS_TLS_TRACKER_CN);
    int    n;

    n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
                                  cn, sizeof(cn));
    if (n <= 0 || (size_t) n <= pl || strncmp(cn, TS_TLS_TRACKER_CN, pl) != 0
        || cn[pl] < '1' || cn[pl] > '9')
    {
        return 0;
    }
    errno = 0;
    v = strtol(cn + pl, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > TS_TRACKERS_MAX_N) {
        return 0;
    }
    return (int) v;
}

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
    if (c == NULL || x == NULL || cert_fp(x, fp) != 0) {
        return 0;
    }
    if (c->has_expect_fp && CRYPTO_memcmp(fp, c->expect_fp, TS_FP_B) != 0) {
        c->failed = 1;
        X509_STORE_CTX_set_error(sc, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
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
        set_err("cannot create a TLS context", err, errsz);
        goto fail;
    }
    mode = SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
    if (role == TS_TLS_TRACKER_SERVER || role == TS_TLS_TRACKER_CLIENT) {
        mode |= SSL_MODE_RELEASE_BUFFERS;   /* many idle control links */
    } else {
        /* bulk data: one recv() takes several records */
        SSL_CTX_set_read_ahead(t->ctx, 1);
        SSL_CTX_set_default_read_buffer_len(t->ctx, 256 * 1024);
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
            set_err(crt, err, errsz);
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
            set_err(ca ? ca : "no CA file", err, errsz);
            goto fail;
        }
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
        break;
    case TS_TLS_TRACKER_SERVER:
        if (ca == NULL) {
            snprintf(err, errsz, "no CA file");
            goto fail;
        }
        t->ca = X509_STORE_new();
        if (t->ca == NULL || X509_STORE_load_file(t->ca, ca) != 1) {
            set_err(ca, err, errsz);
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

/* ---- connections ---------------------------------------------------- */

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
    char       host[64];
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
        set_err("cannot start a TLS session", NULL, 0);
        if (c->ssl == NULL) {
            ts_conn_free(c);
            errno = ENOMEM;
            return NULL;
        }
        SSL_free(c->ssl);
        c->ssl = NULL;
        ts_conn_free(c);
        errno = ENOMEM;
        return NULL;
    }
    /* the socket BIO of the plain path is not used; keep the fd open
     * (SSL_set_fd made a NOCLOSE BIO, ts_tls_conn_free closes fd) */
    BIO_set_close(c->bio, BIO_NOCLOSE);
    BIO_free_all(c->bio);
    c->bio = NULL;
    if (server) {
        SSL_set_accept_state(c->ssl);
    } else {
        SSL_set_connect_state(c->ssl);
    }
    c->strict = t->role == TS_TLS_TRACKER_CLIENT;   /* CA chain checked */
    if (t->role == TS_TLS_TRACKER_CLIENT && expect_tracker > 0) {
        c->expect_tracker = expect_tracker;
        snprintf(host, sizeof(host), TS_TLS_TRACKER_CN "%d", expect_tracker);
        SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(c->ssl, host) != 1) {
            ts_conn_free(c);
            errno = ENOMEM;
            return NULL;
        }
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
    int             id;

    c->ready = 1;
    if (x == NULL) {
        return 0;
    }
    if (cert_fp(x, c->peer_fp) == 0) {
        c->has_peer_fp = 1;
    }
    if (t != NULL && t->ca != NULL && (id = tracker_id_of(x)) > 0) {
        sc = X509_STORE_CTX_new();
        if (sc != NULL && X509_STORE_CTX_init(sc, t->ca, x, NULL) == 1
            && X509_verify_cert(sc) == 1)
        {
            c->peer_tracker = id;
        }
        X509_STORE_CTX_free(sc);
        ERR_clear_error();
    } else if (c->expect_tracker > 0) {
        c->peer_tracker = c->expect_tracker;  /* checked by SSL_set1_host */
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
        set_err("TLS", NULL, 0);
        return -1;
    default:
        vr = SSL_get_verify_result(c->ssl);
        if (c->failed) {
            snprintf(tls_err, sizeof(tls_err), "peer certificate does not "
                     "match the fingerprint the tracker gave");
            ERR_clear_error();
            errno = EPERM;
        } else if (vr != X509_V_OK && !SSL_is_init_finished(c->ssl)
                   && c->strict)
        {
            snprintf(tls_err, sizeof(tls_err), "peer certificate rejected: "
                     "%s", X509_verify_cert_error_string(vr));
            ERR_clear_error();
            errno = EPERM;
        } else {
            set_err("TLS", NULL, 0);
            errno = EPROTO;
        }
        c->failed = 1;
        return -1;
    }
}

ssize_t
ts_tls_read(struct ts_conn_s *c, void *buf, size_t n)
{
    size_t got = 0;
    int    rc;

    if (c->failed) {
        errno = EPERM;
        return -1;
    }
    ERR_clear_error();
    errno = 0;
    rc = SSL_read_ex(c->ssl, buf, n, &got);
    if (!c->ready && SSL_is_init_finished(c->ssl)) {
        after_handshake(c);
    }
    if (rc == 1) {
        return (ssize_t) got;
    }
    return io_fail(c, rc, 1);
}

ssize_t
ts_tls_write(struct ts_conn_s *c, const void *buf, size_t n)
{
    size_t done = 0;
    int    rc;

    if (c->failed) {
        errno = EPERM;
        return -1;
    }
    ERR_clear_error();
    errno = 0;
    rc = SSL_write_ex(c->ssl, buf, n, &done);
    if (!c->ready && SSL_is_init_finished(c->ssl)) {
        after_handshake(c);
    }
    if (rc == 1) {
        return (ssize_t) done;
    }
    return io_fail(c, rc, 0);
}

int
ts_tls_handshake_step(struct ts_conn_s *c)
{
    int rc;

    if (c->failed) {
        errno = EPERM;
        return -1;
    }
    ERR_clear_error();
    errno = 0;
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

int
ts_tls_pending(struct ts_conn_s *c)
{
    int n = SSL_pending(c->ssl);

    if (n > 0) {
        return n;
    }
    return SSL_has_pending(c->ssl) ? 1 : 0;
}

void
ts_tls_conn_free(struct ts_conn_s *c)
{
    /* no close_notify round trip: the fd may be non-blocking and the peer
     * gone; the frame layer knows where messages end */
    SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

int
ts_conn_ready(const ts_conn_t *c)
{
    return c != NULL && (c->ssl == NULL || c->ready);
}

int
ts_conn_want(const ts_conn_t *c)
{
    return c != NULL && c->want == 2 ? 2 : 1;
}

int
ts_conn_is_tls(const ts_conn_t *c)
{
    return c != NULL && c->ssl != NULL;
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
ts_conn_peer_tracker(const ts_conn_t *c)
{
    return c != NULL && c->ready ? c->peer_tracker : 0;
}
