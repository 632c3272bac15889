/*
 * cli_front.c -- the CLI as a client of its node's agent (cli_front.h).
 *
 * Each input line is split here (cli_parse_line, the rules the node
 * uses too); arguments that are paths on this side (CLI_CMD_PATH flags)
 * are made absolute, since the agent runs elsewhere; the line goes as
 * one request (cli_ctl_cli.h) and the reply is printed: its lines on
 * stdout, "error: ..." lines on stderr; with --json the reply object as
 * one line on stdout.  At a terminal an empty listing prints "(none)",
 * the names in a listing's rows feed Tab completion (cli_names.h), the
 * prompt names the user logged in on the node, and what the node pushes
 * while the prompt waits (a download ended, a warning) is printed above
 * the prompt (cli_loop_print_above).
 *
 * "exit"/"quit" stay here.  A CLI that started its node without
 * --keep-running stops it (a script's downloads end first); otherwise it
 * detaches and the node runs on.  At the end of piped input the
 * downloads running on the node are waited for ("wait"), and the exit
 * status is the class of the last failure: a command's, or a download's
 * that failed while this CLI was attached.
 *
 * When the link breaks (the agent died and its supervisor starts a new
 * one), the command in flight is reported with an unknown outcome and
 * the CLI connects again, waiting up to TS_CLI_AGENT_BACK_MS; a node
 * that is gone for good ends the session (CLI_EXIT_NODE).
 *
 * Locking: main thread only.  Crash behaviour: nothing persistent.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_log.h"
#include "cli_cmds.h"
#include "cli_exit.h"
#include "cli_parse.h"
#include "cli_out.h"
#include "cli_names.h"
#include "cli_loop.h"
#include "cli_ctl_cli.h"
#include "cli_front.h"

static const cli_front_opts_t  *fr_o;
static cli_ctl_link_t           fr_link = { -1, 0 };
static int                      fr_tty;
static int                      fr_gone;    /* the node is gone for good */


/* ---- printing ----------------------------------------------------------- */

static void
cli_front_dump(const cli_ctl_msg_t *m)
{
    char  *dump = json_dumps(m->root, JSON_COMPACT);

    if (dump != NULL) {
        printf("%s\n", dump);
        free(dump);
    }
    fflush(stdout);
}


/* A pushed event: its lines on stderr (above the prompt at a terminal),
 * or with --json the object on stdout. */
static void
cli_front_event(const cli_ctl_msg_t *m)
{
    size_t  i;

    if (fr_o->json) {
        cli_front_dump(m);
        return;
    }
    for (i = 0; m->lines != NULL && i < json_array_size(m->lines); i++) {
        cli_loop_print_above(cli_out_stderr(),
                             json_string_value(json_array_get(m->lines, i)));
    }
}


/* A listing's rows: their group and file names complete on Tab. */
static void
cli_front_note_names(const json_t *result)
{
    const json_t  *g, *n, *row;
    size_t         i;

    if (!json_is_array(result)) {
        return;
    }
    json_array_foreach(result, i, row) {
        g = json_object_get(row, "group");
        n = json_object_get(row, "name");
        if (json_is_string(g)) {
            cli_names_note(CLI_NAMES_GROUP, json_string_value(g));
        }
        if (json_is_string(n)) {
            cli_names_note(CLI_NAMES_FILE, json_string_value(n));
        }
    }
}


/* Prints a reply; its class (CLI_EXIT_OK when it succeeded). */
static int
cli_front_print(const cli_ctl_msg_t *m)
{
    const char  *s;
    size_t       i, nl;

    cli_front_note_names(m->result);
    if (fr_o->json) {
        cli_front_dump(m);
        return m->ok ? CLI_EXIT_OK : m->exit;
    }
    nl = m->lines != NULL ? json_array_size(m->lines) : 0;
    for (i = 0; i < nl; i++) {
        s = json_string_value(json_array_get(m->lines, i));
        /* the node escaped every line already (ts_esc) */
        if (strncmp(s, "error: ", 7) == 0) {
            fflush(stdout);
            fprintf(cli_out_stderr(), "%s\n", s);
        } else {
            printf("%s\n", s);
        }
    }
    if (!m->ok && nl == 0) {
        fflush(stdout);
        cli_out_eline("error: %s", m->error);
    }
    if (m->ok && nl == 0 && fr_tty && json_is_array(m->result)
        && json_array_size(m->result) == 0)
    {
        puts("(none)");
    }
    fflush(stdout);
    return m->ok ? CLI_EXIT_OK : m->exit;
}


/* ---- the link ------------------------------------------------------------- */

/* The link again after it broke: 0, or -1 (the node is gone). */
static int
cli_front_reconnect(void)
{
    cli_ctl_cli_close(&fr_link);
    if (fr_gone) {
        return -1;
    }
    if (cli_ctl_cli_open(&fr_link, fr_o->state_dir, TS_CLI_AGENT_BACK_MS,
                         fr_o->alive) != 0)
    {
        fr_gone = 1;
        return -1;
    }
    return 0;
}


