/*
 * cli_dlctl.c -- steering downloads, the agent's side: cancel, pause,
 * resume and retry of one download (the rules are cli_dlsm.c's), the
 * per-source view of download_info, the downloads node.tdb holds when
 * nobody is logged in, and the failure class the end of input reports.
 *
 * How a step reaches the downloaders (workers/dl_*.c), which never take
 * the agent's lock and see only the node's shm:
 *   - pause: the entry's state goes ACTIVE -> PAUSED (CAS); a downloader
 *     picks no chunk of a non-ACTIVE entry and drops its local copy, so
 *     a reply still in flight is discarded (never written).  Resume is
 *     the CAS back; the bitmap in shm is where it goes on from.
 *   - cancel: the entry goes to FREE (CAS, so one that a downloader just
 *     moved to FINALIZING is refused instead) and its id moves: every
 *     request a downloader holds is tagged with the old id and is
 *     dropped before it is written or marked.  Only then is the .part
 *     unlinked (and the directory fsynced): a downloader that had passed
 *     the id check writes into the orphaned inode, never into a file
 *     with that name, and one that opens the name later finds nothing or
 *     a file of another identity (node_open_part) and writes nothing.
 *   - retry: the node's FAILED entry leaves the table and the download
 *     is published again: verified chunks from node.tdb, the rest of the
 *     .part re-hashed (cli_down_publish), a .part made anew if the
 *     empty one was removed at the failure.
 *
 * Locking: the cli_agent_* entries take cli_agent.mu (cli_agent_priv.h)
 * for the whole step; no network I/O is done under it (a cancelled
 * download's STOP_SHARE goes out with the agent's next tick).
 * Crash behaviour: each step writes node.tdb in one transaction before
 * it returns (cancel deletes the record before the .part goes, so a
 * crash in between leaves an orphaned .part, never a record pointing at
 * nothing); shm is a cache rebuilt from node.tdb at the next login.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_config.h"
#include "ts_clock.h"
#include "ts_log.h"
#include "node_shm.h"
#include "cli_exit.h"
#include "cli_state.h"
#include "cli_part.h"
#include "cli_down.h"
#include "cli_hold.h"
#include "cli_progress.h"
#include "cli_srcdead.h"
#include "cli_dlsm.h"
#include "cli_agent.h"


void
cli_agent_set_source_timeout(int secs)
{
    pthread_mutex_lock(&cli_agent.mu);
    cli_agent.source_timeout_ms = secs > 0 ? (int64_t) secs * 1000 : 0;
    pthread_mutex_unlock(&cli_agent.mu);
}


int
cli_agent_fail_class(void)
{
    int  c;

    pthread_mutex_lock(&cli_agent.mu);
    c = cli_agent.last_fail_cls;
    pthread_mutex_unlock(&cli_agent.mu);
    return c;
}


/* The node state of e (NODE_DL_FREE when it is not in the table). */
static uint32_t
cli_dlctl_nstate(const cli_dlent_t *e, ts_shm_t *shm)
{
    if (e->idx < 0 || shm == NULL) {
        return NODE_DL_FREE;
    }
    return atomic_load(&node_dls(shm)[e->idx].state);
}


/* Writes e's record now (one transaction): 0, or -1. */
static int
cli_dlctl_persist(cli_dlent_t *e)
{
    if (cli_agent.st == NULL
        || cli_state_dl_put(cli_agent.st, cli_agent.user, &e->rec) != 0)
    {
        e->dirty = 1;
        return -1;
    }
    e->dirty = 0;
    return 0;
}


static int
cli_dlctl_cancel(cli_dlent_t *e, ts_shm_t *shm, char *err, size_t errsz)
{
    cli_dl_rec_t  *r = &e->rec;
    uint32_t       st;

    if (e->idx >= 0 && shm != NULL) {
        node_dl_sh_t *d = &node_dls(shm)[e->idx];

        st = atomic_load(&d->state);
        if (st == NODE_DL_FINALIZING
            || (st != NODE_DL_FREE
                && !atomic_compare_exchange_strong(&d->state, &st,
                                                   NODE_DL_FREE)))
        {
            snprintf(err, errsz, "'%s' from '%s' is being finished; try "
                     "again in a moment", r->name, r->group);
            return CLI_EXIT_CONFLICT;
        }
        /* requests tagged with the old id are dropped from now on */
        atomic_fetch_add(&d->id, 1);
        e->idx = -1;
    }
    if (cli_agent.st == NULL
        || cli_state_dl_del(cli_agent.st, cli_agent.user, r->group, r->name)
           != 0)
    {
        /* it stays out of the node; a restart finds the record again */
        snprintf(err, errsz, "cannot remove the download from node.tdb");
        return CLI_EXIT_DATA;
    }
    if (cli_part_remove(r->part, &r->part_id, -1) < 0) {
        ts_warn("%s/%s: cannot remove %s", r->group, r->name, r->part);
    }
    /* the tracker must forget us as a partial source */
    if (e->advertised || e->need_stop) {
        cli_hold_queue_stop(r->group, r->name);
    }
    ts_info("cancelled %s/%s (%s removed)", r->group, r->name, r->part);
    cli_down_drop(e);
    return CLI_EXIT_OK;
}


