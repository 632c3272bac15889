/*
 * cli_daemon.c -- the node's agent process (see cli_daemon.h).
 *
 * Start: TLS with the node's certificate, a tracker link, the session
 * (saved to <state>/session from now on), the command tables, the agent
 * thread (cli_agent.h) over node.tdb, then the saved session if there is
 * one: the segment's shares and downloads are dropped (a dead agent may
 * have left them half written) and republished from node.tdb as a login
 * does, so the downloaders go on from the chunks recorded as verified.
 * Last the control socket; then "ready" to the supervisor.
 *
 * Run: the main thread only waits (stop pipe, a beat per second); the
 * work is in the agent thread, the heartbeat thread and the control
 * socket's threads, which block every signal.
 *
 * Stop: SIGTERM from the supervisor (the node stops) logs out with one
 * short try; the "shutdown" command logs out fully first, then asks the
 * supervisor to stop the node.  A segment reset (the supervisor restarts
 * every worker) keeps the session: the next agent resumes it.
 *
 * Locking: main thread only here (the shutdown command's request is an
 * atomic flag of cli_nodecmd.c).  Crash behaviour: a
 * killed agent leaves node.tdb (bitmaps at most TS_NODE_PERSIST_MS old,
 * the rest re-hashed from the .part), the saved session and the socket
 * file; the supervisor starts a new agent, which picks up all three.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_log.h"
#include "ts_proto.h"
#include "ts_claim.h"
#include "node.h"
#include "node_shm.h"
#include "cli_ctx.h"
#include "cli_cmds.h"
#include "cli_rpc.h"
#include "cli_reply.h"
#include "cli_session.h"
#include "cli_sessfile.h"
#include "cli_agent.h"
#include "cli_files.h"
#include "cli_node.h"
#include "cli_nodecmd.h"
#include "cli_ctl_srv.h"
#include "cli_daemon.h"

static cli_daemon_cfg_t  dmn_cfg;
static cli_rpc_t         dmn_rpc;
static cli_session_t     dmn_sess;
static cli_ctx_t         dmn_ctx;


void
cli_daemon_configure(const cli_daemon_cfg_t *cfg)
{
    dmn_cfg = *cfg;
}


static int
cli_daemon_stopping(void)
{
    return ts_worker_stopping();
}


/* The saved session, if the trackers still know it: resumed, with this
 * user's shares and downloads back in the segment. */
static void
cli_daemon_resume(ts_shm_t *shm, const char *path)
{
    cli_sessfile_t  f;
    cli_reply_t     rep;
    int             r;

    node_pub_clear(shm);
    if (cli_sessfile_load(path, &f) != 0) {
        return;
    }
    memset(&rep, 0, sizeof(rep));
    r = cli_rpc_call_ex(&dmn_rpc, TS_MSG_HEARTBEAT, f.tok, TS_TOKEN_B, &rep,
                        dmn_cfg.trk.n > 0 ? dmn_cfg.trk.n : 1, 0);
    if (r == 0 && rep.status == TS_ERR_AUTH) {
        ts_info("the saved session of %s has ended; log in again", f.user);
        cli_reply_free(&rep);
        cli_sessfile_remove(path);
        return;
    }
    if (r != 0) {
        /* no tracker answers now: resume anyway, the heartbeat retries */
        ts_warn("resuming the session of %s unconfirmed: %s", f.user,
                rep.msg);
    }
    cli_reply_free(&rep);
    if (f.heartbeat_ms >= TS_CLI_HB_MIN_MS && f.heartbeat_ms <= TS_CLI_HB_MAX_MS)
    {
        dmn_sess.heartbeat_ms = f.heartbeat_ms;
    }
    if (cli_session_start(&dmn_sess, f.user, f.tok,
                          f.tracker < dmn_cfg.trk.n ? f.tracker : 0) != 0)
    {
        ts_warn("no heartbeat thread; the session will expire");
    }
    cli_agent_login(f.user);
    ts_info("resumed the session of %s", f.user);
}


/* Everything before "ready": 0, or the exit status (2 = fatal: the
 * supervisor stops the node rather than restart us in a loop). */
