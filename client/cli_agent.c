/*
 * cli_agent.c -- the CLI's background agent: its boundary (cli_agent.h,
 * the operations the commands ask of it), its life cycle and its
 * thread.  The work itself is in the modules of cli_agent_priv.h:
 * cli_link.c (the tracker), cli_hold.c (what the node holds),
 * cli_down.c and cli_progress.c (downloads), cli_part.c (.part files).
 *
 * The thread wakes every TS_NODE_PERSIST_MS (or when a command
 * broadcasts cli_agent.cond) and runs one tick (cli_link_tick).
 *
 * Locking: every operation here takes cli_agent.mu for the time it
 * reads or changes the agent's state; none holds it over network I/O,
 * so a command never waits for a tracker behind the agent.
 * Crash behaviour: node.tdb holds shares and downloads (done bitmaps
 * written at most TS_NODE_PERSIST_MS behind the workers); after a kill
 * the next login rebuilds shm from it, and chunks not recorded as
 * verified are re-hashed from the .part ("maybe"), never trusted.
 * cli_agent_stop writes the last bitmaps before node.tdb closes.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_clock.h"
#include "ts_log.h"
#include "node_shm.h"
#include "cli_rpc.h"
#include "cli_state.h"
#include "cli_node.h"
#include "cli_agent_priv.h"
#include "cli_part.h"
#include "cli_down.h"
#include "cli_progress.h"
#include "cli_hold.h"
#include "cli_link.h"
#include "cli_agent.h"

cli_agent_t  cli_agent = { .mu = PTHREAD_MUTEX_INITIALIZER };


/* ---- the thread and its life cycle ------------------------------------ */

static void *
cli_agent_main(void *arg)
{
    struct timespec  dl;

    (void) arg;
    pthread_mutex_lock(&cli_agent.mu);
    while (!cli_agent.stop) {
        pthread_mutex_unlock(&cli_agent.mu);
        cli_link_tick();
        pthread_mutex_lock(&cli_agent.mu);
        if (cli_agent.stop) {
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_nsec += (long) TS_NODE_PERSIST_MS * 1000000L;
        while (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        (void) pthread_cond_timedwait(&cli_agent.cond, &cli_agent.mu, &dl);
    }
    pthread_mutex_unlock(&cli_agent.mu);
    return NULL;
}


int
cli_agent_init(cli_ctx_t *ctx, const char *state_dir, int (*stop_check)(void))
{
    pthread_condattr_t  ca;

    cli_agent.ctx = ctx;
    cli_agent.stop_check = stop_check;
    cli_agent.st = cli_state_open(state_dir);
    if (cli_agent.st == NULL) {
        return -1;
    }
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cli_agent.cond, &ca);
    pthread_condattr_destroy(&ca);
    cli_agent.ready = 1;
    return 0;
}


int
cli_agent_start(void)
{
    sigset_t  all, old;
    int       r;

    if (cli_rpc_init(&cli_agent.rpc, &cli_agent.ctx->sess->trk,
                     cli_rpc_current(cli_agent.ctx->rpc)) != 0)
    {
        return -1;
    }
    cli_agent.rpc_ok = 1;
    cli_agent.stop = 0;
    /* signals stay with the main thread */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&cli_agent.th, NULL, cli_agent_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        ts_err("pthread_create() failed: %s", strerror(r));
        return -1;
    }
    cli_agent.running = 1;
    return 0;
}


void
cli_agent_stop(void)
{
    int  i;

    if (cli_agent.running) {
        pthread_mutex_lock(&cli_agent.mu);
        cli_agent.stop = 1;
        pthread_cond_broadcast(&cli_agent.cond);
        pthread_mutex_unlock(&cli_agent.mu);
        pthread_join(cli_agent.th, NULL);
        cli_agent.running = 0;
    }
    pthread_mutex_lock(&cli_agent.mu);
    if (cli_agent.user[0] != '\0') {
        cli_hold_collect(ts_now_ms());
    }
    for (i = 0; i < cli_agent.ndls; i++) {
        cli_dl_free(&cli_agent.dls[i]->rec);
        free(cli_agent.dls[i]);
    }
    free(cli_agent.dls);
    cli_agent.dls = NULL;
    cli_agent.ndls = cli_agent.cap = 0;
    free(cli_agent.stops);
    cli_agent.stops = NULL;
    cli_agent.nstops = cli_agent.stopcap = 0;
    cli_state_close(cli_agent.st);
    cli_agent.st = NULL;
    pthread_mutex_unlock(&cli_agent.mu);
    if (cli_agent.rpc_ok) {
        cli_rpc_destroy(&cli_agent.rpc);
        cli_agent.rpc_ok = 0;
    }
}


int
cli_agent_failures(void)
{
    int  n;

    pthread_mutex_lock(&cli_agent.mu);
    n = cli_agent.failures;
    pthread_mutex_unlock(&cli_agent.mu);
    return n;
}


