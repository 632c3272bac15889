/*
 * gen_corpus.c -- writes the seed corpora of the fuzz targets
 * (tests/fuzz/corpus/<target>/) with the real encoders: ts_buf fields,
 * ts_frame_build, the tracker's rule functions on real tdb stores (for
 * op records and merge envelopes), the record codecs, the peer message
 * codec (workers/peer_msg.h) and a real ticket signer.
 * `make fuzz-corpus` runs it; only its output is committed.
 *
 * Usage: gen_corpus OUTDIR.  Existing files of the same name are
 * replaced; others are left alone (libFuzzer-found inputs added by hand,
 * crash reproducers).
 *
 * Locking: single-threaded.  Crash behaviour: its stores and PEM files
 * live in a temp dir removed at exit.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_buf.h"
#include "ts_crypto.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "ts_ticket.h"
#include "ts_tls.h"
#include "trk_files.h"
#include "trk_merge.h"
#include "trk_oplog.h"
#include "trk_store.h"
#include "cli_state.h"
#include "peer_msg.h"
#include "fz_util.h"

static const char *outdir;
static int         nfiles;

/* the users of fuzz_trk_ops's template (token k = flags bits 0-1) */
enum { ANON = 0, ALICE = 1, BOB = 2, CAROL = 3 };
#define F_NOTOK  0x20           /* no token before the payload */
#define F_TRK2   0x80           /* link proves tracker 2 */
#define F_NOCERT 0x40


static void
emit(const char *target, const char *name, const void *p, size_t n)
{
    char dir[PATH_MAX], path[PATH_MAX];

    snprintf(dir, sizeof(dir), "%s/%s", outdir, target);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "mkdir %s: %s\n", dir, strerror(errno));
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (fz_write_file(path, p, n) != 0) {
        fprintf(stderr, "write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    nfiles++;
}


/* emit with a leading mode byte */
static void
emit_m(const char *target, const char *name, uint8_t mode, const void *p,
       size_t n)
{
    ts_wbuf_t b;

    ts_wbuf_init(&b);
    ts_put_u8(&b, mode);
    ts_put_raw(&b, p, n);
    emit(target, name, b.data, b.len);
    ts_wbuf_free(&b);
}


/* ---- frame ----------------------------------------------------------- */

static void
gen_frame(void)
{
    ts_wbuf_t pl, fr, all, prog;
    uint8_t   tok[TS_TOKEN_B];

    ts_wbuf_init(&pl);
    ts_wbuf_init(&fr);
    ts_wbuf_init(&all);
    ts_wbuf_init(&prog);
    memset(tok, 7, sizeof(tok));

    /* a request stream: LOGIN, CREATE_GROUP, PEER_GET */
    ts_put_str(&pl, "alice");
    ts_put_str(&pl, "pw");
    ts_put_str(&pl, "127.0.0.1:7001");
    ts_frame_build(&fr, TS_MSG_LOGIN, 0, 1, pl.data, (uint32_t) pl.len);
    ts_put_raw(&all, fr.data, fr.len);
    ts_wbuf_reset(&pl);
    ts_put_raw(&pl, tok, sizeof(tok));
    ts_put_str(&pl, "g1");
    ts_frame_build(&fr, TS_MSG_CREATE_GROUP, 0, 2, pl.data,
                   (uint32_t) pl.len);
    ts_put_raw(&all, fr.data, fr.len);
    ts_frame_build(&fr, TS_MSG_STATUS, 0, 3, NULL, 0);
    ts_put_raw(&all, fr.data, fr.len);
    emit_m("frame", "stream-requests", 0, all.data, all.len);

    /* a reply stream: OK with a body, an error */
    ts_wbuf_reset(&all);
    ts_wbuf_reset(&pl);
    ts_reply_begin(&pl, TS_OK, NULL);
    ts_put_raw(&pl, tok, sizeof(tok));
    ts_put_u32(&pl, 5000);
    ts_frame_build(&fr, TS_MSG_REPLY, TS_FF_REPLY, 1, pl.data,
                   (uint32_t) pl.len);
    ts_put_raw(&all, fr.data, fr.len);
    ts_wbuf_reset(&pl);
    ts_reply_begin(&pl, TS_ERR_PERM, "not a member of group 'g1'");
    ts_frame_build(&fr, TS_MSG_REPLY, TS_FF_REPLY, 2, pl.data,
                   (uint32_t) pl.len);
    ts_put_raw(&all, fr.data, fr.len);
    emit_m("frame", "stream-replies", 0, all.data, all.len);
    /* the same two as header + reply payload */
    emit_m("frame", "header-reply", 1, fr.data, fr.len);

    /* the ts_buf program: u8 u16 u32 u64 raw[8] str blob end */
    ts_wbuf_reset(&pl);
    ts_put_u8(&pl, 1);
    ts_put_u16(&pl, 2);
    ts_put_u32(&pl, 3);
    ts_put_u64(&pl, 4);
    ts_put_raw(&pl, tok, 8);
    ts_put_str(&pl, "g1");
    ts_put_blob(&pl, tok, sizeof(tok));
    ts_put_u16(&prog, 8);
    ts_put_u8(&prog, 0);
    ts_put_u8(&prog, 1);
    ts_put_u8(&prog, 2);
    ts_put_u8(&prog, 3);
    ts_put_u8(&prog, 4 | (8 << 3));
    ts_put_u8(&prog, 5);
    ts_put_u8(&prog, 6);
    ts_put_u8(&prog, 7);
    ts_put_raw(&prog, pl.data, pl.len);
    emit_m("frame", "buf-program", 2, prog.data, prog.len);

    ts_wbuf_free(&pl);
    ts_wbuf_free(&fr);
    ts_wbuf_free(&all);
    ts_wbuf_free(&prog);
}


/* ---- a tracker store with some history ------------------------------- */

typedef struct {
    trk_store_t      *st;
    _Atomic uint64_t  hlc;
} gstore_t;

static void
gstore_open(gstore_t *g, const char *name, int origin)
{
    char path[PATH_MAX], err[256];

    snprintf(path, sizeof(path), "%s/%s.tdb", fz_tmpdir(), name);
    atomic_init(&g->hlc, 0);
    g->st = trk_store_open(path, 1, 1, err, sizeof(err));
    if (g->st == NULL || trk_epoch_get(g->st, 1) == 0) {
        fprintf(stderr, "store %s: %s\n", path, err);
        exit(1);
    }
    trk_store_set_origin(g->st, origin, (void *) &g->hlc, NULL);
}


static void
must(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "gen_corpus: %s failed\n", what);
        exit(1);
    }
}


