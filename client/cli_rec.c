/*
 * cli_rec.c -- the records of node.tdb (a share, a download) and their
 * codec (see cli_rec.h for the layouts).
 *
 * Records are ts_buf encoded with a version byte first; decode checks
 * every length against its bound before anything is allocated and the
 * whole record is consumed (ts_rbuf_end), so a truncated, padded or
 * otherwise corrupt record is rejected as a unit.
 *
 * Locking: none (pure functions over caller buffers).
 * Crash behaviour: nothing persistent here (cli_state.c writes).
 */
#include <stdlib.h>
#include <string.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "ts_proto.h"
#include "cli_rec.h"


uint32_t
cli_nchunks(uint64_t size)
{
    return (uint32_t) ((size + TS_CHUNK_B - 1) / TS_CHUNK_B);
}


size_t
cli_bitmap_b(uint32_t nchunks)
{
    return ((size_t) nchunks + 7) / 8;
}


/* ---- codec ------------------------------------------------------------ */

void
cli_share_encode(const cli_share_rec_t *r, ts_wbuf_t *b)
{
    ts_put_u8(b, CLI_REC_VERSION);
    ts_put_str(b, r->group);
    ts_put_str(b, r->name);
    ts_put_str(b, r->path);
    ts_put_u64(b, r->size);
    ts_put_u64(b, (uint64_t) r->mtime_ns);
    ts_put_u32(b, r->nchunks);
    ts_put_raw(b, r->sha1, 20);
}


/* an absolute path, not empty */
static int
cli_path_ok(const char *p)
{
    return p[0] == '/';
}


static int
cli_size_ok(uint64_t size, uint32_t nchunks)
{
    return size <= TS_FILE_MAX_B && nchunks == cli_nchunks(size);
}


int
cli_share_decode(const void *p, size_t n, cli_share_rec_t *r)
{
    ts_rbuf_t  rb;

    memset(r, 0, sizeof(*r));
    ts_rbuf_init(&rb, p, n);
    if (ts_get_u8(&rb) != CLI_REC_VERSION) {
        return -1;
    }
    ts_get_str(&rb, r->group, sizeof(r->group));
    ts_get_str(&rb, r->name, sizeof(r->name));
    ts_get_str(&rb, r->path, sizeof(r->path));
    r->size = ts_get_u64(&rb);
    r->mtime_ns = (int64_t) ts_get_u64(&rb);
    r->nchunks = ts_get_u32(&rb);
    ts_get_raw(&rb, r->sha1, 20);
    if (ts_rbuf_end(&rb) != 0 || !ts_valid_id(r->group)
        || !ts_valid_filename(r->name) || !cli_path_ok(r->path)
        || !cli_size_ok(r->size, r->nchunks))
    {
        memset(r, 0, sizeof(*r));
        return -1;
    }
    return 0;
}


void
cli_dl_encode(const cli_dl_rec_t *r, ts_wbuf_t *b)
{
    ts_put_u8(b, CLI_DL_VERSION);
    ts_put_str(b, r->group);
    ts_put_str(b, r->name);
    ts_put_str(b, r->dest);
    ts_put_str(b, r->part);
    ts_put_u64(b, r->size);
    ts_put_u32(b, r->nchunks);
    ts_put_raw(b, r->sha1, 20);
    ts_put_blob(b, r->hashes, (uint32_t) (20ull * r->nchunks));
    ts_put_u8(b, (uint8_t) r->state);
    ts_put_str(b, r->error);
    ts_put_blob(b, r->done, (uint32_t) cli_bitmap_b(r->nchunks));
    ts_put_u64(b, r->part_id.dev);
    ts_put_u64(b, r->part_id.ino);
    ts_put_u64(b, (uint64_t) r->part_id.btime_ns);
}


int
cli_dl_alloc(cli_dl_rec_t *r)
{
    r->hashes = NULL;
    r->done = NULL;
    if (r->nchunks > TS_FILE_MAX_CHUNKS_N) {
        return -1;
    }
    if (r->nchunks == 0) {
        return 0;
    }
    r->hashes = calloc(r->nchunks, 20);
    r->done = calloc(cli_bitmap_b(r->nchunks), 1);
    if (r->hashes == NULL || r->done == NULL) {
        cli_dl_free(r);
        return -1;
    }
    return 0;
}


void
cli_dl_free(cli_dl_rec_t *r)
{
    free(r->hashes);
    free(r->done);
    r->hashes = NULL;
    r->done = NULL;
}


int
cli_dl_copy(cli_dl_rec_t *dst, const cli_dl_rec_t *src)
{
    *dst = *src;
    if (cli_dl_alloc(dst) != 0) {
        return -1;
    }
    if (src->nchunks > 0) {
        memcpy(dst->hashes, src->hashes, 20ull * src->nchunks);
        memcpy(dst->done, src->done, cli_bitmap_b(src->nchunks));
    }
    return 0;
}


int
cli_dl_decode(const void *p, size_t n, cli_dl_rec_t *r)
{
    ts_rbuf_t       rb;
    const uint8_t  *hashes, *done;
    uint32_t        hlen, dlen;
    uint32_t        i;
    uint8_t         ver;

    memset(r, 0, sizeof(*r));
    ts_rbuf_init(&rb, p, n);
    ver = ts_get_u8(&rb);
    if (ver != CLI_REC_VERSION && ver != CLI_DL_VERSION) {
        return -1;
    }
    ts_get_str(&rb, r->group, sizeof(r->group));
    ts_get_str(&rb, r->name, sizeof(r->name));
    ts_get_str(&rb, r->dest, sizeof(r->dest));
    ts_get_str(&rb, r->part, sizeof(r->part));
    r->size = ts_get_u64(&rb);
    r->nchunks = ts_get_u32(&rb);
    ts_get_raw(&rb, r->sha1, 20);
    if (rb.err || !cli_size_ok(r->size, r->nchunks)) {
        goto bad;
    }
    /* the blobs' bounds follow from nchunks, checked above */
    hashes = ts_get_blob(&rb, &hlen, (uint32_t) (20ull * r->nchunks));
    r->state = ts_get_u8(&rb);
    ts_get_str(&rb, r->error, sizeof(r->error));
    done = ts_get_blob(&rb, &dlen, (uint32_t) cli_bitmap_b(r->nchunks));
    if (ver >= CLI_DL_VERSION) {
        r->part_id.dev = ts_get_u64(&rb);
        r->part_id.ino = ts_get_u64(&rb);
        r->part_id.btime_ns = (int64_t) ts_get_u64(&rb);
    }
    if (ts_rbuf_end(&rb) != 0
        || hlen != 20ull * r->nchunks || dlen != cli_bitmap_b(r->nchunks)
        || (r->state != CLI_DL_ACTIVE && r->state != CLI_DL_DONE
            && r->state != CLI_DL_FAILED && r->state != CLI_DL_PAUSED)
        || !ts_valid_id(r->group) || !ts_valid_filename(r->name)
        || !cli_path_ok(r->dest) || !cli_path_ok(r->part))
    {
        goto bad;
    }
    /* bits past the last chunk must be clear */
    for (i = r->nchunks; i < dlen * 8; i++) {
        if ((done[i >> 3] >> (i & 7)) & 1) {
            goto bad;
        }
    }
    if (cli_dl_alloc(r) != 0) {
        goto bad;
    }
    if (r->nchunks > 0) {
        memcpy(r->hashes, hashes, hlen);
        memcpy(r->done, done, dlen);
    }
    return 0;

bad:
    memset(r, 0, sizeof(*r));
    return -1;
}
