/*
 * test_node_shm.c -- the node segment: publish + lookup of shares and
 * downloads, seqlock consistency under a concurrent writer process, and
 * node_reclaim (only the dead owner's claims, counts and finalize go).
 *
 * Locking: exercises the seqlock and the lock-free claims of node_shm.h.
 * Crash behaviour: each test unlinks its own segment; the writer child is
 * stopped by pid with a bounded wait.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "ts_claim.h"
#include "ts_shm.h"
#include "node_shm.h"
#include "node.h"

static ts_shm_t  seg;

static int
setup(void **state)
{
    char name[64];

    snprintf(name, sizeof(name), "/tessera-test-node-%d", (int) getpid());
    assert_int_equal(ts_shm_create(&seg, name, NODE_SHM_LAYOUT,
                                   node_shm_specs, node_shm_nspecs), 0);
    return 0;
}

static int
teardown(void **state)
{
    ts_shm_unlink(seg.name);
    ts_shm_detach(&seg);
    return 0;
}

/* The peer table: one entry per (direction, addr, fp), counters that
 * add up, and the "other" entry of a direction once the table is full,
 * so nothing is ever lost from the totals. */
static void
test_peer_table(void **state)
{
    node_peer_sh_t *pt = node_peers(&seg);
    uint8_t         fp[TS_FP_B];
    uint64_t        up = 0, down = 0, chunks = 0;
    char            addr[64];
    int             i, used = 0;

    assert_non_null(pt);
    memset(fp, 7, sizeof(fp));
    node_peer_count(&seg, NODE_DIR_UP, "10.0.0.1", fp, 1, 100);
    node_peer_count(&seg, NODE_DIR_UP, "10.0.0.1", fp, 1, 50);
    node_peer_count(&seg, NODE_DIR_DOWN, "10.0.0.1", fp, 1, 7);
    node_peer_count(&seg, NODE_DIR_UP, "10.0.0.1", NULL, 1, 1);
    /* a block: its bytes, no chunk */
    node_peer_count(&seg, NODE_DIR_DOWN, "10.0.0.1", fp, 0, 3);
    assert_int_equal(atomic_load(&pt[2].bytes), 150);
    assert_int_equal(atomic_load(&pt[2].chunks), 2);
    assert_int_equal(pt[3].dir, NODE_DIR_DOWN);
    assert_int_equal(atomic_load(&pt[3].bytes), 10);
    assert_int_equal(atomic_load(&pt[3].chunks), 1);
    assert_int_equal(atomic_load(&pt[4].bytes), 1);    /* another fp */
    /* fill it: the rest goes to "other" (entry 0 up, 1 down) */
    for (i = 0; i < 2 * TS_NODE_PEER_STATS_N; i++) {
        snprintf(addr, sizeof(addr), "10.1.%d.%d:6000", i / 256, i % 256);
        node_peer_count(&seg, i % 2 ? NODE_DIR_DOWN : NODE_DIR_UP, addr,
                        NULL, 1, 1000);
    }
    assert_true(atomic_load(&pt[NODE_DIR_UP].chunks) > 0);
    assert_true(atomic_load(&pt[NODE_DIR_DOWN].chunks) > 0);
    for (i = 0; i < TS_NODE_PEER_STATS_N; i++) {
        if (i >= 2) {
            assert_int_equal(atomic_load(&pt[i].state), NODE_PEER_USED);
            used++;
        }
        if (i == NODE_DIR_UP || (i >= 2 && pt[i].dir == NODE_DIR_UP)) {
            up += atomic_load(&pt[i].bytes);
        } else {
            down += atomic_load(&pt[i].bytes);
        }
        chunks += atomic_load(&pt[i].chunks);
    }
    assert_int_equal(used, TS_NODE_PEER_STATS_N - 2);
    assert_int_equal(up, 151 + TS_NODE_PEER_STATS_N * 1000ull);
    assert_int_equal(down, 10 + TS_NODE_PEER_STATS_N * 1000ull);
    assert_int_equal(chunks, 4 + 2ull * TS_NODE_PEER_STATS_N);
}


