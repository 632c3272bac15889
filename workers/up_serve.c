/*
 * up_serve.c -- the uploader's answers: (group, name) lookups, the open
 * files, PEER_MAP and PEER_GET replies, and the node's load counts.
 *
 * Purpose: a chunk goes out as a small header (ts_conn_write) followed by
 * the bytes straight from the page cache (ts_conn_sendfile: sendfile on a
 * plaintext link, pread + TLS otherwise), non-blocking, with the send
 * state kept per link.  A ranged GET is served the same way, its range
 * checked by peer_msg_range_check once the chunk's length is known
 * (anything else: BADREQ, nothing more).  Shares are served from their path after
 * fstat/stat show the size and mtime recorded at upload (else the share
 * becomes STALE and is never served again); downloads in progress are
 * served from the .part (or the final file), only for chunks whose done
 * bit is set.  Open files are cached per share/download entry and dup()ed
 * for a send in progress.  This is the per-chunk path: no copy beyond the
 * kernel's, no allocation, no lock.
 *
 * Locking: none.  The load counts are raised in the worker's slot first,
 * then in the node total, and lowered the other way round (saturating),
 * so reclaim of a killed worker can only over-subtract, never leak load.
 *
 * Crash behaviour: nothing is written but counters; see up_worker.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_atomic.h"
#include "ts_clock.h"
#include "ts_log.h"
#include "up_int.h"


/*
 * Up: slot first, then the node total; down: the node total first (never
 * below 0), then the slot.  A kill in between either way leaves the slot
 * holding at least what we added to the total, so reclaim can only
 * over-subtract (saturating), never leak load.
 */
void
up_serve_queued(up_t *u, int d)
{
    if (d > 0) {
        atomic_fetch_add(&u->slot->counter[0], (uint64_t) d);
        atomic_fetch_add(&u->st->queued, (uint32_t) d);
    } else if (d < 0) {
        ts_atomic_sub_sat32(&u->st->queued, (uint32_t) -d);
        atomic_fetch_sub(&u->slot->counter[0], (uint64_t) -d);
    }
}


void
up_serve_active(up_t *u, int d)
{
    if (d > 0) {
        atomic_fetch_add(&u->slot->counter[1], 1);
        atomic_fetch_add(&u->st->active_uploads, 1);
    } else {
        ts_atomic_sub_sat32(&u->st->active_uploads, 1);
        atomic_fetch_sub(&u->slot->counter[1], 1);
    }
}


static uint32_t
up_serve_load(up_t *u)
{
    return atomic_load(&u->st->active_uploads) + atomic_load(&u->st->queued);
}


static int64_t
up_serve_mtime_ns(const struct stat *sb)
{
    return (int64_t) sb->st_mtim.tv_sec * 1000000000LL + sb->st_mtim.tv_nsec;
}


/* Finds (group, name): *share = READY/STALE share index (snapshot in
 * u->share_snap) or -1, *dl = download index (snapshot in u->dl_snap)
 * or -1. */
static void
up_serve_find(up_t *u, const char *group, const char *name, int *share,
              int *dl)
{
    node_share_sh_t  *sh = node_shares(u->shm);
    node_dl_sh_t     *dls = node_dls(u->shm);
    up_lookup_t      *l;
    uint32_t          state;
    int               i, s = -1, d = -1;

    *share = -1;
    *dl = -1;

    for (i = 0; i < TS_UP_LOOKUP_N; i++) {
        l = &u->look[i];
        if (strcmp(l->group, group) == 0 && strcmp(l->name, name) == 0) {
            s = l->share;
            d = l->dl;
            goto verify;
        }
    }

scan:
    s = -1;
    d = -1;
    for (i = 0; i < TS_NODE_SHARES_N; i++) {
        state = atomic_load_explicit(&sh[i].state, memory_order_acquire);
        if (state != NODE_SHARE_READY && state != NODE_SHARE_STALE) {
            continue;
        }
        if (node_share_snapshot(u->shm, i, &u->share_snap) == 0
            && strcmp(u->share_snap.group, group) == 0
            && strcmp(u->share_snap.name, name) == 0)
        {
            s = i;
            break;
        }
    }
    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        if (atomic_load(&dls[i].state) != NODE_DL_FREE
            && node_dl_snapshot(u->shm, i, &u->dl_snap) == 0
            && strcmp(u->dl_snap.group, group) == 0
            && strcmp(u->dl_snap.name, name) == 0)
        {
            d = i;
            break;
        }
    }
    l = &u->look[u->look_next];
    u->look_next = (u->look_next + 1) % TS_UP_LOOKUP_N;
    snprintf(l->group, sizeof(l->group), "%s", group);
    snprintf(l->name, sizeof(l->name), "%s", name);
    l->share = s;
    l->dl = d;
    l = NULL;

