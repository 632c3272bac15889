/*
 * cli_out.h -- the client's output helpers: the error line, the empty
 * list marker, names and sizes as the user sees them.
 *
 * Output rules (the user-visible contract): results on stdout; a failure
 * prints exactly one line "error: <reason>"; empty lists print nothing,
 * or "(none)" on a TTY.
 *
 * Locking: stdout is the main thread's; the formatters only write into
 * the caller's buffer.  Crash behaviour: nothing persistent.
 */
#ifndef CLI_OUT_H_INCLUDED
#define CLI_OUT_H_INCLUDED

#include <stddef.h>
#include <jansson.h>

#include "ts_esc.h"
#include "cli_exit.h"
#include "cli_ctx.h"
#include "cli_dlview.h"

/* Every line below is formatted first and then escaped whole (ts_esc.h):
 * whatever a tracker, a peer, node.tdb or the disk put into an argument
 * (a file name, an error message, a path), nothing but printable text
 * reaches the terminal -- no C0/C1 control, no bidirectional control, no
 * invalid UTF-8.  The format itself must not hold '\n'. */

/* Prints "error: <fmt...>" and returns -1; the failure's class is
 * CLI_EXIT_FAILURE. */
int  cli_out_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same with the failure's class (a cli_exit_t), which the exit code
 * of a piped session and --json report. */
int  cli_out_fail(int cls, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The class of the last failure since cli_out_class_reset() (main thread:
 * reset before a command runs, read after). */
int  cli_out_class(void);
void cli_out_class_reset(void);
/* A failure whose line is not "error: ..." (the usage line). */
void cli_out_class_set(int cls);
/* Prints one line on stdout. */
void cli_out_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The stream of the user's error lines: stderr unless set (--log-file
 * points fd 2 at the log; the CLI keeps the terminal's aside). */
void  cli_out_set_stderr(FILE *f);
FILE *cli_out_stderr(void);
/* Prints one line on stderr ("warning: ...", "client: ..."). */
void cli_out_eline(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* A control request's output (cli_ctl_srv.c): while a capture is on in
 * a thread, that thread's cli_out_line / cli_out_error / cli_out_fail
 * lines go into lines (escaped as on the terminal; errors as
 * "error: ..."), the first error's text into error, and the class of
 * the last failure into cls at the end.  The caller owns lines and error
 * (json_decref). */
typedef struct {
    json_t  *lines;
    json_t  *error;
    json_t  *result;            /* a listing's rows, or NULL */
    int      cls;
} cli_out_cap_t;

void cli_out_capture_begin(cli_out_cap_t *cap);
void cli_out_capture_end(cli_out_cap_t *cap);
/* 1 while this thread captures. */
int  cli_out_capturing(void);

/* Where lines on stderr from outside a capture (warnings of the agent's
 * threads, of the terminal's commands) also go: the control socket's
 * event push (cli_ctl_srv.c).  fn gets the escaped line; it is called
 * from any thread and must not print. */
void    cli_out_set_sink(void (*fn)(const char *line));
/* A "notice: ..." line for the attached CLIs only (the sink; the log has
 * its own line): a download ended, say.  Nothing without a sink. */
void    cli_out_notify(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* A listing's structured result (the reply's "result": an array of
 * objects with named fields).  cli_out_json_list() says the command is a
 * listing (so no rows is []), cli_out_json_row() appends one row made
 * with json_pack (stolen; NULL is ignored); both do nothing unless the
 * thread captures.  cli_out_json_text() is a string for a row: escaped
 * as a line is (ts_esc), so bytes from the network stay valid UTF-8. */
void    cli_out_json_list(void);
/* A command's structured result that is one object, not a listing
 * (stolen; replaces any earlier one; nothing unless capturing). */
void    cli_out_json_set(json_t *obj);
void    cli_out_json_row(json_t *row);
json_t *cli_out_json_text(const char *s);

/* Prints "(none)" when interactive; for empty lists. */
void cli_out_empty(cli_ctx_t *ctx);

/* A file name for output: as is, or in "..." when it holds blanks,
 * quotes, backslashes or anything ts_esc.h rewrites; inside the quotes
 * '"' and '\' are written \" and \\, the rest as ts_esc() writes it
 * (\xNN, \u{NNNN}), so the quoted form names the stored bytes without
 * ambiguity.  CLI_OUT_QUOTE_B(n) bytes hold a name of n bytes whole. */
#define CLI_OUT_QUOTE_B(n)  (TS_ESC_MAX_B(n) + 2)
void cli_out_quote(const char *name, char *out, size_t outsz);

/* A transfer rate in bytes per second: "512B", "1.5MiB" (no "/s"). */
void cli_out_rate(double bps, char *out, size_t outsz);
/* A time left in seconds: "42s", "3m07s", "1h05m"; "--" when unknown
 * (negative) or beyond 99 hours. */
void cli_out_eta(double secs, char *out, size_t outsz);

/* One show_downloads line: "[C] [group] name -> dest", "[F] ...: why
 * [(got of size kept; retry resumes)]", "[D] [group] name pct% got/size
 * <paused | waiting for sources (n listed) | not permitted: ... |
 * from serving/listed peers rate/s ETA eta>" (escaped as every line is,
 * not quoted). */
void cli_out_download(const cli_dlview_t *v);

#endif
