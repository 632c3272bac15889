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

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "ts_crypto.h"
#include "ts_log.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "ts_ticket.h"
#include "ts_tls.h"
#include "node.h"
#include "node_shm.h"

#define T_MAX_NODES 6

typedef struct {
    char      path[PATH_MAX];
    uint64_t  size;
    uint32_t  nchunks;
    uint8_t  *hashes;
    uint8_t   sha1[20];
    int64_t   mtime_ns;
} t_file_t;

static char     t_dir[256];
static node_t   t_nodes[T_MAX_NODES];
static int      t_used[T_MAX_NODES];
static int      t_seq;

/* identities: the test CA, its tracker 1 (signs tickets), and who is
 * who: (address, fingerprint) of every node and of the liar */
static char                 t_ca[PATH_MAX];
static ts_ticket_signer_t  *t_signer;
static uint8_t              t_fp[T_MAX_NODES][TS_FP_B];
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

static void
t_pki_init(void)
{
    char  pki[PATH_MAX - 64], crt[PATH_MAX + 32], key[PATH_MAX + 32];
    char  err[256];

    snprintf(pki, sizeof(pki), "%s/pki", t_dir);
    assert_int_equal(ts_pki_ensure_ca(pki, err, sizeof(err)), 0);
    assert_int_equal(ts_pki_ensure_tracker(pki, 1, "127.0.0.1", err,
                                           sizeof(err)), 0);
    snprintf(t_ca, sizeof(t_ca), "%s/ca.crt", pki);
    snprintf(crt, sizeof(crt), "%s/tracker-1.crt", pki);
    snprintf(key, sizeof(key), "%s/tracker-1.key", pki);
    t_signer = ts_ticket_signer_new(1, crt, key, err, sizeof(err));
    if (t_signer == NULL) {
        fail_msg("ticket signer: %s", err);
    }
}

/* A fresh node identity in a new state dir: dir and fp filled. */
static void
t_identity(char *dir, size_t dirsz, uint8_t fp[TS_FP_B])
{
    char err[256];

    snprintf(dir, dirsz, "%s/state%d", t_dir, ++t_seq);
    if (ts_pki_ensure_node(dir, fp, err, sizeof(err)) != 0) {
        fail_msg("node identity: %s", err);
    }
}

/* Gives download idx of node li a ticket for grp/file naming fp (NULL:
 * the node's own identity), valid for ttl_ms (< 0: already expired). */
static void
t_ticket(int li, int idx, const uint8_t *fp, int64_t ttl_ms)
{
    ts_ticket_t  t;
    ts_wbuf_t    b;
    int64_t      now = ts_wall_ms();

    memset(&t, 0, sizeof(t));
    snprintf(t.group, sizeof(t.group), "grp");
    snprintf(t.name, sizeof(t.name), "file");
    memcpy(t.fp, fp != NULL ? fp : t_fp[li], TS_FP_B);
    t.issued_ms = (uint64_t) (ttl_ms < 0 ? now + 2 * ttl_ms : now);
    t.expires_ms = (uint64_t) (now + ttl_ms);
    ts_wbuf_init(&b);
    assert_int_equal(ts_ticket_sign(t_signer, &t, &b), 0);
    assert_int_equal(node_dl_set_ticket(&t_nodes[li].shm, idx, b.data,
                                        b.len, (int64_t) t.expires_ms), 0);
    ts_wbuf_free(&b);
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
    node_dl_set_sources(&t_nodes[li].shm, idx, a, c, fps, n);
}

static void
t_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
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

