/*
 * cli_ctl_cli.h -- ./client --attach: a command line on a running node
 * through its control socket (cli_ctl_cli.c).
 *
 * Locking: single-threaded.  Crash behaviour: nothing persistent; the
 * node does not notice a killed attached client beyond its closed link.
 */
#ifndef CLI_CTL_CLI_H_INCLUDED
#define CLI_CTL_CLI_H_INCLUDED

/* Reads commands from stdin until EOF or exit, runs each on the node of
 * state_dir and prints its reply (json: the reply object, one line).
 * Returns the exit status: the class of the last failed command,
 * CLI_EXIT_NODE when no node answers. */
int  cli_ctl_cli_run(const char *state_dir, int json);

#endif
