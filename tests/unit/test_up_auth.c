/*
 * test_up_auth.c -- the uploader's per-link authorization table
 * (workers/up_auth.h): exact (group, name) matching, expiry against the
 * wall clock, renewal, refusals, and eviction when the table is full.
 *
 * Locking: none (a table belongs to one link).  Crash behaviour: pure
 * in-memory tests; nothing to clean up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "up_auth.h"

#define NOW  1700000000000LL

static void
test_empty(void **state)
{
    up_auth_tab_t t;

    (void) state;
    up_auth_init(&t);
    assert_int_equal(up_auth_ok(&t, "g", "f", NOW), 0);
    assert_int_equal(up_auth_ok(&t, "", "", NOW), 0);
    assert_int_equal(up_auth_ok(&t, "", "", 0), 0);
}

static void
test_exact_match(void **state)
{
    up_auth_tab_t t;

    (void) state;
    up_auth_init(&t);
    assert_int_equal(up_auth_put(&t, "grp", "file.bin", NOW + 1000, NOW), 0);
    assert_int_equal(up_auth_ok(&t, "grp", "file.bin", NOW), 1);
    /* another file, another group, prefixes, case: nothing */
    assert_int_equal(up_auth_ok(&t, "grp", "file.bi", NOW), 0);
    assert_int_equal(up_auth_ok(&t, "grp", "file.bin2", NOW), 0);
    assert_int_equal(up_auth_ok(&t, "gr", "file.bin", NOW), 0);
    assert_int_equal(up_auth_ok(&t, "GRP", "file.bin", NOW), 0);
    assert_int_equal(up_auth_ok(&t, "other", "file.bin", NOW), 0);
}

static void
test_expiry_and_renewal(void **state)
{
    up_auth_tab_t t;

    (void) state;
    up_auth_init(&t);
    assert_int_equal(up_auth_put(&t, "g", "f", NOW + 1000, NOW), 0);
    assert_int_equal(up_auth_ok(&t, "g", "f", NOW + 999), 1);
    assert_int_equal(up_auth_ok(&t, "g", "f", NOW + 1000), 0);  /* at expiry */
    assert_int_equal(up_auth_ok(&t, "g", "f", NOW + 5000), 0);

    /* a renewal extends; an older ticket shown later does not shorten */
    assert_int_equal(up_auth_put(&t, "g", "f", NOW + 9000, NOW), 0);
    assert_int_equal(up_auth_put(&t, "g", "f", NOW + 2000, NOW), 0);
    assert_int_equal(up_auth_ok(&t, "g", "f", NOW + 8000), 1);

    /* an already expired ticket is refused and changes nothing */
    assert_int_equal(up_auth_put(&t, "g", "x", NOW - 1, NOW), -1);
    assert_int_equal(up_auth_put(&t, "g", "x", NOW, NOW), -1);
    assert_int_equal(up_auth_ok(&t, "g", "x", NOW - 10), 0);
}

static void
test_refusals(void **state)
{
    up_auth_tab_t t;
    char          g[TS_ID_MAX_B + 2], n[TS_NAME_MAX_B + 2];

    (void) state;
    up_auth_init(&t);
    assert_int_equal(up_auth_put(&t, "", "f", NOW + 1000, NOW), -1);
    assert_int_equal(up_auth_put(&t, "g", "", NOW + 1000, NOW), -1);

    /* longer than the fields: refused, never truncated (a prefix would
     * authorize another name) */
    memset(g, 'a', sizeof(g) - 1);
    g[sizeof(g) - 1] = '\0';
    memset(n, 'b', sizeof(n) - 1);
    n[sizeof(n) - 1] = '\0';
    assert_int_equal(up_auth_put(&t, g, "f", NOW + 1000, NOW), -1);
    assert_int_equal(up_auth_put(&t, "g", n, NOW + 1000, NOW), -1);
    g[TS_ID_MAX_B] = '\0';              /* exactly the maximum: fine */
    n[TS_NAME_MAX_B] = '\0';
    assert_int_equal(up_auth_put(&t, g, n, NOW + 1000, NOW), 0);
    assert_int_equal(up_auth_ok(&t, g, n, NOW), 1);
}

static void
test_full_table(void **state)
{
    up_auth_tab_t t;
    char          name[32];
    int           i;

    (void) state;
    up_auth_init(&t);
    /* file i expires at NOW + 11000 + 1000 * i; f0 is then renewed to
     * expire last, so f1 expires first */
    for (i = 0; i < TS_UP_AUTH_N; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        assert_int_equal(up_auth_put(&t, "g", name,
                                     NOW + 1000 * (i + 1) + 10000, NOW), 0);
    }
    assert_int_equal(up_auth_put(&t, "g", "f0", NOW + 1000000, NOW), 0);
    for (i = 0; i < TS_UP_AUTH_N; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        assert_int_equal(up_auth_ok(&t, "g", name, NOW), 1);
    }
    /* full: the one expiring first (f1) makes room */
    assert_int_equal(up_auth_put(&t, "g", "new", NOW + 50000, NOW), 0);
    assert_int_equal(up_auth_ok(&t, "g", "new", NOW), 1);
    assert_int_equal(up_auth_ok(&t, "g", "f1", NOW), 0);
    assert_int_equal(up_auth_ok(&t, "g", "f0", NOW), 1);
    assert_int_equal(up_auth_ok(&t, "g", "f2", NOW), 1);

    /* later, when f2.. have expired, an expired slot is reused first and
     * live entries stay */
    assert_int_equal(up_auth_put(&t, "g", "late", NOW + 100000,
                                 NOW + 40000), 0);
    assert_int_equal(up_auth_ok(&t, "g", "late", NOW + 40000), 1);
    assert_int_equal(up_auth_ok(&t, "g", "f0", NOW + 40000), 1);
    assert_int_equal(up_auth_ok(&t, "g", "new", NOW + 40000), 1);
}

/* up_auth_until: the link is authenticated until its last ticket ends */
static void
test_until(void **state)
{
    up_auth_tab_t t;

    (void) state;
    up_auth_init(&t);
    assert_true(up_auth_until(&t) == 0);
    assert_int_equal(up_auth_put(&t, "g", "a", NOW + 500, NOW), 0);
    assert_int_equal(up_auth_put(&t, "g", "b", NOW + 200, NOW), 0);
    assert_true(up_auth_until(&t) == NOW + 500);
    assert_int_equal(up_auth_put(&t, "g", "b", NOW + 900, NOW), 0);
    assert_true(up_auth_until(&t) == NOW + 900);
    /* a refused ticket changes nothing */
    assert_int_equal(up_auth_put(&t, "g", "c", NOW - 1, NOW), -1);
    assert_true(up_auth_until(&t) == NOW + 900);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_exact_match),
        cmocka_unit_test(test_expiry_and_renewal),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_full_table),
        cmocka_unit_test(test_until),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
