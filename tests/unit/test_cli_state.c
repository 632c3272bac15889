/*
 * test_cli_state.c -- unit tests of node.tdb (client/cli_state.c): record
 * round trips through the codec and through a real tdb file, corrupt
 * records rejected (every truncation, trailing bytes, bad fields, raw
 * garbage written under a real key), persist/restore of a download's
 * done bitmap across close and reopen, per-user isolation, transactions;
 * and the FILE_INFO body parser of cli_agent.c.
 *
 * Locking: none (single-threaded).  Crash behaviour: each test works in
 * its own mkdtemp directory, removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <tdb.h>
#include <cmocka.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "cli_state.h"
#include "cli_agent.h"

typedef struct {
    char  dir[64];
} fx_t;


static int
setup(void **state)
{
    fx_t  *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/tsr-cli-state-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}


static int
teardown(void **state)
{
    fx_t  *f = *state;
    char   p[128];

    snprintf(p, sizeof(p), "%s/%s", f->dir, CLI_STATE_FILE);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}


static void
mk_share(cli_share_rec_t *r, const char *group, const char *name)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->group, sizeof(r->group), "%s", group);
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->path, sizeof(r->path), "/data/%s", name);
    r->size = 3ull * TS_CHUNK_B + 17;
    r->nchunks = cli_nchunks(r->size);
    r->mtime_ns = 1700000000123456789LL;
    memset(r->sha1, 0xab, 20);
}


static void
mk_dl(cli_dl_rec_t *r, const char *group, const char *name, uint64_t size)
{
    uint32_t  i;

    memset(r, 0, sizeof(*r));
    snprintf(r->group, sizeof(r->group), "%s", group);
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->dest, sizeof(r->dest), "/dl/%s", name);
    snprintf(r->part, sizeof(r->part), "/dl/%s.part", name);
    r->part_id.dev = 0x801;
    r->part_id.ino = 1234567890123ull;
    r->part_id.btime_ns = 1796551471552806147ll;
    r->size = size;
    r->nchunks = cli_nchunks(size);
    memset(r->sha1, 0x5a, 20);
    r->state = CLI_DL_ACTIVE;
    assert_int_equal(cli_dl_alloc(r), 0);
    for (i = 0; i < 20 * r->nchunks; i++) {
        r->hashes[i] = (uint8_t) (i * 7 + 1);
    }
}


static void
assert_dl_equal(const cli_dl_rec_t *a, const cli_dl_rec_t *b)
{
    assert_string_equal(a->group, b->group);
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->dest, b->dest);
    assert_string_equal(a->part, b->part);
    assert_memory_equal(&a->part_id, &b->part_id, sizeof(a->part_id));
    assert_true(a->size == b->size);
    assert_int_equal(a->nchunks, b->nchunks);
    assert_memory_equal(a->sha1, b->sha1, 20);
    assert_int_equal(a->state, b->state);
    assert_string_equal(a->error, b->error);
    if (a->nchunks > 0) {
        assert_memory_equal(a->hashes, b->hashes, 20 * a->nchunks);
        assert_memory_equal(a->done, b->done, cli_bitmap_b(a->nchunks));
    }
}


/* ---- codec ------------------------------------------------------------ */

static void
test_share_codec_roundtrip(void **state)
{
    cli_share_rec_t  a, b;
    ts_wbuf_t        w;

    (void) state;
    mk_share(&a, "grp", "my file.bin");
    ts_wbuf_init(&w);
    cli_share_encode(&a, &w);
    assert_false(w.err);
    assert_int_equal(cli_share_decode(w.data, w.len, &b), 0);
    assert_memory_equal(&a, &b, sizeof(a));
    ts_wbuf_free(&w);
}


static void
test_dl_codec_roundtrip(void **state)
{
    cli_dl_rec_t  a, b;
    ts_wbuf_t     w;
    uint64_t      sizes[] = { 0, 1, TS_CHUNK_B, TS_CHUNK_B + 1,
                              20ull * TS_CHUNK_B - 3 };
    size_t        i;

    (void) state;
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        mk_dl(&a, "g", "f.bin", sizes[i]);
        if (a.nchunks > 0) {
            a.done[0] = 0x01;
        }
        if (i == 2) {
            a.state = CLI_DL_FAILED;
            snprintf(a.error, sizeof(a.error), "whole-file SHA1 mismatch");
        }
        ts_wbuf_init(&w);
        cli_dl_encode(&a, &w);
        assert_false(w.err);
        assert_int_equal(cli_dl_decode(w.data, w.len, &b), 0);
        assert_dl_equal(&a, &b);
        cli_dl_free(&b);
        cli_dl_free(&a);
        ts_wbuf_free(&w);
    }
}


