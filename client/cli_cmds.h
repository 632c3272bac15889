/*
 * cli_cmds.h -- the client's command registry and helpers for files
 * that add commands.
 *
 * Each command file exports a table of cli_cmd_t ending with a
 * {NULL} entry (cli_cmds_core[] here; cli_files.c adds its own) and
 * cli_main.c registers every table at start, so adding commands never
 * means editing a switch.  cli_cmd_run() checks the argument count
 * (printing "usage: ...") and the login requirement before calling a
 * command.
 *
 * Output rules: cli_out.h.  The context (cli_ctx_t): cli_ctx.h.
 *
 * Locking: commands run on the main thread only; the session they use is
 * itself locked (cli_session.h).  Crash behaviour: nothing persistent.
 */
#ifndef CLI_CMDS_H_INCLUDED
#define CLI_CMDS_H_INCLUDED

#include <stdint.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "ts_tls.h"
#include "cli_rpc.h"
#include "cli_session.h"
#include "cli_ctx.h"
#include "cli_out.h"


/* 0 = success, -1 = failure (the error line is already printed). */
typedef int (*cli_cmd_pt)(cli_ctx_t *ctx, int argc, char **argv);

#define CLI_CMD_LOGIN   0x01    /* needs a login */
#define CLI_CMD_NOLOCK  0x02    /* runs beside other commands (it takes
                                   only the agent's own locks) */
/* argv[i] is a path on the CLI's side, made absolute before the line
 * goes to the node's agent (which may run in another directory) */
#define CLI_CMD_PATH(i) (0x100u << (i))

typedef struct {
    const char  *name;
    const char  *args;          /* "<group_id> <user_id>", "" for none */
    int          min_args;      /* not counting the command name */
    int          max_args;
    unsigned     flags;         /* CLI_CMD_* */
    cli_cmd_pt   run;
    const char  *help;          /* one line */
} cli_cmd_t;

extern const cli_cmd_t  cli_cmds_core[];

/* Adds a {NULL}-terminated table.  0, or -1 when the registry is full. */
int              cli_cmds_register(const cli_cmd_t *table);
const cli_cmd_t *cli_cmd_find(const char *name);
/* The name of the nth registered command (0-based), NULL past the last:
 * for tab completion. */
const char      *cli_cmd_name_at(int n);
/* Runs argv[0] with usage/login checks; 0 or -1.  Flushes stdout. */
int              cli_cmd_run(cli_ctx_t *ctx, int argc, char **argv);
/* Best-effort logout on the way out (exit, EOF, SIGTERM): a single try
 * with a short timeout when quick is set. */
void             cli_cmds_logout_quietly(cli_ctx_t *ctx, int quick);

/* ---- helpers for command implementations ----------------------------- */
/* Starts a request that needs the session: puts the token; -1 (after
 * printing "error: not logged in") if there is none. tok gets a copy. */
int  cli_begin_authed(cli_ctx_t *ctx, ts_wbuf_t *req, uint8_t *tok);
/* Sends req as type; returns 0 on a TS_OK reply (rep to be freed by the
 * caller), else prints the error line, frees rep and returns -1.  tok
 * (may be NULL) is the token the request carried: a TS_ERR_AUTH answer
 * then also ends the local session. */
int  cli_request(cli_ctx_t *ctx, uint8_t type, ts_wbuf_t *req,
                 const uint8_t *tok, cli_reply_t *rep);
/* The failure class (cli_exit.h) of a tracker's error status: BADREQ
 * usage, AUTH/PERM denied, EXISTS/STATE exists, NOTFOUND not found,
 * LIMIT/BUSY limit, CONFLICT conflict, the rest failure. */
int  cli_status_class(uint8_t status);

#endif
