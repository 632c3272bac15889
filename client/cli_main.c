/*
 * cli_main.c -- entry point of ./client: options, tracker list, state
 * directory, signals and the command loop (TTY via libedit, or plain
 * line reading when stdin is not a terminal).
 *
 * Command tables are registered here (cli_cmds_core, cli_files_cmds).
 * Identity (issue 5): the cluster CA (--ca, default <dir of
 * tracker_info.txt>/pki/ca.crt) must exist; the node certificate and key
 * (<state dir>/node.crt, node.key) are created at the first start and
 * their fingerprint is this node's identity.  Every tracker link is TLS
 * with them (cli_rpc_tls_init); the node gets their paths.
 *
 * The node (cli_node.c: supervisor, uploaders, downloaders) is forked
 * from main() before any thread exists, then the agent thread
 * (cli_agent.c) starts; both stop after the loop.  At the end of non-TTY
 * input the client waits for its downloads (exit 1 if one failed), and
 * with --keep-running keeps seeding until SIGTERM/SIGINT.
 *
 * Signals: handlers only set a flag and write a byte to a self-pipe.
 * The loop's reads poll stdin together with that pipe, so a signal is
 * never lost between a flag check and a blocking read.  SIGINT at the
 * prompt abandons the line being typed; SIGTERM/SIGHUP (and SIGINT when
 * stdin is not a terminal) end the loop, then the client logs out with
 * one short try and exits.
 *
 * Locking: single-threaded except the heartbeat (cli_session.c).
 * Crash behaviour: the history file is rewritten after each command, so
 * a killed client loses at most the line being typed; its tracker
 * session expires on its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <editline/readline.h>

#include "ts_config.h"
#include "ts_log.h"
#include "ts_net.h"
#include "ts_trackers.h"
#include "ts_tls.h"
#include "cli_cmds.h"
#include "cli_parse.h"
#include "cli_rpc.h"
#include "cli_session.h"
#include "cli_agent.h"
#include "cli_files.h"
#include "cli_node.h"


static volatile sig_atomic_t  cli_sig_int;
static volatile sig_atomic_t  cli_sig_term;
static int                    cli_sigpipe[2] = { -1, -1 };

static cli_rpc_t              cli_rpc;
static cli_session_t          cli_sess;     /* outlives the heartbeat */

typedef struct {
    const char  *state_dir;
    int          prefer;        /* 0-based tracker index */
    const char  *addr;
    const char  *trackers_path;
    int          uploaders;     /* 0 = default */
    int          downloaders;
    int          ticket_wait_ms;  /* 0 = default */
    int          slow_chunk_ms;   /* 0 = default */
    int          keep_running;
    const char  *ca;            /* cluster CA certificate (--ca) */
} cli_opts_t;


static void
cli_usage(FILE *f)
{
    fprintf(f,
        "usage: client [options] <IP>:<PORT> tracker_info.txt\n"
        "  -s, --state-dir DIR   node state (default ./tsr-node-<ip>-<port>)\n"
        "  -t, --tracker N       talk to tracker N (1-based) first\n"
        "  -l, --log-level L     error|warn|info|debug\n"
        "      --uploaders N     uploader workers (default %d)\n"
        "      --downloaders N   downloader workers (default %d)\n"
        "      --ticket-wait MS  a peer link must show a valid download "
        "ticket within\n"
        "                        this, and a new one when its tickets "
        "expire (default %d)\n"
        "      --slow-chunk MS   give up a chunk reply slower than this "
        "when another\n"
        "                        source has the chunk (default %d)\n"
        "      --keep-running    keep seeding after input ends, until "
        "SIGTERM\n"
        "      --ca FILE         the cluster CA certificate (default "
        "<dir of tracker_info.txt>/pki/ca.crt,\n"
        "                        written by the first tracker started "
        "there)\n"
        "  -h, --help            this text\n"
        "  -V, --version         print the version\n",
        TS_NODE_UPLOADERS_N, TS_NODE_DOWNLOADERS_N, TS_NODE_UNAUTH_MS,
        TS_DL_GET_SLOW_MS);
}


static void
cli_on_signal(int signo)
{
    int  saved = errno;

    if (signo == SIGINT) {
        cli_sig_int = 1;
    } else {
        cli_sig_term = 1;
    }
    if (cli_sigpipe[1] >= 0) {
        (void) !write(cli_sigpipe[1], "s", 1);
    }
    errno = saved;
}


static void
cli_drain_sigpipe(void)
{
    char  buf[64];

    while (read(cli_sigpipe[0], buf, sizeof(buf)) > 0) {
        /* void */
    }
}


