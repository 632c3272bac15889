/*
 * test_http.c -- unit tests of the http/ layer's pure parts: the
 * Prometheus text writer (http/ts_prom.c: label escaping, the label list
 * bound, histogram buckets cumulative with +Inf, _sum and _count, the
 * reply size cap), the API key file (http/ts_http_key.c: made 0600 with
 * 64 hex digits, read back unchanged, refused when others may read it,
 * when it holds anything else, or when it is a symlink) and the loopback
 * rule that decides HTTP or HTTPS (ts_http_is_loopback).  The server
 * itself is tested with real sockets in tests/system/test_tracker_http.py.
 *
 * Locking: none (single-threaded).  Crash behaviour: temporary files in a
 * mkdtemp directory, removed at the end.
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
#include <jansson.h>

#include "ts_http.h"
#include "ts_http_key.h"
#include "ts_prom.h"


static void
test_prom_labels(void **state)
{
    char lb[64];

    lb[0] = '\0';
    assert_int_equal(ts_prom_label(lb, sizeof(lb), "a", "x\"y\\z\nw"), 0);
    assert_string_equal(lb, "a=\"x\\\"y\\\\z\\nw\"");
    assert_int_equal(ts_prom_label(lb, sizeof(lb), "b", "1"), 0);
    assert_string_equal(lb, "a=\"x\\\"y\\\\z\\nw\",b=\"1\"");
    /* a value that does not fit is refused, never cut silently */
    assert_int_equal(ts_prom_label(lb, sizeof(lb), "c",
                     "0123456789012345678901234567890123456789"), -1);
}


static void
test_prom_text(void **state)
{
    static const double   le[3] = { 0.001, 0.01, 0.1 };
    static const uint64_t c[3] = { 2, 0, 5 };
    ts_prom_t             b;
    size_t                len;
    char                 *t;

    ts_prom_init(&b, 1 << 20);
    ts_prom_family(&b, "x_total", "counter", "Things.");
    ts_prom_u64(&b, "x_total", "k=\"v\"", 18446744073709551615ull);
    ts_prom_family(&b, "d_seconds", "histogram", "Durations.");
    ts_prom_histogram(&b, "d_seconds", "t=\"a\"", le, c, 3, 1, 0.25);
    t = ts_prom_take(&b, &len);
    assert_non_null(t);
    assert_int_equal(strlen(t), len);
    assert_string_equal(t,
        "# HELP x_total Things.\n# TYPE x_total counter\n"
        "x_total{k=\"v\"} 18446744073709551615\n"
        "# HELP d_seconds Durations.\n# TYPE d_seconds histogram\n"
        "d_seconds_bucket{t=\"a\",le=\"0.001\"} 2\n"
        "d_seconds_bucket{t=\"a\",le=\"0.01\"} 2\n"
        "d_seconds_bucket{t=\"a\",le=\"0.1\"} 7\n"
        "d_seconds_bucket{t=\"a\",le=\"+Inf\"} 8\n"
        "d_seconds_sum{t=\"a\"} 0.25\n"
        "d_seconds_count{t=\"a\"} 8\n");
    free(t);
    ts_prom_free(&b);
}


static void
test_prom_cap(void **state)
{
    ts_prom_t  b;
    size_t     len;
    int        i;

    ts_prom_init(&b, 100);
    for (i = 0; i < 20; i++) {
        ts_prom_u64(&b, "some_metric_name", "", (uint64_t) i);
    }
    assert_null(ts_prom_take(&b, &len));
    ts_prom_free(&b);
}


