/*
 * test_crypto.c -- unit tests for ts_crypto: SHA1/SHA-256 known answers,
 * streaming vs one-shot, PBKDF2-HMAC-SHA1 (RFC 6070), randomness,
 * constant-time compare and the hex helpers.
 *
 * Locking: single-threaded test process.
 * Crash behaviour: a crash is a test failure; nothing persistent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ts_crypto.h"

static void
expect_hex(const uint8_t *p, size_t n, const char *want)
{
    char got[2 * 64 + 1];

    assert_true(n <= 64);
    ts_hex(p, n, got);
    assert_string_equal(got, want);
}

static void
test_sha1_kat(void **state)
{
    uint8_t d[TS_SHA1_B];
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

    assert_int_equal(ts_sha1("abc", 3, d), 0);
    expect_hex(d, sizeof(d), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_int_equal(ts_sha1("", 0, d), 0);
    expect_hex(d, sizeof(d), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_int_equal(ts_sha1(NULL, 0, d), 0);
    expect_hex(d, sizeof(d), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_int_equal(ts_sha1(m, strlen(m), d), 0);
    expect_hex(d, sizeof(d), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    /* NULL with a length is a caller bug, refused */
    assert_int_equal(ts_sha1(NULL, 5, d), -1);
}

static void
test_sha256_kat(void **state)
{
    uint8_t d[TS_SHA256_B];

    assert_int_equal(ts_sha256("abc", 3, d), 0);
    expect_hex(d, sizeof(d), "ba7816bf8f01cfea414140de5dae2223"
                             "b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(ts_sha256("", 0, d), 0);
    expect_hex(d, sizeof(d), "e3b0c44298fc1c149afbf4c8996fb924"
                             "27ae41e4649b934ca495991b7852b855");
}

static void
test_sha1_streaming(void **state)
{
    size_t     n = 3 * 512 * 1024 + 77, i, off, step;
    uint8_t   *buf = malloc(n);
    uint8_t    one[TS_SHA1_B], st[TS_SHA1_B], again[TS_SHA1_B];
    ts_sha1_t *h = ts_sha1_new();
    static const size_t steps[] = { 1, 3, 7, 63, 64, 65, 1000, 4099,
                                    65537, 524287 };

    assert_non_null(buf);
    assert_non_null(h);
    for (i = 0; i < n; i++) {
        buf[i] = (uint8_t) (i * 31 + (i >> 9));
    }
    assert_int_equal(ts_sha1(buf, n, one), 0);
    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        step = steps[i];
        for (off = 0; off < n; off += step) {
            size_t k = n - off < step ? n - off : step;

            assert_int_equal(ts_sha1_update(h, buf + off, k), 0);
        }
        assert_int_equal(ts_sha1_final(h, st), 0);
        assert_memory_equal(one, st, TS_SHA1_B);
    }
    /* final resets: the next stream starts clean */
    assert_int_equal(ts_sha1_update(h, "abc", 3), 0);
    assert_int_equal(ts_sha1_update(h, "", 0), 0);
    assert_int_equal(ts_sha1_final(h, again), 0);
    expect_hex(again, TS_SHA1_B, "a9993e364706816aba3e25717850c26c9cd0d89d");
    /* reset drops a half-fed stream */
    assert_int_equal(ts_sha1_update(h, "junk", 4), 0);
    assert_int_equal(ts_sha1_reset(h), 0);
    assert_int_equal(ts_sha1_update(h, "ab", 2), 0);
    assert_int_equal(ts_sha1_update(h, "c", 1), 0);
    assert_int_equal(ts_sha1_final(h, again), 0);
    expect_hex(again, TS_SHA1_B, "a9993e364706816aba3e25717850c26c9cd0d89d");
    ts_sha1_free(h);
    ts_sha1_free(NULL);
    free(buf);
}

