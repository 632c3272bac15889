/*
 * dl_local.c -- the downloader's private copy of each download
 * (dl_local_t): the seqlocked snapshot of its text fields, its .part
 * descriptor, its state moves and its in-flight accounting.
 *
 * Purpose: everything a downloader module needs to know about download i
 * without reading the shared entry field by field: the snapshot is taken
 * once per download id (dl_local_snapshot) and dropped when the entry
 * leaves ACTIVE/FINALIZING or is reused.  The .part is opened once per
 * snapshot, never created here (node_open_part: no symlink, the inode the
 * CLI made).
 *
 * Locking: none.  The text fields are copied under the entry's seqlock
 * (retried at most TS_DL_SNAPSHOT_TRIES_N times); states move by CAS from
 * the expected state of the same download id; in-flight counts are C11
 * atomics, decremented with saturation (ts_atomic.h).
 *
 * Crash behaviour: the per-slot in-flight share is raised before the
 * global count and lowered after it, so node_reclaim() subtracting a dead
 * worker's share can only over-subtract (saturating at 0), never leak.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_atomic.h"
#include "ts_clock.h"
#include "ts_log.h"
#include "dl_int.h"

void
dl_local_drop(dl_local_t *l)
{
    if (l->fd >= 0) {
        close(l->fd);
    }
    free(l->avail);
    free(l->avoid);
    memset(l, 0, sizeof(*l));
    l->fd = -1;
}

/* Copies the text fields of download i under its seqlock.  1 if the
 * download is usable (ACTIVE or FINALIZING and sane), else 0. */
int
dl_local_snapshot(dl_t *w, int i)
{
    node_dl_sh_t *d = &w->dls[i];
    dl_local_t   *l = &w->loc[i];
    dl_local_t    t;
    uint32_t      s1, s2, id, st;
    int           tries;

    st = atomic_load(&d->state);
    if (st != NODE_DL_ACTIVE && st != NODE_DL_FINALIZING) {
        if (l->active) {
            dl_local_drop(l);
        }
        return 0;
    }
    id = atomic_load(&d->id);
    if (l->active && l->id == id) {
        return 1;
    }
    if (l->active) {
        dl_local_drop(l);
    }
    memset(&t, 0, sizeof(t));
    for (tries = 0; ; tries++) {
        if (tries > TS_DL_SNAPSHOT_TRIES_N) {
            return 0;
        }
        s1 = atomic_load_explicit(&d->seq, memory_order_acquire);
        if (s1 & 1) {
            sched_yield();
            continue;
        }
        memcpy(t.group, d->group, sizeof(t.group));
        memcpy(t.name, d->name, sizeof(t.name));
        memcpy(t.dest, d->dest, sizeof(t.dest));
        memcpy(t.part, d->part, sizeof(t.part));
        t.part_id = d->part_id;
        memcpy(t.sha1, d->file_sha1, 20);
        t.size = d->size;
        t.nchunks = d->nchunks;
        atomic_thread_fence(memory_order_acquire);
        s2 = atomic_load_explicit(&d->seq, memory_order_relaxed);
        if (s1 == s2) {
            break;
        }
    }
    t.group[sizeof(t.group) - 1] = '\0';
    t.name[sizeof(t.name) - 1] = '\0';
    t.dest[sizeof(t.dest) - 1] = '\0';
    t.part[sizeof(t.part) - 1] = '\0';
    if (t.size > TS_FILE_MAX_B
        || t.nchunks != (t.size + TS_CHUNK_B - 1) / TS_CHUNK_B
        || t.part[0] == '\0' || t.dest[0] == '\0')
    {
        return 0;
    }
    t.avail = calloc(t.nchunks ? t.nchunks : 1, sizeof(uint16_t));
    t.avoid = calloc(t.nchunks ? t.nchunks : 1, 1);
    if (t.avail == NULL || t.avoid == NULL) {
        free(t.avail);
        free(t.avoid);
        return 0;
    }
    t.fd = -1;
    t.id = id;
    t.active = 1;
    t.dirty = 1;
    *l = t;
    return 1;
}