/* Every strict prefix and any extra trailing byte is refused. */
static void
test_corrupt_truncations(void **state)
{
    cli_dl_rec_t     a, b;
    cli_share_rec_t  s, t;
    ts_wbuf_t        w;
    uint8_t         *big;
    size_t           n;

    (void) state;
    mk_dl(&a, "g", "f.bin", 5ull * TS_CHUNK_B + 3);
    a.done[0] = 0x15;
    ts_wbuf_init(&w);
    cli_dl_encode(&a, &w);
    for (n = 0; n < w.len; n++) {
        assert_int_equal(cli_dl_decode(w.data, n, &b), -1);
        assert_null(b.hashes);
        assert_null(b.done);
    }
    big = malloc(w.len + 1);
    assert_non_null(big);
    memcpy(big, w.data, w.len);
    big[w.len] = 0;
    assert_int_equal(cli_dl_decode(big, w.len + 1, &b), -1);
    free(big);
    cli_dl_free(&a);
    ts_wbuf_free(&w);

    mk_share(&s, "g", "x");
    ts_wbuf_init(&w);
    cli_share_encode(&s, &w);
    for (n = 0; n < w.len; n++) {
        assert_int_equal(cli_share_decode(w.data, n, &t), -1);
    }
    ts_wbuf_free(&w);
}


/* Encodes a after f() altered it and expects the decoder to refuse. */
static void
expect_bad_dl(void (*f)(cli_dl_rec_t *))
{
    cli_dl_rec_t  a, b;
    ts_wbuf_t     w;

    mk_dl(&a, "g", "f.bin", 3ull * TS_CHUNK_B);
    f(&a);
    ts_wbuf_init(&w);
    cli_dl_encode(&a, &w);
    if (!w.err) {
        assert_int_equal(cli_dl_decode(w.data, w.len, &b), -1);
    }
    ts_wbuf_free(&w);
    cli_dl_free(&a);
}

static void bad_state(cli_dl_rec_t *r)   { r->state = 9; }
static void bad_state0(cli_dl_rec_t *r)  { r->state = 0; }
static void bad_nchunks(cli_dl_rec_t *r) { r->size = 4ull * TS_CHUNK_B; }
static void bad_name(cli_dl_rec_t *r)    { snprintf(r->name, 8, ".."); }
static void bad_name2(cli_dl_rec_t *r)   { snprintf(r->name, 8, "a/b"); }
static void bad_group(cli_dl_rec_t *r)   { snprintf(r->group, 8, "g g"); }
static void bad_dest(cli_dl_rec_t *r)    { snprintf(r->dest, 8, "rel"); }
static void bad_part(cli_dl_rec_t *r)    { r->part[0] = '\0'; }
static void bad_bits(cli_dl_rec_t *r)    { r->done[0] = 0x08; }
static void bad_size(cli_dl_rec_t *r)
{
    /* consistent arrays, but one byte over the largest file */
    cli_dl_free(r);
    r->size = TS_FILE_MAX_B + 1;
    r->nchunks = cli_nchunks(r->size);
    r->hashes = calloc(r->nchunks, 20);
    r->done = calloc(cli_bitmap_b(r->nchunks), 1);
    assert_non_null(r->hashes);
    assert_non_null(r->done);
}


