/*
 * gen_store.c -- seed-corpus generator: the tracker stores
 * the corpora are taken from, two of them (origins 1 and 2) with the
 * same history of accounts, sessions, groups and a file, made with the
 * tracker's own rule functions, and the walk that collects their
 * replicated keys and envelopes.
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
#include "ts_clock.h"
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

/* ---- a tracker store with some history ------------------------------- */

void
gen_store_open(gen_store_t *g, const char *name, int origin)
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
begin(gen_store_t *g, uint64_t reqid)
{
    gen_must(trk_store_begin(g->st) == 0, "begin");
    trk_store_set_reqid(g->st, reqid);
}


static void
commit(gen_store_t *g)
{
    gen_must(trk_store_commit(g->st) == 0, "commit");
}


static void
user(gen_store_t *g, const char *u, uint64_t reqid)
{
    trk_user_t rec;
    char       msg[TRK_MSG_B];

    memset(&rec, 0, sizeof(rec));
    memset(rec.salt, 0x33, sizeof(rec.salt));
    rec.iterations = 1;
    gen_must(ts_pbkdf2_sha1("pw", 2, rec.salt, sizeof(rec.salt), 1,
                            rec.hash, sizeof(rec.hash)) == 0, "pbkdf2");
    rec.created_ms = (uint64_t) ts_wall_ms();
    begin(g, reqid);
    gen_must(trk_do_create_user(g->st, u, &rec, msg, sizeof(msg)) == TS_OK,
             msg);
    commit(g);
}


static void
session(gen_store_t *g, const char *u, const char *addr, uint8_t tag)
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
    gen_must(trk_session_put(g->st, h, &s) == 0
             && trk_files_session_added(g->st, h, u, addr) == 0, "session");
    commit(g);
}


void
gen_history(gen_store_t *g, int origin)
{
    char       msg[TRK_MSG_B];
    trk_fctx_t c;
    uint8_t    sha1[20], hashes[60], bm = 0x05;

    user(g, "alice", 0x10 + origin);
    user(g, "bob", 0x20 + origin);
    session(g, "alice", "127.0.0.1:7001", 0xa1);
    session(g, "bob", "127.0.0.1:7002", 0xa2);
    begin(g, 0x30 + origin);
    gen_must(trk_do_create_group(g->st, "alice", "g1", msg, sizeof(msg))
             == TS_OK
             && trk_do_join_group(g->st, "bob", "g1", msg, sizeof(msg))
                == TS_OK
             && trk_do_accept(g->st, "alice", "g1", "bob", 1, msg,
                              sizeof(msg)) == TS_OK, msg);
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
    gen_must(trk_do_upload(&c, "g1", "f1.bin", 2ull * TS_CHUNK_B + 5, sha1,
                           3, hashes, msg, sizeof(msg)) == TS_OK, msg);
    commit(g);
    c.user = "bob";
    c.node_addr = "127.0.0.1:7002";
    begin(g, 0x50 + origin);
    gen_must(trk_do_have_chunks(&c, "g1", "f1.bin", 0, &bm, 1, msg,
                                sizeof(msg)) == TS_OK, msg);
    commit(g);
    begin(g, 0x60 + origin);
    gen_must(trk_do_create_group(g->st, "bob", "g2", msg, sizeof(msg))
             == TS_OK, msg);
    commit(g);
    begin(g, 0x70 + origin);
    gen_must(trk_do_leave_group(g->st, "bob", "g2", msg, sizeof(msg), msg,
                                sizeof(msg)) == TS_OK, "leave");
    commit(g);
}


/* collects every replicated key and its envelope */
int
gen_collect(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
    void *arg)
{
    gen_envs_t *e = arg;

    if (e->n < 64 && kl < sizeof(e->key[0])) {
        memcpy(e->key[e->n], k, kl);
        e->key[e->n][kl] = '\0';
        ts_wbuf_init(&e->env[e->n]);
        ts_put_raw(&e->env[e->n], v, vl);
        e->n++;
    }
    return 0;
}


void
gen_name_of(char *out, size_t outsz, const char *prefix, const char *key)
{
    size_t i, k = strlen(prefix);

    snprintf(out, outsz, "%s", prefix);
    for (i = 0; key[i] != '\0' && k + 1 < outsz && i < 40; i++, k++) {
        out[k] = (key[i] == '/' || key[i] == ':') ? '_' : key[i];
    }
    out[k] = '\0';
}


