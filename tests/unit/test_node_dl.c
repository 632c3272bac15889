/*
 * test_node_dl.c -- the downloader workers (workers/dl_worker.c) with real
 * nodes: real supervisors, uploader and downloader processes on
 * 127.0.0.1, real files in a temp directory, real SIGKILLs.
 *
 * Purpose: a leecher node downloads a file from seeder nodes (node_start +
 * node_share_add) and the result is compared byte for byte; the edge
 * sizes, a lying peer (a small server thread in this test answering
 * PEER_GET with wrong bytes), a seeder stopped mid-download, no source at
 * all until a seeder appears, and downloader workers SIGKILLed every
 * 200 ms.  Every node has its own identity (node.crt in its state dir),
 * sources are listed with their fingerprints and every download carries
 * a ticket signed by a test tracker key of a test CA, as the tracker
 * would give them: a source that presents another certificate than the
 * one listed is refused, a ticket the peers refuse stops nothing but
 * that download until a good one comes.
 *
 * Locking: the lying peer runs in threads of the test process that share
 * nothing but an atomic stop flag and a counter.
 *
 * Crash behaviour: every node is stopped by node_stop (its supervisor's
 * pid) in the test's teardown path; every wait is bounded.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>

#include "ts_log.h"
#include "ts_proto.h"

#define NF_MAX_NODES 6
#include "node_fixture.h"

/* who is who, as the tracker would list them: (address, fingerprint) of
 * every node and of the liar, the last one at an address winning */
static struct {
    char     addr[64];
    uint8_t  fp[TS_FP_B];
} t_ids[64];
static int                  t_nids;

static void
t_id_add(const char *addr, const uint8_t fp[TS_FP_B])
{
    assert_true(t_nids < 64);
    snprintf(t_ids[t_nids].addr, sizeof(t_ids[0].addr), "%s", addr);
    memcpy(t_ids[t_nids].fp, fp, TS_FP_B);
    t_nids++;
}

/* the identity last seen at addr */
static void
t_fp_of(const char *addr, uint8_t fp[TS_FP_B])
{
    int i;

    for (i = t_nids - 1; i >= 0; i--) {
        if (strcmp(t_ids[i].addr, addr) == 0) {
            memcpy(fp, t_ids[i].fp, TS_FP_B);
            return;
        }
    }
    fail_msg("no identity known for %s", addr);
}

/* node_dl_set_sources with each address's known identity */
static void
t_set_sources(int li, int idx, const char *const *a, const int *c, int n)
{
    uint8_t  fps[8 * TS_FP_B];
    int      k;

    assert_true(n <= 8);
    for (k = 0; k < n; k++) {
        t_fp_of(a[k], fps + (size_t) k * TS_FP_B);
    }
    node_dl_set_sources(&nf_nodes[li].shm, idx, a, c, fps, n);
}

static uint16_t
t_free_port(void)
{
    struct sockaddr_in sin;
    socklen_t          sl = sizeof(sin);
    int                fd = socket(AF_INET, SOCK_STREAM, 0);
    uint16_t           port;

    assert_true(fd >= 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &sin, &sl), 0);
    port = ntohs(sin.sin_port);
    close(fd);
    return port;
}

/* A pool node (nf_node_in) whose identity is known at its address. */
static int
t_node_in(const char *sdir, uint16_t port, int ups, int downs, char *addr,
          size_t addrsz)
{
    int i = nf_node_in(sdir, port, ups, downs, addr, addrsz);

    t_id_add(nf_addr[i], nf_fp[i]);
    return i;
}

static int
t_node(uint16_t port, int ups, int downs, char *addr, size_t addrsz)
{
    return t_node_in(NULL, port, ups, downs, addr, addrsz);
}

static int
t_seeder_in(const char *sdir, const nf_file_t *f, uint16_t port, char *addr,
            size_t addrsz)
{
    int i = t_node_in(sdir, port, 2, 1, addr, addrsz);

    nf_share(i, f);
    return i;
}

static int
t_seeder(const nf_file_t *f, uint16_t port, char *addr, size_t addrsz)
{
    return t_seeder_in(NULL, f, port, addr, addrsz);
}

static int
t_leech(int li, const nf_file_t *f, char *dest, size_t destsz,
        char addrs[][64], int n)
{
    const char *a[8];
    int         c[8], k, idx;

    idx = nf_dl_add(li, f, dest, destsz);
    for (k = 0; k < n; k++) {
        a[k] = addrs[k];
        c[k] = 1;
    }
    /* as the agent does: the ticket first, then the sources */
    nf_give_ticket(li, idx, NULL, 60000);
    t_set_sources(li, idx, a, c, n);
    return idx;
}

static int
t_src_index(node_dl_sh_t *d, const char *addr)
{
    int s;

    for (s = 0; s < TS_NODE_SOURCES_N; s++) {
        if (atomic_load(&d->src[s].state) != NODE_SRC_FREE
            && strcmp(d->src[s].addr, addr) == 0)
        {
            return s;
        }
    }
    return -1;
}

