/*
 * fuzz_cli_reply.c -- libFuzzer target: what the client parses from a
 * tracker's replies.
 *
 * Input byte 0 picks a mode, the rest is a reply payload (head + body):
 *   0  FILE_INFO: ts_reply_parse, then cli_finfo_parse (client/cli_agent.c,
 *      the real parser: hashes, sources with fingerprints, the ticket);
 *      kept sources are NUL-terminated, at most TS_NODE_SOURCES_N, complete
 *      ones first, the ticket within TS_TICKET_MAX_B;
 *   1  cli_quote_name (client output of names that came from the network)
 *      on the body as a C string, into buffers of several sizes;
 *   2..6  the reply bodies that client/cli_cmds.c and cli_files.c parse
 *      inside their command functions (not callable alone: they send the
 *      request themselves), replayed here with the same ts_buf field
 *      sequence and bounds: LOGIN (tok, u32 heartbeat), LEAVE_GROUP (str),
 *      LIST_REQUESTS (u32 n, n x str), LIST_GROUPS / LIST_MY_GROUPS
 *      (u32 n, n x (str, str, u32)), LIST_FILES (u32 n, n x (str, u64,
 *      u32)).
 *
 * Locking: single-threaded.  Crash behaviour: nothing on disk.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ts_buf.h"
#include "ts_proto.h"
#include "cli_agent.h"
#include "fz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fz_quiet();
    return 0;
}


static void
finfo(ts_rbuf_t *r)
{
    cli_finfo_t *fi = malloc(sizeof(*fi));
    int          i, seen_partial = 0;

    FZ_CHECK(fi != NULL);
    if (cli_finfo_parse(r, fi) == 0) {
        FZ_CHECK(fi->nsrc >= 0 && fi->nsrc <= TS_NODE_SOURCES_N);
        FZ_CHECK((fi->nchunks == 0) == (fi->hashes == NULL));
        FZ_CHECK(fi->ticket_len <= TS_TICKET_MAX_B);
        for (i = 0; i < fi->nsrc; i++) {
            FZ_CHECK(memchr(fi->src[i].addr, '\0', sizeof(fi->src[i].addr))
                     != NULL);
            FZ_CHECK(fi->src[i].addr[0] != '\0');
            if (!fi->src[i].complete) {
                seen_partial = 1;
            } else {
                FZ_CHECK(!seen_partial);
            }
        }
        cli_finfo_free(fi);
    }
    free(fi);
}


static void
quote(const uint8_t *p, size_t n)
{
    static const size_t sizes[] = { 1, 2, 8, 64, 4 * TS_NAME_MAX_B + 8 };
    char   *name = malloc(n + 1), out[4 * TS_NAME_MAX_B + 8];
    size_t  i;

    FZ_CHECK(name != NULL);
    memcpy(name, p, n);
    name[n] = '\0';
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        memset(out, 'x', sizeof(out));
        cli_quote_name(name, out, sizes[i]);
        FZ_CHECK(memchr(out, '\0', sizes[i]) != NULL);
    }
    free(name);
}


/* the field sequences of cli_cmds.c / cli_files.c */
static void
bodies(int kind, ts_rbuf_t *b)
{
    uint8_t  tok[TS_TOKEN_B];
    char     s1[TS_STR_MAX_B + 1], s2[TS_ID_MAX_B + 1];
    uint32_t n, i;

    switch (kind) {
    case 2:                                     /* LOGIN */
        if (ts_get_raw(b, tok, TS_TOKEN_B) == 0 && ts_rbuf_left(b) >= 4) {
            (void) ts_get_u32(b);
        }
        break;
    case 3:                                     /* LEAVE_GROUP */
        (void) ts_get_str(b, s2, sizeof(s2));
        break;
    case 4:                                     /* LIST_REQUESTS */
        n = ts_get_u32(b);
        if (b->err || n > ts_rbuf_left(b) / 2) {
            return;
        }
        for (i = 0; i < n && ts_get_str(b, s1, TS_ID_MAX_B + 2) == 0; i++) {
            FZ_CHECK(strlen(s1) <= TS_ID_MAX_B + 1);
        }
        break;
    case 5:                                     /* LIST_(MY_)GROUPS */
        n = ts_get_u32(b);
        if (b->err || n > ts_rbuf_left(b) / 8) {
            return;
        }
        for (i = 0; i < n; i++) {
            if (ts_get_str(b, s2, sizeof(s2)) != 0
                || ts_get_str(b, s1, TS_ID_MAX_B + 1) != 0)
            {
                break;
            }
            (void) ts_get_u32(b);
        }
        break;
    default:                                    /* LIST_FILES */
        n = ts_get_u32(b);
        if (b->err || n > ts_rbuf_left(b) / 14) {
            return;
        }
        for (i = 0; i < n; i++) {
            if (ts_get_str(b, s1, TS_NAME_MAX_B + 1) != 0) {
                break;
            }
            (void) ts_get_u64(b);
            (void) ts_get_u32(b);
        }
        break;
    }
    (void) ts_rbuf_end(b);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t    *p;
    size_t      n;
    ts_rbuf_t   r;
    ts_status_t st;
    char        msg[TS_STR_MAX_B + 1];
    int         mode;

    if (size == 0) {
        return 0;
    }
    mode = data[0] % 7;
    n = size - 1;
    p = fz_dup(data + 1, n);            /* exact size: overreads show */
    if (mode == 1) {
        quote(p, n);
    } else {
        ts_rbuf_init(&r, p, n);
        if (ts_reply_parse(&r, &st, msg, sizeof(msg)) == 0 && st == TS_OK) {
            if (mode == 0) {
                finfo(&r);
            } else {
                bodies(mode, &r);
            }
        }
    }
    free(p);
    return 0;
}
