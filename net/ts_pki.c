/*
 * ts_pki.c -- the PKI files behind TLS: the cluster CA, tracker
 * certificates, node identities, fingerprints (see ts_pki.h), and the
 * certificate helpers the TLS layer uses (ts_pki_int.h).
 *
 * Purpose: keys are Ed25519, certificates X.509 made here with OpenSSL.
 * A tracker certificate names its tracker ("tessera-tracker-N") and its
 * address (subjectAltName IP); a node identity is self-signed and known by
 * its fingerprint, SHA-256 of the DER.  Existing files are reused when
 * they match (a key is checked against its certificate, and a tracker
 * certificate against the CA); missing ones are created.
 *
 * Locking: creation takes flock(<dir>/.lock) so that trackers started
 * together create one CA.  The last error text is thread-local.
 * Crash behaviour: PEM files are written to a temp file, fsynced and
 * renamed (keys 0600), then the directory is fsynced; a kill leaves the
 * old state or the new one, at worst a stale temp file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
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
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ts_config.h"
#include "ts_pki.h"
#include "ts_pki_int.h"

static __thread char pki_err[256];

const char *
ts_pki_last_error(void)
{
    return pki_err;
}

void
ts_pki_set_errf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(pki_err, sizeof(pki_err), fmt, ap);
    va_end(ap);
}

/* records the OpenSSL error queue (or what) as this thread's last error */
void
ts_pki_set_err(const char *what, char *err, size_t errsz)
{
    unsigned long e = ERR_peek_last_error();
    char          buf[160];

    buf[0] = '\0';
    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
    }
    snprintf(pki_err, sizeof(pki_err), "%s%s%s", what, buf[0] ? ": " : "",
             buf);
    ERR_clear_error();
    if (err != NULL && errsz > 0) {
        snprintf(err, errsz, "%s", pki_err);
    }
}

/* ---- PKI files ------------------------------------------------------- */

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

/* reads a PEM private key (is_key) or certificate; NULL if unreadable */
static void *
read_pem(const char *path, int is_key)
{
    FILE *f = fopen(path, "r");
    void *p;

    if (f == NULL) {
        return NULL;
    }
    p = is_key ? (void *) PEM_read_PrivateKey(f, NULL, NULL, NULL)
               : (void *) PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return p;
}

static EVP_PKEY *
load_key(const char *path)
{
    return read_pem(path, 1);
}

