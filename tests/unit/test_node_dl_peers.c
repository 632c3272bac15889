/*
 * test_node_dl_peers.c -- the downloader workers against peers that are
 * not what they should be, with real nodes on 127.0.0.1.
 *
 * Purpose: a lying peer (a small server thread in this test answering
 * PEER_GET with wrong bytes) is caught by the chunk SHA1 and dropped; a
 * source that presents another certificate than the one the tracker
 * listed is refused; a ticket the peers refuse stops nothing but that
 * download until a good one comes.  The plain downloads are in
 * test_node_dl.c; the fixture (nodes, identities, tickets, files) is
 * node_fixture.h.
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

#define T_TTL_MS 60000             /* the tickets' lifetime, ms */

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
    nf_id_add(addr, t_liar_fp);
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
            if (ts_rbuf_left(&r) == 8) {
                /* a ranged GET (offset, length): that many wrong bytes */
                (void) ts_get_u32(&r);
                len = ts_get_u32(&r);
                len = len <= TS_CHUNK_B ? len : TS_CHUNK_B;
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

/* The liar serves f at a free port of 127.0.0.1 (its address to addr,
 * its identity known there), in threads of this process: started after
 * every fork of the test's nodes. */
static pthread_t
t_liar_start(const nf_file_t *f, char *addr, size_t addrsz)
{
    uint16_t  port = nf_free_port();
    pthread_t th;
    int       lfd;

    t_liar_nchunks = f->nchunks;
    t_liar_size = f->size;
    lfd = ts_net_listen("127.0.0.1", port, 16);
    assert_true(lfd >= 0);
    snprintf(addr, addrsz, "127.0.0.1:%u", port);
    t_liar_identity(addr);
    atomic_store(&t_liar_stop, 0);
    assert_int_equal(pthread_create(&th, NULL, t_liar_accept,
                                    (void *) (intptr_t) lfd), 0);
    return th;
}

/* The end of a test with the liar: the download's checks, then the
 * liar stopped (joined) before the nodes. */
static void
t_liar_finish(pthread_t th, int li, int idx, nf_file_t *f)
{
    nf_check_clean(li, idx, f);
    atomic_store(&t_liar_stop, 1);
    pthread_join(th, NULL);
    nf_stop_all();
    free(f->hashes);
}

/* ---- tests ----------------------------------------------------------- */

static void
test_corrupt_peer(void **state)
{
    nf_file_t  f;
    char      addrs[2][64], dest[PATH_MAX];
    int       gi, li, idx, s;
    pthread_t th;
    node_dl_sh_t *d;

    nf_make_file(&f, 6ull * TS_CHUNK_B + 777);
    gi = nf_seeder(NULL, &f, 0, addrs[0], sizeof(addrs[0]));
    /* the good seeder at 4 MiB/s takes ~0.75 s: the liar's link is up
     * and its garbage read and hashed before the download can end
     * without it (a machine under load makes its handshake late) */
    assert_int_equal(node_rate_set(&nf_nodes[gi].shm, 4 * 1024 * 1024, -1),
                     0);
    li = nf_node_in(NULL, 0, 1, 2, NULL, 0);
    th = t_liar_start(&f, addrs[1], sizeof(addrs[1]));
    idx = nf_leech(li, &f, dest, sizeof(dest), addrs, 2, T_TTL_MS);
    nf_expect_done(li, idx, &f, dest, 20000);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    s = nf_src_index(d, addrs[1]);
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
    t_liar_finish(th, li, idx, &f);
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
    int       li, idx, s;
    pthread_t th;
    node_dl_sh_t *d;
    int64_t   end;

    nf_make_file(&f, 8ull * TS_CHUNK_B);
    nf_seeder(NULL, &f, 0, addrs[1], sizeof(addrs[1]));
    li = nf_node_in(NULL, 0, 1, 2, NULL, 0);
    th = t_liar_start(&f, addrs[0], sizeof(addrs[0]));
    idx = nf_leech(li, &f, dest, sizeof(dest), addrs, 1, T_TTL_MS);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    s = nf_src_index(d, addrs[0]);
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
    nf_set_sources(li, idx, a, c, 2);
    nf_expect_done(li, idx, &f, dest, 20000);
    assert_int_equal(atomic_load(&d->src[s].state), NODE_SRC_DROPPED);
    t_liar_finish(th, li, idx, &f);
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
    bi = nf_seeder(NULL, &f, 0, addrs[1], sizeof(addrs[1]));
    nf_new_identity(sdir, sizeof(sdir), fp_a);
    nf_id_add(addrs[1], fp_a);           /* the lie: B's address, A's id */
    li = nf_node_in(NULL, 0, 1, 2, NULL, 0);
    idx = nf_leech(li, &f, dest, sizeof(dest), &addrs[1], 1, T_TTL_MS);
    d = &node_dls(&nf_nodes[li].shm)[idx];
    s = nf_src_index(d, addrs[1]);
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
    ai = nf_seeder(sdir, &f, 0, addrs[0], sizeof(addrs[0]));
    a[0] = addrs[0];
    a[1] = addrs[1];
    nf_set_sources(li, idx, a, c, 2);
    nf_expect_done(li, idx, &f, dest, 15000);
    assert_int_equal(atomic_load(&d->src[s].chunks), 0);
    assert_int_equal(atomic_load(&node_stats(&nf_nodes[bi].shm)->chunks_up),
                     0);
    assert_true(atomic_load(&node_stats(&nf_nodes[ai].shm)->chunks_up) > 0);
    nf_finish(li, idx, &f);
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
    si = nf_seeder(NULL, &f, 0, addrs[0], sizeof(addrs[0]));
    li = nf_node_in(NULL, 0, 1, 2, NULL, 0);
    idx = nf_leech(li, &f, dest, sizeof(dest), addrs, 1, T_TTL_MS);
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
    nf_expect_done(li, idx, &f, dest, 10000);
    assert_int_equal(atomic_load(&d->denied), 0);
    nf_finish(li, idx, &f);
}

static int
t_setup(void **state)
{
    return nf_setup("/tmp/ts_node_dlp.XXXXXX");
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
        cmocka_unit_test(test_corrupt_peer),
        cmocka_unit_test(test_liar_dropped),
        cmocka_unit_test(test_wrong_identity),
        cmocka_unit_test(test_ticket_refused),
    };

    signal(SIGPIPE, SIG_IGN);
    srand((unsigned) getpid());
    if (getenv("T_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("T_FILTER"));
    }
    return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
