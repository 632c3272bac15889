/*
 * test_cli_out.c -- unit tests of the client's output helpers
 * (client/cli_out.c): rates, times left and the show_downloads lines,
 * which are the user-visible contract of the download commands.
 *
 * Locking: none (single-threaded).  Crash behaviour: none; stdout goes
 * through a temporary file that is removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ts_esc.h"
#include "cli_out.h"


/* rates in bytes per second, times left in seconds */
static void
test_rate_eta(void **state)
{
    static const struct {
        void       (*fmt)(double, char *, size_t);
        double       in;
        const char  *want;
    } cases[] = {
        { cli_out_rate, 0, "0B" },
        { cli_out_rate, 1023, "1023B" },
        { cli_out_rate, 1536, "1.5KiB" },
        { cli_out_rate, 3.0 * 1024 * 1024, "3.0MiB" },
        { cli_out_rate, 2.0 * 1024 * 1024 * 1024 * 1024 * 1024, "2048.0TiB" },
        { cli_out_eta, -1, "--" },
        { cli_out_eta, 100.0 * 3600, "--" },
        { cli_out_eta, 41.6, "42s" },
        { cli_out_eta, 187, "3m07s" },
        { cli_out_eta, 3900, "1h05m" },
    };
    char    out[32];
    size_t  i;

    (void) state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cases[i].fmt(cases[i].in, out, sizeof(out));
        assert_string_equal(out, cases[i].want);
    }
}


static void
test_quote(void **state)
{
    static const struct {
        const char  *name;
        size_t       outsz;
        const char  *want;
    } cases[] = {
        { "plain.bin", 64, "plain.bin" },
        { "my file.bin", 64, "\"my file.bin\"" },
        { "a\"b\\c", 64, "\"a\\\"b\\\\c\"" },
        { "", 64, "\"\"" },
        { "a'b", 64, "\"a'b\"" },
        { "x", 2, "x" },
        { "a b", 2, "" },
        /* text a terminal would act on: quoted, escaped, backslashes
         * doubled so "\\x9b" (typed) and "\x9b" (a byte) differ */
        { "a\x9b" "31m", 64, "\"a\\x9b31m\"" },
        { "a\xc2\x9b" "31m", 64, "\"a\\u{009b}31m\"" },
        { "evil\xe2\x80\xaetxt.exe", 64, "\"evil\\u{202e}txt.exe\"" },
        { "x\x1b[2J", 64, "\"x\\x1b[2J\"" },
        { "tab\there", 64, "\"tab\\x09here\"" },
        { "a\\x9b", 64, "\"a\\\\x9b\"" },
        { "r\xc3\xa9sum\xc3\xa9", 64, "r\xc3\xa9sum\xc3\xa9" },
        /* cut between whole escapes, the quote closed */
        { "ab\x9b\x9b", 9, "\"ab\\x9b\"" },
        { "ab\x9b\x9b", 8, "\"ab\"" },
    };
    char                     out[64];
    size_t                   i;

    (void) state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cli_out_quote(cases[i].name, out, cases[i].outsz);
        assert_string_equal(out, cases[i].want);
    }
}


/* What one output call prints on stdout (through a temp file): the
 * show_downloads line of v when arg is NULL, else cli_out_error (err, on
 * the error stream) or cli_out_line with arg. */
static void
capture(const cli_dlview_t *v, int err, const char *arg, char *out,
        size_t outsz)
{
    char   path[] = "/tmp/tsr-cli-out-XXXXXX";
    FILE  *f;
    int    fd, saved;
    size_t n;

    fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    assert_true(dup2(fd, STDOUT_FILENO) >= 0);
    if (arg == NULL) {
        cli_out_download(v);
    } else if (err) {
        /* error lines go to the user's stderr stream */
        FILE  *ef = fdopen(dup(fd), "w");

        assert_non_null(ef);
        cli_out_set_stderr(ef);
        assert_int_equal(cli_out_error("tracker says: %s", arg), -1);
        fflush(ef);
        cli_out_set_stderr(NULL);
        fclose(ef);
    } else {
        cli_out_line("%s size=1 sources=0", arg);
    }
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    f = fdopen(fd, "r");
    assert_non_null(f);
    rewind(f);
    n = fread(out, 1, outsz - 1, f);
    out[n] = '\0';
    fclose(f);
    unlink(path);
}


