/*
 * test_cli_ctl.c -- unit tests of the control protocol codec and its
 * socket reader (client/cli_ctl_codec.c, cli_ctl_io.c): well-formed
 * requests, every refusal (types, duplicates, unknown keys, limits),
 * replies both ways, and frames that lie about their length, stop in
 * the middle or never come.
 *
 * Locking: none (single-threaded; a socketpair stands for the socket).
 * Crash behaviour: none; pure tests.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "ts_clock.h"
#include "cli_exit.h"
#include "cli_ctl_codec.h"
#include "cli_ctl_io.h"

static char  err[256];


static int
req(const char *s, cli_ctl_req_t *r)
{
    err[0] = '\0';
    return cli_ctl_req_parse(s, strlen(s), r, err, sizeof(err));
}


static void
test_req_ok(void **state)
{
    cli_ctl_req_t  r;

    (void) state;
    assert_int_equal(req("{\"id\":7,\"cmd\":\"list_files\","
                         "\"args\":[\"g1\"]}", &r), 0);
    assert_int_equal(r.id, 7);
    assert_string_equal(r.cmd, "list_files");
    assert_int_equal(r.argc, 2);
    assert_string_equal(r.argv[0], "list_files");
    assert_string_equal(r.argv[1], "g1");
    assert_null(r.argv[2]);
    cli_ctl_req_free(&r);

    /* args may be left out; the id may be 0 or 2^53 */
    assert_int_equal(req("{\"cmd\":\"help\",\"id\":0}", &r), 0);
    assert_int_equal(r.argc, 1);
    assert_null(r.argv[1]);
    cli_ctl_req_free(&r);
    assert_int_equal(req("{\"id\":9007199254740992,\"cmd\":\"x\"}", &r), 0);
    cli_ctl_req_free(&r);
}


static void
test_req_refused(void **state)
{
    static const char  *bad[] = {
        "", "not json", "[1,2]", "\"str\"", "{}", "{\"id\":1}",
        "{\"cmd\":\"help\"}",                               /* no id */
        "{\"id\":\"1\",\"cmd\":\"help\"}",                  /* id type */
        "{\"id\":-1,\"cmd\":\"help\"}",
        "{\"id\":1.5,\"cmd\":\"help\"}",
        "{\"id\":9007199254740993,\"cmd\":\"help\"}",
        "{\"id\":1,\"cmd\":5}",
        "{\"id\":1,\"cmd\":\"\"}",
        "{\"id\":1,\"cmd\":\"Help\"}",
        "{\"id\":1,\"cmd\":\"he lp\"}",
        "{\"id\":1,\"cmd\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", /* 33 */
        "{\"id\":1,\"cmd\":\"help\",\"args\":\"g\"}",
        "{\"id\":1,\"cmd\":\"help\",\"args\":[1]}",
        "{\"id\":1,\"cmd\":\"help\",\"args\":[\"a\\u0000b\"]}",
        "{\"id\":1,\"cmd\":\"help\",\"args\":[null]}",
        "{\"id\":1,\"cmd\":\"help\",\"extra\":1}",
        "{\"id\":1,\"id\":2,\"cmd\":\"help\"}",             /* duplicate */
        "{\"id\":1,\"cmd\":\"help\"} trailing",
        NULL
    };
    cli_ctl_req_t  r;
    int            i;

    (void) state;
    for (i = 0; bad[i] != NULL; i++) {
        assert_int_equal(req(bad[i], &r), -1);
        assert_true(err[0] != '\0');
        assert_int_equal(r.argc, 0);
    }
    /* the id is kept for the error reply when it was readable */
    assert_int_equal(req("{\"id\":42,\"cmd\":7}", &r), -1);
    assert_int_equal(r.has_id, 1);
    assert_int_equal(r.id, 42);
    assert_int_equal(req("{\"id\":\"x\",\"cmd\":\"help\"}", &r), -1);
    assert_int_equal(r.has_id, 0);
}


static void
test_req_limits(void **state)
{
    char           buf[TS_CLI_CTL_ARG_MAX_B * 2 + 256];
    cli_ctl_req_t  r;
    size_t         o;
    int            i;

    (void) state;
    /* TS_CLI_CTL_ARGS_N args pass, one more does not */
    o = (size_t) snprintf(buf, sizeof(buf), "{\"id\":1,\"cmd\":\"x\","
                          "\"args\":[");
    for (i = 0; i < TS_CLI_CTL_ARGS_N; i++) {
        o += (size_t) snprintf(buf + o, sizeof(buf) - o, "%s\"a\"",
                               i ? "," : "");
    }
    snprintf(buf + o, sizeof(buf) - o, "]}");
    assert_int_equal(req(buf, &r), 0);
    assert_int_equal(r.argc, TS_CLI_CTL_ARGS_N + 1);
    cli_ctl_req_free(&r);
    snprintf(buf + o, sizeof(buf) - o, ",\"b\"]}");
    assert_int_equal(req(buf, &r), -1);

    /* an argument of the limit passes, one byte more does not */
    o = (size_t) snprintf(buf, sizeof(buf), "{\"id\":1,\"cmd\":\"x\","
                          "\"args\":[\"");
    memset(buf + o, 'a', TS_CLI_CTL_ARG_MAX_B);
    snprintf(buf + o + TS_CLI_CTL_ARG_MAX_B, 8, "\"]}");
    assert_int_equal(req(buf, &r), 0);
    cli_ctl_req_free(&r);
    memset(buf + o, 'a', TS_CLI_CTL_ARG_MAX_B + 1);
    snprintf(buf + o + TS_CLI_CTL_ARG_MAX_B + 1, 8, "\"]}");
    assert_int_equal(req(buf, &r), -1);
}


