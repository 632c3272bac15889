/*
 * ts_esc.h -- text from someone else, made safe to show: the one escaper
 * every print site of remote or stored text goes through (the client's
 * output, the log), and the scanner name validation is built on.
 *
 * What is rewritten (everything else is copied byte for byte, so valid
 * printable UTF-8 -- accents, CJK, emoji, spaces -- shows as it is):
 *   C0 controls U+0000..U+001F and DEL       \xNN   (ESC [ ... drives a
 *                                                     terminal)
 *   C1 controls U+0080..U+009F (UTF-8 C2 80..C2 9F)
 *                                            \u{NNNN} (U+009B is CSI on
 *                                                     terminals that
 *                                                     honour 8-bit C1)
 *   bidirectional controls: U+061C, U+200E, U+200F, U+202A..U+202E,
 *   U+2066..U+2069                           \u{NNNN} ("txt.exe" shown
 *                                                     as "exe.txt")
 *   line and paragraph separators U+2028, U+2029
 *                                            \u{NNNN} (a line break in
 *                                                     some renderers)
 *   every byte that does not start a well-formed UTF-8 sequence (RFC 3629,
 *   Unicode table 3-7: no overlong forms, no surrogates, nothing above
 *   U+10FFFF; a raw 0x9B in Latin-1 text is one)
 *                                            \xNN, one per byte
 * The output is printable ASCII plus the input's own valid UTF-8, so
 * escaping it again changes nothing.  It grows at most 4-fold
 * (TS_ESC_MAX_B); when the caller's buffer is smaller, the output stops
 * before the first character that does not fit whole (never half an
 * escape, never half a UTF-8 sequence) and is always NUL-terminated.
 *
 * Locking: none; pure functions over caller buffers.  Crash behaviour:
 * no state.
 */
#ifndef TS_ESC_H_INCLUDED
#define TS_ESC_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/* Output bytes (with the NUL) that hold n input bytes escaped whole. */
#define TS_ESC_MAX_B(n)  (4 * (size_t) (n) + 1)

/* flags of ts_esc() */
#define TS_ESC_KEEP_NL   0x01u  /* '\n' kept (multi-line text) */
#define TS_ESC_BSLASH    0x02u  /* '\' written "\\", so an escape in the
                                   output cannot be confused with the same
                                   characters in the input */

/* What kind of character a position holds. */
typedef enum {
    TS_ESC_PRINT = 0,   /* shown as is */
    TS_ESC_C0,          /* U+0000..U+001F, U+007F */
    TS_ESC_C1,          /* U+0080..U+009F, encoded in UTF-8 */
    TS_ESC_BIDI,        /* a bidirectional control */
    TS_ESC_SEP,         /* U+2028, U+2029 */
    TS_ESC_BAD_UTF8     /* a byte that starts no well-formed sequence */
} ts_esc_class_t;

/* Decodes the character at s (n >= 1 bytes available): its class, its
 * length in bytes (*len, 1 for a bad byte) and its code point (*cp; the
 * byte value for a bad byte). */
ts_esc_class_t ts_esc_next(const void *s, size_t n, uint32_t *cp,
                           size_t *len);

/* Offset of the first character of s[0..n) that ts_esc would rewrite
 * (n when none), with its class and code point (either may be NULL).
 * '\n' counts as a control here whatever flags an escape would use. */
size_t ts_esc_scan(const void *s, size_t n, ts_esc_class_t *cls,
                   uint32_t *cp);

/* s[0..n) escaped into out (outsz bytes, NUL-terminated when outsz > 0);
 * returns the bytes written before the NUL. */
size_t ts_esc(char *out, size_t outsz, const void *s, size_t n,
              unsigned flags);

/* "a control character", "a C1 control character", "a bidirectional
 * control", "a line separator", "invalid UTF-8" ("" for TS_ESC_PRINT). */
const char *ts_esc_class_name(ts_esc_class_t cls);

/* Why s may not be used as a new name, for an error message: e.g.
 * "U+202E (a bidirectional control) at byte 3" or "byte 0x9b (invalid
 * UTF-8) at byte 0", into out.  Returns 0 (out empty) when s holds
 * nothing ts_esc would rewrite, -1 otherwise. */
int ts_esc_why(const char *s, char *out, size_t outsz);

#endif
