/*
 * dl_block.c -- the last chunks of a download fetched as blocks from
 * several peers at once, assembled, and verified as one chunk.
 *
 * Purpose: at the end of a download on a long path the last chunks come
 * from one peer each, and the download waits for the slowest.  When no
 * more than TS_DL_BLOCK_TAIL_N chunks are left to ask for (missing and
 * unclaimed: the last ones picked) and two links or more that serve
 * ranges can take a request for a chunk, the chunk is claimed as usual
 * (one claim, held by this worker's assembly, dl_asm_t) and its blocks
 * (TS_BLOCK_B bytes, the tail shorter) are asked with ranged PEER_GETs
 * of the cheapest holders, each block going where the least-loaded
 * choice (dl_pick_cost) puts it, so they spread over the peers.  Only
 * the sources peer affinity gives this worker count (dl_pick_owned:
 * about sources / downloader workers of them): a worker with one source
 * of the download fetches its chunks whole.  Blocks
 * land in the assembly's buffer; nothing is written or served before the
 * whole chunk matched the tracker's SHA1, then it is stored like any
 * chunk (dl_recv_store).  A block asked TS_DL_BLOCK_COPY_MS ago and
 * still missing is asked of a second peer (endgame per block); the
 * loser's bytes are dropped when they come (dl_eg_cancel closes a link
 * whose queued requests all became moot).
 *
 * A chunk whose assembled bytes fail SHA1 is asked whole of one peer
 * (not one that sent bad bytes for it before): when that copy verifies,
 * each block is compared with it and every source whose block differs
 * is blamed like a hash failure today (dl_recv_blame: counted, avoided
 * for the chunk, dropped after TS_NODE_SRC_FAILS_MAX_N), and the copy is
 * stored.  A whole copy that fails too blames its own source, and the
 * next one goes elsewhere.  A peer that answers a ranged GET "bad
 * request" (an uploader without ranges) gets whole GETs only
 * (dl_link_t.norange); an assembly left with no holder that serves
 * ranges gives its claim back and the chunk is fetched whole.
 *
 * Locking: none; assemblies belong to one worker.  The chunk claim is a
 * ts_claim CAS word like any other.  Crash behaviour: a killed worker
 * loses its assemblies' partial bytes only (nothing reached the .part);
 * node_reclaim() frees their claims and in-flight counts as for any GET.
 */
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "ts_clock.h"
#include "ts_log.h"
#include "dl_int.h"

/* The link of this worker to source src, if any (whatever its state). */
static const dl_link_t *
dl_blk_link(const dl_t *w, const node_src_sh_t *src)
{
    int j;

    for (j = 0; j < TS_DL_LINKS_N; j++) {
        const dl_link_t *k = w->conns[j];

        if (k != NULL && strncmp(k->addr, src->addr, sizeof(k->addr)) == 0
            && memcmp(k->fp, src->fp, TS_FP_B) == 0)
        {
            return k;
        }
    }
    return NULL;
}

/* Usable sources of download i holding chunk c that serve ranges (or
 * were never asked one), as far as this worker knows; with up 1, only
 * those whose link is up (TLS done), full or not. */
static int
dl_blk_holders(const dl_t *w, int i, uint32_t c, int64_t now, int up)
{
    const node_dl_sh_t *d = &w->dls[i];
    const dl_link_t    *k;
    int                 s, n = 0;

    for (s = 0; s < TS_NODE_SOURCES_N; s++) {
        const node_src_sh_t *src = &d->src[s];

        if (atomic_load(&src->state) != NODE_SRC_LIVE
            || (atomic_load(&src->errors) > 0
                && atomic_load(&src->retry_after_ms) > now)
            || atomic_load(&src->map_ms) == 0
            || !node_bit_test(node_dl_map(w->shm, i, s), c))
        {
            continue;
        }
        if (!dl_pick_owned(w, i, s)) {
            continue;   /* another worker's links ask it (peer affinity) */
        }
        k = dl_blk_link(w, src);
        n += up ? k != NULL && k->c != NULL && !k->hs && !k->norange
                : k == NULL || !k->norange;
    }
    return n;
}

