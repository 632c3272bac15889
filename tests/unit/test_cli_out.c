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

#include "cli_out.h"


static void
test_rate(void **state)
{
    char  out[32];

    (void) state;
    cli_out_rate(0, out, sizeof(out));
    assert_string_equal(out, "0B");
    cli_out_rate(1023, out, sizeof(out));
    assert_string_equal(out, "1023B");
    cli_out_rate(1536, out, sizeof(out));
    assert_string_equal(out, "1.5KiB");
    cli_out_rate(3.0 * 1024 * 1024, out, sizeof(out));
    assert_string_equal(out, "3.0MiB");
    cli_out_rate(2.0 * 1024 * 1024 * 1024 * 1024 * 1024, out, sizeof(out));
    assert_string_equal(out, "2048.0TiB");
}


static void
test_eta(void **state)
{
    char  out[32];

    (void) state;
    cli_out_eta(-1, out, sizeof(out));
    assert_string_equal(out, "--");
    cli_out_eta(100.0 * 3600, out, sizeof(out));
    assert_string_equal(out, "--");
    cli_out_eta(41.6, out, sizeof(out));
    assert_string_equal(out, "42s");
    cli_out_eta(187, out, sizeof(out));
    assert_string_equal(out, "3m07s");
    cli_out_eta(3900, out, sizeof(out));
    assert_string_equal(out, "1h05m");
}


static void
test_quote(void **state)
{
    char  out[64], tiny[2];

    (void) state;
    cli_out_quote("a.bin", out, sizeof(out));
    assert_string_equal(out, "a.bin");
    cli_out_quote("", out, sizeof(out));
    assert_string_equal(out, "\"\"");
    cli_out_quote("a'b", out, sizeof(out));
    assert_string_equal(out, "\"a'b\"");
    cli_out_quote("x", tiny, sizeof(tiny));
    assert_string_equal(tiny, "x");
    cli_out_quote("a b", tiny, sizeof(tiny));
    assert_string_equal(tiny, "");
}


/* The line cli_out_download prints for v. */
static void
show(const cli_dlview_t *v, char *out, size_t outsz)
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
    cli_out_download(v);
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
    cli_dlview_t  v;
    char          line[512];

    (void) state;
    memset(&v, 0, sizeof(v));
    snprintf(v.group, sizeof(v.group), "g1");
    snprintf(v.name, sizeof(v.name), "my file.bin");
    snprintf(v.dest, sizeof(v.dest), "/tmp/out.bin");
    v.state = CLI_DLV_DONE;
    show(&v, line, sizeof(line));
    assert_string_equal(line, "[C] [g1] my file.bin -> /tmp/out.bin\n");

    v.state = CLI_DLV_FAILED;
    snprintf(v.error, sizeof(v.error), "the file changed on the tracker");
    show(&v, line, sizeof(line));
    assert_string_equal(line, "[F] [g1] my file.bin: the file changed on "
                        "the tracker\n");

    v.pct = 42;
    v.state = CLI_DLV_PAUSED;
    show(&v, line, sizeof(line));
    assert_string_equal(line, "[D] [g1] my file.bin 42% paused\n");
    v.state = CLI_DLV_WAITING;
    show(&v, line, sizeof(line));
    assert_string_equal(line, "[D] [g1] my file.bin 42% waiting for "
                        "sources\n");
    v.state = CLI_DLV_DENIED;
    show(&v, line, sizeof(line));
    assert_string_equal(line, "[D] [g1] my file.bin 42% not permitted: "
                        "peers refuse the download ticket; waiting for a "
                        "new one\n");
    v.state = CLI_DLV_RUNNING;
    v.bps = 2048;
    v.eta_s = 65;
    show(&v, line, sizeof(line));
    assert_string_equal(line, "[D] [g1] my file.bin 42% 2.0KiB/s ETA "
                        "1m05s\n");
    v.bps = 0;
    v.eta_s = -1;
    show(&v, line, sizeof(line));
    assert_string_equal(line, "[D] [g1] my file.bin 42% 0B/s ETA --\n");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_eta),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_download_lines),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
