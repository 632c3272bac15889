/*
 * node_fixture.h -- what the node tests (test_node_dl*.c, test_node_up.c,
 * test_node_perf.c) share: a temp dir holding a test PKI (a CA and its
 * tracker 1, whose key signs download tickets as a tracker would), node
 * identities, real nodes started on 127.0.0.1 with them (a pool of
 * NF_MAX_NODES, defined by the test before including this), download
 * tickets, source files with their chunk hashes, and the downloads'
 * checks (done, byte for byte, nothing left claimed or counted).
 *
 * Header-only, every helper static inline: the Makefile compiles each
 * tests/unit/test_node_*.c alone with the client objects, and a test
 * uses only some of the helpers.
 *
 * Locking: none; only the test process's main thread uses it.
 * Crash behaviour: nf_stop_all stops every pool node (node_stop: its
 * supervisor's pid, bounded); nf_teardown also removes the temp dir.
 * A test that crashes leaves the temp dir under /tmp.
 */
#ifndef NODE_FIXTURE_H_INCLUDED
#define NODE_FIXTURE_H_INCLUDED

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
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
#include "ts_clock.h"
#include "ts_net.h"
#include "ts_ticket.h"
#include "ts_tls.h"
#include "node.h"
#include "node_shm.h"

#ifndef NF_MAX_NODES
#define NF_MAX_NODES 1
#endif

/* A source file made by nf_make_file. */
typedef struct {
    char      path[PATH_MAX];
    uint64_t  size;
    uint32_t  nchunks;
    uint8_t  *hashes;           /* nchunks x SHA1, malloc'd */
    uint8_t   sha1[20];         /* of the whole file */
    int64_t   mtime_ns;
} nf_file_t;

static char                 nf_dir[256];        /* the test's temp dir */
static int                  nf_seq;             /* numbers names in it */
static char                 nf_ca[PATH_MAX];    /* the test CA (PEM) */
static ts_ticket_signer_t  *nf_signer;          /* its tracker 1 */

/* the pool: node i runs while nf_used[i], with identity nf_fp[i], at
 * nf_addr[i] ("127.0.0.1:port") */
static node_t               nf_nodes[NF_MAX_NODES];
static int                  nf_used[NF_MAX_NODES];
static uint8_t              nf_fp[NF_MAX_NODES][TS_FP_B];
static char                 nf_addr[NF_MAX_NODES][64];

/* who is who, as the tracker would list them: (address, fingerprint) of
 * every node started and of any fake peer a test adds, the last one at
 * an address winning */
#define NF_IDS_N 256
static struct {
    char     addr[64];
    uint8_t  fp[TS_FP_B];
} nf_ids[NF_IDS_N];
static int                  nf_nids;

static inline void
nf_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* The test CA and its tracker 1 in <nf_dir>/pki: nf_ca, nf_signer. */
static inline void
nf_pki_init(void)
{
    char  pki[PATH_MAX - 64], crt[PATH_MAX + 32], key[PATH_MAX + 32];
    char  err[256];

    snprintf(pki, sizeof(pki), "%s/pki", nf_dir);
    assert_int_equal(ts_pki_ensure_ca(pki, err, sizeof(err)), 0);
    assert_int_equal(ts_pki_ensure_tracker(pki, 1, "127.0.0.1", err,
                                           sizeof(err)), 0);
    snprintf(nf_ca, sizeof(nf_ca), "%s/ca.crt", pki);
    snprintf(crt, sizeof(crt), "%s/tracker-1.crt", pki);
    snprintf(key, sizeof(key), "%s/tracker-1.key", pki);
    nf_signer = ts_ticket_signer_new(1, crt, key, err, sizeof(err));
    if (nf_signer == NULL) {
        fail_msg("ticket signer: %s", err);
    }
}

/* Makes nf_dir from tmpl (a mkdtemp template) and the PKI in it: 0, or
 * -1 if the dir cannot be made. */
static inline int
nf_setup(const char *tmpl)
{
    snprintf(nf_dir, sizeof(nf_dir), "%s", tmpl);
    if (mkdtemp(nf_dir) == NULL) {
        return -1;
    }
    nf_pki_init();
    return 0;
}

static inline void
nf_node_stop(int i)
{
    if (nf_used[i]) {
        node_stop(&nf_nodes[i]);
        nf_used[i] = 0;
    }
}

