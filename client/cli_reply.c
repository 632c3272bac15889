/*
 * cli_reply.c -- decoders of the tracker's reply bodies that the client
 * commands read (see cli_reply.h).  They are separate from the commands
 * (which send the request, print and free) so that the unit tests and
 * the fuzz target exercise exactly the code the client runs.
 *
 * Lists are read in one pass: the count is checked against the bytes
 * left (each row's least wire size) before the row array is allocated,
 * then each row is decoded and validated; a failure frees the array.
 *
 * Locking: none; no state.  Crash behaviour: nothing persistent.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "ts_proto.h"
#include "cli_reply.h"

/* the least bytes of one row on the wire: a valid id or name takes a
 * u16 length and at least one byte */
#define CLI_REPLY_ID_MIN_B    3u
#define CLI_REPLY_USER_MIN_B  CLI_REPLY_ID_MIN_B
#define CLI_REPLY_GROUP_MIN_B (2 * CLI_REPLY_ID_MIN_B + 4)
/* LIST_FILES rows with an invalid (even empty) name are skipped, not
 * refused: the least is an empty name */
#define CLI_REPLY_FILE_MIN_B  (2u + 8u + 4u)
#define CLI_REPLY_SHARE_MIN_B (2 * CLI_REPLY_ID_MIN_B + 1)

/* Decodes one row into row; 0, or -1 when the body is malformed. */
typedef int (*cli_reply_row_fn)(ts_rbuf_t *b, void *row);


static int
cli_reply_bad(void)
{
    errno = EBADMSG;
    return -1;
}


/* u32 n, then n rows of rowsz bytes each at least min_b on the wire. */
static int
cli_reply_list(ts_rbuf_t *b, size_t rowsz, size_t min_b,
               cli_reply_row_fn fn, void **rows, uint32_t *n)
{
    uint8_t   *a = NULL;
    uint32_t   cnt, i;

    *rows = NULL;
    *n = 0;
    cnt = ts_get_u32(b);
    if (b->err || cnt > ts_rbuf_left(b) / min_b) {
        return cli_reply_bad();
    }
    if (cnt > 0) {
        a = calloc(cnt, rowsz);
        if (a == NULL) {
            errno = ENOMEM;
            return -1;
        }
    }
    for (i = 0; i < cnt; i++) {
        if (fn(b, a + (size_t) i * rowsz) != 0) {
            break;
        }
    }
    if (i < cnt || ts_rbuf_end(b) != 0) {
        free(a);
        return cli_reply_bad();
    }
    *rows = a;
    *n = cnt;
    return 0;
}


/* A str field that must be a valid id. */
static int
cli_reply_id(ts_rbuf_t *b, char id[TS_ID_MAX_B + 1])
{
    if (ts_get_str(b, id, TS_ID_MAX_B + 1) != 0 || !ts_valid_id(id)) {
        id[0] = '\0';
        return -1;
    }
    return 0;
}


int
cli_reply_empty(ts_rbuf_t *b)
{
    return ts_rbuf_end(b) == 0 ? 0 : cli_reply_bad();
}


int
cli_reply_login(ts_rbuf_t *b, uint8_t tok[TS_TOKEN_B],
                uint32_t *heartbeat_ms)
{
    *heartbeat_ms = 0;
    if (ts_get_raw(b, tok, TS_TOKEN_B) != 0) {
        return cli_reply_bad();
    }
    /* the heartbeat period came later in the protocol: optional */
    if (ts_rbuf_left(b) > 0) {
        *heartbeat_ms = ts_get_u32(b);
    }
    if (ts_rbuf_end(b) != 0) {
        *heartbeat_ms = 0;
        return cli_reply_bad();
    }
    return 0;
}


int
cli_reply_leave_group(ts_rbuf_t *b, char owner[TS_ID_MAX_B + 1])
{
    if (ts_get_str(b, owner, TS_ID_MAX_B + 1) != 0
        || ts_rbuf_end(b) != 0
        || !(owner[0] == '\0' || strcmp(owner, "-") == 0
             || ts_valid_id(owner)))
    {
        owner[0] = '\0';
        return cli_reply_bad();
    }
    return 0;
}


static int
cli_reply_user_row(ts_rbuf_t *b, void *row)
{
    cli_reply_user_t *u = row;

    return cli_reply_id(b, u->user);
}


int
cli_reply_list_requests(ts_rbuf_t *b, cli_reply_user_t **rows, uint32_t *n)
{
    void  *a;
    int    rc;

    rc = cli_reply_list(b, sizeof(**rows), CLI_REPLY_USER_MIN_B,
                        cli_reply_user_row, &a, n);
    *rows = a;
    return rc;
}


static int
cli_reply_group_row(ts_rbuf_t *b, void *row)
{
    cli_reply_group_t *g = row;

    if (cli_reply_id(b, g->group) != 0 || cli_reply_id(b, g->owner) != 0) {
        return -1;
    }
    g->members = ts_get_u32(b);
    return b->err ? -1 : 0;
}


int
cli_reply_list_groups(ts_rbuf_t *b, cli_reply_group_t **rows, uint32_t *n)
{
    void  *a;
    int    rc;

    rc = cli_reply_list(b, sizeof(**rows), CLI_REPLY_GROUP_MIN_B,
                        cli_reply_group_row, &a, n);
    *rows = a;
    return rc;
}


static int
cli_reply_file_row(ts_rbuf_t *b, void *row)
{
    cli_reply_file_t *f = row;

    if (ts_get_str(b, f->name, sizeof(f->name)) != 0) {
        return -1;
    }
    f->size = ts_get_u64(b);
    f->sources = ts_get_u32(b);
    return b->err ? -1 : 0;
}


int
cli_reply_list_files(ts_rbuf_t *b, cli_reply_file_t **rows, uint32_t *n,
                     uint32_t *dropped)
{
    cli_reply_file_t *r;
    void             *a;
    uint32_t          i, k;

    *dropped = 0;
    *rows = NULL;
    if (cli_reply_list(b, sizeof(**rows), CLI_REPLY_FILE_MIN_B,
                       cli_reply_file_row, &a, n) != 0)
    {
        return -1;
    }
    /* names from the network: only valid file names go on (the order of
     * the others is kept) */
    r = a;
    *rows = r;
    for (i = 0, k = 0; i < *n; i++) {
        if (!ts_valid_filename(r[i].name)) {
            (*dropped)++;
            continue;
        }
        if (k != i) {
            r[k] = r[i];
        }
        k++;
    }
    *n = k;
    if (k == 0) {
        free(r);
        *rows = NULL;
    }
    return 0;
}


static int
cli_reply_share_row(ts_rbuf_t *b, void *row)
{
    cli_reply_share_t *s = row;
    uint8_t            c;

    if (cli_reply_id(b, s->group) != 0
        || ts_get_str(b, s->name, sizeof(s->name)) != 0
        || !ts_valid_filename(s->name))
    {
        return -1;
    }
    c = ts_get_u8(b);
    if (b->err || c > 1) {
        return -1;
    }
    s->complete = c;
    return 0;
}


int
cli_reply_my_shares(ts_rbuf_t *b, cli_reply_share_t **rows, uint32_t *n)
{
    void  *a;
    int    rc;

    rc = cli_reply_list(b, sizeof(**rows), CLI_REPLY_SHARE_MIN_B,
                        cli_reply_share_row, &a, n);
    *rows = a;
    return rc;
}
