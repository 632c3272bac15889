/*
 * cli_steer.c -- the commands that steer downloads: cancel, pause,
 * resume, retry, download_info (alias peers), and what the end of piped
 * input does with the downloads still running (cli_steer_wait_end).
 *
 * Each command is one agent operation (cli_agent.h, carried out in
 * client/cli_dlctl.c) and prints its result by the rules of cli_out.h:
 * one line on success, "error: <reason>" with its class (cli_exit.h) on
 * failure -- CLI_EXIT_NOT_FOUND for a download this node does not have,
 * CLI_EXIT_EXISTS for one already complete, CLI_EXIT_CONFLICT for one
 * being renamed into place right now.
 *
 * Locking: main thread only; the agent takes its own lock.
 * Crash behaviour: nothing persistent here (the agent writes node.tdb
 * before an operation returns).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_config.h"
#include "ts_proto.h"
#include "cli_out.h"
#include "cli_agent.h"
#include "cli_dlsm.h"
#include "cli_steer.h"


static int
cli_steer_run(int op, const char *group, const char *name, const char *done)
{
    char  err[512];
    int   cls;

    if (!cli_agent_ready()) {
        return cli_out_fail(CLI_EXIT_NODE, "the node is not running");
    }
    cls = cli_agent_dl_steer(group, name, op, err, sizeof(err));
    if (cls != CLI_EXIT_OK) {
        return cli_out_fail(cls, "%s", err);
    }
    cli_out_line("%s %s from %s", done, name, group);
    return 0;
}


int
cli_cmd_cancel(cli_ctx_t *ctx, int argc, char **argv)
{
    (void) ctx;
    (void) argc;
    return cli_steer_run(CLI_DLOP_CANCEL, argv[1], argv[2], "cancelled");
}


int
cli_cmd_pause(cli_ctx_t *ctx, int argc, char **argv)
{
    (void) ctx;
    (void) argc;
    return cli_steer_run(CLI_DLOP_PAUSE, argv[1], argv[2], "paused");
}


int
cli_cmd_resume(cli_ctx_t *ctx, int argc, char **argv)
{
    (void) ctx;
    (void) argc;
    return cli_steer_run(CLI_DLOP_RESUME, argv[1], argv[2], "resumed");
}


int
cli_cmd_retry(cli_ctx_t *ctx, int argc, char **argv)
{
    (void) ctx;
    (void) argc;
    return cli_steer_run(CLI_DLOP_RETRY, argv[1], argv[2], "retrying");
}


static const char *
cli_steer_peer_state(cli_peer_state_t st)
{
    switch (st) {
    case CLI_PEER_SERVING:
        return "serving";
    case CLI_PEER_GONE:
        return "gone";
    case CLI_PEER_DEAD:
        return "dead";
    case CLI_PEER_DROPPED:
        return "dropped";
    default:
        return "listed";
    }
}


/* download_info <group> <file>: the download's line, then one line per
 * source: address, fingerprint, state, chunks it served, measured rate,
 * its load and our requests to it. */
int
cli_cmd_download_info(cli_ctx_t *ctx, int argc, char **argv)
{
    cli_peerview_t   *rows;
    cli_dlview_t      v;
    char              err[512], rate[32];
    uint64_t          sum = 0;
    int               i, n, cls;

    (void) argc;
    if (!cli_agent_ready()) {
        return cli_out_fail(CLI_EXIT_NODE, "the node is not running");
    }
    rows = calloc(TS_NODE_SOURCES_N, sizeof(*rows));
    if (rows == NULL) {
        return cli_out_error("out of memory");
    }
    cls = cli_agent_dl_peers(argv[1], argv[2], &v, rows, TS_NODE_SOURCES_N,
                             &n, err, sizeof(err));
    if (cls != CLI_EXIT_OK) {
        free(rows);
        return cli_out_fail(cls, "%s", err);
    }
    cli_out_download(&v);
    for (i = 0; i < n; i++) {
        cli_out_rate((double) rows[i].rate_bps, rate, sizeof(rate));
        cli_out_line("  peer %s fp %s %s%s chunks %llu rate %s/s load %u "
                     "inflight %u bad %u", rows[i].addr, rows[i].fp,
                     cli_steer_peer_state(rows[i].state),
                     rows[i].complete ? " complete" : "",
                     (unsigned long long) rows[i].chunks, rate, rows[i].load,
                     rows[i].inflight, rows[i].bad);
        sum += rows[i].chunks;
    }
    if (n == 0) {
        cli_out_line("  no sources in the node's table");
    } else {
        cli_out_line("  %d sources, %llu chunks served", n,
                     (unsigned long long) sum);
    }
    free(rows);
    (void) ctx;
    return 0;
}


/* The downloads running at the end of input are waited for; what each
 * became is printed ("[C] ..." or an error line with its class). */
int
cli_steer_wait_end(cli_ctx_t *ctx)
{
    cli_dlview_t  *before, *after;
    int            nb, na, i, j, paused = 0, running = 0;

    (void) ctx;
    if (!cli_agent_ready() || cli_agent_downloads(&before, &nb) != 0) {
        return cli_agent_wait_downloads();
    }
    for (i = 0; i < nb; i++) {
        if (before[i].state == CLI_DLV_PAUSED && !before[i].held) {
            paused++;
        } else if (before[i].state != CLI_DLV_DONE
                   && before[i].state != CLI_DLV_FAILED)
        {
            running++;
        }
    }
    if (running > 0) {
        cli_out_line("waiting for %d running download%s", running,
                     running == 1 ? "" : "s");
    }
    (void) cli_agent_wait_downloads();
    if (running > 0 && cli_agent_downloads(&after, &na) == 0) {
        for (i = 0; i < nb; i++) {
            if (before[i].state == CLI_DLV_DONE
                || before[i].state == CLI_DLV_FAILED
                || before[i].state == CLI_DLV_PAUSED)
            {
                continue;
            }
            for (j = 0; j < na; j++) {
                if (strcmp(after[j].group, before[i].group) != 0
                    || strcmp(after[j].name, before[i].name) != 0)
                {
                    continue;
                }
                if (after[j].state == CLI_DLV_FAILED) {
                    (void) cli_out_fail(after[j].fail_cls != 0
                                        ? after[j].fail_cls
                                        : CLI_EXIT_FAILURE,
                                        "download of '%s' from '%s' "
                                        "failed: %s", after[j].name,
                                        after[j].group, after[j].error);
                } else {
                    cli_out_download(&after[j]);
                }
            }
        }
        free(after);
    }
    if (paused > 0) {
        cli_out_line("%d paused download%s left", paused,
                     paused == 1 ? "" : "s");
    }
    free(before);
    fflush(stdout);
    return cli_agent_failures();
}
