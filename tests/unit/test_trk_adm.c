/*
 * test_trk_adm.c -- cmocka tests of a tracker worker's admission: the
 * input budget (trk_win_*), the eviction of idle connections not logged
 * in at the pool caps and the per-user connection cap (trk_wadm_*), the
 * user buckets and the session lookup by node fingerprint in shm.
 *
 * The worker state (trk_wk) is set up by hand around a private
 * /tessera-trk-<port> segment: connections are calloc'ed stand-ins with
 * no socket (closing one only unlinks and counts it), the event loop is
 * real but never run.  No threads; nothing sleeps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ts_clock.h"
#include "trk_shm.h"
#include "trk_wconn.h"

typedef struct {
    trk_config_t  cfg;
    char          name[64];
    trk_wconn_t  *made[64];
    int           nmade;
} fx_t;


static int
setup(void **state)
{
    fx_t     *fx = calloc(1, sizeof(*fx));
    uint16_t  port;
    int       i, ok = 0;

    assert_non_null(fx);
    for (i = 0; i < 20 && !ok; i++) {
        port = (uint16_t) (53000 + (getpid() + i * 97) % 4000);
        ok = trk_shm_create(&fx->cfg.shm, port) == 0;
    }
    assert_true(ok);
    trk_shm_name(fx->name, sizeof(fx->name), port);
    fx->cfg.workers = 2;
    fx->cfg.conns_max = 1000;
    fx->cfg.conns_addr = 1000;
    fx->cfg.unauth_max = 8;         /* share 4 per worker */
    fx->cfg.unauth_addr = 4;        /* share 2 per worker */
    fx->cfg.conns_user = 3;
    fx->cfg.worker_in_max = 10u << 20;
    fx->cfg.conn_in_max = TS_FRAME_MAX_B + TS_FRAME_HDR_B;
    fx->cfg.session_timeout_ms = 15000;
    memset(&trk_wk, 0, sizeof(trk_wk));
    trk_wk.cfg = &fx->cfg;
    trk_wk.env.shm = &fx->cfg.shm;
    trk_wk.env.session_timeout_ms = fx->cfg.session_timeout_ms;
    trk_wk.my_counts = &fx->cfg.shm.conns[0];
    trk_wk.ev = ts_ev_new();
    assert_non_null(trk_wk.ev);
    *state = fx;
    return 0;
}


static int
teardown(void **state)
{
    fx_t *fx = *state;
    int   i;

    for (i = 0; i < fx->nmade; i++) {
        if (!fx->made[i]->dead) {
            trk_wconn_close(fx->made[i], NULL);
        }
    }
    trk_wconn_free_dead();
    ts_ev_free(trk_wk.ev);
    ts_shm_detach(&fx->cfg.shm.shm);
    ts_shm_unlink(fx->name);
    free(fx);
    return 0;
}


/* A stand-in connection from ip, counted as accept_one() counts it. */
static trk_wconn_t *
conn(fx_t *fx, const char *ip)
{
    trk_wconn_t *c = calloc(1, sizeof(*c));
    uint32_t     i;

    assert_non_null(c);
    for (i = 0; trk_wk.conns[i] != NULL; i++) {
        /* a free index */
    }
    c->idx = i;
    c->fd = -1;
    c->ready = 1;
    c->acc_ms = ts_now_ms();
    c->bucket = trk_addr_bucket(trk_wk.env.shm, ip);
    snprintf(c->peer, sizeof(c->peer), "%s:1", ip);
    snprintf(c->link.addr, sizeof(c->link.addr), "%s", ip);
    trk_wk.conns[i] = c;
    trk_wk.nconns++;
    atomic_fetch_add(&trk_wk.my_counts->total, 1);
    atomic_fetch_add(&trk_wk.my_counts->addr[c->bucket], 1);
    trk_wadm_unauth_add(c);
    fx->made[fx->nmade++] = c;
    return c;
}


/* ---- input budget ------------------------------------------------------ */

