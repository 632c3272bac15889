/*
 * cli_progress.c -- how far each download is: the rate samples the
 * collector takes every TS_NODE_PERSIST_MS, and the view a command (or
 * the control API) is shown of an entry (cli_dlview.h).
 *
 * Locking: called with cli_agent.mu held; reads shm atomics only.
 * Crash behaviour: memory only (samples start again after a restart).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "ts_config.h"
#include "node_shm.h"
#include "cli_down.h"
#include "cli_progress.h"


void
cli_progress_sample(cli_dlent_t *e, int64_t now, uint64_t bytes)
{
    e->samp[e->head].ms = now;
    e->samp[e->head].bytes = bytes;
    e->head = (e->head + 1) % TS_CLI_RATE_SAMPLES_N;
    if (e->nsamp < TS_CLI_RATE_SAMPLES_N) {
        e->nsamp++;
    }
}


/* 1 if download e made no progress over its sample window */
static int
cli_progress_stalled(const cli_dlent_t *e, int64_t now)
{
    int                 oi, li;

    if (e->nsamp < 2) {
        return 1;
    }
    oi = (e->head - e->nsamp + TS_CLI_RATE_SAMPLES_N) % TS_CLI_RATE_SAMPLES_N;
    li = (e->head - 1 + TS_CLI_RATE_SAMPLES_N) % TS_CLI_RATE_SAMPLES_N;
    (void) now;
    return e->samp[li].bytes == e->samp[oi].bytes;
}


/* Bytes of e verified so far: the node's count while it is in shm, else
 * the chunks its record holds. */
static uint64_t
cli_progress_bytes(const cli_dlent_t *e, node_dl_sh_t *d)
{
    uint64_t  bytes = 0;
    uint32_t  c;

    if (d != NULL) {
        return atomic_load(&d->bytes_done);
    }
    for (c = 0; c < e->rec.nchunks; c++) {
        if ((e->rec.done[c >> 3] >> (c & 7)) & 1) {
            bytes += cli_down_chunk_len(e->rec.size, e->rec.nchunks, c);
        }
    }
    return bytes;
}


/* Bytes per second over the sample window (oldest kept sample -> now). */
static double
cli_progress_rate(const cli_dlent_t *e, int64_t now, uint64_t bytes)
{
    const cli_sample_t  *o;

    if (e->nsamp == 0) {
        return 0;
    }
    o = &e->samp[(e->head - e->nsamp + TS_CLI_RATE_SAMPLES_N)
                 % TS_CLI_RATE_SAMPLES_N];
    if (now - o->ms < TS_CLI_RATE_MIN_MS || bytes < o->bytes) {
        return 0;
    }
    return (double) (bytes - o->bytes) * 1000.0 / (double) (now - o->ms);
}


/* How many sources of d are usable, and how many have our GETs now. */
static void
cli_progress_sources(node_dl_sh_t *d, cli_dlview_t *v)
{
    int  j;

    for (j = 0; d != NULL && j < TS_NODE_SOURCES_N; j++) {
        if (atomic_load(&d->src[j].state) != NODE_SRC_LIVE) {
            continue;
        }
        v->sources++;
        if (atomic_load(&d->src[j].inflight) > 0) {
            v->serving++;
        }
    }
}


/* What a command shows of entry e at now (monotonic ms). */
void
cli_progress_view(const cli_dlent_t *e, int64_t now, cli_dlview_t *v)
{
    ts_shm_t      *shm = cli_agent_shm();
    node_dl_sh_t  *d = NULL;
    uint64_t       bytes;
    uint32_t       state = NODE_DL_ACTIVE;

    memset(v, 0, sizeof(*v));
    snprintf(v->group, sizeof(v->group), "%s", e->rec.group);
    snprintf(v->name, sizeof(v->name), "%s", e->rec.name);
    snprintf(v->dest, sizeof(v->dest), "%s", e->rec.dest);
    v->eta_s = -1.0;
    v->size = e->rec.size;
    v->fail_cls = e->fail_cls;
    if (e->rec.state == CLI_DL_FAILED) {
        v->state = CLI_DLV_FAILED;
        snprintf(v->error, sizeof(v->error), "%s", e->rec.error);
        v->bytes = cli_progress_bytes(e, NULL);
        return;
    }
    if (e->rec.state != CLI_DL_DONE && e->idx >= 0 && shm != NULL) {
        d = &node_dls(shm)[e->idx];
        state = atomic_load(&d->state);
    }
    if (e->rec.state == CLI_DL_DONE || state == NODE_DL_DONE) {
        v->state = CLI_DLV_DONE;
        v->pct = 100;
        v->bytes = e->rec.size;
        return;
    }
    bytes = cli_progress_bytes(e, d);
    if (bytes > e->rec.size) {
        bytes = e->rec.size;
    }
    v->bytes = bytes;
    cli_progress_sources(d, v);
    v->pct = e->rec.size > 0 ? (int) (bytes * 100 / e->rec.size) : 100;
    if (v->pct == 100 && state != NODE_DL_FINALIZING && bytes < e->rec.size)
    {
        v->pct = 99;
    }
    if (cli_agent.paused || state == NODE_DL_PAUSED
        || e->rec.state == CLI_DL_PAUSED)
    {
        v->state = CLI_DLV_PAUSED;
    } else if (d != NULL && atomic_load(&d->denied)
               && state == NODE_DL_ACTIVE && cli_progress_stalled(e, now))
    {
        v->state = CLI_DLV_DENIED;
    } else if (d == NULL || (atomic_load(&d->waiting)
                             && state == NODE_DL_ACTIVE))
    {
        v->state = CLI_DLV_WAITING;
    } else {
        v->state = CLI_DLV_RUNNING;
        v->bps = cli_progress_rate(e, now, bytes);
        if (v->bps > 0) {
            v->eta_s = (double) (e->rec.size - bytes) / v->bps;
        }
    }
}