int
cli_agent_wait_downloads(void)
{
    int64_t  quiet_since = -1;
    int      i, running, reporting;

    if (cli_agent.ctx == NULL) {
        return 0;
    }
    for ( ;; ) {
        if (cli_agent.stop_check != NULL && cli_agent.stop_check()) {
            break;
        }
        running = reporting = 0;
        pthread_mutex_lock(&cli_agent.mu);
        for (i = 0; i < cli_agent.ndls && !cli_agent.paused; i++) {
            cli_dlent_t *e = cli_agent.dls[i];

            if (e->rec.state == CLI_DL_ACTIVE) {
                running++;
            } else if (e->have_complete || e->need_stop || e->dirty) {
                reporting++;
            }
        }
        if (cli_agent.nstops > 0 && !cli_agent.paused) {
            reporting++;
        }
        pthread_mutex_unlock(&cli_agent.mu);
        if (running == 0) {
            if (reporting == 0) {
                break;
            }
            /* the last HAVE_CHUNKS: a short grace, the tracker may be down */
            if (quiet_since < 0) {
                quiet_since = ts_now_ms();
            } else if (ts_now_ms() - quiet_since > TS_CLI_REPORT_GRACE_MS) {
                break;
            }
        }
        if (cli_node_get() == NULL) {
            break;
        }
        usleep(TS_CLI_WAIT_POLL_MS * 1000);
    }
    return cli_agent_failures();
}


/* ---- login / logout ---------------------------------------------------- */

/* Drops everything of the loaded user from shm and memory. */
static void
cli_agent_unload(ts_shm_t *shm)
{
    while (cli_agent.ndls > 0) {
        cli_down_free(cli_agent.dls[--cli_agent.ndls]);
    }
    cli_hold_unload(shm);
    cli_agent.user[0] = '\0';
}


/* Another user logs in: the last one's state leaves shm and memory,
 * this one's comes from node.tdb and its running downloads go back into
 * the node's table. */
static void
cli_agent_load_user(ts_shm_t *shm, const char *user)
{
    cli_dlent_t  *e;
    int           i, j;

    cli_agent_unload(shm);
    snprintf(cli_agent.user, sizeof(cli_agent.user), "%s", user);
    (void) cli_state_shares(cli_agent.st, user, cli_hold_load_share, shm);
    /* shares found changed while we were away leave node.tdb */
    for (j = 0; j < cli_agent.nstops; j++) {
        (void) cli_state_share_del(cli_agent.st, user,
                                   cli_agent.stops[j].group,
                                   cli_agent.stops[j].name);
    }
    (void) cli_state_dls(cli_agent.st, user, cli_down_load, NULL);
    if (cli_agent.ndls > 1) {
        qsort(cli_agent.dls, (size_t) cli_agent.ndls,
              sizeof(cli_agent.dls[0]), cli_down_cmp);
    }
    cli_agent.paused = 0;
    for (i = 0; i < cli_agent.ndls; i++) {
        e = cli_agent.dls[i];
        /* a finished download still shared: say complete=1 again, in
         * case the last run died before the tracker heard it */
        if (e->rec.state == CLI_DL_DONE
            && node_share_find(shm, e->rec.group, e->rec.name) >= 0)
        {
            e->have_complete = 1;
        }
        if ((e->rec.state == CLI_DL_ACTIVE || e->rec.state == CLI_DL_PAUSED)
            && cli_down_publish(e) != 0)
        {
            ts_warn("download %s/%s waits for a free slot",
                    e->rec.group, e->rec.name);
        }
    }
}


/* The same user again: resume where we stopped. */
static void
cli_agent_resume(ts_shm_t *shm)
{
    cli_dlent_t  *e;
    int           i;

    cli_agent.paused = 0;
    for (i = 0; i < cli_agent.ndls; i++) {
        e = cli_agent.dls[i];
        if (e->rec.state != CLI_DL_ACTIVE) {
            continue;
        }
        if (e->idx >= 0) {
            uint32_t p = NODE_DL_PAUSED;

            atomic_compare_exchange_strong(&node_dls(shm)[e->idx].state,
                                           &p, NODE_DL_ACTIVE);
            e->next_src_ms = 0;
            e->nsamp = 0;
        } else {
            (void) cli_down_publish(e);
        }
        e->have_dirty = e->rec.nchunks > 0
                        && cli_down_bitmap_any(e->rec.done, e->rec.nchunks);
    }
}


void
cli_agent_login(const char *user)
{
    ts_shm_t         *shm = cli_agent_shm();
    node_stats_sh_t  *stats;

    if (cli_agent.st == NULL || shm == NULL) {
        return;
    }
    pthread_mutex_lock(&cli_agent.mu);
    if (strcmp(cli_agent.user, user) != 0) {
        cli_agent_load_user(shm, user);
    } else {
        cli_agent_resume(shm);
    }
    stats = node_stats(shm);
    if (stats != NULL) {
        atomic_store(&stats->paused, 0);
    }
    pthread_cond_broadcast(&cli_agent.cond);
    pthread_mutex_unlock(&cli_agent.mu);
}