static void
test_share_publish(void **state)
{
    node_share_sh_t  snap;
    int              a, b, c;

    a = node_share_add(&seg, "g1", "f.bin", "/tmp/f.bin", 1000, 42, 1);
    b = node_share_add(&seg, "g1", "h.bin", "/tmp/h.bin",
                       TS_CHUNK_B + 1, 43, 2);
    assert_true(a >= 0 && b >= 0 && a != b);
    /* wrong chunk count is refused */
    assert_int_equal(node_share_add(&seg, "g1", "x", "/x", 10, 0, 2), -1);
    assert_int_equal(node_share_find(&seg, "g1", "f.bin"), a);
    assert_int_equal(node_share_find(&seg, "g1", "h.bin"), b);
    assert_int_equal(node_share_find(&seg, "g2", "f.bin"), -1);
    assert_int_equal(node_share_snapshot(&seg, b, &snap), 0);
    assert_string_equal(snap.path, "/tmp/h.bin");
    assert_int_equal(snap.size, TS_CHUNK_B + 1);
    assert_int_equal(snap.nchunks, 2);
    assert_int_equal(atomic_load(&snap.state), NODE_SHARE_READY);
    /* same name again replaces, same index */
    c = node_share_add(&seg, "g1", "f.bin", "/tmp/f2.bin", 5, 44, 1);
    assert_int_equal(c, a);
    assert_int_equal(node_share_snapshot(&seg, a, &snap), 0);
    assert_string_equal(snap.path, "/tmp/f2.bin");
    node_share_remove(&seg, a);
    assert_int_equal(node_share_find(&seg, "g1", "f.bin"), -1);
    assert_int_equal(node_share_snapshot(&seg, a, &snap), -1);
}

static void
test_dl_publish(void **state)
{
    uint8_t           hashes[3 * 20], sha[20], done[1] = { 0x5 }, maybe[1] = { 0x2 };
    node_dl_sh_t      snap;
    node_dl_sh_t     *d;
    const char       *a1[] = { "127.0.0.1:1", "127.0.0.1:2" };
    const char       *a2[] = { "127.0.0.1:2", "127.0.0.1:3" };
    const char       *a3[] = { "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3" };
    int               cpl[] = { 1, 0, 1 };
    uint64_t          size = 2ull * TS_CHUNK_B + 7;
    int               i;

    memset(hashes, 0xab, sizeof(hashes));
    memset(sha, 0xcd, sizeof(sha));
    i = node_dl_add(&seg, "g", "big", "/tmp/big", "/tmp/big.part", NULL, size, 3,
                    sha, hashes, done, maybe);
    assert_true(i >= 0);
    d = &node_dls(&seg)[i];
    assert_int_equal(node_dl_snapshot(&seg, i, &snap), 0);
    assert_string_equal(snap.part, "/tmp/big.part");
    assert_int_equal(snap.nchunks, 3);
    assert_memory_equal(node_dl_hashes(&seg, i), hashes, sizeof(hashes));
    assert_true(node_bit_test(node_dl_done(&seg, i), 0));
    assert_false(node_bit_test(node_dl_done(&seg, i), 1));
    assert_true(node_bit_test(node_dl_done(&seg, i), 2));
    assert_true(node_bit_test(node_dl_maybe(&seg, i), 1));
    assert_int_equal(atomic_load(&d->chunks_done), 2);
    assert_int_equal(atomic_load(&d->bytes_done), TS_CHUNK_B + 7);
    assert_int_equal(atomic_load(&d->state), NODE_DL_ACTIVE);

    node_dl_set_sources(&seg, i, a1, cpl, NULL, 2);
    assert_int_equal(atomic_load(&d->src[0].state), NODE_SRC_LIVE);
    assert_int_equal(atomic_load(&d->src[1].state), NODE_SRC_LIVE);
    assert_int_equal(atomic_load(&d->src[0].complete), 1);
    atomic_store(&d->src[1].chunks, 9);
    node_dl_set_sources(&seg, i, a2, cpl, NULL, 2);
    assert_int_equal(atomic_load(&d->src[0].state), NODE_SRC_GONE);
    assert_int_equal(atomic_load(&d->src[1].chunks), 9);   /* kept stats */
    assert_string_equal(d->src[2].addr, "127.0.0.1:3");
    atomic_store(&d->src[2].state, NODE_SRC_DROPPED);
    node_dl_set_sources(&seg, i, a3, cpl, NULL, 3);
    assert_int_equal(atomic_load(&d->src[0].state), NODE_SRC_LIVE);
    assert_int_equal(atomic_load(&d->src[2].state), NODE_SRC_DROPPED);

    /* a source is (address, identity): another fingerprint at a known
     * address is another source, and the old one goes */
    {
        uint8_t   fps[3 * TS_FP_B], tk[TS_TICKET_MAX_B];
        uint32_t  len, gen;
        int       s, found = -1;

        memset(fps, 0, sizeof(fps));
        memset(fps + 2 * TS_FP_B, 0x77, TS_FP_B);
        node_dl_set_sources(&seg, i, a3, cpl, fps, 3);
        assert_int_equal(atomic_load(&d->src[0].state), NODE_SRC_LIVE);
        /* (the dropped old one stays dropped) */
        assert_int_equal(atomic_load(&d->src[2].state), NODE_SRC_DROPPED);
        for (s = 0; s < TS_NODE_SOURCES_N; s++) {
            if (s != 2 && atomic_load(&d->src[s].state) == NODE_SRC_LIVE
                && strcmp(d->src[s].addr, "127.0.0.1:3") == 0)
            {
                found = s;
            }
        }
        assert_true(found >= 0);
        assert_memory_equal(d->src[found].fp, fps + 2 * TS_FP_B, TS_FP_B);

        /* tickets: generation 0 = none; each set bumps it */
        assert_int_equal(node_dl_ticket(&seg, i, tk, sizeof(tk), &len, &gen),
                         0);
        assert_int_equal(gen, 0);
        assert_int_equal(len, 0);
        atomic_store(&d->denied, 1);
        assert_int_equal(node_dl_set_ticket(&seg, i, "TKT1abc", 7, 1234), 0);
        assert_int_equal(node_dl_ticket(&seg, i, tk, sizeof(tk), &len, &gen),
                         0);
        assert_int_equal(gen, 1);
        assert_int_equal(len, 7);
        assert_memory_equal(tk, "TKT1abc", 7);
        assert_int_equal(atomic_load(&d->denied), 0);
        assert_int_equal(atomic_load(&d->ticket_expires_ms), 1234);
        assert_int_equal(node_dl_set_ticket(&seg, i, "x", 1, 5), 0);
        assert_int_equal(node_dl_ticket(&seg, i, tk, sizeof(tk), &len, &gen),
                         0);
        assert_int_equal(gen, 2);
        assert_int_equal(node_dl_set_ticket(&seg, i, tk,
                                            TS_TICKET_MAX_B + 1, 5), -1);
    }

    node_dl_remove(&seg, i);
    assert_int_equal(node_dl_snapshot(&seg, i, &snap), -1);
}