/* No claims, no in-flight counts left in download idx (bounded wait). */
static void
t_check_clean(int li, int idx, const nf_file_t *f)
{
    const ts_shm_t   *shm = &nf_nodes[li].shm;
    node_dl_sh_t     *d = &node_dls(shm)[idx];
    _Atomic uint64_t *claims = node_dl_claims(shm, idx);
    int64_t           end = ts_now_ms() + 3000;
    uint32_t          c, left;
    int               s, w;

    for ( ;; ) {
        left = 0;
        for (c = 0; c < f->nchunks; c++) {
            left += atomic_load(&claims[c]) != 0;
        }
        for (s = 0; s < TS_NODE_SOURCES_N; s++) {
            left += atomic_load(&d->src[s].inflight);
            left += atomic_load(&d->src[s].map_owner) != 0;
            for (w = 0; w < TS_SUP_WORKERS_MAX_N; w++) {
                left += atomic_load(&node_slot_inflight(shm, w, idx)[s]);
            }
        }
        left += atomic_load(&d->finalize_owner) != 0;
        if (left == 0 || ts_now_ms() > end) {
            break;
        }
        nf_sleep_ms(10);
    }
    assert_int_equal(left, 0);
}

static void
t_expect_done(int li, int idx, const nf_file_t *f, const char *dest, int ms)
{
    node_dl_sh_t *d = &node_dls(&nf_nodes[li].shm)[idx];
    char          part[PATH_MAX + 8];
    uint32_t      st = nf_wait_state(li, idx, NODE_DL_DONE, ms);

    if (st != NODE_DL_DONE) {
        fprintf(stderr, "state %u chunks %u/%u error '%s'\n", st,
                atomic_load(&d->chunks_done), f->nchunks, d->error);
    }
    assert_int_equal(st, NODE_DL_DONE);
    assert_true(nf_same_file(f->path, dest));
    snprintf(part, sizeof(part), "%s.part", dest);
    assert_int_equal(access(part, F_OK), -1);
    assert_int_equal(atomic_load(&d->chunks_done), f->nchunks);
    assert_int_equal(atomic_load(&d->bytes_done), f->size);
}

/* ---- tests ----------------------------------------------------------- */

static void
test_three_seeders(void **state)
{
    nf_file_t f;
    char     addrs[3][64], dest[PATH_MAX];
    int      li, idx, k, s;
    node_dl_sh_t *d;

    nf_make_file(&f, 8ull * 1024 * 1024 + 12345);
    for (k = 0; k < 3; k++) {
        t_seeder(&f, 0, addrs[k], sizeof(addrs[k]));
    }
    li = t_node(0, 1, 4, NULL, 0);
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 3);
    t_expect_done(li, idx, &f, dest, 20000);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    for (k = 0; k < 3; k++) {
        s = t_src_index(d, addrs[k]);
        assert_true(s >= 0);
        fprintf(stderr, "source %s: %llu chunks\n", addrs[k],
                (unsigned long long) atomic_load(&d->src[s].chunks));
        assert_true(atomic_load(&d->src[s].chunks) > 0);
        assert_true(atomic_load(&node_stats(&nf_nodes[k].shm)->chunks_up) > 0);
    }
    t_check_clean(li, idx, &f);
    nf_stop_all();
    free(f.hashes);
}

static void
test_edge_sizes(void **state)
{
    static const uint64_t sizes[] = { 0, TS_CHUNK_B, TS_CHUNK_B + 1, 1 };
    nf_file_t f;
    char     addrs[1][64], dest[PATH_MAX];
    int      li, idx, si;
    size_t   k;

    for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        nf_make_file(&f, sizes[k]);
        si = t_seeder(&f, 0, addrs[0], sizeof(addrs[0]));
        li = t_node(0, 1, 2, NULL, 0);
        idx = t_leech(li, &f, dest, sizeof(dest), addrs, 1);
        t_expect_done(li, idx, &f, dest, 10000);
        t_check_clean(li, idx, &f);
        nf_node_stop(li);
        nf_node_stop(si);
        free(f.hashes);
    }
}

/* An existing destination is never replaced: FAILED, .part kept. */
static void
test_dest_exists(void **state)
{
    nf_file_t f;
    char     addrs[1][64], dest[PATH_MAX], part[PATH_MAX + 8];
    int      li, idx, fd;
    node_dl_sh_t *d;

    nf_make_file(&f, 3ull * TS_CHUNK_B);
    t_seeder(&f, 0, addrs[0], sizeof(addrs[0]));
    li = t_node(0, 1, 2, NULL, 0);
    snprintf(dest, sizeof(dest), "%s/dl%d", nf_dir, nf_seq + 1);
    fd = open(dest, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "keep", 4), 4);
    close(fd);
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 1);
    assert_int_equal(nf_wait_state(li, idx, NODE_DL_FAILED, 10000),
                     NODE_DL_FAILED);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    assert_true(strstr(d->error, "exists") != NULL);
    snprintf(part, sizeof(part), "%s.part", dest);
    assert_true(nf_same_file(f.path, part));
    nf_stop_all();
    free(f.hashes);
}