static void
test_download_lines(void **state)
{
    static const struct {
        cli_dlv_state_t  st;
        int              pct;
        double           bps, eta_s;
        const char      *want;
    } cases[] = {
        { CLI_DLV_DONE, 100, 0, -1,
          "[C] [g1] my file.bin -> /tmp/out.bin\n" },
        { CLI_DLV_FAILED, 0, 0, -1,
          "[F] [g1] my file.bin: the file changed on the tracker (42.0KiB of "
          "100.0KiB kept; retry resumes)\n" },
        { CLI_DLV_PAUSED, 42, 0, -1, "[D] [g1] my file.bin 42% 42.0KiB/100.0KiB paused\n" },
        { CLI_DLV_WAITING, 42, 0, -1,
          "[D] [g1] my file.bin 42% 42.0KiB/100.0KiB waiting for sources "
          "(3 listed)\n" },
        { CLI_DLV_DENIED, 42, 0, -1,
          "[D] [g1] my file.bin 42% 42.0KiB/100.0KiB not permitted: peers "
          "refuse the "
          "download ticket; waiting for a new one\n" },
        { CLI_DLV_RUNNING, 42, 2048, 65,
          "[D] [g1] my file.bin 42% 42.0KiB/100.0KiB from 2/3 peers 2.0KiB/s "
          "ETA 1m05s\n" },
        { CLI_DLV_RUNNING, 42, 0, -1,
          "[D] [g1] my file.bin 42% 42.0KiB/100.0KiB from 2/3 peers 0B/s "
          "ETA --\n" },
    };
    cli_dlview_t  v;
    char          line[512];
    size_t        i;

    (void) state;
    memset(&v, 0, sizeof(v));
    snprintf(v.group, sizeof(v.group), "g1");
    snprintf(v.name, sizeof(v.name), "my file.bin");
    snprintf(v.dest, sizeof(v.dest), "/tmp/out.bin");
    snprintf(v.error, sizeof(v.error), "the file changed on the tracker");
    v.bytes = 42 * 1024;
    v.size = 100 * 1024;
    v.serving = 2;
    v.sources = 3;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        v.state = cases[i].st;
        v.pct = cases[i].pct;
        v.bps = cases[i].bps;
        v.eta_s = cases[i].eta_s;
        capture(&v, 0, NULL, line, sizeof(line));
        assert_string_equal(line, cases[i].want);
    }
}


/* every line escapes its arguments whole: a tracker's error message or
 * a name never brings a raw control, C1, bidi control or bad UTF-8 */
static void
test_lines_escaped(void **state)
{
    static char  big[5000];
    char         out[TS_ESC_MAX_B(sizeof(big)) + 64];

    (void) state;
    capture(NULL, 1, "no\x1b[2J\xc2\x9b\x9b\xe2\x80\xae\xe2\x81\xa6 \xc3\xa9",
            out, sizeof(out));
    assert_string_equal(out, "error: tracker says: no\\x1b[2J\\u{009b}"
                        "\\x9b\\u{202e}\\u{2066} \xc3\xa9\n");
    capture(NULL, 0, "line\nfake", out, sizeof(out));
    assert_string_equal(out, "line\\x0afake size=1 sources=0\n");
    /* longer than the stack buffer: still whole, still escaped */
    memset(big, '\x9b', sizeof(big) - 1);
    capture(NULL, 0, big, out, sizeof(out));
    assert_int_equal(strlen(out), 4 * (sizeof(big) - 1) + 18);
    assert_null(memchr(out, 0x9b, strlen(out)));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_rate_eta),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_download_lines),
        cmocka_unit_test(test_lines_escaped),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
