/*
 * test_node_perf.c -- the data-plane benchmark: 1 seeder node -> N
 * leecher nodes on 127.0.0.1, real supervisors, uploaders, downloaders,
 * real files.
 *
 * Purpose: without TESSERA_PERF=1 it runs the quick correctness cases
 * so the unit run stays fast: 8 MiB to 2 leechers (byte-for-byte
 * compared), and the whole-file hash "frontier" (node_fhash_sh_t):
 * resumed from chunks already on disk, a wrong file SHA1 (FAILED, .part
 * kept), and its holder SIGKILLed again and again mid-update.  With TESSERA_PERF=1 it runs the benchmark:
 *     TESSERA_PERF=1 SIZE=<MiB> N=<leechers> RUNS=<runs> [PAUSE=<s>]
 *         build/release/tests/test_node_perf
 * and prints per run: wall time until every leecher is DONE, time until
 * every chunk was verified and written ("chunks"), the finalization tail
 * (whole-file check, fsync, rename), aggregate MiB/s, the CPU time of
 * every node's process tree (utime + stime from /proc), and the peak
 * PSS of each node's process tree sampled every 200 ms (completion is
 * polled every 2 ms); then the medians.  TRACE=1 prints each leecher's
 * chunk count at every sample; NOCMP=1 skips the byte comparison.
 * Destination files are deleted between runs; PAUSE seconds of sleep
 * before each run selects the "cold" memory state of LIMIT-RESULTS.md
 * (default 0 = warm, back to back).
 *
 * Every node has its own identity and the test signs each download's
 * ticket with a test CA's tracker key, as a tracker would (TLS and
 * tickets are part of what is measured).
 *
 * Locking: none; the test process only reads the nodes' segments.
 *
 * Crash behaviour: every node is stopped by node_stop (its supervisor's
 * pid) before the test returns; every wait is bounded.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>

#include "ts_log.h"

#define NF_MAX_NODES 9
#include "node_fixture.h"

#define P_RUNS_MAX  15
#define P_TTL_MS    600000      /* the tickets' lifetime, ms */

/* A pool node with a new identity on any port. */
static int
p_node(int ups, int downs, char *addr, size_t addrsz)
{
    return nf_node_in(NULL, 0, ups, downs, addr, addrsz);
}

/* Waits until the node's workers all went ACTIVE (bounded). */
static void
p_wait_workers(int ni, int want)
{
    ts_slot_sh_t *sl = node_slots(&nf_nodes[ni].shm);
    int64_t       end = ts_now_ms() + 5000;
    int           i, n;

    do {
        for (n = 0, i = 0; i < TS_SUP_WORKERS_MAX_N; i++) {
            n += atomic_load(&sl[i].state) == TS_SLOT_ACTIVE;
        }
        if (n >= want) {
            return;
        }
        nf_sleep_ms(5);
    } while (ts_now_ms() < end);
}

/* ---- /proc: a node's process tree ------------------------------------ */

/* The supervisor and its children.  Returns how many pids. */
static int
p_tree(pid_t sup, pid_t *pids, int max)
{
    DIR           *dir = opendir("/proc");
    struct dirent *de;
    char           path[300], buf[512], *p;
    int            n = 0, fd, ppid;
    ssize_t        r;

    pids[n++] = sup;
    if (dir == NULL) {
        return n;
    }
    while ((de = readdir(dir)) != NULL && n < max) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9') {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        fd = open(path, O_RDONLY);
        if (fd < 0) {
            continue;
        }
        r = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (r <= 0) {
            continue;
        }
        buf[r] = '\0';
        p = strrchr(buf, ')');
        if (p != NULL && sscanf(p + 2, "%*c %d", &ppid) == 1
            && ppid == sup)
        {
            pids[n++] = (pid_t) atoi(de->d_name);
        }
    }
    closedir(dir);
    return n;
}

