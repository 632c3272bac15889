/*
 * gen_corpus.c -- writes the seed corpora of the fuzz targets
 * (tests/fuzz/corpus/<target>/) with the real encoders: ts_buf fields,
 * ts_frame_build, the tracker's rule functions on real tdb stores (for
 * op records and merge envelopes), the record codecs, the peer message
 * codec (workers/peer_msg.h) and a real ticket signer.
 * `make fuzz-corpus` runs it; only its output is committed.  This file
 * has main, the output and the frame and tracker-list seeds; the other
 * codec families are in gen_store.c, gen_trk.c and gen_peer.c
 * (gen_corpus.h).
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

#include "gen_corpus.h"

static const char *outdir;
static int         nfiles;


void
gen_emit(const char *target, const char *name, const void *p, size_t n)
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
void
gen_emit_m(const char *target, const char *name, uint8_t mode,
    const void *p, size_t n)
{
    ts_wbuf_t b;

    ts_wbuf_init(&b);
    ts_put_u8(&b, mode);
    ts_put_raw(&b, p, n);
    gen_emit(target, name, b.data, b.len);
    ts_wbuf_free(&b);
}


/* a step that must have worked: else the program ends */
void
gen_must(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "gen_corpus: %s failed\n", what);
        exit(1);
    }
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
    gen_emit_m("frame", "stream-requests", 0, all.data, all.len);

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
    gen_emit_m("frame", "stream-replies", 0, all.data, all.len);
    /* the same two as header + reply payload */
    gen_emit_m("frame", "header-reply", 1, fr.data, fr.len);

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
    gen_emit_m("frame", "buf-program", 2, prog.data, prog.len);

    ts_wbuf_free(&pl);
    ts_wbuf_free(&fr);
    ts_wbuf_free(&all);
    ts_wbuf_free(&prog);
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
        gen_emit("trackers", nm, files[i], strlen(files[i]));
    }
}


int
main(int argc, char **argv)
{
    gen_store_t            ga, gb;
    gen_envs_t             *ea, *eb;
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

    gen_store_open(&ga, "a", 1);
    gen_store_open(&gb, "b", 2);
    gen_history(&ga, 1);
    gen_history(&gb, 2);
    ea = calloc(1, sizeof(*ea));
    eb = calloc(1, sizeof(*eb));
    gen_must(ea != NULL && eb != NULL, "calloc");
    gen_must(trk_each_replicated(ga.st, gen_collect, ea) == 0, "traverse a");
    gen_must(trk_each_replicated(gb.st, gen_collect, eb) == 0, "traverse b");
    while (nops < 16 && trk_oplog_next(gb.st, 2, seq, &seq) == 0) {
        ts_wbuf_init(&ops[nops]);
        gen_must(trk_oplog_get(gb.st, 2, seq, &ops[nops]) == 0, "op get");
        nops++;
    }
    gen_must(nops > 0, "ops");
    ts_wbuf_init(&first_op);
    ts_put_raw(&first_op, ops[0].data, ops[0].len);

    gen_trk_ops(eb, &first_op);
    gen_trk_sync(ea, eb, ops, nops);
    gen_records(&ga, ea);

    fz_pki("pki", ca, c1, k1, NULL, NULL);
    s = ts_ticket_signer_new(1, c1, k1, err, sizeof(err));
    gen_must(s != NULL, err);
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
