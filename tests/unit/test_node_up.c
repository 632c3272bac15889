/*
 * test_node_up.c -- a real node (node_start: supervisor + uploaders +
 * downloaders on 127.0.0.1 and a kernel-chosen port) serving a real temp
 * file to a test peer over real sockets: PEER_MAP, pipelined PEER_GETs,
 * errors, STALE detection, pause, garbage frames, a partial download
 * served from its .part and its new chunks pushed (PEER_HAVE) to the
 * link that asked, and SIGKILLed uploaders being replaced.  Every
 * link is TLS with a download ticket (PEER_AUTH) signed by a test
 * tracker key of a test CA (both in a temp dir); test_tickets checks the
 * refusals: no ticket, another identity's, an expired one, another
 * file's, and a peer that is not the node we meant to reach.
 *
 * Locking: none of its own.  Crash behaviour: every wait is bounded; the
 * node is stopped (node_stop: bounded SIGTERM then SIGKILL) in teardown
 * and the temp files are removed.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "ts_buf.h"
#include "ts_claim.h"
#include "ts_crypto.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "ts_ticket.h"
#include "ts_tls.h"
#include "node_shm.h"
#include "node.h"
#include "node_fixture.h"
#include "peer_msg.h"

#define FILE_B   (2u * TS_CHUNK_B + 12345u)
#define NCHUNKS  3
#define TMO      5000

static node_t    nd;
static uint16_t  port;
static char      path[64], part[64];
static uint8_t  *data;
static int       share_idx;

/* the node's identity and the test peer's (the test PKI is the
 * fixture's) */
static ts_tls_t            *t_peer_tls;
static uint8_t              t_node_fp[TS_FP_B], t_peer_fp[TS_FP_B];

static void
t_pki_init(void)
{
    char sdir[PATH_MAX - 64];

    assert_int_equal(nf_setup("/tmp/tsup-pki.XXXXXX"), 0);
    snprintf(sdir, sizeof(sdir), "%s/peer", nf_dir);
    nf_identity(sdir, t_peer_fp);
    t_peer_tls = nf_tls(TS_TLS_PEER_CLIENT, sdir);
}

/* PEER_AUTH with a ticket; returns the reply's status (msg filled) */
static ts_status_t
t_auth(ts_conn_t *c, uint64_t reqid, const char *group, const char *name,
    const uint8_t fp[TS_FP_B], int64_t ttl_ms, char *msg)
{
    ts_wbuf_t       tk, b;
    ts_frame_hdr_t  h;
    uint8_t        *p = NULL;
    ts_rbuf_t       r;
    ts_status_t     st;

    ts_wbuf_init(&tk);
    ts_wbuf_init(&b);
    nf_ticket(&tk, group, name, fp, ttl_ms);
    ts_put_blob(&b, tk.data, (uint32_t) tk.len);
    assert_int_equal(ts_conn_send_frame(c, TS_MSG_PEER_AUTH, 0, reqid,
                                        b.data, (uint32_t) b.len, TMO), 0);
    ts_wbuf_free(&tk);
    ts_wbuf_free(&b);
    assert_int_equal(ts_conn_recv_frame(c, &h, &p, TS_FRAME_MAX_B, TMO), 0);
    assert_int_equal(h.type, TS_MSG_REPLY);
    assert_int_equal(h.reqid, reqid);
    ts_rbuf_init(&r, p, h.len);
    assert_int_equal(ts_reply_parse(&r, &st, msg, 256), 0);
    free(p);
    return st;
}

static void
write_file(const char *p, const uint8_t *buf, size_t n)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, n), (ssize_t) n);
    close(fd);
}

static int
add_share(void)
{
    struct stat sb;

    assert_int_equal(stat(path, &sb), 0);
    return node_share_add(&nd.shm, "grp", "file.bin", path,
                          (uint64_t) sb.st_size,
                          (int64_t) sb.st_mtim.tv_sec * 1000000000LL
                          + sb.st_mtim.tv_nsec, NCHUNKS);
}