static int
cli_dlctl_pause(cli_dlent_t *e, ts_shm_t *shm, char *err, size_t errsz)
{
    uint32_t  st = NODE_DL_ACTIVE;

    if (e->idx >= 0 && shm != NULL
        && !atomic_compare_exchange_strong(&node_dls(shm)[e->idx].state,
                                           &st, NODE_DL_PAUSED)
        && st != NODE_DL_PAUSED)
    {
        snprintf(err, errsz, "'%s' from '%s' is being finished", e->rec.name,
                 e->rec.group);
        return CLI_EXIT_CONFLICT;
    }
    e->rec.state = CLI_DL_PAUSED;
    return cli_dlctl_persist(e) == 0 ? CLI_EXIT_OK : CLI_EXIT_DATA;
}


static int
cli_dlctl_resume(cli_dlent_t *e, ts_shm_t *shm)
{
    uint32_t  p = NODE_DL_PAUSED;

    e->rec.state = CLI_DL_ACTIVE;
    e->progress_ms = 0;
    if (e->idx >= 0 && shm != NULL) {
        /* held by a logout: it goes on at the next login */
        if (!cli_agent.paused) {
            atomic_compare_exchange_strong(&node_dls(shm)[e->idx].state, &p,
                                           NODE_DL_ACTIVE);
        }
        e->next_src_ms = 0;
        e->nsamp = 0;
    } else if (!cli_agent.paused && cli_down_publish(e) != 0) {
        ts_warn("download %s/%s waits for a free slot", e->rec.group,
                e->rec.name);
    }
    return cli_dlctl_persist(e) == 0 ? CLI_EXIT_OK : CLI_EXIT_DATA;
}


static int
cli_dlctl_retry(cli_dlent_t *e, ts_shm_t *shm)
{
    cli_dl_rec_t  *r = &e->rec;

    /* the node's FAILED entry goes; the record is put back afresh */
    if (e->idx >= 0 && shm != NULL) {
        node_dl_remove(shm, e->idx);
        e->idx = -1;
    }
    if (e->fail_cls != 0 && cli_agent.failures > 0) {
        cli_agent.failures--;
    }
    r->state = CLI_DL_ACTIVE;
    r->error[0] = '\0';
    e->fail_cls = 0;
    e->need_stop = 0;
    /* sources found dead before are worth asking again at once */
    free(e->srcmem);
    e->srcmem = NULL;
    e->have_dirty = r->nchunks > 0 && cli_down_bitmap_any(r->done,
                                                          r->nchunks);
    if (!cli_agent.paused && cli_down_publish(e) != 0) {
        ts_warn("download %s/%s waits for a free slot", r->group, r->name);
    }
    if (r->state == CLI_DL_FAILED) {
        /* its .part could not be made again: cli_down_fail said why */
        return CLI_EXIT_DATA;
    }
    return cli_dlctl_persist(e) == 0 ? CLI_EXIT_OK : CLI_EXIT_DATA;
}


int
cli_agent_dl_steer(const char *group, const char *name, int op, char *err,
                   size_t errsz)
{
    ts_shm_t     *shm = cli_agent_shm();
    cli_dlent_t  *e;
    const char   *why;
    uint32_t      next;
    int           cls;

    err[0] = '\0';
    pthread_mutex_lock(&cli_agent.mu);
    /* what the workers verified so far is in the entry (and durable)
     * before the step: a paused or cancelled download loses nothing it
     * would keep */
    if (cli_agent.user[0] != '\0') {
        cli_hold_collect(ts_now_ms());
    }
    e = cli_down_find(group, name);
    if (e == NULL) {
        pthread_mutex_unlock(&cli_agent.mu);
        snprintf(err, errsz, "no download of '%s' from '%s'", name, group);
        return CLI_EXIT_NOT_FOUND;
    }
    cls = cli_dlsm_op(e->rec.state, cli_dlctl_nstate(e, shm),
                      (cli_dlop_t) op, &next, &why);
    if (cls != CLI_EXIT_OK) {
        pthread_mutex_unlock(&cli_agent.mu);
        snprintf(err, errsz, "'%s' from '%s' %s", name, group, why);
        return cls;
    }
    if (next == e->rec.state) {
        cls = CLI_EXIT_OK;              /* already so: nothing to do */
    } else if (op == CLI_DLOP_CANCEL) {
        cls = cli_dlctl_cancel(e, shm, err, errsz);
    } else if (op == CLI_DLOP_PAUSE) {
        cls = cli_dlctl_pause(e, shm, err, errsz);
    } else if (op == CLI_DLOP_RESUME) {
        cls = cli_dlctl_resume(e, shm);
    } else {
        cls = cli_dlctl_retry(e, shm);
        if (cls != CLI_EXIT_OK) {
            snprintf(err, errsz, "%s", e->rec.error);
        }
    }
    if (cls == CLI_EXIT_DATA && err[0] == '\0') {
        snprintf(err, errsz, "cannot record the change in node.tdb");
    }
    pthread_cond_broadcast(&cli_agent.cond);
    pthread_mutex_unlock(&cli_agent.mu);
    return cls;
}


