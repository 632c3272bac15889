/*
 * ts_ticket.c -- download tickets: signing on trackers, structural parsing
 * and full verification on peers (see ts_ticket.h for the wire form).
 *
 * Purpose: a peer serves a chunk only to the node identity a tracker
 * vouched for.  The tracker signs (issuer, group, name, requester
 * fingerprint, issued, expires) with its Ed25519 key and appends its own
 * certificate, so a peer needs only the cluster CA to check any
 * tracker's ticket.  The parser checks every field against the same
 * limits as the rest of the protocol before anything is trusted; the
 * verifier then checks the certificate (CA chain, validity, CN names the
 * issuer), the signature, the expiry and the identity, in that order.
 * Verified issuer certificates are cached by their SHA-256 so a busy
 * uploader verifies one signature per ticket, not one chain.
 *
 * Locking: none; a signer or verifier belongs to one thread.
 * Crash behaviour: nothing persistent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ts_crypto.h"
#include "ts_proto.h"
#include "ts_ticket.h"
#include "ts_pki_key.h"

#define TKT_MAGIC      "TKT1"
#define TKT_SIG_B      64           /* Ed25519 */
#define TKT_CN_PREFIX  "tessera-tracker-"

struct ts_ticket_signer_s {
    uint32_t   issuer;
    EVP_PKEY  *key;
    uint8_t   *cert;                /* DER */
    size_t     certlen;
};

typedef struct {
    uint8_t    hash[TS_SHA256_B];   /* of the DER; 0 = empty slot */
    int        used;
    uint32_t   issuer;
    EVP_PKEY  *key;
    int64_t    not_after_ms;
    uint64_t   last_use;
} tkt_cache_t;

struct ts_ticket_verifier_s {
    X509_STORE  *store;
    tkt_cache_t  cache[TS_TICKET_CACHE_N];
    uint64_t     tick;
};

/* ---- parsing --------------------------------------------------------- */

int
ts_ticket_parse(const void *p, size_t n, ts_ticket_t *t,
                const uint8_t **cert, size_t *certlen, size_t *signed_len,
                const uint8_t **sig, size_t *siglen)
{
    ts_rbuf_t      r;
    uint8_t        magic[4];
    const uint8_t *c, *s;
    uint32_t       cl, sl;
    size_t         before_sig;

    if (p == NULL || t == NULL || n < 4 || n > TS_TICKET_MAX_B) {
        return -1;
    }
    memset(t, 0, sizeof(*t));
    ts_rbuf_init(&r, p, n);
    if (ts_get_raw(&r, magic, 4) != 0 || memcmp(magic, TKT_MAGIC, 4) != 0) {
        return -1;
    }
    t->issuer = ts_get_u32(&r);
    if (ts_get_str(&r, t->group, sizeof(t->group)) != 0
        || ts_get_str(&r, t->name, sizeof(t->name)) != 0
        || ts_get_raw(&r, t->fp, TS_FP_B) != 0)
    {
        return -1;
    }
    t->issued_ms = ts_get_u64(&r);
    t->expires_ms = ts_get_u64(&r);
    c = ts_get_blob(&r, &cl, TS_TICKET_CERT_MAX_B);
    if (c == NULL || cl == 0) {
        return -1;
    }
    before_sig = n - ts_rbuf_left(&r);
    s = ts_get_blob(&r, &sl, TKT_SIG_B);
    if (s == NULL || sl != TKT_SIG_B || ts_rbuf_end(&r) != 0) {
        return -1;
    }
    if (t->issuer < 1 || t->issuer > TS_TRACKERS_MAX_N
        || !ts_valid_id(t->group) || !ts_valid_filename(t->name)
        || t->expires_ms < t->issued_ms)
    {
        return -1;
    }
    if (cert != NULL) {
        *cert = c;
    }
    if (certlen != NULL) {
        *certlen = cl;
    }
    if (signed_len != NULL) {
        *signed_len = before_sig;
    }
    if (sig != NULL) {
        *sig = s;
    }
    if (siglen != NULL) {
        *siglen = sl;
    }
    return 0;
}

/* ---- signing --------------------------------------------------------- */

