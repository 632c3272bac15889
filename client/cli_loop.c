/*
 * cli_loop.c -- the client's command loop: signals, the plain loop for
 * piped input and the TTY loop (libedit), and --keep-running.
 *
 * Signals: handlers only set a flag and write a byte to a self-pipe.
 * The loop's reads poll stdin together with that pipe, so a signal is
 * never lost between a flag check and a blocking read.  SIGINT at the
 * prompt abandons the line being typed; SIGTERM/SIGHUP (and SIGINT when
 * stdin is not a terminal) end the loop.
 *
 * Locking: main thread only (the agent thread blocks every signal).
 * Crash behaviour: the history file is rewritten after each command, so
 * a killed client loses at most the line being typed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <editline/readline.h>

#include "ts_config.h"
#include "ts_log.h"
#include "cli_cmds.h"
#include "cli_parse.h"
#include "cli_exit.h"
#include "cli_node.h"
#include "cli_out.h"
#include "cli_loop.h"
#include "cli_names.h"


static volatile sig_atomic_t  cli_loop_sig_int;
static volatile sig_atomic_t  cli_loop_sig_term;
static int                    cli_loop_sigpipe[2] = { -1, -1 };


static void
cli_loop_on_signal(int signo)
{
    int  saved = errno;

    if (signo == SIGHUP && ts_log_has_file()) {
        /* --log-file: SIGHUP is logrotate's, not a hangup: reopen the
         * log here and in the node's processes (ts_sup forwards it) */
        node_t *n = cli_node_get();

        ts_log_reopen();
        if (n != NULL && n->sup_pid > 0) {
            (void) kill(n->sup_pid, SIGHUP);
        }
        errno = saved;
        return;
    }
    if (signo == SIGINT) {
        cli_loop_sig_int = 1;
    } else {
        cli_loop_sig_term = 1;
    }
    if (cli_loop_sigpipe[1] >= 0) {
        (void) !write(cli_loop_sigpipe[1], "s", 1);
    }
    errno = saved;
}


static void
cli_loop_drain(void)
{
    char  buf[64];

    while (read(cli_loop_sigpipe[0], buf, sizeof(buf)) > 0) {
        /* void */
    }
}


