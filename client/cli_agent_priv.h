/*
 * cli_agent_priv.h -- the agent's private state, shared by its modules
 * and by no one else (the CLI commands go through cli_agent.h):
 *
 *   cli_agent.c   the boundary (cli_agent.h), life cycle, the thread;
 *   cli_link.c    the agent's tracker conversation: what to tell or ask,
 *                 failover, sources and ticket renewal;
 *   cli_hold.c    what the node holds: progress collected from shm into
 *                 node.tdb, shares, STOP_SHARE queue;
 *   cli_down.c    the download entries (shm slots, start, finish, fail);
 *   cli_progress.c  rate samples, and what a command is shown of each;
 *   cli_part.c    the .part files (exclusive creation, reopening);
 *   cli_dlctl.c   steering one download (cancel, pause, resume, retry,
 *                 its sources for download_info) by the rules of
 *                 cli_dlsm.c; cli_down.c fails the ones no source served
 *                 for --source-timeout.
 *
 * Model: one entry per download of the logged-in user (running, paused,
 * done or failed), each with the record as last written to node.tdb plus
 * flags saying what the tracker still has to be told.  A running
 * download also has its index in the node's download table (idx); a
 * finished or failed one stays in shm until its slot is needed.
 *
 * Locking: cli_agent.mu guards everything here, node.tdb (cli_state_t is
 * not thread-safe) and every CLI-side write into shm.  Every function of
 * cli_link.c, cli_hold.c and cli_down.c that touches this state is
 * called with it held, except cli_link_do (the network; lock dropped).
 * Workers never take this lock: they only see shm atomics and seqlocked
 * text.  Crash behaviour: memory only; node.tdb is the durable copy.
 */
#ifndef CLI_AGENT_PRIV_H_INCLUDED
#define CLI_AGENT_PRIV_H_INCLUDED

#include <pthread.h>
#include <stdint.h>

#include "ts_config.h"
#include "node.h"
#include "node_shm.h"
#include "cli_ctx.h"
#include "cli_rpc.h"
#include "cli_state.h"
#include "cli_node.h"

typedef struct {
    int64_t   ms;
    uint64_t  bytes;
} cli_sample_t;

typedef struct {
    cli_dl_rec_t  rec;              /* as written (or to write) to node.tdb */
    uint64_t      serial;
    int           idx;              /* node download index, -1 = not in shm */
    int           dirty;            /* rec not yet in node.tdb */
    int           have_dirty;       /* tracker lacks the latest bitmap */
    int           have_complete;    /* tracker must hear complete=1 */
    int           advertised;       /* tracker knows us as a source */
    int           need_stop;        /* failed after advertising */
    int64_t       next_src_ms;
    int64_t       ticket_exp_ms;    /* wall clock; 0 = none in shm yet */
    int64_t       ticket_renew_ms;  /* renew when less than this is left */
    cli_sample_t  samp[TS_CLI_RATE_SAMPLES_N];
    int           nsamp, head;
    struct cli_srcmem *srcmem;      /* dead / serving sources (malloc,
                                       cli_srcdead.h); NULL = none yet */
    int64_t       progress_ms;      /* monotonic: last time a chunk came
                                       (or the download (re)started, or
                                       was held); the source timeout */
    uint64_t      progress_bytes;   /* bytes_done seen then */
    int           fail_cls;         /* cli_exit_t of its failure in this
                                       run; 0 = none (or an older run's) */
} cli_dlent_t;

typedef struct {
    char  group[TS_ID_MAX_B + 1];
    char  name[TS_NAME_MAX_B + 1];
} cli_gname_t;

typedef struct {
    pthread_mutex_t  mu;
    pthread_cond_t   cond;
    pthread_t        th;
    int              ready;                   /* cli_agent_init succeeded */
    int              running;
    int              stop;
    cli_ctx_t       *ctx;
    cli_state_t     *st;
    cli_rpc_t        rpc;
    int              rpc_ok;
    int            (*stop_check)(void);
    char             user[TS_ID_MAX_B + 1];   /* whose state is loaded */
    int              paused;
    cli_dlent_t    **dls;
    int              ndls, cap;
    uint64_t         next_serial;
    int              failures;                /* this run */
    cli_gname_t     *stops;                   /* STOP_SHARE to send */
    int              nstops, stopcap;
    int64_t          source_timeout_ms;       /* 0 = TS_CLI_SOURCE_TIMEOUT_S */
    int              last_fail_cls;           /* cli_exit_t, this run */
} cli_agent_t;

/* the one agent of this process (cli_agent.c) */
extern cli_agent_t  cli_agent;

/* The node's shm, NULL when the node is not running. */
static inline ts_shm_t *
cli_agent_shm(void)
{
    node_t  *n = cli_node_get();

    return n != NULL ? &n->shm : NULL;
}

#endif
