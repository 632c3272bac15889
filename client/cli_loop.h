/*
 * cli_loop.h -- the client's command loop and its signals (cli_loop.c).
 *
 * Locking: main thread only.  Crash behaviour: cli_loop.c.
 */
#ifndef CLI_LOOP_H_INCLUDED
#define CLI_LOOP_H_INCLUDED

#include <stddef.h>
#include <stdio.h>

#include "cli_ctx.h"

/* What the loop does with a line and how it learns the prompt: the CLI
 * sends lines to the node's agent (cli_front.c). */
typedef struct {
    /* Runs one line; the class (cli_exit.h) of its failure, or
     * CLI_EXIT_OK.  Sets ctx->want_exit for exit. */
    int   (*exec)(cli_ctx_t *ctx, const char *line);
    /* The user logged in on the node, for the prompt: 1, or 0. */
    int   (*user)(char *buf, size_t bufsz);
    /* Readable while the prompt waits: async() prints what came (above
     * the prompt) and returns 0, or -1 when fd is done with. */
    int   (*async_fd)(void);
    int   (*async)(void);
} cli_loop_hooks_t;

void cli_loop_set_hooks(const cli_loop_hooks_t *h);
/* Prints a line above the prompt being edited and redraws the prompt
 * (at a terminal inside cli_loop_tty; elsewhere just the line). */
void cli_loop_print_above(FILE *f, const char *line);

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
/* --keep-running: serve until a signal comes or alive() says the node
 * is gone. */
void cli_loop_keep_running(int (*alive)(void));

#endif
