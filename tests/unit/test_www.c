/*
 * test_www.c -- unit tests of the embedded dashboard (http/ts_www.c): the
 * route table it adds (open, "/" exact and "/assets/" prefix, refused
 * when the table is full), exact-match lookup (every file of the table
 * by its name, nothing else: "..", case, trailing characters), content
 * types, constant bodies that the server must not free, the page's
 * Content-Security-Policy, site.json and the 414 for long paths.  The
 * headers on the wire and hostile requests through libmicrohttpd are in
 * tests/system/test_dashboard.py.
 *
 * Locking: none (single-threaded).  Crash behaviour: nothing persistent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ts_config.h"
#include "ts_www.h"
#include "ts_www_data.h"


static void
get(const char *path, ts_http_resp_t *r)
{
    memset(r, 0, sizeof(*r));
    ts_www_get((void *) "tracker", path, r);
}


static void
done(ts_http_resp_t *r)
{
    ts_http_reply(r, 0, NULL, NULL, 0);     /* frees only a malloc'd body */
}


static void
test_routes(void **state)
{
    ts_http_route_t tab[4];

    assert_int_equal(ts_www_routes(tab, 1, 4, "node"), 3);
    assert_string_equal(tab[1].path, "/");
    assert_int_equal(tab[1].prefix, 0);
    assert_string_equal(tab[2].path, "/assets/");
    assert_int_equal(tab[2].prefix, 1);
    assert_true(tab[1].open && tab[2].open);
    assert_string_equal(tab[2].arg, "node");
    assert_int_equal(ts_www_routes(tab, 3, 4, "node"), -1);
}


static void
test_every_file_and_types(void **state)
{
    ts_http_resp_t r;
    char           path[300];
    int            i;

    assert_true(ts_www_nfiles >= 5);
    for (i = 0; i < ts_www_nfiles; i++) {
        snprintf(path, sizeof(path), "/%s", ts_www_files[i].name);
        get(strcmp(ts_www_files[i].name, "index.html") == 0 ? "/" : path,
            &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.len, ts_www_files[i].len);
        assert_ptr_equal(r.body, ts_www_files[i].data);
        assert_int_equal(r.static_body, 1);
        assert_string_equal(r.cache, TS_WWW_CACHE);
        done(&r);
    }
    get("/", &r);
    assert_string_equal(r.ctype, "text/html; charset=utf-8");
    assert_string_equal(r.csp, TS_WWW_CSP);
    get("/assets/app.js", &r);
    assert_string_equal(r.ctype, "text/javascript; charset=utf-8");
    assert_null(r.csp);
    get("/assets/style.css", &r);
    assert_string_equal(r.ctype, "text/css; charset=utf-8");
    get("/assets/icon.svg", &r);
    assert_string_equal(r.ctype, "image/svg+xml");
}


static void
test_exact_match_only(void **state)
{
    static const char *bad[] = {
        "/index.html", "/assets/", "/assets/../index.html",
        "/assets/./app.js", "/assets//app.js", "/assets/app.js/",
        "/assets/APP.JS", "/assets/app.jsx", "/assets/app.j",
        "/assets/../../etc/passwd", "/x/assets/app.js", "/app.js",
        "/assets/index.html", "",
    };
    ts_http_resp_t r;
    size_t         i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        get(bad[i], &r);
        assert_int_equal(r.status, 404);
        assert_int_equal(r.static_body, 0);
        assert_non_null(strstr(r.body, "no such file"));
        done(&r);
    }
}


static void
test_site_json_and_long_path(void **state)
{
    ts_http_resp_t r;
    char           path[TS_WWW_PATH_MAX_B + 2];

    get("/assets/site.json", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.static_body, 0);
    assert_string_equal(r.body, "{\"kind\":\"tracker\"}");
    assert_string_equal(r.ctype, "application/json");
    done(&r);
    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    get(path, &r);
    assert_int_equal(r.status, 414);
    done(&r);
    path[sizeof(path) - 2] = '\0';      /* exactly the limit: a 404 */
    get(path, &r);
    assert_int_equal(r.status, 404);
    done(&r);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_every_file_and_types),
        cmocka_unit_test(test_exact_match_only),
        cmocka_unit_test(test_site_json_and_long_path),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
