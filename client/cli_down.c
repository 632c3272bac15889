/*
 * cli_down.c -- the agent's download entries: their slots in the node's
 * download table, how one finishes (it becomes a share, both records in
 * one node.tdb transaction) or fails, and starting a new one.
 *
 * Locking: every function here runs with cli_agent.mu held (see
 * cli_agent_priv.h); none does network I/O.
 * Crash behaviour: an entry put back into shm takes its done bitmap from
 * node.tdb and marks the rest of an existing .part as "maybe" (re-hashed
 * by the downloaders, never trusted); a chunk recorded as verified but
 * no longer on disk is fetched again.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ts_config.h"
#include "ts_log.h"
#include "node.h"
#include "node_shm.h"
#include "cli_state.h"
#include "cli_part.h"
#include "cli_exit.h"
#include "cli_dlsm.h"
#include "cli_out.h"
#include "cli_down.h"


void
cli_down_bitmap_from_shm(ts_shm_t *shm, int idx, uint32_t nchunks,
                         uint8_t *out)
{
    _Atomic uint64_t  *bm = node_dl_done(shm, idx);
    size_t             nb = cli_bitmap_b(nchunks), b;
    uint64_t           v = 0;

    for (b = 0; b < nb; b++) {
        if ((b & 7) == 0) {
            v = atomic_load_explicit(&bm[b >> 3], memory_order_acquire);
        }
        out[b] = (uint8_t) (v >> ((b & 7) * 8));
    }
    if (nchunks & 7) {
        out[nb - 1] &= (uint8_t) ((1u << (nchunks & 7)) - 1);
    }
}


void
cli_down_bitmap_fill(uint8_t *bm, uint32_t nchunks)
{
    size_t  nb = cli_bitmap_b(nchunks);

    if (nb == 0) {
        return;
    }
    memset(bm, 0xff, nb);
    if (nchunks & 7) {
        bm[nb - 1] = (uint8_t) ((1u << (nchunks & 7)) - 1);
    }
}


int
cli_down_bitmap_any(const uint8_t *bm, uint32_t nchunks)
{
    size_t  i, nb = cli_bitmap_b(nchunks);

    for (i = 0; i < nb; i++) {
        if (bm[i] != 0) {
            return 1;
        }
    }
    return 0;
}


uint64_t
cli_down_chunk_len(uint64_t size, uint32_t nchunks, uint32_t c)
{
    return (c + 1 == nchunks) ? size - (uint64_t) c * TS_CHUNK_B : TS_CHUNK_B;
}


cli_dlent_t *
cli_down_find(const char *group, const char *name)
{
    int  i;

    for (i = 0; i < cli_agent.ndls; i++) {
        if (strcmp(cli_agent.dls[i]->rec.group, group) == 0
            && strcmp(cli_agent.dls[i]->rec.name, name) == 0)
        {
            return cli_agent.dls[i];
        }
    }
    return NULL;
}


int
cli_down_busy(const cli_dlent_t *e)
{
    return e->rec.state == CLI_DL_ACTIVE || e->rec.state == CLI_DL_PAUSED;
}


cli_dlent_t *
cli_down_by_serial(uint64_t serial)
{
    int  i;

    for (i = 0; i < cli_agent.ndls; i++) {
        if (cli_agent.dls[i]->serial == serial) {
            return cli_agent.dls[i];
        }
    }
    return NULL;
}


void
cli_down_free(cli_dlent_t *e)
{
    ts_shm_t  *shm = cli_agent_shm();

    if (e->idx >= 0 && shm != NULL) {
        node_dl_remove(shm, e->idx);
    }
    cli_dl_free(&e->rec);
    free(e->srcmem);
    free(e);
}


void
cli_down_drop(cli_dlent_t *e)
{
    int  i;

    for (i = 0; i < cli_agent.ndls; i++) {
        if (cli_agent.dls[i] == e) {
            memmove(&cli_agent.dls[i], &cli_agent.dls[i + 1],
                    (size_t) (cli_agent.ndls - i - 1)
                    * sizeof(cli_agent.dls[0]));
            cli_agent.ndls--;
            break;
        }
    }
    cli_down_free(e);
}


/* Takes rec's arrays.  NULL when out of memory. */
cli_dlent_t *
cli_down_new(cli_dl_rec_t *rec)
{
    cli_dlent_t   *e, **nd;
    int            ncap;

    if (cli_agent.ndls == cli_agent.cap) {
        ncap = cli_agent.cap ? cli_agent.cap * 2 : 16;
        nd = realloc(cli_agent.dls, (size_t) ncap * sizeof(*nd));
        if (nd == NULL) {
            cli_dl_free(rec);
            return NULL;
        }
        cli_agent.dls = nd;
        cli_agent.cap = ncap;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        cli_dl_free(rec);
        return NULL;
    }
    e->rec = *rec;
    rec->hashes = NULL;
    rec->done = NULL;
    e->serial = ++cli_agent.next_serial;
    e->idx = -1;
    cli_agent.dls[cli_agent.ndls++] = e;
    return e;
}


