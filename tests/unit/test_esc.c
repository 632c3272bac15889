/*
 * test_esc.c -- unit tests of the escaper of text from others
 * (common/ts_esc.c), the file name rule built on it
 * (ts_valid_new_filename in common/ts_proto.c); the log records that use
 * it are tested in test_proto.c.
 *
 * Every class of ts_esc.h is checked with its boundaries (the code points
 * just outside each range stay as they are), every ill-formed UTF-8 form
 * of Unicode table 3-7, the output bound (4-fold, truncation only
 * between whole characters), idempotence and cleanliness of the output
 * over random input.
 *
 * Locking: none (single-threaded).  Crash behaviour: none.
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
#include "ts_esc.h"
#include "ts_proto.h"


/* ts_esc of n bytes of in, flags fl, compared with want */
static void
check(const char *in, size_t n, unsigned fl, const char *want)
{
    char  out[256];

    ts_esc(out, sizeof(out), in, n, fl);
    if (strcmp(out, want) != 0) {
        fail_msg("ts_esc of %zu bytes: got \"%s\", want \"%s\"", n, out,
                 want);
    }
}

#define CHECK(lit, want)  check(lit, sizeof(lit) - 1, 0, want)


static void
test_classes(void **state)
{
    (void) state;
    /* printable ASCII and valid UTF-8 pass as they are */
    CHECK("plain name.txt", "plain name.txt");
    CHECK("r\xc3\xa9sum\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
          "r\xc3\xa9sum\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
    CHECK("a\\b", "a\\b");

    /* C0 and DEL */
    CHECK("a\x00" "b", "a\\x00b");
    CHECK("\x01\x1b[2J\x1f", "\\x01\\x1b[2J\\x1f");
    CHECK("x\ny\tz\r", "x\\x0ay\\x09z\\x0d");
    CHECK("\x7f~ ", "\\x7f~ ");

    /* C1 in UTF-8: U+0080..U+009F; U+00A0 (no-break space) is text */
    CHECK("\xc2\x80", "\\u{0080}");
    CHECK("a\xc2\x9b" "31mX", "a\\u{009b}31mX");
    CHECK("\xc2\x9f\xc2\xa0", "\\u{009f}\xc2\xa0");

    /* raw C1 bytes (Latin-1 text): not UTF-8 */
    CHECK("a\x9b" "31m", "a\\x9b31m");
    CHECK("\x85\x80\xbf", "\\x85\\x80\\xbf");

    /* bidirectional controls and their neighbours */
    CHECK("\xd8\x9c", "\\u{061c}");                   /* ALM */
    CHECK("\xd8\x9b\xd8\x9d", "\xd8\x9b\xd8\x9d");     /* U+061B, U+061D */
    CHECK("\xe2\x80\x8d\xe2\x80\x8e\xe2\x80\x8f\xe2\x80\x90",
          "\xe2\x80\x8d\\u{200e}\\u{200f}\xe2\x80\x90");
    CHECK("\xe2\x80\xa9\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad"
          "\xe2\x80\xae\xe2\x80\xaf",
          "\\u{2029}\\u{202a}\\u{202b}\\u{202c}\\u{202d}\\u{202e}"
          "\xe2\x80\xaf");
    CHECK("\xe2\x81\xa5\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9"
          "\xe2\x81\xaa",
          "\xe2\x81\xa5\\u{2066}\\u{2067}\\u{2068}\\u{2069}\xe2\x81\xaa");
    CHECK("evil\xe2\x80\xaetxt.exe", "evil\\u{202e}txt.exe");

    /* line and paragraph separators */
    CHECK("\xe2\x80\xa7\xe2\x80\xa8", "\xe2\x80\xa7\\u{2028}");
}


static void
test_bad_utf8(void **state)
{
    (void) state;
    /* overlong forms */
    CHECK("\xc0\xaf", "\\xc0\\xaf");
    CHECK("\xc1\xbf", "\\xc1\\xbf");
    CHECK("\xe0\x80\xaf", "\\xe0\\x80\\xaf");
    CHECK("\xe0\x9f\xbf", "\\xe0\\x9f\\xbf");
    CHECK("\xe0\xa0\x80", "\xe0\xa0\x80");             /* U+0800 */
    CHECK("\xf0\x8f\xbf\xbf", "\\xf0\\x8f\\xbf\\xbf");
    CHECK("\xf0\x90\x80\x80", "\xf0\x90\x80\x80");     /* U+10000 */
    /* surrogates, and the code points beside them */
    CHECK("\xed\xa0\x80", "\\xed\\xa0\\x80");
    CHECK("\xed\xbf\xbf", "\\xed\\xbf\\xbf");
    CHECK("\xed\x9f\xbf\xee\x80\x80", "\xed\x9f\xbf\xee\x80\x80");
    /* above U+10FFFF, and U+10FFFF itself */
    CHECK("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");
    CHECK("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");
    CHECK("\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80");
    CHECK("\xfe\xff", "\\xfe\\xff");
    /* a sequence cut short, in the middle and at the end of the input */
    CHECK("\xe2\x80" "A", "\\xe2\\x80A");
    CHECK("x\xe2\x80", "x\\xe2\\x80");
    CHECK("\xf0\x9f\x98", "\\xf0\\x9f\\x98");
    CHECK("\xc2", "\\xc2");
    /* a valid sequence right after a bad byte is kept */
    CHECK("\xff\xc3\xa9", "\\xff\xc3\xa9");
    /* the length given, not the NUL, ends the input: a sequence cut by
     * n is bad even if the bytes after n would complete it */
    check("\xe2\x80\xae", 2, 0, "\\xe2\\x80");
}


static void
test_flags(void **state)
{
    (void) state;
    check("a\nb\n", 4, TS_ESC_KEEP_NL, "a\nb\n");
    check("a\r\nb", 4, TS_ESC_KEEP_NL, "a\\x0d\nb");
    check("a\\x9b", 5, 0, "a\\x9b");
    check("a\\x9b", 5, TS_ESC_BSLASH, "a\\\\x9b");
    /* with BSLASH the literal text and the escaped byte differ */
    check("a\x9b", 2, TS_ESC_BSLASH, "a\\x9b");
}


/* What ts_esc must write into sz bytes: the escape of the longest
 * prefix of in that ends between whole characters (its escape is a
 * prefix of the full one) and fits with the NUL. */
static const char *
longest_fit(const char *in, size_t n, unsigned flags, const char *full,
            size_t sz)
{
    static char  best[128];
    char         e[128];
    size_t       k, l;

    best[0] = '\0';
    for (k = 0; k <= n; k++) {
        l = ts_esc(e, sizeof(e), in, k, flags);
        if (l < sz && memcmp(e, full, l) == 0 && l >= strlen(best)) {
            memcpy(best, e, l + 1);
        }
    }
    return best;
}


/* Output bounded: the worst case fits TS_ESC_MAX_B; a smaller buffer
 * gets a NUL-terminated prefix that ends between whole characters. */
static void
test_bounds(void **state)
{
    static const char  in[] = "a\x9b\xc2\x9b\xe2\x80\xae\xf0\x9f\x98\x80"
                              "\x1b\\\xc3\xa9z";
    char                full[128], part[128], worst[TS_ESC_MAX_B(64)];
    unsigned char       bad[64];
    size_t              fl, sz, got, i;
    unsigned            flags;

    (void) state;
    /* every byte bad or a control: exactly 4 bytes each */
    for (i = 0; i < sizeof(bad); i++) {
        bad[i] = (unsigned char) (i % 2 ? 0x80 + i : i % 32);
    }
    got = ts_esc(worst, sizeof(worst), bad, sizeof(bad), 0);
    assert_int_equal(got, 4 * sizeof(bad));
    assert_int_equal(strlen(worst), got);
    /* C1 in UTF-8 grows 4-fold too (2 bytes -> 8) */
    got = ts_esc(worst, sizeof(worst), "\xc2\x9b\xc2\x9b", 4, 0);
    assert_int_equal(got, 16);

    for (flags = 0; flags <= TS_ESC_BSLASH; flags += TS_ESC_BSLASH) {
        fl = ts_esc(full, sizeof(full), in, sizeof(in) - 1, flags);
        assert_true(fl < TS_ESC_MAX_B(sizeof(in) - 1));
        assert_int_equal(ts_esc(part, 0, in, sizeof(in) - 1, flags), 0);
        for (sz = 1; sz <= fl + 1; sz++) {
            memset(part, 'Z', sizeof(part));
            got = ts_esc(part, sz, in, sizeof(in) - 1, flags);
            assert_true(got < sz);
            assert_int_equal(part[got], '\0');
            assert_int_equal(memcmp(part, full, got), 0);
            assert_string_equal(part, longest_fit(in, sizeof(in) - 1,
                                                  flags, full, sz));
        }
        assert_string_equal(part, full);
    }
}


static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static unsigned
rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned) (rng >> 32);
}


