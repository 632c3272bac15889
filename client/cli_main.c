/*
 * cli_main.c -- entry point of ./client: startup (tracker list, state
 * directory, identity, the node), then the session at the prompt or on
 * piped input (cli_front.c) and the way out.  Options: cli_opts.c.
 *
 * One node per state directory (cli_lock.h).  When none runs there,
 * this CLI starts it: the node supervisor with its uploaders,
 * downloaders and its agent (cli_daemon.h), which holds the tracker
 * session and serves <state>/control.sock; then the CLI attaches to it
 * like any other.  When one runs already, the CLI says so and attaches
 * (as ./client --attach -s DIR does).  Identity: the cluster CA (--ca,
 * default <dir of tracker_info.txt>/pki/ca.crt) must exist; the node
 * certificate and key (<state dir>/node.crt, node.key) are created at
 * the first start and their fingerprint is this node's identity.
 *
 * The node a CLI started ends with it (exit, end of input, a signal, or
 * the CLI killed: PR_SET_PDEATHSIG), unless --keep-running: then the CLI
 * serves on after its input ends until SIGTERM, and `exit` detaches,
 * leaving the node running for later CLIs.
 *
 * Locking: single-threaded.  Crash behaviour: a killed CLI takes a node
 * it started without --keep-running with it; the agent's saved session
 * and node.tdb let the next start go on.
 */
#include <errno.h>
#include <fcntl.h>
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
#include "cli_http.h"
#include "cli_cmds.h"
#include "cli_rpc.h"
#include "cli_files.h"
#include "cli_node.h"
#include "cli_nodecmd.h"
#include "cli_opts.h"
#include "cli_loop.h"
#include "cli_out.h"
#include "cli_lock.h"
#include "cli_exit.h"
#include "cli_daemon.h"
#include "cli_front.h"

static cli_daemon_cfg_t  cli_main_dmn;
static int               cli_main_user_err_fd;  /* 0 = none */


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


/* One node per state directory (cli_lock.h): 0 when we hold the lock
 * (we start the node), 1 when a node runs there already (we attach; the
 * message says so), or CLI_EXIT_NODE after the message. */