void
cli_agent_logout(void)
{
    ts_shm_t         *shm = cli_agent_shm();
    node_stats_sh_t  *stats;
    cli_dlent_t      *e;
    int               i;

    if (shm == NULL) {
        return;
    }
    pthread_mutex_lock(&cli_agent.mu);
    stats = node_stats(shm);
    if (stats != NULL) {
        atomic_store(&stats->paused, 1);
    }
    cli_agent.paused = 1;
    for (i = 0; i < cli_agent.ndls; i++) {
        e = cli_agent.dls[i];
        if (e->idx >= 0) {
            uint32_t a = NODE_DL_ACTIVE;

            atomic_compare_exchange_strong(&node_dls(shm)[e->idx].state, &a,
                                           NODE_DL_PAUSED);
        }
    }
    /* what the workers verified so far is durable before we go */
    if (cli_agent.user[0] != '\0') {
        cli_hold_collect(ts_now_ms());
    }
    pthread_mutex_unlock(&cli_agent.mu);
}


/* ---- shares and downloads (the commands' operations) ------------------ */

int
cli_agent_ready(void)
{
    return cli_agent.ready;
}


int
cli_agent_share_add(const cli_share_rec_t *r)
{
    int  rc;

    pthread_mutex_lock(&cli_agent.mu);
    rc = cli_hold_share_add(r);
    pthread_mutex_unlock(&cli_agent.mu);
    return rc;
}


int
cli_agent_share_stop(const char *group, const char *name)
{
    int  rc;

    pthread_mutex_lock(&cli_agent.mu);
    rc = cli_hold_share_stop(group, name);
    pthread_mutex_unlock(&cli_agent.mu);
    return rc;
}


/* Adds rec (its .part made) to the node with fi's ticket and sources. */
static int
cli_agent_dl_start(cli_dl_rec_t *rec, const cli_finfo_t *fi, char *err,
                   size_t errsz)
{
    ts_shm_t     *shm = cli_agent_shm();
    cli_dlent_t  *e;

    pthread_mutex_lock(&cli_agent.mu);
    e = cli_down_start(rec, err, errsz);
    if (e != NULL) {
        if (e->idx >= 0) {
            cli_link_ticket_apply(shm, e, fi, 1);
            cli_link_set_sources(shm, e->idx, fi);
        }
        e->next_src_ms = cli_link_next_info_ms(e, ts_now_ms());
    }
    pthread_cond_broadcast(&cli_agent.cond);
    pthread_mutex_unlock(&cli_agent.mu);
    return e != NULL ? 0 : -1;
}


int
cli_agent_download(const char *group, const char *name, const char *dest,
                   const cli_finfo_t *fi, char *err, size_t errsz)
{
    cli_dl_rec_t  rec;
    int           r;

    pthread_mutex_lock(&cli_agent.mu);
    r = cli_down_check(group, name, dest, err, errsz);
    pthread_mutex_unlock(&cli_agent.mu);
    if (r != 0 || cli_down_rec_init(&rec, group, name, dest, fi, err, errsz)
                  != 0)
    {
        return -1;
    }
    /* the .part is made here, exclusively: a new download never adopts
     * (or writes through) a file it did not make, and the workers open
     * only this inode (resumes come from node.tdb, not from here) */
    if (cli_part_create(rec.part, &rec.part_id, err, errsz) != 0) {
        cli_dl_free(&rec);
        return -1;
    }
    if (cli_agent_dl_start(&rec, fi, err, errsz) != 0) {
        cli_part_unlink(rec.part, &rec.part_id);
        return -1;
    }
    return 0;
}


int
cli_agent_downloads(cli_dlview_t **rows, int *n)
{
    int64_t  now = ts_now_ms();
    int      i;

    *rows = NULL;
    *n = 0;
    pthread_mutex_lock(&cli_agent.mu);
    if (cli_agent.user[0] == '\0') {
        /* nobody logged in: what node.tdb holds */
        i = cli_dlctl_stored(rows, n);
        pthread_mutex_unlock(&cli_agent.mu);
        return i;
    }
    if (cli_agent.ndls > 0) {
        *rows = calloc((size_t) cli_agent.ndls, sizeof(**rows));
        if (*rows == NULL) {
            pthread_mutex_unlock(&cli_agent.mu);
            return -1;
        }
    }
    for (i = 0; i < cli_agent.ndls; i++) {
        cli_progress_view(cli_agent.dls[i], now, &(*rows)[i]);
    }
    *n = cli_agent.ndls;
    pthread_mutex_unlock(&cli_agent.mu);
    return 0;
}
