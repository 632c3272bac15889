/*
 * fuzz_esc.c -- libFuzzer target: the escaper of text from others
 * (common/ts_esc.h) and the new-file-name rule built on it
 * (ts_valid_new_filename, common/ts_proto.h).
 *
 * Input byte 0: bit 0 TS_ESC_KEEP_NL, bit 1 TS_ESC_BSLASH, the rest (>> 2)
 * picks a small output size for the truncation check; the rest of the
 * input is the text.  Invariants:
 *   - escaped whole into TS_ESC_MAX_B(n) bytes: at most 4n bytes, NUL at
 *     the returned length, nothing ts_esc_scan would flag (but '\n' with
 *     KEEP_NL), and escaping it again (flags 0) changes nothing;
 *   - the input is clean exactly when the escape (flags 0) equals it;
 *   - into a smaller buffer: a NUL-terminated prefix of the whole output
 *     that is itself clean (never half an escape or a UTF-8 sequence);
 *   - as a NUL-terminated name: a valid new file name is a valid file
 *     name, has no reason against it and is clean.
 *
 * Locking: single-threaded.  Crash behaviour: nothing persistent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ts_config.h"
#include "ts_esc.h"
#include "ts_proto.h"
#include "fz_util.h"


/* nothing to escape in s[0..n), '\n' allowed when nl */
static int
clean(const char *s, size_t n, int nl)
{
    size_t  i = 0, at;

    for ( ;; ) {
        at = ts_esc_scan(s + i, n - i, NULL, NULL);
        if (i + at == n) {
            return 1;
        }
        if (!nl || s[i + at] != '\n') {
            return 0;
        }
        i += at + 1;
    }
}


static void
check_name(const uint8_t *p, size_t n)
{
    char   name[TS_NAME_MAX_B + 2], why[128];
    size_t l = n < sizeof(name) - 1 ? n : sizeof(name) - 1;

    memcpy(name, p, l);
    name[l] = '\0';
    if (ts_valid_new_filename(name, why, sizeof(why))) {
        FZ_CHECK(why[0] == '\0');
        FZ_CHECK(ts_valid_filename(name));
        FZ_CHECK(ts_esc_why(name, why, sizeof(why)) == 0);
        FZ_CHECK(clean(name, strlen(name), 0));
    } else {
        FZ_CHECK(why[0] != '\0');
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned  flags;
    size_t    n, full_n, part_n, again_n, small;
    char     *full, *again, *part;
    uint8_t  *in;

    if (size == 0) {
        return 0;
    }
    flags = data[0] & (TS_ESC_KEEP_NL | TS_ESC_BSLASH);
    small = (size_t) (data[0] >> 2);
    n = size - 1;
    in = fz_dup(data + 1, n);
    full = malloc(TS_ESC_MAX_B(n));
    again = malloc(TS_ESC_MAX_B(TS_ESC_MAX_B(n)));
    part = malloc(small + 1);
    if (full == NULL || again == NULL || part == NULL) {
        abort();
    }

    full_n = ts_esc(full, TS_ESC_MAX_B(n), in, n, flags);
    FZ_CHECK(full_n <= 4 * n);
    FZ_CHECK(strlen(full) == full_n);
    FZ_CHECK(clean(full, full_n, (flags & TS_ESC_KEEP_NL) != 0));
    again_n = ts_esc(again, TS_ESC_MAX_B(TS_ESC_MAX_B(n)), full, full_n,
                     flags & TS_ESC_KEEP_NL);
    FZ_CHECK(again_n == full_n && memcmp(again, full, full_n) == 0);
    if (flags == 0) {
        FZ_CHECK((ts_esc_scan(in, n, NULL, NULL) == n)
                 == (full_n == n && memcmp(full, in, n) == 0));
    }

    part_n = ts_esc(part, small + 1, in, n, flags);
    FZ_CHECK(part_n <= small && part[part_n] == '\0');
    FZ_CHECK(part_n <= full_n && memcmp(part, full, part_n) == 0);
    FZ_CHECK(clean(part, part_n, (flags & TS_ESC_KEEP_NL) != 0));
    FZ_CHECK(part_n == full_n || part_n + 8 > small);

    check_name(in, n);
    free(part);
    free(again);
    free(full);
    free(in);
    return 0;
}
