/*
 * cli_cmds.c -- the registry and the account/group commands of the
 * client (see cli_cmds.h for the rules every command follows).
 *
 * Each command encodes its request with ts_buf in the field order of
 * common/ts_proto.h, sends it through cli_rpc (failover and request-id
 * reuse live there), decodes the reply body with cli_reply.h (checked to
 * the last byte, counts against the bytes left before anything is
 * allocated, ids validated) and prints the contract's text.
 *
 * Locking: commands run one at a time (cli_cmd_run holds a mutex: the
 * terminal and control requests); the session has its own lock.
 * Crash behaviour: nothing persistent here; a tracker crash is handled
 * by cli_rpc's failover.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "ts_esc.h"
#include "ts_log.h"
#include "ts_proto.h"
#include "cli_cmds.h"
#include "cli_rpc.h"
#include "cli_session.h"
#include "cli_agent.h"
#include "cli_reply.h"
#include "cli_steer.h"
#include "cli_rate.h"

static const cli_cmd_t  *cli_tables[TS_CLI_TABLES_MAX_N];
static int               cli_ntables;


int
cli_cmds_register(const cli_cmd_t *table)
{
    int  i;

    for (i = 0; i < cli_ntables; i++) {
        if (cli_tables[i] == table) {
            return 0;
        }
    }
    if (cli_ntables == TS_CLI_TABLES_MAX_N) {
        return -1;
    }
    cli_tables[cli_ntables++] = table;
    return 0;
}


const cli_cmd_t *
cli_cmd_find(const char *name)
{
    const cli_cmd_t  *c;
    int               i;

    for (i = 0; i < cli_ntables; i++) {
        for (c = cli_tables[i]; c->name != NULL; c++) {
            if (strcmp(c->name, name) == 0) {
                return c;
            }
        }
    }
    return NULL;
}


const char *
cli_cmd_name_at(int n)
{
    const cli_cmd_t  *c;
    int               i;

    for (i = 0; i < cli_ntables; i++) {
        for (c = cli_tables[i]; c->name != NULL; c++) {
            if (n-- == 0) {
                return c->name;
            }
        }
    }
    return NULL;
}


/* The edit distance (insertions, deletions, substitutions, and swaps of
 * two neighbours) of a and b, capped at 9; names are short. */
static int
cli_cmd_distance(const char *a, const char *b)
{
    int     d[TS_CLI_CTL_CMD_MAX_B + 2][TS_CLI_CTL_CMD_MAX_B + 2];
    size_t  la = strlen(a), lb = strlen(b), i, j;
    int     v;

    if (la > TS_CLI_CTL_CMD_MAX_B || lb > TS_CLI_CTL_CMD_MAX_B) {
        return 9;
    }
    for (i = 0; i <= la; i++) {
        d[i][0] = (int) i;
    }
    for (j = 0; j <= lb; j++) {
        d[0][j] = (int) j;
    }
    for (i = 1; i <= la; i++) {
        for (j = 1; j <= lb; j++) {
            v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            v = d[i - 1][j] + 1 < v ? d[i - 1][j] + 1 : v;
            v = d[i][j - 1] + 1 < v ? d[i][j - 1] + 1 : v;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2]
                && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
            {
                v = d[i - 2][j - 2] + 1;
            }
            d[i][j] = v;
        }
    }
    return d[la][lb] > 9 ? 9 : d[la][lb];
}


/* The command closest to a mistyped name (at most 2 edits, and fewer
 * than a third of its letters), or NULL. */
static const char *
cli_cmd_suggest(const char *name)
{
    const cli_cmd_t  *c;
    const char       *best = NULL;
    int               i, dist, bestd = 3;

    for (i = 0; i < cli_ntables; i++) {
        for (c = cli_tables[i]; c->name != NULL; c++) {
            dist = cli_cmd_distance(name, c->name);
            if (dist < bestd && dist * 3 < (int) strlen(c->name)) {
                bestd = dist;
                best = c->name;
            }
        }
    }
    return best;
}


/* Held while a command runs: commands were written for one thread, and
 * control requests (cli_ctl_srv.c) run on their connection's thread. */
static pthread_mutex_t  cli_cmd_lock = PTHREAD_MUTEX_INITIALIZER;


