/*
 * cli_finfo.h -- the FILE_INFO reply as the client uses it: the file's
 * size, SHA1 and chunk hashes, its sources (with their certificate
 * fingerprints) and the download ticket the tracker signed.
 *
 * The download command (cli_files.c) asks FILE_INFO before it starts a
 * download; the agent asks again every TS_NODE_SRC_REFRESH_MS for fresh
 * sources and tickets.  tests/fuzz/fuzz_cli_reply.c fuzzes the parser.
 *
 * Locking: none (pure functions over caller buffers).  Crash behaviour:
 * nothing persistent.
 */
#ifndef CLI_FINFO_H_INCLUDED
#define CLI_FINFO_H_INCLUDED

#include <stdint.h>

#include "ts_config.h"
#include "ts_buf.h"

typedef struct {
    char     addr[64];
    int      complete;
    uint8_t  fp[TS_FP_B];       /* its certificate fingerprint */
} cli_src_t;

typedef struct {
    uint64_t    size;
    uint8_t     sha1[20];
    uint32_t    nchunks;
    uint8_t    *hashes;         /* nchunks x 20 (malloc) */
    int         nsrc;           /* kept: at most TS_NODE_SOURCES_N */
    cli_src_t   src[TS_NODE_SOURCES_N];
    uint32_t    ticket_len;     /* 0: the tracker gave none */
    uint8_t     ticket[TS_TICKET_MAX_B];    /* ts_ticket.h wire form */
} cli_finfo_t;

/* Parses a FILE_INFO OK body to its last byte (sources with their
 * fingerprints, then the ticket blob); 0, or -1 (nothing to free).
 * Complete sources are kept first when there are too many. */
int  cli_finfo_parse(ts_rbuf_t *r, cli_finfo_t *fi);
void cli_finfo_free(cli_finfo_t *fi);

#endif