/* a writer process flips one share between two self-consistent contents */
static void
test_seqlock(void **state)
{
    node_share_sh_t  snap;
    pid_t            pid;
    int              idx, i, st, bad = 0, a = 0, b = 0;
    char             pa[PATH_MAX], pb[PATH_MAX];

    memset(pa, 'a', 3000);
    pa[0] = '/';
    pa[3000] = '\0';
    memset(pb, 'b', 200);
    pb[0] = '/';
    pb[200] = '\0';
    idx = node_share_add(&seg, "ga", "aaaa", pa, 1, 1, 1);
    assert_true(idx >= 0);

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (i = 0; i < 2000000; i++) {
            if (i & 1) {
                node_share_add(&seg, "ga", "aaaa", pa, 1, 1, 1);
            } else {
                /* rewrite entry idx in place with the other content */
                node_share_sh_t *e = &node_shares(&seg)[idx];

                atomic_fetch_add(&e->seq, 1);
                atomic_thread_fence(memory_order_release);
                snprintf(e->group, sizeof(e->group), "gb");
                snprintf(e->name, sizeof(e->name), "bbbbbbbbbbbb");
                snprintf(e->path, sizeof(e->path), "%s", pb);
                e->size = 2;
                e->mtime_ns = 2;
                atomic_fetch_add(&e->seq, 1);
            }
        }
        _exit(0);
    }

    for (i = 0; i < 200000; i++) {
        if (node_share_snapshot(&seg, idx, &snap) != 0) {
            continue;
        }
        if (snap.size == 1) {
            a++;
            bad += strcmp(snap.group, "ga") != 0
                   || strcmp(snap.name, "aaaa") != 0
                   || strcmp(snap.path, pa) != 0 || snap.mtime_ns != 1;
        } else {
            b++;
            bad += strcmp(snap.group, "gb") != 0
                   || strcmp(snap.name, "bbbbbbbbbbbb") != 0
                   || strcmp(snap.path, pb) != 0 || snap.mtime_ns != 2;
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    assert_int_equal(bad, 0);
    assert_true(a + b > 0);
    node_share_remove(&seg, idx);
}

static void
test_reclaim(void **state)
{
    uint8_t            hashes[4 * 20] = { 0 }, sha[20] = { 0 };
    ts_owner_t         dead = ts_owner_make(111111, 3);
    ts_owner_t         live = ts_owner_make(222222, 5);
    ts_owner_t         up = ts_owner_make(333333, 1);
    node_dl_sh_t      *d, *d2;
    node_stats_sh_t   *st = node_stats(&seg);
    ts_slot_sh_t      *slots = node_slots(&seg);
    _Atomic uint64_t  *cl;
    int                i, i2;

    i = node_dl_add(&seg, "g", "r", "/tmp/r", "/tmp/r.part", NULL,
                    4ull * TS_CHUNK_B, 4, sha, hashes, NULL, NULL);
    i2 = node_dl_add(&seg, "g", "r2", "/tmp/r2", "/tmp/r2.part", NULL,
                     4ull * TS_CHUNK_B, 4, sha, hashes, NULL, NULL);
    assert_true(i >= 0 && i2 >= 0);
    d = &node_dls(&seg)[i];
    d2 = &node_dls(&seg)[i2];
    ts_slot_assign(&slots[3], dead, NODE_ROLE_DOWNLOADER);
    ts_slot_assign(&slots[4], live, NODE_ROLE_DOWNLOADER);
    ts_slot_assign(&slots[0], up, NODE_ROLE_UPLOADER);

    cl = node_dl_claims(&seg, i);
    assert_true(ts_claim_try(&cl[0], dead));
    assert_true(ts_claim_try(&cl[1], live));
    assert_true(ts_claim_try(&cl[3], dead));
    assert_true(ts_claim_try(&d->src[0].map_owner, dead));
    assert_true(ts_claim_try(&d->src[1].map_owner, live));
    /* in-flight: dead has 2 to src 0 and 1 to src 1, live has 1 to src 0 */
    atomic_store(&d->src[0].inflight, 3);
    atomic_store(&d->src[1].inflight, 1);
    atomic_store(&node_slot_inflight(&seg, 3, i)[0], 2);
    atomic_store(&node_slot_inflight(&seg, 3, i)[1], 1);
    atomic_store(&node_slot_inflight(&seg, 4, i)[0], 1);
    /* the dead one was finalizing download i2 */
    assert_true(ts_claim_try(&d2->finalize_owner, dead));
    atomic_store(&d2->state, NODE_DL_FINALIZING);
    atomic_store(&st->reclaimed_claims, 0);

    node_reclaim(&seg, dead);

    assert_int_equal(atomic_load(&cl[0]), 0);
    assert_int_equal(atomic_load(&cl[1]), live);
    assert_int_equal(atomic_load(&cl[3]), 0);
    assert_int_equal(atomic_load(&d->src[0].map_owner), 0);
    assert_int_equal(atomic_load(&d->src[1].map_owner), live);
    assert_int_equal(atomic_load(&d->src[0].inflight), 1);
    assert_int_equal(atomic_load(&d->src[1].inflight), 0);
    assert_int_equal(atomic_load(&node_slot_inflight(&seg, 3, i)[0]), 0);
    assert_int_equal(atomic_load(&node_slot_inflight(&seg, 4, i)[0]), 1);
    assert_int_equal(atomic_load(&d2->state), NODE_DL_ACTIVE);
    assert_int_equal(atomic_load(&d2->finalize_owner), 0);
    assert_int_equal(atomic_load(&st->reclaimed_claims), 4);

    /* a live finalizer is left alone */
    assert_true(ts_claim_try(&d2->finalize_owner, live));
    atomic_store(&d2->state, NODE_DL_FINALIZING);
    node_reclaim(&seg, dead);
    assert_int_equal(atomic_load(&d2->state), NODE_DL_FINALIZING);

    /* an uploader's load counts go away with it */
    atomic_store(&st->queued, 5);
    atomic_store(&st->active_uploads, 2);
    atomic_store(&slots[0].counter[0], 3);
    atomic_store(&slots[0].counter[1], 2);
    node_reclaim(&seg, up);
    assert_int_equal(atomic_load(&st->queued), 2);
    assert_int_equal(atomic_load(&st->active_uploads), 0);

    node_dl_remove(&seg, i);
    node_dl_remove(&seg, i2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_peer_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_share_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dl_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seqlock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reclaim, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