static int
cli_main_lock(const char *state_dir)
{
    pid_t  holder;
    int    r;

    r = cli_lock_take(state_dir, &holder);
    if (r == -1) {
        if (holder > 0) {
            cli_out_eline("client: a node already runs on %s (pid %ld); "
                          "attaching to it", state_dir, (long) holder);
        } else {
            cli_out_eline("client: a node already runs on %s; attaching "
                          "to it", state_dir);
        }
        return 1;
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
    no.agent_main = cli_daemon_main;
    no.http_main = cli_http_cfg()->fd >= 0 ? cli_http_main : NULL;
    no.close_fd = cli_main_user_err_fd;
    no.detached = o->keep_running;
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
    /* the node has its copy of the HTTP socket and key; the CLI's go */
    cli_http_teardown();
    if (r != 0) {
        return CLI_EXIT_NODE;
    }
    if (cli_lock_note_pid(cli_node_get()->sup_pid) != 0) {
        ts_warn("cannot write the node's pid in node.lock: %s",
                strerror(errno));
    }
    return 0;
}


/* The agent's configuration (cli_daemon.h), inherited by the node. */
static int
cli_main_daemon_cfg(const cli_opts_t *o, const ts_trackers_t *trk,
                    const char *ca, const char *crt, const char *key,
                    const char *node_addr, const uint8_t fp[TS_FP_B])
{
    cli_daemon_cfg_t  *d = &cli_main_dmn;

    memset(d, 0, sizeof(*d));
    d->trk = *trk;
    d->prefer = o->prefer < 0 ? 0 : o->prefer;
    d->source_timeout_s = o->source_timeout_s;
    memcpy(d->node_fp, fp, TS_FP_B);
    if (snprintf(d->ca, sizeof(d->ca), "%s", ca) >= (int) sizeof(d->ca)
        || snprintf(d->crt, sizeof(d->crt), "%s", crt) >= (int) sizeof(d->crt)
        || snprintf(d->key, sizeof(d->key), "%s", key) >= (int) sizeof(d->key)
        || snprintf(d->state_dir, sizeof(d->state_dir), "%s", o->state_dir)
           >= (int) sizeof(d->state_dir)
        || snprintf(d->node_addr, sizeof(d->node_addr), "%s", node_addr)
           >= (int) sizeof(d->node_addr))
    {
        fprintf(stderr, "client: state or CA path too long\n");
        return 2;
    }
    cli_daemon_configure(d);
    return 0;
}


/*
 * Everything before the session: the address, the trackers, the state
 * directory, the lock, the identity and the node.  0 when this CLI
 * started the node, -1 when it attaches to one that runs, else the exit
 * status.
 */
static int
cli_main_setup(int argc, char **argv, cli_opts_t *o, char *history,
               size_t historysz)
{
    static ts_trackers_t  trk;
    static char           defdir[128], ca[4096], crt[4200], key[4200];
    char                  err[512], ip[64], node_addr[96];
    uint8_t               fp[TS_FP_B];
    uint16_t              port;
    cli_http_ask_t        http_ask;
    int                   r;

    cli_opts_parse(argc, argv, o);
    if (o->attach) {
        return -1;
    }
    if (o->log_file != NULL) {
        /* the log takes fd 2; the user's errors stay on the stderr the
         * CLI was given (not inherited by the node: node_opts.close_fd) */
        int  fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

        if (f != NULL) {
            setvbuf(f, NULL, _IONBF, 0);
            cli_out_set_stderr(f);
            cli_main_user_err_fd = fd;
        }
        if (ts_log_open_file(o->log_file) != 0) {
            cli_out_eline("client: cannot open --log-file %s: %s",
                          o->log_file, strerror(errno));
            return 1;
        }
    }
    cli_opts_check_addr(o->addr, ip, sizeof(ip), &port, node_addr,
                        sizeof(node_addr));
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
        return r == 1 ? -1 : r;
    }

    /* who we are (node.crt) and whom we trust (the cluster CA); TLS is
     * set up here once so a bad certificate is told now, not by a node
     * whose agent cannot start */
    cli_main_identity(o, ca, crt, key, sizeof(ca), fp);
    if (cli_rpc_tls_init(crt, key, ca, err, sizeof(err)) != 0) {
        cli_out_eline("client: TLS setup failed: %s", err);
        return 2;
    }
    cli_rpc_tls_free();
    http_ask.spec = o->http;
    http_ask.off = o->no_http;
    if (cli_http_setup(&http_ask, o->state_dir, port, node_addr, crt, key)
        != 0)
    {
        return 2;
    }
    if ((r = cli_main_daemon_cfg(o, &trk, ca, crt, key, node_addr, fp)) != 0
        || (r = cli_main_node_start(o, ip, port, ca, crt, key)) != 0)
    {
        return r;
    }
    return 0;
}


/* The lock holder of an attached node still runs. */
static const char  *cli_main_attached_dir;

static int
cli_main_attached_alive(void)
{
    return cli_lock_held(cli_main_attached_dir);
}


static int
cli_main_started_alive(void)
{
    return cli_node_get() != NULL && !cli_node_gone();
}


int
main(int argc, char **argv)
{
    cli_opts_t        o;
    cli_front_opts_t  fo;
    char              history[4200];
    int               r, stop_node = 0;

    setlocale(LC_CTYPE, "");
    ts_log_set_role("client");
    memset(&o, 0, sizeof(o));
    history[0] = '\0';
    r = cli_main_setup(argc, argv, &o, history, sizeof(history));
    if (r > 0) {
        return r;
    }
    if (history[0] == '\0') {
        snprintf(history, sizeof(history), "%s/history", o.state_dir);
    }
    if (cli_loop_signals_init() != 0) {
        fprintf(stderr, "client: initialisation failed\n");
        cli_node_stop();
        return 1;
    }
    /* the command table: help, completion, which arguments are paths */
    cli_cmds_register(cli_cmds_core);
    cli_cmds_register(cli_files_cmds);
    cli_cmds_register(cli_nodecmd_cmds);

    memset(&fo, 0, sizeof(fo));
    fo.state_dir = o.state_dir;
    fo.history = history;
    fo.json = o.json;
    fo.started = r == 0;
    fo.keep_running = o.keep_running;
    if (fo.started) {
        fo.alive = cli_main_started_alive;
    } else {
        cli_main_attached_dir = o.state_dir;
        fo.alive = cli_main_attached_alive;
    }
    r = cli_front_run(&fo, &stop_node);
    fflush(stdout);
    if (stop_node) {
        cli_node_stop();
    }
    return r;
}
