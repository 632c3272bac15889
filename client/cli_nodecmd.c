/*
 * cli_nodecmd.c -- status, wait, shutdown and echo (cli_nodecmd.h).
 *
 * They run in the agent like every command (a terminal reaches them
 * through the control socket).  status and wait take no command lock
 * (CLI_CMD_NOLOCK): wait may last minutes and must not hold up the
 * other CLIs attached to the node; both use only the agent's own
 * locked operations.
 *
 * status's result: {"pid", "addr", "state_dir", "user" (null when
 * nobody is logged in), "uptime_s", "running", "paused", "done",
 * "failed", "failures" (downloads failed since the agent started),
 * "fail_class"}.  A CLI reads it when it attaches and again at the end
 * of its input, to tell the downloads that failed meanwhile.
 *
 * Locking: the stop request is an atomic flag (set by shutdown in a
 * control thread, read by the agent's main thread).  Crash behaviour:
 * nothing persistent.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_clock.h"

#include "ts_config.h"
#include "cli_out.h"
#include "cli_agent.h"
#include "cli_steer.h"
#include "cli_nodecmd.h"


static atomic_int  cli_nodecmd_stop;
static int64_t     cli_nodecmd_start_ms;


void
cli_nodecmd_started(void)
{
    cli_nodecmd_start_ms = ts_now_ms();
}


int
cli_nodecmd_stop_asked(void)
{
    return atomic_load(&cli_nodecmd_stop);
}


/* The node's pid: the agent's parent, the node supervisor. */
static long
cli_nodecmd_node_pid(void)
{
    return (long) getppid();
}


static long long
cli_nodecmd_uptime_s(void)
{
    return (long long) ((ts_now_ms() - cli_nodecmd_start_ms) / 1000);
}


static int
cli_nodecmd_status(cli_ctx_t *ctx, int argc, char **argv)
{
    cli_dlview_t  *rows = NULL;
    char           user[TS_ID_MAX_B + 1];
    int            n = 0, i, in, run = 0, pau = 0, done = 0, fail = 0;

    (void) argc;
    (void) argv;
    in = cli_session_get(ctx->sess, user, sizeof(user), NULL);
    if (cli_agent_ready() && cli_agent_downloads(&rows, &n) == 0) {
        for (i = 0; i < n; i++) {
            switch (rows[i].state) {
            case CLI_DLV_DONE:   done++; break;
            case CLI_DLV_FAILED: fail++; break;
            case CLI_DLV_PAUSED: pau++;  break;
            default:             run++;  break;
            }
        }
        free(rows);
    }
    cli_out_line("node %ld serving %s, state in %s, up %lld s",
                 cli_nodecmd_node_pid(), ctx->node_addr, ctx->state_dir,
                 cli_nodecmd_uptime_s());
    if (in) {
        cli_out_line("logged in as %s", user);
    } else {
        cli_out_line("not logged in");
    }
    cli_out_line("downloads: %d running, %d paused, %d done, %d failed",
                 run, pau, done, fail);
    cli_out_json_set(json_pack("{s:I, s:o, s:o, s:o, s:I, s:i, s:i, s:i, "
                               "s:i, s:i, s:i}",
                               "pid", (json_int_t) cli_nodecmd_node_pid(),
                               "addr", cli_out_json_text(ctx->node_addr),
                               "state_dir", cli_out_json_text(ctx->state_dir),
                               "user", in ? cli_out_json_text(user)
                                          : json_null(),
                               "uptime_s",
                               (json_int_t) cli_nodecmd_uptime_s(),
                               "running", run, "paused", pau, "done", done,
                               "failed", fail,
                               "failures", cli_agent_failures(),
                               "fail_class", cli_agent_fail_class()));
    return 0;
}


/* The downloads running now end (done, failed, or failed for want of a
 * source after --source-timeout); each one's outcome is printed. */
static int
cli_nodecmd_wait(cli_ctx_t *ctx, int argc, char **argv)
{
    (void) argc;
    (void) argv;
    cli_out_class_reset();
    (void) cli_steer_wait_end(ctx);
    return cli_out_class() == CLI_EXIT_OK ? 0 : -1;
}


static int
cli_nodecmd_shutdown(cli_ctx_t *ctx, int argc, char **argv)
{
    (void) argc;
    (void) argv;
    cli_cmds_logout_quietly(ctx, 0);
    atomic_store(&cli_nodecmd_stop, 1);
    cli_out_line("the node is stopping");
    return 0;
}


static int
cli_nodecmd_echo(cli_ctx_t *ctx, int argc, char **argv)
{
    char    line[TS_CLI_LINE_MAX_B + 1];
    size_t  o = 0;
    int     i, n;

    (void) ctx;
    line[0] = '\0';
    for (i = 1; i < argc; i++) {
        n = snprintf(line + o, sizeof(line) - o, "%s%s", i > 1 ? " " : "",
                     argv[i]);
        if (n < 0 || (size_t) n >= sizeof(line) - o) {
            break;
        }
        o += (size_t) n;
    }
    cli_out_line("%s", line);
    return 0;
}


const cli_cmd_t  cli_nodecmd_cmds[] = {
    { "status", "", 0, 0, CLI_CMD_NOLOCK, cli_nodecmd_status,
      "this node: pid, address, who is logged in, downloads" },
    { "wait", "", 0, 0, CLI_CMD_NOLOCK | CLI_CMD_LOGIN, cli_nodecmd_wait,
      "until the running downloads end (done, failed or timed out)" },
    { "shutdown", "", 0, 0, 0, cli_nodecmd_shutdown,
      "log out and stop the node (every CLI attached is detached)" },
    { "echo", "[text...]", 0, TS_CLI_CTL_ARGS_N - 1, CLI_CMD_NOLOCK,
      cli_nodecmd_echo, "print the text (marks a place in a script)" },
    { NULL, NULL, 0, 0, 0, NULL, NULL }
};
