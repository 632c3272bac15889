/*
 * gen_peer.c -- seed-corpus generator: the ticket and peer
 * codec families -- tickets (fuzz_ticket), the client's parse of tracker
 * replies (fuzz_cli_reply) and peer message streams (fuzz_peer), signed
 * by a real ticket signer.
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
    gen_must(ts_ticket_sign(s, &t, out) == 0, "ts_ticket_sign");
}


void
gen_ticket(ts_ticket_signer_t *s)
{
    ts_wbuf_t tk, w;
    uint64_t  now = (uint64_t) ts_wall_ms();

    ts_wbuf_init(&tk);
    ts_wbuf_init(&w);
    ticket(s, "g1", "f1.bin", 0xc3, now, TS_TICKET_TTL_MS, &tk);
    gen_emit_m("ticket", "parse", 0, tk.data, tk.len);
    gen_emit_m("ticket", "verify", 1, tk.data, tk.len);
    ts_put_u8(&w, 0);          /* genuine signer */
    ts_put_u8(&w, 1);          /* issued now */
    ts_put_u16(&w, 100);
    ts_put_u8(&w, 0x01);
    ts_put_raw(&w, tk.data, tk.len);
    gen_emit_m("ticket", "resign", 2, w.data, w.len);
    gen_emit_m("ticket", "resign-cache", 3, w.data, w.len);
    w.data[0] = 2;             /* tracker 1's certificate as issuer 2 */
    gen_emit_m("ticket", "resign-wrong-issuer", 3, w.data, w.len);
    w.data[0] = 3;             /* the rogue CA */
    gen_emit_m("ticket", "resign-rogue", 2, w.data, w.len);
    ticket(s, "a.b_c-9", "name with spaces & \xc3\xa9.txt", 0, 1, 0, &tk);
    gen_emit_m("ticket", "parse-odd-names", 0, tk.data, tk.len);
    ts_wbuf_free(&tk);
    ts_wbuf_free(&w);
}


/* b emptied and started as an OK reply with no message */
static void
ok_reply(ts_wbuf_t *b)
{
    ts_wbuf_reset(b);
    ts_reply_begin(b, TS_OK, NULL);
}


void
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
    gen_emit_m("cli_reply", "file_info", 0, b.data, b.len);
    ok_reply(&b);
    ts_put_u64(&b, 0);
    ts_put_raw(&b, sha1, sizeof(sha1));
    ts_put_u32(&b, 0);
    ts_put_u32(&b, 0);
    ts_put_blob(&b, NULL, 0);
    gen_emit_m("cli_reply", "file_info-empty", 0, b.data, b.len);
    gen_emit_m("cli_reply", "quote", 1, "a \"b\"\\c", 7);

    ok_reply(&b);
    ts_put_raw(&b, hashes, TS_TOKEN_B);
    ts_put_u32(&b, 5000);
    gen_emit_m("cli_reply", "login", 2, b.data, b.len);
    ok_reply(&b);
    ts_put_str(&b, "carol");
    gen_emit_m("cli_reply", "leave", 3, b.data, b.len);
    ok_reply(&b);
    ts_put_u32(&b, 2);
    ts_put_str(&b, "bob");
    ts_put_str(&b, "carol");
    gen_emit_m("cli_reply", "list_requests", 4, b.data, b.len);
    ok_reply(&b);
    ts_put_u32(&b, 1);
    ts_put_str(&b, "g1");
    ts_put_str(&b, "alice");
    ts_put_u32(&b, 2);
    gen_emit_m("cli_reply", "list_groups", 5, b.data, b.len);
    ok_reply(&b);
    ts_put_u32(&b, 1);
    ts_put_str(&b, "f1.bin");
    ts_put_u64(&b, 2ull * TS_CHUNK_B + 5);
    ts_put_u32(&b, 2);
    ts_put_str(&b, "../hidden");        /* dropped by the client */
    ts_put_u64(&b, 1);
    ts_put_u32(&b, 1);
    b.data[2 + 2 + 3] = 2;              /* the row count, now 2 */
    gen_emit_m("cli_reply", "list_files", 6, b.data, b.len);
    ok_reply(&b);
    ts_put_u32(&b, 2);
    ts_put_str(&b, "g1");
    ts_put_str(&b, "f1.bin");
    ts_put_u8(&b, 1);
    ts_put_str(&b, "g2");
    ts_put_str(&b, "part.bin");
    ts_put_u8(&b, 0);
    gen_emit_m("cli_reply", "my_shares", 7, b.data, b.len);
    ok_reply(&b);
    gen_emit_m("cli_reply", "empty", 8, b.data, b.len);
    ok_reply(&b);
    ts_put_str(&b, "-");
    gen_emit_m("cli_reply", "leave-dissolved", 3, b.data, b.len);
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


/* starts a peer stream: the target's two leading bytes */
static void
stream(ts_wbuf_t *all, uint8_t side, uint8_t arg)
{
    ts_wbuf_reset(all);
    ts_put_u8(all, side);
    ts_put_u8(all, arg);
}


/* a PEER_AUTH frame with ticket tk onto all (its payload left in pl) */
static void
auth(ts_wbuf_t *all, ts_wbuf_t *pl, const ts_wbuf_t *tk, uint8_t flags,
     uint64_t reqid)
{
    ts_wbuf_reset(pl);
    peer_msg_auth_encode(pl, tk->data, (uint32_t) tk->len);
    frame(all, TS_MSG_PEER_AUTH, flags, reqid, pl);
}