verify:
    /* a cached answer is re-checked against the entries themselves; a
     * miss (or a changed entry) falls back to a full scan once */
    if (s >= 0) {
        if (node_share_snapshot(u->shm, s, &u->share_snap) != 0
            || strcmp(u->share_snap.group, group) != 0
            || strcmp(u->share_snap.name, name) != 0
            || (atomic_load(&u->share_snap.state) != NODE_SHARE_READY
                && atomic_load(&u->share_snap.state) != NODE_SHARE_STALE))
        {
            if (l != NULL) {
                l->group[0] = '\0';
                goto scan;
            }
            s = -1;
        }
    }
    if (d >= 0) {
        if (node_dl_snapshot(u->shm, d, &u->dl_snap) != 0
            || strcmp(u->dl_snap.group, group) != 0
            || strcmp(u->dl_snap.name, name) != 0)
        {
            if (l != NULL) {
                l->group[0] = '\0';
                goto scan;
            }
            d = -1;
        }
    }
    if (s < 0 && d < 0 && l != NULL) {
        /* maybe added since it was cached */
        l->group[0] = '\0';
        goto scan;
    }
    *share = s;
    *dl = d;
}


static void
up_serve_share_stale(up_t *u, int idx, const char *why)
{
    node_share_sh_t  *sh = &node_shares(u->shm)[idx];
    uint32_t          exp = NODE_SHARE_READY;

    if (atomic_compare_exchange_strong(&sh->state, &exp, NODE_SHARE_STALE)) {
        ts_warn("share %s/%s (%s): file changed on disk (%s); "
                "no longer served", u->share_snap.group, u->share_snap.name,
                u->share_snap.path, why);
    }
    if (u->shares[idx].fd >= 0) {
        close(u->shares[idx].fd);
        u->shares[idx].fd = -1;
    }
}


/* An fd for share idx (snapshot in u->share_snap) whose file still has
 * the recorded size and mtime; -1 after marking it STALE (or on an open
 * error: *why says which). */
static int
up_serve_share_fd(up_t *u, int idx, const char **why)
{
    up_fcache_t     *fc = &u->shares[idx];
    node_share_sh_t *sn = &u->share_snap;
    struct stat      fsb, psb;
    uint32_t         gen = atomic_load(&sn->seq);

    if (fc->fd >= 0 && fc->gen != gen) {
        close(fc->fd);
        fc->fd = -1;
    }
    if (stat(sn->path, &psb) != 0) {
        up_serve_share_stale(u, idx, strerror(errno));
        *why = "file changed on disk";
        return -1;
    }
    if ((uint64_t) psb.st_size != sn->size
        || up_serve_mtime_ns(&psb) != sn->mtime_ns)
    {
        up_serve_share_stale(u, idx, "size or mtime differ");
        *why = "file changed on disk";
        return -1;
    }
    if (fc->fd >= 0) {
        if (fstat(fc->fd, &fsb) != 0 || fsb.st_ino != psb.st_ino
            || fsb.st_dev != psb.st_dev)
        {
            /* replaced by an identical-looking file: reopen the path */
            close(fc->fd);
            fc->fd = -1;
        } else if ((uint64_t) fsb.st_size != sn->size
                   || up_serve_mtime_ns(&fsb) != sn->mtime_ns)
        {
            up_serve_share_stale(u, idx, "size or mtime differ");
            *why = "file changed on disk";
            return -1;
        }
    }
    if (fc->fd < 0) {
        fc->fd = open(sn->path, O_RDONLY | O_CLOEXEC);
        if (fc->fd < 0) {
            ts_warn("open(\"%s\") failed: %s", sn->path, strerror(errno));
            *why = "file not readable";
            return -1;
        }
        fc->gen = gen;
        if (fstat(fc->fd, &fsb) != 0 || (uint64_t) fsb.st_size != sn->size
            || up_serve_mtime_ns(&fsb) != sn->mtime_ns)
        {
            up_serve_share_stale(u, idx, "size or mtime differ");
            *why = "file changed on disk";
            return -1;
        }
    }
    return fc->fd;
}


/* An fd for download idx (snapshot in u->dl_snap): the .part, or the
 * final file once renamed. */