static void
t_make_file(t_file_t *f, uint64_t size)
{
    uint8_t   *buf = malloc(TS_CHUNK_B);
    ts_sha1_t *h = ts_sha1_new();
    uint64_t   off;
    uint32_t   i = 0;
    struct stat st;
    int        fd;

    assert_non_null(buf);
    snprintf(f->path, sizeof(f->path), "%s/src%d", t_dir, ++t_seq);
    f->size = size;
    f->nchunks = (uint32_t) ((size + TS_CHUNK_B - 1) / TS_CHUNK_B);
    f->hashes = malloc(f->nchunks ? 20ull * f->nchunks : 1);
    assert_non_null(f->hashes);
    fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    for (off = 0; off < size; off += TS_CHUNK_B, i++) {
        size_t n = size - off < TS_CHUNK_B ? size - off : TS_CHUNK_B;

        assert_int_equal(ts_random(buf, n), 0);
        assert_int_equal(write(fd, buf, n), (ssize_t) n);
        ts_sha1(buf, n, f->hashes + 20ull * i);
        ts_sha1_update(h, buf, n);
    }
    ts_sha1_final(h, f->sha1);
    ts_sha1_free(h);
    assert_int_equal(fstat(fd, &st), 0);
    f->mtime_ns = (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    close(fd);
    free(buf);
}

static int
t_same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int   ca, cb, same = 1;
    static char ba[1 << 16], bb[1 << 16];
    size_t na, nb;

    if (fa == NULL || fb == NULL) {
        same = 0;
        goto out;
    }
    do {
        na = fread(ba, 1, sizeof(ba), fa);
        nb = fread(bb, 1, sizeof(bb), fb);
        if (na != nb || memcmp(ba, bb, na) != 0) {
            same = 0;
            break;
        }
    } while (na > 0);
    (void) ca;
    (void) cb;
out:
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

/* Starts a node; port 0 = any; sdir NULL = a new identity.  Returns its
 * index in t_nodes. */
static int
t_node_in(const char *sdir, uint16_t port, int ups, int downs, char *addr,
          size_t addrsz)
{
    node_opts_t        o;
    struct sockaddr_in sin;
    socklen_t          sl = sizeof(sin);
    char               dir[PATH_MAX - 64], a[64], err[256];
    int                i;

    for (i = 0; i < T_MAX_NODES && t_used[i]; i++) {
    }
    assert_true(i < T_MAX_NODES);
    if (sdir == NULL) {
        t_identity(dir, sizeof(dir), t_fp[i]);
    } else {
        snprintf(dir, sizeof(dir), "%s", sdir);
        assert_int_equal(ts_pki_ensure_node(dir, t_fp[i], err, sizeof(err)),
                         0);
    }
    memset(&o, 0, sizeof(o));
    snprintf(o.ip, sizeof(o.ip), "127.0.0.1");
    o.port = port;
    o.uploaders = ups;
    o.downloaders = downs;
    snprintf(o.crt_path, sizeof(o.crt_path), "%s/node.crt", dir);
    snprintf(o.key_path, sizeof(o.key_path), "%s/node.key", dir);
    snprintf(o.ca_path, sizeof(o.ca_path), "%s", t_ca);
    assert_int_equal(node_start(&t_nodes[i], &o), 0);
    t_used[i] = 1;
    assert_int_equal(getsockname(t_nodes[i].listen_fd,
                                 (struct sockaddr *) &sin, &sl), 0);
    snprintf(a, sizeof(a), "127.0.0.1:%u", ntohs(sin.sin_port));
    t_id_add(a, t_fp[i]);
    if (addr != NULL) {
        snprintf(addr, addrsz, "%s", a);
    }
    return i;
}

static int
t_node(uint16_t port, int ups, int downs, char *addr, size_t addrsz)
{
    return t_node_in(NULL, port, ups, downs, addr, addrsz);
}

static void
t_node_stop(int i)
{
    if (t_used[i]) {
        node_stop(&t_nodes[i]);
        t_used[i] = 0;
    }
}

static void
t_stop_all(void)
{
    int i;

    for (i = 0; i < T_MAX_NODES; i++) {
        t_node_stop(i);
    }
}

static int
t_seeder_in(const char *sdir, const t_file_t *f, uint16_t port, char *addr,
            size_t addrsz)
{
    int i = t_node_in(sdir, port, 2, 1, addr, addrsz);

    assert_true(node_share_add(&t_nodes[i].shm, "grp", "file", f->path,
                               f->size, f->mtime_ns, f->nchunks) >= 0);
    return i;
}

static int
t_seeder(const t_file_t *f, uint16_t port, char *addr, size_t addrsz)
{
    int i = t_node(port, 2, 1, addr, addrsz);

    assert_true(node_share_add(&t_nodes[i].shm, "grp", "file", f->path,
                               f->size, f->mtime_ns, f->nchunks) >= 0);
    return i;
}

static int
t_leech(int li, const t_file_t *f, char *dest, size_t destsz,
        char addrs[][64], int n)
{
    char        part[PATH_MAX + 8];
    const char *a[8];
    int         c[8], k, idx;

    snprintf(dest, destsz, "%s/dl%d", t_dir, ++t_seq);
    snprintf(part, sizeof(part), "%s.part", dest);
    idx = node_dl_add(&t_nodes[li].shm, "grp", "file", dest, part, f->size,
                      f->nchunks, f->sha1, f->hashes, NULL, NULL);
    assert_true(idx >= 0);
    for (k = 0; k < n; k++) {
        a[k] = addrs[k];
        c[k] = 1;
    }
    /* as the agent does: the ticket first, then the sources */
    t_ticket(li, idx, NULL, 60000);
    t_set_sources(li, idx, a, c, n);
    return idx;
}

static uint32_t
t_wait_state(int li, int idx, uint32_t want, int ms)
{
    node_dl_sh_t *d = &node_dls(&t_nodes[li].shm)[idx];
    int64_t       end = ts_now_ms() + ms;
    uint32_t      st;

    for ( ;; ) {
        st = atomic_load(&d->state);
        if (st == want || st == NODE_DL_FAILED || ts_now_ms() > end) {
            return st;
        }
        t_sleep_ms(5);
    }
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
t_check_clean(int li, int idx, const t_file_t *f)
{
    const ts_shm_t   *shm = &t_nodes[li].shm;
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
        t_sleep_ms(10);
    }
    assert_int_equal(left, 0);
}

static void
t_expect_done(int li, int idx, const t_file_t *f, const char *dest, int ms)
{
    node_dl_sh_t *d = &node_dls(&t_nodes[li].shm)[idx];
    char          part[PATH_MAX + 8];
    uint32_t      st = t_wait_state(li, idx, NODE_DL_DONE, ms);

    if (st != NODE_DL_DONE) {
        fprintf(stderr, "state %u chunks %u/%u error '%s'\n", st,
                atomic_load(&d->chunks_done), f->nchunks, d->error);
    }
    assert_int_equal(st, NODE_DL_DONE);
    assert_true(t_same_file(f->path, dest));
    snprintf(part, sizeof(part), "%s.part", dest);
    assert_int_equal(access(part, F_OK), -1);
    assert_int_equal(atomic_load(&d->chunks_done), f->nchunks);
    assert_int_equal(atomic_load(&d->bytes_done), f->size);
}

/* ---- tests ----------------------------------------------------------- */

static void
test_three_seeders(void **state)
{
    t_file_t f;
    char     addrs[3][64], dest[PATH_MAX];
    int      li, idx, k, s;
    node_dl_sh_t *d;

    t_make_file(&f, 8ull * 1024 * 1024 + 12345);
    for (k = 0; k < 3; k++) {
        t_seeder(&f, 0, addrs[k], sizeof(addrs[k]));
    }
    li = t_node(0, 1, 4, NULL, 0);
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 3);
    t_expect_done(li, idx, &f, dest, 20000);
    d = &node_dls(&t_nodes[li].shm)[idx];
    for (k = 0; k < 3; k++) {
        s = t_src_index(d, addrs[k]);
        assert_true(s >= 0);
        fprintf(stderr, "source %s: %llu chunks\n", addrs[k],
                (unsigned long long) atomic_load(&d->src[s].chunks));
        assert_true(atomic_load(&d->src[s].chunks) > 0);
        assert_true(atomic_load(&node_stats(&t_nodes[k].shm)->chunks_up) > 0);
    }
    t_check_clean(li, idx, &f);
    t_stop_all();
    free(f.hashes);
}

