/*
 * ts_buf.h -- bounded binary encoder/decoder for wire payloads and tdb
 * records (network byte order).
 *
 * Writer: a growable heap buffer; an allocation failure or a field over
 * its limit sets ->err and later puts are ignored, so callers check once
 * at the end.  Reader: a cursor over borrowed bytes; any overrun, bad
 * length or embedded NUL sets ->err and every later get returns 0/NULL.
 * No locks: a buffer belongs to one thread.  Nothing survives a crash.
 *
 * Field encodings:
 *   u8/u16/u32/u64   fixed width, big endian
 *   str              u16 length + bytes (no NUL inside, <= TS_STR_MAX_B)
 *   blob             u32 length + bytes (<= caller's max)
 *   raw              bytes with no length (fixed-size fields, e.g. hashes)
 */
#ifndef TS_BUF_H_INCLUDED
#define TS_BUF_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;
    size_t   len;
    size_t   cap;
    int      err;
} ts_wbuf_t;

typedef struct {
    const uint8_t *p;
    size_t         len;
    size_t         off;
    int            err;
} ts_rbuf_t;

void ts_wbuf_init(ts_wbuf_t *b);
void ts_wbuf_free(ts_wbuf_t *b);
void ts_wbuf_reset(ts_wbuf_t *b);                  /* len = 0, err = 0 */
int  ts_wbuf_reserve(ts_wbuf_t *b, size_t extra);   /* 0 or -1 (sets err) */
void ts_put_u8(ts_wbuf_t *b, uint8_t v);
void ts_put_u16(ts_wbuf_t *b, uint16_t v);
void ts_put_u32(ts_wbuf_t *b, uint32_t v);
void ts_put_u64(ts_wbuf_t *b, uint64_t v);
void ts_put_raw(ts_wbuf_t *b, const void *p, size_t n);
void ts_put_str(ts_wbuf_t *b, const char *s);       /* NULL = "" */
void ts_put_blob(ts_wbuf_t *b, const void *p, uint32_t n);

void     ts_rbuf_init(ts_rbuf_t *r, const void *p, size_t n);
uint8_t  ts_get_u8(ts_rbuf_t *r);
uint16_t ts_get_u16(ts_rbuf_t *r);
uint32_t ts_get_u32(ts_rbuf_t *r);
uint64_t ts_get_u64(ts_rbuf_t *r);
int      ts_get_raw(ts_rbuf_t *r, void *dst, size_t n);          /* 0/-1 */
/* Copies a str field into dst (NUL-terminated); fails (-1, err set) if it
 * does not fit in dstsz-1 bytes or contains a NUL. */
int      ts_get_str(ts_rbuf_t *r, char *dst, size_t dstsz);
/* Borrows a blob: returns a pointer into the buffer or NULL; *n gets the
 * length; a blob longer than max is an error. */
const uint8_t *ts_get_blob(ts_rbuf_t *r, uint32_t *n, uint32_t max);
size_t   ts_rbuf_left(const ts_rbuf_t *r);
/* 0 when no error occurred and every byte was consumed, else -1. */
int      ts_rbuf_end(const ts_rbuf_t *r);

#endif
