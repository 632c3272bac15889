/*
 * fuzz_records.c -- libFuzzer target: records read back from disk, where
 * a corrupt or hostile file must give an error, never a crash.
 *
 * Input byte 0 picks a mode, the rest is the record:
 *   0..4  the tracker's value codecs: trk_user, trk_group, trk_session,
 *         trk_file, trk_srcs (trk_codec.h);
 *   5, 6  the client's node.tdb codecs: cli_share, cli_dl (cli_state.h).
 *         For 0..6: decode; when it decodes, encode, and the encoding
 *         must decode again to the same encoding (a decoder may accept
 *         old forms, but what it gives back is stable);
 *   7     node.tdb on disk: u8 n, n x (str key, blob value) stored raw
 *         into a fresh node.tdb, then read through cli_state_shares,
 *         cli_state_dls, cli_state_share_get and cli_state_dl_get;
 *   8     the tracker's tdb on disk: u8 n, n x (str key, blob value)
 *         stored raw (no envelope check) into a fresh tracker store,
 *         then read back with trk_kv_get and the getter of each key's
 *         kind (user, group, session, file, sources, reply cache);
 *   9, 10 the tracker's string lists (trk_codec.h): l/ file names and
 *         m/ "group/name" entries, round trip as for 0..6.
 *
 * Locking: single-threaded.  Crash behaviour: the tdb files live in the
 * process temp dir; node.tdb is recreated and the tracker store put back
 * to its empty start for every input.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <tdb.h>

#include "ts_buf.h"
#include "ts_crypto.h"
#include "trk_files.h"
#include "trk_oplog.h"
#include "trk_store.h"
#include "cli_state.h"
#include "fz_util.h"

static char         node_dir[600], node_path[700];
static trk_store_t *trk;                /* open for good */
static ts_wbuf_t    trk_tmpl;           /* its initial records */


void
fz_init(void)
{
    snprintf(node_dir, sizeof(node_dir), "%s", fz_tmpdir());
    snprintf(node_path, sizeof(node_path), "%s/%s", node_dir,
             CLI_STATE_FILE);
    trk = fz_trk_store("tracker.tdb", &trk_tmpl);
}


static void
cmp_bufs(ts_wbuf_t *b1, ts_wbuf_t *b2)
{
    FZ_CHECK(!b2->err);
    FZ_CHECK(b1->len == b2->len && memcmp(b1->data, b2->data, b1->len) == 0);
    ts_wbuf_free(b1);
    ts_wbuf_free(b2);
}


/* Mode fn: decode -> encode -> decode -> encode, and the two encodings
 * are equal.  enc(b, r) encodes record r into buffer b; fin(r) frees a
 * record. */
#define ROUND_TRIP(fn, type, dec, enc, fin)                               \
static void                                                               \
fn(const uint8_t *p, size_t n)                                            \
{                                                                         \
    type      r1, r2;                                                     \
    ts_wbuf_t b1, b2;                                                     \
                                                                          \
    memset(&r1, 0, sizeof(r1));                                           \
    memset(&r2, 0, sizeof(r2));                                           \
    if (dec(p, n, &r1) != 0) {                                            \
        return;                                                           \
    }                                                                     \
    ts_wbuf_init(&b1);                                                    \
    ts_wbuf_init(&b2);                                                    \
    enc(&b1, &r1);                                                        \
    FZ_CHECK(!b1.err);                                                    \
    FZ_CHECK(dec(b1.data, b1.len, &r2) == 0);                             \
    enc(&b2, &r2);                                                        \
    cmp_bufs(&b1, &b2);                                                   \
    fin(&r1);                                                             \
    fin(&r2);                                                             \
}

/* the client's encoders take (record, buffer) */
#define CLI_SHARE_ENC(b, r)  cli_share_encode(r, b)
#define CLI_DL_ENC(b, r)     cli_dl_encode(r, b)
#define NO_FREE(r)           ((void) (r))

ROUND_TRIP(rt_user, trk_user_t, trk_user_decode, trk_user_encode, NO_FREE)
ROUND_TRIP(rt_group, trk_group_t, trk_group_decode, trk_group_encode,
           trk_group_free)
ROUND_TRIP(rt_session, trk_session_t, trk_session_decode,
           trk_session_encode, NO_FREE)
ROUND_TRIP(rt_file, trk_file_t, trk_file_decode, trk_file_encode,
           trk_file_free)
ROUND_TRIP(rt_srcs, trk_srcs_t, trk_srcs_decode, trk_srcs_encode,
           trk_srcs_free)
ROUND_TRIP(rt_share, cli_share_rec_t, cli_share_decode, CLI_SHARE_ENC,
           NO_FREE)
ROUND_TRIP(rt_dl, cli_dl_rec_t, cli_dl_decode, CLI_DL_ENC, cli_dl_free)

/* the tracker's string lists take a kind and a bound */
#define NAMES_DEC(p, n, r)   trk_strlist_decode(p, n, TRK_REC_LIST,        \
                                                TS_TRK_GROUP_FILES_MAX_N, r)
