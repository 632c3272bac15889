/*
 * node.c -- a client node's data plane from the outside: node_start/stop,
 * the node supervisor (uploader x U, downloader x D on ts_sup), the
 * reclaim hook.  The CLI-side calls that publish shares and downloads
 * are in node_pub.c, the .part file helpers in node_part.c.
 *
 * Purpose: the CLI creates the segment and binds the node's ip:port, then
 * forks a supervisor that inherits both (the mapping and the listening
 * socket) and preforks the workers; every worker reaches the segment
 * through ctx->arg (this node_t, as copied into the supervisor), and
 * the node's identity through its opts (node_start copies them: the
 * certificate and key every link presents, the CA tickets chain to).
 *
 * Locking: none.  States, bits, claims and counters change only by C11
 * atomics (the CLI writes text fields under seqlocks: node_pub.c), so the
 * supervisor never takes a lock and node_reclaim is lock-free.
 *
 * Crash behaviour: a worker that dies is reaped by the supervisor, whose
 * on_exit hook (node_reclaim) frees every claim of that (pid,
 * generation): chunk claims, map refresh claims, the whole-file hash
 * frontier claim (node_fhash_sh_t), finalize claims (the
 * download goes back from FINALIZING to ACTIVE), its per-source in-flight
 * counts and its uploader load counts; then the slot is freed and
 * ts_sup respawns the worker (the agent too: it republishes from
 * node.tdb and resumes its saved session).  Unless opts.detached, the
 * supervisor dies with the CLI (PR_SET_PDEATHSIG) and its workers die
 * with it.  It runs in a session
 * of its own (setsid), so a terminal's ^C or hangup reaches the CLI and
 * never the node, and with stdin on /dev/null and, when the CLI is
 * interactive, its log in <state>/node.log (node_opts_t.log_path).  The segment is a
 * cache: the next node_start replaces it.  If reset_needed is set, the
 * supervisor stops every worker (each reclaimed), node_rebuild() resets
 * the workers' tables in place (the CLI keeps its mapping and its
 * publications from node.tdb) and the workers start again.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_log.h"
#include "ts_net.h"
#include "ts_shm.h"
#include "ts_atomic.h"
#include "ts_claim.h"
#include "ts_clock.h"
#include "ts_sup.h"
#include "node_shm.h"
#include "node.h"


/* the supervisor's copy of the node; ctx->arg of every worker */
static node_t  node_sup_self;


/* ---- supervisor ------------------------------------------------------ */

static void
node_child_init(const ts_worker_ctx_t *ctx, void *arg)
{
    node_t        *n = arg;
    ts_slot_sh_t  *slots = node_slots(&n->shm);

    /* the child owns its slot before it can touch a counter or a claim,
     * so reclaim always finds what it did (the supervisor's on_spawn may
     * run after the child has started) */
    if (slots != NULL && ctx->slot >= 0 && ctx->slot < TS_SUP_WORKERS_MAX_N) {
        ts_slot_assign(&slots[ctx->slot],
                       ts_owner_make(getpid(), ctx->generation),
                       (uint32_t) ctx->role);
    }
    /* generation 1 is a slot's first process: any later one a restart */
    if (ctx->generation > 1 && ctx->role >= 0 && ctx->role < NODE_ROLES_N
        && node_stats(&n->shm) != NULL)
    {
        atomic_fetch_add(&node_stats(&n->shm)->restarts[ctx->role], 1);
    }
}


static void
node_child_exit(int slot, pid_t pid, uint32_t gen, int role, int wstatus,
    void *arg)
{
    node_t        *n = arg;
    ts_owner_t     dead = ts_owner_make(pid, gen);
    ts_slot_sh_t  *slots = node_slots(&n->shm);

    node_reclaim(&n->shm, dead);
    if (slots != NULL && slot >= 0 && slot < TS_SUP_WORKERS_MAX_N) {
        ts_slot_free(&slots[slot], dead);
    }
}


static int
node_reset_needed(void *arg)
{
    return ts_shm_reset_needed(&((node_t *) arg)->shm);
}