static void
begin(gstore_t *g, uint64_t reqid)
{
    must(trk_store_begin(g->st) == 0, "begin");
    trk_store_set_reqid(g->st, reqid);
}


static void
commit(gstore_t *g)
{
    must(trk_store_commit(g->st) == 0, "commit");
}


static void
user(gstore_t *g, const char *u, uint64_t reqid)
{
    trk_user_t rec;
    char       msg[TRK_MSG_B];

    memset(&rec, 0, sizeof(rec));
    memset(rec.salt, 0x33, sizeof(rec.salt));
    rec.iterations = 1;
    must(ts_pbkdf2_sha1("pw", 2, rec.salt, sizeof(rec.salt), 1, rec.hash,
                        sizeof(rec.hash)) == 0, "pbkdf2");
    rec.created_ms = (uint64_t) ts_wall_ms();
    begin(g, reqid);
    must(trk_do_create_user(g->st, u, &rec, msg, sizeof(msg)) == TS_OK, msg);
    commit(g);
}


static void
session(gstore_t *g, const char *u, const char *addr, uint8_t tag)
{
    trk_session_t s;
    uint8_t       h[32];

    memset(h, tag, sizeof(h));
    memset(&s, 0, sizeof(s));
    snprintf(s.user, sizeof(s.user), "%s", u);
    snprintf(s.node_addr, sizeof(s.node_addr), "%s", addr);
    s.created_ms = (uint64_t) ts_wall_ms();
    memset(s.fp, tag, sizeof(s.fp));
    begin(g, 0);
    must(trk_session_put(g->st, h, &s) == 0
         && trk_files_session_added(g->st, h, u, addr) == 0, "session");
    commit(g);
}


static void
history(gstore_t *g, int origin)
{
    char       msg[TRK_MSG_B];
    trk_fctx_t c;
    uint8_t    sha1[20], hashes[60], bm = 0x05;

    user(g, "alice", 0x10 + origin);
    user(g, "bob", 0x20 + origin);
    session(g, "alice", "127.0.0.1:7001", 0xa1);
    session(g, "bob", "127.0.0.1:7002", 0xa2);
    begin(g, 0x30 + origin);
    must(trk_do_create_group(g->st, "alice", "g1", msg, sizeof(msg)) == TS_OK
         && trk_do_join_group(g->st, "bob", "g1", msg, sizeof(msg)) == TS_OK
         && trk_do_accept(g->st, "alice", "g1", "bob", 1, msg, sizeof(msg))
            == TS_OK, msg);
    commit(g);
    memset(&c, 0, sizeof(c));
    c.st = g->st;
    c.now_ms = ts_now_ms();
    c.timeout_ms = TS_SESSION_TIMEOUT_MS;
    c.user = "alice";
    c.node_addr = "127.0.0.1:7001";
    memset(sha1, 0x11, sizeof(sha1));
    memset(hashes, 0x22, sizeof(hashes));
    begin(g, 0x40 + origin);
    must(trk_do_upload(&c, "g1", "f1.bin", 2ull * TS_CHUNK_B + 5, sha1, 3,
                       hashes, msg, sizeof(msg)) == TS_OK, msg);
    commit(g);
    c.user = "bob";
    c.node_addr = "127.0.0.1:7002";
    begin(g, 0x50 + origin);
    must(trk_do_have_chunks(&c, "g1", "f1.bin", 0, &bm, 1, msg, sizeof(msg))
         == TS_OK, msg);
    commit(g);
    begin(g, 0x60 + origin);
    must(trk_do_create_group(g->st, "bob", "g2", msg, sizeof(msg)) == TS_OK,
         msg);
    commit(g);
    begin(g, 0x70 + origin);
    must(trk_do_leave_group(g->st, "bob", "g2", msg, sizeof(msg), msg,
                            sizeof(msg)) == TS_OK, "leave");
    commit(g);
}


/* collects every replicated key and its envelope */
typedef struct {
    int        n;
    char       key[64][128];
    ts_wbuf_t  env[64];
} envs_t;

static int
collect(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, void *arg)
{
    envs_t *e = arg;

    if (e->n < 64 && kl < sizeof(e->key[0])) {
        memcpy(e->key[e->n], k, kl);
        e->key[e->n][kl] = '\0';
        ts_wbuf_init(&e->env[e->n]);
        ts_put_raw(&e->env[e->n], v, vl);
        e->n++;
    }
    return 0;
}


