/*
 * dl_pick.c -- what the downloader fetches from whom: the sources' chunk
 * maps, the re-verify of chunks left by a crash, rarest-first counts and
 * the choice of one chunk and its least-loaded holder.
 *
 * Purpose: complete sources get an all-ones map (made whole again every
 * TS_DL_SEED_REFILL_MS: chunks a seeder refused come back), partial ones
 * a PEER_MAP every TS_DL_MAP_REFRESH_MS (one worker at a time: the
 * map_owner claim), so what the other leechers hold is known within a
 * fraction of a second.  The choice goes per source: the cheapest link
 * with room (lowest (reported load + our in-flight + 1) / estimated
 * rate) gets the rarest missing, unclaimed chunk it holds, and among
 * equally rare ones a uniformly random one, so leechers that start
 * together open on different chunks (random first, rarest first after).
 * A complete source is asked only for chunks no partial peer holds:
 * leechers take from each other what they have, and the seeder's uplink
 * carries new chunks (it refuses, for a while, a chunk it just sent to
 * another peer: workers/up_seed.c).  No request spills to a holder
 * TS_DL_SPILL_FACTOR times worse than a busy one.  Peer affinity
 * (dl_pick_owned) gives each source to one or few of the node's
 * downloader workers, so a peer sees one flow per node.  The last chunks
 * go to a second peer too (dl_endgame.c).
 *
 * Locking: none taken.  A chunk is claimed (ts_claim CAS) before its GET
 * is queued and released when the reply is handled or the link closes.
 *
 * Crash behaviour: a killed worker's chunk and map claims are freed by
 * node_reclaim(); "maybe" bits are cleared only after the chunk was
 * re-hashed (done) or found wanting (fetched again).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_crypto.h"
#include "dl_int.h"

static uint64_t
dl_pick_rand(dl_t *w)
{
    /* xorshift64: tie-breaks only */
    w->rnd ^= w->rnd << 13;
    w->rnd ^= w->rnd >> 7;
    w->rnd ^= w->rnd << 17;
    return w->rnd;
}

static int
dl_pick_usable(const node_src_sh_t *src, int64_t now)
{
    return atomic_load(&src->state) == NODE_SRC_LIVE
           && !(atomic_load(&src->errors) > 0
                && atomic_load(&src->retry_after_ms) > now);
}

/* Complete sources get an all-ones map; partial ones a PEER_MAP. */
void
dl_pick_maps(dl_t *w, int i, int64_t now)
{
    node_dl_sh_t *d = &w->dls[i];
    dl_local_t   *l = &w->loc[i];
    int           s;
    uint32_t      c;

    for (s = 0; s < TS_NODE_SOURCES_N; s++) {
        node_src_sh_t    *src = &d->src[s];
        _Atomic uint64_t *map;
        dl_link_t        *k;
        dl_req_t          r;

        if (!dl_pick_usable(src, now)) {
            continue;
        }
        if (atomic_load(&src->complete)) {
            /* refilled now and then too: a seeder that answered "not
             * available" while it restarted has every chunk again */
            if ((atomic_load(&src->map_ms) != 0
                 && now - atomic_load(&src->map_ms) < TS_DL_SEED_REFILL_MS)
                || !ts_claim_try(&src->map_owner, w->me))
            {
                continue;
            }
            map = node_dl_map(w->shm, i, s);
            for (c = 0; c < l->nchunks; c++) {
                node_bit_set(map, c);
            }
            atomic_store(&src->map_ms, now);
            ts_claim_release(&src->map_owner, w->me);
            l->dirty = 1;
            continue;
        }
        /* a source that pushes its new chunks is polled only now and
         * then, in case a push went missing */
        if (atomic_load(&src->map_ms) != 0
            && now - atomic_load(&src->map_ms)
               < (atomic_load(&src->push_owner) != 0 ? TS_DL_MAP_PUSHED_MS
                                                     : TS_DL_MAP_REFRESH_MS))
        {
            continue;
        }
        if (!dl_pick_owned(w, i, s)) {
            continue;       /* its owner's link asks (peer affinity) */
        }
        if (!ts_claim_try(&src->map_owner, w->me)) {
            continue;
        }
        k = dl_link_get(w, src);
        if (k == NULL || !dl_link_auth_ok(w, k, i, now)) {
            ts_claim_release(&src->map_owner, w->me);
            continue;
        }
        memset(&r, 0, sizeof(r));
        r.kind = REQ_MAP;
        r.dl = i;
        r.dl_id = l->id;
        r.src = s;
        if (dl_link_send(w, k, TS_MSG_PEER_MAP, &r) < 0) {
            ts_claim_release(&src->map_owner, w->me);
        }
    }
}