/* Finished and failed downloads stay in the node's table (readers of the
 * segment see how they ended) until a new download needs the room: then
 * the one that ended first goes.  1 if a slot is free now. */
static int
cli_down_room(ts_shm_t *shm)
{
    node_dl_sh_t  *dls = node_dls(shm);
    cli_dlent_t   *e, *old = NULL;
    int            i;

    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        if (atomic_load(&dls[i].state) == NODE_DL_FREE) {
            return 1;
        }
    }
    for (i = 0; i < cli_agent.ndls; i++) {
        e = cli_agent.dls[i];
        if (e->rec.state != CLI_DL_ACTIVE && e->idx >= 0
            && (old == NULL || e->serial < old->serial))
        {
            old = e;
        }
    }
    if (old == NULL) {
        return 0;
    }
    node_dl_remove(shm, old->idx);
    old->idx = -1;
    return 1;
}


/* Puts a running entry into the node's table: done from the record,
 * maybe = the rest of an existing .part (a regular file, never through a
 * symlink).  With no .part and the finished file already at dest, the
 * entry is finished instead (idx stays -1).  0, or -1 (table full). */
int
cli_down_publish(cli_dlent_t *e)
{
    ts_shm_t     *shm = cli_agent_shm();
    cli_dl_rec_t *r = &e->rec;
    uint8_t      *maybe = NULL;
    struct stat   sb;
    uint64_t      have;
    uint32_t      c;
    int           idx, cleared = 0;
    char          why[PATH_MAX + 128];

    if (shm == NULL) {
        return -1;
    }
    if (lstat(r->part, &sb) != 0 && errno == ENOENT && cli_agent.st != NULL
        && cli_part_dest_is_done(r))
    {
        ts_info("%s/%s: %s is already complete", r->group, r->name,
                r->dest);
        cli_down_finish(e, shm);
        return 0;
    }
    if (!cli_down_room(shm)) {
        return -1;
    }
    if (cli_part_reopen(r, &have, &e->dirty, why, sizeof(why)) < 0) {
        ts_err("%s/%s: %s", r->group, r->name, why);
        cli_down_fail(e, shm, why);
        return 0;
    }
    if (r->nchunks > 0) {
        maybe = calloc(cli_bitmap_b(r->nchunks), 1);
        if (maybe == NULL) {
            return -1;
        }
        for (c = 0; c < r->nchunks; c++) {
            uint64_t off = (uint64_t) c * TS_CHUNK_B;
            int      done = (r->done[c >> 3] >> (c & 7)) & 1;

            /* a chunk recorded as verified must still be on disk */
            if (done
                && off + cli_down_chunk_len(r->size, r->nchunks, c) > have)
            {
                r->done[c >> 3] &= (uint8_t) ~(1u << (c & 7));
                done = 0;
                cleared++;
            }
            if (!done && off < have) {
                maybe[c >> 3] |= (uint8_t) (1u << (c & 7));
            }
        }
        if (cleared > 0) {
            ts_warn("%s/%s: %d verified chunks missing from %s; fetching "
                    "them again", r->group, r->name, cleared, r->part);
            e->dirty = 1;
        }
    }
    idx = node_dl_add(shm, r->group, r->name, r->dest, r->part, &r->part_id,
                      r->size, r->nchunks, r->sha1, r->hashes,
                      r->done, maybe);
    free(maybe);
    if (idx < 0) {
        return -1;
    }
    e->idx = idx;
    e->nsamp = 0;
    e->head = 0;
    e->next_src_ms = 0;
    e->ticket_exp_ms = 0;       /* a fresh entry: the next FILE_INFO's */
    e->progress_ms = 0;         /* the no-source clock starts again */
    if (cli_agent.paused || r->state == CLI_DL_PAUSED) {
        uint32_t act = NODE_DL_ACTIVE;

        atomic_compare_exchange_strong(&node_dls(shm)[idx].state, &act,
                                       NODE_DL_PAUSED);
    }
    return 0;
}


