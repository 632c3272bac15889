/*
 * dl_frontier.c -- the streaming whole-file SHA1 of a download (the
 * shared "frontier", node_fhash_sh_t in node_shm.h).
 *
 * Purpose: the whole-file SHA1 is computed while downloading, not by
 * re-reading the .part at the end (tests/unit/test_node_perf.c is the
 * benchmark).  Only where it is needed (dl_fh_hashing): a fresh download
 * hashes each byte once, on receipt against the tracker's chunk list,
 * and its frontier only marks how far writeback may start; a resumed
 * one (chunks restored from node.tdb, whose pages a crash may have
 * lost) or every one with TS_DL_WHOLE_SHA1_CHECK hashes the whole file.
 * The frontier is advanced by whichever worker finds the chunk at the
 * frontier done: the chunk it just verified is hashed
 * straight from its receive buffer, the following done chunks are read
 * back from the page cache.  Writeback of the hashed prefix is started
 * every TS_DL_WB_STEP_B (sync_file_range, no wait), so the final fsync
 * has little left to do; each pwrite()n chunk also has its writeback
 * started at once and leaves the page cache some chunks later
 * (dl_fh_wrote), so a download reuses a bounded set of pages.
 * Finalization then only finishes the hash; if
 * the frontier is incomplete or disagrees, the .part is re-read and
 * decides (node_stats fh_rereads counts that).
 *
 * Locking: one worker at a time feeds a download's frontier (the fhash
 * owner claim, ts_claim); the state has two copies and a generation
 * word: the other copy is written, then published by CAS.
 *
 * Crash behaviour: a worker killed while feeding the frontier leaves the
 * published copy intact; reclaim frees its owner claim and the next worker
 * carries on from the last published frontier.
 */
/* SHA_CTX is a plain struct that can live in shm (node_fhash_sh_t); the
 * SHA1_* calls are deprecated in OpenSSL 3 but are the same assembly */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <string.h>
#include <unistd.h>

#include "dl_int.h"

_Static_assert(sizeof(SHA_CTX) <= NODE_FHASH_CTX_B, "SHA_CTX too big");

/* 1 if download i needs the whole-file SHA1: configured for every
 * download, or this one resumed from node.tdb.  Else every chunk was
 * verified against the tracker's list in memory right before its pwrite,
 * in this segment's life, and that is the whole-file check. */
int
dl_fh_hashing(const dl_t *w, int i)
{
    return TS_DL_WHOLE_SHA1_CHECK
           || atomic_load_explicit(&w->dls[i].restored,
                                   memory_order_relaxed) != 0;
}

/*
 * Chunk `chunk` was just written to the .part (fd): its writeback starts
 * now, and the chunk this worker wrote TS_DL_DROP_LAG_N writes ago, on
 * disk by then, leaves the page cache.  So a download keeps a bounded set
 * of page-cache pages that the next pwrite()s reuse, instead of touching
 * a gigabyte of new memory: on a VM whose host takes back the guest's
 * free pages, writing into fresh pages costs several times more.  A page
 * still dirty or under writeback is left alone (the final fsync covers
 * it); a peer asking for a dropped chunk is served from disk.
 */
void
dl_fh_wrote(dl_local_t *l, int fd, uint32_t chunk)
{
    uint32_t *slot, old;

    if (TS_DL_DROP_LAG_N == 0) {
        return;
    }
    sync_file_range(fd, (off_t) chunk * TS_CHUNK_B, TS_CHUNK_B,
                    SYNC_FILE_RANGE_WRITE);
    slot = &l->wrote[l->nwrote++
                     % (TS_DL_DROP_LAG_N > 0 ? TS_DL_DROP_LAG_N : 1)];
    old = *slot;
    *slot = chunk + 1;
    if (old != 0) {
        posix_fadvise(fd, (off_t) (old - 1) * TS_CHUNK_B, TS_CHUNK_B,
                      POSIX_FADV_DONTNEED);
    }
}

/* Feeds done chunks at the frontier of download i into the whole-file
 * SHA1, at most max of them; chunk `chunk` is taken from buf (when not
 * NULL), the others are read back from the .part (page cache).  Returns
 * the frontier after the call (0 when there is none for this download),
 * or DL_FH_BUSY when another worker holds the claim or the entry was
 * reset under us. */