static inline void
nf_stop_all(void)
{
    int i;

    for (i = 0; i < NF_MAX_NODES; i++) {
        nf_node_stop(i);
    }
}

/* Stops the pool, frees the signer, removes nf_dir: 0 or -1. */
static inline int
nf_teardown(void)
{
    char cmd[PATH_MAX + 16];

    nf_stop_all();
    ts_ticket_signer_free(nf_signer);
    nf_signer = NULL;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", nf_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The node identity (key, self-signed certificate) in state dir dir,
 * made if missing: fp filled. */
static inline void
nf_identity(const char *dir, uint8_t fp[TS_FP_B])
{
    char err[256];

    if (ts_pki_ensure_node(dir, fp, err, sizeof(err)) != 0) {
        fail_msg("node identity: %s", err);
    }
}

/* A new identity in a new state dir under nf_dir: dir and fp filled. */
static inline void
nf_new_identity(char *dir, size_t dirsz, uint8_t fp[TS_FP_B])
{
    snprintf(dir, dirsz, "%s/state%d", nf_dir, ++nf_seq);
    nf_identity(dir, fp);
}

/* A TLS context in role for the identity in state dir dir. */
static inline ts_tls_t *
nf_tls(ts_tls_role_t role, const char *dir)
{
    char      crt[PATH_MAX + 16], key[PATH_MAX + 16], err[256];
    ts_tls_t *tls;

    snprintf(crt, sizeof(crt), "%s/node.crt", dir);
    snprintf(key, sizeof(key), "%s/node.key", dir);
    tls = ts_tls_ctx_new(role, crt, key, NULL, err, sizeof(err));
    if (tls == NULL) {
        fail_msg("TLS context: %s", err);
    }
    return tls;
}

/* Starts node nd with the identity in state dir dir (made if missing: fp
 * filled) on 127.0.0.1:port (0: any), trusting the test CA.  Returns
 * the port it listens on. */
static inline uint16_t
nf_node_start(node_t *nd, const char *dir, uint8_t fp[TS_FP_B],
              uint16_t port, int ups, int downs)
{
    node_opts_t        o;
    struct sockaddr_in sin;
    socklen_t          sl = sizeof(sin);

    nf_identity(dir, fp);
    memset(&o, 0, sizeof(o));
    snprintf(o.ip, sizeof(o.ip), "127.0.0.1");
    o.port = port;
    o.uploaders = ups;
    o.downloaders = downs;
    snprintf(o.crt_path, sizeof(o.crt_path), "%s/node.crt", dir);
    snprintf(o.key_path, sizeof(o.key_path), "%s/node.key", dir);
    snprintf(o.ca_path, sizeof(o.ca_path), "%s", nf_ca);
    assert_int_equal(node_start(nd, &o), 0);
    assert_int_equal(getsockname(nd->listen_fd, (struct sockaddr *) &sin,
                                 &sl), 0);
    return ntohs(sin.sin_port);
}

/* From now on the identity at addr is fp. */
static inline void
nf_id_add(const char *addr, const uint8_t fp[TS_FP_B])
{
    assert_true(nf_nids < NF_IDS_N);
    snprintf(nf_ids[nf_nids].addr, sizeof(nf_ids[0].addr), "%s", addr);
    memcpy(nf_ids[nf_nids].fp, fp, TS_FP_B);
    nf_nids++;
}

/* The identity last seen at addr. */
static inline void
nf_fp_of(const char *addr, uint8_t fp[TS_FP_B])
{
    int i;

    for (i = nf_nids - 1; i >= 0; i--) {
        if (strcmp(nf_ids[i].addr, addr) == 0) {
            memcpy(fp, nf_ids[i].fp, TS_FP_B);
            return;
        }
    }
    fail_msg("no identity known for %s", addr);
}

/* A port free on 127.0.0.1 right now. */
static inline uint16_t
nf_free_port(void)
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

/* Starts a pool node; sdir NULL = a new identity, port 0 = any.  Returns
 * its index; its address also goes to addr unless NULL. */
static inline int
nf_node_in(const char *sdir, uint16_t port, int ups, int downs, char *addr,
           size_t addrsz)
{
    char dir[PATH_MAX - 64];
    int  i;

    for (i = 0; i < NF_MAX_NODES && nf_used[i]; i++) {
    }
    assert_true(i < NF_MAX_NODES);
    if (sdir == NULL) {
        snprintf(dir, sizeof(dir), "%s/state%d", nf_dir, ++nf_seq);
    } else {
        snprintf(dir, sizeof(dir), "%s", sdir);
    }
    port = nf_node_start(&nf_nodes[i], dir, nf_fp[i], port, ups, downs);
    nf_used[i] = 1;
    snprintf(nf_addr[i], sizeof(nf_addr[i]), "127.0.0.1:%u", port);
    nf_id_add(nf_addr[i], nf_fp[i]);
    if (addr != NULL) {
        snprintf(addr, addrsz, "%s", nf_addr[i]);
    }
    return i;
}

/* Pool node i shares f as grp/file. */
static inline void
nf_share(int i, const nf_file_t *f)
{
    assert_true(node_share_add(&nf_nodes[i].shm, "grp", "file", f->path,
                               f->size, f->mtime_ns, f->nchunks) >= 0);
}

/* A new file of random bytes under nf_dir, with its hashes. */
static inline void
nf_make_file(nf_file_t *f, uint64_t size)
{
    uint8_t    *buf = malloc(TS_CHUNK_B);
    ts_sha1_t  *h = ts_sha1_new();
    uint64_t    off;
    uint32_t    i = 0;
    struct stat st;
    int         fd;

    assert_non_null(buf);
    assert_non_null(h);
    snprintf(f->path, sizeof(f->path), "%s/src%d", nf_dir, ++nf_seq);
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
    f->mtime_ns = (int64_t) st.st_mtim.tv_sec * 1000000000
                  + st.st_mtim.tv_nsec;
    close(fd);
    free(buf);
}

/* 1 if files a and b both exist and hold the same bytes. */
static inline int
nf_same_file(const char *a, const char *b)
{
    static char ba[1 << 20], bb[1 << 20];
    int         fa = open(a, O_RDONLY), fb = open(b, O_RDONLY), same = 1;
    ssize_t     na, nb;

    if (fa < 0 || fb < 0) {
        same = 0;
        goto out;
    }
    do {
        na = read(fa, ba, sizeof(ba));
        nb = read(fb, bb, sizeof(bb));
        if (na != nb || na < 0 || memcmp(ba, bb, (size_t) na) != 0) {
            same = 0;
            break;
        }
    } while (na > 0);
out:
    if (fa >= 0) close(fa);
    if (fb >= 0) close(fb);
    return same;
}

/* A ticket for (group, name) naming fp, signed by tracker 1, expiring in
 * ttl_ms (< 0: already expired), as its wire form in out.  Returns its
 * expiry (wall clock ms). */
static inline int64_t
nf_ticket(ts_wbuf_t *out, const char *group, const char *name,
          const uint8_t fp[TS_FP_B], int64_t ttl_ms)
{
    ts_ticket_t  t;
    int64_t      now = ts_wall_ms();

    memset(&t, 0, sizeof(t));
    snprintf(t.group, sizeof(t.group), "%s", group);
    snprintf(t.name, sizeof(t.name), "%s", name);
    memcpy(t.fp, fp, TS_FP_B);
    t.issued_ms = (uint64_t) (ttl_ms < 0 ? now + 2 * ttl_ms : now);
    t.expires_ms = (uint64_t) (now + ttl_ms);
    ts_wbuf_reset(out);
    assert_int_equal(ts_ticket_sign(nf_signer, &t, out), 0);
    return (int64_t) t.expires_ms;
}

/* Gives download idx of pool node li a ticket for grp/file naming fp
 * (NULL: the node's own identity), as the agent does with FILE_INFO's. */
static inline void
nf_give_ticket(int li, int idx, const uint8_t *fp, int64_t ttl_ms)
{
    ts_wbuf_t  b;
    int64_t    expires;

    ts_wbuf_init(&b);
    expires = nf_ticket(&b, "grp", "file", fp != NULL ? fp : nf_fp[li],
                        ttl_ms);
    assert_int_equal(node_dl_set_ticket(&nf_nodes[li].shm, idx, b.data,
                                        b.len, expires), 0);
    ts_wbuf_free(&b);
}

/* The identity of the file at path (a .part made by a test, as the CLI
 * makes it), which node_dl_add pins. */
static inline void
nf_fid(const char *path, node_fid_t *id)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW);

    assert_true(fd >= 0);
    assert_int_equal(node_fid_of(fd, id), 0);
    close(fd);
}