/* The .part, opened once per snapshot.  Never created here: the CLI made
 * it (O_EXCL) when the download was asked for, and only that file is
 * ever opened (node_open_part: no symlink, same inode), so a file
 * someone else put at the name is never written or read as ours. */
int
dl_local_part_fd(dl_local_t *l)
{
    if (l->fd < 0) {
        l->fd = node_open_part(l->part, O_RDWR, &l->part_id);
        if (l->fd < 0) {
            ts_err("open(\"%s\") failed: %s", l->part,
                   errno == ESTALE ? "another file has taken its name"
                                   : strerror(errno));
        }
    }
    return l->fd;
}

/* Why the .part could not be opened, for the download's error. */
const char *
dl_local_part_why(int err)
{
    switch (err) {
    case ENOENT:
        return "the .part file was removed";
    case ESTALE:
    case ELOOP:
        return "another file has taken the .part file's name";
    default:
        return "cannot open the .part file";
    }
}

/*
 * Moves download i from state `from` to `to`, only while the entry still
 * holds the download we snapshotted (id) and is still in `from`: the CLI
 * may have removed, reused or paused it meanwhile.  `why` (or NULL) goes
 * into error first, and only when the move is about to win.  1 if moved.
 */
int
dl_local_set_state(dl_t *w, int i, uint32_t from, uint32_t to, const char *why)
{
    node_dl_sh_t *d = &w->dls[i];
    uint32_t      exp = from;

    if (atomic_load(&d->id) != w->loc[i].id
        || atomic_load(&d->state) != from)
    {
        return 0;
    }
    if (why != NULL) {
        snprintf(d->error, sizeof(d->error), "%s", why);
    }
    return atomic_compare_exchange_strong(&d->state, &exp, to);
}

void
dl_local_fail(dl_t *w, int i, uint32_t from, const char *why)
{
    node_dl_sh_t *d = &w->dls[i];

    if (!dl_local_set_state(w, i, from, NODE_DL_FAILED, why)) {
        return;
    }
    atomic_store(&d->finished_ms, ts_wall_ms());
    ts_err("download %s/%s failed: %s", w->loc[i].group, w->loc[i].name,
           why);
}

/* 1 while chunk c of download i (as of id) is still claimed by us: a
 * late reply or re-hash for a reused entry or a lost claim counts nothing */
int
dl_local_chunk_mine(dl_t *w, int i, uint32_t id, uint32_t c)
{
    return atomic_load(&w->dls[i].id) == id
           && atomic_load(&node_dl_claims(w->shm, i)[c]) == w->me;
}

/* Copies download i's ticket when the CLI has replaced it. */
void
dl_local_ticket_refresh(dl_t *w, int i)
{
    dl_local_t *l = &w->loc[i];
    uint32_t    g, len, gen;

    g = atomic_load_explicit(&w->dls[i].ticket_gen, memory_order_acquire);
    if (g == l->tgen) {
        return;
    }
    if (node_dl_ticket(w->shm, i, l->ticket, sizeof(l->ticket), &len, &gen)
        == 0)
    {
        l->tlen = len;
        l->tgen = gen;
        l->dirty = 1;
    }
}

int
dl_local_inflight_add(dl_t *w, int i, int s)
{
    _Atomic uint32_t *mine = node_slot_inflight(w->shm, w->slot, i);

    if (mine == NULL) {
        return 0;
    }
    /* per-slot share first: reclaim can only over-subtract, never leak */
    atomic_fetch_add(&mine[s], 1);
    atomic_fetch_add(&w->dls[i].src[s].inflight, 1);
    return 1;
}

void
dl_local_inflight_sub(dl_t *w, const dl_req_t *r)
{
    node_dl_sh_t     *d = &w->dls[r->dl];
    _Atomic uint32_t *mine = node_slot_inflight(w->shm, w->slot, r->dl);

    w->inflight--;
    if (!r->pub || mine == NULL || atomic_load(&d->id) != r->dl_id) {
        return;
    }
    /* global count first, then our slot's share (the reverse of the
     * way up): a kill in between makes reclaim subtract once more from
     * the global count, an over-subtraction that saturates, never a leak */
    ts_atomic_sub_sat32(&d->src[r->src].inflight, 1);
    ts_atomic_sub_sat32(&mine[r->src], 1);
}
