/*
 * ts_buf.c -- bounded binary encoder/decoder (network byte order).
 *
 * Purpose: every wire payload and tdb record is built with a ts_wbuf_t and
 * read back with a ts_rbuf_t.  The writer grows on the heap and latches
 * the first error (out of memory, field over its limit) so callers test
 * ->err once at the end; the reader never touches a byte past ->len and
 * latches the first error too, after which every get returns 0/NULL.
 *
 * Locking: none; a buffer belongs to one thread.
 * Crash behaviour: nothing here is persistent; a crash loses only the
 * buffers of the dying process.
 */
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#include "ts_config.h"
#include "ts_buf.h"

void
ts_wbuf_init(ts_wbuf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->err = 0;
}

void
ts_wbuf_free(ts_wbuf_t *b)
{
    free(b->data);
    ts_wbuf_init(b);
}

void
ts_wbuf_reset(ts_wbuf_t *b)
{
    b->len = 0;
    b->err = 0;
}

int
ts_wbuf_reserve(ts_wbuf_t *b, size_t extra)
{
    size_t   need, ncap;
    uint8_t *nd;

    if (b->err) {
        return -1;
    }
    if (extra > SIZE_MAX - b->len) {
        b->err = 1;
        return -1;
    }
    need = b->len + extra;
    if (need <= b->cap) {
        return 0;
    }
    ncap = b->cap ? b->cap : 64;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            ncap = need;
            break;
        }
        ncap *= 2;
    }
    nd = realloc(b->data, ncap);
    if (nd == NULL) {
        b->err = 1;
        return -1;
    }
    b->data = nd;
    b->cap = ncap;
    return 0;
}

static void
put_bytes(ts_wbuf_t *b, const void *p, size_t n)
{
    if (ts_wbuf_reserve(b, n) != 0) {
        return;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
}

void
ts_put_u8(ts_wbuf_t *b, uint8_t v)
{
    put_bytes(b, &v, 1);
}

void
ts_put_u16(ts_wbuf_t *b, uint16_t v)
{
    uint8_t x[2];

    x[0] = (uint8_t) (v >> 8);
    x[1] = (uint8_t) v;
    put_bytes(b, x, 2);
}

void
ts_put_u32(ts_wbuf_t *b, uint32_t v)
{
    uint8_t x[4];
    int     i;

    for (i = 3; i >= 0; i--) {
        x[i] = (uint8_t) v;
        v >>= 8;
    }
    put_bytes(b, x, 4);
}

void
ts_put_u64(ts_wbuf_t *b, uint64_t v)
{
    uint8_t x[8];
    int     i;

    for (i = 7; i >= 0; i--) {
        x[i] = (uint8_t) v;
        v >>= 8;
    }
    put_bytes(b, x, 8);
}

void
ts_put_raw(ts_wbuf_t *b, const void *p, size_t n)
{
    if (n > 0 && p == NULL) {
        b->err = 1;
        return;
    }
    put_bytes(b, p, n);
}

void
ts_put_str(ts_wbuf_t *b, const char *s)
{
    size_t n;

    if (s == NULL) {
        s = "";
    }
    n = strlen(s);
    /* the reader would reject it, so refuse to write it */
    if (n > TS_STR_MAX_B) {
        b->err = 1;
        return;
    }
    if (ts_wbuf_reserve(b, 2 + n) != 0) {
        return;
    }
    ts_put_u16(b, (uint16_t) n);
    put_bytes(b, s, n);
}

void
ts_put_blob(ts_wbuf_t *b, const void *p, uint32_t n)
{
    if (n > 0 && p == NULL) {
        b->err = 1;
        return;
    }
    if (ts_wbuf_reserve(b, 4 + (size_t) n) != 0) {
        return;
    }
    ts_put_u32(b, n);
    put_bytes(b, p, n);
}

/* ---- reader ---------------------------------------------------------- */

void
ts_rbuf_init(ts_rbuf_t *r, const void *p, size_t n)
{
    r->p = p;
    r->len = p ? n : 0;
    r->off = 0;
    r->err = 0;
}

/* Returns a pointer to n readable bytes and advances, or NULL (err set). */
static const uint8_t *
take(ts_rbuf_t *r, size_t n)
{
    const uint8_t *q;

    if (r->err) {
        return NULL;
    }
    if (r->off > r->len || n > r->len - r->off) {
        r->err = 1;
        return NULL;
    }
    q = r->p + r->off;
    r->off += n;
    return q;
}

uint8_t
ts_get_u8(ts_rbuf_t *r)
{
    const uint8_t *q = take(r, 1);

    return q ? q[0] : 0;
}

uint16_t
ts_get_u16(ts_rbuf_t *r)
{
    const uint8_t *q = take(r, 2);

    if (q == NULL) {
        return 0;
    }
    return (uint16_t) (((uint16_t) q[0] << 8) | q[1]);
}

uint32_t
ts_get_u32(ts_rbuf_t *r)
{
    const uint8_t *q = take(r, 4);

    if (q == NULL) {
        return 0;
    }
    return ((uint32_t) q[0] << 24) | ((uint32_t) q[1] << 16)
           | ((uint32_t) q[2] << 8) | (uint32_t) q[3];
}

uint64_t
ts_get_u64(ts_rbuf_t *r)
{
    const uint8_t *q = take(r, 8);
    uint64_t       v = 0;
    int            i;

    if (q == NULL) {
        return 0;
    }
    for (i = 0; i < 8; i++) {
        v = (v << 8) | q[i];
    }
    return v;
}

int
ts_get_raw(ts_rbuf_t *r, void *dst, size_t n)
{
    const uint8_t *q = take(r, n);

    if (q == NULL) {
        return -1;
    }
    if (n > 0) {
        memcpy(dst, q, n);
    }
    return 0;
}

int
ts_get_str(ts_rbuf_t *r, char *dst, size_t dstsz)
{
    uint16_t       n;
    const uint8_t *q;

    if (dstsz > 0) {
        dst[0] = '\0';
    }
    n = ts_get_u16(r);
    if (r->err) {
        return -1;
    }
    if (n > TS_STR_MAX_B || dstsz == 0 || (size_t) n > dstsz - 1) {
        r->err = 1;
        return -1;
    }
    q = take(r, n);
    if (q == NULL) {
        return -1;
    }
    if (n > 0 && memchr(q, '\0', n) != NULL) {
        r->err = 1;
        return -1;
    }
    if (n > 0) {
        memcpy(dst, q, n);
    }
    dst[n] = '\0';
    return 0;
}

const uint8_t *
ts_get_blob(ts_rbuf_t *r, uint32_t *n, uint32_t max)
{
    uint32_t       len;
    const uint8_t *q;

    if (n) {
        *n = 0;
    }
    len = ts_get_u32(r);
    if (r->err) {
        return NULL;
    }
    if (len > max) {
        r->err = 1;
        return NULL;
    }
    q = take(r, len);
    if (q == NULL) {
        return NULL;
    }
    if (n) {
        *n = len;
    }
    /* an empty blob is valid: hand back a non-NULL pointer */
    return q;
}

size_t
ts_rbuf_left(const ts_rbuf_t *r)
{
    if (r->err || r->off > r->len) {
        return 0;
    }
    return r->len - r->off;
}

int
ts_rbuf_end(const ts_rbuf_t *r)
{
    return (r->err == 0 && r->off == r->len) ? 0 : -1;
}
