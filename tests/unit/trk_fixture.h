/*
 * trk_fixture.h -- the tdb fixture of the tracker store tests
 * (test_trk_store.c, test_trk_files.c, test_trk_file_info.c): every test
 * gets a fresh tracker store (trk_store_open, tracker 1) in a new temp
 * dir, closed and removed after it; helpers for transactions, groups,
 * sessions and the file rules.  Header-only, every helper static inline: the
 * Makefile compiles each tests/unit/test_trk_*.c alone with the tracker
 * objects.
 *
 * Locking: single-threaded; a test runs its writes in transactions like
 * the dispatcher does.  Crash behaviour: a test that crashes leaves its
 * temp dir under /tmp.
 */
#ifndef TRK_FIXTURE_H_INCLUDED
#define TRK_FIXTURE_H_INCLUDED

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ts_buf.h"
#include "ts_clock.h"
#include "ts_proto.h"
#include "trk_store.h"
#include "trk_files.h"

#define SZ2  (TS_CHUNK_B + 1000)        /* two chunks */

typedef struct {
    char         dir[64];
    char         path[128];     /* <dir>/tracker.tdb */
    trk_store_t *st;
} fx_t;

/* the message of the last rule's reply */
static char msg[TRK_MSG_B];

/* cmocka set-up: a new store in a new dir made from tmpl (a mkdtemp
 * template), as *state. */
static inline int
fx_setup(void **state, const char *tmpl)
{
    fx_t *fx;
    char  err[256];

    fx = calloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "%s", tmpl);
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/tracker.tdb", fx->dir);
    fx->st = trk_store_open(fx->path, 1, 1, err, sizeof(err));
    assert_non_null(fx->st);
    *state = fx;
    return 0;
}

/* Closes the store and opens its file again (what a restarted worker
 * sees: only what was committed). */
static inline void
fx_reopen(fx_t *fx)
{
    char err[256];

    trk_store_close(fx->st);
    fx->st = trk_store_open(fx->path, 0, 1, err, sizeof(err));
    assert_non_null(fx->st);
}