static void
test_edge_sizes(void **state)
{
    static const uint64_t sizes[] = { 0, TS_CHUNK_B, TS_CHUNK_B + 1, 1 };
    t_file_t f;
    char     addrs[1][64], dest[PATH_MAX];
    int      li, idx, si;
    size_t   k;

    for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        t_make_file(&f, sizes[k]);
        si = t_seeder(&f, 0, addrs[0], sizeof(addrs[0]));
        li = t_node(0, 1, 2, NULL, 0);
        idx = t_leech(li, &f, dest, sizeof(dest), addrs, 1);
        t_expect_done(li, idx, &f, dest, 10000);
        t_check_clean(li, idx, &f);
        t_node_stop(li);
        t_node_stop(si);
        free(f.hashes);
    }
}

/* An existing destination is never replaced: FAILED, .part kept. */
static void
test_dest_exists(void **state)
{
    t_file_t f;
    char     addrs[1][64], dest[PATH_MAX], part[PATH_MAX + 8];
    int      li, idx, fd;
    node_dl_sh_t *d;

    t_make_file(&f, 3ull * TS_CHUNK_B);
    t_seeder(&f, 0, addrs[0], sizeof(addrs[0]));
    li = t_node(0, 1, 2, NULL, 0);
    snprintf(dest, sizeof(dest), "%s/dl%d", t_dir, t_seq + 1);
    fd = open(dest, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "keep", 4), 4);
    close(fd);
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 1);
    assert_int_equal(t_wait_state(li, idx, NODE_DL_FAILED, 10000),
                     NODE_DL_FAILED);
    d = &node_dls(&t_nodes[li].shm)[idx];
    assert_true(strstr(d->error, "exists") != NULL);
    snprintf(part, sizeof(part), "%s.part", dest);
    assert_true(t_same_file(f.path, part));
    t_stop_all();
    free(f.hashes);
}

