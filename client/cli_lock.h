/*
 * cli_lock.h -- one node per state directory: <state>/node.lock
 * (cli_lock.c).
 *
 * Locking: main thread, before the node is forked.  Crash behaviour:
 * the lock is an flock() on an open file, so it goes with the last
 * process holding it (the CLI and the node supervisor it forks); a
 * stale file of a dead node costs nothing.
 */
#ifndef CLI_LOCK_H_INCLUDED
#define CLI_LOCK_H_INCLUDED

#include <stddef.h>
#include <sys/types.h>

/* Takes the lock of state_dir and writes our pid into it.  0; -1 with
 * *holder set to the running node's pid (0 when unknown) when another
 * process holds it; -2 with errno on a file error. */
int  cli_lock_take(const char *state_dir, pid_t *holder);

/* After the node is forked: the lock file names its supervisor (the
 * process that holds the lock longest).  0, or -1 with errno. */
int  cli_lock_note_pid(pid_t pid);
/* 1 while the process a refusal named (or any holder) still holds the
 * lock of state_dir. */
int  cli_lock_held(const char *state_dir);

#endif