static int
cli_signals_init(void)
{
    struct sigaction  sa;

    if (pipe2(cli_sigpipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        ts_err("pipe2() failed: %s", strerror(errno));
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = cli_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;        /* no SA_RESTART: blocking calls see EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return 0;
}


/* mkdir -p, new directories 0700. */
static int
cli_mkdirs(const char *path)
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


static int
cli_parse_level(const char *s, ts_log_level_t *out)
{
    static const char  *names[] = { "error", "warn", "info", "debug" };
    int                 i;

    for (i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (ts_log_level_t) i;
            return 0;
        }
    }
    return -1;
}


/* Options and positional arguments; exits 0 or 2 itself. */
static void
cli_parse_args(int argc, char **argv, cli_opts_t *o)
{
    static const struct option  longopts[] = {
        { "state-dir", required_argument, NULL, 's' },
        { "tracker",   required_argument, NULL, 't' },
        { "log-level", required_argument, NULL, 'l' },
        { "help",      no_argument,       NULL, 'h' },
        { "version",   no_argument,       NULL, 'V' },
        { "uploaders", required_argument, NULL, 'U' },
        { "downloaders", required_argument, NULL, 'D' },
        { "keep-running", no_argument,    NULL, 'K' },
        { "ticket-wait", required_argument, NULL, 'W' },
        { "slow-chunk", required_argument, NULL, 'S' },
        { "ca",        required_argument, NULL, 'C' },
        { NULL, 0, NULL, 0 }
    };
    ts_log_level_t  lvl;
    char           *end;
    long            v;
    int             c;

    memset(o, 0, sizeof(*o));
    o->prefer = -1;

    while ((c = getopt_long(argc, argv, "s:t:l:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            o->state_dir = optarg;
            break;
        case 't':
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || v < 1
                || v > TS_TRACKERS_MAX_N)
            {
                fprintf(stderr, "client: bad tracker number '%s'\n", optarg);
                cli_usage(stderr);
                exit(2);
            }
            o->prefer = (int) v - 1;
            break;
        case 'l':
            if (cli_parse_level(optarg, &lvl) != 0) {
                fprintf(stderr, "client: bad log level '%s'\n", optarg);
                cli_usage(stderr);
                exit(2);
            }
            ts_log_set_level(lvl);
            break;
        case 'U':
        case 'D':
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || v < 1
                || v > TS_SUP_WORKERS_MAX_N / 2)
            {
                fprintf(stderr, "client: bad worker count '%s' (1..%d)\n",
                        optarg, TS_SUP_WORKERS_MAX_N / 2);
                cli_usage(stderr);
                exit(2);
            }
            if (c == 'U') {
                o->uploaders = (int) v;
            } else {
                o->downloaders = (int) v;
            }
            break;
        case 'W':
        case 'S':
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || v < 100 || v > 3600000) {
                fprintf(stderr, "client: bad time '%s' (100..3600000 ms)\n",
                        optarg);
                cli_usage(stderr);
                exit(2);
            }
            if (c == 'W') {
                o->ticket_wait_ms = (int) v;
            } else {
                o->slow_chunk_ms = (int) v;
            }
            break;
        case 'K':
            o->keep_running = 1;
            break;
        case 'C':
            o->ca = optarg;
            break;
        case 'h':
            cli_usage(stdout);
            exit(0);
        case 'V':
            printf("tessera client %s\n", TS_VERSION_STRING);
            exit(0);
        default:
            cli_usage(stderr);
            exit(2);
        }
    }
    if (argc - optind != 2) {
        cli_usage(stderr);
        exit(2);
    }
    o->addr = argv[optind];
    o->trackers_path = argv[optind + 1];
}


/* Validates <IP>:<PORT> into node_addr; exits 2 when it is bad. */
static void
cli_check_addr(const char *arg, char *ip, size_t ipsz, uint16_t *port,
               char *node_addr, size_t nsz)
{
    unsigned char  tmp[16];
    int            v6;

    if (ts_parse_hostport(arg, ip, ipsz, port) != 0 || *port == 0) {
        fprintf(stderr, "client: bad address '%s' (want <IP>:<PORT>)\n",
                arg);
        exit(2);
    }
    v6 = strchr(ip, ':') != NULL;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, ip, tmp) != 1) {
        fprintf(stderr, "client: bad IP address '%s'\n", ip);
        exit(2);
    }
    snprintf(node_addr, nsz, v6 ? "[%s]:%u" : "%s:%u", ip, (unsigned) *port);
}