static void
test_corrupt_fields(void **state)
{
    cli_dl_rec_t  a, b;
    ts_wbuf_t     w;

    (void) state;
    expect_bad_dl(bad_state);
    expect_bad_dl(bad_state0);
    expect_bad_dl(bad_nchunks);
    expect_bad_dl(bad_name);
    expect_bad_dl(bad_name2);
    expect_bad_dl(bad_group);
    expect_bad_dl(bad_dest);
    expect_bad_dl(bad_part);
    expect_bad_dl(bad_bits);         /* a bit past the last chunk */
    expect_bad_dl(bad_size);

    /* wrong version byte */
    mk_dl(&a, "g", "f.bin", 10);
    ts_wbuf_init(&w);
    cli_dl_encode(&a, &w);
    w.data[0] = CLI_DL_VERSION + 1;
    assert_int_equal(cli_dl_decode(w.data, w.len, &b), -1);
    ts_wbuf_free(&w);

    /* a version-1 record (no .part identity) still reads, unpinned; a
     * version-2 one cut short does not */
    cli_dl_free(&a);
    mk_dl(&a, "g", "f.bin", 10);
    ts_wbuf_init(&w);
    cli_dl_encode(&a, &w);
    assert_int_equal(w.data[0], CLI_DL_VERSION);
    assert_int_equal(cli_dl_decode(w.data, w.len - 24, &b), -1);
    w.data[0] = CLI_REC_VERSION;
    assert_int_equal(cli_dl_decode(w.data, w.len, &b), -1);
    assert_int_equal(cli_dl_decode(w.data, w.len - 24, &b), 0);
    assert_true(b.part_id.dev == 0 && b.part_id.ino == 0
                && b.part_id.btime_ns == 0);
    assert_string_equal(b.part, a.part);
    cli_dl_free(&b);
    cli_dl_free(&a);
    ts_wbuf_free(&w);

    /* a hash blob that claims more than nchunks x 20 */
    ts_wbuf_init(&w);
    ts_put_u8(&w, CLI_REC_VERSION);
    ts_put_str(&w, "g");
    ts_put_str(&w, "f.bin");
    ts_put_str(&w, "/d/f");
    ts_put_str(&w, "/d/f.part");
    ts_put_u64(&w, 10);
    ts_put_u32(&w, 1);
    ts_put_raw(&w, a.sha1, 20);
    ts_put_u32(&w, 0xffffffffu);     /* blob length, nothing behind */
    assert_int_equal(cli_dl_decode(w.data, w.len, &b), -1);
    ts_wbuf_free(&w);
    cli_dl_free(&a);

    /* empty input and NULL-ish input */
    assert_int_equal(cli_dl_decode("", 0, &b), -1);
    assert_int_equal(cli_dl_decode(NULL, 0, &b), -1);
}


/* ---- database --------------------------------------------------------- */

typedef struct {
    int   n;
    char  names[8][TS_NAME_MAX_B + 1];
    cli_dl_rec_t  last;
} seen_t;


static void
seen_share(void *arg, cli_share_rec_t *r)
{
    seen_t  *s = arg;

    if (s->n < 8) {
        snprintf(s->names[s->n], sizeof(s->names[0]), "%s", r->name);
    }
    s->n++;
}


static void
seen_dl(void *arg, cli_dl_rec_t *r)
{
    seen_t  *s = arg;

    if (s->n < 8) {
        snprintf(s->names[s->n], sizeof(s->names[0]), "%s", r->name);
    }
    s->n++;
    /* take the record's arrays */
    cli_dl_free(&s->last);
    s->last = *r;
    r->hashes = NULL;
    r->done = NULL;
}


static void
test_db_share_roundtrip(void **state)
{
    fx_t             *f = *state;
    cli_state_t      *st;
    cli_share_rec_t   a, b;
    seen_t            s;

    st = cli_state_open(f->dir);
    assert_non_null(st);
    mk_share(&a, "g1", "a.bin");
    assert_int_equal(cli_state_share_put(st, "alice", &a), 0);
    assert_int_equal(cli_state_share_get(st, "alice", "g1", "a.bin", &b), 0);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_int_equal(cli_state_share_get(st, "bob", "g1", "a.bin", &b), 1);
    assert_int_equal(cli_state_share_get(st, "alice", "g2", "a.bin", &b), 1);

    /* bad ids never reach the database */
    assert_int_equal(cli_state_share_put(st, "al/ice", &a), -1);
    assert_int_equal(cli_state_share_get(st, "alice", "g1", "../x", &b), -1);

    memset(&s, 0, sizeof(s));
    assert_int_equal(cli_state_shares(st, "alice", seen_share, &s), 1);
    assert_int_equal(s.n, 1);
    assert_int_equal(cli_state_share_del(st, "alice", "g1", "a.bin"), 0);
    assert_int_equal(cli_state_share_get(st, "alice", "g1", "a.bin", &b), 1);
    /* deleting what is not there is fine */
    assert_int_equal(cli_state_share_del(st, "alice", "g1", "a.bin"), 0);
    cli_state_close(st);
}


