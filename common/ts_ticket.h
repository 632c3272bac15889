/*
 * ts_ticket.h -- download tickets: a tracker's Ed25519-signed permission
 * for one node identity to fetch one file of one group until a time.
 *
 * Wire form (ts_buf fields, network order), at most TS_TICKET_MAX_B:
 *   raw "TKT1"
 *   u32 issuer            tracker id that signed it
 *   str group, str name   what may be fetched
 *   raw fp[TS_FP_B]       the requester's node certificate fingerprint
 *   u64 issued_ms, u64 expires_ms   wall clock (CLOCK_REALTIME)
 *   blob cert             the issuer's certificate (DER, <= 2048 B)
 *   blob sig              Ed25519 over every byte before this field
 * Peers need no shared secret: the certificate inside must chain to the
 * cluster CA and name tracker <issuer>, and the signature must verify
 * with its key.  Any live tracker can issue tickets.
 *
 * Locking: a ts_ticket_signer_t or ts_ticket_verifier_t belongs to one
 * thread (the verifier caches verified issuer certificates).
 * Crash behaviour: nothing persistent.
 */
#ifndef TS_TICKET_H_INCLUDED
#define TS_TICKET_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "ts_pki_key.h"

typedef struct {
    uint32_t issuer;
    char     group[TS_ID_MAX_B + 1];
    char     name[TS_NAME_MAX_B + 1];
    uint8_t  fp[TS_FP_B];
    uint64_t issued_ms;
    uint64_t expires_ms;
} ts_ticket_t;

/* Structural parse only (no signature check): 0, or -1 for anything
 * malformed (bad magic, bad id or name, trailing bytes, oversize).
 * cert/certlen/signed_len point into p (may be NULL). */
int ts_ticket_parse(const void *p, size_t n, ts_ticket_t *t,
                    const uint8_t **cert, size_t *certlen,
                    size_t *signed_len, const uint8_t **sig,
                    size_t *siglen);

typedef struct ts_ticket_signer_s ts_ticket_signer_t;
/* Loads the tracker's key and certificate (PEM).  NULL with err. */
ts_ticket_signer_t *ts_ticket_signer_new(uint32_t issuer, const char *crt,
                                         const char *key, char *err,
                                         size_t errsz);
void ts_ticket_signer_free(ts_ticket_signer_t *s);
/* Appends a signed ticket for t (issuer taken from s) to out as its
 * wire form.  0 or -1. */
int  ts_ticket_sign(ts_ticket_signer_t *s, const ts_ticket_t *t,
                    ts_wbuf_t *out);

typedef struct ts_ticket_verifier_s ts_ticket_verifier_t;
/* ca: cluster CA certificate (PEM).  NULL with err. */
ts_ticket_verifier_t *ts_ticket_verifier_new(const char *ca, char *err,
                                             size_t errsz);
void ts_ticket_verifier_free(ts_ticket_verifier_t *v);
/* Full check: structure, issuer certificate (CA chain, CN names the
 * issuer; cached), signature, expiry against now_ms (wall), and, when
 * fp is not NULL, that the ticket names fp.  0 with *out filled, or -1
 * with a reason in err ("forged", "expired", "other identity", ...). */
int ts_ticket_verify(ts_ticket_verifier_t *v, const void *p, size_t n,
                     int64_t now_ms, const uint8_t *fp, ts_ticket_t *out,
                     char *err, size_t errsz);

#endif
