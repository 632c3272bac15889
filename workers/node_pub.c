/*
 * node_pub.c -- the CLI-side calls that publish shares and downloads into
 * the node's segment (node.h): share add/find/remove, download add and
 * remove, its sources and its ticket.
 *
 * Purpose: the CLI process is the single writer of every share and
 * download entry's text and size fields, of a download's ticket and of
 * its source list; the workers read them (node_shm.c's seqlock readers).
 *
 * Locking: text fields are written inside the entry's seqlock (seq odd
 * while writing) before the state leaves FREE; a ticket inside the same
 * seqlock, then ticket_gen is bumped.  A source's addr and fp are written
 * while it is FREE.  States, bits, claims and counters change only by
 * C11 atomics; no lock is taken.
 *
 * Crash behaviour: a CLI killed in the middle of a write leaves the seq
 * odd: readers retry and give up (the segment is rebuilt from node.tdb
 * at the next start).  A removed download's id moves before its state, so
 * a worker holding the index sees it changed.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_claim.h"
#include "ts_log.h"
#include "ts_shm.h"
#include "node_shm.h"
#include "node.h"


static void
node_seq_begin(_Atomic uint32_t *seq)
{
    atomic_fetch_add_explicit(seq, 1, memory_order_acq_rel);   /* odd */
    atomic_thread_fence(memory_order_release);
}


static void
node_seq_end(_Atomic uint32_t *seq)
{
    atomic_fetch_add_explicit(seq, 1, memory_order_release);   /* even */
}


static int
node_chunks_ok(uint64_t size, uint32_t nchunks)
{
    return size <= TS_FILE_MAX_B
           && (uint64_t) nchunks == (size + TS_CHUNK_B - 1) / TS_CHUNK_B;
}


static int
node_text_ok(const char *group, const char *name, const char *path)
{
    return group != NULL && name != NULL && path != NULL
           && strlen(group) <= TS_ID_MAX_B && strlen(name) <= TS_NAME_MAX_B
           && strlen(path) < PATH_MAX;
}


/* A text field of an entry, zero-padded (inside the entry's seqlock). */
static void
node_text_put(char *dst, size_t size, const char *src)
{
    memset(dst, 0, size);
    snprintf(dst, size, "%s", src);
}


int
node_share_find(const ts_shm_t *s, const char *group, const char *name)
{
    node_share_sh_t  *sh = node_shares(s);
    int               i;
    uint32_t          state;

    if (sh == NULL) {
        return -1;
    }
    for (i = 0; i < TS_NODE_SHARES_N; i++) {
        state = atomic_load_explicit(&sh[i].state, memory_order_acquire);
        if ((state == NODE_SHARE_READY || state == NODE_SHARE_STALE)
            && strcmp(sh[i].group, group) == 0
            && strcmp(sh[i].name, name) == 0)
        {
            return i;
        }
    }
    return -1;
}


int
node_share_add(ts_shm_t *s, const char *group, const char *name,
    const char *path, uint64_t size, int64_t mtime_ns, uint32_t nchunks)
{
    node_share_sh_t  *sh = node_shares(s), *e;
    int               i;

    if (sh == NULL || !node_text_ok(group, name, path)
        || !node_chunks_ok(size, nchunks))
    {
        return -1;
    }

    /* a re-upload of the same name replaces the old entry */
    i = node_share_find(s, group, name);
    if (i >= 0) {
        atomic_store_explicit(&sh[i].state, NODE_SHARE_STOPPED,
                              memory_order_release);
    } else {
        for (i = 0; i < TS_NODE_SHARES_N; i++) {
            if (atomic_load(&sh[i].state) == NODE_SHARE_FREE) {
                break;
            }
        }
        if (i == TS_NODE_SHARES_N) {
            ts_err("share table full (%d)", TS_NODE_SHARES_N);
            return -1;
        }
    }

    e = &sh[i];
    node_seq_begin(&e->seq);
    node_text_put(e->group, sizeof(e->group), group);
    node_text_put(e->name, sizeof(e->name), name);
    node_text_put(e->path, sizeof(e->path), path);
    e->size = size;
    e->mtime_ns = mtime_ns;
    e->nchunks = nchunks;
    atomic_store(&e->chunks_served, 0);
    atomic_store(&e->bytes_served, 0);
    node_seq_end(&e->seq);
    atomic_store_explicit(&e->state, NODE_SHARE_READY, memory_order_release);
    return i;
}