/* The done bitmap of a download survives close + reopen exactly. */
static void
test_db_bitmap_persist_restore(void **state)
{
    fx_t          *f = *state;
    cli_state_t   *st;
    cli_dl_rec_t   a, b;
    uint32_t       c;

    st = cli_state_open(f->dir);
    assert_non_null(st);
    mk_dl(&a, "g", "big.bin", 100ull * TS_CHUNK_B + 5);  /* 101 chunks */
    assert_int_equal(cli_state_dl_put(st, "alice", &a), 0);

    /* chunks verified in two rounds, each persisted */
    for (c = 0; c < a.nchunks; c += 3) {
        a.done[c >> 3] |= (uint8_t) (1u << (c & 7));
    }
    assert_int_equal(cli_state_dl_put(st, "alice", &a), 0);
    a.done[100 >> 3] |= (uint8_t) (1u << (100 & 7));     /* the last one */
    assert_int_equal(cli_state_dl_put(st, "alice", &a), 0);
    cli_state_close(st);

    st = cli_state_open(f->dir);
    assert_non_null(st);
    assert_int_equal(cli_state_dl_get(st, "alice", "g", "big.bin", &b), 0);
    assert_dl_equal(&a, &b);
    for (c = 0; c < a.nchunks; c++) {
        int want = (c % 3 == 0) || c == 100;

        assert_int_equal((b.done[c >> 3] >> (c & 7)) & 1, want);
    }
    cli_dl_free(&b);

    /* finished: DONE + share in one transaction */
    a.state = CLI_DL_DONE;
    memset(a.done, 0xff, cli_bitmap_b(a.nchunks));
    a.done[cli_bitmap_b(a.nchunks) - 1] = (1u << (a.nchunks & 7)) - 1;
    {
        cli_share_rec_t  sr;

        mk_share(&sr, "g", "big.bin");
        assert_int_equal(cli_state_begin(st), 0);
        assert_int_equal(cli_state_dl_put(st, "alice", &a), 0);
        assert_int_equal(cli_state_share_put(st, "alice", &sr), 0);
        assert_int_equal(cli_state_commit(st), 0);
        assert_int_equal(cli_state_share_get(st, "alice", "g", "big.bin",
                                             &sr), 0);
    }
    assert_int_equal(cli_state_dl_get(st, "alice", "g", "big.bin", &b), 0);
    assert_int_equal(b.state, CLI_DL_DONE);
    cli_dl_free(&b);
    cli_dl_free(&a);
    cli_state_close(st);
}


static void
test_db_transaction_cancel(void **state)
{
    fx_t             *f = *state;
    cli_state_t      *st;
    cli_share_rec_t   a, b;
    cli_dl_rec_t      d;

    st = cli_state_open(f->dir);
    assert_non_null(st);
    mk_share(&a, "g", "s.bin");
    mk_dl(&d, "g", "d.bin", 10);
    assert_int_equal(cli_state_begin(st), 0);
    assert_int_equal(cli_state_begin(st), -1);       /* no nesting */
    assert_int_equal(cli_state_share_put(st, "u", &a), 0);
    assert_int_equal(cli_state_dl_put(st, "u", &d), 0);
    cli_state_cancel(st);
    assert_int_equal(cli_state_share_get(st, "u", "g", "s.bin", &b), 1);
    assert_int_equal(cli_state_dl_get(st, "u", "g", "d.bin", &d), 1);
    cli_state_close(st);
    cli_dl_free(&d);
}


/* Raw garbage and mismatched records under real keys: get refuses them,
 * traversal skips them and still yields the good ones; other users'
 * records are never visited. */