/* Every worker is gone and reclaimed: their tables start afresh; shares
 * and downloads stay as the CLI published them from node.tdb. */
static int
node_rebuild(void *arg)
{
    static const uint32_t  ids[] = { NODE_T_SLOTS, NODE_T_INFLIGHT };

    return ts_shm_reinit(&((node_t *) arg)->shm, node_shm_specs,
                         node_shm_nspecs, ids, 2);
}


static int
node_supervise(node_t *n, const node_opts_t *o)
{
    ts_sup_role_t    roles[NODE_ROLES_N];
    ts_sup_config_t  cfg;
    int              nroles = 2, rc, extra = 0;

    node_sup_self = *n;

    memset(roles, 0, sizeof(roles));
    roles[NODE_ROLE_UPLOADER].name = "uploader";
    roles[NODE_ROLE_UPLOADER].count = o->uploaders > 0 ? o->uploaders
                                                       : TS_NODE_UPLOADERS_N;
    roles[NODE_ROLE_UPLOADER].main = up_main;
    roles[NODE_ROLE_UPLOADER].arg = &node_sup_self;
    roles[NODE_ROLE_DOWNLOADER].name = "downloader";
    roles[NODE_ROLE_DOWNLOADER].count = o->downloaders > 0
                                        ? o->downloaders
                                        : TS_NODE_DOWNLOADERS_N;
    roles[NODE_ROLE_DOWNLOADER].main = dl_main;
    roles[NODE_ROLE_DOWNLOADER].arg = &node_sup_self;

    if (o->agent_main != NULL) {
        roles[NODE_ROLE_AGENT].name = "agent";
        roles[NODE_ROLE_AGENT].count = 1;
        roles[NODE_ROLE_AGENT].main = o->agent_main;
        roles[NODE_ROLE_AGENT].arg = &node_sup_self;
        nroles = 3;
        extra = 1;
    }
    /* the HTTP endpoint, whose actions are the agent's commands: only
     * beside an agent (role indexes are fixed: NODE_ROLE_HTTP follows it) */
    if (o->http_main != NULL && o->agent_main != NULL) {
        roles[NODE_ROLE_HTTP].name = "node-http";
        roles[NODE_ROLE_HTTP].count = 1;
        roles[NODE_ROLE_HTTP].main = o->http_main;
        roles[NODE_ROLE_HTTP].arg = &node_sup_self;
        nroles = NODE_ROLES_N;
        extra++;
    }

    if (roles[0].count + roles[1].count + extra > TS_SUP_WORKERS_MAX_N) {
        ts_err("too many node workers (%d + %d + %d > %d)", roles[0].count,
               roles[1].count, extra, TS_SUP_WORKERS_MAX_N);
        return 2;
    }

    memset(&cfg, 0, sizeof(cfg));
    cfg.name = "node-sup";
    cfg.roles = roles;
    cfg.nroles = nroles;
    cfg.hook_arg = &node_sup_self;
    cfg.on_child_init = node_child_init;
    cfg.on_exit = node_child_exit;
    cfg.reset_needed = node_reset_needed;
    cfg.on_reset = node_rebuild;
    cfg.watch_fd = -1;

    rc = ts_sup_run(&cfg);
    /* a detached node is the segment's last user: nobody else unlinks */
    if (o->detached) {
        ts_shm_unlink(n->shm.name);
    }
    return rc;
}


/* The supervisor's standard descriptors: no terminal input ever (it
 * has no terminal), and its log (its workers' too) in o->log_path when
 * one is given.  Failures keep the inherited descriptor. */
static void
node_detach_stdio(const node_opts_t *o)
{
    int  fd;

    /* no terminal input, and nothing of the node's on the CLI's stdout
     * (its results come through the control socket) */
    fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        (void) dup2(fd, STDIN_FILENO);
        (void) dup2(fd, STDOUT_FILENO);
        close(fd);
    }
    if (o->log_path[0] == '\0') {
        return;
    }
    fd = open(o->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC
              | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        (void) dup2(fd, STDOUT_FILENO);
        (void) dup2(fd, STDERR_FILENO);
        close(fd);
    }
}