static void
name_of(char *out, size_t outsz, const char *prefix, const char *key)
{
    size_t i, k = strlen(prefix);

    snprintf(out, outsz, "%s", prefix);
    for (i = 0; key[i] != '\0' && k + 1 < outsz && i < 40; i++, k++) {
        out[k] = (key[i] == '/' || key[i] == ':') ? '_' : key[i];
    }
    out[k] = '\0';
}


/* ---- tracker requests (fuzz_trk_ops) --------------------------------- */

static void
rec(ts_wbuf_t *seq, uint8_t type, uint8_t flags, const ts_wbuf_t *pl)
{
    ts_put_u8(seq, type);
    ts_put_u8(seq, flags);
    ts_put_u16(seq, (uint16_t) (pl ? pl->len : 0));
    if (pl != NULL) {
        ts_put_raw(seq, pl->data, pl->len);
    }
}


static void
strs(ts_wbuf_t *pl, const char *a, const char *b, const char *c)
{
    ts_wbuf_reset(pl);
    if (a) {
        ts_put_str(pl, a);
    }
    if (b) {
        ts_put_str(pl, b);
    }
    if (c) {
        ts_put_str(pl, c);
    }
}


static void
one_req(const char *name, uint8_t type, uint8_t flags, const ts_wbuf_t *pl)
{
    ts_wbuf_t seq;

    ts_wbuf_init(&seq);
    rec(&seq, type, flags, pl);
    emit("trk_ops", name, seq.data, seq.len);
    ts_wbuf_free(&seq);
}