static int
setup(void **state)
{
    char sdir[PATH_MAX - 64];

    snprintf(path, sizeof(path), "/tmp/tsup-%d.bin", (int) getpid());
    snprintf(part, sizeof(part), "/tmp/tsup-%d.dl.part", (int) getpid());
    data = malloc(FILE_B);
    assert_non_null(data);
    assert_int_equal(ts_random(data, FILE_B), 0);
    write_file(path, data, FILE_B);

    t_pki_init();
    snprintf(sdir, sizeof(sdir), "%s/node", nf_dir);
    port = nf_node_start(&nd, sdir, t_node_fp, 0, 2, 1);
    share_idx = add_share();
    assert_true(share_idx >= 0);
    return 0;
}

static int
teardown(void **state)
{
    node_stop(&nd);
    unlink(path);
    unlink(part);
    free(data);
    ts_tls_ctx_free(t_peer_tls);
    return nf_teardown();
}

/* A TLS link to the node (which must prove it is the node), no ticket. */
static ts_conn_t *
peer_noauth(void)
{
    int         fd = ts_net_connect("127.0.0.1", port, TMO);
    ts_conn_t  *c;

    assert_true(fd >= 0);
    c = ts_conn_new_tls(fd, t_peer_tls, 0, t_node_fp);
    assert_non_null(c);
    assert_int_equal(ts_conn_handshake(c, TMO), 0);
    return c;
}

/* A TLS link with valid tickets for grp/file.bin and grp/dl.bin. */
static ts_conn_t *
peer(void)
{
    ts_conn_t  *c = peer_noauth();
    char        msg[256];

    assert_int_equal(t_auth(c, 1000001, "grp", "file.bin", t_peer_fp, 60000,
                            msg), TS_OK);
    assert_int_equal(t_auth(c, 1000002, "grp", "dl.bin", t_peer_fp, 60000,
                            msg), TS_OK);
    return c;
}

static void
send_req_fl(ts_conn_t *c, uint8_t type, uint8_t flags, uint64_t reqid,
    const char *group, const char *name, uint32_t index)
{
    ts_wbuf_t b;

    ts_wbuf_init(&b);
    ts_put_str(&b, group);
    ts_put_str(&b, name);
    if (type == TS_MSG_PEER_GET) {
        ts_put_u32(&b, index);
    }
    assert_int_equal(ts_conn_send_frame(c, type, flags, reqid, b.data,
                                        (uint32_t) b.len, TMO), 0);
    ts_wbuf_free(&b);
}

static void
send_req(ts_conn_t *c, uint8_t type, uint64_t reqid, const char *group,
    const char *name, uint32_t index)
{
    send_req_fl(c, type, 0, reqid, group, name, index);
}

/* reads one PEER_DATA; returns status; data copied into out */
static ts_status_t
recv_data(ts_conn_t *c, uint64_t reqid, uint32_t index, uint8_t *out,
    uint32_t *len, char *msg)
{
    ts_frame_hdr_t  h;
    uint8_t        *p = NULL;
    ts_rbuf_t       r;
    ts_status_t     st;
    uint32_t        n;

    assert_int_equal(ts_conn_recv_frame(c, &h, &p, TS_FRAME_MAX_B, TMO), 0);
    assert_int_equal(h.type, TS_MSG_PEER_DATA);
    assert_true(h.flags & TS_FF_REPLY);
    assert_int_equal(h.reqid, reqid);
    ts_rbuf_init(&r, p, h.len);
    assert_int_equal(ts_reply_parse(&r, &st, msg, 256), 0);
    (void) ts_get_u32(&r);                      /* load */
    assert_int_equal(ts_get_u32(&r), index);
    if (st == TS_OK) {
        n = ts_get_u32(&r);
        assert_true(n <= TS_CHUNK_B);
        assert_int_equal(ts_get_raw(&r, out, n), 0);
        *len = n;
    }
    assert_int_equal(ts_rbuf_end(&r), 0);
    free(p);
    return st;
}