static void
test_budget_all_or_nothing_fifo(void **state)
{
    fx_t        *fx = *state;
    trk_wconn_t *a = conn(fx, "10.0.0.1"), *b = conn(fx, "10.0.0.2");
    trk_wconn_t *d = conn(fx, "10.0.0.3");
    size_t       big = 4u << 20;

    /* small frames need nothing; a read takes at most 16 KiB then */
    assert_int_equal(trk_win_reserve(a, 1000), 1);
    assert_int_equal(trk_win_room(a), TS_TRK_IN_FREE_B);
    assert_int_equal(trk_wk.in_total, 0);
    /* two 4 MiB frames fit in 10 MiB, the third waits, unread */
    assert_int_equal(trk_win_reserve(a, big), 1);
    assert_int_equal(trk_win_room(a), big);
    assert_int_equal(trk_win_reserve(b, big), 1);
    assert_int_equal(trk_win_reserve(d, big), 0);
    assert_true(d->in_wait);
    assert_int_equal(trk_win_room(d), 0);
    assert_int_equal(trk_wk.in_total, 2 * big);
    /* b's frame is consumed: the waiting one gets the room */
    trk_win_release(b);
    assert_false(d->in_wait);
    assert_int_equal(d->in_resv, big);
    assert_true(d->io.again);           /* it will be read again */
    assert_int_equal(trk_wk.in_total, 2 * big);
    /* closing a connection gives its reservation back */
    trk_wconn_close(a, NULL);
    trk_wconn_close(d, NULL);
    assert_int_equal(trk_wk.in_total, 0);
    assert_null(trk_wk.lists[TRK_WL_WAIT].head);
    /* a frame over --conn-in-max closes its connection */
    fx->cfg.conn_in_max = 1u << 20;
    assert_int_equal(trk_win_reserve(b, (1u << 20) + 1), -1);
    assert_true(b->dead);
}


static void
test_budget_serves_least_loaded_user(void **state)
{
    fx_t        *fx = *state;
    trk_wconn_t *m[4], *h;
    size_t       big = 4u << 20;
    int          i;

    fx->cfg.conns_user = 0;             /* counted, not capped */
    for (i = 0; i < 4; i++) {
        m[i] = conn(fx, "10.0.0.1");
        trk_wconn_authed(m[i]);
        assert_int_equal(trk_wadm_user(m[i], "mallory"), 0);
    }
    h = conn(fx, "10.0.0.2");
    trk_wconn_authed(h);
    assert_int_equal(trk_wadm_user(h, "honest"), 0);
    /* mallory holds the room and queues two more; honest comes last */
    assert_int_equal(trk_win_reserve(m[0], big), 1);
    assert_int_equal(trk_win_reserve(m[1], big), 1);
    assert_int_equal(trk_win_reserve(m[2], big), 0);
    assert_int_equal(trk_win_reserve(m[3], big), 0);
    assert_int_equal(trk_win_reserve(h, big), 0);
    /* room for one: honest (one frame) before mallory (four) */
    trk_win_release(m[0]);
    assert_int_equal(h->in_resv, big);
    assert_true(m[2]->in_wait && m[3]->in_wait);
    /* then mallory's, oldest first */
    trk_win_release(h);
    assert_int_equal(m[2]->in_resv, big);
    assert_true(m[3]->in_wait);
}


/* ---- pool caps and eviction ---------------------------------------- */

static void
test_pool_evicts_oldest_of_biggest_holder(void **state)
{
    fx_t        *fx = *state;
    trk_wconn_t *honest, *j1, *j2, *j3;
    uint32_t     jb = trk_addr_bucket(trk_wk.env.shm, "10.9.9.9");

    honest = conn(fx, "10.0.0.7");
    j1 = conn(fx, "10.9.9.9");
    j2 = conn(fx, "10.9.9.9");
    /* the other worker holds as many: the address is at its cap (4) and
     * this worker at its share (2), so its own oldest makes room */
    atomic_fetch_add(&trk_wk.env.shm->conns[1].addr_unauth[jb], 2);
    assert_null(trk_wadm_admit(jb));
    assert_true(j1->dead);
    assert_false(j2->dead);
    j3 = conn(fx, "10.9.9.9");
    (void) conn(fx, "10.8.8.8");
    atomic_fetch_add(&trk_wk.env.shm->conns[1].unauth, 4);
    /* the pool (8) and this worker's share of it (4) are full: the
     * oldest link of the address holding the most goes, not the honest
     * (older) one */
    assert_null(trk_wadm_admit(trk_addr_bucket(trk_wk.env.shm,
                                               "10.5.5.5")));
    assert_true(j2->dead);
    assert_false(honest->dead);
    assert_false(j3->dead);
    /* a password check in progress is never closed; when nothing else
     * may go the new link is refused */
    honest->job_pending = 1;
    j3->job_pending = 1;
    fx->made[fx->nmade - 1]->job_pending = 1;
    (void) conn(fx, "10.6.6.6");
    fx->made[fx->nmade - 1]->job_pending = 1;
    assert_non_null(trk_wadm_admit(trk_addr_bucket(trk_wk.env.shm,
                                                   "10.5.5.5")));
    /* a worker under its share admits although the pool is full
     * tracker-wide (the others hold it) */
    trk_wk.my_counts = &trk_wk.env.shm->conns[2];
    assert_null(trk_wadm_admit(trk_addr_bucket(trk_wk.env.shm,
                                               "10.5.5.5")));
    trk_wk.my_counts = &trk_wk.env.shm->conns[0];
}