static void
gen_trk_ops(const envs_t *e, const ts_wbuf_t *op)
{
    ts_wbuf_t pl, seq;
    uint8_t   sha1[20], hashes[40], bm = 1, h[32];
    trk_vv_t  vv;
    int       i;

    ts_wbuf_init(&pl);
    ts_wbuf_init(&seq);
    memset(sha1, 0x44, sizeof(sha1));
    memset(hashes, 0x55, sizeof(hashes));
    memset(&vv, 0, sizeof(vv));
    vv.seq[1] = 3;
    vv.seq[2] = 1;

    strs(&pl, "dave", "pw", NULL);
    one_req("create_user", TS_MSG_CREATE_USER, 0, &pl);
    /* alice's link comes from 127.0.0.2 (fuzz_trk_ops link_for) */
    strs(&pl, "alice", "pw", "127.0.0.2:7009");
    one_req("login", TS_MSG_LOGIN, ALICE | F_NOTOK, &pl);
    strs(&pl, "alice", "wrong", "127.0.0.2:7009");
    one_req("login-bad", TS_MSG_LOGIN, ALICE | F_NOTOK, &pl);
    strs(&pl, "alice", "pw", "127.0.0.9:7009");
    one_req("login-other-ip", TS_MSG_LOGIN, ALICE | F_NOTOK, &pl);
    one_req("logout", TS_MSG_LOGOUT, BOB, NULL);
    one_req("heartbeat", TS_MSG_HEARTBEAT, CAROL, NULL);
    strs(&pl, "g3", NULL, NULL);
    one_req("create_group", TS_MSG_CREATE_GROUP, BOB, &pl);
    strs(&pl, "g2", NULL, NULL);
    one_req("join_group", TS_MSG_JOIN_GROUP, CAROL, &pl);
    strs(&pl, "g1", NULL, NULL);
    one_req("leave_group-owner", TS_MSG_LEAVE_GROUP, ALICE, &pl);
    one_req("leave_group", TS_MSG_LEAVE_GROUP, BOB, &pl);
    one_req("list_requests", TS_MSG_LIST_REQUESTS, ALICE, &pl);
    strs(&pl, "g1", "carol", NULL);
    one_req("accept", TS_MSG_ACCEPT_REQUEST, ALICE, &pl);
    one_req("reject", TS_MSG_REJECT_REQUEST, ALICE, &pl);
    one_req("list_groups", TS_MSG_LIST_GROUPS, CAROL, NULL);
    one_req("list_my_groups", TS_MSG_LIST_MY_GROUPS, BOB, NULL);
    strs(&pl, "g1", "f2.txt", NULL);
    ts_put_u64(&pl, TS_CHUNK_B + 1);
    ts_put_raw(&pl, sha1, sizeof(sha1));
    ts_put_u32(&pl, 2);
    ts_put_raw(&pl, hashes, sizeof(hashes));
    one_req("upload", TS_MSG_UPLOAD_FILE, BOB, &pl);
    strs(&pl, "g1", NULL, NULL);
    one_req("list_files", TS_MSG_LIST_FILES, BOB, &pl);
    strs(&pl, "g1", "f1.bin", NULL);
    one_req("file_info", TS_MSG_FILE_INFO, BOB, &pl);
    one_req("file_info-nocert", TS_MSG_FILE_INFO, BOB | F_NOCERT, &pl);
    one_req("file_info-denied", TS_MSG_FILE_INFO, CAROL, &pl);
    one_req("stop_share", TS_MSG_STOP_SHARE, ALICE, &pl);
    strs(&pl, "g1", "f1.bin", NULL);
    ts_put_u8(&pl, 1);
    ts_put_blob(&pl, &bm, 1);
    one_req("have_chunks", TS_MSG_HAVE_CHUNKS, BOB, &pl);
    one_req("my_shares", TS_MSG_MY_SHARES, ALICE, NULL);
    one_req("status", TS_MSG_STATUS, F_TRK2, NULL);
    one_req("status-anon", TS_MSG_STATUS, 0, NULL);

    /* SYNC_* from tracker 2, over a link that proves it */
    ts_wbuf_reset(&pl);
    ts_put_u8(&pl, 2);
    ts_put_u64(&pl, 0x1234);
    trk_vv_encode(&pl, &vv);
    one_req("sync_hello", TS_MSG_SYNC_HELLO, F_TRK2, &pl);
    one_req("sync_hello-unproven", TS_MSG_SYNC_HELLO, 0, &pl);
    ts_wbuf_reset(&pl);
    ts_put_u8(&pl, 2);
    ts_put_u32(&pl, 1);
    ts_put_blob(&pl, op->data, (uint32_t) op->len);
    one_req("sync_ops", TS_MSG_SYNC_OPS, F_TRK2, &pl);
    ts_wbuf_reset(&pl);
    ts_put_u8(&pl, 2);
    ts_put_u8(&pl, 2);
    ts_put_u32(&pl, 1);
    memset(h, 0xa1, sizeof(h));
    ts_put_raw(&pl, h, sizeof(h));
    one_req("sync_ack", TS_MSG_SYNC_ACK, F_TRK2, &pl);
    ts_wbuf_reset(&pl);
    ts_put_u8(&pl, 2);
    ts_put_u8(&pl, 1);
    ts_put_u32(&pl, (uint32_t) (e->n < 8 ? e->n : 8));
    for (i = 0; i < e->n && i < 8; i++) {
        ts_put_blob(&pl, e->key[i], (uint32_t) strlen(e->key[i]));
        ts_put_blob(&pl, e->env[i].data, (uint32_t) e->env[i].len);
    }
    trk_vv_encode(&pl, &vv);
    one_req("sync_snapshot", TS_MSG_SYNC_SNAPSHOT, F_TRK2, &pl);

    /* sequences that reach deeper states */
    ts_wbuf_reset(&seq);
    strs(&pl, "g3", NULL, NULL);
    rec(&seq, TS_MSG_CREATE_GROUP, BOB, &pl);
    rec(&seq, TS_MSG_JOIN_GROUP, CAROL, &pl);
    strs(&pl, "g3", "carol", NULL);
    rec(&seq, TS_MSG_ACCEPT_REQUEST, BOB | (1 << 2), &pl);
    strs(&pl, "g3", "c.dat", NULL);
    ts_put_u64(&pl, 100);
    ts_put_raw(&pl, sha1, sizeof(sha1));
    ts_put_u32(&pl, 1);
    ts_put_raw(&pl, hashes, 20);
    rec(&seq, TS_MSG_UPLOAD_FILE, CAROL | (2 << 2), &pl);
    strs(&pl, "g3", "c.dat", NULL);
    rec(&seq, TS_MSG_FILE_INFO, BOB, &pl);
    strs(&pl, "g3", NULL, NULL);
    rec(&seq, TS_MSG_LIST_FILES, BOB, &pl);
    rec(&seq, TS_MSG_LEAVE_GROUP, BOB | (3 << 2), &pl);
    rec(&seq, TS_MSG_MY_SHARES, CAROL, NULL);
    emit("trk_ops", "seq-group-life", seq.data, seq.len);

    ts_wbuf_reset(&seq);
    strs(&pl, "g1", "f1.bin", NULL);
    rec(&seq, TS_MSG_FILE_INFO, BOB, &pl);
    rec(&seq, TS_MSG_LOGOUT, ALICE, NULL);
    rec(&seq, TS_MSG_FILE_INFO, BOB, &pl);
    rec(&seq, 0, 0, NULL);                      /* housekeeping */
    rec(&seq, TS_MSG_HEARTBEAT, BOB, NULL);
    strs(&pl, "alice", "pw", "127.0.0.2:7001");
    rec(&seq, TS_MSG_LOGIN, ALICE | F_NOTOK, &pl);
    emit("trk_ops", "seq-logout-expire", seq.data, seq.len);

    ts_wbuf_reset(&seq);
    strs(&pl, "g1", "f1.bin", NULL);
    rec(&seq, TS_MSG_STOP_SHARE, ALICE | (4 << 2), &pl);
    rec(&seq, TS_MSG_STOP_SHARE, ALICE | (4 << 2), &pl);   /* cached */
    rec(&seq, TS_MSG_STOP_SHARE, BOB, &pl);
    strs(&pl, "g1", NULL, NULL);
    rec(&seq, TS_MSG_LIST_FILES, ALICE, &pl);
    emit("trk_ops", "seq-stop-share", seq.data, seq.len);

    ts_wbuf_free(&pl);
    ts_wbuf_free(&seq);
}


/* ---- replication (fuzz_trk_sync) ------------------------------------- */