/* random bytes, biased towards the interesting ones */
static void
test_random(void **state)
{
    static const unsigned char  pick[] = {
        0x00, 0x1b, 0x0a, 0x7f, 0x80, 0x9b, 0xbf, 0xc0, 0xc2, 0xd8, 0xe0,
        0xe2, 0x80, 0xae, 0xa8, 0x81, 0xa6, 0xed, 0xf0, 0xf4, 0xf5, 0xff,
        '\\', 'a', ' ',
    };
    unsigned char  in[96];
    char           a[TS_ESC_MAX_B(96)], b[TS_ESC_MAX_B(TS_ESC_MAX_B(96))];
    size_t         n, la, lb, i;
    int            round;

    (void) state;
    for (round = 0; round < 20000; round++) {
        n = rnd() % sizeof(in);
        for (i = 0; i < n; i++) {
            in[i] = rnd() % 3 ? pick[rnd() % sizeof(pick)]
                              : (unsigned char) rnd();
        }
        la = ts_esc(a, sizeof(a), in, n, round % 2 ? TS_ESC_BSLASH : 0);
        assert_true(la <= 4 * n);
        assert_int_equal(strlen(a), la);
        /* clean: nothing left to escape ... */
        assert_int_equal(ts_esc_scan(a, la, NULL, NULL), la);
        /* ... so escaping again changes nothing (without BSLASH) */
        lb = ts_esc(b, sizeof(b), a, la, 0);
        assert_int_equal(lb, la);
        assert_string_equal(a, b);
        /* the input was clean exactly when the output equals it */
        if (round % 2 == 0) {
            assert_int_equal(ts_esc_scan(in, n, NULL, NULL) == n,
                             la == n && memcmp(a, in, n) == 0);
        }
    }
}