/* utime + stime in clock ticks, of one pid (and its reaped children). */
static long long
p_cpu_ticks(pid_t pid)
{
    char      path[64], buf[1024], *p;
    long long ut, st, cut, cst;
    int       fd;
    ssize_t   r;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
    fd = open(path, O_RDONLY);
    if (fd < 0) {
        return 0;
    }
    r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r <= 0) {
        return 0;
    }
    buf[r] = '\0';
    p = strrchr(buf, ')');
    if (p == NULL
        || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                  "%lld %lld %lld %lld", &ut, &st, &cut, &cst) != 4)
    {
        return 0;
    }
    return ut + st + cut + cst;
}

static long long
p_tree_cpu(pid_t sup)
{
    pid_t     pids[64];
    int       i, n = p_tree(sup, pids, 64);
    long long t = 0;

    for (i = 0; i < n; i++) {
        t += p_cpu_ticks(pids[i]);
    }
    return t;
}

static long
p_pss_kb(pid_t pid)
{
    char  path[64], line[256];
    FILE *fp;
    long  kb = 0;

    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int) pid);
    fp = fopen(path, "r");
    if (fp == NULL) {
        return 0;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (sscanf(line, "Pss: %ld kB", &kb) == 1) {
            break;
        }
    }
    fclose(fp);
    return kb;
}

static long
p_tree_pss(pid_t sup)
{
    pid_t pids[64];
    int   i, n = p_tree(sup, pids, 64);
    long  kb = 0;

    for (i = 0; i < n; i++) {
        kb += p_pss_kb(pids[i]);
    }
    return kb;
}

static int
p_env(const char *name, int def)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? atoi(v) : def;
}

/* ---- one run ---------------------------------------------------------- */

typedef struct {
    double wall_s;       /* dl_add -> every leecher DONE */
    double chunks_s;     /* dl_add -> every chunk of every leecher done */
    double tail_s;       /* chunks -> DONE (worst leecher) */
    double cpu_s;        /* all nodes, seeder included */
    double seed_cpu_s;
    long   pss_kb_max;   /* peak over leecher trees */
    long   seed_pss_kb;
} p_res_t;