static int
up_serve_dl_fd(up_t *u, int idx)
{
    up_fcache_t   *fc = &u->dls[idx];
    node_dl_sh_t  *sn = &u->dl_snap;
    uint32_t       gen = atomic_load(&sn->id);

    if (fc->fd >= 0 && fc->gen != gen) {
        close(fc->fd);
        fc->fd = -1;
    }
    if (fc->fd < 0) {
        /* only the download's own file, under either name (the rename
         * keeps the inode): never a symlink or a file put there later */
        if (atomic_load(&sn->state) != NODE_DL_DONE) {
            fc->fd = node_open_part(sn->part, O_RDONLY, &sn->part_id);
        }
        if (fc->fd < 0) {
            fc->fd = node_open_part(sn->dest, O_RDONLY, &sn->part_id);
        }
        if (fc->fd < 0) {
            return -1;
        }
        fc->gen = gen;
        /* no readahead: peers ask for scattered chunks, and the
         * device's readahead (8 MiB on some VMs) would read the
         * neighbouring chunks the downloader dropped from the page
         * cache back from disk and fill the page cache with the holes
         * (zeroed pages) of chunks not yet written.  The dup()s for the
         * sends share this open file, so its mode with it. */
        (void) posix_fadvise(fc->fd, 0, 0, POSIX_FADV_RANDOM);
    }
    return fc->fd;
}


static int
up_serve_dl_servable(const node_dl_sh_t *d)
{
    uint32_t st = atomic_load(&((node_dl_sh_t *) d)->state);

    return st == NODE_DL_ACTIVE || st == NODE_DL_FINALIZING
           || st == NODE_DL_DONE;
}


static void
up_serve_frame_begin(ts_wbuf_t *b)
{
    static const uint8_t zero[TS_FRAME_HDR_B];

    ts_wbuf_reset(b);
    ts_put_raw(b, zero, sizeof(zero));
}


static void
up_serve_frame_end(ts_wbuf_t *b, uint8_t type, uint64_t reqid, uint32_t extra)
{
    ts_frame_hdr_t  h;

    if (b->err || b->len < TS_FRAME_HDR_B) {
        return;
    }
    h.type = type;
    h.flags = TS_FF_REPLY;
    h.len = (uint32_t) (b->len - TS_FRAME_HDR_B) + extra;
    h.reqid = reqid;
    ts_frame_hdr_encode(b->data, &h);
}


/* MAP/GET r may be answered: the link held an unexpired authorization
 * for its (group, name) when r was parsed and still does. */
static int
up_serve_authorized(const up_link_t *k, const up_req_t *r)
{
    return r->perm && up_auth_ok(&k->auth, r->group, r->name, ts_wall_ms());
}


static void
up_serve_auth(up_link_t *k, const up_req_t *r)
{
    ts_wbuf_t  *b = &k->out;

    up_serve_frame_begin(b);
    ts_reply_begin(b, (ts_status_t) r->status,
                   r->status == TS_OK ? NULL : r->msg);
    up_serve_frame_end(b, TS_MSG_REPLY, r->reqid, 0);
}


static void
up_serve_map(up_t *u, up_link_t *k, const up_req_t *r)
{
    ts_wbuf_t        *b = &k->out;
    _Atomic uint64_t *done;
    uint8_t          *bits;
    uint32_t          n, i;
    int               s, d, sub = 0;
    const char       *why = NULL;

    up_serve_frame_begin(b);

    if (r->bad) {
        ts_reply_begin(b, TS_ERR_BADREQ, "malformed request");
        goto out;
    }
    if (!up_serve_authorized(k, r)) {
        ts_reply_begin(b, TS_ERR_PERM, "no valid ticket");
        goto out;
    }
    if (atomic_load(&u->st->paused)) {
        ts_reply_begin(b, TS_ERR_AUTH, "peer is not sharing right now");
        goto out;
    }
    up_serve_find(u, r->group, r->name, &s, &d);

    if (s >= 0 && atomic_load(&u->share_snap.state) == NODE_SHARE_READY
        && up_serve_share_fd(u, s, &why) >= 0)
    {
        (void) peer_msg_map_encode(b, up_serve_load(u),
                                   u->share_snap.nchunks, 1);
        goto out;
    }
    if (d >= 0 && up_serve_dl_servable(&u->dl_snap)) {
        n = u->dl_snap.nchunks;
        done = node_dl_done(u->shm, d);
        /* before the bitmap: what is verified later gets pushed */
        sub = r->want_have
              && up_have_sub(u, k, r, d, atomic_load(&u->dl_snap.id));
        bits = peer_msg_map_encode(b, up_serve_load(u), n, 0);
        if (bits != NULL) {
            for (i = 0; i < n; i++) {
                if (node_bit_test(done, i)) {
                    bits[i >> 3] |= (uint8_t) (1u << (i & 7));
                }
            }
        }
        goto out;
    }
    if (s >= 0 || why != NULL) {
        ts_reply_begin(b, TS_ERR_STATE, why ? why : "file changed on disk");
    } else {
        ts_reply_begin(b, TS_ERR_NOTFOUND, "unknown file");
    }

out:
    up_serve_frame_end(b, TS_MSG_REPLY, r->reqid, 0);
    if (sub) {
        up_have_ack(b);
    }
}