/* Every chunk recorded done, no .part, and dest already the finished
 * file (a finalizer killed between rename and DONE): DONE, dest kept. */
static void
test_already_renamed(void **state)
{
    t_file_t  f;
    char      dest[PATH_MAX], part[PATH_MAX + 8], cmd[2 * PATH_MAX + 16];
    uint8_t  *done;
    int       li, idx;

    t_make_file(&f, 2ull * TS_CHUNK_B + 99);
    li = t_node(0, 1, 2, NULL, 0);
    snprintf(dest, sizeof(dest), "%s/dl%d", t_dir, ++t_seq);
    snprintf(part, sizeof(part), "%s.part", dest);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", f.path, dest);
    assert_int_equal(system(cmd), 0);
    done = calloc((f.nchunks + 7) / 8, 1);
    assert_non_null(done);
    memset(done, 0xff, (f.nchunks + 7) / 8);
    idx = node_dl_add(&t_nodes[li].shm, "grp", "file", dest, part, f.size,
                      f.nchunks, f.sha1, f.hashes, done, NULL);
    assert_true(idx >= 0);
    t_expect_done(li, idx, &f, dest, 10000);
    t_check_clean(li, idx, &f);
    t_stop_all();
    free(done);
    free(f.hashes);
}

/* A symlink planted at the .part is never written through: FAILED, and
 * its target keeps its bytes. */
static void
test_part_symlink(void **state)
{
    t_file_t f;
    char     addrs[1][64], dest[PATH_MAX], part[PATH_MAX + 8];
    char     victim[PATH_MAX], buf[16];
    int      li, idx, fd;

    t_make_file(&f, 2ull * TS_CHUNK_B);
    t_seeder(&f, 0, addrs[0], sizeof(addrs[0]));
    li = t_node(0, 1, 2, NULL, 0);
    snprintf(victim, sizeof(victim), "%s/victim%d", t_dir, t_seq);
    fd = open(victim, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "precious", 8), 8);
    close(fd);
    snprintf(dest, sizeof(dest), "%s/dl%d", t_dir, t_seq + 1);
    snprintf(part, sizeof(part), "%s.part", dest);
    assert_int_equal(symlink(victim, part), 0);
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 1);
    assert_int_equal(t_wait_state(li, idx, NODE_DL_FAILED, 10000),
                     NODE_DL_FAILED);
    assert_int_equal(access(dest, F_OK), -1);
    fd = open(victim, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof(buf)), 8);
    close(fd);
    assert_memory_equal(buf, "precious", 8);
    t_stop_all();
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
    char     dir[PATH_MAX], crt[PATH_MAX + 16], key[PATH_MAX + 16];
    char     err[256];

    if (t_liar_tls == NULL) {
        t_identity(dir, sizeof(dir), t_liar_fp);
        snprintf(crt, sizeof(crt), "%s/node.crt", dir);
        snprintf(key, sizeof(key), "%s/node.key", dir);
        t_liar_tls = ts_tls_ctx_new(TS_TLS_PEER_SERVER, crt, key, NULL, err,
                                    sizeof(err));
        if (t_liar_tls == NULL) {
            fail_msg("liar TLS: %s", err);
        }
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
    t_file_t  f;
    char      addrs[2][64], dest[PATH_MAX];
    int       li, idx, lfd, s;
    uint16_t  port = t_free_port();
    pthread_t th;
    node_dl_sh_t *d;

    t_make_file(&f, 6ull * TS_CHUNK_B + 777);
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
    d = &node_dls(&t_nodes[li].shm)[idx];
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
    assert_true(atomic_load(&node_stats(&t_nodes[li].shm)->hash_failures)
                > 0);
    t_check_clean(li, idx, &f);
    atomic_store(&t_liar_stop, 1);
    pthread_join(th, NULL);
    t_stop_all();
    free(f.hashes);
}