static X509 *
load_crt(const char *path)
{
    return read_pem(path, 0);
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
        || X509_gmtime_adj(X509_getm_notBefore(x), -TS_TLS_CERT_BACKDATE_S)
           == NULL
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
    if (fd < 0 && (errno == EROFS || errno == EACCES)) {
        /* a read-only PKI dir (systemd credentials): lock the dir itself;
         * nothing can be created there anyway */
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
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

/* what a new certificate says */
typedef struct {
    const char *cn;
    EVP_PKEY   *ca_key;         /* NULL: self-signed */
    X509       *ca_crt;
    int         is_ca;
    const char *san;            /* NULL: none */
    const char *what;           /* the error when it cannot be made */
} pki_spec_t;

/* Makes a new key and its certificate as sp says and writes both (key
 * first) into dir.  0, or -1 with err; *key and *crt are the caller's to
 * free either way. */
static int
pki_issue(const char *dir, const char *key_p, const char *crt_p,
          const pki_spec_t *sp, EVP_PKEY **key, X509 **crt, char *err,
          size_t errsz)
{
    *key = new_key();
    *crt = *key ? make_cert(*key, sp->cn, sp->ca_key ? sp->ca_key : *key,
                            sp->ca_crt, sp->is_ca, sp->san)
                : NULL;
    if (*crt == NULL) {
        ts_pki_set_err(sp->what, err, errsz);
        return -1;
    }
    if (write_pem(dir, key_p, *key, NULL) != 0
        || write_pem(dir, crt_p, NULL, *crt) != 0)
    {
        snprintf(err, errsz, "cannot write %s: %s", crt_p, strerror(errno));
        return -1;
    }
    return 0;
}

int
ts_pki_ensure_ca(const char *dir, char *err, size_t errsz)
{
    char      crt_p[PATH_MAX], key_p[PATH_MAX];
    EVP_PKEY *key = NULL;
    X509     *crt = NULL;
    pki_spec_t spec = { 0 };
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
    spec.cn = "Tessera cluster CA";
    spec.is_ca = 1;
    spec.what = "cannot create the cluster CA";
    rc = pki_issue(dir, key_p, crt_p, &spec, &key, &crt, err, errsz);
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
    pki_spec_t spec = { 0 };
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
    spec.cn = cn;
    spec.ca_key = ca_key;
    spec.ca_crt = ca_crt;
    spec.san = san;
    spec.what = "cannot issue the tracker certificate";
    rc = pki_issue(dir, key_p, crt_p, &spec, &key, &crt, err, errsz);
out:
    unlock_dir(lk);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    X509_free(crt);
    X509_free(ca_crt);
    return rc;
}

/* A new key and certificate (cn, san) signed by the CA, written to
 * key_p and crt_p.  0, or -1 with err. */
static int
pki_issue_by_ca(const char *dir, const char *key_p, const char *crt_p,
                X509 *ca_crt, EVP_PKEY *ca_key, const char *cn,
                const char *san, const char *what, char *err, size_t errsz)
{
    pki_spec_t  spec = { 0 };
    EVP_PKEY   *key = NULL;
    X509       *crt = NULL;
    int         rc;

    spec.cn = cn;
    spec.ca_key = ca_key;
    spec.ca_crt = ca_crt;
    spec.san = san;
    spec.what = what;
    rc = pki_issue(dir, key_p, crt_p, &spec, &key, &crt, err, errsz);
    EVP_PKEY_free(key);
    X509_free(crt);
    return rc;
}

int
ts_pki_make_admin(const char *dir, const char *name, char *err,
                  size_t errsz)
{
    char      crt_p[PATH_MAX], key_p[PATH_MAX], ca_p[PATH_MAX],
              cakey_p[PATH_MAX], cn[64], san[80];
    EVP_PKEY *ca_key = NULL;
    X509     *ca_crt = NULL;
    int       lk, rc = -1;

    snprintf(crt_p, sizeof(crt_p), "%s/admin-%s.crt", dir, name);
    snprintf(key_p, sizeof(key_p), "%s/admin-%s.key", dir, name);
    snprintf(ca_p, sizeof(ca_p), "%s/ca.crt", dir);
    snprintf(cakey_p, sizeof(cakey_p), "%s/ca.key", dir);
    snprintf(cn, sizeof(cn), TS_TLS_ADMIN_CN "%s", name);
    snprintf(san, sizeof(san), "DNS:%s", cn);
    lk = lock_dir(dir);
    if (lk < 0) {
        snprintf(err, errsz, "cannot lock %s: %s", dir, strerror(errno));
        return -1;
    }
    if (file_exists(crt_p) || file_exists(key_p)) {
        snprintf(err, errsz, "%s exists (remove it first to issue a new "
                 "one)", crt_p);
        goto out;
    }
    ca_crt = load_crt(ca_p);
    if (file_exists(cakey_p) && ts_pki_key_private(cakey_p, err, errsz) != 0)
    {
        goto out;
    }
    ca_key = load_key(cakey_p);
    if (ca_crt == NULL || ca_key == NULL) {
        snprintf(err, errsz, "no cluster CA (%s and %s) to sign with: run "
                 "it where the CA key is", ca_p, cakey_p);
        goto out;
    }
    rc = pki_issue_by_ca(dir, key_p, crt_p, ca_crt, ca_key, cn, san,
                         "cannot issue the admin certificate", err, errsz);
    /* an operator's credential: the certificate is as private as its key */
    if (rc == 0 && chmod(crt_p, 0600) != 0) {
        snprintf(err, errsz, "chmod %s: %s", crt_p, strerror(errno));
        rc = -1;
    }
out:
    unlock_dir(lk);
    EVP_PKEY_free(ca_key);
    X509_free(ca_crt);
    return rc;
}

int
ts_pki_x509_fp(X509 *x, uint8_t fp[TS_FP_B])
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
    rc = ts_pki_x509_fp(x, fp);
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
    pki_spec_t spec = { 0 };
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
    spec.cn = TS_TLS_NODE_CN;
    spec.what = "cannot create the node identity";
    if (pki_issue(state_dir, key_p, crt_p, &spec, &key, &crt, err, errsz)
        != 0)
    {
        goto out;
    }
    rc = 0;
done:
    if (fp != NULL && ts_pki_x509_fp(crt, fp) != 0) {
        snprintf(err, errsz, "cannot fingerprint %s", crt_p);
        rc = -1;
    }
out:
    unlock_dir(lk);
    EVP_PKEY_free(key);
    X509_free(crt);
    return rc;
}

/* "tessera-tracker-N" -> N (1..TS_TRACKERS_MAX_N), else 0 */
int
ts_pki_x509_tracker_id(X509 *x)
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