/* A finished download becomes a share; both records in one transaction. */
void
cli_down_finish(cli_dlent_t *e, ts_shm_t *shm)
{
    cli_dl_rec_t     *r = &e->rec;
    cli_share_rec_t   sr;
    struct stat       sb;
    int               ok;

    r->state = CLI_DL_DONE;
    r->error[0] = '\0';
    if (r->nchunks > 0) {
        cli_down_bitmap_fill(r->done, r->nchunks);
    }
    /* the entry stays in shm (DONE) until its slot is needed */

    memset(&sr, 0, sizeof(sr));
    snprintf(sr.group, sizeof(sr.group), "%s", r->group);
    snprintf(sr.name, sizeof(sr.name), "%s", r->name);
    snprintf(sr.path, sizeof(sr.path), "%s", r->dest);
    sr.size = r->size;
    sr.nchunks = r->nchunks;
    memcpy(sr.sha1, r->sha1, 20);
    ok = stat(r->dest, &sb) == 0 && S_ISREG(sb.st_mode)
         && (uint64_t) sb.st_size == r->size;
    if (ok) {
        sr.mtime_ns = (int64_t) sb.st_mtim.tv_sec * 1000000000LL
                      + sb.st_mtim.tv_nsec;
        if (node_share_add(shm, sr.group, sr.name, sr.path, sr.size,
                           sr.mtime_ns, sr.nchunks) < 0)
        {
            ts_warn("%s/%s: cannot serve the finished file (share table "
                    "full)", sr.group, sr.name);
            ok = 0;
        }
    } else {
        ts_warn("%s/%s: finished file %s is gone or changed", sr.group,
                sr.name, r->dest);
    }

    if (cli_state_begin(cli_agent.st) == 0) {
        if (cli_state_dl_put(cli_agent.st, cli_agent.user, r) == 0
            && (!ok || cli_state_share_put(cli_agent.st, cli_agent.user,
                                           &sr) == 0)
            && cli_state_commit(cli_agent.st) == 0)
        {
            e->dirty = 0;
        } else {
            cli_state_cancel(cli_agent.st);
            e->dirty = 1;
        }
    } else {
        e->dirty = 1;
    }
    e->have_dirty = 0;
    e->have_complete = ok;
    e->need_stop = !ok && e->advertised;
    ts_info("downloaded %s/%s -> %s", r->group, r->name, r->dest);
    cli_out_notify("[C] [%s] %s -> %s", r->group, r->name, r->dest);
}


