/*
 * cli_main.c -- entry point of ./client: startup (tracker list, state
 * directory, identity, the node, the agent), the command loop
 * (cli_loop.c) and the way out.  Options: cli_opts.c.
 *
 * Command tables are registered here (cli_cmds_core, cli_files_cmds).
 * Identity: the cluster CA (--ca, default <dir of
 * tracker_info.txt>/pki/ca.crt) must exist; the node certificate and key
 * (<state dir>/node.crt, node.key) are created at the first start and
 * their fingerprint is this node's identity.  Every tracker link is TLS
 * with them (cli_rpc_tls_init); the node gets their paths.
 *
 * The node (cli_node.c: supervisor, uploaders, downloaders) is forked
 * before any thread exists, then the agent thread (cli_agent.h) starts;
 * both stop after the loop.  At the end of non-TTY input the client
 * waits for its downloads (exit CLI_EXIT_FAILURE if one failed; else a
 * piped session exits with the class of its last failed command), and with
 * --keep-running keeps seeding until SIGTERM/SIGINT.  After the loop
 * the client logs out (one short try after a signal) and exits.
 *
 * Locking: single-threaded except the heartbeat (cli_session.c) and the
 * agent thread.  Crash behaviour: a killed client's tracker session
 * expires on its own; node.tdb keeps its shares and downloads.
 */
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_log.h"
#include "ts_trackers.h"
#include "ts_tls.h"
#include "node.h"
#include "cli_ctx.h"
#include "cli_cmds.h"
#include "cli_rpc.h"
#include "cli_session.h"
#include "cli_agent.h"
#include "cli_files.h"
#include "cli_node.h"
#include "cli_opts.h"
#include "cli_loop.h"
#include "cli_out.h"
#include "cli_steer.h"
#include "cli_lock.h"
#include "cli_ctl_srv.h"
#include "cli_ctl_cli.h"


static cli_rpc_t              cli_main_rpc;
static cli_session_t          cli_main_sess;    /* outlives the heartbeat */


