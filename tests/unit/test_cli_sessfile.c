/*
 * test_cli_sessfile.c -- unit tests of the saved session file
 * (client/cli_sessfile.c): a round trip, the file's mode, and files a
 * reader must refuse (torn, over-long fields, foreign modes, junk).
 *
 * Locking: none (single-threaded).  Crash behaviour: the files live in a
 * mkdtemp directory removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli_sessfile.h"

static char  dir[64];
static char  path[128];


static void
put(const char *text, mode_t mode)
{
    FILE  *f;

    (void) unlink(path);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}


static void
test_round_trip(void **state)
{
    cli_sessfile_t  w, r;
    struct stat     sb;
    int             i;

    (void) state;
    memset(&w, 0, sizeof(w));
    snprintf(w.user, sizeof(w.user), "alice");
    for (i = 0; i < TS_TOKEN_B; i++) {
        w.tok[i] = (uint8_t) (i * 37 + 1);
    }
    w.heartbeat_ms = 2500;
    w.tracker = 2;
    assert_int_equal(cli_sessfile_save(path, &w), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(cli_sessfile_load(path, &r), 0);
    assert_string_equal(r.user, "alice");
    assert_memory_equal(r.tok, w.tok, TS_TOKEN_B);
    assert_int_equal(r.heartbeat_ms, 2500);
    assert_int_equal(r.tracker, 2);
    cli_sessfile_remove(path);
    assert_int_equal(cli_sessfile_load(path, &r), -1);
}


static void
test_refused_files(void **state)
{
    static const char *bad[] = {
        "",
        "tessera-session 1\n",
        "tessera-session 2\nuser a\ntoken 000102030405060708090a0b0c0d0e0f\n"
        "heartbeat_ms 1000\ntracker 0\n",
        /* torn: the last line cut */
        "tessera-session 1\nuser a\ntoken 000102030405060708090a0b0c0d0e0f\n"
        "heartbeat_ms 1000\ntrack",
        /* token one byte short, one too long, not hex */
        "tessera-session 1\nuser a\ntoken 000102030405060708090a0b0c0d0e\n"
        "heartbeat_ms 1000\ntracker 0\n",
        "tessera-session 1\nuser a\ntoken 000102030405060708090a0b0c0d0e0f00"
        "\nheartbeat_ms 1000\ntracker 0\n",
        "tessera-session 1\nuser a\ntoken 0001020304050607080g0a0b0c0d0e0f\n"
        "heartbeat_ms 1000\ntracker 0\n",
        /* a user id longer than any the tracker accepts */
        "tessera-session 1\nuser "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
        "token 000102030405060708090a0b0c0d0e0f\nheartbeat_ms 1000\n"
        "tracker 0\n",
        /* out of range numbers, trailing junk */
        "tessera-session 1\nuser a\ntoken 000102030405060708090a0b0c0d0e0f\n"
        "heartbeat_ms -5\ntracker 0\n",
        "tessera-session 1\nuser a\ntoken 000102030405060708090a0b0c0d0e0f\n"
        "heartbeat_ms 1000\ntracker 99999\n",
        "tessera-session 1\nuser a\ntoken 000102030405060708090a0b0c0d0e0f\n"
        "heartbeat_ms 1000\ntracker 0\nextra 1\n",
    };
    cli_sessfile_t  r;
    size_t          i;

    (void) state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        put(bad[i], 0600);
        assert_int_equal(cli_sessfile_load(path, &r), -1);
    }
    /* a good file others may read is refused too */
    put("tessera-session 1\nuser a\ntoken 000102030405060708090a0b0c0d0e0f\n"
        "heartbeat_ms 1000\ntracker 0\n", 0600);
    assert_int_equal(cli_sessfile_load(path, &r), 0);
    assert_string_equal(r.user, "a");
    put("tessera-session 1\nuser a\ntoken 000102030405060708090a0b0c0d0e0f\n"
        "heartbeat_ms 1000\ntracker 0\n", 0644);
    assert_int_equal(cli_sessfile_load(path, &r), -1);
    (void) unlink(path);
}


static void
test_save_refuses_a_bad_user(void **state)
{
    cli_sessfile_t  w;

    (void) state;
    memset(&w, 0, sizeof(w));
    snprintf(w.user, sizeof(w.user), "two words");
    assert_int_equal(cli_sessfile_save(path, &w), -1);
    assert_int_equal(access(path, F_OK), -1);
}


static int
setup(void **state)
{
    (void) state;
    snprintf(dir, sizeof(dir), "/tmp/tsr-sessfile-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    snprintf(path, sizeof(path), "%s/session", dir);
    return 0;
}


static int
teardown(void **state)
{
    char  tmp[160];

    (void) state;
    (void) unlink(path);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    (void) unlink(tmp);
    return rmdir(dir);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refused_files),
        cmocka_unit_test(test_save_refuses_a_bad_user),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