int
cli_cmd_run(cli_ctx_t *ctx, int argc, char **argv)
{
    const cli_cmd_t  *c;
    int               r, nargs, locked;

    if (argc < 1) {
        return 0;
    }
    /* one command at a time (the control socket's connections), except
     * those marked CLI_CMD_NOLOCK */
    c = cli_cmd_find(argv[0]);
    locked = c == NULL || !(c->flags & CLI_CMD_NOLOCK);
    if (locked) {
        pthread_mutex_lock(&cli_cmd_lock);
    }
    if (c == NULL) {
        const char  *near = cli_cmd_suggest(argv[0]);

        if (near != NULL) {
            r = cli_out_fail(CLI_EXIT_USAGE, "unknown command '%s' (did you "
                             "mean %s?)", argv[0], near);
        } else {
            r = cli_out_fail(CLI_EXIT_USAGE, "unknown command '%s' (try "
                             "help)", argv[0]);
        }
    } else {
        nargs = argc - 1;
        if (nargs < c->min_args || nargs > c->max_args) {
            cli_out_line("usage: %s%s%s", c->name, c->args[0] ? " " : "",
                         c->args);
            cli_out_class_set(CLI_EXIT_USAGE);
            r = -1;
        } else if ((c->flags & CLI_CMD_LOGIN)
                   && !cli_session_get(ctx->sess, NULL, 0, NULL))
        {
            r = cli_out_fail(CLI_EXIT_DENIED, "not logged in");
        } else {
            r = c->run(ctx, argc, argv);
        }
    }
    if (locked) {
        pthread_mutex_unlock(&cli_cmd_lock);
    }
    fflush(stdout);
    return r;
}


int
cli_begin_authed(cli_ctx_t *ctx, ts_wbuf_t *req, uint8_t *tok)
{
    uint8_t  t[TS_TOKEN_B];

    ts_wbuf_init(req);
    if (!cli_session_get(ctx->sess, NULL, 0, t)) {
        return cli_out_fail(CLI_EXIT_DENIED, "not logged in");
    }
    ts_put_raw(req, t, TS_TOKEN_B);
    if (tok != NULL) {
        memcpy(tok, t, TS_TOKEN_B);
    }
    return 0;
}


int
cli_status_class(uint8_t status)
{
    switch (status) {
    case TS_ERR_BADREQ:   return CLI_EXIT_USAGE;
    case TS_ERR_AUTH:     return CLI_EXIT_DENIED;
    case TS_ERR_PERM:     return CLI_EXIT_DENIED;
    case TS_ERR_EXISTS:   return CLI_EXIT_EXISTS;
    case TS_ERR_STATE:    return CLI_EXIT_EXISTS;     /* already member... */
    case TS_ERR_NOTFOUND: return CLI_EXIT_NOT_FOUND;
    case TS_ERR_LIMIT:    return CLI_EXIT_LIMIT;
    case TS_ERR_BUSY:     return CLI_EXIT_LIMIT;
    case TS_ERR_CONFLICT: return CLI_EXIT_CONFLICT;
    default:              return CLI_EXIT_FAILURE;
    }
}


int
cli_request(cli_ctx_t *ctx, uint8_t type, ts_wbuf_t *req,
            const uint8_t *tok, cli_reply_t *rep)
{
    if (req->err) {
        memset(rep, 0, sizeof(*rep));
        return cli_out_fail(CLI_EXIT_USAGE, "argument too long");
    }
    if (req->len > TS_FRAME_MAX_B) {
        memset(rep, 0, sizeof(*rep));
        return cli_out_error("request too large");
    }
    if (cli_rpc_call(ctx->rpc, type, req->data, (uint32_t) req->len, rep)
        != 0)
    {
        /* no tracker answered (cli_rpc.c tried each) */
        cli_out_fail(CLI_EXIT_NETWORK, "%s", rep->msg);
        cli_reply_free(rep);
        return -1;
    }
    if (rep->status != TS_OK) {
        if (rep->status == TS_ERR_AUTH && tok != NULL) {
            cli_session_lost(ctx->sess, tok);
        }
        cli_out_fail(cli_status_class(rep->status), "%s",
                     rep->msg[0] ? rep->msg : ts_status_name(rep->status));
        cli_reply_free(rep);
        return -1;
    }
    return 0;
}


/* A reply body cli_reply.h refused (errno says why): freed, then the
 * error line. */
