/*
 * cli_parse.h -- splits one command line of the client into argv.
 *
 * Rules: arguments are separated by blanks (space, tab, CR); '...' is
 * taken literally; "..." allows the escapes \" \\ and \n; quoted and bare
 * pieces next to each other join into one argument (as in sh); a line
 * whose first non-blank character is '#' is a comment.  At most
 * TS_CLI_ARGS_MAX_N arguments and TS_CLI_LINE_MAX_B bytes per line.
 *
 * No locks, no allocation: the result lives in the caller's cli_args_t.
 */
#ifndef CLI_PARSE_H_INCLUDED
#define CLI_PARSE_H_INCLUDED

#include <stddef.h>
#include "ts_config.h"


typedef struct {
    int    argc;                          /* 0 for blank/comment lines */
    char  *argv[TS_CLI_ARGS_MAX_N + 1];      /* NULL-terminated, into buf */
    char   buf[TS_CLI_LINE_MAX_B + TS_CLI_ARGS_MAX_N + 2];
} cli_args_t;

/* Returns 0 (out->argc may be 0) or -1 with a reason in err, e.g.
 * "unterminated quote", without the "error: " prefix.  A trailing "\n"
 * or "\r\n" is not part of the line. */
int cli_parse_line(const char *line, cli_args_t *out, char *err,
                   size_t errlen);

#endif
