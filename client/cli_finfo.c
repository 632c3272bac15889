/*
 * cli_finfo.c -- the FILE_INFO reply decoder (see cli_finfo.h).
 *
 * Everything is checked against the bytes left before it is allocated;
 * a body with a byte too many or too few is refused whole.
 *
 * Locking: none.  Crash behaviour: nothing persistent.
 */
#include <stdlib.h>
#include <string.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "cli_state.h"
#include "cli_finfo.h"


void
cli_finfo_free(cli_finfo_t *fi)
{
    free(fi->hashes);
    fi->hashes = NULL;
}


int
cli_finfo_parse(ts_rbuf_t *r, cli_finfo_t *fi)
{
    char            addr[TS_STR_MAX_B + 1];
    uint8_t         fp[TS_FP_B];
    const uint8_t  *tk;
    uint32_t        n, i, tlen;
    int             complete, j, pass;
    cli_src_t       tmp[TS_NODE_SOURCES_N * 2];
    int             ntmp = 0;

    memset(fi, 0, sizeof(*fi));
    fi->size = ts_get_u64(r);
    ts_get_raw(r, fi->sha1, 20);
    fi->nchunks = ts_get_u32(r);
    if (r->err || fi->size > TS_FILE_MAX_B
        || fi->nchunks != cli_nchunks(fi->size)
        || 20ull * fi->nchunks > ts_rbuf_left(r))
    {
        return -1;
    }
    if (fi->nchunks > 0) {
        fi->hashes = malloc(20ull * fi->nchunks);
        if (fi->hashes == NULL) {
            return -1;
        }
        ts_get_raw(r, fi->hashes, 20ull * fi->nchunks);
    }
    n = ts_get_u32(r);
    /* each source takes at least 2 + 1 + 4 + TS_FP_B bytes */
    if (r->err || n > ts_rbuf_left(r) / (7 + TS_FP_B)) {
        cli_finfo_free(fi);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (ts_get_str(r, addr, sizeof(addr)) != 0) {
            break;
        }
        complete = ts_get_u8(r) != 0;
        (void) ts_get_u32(r);
        ts_get_raw(r, fp, TS_FP_B);
        if (r->err) {
            break;
        }
        if (addr[0] == '\0' || strlen(addr) >= sizeof(tmp[0].addr)
            || ntmp == (int) (sizeof(tmp) / sizeof(tmp[0])))
        {
            continue;
        }
        memcpy(tmp[ntmp].addr, addr, strlen(addr) + 1);
        tmp[ntmp].complete = complete;
        memcpy(tmp[ntmp].fp, fp, TS_FP_B);
        ntmp++;
    }
    if (i < n) {
        cli_finfo_free(fi);
        return -1;
    }
    /* the ticket: opaque here (the peers verify it), only bounded */
    tk = ts_get_blob(r, &tlen, TS_TICKET_MAX_B);
    if (r->err || ts_rbuf_end(r) != 0) {
        cli_finfo_free(fi);
        return -1;
    }
    if (tlen > 0 && tk != NULL) {
        memcpy(fi->ticket, tk, tlen);
        fi->ticket_len = tlen;
    }
    /* complete sources first when there are more than we can keep */
    for (pass = 1; pass >= 0; pass--) {
        for (j = 0; j < ntmp && fi->nsrc < TS_NODE_SOURCES_N; j++) {
            if (tmp[j].complete == pass) {
                fi->src[fi->nsrc++] = tmp[j];
            }
        }
    }
    return 0;
}
