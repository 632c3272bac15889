/*
 * ts_sec.h -- what the commands of the ts_sec security test tool share:
 * the parsed options, the exit codes and the argument helpers of
 * tests/tools/ts_sec.c, and the peer command (ts_sec_peer.c).
 *
 * Locking: single-threaded tool.  Crash behaviour: nothing persists.
 */
#ifndef TS_SEC_H
#define TS_SEC_H

#include <stdint.h>
#include <stdio.h>

#define SEC_EX_USAGE      64
#define SEC_EX_HANDSHAKE  2
#define SEC_TIMEOUT_MS    10000
#define SEC_PATH_B        4096
#define SEC_SIG_B         64        /* Ed25519 */
#define SEC_WINDOW_N      4         /* GETs in flight (TS_NODE_PIPELINE_N) */

typedef struct {
    const char *pki, *group, *name, *fp_hex, *key, *crt, *addr, *cert_dir;
    const char *expect_fp, *ticket_hex, *ip;
    long long   ttl_ms;
    int         have_ttl;
    int         issuer;
    int         trackers;
    long        get_idx;            /* -1: PEER_MAP */
    long        count;              /* GETs from get_idx on */
    int         ranged;             /* --range: every GET a ranged one */
    uint32_t    roff, rlen;         /* ... of these bytes (any values) */
    int         plain;
    int         no_cert;
    int         idle_ms;
    int         timeout_ms;
} sec_opts_t;


/* ts_sec.c */
void sec_usage(FILE *f);
int sec_hex_arg(const char *s, uint8_t *out, size_t n, const char *what);

/* ts_sec_peer.c: the peer command; its exit code */
int sec_peer(const sec_opts_t *o);

#endif /* TS_SEC_H */
