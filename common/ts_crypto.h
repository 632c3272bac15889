/*
 * ts_crypto.h -- hashing, key derivation and randomness, all through
 * OpenSSL (never hand-written).  Thread-safe, no shared state.
 */
#ifndef TS_CRYPTO_H_INCLUDED
#define TS_CRYPTO_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define TS_SHA1_B    20
#define TS_SHA256_B  32

typedef struct ts_sha1_s ts_sha1_t;     /* streaming SHA1 (EVP) */

ts_sha1_t *ts_sha1_new(void);
void       ts_sha1_free(ts_sha1_t *h);
int        ts_sha1_reset(ts_sha1_t *h);
int        ts_sha1_update(ts_sha1_t *h, const void *p, size_t n);
int        ts_sha1_final(ts_sha1_t *h, uint8_t out[TS_SHA1_B]);  /* resets */

int ts_sha1(const void *p, size_t n, uint8_t out[TS_SHA1_B]);
int ts_sha256(const void *p, size_t n, uint8_t out[TS_SHA256_B]);

/* PBKDF2-HMAC-SHA1.  0 or -1. */
int ts_pbkdf2_sha1(const char *pw, size_t pwlen, const uint8_t *salt,
                   size_t saltlen, uint32_t iterations, uint8_t *out,
                   size_t outlen);

int  ts_random(void *buf, size_t n);                   /* 0 or -1 */
uint64_t ts_random_u64(void);
int  ts_ct_equal(const void *a, const void *b, size_t n); /* 1 if equal */
void ts_hex(const uint8_t *p, size_t n, char *out);    /* out: 2n+1 */
int  ts_unhex(const char *s, uint8_t *out, size_t n);  /* exactly 2n chars */

#endif