void
node_share_remove(ts_shm_t *s, int idx)
{
    node_share_sh_t  *sh = node_shares(s);

    if (sh == NULL || idx < 0 || idx >= TS_NODE_SHARES_N) {
        return;
    }
    /* STOPPED first: an uploader that looks now refuses; then the text
     * goes (seq moves, so cached lookups are invalid) and the entry frees */
    atomic_store_explicit(&sh[idx].state, NODE_SHARE_STOPPED,
                          memory_order_release);
    node_seq_begin(&sh[idx].seq);
    sh[idx].group[0] = '\0';
    sh[idx].name[0] = '\0';
    sh[idx].path[0] = '\0';
    node_seq_end(&sh[idx].seq);
    atomic_store_explicit(&sh[idx].state, NODE_SHARE_FREE,
                          memory_order_release);
}


/* A source's statistics and backoff back to "never heard from". */
static void
node_src_fresh(node_src_sh_t *sr)
{
    atomic_store(&sr->load, 0);
    atomic_store(&sr->failures, 0);
    atomic_store(&sr->errors, 0);
    atomic_store(&sr->rate_bps, 0);
    atomic_store(&sr->chunks, 0);
    atomic_store(&sr->bytes, 0);
    atomic_store(&sr->map_ms, 0);
    atomic_store(&sr->retry_after_ms, 0);
    atomic_store(&sr->push_owner, 0);
    atomic_store(&sr->pushed, 0);
}


static void
node_bits_load(_Atomic uint64_t *bm, const uint8_t *bytes, uint32_t nbits)
{
    uint32_t  w, b, nwords = (nbits + 63) / 64;
    uint64_t  v;

    for (w = 0; w < nwords; w++) {
        v = 0;
        if (bytes != NULL) {
            for (b = 0; b < 64 && w * 64 + b < nbits; b++) {
                uint32_t i = w * 64 + b;

                if ((bytes[i >> 3] >> (i & 7)) & 1) {
                    v |= 1ull << b;
                }
            }
        }
        atomic_store_explicit(&bm[w], v, memory_order_relaxed);
    }
}


int
node_dl_add(ts_shm_t *s, const char *group, const char *name,
    const char *dest, const char *part, const node_fid_t *part_id,
    uint64_t size, uint32_t nchunks,
    const uint8_t file_sha1[20], const uint8_t *hashes, const uint8_t *done,
    const uint8_t *maybe)
{
    node_dl_sh_t      *dls = node_dls(s), *d;
    _Atomic uint64_t  *bm;
    _Atomic uint32_t  *sif;
    node_fhash_sh_t   *fh;
    uint32_t           c, ndone = 0;
    uint64_t           bytes = 0;
    int                i, j, k;

    if (dls == NULL || !node_text_ok(group, name, dest) || part == NULL
        || strlen(part) >= PATH_MAX || !node_chunks_ok(size, nchunks)
        || file_sha1 == NULL || (nchunks > 0 && hashes == NULL))
    {
        return -1;
    }
    i = 0;
    while (i < TS_NODE_DOWNLOADS_N
           && atomic_load(&dls[i].state) != NODE_DL_FREE)
    {
        i++;
    }
    if (i == TS_NODE_DOWNLOADS_N) {
        ts_err("download table full (%d)", TS_NODE_DOWNLOADS_N);
        return -1;
    }
    d = &dls[i];

    /* per-download arrays, only as far as this file's chunks go */
    if (nchunks > 0) {
        memcpy(node_dl_hashes(s, i), hashes, 20ull * nchunks);
    }
    node_bits_load(node_dl_done(s, i), done, nchunks);
    node_bits_load(node_dl_maybe(s, i), maybe, nchunks);
    bm = node_dl_claims(s, i);
    for (c = 0; c < nchunks; c++) {
        atomic_store_explicit(&bm[c], 0, memory_order_relaxed);
        atomic_store_explicit(&node_dl_srcof(s, i)[c], 0,
                              memory_order_relaxed);
    }
    for (j = 0; j < TS_NODE_SOURCES_N; j++) {
        node_bits_load(node_dl_map(s, i, j), NULL, nchunks);
    }
    for (k = 0; k < TS_SUP_WORKERS_MAX_N; k++) {
        sif = node_slot_inflight(s, k, i);
        for (j = 0; j < TS_NODE_SOURCES_N; j++) {
            atomic_store(&sif[j], 0);
        }
    }

    bm = node_dl_done(s, i);
    for (c = 0; c < nchunks; c++) {
        if (node_bit_test(bm, c)) {
            ndone++;
            bytes += (c + 1 == nchunks) ? size - (uint64_t) c * TS_CHUNK_B
                                        : TS_CHUNK_B;
        }
    }

    node_seq_begin(&d->seq);
    node_text_put(d->group, sizeof(d->group), group);
    node_text_put(d->name, sizeof(d->name), name);
    node_text_put(d->dest, sizeof(d->dest), dest);
    node_text_put(d->part, sizeof(d->part), part);
    memset(&d->part_id, 0, sizeof(d->part_id));
    if (part_id != NULL) {
        d->part_id = *part_id;
    }
    d->size = size;
    d->nchunks = nchunks;
    memcpy(d->file_sha1, file_sha1, 20);
    atomic_store(&d->restored, ndone > 0);
    d->error[0] = '\0';
    d->ticket_len = 0;
    atomic_store(&d->ticket_gen, 0);
    atomic_store(&d->denied, 0);
    atomic_store(&d->ticket_expires_ms, 0);
    for (j = 0; j < TS_NODE_SOURCES_N; j++) {
        node_src_sh_t *sr = &d->src[j];

        atomic_store(&sr->state, NODE_SRC_FREE);
        memset(sr->addr, 0, sizeof(sr->addr));
        memset(sr->fp, 0, sizeof(sr->fp));
        atomic_store(&sr->complete, 0);
        atomic_store(&sr->inflight, 0);
        atomic_store(&sr->map_owner, 0);
        node_src_fresh(sr);
    }
    node_seq_end(&d->seq);

    atomic_store(&d->waiting, 0);
    atomic_store(&d->finalize_owner, 0);
    atomic_store(&d->bytes_done, bytes);
    atomic_store(&d->chunks_done, ndone);
    atomic_store(&d->started_ms, ts_wall_ms());
    atomic_store(&d->finished_ms, 0);
    atomic_fetch_add(&d->id, 1);
    /* frontier hasher: generation 0 of the new id, both copies unused */
    fh = node_dl_fhash(s, i);
    if (fh != NULL) {
        fh->copy[0].id = fh->copy[1].id = 0;
        fh->copy[0].next = fh->copy[1].next = 0;
        atomic_store(&fh->owner, 0);
        atomic_store(&fh->pub, (uint64_t) atomic_load(&d->id) << 32);
    }
    atomic_store_explicit(&d->state, NODE_DL_ACTIVE, memory_order_release);
    return i;
}