/* Chunks restored from disk after a crash: re-hash before fetching. */
void
dl_pick_maybe(dl_t *w, int i)
{
    dl_local_t       *l = &w->loc[i];
    node_dl_sh_t     *d = &w->dls[i];
    _Atomic uint64_t *maybe = node_dl_maybe(w->shm, i);
    _Atomic uint64_t *done = node_dl_done(w->shm, i);
    _Atomic uint64_t *claims = node_dl_claims(w->shm, i);
    uint32_t          wd, c, len;
    uint64_t          bits, old;
    uint8_t           md[20];
    ssize_t           n;
    int               fd;

    for (wd = 0; wd < (l->nchunks + 63) / 64; wd++) {
        bits = atomic_load(&maybe[wd]);
        while (bits) {
            c = wd * 64 + (uint32_t) __builtin_ctzll(bits);
            bits &= bits - 1;
            if (c >= l->nchunks || !ts_claim_try(&claims[c], w->me)) {
                continue;
            }
            len = dl_local_chunk_len(l, c);
            fd = dl_local_part_fd(l);
            if (!node_bit_test(done, c) && fd >= 0) {
                n = pread(fd, w->fbuf, len, (off_t) c * TS_CHUNK_B);
                if (n == (ssize_t) len && ts_sha1(w->fbuf, len, md) == 0
                    && memcmp(md, node_dl_hashes(w->shm, i) + 20ull * c, 20)
                       == 0 && dl_local_chunk_mine(w, i, l->id, c))
                {
                    old = atomic_fetch_or(&done[wd], 1ull << (c & 63));
                    if (!(old & (1ull << (c & 63)))) {
                        atomic_fetch_add(&d->bytes_done, len);
                        atomic_fetch_add(&d->chunks_done, 1);
                    }
                }
            }
            if (atomic_load(&d->id) == l->id) {
                node_bit_clear(maybe, c);
            }
            ts_claim_release(&claims[c], w->me);
        }
    }
}

/* Rarest-first counts over usable sources; sets waiting. */
void
dl_pick_avail(dl_t *w, int i, int64_t now)
{
    dl_local_t       *l = &w->loc[i];
    node_dl_sh_t     *d = &w->dls[i];
    _Atomic uint64_t *done = node_dl_done(w->shm, i);
    uint32_t          wd, nw = (l->nchunks + 63) / 64, c;
    uint64_t          bits, any = 0, missing = 0;
    int               s;

    memset(l->avail, 0, l->nchunks * sizeof(uint16_t));
    l->ncomplete = 0;
    l->npartial = 0;
    for (s = 0; s < TS_NODE_SOURCES_N; s++) {
        _Atomic uint64_t *map;

        if (!dl_pick_usable(&d->src[s], now)) {
            continue;
        }
        if (atomic_load(&d->src[s].complete)) {
            l->ncomplete++;
        } else if (atomic_load(&d->src[s].map_ms) != 0) {
            l->npartial++;
        } else {
            continue;       /* nothing known of it yet */
        }
        map = node_dl_map(w->shm, i, s);
        for (wd = 0; wd < nw; wd++) {
            bits = atomic_load(&map[wd]) & ~atomic_load(&done[wd]);
            any |= bits;
            while (bits) {
                c = wd * 64 + (uint32_t) __builtin_ctzll(bits);
                bits &= bits - 1;
                if (c < l->nchunks) {
                    l->avail[c]++;
                }
            }
        }
    }
    for (wd = 0; wd < nw; wd++) {
        missing |= ~atomic_load(&done[wd]);
    }
    atomic_store(&d->waiting, (l->nchunks > 0 && missing && !any) ? 1 : 0);
    if (atomic_load(&d->chunks_done) >= l->nchunks) {
        atomic_store(&d->waiting, 0);
    }
    l->avail_ms = now;
    l->dirty = 0;
}