/* A liar as the only source at first: it must be DROPPED after
 * TS_NODE_SRC_FAILS_MAX_N bad chunks; then a real seeder finishes. */
static void
test_liar_dropped(void **state)
{
    t_file_t  f;
    char      addrs[2][64], dest[PATH_MAX];
    const char *a[2];
    int       c[2] = { 1, 1 };
    int       li, idx, lfd, s;
    uint16_t  port = t_free_port();
    pthread_t th;
    node_dl_sh_t *d;
    int64_t   end;

    t_make_file(&f, 8ull * TS_CHUNK_B);
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
    d = &node_dls(&t_nodes[li].shm)[idx];
    s = t_src_index(d, addrs[0]);
    assert_true(s >= 0);
    end = ts_now_ms() + 10000;
    while (atomic_load(&d->src[s].state) != NODE_SRC_DROPPED
           && ts_now_ms() < end)
    {
        t_sleep_ms(5);
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
    t_stop_all();
    free(f.hashes);
}

static void
test_seeder_stops(void **state)
{
    t_file_t f;
    char     addrs[3][64], dest[PATH_MAX];
    int      li, idx, k, seeders[3];
    uint32_t at;
    node_dl_sh_t *d;
    int64_t  end;

    t_make_file(&f, 48ull * 1024 * 1024);
    /* forked nodes inherit the listening sockets of nodes started before
     * them (a test artefact: one node per CLI in real use), so the seeder
     * we stop is the last one started: nothing keeps its port open */
    li = t_node(0, 1, 4, NULL, 0);
    for (k = 0; k < 3; k++) {
        seeders[k] = t_seeder(&f, 0, addrs[k], sizeof(addrs[k]));
    }
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 3);
    d = &node_dls(&t_nodes[li].shm)[idx];
    end = ts_now_ms() + 10000;
    while (atomic_load(&d->chunks_done) < 2 && ts_now_ms() < end) {
        t_sleep_ms(1);
    }
    t_node_stop(seeders[2]);
    at = atomic_load(&d->chunks_done);
    fprintf(stderr, "seeder stopped at %u/%u chunks\n", at, f.nchunks);
    t_expect_done(li, idx, &f, dest, 20000);
    t_check_clean(li, idx, &f);
    t_stop_all();
    free(f.hashes);
}

static void
test_no_source_then_seeder(void **state)
{
    t_file_t f;
    char     addrs[1][64], dest[PATH_MAX], sdir[PATH_MAX];
    uint8_t  fp[TS_FP_B];
    int      li, idx;
    uint16_t port = t_free_port();
    node_dl_sh_t *d;
    int64_t  end;

    t_make_file(&f, 4ull * TS_CHUNK_B + 3);
    snprintf(addrs[0], sizeof(addrs[0]), "127.0.0.1:%u", port);
    /* the tracker would list the seeder with its identity */
    t_identity(sdir, sizeof(sdir), fp);
    t_id_add(addrs[0], fp);
    li = t_node(0, 1, 2, NULL, 0);
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 1);
    d = &node_dls(&t_nodes[li].shm)[idx];
    end = ts_now_ms() + 5000;
    while (atomic_load(&d->waiting) != 1 && ts_now_ms() < end) {
        t_sleep_ms(5);
    }
    assert_int_equal(atomic_load(&d->waiting), 1);
    assert_int_equal(atomic_load(&d->state), NODE_DL_ACTIVE);
    t_seeder_in(sdir, &f, port, NULL, 0);
    t_expect_done(li, idx, &f, dest, 15000);
    assert_int_equal(atomic_load(&d->waiting), 0);
    t_check_clean(li, idx, &f);
    t_stop_all();
    free(f.hashes);
}

/* The tracker lists seeder B's address with seeder A's fingerprint (A is
 * not running there): B presents its own certificate, the handshake
 * fails, B serves nothing and the source counts as failing; then the
 * real A is listed too and the download completes from A alone. */