static int
node_fp_eq(const node_src_sh_t *sr, const uint8_t *fps, int i)
{
    static const uint8_t  zero[TS_FP_B];

    return memcmp(sr->fp, fps != NULL ? fps + (size_t) i * TS_FP_B : zero,
                  TS_FP_B) == 0;
}


void
node_dl_set_sources(ts_shm_t *s, int idx, const char *const *addrs,
    const int *complete, const uint8_t *fps, int n)
{
    node_dl_sh_t      *d;
    node_src_sh_t     *sr;
    uint32_t           st;
    int                i, j, found;

    if (node_dls(s) == NULL || idx < 0 || idx >= TS_NODE_DOWNLOADS_N
        || n < 0)
    {
        return;
    }
    d = &node_dls(s)[idx];

    /* sources no longer listed (an address now listed with another
     * fingerprint is another node: the old entry goes) */
    for (j = 0; j < TS_NODE_SOURCES_N; j++) {
        sr = &d->src[j];
        if (atomic_load(&sr->state) != NODE_SRC_LIVE) {
            continue;
        }
        found = 0;
        for (i = 0; i < n; i++) {
            if (addrs[i] != NULL && strcmp(addrs[i], sr->addr) == 0
                && node_fp_eq(sr, fps, i))
            {
                found = 1;
                break;
            }
        }
        if (!found) {
            atomic_store(&sr->state, NODE_SRC_GONE);
        }
    }

    for (i = 0; i < n; i++) {
        if (addrs[i] == NULL || addrs[i][0] == '\0'
            || strlen(addrs[i]) >= sizeof(sr->addr))
        {
            continue;
        }
        found = -1;
        for (j = 0; j < TS_NODE_SOURCES_N; j++) {
            st = atomic_load(&d->src[j].state);
            if (st != NODE_SRC_FREE && strcmp(d->src[j].addr, addrs[i]) == 0
                && node_fp_eq(&d->src[j], fps, i))
            {
                found = j;
                break;
            }
        }
        if (found >= 0) {
            sr = &d->src[found];
            atomic_store(&sr->complete, complete ? (complete[i] != 0) : 0);
            st = NODE_SRC_GONE;
            /* a returning source is live again; a dropped one stays out */
            if (atomic_compare_exchange_strong(&sr->state, &st,
                                               NODE_SRC_LIVE))
            {
                atomic_store(&sr->map_ms, 0);
                atomic_store(&sr->errors, 0);
                atomic_store(&sr->retry_after_ms, 0);
            }
            continue;
        }

        /* a new source: a FREE entry, else a quiet GONE one */
        for (j = 0; j < TS_NODE_SOURCES_N; j++) {
            if (atomic_load(&d->src[j].state) == NODE_SRC_FREE) {
                break;
            }
        }
        if (j == TS_NODE_SOURCES_N) {
            for (j = 0; j < TS_NODE_SOURCES_N; j++) {
                sr = &d->src[j];
                if (atomic_load(&sr->state) == NODE_SRC_GONE
                    && atomic_load(&sr->inflight) == 0
                    && atomic_load(&sr->map_owner) == 0)
                {
                    atomic_store(&sr->state, NODE_SRC_FREE);
                    break;
                }
            }
            if (j == TS_NODE_SOURCES_N) {
                ts_warn("download %d: no room for source %s", idx, addrs[i]);
                continue;
            }
        }
        sr = &d->src[j];
        node_text_put(sr->addr, sizeof(sr->addr), addrs[i]);
        if (fps != NULL) {
            memcpy(sr->fp, fps + (size_t) i * TS_FP_B, TS_FP_B);
        } else {
            memset(sr->fp, 0, sizeof(sr->fp));
        }
        atomic_store(&sr->complete, complete ? (complete[i] != 0) : 0);
        node_src_fresh(sr);
        node_bits_load(node_dl_map(s, idx, j), NULL, d->nchunks);
        atomic_store_explicit(&sr->state, NODE_SRC_LIVE,
                              memory_order_release);
    }
}