/* a PEER_MAP or PEER_GET frame for g1/name onto all */
static void
req(ts_wbuf_t *all, ts_wbuf_t *pl, uint8_t type, const char *name,
    uint32_t idx, uint64_t reqid)
{
    ts_wbuf_reset(pl);
    peer_msg_req_encode(pl, type, "g1", name, idx);
    frame(all, type, 0, reqid, pl);
}


void
gen_peer(ts_ticket_signer_t *s)
{
    static const uint32_t have_idx[3] = { 0, 2, 1 };
    ts_wbuf_t all, pl, tk;
    uint8_t   chunk[64], *bits;

    ts_wbuf_init(&all);
    ts_wbuf_init(&pl);
    ts_wbuf_init(&tk);
    ticket(s, "g1", "f1.bin", 0xc3, (uint64_t) ts_wall_ms(),
           TS_TICKET_TTL_MS, &tk);

    /* uploader: AUTH (re-signed for this link), MAP, GET */
    stream(&all, 0, 0);
    auth(&all, &pl, &tk, 0xc0, 1);
    req(&all, &pl, TS_MSG_PEER_MAP, "f1.bin", 0, 2);
    req(&all, &pl, TS_MSG_PEER_GET, "f1.bin", 1, 3);
    req(&all, &pl, TS_MSG_PEER_MAP, "other.bin", 0, 4);
    gen_emit("peer", "up-auth-map-get", all.data, all.len);

    /* uploader: ranged GETs, a valid one and hostile ones */
    stream(&all, 0, 0);
    auth(&all, &pl, &tk, 0xc0, 1);
    ts_wbuf_reset(&pl);
    peer_msg_range_encode(&pl, "g1", "f1.bin", 0, TS_BLOCK_B, TS_BLOCK_B);
    frame(&all, TS_MSG_PEER_GET, 0, 2, &pl);
    ts_wbuf_reset(&pl);
    peer_msg_range_encode(&pl, "g1", "f1.bin", 0, 1, UINT32_MAX);
    frame(&all, TS_MSG_PEER_GET, 0, 3, &pl);
    gen_emit("peer", "up-ranged-get", all.data, all.len);

    /* uploader: no ticket, then one for another identity */
    stream(&all, 0, 0);
    req(&all, &pl, TS_MSG_PEER_MAP, "f1.bin", 0, 1);
    auth(&all, &pl, &tk, 0x80, 2);
    frame(&all, TS_MSG_PEER_AUTH, 0, 3, &pl);
    req(&all, &pl, TS_MSG_PEER_GET, "f1.bin", 0, 4);
    gen_emit("peer", "up-unauth", all.data, all.len);

    /* downloader of a 3-chunk file: MAP reply, PEER_DATA ok and refused */
    stream(&all, 1, 2);
    ts_wbuf_reset(&pl);
    bits = peer_msg_map_encode(&pl, 1, 3, 0);
    gen_must(bits != NULL, "peer_msg_map_encode");
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
    gen_emit("peer", "dl-map-data", all.data, all.len);

    /* downloader: the answers to a PEER_AUTH (accepted, refused), a
     * refused MAP, and a whole seeder's map of 1 + 0x81 chunks */
    stream(&all, 1, 0x81);
    ok_reply(&pl);
    frame(&all, TS_MSG_REPLY, TS_FF_REPLY, 1, &pl);
    ts_wbuf_reset(&pl);
    ts_reply_begin(&pl, TS_ERR_AUTH, "ticket expired");
    frame(&all, TS_MSG_REPLY, TS_FF_REPLY, 2, &pl);
    ts_wbuf_reset(&pl);
    ts_reply_begin(&pl, TS_ERR_NOTFOUND, "unknown file");
    frame(&all, TS_MSG_REPLY, TS_FF_REPLY, 3, &pl);
    ts_wbuf_reset(&pl);
    gen_must(peer_msg_map_encode(&pl, 4, 1 + 0x81, 1) != NULL,
             "peer_msg_map_encode");
    frame(&all, TS_MSG_REPLY, TS_FF_REPLY, 4, &pl);
    gen_emit("peer", "dl-auth-maps", all.data, all.len);

    /* downloader: a MAP reply that promises pushes, then two PEER_HAVEs
     * between the replies */
    stream(&all, 1, 2);
    ts_wbuf_reset(&pl);
    bits = peer_msg_map_encode(&pl, 0, 3, 0);
    gen_must(bits != NULL, "peer_msg_map_encode");
    frame(&all, TS_MSG_REPLY, TS_FF_REPLY | TS_FF_HAVE, 1, &pl);
    ts_wbuf_reset(&pl);
    peer_msg_have_encode(&pl, "g1", "f.bin", have_idx, 2);
    frame(&all, TS_MSG_PEER_HAVE, 0, 0, &pl);
    ts_wbuf_reset(&pl);
    peer_msg_have_encode(&pl, "g1", "f.bin", have_idx + 2, 1);
    frame(&all, TS_MSG_PEER_HAVE, 0, 0, &pl);
    gen_emit("peer", "dl-map-have", all.data, all.len);

    ts_wbuf_free(&all);
    ts_wbuf_free(&pl);
    ts_wbuf_free(&tk);
}