static void
up_serve_error(up_t *u, up_link_t *k, const up_req_t *r, ts_status_t st,
    const char *msg)
{
    ts_wbuf_t  *b = &k->out;

    up_serve_frame_begin(b);
    peer_msg_data_encode(b, st, msg, up_serve_load(u), r->index, 0);
    up_serve_frame_end(b, TS_MSG_PEER_DATA, r->reqid, 0);
}


static void
up_serve_get(up_t *u, up_link_t *k, const up_req_t *r)
{
    ts_wbuf_t   *b = &k->out;
    struct stat  sb;
    uint64_t     size, off;
    uint32_t     n, len, clen;
    int          s, d, fd = -1;
    const char  *why = NULL;

    if (r->bad) {
        up_serve_error(u, k, r, TS_ERR_BADREQ, "malformed request");
        return;
    }
    if (!up_serve_authorized(k, r)) {
        up_serve_error(u, k, r, TS_ERR_PERM, "no valid ticket");
        return;
    }
    if (atomic_load(&u->st->paused)) {
        up_serve_error(u, k, r, TS_ERR_AUTH, "peer is not sharing right now");
        return;
    }
    up_serve_find(u, r->group, r->name, &s, &d);

    k->share_idx = -1;
    k->dl_idx = -1;
    if (s >= 0 && atomic_load(&u->share_snap.state) == NODE_SHARE_READY) {
        n = u->share_snap.nchunks;
        size = u->share_snap.size;
        if (r->index >= n) {
            up_serve_error(u, k, r, TS_ERR_BADREQ, "chunk index out of range");
            return;
        }
        fd = up_serve_share_fd(u, s, &why);
        if (fd >= 0) {
            k->share_idx = s;
        }
        /* a range is asked at a download's end (the downloader spares
         * a seeder whose chunk a leecher holds, dl_block.c): a refusal
         * would stall the chunk's assembly */
        if (fd >= 0 && !r->ranged && !up_seed_allow(u, k, s, r->index)) {
            /* another peer got it a moment ago: take it from there */
            k->share_idx = -1;
            up_serve_error(u, k, r, TS_ERR_NOTFOUND,
                           "chunk already in the swarm");
            return;
        }
        if (fd >= 0 && !r->ranged) {
            up_fair_start(u, k, s);
        }
    }
    if (fd < 0 && d >= 0 && up_serve_dl_servable(&u->dl_snap)) {
        n = u->dl_snap.nchunks;
        size = u->dl_snap.size;
        if (r->index >= n) {
            up_serve_error(u, k, r, TS_ERR_BADREQ, "chunk index out of range");
            return;
        }
        if (!node_bit_test(node_dl_done(u->shm, d), r->index)) {
            up_serve_error(u, k, r, TS_ERR_NOTFOUND, "chunk not available");
            return;
        }
        fd = up_serve_dl_fd(u, d);
        off = (uint64_t) r->index * TS_CHUNK_B;
        len = (uint32_t) (size - off < TS_CHUNK_B ? size - off : TS_CHUNK_B);
        if (fd < 0 || fstat(fd, &sb) != 0
            || (uint64_t) sb.st_size < off + len)
        {
            up_serve_error(u, k, r, TS_ERR_NOTFOUND, "chunk not available");
            return;
        }
        why = NULL;
        k->dl_idx = d;
        k->dl_gen = u->dls[d].gen;
        k->chunk_idx = r->index;
    }
    if (fd < 0) {
        if (s >= 0 || why != NULL) {
            up_serve_error(u, k, r, TS_ERR_STATE,
                           why ? why : "file changed on disk");
        } else {
            up_serve_error(u, k, r, TS_ERR_NOTFOUND, "unknown file");
        }
        return;
    }

    off = (uint64_t) r->index * TS_CHUNK_B;
    len = (uint32_t) (size - off < TS_CHUNK_B ? size - off : TS_CHUNK_B);
    clen = len;
    if (r->ranged) {
        /* hostile offsets and lengths get this answer and nothing else */
        if (peer_msg_range_check(r->roff, r->rlen, len) != 0) {
            up_serve_error(u, k, r, TS_ERR_BADREQ, "bad range: not whole "
                           "blocks within the chunk");
            return;
        }
        off += r->roff;
        len = r->rlen;
    }

    k->file_fd = dup(fd);
    if (k->file_fd < 0) {
        ts_err("dup() failed: %s", strerror(errno));
        up_serve_error(u, k, r, TS_ERR_INTERNAL, "out of file descriptors");
        return;
    }
    k->file_off = (off_t) off;
    k->file_left = len;
    k->chunk_len = len;
    /* the block that ends a chunk counts the chunk: the blocks of one
     * chunk count one chunk, whoever served the others */
    k->ranged = r->ranged && r->roff + r->rlen < clen;
    k->active = 1;
    up_serve_active(u, 1);

    up_serve_frame_begin(b);
    peer_msg_data_encode(b, TS_OK, NULL, up_serve_load(u), r->index, len);
    up_serve_frame_end(b, TS_MSG_PEER_DATA, r->reqid, len);
}