int
node_dl_set_ticket(ts_shm_t *s, int idx, const void *ticket, size_t len,
    int64_t expires_ms)
{
    node_dl_sh_t  *d;
    uint32_t       g;

    if (node_dls(s) == NULL || idx < 0 || idx >= TS_NODE_DOWNLOADS_N
        || len > TS_TICKET_MAX_B || (len > 0 && ticket == NULL))
    {
        return -1;
    }
    d = &node_dls(s)[idx];
    node_seq_begin(&d->seq);
    if (len > 0) {
        memcpy(d->ticket, ticket, len);
    }
    d->ticket_len = (uint32_t) len;
    node_seq_end(&d->seq);
    atomic_store(&d->ticket_expires_ms, expires_ms);
    atomic_store(&d->denied, 0);
    /* never 0 again once set: 0 means "no ticket yet" */
    g = atomic_fetch_add_explicit(&d->ticket_gen, 1, memory_order_acq_rel)
        + 1;
    if (g == 0) {
        atomic_fetch_add_explicit(&d->ticket_gen, 1, memory_order_acq_rel);
    }
    return 0;
}


void
node_dl_remove(ts_shm_t *s, int idx)
{
    node_dl_sh_t  *dls = node_dls(s);

    if (dls == NULL || idx < 0 || idx >= TS_NODE_DOWNLOADS_N) {
        return;
    }
    /* the id moves first so a worker holding this index sees it changed */
    atomic_fetch_add(&dls[idx].id, 1);
    atomic_store_explicit(&dls[idx].state, NODE_DL_FREE,
                          memory_order_release);
}


/* A writer killed inside a seqlock left it odd: even it again, so the
 * next write's begin makes it odd as readers expect. */
static void
node_seq_heal(_Atomic uint32_t *seq)
{
    uint32_t  v = atomic_load_explicit(seq, memory_order_acquire);

    if (v & 1u) {
        atomic_fetch_add_explicit(seq, 1, memory_order_acq_rel);
    }
}


void
node_pub_clear(ts_shm_t *s)
{
    node_share_sh_t  *sh = node_shares(s);
    node_dl_sh_t     *dls = node_dls(s);
    int               i;

    for (i = 0; sh != NULL && i < TS_NODE_SHARES_N; i++) {
        node_seq_heal(&sh[i].seq);
        if (atomic_load_explicit(&sh[i].state, memory_order_acquire)
            != NODE_SHARE_FREE)
        {
            node_share_remove(s, i);
        }
    }
    for (i = 0; dls != NULL && i < TS_NODE_DOWNLOADS_N; i++) {
        node_seq_heal(&dls[i].seq);
        if (atomic_load_explicit(&dls[i].state, memory_order_acquire)
            != NODE_DL_FREE)
        {
            node_dl_remove(s, i);
        }
    }
}