/*
 * One request; *m is the reply (to free) when 0 is returned.  -1: there
 * was no reply (the message is printed, *cls says why: the link broke
 * or the line does not fit in a request).  again: the request may be
 * sent a second time (it changes nothing: wait, status), so a link that
 * broke because the agent restarted is tried again on the new agent.
 */
static int
cli_front_call(int argc, char **argv, int wait_ms, int again,
               cli_ctl_msg_t *m, int *cls)
{
    int  r, tries = 0;

    for ( ;; ) {
        /* what came while we were idle first: events, or the agent's
         * end (then connect to the new one before sending anything) */
        if (fr_link.fd >= 0) {
            (void) cli_ctl_cli_pending(&fr_link, cli_front_event);
        }
        if (fr_link.fd < 0 && cli_front_reconnect() != 0) {
            cli_out_eline("error: the node is not running");
            *cls = CLI_EXIT_NODE;
            return -1;
        }
        r = cli_ctl_cli_call(&fr_link, argc, argv, wait_ms, cli_front_event,
                             m);
        if (r == 0) {
            return 0;
        }
        if (r == 1) {
            cli_out_eline("error: command too long for the control socket");
            *cls = CLI_EXIT_USAGE;
            return -1;
        }
        if (cli_front_reconnect() != 0) {
            cli_out_eline("error: the node stopped");
            *cls = CLI_EXIT_NODE;
            return -1;
        }
        if (!again || ++tries > TS_CLI_AGENT_RETRY_N) {
            cli_out_eline("error: the node's agent restarted during '%s'; "
                          "its outcome is unknown", argv[0]);
            *cls = CLI_EXIT_NODE;
            return -1;
        }
        cli_out_eline("client: the node's agent restarted; '%s' again",
                      argv[0]);
    }
}


/* A request whose reply is only read here (status, shutdown): its
 * result object, or NULL (json_decref it). */
static json_t *
cli_front_quiet(const char *cmd)
{
    cli_ctl_msg_t  m;
    char          *argv[2] = { (char *) cmd, NULL };
    json_t        *res = NULL;

    if (cli_ctl_cli_call(&fr_link, 1, argv, TS_CLI_CTL_CMD_WAIT_MS,
                         cli_front_event, &m) != 0)
    {
        return NULL;
    }
    if (m.ok && m.result != NULL) {
        res = json_incref(m.result);
    }
    cli_ctl_msg_free(&m);
    return res;
}


/* ---- lines ------------------------------------------------------------------ */

/* argv[i] made absolute for each path argument of the command. */
static int
cli_front_paths(cli_args_t *a, char abs[][PATH_MAX + 1], int *failed)
{
    const cli_cmd_t  *c = cli_cmd_find(a->argv[0]);
    char              cwd[PATH_MAX];
    int               i;

    if (c == NULL) {
        return 0;
    }
    for (i = 1; i < a->argc && i < TS_CLI_ARGS_MAX_N && i < 16; i++) {
        if (!(c->flags & CLI_CMD_PATH(i)) || a->argv[i][0] == '/'
            || a->argv[i][0] == '\0')
        {
            continue;
        }
        if (getcwd(cwd, sizeof(cwd)) == NULL
            || snprintf(abs[i], PATH_MAX + 1, "%s/%s", cwd, a->argv[i])
               > PATH_MAX)
        {
            (void) cli_out_fail(CLI_EXIT_USAGE, "path too long: %s",
                                a->argv[i]);
            *failed = CLI_EXIT_USAGE;
            return -1;
        }
        a->argv[i] = abs[i];
    }
    return 0;
}


/* The piped session's downloads end before it does (when logged in). */
static int
cli_front_wait(void)
{
    static char    *argv[2] = { "wait", NULL };
    cli_ctl_msg_t   m;
    json_t         *st, *user;
    int             cls = CLI_EXIT_OK, logged;

    st = cli_front_quiet("status");
    user = st != NULL ? json_object_get(st, "user") : NULL;
    logged = json_is_string(user);
    json_decref(st);
    if (!logged) {
        return CLI_EXIT_OK;
    }
    if (cli_front_call(1, argv, -1, 1, &m, &cls) != 0) {
        return cls;
    }
    /* with --json a wait that had nothing to wait for prints nothing */
    if (fr_o->json && m.ok && json_array_size(m.lines) == 0) {
        cli_ctl_msg_free(&m);
        return CLI_EXIT_OK;
    }
    cls = cli_front_print(&m);
    cli_ctl_msg_free(&m);
    return cls;
}


