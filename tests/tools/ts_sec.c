/*
 * ts_sec.c -- security test tool: makes identities and download tickets
 * (genuine, forged, expired, for another identity) and plays a
 * downloader against a node's uploader port, so the system tests
 * (tests/system/test_sec_peer.py) can attack the data plane from outside.
 *
 * Usage: ts_sec COMMAND [options]   (ts_sec --help for every option)
 *   mkcert DIR        a self-signed node identity in DIR (node.crt/.key,
 *                     made if missing); prints its fingerprint (hex)
 *   pki DIR [--trackers N] [--ip IP]
 *                     a cluster CA in DIR and tracker-1..N certificates
 *                     (e.g. a rogue CA, whose tickets peers must refuse)
 *   fp FILE           fingerprint of a PEM certificate
 *   ticket --pki DIR --issuer N --group G --name F --fp HEX --ttl-ms T
 *          [--key K --crt C]
 *                     a ticket, as hex on stdout, signed with DIR's
 *                     tracker-N key (the real signer, ts_ticket_sign); with
 *                     --key/--crt it is built and signed by hand with that
 *                     key and carries that certificate (forgeries: the
 *                     real tracker certificate with another key, or a
 *                     certificate no CA signed).  T < 0: already expired.
 *   peer --addr IP:PORT (--cert DIR | --no-cert) [--expect-fp HEX]
 *        [--ticket HEX] --group G --name F [--get IDX [--count N]]
 *        [--range OFF:LEN] [--plain] [--idle-ms MS] [--timeout-ms MS]
 *                     connects as a downloader (TLS, DIR's identity made
 *                     if missing, or --plain), sends PEER_AUTH with the
 *                     ticket if given, then PEER_GET IDX .. IDX+N-1 (or
 *                     PEER_MAP), pipelined (ranged GETs of bytes
 *                     OFF..OFF+LEN-1 of each chunk with --range, the
 *                     values sent as given), and prints one line
 *                       auth=<st> map=<st> get=<st> bytes=N sha1=<hex|->
 *                     (<st>: a status name such as OK, PERM, AUTH, "-"
 *                     when not sent, "closed" when no reply came; for N
 *                     GETs the first non-OK one; bytes and sha1 are over
 *                     the chunks received, in order); each refusal's
 *                     message goes to
 *                     stderr as "auth: <msg>".  Exit 0 if every reply
 *                     came, 2 if the TLS handshake failed, 1 for any
 *                     other failure (link closed, timeout), 64 for usage.
 *
 * Locking: single-threaded.  Crash behaviour: every network wait has a
 * deadline (--timeout-ms, default 10000); files are written by the PKI
 * module (temp + rename); nothing else persists.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ts_clock.h"
#include "ts_buf.h"
#include "ts_config.h"
#include "ts_crypto.h"
#include "ts_log.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "ts_ticket.h"
#include "ts_tls.h"

#include "ts_sec/ts_sec.h"

void
sec_usage(FILE *f)
{
    fprintf(f,
"usage: ts_sec mkcert DIR\n"
"       ts_sec pki DIR [--trackers N] [--ip IP]\n"
"       ts_sec fp FILE\n"
"       ts_sec ticket --pki DIR --issuer N --group G --name F --fp HEX\n"
"                     --ttl-ms T [--key K --crt C]\n"
"       ts_sec peer --addr IP:PORT (--cert DIR | --no-cert)\n"
"                   [--expect-fp HEX] [--ticket HEX] --group G --name F\n"
"                   [--get IDX [--count N]] [--range OFF:LEN] [--plain]\n"
"                   [--idle-ms MS]\n"
"                   [--timeout-ms MS]\n"
"\n"
"  mkcert   make (if missing) a self-signed node identity in DIR; print\n"
"           its SHA-256 fingerprint as hex\n"
"  pki      make a cluster CA and tracker-1..N certificates in DIR\n"
"  fp       print the fingerprint of a PEM certificate\n"
"  ticket   print a download ticket (hex) signed by DIR/tracker-N.key, or\n"
"           by K with certificate C (forgeries); T < 0 = already expired\n"
"  peer     act as a downloader against an uploader: optional PEER_AUTH,\n"
"           then PEER_GET IDX..IDX+N-1 (pipelined) or PEER_MAP; prints\n"
"           \"auth=ST map=ST get=ST bytes=N sha1=HEX\"; exit 0 done,\n"
"           2 handshake failed, 1 other failure\n");
}


int
sec_hex_arg(const char *s, uint8_t *out, size_t n, const char *what)
{
    if (s == NULL || strlen(s) != 2 * n || ts_unhex(s, out, n) != 0) {
        fprintf(stderr, "ts_sec: %s must be %zu hex digits\n", what, 2 * n);
        return -1;
    }
    return 0;
}


static void
sec_print_hex(const uint8_t *p, size_t n)
{
    char  *h = malloc(2 * n + 1);

    if (h == NULL) {
        fprintf(stderr, "ts_sec: out of memory\n");
        exit(1);
    }
    ts_hex(p, n, h);
    printf("%s\n", h);
    free(h);
}


/* ---- identities ------------------------------------------------------- */