static void
p_run(const nf_file_t *f, int n, int ups, int downs, p_res_t *res,
      int verbose)
{
    char          addr[64], dest[NF_MAX_NODES][PATH_MAX];
    int           si, li[NF_MAX_NODES], idx[NF_MAX_NODES], k, left;
    int64_t       t0, tchunks[NF_MAX_NODES], tdone[NF_MAX_NODES], end, lastp;
    long long     cpu0[NF_MAX_NODES + 1], cpu1;
    long          tck = sysconf(_SC_CLK_TCK);
    node_dl_sh_t *d;

    memset(res, 0, sizeof(*res));
    si = p_node(ups, 1, addr, sizeof(addr));
    nf_share(si, f);
    for (k = 0; k < n; k++) {
        li[k] = p_node(1, downs, NULL, 0);
    }
    p_wait_workers(si, ups + 1);
    for (k = 0; k < n; k++) {
        p_wait_workers(li[k], downs + 1);
    }
    cpu0[0] = p_tree_cpu(nf_nodes[si].sup_pid);
    for (k = 0; k < n; k++) {
        cpu0[k + 1] = p_tree_cpu(nf_nodes[li[k]].sup_pid);
        tchunks[k] = tdone[k] = 0;
    }
    t0 = ts_now_us();
    for (k = 0; k < n; k++) {
        idx[k] = nf_leech(li[k], f, dest[k], sizeof(dest[k]), &addr, 1,
                          P_TTL_MS);
    }
    end = ts_now_ms() + 120000;
    lastp = 0;
    do {
        left = 0;
        for (k = 0; k < n; k++) {
            uint32_t st;

            d = &node_dls(&nf_nodes[li[k]].shm)[idx[k]];
            st = atomic_load(&d->state);
            if (tchunks[k] == 0 && atomic_load(&d->chunks_done) >= f->nchunks) {
                tchunks[k] = ts_now_us();
            }
            if (tdone[k] == 0 && (st == NODE_DL_DONE || st == NODE_DL_FAILED)) {
                tdone[k] = ts_now_us();
                if (tchunks[k] == 0) {
                    tchunks[k] = tdone[k];
                }
            }
            left += tdone[k] == 0;
        }
        /* light sampling: this process shares the 2 cores with the
         * nodes it measures */
        if (ts_now_ms() - lastp >= 200) {
            lastp = ts_now_ms();
            if (p_env("TRACE", 0)) {
                printf("  %6.3f s:", (double) (ts_now_us() - t0) / 1e6);
                for (k = 0; k < n; k++) {
                    d = &node_dls(&nf_nodes[li[k]].shm)[idx[k]];
                    printf(" %5u", atomic_load(&d->chunks_done));
                }
                printf("\n");
            }
            for (k = 0; k < n; k++) {
                long kb = p_tree_pss(nf_nodes[li[k]].sup_pid);

                if (kb > res->pss_kb_max) {
                    res->pss_kb_max = kb;
                }
            }
            k = (int) p_tree_pss(nf_nodes[si].sup_pid);
            if (k > res->seed_pss_kb) {
                res->seed_pss_kb = k;
            }
        }
        if (left > 0) {
            struct timespec ts = { 0, 2000000 };

            nanosleep(&ts, NULL);
        }
    } while (left > 0 && ts_now_ms() < end);

    res->seed_cpu_s = (double) (p_tree_cpu(nf_nodes[si].sup_pid) - cpu0[0])
                      / (double) tck;
    res->cpu_s = res->seed_cpu_s;
    for (k = 0; k < n; k++) {
        int64_t t = tdone[k] - t0;

        cpu1 = p_tree_cpu(nf_nodes[li[k]].sup_pid);
        res->cpu_s += (double) (cpu1 - cpu0[k + 1]) / (double) tck;
        if (t / 1e6 > res->wall_s) {
            res->wall_s = (double) t / 1e6;
        }
        if ((tchunks[k] - t0) / 1e6 > res->chunks_s) {
            res->chunks_s = (double) (tchunks[k] - t0) / 1e6;
        }
        if ((tdone[k] - tchunks[k]) / 1e6 > res->tail_s) {
            res->tail_s = (double) (tdone[k] - tchunks[k]) / 1e6;
        }
    }
    for (k = 0; k < n; k++) {
        d = &node_dls(&nf_nodes[li[k]].shm)[idx[k]];
        if (atomic_load(&d->state) != NODE_DL_DONE) {
            fprintf(stderr, "leecher %d: state %u, %u/%u chunks, '%s'\n", k,
                    atomic_load(&d->state), atomic_load(&d->chunks_done),
                    f->nchunks, d->error);
        }
        assert_int_equal(atomic_load(&d->state), NODE_DL_DONE);
        if (verbose < 2) {
            assert_true(nf_same_file(f->path, dest[k]));
        }
    }
    nf_stop_all();
    for (k = 0; k < n; k++) {
        unlink(dest[k]);
    }
    if (verbose) {
        double mib = (double) f->size * n / 1048576.0;

        printf("run: wall %.3f s  chunks %.3f s  tail %.3f s  %.0f MiB/s "
               "(chunks %.0f MiB/s)  cpu %.2f s (seeder %.2f)  "
               "pss max leecher %ld KiB, seeder %ld KiB\n",
               res->wall_s, res->chunks_s, res->tail_s, mib / res->wall_s,
               mib / res->chunks_s, res->cpu_s, res->seed_cpu_s,
               res->pss_kb_max, res->seed_pss_kb);
        fflush(stdout);
    }
}

static int
p_cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}

