/*
 * cli_hold.c -- what this node holds, and what the tracker must hear of
 * it: each tick the downloads' verified chunks are collected from shm
 * into the entries and node.tdb (before they are advertised), shares the
 * uploaders found changed on disk are dropped, and shares that ended
 * wait in the STOP_SHARE queue until the tracker has heard of them.
 *
 * Locking: every function runs with cli_agent.mu held (cli_agent_priv.h).
 * Crash behaviour: a verified chunk reaches node.tdb at most
 * TS_NODE_PERSIST_MS after the downloader marked it, always before it is
 * advertised; a kill loses at most that window, and those chunks are
 * re-hashed from the .part at the next login.  The STOP_SHARE queue is
 * memory only: a share found stale at the next login is queued again.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ts_config.h"
#include "ts_log.h"
#include "node_shm.h"
#include "cli_state.h"
#include "cli_down.h"
#include "cli_progress.h"
#include "cli_out.h"
#include "cli_hold.h"


void
cli_hold_queue_stop(const char *group, const char *name)
{
    cli_gname_t  *ns;
    int           ncap, i;

    for (i = 0; i < cli_agent.nstops; i++) {
        if (strcmp(cli_agent.stops[i].group, group) == 0
            && strcmp(cli_agent.stops[i].name, name) == 0)
        {
            return;
        }
    }
    if (cli_agent.nstops == cli_agent.stopcap) {
        ncap = cli_agent.stopcap ? cli_agent.stopcap * 2 : 8;
        ns = realloc(cli_agent.stops, (size_t) ncap * sizeof(*ns));
        if (ns == NULL) {
            return;
        }
        cli_agent.stops = ns;
        cli_agent.stopcap = ncap;
    }
    snprintf(cli_agent.stops[cli_agent.nstops].group, sizeof(ns->group), "%s",
             group);
    snprintf(cli_agent.stops[cli_agent.nstops].name, sizeof(ns->name), "%s",
             name);
    cli_agent.nstops++;
}


void
cli_hold_unqueue_stop(const char *group, const char *name)
{
    int  i;

    for (i = 0; i < cli_agent.nstops; i++) {
        if (strcmp(cli_agent.stops[i].group, group) == 0
            && strcmp(cli_agent.stops[i].name, name) == 0)
        {
            cli_agent.stops[i] = cli_agent.stops[--cli_agent.nstops];
            return;
        }
    }
}


/* Reads the node's progress into the entries; persists what changed. */
void
cli_hold_collect(int64_t now)
{
    ts_shm_t      *shm = cli_agent_shm();
    node_dl_sh_t  *d, snap;
    cli_dlent_t   *e;
    uint8_t       *bm = NULL;
    size_t         bmcap = 0, nb;
    uint32_t       state;
    int            i, dirty;

    if (shm == NULL) {
        return;
    }
    for (i = 0; i < cli_agent.ndls; i++) {
        e = cli_agent.dls[i];
        if (e->rec.state != CLI_DL_ACTIVE) {
            continue;
        }
        if (e->idx < 0) {
            /* restored while the table was full: try again */
            if (!cli_agent.paused) {
                (void) cli_down_publish(e);
            }
            continue;
        }
        d = &node_dls(shm)[e->idx];
        state = atomic_load_explicit(&d->state, memory_order_acquire);

        nb = cli_bitmap_b(e->rec.nchunks);
        if (nb > 0) {
            if (nb > bmcap) {
                uint8_t *nbm = realloc(bm, nb);

                if (nbm == NULL) {
                    continue;
                }
                bm = nbm;
                bmcap = nb;
            }
            cli_down_bitmap_from_shm(shm, e->idx, e->rec.nchunks, bm);
            /* only ever add bits: a verified chunk stays verified */
            if (memcmp(bm, e->rec.done, nb) != 0) {
                size_t k;

                for (k = 0; k < nb; k++) {
                    e->rec.done[k] |= bm[k];
                }
                e->dirty = 1;
                e->have_dirty = 1;
            }
        }
        cli_progress_sample(e, now, atomic_load(&d->bytes_done));

        if (state == NODE_DL_DONE) {
            cli_down_finish(e, shm);
        } else if (state == NODE_DL_FAILED) {
            if (node_dl_snapshot(shm, e->idx, &snap) != 0) {
                snap.error[0] = '\0';
            }
            snap.error[sizeof(snap.error) - 1] = '\0';
            cli_down_fail(e, shm, snap.error);
        }
    }
    free(bm);

    dirty = 0;
    for (i = 0; i < cli_agent.ndls; i++) {
        dirty |= cli_agent.dls[i]->dirty;
    }
    if (!dirty || cli_agent.st == NULL || cli_state_begin(cli_agent.st) != 0) {
        return;
    }
    for (i = 0; i < cli_agent.ndls; i++) {
        e = cli_agent.dls[i];
        if (e->dirty && cli_state_dl_put(cli_agent.st, cli_agent.user, &e->rec)
                        != 0)
        {
            cli_state_cancel(cli_agent.st);
            return;
        }
    }
    if (cli_state_commit(cli_agent.st) == 0) {
        for (i = 0; i < cli_agent.ndls; i++) {
            cli_agent.dls[i]->dirty = 0;
        }
    }
}