uint32_t
dl_fh_advance(dl_t *w, int i, const uint8_t *buf, uint32_t chunk,
              uint32_t max)
{
    dl_local_t        *l = &w->loc[i];
    node_fhash_sh_t   *fh = node_dl_fhash(w->shm, i);
    _Atomic uint64_t  *done = node_dl_done(w->shm, i);
    node_fhash_copy_t *cp, *np;
    SHA_CTX            ctx;
    uint64_t           pub, off, wb;
    uint32_t           next, n = 0, len;
    ssize_t            got;
    int                fd, hashing;

    if (fh == NULL || !l->active) {
        return 0;               /* no frontier: finalization re-reads */
    }
    /* fh_next is a lower bound: its chunk not done = nothing to do */
    if (l->fh_next >= l->nchunks || !node_bit_test(done, l->fh_next)) {
        return l->fh_next;
    }
    if (!ts_claim_try(&fh->owner, w->me)) {
        return DL_FH_BUSY;
    }
    pub = atomic_load_explicit(&fh->pub, memory_order_acquire);
    if ((uint32_t) (pub >> 32) != l->id) {
        ts_claim_release(&fh->owner, w->me);
        return 0;               /* not ours (entry reused): no frontier */
    }
    cp = &fh->copy[pub & 1];
    np = &fh->copy[(pub & 1) ^ 1];
    next = cp->id == l->id ? cp->next : 0;
    if (next > l->nchunks) {
        next = 0;
    }
    if (next == 0) {
        SHA1_Init(&ctx);
    } else {
        memcpy(&ctx, cp->ctx, sizeof(ctx));
    }
    fd = -1;
    hashing = dl_fh_hashing(w, i);
    if (!hashing) {
        max = UINT32_MAX;       /* no work per chunk: catch up at once */
    }
    while (next < l->nchunks && n < max && node_bit_test(done, next)) {
        len = dl_local_chunk_len(l, next);
        if (!hashing) {
            /* verified on receipt: the frontier only paces writeback */
        } else if (buf != NULL && next == chunk) {
            SHA1_Update(&ctx, buf, len);
        } else {
            if (fd < 0 && (fd = dl_local_part_fd(l)) < 0) {
                break;
            }
            do {
                got = pread(fd, w->fbuf, len, (off_t) next * TS_CHUNK_B);
            } while (got < 0 && errno == EINTR);
            if (got != (ssize_t) len) {
                break;          /* finalization falls back to a re-read */
            }
            SHA1_Update(&ctx, w->fbuf, len);
        }
        next++;
        n++;
    }
    if (n > 0) {
        /* write the other copy, then publish it; a kill before the CAS
         * leaves the valid copy as it was */
        np->id = l->id;
        np->next = next;
        memcpy(np->ctx, &ctx, sizeof(ctx));
        if (!atomic_compare_exchange_strong_explicit(&fh->pub, &pub, pub + 1,
                                                     memory_order_acq_rel,
                                                     memory_order_relaxed))
        {
            ts_claim_release(&fh->owner, w->me);
            return DL_FH_BUSY;  /* the entry was reset under us */
        }
    }
    ts_claim_release(&fh->owner, w->me);
    if (next > l->fh_next) {
        l->fh_next = next;
    }
    /* start writeback of what is hashed so the final fsync has little
     * left to do (no wait here: SYNC_FILE_RANGE_WRITE only queues) */
    off = (uint64_t) l->fh_next * TS_CHUNK_B;
    if (off > l->size) {
        off = l->size;
    }
    if (TS_DL_WB_STEP_B > 0 && off >= l->wb_off + TS_DL_WB_STEP_B
        && l->fd >= 0)
    {
        wb = off - l->wb_off;
        sync_file_range(l->fd, (off_t) l->wb_off, (off_t) wb,
                        SYNC_FILE_RANGE_WRITE);
        l->wb_off = off;
    }
    return next;
}

/* The whole-file SHA1 once the frontier reached the end: 0, or -1 if
 * the published state is not complete (then the caller re-reads). */
int
dl_fh_final(dl_t *w, int i, uint8_t md[20])
{
    dl_local_t        *l = &w->loc[i];
    node_fhash_sh_t   *fh = node_dl_fhash(w->shm, i);
    node_fhash_copy_t  cp;
    SHA_CTX            ctx;
    uint64_t           pub;

    if (fh == NULL || !ts_claim_try(&fh->owner, w->me)) {
        return -1;
    }
    pub = atomic_load_explicit(&fh->pub, memory_order_acquire);
    cp = fh->copy[pub & 1];
    ts_claim_release(&fh->owner, w->me);
    if ((uint32_t) (pub >> 32) != l->id || cp.id != l->id
        || cp.next != l->nchunks)
    {
        return -1;
    }
    if (l->nchunks == 0) {
        SHA1_Init(&ctx);
    } else {
        memcpy(&ctx, cp.ctx, sizeof(ctx));
    }
    SHA1_Final(md, &ctx);
    return 0;
}