/* The state download_info shows of source j of download d. */
static cli_peer_state_t
cli_dlctl_peer_state(const cli_dlent_t *e, const node_src_sh_t *s,
                     int64_t now)
{
    uint32_t  st = atomic_load(&s->state);
    int       k;

    if (st == NODE_SRC_DROPPED) {
        return CLI_PEER_DROPPED;
    }
    if (st == NODE_SRC_GONE) {
        for (k = 0; e->srcmem != NULL && k < e->srcmem->ndead; k++) {
            const cli_dead_t *x = &e->srcmem->dead[k];

            if (strcmp(x->addr, s->addr) == 0
                && memcmp(x->fp, s->fp, TS_FP_B) == 0 && x->until_ms > now)
            {
                return CLI_PEER_DEAD;
            }
        }
        return CLI_PEER_GONE;
    }
    /* verified bytes, not chunks: a peer may have sent only blocks of
     * chunks credited to another (workers/dl_block.c) */
    return atomic_load(&s->bytes) > 0 ? CLI_PEER_SERVING : CLI_PEER_LISTED;
}


int
cli_agent_dl_peers(const char *group, const char *name, cli_dlview_t *v,
                   cli_peerview_t *rows, int max, int *n, char *err,
                   size_t errsz)
{
    ts_shm_t      *shm = cli_agent_shm();
    node_dl_sh_t  *d;
    cli_dlent_t   *e;
    int64_t        now = ts_now_ms();
    int            j, k;

    *n = 0;
    pthread_mutex_lock(&cli_agent.mu);
    e = cli_down_find(group, name);
    if (e == NULL) {
        pthread_mutex_unlock(&cli_agent.mu);
        snprintf(err, errsz, "no download of '%s' from '%s'", name, group);
        return CLI_EXIT_NOT_FOUND;
    }
    cli_progress_view(e, now, v);
    if (e->idx < 0 || shm == NULL) {
        pthread_mutex_unlock(&cli_agent.mu);
        return CLI_EXIT_OK;             /* not in the node: no sources */
    }
    d = &node_dls(shm)[e->idx];
    for (j = 0; j < TS_NODE_SOURCES_N && *n < max; j++) {
        const node_src_sh_t *s = &d->src[j];
        cli_peerview_t      *p = &rows[*n];

        /* addr and fp are written while FREE and never change after */
        if (atomic_load_explicit(&s->state, memory_order_acquire)
            == NODE_SRC_FREE)
        {
            continue;
        }
        memset(p, 0, sizeof(*p));
        memcpy(p->addr, s->addr, sizeof(p->addr));
        p->addr[sizeof(p->addr) - 1] = '\0';
        for (k = 0; k < 8; k++) {
            snprintf(p->fp + 2 * k, 3, "%02x", s->fp[k]);
        }
        p->state = cli_dlctl_peer_state(e, s, now);
        p->complete = (int) atomic_load(&s->complete);
        p->chunks = atomic_load(&s->chunks);
        p->rate_bps = atomic_load(&s->rate_bps);
        p->load = atomic_load(&s->load);
        p->inflight = atomic_load(&s->inflight);
        p->bad = atomic_load(&s->failures);
        (*n)++;
    }
    pthread_mutex_unlock(&cli_agent.mu);
    return CLI_EXIT_OK;
}


/* ---- nobody logged in: the downloads node.tdb holds -------------------- */

typedef struct {
    cli_dlview_t  *rows;
    int            n, cap;
} cli_dlctl_list_t;


static void
cli_dlctl_stored_one(void *arg, cli_dl_rec_t *r)
{
    cli_dlctl_list_t  *l = arg;
    cli_dlent_t        e;
    cli_dlview_t      *nr;

    if (l->n == l->cap) {
        int ncap = l->cap ? l->cap * 2 : 16;

        nr = realloc(l->rows, (size_t) ncap * sizeof(*nr));
        if (nr == NULL) {
            return;
        }
        l->rows = nr;
        l->cap = ncap;
    }
    /* a stand-in entry out of the node's table: progress from the record */
    memset(&e, 0, sizeof(e));
    e.rec = *r;
    e.idx = -1;
    cli_progress_view(&e, ts_now_ms(), &l->rows[l->n]);
    if (l->rows[l->n].state == CLI_DLV_WAITING) {
        l->rows[l->n].state = CLI_DLV_PAUSED;
        l->rows[l->n].held = 1;
    }
    l->n++;
}


/* Called by cli_agent_downloads with cli_agent.mu held and no user
 * loaded: every download record of node.tdb, as stored. */
int
cli_dlctl_stored(cli_dlview_t **rows, int *n)
{
    cli_dlctl_list_t  l = { NULL, 0, 0 };

    if (cli_agent.st != NULL
        && cli_state_dls_all(cli_agent.st, cli_dlctl_stored_one, &l) < 0)
    {
        free(l.rows);
        return -1;
    }
    *rows = l.rows;
    *n = l.n;
    return 0;
}
