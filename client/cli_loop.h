/*
 * cli_loop.h -- the client's command loop and its signals (cli_loop.c).
 *
 * Locking: main thread only.  Crash behaviour: cli_loop.c.
 */
#ifndef CLI_LOOP_H_INCLUDED
#define CLI_LOOP_H_INCLUDED

#include "cli_ctx.h"

/* SIGINT/SIGTERM/SIGHUP handlers and their self-pipe; SIGPIPE ignored.
 * 0, or -1. */
int  cli_loop_signals_init(void);
/* Piped input: runs every line until EOF, exit or a signal.  The class
 * (cli_exit.h) of the last command that failed (or of a line too long),
 * else CLI_EXIT_OK. */
int  cli_loop_plain(cli_ctx_t *ctx);
/* A terminal: the prompt (user@tessera>), libedit with the history file
 * (lines with passwords are kept out of it).  Returns 0. */
int  cli_loop_tty(cli_ctx_t *ctx, const char *history);
/* 1 once SIGTERM/SIGINT/SIGHUP asked the client to stop (for the agent
 * and for the quick logout on the way out). */
int  cli_loop_stop_requested(void);
/* --keep-running: serve until a signal comes (or the node stops). */
void cli_loop_keep_running(void);

#endif