void
cli_down_fail(cli_dlent_t *e, ts_shm_t *shm, const char *why)
{
    cli_dl_rec_t  *r = &e->rec;

    r->state = CLI_DL_FAILED;
    snprintf(r->error, sizeof(r->error), "%s",
             why != NULL && why[0] != '\0' ? why : "failed");
    /* the node's own FAILED entry stays; one the agent gave up on (still
     * running in shm) is taken away from the downloaders */
    if (e->idx >= 0 && shm != NULL) {
        uint32_t st = atomic_load(&node_dls(shm)[e->idx].state);

        /* a FINALIZING entry may be renaming the file right now and a
         * DONE one has: never pull those from under the downloader (the
         * collector still sees them and the entry is kept for its slot) */
        if (st != NODE_DL_FAILED && st != NODE_DL_FINALIZING
            && st != NODE_DL_DONE)
        {
            node_dl_remove(shm, e->idx);
            e->idx = -1;
        }
    }
    e->dirty = 1;
    e->have_dirty = 0;
    e->have_complete = 0;
    e->need_stop = e->advertised;
    e->fail_cls = CLI_EXIT_FAILURE;
    cli_agent.last_fail_cls = CLI_EXIT_FAILURE;
    cli_agent.failures++;
    ts_warn("download %s/%s failed: %s", r->group, r->name, r->error);
    cli_out_notify("[F] [%s] %s: %s", r->group, r->name, r->error);
    /* nothing ever verified: an empty .part is only clutter (retry makes
     * it again); one with bytes may hold chunks a retry re-hashes */
    if ((e->idx < 0 || shm == NULL
         || atomic_load(&node_dls(shm)[e->idx].state) == NODE_DL_FAILED)
        && r->nchunks > 0
        && !cli_down_bitmap_any(r->done, r->nchunks)
        && cli_part_remove(r->part, &r->part_id, 0) == 1)
    {
        ts_info("%s/%s: removed the empty %s", r->group, r->name, r->part);
    }
}


int
cli_down_cmp(const void *a, const void *b)
{
    const cli_dlent_t  *x = *(cli_dlent_t *const *) a;
    const cli_dlent_t  *y = *(cli_dlent_t *const *) b;
    int                 c = strcmp(x->rec.group, y->rec.group);

    return c != 0 ? c : strcmp(x->rec.name, y->rec.name);
}


void
cli_down_load(void *arg, cli_dl_rec_t *r)
{
    cli_dlent_t  *e;

    (void) arg;
    e = cli_down_new(r);
    if (e != NULL && e->rec.state == CLI_DL_ACTIVE) {
        /* re-advertise what we hold: the last report may have been lost */
        e->have_dirty = e->rec.nchunks > 0
                        && cli_down_bitmap_any(e->rec.done, e->rec.nchunks);
    }
}


/* Refuses a second running download of (group, name) or of dest (NULL:
 * only the name is checked): 0, or -1 with the reason in err. */
int
cli_down_check(const char *group, const char *name, const char *dest,
               char *err, size_t errsz)
{
    cli_dlent_t  *e;
    int           i;

    for (i = 0; i < cli_agent.ndls; i++) {
        e = cli_agent.dls[i];
        if (!cli_down_busy(e)) {
            continue;
        }
        if (strcmp(e->rec.group, group) == 0
            && strcmp(e->rec.name, name) == 0)
        {
            snprintf(err, errsz, "'%s' from '%s' is already being "
                     "downloaded", name, group);
            return -1;
        }
        if (dest == NULL) {
            continue;
        }
        /* nor may one's .part be the other's destination */
        if (strcmp(e->rec.dest, dest) == 0
            || cli_part_of(dest, e->rec.dest))
        {
            snprintf(err, errsz, "'%s' is already the destination of a "
                     "running download", e->rec.dest);
            return -1;
        }
        if (strcmp(e->rec.part, dest) == 0) {
            snprintf(err, errsz, "'%s' is the .part of a running download",
                     dest);
            return -1;
        }
    }
    return 0;
}


/* A new download's record from FILE_INFO (arrays allocated, done zero,
 * part = dest + ".part", no .part made yet): 0, or -1 with the reason
 * in err (nothing to free). */
int
cli_down_rec_init(cli_dl_rec_t *rec, const char *group, const char *name,
                  const char *dest, const cli_finfo_t *fi, char *err,
                  size_t errsz)
{
    memset(rec, 0, sizeof(*rec));
    snprintf(rec->group, sizeof(rec->group), "%s", group);
    snprintf(rec->name, sizeof(rec->name), "%s", name);
    snprintf(rec->dest, sizeof(rec->dest), "%s", dest);
    if (snprintf(rec->part, sizeof(rec->part), "%s.part", dest)
        >= (int) sizeof(rec->part))
    {
        snprintf(err, errsz, "destination path too long");
        return -1;
    }
    rec->size = fi->size;
    rec->nchunks = fi->nchunks;
    memcpy(rec->sha1, fi->sha1, 20);
    rec->state = CLI_DL_ACTIVE;
    if (cli_dl_alloc(rec) != 0) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    if (rec->nchunks > 0) {
        memcpy(rec->hashes, fi->hashes, 20ull * rec->nchunks);
    }
    return 0;
}