static void
test_key_file(void **state)
{
    char        dir[] = "/tmp/test_http_XXXXXX", path[128], k1[80], k2[80];
    char        err[256], lnk[160];
    struct stat sb;
    int         created, i;
    FILE       *f;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/http-api.key", dir);
    assert_int_equal(ts_http_key_load(path, k1, sizeof(k1), &created, err,
                                      sizeof(err)), 0);
    assert_int_equal(created, 1);
    assert_int_equal(strlen(k1), 64);
    for (i = 0; i < 64; i++) {
        assert_non_null(strchr("0123456789abcdef", k1[i]));
    }
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(ts_http_key_load(path, k2, sizeof(k2), &created, err,
                                      sizeof(err)), 0);
    assert_int_equal(created, 0);
    assert_string_equal(k1, k2);

    /* others may read it: refused */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(ts_http_key_load(path, k2, sizeof(k2), &created, err,
                                      sizeof(err)), -1);
    assert_non_null(strstr(err, "chmod 600"));
    assert_int_equal(chmod(path, 0600), 0);

    /* not one hex key: refused */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a key\n", f);
    fclose(f);
    assert_int_equal(ts_http_key_load(path, k2, sizeof(k2), &created, err,
                                      sizeof(err)), -1);
    assert_non_null(strstr(err, "hex digits"));

    /* a symlink in its place: refused, not followed */
    assert_int_equal(unlink(path), 0);
    snprintf(lnk, sizeof(lnk), "%s/other", dir);
    f = fopen(lnk, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", k1);
    fclose(f);
    assert_int_equal(chmod(lnk, 0600), 0);
    assert_int_equal(symlink(lnk, path), 0);
    assert_int_equal(ts_http_key_load(path, k2, sizeof(k2), &created, err,
                                      sizeof(err)), -1);
    unlink(path);
    unlink(lnk);
    rmdir(dir);
}


/* A POST body's type and JSON rules (ts_http_body_parse). */
static void
test_body_parse(void **state)
{
    static const struct {
        const char *ct, *body;
        int         want;
    } cases[] = {
        { "application/json", "{}", 0 },
        { "Application/JSON; charset=utf-8", "{\"a\":1}", 0 },
        { "  application/json", "{}", 0 },
        { "application/json ", " {} ", 0 },
        { NULL, "{}", 415 },
        { "", "{}", 415 },
        { "text/plain", "{}", 415 },
        { "application/jsonx", "{}", 415 },
        { "application/json-patch+json", "{}", 415 },
        { "application/json", "", 400 },
        { "application/json", "[]", 400 },
        { "application/json", "\"s\"", 400 },
        { "application/json", "{\"a\":1,\"a\":2}", 400 },
        { "application/json", "{\"a\":1} x", 400 },
        { "application/json", "{\"a\":\"\xff\"}", 400 },
    };
    char    err[200];
    json_t *o;
    size_t  i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        o = (json_t *) (void *) err;
        err[0] = '\0';
        assert_int_equal(ts_http_body_parse(cases[i].ct, cases[i].body,
                                            strlen(cases[i].body), &o, err,
                                            sizeof(err)), cases[i].want);
        if (cases[i].want == 0) {
            assert_non_null(o);
            assert_true(json_is_object(o));
            json_decref(o);
        } else {
            assert_null(o);
            assert_true(err[0] != '\0');
        }
    }
}


static void
test_loopback(void **state)
{
    assert_true(ts_http_is_loopback("127.0.0.1"));
    assert_true(ts_http_is_loopback("127.9.8.7"));
    assert_true(ts_http_is_loopback("::1"));
    assert_true(ts_http_is_loopback("::ffff:127.0.0.1"));
    assert_false(ts_http_is_loopback("0.0.0.0"));
    assert_false(ts_http_is_loopback("::"));
    assert_false(ts_http_is_loopback("10.0.0.1"));
    assert_false(ts_http_is_loopback("128.0.0.1"));
    assert_false(ts_http_is_loopback("::ffff:10.0.0.1"));
    assert_false(ts_http_is_loopback("localhost"));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_prom_labels),
        cmocka_unit_test(test_prom_text),
        cmocka_unit_test(test_prom_cap),
        cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_body_parse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