static void
gen_trk_sync(const envs_t *a, const envs_t *b, const ts_wbuf_t *ops,
             int nops)
{
    ts_wbuf_t w;
    trk_vv_t  vv;
    char      nm[96];
    int       i, j;

    ts_wbuf_init(&w);
    for (i = 0; i < a->n; i++) {
        name_of(nm, sizeof(nm), "env-", a->key[i]);
        emit_m("trk_sync", nm, 0, a->env[i].data, a->env[i].len);
    }
    /* the same key written concurrently on two trackers */
    for (i = 0; i < a->n; i++) {
        for (j = 0; j < b->n; j++) {
            if (strcmp(a->key[i], b->key[j]) != 0) {
                continue;
            }
            ts_wbuf_reset(&w);
            ts_put_u16(&w, (uint16_t) a->env[i].len);
            ts_put_raw(&w, a->env[i].data, a->env[i].len);
            ts_put_u16(&w, (uint16_t) b->env[j].len);
            ts_put_raw(&w, b->env[j].data, b->env[j].len);
            ts_put_u8(&w, (uint8_t) i);
            ts_put_u32(&w, 0x7fffffff);
            ts_put_u8(&w, 1);
            name_of(nm, sizeof(nm), "pair-", a->key[i]);
            emit_m("trk_sync", nm, 1, w.data, w.len);
        }
    }
    for (i = 0; i < nops; i++) {
        snprintf(nm, sizeof(nm), "op-%02d", i);
        emit_m("trk_sync", nm, 2, ops[i].data, ops[i].len);
    }
    memset(&vv, 0, sizeof(vv));
    vv.seq[2] = (uint64_t) nops;
    ts_wbuf_reset(&w);
    trk_vv_encode(&w, &vv);
    ts_put_u8(&w, (uint8_t) b->n);
    for (i = 0; i < b->n; i++) {
        ts_put_blob(&w, b->key[i], (uint32_t) strlen(b->key[i]));
        ts_put_blob(&w, b->env[i].data, (uint32_t) b->env[i].len);
    }
    emit_m("trk_sync", "snapshot", 3, w.data, w.len);
    ts_wbuf_free(&w);
}


/* ---- records (fuzz_records) ------------------------------------------ */

static void
gen_records(gstore_t *g, const envs_t *e)
{
    ts_wbuf_t       w, v;
    trk_session_t   s;
    cli_share_rec_t sh;
    cli_dl_rec_t    dl;
    char            nm[96];
    uint8_t         h[32];
    int             i, mode;

    ts_wbuf_init(&w);
    ts_wbuf_init(&v);
    /* application values of every key, by codec */
    for (i = 0; i < e->n; i++) {
        switch (e->key[i][0]) {
        case 'u': mode = 0; break;
        case 'g': mode = 1; break;
        case 's': mode = 2; break;
        case 'f': mode = 3; break;
        case 'p': mode = 4; break;
        default:  mode = -1; break;
        }
        if (mode < 0
            || trk_kv_get(g->st, e->key[i], strlen(e->key[i]), &v) != 0)
        {
            continue;
        }
        name_of(nm, sizeof(nm), "val-", e->key[i]);
        emit_m("records", nm, (uint8_t) mode, v.data, v.len);
        if (mode == 2 && v.len > TS_FP_B) {
            /* a session written before issue 5: no fingerprint */
            emit_m("records", "val-session-old", 2, v.data,
                   v.len - TS_FP_B);
        }
    }
    memset(h, 0xa1, sizeof(h));
    if (trk_session_get(g->st, h, &s) == 0) {
        ts_wbuf_reset(&v);
        trk_session_encode(&v, &s);
        emit_m("records", "session", 2, v.data, v.len);
    }

    memset(&sh, 0, sizeof(sh));
    snprintf(sh.group, sizeof(sh.group), "g1");
    snprintf(sh.name, sizeof(sh.name), "f1.bin");
    snprintf(sh.path, sizeof(sh.path), "/srv/files/f1.bin");
    sh.size = 2ull * TS_CHUNK_B + 5;
    sh.nchunks = cli_nchunks(sh.size);
    sh.mtime_ns = 1700000000000000000ll;
    memset(sh.sha1, 0x11, sizeof(sh.sha1));
    ts_wbuf_reset(&v);
    cli_share_encode(&sh, &v);
    emit_m("records", "cli-share", 5, v.data, v.len);
    ts_wbuf_reset(&w);
    ts_put_u8(&w, 2);
    ts_put_str(&w, "s/alice/g1/f1.bin");
    ts_put_blob(&w, v.data, (uint32_t) v.len);

    memset(&dl, 0, sizeof(dl));
    snprintf(dl.group, sizeof(dl.group), "g1");
    snprintf(dl.name, sizeof(dl.name), "f1.bin");
    snprintf(dl.dest, sizeof(dl.dest), "/home/bob/f1.bin");
    snprintf(dl.part, sizeof(dl.part), "/home/bob/.f1.bin.part");
    dl.size = 2ull * TS_CHUNK_B + 5;
    dl.nchunks = cli_nchunks(dl.size);
    must(cli_dl_alloc(&dl) == 0, "cli_dl_alloc");
    memset(dl.hashes, 0x22, 20ull * dl.nchunks);
    dl.done[0] = 0x05;
    dl.state = CLI_DL_ACTIVE;
    ts_wbuf_reset(&v);
    cli_dl_encode(&dl, &v);
    emit_m("records", "cli-dl", 6, v.data, v.len);
    ts_put_str(&w, "d/alice/g1/f1.bin");
    ts_put_blob(&w, v.data, (uint32_t) v.len);
    emit_m("records", "node-tdb", 7, w.data, w.len);
    dl.state = CLI_DL_FAILED;
    snprintf(dl.error, sizeof(dl.error), "not permitted: no ticket");
    ts_wbuf_reset(&v);
    cli_dl_encode(&dl, &v);
    emit_m("records", "cli-dl-failed", 6, v.data, v.len);
    cli_dl_free(&dl);

    /* a tracker tdb with the envelopes of the history */
    ts_wbuf_reset(&w);
    ts_put_u8(&w, (uint8_t) e->n);
    for (i = 0; i < e->n; i++) {
        ts_put_str(&w, e->key[i]);
        ts_put_blob(&w, e->env[i].data, (uint32_t) e->env[i].len);
    }
    emit_m("records", "tracker-tdb", 8, w.data, w.len);
    ts_wbuf_free(&w);
    ts_wbuf_free(&v);
}