int
node_start(node_t *n, const node_opts_t *o)
{
    char                name[64];
    struct sockaddr_in  sin;
    socklen_t           sl = sizeof(sin);
    uint16_t            port = o->port;
    pid_t               parent, pid;
    int                 rc;

    memset(n, 0, sizeof(*n));
    n->listen_fd = -1;
    n->sup_pid = -1;
    n->opts = *o;

    /* bind first: a port in use must fail before any segment is touched */
    n->listen_fd = ts_net_listen(o->ip, o->port, TS_NODE_LISTEN_BACKLOG_N);
    if (n->listen_fd < 0) {
        ts_err("listen on %s:%u failed: %s", o->ip, (unsigned) o->port,
               strerror(errno));
        return -1;
    }
    /* port 0: the kernel chose one; the segment is named after it */
    if (port == 0
        && getsockname(n->listen_fd, (struct sockaddr *) &sin, &sl) == 0
        && sin.sin_family == AF_INET)
    {
        port = ntohs(sin.sin_port);
    }
    n->opts.port = port;

    node_shm_name_state(name, sizeof(name), o->crt_path, port);
    if (ts_shm_create(&n->shm, name, NODE_SHM_LAYOUT, node_shm_specs,
                      node_shm_nspecs) != 0)
    {
        ts_err("node segment \"%s\" failed: %s", name, strerror(errno));
        close(n->listen_fd);
        n->listen_fd = -1;
        return -1;
    }
    (void) node_rate_set(&n->shm, (int64_t) o->max_up_Bps,
                         (int64_t) o->max_down_Bps);

    parent = getpid();
    pid = fork();
    if (pid < 0) {
        ts_err("fork() failed: %s", strerror(errno));
        ts_shm_unlink(n->shm.name);
        ts_shm_detach(&n->shm);
        close(n->listen_fd);
        n->listen_fd = -1;
        return -1;
    }

    if (pid == 0) {
        if (!o->detached) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
        }
        if (!o->detached && getppid() != parent) {
            _exit(0);
        }
        if (o->close_fd > 0) {
            close(o->close_fd);
        }
        /* its own session and process group: a terminal's Ctrl-C or
         * hangup reaches the CLI only, never the node's workers */
        (void) setsid();
        node_detach_stdio(o);
        ts_log_set_role("node-sup");
        ts_proc_set_name("node-sup");
        rc = node_supervise(n, o);
        _exit(rc);
    }

    n->sup_pid = pid;
    ts_info("node %s:%u started (supervisor %d, segment %s)", o->ip,
            (unsigned) port, (int) pid, name);
    return 0;
}


void
node_stop(node_t *n)
{
    int      st;
    int64_t  deadline;
    pid_t    rc;

    if (n->sup_pid > 0) {
        kill(n->sup_pid, SIGTERM);
        deadline = ts_now_ms() + TS_SUP_STOP_DEADLINE_MS
                   + TS_NODE_STOP_GRACE_MS;
        for (;;) {
            rc = waitpid(n->sup_pid, &st, WNOHANG);
            if (rc == n->sup_pid || (rc < 0 && errno != EINTR)) {
                break;
            }
            if (ts_now_ms() >= deadline) {
                ts_warn("node supervisor %d did not stop; killing it",
                        (int) n->sup_pid);
                kill(n->sup_pid, SIGKILL);
                while (waitpid(n->sup_pid, &st, 0) < 0 && errno == EINTR) {
                    /* retry */
                }
                break;
            }
            usleep(TS_NODE_STOP_POLL_MS * 1000);
        }
        n->sup_pid = -1;
    }
    if (n->shm.base != NULL) {
        ts_shm_unlink(n->shm.name);
        ts_shm_detach(&n->shm);
    }
    if (n->listen_fd >= 0) {
        close(n->listen_fd);
        n->listen_fd = -1;
    }
}