/* Every chunk recorded done, no .part, and dest already the finished
 * file (a finalizer killed between rename and DONE): DONE, dest kept. */
static void
test_already_renamed(void **state)
{
    nf_file_t  f;
    char      dest[PATH_MAX], part[PATH_MAX + 8], cmd[4 * PATH_MAX + 64];
    uint8_t  *done;
    node_fid_t id;
    int       li, idx;

    nf_make_file(&f, 2ull * TS_CHUNK_B + 99);
    li = t_node(0, 1, 2, NULL, 0);
    snprintf(dest, sizeof(dest), "%s/dl%d", nf_dir, ++nf_seq);
    snprintf(part, sizeof(part), "%s.part", dest);
    /* the .part the CLI made, filled and renamed by a finalizer that was
     * killed before it recorded DONE */
    nf_part_make(part, &id);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && mv '%s' '%s'", f.path, part,
             part, dest);
    assert_int_equal(system(cmd), 0);
    done = calloc((f.nchunks + 7) / 8, 1);
    assert_non_null(done);
    memset(done, 0xff, (f.nchunks + 7) / 8);
    idx = node_dl_add(&nf_nodes[li].shm, "grp", "file", dest, part, &id,
                      f.size, f.nchunks, f.sha1, f.hashes, done, NULL);
    assert_true(idx >= 0);
    t_expect_done(li, idx, &f, dest, 10000);
    t_check_clean(li, idx, &f);
    nf_stop_all();
    free(done);
    free(f.hashes);
}

/* A symlink planted at the .part is never written through: FAILED, and
 * its target keeps its bytes. */
static void
test_part_symlink(void **state)
{
    nf_file_t f;
    char     addrs[1][64], dest[PATH_MAX], part[PATH_MAX + 8];
    char     victim[PATH_MAX], buf[16];
    const char *a[1];
    int      li, idx, fd, c[1] = { 1 }, round;
    node_fid_t id;

    nf_make_file(&f, 2ull * TS_CHUNK_B);
    t_seeder(&f, 0, addrs[0], sizeof(addrs[0]));
    a[0] = addrs[0];
    li = t_node(0, 1, 2, NULL, 0);
    snprintf(victim, sizeof(victim), "%s/victim%d", nf_dir, nf_seq);
    fd = open(victim, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "precious", 8), 8);
    close(fd);
    /* the .part the CLI made is replaced, before any chunk arrives, by a
     * symlink to the victim (round 0) or by another regular file, a hard
     * link of it (round 1): nothing is written through either, and the
     * download fails saying so */
    for (round = 0; round < 2; round++) {
        snprintf(dest, sizeof(dest), "%s/dl%d", nf_dir, ++nf_seq);
        snprintf(part, sizeof(part), "%s.part", dest);
        nf_part_make(part, &id);
        assert_int_equal(unlink(part), 0);
        if (round == 0) {
            assert_int_equal(symlink(victim, part), 0);
        } else {
            assert_int_equal(link(victim, part), 0);
        }
        idx = node_dl_add(&nf_nodes[li].shm, "grp", "file", dest, part, &id,
                          f.size, f.nchunks, f.sha1, f.hashes, NULL, NULL);
        assert_true(idx >= 0);
        nf_give_ticket(li, idx, NULL, 60000);
        t_set_sources(li, idx, a, c, 1);
        assert_int_equal(nf_wait_state(li, idx, NODE_DL_FAILED, 10000),
                         NODE_DL_FAILED);
        assert_non_null(strstr(node_dls(&nf_nodes[li].shm)[idx].error,
                               "another file has taken"));
        assert_int_equal(access(dest, F_OK), -1);
        fd = open(victim, O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(read(fd, buf, sizeof(buf)), 8);
        close(fd);
        assert_memory_equal(buf, "precious", 8);
        node_dl_remove(&nf_nodes[li].shm, idx);
    }
    nf_stop_all();
    free(f.hashes);
}

/* ---- a lying peer ------------------------------------------------------ */

static _Atomic int      t_liar_stop;
static _Atomic uint32_t t_liar_chunks;
static uint32_t         t_liar_nchunks;
static uint64_t         t_liar_size;      /* so the last chunk is short */
static ts_tls_t        *t_liar_tls;       /* the liar is a node too */
static uint8_t          t_liar_fp[TS_FP_B];