int
cli_loop_signals_init(void)
{
    struct sigaction  sa;

    if (pipe2(cli_loop_sigpipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        ts_err("pipe2() failed: %s", strerror(errno));
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = cli_loop_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;        /* no SA_RESTART: blocking calls see EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return 0;
}


static cli_loop_hooks_t  cli_loop_hooks;
static int               cli_loop_in_tty;   /* inside readline() now */


/* Waits for stdin or a signal: 1 when stdin is readable, 0 when the
 * caller should look again (a signal came, EINTR, or what came on the
 * hooks' async descriptor was printed), -1 on a poll error.  async:
 * watch that descriptor too (at the prompt). */
static int
cli_loop_wait_stdin(int async)
{
    struct pollfd  pfd[3];
    int            afd = -1, n = 2;

    if (async && cli_loop_hooks.async_fd != NULL) {
        afd = cli_loop_hooks.async_fd();
    }
    pfd[0].fd = STDIN_FILENO;
    pfd[0].events = POLLIN;
    pfd[1].fd = cli_loop_sigpipe[0];
    pfd[1].events = POLLIN;
    if (afd >= 0) {
        pfd[2].fd = afd;
        pfd[2].events = POLLIN;
        pfd[2].revents = 0;
        n = 3;
    }
    if (poll(pfd, (nfds_t) n, -1) < 0) {
        if (errno == EINTR) {
            return 0;
        }
        ts_err("poll() failed: %s", strerror(errno));
        return -1;
    }
    if (pfd[1].revents & POLLIN) {
        cli_loop_drain();
        return 0;
    }
    if (n == 3 && pfd[2].revents != 0) {
        (void) cli_loop_hooks.async();
        if (pfd[0].revents == 0) {
            return 0;
        }
    }
    return pfd[0].revents != 0;
}


void
cli_loop_set_hooks(const cli_loop_hooks_t *h)
{
    cli_loop_hooks = *h;
}


/* Runs one input line; sets *failed to the failure's class (cli_exit.h)
 * when the command failed. */
static void
cli_loop_exec(cli_ctx_t *ctx, const char *line, int *failed)
{
    int  cls;

    cls = cli_loop_hooks.exec(ctx, line);
    if (cls != CLI_EXIT_OK) {
        *failed = cls;
    }
}


void
cli_loop_print_above(FILE *f, const char *line)
{
    if (cli_loop_in_tty) {
        /* clear the prompt's line, print, let libedit draw it again */
        fputs("\r\033[K", stdout);
        fflush(stdout);
        fprintf(f, "%s\n", line);
        fflush(f);
        rl_forced_update_display();
        return;
    }
    fprintf(f, "%s\n", line);
    fflush(f);
}


/* ---- non-TTY input ------------------------------------------------------ */

typedef struct {
    char    buf[8192];
    size_t  off;
    size_t  end;
    int     eof;
} cli_loop_reader_t;


/*
 * One line from fd 0 into line (at most linesz-1 bytes kept; *toolong is
 * set if more were dropped).  1 = a line, 0 = EOF, -1 = a signal came.
 */
static int
cli_loop_read_line(cli_loop_reader_t *r, char *line, size_t linesz,
                   int *toolong)
{
    size_t         o;
    ssize_t        n;
    char           c;
    int            w;

    o = 0;
    *toolong = 0;

    for ( ;; ) {
        while (r->off < r->end) {
            c = r->buf[r->off++];
            if (c == '\n') {
                line[o] = '\0';
                return 1;
            }
            if (o + 1 < linesz) {
                line[o++] = c;
            } else {
                *toolong = 1;
            }
        }
        if (r->eof) {
            line[o] = '\0';
            return (o > 0 || *toolong) ? 1 : 0;
        }
        if (cli_loop_sig_term || cli_loop_sig_int) {
            return -1;
        }

        w = cli_loop_wait_stdin(0);
        if (w < 0) {
            return -1;
        }
        if (w == 0) {
            continue;
        }
        n = read(STDIN_FILENO, r->buf, sizeof(r->buf));
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            ts_err("read() failed: %s", strerror(errno));
            r->eof = 1;
        } else if (n == 0) {
            r->eof = 1;
        } else {
            r->off = 0;
            r->end = (size_t) n;
        }
    }
}


int
cli_loop_plain(cli_ctx_t *ctx)
{
    static cli_loop_reader_t  rd;
    static char          line[TS_CLI_LINE_MAX_B + 2];
    int                  failed, toolong, r;

    failed = 0;
    while (!ctx->want_exit) {
        r = cli_loop_read_line(&rd, line, sizeof(line), &toolong);
        if (r <= 0) {
            break;
        }
        if (toolong) {
            cli_out_fail(CLI_EXIT_USAGE, "line too long (max %d bytes)",
                         TS_CLI_LINE_MAX_B);
            fflush(stdout);
            failed = CLI_EXIT_USAGE;
            continue;
        }
        cli_loop_exec(ctx, line, &failed);
    }
    return failed;
}


/* 1 once SIGTERM/SIGINT/SIGHUP asked the client to stop. */
int
cli_loop_stop_requested(void)
{
    return cli_loop_sig_term || cli_loop_sig_int;
}


/* --keep-running: serve until a signal comes or the node is gone. */
void
cli_loop_keep_running(int (*alive)(void))
{
    struct pollfd  pfd;

    ts_info("input ended; still seeding until SIGTERM");
    while (!cli_loop_stop_requested() && alive()) {
        pfd.fd = cli_loop_sigpipe[0];
        pfd.events = POLLIN;
        if (poll(&pfd, 1, TS_CLI_IDLE_POLL_MS) > 0) {
            cli_loop_drain();
        }
    }
}


/* ---- TTY input (libedit) ------------------------------------------------ */

/*
 * libedit reads keys through this: it waits on stdin and the signal
 * pipe together.  SIGINT ends the line early (the loop then drops it);
 * SIGTERM is end of input.  UTF-8 sequences are decoded here because
 * libedit takes one wide character per call.
 */
static int
cli_loop_getc(FILE *f)
{
    struct pollfd  pfd[2];
    unsigned char  b[4];
    int            need, i, cp, w;
    ssize_t        n;

    (void) f;
    for ( ;; ) {
        if (cli_loop_sig_term) {
            return -1;
        }
        if (cli_loop_sig_int) {
            return '\n';
        }
        w = cli_loop_wait_stdin(1);
        if (w < 0) {
            return -1;
        }
        if (w == 0) {
            continue;
        }
        n = read(STDIN_FILENO, b, 1);
        if (n == 1) {
            break;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        return -1;
    }

    if (b[0] < 0x80) {
        return b[0];
    }
    if ((b[0] & 0xe0) == 0xc0) {
        need = 1;
        cp = b[0] & 0x1f;
    } else if ((b[0] & 0xf0) == 0xe0) {
        need = 2;
        cp = b[0] & 0x0f;
    } else if ((b[0] & 0xf8) == 0xf0) {
        need = 3;
        cp = b[0] & 0x07;
    } else {
        return b[0];
    }
    for (i = 1; i <= need; i++) {
        pfd[0].fd = STDIN_FILENO;
        pfd[0].events = POLLIN;
        /* the rest of a character arrives with it; do not hang on junk */
        if (poll(pfd, 1, TS_CLI_UTF8_WAIT_MS) <= 0
            || read(STDIN_FILENO, &b[i], 1) != 1 || (b[i] & 0xc0) != 0x80)
        {
            return b[0];
        }
        cp = (cp << 6) | (b[i] & 0x3f);
    }
    return cp;
}


/* The commands whose arguments hold a password. */
static int
cli_loop_secret_cmd(const char *name)
{
    return strcmp(name, "login") == 0 || strcmp(name, "create_user") == 0;
}


/* Lines carrying a password never go to the history file: neither a
 * login or create_user line nor one that does not parse (an unclosed
 * quote, say) whose first word, quotes left out, names one of them. */
static int
cli_loop_history_ok(const char *line)
{
    cli_args_t  a;
    char        first[32];
    size_t      n = 0;

    if (cli_parse_line(line, &a, NULL, 0) == 0) {
        return a.argc > 0 && !cli_loop_secret_cmd(a.argv[0]);
    }
    while (*line == ' ' || *line == '\t') {
        line++;
    }
    for (; *line != '\0' && *line != ' ' && *line != '\t'; line++) {
        if (*line == '"' || *line == '\'' || *line == '\\') {
            continue;
        }
        if (n + 1 >= sizeof(first)) {
            return 1;               /* longer than any command name */
        }
        first[n++] = *line;
    }
    first[n] = '\0';
    return !cli_loop_secret_cmd(first);
}


/* Tab completion of the first word: the command names that begin with
 * what is typed (libedit calls this with state 0 first, then on). */
static char *
cli_loop_cmd_gen(const char *text, int state)
{
    static int   next;
    const char  *name;
    size_t       n = strlen(text);

    if (state == 0) {
        next = 0;
    }
    while ((name = cli_cmd_name_at(next++)) != NULL) {
        if (strncmp(name, text, n) == 0) {
            return strdup(name);
        }
    }
    return NULL;
}


/* The kind of name the word being completed asks for (cli_names.h). */
static int  cli_loop_name_kind = -1;


static char *
cli_loop_name_gen(const char *text, int state)
{
    static size_t  next;

    if (state == 0) {
        next = 0;
    }
    return cli_names_match((cli_names_kind_t) cli_loop_name_kind, text,
                           next++);
}


/* Commands for the first word; for an argument that names a group or a
 * file, the names of the last listings; else file names (libedit's
 * default). */
static char **
cli_loop_complete(const char *text, int start, int end)
{
    char         cmd[64];
    const char  *p = rl_line_buffer;
    size_t       n = 0;
    int          argi = 0, inword = 0, i;

    (void) end;
    if (start == 0) {
        return rl_completion_matches(text, cli_loop_cmd_gen);
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    while (p[n] != '\0' && p[n] != ' ' && p[n] != '\t') {
        if (n + 1 >= sizeof(cmd)) {
            return NULL;
        }
        cmd[n] = p[n];
        n++;
    }
    cmd[n] = '\0';
    /* count the words before the one being completed */
    for (i = (int) (p - rl_line_buffer); i < start; i++) {
        if (rl_line_buffer[i] == ' ' || rl_line_buffer[i] == '\t') {
            inword = 0;
        } else if (!inword) {
            inword = 1;
            argi++;
        }
    }
    cli_loop_name_kind = cli_names_arg_kind(cmd, argi);
    if (cli_loop_name_kind < 0) {
        return NULL;
    }
    rl_attempted_completion_over = 1;   /* no file names here */
    return rl_completion_matches(text, cli_loop_name_gen);
}


int
cli_loop_tty(cli_ctx_t *ctx, const char *history)
{
    char   *line;
    char    prompt[TS_ID_MAX_B + 32];
    char    user[TS_ID_MAX_B + 1];

    rl_catch_signals = 0;           /* our handlers, not libedit's */
    rl_getc_function = cli_loop_getc;
    rl_attempted_completion_function = cli_loop_complete;
    using_history();
    stifle_history(TS_CLI_HISTORY_MAX_N);
    (void) read_history(history);

    while (!ctx->want_exit && !cli_loop_sig_term) {
        if (cli_loop_hooks.user != NULL
            && cli_loop_hooks.user(user, sizeof(user)))
        {
            snprintf(prompt, sizeof(prompt), "%s@tessera> ", user);
        } else {
            snprintf(prompt, sizeof(prompt), "tessera> ");
        }
        cli_loop_sig_int = 0;
        cli_loop_drain();

        cli_loop_in_tty = 1;
        line = readline(prompt);
        cli_loop_in_tty = 0;
        if (cli_loop_sig_term) {
            free(line);
            break;
        }
        if (cli_loop_sig_int) {
            /* ^C: the line is abandoned, a fresh prompt follows */
            free(line);
            continue;
        }
        if (line == NULL) {
            putchar('\n');
            break;
        }
        if (line[0] != '\0' && cli_loop_history_ok(line)) {
            add_history(line);
            if (write_history(history) != 0) {
                ts_debug("write_history(%s) failed", history);
            }
        }
        {
            int  ignored = 0;

            cli_loop_exec(ctx, line, &ignored);
        }
        free(line);
    }
    return 0;
}