static int
sec_mkcert(const char *dir)
{
    uint8_t  fp[TS_FP_B];
    char     err[512] = "";

    if (ts_pki_ensure_node(dir, fp, err, sizeof(err)) != 0) {
        fprintf(stderr, "ts_sec: %s\n", err);
        return 1;
    }
    sec_print_hex(fp, TS_FP_B);
    return 0;
}


static int
sec_pki(const char *dir, const sec_opts_t *o)
{
    char  err[512] = "";
    int   i;

    if (ts_pki_ensure_ca(dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "ts_sec: %s\n", err);
        return 1;
    }
    for (i = 1; i <= o->trackers; i++) {
        if (ts_pki_ensure_tracker(dir, i, o->ip ? o->ip : "127.0.0.1", err,
                                  sizeof(err)) != 0)
        {
            fprintf(stderr, "ts_sec: %s\n", err);
            return 1;
        }
    }
    return 0;
}


static int
sec_fp(const char *file)
{
    uint8_t fp[TS_FP_B];

    if (ts_pki_cert_fp(file, fp) != 0) {
        fprintf(stderr, "ts_sec: cannot read a certificate from %s\n", file);
        return 1;
    }
    sec_print_hex(fp, TS_FP_B);
    return 0;
}


/* ---- tickets ---------------------------------------------------------- */

/* The wire form of ts_ticket.h built by hand and signed with any key:
 * what a forger can do without the tracker's key. */