static void
test_scan_why(void **state)
{
    ts_esc_class_t  k;
    uint32_t        cp;
    char            why[96];

    (void) state;
    assert_int_equal(ts_esc_scan("abc", 3, &k, &cp), 3);
    assert_int_equal(k, TS_ESC_PRINT);
    assert_int_equal(ts_esc_scan("ab\xe2\x80\xae", 5, &k, &cp), 2);
    assert_int_equal(k, TS_ESC_BIDI);
    assert_int_equal(cp, 0x202e);
    assert_int_equal(ts_esc_scan("\xc3\xa9\x9b", 3, &k, &cp), 2);
    assert_int_equal(k, TS_ESC_BAD_UTF8);
    assert_int_equal(cp, 0x9b);
    assert_int_equal(ts_esc_scan("\xc2\x9b", 2, &k, &cp), 0);
    assert_int_equal(k, TS_ESC_C1);
    assert_int_equal(ts_esc_scan("\xe2\x80\xa8", 3, &k, NULL), 0);
    assert_int_equal(k, TS_ESC_SEP);
    assert_int_equal(ts_esc_scan("x\x1b", 2, &k, NULL), 1);
    assert_int_equal(k, TS_ESC_C0);

    assert_int_equal(ts_esc_why("fine \xc3\xa9.txt", why, sizeof(why)), 0);
    assert_string_equal(why, "");
    assert_int_equal(ts_esc_why("abc\xe2\x80\xaetxt", why, sizeof(why)), -1);
    assert_string_equal(why, "U+202E (a bidirectional control) at byte 3");
    assert_int_equal(ts_esc_why("\xc2\x9b", why, sizeof(why)), -1);
    assert_string_equal(why, "U+009B (a C1 control character) at byte 0");
    assert_int_equal(ts_esc_why("a\x9b", why, sizeof(why)), -1);
    assert_string_equal(why, "byte 0x9b (invalid UTF-8) at byte 1");
    assert_int_equal(ts_esc_why("\x1b[", why, sizeof(why)), -1);
    assert_string_equal(why, "byte 0x1b (a control character) at byte 0");
    assert_int_equal(ts_esc_why("\xe2\x80\xa9", why, sizeof(why)), -1);
    assert_string_equal(why, "U+2029 (a line separator) at byte 0");
    assert_string_equal(ts_esc_class_name(TS_ESC_PRINT), "");
}


