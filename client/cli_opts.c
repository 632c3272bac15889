/*
 * cli_opts.c -- the client's command line: options, usage text, the
 * <IP>:<PORT> argument and the default CA path.
 *
 * Bad input is reported on stderr and ends the process with status 2
 * (help and version: status 0), before anything is started.
 *
 * Locking: main thread, before any other exists.
 * Crash behaviour: nothing persistent.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "ts_config.h"
#include "ts_log.h"
#include "ts_net.h"
#include "cli_opts.h"
#include "cli_rate.h"


/* the name we were run as ("tessera-client" when installed) */
static const char  *cli_opts_prog = "client";


static void
cli_opts_usage(FILE *f)
{
    fprintf(f,
        "usage: %s [options] <IP>:<PORT> tracker_info.txt\n"
        "       %s --attach [--json] -s DIR\n"
        "  -s, --state-dir DIR   node state (default ./tsr-node-<ip>-<port>)\n"
        "  -t, --tracker N       talk to the Nth tracker of "
        "tracker_info.txt first\n"
        "  -l, --log-level L     error|warn|info|debug\n"
        "      --log-file FILE   append the log to FILE, not stderr; "
        "SIGHUP reopens it\n"
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
        "SIGTERM; exit\n"
        "                        then detaches and leaves the node "
        "running\n"
        "      --source-timeout SEC  a download no source served a chunk "
        "for this long\n"
        "                        fails; `retry` restarts it (default %d)\n"
        "      --attach          attach to the node running on the state "
        "directory\n"
        "                        (-s DIR; no <IP>:<PORT> then) through its "
        "control socket\n"
        "      --json            print each command's reply as one JSON "
        "object per line\n"
        "      --ca FILE         the cluster CA certificate (default "
        "<dir of tracker_info.txt>/pki/ca.crt,\n"
        "                        written by the first tracker started "
        "there)\n"
        "      --max-upload-rate RATE\n"
        "                        node-wide upload cap in bytes/s, suffix "
        "K, M, G (powers\n"
        "                        of 1024); 0 = unlimited (the default)\n"
        "      --max-download-rate RATE\n"
        "                        node-wide download cap, the same way\n"
        "      --http ADDR:PORT  the HTTP endpoint (/metrics, /healthz, "
        "/api/v1/...):\n"
        "                        default 127.0.0.1 and the node's port + "
        "%d; a\n"
        "                        non-loopback address is HTTPS with "
        "node.crt; API key\n"
        "                        (header X-API-Key) in <state>/http-api.key\n"
        "      --no-http         no HTTP endpoint\n"
        "  -h, --help            this text\n"
        "  -V, --version         print the version\n",
        cli_opts_prog, cli_opts_prog, TS_NODE_UPLOADERS_N,
        TS_NODE_DOWNLOADERS_N,
        TS_NODE_UNAUTH_MS, TS_DL_GET_SLOW_MS, TS_CLI_SOURCE_TIMEOUT_S,
        TS_HTTP_PORT_OFFSET);
}


static int
cli_opts_level(const char *s, ts_log_level_t *out)
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


/* A decimal number in [min, max]: 0 and *v, or -1. */
static int
cli_opts_num(const char *arg, long min, long max, long *v)
{
    char  *end;

    errno = 0;
    *v = strtol(arg, &end, 10);
    return errno != 0 || *end != '\0' || *v < min || *v > max ? -1 : 0;
}