/* The per-peer counters of the node (node_peer_count): keyed by the
 * peer's IP (its port is an ephemeral one) and its certificate. */
static void
up_serve_peer_count(up_t *u, const up_link_t *k)
{
    char  ip[INET6_ADDRSTRLEN];
    int   v4 = IN6_IS_ADDR_V4MAPPED((const struct in6_addr *) k->addr.b);

    if (inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? k->addr.b + 12 : k->addr.b,
                  ip, sizeof(ip)) == NULL)
    {
        snprintf(ip, sizeof(ip), "?");
    }
    node_peer_count(u->shm, NODE_DIR_UP, ip, k->has_fp ? k->fp : NULL,
                    k->ranged ? 0 : 1,
                    k->chunk_len);
}


/* 1 if GET r at the head of k's queue waits for the fair share of a
 * complete share (up_fair_hold); anything it would be refused for is
 * answered at once instead. */
static int
up_serve_held(up_t *u, up_link_t *k, const up_req_t *r)
{
    int s, d;

    if (r->type != TS_MSG_PEER_GET || r->bad || r->ranged
        || !up_serve_authorized(k, r) || atomic_load(&u->st->paused))
    {
        return 0;
    }
    up_serve_find(u, r->group, r->name, &s, &d);
    return s >= 0 && atomic_load(&u->share_snap.state) == NODE_SHARE_READY
           && r->index < u->share_snap.nchunks && up_fair_hold(u, k, s);
}


/*
 * Chunk `chunk` of download dl (opened as gen) was just served: the chunk
 * this worker served TS_UP_DROP_LAG_N chunks before leaves the page cache,
 * unless it was served again since.  The downloader drops what it wrote
 * (dl_fh_wrote), but a chunk a peer asks for after that is read back
 * from disk into new pages; without this they would stay, and the page
 * cache of a swarm would grow by the whole file on every node.  On a VM
 * whose host takes back the guest's free pages, new pages cost several
 * times more than reused ones.  Only a hint to the kernel: a dirty page
 * stays, and a chunk dropped too soon is read from disk again.  Shares
 * (the user's own files) are left alone.
 */
static void
up_serve_drop(up_t *u, int dl, uint32_t gen, uint32_t chunk)
{
    up_drop_t    *e, old;
    up_fcache_t  *fc;
    int           i;

    if (TS_UP_DROP_LAG_N == 0) {
        return;
    }
    e = &u->served[u->nserved++
                    % (TS_UP_DROP_LAG_N > 0 ? TS_UP_DROP_LAG_N : 1)];
    old = *e;
    e->dl1 = (uint32_t) dl + 1;
    e->gen = gen;
    e->chunk = chunk;
    if (old.dl1 == 0 || old.dl1 > TS_NODE_DOWNLOADS_N) {
        return;
    }
    for (i = 0; i < TS_UP_DROP_LAG_N; i++) {
        if (u->served[i].dl1 == old.dl1 && u->served[i].gen == old.gen
            && u->served[i].chunk == old.chunk)
        {
            return;     /* served again lately: keep it */
        }
    }
    fc = &u->dls[old.dl1 - 1];
    if (fc->fd >= 0 && fc->gen == old.gen) {
        (void) posix_fadvise(fc->fd, (off_t) old.chunk * TS_CHUNK_B,
                             TS_CHUNK_B, POSIX_FADV_DONTNEED);
    }
}