/* Creates an empty .part at path as the CLI does (O_EXCL) and gives its
 * identity. */
static inline void
nf_part_make(const char *path, node_fid_t *id)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);

    assert_true(fd >= 0);
    close(fd);
    nf_fid(path, id);
}

/* Adds a download of f (grp/file) to pool node li, into a new dest under
 * nf_dir (its .part made beside it), with no ticket or source yet.
 * Returns the download's index. */
static inline int
nf_dl_add(int li, const nf_file_t *f, char *dest, size_t destsz)
{
    char       part[PATH_MAX + 8];
    node_fid_t id;
    int        idx;

    snprintf(dest, destsz, "%s/dl%d", nf_dir, ++nf_seq);
    snprintf(part, sizeof(part), "%s.part", dest);
    nf_part_make(part, &id);
    idx = node_dl_add(&nf_nodes[li].shm, "grp", "file", dest, part, &id,
                      f->size, f->nchunks, f->sha1, f->hashes, NULL, NULL);
    assert_true(idx >= 0);
    return idx;
}

/* Waits (at most ms) for download idx of pool node li to reach want or
 * to end (DONE or FAILED); returns the state it has then. */
static inline uint32_t
nf_wait_state(int li, int idx, uint32_t want, int ms)
{
    node_dl_sh_t *d = &node_dls(&nf_nodes[li].shm)[idx];
    int64_t       end = ts_now_ms() + ms;
    uint32_t      st;

    for ( ;; ) {
        st = atomic_load(&d->state);
        if (st == want || st == NODE_DL_DONE || st == NODE_DL_FAILED
            || ts_now_ms() > end)
        {
            return st;
        }
        nf_sleep_ms(5);
    }
}

