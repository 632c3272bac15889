/*
 * cli_rec.h -- the records node.tdb holds (cli_state.h keys them): a
 * share {path, size, mtime_ns, nchunks, sha1} and a download {dest,
 * part, size, nchunks, sha1, hashes, state, error, done, part_id}, and
 * their bounded codec (a version byte first; every field checked on
 * decode: lengths before allocation, nchunks against size).
 *
 * Locking: none (plain values and pure functions).
 * Crash behaviour: nothing persistent.
 */
#ifndef CLI_REC_H_INCLUDED
#define CLI_REC_H_INCLUDED

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "node_shm.h"

#define CLI_REC_VERSION  1      /* shares; downloads written before 2 */
#define CLI_DL_VERSION   2      /* downloads: + the .part's identity */

typedef struct {
    char      group[TS_ID_MAX_B + 1];
    char      name[TS_NAME_MAX_B + 1];
    char      path[PATH_MAX];
    uint64_t  size;
    int64_t   mtime_ns;
    uint32_t  nchunks;
    uint8_t   sha1[20];
} cli_share_rec_t;

typedef enum {
    CLI_DL_ACTIVE = 1,      /* running (or held by a logout) */
    CLI_DL_DONE   = 2,
    CLI_DL_FAILED = 3,
    CLI_DL_PAUSED = 4       /* paused by the user: no new chunk fetched */
} cli_dl_state_t;

typedef struct {
    char      group[TS_ID_MAX_B + 1];
    char      name[TS_NAME_MAX_B + 1];
    char      dest[PATH_MAX];
    char      part[PATH_MAX];
    uint64_t  size;
    uint32_t  nchunks;
    uint8_t   sha1[20];
    uint8_t  *hashes;       /* nchunks x 20 (malloc; NULL when 0 chunks) */
    uint32_t  state;        /* cli_dl_state_t */
    char      error[256];   /* FAILED reason */
    uint8_t  *done;         /* (nchunks+7)/8 bytes, LSB first (malloc) */
    /* The .part this download made itself (O_EXCL) and may write: its
     * device, inode and birth time.  Whoever opens the .part or the renamed file
     * checks them, so a file put at either name by someone else is never
     * written, adopted or served.  Zero: a version-1 record, which pins
     * the .part it finds at its next start. */
    node_fid_t part_id;
} cli_dl_rec_t;

/* chunk count of a size; bitmap bytes of a chunk count */
uint32_t cli_nchunks(uint64_t size);
size_t   cli_bitmap_b(uint32_t nchunks);

/* ---- codec (pure; exported for tests) -------------------------------- */
void cli_share_encode(const cli_share_rec_t *r, ts_wbuf_t *b);
int  cli_share_decode(const void *p, size_t n, cli_share_rec_t *r);
void cli_dl_encode(const cli_dl_rec_t *r, ts_wbuf_t *b);
/* Fills r (allocating hashes and done); 0, or -1 with nothing allocated. */
int  cli_dl_decode(const void *p, size_t n, cli_dl_rec_t *r);
/* Allocates zeroed hashes and done for r->nchunks; 0 or -1. */
int  cli_dl_alloc(cli_dl_rec_t *r);
void cli_dl_free(cli_dl_rec_t *r);      /* frees the arrays only */
/* Deep copy (arrays duplicated); 0 or -1. */
int  cli_dl_copy(cli_dl_rec_t *dst, const cli_dl_rec_t *src);

#endif