/* The liar's identity (made once), known at addr from now on. */
static void
t_liar_identity(const char *addr)
{
    char dir[PATH_MAX];

    if (t_liar_tls == NULL) {
        nf_new_identity(dir, sizeof(dir), t_liar_fp);
        t_liar_tls = nf_tls(TS_TLS_PEER_SERVER, dir);
    }
    t_id_add(addr, t_liar_fp);
}

static void *
t_liar_conn(void *arg)
{
    ts_conn_t     *c = ts_conn_new_tls((int) (intptr_t) arg, t_liar_tls, 0,
                                       NULL);
    ts_frame_hdr_t h;
    uint8_t       *p = NULL, *junk = malloc(TS_CHUNK_B);
    ts_wbuf_t      b;
    ts_rbuf_t      r;
    char           g[80], n[300];
    uint32_t       idx, len;

    ts_wbuf_init(&b);
    if (c != NULL && ts_conn_handshake(c, 2000) != 0) {
        ts_conn_free(c);
        c = NULL;
    }
    while (!atomic_load(&t_liar_stop) && c != NULL && junk != NULL) {
        if (ts_conn_recv_frame(c, &h, &p, 4096, 200) != 0) {
            if (errno == ETIMEDOUT) {
                continue;
            }
            break;
        }
        ts_wbuf_reset(&b);
        if (h.type == TS_MSG_PEER_AUTH) {
            /* any ticket will do for a liar */
            ts_reply_begin(&b, TS_OK, "");
            ts_conn_send_frame(c, TS_MSG_REPLY, TS_FF_REPLY, h.reqid,
                               b.data, (uint32_t) b.len, 2000);
            free(p);
            p = NULL;
            continue;
        }
        ts_rbuf_init(&r, p, h.len);
        ts_get_str(&r, g, sizeof(g));
        ts_get_str(&r, n, sizeof(n));
        if (h.type == TS_MSG_PEER_MAP) {
            uint32_t nb = (t_liar_nchunks + 7) / 8;
            uint8_t  ones[4096];

            memset(ones, 0xff, sizeof(ones));
            ts_reply_begin(&b, TS_OK, "");
            ts_put_u32(&b, 0);
            ts_put_u32(&b, t_liar_nchunks);
            ts_put_blob(&b, ones, nb);
            ts_conn_send_frame(c, TS_MSG_REPLY, TS_FF_REPLY, h.reqid,
                               b.data, (uint32_t) b.len, 2000);
        } else if (h.type == TS_MSG_PEER_GET) {
            idx = ts_get_u32(&r);
            /* wrong bytes, right length: the lie must reach the SHA1
             * check, not fail as a framing error on the short last chunk */
            len = TS_CHUNK_B;
            if ((uint64_t) idx * TS_CHUNK_B < t_liar_size
                && t_liar_size - (uint64_t) idx * TS_CHUNK_B < TS_CHUNK_B)
            {
                len = (uint32_t) (t_liar_size - (uint64_t) idx * TS_CHUNK_B);
            }
            ts_random(junk, len);
            ts_reply_begin(&b, TS_OK, "");
            ts_put_u32(&b, 0);
            ts_put_u32(&b, idx);
            ts_put_u32(&b, len);
            ts_put_raw(&b, junk, len);
            atomic_fetch_add(&t_liar_chunks, 1);
            ts_conn_send_frame(c, TS_MSG_PEER_DATA, TS_FF_REPLY, h.reqid,
                               b.data, (uint32_t) b.len, 2000);
        }
        free(p);
        p = NULL;
    }
    free(p);
    free(junk);
    ts_wbuf_free(&b);
    ts_conn_free(c);
    return NULL;
}

static void *
t_liar_accept(void *arg)
{
    int           lfd = (int) (intptr_t) arg, fd;
    struct pollfd pf = { lfd, POLLIN, 0 };
    pthread_t     th;

    while (!atomic_load(&t_liar_stop)) {
        if (poll(&pf, 1, 100) <= 0) {
            continue;
        }
        fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        ts_net_set_nonblock(fd, 1);
        if (pthread_create(&th, NULL, t_liar_conn, (void *) (intptr_t) fd)
            == 0)
        {
            pthread_detach(th);
        } else {
            close(fd);
        }
    }
    close(lfd);
    return NULL;
}

