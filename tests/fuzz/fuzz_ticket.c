/*
 * fuzz_ticket.c -- libFuzzer target: download tickets (common/ts_ticket.h):
 * ts_ticket_parse and ts_ticket_verify.
 *
 * Set-up, once per process (fz_tmpdir): a cluster PKI (CA, trackers 1 and
 * 2) and a rogue one (another CA, its own tracker 1); a verifier on the
 * cluster CA; four signers: the genuine tracker 1, and three that must
 * never pass -- tracker 2's certificate claiming issuer 1, tracker 1's
 * certificate claiming issuer 2, and the rogue CA's tracker 1.
 *
 * Input byte 0 picks a mode:
 *   0  ts_ticket_parse of the rest: on success the spans it returns lie
 *      inside the input, the signature is the last 64 bytes and group and
 *      name are valid;
 *   1  ts_ticket_verify of the rest as it is (at its own issue time, with
 *      no, its own or another fingerprint): a success must agree with the
 *      parse (seeds are signed by another CA, so this mostly walks the
 *      certificate checks);
 *   2  re-signing: bytes 1..5 are (signer, fingerprint choice, u16
 *      position, xor), the rest a ticket whose fields are parsed and
 *      signed again by the chosen signer (with issue time = now and the
 *      default lifetime when bit 0 of the fingerprint choice is set).
 *      The genuine signer's ticket must then verify, for its own
 *      fingerprint only, and not at its expiry;
 *      the others' must never verify; and flipping any one byte of a
 *      genuine ticket must make it fail;
 *   3  like 2 but each ticket is verified twice by the same verifier (the
 *      issuer-certificate cache): a cached certificate must not vouch for
 *      another issuer.
 *
 * Locking: single-threaded.  Crash behaviour: PEM files in the temp dir.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_buf.h"
#include "ts_net.h"
#include "ts_ticket.h"
#include "fz_util.h"

#define SIGNERS_N  4

static ts_ticket_verifier_t *verifier;
static ts_ticket_signer_t   *signers[SIGNERS_N];   /* [0] is genuine */


static ts_ticket_signer_t *
signer(uint32_t issuer, const char *crt, const char *key)
{
    char                err[256];
    ts_ticket_signer_t *s = ts_ticket_signer_new(issuer, crt, key, err,
                                                 sizeof(err));

    if (s == NULL) {
        fz_fail(__FILE__, __LINE__, err);
    }
    return s;
}


void
fz_init(void)
{
    char ca[PATH_MAX], c1[PATH_MAX], k1[PATH_MAX], c2[PATH_MAX],
         k2[PATH_MAX], err[256];

    fz_pki("pki", ca, c1, k1, c2, k2);
    verifier = ts_ticket_verifier_new(ca, err, sizeof(err));
    if (verifier == NULL) {
        fz_fail(__FILE__, __LINE__, err);
    }
    signers[0] = signer(1, c1, k1);
    signers[1] = signer(1, c2, k2);
    signers[2] = signer(2, c1, k1);
    fz_pki("rogue", NULL, c1, k1, NULL, NULL);
    signers[3] = signer(1, c1, k1);
}


static void
mode_parse(const uint8_t *p, size_t n)
{
    ts_ticket_t    t;
    const uint8_t *cert, *sig;
    size_t         certlen, signed_len, siglen;

    if (ts_ticket_parse(p, n, &t, &cert, &certlen, &signed_len, &sig,
                        &siglen) != 0)
    {
        return;
    }
    FZ_CHECK(n <= TS_TICKET_MAX_B);
    FZ_CHECK(cert > p && cert + certlen <= p + signed_len);
    FZ_CHECK(certlen > 0 && certlen <= TS_TICKET_CERT_MAX_B);
    FZ_CHECK(siglen == 64 && sig + siglen == p + n);
    FZ_CHECK(signed_len + 4 + siglen == n);
    FZ_CHECK(ts_valid_id(t.group) && ts_valid_filename(t.name));
    FZ_CHECK(t.issuer >= 1 && t.issuer <= TS_TRACKERS_MAX_N);
    FZ_CHECK(t.expires_ms >= t.issued_ms);
}