static void
dl_blk_free(dl_t *w, dl_asm_t *a)
{
    if (a->used && atomic_load(&w->dls[a->dl].id) == a->dl_id) {
        ts_claim_release(&node_dl_claims(w->shm, a->dl)[a->chunk], w->me);
    }
    a->used = 0;
}

/* The first chunk from c on whose done bit is clear (whole words of
 * done chunks skipped), or n if none. */
static uint32_t
dl_blk_next_missing(_Atomic uint64_t *done, uint32_t n, uint32_t c)
{
    uint64_t bits;

    while (c < n) {
        bits = ~atomic_load(&done[c >> 6]) & (~0ull << (c & 63));
        if (bits != 0) {
            c = (c & ~63u) + (uint32_t) __builtin_ctzll(bits);
            return c < n ? c : n;
        }
        c = (c | 63u) + 1;
    }
    return n;
}

/* 1 if no more than TS_DL_BLOCK_TAIL_N chunks of download i are missing
 * and unclaimed (left to be asked for, not on their way): the last
 * chunks to be picked, those the download's end waits for. */
static int
dl_blk_tail(const dl_t *w, int i)
{
    const dl_local_t *l = &w->loc[i];
    _Atomic uint64_t *done = node_dl_done(w->shm, i);
    _Atomic uint64_t *claims = node_dl_claims(w->shm, i);
    uint32_t          missing, n = 0, c;

    missing = l->nchunks - atomic_load(&w->dls[i].chunks_done);
    if (missing <= TS_DL_BLOCK_TAIL_N) {
        return 1;
    }
    if (missing > TS_DL_BLOCK_SCAN_N) {
        return 0;               /* far from the end: no scan */
    }
    for (c = dl_blk_next_missing(done, l->nchunks, 0); c < l->nchunks;
         c = dl_blk_next_missing(done, l->nchunks, c + 1))
    {
        n += atomic_load_explicit(&claims[c], memory_order_relaxed) == 0;
        if (n > TS_DL_BLOCK_TAIL_N) {
            return 0;
        }
    }
    return 1;
}

/* Starts assembling chunk c of download i from blocks if that is due:
 * few chunks left to ask for (dl_blk_tail), two holders or more that
 * serve ranges with a link up (their blocks go out as the links have
 * room), a free assembly.  Claims the chunk.  1 if started (its blocks
 * go out from dl_blk_pick), 0 if the caller should fetch it whole. */
int
dl_blk_start(dl_t *w, int i, int64_t now, uint32_t c)
{
    dl_local_t *l = &w->loc[i];
    dl_asm_t   *a = NULL;
    int         j;

    if (TS_DL_BLOCK_TAIL_N == 0 || dl_local_chunk_len(l, c) <= TS_BLOCK_B
        || l->avoid[c] != 0 || !dl_blk_tail(w, i)
        || dl_blk_holders(w, i, c, now, 1) < 2)
    {
        return 0;
    }
    for (j = 0; j < TS_DL_ASM_N && a == NULL; j++) {
        if (!w->as[j].used) {
            a = &w->as[j];
        }
    }
    if (a == NULL) {
        return 0;
    }
    if (a->buf == NULL && (a->buf = malloc(TS_CHUNK_B)) == NULL) {
        return 0;
    }
    if (!ts_claim_try(&node_dl_claims(w->shm, i)[c], w->me)) {
        return 0;
    }
    if (node_bit_test(node_dl_done(w->shm, i), c)) {
        ts_claim_release(&node_dl_claims(w->shm, i)[c], w->me);
        return 0;
    }
    a->used = 1;
    a->gen++;
    a->dl = i;
    a->dl_id = l->id;
    a->chunk = c;
    a->len = dl_local_chunk_len(l, c);
    a->nblk = (a->len + TS_BLOCK_B - 1) / TS_BLOCK_B;
    a->got = 0;
    a->whole = 0;
    a->whole_out = 0;
    memset(a->asked, 0, sizeof(a->asked));
    memset(a->from, 0, sizeof(a->from));
    memset(a->at, 0, sizeof(a->at));
    ts_debug("chunk %u of %s: fetched as %u blocks from several peers", c,
             l->name, a->nblk);
    return 1;
}