/* ---- tickets, FILE_INFO bodies, peer streams ------------------------- */

static void
ticket(ts_ticket_signer_t *s, const char *group, const char *name,
       uint8_t fpb, uint64_t issued, uint64_t ttl, ts_wbuf_t *out)
{
    ts_ticket_t t;

    memset(&t, 0, sizeof(t));
    snprintf(t.group, sizeof(t.group), "%s", group);
    snprintf(t.name, sizeof(t.name), "%s", name);
    memset(t.fp, fpb, sizeof(t.fp));
    t.issued_ms = issued;
    t.expires_ms = issued + ttl;
    ts_wbuf_reset(out);
    must(ts_ticket_sign(s, &t, out) == 0, "ts_ticket_sign");
}


static void
gen_ticket(ts_ticket_signer_t *s)
{
    ts_wbuf_t tk, w;
    uint64_t  now = (uint64_t) ts_wall_ms();

    ts_wbuf_init(&tk);
    ts_wbuf_init(&w);
    ticket(s, "g1", "f1.bin", 0xc3, now, TS_TICKET_TTL_MS, &tk);
    emit_m("ticket", "parse", 0, tk.data, tk.len);
    emit_m("ticket", "verify", 1, tk.data, tk.len);
    ts_put_u8(&w, 0);          /* genuine signer */
    ts_put_u8(&w, 1);          /* issued now */
    ts_put_u16(&w, 100);
    ts_put_u8(&w, 0x01);
    ts_put_raw(&w, tk.data, tk.len);
    emit_m("ticket", "resign", 2, w.data, w.len);
    emit_m("ticket", "resign-cache", 3, w.data, w.len);
    w.data[0] = 2;             /* tracker 1's certificate as issuer 2 */
    emit_m("ticket", "resign-wrong-issuer", 3, w.data, w.len);
    w.data[0] = 3;             /* the rogue CA */
    emit_m("ticket", "resign-rogue", 2, w.data, w.len);
    ticket(s, "a.b_c-9", "name with spaces & \xc3\xa9.txt", 0, 1, 0, &tk);
    emit_m("ticket", "parse-odd-names", 0, tk.data, tk.len);
    ts_wbuf_free(&tk);
    ts_wbuf_free(&w);
}


static void
gen_cli_reply(ts_ticket_signer_t *s)
{
    ts_wbuf_t b, tk;
    uint8_t   sha1[20], hashes[60], fp[TS_FP_B];
    int       i;

    ts_wbuf_init(&b);
    ts_wbuf_init(&tk);
    memset(sha1, 0x11, sizeof(sha1));
    memset(hashes, 0x22, sizeof(hashes));
    ticket(s, "g1", "f1.bin", 0xc3, (uint64_t) ts_wall_ms(),
           TS_TICKET_TTL_MS, &tk);
    /* FILE_INFO (ts_proto.h): head, size, sha1, nchunks, hashes, sources
     * with fingerprints, ticket */
    ts_reply_begin(&b, TS_OK, NULL);
    ts_put_u64(&b, 2ull * TS_CHUNK_B + 5);
    ts_put_raw(&b, sha1, sizeof(sha1));
    ts_put_u32(&b, 3);
    ts_put_raw(&b, hashes, sizeof(hashes));
    ts_put_u32(&b, 3);
    for (i = 0; i < 3; i++) {
        char addr[32];

        snprintf(addr, sizeof(addr), "127.0.0.1:%d", 7001 + i);
        ts_put_str(&b, addr);
        ts_put_u8(&b, (uint8_t) (i != 1));
        ts_put_u32(&b, i == 1 ? 2 : 3);
        memset(fp, 0xa0 + i, sizeof(fp));
        ts_put_raw(&b, fp, sizeof(fp));
    }
    ts_put_blob(&b, tk.data, (uint32_t) tk.len);
    emit_m("cli_reply", "file_info", 0, b.data, b.len);
    ts_wbuf_reset(&b);
    ts_reply_begin(&b, TS_OK, NULL);
    ts_put_u64(&b, 0);
    ts_put_raw(&b, sha1, sizeof(sha1));
    ts_put_u32(&b, 0);
    ts_put_u32(&b, 0);
    ts_put_blob(&b, NULL, 0);
    emit_m("cli_reply", "file_info-empty", 0, b.data, b.len);
    emit_m("cli_reply", "quote", 1, "a \"b\"\\c", 7);

    ts_wbuf_reset(&b);
    ts_reply_begin(&b, TS_OK, NULL);
    ts_put_raw(&b, hashes, TS_TOKEN_B);
    ts_put_u32(&b, 5000);
    emit_m("cli_reply", "login", 2, b.data, b.len);
    ts_wbuf_reset(&b);
    ts_reply_begin(&b, TS_OK, NULL);
    ts_put_str(&b, "carol");
    emit_m("cli_reply", "leave", 3, b.data, b.len);
    ts_wbuf_reset(&b);
    ts_reply_begin(&b, TS_OK, NULL);
    ts_put_u32(&b, 2);
    ts_put_str(&b, "bob");
    ts_put_str(&b, "carol");
    emit_m("cli_reply", "list_requests", 4, b.data, b.len);
    ts_wbuf_reset(&b);
    ts_reply_begin(&b, TS_OK, NULL);
    ts_put_u32(&b, 1);
    ts_put_str(&b, "g1");
    ts_put_str(&b, "alice");
    ts_put_u32(&b, 2);
    emit_m("cli_reply", "list_groups", 5, b.data, b.len);
    ts_wbuf_reset(&b);
    ts_reply_begin(&b, TS_OK, NULL);
    ts_put_u32(&b, 1);
    ts_put_str(&b, "f1.bin");
    ts_put_u64(&b, 2ull * TS_CHUNK_B + 5);
    ts_put_u32(&b, 2);
    ts_put_str(&b, "../hidden");        /* dropped by the client */
    ts_put_u64(&b, 1);
    ts_put_u32(&b, 1);
    b.data[2 + 2 + 3] = 2;              /* the row count, now 2 */
    emit_m("cli_reply", "list_files", 6, b.data, b.len);
    ts_wbuf_reset(&b);
    ts_reply_begin(&b, TS_OK, NULL);
    ts_put_u32(&b, 2);
    ts_put_str(&b, "g1");
    ts_put_str(&b, "f1.bin");
    ts_put_u8(&b, 1);
    ts_put_str(&b, "g2");
    ts_put_str(&b, "part.bin");
    ts_put_u8(&b, 0);
    emit_m("cli_reply", "my_shares", 7, b.data, b.len);
    ts_wbuf_reset(&b);
    ts_reply_begin(&b, TS_OK, NULL);
    emit_m("cli_reply", "empty", 8, b.data, b.len);
    ts_wbuf_reset(&b);
    ts_reply_begin(&b, TS_OK, NULL);
    ts_put_str(&b, "-");
    emit_m("cli_reply", "leave-dissolved", 3, b.data, b.len);
    ts_wbuf_free(&b);
    ts_wbuf_free(&tk);
}