static int
cli_front_exec(cli_ctx_t *ctx, const char *line)
{
    static char    abs[TS_CLI_ARGS_MAX_N][PATH_MAX + 1];
    cli_args_t     a;
    cli_ctl_msg_t  m;
    char           err[128];
    int            cls = CLI_EXIT_OK;

    if (cli_parse_line(line, &a, err, sizeof(err)) != 0) {
        (void) cli_out_fail(CLI_EXIT_USAGE, "%s", err);
        return CLI_EXIT_USAGE;
    }
    if (a.argc == 0) {
        return CLI_EXIT_OK;
    }
    if (strcmp(a.argv[0], "exit") == 0 || strcmp(a.argv[0], "quit") == 0) {
        if (a.argc > 1) {
            printf("usage: %s\n", a.argv[0]);
            return CLI_EXIT_USAGE;
        }
        /* a script's downloads end before the node it started does */
        if (!fr_tty && fr_o->started && !fr_o->keep_running) {
            cls = cli_front_wait();
        }
        ctx->want_exit = 1;
        return cls;
    }
    /* an unknown command is told here, as the node would ("did you
     * mean ...", from the same table) */
    if (!fr_o->json && cli_cmd_find(a.argv[0]) == NULL) {
        cli_out_class_reset();
        (void) cli_cmd_run(ctx, a.argc, a.argv);
        return cli_out_class() != CLI_EXIT_OK ? cli_out_class()
                                              : CLI_EXIT_USAGE;
    }
    if (cli_front_paths(&a, abs, &cls) != 0) {
        return cls;
    }
    if (cli_front_call(a.argc, a.argv, TS_CLI_CTL_CMD_WAIT_MS, 0, &m, &cls)
        != 0)
    {
        if (fr_gone) {
            ctx->want_exit = 1;
        }
        return cls;
    }
    cls = cli_front_print(&m);
    cli_ctl_msg_free(&m);
    return cls;
}


static int
cli_front_user(char *buf, size_t bufsz)
{
    json_t  *st, *user;
    int      in = 0;

    if (fr_link.fd < 0) {
        return 0;
    }
    st = cli_front_quiet("status");
    user = st != NULL ? json_object_get(st, "user") : NULL;
    if (json_is_string(user)) {
        snprintf(buf, bufsz, "%s", json_string_value(user));
        in = 1;
    }
    json_decref(st);
    return in;
}


static int
cli_front_async_fd(void)
{
    return fr_link.fd;
}


static int
cli_front_async(void)
{
    return cli_ctl_cli_pending(&fr_link, cli_front_event);
}


/* Downloads that failed on the node since status `base` was read. */
static int
cli_front_failures(json_t *base)
{
    json_t      *now = cli_front_quiet("status");
    json_int_t   was, is;
    int          cls = CLI_EXIT_OK;

    if (base != NULL && now != NULL) {
        was = json_integer_value(json_object_get(base, "failures"));
        is = json_integer_value(json_object_get(now, "failures"));
        if (is > was) {
            cls = (int) json_integer_value(json_object_get(now,
                                                           "fail_class"));
            if (cls == CLI_EXIT_OK) {
                cls = CLI_EXIT_FAILURE;
            }
        }
    }
    json_decref(now);
    return cls;
}


int
cli_front_run(const cli_front_opts_t *o, int *stop_node)
{
    cli_loop_hooks_t  h;
    cli_ctx_t         ctx;
    json_t           *base;
    int               failed, cls;

    fr_o = o;
    fr_tty = isatty(STDIN_FILENO);
    *stop_node = 0;
    if (cli_ctl_cli_open(&fr_link, o->state_dir, TS_CLI_ATTACH_WAIT_MS,
                         o->alive) != 0)
    {
        cli_out_eline("client: no node answers on %s/control.sock: %s",
                      o->state_dir, strerror(errno));
        *stop_node = o->started;
        return CLI_EXIT_NODE;
    }
    base = cli_front_quiet("status");

    memset(&h, 0, sizeof(h));
    h.exec = cli_front_exec;
    h.user = cli_front_user;
    h.async_fd = cli_front_async_fd;
    h.async = cli_front_async;
    cli_loop_set_hooks(&h);
    memset(&ctx, 0, sizeof(ctx));
    ctx.tty = fr_tty;
    ctx.state_dir = o->state_dir;

    if (fr_tty) {
        (void) cli_loop_tty(&ctx, o->history);
        failed = CLI_EXIT_OK;
        ctx.want_exit = 1;              /* Ctrl-D is exit */
    } else {
        failed = cli_loop_plain(&ctx);
    }
    fflush(stdout);
    if (!fr_gone && !cli_loop_stop_requested() && fr_link.fd >= 0) {
        /* end of a script: its downloads finish first (exit waited) */
        if (!fr_tty && !ctx.want_exit) {
            cls = cli_front_wait();
            if (cls != CLI_EXIT_OK) {
                failed = cls;
            }
        }
        if (failed == CLI_EXIT_OK) {
            failed = cli_front_failures(base);
        }
    }
    json_decref(base);
    if (o->started && o->keep_running && !ctx.want_exit && !fr_gone
        && !cli_loop_stop_requested())
    {
        cli_loop_keep_running(o->alive);
    }
    /* exit with --keep-running detaches; anything else ends the node
     * this CLI started (a full logout first unless a signal says quick) */
    if (o->started && !(o->keep_running && ctx.want_exit && !fr_gone)) {
        if (!fr_gone && !cli_loop_stop_requested() && fr_link.fd >= 0) {
            json_decref(cli_front_quiet("shutdown"));
        }
        *stop_node = 1;
    }
    cli_ctl_cli_close(&fr_link);
    if (fr_gone && failed == CLI_EXIT_OK) {
        failed = CLI_EXIT_NODE;
    }
    return failed;
}
