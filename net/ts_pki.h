/*
 * ts_pki.h -- the key and certificate files behind TLS (ts_tls.h names
 * the identities and which link checks what).
 *
 *   cluster CA     <pki>/ca.crt, <pki>/ca.key   signs tracker certificates
 *   tracker N      <pki>/tracker-N.crt/.key     CN "tessera-tracker-N",
 *                                               SAN IP of its address
 *   node           <state>/node.crt/.key        self-signed, CN
 *                                               "tessera-node"
 * A fingerprint is SHA-256 of the certificate's DER (TS_FP_B bytes).
 *
 * Locking: creation takes an flock(2) on <dir>/.lock so trackers started
 * together make one CA.
 * Crash behaviour: key files appear whole or not at all (temp + fsync +
 * rename); a kill mid-creation leaves at most a temp file that the next
 * run overwrites.
 */
#ifndef TS_PKI_H_INCLUDED
#define TS_PKI_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "ts_pki_key.h"     /* TS_FP_B, ts_pki_key_private */

/* ---- PKI files ------------------------------------------------------ */
/* Creates <dir>/ca.crt and ca.key if both are missing (dir made 0700).
 * 0 (created or already there) or -1 with err. */
int ts_pki_ensure_ca(const char *dir, char *err, size_t errsz);
/* Creates <dir>/tracker-<id>.crt/.key signed by <dir>/ca.key if missing
 * (ip goes into subjectAltName).  Needs ca.key only when it must issue.
 * 0 or -1 with err. */
int ts_pki_ensure_tracker(const char *dir, int id, const char *ip,
                          char *err, size_t errsz);
/* Creates <state_dir>/node.crt/.key (self-signed) if missing; fills fp
 * (may be NULL).  0 or -1 with err. */
int ts_pki_ensure_node(const char *state_dir, uint8_t fp[TS_FP_B],
                       char *err, size_t errsz);
/* Creates <dir>/admin-<name>.crt/.key (0600), an operator's certificate
 * with the admin role, signed by <dir>/ca.key; refuses to replace an
 * existing one.  0 or -1 with err. */
int ts_pki_make_admin(const char *dir, const char *name, char *err,
                      size_t errsz);
/* Fingerprint of a PEM certificate file.  0 or -1. */
int ts_pki_cert_fp(const char *crt_path, uint8_t fp[TS_FP_B]);
/* Is the PEM certificate file crt a tracker certificate of the CA in the
 * PEM file ca (chain to that CA, then the tracker role: not a CA, CN and
 * subjectAltName "tessera-tracker-N", TLS server use)?  The tracker id N
 * (>= 1) it proves, or 0 with the reason in why ("not issued by this
 * cluster's CA (...)", "... without the tracker role (CN ...)").  The
 * same check a client applies to a tracker during the handshake. */
int ts_pki_tracker_cert_id(const char *crt, const char *ca, char *why,
                           size_t whysz);

#endif