static void
frame(ts_wbuf_t *all, uint8_t type, uint8_t flags, uint64_t reqid,
      const ts_wbuf_t *pl)
{
    ts_wbuf_t fr;

    ts_wbuf_init(&fr);
    ts_frame_build(&fr, type, flags, reqid, pl ? pl->data : NULL,
                   pl ? (uint32_t) pl->len : 0);
    ts_put_raw(all, fr.data, fr.len);
    ts_wbuf_free(&fr);
}


static void
gen_peer(ts_ticket_signer_t *s)
{
    ts_wbuf_t all, pl, tk;
    uint8_t   chunk[64], *bits;

    ts_wbuf_init(&all);
    ts_wbuf_init(&pl);
    ts_wbuf_init(&tk);
    ticket(s, "g1", "f1.bin", 0xc3, (uint64_t) ts_wall_ms(),
           TS_TICKET_TTL_MS, &tk);

    /* uploader: AUTH (re-signed for this link), MAP, GET */
    ts_put_u8(&all, 0);
    ts_put_u8(&all, 0);
    peer_msg_auth_encode(&pl, tk.data, (uint32_t) tk.len);
    frame(&all, TS_MSG_PEER_AUTH, 0xc0, 1, &pl);
    ts_wbuf_reset(&pl);
    peer_msg_req_encode(&pl, TS_MSG_PEER_MAP, "g1", "f1.bin", 0);
    frame(&all, TS_MSG_PEER_MAP, 0, 2, &pl);
    ts_wbuf_reset(&pl);
    peer_msg_req_encode(&pl, TS_MSG_PEER_GET, "g1", "f1.bin", 1);
    frame(&all, TS_MSG_PEER_GET, 0, 3, &pl);
    ts_wbuf_reset(&pl);
    peer_msg_req_encode(&pl, TS_MSG_PEER_MAP, "g1", "other.bin", 0);
    frame(&all, TS_MSG_PEER_MAP, 0, 4, &pl);
    emit("peer", "up-auth-map-get", all.data, all.len);

    /* uploader: no ticket, then one for another identity */
    ts_wbuf_reset(&all);
    ts_put_u8(&all, 0);
    ts_put_u8(&all, 0);
    ts_wbuf_reset(&pl);
    peer_msg_req_encode(&pl, TS_MSG_PEER_MAP, "g1", "f1.bin", 0);
    frame(&all, TS_MSG_PEER_MAP, 0, 1, &pl);
    ts_wbuf_reset(&pl);
    peer_msg_auth_encode(&pl, tk.data, (uint32_t) tk.len);
    frame(&all, TS_MSG_PEER_AUTH, 0x80, 2, &pl);
    frame(&all, TS_MSG_PEER_AUTH, 0, 3, &pl);
    ts_wbuf_reset(&pl);
    peer_msg_req_encode(&pl, TS_MSG_PEER_GET, "g1", "f1.bin", 0);
    frame(&all, TS_MSG_PEER_GET, 0, 4, &pl);
    emit("peer", "up-unauth", all.data, all.len);

    /* downloader of a 3-chunk file: MAP reply, PEER_DATA ok and refused */
    ts_wbuf_reset(&all);
    ts_put_u8(&all, 1);
    ts_put_u8(&all, 2);
    ts_wbuf_reset(&pl);
    bits = peer_msg_map_encode(&pl, 1, 3, 0);
    must(bits != NULL, "peer_msg_map_encode");
    bits[0] = 0x05;
    frame(&all, TS_MSG_REPLY, TS_FF_REPLY, 1, &pl);
    memset(chunk, 0x77, sizeof(chunk));
    ts_wbuf_reset(&pl);
    /* reqid 2 % 3 = chunk 2 */
    peer_msg_data_encode(&pl, TS_OK, NULL, 1, 2, sizeof(chunk) - 16);
    ts_put_raw(&pl, chunk, sizeof(chunk) - 16);
    frame(&all, TS_MSG_PEER_DATA, TS_FF_REPLY, 2, &pl);
    ts_wbuf_reset(&pl);
    peer_msg_data_encode(&pl, TS_ERR_PERM, "no valid ticket", 0, 0, 0);
    frame(&all, TS_MSG_PEER_DATA, TS_FF_REPLY, 3, &pl);
    emit("peer", "dl-map-data", all.data, all.len);

    /* downloader: the answers to a PEER_AUTH (accepted, refused), a
     * refused MAP, and a whole seeder's map of 1 + 0x81 chunks */
    ts_wbuf_reset(&all);
    ts_put_u8(&all, 1);
    ts_put_u8(&all, 0x81);
    ts_wbuf_reset(&pl);
    ts_reply_begin(&pl, TS_OK, NULL);
    frame(&all, TS_MSG_REPLY, TS_FF_REPLY, 1, &pl);
    ts_wbuf_reset(&pl);
    ts_reply_begin(&pl, TS_ERR_AUTH, "ticket expired");
    frame(&all, TS_MSG_REPLY, TS_FF_REPLY, 2, &pl);
    ts_wbuf_reset(&pl);
    ts_reply_begin(&pl, TS_ERR_NOTFOUND, "unknown file");
    frame(&all, TS_MSG_REPLY, TS_FF_REPLY, 3, &pl);
    ts_wbuf_reset(&pl);
    must(peer_msg_map_encode(&pl, 4, 1 + 0x81, 1) != NULL,
         "peer_msg_map_encode");
    frame(&all, TS_MSG_REPLY, TS_FF_REPLY, 4, &pl);
    emit("peer", "dl-auth-maps", all.data, all.len);

    ts_wbuf_free(&all);
    ts_wbuf_free(&pl);
    ts_wbuf_free(&tk);
}