/* reads a MAP reply; *flags (if not NULL) gets its header flags */
static ts_status_t
recv_map_fl(ts_conn_t *c, uint64_t reqid, uint32_t *nchunks, uint8_t *bits,
    char *msg, uint8_t *flags)
{
    ts_frame_hdr_t  h;
    uint8_t        *p = NULL;
    const uint8_t  *bm;
    ts_rbuf_t       r;
    ts_status_t     st;
    uint32_t        n;

    assert_int_equal(ts_conn_recv_frame(c, &h, &p, TS_FRAME_MAX_B, TMO), 0);
    assert_int_equal(h.type, TS_MSG_REPLY);
    assert_int_equal(h.reqid, reqid);
    if (flags != NULL) {
        *flags = h.flags;
    }
    ts_rbuf_init(&r, p, h.len);
    assert_int_equal(ts_reply_parse(&r, &st, msg, 256), 0);
    if (st == TS_OK) {
        (void) ts_get_u32(&r);
        *nchunks = ts_get_u32(&r);
        bm = ts_get_blob(&r, &n, 1 << 20);
        assert_non_null(bm);
        assert_int_equal(n, (*nchunks + 7) / 8);
        memcpy(bits, bm, n);
    }
    assert_int_equal(ts_rbuf_end(&r), 0);
    free(p);
    return st;
}

static ts_status_t
recv_map(ts_conn_t *c, uint64_t reqid, uint32_t *nchunks, uint8_t *bits,
    char *msg)
{
    return recv_map_fl(c, reqid, nchunks, bits, msg, NULL);
}

static void
test_map_and_pipelined_gets(void **state)
{
    ts_conn_t  *c = peer();
    uint8_t    *buf = malloc(TS_CHUNK_B), bits[8];
    uint32_t    n, len, i;
    char        msg[256];

    send_req(c, TS_MSG_PEER_MAP, 1, "grp", "file.bin", 0);
    assert_int_equal(recv_map(c, 1, &n, bits, msg), TS_OK);
    assert_int_equal(n, NCHUNKS);
    assert_int_equal(bits[0], 0x07);

    /* all pipelined before any reply is read; answered in order */
    for (i = 0; i < NCHUNKS; i++) {
        send_req(c, TS_MSG_PEER_GET, 10 + i, "grp", "file.bin", 2 - i);
    }
    send_req(c, TS_MSG_PEER_GET, 20, "grp", "file.bin", NCHUNKS);
    send_req(c, TS_MSG_PEER_GET, 21, "grp", "nope.bin", 0);
    for (i = 0; i < NCHUNKS; i++) {
        uint32_t idx = 2 - i;

        assert_int_equal(recv_data(c, 10 + i, idx, buf, &len, msg), TS_OK);
        assert_int_equal(len, idx == 2 ? FILE_B - 2 * TS_CHUNK_B
                                       : TS_CHUNK_B);
        assert_memory_equal(buf, data + (size_t) idx * TS_CHUNK_B, len);
    }
    assert_int_equal(recv_data(c, 20, NCHUNKS, buf, &len, msg),
                     TS_ERR_BADREQ);
    /* no ticket for it: refused before anything is looked up */
    assert_int_equal(recv_data(c, 21, 0, buf, &len, msg), TS_ERR_PERM);
    assert_int_equal(t_auth(c, 23, "grp", "nope.bin", t_peer_fp, 60000,
                            msg), TS_OK);
    send_req(c, TS_MSG_PEER_MAP, 22, "grp", "nope.bin", 0);
    assert_int_equal(recv_map(c, 22, &n, bits, msg), TS_ERR_NOTFOUND);

    assert_true(atomic_load(&node_stats(&nd.shm)->chunks_up) >= NCHUNKS);
    assert_int_equal(atomic_load(&node_stats(&nd.shm)->active_uploads), 0);
    assert_int_equal(atomic_load(&node_stats(&nd.shm)->queued), 0);
    ts_conn_free(c);
    free(buf);
}