static int
sec_forge(const ts_ticket_t *t, uint32_t issuer, const char *key_p,
    const char *crt_p, ts_wbuf_t *out)
{
    FILE           *f;
    EVP_PKEY       *key = NULL;
    X509           *x = NULL;
    EVP_MD_CTX     *md = NULL;
    unsigned char  *der = NULL;
    uint8_t         sig[SEC_SIG_B];
    size_t          siglen = sizeof(sig);
    int             len, rc = -1;

    if ((f = fopen(key_p, "r")) != NULL) {
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    if ((f = fopen(crt_p, "r")) != NULL) {
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    if (key == NULL || x == NULL || (len = i2d_X509(x, &der)) <= 0) {
        fprintf(stderr, "ts_sec: cannot read key %s / certificate %s\n",
                key_p, crt_p);
        goto out;
    }
    ts_put_raw(out, "TKT1", 4);
    ts_put_u32(out, issuer);
    ts_put_str(out, t->group);
    ts_put_str(out, t->name);
    ts_put_raw(out, t->fp, TS_FP_B);
    ts_put_u64(out, t->issued_ms);
    ts_put_u64(out, t->expires_ms);
    ts_put_blob(out, der, (uint32_t) len);
    md = EVP_MD_CTX_new();
    if (out->err || md == NULL
        || EVP_DigestSignInit(md, NULL, NULL, NULL, key) != 1
        || EVP_DigestSign(md, sig, &siglen, out->data, out->len) != 1
        || siglen != SEC_SIG_B)
    {
        fprintf(stderr, "ts_sec: cannot sign with %s (Ed25519 needed)\n",
                key_p);
        goto out;
    }
    ts_put_blob(out, sig, SEC_SIG_B);
    rc = out->err ? -1 : 0;
out:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}


static int
sec_ticket(const sec_opts_t *o)
{
    ts_ticket_signer_t *s;
    ts_ticket_t         t;
    ts_wbuf_t           b;
    char                crt[SEC_PATH_B], key[SEC_PATH_B], err[512] = "";
    int64_t             now = ts_wall_ms();
    int                 rc;

    if (o->group == NULL || o->name == NULL || !o->have_ttl
        || o->issuer < 1 || (o->pki == NULL && (o->key == NULL
                                                || o->crt == NULL))
        || (o->key == NULL) != (o->crt == NULL))
    {
        sec_usage(stderr);
        return SEC_EX_USAGE;
    }
    memset(&t, 0, sizeof(t));
    if (strlen(o->group) >= sizeof(t.group)
        || strlen(o->name) >= sizeof(t.name)
        || sec_hex_arg(o->fp_hex, t.fp, TS_FP_B, "--fp") != 0)
    {
        return SEC_EX_USAGE;
    }
    snprintf(t.group, sizeof(t.group), "%s", o->group);
    snprintf(t.name, sizeof(t.name), "%s", o->name);
    t.issuer = (uint32_t) o->issuer;
    t.expires_ms = (uint64_t) (now + o->ttl_ms);
    /* issued <= expires always (the parser insists); an expired ticket
     * was issued before it expired */
    t.issued_ms = o->ttl_ms >= 0 ? (uint64_t) now
                                 : (uint64_t) (now + 2 * o->ttl_ms);
    ts_wbuf_init(&b);
    if (o->key != NULL) {
        rc = sec_forge(&t, t.issuer, o->key, o->crt, &b);
    } else {
        snprintf(crt, sizeof(crt), "%s/tracker-%d.crt", o->pki, o->issuer);
        snprintf(key, sizeof(key), "%s/tracker-%d.key", o->pki, o->issuer);
        s = ts_ticket_signer_new(t.issuer, crt, key, err, sizeof(err));
        if (s == NULL) {
            fprintf(stderr, "ts_sec: %s\n", err);
            ts_wbuf_free(&b);
            return 1;
        }
        rc = ts_ticket_sign(s, &t, &b);
        ts_ticket_signer_free(s);
    }
    if (rc == 0 && !b.err) {
        sec_print_hex(b.data, b.len);
    } else {
        fprintf(stderr, "ts_sec: cannot make the ticket\n");
        rc = 1;
    }
    ts_wbuf_free(&b);
    return rc == 0 ? 0 : 1;
}


/* ---- main ------------------------------------------------------------- */

/* --range OFF:LEN into o, the values as given (hostile ones too).  0,
 * or EINVAL. */
static int
sec_range_arg(const char *arg, sec_opts_t *o)
{
    char tail;

    o->ranged = 1;
    return sscanf(arg, "%" SCNu32 ":%" SCNu32 "%c", &o->roff, &o->rlen,
                  &tail) == 2 ? 0 : EINVAL;
}


int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "pki",        required_argument, NULL, 'P' },
        { "issuer",     required_argument, NULL, 'I' },
        { "group",      required_argument, NULL, 'g' },
        { "name",       required_argument, NULL, 'n' },
        { "fp",         required_argument, NULL, 'f' },
        { "ttl-ms",     required_argument, NULL, 'T' },
        { "key",        required_argument, NULL, 'k' },
        { "crt",        required_argument, NULL, 'c' },
        { "addr",       required_argument, NULL, 'a' },
        { "cert",       required_argument, NULL, 'C' },
        { "no-cert",    no_argument,       NULL, 'N' },
        { "expect-fp",  required_argument, NULL, 'e' },
        { "ticket",     required_argument, NULL, 't' },
        { "get",        required_argument, NULL, 'G' },
        { "count",      required_argument, NULL, 'K' },
        { "range",      required_argument, NULL, 'R' },
        { "plain",      no_argument,       NULL, 'p' },
        { "idle-ms",    required_argument, NULL, 'i' },
        { "timeout-ms", required_argument, NULL, 'o' },
        { "trackers",   required_argument, NULL, 'r' },
        { "ip",         required_argument, NULL, 'A' },
        { "help",       no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    sec_opts_t   o;
    const char  *cmd;
    char        *end;
    int          opt;

    memset(&o, 0, sizeof(o));
    o.get_idx = -1;
    o.count = 1;
    o.trackers = 1;
    o.timeout_ms = SEC_TIMEOUT_MS;
    ts_log_set_role("ts_sec");
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0
                      || strcmp(argv[1], "-h") == 0))
    {
        sec_usage(stdout);
        return 0;
    }
    if (argc < 2 || argv[1][0] == '-') {
        sec_usage(stderr);
        return SEC_EX_USAGE;
    }
    cmd = argv[1];
    optind = 2;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        errno = 0;
        end = NULL;
        switch (opt) {
        case 'P': o.pki = optarg; break;
        case 'g': o.group = optarg; break;
        case 'n': o.name = optarg; break;
        case 'f': o.fp_hex = optarg; break;
        case 'k': o.key = optarg; break;
        case 'c': o.crt = optarg; break;
        case 'a': o.addr = optarg; break;
        case 'C': o.cert_dir = optarg; break;
        case 'N': o.no_cert = 1; break;
        case 'e': o.expect_fp = optarg; break;
        case 't': o.ticket_hex = optarg; break;
        case 'p': o.plain = 1; break;
        case 'A': o.ip = optarg; break;
        case 'I':
            o.issuer = (int) strtol(optarg, &end, 10);
            break;
        case 'T':
            o.ttl_ms = strtoll(optarg, &end, 10);
            o.have_ttl = 1;
            break;
        case 'G':
            o.get_idx = strtol(optarg, &end, 10);
            if (o.get_idx < 0 || o.get_idx > (long) UINT32_MAX) {
                errno = ERANGE;
            }
            break;
        case 'R':
            errno = sec_range_arg(optarg, &o);
            break;
        case 'K':
            o.count = strtol(optarg, &end, 10);
            if (o.count < 1 || o.count > 1000000) {
                errno = ERANGE;
            }
            break;
        case 'i':
            o.idle_ms = (int) strtol(optarg, &end, 10);
            if (o.idle_ms < 0 || o.idle_ms > 600000) {
                errno = ERANGE;
            }
            break;
        case 'o':
            o.timeout_ms = (int) strtol(optarg, &end, 10);
            if (o.timeout_ms <= 0 || o.timeout_ms > 600000) {
                errno = ERANGE;
            }
            break;
        case 'r':
            o.trackers = (int) strtol(optarg, &end, 10);
            if (o.trackers < 0 || o.trackers > TS_TRACKERS_MAX_N) {
                errno = ERANGE;
            }
            break;
        case 'h':
            sec_usage(stdout);
            return 0;
        default:
            sec_usage(stderr);
            return SEC_EX_USAGE;
        }
        if (errno != 0 || (end != NULL && (*end != '\0' || end == optarg))) {
            fprintf(stderr, "ts_sec: bad number '%s'\n", optarg);
            return SEC_EX_USAGE;
        }
    }

    if (strcmp(cmd, "mkcert") == 0 || strcmp(cmd, "pki") == 0
        || strcmp(cmd, "fp") == 0)
    {
        if (optind != argc - 1) {
            sec_usage(stderr);
            return SEC_EX_USAGE;
        }
        if (cmd[0] == 'm') {
            return sec_mkcert(argv[optind]);
        }
        return cmd[0] == 'p' ? sec_pki(argv[optind], &o)
                             : sec_fp(argv[optind]);
    }
    if (optind != argc) {
        sec_usage(stderr);
        return SEC_EX_USAGE;
    }
    if (strcmp(cmd, "ticket") == 0) {
        return sec_ticket(&o);
    }
    if (strcmp(cmd, "peer") == 0) {
        return sec_peer(&o);
    }
    fprintf(stderr, "ts_sec: unknown command '%s'\n", cmd);
    sec_usage(stderr);
    return SEC_EX_USAGE;
}
