/*
 * trk_guard_fixture.h -- the fixture of the tracker's request-level tests
 * (test_trk_guard.c, test_trk_throttle.c): a private tracker shm segment
 * /tessera-trk-<port> (a port no live tracker owns; unlinked at the end),
 * a store in a new temp dir, an environment as a worker sets it up, a
 * node link on 127.0.0.1 with a certificate, and helpers that send
 * requests through trk_ops_handle().  KDF jobs run in line with 1
 * iteration.  Header-only, every helper static inline.
 *
 * Locking: single-threaded.  Crash behaviour: a crashed test leaves its
 * temp dir under /tmp and maybe its segment under
 * /dev/shm/tessera-trk-57xxx..60xxx.
 */
#ifndef TRK_GUARD_FIXTURE_H_INCLUDED
#define TRK_GUARD_FIXTURE_H_INCLUDED

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ts_buf.h"
#include "ts_crypto.h"
#include "ts_net.h"
#include "ts_tls.h"
#include "trk_files.h"
#include "trk_merge.h"
#include "trk_oplog.h"
#include "trk_ops.h"
#include "trk_shm.h"
#include "trk_store.h"
#include "trk_sync.h"

#define STRIPE_N  (TS_SESSIONS_SHM_N / TS_TRK_SESS_STRIPES_N)

typedef struct {
    trk_shm_t    shm;
    char         shm_name[64];
    char         dir[64];
    char         path[128];
    trk_store_t *st;
    trk_env_t    env;
    trk_link_t   link;
    uint64_t     reqid;
} gx_t;


static inline int
gx_setup(void **state)
{
    gx_t     *g = calloc(1, sizeof(*g));
    char      err[256];
    uint16_t  port = 0;
    int       i, ok = 0;

    assert_non_null(g);
    for (i = 0; i < 20 && !ok; i++) {
        port = (uint16_t) (57000 + (getpid() * 7 + i * 89) % 4000);
        ok = trk_shm_create(&g->shm, port) == 0;
    }
    assert_true(ok);
    trk_shm_name(g->shm_name, sizeof(g->shm_name), port);
    atomic_store(&g->shm.stats->leader, 1);
    atomic_store(&g->shm.stats->ntrackers, 2);
    snprintf(g->dir, sizeof(g->dir), "/tmp/test_trk_guard.XXXXXX");
    assert_non_null(mkdtemp(g->dir));
    snprintf(g->path, sizeof(g->path), "%s/tracker.tdb", g->dir);
    g->st = trk_store_open(g->path, 1, 1, err, sizeof(err));
    assert_non_null(g->st);
    assert_true(trk_epoch_get(g->st, 1) != 0);
    trk_store_set_origin(g->st, 1, (void *) &g->shm.stats->hlc,
                         (void *) &g->shm.stats->op_wake);
    trk_ops_init();
    g->env.tracker_id = 1;
    g->env.st = g->st;
    g->env.shm = &g->shm;
    g->env.kdf_iterations = 1;
    g->env.session_timeout_ms = 5000;
    g->env.workers_n = 1;
    g->env.me = ts_owner_make(getpid(), 1);
    trk_ops_thr_defaults(&g->env.thr_user, &g->env.thr_addr);
    trk_ops_kdf_defaults(&g->env.thr_kdf, &g->env.thr_create);
    /* a node on 127.0.0.1 with a certificate */
    snprintf(g->link.addr, sizeof(g->link.addr), "127.0.0.1");
    memset(g->link.fp, 0xc1, TS_FP_B);
    g->link.has_fp = 1;
    g->env.link = &g->link;
    g->reqid = 0x7000;
    *state = g;
    return 0;
}


static inline int
gx_teardown(void **state)
{
    gx_t *g = *state;
    char  cmd[128];

    trk_store_close(g->st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g->dir);
    assert_int_equal(system(cmd), 0);
    ts_shm_detach(&g->shm.shm);
    ts_shm_unlink(g->shm_name);
    free(g);
    return 0;
}


/* The status and message of a reply payload; body (may be NULL) is left
 * at the reply's body. */
static inline ts_status_t
reply_of(const ts_wbuf_t *out, char *msg, size_t msgsz, ts_rbuf_t *body)
{
    ts_rbuf_t   r;
    ts_status_t st;
    char        m[TS_STR_MAX_B + 1];

    ts_rbuf_init(&r, out->data, out->len);
    assert_int_equal(ts_reply_parse(&r, &st, m, sizeof(m)), 0);
    if (msg != NULL && msgsz > 0) {
        size_t n = strlen(m) < msgsz - 1 ? strlen(m) : msgsz - 1;

        memcpy(msg, m, n);
        msg[n] = '\0';
    }
    if (body != NULL) {
        *body = r;
    }
    return st;
}