int
node_alive(const node_t *n)
{
    int  st;

    if (n->sup_pid <= 0) {
        return 0;
    }
    return waitpid(n->sup_pid, &st, WNOHANG) == 0;
}


/* ---- reclaim (supervisor, lock-free) --------------------------------- */

void
node_reclaim(const ts_shm_t *shm, ts_owner_t dead)
{
    node_stats_sh_t  *st = node_stats(shm);
    ts_slot_sh_t     *slots = node_slots(shm);
    node_dl_sh_t     *dls = node_dls(shm);
    _Atomic uint32_t *slot_if;
    node_fhash_sh_t  *fh;
    size_t            freed = 0;
    uint64_t          exp;
    uint32_t          nchunks, state, k;
    int               i, j, slot = -1;

    if (dead == 0 || st == NULL || slots == NULL || dls == NULL) {
        return;
    }

    for (i = 0; i < TS_SUP_WORKERS_MAX_N; i++) {
        if (atomic_load_explicit(&slots[i].owner, memory_order_acquire)
            == dead)
        {
            slot = i;
            break;
        }
    }

    /* an uploader's load counts */
    if (slot >= 0
        && atomic_load(&slots[slot].role) == NODE_ROLE_UPLOADER)
    {
        k = (uint32_t) atomic_exchange(&slots[slot].counter[0], 0);
        ts_atomic_sub_sat32(&st->queued, k);
        k = (uint32_t) atomic_exchange(&slots[slot].counter[1], 0);
        ts_atomic_sub_sat32(&st->active_uploads, k);
    }

    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        node_dl_sh_t *d = &dls[i];

        /* in-flight GETs of the dead worker, per source */
        if (slot >= 0) {
            slot_if = node_slot_inflight(shm, slot, i);
            for (j = 0; slot_if != NULL && j < TS_NODE_SOURCES_N; j++) {
                k = atomic_exchange(&slot_if[j], 0);
                if (k > 0) {
                    ts_atomic_sub_sat32(&d->src[j].inflight, k);
                }
            }
        }

        state = atomic_load_explicit(&d->state, memory_order_acquire);
        if (state == NODE_DL_FREE) {
            continue;
        }

        /* map refresh claims */
        for (j = 0; j < TS_NODE_SOURCES_N; j++) {
            exp = dead;
            if (atomic_compare_exchange_strong(&d->src[j].map_owner, &exp, 0))
            {
                freed++;
            }
            /* its link (and the pushes on it) died with it: poll again */
            exp = dead;
            (void) atomic_compare_exchange_strong(&d->src[j].push_owner,
                                                  &exp, 0);
        }

        /* finalize claim: the download goes back to ACTIVE first, so the
         * next finalizer starts over from the .part */
        if (atomic_load(&d->finalize_owner) == dead) {
            uint32_t fin = NODE_DL_FINALIZING;

            atomic_compare_exchange_strong(&d->state, &fin, NODE_DL_ACTIVE);
            exp = dead;
            if (atomic_compare_exchange_strong(&d->finalize_owner, &exp, 0)) {
                freed++;
                ts_warn("download %d: finalizer %d died; back to ACTIVE", i,
                        (int) ts_owner_pid(dead));
            }
        }

        /* frontier hasher claim: the valid copy is intact (node_shm.h) */
        fh = node_dl_fhash(shm, i);
        exp = dead;
        if (fh != NULL
            && atomic_compare_exchange_strong(&fh->owner, &exp, 0))
        {
            freed++;
        }

        /* chunk claims */
        nchunks = d->nchunks;
        if (nchunks > TS_FILE_MAX_CHUNKS_N) {
            nchunks = TS_FILE_MAX_CHUNKS_N;
        }
        freed += ts_claim_reclaim(node_dl_claims(shm, i), nchunks, dead);
    }

    if (freed > 0) {
        atomic_fetch_add(&st->reclaimed_claims, freed);
        ts_info("reclaimed %zu claims of dead worker %d", freed,
                (int) ts_owner_pid(dead));
    }
}