/* Least-loaded score of a source: (its reported load + our requests in
 * flight to it + 1) per unit of its estimated throughput to this node
 * (dl_recv_rate); lower is better. */
uint64_t
dl_pick_cost(const node_src_sh_t *src)
{
    uint64_t rate = atomic_load(&src->rate_bps);

    if (rate == 0) {
        rate = TS_DL_DEFAULT_RATE;
    }
    return ((uint64_t) atomic_load(&src->load) + atomic_load(&src->inflight)
            + 1) * 1000000000ull / rate;
}

/*
 * Peer affinity: each source of a download is served by few of the
 * node's downloader workers, so a peer sees one TCP flow per node (or a
 * few when the download has fewer sources than we have downloaders), not
 * one per worker.  Source s belongs to the workers h .. h + n - 1 (modulo
 * the downloader count), h a hash of its fingerprint, n the downloader
 * count over the usable sources (at least 1).  1 if it is ours.
 */
int
dl_pick_owned(const dl_t *w, int i, int s)
{
    const node_src_sh_t *src = &w->dls[i].src[s];
    uint32_t             h, n, peers = 0;
    int                  j;

    if (w->ndl <= 1) {
        return 1;
    }
    for (j = 0; j < TS_NODE_SOURCES_N; j++) {
        peers += atomic_load(&w->dls[i].src[j].state) == NODE_SRC_LIVE;
    }
    n = peers > 0 ? (uint32_t) w->ndl / peers : (uint32_t) w->ndl;
    if (n < 1) {
        n = 1;
    }
    h = (uint32_t) src->fp[0] | (uint32_t) src->fp[1] << 8
        | (uint32_t) src->fp[2] << 16 | (uint32_t) src->fp[3] << 24;
    h ^= (uint32_t) src->addr[strnlen(src->addr, sizeof(src->addr)) / 2];
    return ((uint32_t) w->inst + (uint32_t) w->ndl - h % (uint32_t) w->ndl)
           % (uint32_t) w->ndl < n;
}

/* The sources of download i a GET may go to now (ours by affinity, a
 * usable link with room and a live authorization): their bit in the
 * result, their link in ks[s] and their chunk map in maps[s]. */
static uint32_t
dl_pick_links(dl_t *w, int i, int64_t now, dl_link_t **ks,
              _Atomic uint64_t **maps)
{
    node_dl_sh_t *d = &w->dls[i];
    uint32_t      elig = 0;
    int           s;

    for (s = 0; s < TS_NODE_SOURCES_N; s++) {
        ks[s] = NULL;
        if (!dl_pick_usable(&d->src[s], now)
            || atomic_load(&d->src[s].map_ms) == 0
            || !dl_pick_owned(w, i, s))
        {
            continue;
        }
        ks[s] = dl_link_get(w, &d->src[s]);
        if (ks[s] != NULL && !dl_link_auth_ok(w, ks[s], i, now)) {
            ks[s] = NULL;
        }
        if (ks[s] != NULL) {
            elig |= 1u << s;
            maps[s] = node_dl_map(w->shm, i, s);
        }
    }
    return elig;
}

/* 1 if source src serves others besides us: the load it last reported
 * (its uploads and queued requests, all peers) exceeds our GETs to it,
 * or it has sent us nothing yet. */
static int
dl_pick_others(const node_src_sh_t *src)
{
    return atomic_load(&src->rate_bps) == 0       /* not heard from yet */
           || atomic_load(&src->load) > atomic_load(&src->inflight);
}