/* cmocka teardown: closes the store and removes its file and dir. */
static inline int
fx_teardown(void **state)
{
    fx_t *fx = *state;

    trk_store_close(fx->st);
    unlink(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}


static inline void
fx_begin(fx_t *fx)
{
    assert_int_equal(trk_store_begin(fx->st), 0);
}


static inline void
fx_commit(fx_t *fx)
{
    assert_int_equal(trk_store_commit(fx->st), 0);
}


/* A "login": session record + presence hook; h derived from tag. */
static inline void
fx_login(fx_t *fx, const char *user, const char *addr, uint8_t tag,
         uint8_t h[32])
{
    trk_session_t s;

    memset(h, tag, 32);
    memset(&s, 0, sizeof(s));
    snprintf(s.user, sizeof(s.user), "%s", user);
    snprintf(s.node_addr, sizeof(s.node_addr), "%s", addr);
    fx_begin(fx);
    assert_int_equal(trk_session_put(fx->st, h, &s), 0);
    assert_int_equal(trk_files_session_added(fx->st, h, user, addr), 0);
    fx_commit(fx);
}


static inline void
fx_logout(fx_t *fx, const uint8_t h[32])
{
    fx_begin(fx);
    assert_int_equal(trk_files_session_gone(fx->st, h), 0);
    assert_int_equal(trk_session_del(fx->st, h), 0);
    fx_commit(fx);
}


static inline trk_fctx_t
fx_ctx(fx_t *fx, const char *user, const char *addr)
{
    trk_fctx_t c;

    memset(&c, 0, sizeof(c));
    c.st = fx->st;
    c.shm = NULL;
    c.now_ms = ts_now_ms();
    c.timeout_ms = TS_SESSION_TIMEOUT_MS;
    c.user = user;
    c.node_addr = addr;
    return c;
}


/* group g owned by owner, with the other members accepted */
static inline void
fx_mkgroup(fx_t *fx, const char *g, const char *owner, const char *m1,
           const char *m2)
{
    fx_begin(fx);
    assert_int_equal(trk_do_create_group(fx->st, owner, g, msg, sizeof(msg)),
                     TS_OK);
    if (m1) {
        assert_int_equal(trk_do_join_group(fx->st, m1, g, msg, sizeof(msg)),
                         TS_OK);
        assert_int_equal(trk_do_accept(fx->st, owner, g, m1, 1, msg,
                                       sizeof(msg)), TS_OK);
    }
    if (m2) {
        assert_int_equal(trk_do_join_group(fx->st, m2, g, msg, sizeof(msg)),
                         TS_OK);
        assert_int_equal(trk_do_accept(fx->st, owner, g, m2, 1, msg,
                                       sizeof(msg)), TS_OK);
    }
    fx_commit(fx);
}


static inline void
fx_content(uint8_t sha1[20], uint8_t *hashes, uint32_t n, uint8_t seed)
{
    memset(sha1, seed, 20);
    memset(hashes, seed + 1, (size_t) n * 20);
}


static inline ts_status_t
fx_upload(fx_t *fx, const char *user, const char *addr, const char *g,
          const char *name, uint64_t size, uint32_t nchunks, uint8_t seed)
{
    trk_fctx_t  c = fx_ctx(fx, user, addr);
    uint8_t     sha1[20];
    uint8_t    *hashes;
    ts_status_t st;

    hashes = calloc(nchunks ? nchunks : 1, 20);
    fx_content(sha1, hashes, nchunks, seed);
    fx_begin(fx);
    st = trk_do_upload(&c, g, name, size, sha1, nchunks, hashes, msg,
                       sizeof(msg));
    if (st == TS_OK) {
        fx_commit(fx);
    } else {
        trk_store_cancel(fx->st);
    }
    free(hashes);
    return st;
}


/* list_files as seen by user: returns the count of files; sources of
 * name (or -1 if not listed) in *src. */
static inline uint32_t
fx_list(fx_t *fx, const char *user, const char *addr, const char *g,
        const char *name, int *src)
{
    trk_fctx_t c = fx_ctx(fx, user, addr);
    ts_wbuf_t  b;
    ts_rbuf_t  r;
    char       nm[TS_NAME_MAX_B + 1];
    uint32_t   n, i, on;
    uint64_t   size;

    ts_wbuf_init(&b);
    assert_int_equal(trk_do_list_files(&c, g, &b, msg, sizeof(msg)), TS_OK);
    ts_rbuf_init(&r, b.data, b.len);
    n = ts_get_u32(&r);
    *src = -1;
    for (i = 0; i < n; i++) {
        assert_int_equal(ts_get_str(&r, nm, sizeof(nm)), 0);
        size = ts_get_u64(&r);
        on = ts_get_u32(&r);
        (void) size;
        if (name != NULL && strcmp(nm, name) == 0) {
            *src = (int) on;
        }
    }
    assert_int_equal(ts_rbuf_end(&r), 0);
    ts_wbuf_free(&b);
    return n;
}


typedef struct {
    uint32_t n;
    char     addr[8][TRK_ADDR_MAX_B];
    uint8_t  complete[8];
    uint32_t held[8];
    uint8_t  fp[8][TS_FP_B];
} info_t;


static inline ts_status_t
fx_info(fx_t *fx, const char *user, const char *addr, const char *g,
        const char *name, info_t *out)
{
    trk_fctx_t  c = fx_ctx(fx, user, addr);
    ts_wbuf_t   b;
    ts_rbuf_t   r;
    uint8_t     sha1[20];
    uint32_t    nchunks, i, tl;
    ts_status_t st;

    memset(out, 0, sizeof(*out));
    ts_wbuf_init(&b);
    st = trk_do_file_info(&c, g, name, &b, msg, sizeof(msg));
    if (st == TS_OK) {
        ts_rbuf_init(&r, b.data, b.len);
        (void) ts_get_u64(&r);
        ts_get_raw(&r, sha1, 20);
        nchunks = ts_get_u32(&r);
        assert_true(ts_rbuf_left(&r) >= (size_t) nchunks * 20);
        r.off += (size_t) nchunks * 20;
        out->n = ts_get_u32(&r);
        assert_true(out->n <= 8);
        for (i = 0; i < out->n; i++) {
            assert_int_equal(ts_get_str(&r, out->addr[i],
                                        sizeof(out->addr[i])), 0);
            out->complete[i] = ts_get_u8(&r);
            out->held[i] = ts_get_u32(&r);
            assert_int_equal(ts_get_raw(&r, out->fp[i], TS_FP_B), 0);
        }
        /* no signer in these tests: an empty ticket */
        assert_non_null(ts_get_blob(&r, &tl, TS_TICKET_MAX_B));
        assert_int_equal(tl, 0);
        assert_int_equal(ts_rbuf_end(&r), 0);
    }
    ts_wbuf_free(&b);
    return st;
}


static inline ts_status_t
fx_have(fx_t *fx, const char *user, const char *addr, const char *g,
        const char *name, int complete, const uint8_t *bm, uint32_t bml)
{
    trk_fctx_t  c = fx_ctx(fx, user, addr);
    ts_status_t st;

    fx_begin(fx);
    st = trk_do_have_chunks(&c, g, name, complete, bm, bml, msg,
                            sizeof(msg));
    if (st == TS_OK) {
        fx_commit(fx);
    } else {
        trk_store_cancel(fx->st);
    }
    return st;
}


static inline ts_status_t
fx_stop(fx_t *fx, const char *user, const char *addr, const char *g,
        const char *name)
{
    trk_fctx_t  c = fx_ctx(fx, user, addr);
    ts_status_t st;

    fx_begin(fx);
    st = trk_do_stop_share(&c, g, name, msg, sizeof(msg));
    if (st == TS_OK) {
        fx_commit(fx);
    } else {
        trk_store_cancel(fx->st);
    }
    return st;
}


/* ---- tests ---------------------------------------------------------- */

#endif