static int
cli_daemon_setup(node_t *n)
{
    char  err[512], path[4200];

    cli_node_adopt(n);
    if (cli_rpc_tls_init(dmn_cfg.crt, dmn_cfg.key, dmn_cfg.ca, err,
                         sizeof(err)) != 0)
    {
        ts_err("TLS setup failed: %s", err);
        return 2;
    }
    if (cli_rpc_init(&dmn_rpc, &dmn_cfg.trk, dmn_cfg.prefer) != 0
        || cli_session_init(&dmn_sess, &dmn_cfg.trk) != 0)
    {
        ts_err("agent initialisation failed");
        return 1;
    }
    if (snprintf(path, sizeof(path), "%s/session", dmn_cfg.state_dir)
        >= (int) sizeof(path))
    {
        ts_err("state directory path too long");
        return 2;
    }
    cli_session_persist(&dmn_sess, path);

    cli_cmds_register(cli_cmds_core);
    cli_cmds_register(cli_files_cmds);
    cli_cmds_register(cli_nodecmd_cmds);

    memset(&dmn_ctx, 0, sizeof(dmn_ctx));
    dmn_ctx.rpc = &dmn_rpc;
    dmn_ctx.sess = &dmn_sess;
    dmn_ctx.state_dir = dmn_cfg.state_dir;
    dmn_ctx.tty = 0;
    snprintf(dmn_ctx.node_addr, sizeof(dmn_ctx.node_addr), "%s",
             dmn_cfg.node_addr);
    memcpy(dmn_ctx.node_fp, dmn_cfg.node_fp, TS_FP_B);

    cli_agent_set_source_timeout(dmn_cfg.source_timeout_s);
    if (cli_agent_init(&dmn_ctx, dmn_cfg.state_dir, cli_daemon_stopping) != 0
        || cli_agent_start() != 0)
    {
        ts_err("cannot open %s/node.tdb", dmn_cfg.state_dir);
        return 2;
    }
    cli_daemon_resume(&n->shm, path);
    if (cli_ctl_srv_start(&dmn_ctx, dmn_cfg.state_dir) != 0) {
        ts_err("no control socket in %s", dmn_cfg.state_dir);
        return 1;
    }
    return 0;
}


int
cli_daemon_main(const ts_worker_ctx_t *wctx)
{
    node_t        *n = wctx->arg;
    ts_slot_sh_t  *slots = node_slots(&n->shm);
    ts_slot_sh_t  *slot = NULL;
    ts_owner_t     me = ts_owner_make(getpid(), wctx->generation);
    struct pollfd  pfd;
    int            rc, asked = 0;

    cli_nodecmd_started();
    rc = cli_daemon_setup(n);
    if (rc != 0) {
        return rc;
    }
    if (slots != NULL && wctx->slot >= 0 && wctx->slot < TS_SUP_WORKERS_MAX_N)
    {
        slot = &slots[wctx->slot];
        ts_slot_set_active(slot, me);
    }
    ts_worker_ready(wctx);
    ts_debug("agent ready");

    while (!ts_worker_stopping() && !ts_worker_orphaned(wctx)) {
        pfd.fd = ts_worker_stop_fd();
        pfd.events = POLLIN;
        (void) poll(&pfd, 1, cli_nodecmd_stop_asked() ? 50 : 1000);
        if (slot != NULL && atomic_load(&slot->owner) == me) {
            ts_slot_beat(slot);
        }
        if (cli_nodecmd_stop_asked() && !asked) {
            /* "shutdown" replied first; now the whole node stops */
            asked = 1;
            (void) kill(getppid(), SIGTERM);
        }
    }

    cli_ctl_srv_stop();
    if (!ts_shm_reset_needed(&n->shm)) {
        cli_cmds_logout_quietly(&dmn_ctx, 1);
    } else {
        cli_session_forget(&dmn_sess);
    }
    cli_agent_stop();
    (void) cli_session_wait_threads(&dmn_sess, TS_CLI_EXIT_WAIT_MS);
    return 0;
}