static void
test_live_session_link_is_kept(void **state)
{
    fx_t        *fx = *state;
    trk_wconn_t *node, *junk;
    uint8_t      h[32];
    uint32_t     jb = trk_addr_bucket(trk_wk.env.shm, "10.9.9.9");

    memset(h, 7, sizeof(h));
    node = conn(fx, "10.9.9.9");
    node->link.has_fp = 1;
    memset(node->link.fp, 0x5a, TS_FP_B);
    assert_int_equal(trk_sess_insert(trk_wk.env.shm, h, "nodeuser",
                                     node->link.fp, ts_now_ms()), 0);
    junk = conn(fx, "10.9.9.9");
    atomic_fetch_add(&trk_wk.env.shm->conns[1].addr_unauth[jb], 2);
    /* the oldest is a logged-in node's new link: it leaves the pool,
     * counted under its user, and the junk goes */
    assert_null(trk_wadm_admit(jb));
    assert_false(node->dead);
    assert_false(node->unauth);
    assert_true(node->promoted);
    assert_true(node->has_user);
    assert_string_equal(node->user, "nodeuser");
    assert_false(junk->dead);          /* a place was freed already */
    assert_int_equal(trk_sess_fp_live(trk_wk.env.shm, node->link.fp,
                                      ts_now_ms(), 15000, node->user,
                                      sizeof(node->user)), 1);
    memset(h, 0x33, sizeof(h));
    assert_int_equal(trk_sess_fp_live(trk_wk.env.shm, h, ts_now_ms(),
                                      15000, node->user,
                                      sizeof(node->user)), 0);
}


/* ---- per-user cap -------------------------------------------------- */

static void
test_user_cap_tracker_wide(void **state)
{
    fx_t        *fx = *state;
    trk_wconn_t *c[4];
    uint32_t     ub = trk_user_bucket(trk_wk.env.shm, "mallory");
    int          i;

    assert_true(ub < TS_TRK_USER_SLOTS_N);
    assert_int_equal(trk_user_bucket(trk_wk.env.shm, "mallory"), ub);
    for (i = 0; i < 4; i++) {
        c[i] = conn(fx, "10.0.0.1");
        trk_wconn_authed(c[i]);
    }
    /* another worker already has one of mallory's links */
    atomic_fetch_add(&trk_wk.env.shm->conns[1].user[ub], 1);
    assert_int_equal(trk_wadm_user(c[0], "mallory"), 0);
    assert_int_equal(trk_wadm_user(c[0], "mallory"), 0);    /* same */
    assert_int_equal(trk_wadm_user(c[1], "mallory"), 0);
    assert_int_equal(trk_wadm_user(c[2], "mallory"), -1);   /* 4th */
    assert_int_equal(trk_conns_user(trk_wk.env.shm, ub), 3);
    /* a link that shows another user's token moves to that user */
    assert_int_equal(trk_wadm_user(c[1], "alice"), 0);
    assert_int_equal(trk_conns_user(trk_wk.env.shm, ub), 2);
    assert_int_equal(trk_wadm_user(c[3], "mallory"), 0);
    trk_wconn_close(c[3], NULL);
    assert_int_equal(trk_conns_user(trk_wk.env.shm, ub), 2);
    /* a dead worker's slot is reset with its counts */
    trk_conns_reset(trk_wk.env.shm, 1);
    assert_int_equal(trk_conns_user(trk_wk.env.shm, ub), 1);
    fx->cfg.conns_user = 0;             /* no cap */
    assert_int_equal(trk_wadm_user(c[2], "mallory"), 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_budget_all_or_nothing_fifo,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_budget_serves_least_loaded_user, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_pool_evicts_oldest_of_biggest_holder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_session_link_is_kept,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_cap_tracker_wide, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