/* Sends request b (block b + 1, or 0: the whole chunk) of assembly a to
 * source s on link k.  1 if sent. */
static int
dl_blk_send(dl_t *w, dl_asm_t *a, int s, dl_link_t *k, uint32_t b)
{
    dl_req_t r;

    memset(&r, 0, sizeof(r));
    r.kind = REQ_GET;
    r.dl = a->dl;
    r.dl_id = a->dl_id;
    r.src = s;
    r.chunk = a->chunk;
    r.dup = 1;                  /* the assembly holds the claim */
    r.as = (int) (a - w->as) + 1;
    r.gen = a->gen;
    if (b > 0) {
        r.blk = (int) b;
        r.off = (b - 1) * TS_BLOCK_B;
        r.len = a->len - r.off < TS_BLOCK_B ? a->len - r.off : TS_BLOCK_B;
        a->asked[b - 1]++;
        a->at[b - 1] |= 1u << s;
        a->asked_ms[b - 1] = ts_now_ms();
    } else {
        r.len = a->len;
        a->whole_out = 1;
    }
    r.pub = dl_local_inflight_add(w, a->dl, s);
    w->inflight++;
    if (dl_link_send(w, k, TS_MSG_PEER_GET, &r) < 0) {
        dl_link_release(w, &r);
        return 0;
    }
    return 1;
}

/* 1 if source s of download i is a complete one that serves other
 * peers too while a partial source holds chunk c: its blocks are taken
 * from the leechers, so the seeder's uplink carries each chunk about
 * once (as dl_pick_chunk and the endgame do; uploaders do not refuse a
 * range for super-seeding). */
static int
dl_blk_spare(const dl_t *w, int i, int s, uint32_t c)
{
    const dl_local_t    *l = &w->loc[i];
    const node_src_sh_t *src = &w->dls[i].src[s];

    return atomic_load(&src->complete) && l->npartial > 0
           && l->avail[c] > l->ncomplete
           && (atomic_load(&src->rate_bps) == 0
               || atomic_load(&src->load) > atomic_load(&src->inflight));
}

/* The cheapest eligible source of chunk c for a request: ranges (a
 * block) or not, never one in `not` (a bit per source), and none while
 * a busy holder is much cheaper (dl_pick_spill: a block waits for a fast
 * peer rather than go to a slow one).  -1 if none. */
static int
dl_blk_src(dl_t *w, int i, int64_t now, uint32_t c, uint32_t elig,
           dl_link_t **ks, _Atomic uint64_t **maps, int ranged, uint32_t not)
{
    uint64_t cost, bcost = UINT64_MAX;
    uint32_t e;
    int      s, bs = -1;

    for (e = elig & ~not; e; e &= e - 1) {
        s = __builtin_ctz(e);
        if (!node_bit_test(maps[s], c) || (ranged && ks[s]->norange)) {
            continue;
        }
        if (ranged && dl_blk_spare(w, i, s, c)) {
            continue;   /* a leecher has it: spare the seeder */
        }
        cost = dl_pick_cost(&w->dls[i].src[s]);
        if (cost < bcost) {
            bcost = cost;
            bs = s;
        }
    }
    if (bs >= 0 && ranged && dl_pick_spill(w, i, now, elig, bs, c)) {
        return -1;
    }
    return bs;
}

/* 1 if block b (0-based) of assembly a is arriving on some link now:
 * its request is at the head of the link's queue and bytes of its reply
 * have come.  Such a block is not asked of a second peer. */
