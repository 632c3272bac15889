/*
 * gen_trk.c -- seed-corpus generator: the tracker codec
 * families -- request sequences (fuzz_trk_ops), replication streams
 * and merges (fuzz_trk_sync) and the stored records (fuzz_records).
 *
 * Locking: single-threaded.  Crash behaviour: any failure ends the
 * program (gen_must); the stores live in fz_tmpdir(), removed at exit.
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

#include "gen_corpus.h"

/* the users of fuzz_trk_ops's template (token k = flags bits 0-1) */
enum { ANON = 0, ALICE = 1, BOB = 2, CAROL = 3 };
#define F_NOTOK  0x20           /* no token before the payload */
#define F_TRK2   0x80           /* link proves tracker 2 */
#define F_NOCERT 0x40


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
    gen_emit("trk_ops", name, seq.data, seq.len);
    ts_wbuf_free(&seq);
}


void
gen_trk_ops(const gen_envs_t *e, const ts_wbuf_t *op)
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
    gen_emit("trk_ops", "seq-group-life", seq.data, seq.len);

    ts_wbuf_reset(&seq);
    strs(&pl, "g1", "f1.bin", NULL);
    rec(&seq, TS_MSG_FILE_INFO, BOB, &pl);
    rec(&seq, TS_MSG_LOGOUT, ALICE, NULL);
    rec(&seq, TS_MSG_FILE_INFO, BOB, &pl);
    rec(&seq, 0, 0, NULL);                      /* housekeeping */
    rec(&seq, TS_MSG_HEARTBEAT, BOB, NULL);
    strs(&pl, "alice", "pw", "127.0.0.2:7001");
    rec(&seq, TS_MSG_LOGIN, ALICE | F_NOTOK, &pl);
    gen_emit("trk_ops", "seq-logout-expire", seq.data, seq.len);

    ts_wbuf_reset(&seq);
    strs(&pl, "g1", "f1.bin", NULL);
    rec(&seq, TS_MSG_STOP_SHARE, ALICE | (4 << 2), &pl);
    rec(&seq, TS_MSG_STOP_SHARE, ALICE | (4 << 2), &pl);   /* cached */
    rec(&seq, TS_MSG_STOP_SHARE, BOB, &pl);
    strs(&pl, "g1", NULL, NULL);
    rec(&seq, TS_MSG_LIST_FILES, ALICE, &pl);
    gen_emit("trk_ops", "seq-stop-share", seq.data, seq.len);

    ts_wbuf_free(&pl);
    ts_wbuf_free(&seq);
}


/* ---- replication (fuzz_trk_sync) ------------------------------------- */

void
gen_trk_sync(const gen_envs_t *a, const gen_envs_t *b, const ts_wbuf_t *ops,
             int nops)
{
    ts_wbuf_t w;
    trk_vv_t  vv;
    char      nm[96];
    int       i, j;

    ts_wbuf_init(&w);
    for (i = 0; i < a->n; i++) {
        gen_name_of(nm, sizeof(nm), "env-", a->key[i]);
        gen_emit_m("trk_sync", nm, 0, a->env[i].data, a->env[i].len);
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
            gen_name_of(nm, sizeof(nm), "pair-", a->key[i]);
            gen_emit_m("trk_sync", nm, 1, w.data, w.len);
        }
    }
    for (i = 0; i < nops; i++) {
        snprintf(nm, sizeof(nm), "op-%02d", i);
        gen_emit_m("trk_sync", nm, 2, ops[i].data, ops[i].len);
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
    gen_emit_m("trk_sync", "snapshot", 3, w.data, w.len);
    ts_wbuf_free(&w);
}


/* ---- records (fuzz_records) ------------------------------------------ */

void
gen_records(gen_store_t *g, const gen_envs_t *e)
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
        gen_name_of(nm, sizeof(nm), "val-", e->key[i]);
        gen_emit_m("records", nm, (uint8_t) mode, v.data, v.len);
        if (mode == 2 && v.len > TS_FP_B) {
            /* a session written before sessions kept the node's
             * fingerprint: none at the end */
            gen_emit_m("records", "val-session-old", 2, v.data,
                       v.len - TS_FP_B);
        }
    }
    memset(h, 0xa1, sizeof(h));
    if (trk_session_get(g->st, h, &s) == 0) {
        ts_wbuf_reset(&v);
        trk_session_encode(&v, &s);
        gen_emit_m("records", "session", 2, v.data, v.len);
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
    gen_emit_m("records", "cli-share", 5, v.data, v.len);
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
    gen_must(cli_dl_alloc(&dl) == 0, "cli_dl_alloc");
    memset(dl.hashes, 0x22, 20ull * dl.nchunks);
    dl.done[0] = 0x05;
    dl.state = CLI_DL_ACTIVE;
    ts_wbuf_reset(&v);
    cli_dl_encode(&dl, &v);
    gen_emit_m("records", "cli-dl", 6, v.data, v.len);
    ts_put_str(&w, "d/alice/g1/f1.bin");
    ts_put_blob(&w, v.data, (uint32_t) v.len);
    gen_emit_m("records", "node-tdb", 7, w.data, w.len);
    dl.state = CLI_DL_FAILED;
    snprintf(dl.error, sizeof(dl.error), "not permitted: no ticket");
    ts_wbuf_reset(&v);
    cli_dl_encode(&dl, &v);
    gen_emit_m("records", "cli-dl-failed", 6, v.data, v.len);
    cli_dl_free(&dl);

    /* a tracker tdb with the envelopes of the history */
    ts_wbuf_reset(&w);
    ts_put_u8(&w, (uint8_t) e->n);
    for (i = 0; i < e->n; i++) {
        ts_put_str(&w, e->key[i]);
        ts_put_blob(&w, e->env[i].data, (uint32_t) e->env[i].len);
    }
    gen_emit_m("records", "tracker-tdb", 8, w.data, w.len);
    ts_wbuf_free(&w);
    ts_wbuf_free(&v);
}


