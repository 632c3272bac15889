/*
 * cli_parse.c -- the client's command-line splitter (see cli_parse.h).
 *
 * A small state machine over the bytes of one line.  The output buffer
 * is sized for the worst case (every byte kept plus one NUL per
 * argument), so no write can overrun it once the length check passed.
 *
 * Locking: none; pure function over caller memory.
 * Crash behaviour: nothing persistent; a bad line is rejected whole.
 */
#include <stdio.h>
#include <string.h>

#include "cli_parse.h"


static int
cli_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n'
           || c == '\v' || c == '\f';
}


static int
cli_fail(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s", msg);
    }
    return -1;
}


int
cli_parse_line(const char *line, cli_args_t *out, char *err, size_t errlen)
{
    size_t       n, i, o;
    int          in_arg;
    char         quote, c;

    out->argc = 0;
    out->argv[0] = NULL;

    if (line == NULL) {
        return 0;
    }

    n = strlen(line);
    /* the line terminator is not part of the line */
    if (n > 0 && line[n - 1] == '\n') {
        n--;
        if (n > 0 && line[n - 1] == '\r') {
            n--;
        }
    }
    if (n > TS_CLI_LINE_MAX_B) {
        char  msg[64];

        snprintf(msg, sizeof(msg), "line too long (max %d bytes)",
                 TS_CLI_LINE_MAX_B);
        return cli_fail(err, errlen, msg);
    }

    i = 0;
    while (i < n && cli_is_blank(line[i])) {
        i++;
    }
    if (i == n || line[i] == '#') {
        return 0;
    }

    o = 0;
    in_arg = 0;
    quote = 0;

    for ( /* void */ ; i < n; i++) {
        c = line[i];

        if (quote == '\'') {
            if (c == '\'') {
                quote = 0;
            } else {
                out->buf[o++] = c;
            }
            continue;
        }

        if (quote == '"') {
            if (c == '"') {
                quote = 0;
            } else if (c == '\\' && i + 1 < n
                       && (line[i + 1] == '"' || line[i + 1] == '\\'
                           || line[i + 1] == 'n'))
            {
                i++;
                out->buf[o++] = (line[i] == 'n') ? '\n' : line[i];
            } else {
                /* an unknown escape is kept as typed, like sh does */
                out->buf[o++] = c;
            }
            continue;
        }

        if (cli_is_blank(c)) {
            if (in_arg) {
                out->buf[o++] = '\0';
                in_arg = 0;
            }
            continue;
        }

        if (!in_arg) {
            if (out->argc == TS_CLI_ARGS_MAX_N) {
                char  msg[64];

                snprintf(msg, sizeof(msg), "too many arguments (max %d)",
                         TS_CLI_ARGS_MAX_N);
                out->argc = 0;
                out->argv[0] = NULL;
                return cli_fail(err, errlen, msg);
            }
            out->argv[out->argc++] = &out->buf[o];
            in_arg = 1;
        }

        if (c == '\'' || c == '"') {
            quote = c;
        } else {
            out->buf[o++] = c;
        }
    }

    if (quote != 0) {
        out->argc = 0;
        out->argv[0] = NULL;
        return cli_fail(err, errlen, "unterminated quote");
    }
    if (in_arg) {
        out->buf[o++] = '\0';
    }
    out->argv[out->argc] = NULL;
    return 0;
}