static void
test_wrong_identity(void **state)
{
    t_file_t    f;
    char        addrs[2][64], dest[PATH_MAX], sdir[PATH_MAX];
    const char *a[2];
    int         c[2] = { 1, 1 };
    uint8_t     fp_a[TS_FP_B];
    int         li, idx, bi, ai, s;
    node_dl_sh_t *d;
    int64_t     end;

    t_make_file(&f, 4ull * TS_CHUNK_B + 5);
    bi = t_seeder(&f, 0, addrs[1], sizeof(addrs[1]));
    t_identity(sdir, sizeof(sdir), fp_a);
    t_id_add(addrs[1], fp_a);           /* the lie: B's address, A's id */
    li = t_node(0, 1, 2, NULL, 0);
    idx = t_leech(li, &f, dest, sizeof(dest), &addrs[1], 1);
    d = &node_dls(&t_nodes[li].shm)[idx];
    s = t_src_index(d, addrs[1]);
    assert_true(s >= 0);
    end = ts_now_ms() + 5000;
    while (atomic_load(&d->src[s].errors) == 0 && ts_now_ms() < end) {
        t_sleep_ms(5);
    }
    assert_true(atomic_load(&d->src[s].errors) > 0);
    t_sleep_ms(500);
    assert_int_equal(atomic_load(&d->chunks_done), 0);
    assert_int_equal(atomic_load(&node_stats(&t_nodes[bi].shm)->chunks_up),
                     0);
    /* the real A appears */
    ai = t_seeder_in(sdir, &f, 0, addrs[0], sizeof(addrs[0]));
    a[0] = addrs[0];
    a[1] = addrs[1];
    t_set_sources(li, idx, a, c, 2);
    t_expect_done(li, idx, &f, dest, 15000);
    assert_int_equal(atomic_load(&d->src[s].chunks), 0);
    assert_int_equal(atomic_load(&node_stats(&t_nodes[bi].shm)->chunks_up),
                     0);
    assert_true(atomic_load(&node_stats(&t_nodes[ai].shm)->chunks_up) > 0);
    t_check_clean(li, idx, &f);
    t_stop_all();
    free(f.hashes);
}

/* A ticket the seeder refuses (another identity's, then an expired one):
 * the download makes no progress and says so (denied), without
 * hammering; a good ticket lets it finish. */