static int
dl_blk_arriving(const dl_t *w, const dl_asm_t *a, uint32_t b)
{
    int j;

    for (j = 0; j < TS_DL_LINKS_N; j++) {
        const dl_link_t *k = w->conns[j];
        const dl_req_t  *r;

        if (k == NULL || k->qn == 0 || k->rx != RX_DATA || k->got == 0) {
            continue;
        }
        r = &k->q[k->qhead];
        if (r->as == (int) (a - w->as) + 1 && r->gen == a->gen
            && r->blk == (int) b + 1)
        {
            return 1;
        }
    }
    return 0;
}

/* Frees the assemblies whose download ended or whose chunk came whole
 * from elsewhere meanwhile (an endgame copy of another worker): from
 * every scheduling pass, so no claim outlives its use once the
 * download is done and nothing is picked for it any more. */
void
dl_blk_sweep(dl_t *w)
{
    int j;

    for (j = 0; j < TS_DL_ASM_N; j++) {
        dl_asm_t *a = &w->as[j];

        if (a->used
            && (atomic_load(&w->dls[a->dl].id) != a->dl_id
                || node_bit_test(node_dl_done(w->shm, a->dl), a->chunk)))
        {
            dl_blk_free(w, a);
        }
    }
}

/* One request for an assembly of download i, if one is due: a block not
 * asked yet, the whole copy after a SHA1 mismatch, or a second peer for
 * a block slow to come.  Assemblies whose chunk is done or whose
 * download ended are dropped.  1 if a request went out. */
int
dl_blk_pick(dl_t *w, int i, int64_t now, uint32_t elig, dl_link_t **ks,
            _Atomic uint64_t **maps)
{
    dl_local_t *l = &w->loc[i];
    uint32_t    b, avoid, out;
    int         j, s, pass;

    dl_blk_sweep(w);
    for (j = 0; j < TS_DL_ASM_N; j++) {
        dl_asm_t *a = &w->as[j];

        if (!a->used || a->dl != i || a->dl_id != l->id) {
            continue;
        }
        avoid = l->avoid[a->chunk] ? 1u << (l->avoid[a->chunk] - 1) : 0;
        if (a->whole) {
            if (a->whole_out) {
                continue;
            }
            s = dl_blk_src(w, i, now, a->chunk, elig, ks, maps, 0, avoid);
            if (s < 0 && avoid != 0 && !dl_pick_elsewhere(w, i,
                                                          l->avoid[a->chunk]
                                                          - 1, a->chunk,
                                                          now))
            {
                /* the peer that sent bad bytes is the only holder */
                s = dl_blk_src(w, i, now, a->chunk, elig, ks, maps, 0, 0);
            }
            if (s >= 0 && dl_blk_send(w, a, s, ks[s], 0)) {
                return 1;
            }
            continue;
        }
        out = 0;
        for (pass = 0; pass < 2; pass++) {
            for (b = 0; b < a->nblk; b++) {
                if (a->got & (1u << b)) {
                    continue;
                }
                out += pass == 0 && a->asked[b] > 0;
                /* pass 0: blocks not asked; pass 1: a second peer for
                 * one slow to come */
                if (pass == 0 ? a->asked[b] > 0
                              : (a->asked[b] != 1
                                 || now - a->asked_ms[b]
                                    < TS_DL_BLOCK_COPY_MS
                                 || dl_blk_arriving(w, a, b)))
                {
                    continue;
                }
                s = dl_blk_src(w, i, now, a->chunk, elig, ks, maps, 1,
                               a->at[b] | avoid);
                if (s >= 0 && dl_blk_send(w, a, s, ks[s], b + 1)) {
                    if (pass == 1) {
                        ts_debug("chunk %u of %s: block %u asked of a "
                                 "second peer", a->chunk, l->name, b);
                    }
                    return 1;
                }
            }
        }
        if (out == 0 && a->got != (1u << a->nblk) - 1
            && dl_blk_holders(w, i, a->chunk, now, 0) == 0)
        {
            /* no holder serves ranges any more: fetched whole */
            ts_debug("chunk %u of %s: no peer serves its blocks; whole",
                     a->chunk, l->name);
            dl_blk_free(w, a);
        }
    }
    return 0;
}