ts_ticket_signer_t *
ts_ticket_signer_new(uint32_t issuer, const char *crt, const char *key,
                     char *err, size_t errsz)
{
    ts_ticket_signer_t *s = calloc(1, sizeof(*s));
    FILE               *f;
    X509               *x = NULL;
    unsigned char      *der = NULL;
    int                 len;

    if (s == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    s->issuer = issuer;
    if (ts_pki_key_private(key, err, errsz) != 0) {
        goto fail;
    }
    f = fopen(key, "r");
    if (f != NULL) {
        s->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    f = fopen(crt, "r");
    if (f != NULL) {
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    if (s->key == NULL || x == NULL
        || EVP_PKEY_get_base_id(s->key) != EVP_PKEY_ED25519
        || X509_check_private_key(x, s->key) != 1)
    {
        snprintf(err, errsz, "cannot load an Ed25519 key and certificate "
                 "from %s and %s", key, crt);
        goto fail;
    }
    len = i2d_X509(x, &der);
    if (len <= 0 || (size_t) len > TS_TICKET_CERT_MAX_B) {
        snprintf(err, errsz, "certificate %s too large for tickets", crt);
        goto fail;
    }
    s->cert = malloc((size_t) len);
    if (s->cert == NULL) {
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    memcpy(s->cert, der, (size_t) len);
    s->certlen = (size_t) len;
    OPENSSL_free(der);
    X509_free(x);
    return s;

fail:
    ERR_clear_error();
    OPENSSL_free(der);
    X509_free(x);
    ts_ticket_signer_free(s);
    return NULL;
}

void
ts_ticket_signer_free(ts_ticket_signer_t *s)
{
    if (s == NULL) {
        return;
    }
    EVP_PKEY_free(s->key);
    free(s->cert);
    free(s);
}

int
ts_ticket_sign(ts_ticket_signer_t *s, const ts_ticket_t *t, ts_wbuf_t *out)
{
    EVP_MD_CTX *md;
    size_t      start = out->len, siglen = TKT_SIG_B;
    uint8_t     sig[TKT_SIG_B];
    int         ok;

    ts_put_raw(out, TKT_MAGIC, 4);
    ts_put_u32(out, s->issuer);
    ts_put_str(out, t->group);
    ts_put_str(out, t->name);
    ts_put_raw(out, t->fp, TS_FP_B);
    ts_put_u64(out, t->issued_ms);
    ts_put_u64(out, t->expires_ms);
    ts_put_blob(out, s->cert, (uint32_t) s->certlen);
    if (out->err) {
        return -1;
    }
    md = EVP_MD_CTX_new();
    ok = md != NULL
         && EVP_DigestSignInit(md, NULL, NULL, NULL, s->key) == 1
         && EVP_DigestSign(md, sig, &siglen, out->data + start,
                           out->len - start) == 1
         && siglen == TKT_SIG_B;
    EVP_MD_CTX_free(md);
    if (!ok) {
        ERR_clear_error();
        return -1;
    }
    ts_put_blob(out, sig, TKT_SIG_B);
    return out->err ? -1 : 0;
}

/* ---- verification ---------------------------------------------------- */

ts_ticket_verifier_t *
ts_ticket_verifier_new(const char *ca, char *err, size_t errsz)
{
    ts_ticket_verifier_t *v = calloc(1, sizeof(*v));

    if (v == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    v->store = X509_STORE_new();
    if (v->store == NULL || X509_STORE_load_file(v->store, ca) != 1) {
        snprintf(err, errsz, "cannot load the cluster CA from %s", ca);
        ERR_clear_error();
        ts_ticket_verifier_free(v);
        return NULL;
    }
    return v;
}

void
ts_ticket_verifier_free(ts_ticket_verifier_t *v)
{
    int i;

    if (v == NULL) {
        return;
    }
    for (i = 0; i < TS_TICKET_CACHE_N; i++) {
        EVP_PKEY_free(v->cache[i].key);
    }
    X509_STORE_free(v->store);
    free(v);
}

static int64_t
asn1_ms(const ASN1_TIME *at)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(at, &tm) != 1) {
        return 0;
    }
    return (int64_t) timegm(&tm) * 1000;
}

/* the issuer's key for this certificate (cached), or NULL with err */
static EVP_PKEY *
issuer_key(ts_ticket_verifier_t *v, const uint8_t *der, size_t derlen,
           uint32_t issuer, int64_t now_ms, char *err, size_t errsz)
{
    uint8_t         h[TS_SHA256_B];
    tkt_cache_t    *slot = NULL;
    X509           *x = NULL;
    X509_STORE_CTX *sc = NULL;
    const uint8_t  *pp = der;
    char            cn[80], want[40];
    int             i, n;

    if (ts_sha256(der, derlen, h) != 0) {
        snprintf(err, errsz, "internal error");
        return NULL;
    }
    for (i = 0; i < TS_TICKET_CACHE_N; i++) {
        tkt_cache_t *e = &v->cache[i];

        if (e->used && memcmp(e->hash, h, sizeof(h)) == 0) {
            if (e->issuer != issuer || now_ms > e->not_after_ms) {
                snprintf(err, errsz, "forged: issuer certificate does not "
                         "name tracker %u or has expired", issuer);
                return NULL;
            }
            e->last_use = ++v->tick;
            return e->key;
        }
    }
    x = d2i_X509(NULL, &pp, (long) derlen);
    if (x == NULL || pp != der + derlen) {
        snprintf(err, errsz, "forged: unreadable issuer certificate");
        goto fail;
    }
    sc = X509_STORE_CTX_new();
    if (sc == NULL || X509_STORE_CTX_init(sc, v->store, x, NULL) != 1
        || X509_verify_cert(sc) != 1)
    {
        snprintf(err, errsz, "forged: issuer certificate not signed by the "
                 "cluster CA");
        goto fail;
    }
    n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
                                  cn, sizeof(cn));
    snprintf(want, sizeof(want), TKT_CN_PREFIX "%u", issuer);
    if (n <= 0 || strcmp(cn, want) != 0) {
        snprintf(err, errsz, "forged: issuer certificate is not tracker %u's",
                 issuer);
        goto fail;
    }
    /* least recently used slot */
    for (i = 0; i < TS_TICKET_CACHE_N; i++) {
        if (slot == NULL || !v->cache[i].used
            || (slot->used && v->cache[i].last_use < slot->last_use))
        {
            slot = &v->cache[i];
        }
    }
    EVP_PKEY_free(slot->key);
    memset(slot, 0, sizeof(*slot));
    slot->key = X509_get_pubkey(x);
    if (slot->key == NULL || EVP_PKEY_get_base_id(slot->key) != EVP_PKEY_ED25519)
    {
        EVP_PKEY_free(slot->key);
        slot->key = NULL;
        snprintf(err, errsz, "forged: issuer key is not Ed25519");
        goto fail;
    }
    memcpy(slot->hash, h, sizeof(h));
    slot->used = 1;
    slot->issuer = issuer;
    slot->not_after_ms = asn1_ms(X509_get0_notAfter(x));
    slot->last_use = ++v->tick;
    X509_STORE_CTX_free(sc);
    X509_free(x);
    return slot->key;

fail:
    ERR_clear_error();
    X509_STORE_CTX_free(sc);
    X509_free(x);
    return NULL;
}

int
ts_ticket_verify(ts_ticket_verifier_t *v, const void *p, size_t n,
                 int64_t now_ms, const uint8_t *fp, ts_ticket_t *out,
                 char *err, size_t errsz)
{
    ts_ticket_t    t;
    const uint8_t *cert, *sig;
    size_t         certlen, signed_len, siglen;
    EVP_PKEY      *key;
    EVP_MD_CTX    *md;
    int            ok;

    if (ts_ticket_parse(p, n, &t, &cert, &certlen, &signed_len, &sig,
                        &siglen) != 0)
    {
        snprintf(err, errsz, "malformed ticket");
        return -1;
    }
    key = issuer_key(v, cert, certlen, t.issuer, now_ms, err, errsz);
    if (key == NULL) {
        return -1;
    }
    md = EVP_MD_CTX_new();
    ok = md != NULL && EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1
         && EVP_DigestVerify(md, sig, siglen, p, signed_len) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    if (!ok) {
        snprintf(err, errsz, "forged: bad signature");
        return -1;
    }
    if (now_ms < 0 || (uint64_t) now_ms >= t.expires_ms) {
        snprintf(err, errsz, "expired");
        return -1;
    }
    if (fp != NULL && !ts_ct_equal(fp, t.fp, TS_FP_B)) {
        snprintf(err, errsz, "issued to another identity");
        return -1;
    }
    if (out != NULL) {
        *out = t;
    }
    return 0;
}
