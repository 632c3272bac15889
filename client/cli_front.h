/*
 * cli_front.h -- the CLI as a client of its node: every command line
 * goes to the node's agent through <state>/control.sock and its reply is
 * printed here (results on stdout, "error: ..." on stderr, or with
 * --json the reply object as one line).  The prompt, its history and
 * completion, Ctrl-C and the end of input are handled here.
 *
 * Locking: main thread only.  Crash behaviour: nothing persistent; a
 * CLI killed while attached leaves the node as it was.
 */
#ifndef CLI_FRONT_H_INCLUDED
#define CLI_FRONT_H_INCLUDED

typedef struct {
    const char  *state_dir;
    const char  *history;       /* NULL: no history file */
    int          json;          /* --json */
    int          started;       /* this CLI started the node */
    int          keep_running;  /* --keep-running */
    int        (*alive)(void);  /* 1 while the node runs */
} cli_front_opts_t;

/* The whole session.  Returns the exit status (cli_exit.h); *stop_node
 * is set when the caller must stop the node it started (exit or end of
 * input without --keep-running, or a signal). */
int  cli_front_run(const cli_front_opts_t *o, int *stop_node);

#endif