static void
test_reply_roundtrip(void **state)
{
    cli_ctl_msg_t  m;
    json_t        *o, *lines;
    uint8_t       *f;
    size_t         n;
    uint32_t       len;

    (void) state;
    lines = json_pack("[s,s]", "a", "b");
    o = cli_ctl_reply_ok(5, CLI_EXIT_OK, lines, json_pack("[{s:s}]", "n",
                                                          "x"));
    assert_non_null(o);
    assert_int_equal(cli_ctl_frame(o, TS_CLI_CTL_REPLY_MAX_B, &f, &n), 0);
    json_decref(o);
    assert_int_equal(cli_ctl_hdr_len(f, TS_CLI_CTL_REPLY_MAX_B, &len), 0);
    assert_int_equal(len + CLI_CTL_HDR_B, n);
    assert_int_equal(cli_ctl_msg_parse(f + 4, len, &m, err, sizeof(err)), 0);
    assert_int_equal(m.is_event, 0);
    assert_int_equal(m.id, 5);
    assert_int_equal(m.ok, 1);
    assert_int_equal(json_array_size(m.lines), 2);
    assert_true(json_is_array(m.result));
    cli_ctl_msg_free(&m);
    free(f);

    /* a failure without an id (the request's was unreadable) */
    o = cli_ctl_reply_err(0, 0, CLI_EXIT_NOT_FOUND, "no such group", NULL);
    assert_int_equal(cli_ctl_frame(o, TS_CLI_CTL_REPLY_MAX_B, &f, &n), 0);
    json_decref(o);
    assert_int_equal(cli_ctl_msg_parse(f + 4, n - 4, &m, err, sizeof(err)),
                     0);
    assert_int_equal(m.ok, 0);
    assert_int_equal(m.exit, CLI_EXIT_NOT_FOUND);
    assert_string_equal(m.error, "no such group");
    cli_ctl_msg_free(&m);
    free(f);

    /* an error text that is not UTF-8 still makes a reply */
    o = cli_ctl_reply_err(1, 3, CLI_EXIT_FAILURE, "bad \xff", NULL);
    assert_non_null(o);
    json_decref(o);

    /* a frame over the limit is not made */
    o = cli_ctl_event("log", "0123456789");
    assert_int_equal(cli_ctl_frame(o, 8, &f, &n), -1);
    assert_int_equal(errno, EMSGSIZE);
    json_decref(o);

    /* messages the CLI refuses */
    assert_int_equal(cli_ctl_msg_parse("{\"id\":1,\"ok\":1,\"exit\":0}", 24,
                                       &m, err, sizeof(err)), -1);
    assert_int_equal(cli_ctl_msg_parse("{\"id\":1,\"ok\":false,\"exit\":3}",
                                       28, &m, err, sizeof(err)), -1);
    assert_int_equal(cli_ctl_msg_parse("{\"id\":1,\"ok\":true,\"exit\":99}",
                                       28, &m, err, sizeof(err)), -1);
    assert_int_equal(cli_ctl_msg_parse("{\"event\":\"log\",\"lines\":[1]}",
                                       27, &m, err, sizeof(err)), -1);
}


static void
test_io_frames(void **state)
{
    int       sv[2];
    uint8_t   hdr[4], *b;
    size_t    n;
    int64_t   t0;

    (void) state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);

    /* a whole frame */
    cli_ctl_hdr_put(hdr, 2);
    assert_int_equal(cli_ctl_write(sv[0], hdr, 4, 1000), 0);
    assert_int_equal(cli_ctl_write(sv[0], "{}", 2, 1000), 0);
    assert_int_equal(cli_ctl_read(sv[1], 64, 1000, &b, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal((char *) b, "{}");
    free(b);

    /* a length of 0 or above the limit: refused after the header */
    cli_ctl_hdr_put(hdr, 65);
    assert_int_equal(cli_ctl_write(sv[0], hdr, 4, 1000), 0);
    assert_int_equal(cli_ctl_read(sv[1], 64, 1000, &b, &n), -1);
    assert_int_equal(errno, EMSGSIZE);
    cli_ctl_hdr_put(hdr, 0);
    assert_int_equal(cli_ctl_write(sv[0], hdr, 4, 1000), 0);
    assert_int_equal(cli_ctl_read(sv[1], 64, 1000, &b, &n), -1);
    assert_int_equal(errno, EMSGSIZE);

    /* nothing comes: the caller's wait for the first byte */
    t0 = ts_now_ms();
    assert_int_equal(cli_ctl_read(sv[1], 64, 100, &b, &n), -1);
    assert_int_equal(errno, EAGAIN);
    assert_true(ts_now_ms() - t0 < 2000);

    /* a frame cut short by the peer's close */
    cli_ctl_hdr_put(hdr, 10);
    assert_int_equal(cli_ctl_write(sv[0], hdr, 4, 1000), 0);
    assert_int_equal(cli_ctl_write(sv[0], "{\"a\"", 4, 1000), 0);
    close(sv[0]);
    assert_int_equal(cli_ctl_read(sv[1], 64, 1000, &b, &n), -1);
    assert_int_equal(errno, EPROTO);
    /* and then a clean end */
    assert_int_equal(cli_ctl_read(sv[1], 64, 1000, &b, &n), -1);
    assert_int_equal(errno, ECONNRESET);
    close(sv[1]);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_req_ok),
        cmocka_unit_test(test_req_refused),
        cmocka_unit_test(test_req_limits),
        cmocka_unit_test(test_reply_roundtrip),
        cmocka_unit_test(test_io_frames),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