/* A pool node (2 uploaders, 1 downloader) sharing f; sdir and port as
 * for nf_node_in. */
static inline int
nf_seeder(const char *sdir, const nf_file_t *f, uint16_t port, char *addr,
          size_t addrsz)
{
    int i = nf_node_in(sdir, port, 2, 1, addr, addrsz);

    nf_share(i, f);
    return i;
}

/* node_dl_set_sources with each address's known identity (all complete
 * unless c says otherwise). */
static inline void
nf_set_sources(int li, int idx, const char *const *a, const int *c, int n)
{
    uint8_t  fps[8 * TS_FP_B];
    int      k;

    assert_true(n <= 8);
    for (k = 0; k < n; k++) {
        nf_fp_of(a[k], fps + (size_t) k * TS_FP_B);
    }
    node_dl_set_sources(&nf_nodes[li].shm, idx, a, c, fps, n);
}

/* What the agent does for a new download of f on pool node li: the
 * download, its ticket (ttl_ms), then its n complete sources.  Returns
 * the download's index. */
static inline int
nf_leech(int li, const nf_file_t *f, char *dest, size_t destsz,
         char addrs[][64], int n, int64_t ttl_ms)
{
    const char *a[8];
    int         c[8], k, idx;

    assert_true(n <= 8);
    idx = nf_dl_add(li, f, dest, destsz);
    for (k = 0; k < n; k++) {
        a[k] = addrs[k];
        c[k] = 1;
    }
    /* as the agent does: the ticket first, then the sources */
    nf_give_ticket(li, idx, NULL, ttl_ms);
    nf_set_sources(li, idx, a, c, n);
    return idx;
}

/* The source index of addr in download d, or -1. */
static inline int
nf_src_index(node_dl_sh_t *d, const char *addr)
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
static inline void
nf_check_clean(int li, int idx, const nf_file_t *f)
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

/* Download idx of pool node li is DONE within ms: dest is f byte for
 * byte, no .part is left, the counts are whole. */
static inline void
nf_expect_done(int li, int idx, const nf_file_t *f, const char *dest, int ms)
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

/* The end of a download test: nothing left claimed or counted in
 * download idx of pool node li, every pool node stopped, f's hashes
 * freed. */
static inline void
nf_finish(int li, int idx, nf_file_t *f)
{
    nf_check_clean(li, idx, f);
    nf_stop_all();
    free(f->hashes);
}

#endif