/* The default CA: <directory of tracker_info.txt>/pki/ca.crt. */
static void
cli_default_ca(const char *trackers_path, char *out, size_t outsz)
{
    const char  *slash = strrchr(trackers_path, '/');

    if (slash == NULL) {
        snprintf(out, outsz, "pki/ca.crt");
    } else if (slash == trackers_path) {
        snprintf(out, outsz, "/pki/ca.crt");
    } else {
        snprintf(out, outsz, "%.*s/pki/ca.crt",
                 (int) (slash - trackers_path), trackers_path);
    }
}


/*
 * The node's identity and the cluster CA: the CA must exist (the first
 * tracker creates it); node.crt/node.key are created in the state dir
 * if missing.  Fills the paths and fp; exits 2 with a clear message.
 */
static void
cli_identity(const cli_opts_t *o, char *ca, char *crt, char *key,
             size_t pathsz, uint8_t fp[TS_FP_B])
{
    struct stat  sb;
    char         err[512];

    if (o->ca != NULL) {
        snprintf(ca, pathsz, "%s", o->ca);
    } else {
        cli_default_ca(o->trackers_path, ca, pathsz);
    }
    if (stat(ca, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "client: no cluster CA at %s: start a tracker "
                "first or copy ca.crt (or give --ca FILE)\n", ca);
        exit(2);
    }
    if (ts_pki_ensure_node(o->state_dir, fp, err, sizeof(err)) != 0) {
        fprintf(stderr, "client: cannot create the node identity in %s: "
                "%s\n", o->state_dir, err);
        exit(2);
    }
    snprintf(crt, pathsz, "%s/node.crt", o->state_dir);
    snprintf(key, pathsz, "%s/node.key", o->state_dir);
}


/* Runs one input line; sets *failed when the command failed. */
static void
cli_exec_line(cli_ctx_t *ctx, const char *line, int *failed)
{
    cli_args_t  a;
    char        err[128];

    if (cli_parse_line(line, &a, err, sizeof(err)) != 0) {
        cli_error("%s", err);
        fflush(stdout);
        *failed = 1;
        return;
    }
    if (a.argc > 0 && cli_cmd_run(ctx, a.argc, a.argv) != 0) {
        *failed = 1;
    }
}


/* ---- non-TTY input ------------------------------------------------------ */

typedef struct {
    char    buf[8192];
    size_t  off;
    size_t  end;
    int     eof;
} cli_reader_t;


/*
 * One line from fd 0 into line (at most linesz-1 bytes kept; *toolong is
 * set if more were dropped).  1 = a line, 0 = EOF, -1 = a signal came.
 */
static int
cli_read_line(cli_reader_t *r, char *line, size_t linesz, int *toolong)
{
    struct pollfd  pfd[2];
    size_t         o;
    ssize_t        n;
    char           c;

    o = 0;
    *toolong = 0;

    for ( ;; ) {
        while (r->off < r->end) {
            c = r->buf[r->off++];
            if (c == '\n') {
                line[o] = '\0';
                return 1;
            }
            if (o + 1 < linesz) {
                line[o++] = c;
            } else {
                *toolong = 1;
            }
        }
        if (r->eof) {
            line[o] = '\0';
            return (o > 0 || *toolong) ? 1 : 0;
        }
        if (cli_sig_term || cli_sig_int) {
            return -1;
        }

        pfd[0].fd = STDIN_FILENO;
        pfd[0].events = POLLIN;
        pfd[1].fd = cli_sigpipe[0];
        pfd[1].events = POLLIN;
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            ts_err("poll() failed: %s", strerror(errno));
            return -1;
        }
        if (pfd[1].revents & POLLIN) {
            cli_drain_sigpipe();
            continue;
        }
        if (pfd[0].revents == 0) {
            continue;
        }
        n = read(STDIN_FILENO, r->buf, sizeof(r->buf));
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            ts_err("read() failed: %s", strerror(errno));
            r->eof = 1;
        } else if (n == 0) {
            r->eof = 1;
        } else {
            r->off = 0;
            r->end = (size_t) n;
        }
    }
}


static int
cli_loop_plain(cli_ctx_t *ctx)
{
    static cli_reader_t  rd;
    static char          line[TS_CLI_LINE_MAX_B + 2];
    int                  failed, toolong, r;

    failed = 0;
    while (!ctx->want_exit) {
        r = cli_read_line(&rd, line, sizeof(line), &toolong);
        if (r <= 0) {
            break;
        }
        if (toolong) {
            cli_error("line too long (max %d bytes)", TS_CLI_LINE_MAX_B);
            fflush(stdout);
            failed = 1;
            continue;
        }
        cli_exec_line(ctx, line, &failed);
    }
    return failed;
}