static double
p_median(double *v, int n)
{
    qsort(v, (size_t) n, sizeof(double), p_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}


/* ---- tests ----------------------------------------------------------- */

static void
test_small_two_leechers(void **state)
{
    nf_file_t f;
    p_res_t  r;

    (void) state;
    nf_make_file(&f, 8ull * 1024 * 1024 + 12345);
    p_run(&f, 2, 2, 0, &r, 0);
    free(f.hashes);
}

/* 1 if pid is a child of node ni's supervisor (so ours to signal). */
static int
p_is_worker(int ni, pid_t pid)
{
    pid_t pids[64];
    int   i, n = p_tree(nf_nodes[ni].sup_pid, pids, 64);

    for (i = 1; i < n; i++) {
        if (pids[i] == pid) {
            return 1;
        }
    }
    return 0;
}

/* The restored-bits array of p_resume_part: one bit per chunk of the
 * largest file these tests resume (192 MiB = 385 chunks), bytes. */
#define P_DONE_B  64
#define P_KILL_SIZE_B  (192ull * 1024 * 1024 + 777)
_Static_assert((P_KILL_SIZE_B + TS_CHUNK_B - 1) / TS_CHUNK_B <= P_DONE_B * 8,
               "P_DONE_B too small for the frontier kill file");

/* Writes a .part for a resumed download of f at dest: chunks 0..12 on
 * disk, 0..8 and 12 marked in done (9 on disk but not marked); with
 * `lost` chunk 3 holds zeros, as when a crash lost its pages after its
 * bit reached node.tdb.  Leaves the part's path in part. */
static void
p_resume_part(const nf_file_t *f, const char *dest, char *part, size_t psz,
              uint8_t done[P_DONE_B], int lost)
{
    uint8_t  *buf;
    int       in, out;
    uint32_t  k;

    snprintf(part, psz, "%s.part", dest);
    buf = malloc(TS_CHUNK_B);
    assert_non_null(buf);
    in = open(f->path, O_RDONLY);
    out = open(part, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(in >= 0 && out >= 0);
    memset(done, 0, P_DONE_B);
    for (k = 0; k < 13; k++) {
        assert_int_equal(pread(in, buf, TS_CHUNK_B, (off_t) k * TS_CHUNK_B),
                         TS_CHUNK_B);
        if (lost && k == 3) {
            memset(buf, 0, TS_CHUNK_B);
        }
        assert_int_equal(pwrite(out, buf, TS_CHUNK_B,
                                (off_t) k * TS_CHUNK_B), TS_CHUNK_B);
        if (k <= 8 || k == 12) {
            done[k >> 3] |= (uint8_t) (1u << (k & 7));
        }
    }
    close(in);
    close(out);
    free(buf);
}

/* Starts the resumed download of f (done: the restored bits) on node li
 * from the seeder at addr; its index. */
static int
p_resume_start(int li, const nf_file_t *f, const char *dest,
               const char *part, const uint8_t *done, const char *addr)
{
    node_fid_t  id;
    const char *a[1] = { addr };
    int         c[1] = { 1 }, idx;

    nf_fid(part, &id);
    idx = node_dl_add(&nf_nodes[li].shm, "grp", "file", dest, part, &id,
                      f->size, f->nchunks, f->sha1, f->hashes, done, NULL);
    assert_true(idx >= 0);
    assert_int_equal(atomic_load(&node_dls(&nf_nodes[li].shm)[idx].restored),
                     1);
    nf_give_ticket(li, idx, NULL, P_TTL_MS);
    nf_set_sources(li, idx, a, c, 1);
    return idx;
}

/* A resumed download: the first chunks are already in the .part and
 * marked done; the frontier reads them back from disk. */
static void
test_frontier_resume(void **state)
{
    nf_file_t  f;
    char      addr[64], dest[PATH_MAX], part[PATH_MAX + 8];
    uint8_t   done[P_DONE_B];
    int       si, li, idx;

    (void) state;
    nf_make_file(&f, 20ull * TS_CHUNK_B + 5);
    snprintf(dest, sizeof(dest), "%s/resume%d", nf_dir, ++nf_seq);
    p_resume_part(&f, dest, part, sizeof(part), done, 0);
    si = p_node(1, 1, addr, sizeof(addr));
    nf_share(si, &f);
    li = p_node(1, 2, NULL, 0);
    idx = p_resume_start(li, &f, dest, part, done, addr);
    assert_int_equal(nf_wait_state(li, idx, NODE_DL_DONE, 20000),
                     NODE_DL_DONE);
    assert_true(nf_same_file(f.path, dest));
    assert_int_equal(atomic_load(&node_stats(&nf_nodes[li].shm)->fh_rereads),
                     0);
    nf_stop_all();
    unlink(dest);
    free(f.hashes);
}

/* A resumed download whose wrong whole-file SHA1 (bad) or whose restored
 * chunk lost its bytes (lost): every fetched chunk verifies, the frontier
 * hash disagrees, the re-read agrees with it, the download FAILS and the
 * .part is kept (never renamed into place). */
static void
p_resume_bad(int bad, int lost)
{
    nf_file_t      f;
    char          addr[64], dest[PATH_MAX], part[PATH_MAX + 8];
    uint8_t        done[P_DONE_B];
    int           si, li, idx;
    node_dl_sh_t *d;

    nf_make_file(&f, 20ull * TS_CHUNK_B + 100);
    if (bad) {
        f.sha1[7] ^= 0x40;
    }
    snprintf(dest, sizeof(dest), "%s/bad%d", nf_dir, ++nf_seq);
    p_resume_part(&f, dest, part, sizeof(part), done, lost);
    si = p_node(1, 1, addr, sizeof(addr));
    nf_share(si, &f);
    li = p_node(1, 2, NULL, 0);
    idx = p_resume_start(li, &f, dest, part, done, addr);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    assert_int_equal(nf_wait_state(li, idx, NODE_DL_FAILED, 20000),
                     NODE_DL_FAILED);
    assert_non_null(strstr(d->error, "SHA1 mismatch"));
    assert_int_equal(atomic_load(&node_stats(&nf_nodes[li].shm)->fh_rereads),
                     1);
    assert_int_equal(access(dest, F_OK), -1);
    assert_int_equal(access(part, F_OK), 0);
    nf_stop_all();
    unlink(part);
    free(f.hashes);
}

static void
test_file_sha1_mismatch(void **state)
{
    (void) state;
    p_resume_bad(1, 0);
}

/* A crash lost a restored chunk's pages (zeros where its bit says done):
 * a fresh download hashes each byte once, but a resumed one is checked
 * whole, so the lost chunk never reaches dest. */
static void
test_restored_chunk_lost(void **state)
{
    (void) state;
    p_resume_bad(0, 1);
}

/* The downloader holding the whole-file hash frontier is SIGKILLed
 * whenever it is seen holding it: the file still completes, correct,
 * from the published copy (no re-read of the .part), with no claim
 * left.  A resumed download, so that the frontier hashes (a fresh one
 * only paces writeback with it and holds it for microseconds). */
static void
test_frontier_kill(void **state)
{
    nf_file_t         f;
    char             addr[64], dest[PATH_MAX], part[PATH_MAX + 8];
    uint8_t          done[P_DONE_B];
    int              si, li, idx, kills = 0;
    node_fhash_sh_t *fh;
    node_dl_sh_t    *d;
    int64_t          end, next = 0;
    uint64_t         own, pub;

    (void) state;
    nf_make_file(&f, P_KILL_SIZE_B);
    si = p_node(1, 1, addr, sizeof(addr));
    nf_share(si, &f);
    li = p_node(1, 4, NULL, 0);
    p_wait_workers(li, 5);
    snprintf(dest, sizeof(dest), "%s/kill%d", nf_dir, ++nf_seq);
    p_resume_part(&f, dest, part, sizeof(part), done, 0);
    idx = p_resume_start(li, &f, dest, part, done, addr);
    fh = node_dl_fhash(&nf_nodes[li].shm, idx);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    assert_non_null(fh);
    end = ts_now_ms() + 60000;
    while (ts_now_ms() < end) {
        uint32_t st = atomic_load(&d->state);

        if (st == NODE_DL_DONE || st == NODE_DL_FAILED) {
            break;
        }
        own = atomic_load(&fh->owner);
        if (own != 0 && ts_now_ms() >= next
            && p_is_worker(li, ts_owner_pid(own)))
        {
            kill(ts_owner_pid(own), SIGKILL);
            kills++;
            next = ts_now_ms() + 40;
            if (kills >= 20) {
                break;
            }
        }
        {
            struct timespec ts = { 0, 100000 };

            nanosleep(&ts, NULL);
        }
    }
    fprintf(stderr, "%d kills of the frontier holder\n", kills);
    assert_true(kills > 0);
    assert_int_equal(nf_wait_state(li, idx, NODE_DL_DONE, 30000),
                     NODE_DL_DONE);
    assert_true(nf_same_file(f.path, dest));
    pub = atomic_load(&fh->pub);
    assert_int_equal(fh->copy[pub & 1].next, f.nchunks);
    assert_int_equal(atomic_load(&node_stats(&nf_nodes[li].shm)->fh_rereads),
                     0);
    end = ts_now_ms() + 3000;
    while (atomic_load(&fh->owner) != 0 && ts_now_ms() < end) {
        nf_sleep_ms(5);
    }
    assert_int_equal(atomic_load(&fh->owner), 0);
    nf_stop_all();
    unlink(dest);
    free(f.hashes);
}

static void
test_bench(void **state)
{
    nf_file_t f;
    p_res_t  r[P_RUNS_MAX];
    double   wall[P_RUNS_MAX], chunks[P_RUNS_MAX], tail[P_RUNS_MAX];
    double   cpu[P_RUNS_MAX], pss[P_RUNS_MAX];
    int      size = p_env("SIZE", 1024), n = p_env("N", 1);
    int      runs = p_env("RUNS", 3), pause_s = p_env("PAUSE", 0);
    int      ups = p_env("UPLOADERS", 0), downs = p_env("DOWNLOADERS", 0);
    int      i, verbose = p_env("NOCMP", 0) ? 2 : 1;
    double   mib;

    (void) state;
    if (n < 1 || n > NF_MAX_NODES - 1 || runs < 1 || runs > P_RUNS_MAX
        || size < 1)
    {
        fail_msg("bad N/RUNS/SIZE");
    }
    if (ups <= 0) {
        ups = TS_NODE_UPLOADERS_N;
    }
    if (downs <= 0) {
        downs = TS_NODE_DOWNLOADERS_N;
    }
    nf_make_file(&f, (uint64_t) size << 20);
    printf("bench: %d MiB, 1 seeder (%d uploaders) -> %d leechers "
           "(%d downloaders), %d runs, pause %d s\n", size, ups, n, downs,
           runs, pause_s);
    fflush(stdout);
    for (i = 0; i < runs; i++) {
        if (pause_s > 0) {
            sleep((unsigned) pause_s);
        }
        p_run(&f, n, ups, downs, &r[i], verbose);
        wall[i] = r[i].wall_s;
        chunks[i] = r[i].chunks_s;
        tail[i] = r[i].tail_s;
        cpu[i] = r[i].cpu_s;
        pss[i] = (double) r[i].pss_kb_max;
    }
    mib = (double) size * n;
    printf("median of %d: wall %.3f s (%.0f MiB/s)  chunks %.3f s "
           "(%.0f MiB/s)  tail %.3f s  cpu %.2f s  leecher pss %.0f KiB\n",
           runs, p_median(wall, runs), mib / p_median(wall, runs),
           p_median(chunks, runs), mib / p_median(chunks, runs),
           p_median(tail, runs), p_median(cpu, runs), p_median(pss, runs));
    unlink(f.path);
    free(f.hashes);
}

static int
p_setup(void **state)
{
    const char *base = getenv("PERF_DIR");
    char        tmpl[200];

    (void) state;
    snprintf(tmpl, sizeof(tmpl), "%s/ts_node_perf.XXXXXX",
             base != NULL ? base : "/tmp");
    return nf_setup(tmpl);
}

static int
p_teardown(void **state)
{
    (void) state;
    return nf_teardown();
}

int
main(void)
{
    const struct CMUnitTest quick[] = {
        cmocka_unit_test(test_small_two_leechers),
        cmocka_unit_test(test_frontier_resume),
        cmocka_unit_test(test_file_sha1_mismatch),
        cmocka_unit_test(test_restored_chunk_lost),
        cmocka_unit_test(test_frontier_kill),
    };
    const struct CMUnitTest bench[] = {
        cmocka_unit_test(test_bench),
    };
    const char *perf = getenv("TESSERA_PERF");

    signal(SIGPIPE, SIG_IGN);
    if (perf != NULL && strcmp(perf, "1") == 0) {
        return cmocka_run_group_tests(bench, p_setup, p_teardown);
    }
    return cmocka_run_group_tests(quick, p_setup, p_teardown);
}
