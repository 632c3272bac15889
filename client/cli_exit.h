/*
 * cli_exit.h -- the client's exit codes, one per class of failure, so a
 * script can tell "the file does not exist" from "no tracker answered"
 * without reading the message.  The man page and README list the same
 * table.
 *
 * A piped (non-interactive) session exits with the class of the last
 * command that failed, or CLI_EXIT_OK when none did; an interactive one
 * exits with CLI_EXIT_OK unless the node could not be started or reached.
 *
 * Locking: none (constants).  Crash behaviour: not applicable.
 */
#ifndef CLI_EXIT_H_INCLUDED
#define CLI_EXIT_H_INCLUDED

typedef enum {
    CLI_EXIT_OK        = 0,   /* every command succeeded */
    CLI_EXIT_FAILURE   = 1,   /* a failure of no class below */
    CLI_EXIT_USAGE     = 2,   /* bad options, unknown command, bad args */
    CLI_EXIT_NOT_FOUND = 3,   /* no such user, group, file or download */
    CLI_EXIT_DENIED    = 4,   /* wrong password, not a member, not owner,
                                 not logged in, account disabled */
    CLI_EXIT_EXISTS    = 5,   /* user, group, file or download exists */
    CLI_EXIT_NETWORK   = 6,   /* no tracker reachable, peer unreachable */
    CLI_EXIT_TIMEOUT   = 7,   /* a download found no source in time, or a
                                 request ran past its deadline */
    CLI_EXIT_DATA      = 8,   /* checksum mismatch, disk full, I/O error */
    CLI_EXIT_LIMIT     = 9,   /* a quota or rate limit refused it */
    CLI_EXIT_CONFLICT  = 10,  /* created concurrently elsewhere and lost */
    CLI_EXIT_NODE      = 11   /* the node could not be started, is locked
                                 by another process, or does not answer */
} cli_exit_t;

#endif