/*
 * The chunk to ask source s for: missing, unclaimed, in s's map; the
 * rarest among them (fewest usable holders), and among equally rare ones
 * a uniformly random one, so that leechers starting together open on
 * different chunks and have something to give each other.  A complete
 * source (a seeder) that serves others too is asked only for chunks no
 * partial peer holds: what a leecher has is taken from the leecher, and
 * the seeder's uplink carries each chunk into the swarm about once (a
 * seeder that serves only us is idle otherwise: anything goes); `relax`
 * lifts that rule (nothing else is in flight).  UINT32_MAX if none.
 */
static uint32_t
dl_pick_chunk(dl_t *w, int i, int s, _Atomic uint64_t *map, int relax)
{
    dl_local_t       *l = &w->loc[i];
    _Atomic uint64_t *done = node_dl_done(w->shm, i);
    _Atomic uint64_t *claims = node_dl_claims(w->shm, i);
    uint32_t          wd, c, best = UINT32_MAX, cnt = 0, lim = UINT32_MAX;
    uint32_t          pick = UINT32_MAX;
    uint64_t          bits;

    if (!relax && atomic_load(&w->dls[i].src[s].complete)
        && l->npartial > 0 && dl_pick_others(&w->dls[i].src[s]))
    {
        lim = l->ncomplete;    /* held by the complete sources alone */
    }
    for (wd = 0; wd < (l->nchunks + 63) / 64; wd++) {
        bits = atomic_load(&map[wd]) & ~atomic_load(&done[wd]);
        while (bits) {
            c = wd * 64 + (uint32_t) __builtin_ctzll(bits);
            bits &= bits - 1;
            if (c >= l->nchunks) {
                break;
            }
            if (l->avail[c] == 0 || l->avail[c] > best || l->avail[c] > lim
                || atomic_load_explicit(&claims[c], memory_order_relaxed))
            {
                continue;
            }
            if (l->avail[c] < best) {
                best = l->avail[c];
                cnt = 1;
                pick = c;
            } else if (dl_pick_rand(w) % ++cnt == 0) {
                pick = c;
            }
        }
    }
    return pick;
}

/* 1 if chunk pick should rather wait for a holder whose pipeline is
 * full right now but costs less than 1/TS_DL_SPILL_FACTOR of source bs
 * (a fast busy peer gets what a much slower one would take ages on), or
 * that sent bad data for it (avoid) while another holder can be asked. */
int
dl_pick_spill(dl_t *w, int i, int64_t now, uint32_t elig, int bs,
              uint32_t pick)
{
    dl_local_t   *l = &w->loc[i];
    node_dl_sh_t *d = &w->dls[i];
    uint64_t      bcost = dl_pick_cost(&d->src[bs]);
    int           s;

    if (l->avoid[pick] == bs + 1) {
        return dl_pick_elsewhere(w, i, bs, pick, now);
    }
    for (s = 0; s < TS_NODE_SOURCES_N; s++) {
        node_src_sh_t *src = &d->src[s];

        if (s == bs || (elig & (1u << s)) || !dl_pick_usable(src, now)
            || atomic_load(&src->map_ms) == 0
            || !node_bit_test(node_dl_map(w->shm, i, s), pick))
        {
            continue;
        }
        if (dl_pick_cost(src) < bcost / TS_DL_SPILL_FACTOR) {
            return 1;
        }
    }
    return 0;
}

/* GETs of download i in flight from this node, all workers. */
static uint32_t
dl_pick_node_inflight(const dl_t *w, int i)
{
    uint32_t n = 0;
    int      s;

    for (s = 0; s < TS_NODE_SOURCES_N; s++) {
        n += atomic_load(&w->dls[i].src[s].inflight);
    }
    return n;
}

/* The eligible source with the lowest cost (random among equals) and a
 * chunk for it, trying the next one when a source has nothing for us.
 * -1 if none. */