static int
cli_bad_body(cli_reply_t *rep)
{
    int  e = errno;

    cli_reply_free(rep);
    return cli_out_error(e == ENOMEM ? "out of memory"
                                     : "malformed reply from tracker");
}


/* An OK reply with an empty body: freed; 0, or -1 after the error line. */
static int
cli_body_end(cli_reply_t *rep)
{
    if (cli_reply_empty(&rep->body) != 0) {
        return cli_bad_body(rep);
    }
    cli_reply_free(rep);
    return 0;
}


/* A request with the token and n string fields; OK body empty. */
static int
cli_simple_authed(cli_ctx_t *ctx, uint8_t type, int n, char **strs)
{
    ts_wbuf_t    req;
    cli_reply_t  rep;
    uint8_t      tok[TS_TOKEN_B];
    int          i, r;

    if (cli_begin_authed(ctx, &req, tok) != 0) {
        ts_wbuf_free(&req);
        return -1;
    }
    for (i = 0; i < n; i++) {
        ts_put_str(&req, strs[i]);
    }
    r = cli_request(ctx, type, &req, tok, &rep);
    ts_wbuf_free(&req);
    if (r != 0) {
        return -1;
    }
    return cli_body_end(&rep);
}


/* ---- accounts ---------------------------------------------------------- */

/* 0 if id may name a new user or group; else one error line, -1.  The
 * tracker applies the same rule; refusing here spares the round trip
 * and shows the id as typed (escaped). */
static int
cli_check_new_id(const char *what, const char *id)
{
    char  esc[TS_ESC_MAX_B(TS_ID_MAX_B + 1)];

    if (ts_valid_id(id)) {
        return 0;
    }
    /* an id too long to be valid is shown cut after TS_ID_MAX_B + 1 bytes */
    (void) ts_esc(esc, sizeof(esc), id, strnlen(id, TS_ID_MAX_B + 1),
                  TS_ESC_BSLASH);
    return cli_out_fail(CLI_EXIT_USAGE, "invalid %s id '%s' (%s)", what, esc,
                        TS_ID_RULE);
}


static int
cli_cmd_create_user(cli_ctx_t *ctx, int argc, char **argv)
{
    ts_wbuf_t    req;
    cli_reply_t  rep;
    int          r;

    if (cli_check_new_id("user", argv[1]) != 0) {
        return -1;
    }
    ts_wbuf_init(&req);
    ts_put_str(&req, argv[1]);
    ts_put_str(&req, argv[2]);
    r = cli_request(ctx, TS_MSG_CREATE_USER, &req, NULL, &rep);
    ts_wbuf_free(&req);
    if (r != 0 || cli_body_end(&rep) != 0) {
        return -1;
    }
    cli_out_line("user %s created", argv[1]);
    return 0;
}


static void
cli_logout_rpc(cli_ctx_t *ctx, const uint8_t tok[TS_TOKEN_B], int attempts,
               int timeout_ms)
{
    cli_reply_t  rep;

    if (cli_rpc_call_ex(ctx->rpc, TS_MSG_LOGOUT, tok, TS_TOKEN_B, &rep,
                        attempts, timeout_ms) != 0)
    {
        ts_warn("logout not confirmed by a tracker: %s", rep.msg);
    }
    cli_reply_free(&rep);
}


static int
cli_cmd_login(cli_ctx_t *ctx, int argc, char **argv)
{
    ts_wbuf_t    req;
    cli_reply_t  rep;
    uint8_t      tok[TS_TOKEN_B];
    uint32_t     hb_ms;
    int          r;

    /* a new login replaces the old session: log that one out first */
    if (cli_session_get(ctx->sess, NULL, 0, tok)) {
        if (cli_agent_ready()) {
            cli_agent_logout();
        }
        cli_session_end(ctx->sess);
        cli_logout_rpc(ctx, tok, TS_RPC_ATTEMPTS_N, 0);
    }

    ts_wbuf_init(&req);
    ts_put_str(&req, argv[1]);
    ts_put_str(&req, argv[2]);
    ts_put_str(&req, ctx->node_addr);
    r = cli_request(ctx, TS_MSG_LOGIN, &req, NULL, &rep);
    ts_wbuf_free(&req);
    if (r != 0) {
        return -1;
    }
    /* token, then (optional) the heartbeat period the tracker asks for */
    if (cli_reply_login(&rep.body, tok, &hb_ms) != 0) {
        return cli_bad_body(&rep);
    }
    cli_reply_free(&rep);
    if (hb_ms >= TS_CLI_HB_MIN_MS && hb_ms <= TS_CLI_HB_MAX_MS) {
        pthread_mutex_lock(&ctx->sess->mu);
        ctx->sess->heartbeat_ms = (int) hb_ms;
        pthread_mutex_unlock(&ctx->sess->mu);
    }
    if (cli_session_start(ctx->sess, argv[1], tok,
                          cli_rpc_current(ctx->rpc)) != 0)
    {
        ts_warn("no heartbeat thread; the session will expire");
    }
    /* this user's shares and downloads on this node (re)start */
    if (cli_agent_ready()) {
        cli_agent_login(argv[1]);
    }
    cli_out_line("logged in as %s", argv[1]);
    return 0;
}