static void
test_db_corrupt_records(void **state)
{
    fx_t                *f = *state;
    cli_state_t         *st;
    cli_dl_rec_t         a, b;
    struct tdb_context  *tdb;
    TDB_DATA             k, v;
    ts_wbuf_t            w;
    seen_t               s;
    char                 path[128];
    static const char    junk[] = "\x01\x00\x01gZZZZ";

    st = cli_state_open(f->dir);
    assert_non_null(st);
    mk_dl(&a, "g", "good.bin", 2ull * TS_CHUNK_B);
    assert_int_equal(cli_state_dl_put(st, "alice", &a), 0);
    assert_int_equal(cli_state_dl_put(st, "bob", &a), 0);
    cli_state_close(st);

    /* write bad values straight into the file */
    snprintf(path, sizeof(path), "%s/%s", f->dir, CLI_STATE_FILE);
    tdb = tdb_open(path, 0, TDB_DEFAULT, O_RDWR, 0600);
    assert_non_null(tdb);
    k.dptr = (unsigned char *) "d/alice/g/junk.bin";
    k.dsize = strlen("d/alice/g/junk.bin");
    v.dptr = (unsigned char *) junk;
    v.dsize = sizeof(junk) - 1;
    assert_int_equal(tdb_store(tdb, k, v, TDB_REPLACE), 0);
    /* a valid record filed under another name */
    ts_wbuf_init(&w);
    cli_dl_encode(&a, &w);
    k.dptr = (unsigned char *) "d/alice/g/other.bin";
    k.dsize = strlen("d/alice/g/other.bin");
    v.dptr = w.data;
    v.dsize = w.len;
    assert_int_equal(tdb_store(tdb, k, v, TDB_REPLACE), 0);
    /* a truncated copy of the good one */
    k.dptr = (unsigned char *) "d/alice/g/good.bin";
    k.dsize = strlen("d/alice/g/good.bin");
    v.dsize = w.len - 1;
    k.dptr = (unsigned char *) "d/alice/g/trunc.bin";
    k.dsize = strlen("d/alice/g/trunc.bin");
    assert_int_equal(tdb_store(tdb, k, v, TDB_REPLACE), 0);
    /* a key with no name part */
    k.dptr = (unsigned char *) "d/alice/g";
    k.dsize = strlen("d/alice/g");
    assert_int_equal(tdb_store(tdb, k, v, TDB_REPLACE), 0);
    ts_wbuf_free(&w);
    tdb_close(tdb);

    st = cli_state_open(f->dir);
    assert_non_null(st);
    assert_int_equal(cli_state_dl_get(st, "alice", "g", "junk.bin", &b), -1);
    assert_int_equal(cli_state_dl_get(st, "alice", "g", "other.bin", &b),
                     -1);
    assert_int_equal(cli_state_dl_get(st, "alice", "g", "trunc.bin", &b),
                     -1);
    assert_int_equal(cli_state_dl_get(st, "alice", "g", "good.bin", &b), 0);
    cli_dl_free(&b);

    memset(&s, 0, sizeof(s));
    assert_int_equal(cli_state_dls(st, "alice", seen_dl, &s), 1);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.names[0], "good.bin");
    assert_dl_equal(&a, &s.last);
    cli_dl_free(&s.last);

    /* "al" must not see "alice"'s records (prefix ends at the '/') */
    memset(&s, 0, sizeof(s));
    assert_int_equal(cli_state_dls(st, "al", seen_dl, &s), 0);
    memset(&s, 0, sizeof(s));
    assert_int_equal(cli_state_dls(st, "bob", seen_dl, &s), 1);
    cli_dl_free(&s.last);
    memset(&s, 0, sizeof(s));
    assert_int_equal(cli_state_shares(st, "alice", seen_share, &s), 0);
    cli_state_close(st);
    cli_dl_free(&a);
}


/* ---- FILE_INFO parsing (cli_agent.c) ---------------------------------- */

static void
put_finfo_tk(ts_wbuf_t *w, uint64_t size, uint32_t nchunks, uint32_t nsrc,
             uint32_t claimed_nsrc, uint32_t ticket_len)
{
    uint8_t   h[20], fp[TS_FP_B], *tk;
    uint32_t  i;
    char      addr[32];

    memset(h, 0x33, sizeof(h));
    ts_put_u64(w, size);
    ts_put_raw(w, h, 20);
    ts_put_u32(w, nchunks);
    for (i = 0; i < nchunks; i++) {
        ts_put_raw(w, h, 20);
    }
    ts_put_u32(w, claimed_nsrc);
    for (i = 0; i < nsrc; i++) {
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", 1000 + i);
        ts_put_str(w, addr);
        ts_put_u8(w, (uint8_t) (i % 2));
        ts_put_u32(w, i);
        memset(fp, (int) (0x40 + i), sizeof(fp));
        ts_put_raw(w, fp, sizeof(fp));
    }
    /* the ticket: opaque bytes to the parser */
    tk = malloc(ticket_len + 1);
    assert_non_null(tk);
    memset(tk, 0x5c, ticket_len + 1);
    ts_put_blob(w, tk, ticket_len);
    free(tk);
}