static void
gen_trackers(void)
{
    static const char *const files[] = {
        "127.0.0.1:6000\n127.0.0.1:6001\n",
        "# trackers\n  10.0.0.1 6000   # first\r\n\n10.0.0.2:6001\n",
        "[::1]:6000\n[fe80::1]:7000\n",
        "127.0.0.1:99999\n",
        "127.0.0.1:6000\n127.0.0.1:6000\n",
        "",
    };
    char   nm[32];
    size_t i;

    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(nm, sizeof(nm), "info-%zu", i);
        emit("trackers", nm, files[i], strlen(files[i]));
    }
}


int
main(int argc, char **argv)
{
    gstore_t            ga, gb;
    envs_t             *ea, *eb;
    ts_wbuf_t           ops[16], first_op;
    ts_ticket_signer_t *s;
    char                ca[PATH_MAX], c1[PATH_MAX], k1[PATH_MAX], err[256];
    uint64_t            seq = 0;
    int                 nops = 0, i;

    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus OUTDIR\n");
        return 2;
    }
    outdir = argv[1];
    fz_quiet();

    gen_frame();
    gen_trackers();

    gstore_open(&ga, "a", 1);
    gstore_open(&gb, "b", 2);
    history(&ga, 1);
    history(&gb, 2);
    ea = calloc(1, sizeof(*ea));
    eb = calloc(1, sizeof(*eb));
    must(ea != NULL && eb != NULL, "calloc");
    must(trk_each_replicated(ga.st, collect, ea) == 0, "traverse a");
    must(trk_each_replicated(gb.st, collect, eb) == 0, "traverse b");
    while (nops < 16 && trk_oplog_next(gb.st, 2, seq, &seq) == 0) {
        ts_wbuf_init(&ops[nops]);
        must(trk_oplog_get(gb.st, 2, seq, &ops[nops]) == 0, "op get");
        nops++;
    }
    must(nops > 0, "ops");
    ts_wbuf_init(&first_op);
    ts_put_raw(&first_op, ops[0].data, ops[0].len);

    gen_trk_ops(eb, &first_op);
    gen_trk_sync(ea, eb, ops, nops);
    gen_records(&ga, ea);

    fz_pki("pki", ca, c1, k1, NULL, NULL);
    s = ts_ticket_signer_new(1, c1, k1, err, sizeof(err));
    must(s != NULL, err);
    gen_ticket(s);
    gen_cli_reply(s);
    gen_peer(s);

    ts_ticket_signer_free(s);
    for (i = 0; i < nops; i++) {
        ts_wbuf_free(&ops[i]);
    }
    for (i = 0; i < ea->n; i++) {
        ts_wbuf_free(&ea->env[i]);
    }
    for (i = 0; i < eb->n; i++) {
        ts_wbuf_free(&eb->env[i]);
    }
    free(ea);
    free(eb);
    ts_wbuf_free(&first_op);
    trk_store_close(ga.st);
    trk_store_close(gb.st);
    printf("gen_corpus: %d files under %s\n", nfiles, outdir);
    return 0;
}
