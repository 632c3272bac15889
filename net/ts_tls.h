/*
 * ts_tls.h -- TLS 1.3 for every Tessera link, and the keys behind it.
 *
 * Identities (all Ed25519, X.509, PEM files written temp+fsync+rename):
 *   cluster CA     <pki>/ca.crt, <pki>/ca.key   signs tracker certificates
 *   tracker N      <pki>/tracker-N.crt/.key     CN "tessera-tracker-N",
 *                                               SAN IP of its address
 *   node           <state>/node.crt/.key        self-signed, CN
 *                                               "tessera-node"; known to
 *                                               others by its fingerprint
 * A fingerprint is SHA-256 of the certificate's DER (TS_FP_B bytes).
 *
 * Links and what each end checks (ts_tls_ctx_new roles):
 *   client -> tracker   TS_TLS_TRACKER_CLIENT, expect_tracker 0: the
 *                       server's chain ends at the CA and it has the
 *                       tracker role (ts_pki_tracker_cert_id); any
 *                       tracker of the cluster will do and its id is
 *                       learnt from the certificate (ts_conn_peer_tracker)
 *                       -- never from the line it has in the client's
 *                       tracker_info.txt; the client presents its node
 *                       certificate.
 *   tracker <- anyone   TS_TLS_TRACKER_SERVER: tracker cert; a client
 *                       certificate is asked for but optional.  After the
 *                       handshake ts_conn_peer_tracker() says whether the
 *                       peer proved to be tracker N (CA chain + CN) and
 *                       ts_conn_peer_fp() gives a node's fingerprint.
 *   tracker -> tracker  TS_TLS_TRACKER_CLIENT with the tracker's own
 *                       certificate and expect_tracker N: mutual
 *                       authentication, and the server must be tracker N.
 *   node -> node        TS_TLS_PEER_CLIENT: node cert both ways; the
 *                       caller compares ts_conn_peer_fp() with the
 *                       fingerprint the tracker gave (ts_conn_new_tls
 *                       can do it during the handshake: expect_fp).
 *   node <- node        TS_TLS_PEER_SERVER: a client certificate is
 *                       required (any key; its fingerprint is what a
 *                       download ticket must name).
 *
 * Built with -DTS_TLS_OFF (bench only: `make BUILD=notls`), every
 * ts_conn_new_tls() returns a plain connection and fingerprints are all
 * zero; nothing else changes.
 *
 * The PKI files (CA, certificates, keys, fingerprints) are in ts_pki.h,
 * which this header includes.
 *
 * Locking: a ts_tls_t (SSL_CTX) is shared read-only by the threads of a
 * process after creation.
 * Crash behaviour: nothing persistent here (see ts_pki.h for the files).
 */
#ifndef TS_TLS_H_INCLUDED
#define TS_TLS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "ts_net.h"
#include "ts_pki.h"       /* PKI files, TS_FP_B, ts_pki_key_private */

typedef struct ts_tls_s ts_tls_t;

typedef enum {
    TS_TLS_TRACKER_SERVER = 1,
    TS_TLS_TRACKER_CLIENT,
    TS_TLS_PEER_SERVER,
    TS_TLS_PEER_CLIENT
} ts_tls_role_t;

/* 1 if this build encrypts (0 in a TS_TLS_OFF build). */
int ts_tls_enabled(void);

/* ---- contexts ------------------------------------------------------- */
/* crt/key: this end's certificate and key (PEM files; NULL for a client
 * that presents none).  ca: the cluster CA (PEM file); needed by
 * TRACKER_CLIENT and TRACKER_SERVER, ignored by the peer roles (NULL ok).
 * NULL with err on failure. */
ts_tls_t *ts_tls_ctx_new(ts_tls_role_t role, const char *crt,
                         const char *key, const char *ca,
                         char *err, size_t errsz);
void      ts_tls_ctx_free(ts_tls_t *t);

/* ---- connections ---------------------------------------------------- */
/* Wraps fd in a TLS session of t's role (client or server side).  The
 * handshake is not done here:
 *   - event loops just call ts_conn_read/ts_conn_write: they drive the
 *     handshake and return -1/EAGAIN until data can flow; ts_conn_want()
 *     tells which direction to wait for; ts_conn_ready() becomes 1 when
 *     the handshake is complete;
 *   - blocking callers call ts_conn_handshake(c, timeout_ms).
 * expect_tracker (TRACKER_CLIENT): the server must show a tracker
 * certificate of the CA; > 0: of tracker N (another id fails with "it is
 * tracker K, not tracker N"); 0: of any tracker.  A refused certificate
 * fails the handshake with errno EPERM and ts_tls_last_error() saying why
 * ("not issued by this cluster's CA ...", "... without the tracker role
 * (CN ...)").
 * expect_fp (PEER_CLIENT, may be NULL): the server's fingerprint must be
 * this; otherwise the handshake fails (errno EPERM).  Takes ownership of
 * fd; NULL (fd closed) on OOM. */
ts_conn_t *ts_conn_new_tls(int fd, ts_tls_t *t, int expect_tracker,
                           const uint8_t *expect_fp);

/* ts_conn_handshake, ts_conn_handshake_step, ts_conn_ready, ts_conn_want
 * and ts_conn_is_tls are in ts_net.h (the same for every transport). */

/* Peer identity, valid once ts_conn_ready():
 * ts_conn_peer_fp: 0 and fp filled if the peer presented a certificate,
 * -1 if none (or a plain connection: fp zeroed, returns -1).
 * ts_conn_peer_tracker: N if the peer's certificate chains to the CA and
 * has the role of tracker N, else 0 (TRACKER_CLIENT: the tracker that
 * answered; TRACKER_SERVER: a dialling tracker). */
int ts_conn_peer_fp(const ts_conn_t *c, uint8_t fp[TS_FP_B]);
int ts_conn_peer_tracker(const ts_conn_t *c);
/* 1 if the peer's certificate chains to the CA and has the admin role
 * (an operator: `tracker --make-admin-cert`), else 0 (server side). */
int ts_conn_peer_admin(const ts_conn_t *c);

/* Last TLS failure of this thread as text (for logs), "" if none. */
const char *ts_tls_last_error(void);

#endif