static void
test_pbkdf2_rfc6070(void **state)
{
    uint8_t out[25];

    assert_int_equal(ts_pbkdf2_sha1("password", 8, (const uint8_t *) "salt",
                                    4, 1, out, 20), 0);
    expect_hex(out, 20, "0c60c80f961f0e71f3a9b524af6012062fe037a6");
    assert_int_equal(ts_pbkdf2_sha1("password", 8, (const uint8_t *) "salt",
                                    4, 2, out, 20), 0);
    expect_hex(out, 20, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957");
    assert_int_equal(ts_pbkdf2_sha1("password", 8, (const uint8_t *) "salt",
                                    4, 4096, out, 20), 0);
    expect_hex(out, 20, "4b007901b765489abead49d926f721d065a429c1");
    assert_int_equal(ts_pbkdf2_sha1("passwordPASSWORDpassword", 24,
                         (const uint8_t *) "saltSALTsaltSALTsaltSALTsaltSALTsalt",
                         36, 4096, out, 25), 0);
    expect_hex(out, 25, "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038");
    /* embedded NULs count: lengths, not strings */
    assert_int_equal(ts_pbkdf2_sha1("pass\0word", 9,
                                    (const uint8_t *) "sa\0lt", 5, 4096,
                                    out, 16), 0);
    expect_hex(out, 16, "56fa6aa75548099dcc37d7f03425e0c3");
    /* refused: zero iterations, zero output */
    assert_int_equal(ts_pbkdf2_sha1("password", 8, (const uint8_t *) "salt",
                                    4, 0, out, 20), -1);
    assert_int_equal(ts_pbkdf2_sha1("password", 8, (const uint8_t *) "salt",
                                    4, 1, out, 0), -1);
}

static void
test_random(void **state)
{
    uint8_t  a[32], b[32], zero[32];
    uint64_t x, y;

    memset(zero, 0, sizeof(zero));
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    assert_int_equal(ts_random(a, sizeof(a)), 0);
    assert_int_equal(ts_random(b, sizeof(b)), 0);
    /* 2^-256 odds of a false failure */
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_int_equal(ts_random(a, 0), 0);
    x = ts_random_u64();
    y = ts_random_u64();
    assert_true(x != y);
}

static void
test_ct_equal(void **state)
{
    uint8_t a[16], b[16];

    memset(a, 7, sizeof(a));
    memset(b, 7, sizeof(b));
    assert_int_equal(ts_ct_equal(a, b, sizeof(a)), 1);
    b[15] ^= 1;
    assert_int_equal(ts_ct_equal(a, b, sizeof(a)), 0);
    assert_int_equal(ts_ct_equal(a, b, 15), 1);
    b[0] ^= 0x80;
    assert_int_equal(ts_ct_equal(a, b, 15), 0);
    assert_int_equal(ts_ct_equal(a, b, 0), 1);
}

static void
test_hex(void **state)
{
    uint8_t in[6] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff }, out[6];
    char    h[13];

    ts_hex(in, sizeof(in), h);
    assert_string_equal(h, "00017f80abff");
    assert_int_equal(ts_unhex(h, out, sizeof(out)), 0);
    assert_memory_equal(in, out, sizeof(in));
    assert_int_equal(ts_unhex("00017F80ABFF", out, sizeof(out)), 0);
    assert_memory_equal(in, out, sizeof(in));
    ts_hex(in, 0, h);
    assert_string_equal(h, "");
    assert_int_equal(ts_unhex("", out, 0), 0);

    /* bad: short, long, odd, non-hex; out stays untouched on failure */
    memset(out, 0xee, sizeof(out));
    assert_int_equal(ts_unhex("00017f80abf", out, 6), -1);
    assert_int_equal(ts_unhex("00017f80abff00", out, 6), -1);
    assert_int_equal(ts_unhex("0g017f80abff", out, 6), -1);
    assert_int_equal(ts_unhex("00017f80ab f", out, 6), -1);
    assert_int_equal(ts_unhex("00017f80abf-", out, 6), -1);
    assert_int_equal(ts_unhex("x", out, 0), -1);
    assert_int_equal(ts_unhex(NULL, out, 6), -1);
    assert_int_equal(out[0], 0xee);
    assert_int_equal(out[5], 0xee);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha1_kat),
        cmocka_unit_test(test_sha256_kat),
        cmocka_unit_test(test_sha1_streaming),
        cmocka_unit_test(test_pbkdf2_rfc6070),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_hex),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