static void
test_paused_refused(void **state)
{
    ts_conn_t  *c = peer();
    uint8_t    *buf = malloc(TS_CHUNK_B), bits[8];
    uint32_t    n, len;
    char        msg[256];

    atomic_store(&node_stats(&nd.shm)->paused, 1);
    send_req(c, TS_MSG_PEER_GET, 1, "grp", "file.bin", 0);
    assert_int_equal(recv_data(c, 1, 0, buf, &len, msg), TS_ERR_AUTH);
    assert_string_equal(msg, "peer is not sharing right now");
    send_req(c, TS_MSG_PEER_MAP, 2, "grp", "file.bin", 0);
    assert_int_equal(recv_map(c, 2, &n, bits, msg), TS_ERR_AUTH);
    atomic_store(&node_stats(&nd.shm)->paused, 0);
    send_req(c, TS_MSG_PEER_GET, 3, "grp", "file.bin", 1);
    assert_int_equal(recv_data(c, 3, 1, buf, &len, msg), TS_OK);
    ts_conn_free(c);
    free(buf);
}

static void
test_garbage_closes_only_that_link(void **state)
{
    ts_conn_t      *bad = peer(), *good = peer();
    uint8_t        *buf = malloc(TS_CHUNK_B), junk[64], *p = NULL;
    ts_frame_hdr_t  h;
    uint32_t        len;
    char            msg[256];

    memset(junk, 0x99, sizeof(junk));
    assert_int_equal(ts_conn_write_full(bad, junk, sizeof(junk), TMO), 0);
    assert_int_equal(ts_conn_recv_frame(bad, &h, &p, TS_FRAME_MAX_B, TMO),
                     -1);
    assert_int_not_equal(errno, ETIMEDOUT);
    ts_conn_free(bad);

    /* an oversize header is refused before anything is read for it */
    bad = peer();
    h.type = TS_MSG_PEER_GET;
    h.flags = 0;
    h.len = TS_FRAME_MAX_B;
    h.reqid = 5;
    ts_frame_hdr_encode(junk, &h);
    assert_int_equal(ts_conn_write_full(bad, junk, TS_FRAME_HDR_B, TMO), 0);
    assert_int_equal(ts_conn_recv_frame(bad, &h, &p, TS_FRAME_MAX_B, TMO),
                     -1);
    assert_int_not_equal(errno, ETIMEDOUT);
    ts_conn_free(bad);

    send_req(good, TS_MSG_PEER_GET, 7, "grp", "file.bin", 0);
    assert_int_equal(recv_data(good, 7, 0, buf, &len, msg), TS_OK);
    assert_memory_equal(buf, data, TS_CHUNK_B);
    ts_conn_free(good);
    free(buf);
}

/* grp/dl.bin, a download in progress whose .part holds the chunks of
 * done (a bitmap byte); its index */