/* The assembly a request was for, if it still is (the slot may have
 * been reused since). */
static dl_asm_t *
dl_blk_of(const dl_t *w, const dl_req_t *r)
{
    const dl_asm_t *a;

    if (r->as < 1 || r->as > TS_DL_ASM_N) {
        return NULL;
    }
    a = &w->as[r->as - 1];
    if (!a->used || a->gen != r->gen || a->dl != r->dl
        || a->dl_id != r->dl_id || a->chunk != r->chunk)
    {
        return NULL;
    }
    return (dl_asm_t *) a;
}

/* The assembled chunk failed SHA1: a whole copy from one peer tells which
 * block was bad (dl_blk_whole). */
static void
dl_blk_mismatch(dl_t *w, dl_asm_t *a)
{
    ts_warn("chunk %u of %s assembled from blocks failed SHA1; asking a "
            "whole copy to find the bad block", a->chunk,
            w->loc[a->dl].name);
    a->whole = 1;
    a->whole_out = 0;
}

/* All blocks of a are in: verify, store, free. */
static void
dl_blk_done(dl_t *w, dl_asm_t *a)
{
    uint8_t  md[20], n[TS_NODE_SOURCES_N];
    uint32_t b, peers = 0;
    int      best = 0;

    SHA1(a->buf, a->len, md);
    if (memcmp(md, node_dl_hashes(w->shm, a->dl) + 20ull * a->chunk, 20)
        != 0)
    {
        dl_blk_mismatch(w, a);
        return;
    }
    memset(n, 0, sizeof(n));
    for (b = 0; b < a->nblk; b++) {
        int s = a->from[b] - 1;

        peers += n[s]++ == 0;
        /* the chunk is credited to the peer of most blocks; among
         * equals, the later block's (spreads the credit) */
        if (n[s] >= n[best]) {
            best = s;
        }
    }
    if (dl_recv_store(w, a->dl, a->dl_id, a->chunk, a->buf, a->len, best, 0)
        >= 0)
    {
        /* stored: each block's bytes count for its source, the chunk
         * for the credited one (as a whole chunk counts, dl_recv.c) */
        for (b = 0; b < a->nblk; b++) {
            dl_recv_count(w, a->dl, a->from[b] - 1, 0,
                          a->len - b * TS_BLOCK_B < TS_BLOCK_B
                          ? a->len - b * TS_BLOCK_B : TS_BLOCK_B);
        }
        dl_recv_count(w, a->dl, best, 1, 0);
        ts_debug("chunk %u of %s assembled from %u blocks of %u peer%s",
                 a->chunk, w->loc[a->dl].name, a->nblk, peers,
                 peers == 1 ? "" : "s");
        dl_fh_advance(w, a->dl, a->buf, a->chunk, TS_DL_FH_BATCH_N);
    }
    dl_blk_free(w, a);
}

/* The whole copy of a mismatched assembly verified (in k->data): the
 * sources of the blocks that differ are blamed, the copy is stored. */
static void
dl_blk_whole(dl_t *w, dl_link_t *k, dl_asm_t *a, const dl_req_t *r)
{
    uint32_t b, off, len;

    for (b = 0; b < a->nblk; b++) {
        off = b * TS_BLOCK_B;
        len = a->len - off < TS_BLOCK_B ? a->len - off : TS_BLOCK_B;
        if (a->from[b] != 0
            && memcmp(a->buf + off, k->data + off, len) != 0)
        {
            dl_recv_blame(w, a->dl, a->from[b] - 1, a->chunk, "a block");
        }
    }
    if (dl_recv_store(w, a->dl, a->dl_id, a->chunk, k->data, a->len, r->src,
                      0) >= 0)
    {
        dl_recv_count(w, a->dl, r->src, 1, a->len);
        dl_fh_advance(w, a->dl, k->data, a->chunk, TS_DL_FH_BATCH_N);
    }
    dl_blk_free(w, a);
}