static int
cli_cmd_logout(cli_ctx_t *ctx, int argc, char **argv)
{
    ts_wbuf_t    req;
    cli_reply_t  rep;
    uint8_t      tok[TS_TOKEN_B];
    int          r;

    if (cli_begin_authed(ctx, &req, tok) != 0) {
        ts_wbuf_free(&req);
        return -1;
    }
    /* sharing and downloads pause, then the local session ends whatever
     * the tracker says */
    if (cli_agent_ready()) {
        cli_agent_logout();
    }
    cli_session_end(ctx->sess);
    r = cli_rpc_call(ctx->rpc, TS_MSG_LOGOUT, req.data, (uint32_t) req.len,
                     &rep);
    ts_wbuf_free(&req);
    if (r != 0) {
        cli_out_fail(CLI_EXIT_NETWORK, "%s", rep.msg);
        cli_reply_free(&rep);
        return -1;
    }
    /* TS_ERR_AUTH: the session had already expired; we are logged out */
    if (rep.status != TS_OK && rep.status != TS_ERR_AUTH) {
        cli_out_fail(cli_status_class(rep.status), "%s",
                     rep.msg[0] ? rep.msg : ts_status_name(rep.status));
        cli_reply_free(&rep);
        return -1;
    }
    cli_reply_free(&rep);
    cli_out_line("logged out");
    return 0;
}


void
cli_cmds_logout_quietly(cli_ctx_t *ctx, int quick)
{
    uint8_t  tok[TS_TOKEN_B];

    if (!cli_session_get(ctx->sess, NULL, 0, tok)) {
        return;
    }
    if (cli_agent_ready()) {
        cli_agent_logout();
    }
    cli_session_end(ctx->sess);
    if (quick) {
        cli_logout_rpc(ctx, tok, 1, TS_CLI_QUICK_LOGOUT_MS);
    } else {
        cli_logout_rpc(ctx, tok, ctx->rpc->trk.n > 0 ? ctx->rpc->trk.n : 1,
                       0);
    }
}


static int
cli_cmd_exit(cli_ctx_t *ctx, int argc, char **argv)
{
    /* a script's downloads end before its session does */
    if (!ctx->tty && cli_agent_ready()
        && cli_session_get(ctx->sess, NULL, 0, NULL))
    {
        cli_agent_wait_downloads();
    }
    cli_cmds_logout_quietly(ctx, 0);
    ctx->want_exit = 1;
    return 0;
}


/* ---- groups ------------------------------------------------------------ */

static int
cli_cmd_create_group(cli_ctx_t *ctx, int argc, char **argv)
{
    if (cli_check_new_id("group", argv[1]) != 0) {
        return -1;
    }
    if (cli_simple_authed(ctx, TS_MSG_CREATE_GROUP, 1, &argv[1]) != 0) {
        return -1;
    }
    cli_out_line("group %s created", argv[1]);
    return 0;
}


static int
cli_cmd_join_group(cli_ctx_t *ctx, int argc, char **argv)
{
    if (cli_simple_authed(ctx, TS_MSG_JOIN_GROUP, 1, &argv[1]) != 0) {
        return -1;
    }
    cli_out_line("join request sent to %s", argv[1]);
    return 0;
}