static void
mode_verify(const uint8_t *p, size_t n)
{
    ts_ticket_t t, out;
    uint8_t     other[TS_FP_B];
    char        err[256];
    int64_t     now = 1;

    if (ts_ticket_parse(p, n, &t, NULL, NULL, NULL, NULL, NULL) == 0) {
        now = (int64_t) t.issued_ms;
    }
    memset(other, 0x5a, sizeof(other));
    if (ts_ticket_verify(verifier, p, n, now, NULL, &out, err, sizeof(err))
        == 0)
    {
        FZ_CHECK(memcmp(&out, &t, sizeof(t)) == 0);
    }
    (void) ts_ticket_verify(verifier, p, n, now, t.fp, &out, err,
                            sizeof(err));
    if (memcmp(other, t.fp, sizeof(other)) != 0) {
        FZ_CHECK(ts_ticket_verify(verifier, p, n, now, other, &out, err,
                                  sizeof(err)) != 0);
    }
}


static void
mode_resign(const uint8_t *in, size_t size, int twice)
{
    ts_ticket_t  t, out;
    ts_wbuf_t    w;
    uint8_t      other[TS_FP_B];
    char         err[256];
    int          s, ok, i, rounds = twice ? 2 : 1;
    size_t       pos;
    uint8_t      x;
    int64_t      now;

    if (size < 5) {
        return;
    }
    s = in[0] % SIGNERS_N;
    pos = (size_t) (in[2] << 8 | in[3]);
    x = in[4];
    if (ts_ticket_parse(in + 5, size - 5, &t, NULL, NULL, NULL, NULL, NULL)
        != 0)
    {
        return;
    }
    if (in[1] & 1) {
        /* a realistic lifetime, so the wall clock is inside it too */
        t.issued_ms = (uint64_t) ts_wall_ms();
        t.expires_ms = t.issued_ms + TS_TICKET_TTL_MS;
    }
    ts_wbuf_init(&w);
    FZ_CHECK(ts_ticket_sign(signers[s], &t, &w) == 0);
    FZ_CHECK(w.len <= TS_TICKET_MAX_B);
    now = (int64_t) t.issued_ms;
    for (i = 0; i < rounds; i++) {
        ok = ts_ticket_verify(verifier, w.data, w.len, now, t.fp, &out, err,
                              sizeof(err)) == 0;
        if (s != 0) {
            FZ_CHECK(!ok);
            continue;
        }
        if (!(in[1] & 1)) {
            /* arbitrary times: the certificate's own validity is judged
             * against the real clock first, the cache against now_ms, so
             * only agreement with the fields is checked */
            FZ_CHECK(!ok || (out.expires_ms == t.expires_ms
                             && (uint64_t) now < t.expires_ms));
            continue;
        }
        if (!ok) {
            fz_fail(__FILE__, __LINE__, err);
        }
        FZ_CHECK(out.issuer == 1 && strcmp(out.group, t.group) == 0
                 && strcmp(out.name, t.name) == 0
                 && memcmp(out.fp, t.fp, TS_FP_B) == 0
                 && out.expires_ms == t.expires_ms);
    }
    if (s == 0) {
        /* expired at its expiry, refused for another identity */
        FZ_CHECK(ts_ticket_verify(verifier, w.data, w.len,
                                  (int64_t) t.expires_ms, t.fp, &out, err,
                                  sizeof(err)) != 0
                 || t.expires_ms > INT64_MAX);
        memcpy(other, t.fp, sizeof(other));
        other[in[1] % TS_FP_B] ^= 0x80;
        FZ_CHECK(ts_ticket_verify(verifier, w.data, w.len, now, other, &out,
                                  err, sizeof(err)) != 0);
        /* any one byte changed: refused */
        if (x != 0) {
            w.data[pos % w.len] ^= x;
            FZ_CHECK(ts_ticket_verify(verifier, w.data, w.len, now, t.fp,
                                      &out, err, sizeof(err)) != 0);
        }
    }
    ts_wbuf_free(&w);
}


static void
mode_resign_once(const uint8_t *p, size_t n)
{
    mode_resign(p, n, 0);
}


static void
mode_resign_twice(const uint8_t *p, size_t n)
{
    mode_resign(p, n, 1);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_mode_t modes[] = {
        mode_parse, mode_verify, mode_resign_once, mode_resign_twice,
    };

    return FZ_MODES(data, size, modes);
}
