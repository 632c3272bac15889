/*
 * test_trackers.c -- unit tests for the tracker_info.txt parser: both
 * address formats, comments, blank lines, CRLF, ids, every error with its
 * line number, duplicates, the limit, empty input, and loading real files.
 *
 * Locking: single-threaded test process.
 * Crash behaviour: temporary files live in a mkdtemp directory that each
 * test removes; a crash leaves /tmp/ts_trk_* behind, nothing else.
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

#include "ts_config.h"
#include "ts_trackers.h"

static int
parse(const char *text, ts_trackers_t *t, char *err, size_t errlen)
{
    err[0] = '\0';
    return ts_trackers_parse(text, strlen(text), "tracker_info.txt", t, err,
                             errlen);
}

/* the text must fail, with exactly this message */
static void
expect_err(const char *text, const char *want)
{
    ts_trackers_t t;
    char          err[256];

    if (parse(text, &t, err, sizeof(err)) != -1) {
        fail_msg("accepted: \"%s\"", text);
    }
    if (strcmp(err, want) != 0) {
        fail_msg("for \"%s\"\n  got  '%s'\n  want '%s'", text, err, want);
    }
    assert_int_equal(t.n, 0);       /* nothing half-filled on failure */
}

static void
test_formats_and_ids(void **state)
{
    ts_trackers_t t;
    char          err[256];
    const char   *text =
        "# Tessera trackers\n"
        "\n"
        "127.0.0.1:6000\n"
        "   \t\n"
        "127.0.0.2 6001\n"
        "  # indented comment\n"
        "127.0.0.3\t\t6002   # trailing comment\n"
        "[::1]:6003\n"
        "10.0.0.1:65535#no space before the comment\n"
        "127.0.0.1 1";               /* no final newline */

    assert_int_equal(parse(text, &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, 6);
    assert_string_equal(t.t[0].ip, "127.0.0.1");
    assert_int_equal(t.t[0].port, 6000);
    assert_int_equal(t.t[0].line, 3);
    assert_string_equal(t.t[1].ip, "127.0.0.2");
    assert_int_equal(t.t[1].port, 6001);
    assert_int_equal(t.t[1].line, 5);
    assert_string_equal(t.t[2].ip, "127.0.0.3");
    assert_int_equal(t.t[2].port, 6002);
    assert_int_equal(t.t[2].line, 7);
    assert_string_equal(t.t[3].ip, "::1");
    assert_int_equal(t.t[3].port, 6003);
    assert_int_equal(t.t[3].line, 8);
    assert_string_equal(t.t[4].ip, "10.0.0.1");
    assert_int_equal(t.t[4].port, 65535);
    assert_string_equal(t.t[5].ip, "127.0.0.1");
    assert_int_equal(t.t[5].port, 1);
    assert_int_equal(t.t[5].line, 10);
    /* ids are positions: t.t[id - 1]; the caller maps id 3 -> t[2] */
}

static void
test_crlf(void **state)
{
    ts_trackers_t t;
    char          err[256];

    assert_int_equal(parse("# c\r\n127.0.0.1:6000\r\n\r\n127.0.0.1 6001 \r\n",
                           &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.t[0].port, 6000);
    assert_int_equal(t.t[1].port, 6001);
    assert_int_equal(t.t[1].line, 4);
    /* a CR inside a line counts as junk, and the line number holds */
    expect_err("127.0.0.1:6000\r\n127.0.0.1:60\r01\r\n",
               "tracker_info.txt:2: bad port '60?01' (1..65535)");
}

static void
test_errors_name_line(void **state)
{
    expect_err("127.0.0.1:6000\n\nfoo\n",
               "tracker_info.txt:3: expected IP:PORT or IP PORT, got 'foo'");
    expect_err("127.0.0.1:99999\n",
               "tracker_info.txt:1: bad port '99999' (1..65535)");
    expect_err("# x\n127.0.0.1:0\n",
               "tracker_info.txt:2: bad port '0' (1..65535)");
    expect_err("127.0.0.1:\n",
               "tracker_info.txt:1: bad port '' (1..65535)");
    expect_err("127.0.0.1:-5\n",
               "tracker_info.txt:1: bad port '-5' (1..65535)");
    expect_err("127.0.0.1:http\n",
               "tracker_info.txt:1: bad port 'http' (1..65535)");
    expect_err("127.0.0.1 6000 7000\n",
               "tracker_info.txt:1: expected IP:PORT or IP PORT, "
               "got '127.0.0.1 6000 7000'");
    expect_err("\n\n\n\n256.0.0.1:6000\n",
               "tracker_info.txt:5: bad IP address '256.0.0.1'");
    expect_err("localhost:6000\n",
               "tracker_info.txt:1: bad IP address 'localhost'");
    expect_err("127.0.0.1:6000\n[::1:6001\n",
               "tracker_info.txt:2: expected IP:PORT or IP PORT, "
               "got '[::1:6001'");
    expect_err("::1:6000\n",
               "tracker_info.txt:1: expected IP:PORT or IP PORT, "
               "got '::1:6000'");
    expect_err("[zz]:6000\n",
               "tracker_info.txt:1: bad IP address 'zz'");
    /* control bytes are not echoed raw */
    expect_err("\x1b[2J\n",
               "tracker_info.txt:1: expected IP:PORT or IP PORT, got '?[2J'");
    {
        ts_trackers_t t;
        char          err[256];
        const char    nul[] = "127.0.0.1:6000\n127.0\0.0.1:6001\n";

        assert_int_equal(ts_trackers_parse(nul, sizeof(nul) - 1, "f", &t,
                                           err, sizeof(err)), -1);
        assert_string_equal(err, "f:2: NUL byte in line");
    }
    {
        char line[400];

        memset(line, '1', sizeof(line) - 1);
        line[sizeof(line) - 1] = '\0';
        expect_err(line, "tracker_info.txt:1: line too long (max 256 bytes)");
    }
}

static void
test_duplicate(void **state)
{
    expect_err("127.0.0.1:6000\n127.0.0.2:6000\n127.0.0.1 6000\n",
               "tracker_info.txt:3: duplicate tracker 127.0.0.1 port 6000 "
               "(also on line 1)");
    /* the same address spelled differently is still a duplicate */
    expect_err("[::1]:7000\n[0:0:0:0:0:0:0:1]:7000\n",
               "tracker_info.txt:2: duplicate tracker 0:0:0:0:0:0:0:1 port "
               "7000 (also on line 1)");
}

static void
test_too_many(void **state)
{
    char          text[4096];
    size_t        off = 0;
    int           i;
    ts_trackers_t t;
    char          err[256], want[128];

    for (i = 0; i < TS_TRACKERS_MAX_N; i++) {
        off += (size_t) snprintf(text + off, sizeof(text) - off,
                                 "127.0.0.1:%d\n", 7000 + i);
    }
    assert_int_equal(parse(text, &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, TS_TRACKERS_MAX_N);
    assert_int_equal(t.t[TS_TRACKERS_MAX_N - 1].port,
                     7000 + TS_TRACKERS_MAX_N - 1);
    /* a comment line in between does not count; one more tracker does */
    snprintf(text + off, sizeof(text) - off, "# more\n127.0.0.1:8000\n");
    snprintf(want, sizeof(want), "tracker_info.txt:%d: too many trackers "
             "(max %d)", TS_TRACKERS_MAX_N + 2, TS_TRACKERS_MAX_N);
    expect_err(text, want);
}

static void
test_empty(void **state)
{
    expect_err("", "tracker_info.txt: no trackers listed");
    expect_err("\n\n   \n", "tracker_info.txt: no trackers listed");
    expect_err("# only\r\n  # comments\n",
               "tracker_info.txt: no trackers listed");
}

/* ---- real files ------------------------------------------------------ */

static char tmpdir[64];

static int
setup_dir(void **state)
{
    strcpy(tmpdir, "/tmp/ts_trk_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown_dir(void **state)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static void
test_load_files(void **state)
{
    ts_trackers_t t;
    char          path[128], err[256], want[256];
    char         *big;

    snprintf(path, sizeof(path), "%s/tracker_info.txt", tmpdir);
    write_file(path, "127.0.0.1 6000\n127.0.0.1:6001\n");
    assert_int_equal(ts_trackers_load(path, &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.t[1].port, 6001);

    write_file(path, "127.0.0.1 6000\nbogus line\n");
    assert_int_equal(ts_trackers_load(path, &t, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:2: expected IP:PORT or IP PORT, "
             "got 'bogus line'", path);
    assert_string_equal(err, want);

    write_file(path, "");
    assert_int_equal(ts_trackers_load(path, &t, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: no trackers listed", path);
    assert_string_equal(err, want);

    /* missing file */
    snprintf(path, sizeof(path), "%s/nope.txt", tmpdir);
    assert_int_equal(ts_trackers_load(path, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nope.txt: open() failed: No such file"));

    /* a directory is not a tracker list */
    assert_int_equal(ts_trackers_load(tmpdir, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a regular file"));

    /* oversized file: refused before parsing */
    snprintf(path, sizeof(path), "%s/big.txt", tmpdir);
    big = malloc(200 * 1024 + 1);
    assert_non_null(big);
    memset(big, '#', 200 * 1024);
    big[200 * 1024] = '\0';
    write_file(path, big);
    free(big);
    assert_int_equal(ts_trackers_load(path, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "file too large"));

    /* a NULL/short error buffer is tolerated */
    assert_int_equal(ts_trackers_load(path, &t, NULL, 0), -1);
}

/* random bytes never crash the parser and never yield a bad entry */
static void
test_random_text(void **state)
{
    static const char alpha[] = "0123456789.:[] \t#\r\nabcf";
    uint64_t          s = 0x9e3779b97f4a7c15ull;
    int               iter, accepted = 0;

    for (iter = 0; iter < 5000; iter++) {
        size_t        n, i;
        char         *p, err[128];
        ts_trackers_t t;

        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        n = (size_t) (s % 80);
        p = malloc(n ? n : 1);
        for (i = 0; i < n; i++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            p[i] = (iter & 1) ? alpha[s % (sizeof(alpha) - 1)]
                              : (char) (s & 0xff);
        }
        if (ts_trackers_parse(p, n, "r", &t, err, sizeof(err)) == 0) {
            accepted++;
            assert_true(t.n >= 1 && t.n <= TS_TRACKERS_MAX_N);
            for (i = 0; i < (size_t) t.n; i++) {
                assert_true(t.t[i].port >= 1);
                assert_true(t.t[i].line >= 1);
                assert_true(strlen(t.t[i].ip) < sizeof(t.t[i].ip));
            }
        } else {
            assert_true(strncmp(err, "r:", 2) == 0);
        }
        free(p);
    }
    (void) accepted;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats_and_ids),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_errors_name_line),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_too_many),
        cmocka_unit_test(test_empty),
        cmocka_unit_test_setup_teardown(test_load_files, setup_dir,
                                        teardown_dir),
        cmocka_unit_test(test_random_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