static void
test_corrupt_peer(void **state)
{
    nf_file_t  f;
    char      addrs[2][64], dest[PATH_MAX];
    int       li, idx, lfd, s;
    uint16_t  port = t_free_port();
    pthread_t th;
    node_dl_sh_t *d;

    nf_make_file(&f, 6ull * TS_CHUNK_B + 777);
    t_liar_nchunks = f.nchunks;
    t_liar_size = 6ull * TS_CHUNK_B + 777;
    t_seeder(&f, 0, addrs[0], sizeof(addrs[0]));
    li = t_node(0, 1, 2, NULL, 0);
    /* the liar's threads start after every fork */
    lfd = ts_net_listen("127.0.0.1", port, 16);
    assert_true(lfd >= 0);
    snprintf(addrs[1], sizeof(addrs[1]), "127.0.0.1:%u", port);
    t_liar_identity(addrs[1]);
    atomic_store(&t_liar_stop, 0);
    assert_int_equal(pthread_create(&th, NULL, t_liar_accept,
                                    (void *) (intptr_t) lfd), 0);
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 2);
    t_expect_done(li, idx, &f, dest, 20000);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    s = t_src_index(d, addrs[1]);
    assert_true(s >= 0);
    fprintf(stderr, "liar sent %u chunks, failures %u, state %u\n",
            atomic_load(&t_liar_chunks), atomic_load(&d->src[s].failures),
            atomic_load(&d->src[s].state));
    assert_true(atomic_load(&t_liar_chunks) > 0);
    assert_int_equal(atomic_load(&d->src[s].chunks), 0);
    /* it was asked for more only if it lied fewer than MAX times */
    if (atomic_load(&d->src[s].failures) >= TS_NODE_SRC_FAILS_MAX_N) {
        assert_int_equal(atomic_load(&d->src[s].state), NODE_SRC_DROPPED);
    }
    assert_true(atomic_load(&node_stats(&nf_nodes[li].shm)->hash_failures)
                > 0);
    t_check_clean(li, idx, &f);
    atomic_store(&t_liar_stop, 1);
    pthread_join(th, NULL);
    nf_stop_all();
    free(f.hashes);
}

/* A liar as the only source at first: it must be DROPPED after
 * TS_NODE_SRC_FAILS_MAX_N bad chunks; then a real seeder finishes. */
static void
test_liar_dropped(void **state)
{
    nf_file_t  f;
    char      addrs[2][64], dest[PATH_MAX];
    const char *a[2];
    int       c[2] = { 1, 1 };
    int       li, idx, lfd, s;
    uint16_t  port = t_free_port();
    pthread_t th;
    node_dl_sh_t *d;
    int64_t   end;

    nf_make_file(&f, 8ull * TS_CHUNK_B);
    t_liar_nchunks = f.nchunks;
    t_liar_size = 8ull * TS_CHUNK_B;
    t_seeder(&f, 0, addrs[1], sizeof(addrs[1]));
    li = t_node(0, 1, 2, NULL, 0);
    lfd = ts_net_listen("127.0.0.1", port, 16);
    assert_true(lfd >= 0);
    snprintf(addrs[0], sizeof(addrs[0]), "127.0.0.1:%u", port);
    t_liar_identity(addrs[0]);
    atomic_store(&t_liar_stop, 0);
    assert_int_equal(pthread_create(&th, NULL, t_liar_accept,
                                    (void *) (intptr_t) lfd), 0);
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 1);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    s = t_src_index(d, addrs[0]);
    assert_true(s >= 0);
    end = ts_now_ms() + 10000;
    while (atomic_load(&d->src[s].state) != NODE_SRC_DROPPED
           && ts_now_ms() < end)
    {
        nf_sleep_ms(5);
    }
    assert_int_equal(atomic_load(&d->src[s].state), NODE_SRC_DROPPED);
    assert_int_equal(atomic_load(&d->chunks_done), 0);
    a[0] = addrs[0];
    a[1] = addrs[1];
    t_set_sources(li, idx, a, c, 2);
    t_expect_done(li, idx, &f, dest, 20000);
    assert_int_equal(atomic_load(&d->src[s].state), NODE_SRC_DROPPED);
    t_check_clean(li, idx, &f);
    atomic_store(&t_liar_stop, 1);
    pthread_join(th, NULL);
    nf_stop_all();
    free(f.hashes);
}

static void
test_seeder_stops(void **state)
{
    nf_file_t f;
    char     addrs[3][64], dest[PATH_MAX];
    int      li, idx, k, seeders[3];
    uint32_t at;
    node_dl_sh_t *d;
    int64_t  end;

    nf_make_file(&f, 48ull * 1024 * 1024);
    /* forked nodes inherit the listening sockets of nodes started before
     * them (a test artefact: one node per CLI in real use), so the seeder
     * we stop is the last one started: nothing keeps its port open */
    li = t_node(0, 1, 4, NULL, 0);
    for (k = 0; k < 3; k++) {
        seeders[k] = t_seeder(&f, 0, addrs[k], sizeof(addrs[k]));
    }
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 3);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    end = ts_now_ms() + 10000;
    while (atomic_load(&d->chunks_done) < 2 && ts_now_ms() < end) {
        nf_sleep_ms(1);
    }
    nf_node_stop(seeders[2]);
    at = atomic_load(&d->chunks_done);
    fprintf(stderr, "seeder stopped at %u/%u chunks\n", at, f.nchunks);
    t_expect_done(li, idx, &f, dest, 20000);
    t_check_clean(li, idx, &f);
    nf_stop_all();
    free(f.hashes);
}