/* Adds a download (rec from cli_down_rec_init, its .part made) into shm
 * and node.tdb, replacing a finished or failed one of the same name.
 * Takes rec's arrays in every case.  The entry, or NULL with the reason
 * in err. */
cli_dlent_t *
cli_down_start(cli_dl_rec_t *rec, char *err, size_t errsz)
{
    ts_shm_t     *shm = cli_agent_shm();
    cli_dlent_t  *e, *old;

    if (shm == NULL || cli_agent.st == NULL || cli_agent.user[0] == '\0') {
        snprintf(err, errsz, "the node is not running");
        cli_dl_free(rec);
        return NULL;
    }
    old = cli_down_find(rec->group, rec->name);
    if (old != NULL && cli_down_busy(old)) {
        snprintf(err, errsz, "'%s' from '%s' is already being downloaded",
                 rec->name, rec->group);
        cli_dl_free(rec);
        return NULL;
    }
    /* the finished or failed download it replaces (same key) leaves shm
     * first, so the table never holds the name twice */
    if (old != NULL && old->idx >= 0) {
        node_dl_remove(shm, old->idx);
        old->idx = -1;
    }
    e = cli_down_new(rec);
    if (e == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    if (cli_down_publish(e) != 0) {
        snprintf(err, errsz, "too many downloads at once (at most %d)",
                 TS_NODE_DOWNLOADS_N);
        cli_down_drop(e);
        return NULL;
    }
    if (cli_state_dl_put(cli_agent.st, cli_agent.user, &e->rec) != 0) {
        snprintf(err, errsz, "cannot record the download in node.tdb");
        cli_down_drop(e);
        return NULL;
    }
    if (old != NULL) {
        cli_down_drop(old);
    }
    return e;
}


/* ---- the no-source timeout ------------------------------------------------ */

/* Fails every running download no source served a chunk for
 * cli_agent.source_timeout_ms of running time (a pause or a logout stops
 * the clock).  Such a download leaves the node's table (the tracker is
 * not asked about it again), keeps its verified chunks for a retry, and
 * its empty .part goes (cli_down_fail). */
void
cli_down_timeouts(int64_t now)
{
    ts_shm_t      *shm = cli_agent_shm();
    node_dl_sh_t  *d;
    cli_dlent_t   *e;
    int64_t        tmo = cli_agent.source_timeout_ms > 0
                         ? cli_agent.source_timeout_ms
                         : (int64_t) TS_CLI_SOURCE_TIMEOUT_S * 1000;
    uint64_t       bytes;
    int            i, held;
    char           why[128];

    if (shm == NULL) {
        return;
    }
    for (i = 0; i < cli_agent.ndls; i++) {
        e = cli_agent.dls[i];
        if (e->rec.state != CLI_DL_ACTIVE) {
            continue;
        }
        d = e->idx >= 0 ? &node_dls(shm)[e->idx] : NULL;
        held = cli_agent.paused || d == NULL
               || atomic_load(&d->state) != NODE_DL_ACTIVE;
        bytes = d != NULL ? atomic_load(&d->bytes_done) : 0;
        if (!cli_dlsm_stalled(&e->progress_ms, &e->progress_bytes, bytes,
                              held, now, tmo))
        {
            continue;
        }
        snprintf(why, sizeof(why), "no source served a chunk for %lld s",
                 (long long) (tmo / 1000));
        cli_down_fail(e, shm, why);
        e->fail_cls = CLI_EXIT_TIMEOUT;
        cli_agent.last_fail_cls = CLI_EXIT_TIMEOUT;
    }
}
