/*
 * fuzz_trk_sync.c -- libFuzzer target: what tracker replication decodes
 * (docs/REPLICATION.md): merge envelopes (trk_merge), op records
 * (trk_oplog_apply), version vectors, and snapshot batches merged into a
 * real store and read back through the record getters.
 *
 * Input byte 0 picks a mode:
 *   0  one envelope: trk_rec_decode; when it decodes, the encoding is
 *      canonical (encode(decode(x)) == x); its normal form (a merge into
 *      an empty record) absorbs it and itself without change, and the
 *      delta of its largest stamp; it is viewed as every key kind;
 *   1  two envelopes (u16 length of the first, then both): merge must
 *      be commutative (a+b == b+a byte for byte) and absorbing ((a+b)+a
 *      == a+b); then the rest is put as a value under a key kind;
 *   2  one op record applied to a fresh store (trk_oplog_apply in a
 *      transaction, like SYNC_OPS): applying it again is a no-op;
 *      then the state digest;
 *   3  a version vector (trk_vv_decode, trk_vv_format) followed by a
 *      snapshot batch: u8 n, n x (blob key, blob envelope) merged with
 *      trk_kv_merge into a fresh store, then every record getter of the
 *      store and the file registry reads its key back.
 *
 * Locking: single-threaded.  Crash behaviour: the store is a file in the
 * process temp dir, put back to its empty start for every input.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_buf.h"
#include "trk_files.h"
#include "trk_merge.h"
#include "trk_oplog.h"
#include "trk_store.h"
#include "fz_util.h"

static const char *const keys[] = {
    "u/alice", "g/g1", "r/0000000000001000/0000000000000000",
    "f/g1/f1.bin", "p/g1/f1.bin",
    "l/g1", "m/alice/127.0.0.1:7001", "n/alice/127.0.0.1:7001",
    "s/0000000000000000000000000000000000000000000000000000000000000000",
};
#define KEYS_N  (sizeof(keys) / sizeof(keys[0]))

static _Atomic uint64_t hlc;
static trk_store_t     *work;          /* open for good */
static ts_wbuf_t        tmpl;          /* its initial records */


void
fz_init(void)
{
    work = fz_trk_store("work.tdb", &tmpl);
    trk_store_set_origin(work, 1, (void *) &hlc, NULL);
}


/* The store as it was made (an empty tracker with its epoch). */
static trk_store_t *
fresh_store(void)
{
    fz_tdb_restore(trk_store_tdb(work), &tmpl);
    return work;
}


static void
encode(ts_wbuf_t *b, const trk_rec_t *r)
{
    ts_wbuf_reset(b);
    trk_rec_encode(b, r);
    FZ_CHECK(!b->err);
}


static void
views(const trk_rec_t *r)
{
    ts_wbuf_t out;
    size_t    i;

    ts_wbuf_init(&out);
    for (i = 0; i < KEYS_N; i++) {
        (void) trk_rec_view(r, keys[i], strlen(keys[i]), &out);
    }
    (void) trk_rec_visible(r);
    (void) trk_rec_group_lost(r, "alice");
    ts_wbuf_free(&out);
}


static void
mode_one(const uint8_t *p, size_t n)
{
    trk_rec_t   r, c, d;
    ts_wbuf_t   b, b2;
    trk_stamp_t mx;

    if (trk_rec_decode(p, n, &r) != 0) {
        return;
    }
    ts_wbuf_init(&b);
    ts_wbuf_init(&b2);
    encode(&b, &r);
    FZ_CHECK(b.len == n && memcmp(b.data, p, n) == 0);
    /* decode keeps what it reads; a copy is a merge into nothing, which
     * also prunes incarnations deleted by D: the normal form.  Merging r
     * or the normal form again changes nothing. */
    FZ_CHECK(trk_rec_copy(&c, &r) == 0);
    encode(&b, &c);
    FZ_CHECK(trk_rec_merge(&c, &r) == 0);
    FZ_CHECK(trk_rec_copy(&d, &c) == 0);
    FZ_CHECK(trk_rec_merge(&c, &d) == 0);
    trk_rec_free(&d);
    encode(&b2, &c);
    FZ_CHECK(b2.len == b.len && memcmp(b2.data, b.data, b.len) == 0);
    mx = trk_rec_max_stamp(&r);
    if (trk_rec_delta(&c, mx, &d) == 0) {
        FZ_CHECK(trk_rec_merge(&c, &d) == 0);
        trk_rec_free(&d);
    }
    views(&r);
    trk_rec_free(&c);
    trk_rec_free(&r);
    ts_wbuf_free(&b);
    ts_wbuf_free(&b2);
}