static void
test_no_source_then_seeder(void **state)
{
    nf_file_t f;
    char     addrs[1][64], dest[PATH_MAX], sdir[PATH_MAX];
    uint8_t  fp[TS_FP_B];
    int      li, idx;
    uint16_t port = t_free_port();
    node_dl_sh_t *d;
    int64_t  end;

    nf_make_file(&f, 4ull * TS_CHUNK_B + 3);
    snprintf(addrs[0], sizeof(addrs[0]), "127.0.0.1:%u", port);
    /* the tracker would list the seeder with its identity */
    nf_new_identity(sdir, sizeof(sdir), fp);
    t_id_add(addrs[0], fp);
    li = t_node(0, 1, 2, NULL, 0);
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 1);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    end = ts_now_ms() + 5000;
    while (atomic_load(&d->waiting) != 1 && ts_now_ms() < end) {
        nf_sleep_ms(5);
    }
    assert_int_equal(atomic_load(&d->waiting), 1);
    assert_int_equal(atomic_load(&d->state), NODE_DL_ACTIVE);
    t_seeder_in(sdir, &f, port, NULL, 0);
    t_expect_done(li, idx, &f, dest, 15000);
    assert_int_equal(atomic_load(&d->waiting), 0);
    t_check_clean(li, idx, &f);
    nf_stop_all();
    free(f.hashes);
}

/* Peers come and go: more distinct peer identities over a download's life
 * than a downloader has link slots (DL_CONNS_MAX = 512), none of them
 * reachable.  Closed links are freed, so the real seeder listed last
 * still gets a link and the download completes. */
static void
test_link_table_churn(void **state)
{
    enum { PER_ROUND = TS_NODE_SOURCES_N, ROUNDS = 18 };
    nf_file_t     f;
    char          addrs[1][64], dest[PATH_MAX], dead[64];
    char          names[PER_ROUND][64];
    const char   *a[PER_ROUND];
    int           c[PER_ROUND], li, idx, r, k, tried;
    uint8_t       fps[PER_ROUND * TS_FP_B];
    node_dl_sh_t *d;
    int64_t       end;

    (void) state;
    nf_make_file(&f, 2ull * TS_CHUNK_B + 7);
    t_seeder(&f, 0, addrs[0], sizeof(addrs[0]));
    li = t_node(0, 1, 1, NULL, 0);
    idx = nf_dl_add(li, &f, dest, sizeof(dest));
    nf_give_ticket(li, idx, NULL, 60000);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    snprintf(dead, sizeof(dead), "127.0.0.1:%u", t_free_port());
    for (r = 0; r < ROUNDS; r++) {
        for (k = 0; k < PER_ROUND; k++) {
            /* one closed address, a new identity each time: a new link */
            snprintf(names[k], sizeof(names[k]), "%s", dead);
            a[k] = names[k];
            c[k] = 0;           /* partial: each must be asked for a map */
            memset(fps + (size_t) k * TS_FP_B, 0, TS_FP_B);
            fps[(size_t) k * TS_FP_B] = (uint8_t) r;
            fps[(size_t) k * TS_FP_B + 1] = (uint8_t) k;
            fps[(size_t) k * TS_FP_B + 2] = 0xee;
        }
        node_dl_set_sources(&nf_nodes[li].shm, idx, a, c, fps, PER_ROUND);
        /* every one of them tried and failed before the next round */
        end = ts_now_ms() + 10000;
        do {
            nf_sleep_ms(10);
            tried = 0;
            for (k = 0; k < TS_NODE_SOURCES_N; k++) {
                tried += atomic_load(&d->src[k].state) == NODE_SRC_LIVE
                         && atomic_load(&d->src[k].errors) > 0;
            }
        } while (tried < PER_ROUND && ts_now_ms() < end);
        assert_int_equal(tried, PER_ROUND);
    }
    a[0] = addrs[0];
    c[0] = 1;
    t_set_sources(li, idx, a, c, 1);
    t_expect_done(li, idx, &f, dest, 15000);
    t_check_clean(li, idx, &f);
    nf_stop_all();
    free(f.hashes);
}

/* The tracker lists seeder B's address with seeder A's fingerprint (A is
 * not running there): B presents its own certificate, the handshake
 * fails, B serves nothing and the source counts as failing; then the
 * real A is listed too and the download completes from A alone. */