/* 1 once SIGTERM/SIGINT/SIGHUP asked the client to stop. */
static int
cli_stop_requested(void)
{
    return cli_sig_term || cli_sig_int;
}


/* --keep-running: serve until a signal comes. */
static void
cli_keep_running(void)
{
    struct pollfd  pfd;

    ts_info("input ended; still seeding until SIGTERM");
    while (!cli_stop_requested() && cli_node_get() != NULL) {
        pfd.fd = cli_sigpipe[0];
        pfd.events = POLLIN;
        if (poll(&pfd, 1, 1000) > 0) {
            cli_drain_sigpipe();
        }
    }
}


/* ---- TTY input (libedit) ------------------------------------------------ */

/*
 * libedit reads keys through this: it waits on stdin and the signal
 * pipe together.  SIGINT ends the line early (the loop then drops it);
 * SIGTERM is end of input.  UTF-8 sequences are decoded here because
 * libedit takes one wide character per call.
 */
static int
cli_tty_getc(FILE *f)
{
    struct pollfd  pfd[2];
    unsigned char  b[4];
    int            need, i, cp;
    ssize_t        n;

    (void) f;
    for ( ;; ) {
        if (cli_sig_term) {
            return -1;
        }
        if (cli_sig_int) {
            return '\n';
        }
        pfd[0].fd = STDIN_FILENO;
        pfd[0].events = POLLIN;
        pfd[1].fd = cli_sigpipe[0];
        pfd[1].events = POLLIN;
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (pfd[1].revents & POLLIN) {
            cli_drain_sigpipe();
            continue;
        }
        if (pfd[0].revents == 0) {
            continue;
        }
        n = read(STDIN_FILENO, b, 1);
        if (n == 1) {
            break;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        return -1;
    }

    if (b[0] < 0x80) {
        return b[0];
    }
    if ((b[0] & 0xe0) == 0xc0) {
        need = 1;
        cp = b[0] & 0x1f;
    } else if ((b[0] & 0xf0) == 0xe0) {
        need = 2;
        cp = b[0] & 0x0f;
    } else if ((b[0] & 0xf8) == 0xf0) {
        need = 3;
        cp = b[0] & 0x07;
    } else {
        return b[0];
    }
    for (i = 1; i <= need; i++) {
        pfd[0].fd = STDIN_FILENO;
        pfd[0].events = POLLIN;
        /* the rest of a character arrives with it; do not hang on junk */
        if (poll(pfd, 1, 100) <= 0 || read(STDIN_FILENO, &b[i], 1) != 1
            || (b[i] & 0xc0) != 0x80)
        {
            return b[0];
        }
        cp = (cp << 6) | (b[i] & 0x3f);
    }
    return cp;
}


/* Lines carrying a password never go to the history file. */
static int
cli_history_ok(const char *line)
{
    cli_args_t  a;

    if (cli_parse_line(line, &a, NULL, 0) != 0) {
        return 1;
    }
    if (a.argc == 0) {
        return 0;
    }
    return strcmp(a.argv[0], "login") != 0
           && strcmp(a.argv[0], "create_user") != 0;
}


static int
cli_loop_tty(cli_ctx_t *ctx, const char *history)
{
    char   *line;
    char    prompt[TS_ID_MAX_B + 32];
    char    user[TS_ID_MAX_B + 1];

    rl_catch_signals = 0;           /* our handlers, not libedit's */
    rl_getc_function = cli_tty_getc;
    using_history();
    stifle_history(TS_CLI_HISTORY_MAX_N);
    (void) read_history(history);

    while (!ctx->want_exit && !cli_sig_term) {
        if (cli_session_get(ctx->sess, user, sizeof(user), NULL)) {
            snprintf(prompt, sizeof(prompt), "%s@tessera> ", user);
        } else {
            snprintf(prompt, sizeof(prompt), "tessera> ");
        }
        cli_sig_int = 0;
        cli_drain_sigpipe();

        line = readline(prompt);
        if (cli_sig_term) {
            free(line);
            break;
        }
        if (cli_sig_int) {
            /* ^C: the line is abandoned, a fresh prompt follows */
            free(line);
            continue;
        }
        if (line == NULL) {
            putchar('\n');
            break;
        }
        if (line[0] != '\0' && cli_history_ok(line)) {
            add_history(line);
            if (write_history(history) != 0) {
                ts_debug("write_history(%s) failed", history);
            }
        }
        {
            int  ignored = 0;

            cli_exec_line(ctx, line, &ignored);
        }
        free(line);
    }
    return 0;
}


int
main(int argc, char **argv)
{
    cli_opts_t      o;
    cli_ctx_t       ctx;
    ts_trackers_t   trk;
    char            err[512], ip[64], defdir[128], history[4200];
    static char     ca[4096], crt[4200], key[4200];
    uint16_t        port;
    int             failed;

    setlocale(LC_CTYPE, "");
    ts_log_set_role("client");

    cli_parse_args(argc, argv, &o);

    memset(&ctx, 0, sizeof(ctx));
    cli_check_addr(o.addr, ip, sizeof(ip), &port, ctx.node_addr,
                   sizeof(ctx.node_addr));

    if (ts_trackers_load(o.trackers_path, &trk, err, sizeof(err)) != 0) {
        fprintf(stderr, "client: %s\n", err);
        return 2;
    }
    if (trk.n == 0) {
        fprintf(stderr, "client: %s: no trackers listed\n", o.trackers_path);
        return 2;
    }
    if (o.prefer >= trk.n) {
        fprintf(stderr, "client: no tracker %d in %s (it lists %d)\n",
                o.prefer + 1, o.trackers_path, trk.n);
        return 2;
    }

    if (o.state_dir == NULL) {
        snprintf(defdir, sizeof(defdir), "./tsr-node-%s-%u", ip,
                 (unsigned) port);
        o.state_dir = defdir;
    }
    if (cli_mkdirs(o.state_dir) != 0) {
        fprintf(stderr, "client: cannot create state dir %s: %s\n",
                o.state_dir, strerror(errno));
        return 2;
    }
    snprintf(history, sizeof(history), "%s/history", o.state_dir);

    /* who we are (node.crt) and whom we trust (the cluster CA) */
    cli_identity(&o, ca, crt, key, sizeof(ca), ctx.node_fp);
    if (cli_rpc_tls_init(crt, key, ca, err, sizeof(err)) != 0) {
        fprintf(stderr, "client: TLS setup failed: %s\n", err);
        return 2;
    }

    /* the node first: fork before any thread exists */
    {
        node_opts_t  no;

        memset(&no, 0, sizeof(no));
        snprintf(no.ip, sizeof(no.ip), "%s", ip);
        no.port = port;
        no.uploaders = o.uploaders;
        no.downloaders = o.downloaders;
        no.ticket_wait_ms = o.ticket_wait_ms;
        no.slow_chunk_ms = o.slow_chunk_ms;
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
        if (cli_node_start(&no) != 0) {
            return 1;
        }
    }

    if (cli_signals_init() != 0
        || cli_rpc_init(&cli_rpc, &trk, o.prefer < 0 ? 0 : o.prefer) != 0
        || cli_session_init(&cli_sess, &trk) != 0)
    {
        fprintf(stderr, "client: initialisation failed\n");
        cli_node_stop();
        return 1;
    }

    /* one line per command file */
    cli_cmds_register(cli_cmds_core);
    cli_cmds_register(cli_files_cmds);

    ctx.rpc = &cli_rpc;
    ctx.sess = &cli_sess;
    ctx.state_dir = o.state_dir;
    ctx.tty = isatty(STDIN_FILENO);

    if (cli_agent_init(&ctx, o.state_dir, cli_stop_requested) != 0
        || cli_agent_start() != 0)
    {
        fprintf(stderr, "client: cannot open %s/node.tdb\n", o.state_dir);
        cli_node_stop();
        return 1;
    }

    if (ctx.tty) {
        failed = cli_loop_tty(&ctx, history);
    } else {
        failed = cli_loop_plain(&ctx);
    }

    fflush(stdout);
    /* end of a script: its downloads finish first (exit already waited) */
    if (!ctx.tty && !ctx.want_exit && !cli_stop_requested()
        && cli_session_get(&cli_sess, NULL, 0, NULL))
    {
        cli_agent_wait_downloads();
    }
    if (o.keep_running && !cli_stop_requested()) {
        cli_keep_running();
    }
    if (cli_agent_failures() > 0) {
        failed = 1;
    }

    /* exit already logged out; EOF and signals log out here */
    cli_cmds_logout_quietly(&ctx, cli_sig_term || cli_sig_int);
    fflush(stdout);
    cli_agent_stop();
    cli_node_stop();

    if (cli_session_wait_threads(&cli_sess, 500) > 0) {
        /* a heartbeat is stuck in a request: leave without running the
         * libraries' exit handlers under it */
        fflush(stderr);
        _exit(failed ? 1 : 0);
    }
    cli_rpc_destroy(&cli_rpc);
    cli_rpc_tls_free();
    return failed ? 1 : 0;
}
