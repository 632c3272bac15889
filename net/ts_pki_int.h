/*
 * ts_pki_int.h -- certificate helpers and the last-error text shared by
 * the files of the TLS layer: ts_pki.c and ts_pki_role.c (which define
 * them) and ts_tls.c.  Nothing outside net/ts_tls.c, net/ts_pki.c and
 * net/ts_pki_role.c includes this.
 *
 * Locking: the error text is thread-local.
 * Crash behaviour: nothing persistent.
 */
#ifndef TS_PKI_INT_H_INCLUDED
#define TS_PKI_INT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "ts_pki_key.h"

#define TS_TLS_TRACKER_CN  "tessera-tracker-"
#define TS_TLS_NODE_CN     "tessera-node"
#define TS_TLS_ADMIN_CN    "tessera-admin-"

/* SHA-256 of x's DER.  0 or -1. */
int  ts_pki_x509_fp(X509 *x, uint8_t fp[TS_FP_B]);
/* "tessera-tracker-N" in x's CN -> N (1..TS_TRACKERS_MAX_N), else 0 */
int  ts_pki_x509_tracker_id(X509 *x);
/* The tracker role of x (ts_pki_role.c): N if x is tracker N's
 * certificate -- not a CA, CN and subjectAltName "tessera-tracker-N",
 * usable for purpose (X509_PURPOSE_SSL_SERVER for the end that answers,
 * X509_PURPOSE_SSL_CLIENT for the end that dials) -- else 0 with the
 * reason in why.  The chain to the CA is the caller's to check. */
int  ts_pki_x509_tracker_role(X509 *x, int purpose, char *why,
                              size_t whysz);
/* The admin role of x (ts_pki_role.c): 1 if x is an operator's
 * certificate -- not a CA, CN and subjectAltName "tessera-admin-NAME"
 * with NAME a valid id, usable for TLS client use -- with NAME copied to
 * name, else 0.  The chain to the CA is the caller's to check. */
int  ts_pki_x509_admin_role(X509 *x, char *name, size_t namesz);
/* Text for a failed chain verification (X509_V_ERR_*), naming "not
 * issued by this cluster's CA" where that is what it means; written to
 * buf, which is returned. */
const char *ts_pki_chain_reason(long vr, char *buf, size_t bufsz);

/* Records the OpenSSL error queue (prefixed with what) as this thread's
 * last TLS error and clears the queue; copies it to err if err != NULL. */
void ts_pki_set_err(const char *what, char *err, size_t errsz);
/* Sets this thread's last TLS error text. */
void ts_pki_set_errf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
const char *ts_pki_last_error(void);

#endif