/* A chunk went out completely. */
static void
up_serve_chunk_sent(up_t *u, up_link_t *k)
{
    node_share_sh_t *sh;

    close(k->file_fd);
    k->file_fd = -1;
    if (k->dl_idx >= 0) {
        up_serve_drop(u, k->dl_idx, k->dl_gen, k->chunk_idx);
        k->dl_idx = -1;
    }
    if (k->active) {
        k->active = 0;
        up_serve_active(u, -1);
        /* a range counts its bytes, and a chunk if it ends the chunk */
        atomic_fetch_add(&u->st->chunks_up, k->ranged ? 0 : 1);
        atomic_fetch_add(&u->st->bytes_up, k->chunk_len);
        atomic_fetch_add(&u->slot->counter[2], k->ranged ? 0 : 1);
        atomic_fetch_add(&u->slot->counter[3], k->chunk_len);
        up_serve_peer_count(u, k);
        if (k->share_idx >= 0) {
            sh = &node_shares(u->shm)[k->share_idx];
            atomic_fetch_add(&sh->chunks_served, k->ranged ? 0 : 1);
            atomic_fetch_add(&sh->bytes_served, k->chunk_len);
        }
    }
}


/* Sends what is pending, then answers queued requests in order.  0, or
 * -1 when the link must close.  A partial write keeps out_off /
 * file_off / file_left where the bytes stopped; after EAGAIN the same
 * remaining bytes are offered again, as TLS requires. */
int
up_serve_pump(up_t *u, up_link_t *k)
{
    up_req_t  *r;
    ssize_t    w;
    size_t     n;

    for (;;) {
        while (k->out_off < k->out.len) {
            w = ts_conn_write(k->c, k->out.data + k->out_off,
                              k->out.len - k->out_off);
            if (w < 0) {
                return up_link_again(k, &k->wr_want, 1);
            }
            k->wr_want = 0;
            k->out_off += (size_t) w;
            k->last_ms = ts_now_ms();
            up_rate_sent(u, k, (size_t) w, 0);
        }
        while (k->file_left > 0) {
            /* the node's upload cap: send only what it granted */
            n = up_rate_allow(u, k);
            if (n == 0) {
                return 0;
            }
            w = ts_conn_sendfile(k->c, k->file_fd, &k->file_off, n);
            if (w < 0) {
                return up_link_again(k, &k->wr_want, 1);
            }
            k->wr_want = 0;
            if (w == 0) {
                /* the file shrank under us: the frame cannot be finished */
                ts_warn("file shrank while sending a chunk; link closed");
                return -1;
            }
            k->file_left -= (size_t) w;
            k->last_ms = ts_now_ms();
            up_rate_sent(u, k, (size_t) w, 1);
        }
        if (k->file_fd >= 0) {
            up_serve_chunk_sent(u, k);
        }
        ts_wbuf_reset(&k->out);
        k->out_off = 0;
        if (up_have_emit(u, k)) {
            continue;       /* pushed chunks go before the next answer */
        }

        if (k->q_n == 0) {
            up_fair_idle(u, k);     /* its peer asks us for no more now */
            return 0;
        }
        r = &k->q[k->q_head];
        if (up_serve_held(u, k, r)) {
            return 0;               /* the rate timer wakes it */
        }
        k->q_head = (k->q_head + 1) % TS_UP_QUEUE_N;
        k->q_n--;
        up_serve_queued(u, -1);

        if (r->type == TS_MSG_PEER_MAP) {
            up_serve_map(u, k, r);
        } else if (r->type == TS_MSG_PEER_GET) {
            up_serve_get(u, k, r);
        } else if (r->type == TS_MSG_PEER_AUTH) {
            up_serve_auth(k, r);
        } else {
            up_serve_frame_begin(&k->out);
            ts_reply_begin(&k->out, TS_ERR_BADREQ, "unexpected message");
            up_serve_frame_end(&k->out, TS_MSG_REPLY, r->reqid, 0);
        }
        if (k->out.err) {
            ts_err("out of memory for a reply; link closed");
            return -1;
        }
    }
}