static int
dl_pick_pair(dl_t *w, int i, int64_t now, uint32_t elig,
             _Atomic uint64_t **maps, int relax, uint32_t *chunk)
{
    node_dl_sh_t *d = &w->dls[i];
    uint32_t      left = elig, e, pick;
    uint64_t      cost, bcost;
    int           s, bs, nbest;

    while (left) {
        bcost = UINT64_MAX;
        bs = -1;
        nbest = 0;
        for (e = left; e; e &= e - 1) {
            s = __builtin_ctz(e);
            cost = dl_pick_cost(&d->src[s]);
            if (cost < bcost) {
                bcost = cost;
                bs = s;
                nbest = 1;
            } else if (cost == bcost && dl_pick_rand(w) % ++nbest == 0) {
                bs = s;
            }
        }
        left &= ~(1u << bs);
        pick = dl_pick_chunk(w, i, bs, maps[bs], relax);
        if (pick != UINT32_MAX && !dl_pick_spill(w, i, now, elig, bs, pick)) {
            *chunk = pick;
            return bs;
        }
    }
    return -1;
}

/* Sends a GET of chunk pick of download i to source bs on link k: the
 * chunk claimed first, unless dup (an endgame copy of a GET another
 * request holds the claim for).  1 if sent, 0 if not. */
int
dl_pick_send(dl_t *w, int i, int bs, dl_link_t *k, uint32_t pick, int dup)
{
    dl_local_t       *l = &w->loc[i];
    _Atomic uint64_t *done = node_dl_done(w->shm, i);
    _Atomic uint64_t *claims = node_dl_claims(w->shm, i);
    dl_req_t          r;

    if (!dup && !ts_claim_try(&claims[pick], w->me)) {
        return 0;
    }
    if (node_bit_test(done, pick)) {
        if (!dup) {
            ts_claim_release(&claims[pick], w->me);
        }
        return 0;
    }
    memset(&r, 0, sizeof(r));
    r.kind = REQ_GET;
    r.dl = i;
    r.dl_id = l->id;
    r.src = bs;
    r.chunk = pick;
    r.dup = dup;
    r.len = dl_local_chunk_len(l, pick);
    r.pub = dl_local_inflight_add(w, i, bs);
    w->inflight++;
    if (dl_link_send(w, k, TS_MSG_PEER_GET, &r) < 0) {
        dl_link_release(w, &r);
        return 0;
    }
    return 1;
}

/* Picks and sends one GET for download i.  1 if sent, 0 if nothing. */
int
dl_pick_one(dl_t *w, int i, int64_t now)
{
    _Atomic uint64_t *maps[TS_NODE_SOURCES_N];
    dl_link_t        *ks[TS_NODE_SOURCES_N];
    uint32_t          elig, pick = UINT32_MAX;
    int               bs;

    elig = dl_pick_links(w, i, now, ks, maps);
    if (elig == 0) {
        return 0;
    }
    /* blocks of the chunks assembled here first (dl_block.c) */
    if (dl_blk_pick(w, i, now, elig, ks, maps)) {
        return 1;
    }
    bs = dl_pick_pair(w, i, now, elig, maps, 0, &pick);
    if (bs < 0 && dl_pick_node_inflight(w, i) <= TS_DL_PICK_RELAX_N) {
        /* nothing moves: a partial peer we count on may never answer */
        bs = dl_pick_pair(w, i, now, elig, maps, 1, &pick);
    }
    if (bs < 0) {
        /* every missing chunk is on its way: the last ones from two */
        return dl_eg_pick(w, i, elig, ks, maps);
    }
    if (dl_blk_start(w, i, now, pick)) {
        /* near the end: its blocks from several peers */
        (void) dl_blk_pick(w, i, now, elig, ks, maps);
        return 1;
    }
    return dl_pick_send(w, i, bs, ks[bs], pick, 0);
}

/* 1 if a usable source other than src has chunk c of download i */
int
dl_pick_elsewhere(dl_t *w, int i, int src, uint32_t c, int64_t now)
{
    node_dl_sh_t *d = &w->dls[i];
    int           s;

    for (s = 0; s < TS_NODE_SOURCES_N; s++) {
        if (s != src && dl_pick_usable(&d->src[s], now)
            && atomic_load(&d->src[s].map_ms) != 0
            && node_bit_test(node_dl_map(w->shm, i, s), c))
        {
            return 1;
        }
    }
    return 0;
}
