/*
 * ts_esc.c -- the escaper of text from someone else (see ts_esc.h for
 * what is rewritten and why).
 *
 * Purpose: one UTF-8 decoder that is strict (Unicode table 3-7) and one
 * table of the characters that move a terminal's cursor or reorder what
 * the reader sees.  The client's output, the log records and the name
 * validation of ts_proto.c all use it, so what the tracker refuses to
 * create is exactly what every print site would have escaped.
 *
 * Locking: none; pure functions over caller buffers.
 * Crash behaviour: no state, nothing to recover.
 */
#include <stdio.h>
#include <string.h>

#include "ts_esc.h"


/* The class of a well-formed code point. */
static ts_esc_class_t
ts_esc_cp_class(uint32_t cp)
{
    if (cp < 0x20 || cp == 0x7f) {
        return TS_ESC_C0;
    }
    if (cp >= 0x80 && cp <= 0x9f) {
        return TS_ESC_C1;
    }
    if (cp == 0x061c || cp == 0x200e || cp == 0x200f
        || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
    {
        return TS_ESC_BIDI;
    }
    if (cp == 0x2028 || cp == 0x2029) {
        return TS_ESC_SEP;
    }
    return TS_ESC_PRINT;
}


ts_esc_class_t
ts_esc_next(const void *s, size_t n, uint32_t *cp, size_t *len)
{
    const unsigned char  *p = s;
    unsigned char         c = p[0], lo = 0x80, hi = 0xbf;
    uint32_t              v;
    size_t                need, i;

    *len = 1;
    *cp = c;
    if (c < 0x80) {
        return ts_esc_cp_class(c);
    }
    /* the lead byte gives the length and, for E0 ED F0 F4, a narrower
     * range of the first continuation byte (no overlong forms, no
     * surrogates, nothing above U+10FFFF) */
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
        v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        v = c & 0x0f;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        v = c & 0x07;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return TS_ESC_BAD_UTF8;
    }
    if (n < need + 1) {
        return TS_ESC_BAD_UTF8;
    }
    for (i = 1; i <= need; i++) {
        if (p[i] < lo || p[i] > hi) {
            return TS_ESC_BAD_UTF8;
        }
        lo = 0x80;
        hi = 0xbf;
        v = (v << 6) | (p[i] & 0x3fu);
    }
    *len = need + 1;
    *cp = v;
    return ts_esc_cp_class(v);
}


size_t
ts_esc_scan(const void *s, size_t n, ts_esc_class_t *cls, uint32_t *cp)
{
    const unsigned char  *p = s;
    ts_esc_class_t        k;
    uint32_t              v;
    size_t                i = 0, len;

    while (i < n) {
        k = ts_esc_next(p + i, n - i, &v, &len);
        if (k != TS_ESC_PRINT) {
            if (cls != NULL) {
                *cls = k;
            }
            if (cp != NULL) {
                *cp = v;
            }
            return i;
        }
        i += len;
    }
    if (cls != NULL) {
        *cls = TS_ESC_PRINT;
    }
    return n;
}


size_t
ts_esc(char *out, size_t outsz, const void *s, size_t n, unsigned flags)
{
    const unsigned char  *p = s;
    const void           *src;
    ts_esc_class_t        k;
    uint32_t              cp;
    size_t                i = 0, o = 0, len, w;
    char                  tmp[16];

    if (outsz == 0) {
        return 0;
    }
    while (i < n) {
        k = ts_esc_next(p + i, n - i, &cp, &len);
        src = p + i;
        w = len;
        if (k == TS_ESC_PRINT) {
            if (p[i] == '\\' && (flags & TS_ESC_BSLASH)) {
                src = "\\\\";
                w = 2;
            }
        } else if (k == TS_ESC_C0 && p[i] == '\n'
                   && (flags & TS_ESC_KEEP_NL))
        {
            /* kept as it is */
        } else if (k == TS_ESC_C0 || k == TS_ESC_BAD_UTF8) {
            w = (size_t) snprintf(tmp, sizeof(tmp), "\\x%02x", p[i]);
            src = tmp;
        } else {
            w = (size_t) snprintf(tmp, sizeof(tmp), "\\u{%04x}",
                                  (unsigned) cp);
            src = tmp;
        }
        if (o + w >= outsz) {
            break;
        }
        memcpy(out + o, src, w);
        o += w;
        i += len;
    }
    out[o] = '\0';
    return o;
}


const char *
ts_esc_class_name(ts_esc_class_t cls)
{
    switch (cls) {
    case TS_ESC_C0:       return "a control character";
    case TS_ESC_C1:       return "a C1 control character";
    case TS_ESC_BIDI:     return "a bidirectional control";
    case TS_ESC_SEP:      return "a line separator";
    case TS_ESC_BAD_UTF8: return "invalid UTF-8";
    default:              return "";
    }
}


int
ts_esc_why(const char *s, char *out, size_t outsz)
{
    ts_esc_class_t  k;
    uint32_t        cp;
    size_t          n = strlen(s), at;

    at = ts_esc_scan(s, n, &k, &cp);
    if (at == n) {
        if (outsz > 0) {
            out[0] = '\0';
        }
        return 0;
    }
    if (k == TS_ESC_C0 || k == TS_ESC_BAD_UTF8) {
        snprintf(out, outsz, "byte 0x%02x (%s) at byte %zu",
                 (unsigned char) s[at], ts_esc_class_name(k), at);
    } else {
        snprintf(out, outsz, "U+%04X (%s) at byte %zu", (unsigned) cp,
                 ts_esc_class_name(k), at);
    }
    return -1;
}