static void
test_wrong_identity(void **state)
{
    nf_file_t    f;
    char        addrs[2][64], dest[PATH_MAX], sdir[PATH_MAX];
    const char *a[2];
    int         c[2] = { 1, 1 };
    uint8_t     fp_a[TS_FP_B];
    int         li, idx, bi, ai, s;
    node_dl_sh_t *d;
    int64_t     end;

    nf_make_file(&f, 4ull * TS_CHUNK_B + 5);
    bi = t_seeder(&f, 0, addrs[1], sizeof(addrs[1]));
    nf_new_identity(sdir, sizeof(sdir), fp_a);
    t_id_add(addrs[1], fp_a);           /* the lie: B's address, A's id */
    li = t_node(0, 1, 2, NULL, 0);
    idx = t_leech(li, &f, dest, sizeof(dest), &addrs[1], 1);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    s = t_src_index(d, addrs[1]);
    assert_true(s >= 0);
    end = ts_now_ms() + 5000;
    while (atomic_load(&d->src[s].errors) == 0 && ts_now_ms() < end) {
        nf_sleep_ms(5);
    }
    assert_true(atomic_load(&d->src[s].errors) > 0);
    nf_sleep_ms(500);
    assert_int_equal(atomic_load(&d->chunks_done), 0);
    assert_int_equal(atomic_load(&node_stats(&nf_nodes[bi].shm)->chunks_up),
                     0);
    /* the real A appears */
    ai = t_seeder_in(sdir, &f, 0, addrs[0], sizeof(addrs[0]));
    a[0] = addrs[0];
    a[1] = addrs[1];
    t_set_sources(li, idx, a, c, 2);
    t_expect_done(li, idx, &f, dest, 15000);
    assert_int_equal(atomic_load(&d->src[s].chunks), 0);
    assert_int_equal(atomic_load(&node_stats(&nf_nodes[bi].shm)->chunks_up),
                     0);
    assert_true(atomic_load(&node_stats(&nf_nodes[ai].shm)->chunks_up) > 0);
    t_check_clean(li, idx, &f);
    nf_stop_all();
    free(f.hashes);
}

/* A ticket the seeder refuses (another identity's, then an expired one):
 * the download makes no progress and says so (denied), without
 * hammering; a good ticket lets it finish. */
static void
test_ticket_refused(void **state)
{
    nf_file_t  f;
    char      addrs[1][64], dest[PATH_MAX];
    int       li, si, idx;
    uint8_t   other[TS_FP_B];
    node_dl_sh_t *d;
    int64_t   end;
    uint64_t  up;

    nf_make_file(&f, 3ull * TS_CHUNK_B + 1);
    si = t_seeder(&f, 0, addrs[0], sizeof(addrs[0]));
    li = t_node(0, 1, 2, NULL, 0);
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 1);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    /* replaced at once by a ticket for someone else (the race with the
     * first one is harmless: the test only needs the refusal to come) */
    memset(other, 0x33, sizeof(other));
    atomic_store(&d->state, NODE_DL_PAUSED);
    nf_give_ticket(li, idx, other, 60000);
    atomic_store(&d->state, NODE_DL_ACTIVE);
    end = ts_now_ms() + 5000;
    while (!atomic_load(&d->denied) && atomic_load(&d->state)
           == NODE_DL_ACTIVE && ts_now_ms() < end)
    {
        nf_sleep_ms(5);
    }
    if (atomic_load(&d->state) == NODE_DL_DONE) {
        /* the first ticket won the race: nothing to see here */
        fprintf(stderr, "download finished before the bad ticket\n");
        nf_stop_all();
        free(f.hashes);
        return;
    }
    assert_int_equal(atomic_load(&d->denied), 1);
    up = atomic_load(&node_stats(&nf_nodes[si].shm)->chunks_up);
    nf_sleep_ms(700);
    assert_int_equal(atomic_load(&d->state), NODE_DL_ACTIVE);
    assert_int_equal(atomic_load(&node_stats(&nf_nodes[si].shm)->chunks_up),
                     up);
    /* an expired ticket is refused as well */
    nf_give_ticket(li, idx, NULL, -1000);
    assert_int_equal(atomic_load(&d->denied), 0);
    end = ts_now_ms() + 5000;
    while (!atomic_load(&d->denied) && ts_now_ms() < end) {
        nf_sleep_ms(5);
    }
    assert_int_equal(atomic_load(&d->denied), 1);
    assert_int_equal(atomic_load(&node_stats(&nf_nodes[si].shm)->chunks_up),
                     up);
    /* the good one */
    nf_give_ticket(li, idx, NULL, 60000);
    t_expect_done(li, idx, &f, dest, 10000);
    assert_int_equal(atomic_load(&d->denied), 0);
    t_check_clean(li, idx, &f);
    nf_stop_all();
    free(f.hashes);
}

static int
t_downloaders(const ts_shm_t *shm, pid_t *pids, int max)
{
    ts_slot_sh_t *sl = node_slots(shm);
    int           i, n = 0;

    for (i = 0; i < TS_SUP_WORKERS_MAX_N && n < max; i++) {
        if (atomic_load(&sl[i].state) == TS_SLOT_ACTIVE
            && atomic_load(&sl[i].role) == NODE_ROLE_DOWNLOADER
            && atomic_load(&sl[i].owner) != 0)
        {
            pids[n++] = ts_owner_pid(atomic_load(&sl[i].owner));
        }
    }
    return n;
}

