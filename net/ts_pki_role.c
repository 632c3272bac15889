/*
 * ts_pki_role.c -- what makes a certificate a tracker's: the tracker role
 * check both ends of a tracker link apply, the text for a certificate
 * chain that does not end at the cluster CA, and the same check on a PEM
 * file (ts_pki.h).
 *
 * Purpose: a tracker is known by its certificate, not by where it sits in
 * somebody's tracker_info.txt.  Any certificate that chains to the
 * cluster CA and carries the tracker role proves "tracker N of this
 * cluster", and N comes from the certificate.  The role, as ts_pki.c
 * issues it, is:
 *   - not a CA (basicConstraints CA:FALSE),
 *   - subject CN "tessera-tracker-N" with N in 1..TS_TRACKERS_MAX_N,
 *   - the same name in subjectAltName (DNS:tessera-tracker-N; checked
 *     the way a TLS client checks a host name, no wildcards),
 *   - extended key usage for the side it is used on (serverAuth for a
 *     tracker that answers, clientAuth for a tracker that dials).
 * The admin role (an operator's certificate, `tracker --make-admin-cert
 * NAME`) is the same shape with CN and subjectAltName
 * "tessera-admin-NAME" and TLS client use; it carries no tracker id.
 * A node certificate (CN "tessera-node", self-signed) has no such role;
 * a certificate of another CA fails the chain before the role is looked
 * at.  The chain itself is verified by OpenSSL (the TLS handshake, or
 * X509_verify_cert here for a file).
 *
 * Locking: none; pure functions of their arguments (the error text buffer
 * is the caller's).
 * Crash behaviour: nothing persistent.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ts_config.h"
#include "ts_pki.h"
#include "ts_pki_int.h"

/* x's subject CN as printable text (control bytes and non-ASCII become
 * '?': the certificate may be an attacker's), "" if none */
static void
role_cn(X509 *x, char *out, size_t outsz)
{
    char   cn[80];
    int    n, i;
    size_t k = 0;

    out[0] = '\0';
    n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
                                  cn, sizeof(cn));
    for (i = 0; i < n && k + 1 < outsz; i++) {
        unsigned char c = (unsigned char) cn[i];

        out[k++] = (c < 0x20 || c >= 0x7f) ? '?' : (char) c;
    }
    out[k] = '\0';
}

int
ts_pki_x509_tracker_role(X509 *x, int purpose, char *why, size_t whysz)
{
    char name[64], cn[80];
    int  id;

    role_cn(x, cn, sizeof(cn));
    if (X509_check_ca(x) != 0) {
        snprintf(why, whysz, "a CA certificate (CN \"%s\"), not a tracker's",
                 cn);
        return 0;
    }
    id = ts_pki_x509_tracker_id(x);
    if (id == 0) {
        snprintf(why, whysz, "a certificate of the cluster CA without the "
                 "tracker role (CN \"%s\", not \"" TS_TLS_TRACKER_CN "N\")",
                 cn);
        return 0;
    }
    snprintf(name, sizeof(name), TS_TLS_TRACKER_CN "%d", id);
    if (X509_check_host(x, name, 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL)
        != 1)
    {
        ERR_clear_error();
        snprintf(why, whysz, "its CN names tracker %d but its "
                 "subjectAltName does not", id);
        return 0;
    }
    if (X509_check_purpose(x, purpose, 0) != 1) {
        ERR_clear_error();
        snprintf(why, whysz, "tracker %d's certificate is not for TLS %s "
                 "use (key usage)", id,
                 purpose == X509_PURPOSE_SSL_SERVER ? "server" : "client");
        return 0;
    }
    return id;
}

int
ts_pki_x509_admin_role(X509 *x, char *name, size_t namesz)
{
    char        cn[80], dns[96];
    const char *n;
    size_t      i, len;

    role_cn(x, cn, sizeof(cn));
    if (X509_check_ca(x) != 0
        || strncmp(cn, TS_TLS_ADMIN_CN, sizeof(TS_TLS_ADMIN_CN) - 1) != 0)
    {
        return 0;
    }
    n = cn + sizeof(TS_TLS_ADMIN_CN) - 1;
    len = strlen(n);
    if (len == 0 || len > TS_ID_MAX_B || len >= namesz) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        char c = n[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'
              || c == '.'))
        {
            return 0;
        }
    }
    snprintf(dns, sizeof(dns), "%s", cn);
    if (X509_check_host(x, dns, 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) != 1
        || X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0) != 1)
    {
        ERR_clear_error();
        return 0;
    }
    memcpy(name, n, len + 1);
    return 1;
}

const char *
ts_pki_chain_reason(long vr, char *buf, size_t bufsz)
{
    const char *e = X509_verify_cert_error_string(vr);

    switch (vr) {
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        snprintf(buf, bufsz, "self-signed (a node's certificate?), not "
                 "issued by this cluster's CA");
        break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_SUBJECT_ISSUER_MISMATCH:
    case X509_V_ERR_AKID_SKID_MISMATCH:
        snprintf(buf, bufsz, "not issued by this cluster's CA (%s)", e);
        break;
    default:
        snprintf(buf, bufsz, "%s", e);
        break;
    }
    return buf;
}

int
ts_pki_tracker_cert_id(const char *crt, const char *ca, char *why,
                       size_t whysz)
{
    X509           *x = NULL;
    X509_STORE     *st = NULL;
    X509_STORE_CTX *sc = NULL;
    FILE           *f;
    char            r[160];
    int             id = 0;

    f = fopen(crt, "r");
    if (f != NULL) {
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    if (x == NULL) {
        snprintf(why, whysz, "%s: not a readable PEM certificate", crt);
        goto out;
    }
    st = X509_STORE_new();
    if (st == NULL || X509_STORE_load_file(st, ca) != 1) {
        snprintf(why, whysz, "%s: not a readable CA certificate", ca);
        goto out;
    }
    sc = X509_STORE_CTX_new();
    if (sc == NULL || X509_STORE_CTX_init(sc, st, x, NULL) != 1) {
        snprintf(why, whysz, "out of memory");
        goto out;
    }
    if (X509_verify_cert(sc) != 1) {
        snprintf(why, whysz, "%s", ts_pki_chain_reason(
                     X509_STORE_CTX_get_error(sc), r, sizeof(r)));
        goto out;
    }
    id = ts_pki_x509_tracker_role(x, X509_PURPOSE_SSL_SERVER, why, whysz);
out:
    X509_STORE_CTX_free(sc);
    X509_STORE_free(st);
    X509_free(x);
    ERR_clear_error();
    return id;
}