/* "client: <message>", the usage text on stderr, exit status 2. */
static void __attribute__((format(printf, 1, 2), noreturn))
cli_opts_bad(const char *fmt, ...)
{
    va_list  ap;

    fputs("client: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cli_opts_usage(stderr);
    exit(2);
}


/* --http's form (IP:PORT, port > 0); its binding is cli_http_setup's. */
static void
cli_opts_http(const char *arg)
{
    char      ip[64];
    uint16_t  port;

    if (ts_parse_hostport(arg, ip, sizeof(ip), &port) != 0 || port == 0) {
        cli_opts_bad("bad --http '%s' (IP:PORT, e.g. 127.0.0.1:9443 or "
                     "[::1]:9443)", arg);
    }
}


/* Options and positional arguments; exits 0 or 2 itself. */
void
cli_opts_parse(int argc, char **argv, cli_opts_t *o)
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
        { "source-timeout", required_argument, NULL, 'T' },
        { "log-file",  required_argument, NULL, 0x1052 },
        { "max-upload-rate", required_argument, NULL, 'R' },
        { "max-download-rate", required_argument, NULL, 'r' },
        { "attach",    no_argument,       NULL, 'A' },
        { "json",      no_argument,       NULL, 'J' },
        { "http",      required_argument, NULL, 0x1060 },
        { "no-http",   no_argument,       NULL, 0x1061 },
        { NULL, 0, NULL, 0 }
    };
    ts_log_level_t  lvl;
    long            v;
    int             c;

    memset(o, 0, sizeof(*o));
    o->prefer = -1;
    if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0') {
        cli_opts_prog = strrchr(argv[0], '/') != NULL
                        ? strrchr(argv[0], '/') + 1 : argv[0];
    }

    while ((c = getopt_long(argc, argv, "s:t:l:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            o->state_dir = optarg;
            break;
        case 't':
            if (cli_opts_num(optarg, 1, TS_TRACKERS_MAX_N, &v) != 0) {
                cli_opts_bad("bad tracker number '%s'", optarg);
            }
            o->prefer = (int) v - 1;
            break;
        case 'l':
            if (cli_opts_level(optarg, &lvl) != 0) {
                cli_opts_bad("bad log level '%s'", optarg);
            }
            ts_log_set_level(lvl);
            break;
        case 'U':
        case 'D':
            if (cli_opts_num(optarg, 1, TS_SUP_WORKERS_MAX_N / 2, &v) != 0) {
                cli_opts_bad("bad worker count '%s' (1..%d)", optarg,
                             TS_SUP_WORKERS_MAX_N / 2);
            }
            *(c == 'U' ? &o->uploaders : &o->downloaders) = (int) v;
            break;
        case 'W':
        case 'S':
            if (cli_opts_num(optarg, TS_CLI_OPT_MS_MIN, TS_CLI_OPT_MS_MAX, &v)
                != 0)
            {
                cli_opts_bad("bad time '%s' (%d..%d ms)", optarg,
                             TS_CLI_OPT_MS_MIN, TS_CLI_OPT_MS_MAX);
            }
            *(c == 'W' ? &o->ticket_wait_ms : &o->slow_chunk_ms) = (int) v;
            break;
        case 'T':
            if (cli_opts_num(optarg, TS_CLI_SOURCE_TIMEOUT_MIN_S,
                             TS_CLI_SOURCE_TIMEOUT_MAX_S, &v) != 0)
            {
                cli_opts_bad("bad time '%s' (%d..%d s)", optarg,
                             TS_CLI_SOURCE_TIMEOUT_MIN_S,
                             TS_CLI_SOURCE_TIMEOUT_MAX_S);
            }
            o->source_timeout_s = (int) v;
            break;
        case 'R':
        case 'r':
            if (cli_rate_parse(optarg, c == 'R' ? &o->max_up_Bps
                                                : &o->max_down_Bps) != 0)
            {
                cli_opts_bad("bad rate '%s' (0 = unlimited, or %u..%llu "
                             "bytes/s; suffix K, M, G)", optarg,
                             TS_RATE_MIN_BPS,
                             (unsigned long long) TS_RATE_MAX_BPS);
            }
            break;
        case 'K':
            o->keep_running = 1;
            break;
        case 'C':
            o->ca = optarg;
            break;
        case 0x1052:
            o->log_file = optarg;
            break;
        case 'A':
            o->attach = 1;
            break;
        case 'J':
            o->json = 1;
            break;
        case 0x1060:
            cli_opts_http(optarg);
            o->http = optarg;
            break;
        case 0x1061:
            o->no_http = 1;
            break;
        case 'h':
            cli_opts_usage(stdout);
            exit(0);
        case 'V':
            printf("tessera client %s\n", TS_VERSION_STRING);
            exit(0);
        default:
            cli_opts_usage(stderr);
            exit(2);
        }
    }
    if (o->attach) {
        if (argc != optind || o->state_dir == NULL) {
            cli_opts_bad("--attach takes -s DIR and no other argument");
        }
        return;
    }
    if (argc - optind != 2) {
        cli_opts_usage(stderr);
        exit(2);
    }
    o->addr = argv[optind];
    o->trackers_path = argv[optind + 1];
}


/* Validates <IP>:<PORT> into node_addr; exits 2 when it is bad. */
void
cli_opts_check_addr(const char *arg, char *ip, size_t ipsz, uint16_t *port,
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
void
cli_opts_default_ca(const char *trackers_path, char *out, size_t outsz)
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
