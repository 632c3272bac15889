/*
 * fuzz_cli_reply.c -- libFuzzer target: what the client parses from a
 * tracker's replies.
 *
 * Input byte 0 picks a mode, the rest is a reply payload (head + body):
 *   0  FILE_INFO: ts_reply_parse, then cli_finfo_parse (client/cli_finfo.c,
 *      the real parser: hashes, sources with fingerprints, the ticket);
 *      kept sources are NUL-terminated, at most TS_NODE_SOURCES_N, complete
 *      ones first, the ticket within TS_TICKET_MAX_B;
 *   1  cli_out_quote (client output of names that came from the network)
 *      on the body as a C string, into buffers of several sizes;
 *   2..7  the reply bodies the commands of client/cli_cmds.c and
 *      cli_files.c read, through the real decoders they call
 *      (client/cli_reply.h): 2 LOGIN, 3 LEAVE_GROUP, 4 LIST_REQUESTS,
 *      5 LIST_GROUPS / LIST_MY_GROUPS, 6 LIST_FILES, 7 MY_SHARES.
 *      Oracles: what a decoder accepts holds only valid ids and names
 *      and re-encodes (the tracker's ts_put_* sequence) to exactly the
 *      bytes it read (LIST_FILES: unless it dropped rows with invalid
 *      names); a refusal leaves nothing allocated and errno EBADMSG or
 *      ENOMEM;
 *   8  the empty OK body (cli_reply_empty): accepted exactly when no
 *      byte is left.
 *
 * Locking: single-threaded.  Crash behaviour: nothing on disk.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ts_buf.h"
#include "ts_proto.h"
#include "cli_agent.h"
#include "cli_out.h"
#include "cli_reply.h"
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
        cli_out_quote(name, out, sizes[i]);
        FZ_CHECK(memchr(out, '\0', sizes[i]) != NULL);
    }
    free(name);
}


/* Decodes one body with the real decoder of cli_reply.h; whatever it
 * accepts must be valid and re-encode (ts_put_*, the tracker's field
 * sequence) to exactly the bytes it read. */
static void
bodies(int kind, ts_rbuf_t *b)
{
    const uint8_t      *start = b->p + b->off;
    size_t              left = ts_rbuf_left(b);
    ts_wbuf_t           w;
    uint8_t             tok[TS_TOKEN_B];
    char                owner[TS_ID_MAX_B + 1];
    cli_reply_user_t   *u = NULL;
    cli_reply_group_t  *g = NULL;
    cli_reply_file_t   *f = NULL;
    cli_reply_share_t  *s = NULL;
    uint32_t            n = 0, i, hb, dropped;
    int                 rc;

    ts_wbuf_init(&w);
    switch (kind) {
    case 2:                                     /* LOGIN */
        rc = cli_reply_login(b, tok, &hb);
        if (rc == 0) {
            ts_put_raw(&w, tok, TS_TOKEN_B);
            if (left > TS_TOKEN_B) {
                ts_put_u32(&w, hb);
            } else {
                FZ_CHECK(hb == 0);
            }
        }
        break;
    case 3:                                     /* LEAVE_GROUP */
        rc = cli_reply_leave_group(b, owner);
        if (rc == 0) {
            FZ_CHECK(owner[0] == '\0' || strcmp(owner, "-") == 0
                     || ts_valid_id(owner));
            ts_put_str(&w, owner);
        } else {
            FZ_CHECK(owner[0] == '\0');
        }
        break;
    case 4:                                     /* LIST_REQUESTS */
        rc = cli_reply_list_requests(b, &u, &n);
        if (rc == 0) {
            FZ_CHECK((n == 0) == (u == NULL));
            ts_put_u32(&w, n);
            for (i = 0; i < n; i++) {
                FZ_CHECK(ts_valid_id(u[i].user));
                ts_put_str(&w, u[i].user);
            }
        }
        break;
    case 5:                                     /* LIST_(MY_)GROUPS */
        rc = cli_reply_list_groups(b, &g, &n);
        if (rc == 0) {
            FZ_CHECK((n == 0) == (g == NULL));
            ts_put_u32(&w, n);
            for (i = 0; i < n; i++) {
                FZ_CHECK(ts_valid_id(g[i].group) && ts_valid_id(g[i].owner));
                ts_put_str(&w, g[i].group);
                ts_put_str(&w, g[i].owner);
                ts_put_u32(&w, g[i].members);
            }
        }
        break;
    case 6:                                     /* LIST_FILES */
        rc = cli_reply_list_files(b, &f, &n, &dropped);
        if (rc == 0) {
            FZ_CHECK((n == 0) == (f == NULL));
            ts_put_u32(&w, n + dropped);
            for (i = 0; i < n; i++) {
                FZ_CHECK(ts_valid_filename(f[i].name));
                ts_put_str(&w, f[i].name);
                ts_put_u64(&w, f[i].size);
                ts_put_u32(&w, f[i].sources);
            }
            if (dropped > 0) {
                /* rows were left out: only the count can be compared */
                FZ_CHECK(!w.err && w.len <= left);
                ts_wbuf_reset(&w);
                ts_put_raw(&w, start, left);
            }
        }
        break;
    default:                                    /* MY_SHARES */
        rc = cli_reply_my_shares(b, &s, &n);
        if (rc == 0) {
            FZ_CHECK((n == 0) == (s == NULL));
            ts_put_u32(&w, n);
            for (i = 0; i < n; i++) {
                FZ_CHECK(ts_valid_id(s[i].group)
                         && ts_valid_filename(s[i].name)
                         && (s[i].complete == 0 || s[i].complete == 1));
                ts_put_str(&w, s[i].group);
                ts_put_str(&w, s[i].name);
                ts_put_u8(&w, (uint8_t) s[i].complete);
            }
        }
        break;
    }
    if (rc == 0) {
        FZ_CHECK(!w.err && w.len == left
                 && (left == 0 || memcmp(w.data, start, left) == 0));
        FZ_CHECK(ts_rbuf_end(b) == 0);
    } else {
        FZ_CHECK(u == NULL && g == NULL && f == NULL && s == NULL && n == 0);
        FZ_CHECK(errno == EBADMSG || errno == ENOMEM);
    }
    ts_wbuf_free(&w);
    free(u);
    free(g);
    free(f);
    free(s);
}


/* the empty OK body */
static void
empty(ts_rbuf_t *b)
{
    FZ_CHECK((cli_reply_empty(b) == 0) == (ts_rbuf_left(b) == 0));
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
    mode = data[0] % 9;
    n = size - 1;
    p = fz_dup(data + 1, n);            /* exact size: overreads show */
    if (mode == 1) {
        quote(p, n);
    } else {
        ts_rbuf_init(&r, p, n);
        if (ts_reply_parse(&r, &st, msg, sizeof(msg)) == 0 && st == TS_OK) {
            if (mode == 0) {
                finfo(&r);
            } else if (mode == 8) {
                empty(&r);
            } else {
                bodies(mode, &r);
            }
        }
    }
    free(p);
    return 0;
}
