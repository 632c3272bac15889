/*
 * test_node_dl.c -- the downloader workers (workers/dl_*.c) with real
 * nodes: real supervisors, uploader and downloader processes on
 * 127.0.0.1, real files in a temp directory, real SIGKILLs.
 *
 * Purpose: a leecher node downloads a file from seeder nodes (node_start +
 * node_share_add) and the result is compared byte for byte; the edge
 * sizes, a destination that exists, a finished file already renamed by a
 * killed finalizer, a .part replaced by a symlink, a seeder stopped
 * mid-download, no source at all until a seeder appears, a churning link
 * table, and downloader workers SIGKILLed every 200 ms.  Every node has
 * its own identity (node.crt in its state dir), sources are listed with
 * their fingerprints and every download carries a ticket signed by a test
 * tracker key of a test CA, as the tracker would give them.  Peers that
 * lie, present another identity or refuse tickets: test_node_dl_peers.c.
 *
 * Locking: none; only the test's main thread.
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
#include <signal.h>

#include "ts_log.h"
#include "ts_proto.h"

#define NF_MAX_NODES 6
#include "node_fixture.h"

#define T_TTL_MS 60000             /* the tickets' lifetime, ms */

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
        nf_seeder(NULL, &f, 0, addrs[k], sizeof(addrs[k]));
    }
    li = nf_node_in(NULL, 0, 1, 4, NULL, 0);
    idx = nf_leech(li, &f, dest, sizeof(dest), addrs, 3, T_TTL_MS);
    nf_expect_done(li, idx, &f, dest, 20000);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    for (k = 0; k < 3; k++) {
        s = nf_src_index(d, addrs[k]);
        assert_true(s >= 0);
        fprintf(stderr, "source %s: %llu chunks, %llu bytes\n", addrs[k],
                (unsigned long long) atomic_load(&d->src[s].chunks),
                (unsigned long long) atomic_load(&d->src[s].bytes));
        /* bytes: the last chunks come as blocks, each chunk credited to
         * the peer of most of its blocks */
        assert_true(atomic_load(&d->src[s].bytes) > 0);
        assert_true(atomic_load(&node_stats(&nf_nodes[k].shm)->chunks_up) > 0);
    }
    nf_finish(li, idx, &f);
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
        si = nf_seeder(NULL, &f, 0, addrs[0], sizeof(addrs[0]));
        li = nf_node_in(NULL, 0, 1, 2, NULL, 0);
        idx = nf_leech(li, &f, dest, sizeof(dest), addrs, 1, T_TTL_MS);
        nf_expect_done(li, idx, &f, dest, 10000);
        nf_check_clean(li, idx, &f);
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
    nf_seeder(NULL, &f, 0, addrs[0], sizeof(addrs[0]));
    li = nf_node_in(NULL, 0, 1, 2, NULL, 0);
    snprintf(dest, sizeof(dest), "%s/dl%d", nf_dir, nf_seq + 1);
    fd = open(dest, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "keep", 4), 4);
    close(fd);
    idx = nf_leech(li, &f, dest, sizeof(dest), addrs, 1, T_TTL_MS);
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
    li = nf_node_in(NULL, 0, 1, 2, NULL, 0);
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
    nf_expect_done(li, idx, &f, dest, 10000);
    nf_check_clean(li, idx, &f);
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
    nf_seeder(NULL, &f, 0, addrs[0], sizeof(addrs[0]));
    a[0] = addrs[0];
    li = nf_node_in(NULL, 0, 1, 2, NULL, 0);
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
        nf_set_sources(li, idx, a, c, 1);
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
    li = nf_node_in(NULL, 0, 1, 4, NULL, 0);
    for (k = 0; k < 3; k++) {
        seeders[k] = nf_seeder(NULL, &f, 0, addrs[k], sizeof(addrs[k]));
    }
    idx = nf_leech(li, &f, dest, sizeof(dest), addrs, 3, T_TTL_MS);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    end = ts_now_ms() + 10000;
    while (atomic_load(&d->chunks_done) < 2 && ts_now_ms() < end) {
        nf_sleep_ms(1);
    }
    nf_node_stop(seeders[2]);
    at = atomic_load(&d->chunks_done);
    fprintf(stderr, "seeder stopped at %u/%u chunks\n", at, f.nchunks);
    nf_expect_done(li, idx, &f, dest, 20000);
    nf_finish(li, idx, &f);
}