#define NAMES_ENC(b, r)      trk_strlist_encode(b, TRK_REC_LIST, r)
#define SHARES_DEC(p, n, r)  trk_strlist_decode(p, n, TRK_REC_SHARES,      \
                                                TS_TRK_NODE_SHARES_MAX_N, r)
#define SHARES_ENC(b, r)     trk_strlist_encode(b, TRK_REC_SHARES, r)

ROUND_TRIP(rt_names, trk_strlist_t, NAMES_DEC, NAMES_ENC, trk_strlist_free)
ROUND_TRIP(rt_shares, trk_strlist_t, SHARES_DEC, SHARES_ENC,
           trk_strlist_free)


/* Stores u8 n, n x (str key, blob value) raw into tdb. */
static void
store_raw(struct tdb_context *tdb, const uint8_t *p, size_t n)
{
    ts_rbuf_t      r;
    char           key[TS_STR_MAX_B + 1];
    const uint8_t *v;
    uint32_t       vl, cnt, i;
    TDB_DATA       k, d;

    ts_rbuf_init(&r, p, n);
    cnt = ts_get_u8(&r);
    for (i = 0; i < cnt; i++) {
        if (ts_get_str(&r, key, sizeof(key)) != 0
            || (v = ts_get_blob(&r, &vl, TS_FRAME_MAX_B)) == NULL)
        {
            break;
        }
        k.dptr = (unsigned char *) key;
        k.dsize = strlen(key);
        d.dptr = (unsigned char *) v;
        d.dsize = vl;
        (void) tdb_store(tdb, k, d, TDB_REPLACE);
    }
}


static void
share_cb(void *arg, cli_share_rec_t *r)
{
    (void) arg;
    FZ_CHECK(ts_valid_id(r->group) && ts_valid_filename(r->name));
}


static void
dl_cb(void *arg, cli_dl_rec_t *r)
{
    (void) arg;
    FZ_CHECK(ts_valid_id(r->group) && ts_valid_filename(r->name));
    FZ_CHECK(r->nchunks == 0 || (r->hashes != NULL && r->done != NULL));
}


static void
node_tdb(const uint8_t *p, size_t n)
{
    struct tdb_context *tdb;
    cli_state_t        *st;
    cli_share_rec_t     sr;
    cli_dl_rec_t        dr;

    unlink(node_path);
    tdb = tdb_open(node_path, 0, TDB_DEFAULT, O_RDWR | O_CREAT | O_CLOEXEC,
                   0600);
    FZ_CHECK(tdb != NULL);
    store_raw(tdb, p, n);
    tdb_close(tdb);
    st = cli_state_open(node_dir);
    FZ_CHECK(st != NULL);
    (void) cli_state_shares(st, "alice", share_cb, NULL);
    (void) cli_state_dls(st, "alice", dl_cb, NULL);
    (void) cli_state_share_get(st, "alice", "g1", "f1.bin", &sr);
    if (cli_state_dl_get(st, "alice", "g1", "f1.bin", &dr) == 0) {
        cli_dl_free(&dr);
    }
    cli_state_close(st);
}


static void
tracker_tdb(const uint8_t *p, size_t n)
{
    trk_store_t  *st;
    trk_user_t    u;
    trk_group_t   g;
    trk_session_t s;
    trk_file_t    f;
    trk_srcs_t    sr;
    trk_counts_t  c;
    ts_wbuf_t     out;
    uint8_t       h[32], dg[32];
    uint64_t      hlc;
    uint8_t       origin;

    fz_tdb_restore(trk_store_tdb(trk), &trk_tmpl);
    st = trk;
    store_raw(trk_store_tdb(st), p, n);
    ts_wbuf_init(&out);
    (void) trk_kv_get(st, "u/alice", 7, &out);
    (void) trk_user_get(st, "alice", &u);
    (void) trk_user_stamp(st, "alice", &hlc, &origin);
    (void) trk_user_same_account(st, "alice", 1, 1);
    if (trk_group_get(st, "g1", &g) == 0) {
        trk_group_free(&g);
    }
    (void) trk_group_lost(st, "g1", "alice");
    /* the session key of the all-zero hash and of sha256("") */
    memset(h, 0, sizeof(h));
    (void) trk_session_get(st, h, &s);
    (void) ts_sha256("", 0, h);
    (void) trk_session_get(st, h, &s);
    if (trk_file_get(st, "g1", "f1.bin", &f) == 0) {
        trk_file_free(&f);
    }
    if (trk_srcs_get(st, "g1", "f1.bin", &sr) == 0) {
        trk_srcs_free(&sr);
    }
    {
        static const uint8_t rh[TS_SHA256_B];   /* r/..1000/0000.. */

        (void) trk_reply_get(st, 0x1000, 30, rh, &out);
    }
    (void) trk_store_count(st, &c);
    (void) trk_digest(st, dg);
    ts_wbuf_free(&out);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_mode_t modes[] = {
        rt_user, rt_group, rt_session, rt_file, rt_srcs, rt_share, rt_dl,
        node_tdb, tracker_tdb, rt_names, rt_shares,
    };

    return FZ_MODES(data, size, modes);
}