static int
cli_cmd_leave_group(cli_ctx_t *ctx, int argc, char **argv)
{
    ts_wbuf_t    req;
    cli_reply_t  rep;
    uint8_t      tok[TS_TOKEN_B];
    char         owner[TS_ID_MAX_B + 1];
    int          r;

    if (cli_begin_authed(ctx, &req, tok) != 0) {
        ts_wbuf_free(&req);
        return -1;
    }
    ts_put_str(&req, argv[1]);
    r = cli_request(ctx, TS_MSG_LEAVE_GROUP, &req, tok, &rep);
    ts_wbuf_free(&req);
    if (r != 0) {
        return -1;
    }
    if (cli_reply_leave_group(&rep.body, owner) != 0) {
        return cli_bad_body(&rep);
    }
    cli_reply_free(&rep);
    if (owner[0] == '\0') {
        cli_out_line("left %s", argv[1]);
    } else if (strcmp(owner, "-") == 0) {
        cli_out_line("left %s; group dissolved", argv[1]);
    } else {
        cli_out_line("left %s; %s is now the owner", argv[1], owner);
    }
    return 0;
}


static int
cli_cmd_list_requests(cli_ctx_t *ctx, int argc, char **argv)
{
    ts_wbuf_t          req;
    cli_reply_t        rep;
    uint8_t            tok[TS_TOKEN_B];
    cli_reply_user_t  *users;
    uint32_t           n, i;
    int                r;

    if (cli_begin_authed(ctx, &req, tok) != 0) {
        ts_wbuf_free(&req);
        return -1;
    }
    ts_put_str(&req, argv[1]);
    r = cli_request(ctx, TS_MSG_LIST_REQUESTS, &req, tok, &rep);
    ts_wbuf_free(&req);
    if (r != 0) {
        return -1;
    }
    if (cli_reply_list_requests(&rep.body, &users, &n) != 0) {
        return cli_bad_body(&rep);
    }
    cli_reply_free(&rep);
    cli_out_json_list();
    for (i = 0; i < n; i++) {
        cli_out_json_row(json_pack("{s:o}", "user",
                                   cli_out_json_text(users[i].user)));
        cli_out_line("%s", users[i].user);
    }
    if (n == 0) {
        cli_out_empty(ctx);
    }
    free(users);
    return 0;
}


static int
cli_cmd_accept_request(cli_ctx_t *ctx, int argc, char **argv)
{
    if (cli_simple_authed(ctx, TS_MSG_ACCEPT_REQUEST, 2, &argv[1]) != 0) {
        return -1;
    }
    cli_out_line("%s accepted into %s", argv[2], argv[1]);
    return 0;
}


static int
cli_cmd_reject_request(cli_ctx_t *ctx, int argc, char **argv)
{
    if (cli_simple_authed(ctx, TS_MSG_REJECT_REQUEST, 2, &argv[1]) != 0) {
        return -1;
    }
    cli_out_line("request of %s to join %s rejected", argv[2],
                 argv[1]);
    return 0;
}


static int
cli_group_cmp(const void *a, const void *b)
{
    const cli_reply_group_t  *x = a, *y = b;

    return strcmp(x->group, y->group);
}


static int
cli_list_groups(cli_ctx_t *ctx, uint8_t type)
{
    ts_wbuf_t           req;
    cli_reply_t         rep;
    uint8_t             tok[TS_TOKEN_B];
    cli_reply_group_t  *rows;
    uint32_t            n, i;
    int                 r;

    if (cli_begin_authed(ctx, &req, tok) != 0) {
        ts_wbuf_free(&req);
        return -1;
    }
    r = cli_request(ctx, type, &req, tok, &rep);
    ts_wbuf_free(&req);
    if (r != 0) {
        return -1;
    }
    if (cli_reply_list_groups(&rep.body, &rows, &n) != 0) {
        return cli_bad_body(&rep);
    }
    cli_reply_free(&rep);

    if (n > 1) {
        qsort(rows, n, sizeof(*rows), cli_group_cmp);
    }
    cli_out_json_list();
    for (i = 0; i < n; i++) {
        cli_out_json_row(json_pack("{s:o, s:o, s:i}",
                                   "group", cli_out_json_text(rows[i].group),
                                   "owner", cli_out_json_text(rows[i].owner),
                                   "members", (int) rows[i].members));
        cli_out_line("%s owner=%s members=%u", rows[i].group, rows[i].owner,
                     (unsigned) rows[i].members);
    }
    if (n == 0) {
        cli_out_empty(ctx);
    }
    free(rows);
    return 0;
}


