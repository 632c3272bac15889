/*
 * test_cli_rate.c -- the RATE syntax of --max-upload-rate,
 * --max-download-rate and the rate command (cli_rate_parse): suffixes,
 * bounds and hostile strings.
 *
 * Locking: single thread.  Crash behaviour: nothing persistent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "ts_config.h"
#include "cli_rate.h"


static void
test_good(void **state)
{
    static const struct { const char *s; uint64_t v; } ok[] = {
        { "0", 0 }, { "1024", 1024 }, { "1K", 1024 }, { "2k", 2048 },
        { "2M", 2ull << 20 }, { "3G", 3ull << 30 }, { "2MiB", 2ull << 20 },
        { "2MB", 2ull << 20 }, { "2M/s", 2ull << 20 },
        { "500KiB/s", 500ull << 10 }, { "1024G", 1ull << 40 },
        { "1099511627776", 1ull << 40 }, { "000", 0 },
    };
    uint64_t v;
    size_t   i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = 12345;
        assert_int_equal(cli_rate_parse(ok[i].s, &v), 0);
        assert_int_equal(v, ok[i].v);
    }
}


static void
test_bad(void **state)
{
    static const char *bad[] = {
        "", " 1M", "1M ", "-1", "+1", "1.5M", "12X", "100", "1023",
        "2K5", "0x10", "1e6", "2Mi", "2iB", "M", "K1", "1025G",
        "1099511627777", "99999999999999999999999999999999", "2M/", "2M/h",
        "2MM", "1T",
    };
    uint64_t v = 7;
    size_t   i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cli_rate_parse(bad[i], &v), -1);
    }
    assert_int_equal(cli_rate_parse(NULL, &v), -1);
    assert_int_equal(v, 7);     /* untouched on failure */
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