/* Shares the uploaders found changed on disk: dropped and reported. */
void
cli_hold_stale(void)
{
    ts_shm_t         *shm = cli_agent_shm();
    node_share_sh_t  *sh, snap;
    int               i;

    if (shm == NULL || (sh = node_shares(shm)) == NULL) {
        return;
    }
    for (i = 0; i < TS_NODE_SHARES_N; i++) {
        if (atomic_load_explicit(&sh[i].state, memory_order_acquire)
            != NODE_SHARE_STALE)
        {
            continue;
        }
        if (node_share_snapshot(shm, i, &snap) != 0) {
            continue;
        }
        cli_out_eline("warning: %s changed on disk; no longer sharing "
                      "'%s' in '%s'", snap.path, snap.name, snap.group);
        node_share_remove(shm, i);
        if (cli_agent.st != NULL) {
            (void) cli_state_share_del(cli_agent.st, cli_agent.user,
                                       snap.group, snap.name);
        }
        cli_hold_queue_stop(snap.group, snap.name);
    }
}


void
cli_hold_load_share(void *arg, cli_share_rec_t *r)
{
    ts_shm_t     *shm = arg;
    struct stat   sb;
    int64_t       mt;

    if (stat(r->path, &sb) != 0 || !S_ISREG(sb.st_mode)
        || (uint64_t) sb.st_size != r->size)
    {
        goto stale;
    }
    mt = (int64_t) sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
    if (mt != r->mtime_ns) {
        goto stale;
    }
    if (node_share_add(shm, r->group, r->name, r->path, r->size,
                       r->mtime_ns, r->nchunks) < 0)
    {
        ts_warn("cannot serve %s/%s (share table full)", r->group, r->name);
    }
    return;

stale:
    cli_out_eline("warning: %s changed on disk; no longer sharing '%s' "
                  "in '%s'", r->path, r->name, r->group);
    cli_hold_queue_stop(r->group, r->name);
}


int
cli_hold_share_add(const cli_share_rec_t *r)
{
    ts_shm_t  *shm = cli_agent_shm();
    int        idx;

    if (shm == NULL) {
        return -1;
    }
    idx = node_share_add(shm, r->group, r->name, r->path, r->size,
                         r->mtime_ns, r->nchunks);
    if (idx >= 0) {
        cli_hold_unqueue_stop(r->group, r->name);
        if (cli_agent.st != NULL && cli_agent.user[0] != '\0'
            && cli_state_share_put(cli_agent.st, cli_agent.user, r) != 0)
        {
            ts_warn("share %s/%s not saved in node.tdb", r->group, r->name);
        }
    }
    return idx >= 0 ? 0 : -1;
}


int
cli_hold_share_stop(const char *group, const char *name)
{
    ts_shm_t  *shm = cli_agent_shm();
    int        idx;

    if (shm == NULL) {
        return 1;
    }
    idx = node_share_find(shm, group, name);
    if (idx >= 0) {
        node_share_remove(shm, idx);
        if (cli_agent.st != NULL && cli_agent.user[0] != '\0') {
            (void) cli_state_share_del(cli_agent.st, cli_agent.user, group,
                                       name);
        }
    }
    return idx >= 0 ? 0 : 1;
}


/* Takes every share out of shm and forgets the STOP_SHARE queue (the
 * logged-in user changes). */
void
cli_hold_unload(ts_shm_t *shm)
{
    node_share_sh_t  *sh;
    int               i;

    cli_agent.nstops = 0;
    if (shm != NULL && (sh = node_shares(shm)) != NULL) {
        for (i = 0; i < TS_NODE_SHARES_N; i++) {
            if (atomic_load(&sh[i].state) != NODE_SHARE_FREE) {
                node_share_remove(shm, i);
            }
        }
    }
}
