/*
 * ts_crypto.c -- hashing, PBKDF2, randomness and constant-time compare,
 * all delegated to OpenSSL 3 (EVP, PKCS5_PBKDF2_HMAC, RAND_bytes,
 * CRYPTO_memcmp); nothing cryptographic is written by hand here.
 *
 * Locking: none of our own.  A ts_sha1_t belongs to one thread; the
 * one-shot functions keep no state; OpenSSL 3 is thread-safe by default.
 * Crash behaviour: no persistent state.  A failed OpenSSL call returns -1
 * and the caller treats it as an internal error.
 */
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ts_crypto.h"

struct ts_sha1_s {
    EVP_MD_CTX *ctx;
};

ts_sha1_t *
ts_sha1_new(void)
{
    ts_sha1_t *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        return NULL;
    }
    h->ctx = EVP_MD_CTX_new();
    if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, EVP_sha1(), NULL) != 1) {
        EVP_MD_CTX_free(h->ctx);
        free(h);
        return NULL;
    }
    return h;
}

void
ts_sha1_free(ts_sha1_t *h)
{
    if (h == NULL) {
        return;
    }
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

int
ts_sha1_reset(ts_sha1_t *h)
{
    return EVP_DigestInit_ex(h->ctx, EVP_sha1(), NULL) == 1 ? 0 : -1;
}

int
ts_sha1_update(ts_sha1_t *h, const void *p, size_t n)
{
    if (n == 0) {
        return 0;
    }
    return EVP_DigestUpdate(h->ctx, p, n) == 1 ? 0 : -1;
}

int
ts_sha1_final(ts_sha1_t *h, uint8_t out[TS_SHA1_B])
{
    unsigned int len = 0;
    int          rc;

    rc = EVP_DigestFinal_ex(h->ctx, out, &len) == 1 && len == TS_SHA1_B
         ? 0 : -1;
    /* ready for the next stream whatever happened */
    if (ts_sha1_reset(h) != 0) {
        rc = -1;
    }
    return rc;
}

static int
digest(const EVP_MD *md, const void *p, size_t n, uint8_t *out,
       unsigned int want)
{
    unsigned int len = 0;
    static const uint8_t empty;

    if (p == NULL) {
        if (n != 0) {
            return -1;
        }
        p = &empty;
    }
    if (EVP_Digest(p, n, out, &len, md, NULL) != 1 || len != want) {
        return -1;
    }
    return 0;
}

int
ts_sha1(const void *p, size_t n, uint8_t out[TS_SHA1_B])
{
    return digest(EVP_sha1(), p, n, out, TS_SHA1_B);
}

int
ts_sha256(const void *p, size_t n, uint8_t out[TS_SHA256_B])
{
    return digest(EVP_sha256(), p, n, out, TS_SHA256_B);
}

int
ts_pbkdf2_sha1(const char *pw, size_t pwlen, const uint8_t *salt,
               size_t saltlen, uint32_t iterations, uint8_t *out,
               size_t outlen)
{
    static const uint8_t empty;

    if (iterations == 0 || iterations > INT32_MAX || outlen == 0
        || outlen > INT32_MAX || pwlen > INT32_MAX || saltlen > INT32_MAX)
    {
        return -1;
    }
    if (pw == NULL) {
        if (pwlen != 0) {
            return -1;
        }
        pw = "";
    }
    if (salt == NULL) {
        if (saltlen != 0) {
            return -1;
        }
        salt = &empty;
    }
    if (PKCS5_PBKDF2_HMAC(pw, (int) pwlen, salt, (int) saltlen,
                          (int) iterations, EVP_sha1(), (int) outlen, out)
        != 1)
    {
        return -1;
    }
    return 0;
}

int
ts_random(void *buf, size_t n)
{
    uint8_t *p = buf;

    /* RAND_bytes takes an int: feed large requests in pieces */
    while (n > 0) {
        int k = n > (1u << 30) ? (1 << 30) : (int) n;

        if (RAND_bytes(p, k) != 1) {
            return -1;
        }
        p += k;
        n -= (size_t) k;
    }
    return 0;
}

uint64_t
ts_random_u64(void)
{
    uint64_t v = 0;

    if (ts_random(&v, sizeof(v)) != 0) {
        /* the CSPRNG failing is not recoverable: never hand out a
         * predictable token or salt */
        abort();
    }
    return v;
}

int
ts_ct_equal(const void *a, const void *b, size_t n)
{
    if (n == 0) {
        return 1;
    }
    return CRYPTO_memcmp(a, b, n) == 0;
}

void
ts_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t            i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int
ts_unhex(const char *s, uint8_t *out, size_t n)
{
    size_t i;

    if (s == NULL) {
        return -1;
    }
    /* exactly 2n hex digits: check the length without reading past it */
    if (strnlen(s, 2 * n + 1) != 2 * n) {
        return -1;
    }
    /* validate everything first so a bad string leaves out untouched */
    for (i = 0; i < 2 * n; i++) {
        if (hexval(s[i]) < 0) {
            return -1;
        }
    }
    for (i = 0; i < n; i++) {
        out[i] = (uint8_t) ((hexval(s[2 * i]) << 4) | hexval(s[2 * i + 1]));
    }
    return 0;
}