static void
mode_two(const uint8_t *p, size_t n)
{
    fz_in_t         in;
    const uint8_t  *pa, *pb, *pv;
    size_t          na, nb, nv;
    trk_rec_t       a, b, ab, ba;
    ts_wbuf_t       e1, e2;
    trk_stamp_t     s;
    const char     *key;
    int             ka, kb;

    fz_in_init(&in, p, n);
    pa = fz_take(&in, fz_u16(&in), &na);
    pb = fz_take(&in, fz_u16(&in), &nb);
    key = keys[fz_u8(&in) % KEYS_N];
    s.hlc = fz_u32(&in);
    s.origin = fz_u8(&in);
    pv = fz_take(&in, fz_left(&in), &nv);
    ka = trk_rec_decode(pa, na, &a) == 0;
    kb = trk_rec_decode(pb, nb, &b) == 0;
    if (ka && kb) {
        ts_wbuf_init(&e1);
        ts_wbuf_init(&e2);
        FZ_CHECK(trk_rec_copy(&ab, &a) == 0 && trk_rec_copy(&ba, &b) == 0);
        FZ_CHECK(trk_rec_merge(&ab, &b) >= 0);
        FZ_CHECK(trk_rec_merge(&ba, &a) >= 0);
        encode(&e1, &ab);
        encode(&e2, &ba);
        FZ_CHECK(e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0);
        FZ_CHECK(trk_rec_merge(&ab, &a) == 0);
        FZ_CHECK(trk_rec_merge(&ab, &b) == 0);
        views(&ab);
        trk_rec_free(&ab);
        trk_rec_free(&ba);
        ts_wbuf_free(&e1);
        ts_wbuf_free(&e2);
    }
    if (ka) {
        /* a local write of an arbitrary value on top of a received one */
        if (s.origin != 0 && trk_rec_put(&a, key, strlen(key), pv, nv, s)
                             == 0)
        {
            views(&a);
        }
        (void) trk_rec_del(&a, key, strlen(key), s);
        trk_rec_free(&a);
    }
    if (kb) {
        trk_rec_free(&b);
    }
}


static void
mode_op(const uint8_t *p, size_t n)
{
    trk_store_t *st = fresh_store();
    uint64_t     maxhlc = 0;
    uint8_t      dg[32];
    uint8_t     *copy = fz_dup(p, n);
    int          rc, rc2;

    FZ_CHECK(trk_store_begin(st) == 0);
    rc = trk_oplog_apply(st, copy, n, &maxhlc);
    if (rc < 0) {
        trk_store_cancel(st);
    } else {
        FZ_CHECK(trk_store_commit(st) == 0);
        if (rc == 1) {
            FZ_CHECK(trk_store_begin(st) == 0);
            rc2 = trk_oplog_apply(st, copy, n, &maxhlc);
            FZ_CHECK(rc2 == 0);
            trk_store_cancel(st);
        }
    }
    (void) trk_digest(st, dg);
    free(copy);
}


/* Every getter that reads key's kind back. */
static void
read_back(trk_store_t *st, const char *key, size_t kl)
{
    char          a[TS_NAME_MAX_B + 1], b[TS_NAME_MAX_B + 1];
    trk_user_t    u;
    trk_group_t   g;
    trk_session_t s;
    trk_file_t    f;
    trk_srcs_t    sr;
    ts_wbuf_t     out;
    uint8_t       h[32];
    const char   *slash;

    ts_wbuf_init(&out);
    (void) trk_kv_get(st, key, kl, &out);
    ts_wbuf_free(&out);
    if (kl < 3 || key[1] != '/' || memchr(key, '\0', kl) != NULL) {
        return;
    }
    snprintf(a, sizeof(a), "%.*s", (int) (kl - 2), key + 2);
    switch (key[0]) {
    case 'u':
        (void) trk_user_get(st, a, &u);
        break;
    case 'g':
        if (trk_group_get(st, a, &g) == 0) {
            trk_group_free(&g);
        }
        (void) trk_group_lost(st, a, "alice");
        break;
    case 's':
        memset(h, 0, sizeof(h));
        (void) trk_session_get(st, h, &s);
        break;
    case 'f':
    case 'p':
        slash = strchr(a, '/');
        if (slash == NULL) {
            break;
        }
        snprintf(b, sizeof(b), "%s", slash + 1);
        a[slash - a] = '\0';
        if (trk_file_get(st, a, b, &f) == 0) {
            trk_file_free(&f);
        }
        if (trk_srcs_get(st, a, b, &sr) == 0) {
            trk_srcs_free(&sr);
        }
        break;
    default:
        break;
    }
}


static void
mode_snapshot(const uint8_t *p, size_t n)
{
    trk_store_t   *st;
    ts_rbuf_t      r;
    trk_vv_t       vv;
    trk_rec_t      rec;
    char           txt[512];
    const uint8_t *k, *v;
    uint32_t       kl, vl, cnt, i;
    uint8_t       *copy = fz_dup(p, n);

    ts_rbuf_init(&r, copy, n);
    if (trk_vv_decode(&r, &vv) == 0) {
        trk_vv_format(&vv, txt, sizeof(txt));
    }
    ts_rbuf_init(&r, copy, n);
    (void) trk_vv_decode(&r, &vv);
    r.err = 0;
    cnt = ts_get_u8(&r);
    st = fresh_store();
    for (i = 0; i < cnt; i++) {
        k = ts_get_blob(&r, &kl, 4096);
        v = ts_get_blob(&r, &vl, TS_FRAME_MAX_B);
        if (k == NULL || v == NULL) {
            break;
        }
        if (!trk_key_replicated(k, kl) || trk_rec_decode(v, vl, &rec) != 0) {
            continue;
        }
        FZ_CHECK(trk_store_begin(st) == 0);
        if (trk_kv_merge(st, (const char *) k, kl, &rec) == 0) {
            FZ_CHECK(trk_store_commit(st) == 0);
        } else {
            trk_store_cancel(st);
        }
        trk_rec_free(&rec);
        read_back(st, (const char *) k, kl);
    }
    free(copy);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_mode_t modes[] = {
        mode_one, mode_two, mode_op, mode_snapshot,
    };

    return FZ_MODES(data, size, modes);
}