static int
add_part_dl(const uint8_t *done)
{
    static const uint8_t sha[20];
    static const uint8_t hashes[NCHUNKS * 20];
    node_fid_t           id;
    int                  i, fd;

    write_file(part, data, FILE_B);
    fd = open(part, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(node_fid_of(fd, &id), 0);
    close(fd);
    i = node_dl_add(&nd.shm, "grp", "dl.bin", "/tmp/never-renamed.bin",
                    part, &id, FILE_B, NCHUNKS, sha, hashes, done, NULL);
    assert_true(i >= 0);
    return i;
}

static void
test_partial_download_served(void **state)
{
    ts_conn_t  *c = peer();
    uint8_t    *buf = malloc(TS_CHUNK_B), bits[8], done[1] = { 0x4 };
    uint32_t    n, len;
    char        msg[256];
    int         i;

    /* a .part holding only chunk 2 (the short last one) */
    i = add_part_dl(done);
    send_req(c, TS_MSG_PEER_MAP, 1, "grp", "dl.bin", 0);
    assert_int_equal(recv_map(c, 1, &n, bits, msg), TS_OK);
    assert_int_equal(n, NCHUNKS);
    assert_int_equal(bits[0] & 0x07, 0x04);
    send_req(c, TS_MSG_PEER_GET, 2, "grp", "dl.bin", 0);
    send_req(c, TS_MSG_PEER_GET, 3, "grp", "dl.bin", 2);
    assert_int_equal(recv_data(c, 2, 0, buf, &len, msg), TS_ERR_NOTFOUND);
    assert_string_equal(msg, "chunk not available");
    assert_int_equal(recv_data(c, 3, 2, buf, &len, msg), TS_OK);
    assert_int_equal(len, FILE_B - 2 * TS_CHUNK_B);
    assert_memory_equal(buf, data + 2 * TS_CHUNK_B, len);
    /* marked done later: served at once */
    node_bit_set(node_dl_done(&nd.shm, i), 0);
    send_req(c, TS_MSG_PEER_GET, 4, "grp", "dl.bin", 0);
    assert_int_equal(recv_data(c, 4, 0, buf, &len, msg), TS_OK);
    assert_memory_equal(buf, data, TS_CHUNK_B);
    node_dl_remove(&nd.shm, i);
    ts_conn_free(c);
    free(buf);
}

/* A MAP with TS_FF_HAVE of a download in progress: the reply echoes the
 * flag and a chunk verified afterwards comes as a PEER_HAVE on that
 * link, before anything else; a link that did not ask gets none. */
static void
test_partial_download_pushes(void **state)
{
    ts_conn_t       *c = peer(), *q = peer();
    uint8_t         *buf = malloc(TS_CHUNK_B), bits[8], fl, *p = NULL;
    uint8_t          done[1] = { 0x1 };
    ts_frame_hdr_t   h;
    peer_msg_have_t  hv;
    uint32_t         n, len;
    char             msg[256];
    int              i = add_part_dl(done);

    send_req_fl(c, TS_MSG_PEER_MAP, TS_FF_HAVE, 1, "grp", "dl.bin", 0);
    assert_int_equal(recv_map_fl(c, 1, &n, bits, msg, &fl), TS_OK);
    assert_true(fl & TS_FF_HAVE);
    assert_int_equal(bits[0] & 0x07, 0x01);
    send_req(q, TS_MSG_PEER_MAP, 1, "grp", "dl.bin", 0);
    assert_int_equal(recv_map_fl(q, 1, &n, bits, msg, &fl), TS_OK);
    assert_false(fl & TS_FF_HAVE);

    /* chunk 1 verified: done bit, then the ring (as dl_recv.c does) */
    node_bit_set(node_dl_done(&nd.shm, i), 1);
    node_dl_have_note(&node_dls(&nd.shm)[i], 1);
    assert_int_equal(ts_conn_recv_frame(c, &h, &p, TS_FRAME_MAX_B, TMO), 0);
    assert_int_equal(peer_msg_have_hdr_check(&h), 0);
    assert_int_equal(peer_msg_have_decode(p, h.len, &hv), 0);
    free(p);
    assert_string_equal(hv.group, "grp");
    assert_string_equal(hv.name, "dl.bin");
    assert_int_equal(hv.n, 1);
    assert_int_equal(hv.idx[0], 1);
    /* nothing more on c, nothing at all on q: the next frames are the
     * answers */
    send_req(c, TS_MSG_PEER_GET, 2, "grp", "dl.bin", 1);
    assert_int_equal(recv_data(c, 2, 1, buf, &len, msg), TS_OK);
    assert_memory_equal(buf, data + TS_CHUNK_B, TS_CHUNK_B);
    send_req(q, TS_MSG_PEER_GET, 2, "grp", "dl.bin", 1);
    assert_int_equal(recv_data(q, 2, 1, buf, &len, msg), TS_OK);
    node_dl_remove(&nd.shm, i);
    ts_conn_free(c);
    ts_conn_free(q);
    free(buf);
}

/* pids of ACTIVE uploader slots */
static int
uploader_pids(pid_t *out, int max)
{
    ts_slot_sh_t  *sl = node_slots(&nd.shm);
    int            i, n = 0;

    for (i = 0; i < TS_SUP_WORKERS_MAX_N && n < max; i++) {
        if (atomic_load(&sl[i].state) == TS_SLOT_ACTIVE
            && atomic_load(&sl[i].role) == NODE_ROLE_UPLOADER)
        {
            out[n++] = ts_owner_pid(atomic_load(&sl[i].owner));
        }
    }
    return n;
}

static void
test_sigkill_uploaders(void **state)
{
    pid_t       old[4], now[4];
    int         n, m, i, j, t, fresh;
    ts_conn_t  *c;
    uint8_t    *buf = malloc(TS_CHUNK_B);
    uint32_t    len;
    char        msg[256];

    for (t = 0; t < 100 && (n = uploader_pids(old, 4)) < 2; t++) {
        usleep(50000);
    }
    assert_int_equal(n, 2);
    for (i = 0; i < n; i++) {
        assert_int_equal(kill(old[i], SIGKILL), 0);
    }
    /* both come back with new pids within 5 s */
    for (t = 0; t < 100; t++) {
        m = uploader_pids(now, 4);
        fresh = 0;
        for (i = 0; i < m; i++) {
            for (j = 0; j < n && now[i] != old[j]; j++) {
            }
            fresh += j == n;
        }
        if (fresh == 2) {
            break;
        }
        usleep(50000);
    }
    assert_int_equal(fresh, 2);
    assert_true(node_alive(&nd));

    for (i = 0; i < 4; i++) {
        c = peer();
        send_req(c, TS_MSG_PEER_GET, 9, "grp", "file.bin", 1);
        assert_int_equal(recv_data(c, 9, 1, buf, &len, msg), TS_OK);
        assert_memory_equal(buf, data + TS_CHUNK_B, TS_CHUNK_B);
        ts_conn_free(c);
    }
    free(buf);
}

/* Tickets: without one MAP/GET get TS_ERR_PERM; another identity's, an
 * expired one and a forged one get TS_ERR_AUTH and the link stays
 * usable; another file's authorizes only that file.  A node that is not
 * the one we meant (another fingerprint) fails the handshake. */
static void
test_tickets(void **state)
{
    ts_conn_t  *c = peer_noauth();
    uint8_t    *buf = malloc(TS_CHUNK_B), bits[8], other[TS_FP_B];
    uint32_t    n, len;
    char        msg[256];
    int         fd;
    ts_wbuf_t   tk, b;
    ts_frame_hdr_t h;
    uint8_t    *p = NULL;
    ts_rbuf_t   r;
    ts_status_t st;

    send_req(c, TS_MSG_PEER_MAP, 1, "grp", "file.bin", 0);
    assert_int_equal(recv_map(c, 1, &n, bits, msg), TS_ERR_PERM);
    send_req(c, TS_MSG_PEER_GET, 2, "grp", "file.bin", 0);
    assert_int_equal(recv_data(c, 2, 0, buf, &len, msg), TS_ERR_PERM);

    memset(other, 0x5a, sizeof(other));
    assert_int_equal(t_auth(c, 3, "grp", "file.bin", other, 60000, msg),
                     TS_ERR_AUTH);
    fprintf(stderr, "other identity: %s\n", msg);
    assert_int_equal(t_auth(c, 4, "grp", "file.bin", t_peer_fp, -1000, msg),
                     TS_ERR_AUTH);
    fprintf(stderr, "expired: %s\n", msg);

    /* a forged one: a valid ticket with one signed byte changed */
    ts_wbuf_init(&tk);
    ts_wbuf_init(&b);
    nf_ticket(&tk, "grp", "file.bin", t_peer_fp, 60000);
    tk.data[10] ^= 1;
    ts_put_blob(&b, tk.data, (uint32_t) tk.len);
    assert_int_equal(ts_conn_send_frame(c, TS_MSG_PEER_AUTH, 0, 5, b.data,
                                        (uint32_t) b.len, TMO), 0);
    assert_int_equal(ts_conn_recv_frame(c, &h, &p, TS_FRAME_MAX_B, TMO), 0);
    ts_rbuf_init(&r, p, h.len);
    assert_int_equal(ts_reply_parse(&r, &st, msg, sizeof(msg)), 0);
    assert_int_equal(st, TS_ERR_AUTH);
    fprintf(stderr, "forged: %s\n", msg);
    free(p);
    ts_wbuf_free(&tk);
    ts_wbuf_free(&b);

    /* still refused, and the link still works */
    send_req(c, TS_MSG_PEER_GET, 6, "grp", "file.bin", 0);
    assert_int_equal(recv_data(c, 6, 0, buf, &len, msg), TS_ERR_PERM);
    assert_string_equal(msg, "no valid ticket");

    /* another file's ticket: that file only */
    assert_int_equal(t_auth(c, 7, "grp", "dl.bin", t_peer_fp, 60000, msg),
                     TS_OK);
    send_req(c, TS_MSG_PEER_GET, 8, "grp", "file.bin", 0);
    assert_int_equal(recv_data(c, 8, 0, buf, &len, msg), TS_ERR_PERM);

    /* the right one */
    assert_int_equal(t_auth(c, 9, "grp", "file.bin", t_peer_fp, 60000, msg),
                     TS_OK);
    send_req(c, TS_MSG_PEER_GET, 10, "grp", "file.bin", 0);
    assert_int_equal(recv_data(c, 10, 0, buf, &len, msg), TS_OK);
    assert_memory_equal(buf, data, TS_CHUNK_B);
    ts_conn_free(c);

    /* we expect another node at this address: the handshake fails */
    fd = ts_net_connect("127.0.0.1", port, TMO);
    assert_true(fd >= 0);
    c = ts_conn_new_tls(fd, t_peer_tls, 0, other);
    assert_non_null(c);
    assert_int_equal(ts_conn_handshake(c, TMO), -1);
    assert_int_equal(errno, EPERM);
    ts_conn_free(c);

    /* a plain (non-TLS) peer gets nothing */
    fd = ts_net_connect("127.0.0.1", port, TMO);
    assert_true(fd >= 0);
    c = ts_conn_new(fd);
    send_req(c, TS_MSG_PEER_GET, 11, "grp", "file.bin", 0);
    assert_int_equal(ts_conn_recv_frame(c, &h, &p, TS_FRAME_MAX_B, TMO), -1);
    ts_conn_free(c);
    free(buf);
}

/* last: the share goes STALE for good */
static void
test_modified_file_stale(void **state)
{
    ts_conn_t  *c = peer();
    uint8_t    *buf = malloc(TS_CHUNK_B), bits[8];
    uint32_t    n, len;
    char        msg[256];
    int         fd;

    send_req(c, TS_MSG_PEER_GET, 1, "grp", "file.bin", 0);
    assert_int_equal(recv_data(c, 1, 0, buf, &len, msg), TS_OK);

    usleep(20000);
    fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);

    send_req(c, TS_MSG_PEER_GET, 2, "grp", "file.bin", 0);
    assert_int_equal(recv_data(c, 2, 0, buf, &len, msg), TS_ERR_STATE);
    assert_string_equal(msg, "file changed on disk");
    assert_int_equal(atomic_load(&node_shares(&nd.shm)[share_idx].state),
                     NODE_SHARE_STALE);
    /* never again, even if the size is restored */
    assert_int_equal(truncate(path, FILE_B), 0);
    send_req(c, TS_MSG_PEER_MAP, 3, "grp", "file.bin", 0);
    assert_int_equal(recv_map(c, 3, &n, bits, msg), TS_ERR_STATE);
    ts_conn_free(c);
    free(buf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_and_pipelined_gets),
        cmocka_unit_test(test_paused_refused),
        cmocka_unit_test(test_garbage_closes_only_that_link),
        cmocka_unit_test(test_partial_download_served),
        cmocka_unit_test(test_partial_download_pushes),
        cmocka_unit_test(test_sigkill_uploaders),
        cmocka_unit_test(test_tickets),
        cmocka_unit_test(test_modified_file_stale),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