/* One request with the given id, its KDF job (if any) run in line. */
static inline ts_status_t
req_id(gx_t *g, uint8_t type, uint64_t reqid, const ts_wbuf_t *pl,
       ts_wbuf_t *out, char *msg, size_t msgsz)
{
    trk_kdf_job_t *job = NULL;
    trk_do_t       d;

    ts_wbuf_reset(out);
    d = trk_ops_handle(&g->env, type, reqid, pl->data, (uint32_t) pl->len,
                       out, &job);
    if (d == TRK_DO_DEFER) {
        trk_kdf_run(job);
        trk_ops_finish(&g->env, job, 1, out);
        trk_kdf_job_free(job);
    } else {
        assert_int_equal(d, TRK_DO_REPLY);
    }
    assert_false(trk_store_in_txn(g->st));
    return reply_of(out, msg, msgsz, NULL);
}


static inline ts_status_t
req(gx_t *g, uint8_t type, const ts_wbuf_t *pl, ts_wbuf_t *out, char *msg,
    size_t msgsz)
{
    return req_id(g, type, ++g->reqid, pl, out, msg, msgsz);
}


static inline void
strs(ts_wbuf_t *pl, const char *a, const char *b, const char *c)
{
    ts_wbuf_reset(pl);
    if (a != NULL) {
        ts_put_str(pl, a);
    }
    if (b != NULL) {
        ts_put_str(pl, b);
    }
    if (c != NULL) {
        ts_put_str(pl, c);
    }
}


static inline void
create_user(gx_t *g, const char *user)
{
    ts_wbuf_t pl, out;
    char      m[256];

    ts_wbuf_init(&pl);
    ts_wbuf_init(&out);
    strs(&pl, user, "pw", NULL);
    assert_int_equal(req(g, TS_MSG_CREATE_USER, &pl, &out, m, sizeof(m)),
                     TS_OK);
    ts_wbuf_free(&pl);
    ts_wbuf_free(&out);
}


/* LOGIN of user (password pw) from node; the status, tok filled on OK. */
static inline ts_status_t
login(gx_t *g, const char *user, const char *pw, const char *node,
      uint8_t tok[TS_TOKEN_B], char *msg, size_t msgsz)
{
    ts_wbuf_t   pl, out;
    ts_rbuf_t   body;
    ts_status_t st;

    ts_wbuf_init(&pl);
    ts_wbuf_init(&out);
    strs(&pl, user, pw, node);
    st = req(g, TS_MSG_LOGIN, &pl, &out, msg, msgsz);
    if (st == TS_OK && tok != NULL) {
        (void) reply_of(&out, NULL, 0, &body);
        assert_int_equal(ts_get_raw(&body, tok, TS_TOKEN_B), 0);
    }
    ts_wbuf_free(&pl);
    ts_wbuf_free(&out);
    return st;
}


/* LIST_GROUPS with token tok: the status. */
static inline ts_status_t
list_groups(gx_t *g, const uint8_t tok[TS_TOKEN_B], char *msg, size_t msgsz)
{
    ts_wbuf_t   pl, out;
    ts_status_t st;

    ts_wbuf_init(&pl);
    ts_wbuf_init(&out);
    ts_put_raw(&pl, tok, TS_TOKEN_B);
    st = req(g, TS_MSG_LIST_GROUPS, &pl, &out, msg, msgsz);
    ts_wbuf_free(&pl);
    ts_wbuf_free(&out);
    return st;
}


/* ---- LOGIN: certificate, node address, old sessions ------------------ */



/* A LOGIN or CREATE_USER up to its KDF job, which is returned (or NULL:
 * answered at once, *st set). */
static inline trk_kdf_job_t *
start(gx_t *g, uint8_t type, const char *user, const char *pw,
      const char *node, ts_status_t *st, char *m, size_t msz)
{
    trk_kdf_job_t *job = NULL;
    ts_wbuf_t      pl, out;
    trk_do_t       d;

    ts_wbuf_init(&pl);
    ts_wbuf_init(&out);
    strs(&pl, user, pw, node);
    d = trk_ops_handle(&g->env, type, ++g->reqid, pl.data,
                       (uint32_t) pl.len, &out, &job);
    *st = TS_OK;
    if (d != TRK_DO_DEFER) {
        assert_int_equal(d, TRK_DO_REPLY);
        *st = reply_of(&out, m, msz, NULL);
        job = NULL;
    }
    ts_wbuf_free(&pl);
    ts_wbuf_free(&out);
    return job;
}


static inline ts_status_t
finish(gx_t *g, trk_kdf_job_t *job)
{
    ts_wbuf_t   out;
    ts_status_t st;

    ts_wbuf_init(&out);
    trk_kdf_run(job);
    trk_ops_finish(&g->env, job, 1, &out);
    trk_kdf_job_free(job);
    st = reply_of(&out, NULL, 0, NULL);
    ts_wbuf_free(&out);
    return st;
}



#endif
