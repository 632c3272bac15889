/*
 * ts_pki_key.h -- certificate fingerprint size and the private key file
 * rule, shared by the TLS layer (net/ts_pki.c) and download tickets
 * (ts_ticket.c).
 *
 * Locking: none.  Crash behaviour: nothing persistent.
 */
#ifndef TS_PKI_KEY_H_INCLUDED
#define TS_PKI_KEY_H_INCLUDED

#include <stddef.h>

#define TS_FP_B   32            /* certificate fingerprint, SHA-256 */

/* A private key file must be a regular file that only its owner can
 * read or write (as ssh insists): 0, or -1 with err saying what to do
 * ("chmod 600 ..."). */
int ts_pki_key_private(const char *key_path, char *err, size_t errsz);

#endif