/* mkdir -p, new directories 0700. */
static int
cli_main_mkdirs(const char *path)
{
    char         buf[4096];
    char        *p;
    struct stat  st;

    if (snprintf(buf, sizeof(buf), "%s", path) >= (int) sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (p = buf + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
        return -1;
    }
    if (stat(buf, &st) != 0) {
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}


/*
 * The node's identity and the cluster CA: the CA must exist (the first
 * tracker creates it); node.crt/node.key are created in the state dir
 * if missing.  Fills the paths and fp; exits 2 with a clear message.
 */
static void
cli_main_identity(const cli_opts_t *o, char *ca, char *crt, char *key,
                  size_t pathsz, uint8_t fp[TS_FP_B])
{
    struct stat  sb;
    char         err[512];

    if (o->ca != NULL) {
        snprintf(ca, pathsz, "%s", o->ca);
    } else {
        cli_opts_default_ca(o->trackers_path, ca, pathsz);
    }
    if (stat(ca, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "client: no cluster CA at %s: start a tracker "
                "first or copy ca.crt (or give --ca FILE)\n", ca);
        exit(2);
    }
    if (ts_pki_ensure_node(o->state_dir, fp, err, sizeof(err)) != 0) {
        cli_out_eline("client: cannot create the node identity in %s: %s",
                      o->state_dir, err);
        exit(2);
    }
    snprintf(crt, pathsz, "%s/node.crt", o->state_dir);
    snprintf(key, pathsz, "%s/node.key", o->state_dir);
}




/* The tracker list: 0, or 2 after the message. */
static int
cli_main_trackers(const cli_opts_t *o, ts_trackers_t *trk)
{
    char  err[512];

    if (ts_trackers_load(o->trackers_path, trk, err, sizeof(err)) != 0) {
        cli_out_eline("client: %s", err);     /* may quote the file */
        return 2;
    }
    if (trk->n == 0) {
        fprintf(stderr, "client: %s: no trackers listed\n", o->trackers_path);
        return 2;
    }
    if (o->prefer >= trk->n) {
        fprintf(stderr, "client: no tracker %d in %s (it lists %d)\n",
                o->prefer + 1, o->trackers_path, trk->n);
        return 2;
    }
    return 0;
}


/* One node per state directory (cli_lock.h): 0, or CLI_EXIT_NODE after
 * the message naming the node that runs there. */
static int
cli_main_lock(const char *state_dir)
{
    pid_t  holder;
    int    r;

    r = cli_lock_take(state_dir, &holder);
    if (r == -1) {
        if (holder > 0) {
            cli_out_eline("client: a node already runs on %s (pid %ld): "
                          "stop it first or give another --state-dir",
                          state_dir, (long) holder);
        } else {
            cli_out_eline("client: a node already runs on %s: stop it "
                          "first or give another --state-dir", state_dir);
        }
        return CLI_EXIT_NODE;
    }
    if (r != 0) {
        cli_out_eline("client: cannot lock %s/node.lock: %s", state_dir,
                      strerror(errno));
        return CLI_EXIT_NODE;
    }
    return 0;
}


/* The node first: forked before any thread exists.  0, 1 or 2. */
static int
cli_main_node_start(const cli_opts_t *o, const char *ip, uint16_t port,
                    const char *ca, const char *crt, const char *key)
{
    node_opts_t  no;
    int          r;

    memset(&no, 0, sizeof(no));
    snprintf(no.ip, sizeof(no.ip), "%s", ip);
    no.port = port;
    no.uploaders = o->uploaders;
    no.downloaders = o->downloaders;
    no.ticket_wait_ms = o->ticket_wait_ms;
    no.slow_chunk_ms = o->slow_chunk_ms;
    no.max_up_Bps = o->max_up_Bps;
    no.max_down_Bps = o->max_down_Bps;
    /* at a terminal the node's log goes to <state>/node.log, not on top
     * of the prompt (with --log-file, to that file like the CLI's own) */
    if (o->log_file == NULL && isatty(STDIN_FILENO)
        && snprintf(no.log_path, sizeof(no.log_path), "%s/node.log",
                    o->state_dir) >= (int) sizeof(no.log_path))
    {
        no.log_path[0] = '\0';
    }
    if (snprintf(no.crt_path, sizeof(no.crt_path), "%s", crt)
        >= (int) sizeof(no.crt_path)
        || snprintf(no.key_path, sizeof(no.key_path), "%s", key)
           >= (int) sizeof(no.key_path)
        || snprintf(no.ca_path, sizeof(no.ca_path), "%s", ca)
           >= (int) sizeof(no.ca_path))
    {
        fprintf(stderr, "client: state or CA path too long\n");
        return 2;
    }
    r = cli_node_start(&no);
    return r != 0 ? CLI_EXIT_NODE : 0;
}


/*
 * Everything before the command loop: the address, the trackers, the
 * state directory, the identity and TLS, the node, the tracker link and
 * session, the command tables and the agent.  0, or the exit status.
 */
static int
cli_main_setup(int argc, char **argv, cli_opts_t *o, cli_ctx_t *ctx,
               char *history, size_t historysz)
{
    static ts_trackers_t  trk;
    static char           defdir[128], ca[4096], crt[4200], key[4200];
    char                  err[512], ip[64];
    uint16_t              port;
    int                   r;

    cli_opts_parse(argc, argv, o);
    if (o->attach) {
        return -1;                      /* main runs cli_ctl_cli_run */
    }
    if (o->log_file != NULL && ts_log_open_file(o->log_file) != 0) {
        fprintf(stderr, "client: cannot open --log-file %s: %s\n",
                o->log_file, strerror(errno));
        return 1;
    }
    memset(ctx, 0, sizeof(*ctx));
    cli_opts_check_addr(o->addr, ip, sizeof(ip), &port, ctx->node_addr,
                        sizeof(ctx->node_addr));
    if ((r = cli_main_trackers(o, &trk)) != 0) {
        return r;
    }
    if (o->state_dir == NULL) {
        snprintf(defdir, sizeof(defdir), "./tsr-node-%s-%u", ip,
                 (unsigned) port);
        o->state_dir = defdir;
    }
    if (cli_main_mkdirs(o->state_dir) != 0) {
        fprintf(stderr, "client: cannot create state dir %s: %s\n",
                o->state_dir, strerror(errno));
        return 2;
    }
    snprintf(history, historysz, "%s/history", o->state_dir);
    if ((r = cli_main_lock(o->state_dir)) != 0) {
        return r;
    }

    /* who we are (node.crt) and whom we trust (the cluster CA) */
    cli_main_identity(o, ca, crt, key, sizeof(ca), ctx->node_fp);
    if (cli_rpc_tls_init(crt, key, ca, err, sizeof(err)) != 0) {
        cli_out_eline("client: TLS setup failed: %s", err);
        return 2;
    }
    if ((r = cli_main_node_start(o, ip, port, ca, crt, key)) != 0) {
        return r;
    }
    if (cli_loop_signals_init() != 0
        || cli_rpc_init(&cli_main_rpc, &trk, o->prefer < 0 ? 0 : o->prefer)
           != 0
        || cli_session_init(&cli_main_sess, &trk) != 0)
    {
        fprintf(stderr, "client: initialisation failed\n");
        cli_node_stop();
        return 1;
    }

    /* one line per command file */
    cli_cmds_register(cli_cmds_core);
    cli_cmds_register(cli_files_cmds);

    ctx->rpc = &cli_main_rpc;
    ctx->sess = &cli_main_sess;
    ctx->state_dir = o->state_dir;
    ctx->tty = isatty(STDIN_FILENO);

    cli_agent_set_source_timeout(o->source_timeout_s);
    if (cli_agent_init(ctx, o->state_dir, cli_loop_stop_requested) != 0
        || cli_agent_start() != 0)
    {
        fprintf(stderr, "client: cannot open %s/node.tdb\n", o->state_dir);
        cli_node_stop();
        return 1;
    }
    /* other CLIs of this user attach here (a warning if it cannot be) */
    (void) cli_ctl_srv_start(ctx, o->state_dir);
    return 0;
}


/* The command loop, then what the end of input asks for: the class of
 * the last failed command (cli_exit.h), CLI_EXIT_FAILURE when only a
 * download failed, else CLI_EXIT_OK. */
static int
cli_main_run(const cli_opts_t *o, cli_ctx_t *ctx, const char *history)
{
    int  failed;

    if (ctx->tty) {
        failed = cli_loop_tty(ctx, history);
    } else {
        failed = cli_loop_plain(ctx);
    }
    fflush(stdout);
    /* end of a script: its downloads finish first (exit already waited) */
    if (!ctx->tty && !ctx->want_exit && !cli_loop_stop_requested()
        && cli_session_get(&cli_main_sess, NULL, 0, NULL))
    {
        cli_out_class_reset();
        cli_steer_wait_end(ctx);
        if (cli_out_class() != CLI_EXIT_OK) {
            failed = cli_out_class();   /* a download that ended badly */
        }
    }
    if (o->keep_running && !cli_loop_stop_requested()) {
        cli_loop_keep_running();
    }
    if (cli_agent_failures() > 0 && failed == CLI_EXIT_OK) {
        failed = cli_agent_fail_class() != CLI_EXIT_OK
                 ? cli_agent_fail_class() : CLI_EXIT_FAILURE;
    }
    return failed;
}


int
main(int argc, char **argv)
{
    cli_opts_t  o;
    cli_ctx_t   ctx;
    char        history[4200];
    int         r, failed;

    setlocale(LC_CTYPE, "");
    ts_log_set_role("client");
    r = cli_main_setup(argc, argv, &o, &ctx, history, sizeof(history));
    if (r < 0) {
        return cli_ctl_cli_run(o.state_dir, o.json);
    }
    if (r != 0) {
        return r;
    }
    failed = cli_main_run(&o, &ctx, history);

    /* exit already logged out; EOF and signals log out here */
    cli_cmds_logout_quietly(&ctx, cli_loop_stop_requested());
    fflush(stdout);
    cli_ctl_srv_stop();
    cli_agent_stop();
    cli_node_stop();

    if (cli_session_wait_threads(&cli_main_sess, TS_CLI_EXIT_WAIT_MS) > 0) {
        /* a heartbeat is stuck in a request: leave without running the
         * libraries' exit handlers under it */
        fflush(stderr);
        _exit(failed);
    }
    cli_rpc_destroy(&cli_main_rpc);
    cli_rpc_tls_free();
    return failed;
}
