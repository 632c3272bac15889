/*
 * cli_rate.c -- the node's bandwidth caps from the client's side: the
 * RATE syntax of --max-upload-rate / --max-download-rate and the `rate`
 * command, which reads and changes the caps in the node's segment
 * (node_rate_set / node_rate_get, workers/node_rate.c) while it runs.
 *
 * Output: "upload: cap <B/s> (<human>/s), now <B/s> (<human>/s)" and the
 * same for download; "unlimited" for a cap of 0.  Bad input prints one
 * "error: ..." line and changes nothing (both values are checked before
 * either is set).
 *
 * Locking: main thread only; the caps are atomics in the segment.
 * Crash behaviour: nothing persistent.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ts_config.h"
#include "cli_node.h"
#include "cli_out.h"
#include "cli_rate.h"


int
cli_rate_parse(const char *s, uint64_t *out)
{
    unsigned __int128  v = 0;
    uint64_t           mul = 1;
    const char        *p = s;

    if (s == NULL || !isdigit((unsigned char) *p)) {
        return -1;
    }
    while (isdigit((unsigned char) *p)) {
        v = v * 10 + (unsigned) (*p - '0');
        if (v > TS_RATE_MAX_BPS) {
            return -1;          /* stops long digit strings early */
        }
        p++;
    }
    switch (*p) {
    case 'k': case 'K': mul = 1024ull; p++; break;
    case 'm': case 'M': mul = 1024ull * 1024; p++; break;
    case 'g': case 'G': mul = 1024ull * 1024 * 1024; p++; break;
    default: break;
    }
    if (mul > 1 && *p == 'i') {
        p++;
        if (*p != 'B') {
            return -1;
        }
    }
    if (*p == 'B') {
        p++;
    }
    if (strcmp(p, "/s") == 0) {
        p += 2;
    }
    if (*p != '\0') {
        return -1;
    }
    v *= mul;
    if (v > TS_RATE_MAX_BPS || (v != 0 && v < TS_RATE_MIN_BPS)) {
        return -1;
    }
    *out = (uint64_t) v;
    return 0;
}


static void
cli_rate_line(const char *what, uint64_t cap, double now_bps, int measured)
{
    char  c[32], n[32];

    cli_out_rate((double) cap, c, sizeof(c));
    cli_out_rate(now_bps, n, sizeof(n));
    if (cap == 0 && measured) {
        cli_out_line("%s: unlimited, now %.0f B/s (%s/s)", what, now_bps, n);
    } else if (cap == 0) {
        cli_out_line("%s: unlimited", what);
    } else if (measured) {
        cli_out_line("%s: cap %llu B/s (%s/s), now %.0f B/s (%s/s)", what,
                     (unsigned long long) cap, c, now_bps, n);
    } else {
        cli_out_line("%s: cap %llu B/s (%s/s)", what,
                     (unsigned long long) cap, c);
    }
}


/* The caps and the rates measured over TS_RATE_SAMPLE_MS. */
static int
cli_rate_show(const ts_shm_t *shm)
{
    node_rate_now_t  a, b;
    struct timespec  ts = { TS_RATE_SAMPLE_MS / 1000,
                            (TS_RATE_SAMPLE_MS % 1000) * 1000000L };
    double           secs;

    if (node_rate_get(shm, &a) != 0) {
        return cli_out_fail(CLI_EXIT_NODE, "the node has no rate table");
    }
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        /* the rest of the interval */
    }
    if (node_rate_get(shm, &b) != 0) {
        return cli_out_fail(CLI_EXIT_NODE, "the node has no rate table");
    }
    secs = (double) (b.at_ns - a.at_ns) / 1e9;
    if (secs <= 0) {
        secs = 1e-9;
    }
    cli_rate_line("upload", b.up_Bps,
                  (double) (b.up_total_B - a.up_total_B) / secs, 1);
    cli_rate_line("download", b.down_Bps,
                  (double) (b.down_total_B - a.down_total_B) / secs, 1);
    return 0;
}


int
cli_cmd_rate(cli_ctx_t *ctx, int argc, char **argv)
{
    node_t          *n = cli_node_get();
    node_rate_now_t  now;
    int64_t          v[2] = { -1, -1 };
    uint64_t         r;
    int              i, which;

    if (n == NULL) {
        return cli_out_fail(CLI_EXIT_NODE, "the node is not running");
    }
    if (argc == 1) {
        return cli_rate_show(&n->shm);
    }
    if (argc % 2 == 0) {
        return cli_out_fail(CLI_EXIT_USAGE,
                            "usage: rate [up RATE] [down RATE]");
    }
    for (i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "up") == 0) {
            which = 0;
        } else if (strcmp(argv[i], "down") == 0) {
            which = 1;
        } else {
            return cli_out_fail(CLI_EXIT_USAGE, "bad direction '%s' (up or "
                                "down)", argv[i]);
        }
        if (cli_rate_parse(argv[i + 1], &r) != 0) {
            return cli_out_fail(CLI_EXIT_USAGE, "bad rate '%s' (0 = "
                                "unlimited, or %u..%llu bytes/s; suffix "
                                "K, M, G)", argv[i + 1], TS_RATE_MIN_BPS,
                                (unsigned long long) TS_RATE_MAX_BPS);
        }
        v[which] = (int64_t) r;
    }
    if (node_rate_set(&n->shm, v[0], v[1]) != 0
        || node_rate_get(&n->shm, &now) != 0)
    {
        return cli_out_fail(CLI_EXIT_NODE, "the node has no rate table");
    }
    cli_rate_line("upload", now.up_Bps, 0, 0);
    cli_rate_line("download", now.down_Bps, 0, 0);
    return 0;
}