static void
test_valid_new_filename(void **state)
{
    static const struct { const char *s; int ok; } tab[] = {
        /* every name ts_valid_filename accepted and a terminal shows
         * as it is stays valid */
        { "file.txt", 1 }, { "my file (1).tar.gz", 1 }, { ".hidden", 1 },
        { "...", 1 }, { "..a", 1 }, { "r\xc3\xa9sum\xc3\xa9.pdf", 1 },
        { "\xe6\x97\xa5\xe6\x9c\xac", 1 }, { "a\\b", 1 }, { " ", 1 },
        { "\xf0\x9f\x98\x80.png", 1 }, { "nbsp\xc2\xa0.txt", 1 },
        { "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d.txt", 1 },   /* Hebrew */
        /* what it refused stays refused */
        { "", 0 }, { ".", 0 }, { "..", 0 }, { "a/b", 0 }, { "a\nb", 0 },
        { "\x1b[31m", 0 }, { "a\x7f", 0 },
        /* new: C1, bidi, separators, invalid UTF-8 */
        { "a\xc2\x9b" "31m", 0 }, { "a\x9b" "31m", 0 },
        { "evil\xe2\x80\xaetxt.exe", 0 }, { "\xe2\x81\xa6x", 0 },
        { "x\xe2\x80\x8f", 0 }, { "\xd8\x9c", 0 }, { "a\xe2\x80\xa8" "b", 0 },
        { "caf\xe9.txt", 0 }, { "\xc0\xae\xc0\xae", 0 },
        { "\xed\xa0\x80", 0 },
    };
    char    why[128];
    size_t  i;

    (void) state;
    for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        if (ts_valid_new_filename(tab[i].s, why, sizeof(why)) != tab[i].ok) {
            fail_msg("ts_valid_new_filename(#%zu) != %d", i, tab[i].ok);
        }
        assert_int_equal(why[0] == '\0', tab[i].ok);
        /* the stored-name rule is no stricter than the new-name rule */
        if (tab[i].ok) {
            assert_true(ts_valid_filename(tab[i].s));
        }
    }
    /* old names stay readable: what only the new rule refuses */
    assert_true(ts_valid_filename("evil\xe2\x80\xaetxt.exe"));
    assert_true(ts_valid_filename("a\x9b" "31m"));
    assert_int_equal(ts_valid_new_filename("a\xe2\x80\xae", why,
                                           sizeof(why)), 0);
    assert_string_equal(why, "U+202E (a bidirectional control) at byte 1");
    assert_int_equal(ts_valid_new_filename("a/b", why, sizeof(why)), 0);
    assert_string_equal(why, "no '/', control characters, '.' or '..'");
    assert_int_equal(ts_valid_new_filename("ok", NULL, 0), 1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_bad_utf8),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_scan_why),
        cmocka_unit_test(test_valid_new_filename),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