/* The reply to a request of an assembly (r->as): a block, or the whole
 * copy after a mismatch. */
void
dl_blk_recv(dl_t *w, dl_link_t *k, const dl_req_t *r)
{
    node_dl_sh_t *d = &w->dls[r->dl];
    dl_asm_t     *a = dl_blk_of(w, r);
    uint8_t       md[20];
    uint32_t      b;

    if (atomic_load(&d->id) != r->dl_id || !w->loc[r->dl].active) {
        return;
    }
    atomic_store(&d->src[r->src].load, k->load);
    if (r->blk > 0 && k->st == TS_ERR_BADREQ) {
        /* ours are valid ranges: the peer does not serve them */
        if (!k->norange) {
            ts_info("peer %s serves no ranged GET; whole chunks from it",
                    k->addr);
        }
        k->norange = 1;
        return;
    }
    if (dl_recv_status(w, k, r)) {
        return;
    }
    atomic_store(&d->src[r->src].errors, 0);
    k->errors = 0;
    dl_recv_pace(w, k, r);
    if (a == NULL) {
        return;                 /* the assembly ended meanwhile */
    }
    if (r->blk == 0) {
        SHA1(k->data, r->len, md);
        if (memcmp(md, node_dl_hashes(w->shm, r->dl) + 20ull * r->chunk, 20)
            != 0)
        {
            dl_recv_blame(w, r->dl, r->src, r->chunk, "the whole");
            return;             /* the next copy goes elsewhere */
        }
        dl_blk_whole(w, k, a, r);
        return;
    }
    b = (uint32_t) r->blk - 1;
    if (a->whole || (a->got & (1u << b))) {
        return;                 /* a second peer's copy came first */
    }
    memcpy(a->buf + r->off, k->data, r->len);
    a->got |= 1u << b;
    a->from[b] = (uint8_t) (r->src + 1);
    if (a->got == (1u << a->nblk) - 1) {
        dl_blk_done(w, a);
    }
}

/* A request of an assembly was answered or dropped with its link. */
void
dl_blk_release(dl_t *w, const dl_req_t *r)
{
    dl_asm_t *a = dl_blk_of(w, r);

    if (a == NULL) {
        return;
    }
    if (r->blk > 0) {
        if (a->asked[r->blk - 1] > 0) {
            a->asked[r->blk - 1]--;
        }
        a->at[r->blk - 1] &= ~(1u << r->src);
    } else {
        a->whole_out = 0;
    }
}

/* 1 if the bytes r asks for are no longer wanted: its block is in, or
 * its assembly ended. */
int
dl_blk_moot(const dl_t *w, const dl_req_t *r)
{
    const dl_asm_t *a;

    if (r->as == 0) {
        return 0;
    }
    a = dl_blk_of(w, r);
    return a == NULL || (r->blk > 0 && (a->whole
                                        || (a->got & (1u << (r->blk - 1)))));
}

/* 1 if chunk c of download i is being assembled here. */
int
dl_blk_has(const dl_t *w, int i, uint32_t c)
{
    int j;

    for (j = 0; j < TS_DL_ASM_N; j++) {
        if (w->as[j].used && w->as[j].dl == i && w->as[j].chunk == c
            && w->as[j].dl_id == w->loc[i].id)
        {
            return 1;
        }
    }
    return 0;
}

/* Block requests queued on k. */
uint32_t
dl_blk_queued(const dl_link_t *k)
{
    uint32_t n = 0;
    int      q;

    for (q = 0; q < k->qn; q++) {
        n += k->q[(k->qhead + q) % DL_LINK_QUEUE_N].blk > 0;
    }
    return n;
}

/* The worker stops: claims back, buffers freed. */
void
dl_blk_cleanup(dl_t *w)
{
    int j;

    for (j = 0; j < TS_DL_ASM_N; j++) {
        dl_blk_free(w, &w->as[j]);
        free(w->as[j].buf);
        w->as[j].buf = NULL;
    }
}