static void
test_no_source_then_seeder(void **state)
{
    nf_file_t f;
    char     addrs[1][64], dest[PATH_MAX], sdir[PATH_MAX];
    uint8_t  fp[TS_FP_B];
    int      li, idx;
    uint16_t port = nf_free_port();
    node_dl_sh_t *d;
    int64_t  end;

    nf_make_file(&f, 4ull * TS_CHUNK_B + 3);
    snprintf(addrs[0], sizeof(addrs[0]), "127.0.0.1:%u", port);
    /* the tracker would list the seeder with its identity */
    nf_new_identity(sdir, sizeof(sdir), fp);
    nf_id_add(addrs[0], fp);
    li = nf_node_in(NULL, 0, 1, 2, NULL, 0);
    idx = nf_leech(li, &f, dest, sizeof(dest), addrs, 1, T_TTL_MS);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    end = ts_now_ms() + 5000;
    while (atomic_load(&d->waiting) != 1 && ts_now_ms() < end) {
        nf_sleep_ms(5);
    }
    assert_int_equal(atomic_load(&d->waiting), 1);
    assert_int_equal(atomic_load(&d->state), NODE_DL_ACTIVE);
    nf_seeder(sdir, &f, port, NULL, 0);
    nf_expect_done(li, idx, &f, dest, 15000);
    assert_int_equal(atomic_load(&d->waiting), 0);
    nf_finish(li, idx, &f);
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
    nf_seeder(NULL, &f, 0, addrs[0], sizeof(addrs[0]));
    li = nf_node_in(NULL, 0, 1, 1, NULL, 0);
    idx = nf_dl_add(li, &f, dest, sizeof(dest));
    nf_give_ticket(li, idx, NULL, 60000);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    snprintf(dead, sizeof(dead), "127.0.0.1:%u", nf_free_port());
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
    nf_set_sources(li, idx, a, c, 1);
    nf_expect_done(li, idx, &f, dest, 15000);
    nf_finish(li, idx, &f);
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
        nf_seeder(NULL, &f, 0, addrs[k], sizeof(addrs[k]));
    }
    li = nf_node_in(NULL, 0, 1, 4, NULL, 0);
    /* all four downloaders up before the download starts */
    end = ts_now_ms() + 5000;
    while (t_downloaders(&nf_nodes[li].shm, pids, 16) < 4
           && ts_now_ms() < end)
    {
        nf_sleep_ms(5);
    }
    idx = nf_leech(li, &f, dest, sizeof(dest), addrs, 3, T_TTL_MS);
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
    nf_expect_done(li, idx, &f, dest, 1000);
    nf_check_clean(li, idx, &f);
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
    nf_seeder(NULL, &f, 0, addrs[0], sizeof(addrs[0]));
    li = nf_node_in(NULL, 0, 1, 4, NULL, 0);
    t0 = ts_now_ms();
    idx = nf_leech(li, &f, dest, sizeof(dest), addrs, 1, T_TTL_MS);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    while (atomic_load(&d->chunks_done) < f.nchunks
           && atomic_load(&d->state) == NODE_DL_ACTIVE
           && ts_now_ms() - t0 < 30000)
    {
        nf_sleep_ms(1);
    }
    fprintf(stderr, "all chunks verified and written after %lld ms\n",
            (long long) (ts_now_ms() - t0));
    nf_expect_done(li, idx, &f, dest, 30000);
    t1 = ts_now_ms();
    fprintf(stderr, "256 MiB in %lld ms (%.0f MiB/s incl. final SHA1+fsync)"
            ", %lld ms until finalizing\n", (long long) (t1 - t0),
            256000.0 / (double) (t1 - t0 > 0 ? t1 - t0 : 1),
            (long long) (atomic_load(&d->finished_ms)
                         - atomic_load(&d->started_ms)));
    nf_finish(li, idx, &f);
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
        cmocka_unit_test(test_seeder_stops),
        cmocka_unit_test(test_no_source_then_seeder),
        cmocka_unit_test(test_link_table_churn),
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