static void
test_ticket_refused(void **state)
{
    t_file_t  f;
    char      addrs[1][64], dest[PATH_MAX];
    int       li, si, idx;
    uint8_t   other[TS_FP_B];
    node_dl_sh_t *d;
    int64_t   end;
    uint64_t  up;

    t_make_file(&f, 3ull * TS_CHUNK_B + 1);
    si = t_seeder(&f, 0, addrs[0], sizeof(addrs[0]));
    li = t_node(0, 1, 2, NULL, 0);
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 1);
    d = &node_dls(&t_nodes[li].shm)[idx];
    /* replaced at once by a ticket for someone else (the race with the
     * first one is harmless: the test only needs the refusal to come) */
    memset(other, 0x33, sizeof(other));
    atomic_store(&d->state, NODE_DL_PAUSED);
    t_ticket(li, idx, other, 60000);
    atomic_store(&d->state, NODE_DL_ACTIVE);
    end = ts_now_ms() + 5000;
    while (!atomic_load(&d->denied) && atomic_load(&d->state)
           == NODE_DL_ACTIVE && ts_now_ms() < end)
    {
        t_sleep_ms(5);
    }
    if (atomic_load(&d->state) == NODE_DL_DONE) {
        /* the first ticket won the race: nothing to see here */
        fprintf(stderr, "download finished before the bad ticket\n");
        t_stop_all();
        free(f.hashes);
        return;
    }
    assert_int_equal(atomic_load(&d->denied), 1);
    up = atomic_load(&node_stats(&t_nodes[si].shm)->chunks_up);
    t_sleep_ms(700);
    assert_int_equal(atomic_load(&d->state), NODE_DL_ACTIVE);
    assert_int_equal(atomic_load(&node_stats(&t_nodes[si].shm)->chunks_up),
                     up);
    /* an expired ticket is refused as well */
    t_ticket(li, idx, NULL, -1000);
    assert_int_equal(atomic_load(&d->denied), 0);
    end = ts_now_ms() + 5000;
    while (!atomic_load(&d->denied) && ts_now_ms() < end) {
        t_sleep_ms(5);
    }
    assert_int_equal(atomic_load(&d->denied), 1);
    assert_int_equal(atomic_load(&node_stats(&t_nodes[si].shm)->chunks_up),
                     up);
    /* the good one */
    t_ticket(li, idx, NULL, 60000);
    t_expect_done(li, idx, &f, dest, 10000);
    assert_int_equal(atomic_load(&d->denied), 0);
    t_check_clean(li, idx, &f);
    t_stop_all();
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
    t_file_t f;
    char     addrs[3][64], dest[PATH_MAX];
    int      li, idx, k, n, kills = 0;
    pid_t    pids[16];
    node_dl_sh_t *d;
    int64_t  end, next;

    t_make_file(&f, 192ull * 1024 * 1024);
    for (k = 0; k < 3; k++) {
        t_seeder(&f, 0, addrs[k], sizeof(addrs[k]));
    }
    li = t_node(0, 1, 4, NULL, 0);
    /* all four downloaders up before the download starts */
    end = ts_now_ms() + 5000;
    while (t_downloaders(&t_nodes[li].shm, pids, 16) < 4
           && ts_now_ms() < end)
    {
        t_sleep_ms(5);
    }
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 3);
    d = &node_dls(&t_nodes[li].shm)[idx];
    end = ts_now_ms() + 40000;
    next = ts_now_ms() + 20;
    while (ts_now_ms() < end) {
        uint32_t st = atomic_load(&d->state);

        if (st == NODE_DL_DONE || st == NODE_DL_FAILED) {
            break;
        }
        if (ts_now_ms() >= next) {
            n = t_downloaders(&t_nodes[li].shm, pids, 16);
            if (n > 0) {
                kill(pids[(unsigned) rand() % (unsigned) n], SIGKILL);
                kills++;
            }
            next = ts_now_ms() + 200;
        }
        t_sleep_ms(2);
    }
    fprintf(stderr, "%d downloader kills, %llu claims reclaimed\n", kills,
            (unsigned long long)
            atomic_load(&node_stats(&t_nodes[li].shm)->reclaimed_claims));
    assert_true(kills > 0);
    t_expect_done(li, idx, &f, dest, 1000);
    t_check_clean(li, idx, &f);
    end = ts_now_ms() + 5000;
    while (t_downloaders(&t_nodes[li].shm, pids, 16) < 4
           && ts_now_ms() < end)
    {
        t_sleep_ms(10);
    }
    assert_int_equal(t_downloaders(&t_nodes[li].shm, pids, 16), 4);
    t_stop_all();
    free(f.hashes);
}

/* One seeder, one leecher, 256 MiB: correctness, and the rate for the
 * log (the benchmark proper is elsewhere; no threshold here). */
static void
test_speed_one_seeder(void **state)
{
    t_file_t f;
    char     addrs[1][64], dest[PATH_MAX];
    int      li, idx;
    int64_t  t0, t1;
    node_dl_sh_t *d;

    t_make_file(&f, 256ull * 1024 * 1024);
    t_seeder(&f, 0, addrs[0], sizeof(addrs[0]));
    li = t_node(0, 1, 4, NULL, 0);
    t0 = ts_now_ms();
    idx = t_leech(li, &f, dest, sizeof(dest), addrs, 1);
    d = &node_dls(&t_nodes[li].shm)[idx];
    while (atomic_load(&d->chunks_done) < f.nchunks
           && atomic_load(&d->state) == NODE_DL_ACTIVE
           && ts_now_ms() - t0 < 30000)
    {
        t_sleep_ms(1);
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
    t_stop_all();
    free(f.hashes);
}

static int
t_setup(void **state)
{
    snprintf(t_dir, sizeof(t_dir), "/tmp/ts_node_dl.XXXXXX");
    if (mkdtemp(t_dir) == NULL) {
        return -1;
    }
    t_pki_init();
    return 0;
}

static int
t_teardown(void **state)
{
    char cmd[PATH_MAX + 16];

    t_stop_all();
    ts_ticket_signer_free(t_signer);
    if (t_liar_tls != NULL) {
        ts_tls_ctx_free(t_liar_tls);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t_dir);
    return system(cmd) == 0 ? 0 : -1;
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