static void
test_kill_downloaders(void **state)
{
    nf_file_t f;
    char     addrs[3][64], dest[PATH_MAX];
    int      li, idx, k, n, kills = 0;
    pid_t    pids[16];
    node_dl_sh_t *d;
    int64_t  end, next;

    nf_make_file(&f, 192ull * 1024 * 1024);
    for (k = 0; k < 3; k++) {
        t_seeder(&f, 0, addrs[k], sizeof(addrs[k]));
    }
    li = t_node(0, 1, 4, NULL, 0);
    /* all four downloaders up before the download starts */
    end = ts_now_ms() + 5000;
    while (t_downloaders(&nf_nodes[li].shm, pids, 16) < 4
           && ts_now_ms() < end)
    {
        nf_sleep_ms(5);
    }
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 3);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    end = ts_now_ms() + 40000;
    next = ts_now_ms() + 20;
    while (ts_now_ms() < end) {
        uint32_t st = atomic_load(&d->state);

        if (st == NODE_DL_DONE || st == NODE_DL_FAILED) {
            break;
        }
        if (ts_now_ms() >= next) {
            n = t_downloaders(&nf_nodes[li].shm, pids, 16);
            if (n > 0) {
                kill(pids[(unsigned) rand() % (unsigned) n], SIGKILL);
                kills++;
            }
            next = ts_now_ms() + 200;
        }
        nf_sleep_ms(2);
    }
    fprintf(stderr, "%d downloader kills, %llu claims reclaimed\n", kills,
            (unsigned long long)
            atomic_load(&node_stats(&nf_nodes[li].shm)->reclaimed_claims));
    assert_true(kills > 0);
    t_expect_done(li, idx, &f, dest, 1000);
    t_check_clean(li, idx, &f);
    end = ts_now_ms() + 5000;
    while (t_downloaders(&nf_nodes[li].shm, pids, 16) < 4
           && ts_now_ms() < end)
    {
        nf_sleep_ms(10);
    }
    assert_int_equal(t_downloaders(&nf_nodes[li].shm, pids, 16), 4);
    nf_stop_all();
    free(f.hashes);
}

/* One seeder, one leecher, 256 MiB: correctness, and the rate for the
 * log (the benchmark proper is elsewhere; no threshold here). */
static void
test_speed_one_seeder(void **state)
{
    nf_file_t f;
    char     addrs[1][64], dest[PATH_MAX];
    int      li, idx;
    int64_t  t0, t1;
    node_dl_sh_t *d;

    nf_make_file(&f, 256ull * 1024 * 1024);
    t_seeder(&f, 0, addrs[0], sizeof(addrs[0]));
    li = t_node(0, 1, 4, NULL, 0);
    t0 = ts_now_ms();
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 1);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    while (atomic_load(&d->chunks_done) < f.nchunks
           && atomic_load(&d->state) == NODE_DL_ACTIVE
           && ts_now_ms() - t0 < 30000)
    {
        nf_sleep_ms(1);
    }
    fprintf(stderr, "all chunks verified and written after %lld ms\n",
            (long long) (ts_now_ms() - t0));
    t_expect_done(li, idx, &f, dest, 30000);
    t1 = ts_now_ms();
    fprintf(stderr, "256 MiB in %lld ms (%.0f MiB/s incl. final SHA1+fsync)"
            ", %lld ms until finalizing\n", (long long) (t1 - t0),
            256000.0 / (double) (t1 - t0 > 0 ? t1 - t0 : 1),
            (long long) (atomic_load(&d->finished_ms)
                         - atomic_load(&d->started_ms)));
    t_check_clean(li, idx, &f);
    nf_stop_all();
    free(f.hashes);
}

static int
t_setup(void **state)
{
    return nf_setup("/tmp/ts_node_dl.XXXXXX");
}

static int
t_teardown(void **state)
{
    nf_stop_all();
    if (t_liar_tls != NULL) {
        ts_tls_ctx_free(t_liar_tls);
    }
    return nf_teardown();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_seeders),
        cmocka_unit_test(test_edge_sizes),
        cmocka_unit_test(test_dest_exists),
        cmocka_unit_test(test_already_renamed),
        cmocka_unit_test(test_part_symlink),
        cmocka_unit_test(test_corrupt_peer),
        cmocka_unit_test(test_liar_dropped),
        cmocka_unit_test(test_seeder_stops),
        cmocka_unit_test(test_no_source_then_seeder),
        cmocka_unit_test(test_wrong_identity),
        cmocka_unit_test(test_link_table_churn),
        cmocka_unit_test(test_ticket_refused),
        cmocka_unit_test(test_kill_downloaders),
        cmocka_unit_test(test_speed_one_seeder),
    };

    signal(SIGPIPE, SIG_IGN);
    srand((unsigned) getpid());
    if (getenv("T_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("T_FILTER"));
    }
    return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