static int
cli_cmd_list_groups(cli_ctx_t *ctx, int argc, char **argv)
{
    return cli_list_groups(ctx, TS_MSG_LIST_GROUPS);
}


static int
cli_cmd_list_my_groups(cli_ctx_t *ctx, int argc, char **argv)
{
    return cli_list_groups(ctx, TS_MSG_LIST_MY_GROUPS);
}


/* ---- help -------------------------------------------------------------- */

static int
cli_cmd_help(cli_ctx_t *ctx, int argc, char **argv)
{
    const cli_cmd_t  *c;
    char              col[160];
    int               i, w, len;

    w = 0;
    for (i = 0; i < cli_ntables; i++) {
        for (c = cli_tables[i]; c->name != NULL; c++) {
            len = snprintf(col, sizeof(col), "%s %s", c->name, c->args);
            if (len > w) {
                w = len;
            }
        }
    }
    if (w > 60) {
        w = 60;
    }

    cli_out_line("%-*s  %s", w, "command", "description");
    for (i = 0; i < cli_ntables; i++) {
        for (c = cli_tables[i]; c->name != NULL; c++) {
            snprintf(col, sizeof(col), "%s%s%s", c->name,
                     c->args[0] ? " " : "", c->args);
            cli_out_line("%-*s  %s", w, col, c->help);
        }
    }
    return 0;
}


const cli_cmd_t  cli_cmds_core[] = {
    { "create_user", "<user_id> <passwd>", 2, 2, 0, cli_cmd_create_user,
      "create an account" },
    { "login", "<user_id> <passwd>", 2, 2, 0, cli_cmd_login,
      "log in (replaces any current session)" },
    { "logout", "", 0, 0, CLI_CMD_LOGIN, cli_cmd_logout,
      "end the session" },
    { "create_group", "<group_id>", 1, 1, CLI_CMD_LOGIN,
      cli_cmd_create_group, "create a group; you become its owner" },
    { "join_group", "<group_id>", 1, 1, CLI_CMD_LOGIN, cli_cmd_join_group,
      "ask the owner of a group to let you in" },
    { "leave_group", "<group_id>", 1, 1, CLI_CMD_LOGIN, cli_cmd_leave_group,
      "leave a group (an owner hands over to the next member)" },
    { "list_requests", "<group_id>", 1, 1, CLI_CMD_LOGIN,
      cli_cmd_list_requests, "pending join requests (owner only)" },
    { "accept_request", "<group_id> <user_id>", 2, 2, CLI_CMD_LOGIN,
      cli_cmd_accept_request, "let a user into your group" },
    { "reject_request", "<group_id> <user_id>", 2, 2, CLI_CMD_LOGIN,
      cli_cmd_reject_request, "turn down a join request" },
    { "list_groups", "", 0, 0, CLI_CMD_LOGIN, cli_cmd_list_groups,
      "every group: owner and member count" },
    { "list_my_groups", "", 0, 0, CLI_CMD_LOGIN, cli_cmd_list_my_groups,
      "the groups you are a member of" },
    { "help", "", 0, 0, 0, cli_cmd_help, "this table" },
    { "exit", "", 0, 0, 0, cli_cmd_exit,
      "log out if logged in and quit" },
    { "cancel", "<group_id> <file_name>", 2, 2, CLI_CMD_LOGIN,
      cli_cmd_cancel, "stop a download; its record and .part go" },
    { "pause", "<group_id> <file_name>", 2, 2, CLI_CMD_LOGIN, cli_cmd_pause,
      "fetch no new chunk of a download (resume continues it)" },
    { "resume", "<group_id> <file_name>", 2, 2, CLI_CMD_LOGIN,
      cli_cmd_resume, "continue a paused download" },
    { "retry", "<group_id> <file_name>", 2, 2, CLI_CMD_LOGIN, cli_cmd_retry,
      "restart a failed download from its verified chunks" },
    { "download_info", "<group_id> <file_name>", 2, 2, 0,
      cli_cmd_download_info, "a download's sources: chunks, rate, load" },
    { "peers", "<group_id> <file_name>", 2, 2, 0, cli_cmd_download_info,
      "the same as download_info" },
    { "rate", "[up RATE] [down RATE]", 0, 4, 0, cli_cmd_rate,
      "show or set the node's bandwidth caps (0 = unlimited; K, M, G)" },
    { NULL, NULL, 0, 0, 0, NULL, NULL }
};