static void
put_finfo(ts_wbuf_t *w, uint64_t size, uint32_t nchunks, uint32_t nsrc,
          uint32_t claimed_nsrc)
{
    put_finfo_tk(w, size, nchunks, nsrc, claimed_nsrc, 77);
}


static void
test_finfo_parse(void **state)
{
    ts_wbuf_t    w;
    ts_rbuf_t    r;
    cli_finfo_t  fi;
    size_t       n;
    int          i;

    (void) state;
    ts_wbuf_init(&w);
    put_finfo(&w, TS_CHUNK_B + 1, 2, 3, 3);
    ts_rbuf_init(&r, w.data, w.len);
    assert_int_equal(cli_finfo_parse(&r, &fi), 0);
    assert_int_equal(fi.nchunks, 2);
    assert_int_equal(fi.nsrc, 3);
    assert_int_equal(fi.src[0].complete, 1);        /* complete first */
    assert_string_equal(fi.src[0].addr, "127.0.0.1:1001");
    assert_int_equal(fi.src[0].fp[0], 0x41);       /* its own fingerprint */
    assert_int_equal(fi.src[0].fp[TS_FP_B - 1], 0x41);
    assert_int_equal(fi.src[1].fp[0], 0x40);
    assert_int_equal(fi.ticket_len, 77);
    assert_int_equal(fi.ticket[76], 0x5c);
    cli_finfo_free(&fi);

    /* every truncation fails and leaves nothing allocated */
    for (n = 0; n < w.len; n++) {
        ts_rbuf_init(&r, w.data, n);
        assert_int_equal(cli_finfo_parse(&r, &fi), -1);
        assert_null(fi.hashes);
    }
    ts_wbuf_free(&w);

    /* lies: chunk count vs size, and a huge source count */
    ts_wbuf_init(&w);
    put_finfo(&w, 10, 2, 0, 0);
    ts_rbuf_init(&r, w.data, w.len);
    assert_int_equal(cli_finfo_parse(&r, &fi), -1);
    ts_wbuf_free(&w);
    ts_wbuf_init(&w);
    put_finfo(&w, 10, 1, 1, 0x7fffffff);
    ts_rbuf_init(&r, w.data, w.len);
    assert_int_equal(cli_finfo_parse(&r, &fi), -1);
    ts_wbuf_free(&w);

    /* no ticket is fine (empty blob); an oversize one is a lie */
    ts_wbuf_init(&w);
    put_finfo_tk(&w, 10, 1, 1, 1, 0);
    ts_rbuf_init(&r, w.data, w.len);
    assert_int_equal(cli_finfo_parse(&r, &fi), 0);
    assert_int_equal(fi.ticket_len, 0);
    cli_finfo_free(&fi);
    ts_wbuf_free(&w);
    ts_wbuf_init(&w);
    put_finfo_tk(&w, 10, 1, 1, 1, TS_TICKET_MAX_B + 1);
    ts_rbuf_init(&r, w.data, w.len);
    assert_int_equal(cli_finfo_parse(&r, &fi), -1);
    ts_wbuf_free(&w);

    /* more sources than a download can hold: capped */
    ts_wbuf_init(&w);
    put_finfo(&w, 0, 0, TS_NODE_SOURCES_N + 10, TS_NODE_SOURCES_N + 10);
    ts_rbuf_init(&r, w.data, w.len);
    assert_int_equal(cli_finfo_parse(&r, &fi), 0);
    assert_int_equal(fi.nsrc, TS_NODE_SOURCES_N);
    for (i = 0; i < fi.nsrc / 2; i++) {
        assert_int_equal(fi.src[i].complete, 1);
    }
    cli_finfo_free(&fi);
    ts_wbuf_free(&w);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_share_codec_roundtrip),
        cmocka_unit_test(test_dl_codec_roundtrip),
        cmocka_unit_test(test_corrupt_truncations),
        cmocka_unit_test(test_corrupt_fields),
        cmocka_unit_test_setup_teardown(test_db_share_roundtrip, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_db_bitmap_persist_restore,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_transaction_cancel, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_db_corrupt_records, setup,
                                        teardown),
        cmocka_unit_test(test_finfo_parse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
