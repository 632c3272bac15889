/*
 * test_trk_guard.c -- cmocka tests of the tracker review's fixes, through
 * trk_ops_handle() on a real store and a real tracker shm segment:
 * LOGIN needs a client certificate and a node address on the link's own
 * IP; sessions without a fingerprint are refused; the reply cache answers
 * only byte-identical retries; login, KDF and create_user attempts are
 * reserved before their KDF job, so parallel ones are limited; the
 * throttle table never flushes a refusing counter and counts IPv6 per
 * /64; one account holds at most TS_TRK_SESSIONS_PER_USER_N sessions;
 * sessions the cache has no place for still expire; a snapshot that
 * deletes a session removes it from the cache at once; STATUS needs a
 * tracker certificate.
 *
 * Each test makes a private /tessera-trk-<port> segment (a port no live
 * tracker owns; unlinked at the end) and a store in a new temp dir.  KDF
 * jobs run in line with 1 iteration.  Locking: single-threaded.  Crash
 * behaviour: a crashed test leaves its temp dir under /tmp and maybe its
 * segment under /dev/shm/tessera-trk-57xxx..60xxx.
 */
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


static int
setup(void **state)
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


static int
teardown(void **state)
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
static ts_status_t
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
static ts_status_t
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


static ts_status_t
req(gx_t *g, uint8_t type, const ts_wbuf_t *pl, ts_wbuf_t *out, char *msg,
    size_t msgsz)
{
    return req_id(g, type, ++g->reqid, pl, out, msg, msgsz);
}


static void
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


static void
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
static ts_status_t
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
static ts_status_t
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

static void
test_login_needs_certificate(void **state)
{
    gx_t    *g = *state;
    uint8_t  tok[TS_TOKEN_B];
    char     m[256];

    if (!ts_tls_enabled()) {
        skip();
    }
    create_user(g, "alice");
    g->link.has_fp = 0;
    memset(g->link.fp, 0, TS_FP_B);
    assert_int_equal(login(g, "alice", "pw", "127.0.0.1:7000", tok, m,
                           sizeof(m)), TS_ERR_AUTH);
    assert_non_null(strstr(m, "client certificate"));
    /* refused before anything was counted or run */
    assert_int_equal(trk_thr_wait_ms(&g->shm, 'u', "alice",
                                     &g->env.thr_user, ts_now_ms()), 0);
    g->link.has_fp = 1;
    memset(g->link.fp, 0xc1, TS_FP_B);
    assert_int_equal(login(g, "alice", "pw", "127.0.0.1:7000", tok, m,
                           sizeof(m)), TS_OK);
    assert_int_equal(list_groups(g, tok, m, sizeof(m)), TS_OK);
}


static void
test_node_address(void **state)
{
    gx_t        *g = *state;
    char         canon[TRK_ADDR_MAX_B], why[256], m[256];
    uint8_t      tok[TS_TOKEN_B];
    size_t       i;
    static const char *const bad[] = {
        "", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:0",
        "127.0.0.1:65536", "127.0.0.1:080", "127.0.0.1:8x", "127.0.0.1:+8",
        "127.0.0.1: 80", " 127.0.0.1:80", "127.0.0.1:80 ", "127.1:80",
        "0127.0.0.1:80", "localhost:80", "127.0.0.1:80:80", "::1:80",
        "[127.0.0.1]:80", "[::1]80", "[::1]:", "[]:80", "[::1:80",
        "127.0.0.1:123456", "\x1b[31m:80", "127.0.0.1:80\n",
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(trk_node_addr_check(bad[i], "127.0.0.1", canon,
                                             sizeof(canon), why,
                                             sizeof(why)), -1);
        assert_non_null(strstr(why, "invalid node address"));
    }
    assert_int_equal(trk_node_addr_check("127.0.0.1:65535", "127.0.0.1",
                                         canon, sizeof(canon), why,
                                         sizeof(why)), 0);
    assert_string_equal(canon, "127.0.0.1:65535");
    assert_int_equal(trk_node_addr_check("[::1]:1", "::1", canon,
                                         sizeof(canon), why, sizeof(why)),
                     0);
    assert_string_equal(canon, "[::1]:1");
    assert_int_equal(trk_node_addr_check("[2001:DB8:0::1]:80",
                                         "2001:db8::1", canon, sizeof(canon),
                                         why, sizeof(why)), 0);
    assert_string_equal(canon, "[2001:db8::1]:80");
    /* an IPv4-mapped address is its IPv4 address, both ways */
    assert_int_equal(trk_node_addr_check("10.1.2.3:80", "::ffff:10.1.2.3",
                                         canon, sizeof(canon), why,
                                         sizeof(why)), 0);
    assert_int_equal(trk_node_addr_check("[::ffff:10.1.2.3]:80", "10.1.2.3",
                                         canon, sizeof(canon), why,
                                         sizeof(why)), 0);
    assert_string_equal(canon, "10.1.2.3:80");
    /* a node serving on every address is listed where it connects from */
    assert_int_equal(trk_node_addr_check("0.0.0.0:7000", "10.1.2.3", canon,
                                         sizeof(canon), why, sizeof(why)),
                     0);
    assert_string_equal(canon, "10.1.2.3:7000");
    assert_int_equal(trk_node_addr_check("[::]:7000", "2001:db8::5", canon,
                                         sizeof(canon), why, sizeof(why)),
                     0);
    assert_string_equal(canon, "[2001:db8::5]:7000");
    assert_int_equal(trk_node_addr_check("0.0.0.0:7000", "::ffff:10.1.2.3",
                                         canon, sizeof(canon), why,
                                         sizeof(why)), 0);
    assert_string_equal(canon, "10.1.2.3:7000");
    /* another IP than the connection's: refused */
    assert_int_equal(trk_node_addr_check("10.0.0.1:80", "127.0.0.1", canon,
                                         sizeof(canon), why, sizeof(why)),
                     -2);
    assert_non_null(strstr(why, "not this connection's address"));
    assert_int_equal(trk_node_addr_check("[::1]:80", "127.0.0.1", canon,
                                         sizeof(canon), why, sizeof(why)),
                     -2);
    assert_int_equal(trk_node_addr_check("127.0.0.1:80", NULL, canon,
                                         sizeof(canon), why, sizeof(why)),
                     -2);

    /* through LOGIN: refused with the reason, nothing counted */
    create_user(g, "alice");
    assert_int_equal(login(g, "alice", "pw", "10.0.0.1:80", tok, m,
                           sizeof(m)), TS_ERR_BADREQ);
    assert_non_null(strstr(m, "not this connection's address"));
    assert_int_equal(login(g, "alice", "pw", "127.0.0.1:0", tok, m,
                           sizeof(m)), TS_ERR_BADREQ);
    assert_non_null(strstr(m, "invalid node address"));
    assert_int_equal(login(g, "alice", "pw", "127.0.0.1:7000", tok, m,
                           sizeof(m)), TS_OK);
}


static void
test_session_without_fingerprint(void **state)
{
    gx_t          *g = *state;
    trk_session_t  s;
    uint8_t        tok[TS_TOKEN_B], h[32];
    char           m[256];

    if (!ts_tls_enabled()) {
        skip();
    }
    create_user(g, "alice");
    /* a record as written before issue 5: no node fingerprint */
    memset(&s, 0, sizeof(s));
    snprintf(s.user, sizeof(s.user), "alice");
    snprintf(s.node_addr, sizeof(s.node_addr), "127.0.0.1:7000");
    s.created_ms = (uint64_t) ts_wall_ms();
    memset(tok, 0x42, sizeof(tok));
    assert_int_equal(ts_sha256(tok, sizeof(tok), h), 0);
    assert_int_equal(trk_store_begin(g->st), 0);
    assert_int_equal(trk_session_put(g->st, h, &s), 0);
    assert_int_equal(trk_store_commit(g->st), 0);
    /* over a link with a certificate or without one: log in again */
    assert_int_equal(list_groups(g, tok, m, sizeof(m)), TS_ERR_AUTH);
    assert_non_null(strstr(m, "log in again"));
    g->link.has_fp = 0;
    memset(g->link.fp, 0, TS_FP_B);
    assert_int_equal(list_groups(g, tok, m, sizeof(m)), TS_ERR_AUTH);
    assert_non_null(strstr(m, "log in again"));
    /* and the leader's housekeeping removes it */
    trk_housekeep(&g->env, ts_now_ms() + 10 * TS_HOUSEKEEP_MS);
    assert_int_equal(trk_session_get(g->st, h, &s), 1);
}


/* ---- reply cache ------------------------------------------------------ */

static void
test_reply_cache_needs_same_bytes(void **state)
{
    gx_t        *g = *state;
    uint8_t      ta[TS_TOKEN_B], tb[TS_TOKEN_B];
    ts_wbuf_t    pl, out, first;
    char         m[256];

    ts_wbuf_init(&pl);
    ts_wbuf_init(&out);
    ts_wbuf_init(&first);
    create_user(g, "alice");
    create_user(g, "bob");
    assert_int_equal(login(g, "alice", "pw", "127.0.0.1:7001", ta, m,
                           sizeof(m)), TS_OK);
    assert_int_equal(login(g, "bob", "pw", "127.0.0.1:7002", tb, m,
                           sizeof(m)), TS_OK);
    /* alice creates g1 with id 99 */
    ts_put_raw(&pl, ta, TS_TOKEN_B);
    ts_put_str(&pl, "g1");
    assert_int_equal(req_id(g, TS_MSG_CREATE_GROUP, 99, &pl, &first, m,
                            sizeof(m)), TS_OK);
    /* bob sends another request under the same id: judged afresh (he
     * gets his own answer, not alice's cached one) */
    ts_wbuf_reset(&pl);
    ts_put_raw(&pl, tb, TS_TOKEN_B);
    ts_put_str(&pl, "g1");
    assert_int_equal(req_id(g, TS_MSG_CREATE_GROUP, 99, &pl, &out, m,
                            sizeof(m)), TS_ERR_EXISTS);
    ts_wbuf_reset(&pl);
    ts_put_raw(&pl, tb, TS_TOKEN_B);
    ts_put_str(&pl, "g2");
    assert_int_equal(req_id(g, TS_MSG_CREATE_GROUP, 99, &pl, &out, m,
                            sizeof(m)), TS_OK);
    /* a forged token under that id: refused, not the cached OK */
    ts_wbuf_reset(&pl);
    memset(tb, 0x55, sizeof(tb));
    ts_put_raw(&pl, tb, TS_TOKEN_B);
    ts_put_str(&pl, "g1");
    assert_int_equal(req_id(g, TS_MSG_CREATE_GROUP, 99, &pl, &out, m,
                            sizeof(m)), TS_ERR_AUTH);
    /* alice's genuine retry (same bytes) still gets her first answer */
    ts_wbuf_reset(&pl);
    ts_put_raw(&pl, ta, TS_TOKEN_B);
    ts_put_str(&pl, "g1");
    assert_int_equal(req_id(g, TS_MSG_CREATE_GROUP, 99, &pl, &out, m,
                            sizeof(m)), TS_OK);
    assert_int_equal(out.len, first.len);
    assert_memory_equal(out.data, first.data, out.len);
    ts_wbuf_free(&pl);
    ts_wbuf_free(&out);
    ts_wbuf_free(&first);
}


/* ---- reservations before the KDF ------------------------------------- */

/* A LOGIN or CREATE_USER up to its KDF job, which is returned (or NULL:
 * answered at once, *st set). */
static trk_kdf_job_t *
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


static ts_status_t
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


static void
test_parallel_wrong_logins_limited(void **state)
{
    gx_t          *g = *state;
    trk_kdf_job_t *jobs[20];
    ts_status_t    st;
    char           m[256];
    int            i, n = 0, busy = 0;

    create_user(g, "victim");
    g->env.thr_kdf.limit = 0;       /* only the user counter here */
    /* twenty guesses at once: only TS_LOGIN_FAILS_USER_N get a KDF job;
     * the rest are refused before it, while those are in progress */
    for (i = 0; i < 20; i++) {
        jobs[n] = start(g, TS_MSG_LOGIN, "victim", "guess", "127.0.0.1:7",
                        &st, m, sizeof(m));
        if (jobs[n] != NULL) {
            n++;
        } else {
            assert_int_equal(st, TS_ERR_BUSY);
            assert_non_null(strstr(m, "in progress"));
            busy++;
        }
    }
    assert_int_equal(n, TS_LOGIN_FAILS_USER_N);
    assert_int_equal(busy, 20 - TS_LOGIN_FAILS_USER_N);
    for (i = 0; i < n; i++) {
        assert_int_equal(finish(g, jobs[i]), TS_ERR_AUTH);
    }
    /* now they failed: refused for a period, even the right password */
    assert_null(start(g, TS_MSG_LOGIN, "victim", "pw", "127.0.0.1:7", &st,
                      m, sizeof(m)));
    assert_int_equal(st, TS_ERR_BUSY);
    assert_non_null(strstr(m, "too many failed logins"));

    /* a right password in progress holds a place, and gives it back */
    create_user(g, "alice");
    for (i = 0; i < TS_LOGIN_FAILS_USER_N; i++) {
        jobs[i] = start(g, TS_MSG_LOGIN, "alice", "pw", "127.0.0.1:8", &st,
                        m, sizeof(m));
        assert_non_null(jobs[i]);
    }
    assert_null(start(g, TS_MSG_LOGIN, "alice", "pw", "127.0.0.1:8", &st, m,
                      sizeof(m)));
    assert_int_equal(st, TS_ERR_BUSY);
    for (i = 0; i < TS_LOGIN_FAILS_USER_N; i++) {
        assert_int_equal(finish(g, jobs[i]), TS_OK);
    }
    jobs[0] = start(g, TS_MSG_LOGIN, "alice", "pw", "127.0.0.1:8", &st, m,
                    sizeof(m));
    assert_non_null(jobs[0]);
    /* a job that never runs (queue full) gives its place back too */
    trk_kdf_job_abort(&g->env, jobs[0]);
    assert_int_equal(trk_thr_wait_ms(&g->shm, 'u', "alice",
                                     &g->env.thr_user, ts_now_ms()), 0);
}


static void
test_kdf_work_per_address(void **state)
{
    gx_t          *g = *state;
    trk_kdf_job_t *jobs[TS_TRK_KDF_ADDR_N];
    ts_status_t    st;
    char           m[256], name[32];
    int            i;

    /* KDF jobs in progress from one address, create_user and login */
    for (i = 0; i < TS_TRK_KDF_ADDR_N; i++) {
        snprintf(name, sizeof(name), "new%d", i);
        jobs[i] = start(g, TS_MSG_CREATE_USER, name, "pw", NULL, &st, m,
                        sizeof(m));
        assert_non_null(jobs[i]);
    }
    assert_null(start(g, TS_MSG_CREATE_USER, "one-more", "pw", NULL, &st, m,
                      sizeof(m)));
    assert_int_equal(st, TS_ERR_BUSY);
    assert_non_null(strstr(m, "password checks from your address"));
    assert_null(start(g, TS_MSG_LOGIN, "new0", "pw", "127.0.0.1:7", &st, m,
                      sizeof(m)));
    assert_int_equal(st, TS_ERR_BUSY);
    /* another address is not affected */
    snprintf(g->link.addr, sizeof(g->link.addr), "127.0.0.2");
    assert_int_equal(finish(g, start(g, TS_MSG_CREATE_USER, "other", "pw",
                                     NULL, &st, m, sizeof(m))), TS_OK);
    snprintf(g->link.addr, sizeof(g->link.addr), "127.0.0.1");
    for (i = 0; i < TS_TRK_KDF_ADDR_N; i++) {
        assert_int_equal(finish(g, jobs[i]), TS_OK);
    }
    /* create_users per address: TS_TRK_CREATE_ADDR_N, then refused */
    for (i = TS_TRK_KDF_ADDR_N; i < TS_TRK_CREATE_ADDR_N; i++) {
        snprintf(name, sizeof(name), "new%d", i);
        create_user(g, name);
    }
    assert_null(start(g, TS_MSG_CREATE_USER, "too-many", "pw", NULL, &st, m,
                      sizeof(m)));
    assert_int_equal(st, TS_ERR_BUSY);
    assert_non_null(strstr(m, "too many accounts created"));
    /* logins are not creations */
    assert_int_equal(login(g, "new1", "pw", "127.0.0.1:9", NULL, m,
                           sizeof(m)), TS_OK);
}


/* ---- throttle table ---------------------------------------------------- */

static void
test_throttle_keeps_refusing_counters(void **state)
{
    gx_t          *g = *state;
    trk_shm_t     *t = &g->shm;
    trk_thr_cfg_t  c = { 3, 60000, 1000, 30000 };
    char           nm[32];
    int64_t        now = 9000000;
    uint32_t       i;
    int            why, full = 0;

    /* the target is refusing ... */
    for (i = 0; i < 3; i++) {
        (void) trk_thr_fail(t, 'u', "target", &c, now);
    }
    assert_int_equal(trk_thr_wait_ms(t, 'u', "target", &c, now), 1000);
    /* ... and a flood of failures for fresh names (twice the table) does
     * not flush it: only counters that refuse nobody are reused */
    for (i = 0; i < 2 * TS_THROTTLE_SLOTS_N; i++) {
        snprintf(nm, sizeof(nm), "fresh-%u", i);
        (void) trk_thr_fail(t, 'u', nm, &c, now + 1);
    }
    assert_int_equal(trk_thr_wait_ms(t, 'u', "target", &c, now + 1), 999);

    /* every counter refusing: a new name has no place and is refused as
     * throttled (never by evicting one) */
    for (i = 0; i < 3 * TS_THROTTLE_SLOTS_N && !full; i++) {
        snprintf(nm, sizeof(nm), "loud-%u", i);
        (void) trk_thr_fail(t, 'u', nm, &c, now + 2);
        (void) trk_thr_fail(t, 'u', nm, &c, now + 2);
        (void) trk_thr_fail(t, 'u', nm, &c, now + 2);
        full = trk_thr_wait_ms(t, 'u', "newcomer", &c, now + 2) > 0;
    }
    assert_true(full);
    assert_true(trk_thr_reserve(t, 'u', "newcomer", &c, now + 2, &why) > 0);
    assert_int_equal(why, TRK_THR_FULL);
    assert_true(trk_thr_wait_ms(t, 'u', "target", &c, now + 2) > 0);
    /* they all age out after their window */
    assert_int_equal(trk_thr_reserve(t, 'u', "newcomer", &c,
                                     now + 2 + 60000, &why), 0);
}


static void
test_throttle_ipv6_per_prefix(void **state)
{
    gx_t          *g = *state;
    trk_shm_t     *t = &g->shm;
    trk_thr_cfg_t  c = { 2, 60000, 1000, 30000 };
    char           n[64];
    int64_t        now = 7000000;

    trk_addr_norm("2001:db8:1:2:aaaa:bbbb:cccc:dddd", n, sizeof(n));
    assert_string_equal(n, "2001:db8:1:2::/64");
    trk_addr_norm("::ffff:10.0.0.7", n, sizeof(n));
    assert_string_equal(n, "10.0.0.7");
    trk_addr_norm("10.0.0.7", n, sizeof(n));
    assert_string_equal(n, "10.0.0.7");
    /* two addresses of one /64 share a counter ... */
    (void) trk_thr_fail(t, 'a', "2001:db8:1:2::1", &c, now);
    (void) trk_thr_fail(t, 'a', "2001:db8:1:2:ffff::9", &c, now);
    assert_int_equal(trk_thr_wait_ms(t, 'a', "2001:db8:1:2:1:2:3:4", &c,
                                     now), 1000);
    /* ... another /64 does not */
    assert_int_equal(trk_thr_wait_ms(t, 'a', "2001:db8:1:3::1", &c, now),
                     0);
    /* the connection buckets count per /64 too */
    assert_int_equal(trk_addr_bucket(t, "2001:db8:1:2::1"),
                     trk_addr_bucket(t, "2001:db8:1:2:9::9"));
    assert_int_equal(trk_addr_bucket(t, "::ffff:10.0.0.7"),
                     trk_addr_bucket(t, "10.0.0.7"));
}


/* ---- sessions ---------------------------------------------------------- */

static void
test_sessions_per_user_capped(void **state)
{
    gx_t          *g = *state;
    uint8_t        toks[TS_TRK_SESSIONS_PER_USER_N + 3][TS_TOKEN_B];
    trk_counts_t   c;
    char           m[256];
    int            i, n = TS_TRK_SESSIONS_PER_USER_N + 3;

    create_user(g, "alice");
    create_user(g, "bob");
    assert_int_equal(login(g, "bob", "pw", "127.0.0.1:6000", toks[0], m,
                           sizeof(m)), TS_OK);
    g->env.thr_kdf.limit = 0;
    for (i = 0; i < n; i++) {
        char node[32];

        snprintf(node, sizeof(node), "127.0.0.1:%d", 7000 + i);
        assert_int_equal(login(g, "alice", "pw", node, toks[i], m,
                               sizeof(m)), TS_OK);
        usleep(2000);               /* distinct creation times */
    }
    assert_int_equal(trk_store_count(g->st, &c), 0);
    /* alice: the cap; bob: his one */
    assert_int_equal(c.sessions, TS_TRK_SESSIONS_PER_USER_N + 1);
    /* the oldest three were ended, the newest work */
    for (i = 0; i < 3; i++) {
        assert_int_equal(list_groups(g, toks[i], m, sizeof(m)), TS_ERR_AUTH);
    }
    for (i = 3; i < n; i++) {
        assert_int_equal(list_groups(g, toks[i], m, sizeof(m)), TS_OK);
    }
}


/* A token whose hash lands in the given stripe of the session cache. */
static void
token_in_stripe(uint32_t stripe, uint32_t *ctr, uint8_t tok[TS_TOKEN_B],
                uint8_t h[32])
{
    for (;;) {
        memset(tok, 0, TS_TOKEN_B);
        memcpy(tok, ctr, sizeof(*ctr));
        (*ctr)++;
        assert_int_equal(ts_sha256(tok, TS_TOKEN_B, h), 0);
        if ((uint32_t) (h[0] | (h[1] << 8)) % TS_TRK_SESS_STRIPES_N
            == stripe)
        {
            return;
        }
    }
}


static void
test_uncached_sessions_expire(void **state)
{
    gx_t          *g = *state;
    trk_session_t  s;
    uint8_t        tok[TS_TOKEN_B], h[32], old_h[32], new_h[32];
    uint32_t       ctr = 1, i;
    char           m[256];
    int64_t        now = ts_now_ms();

    create_user(g, "alice");
    /* a full stripe of live entries (sessions that keep beating) */
    for (i = 0; i < STRIPE_N; i++) {
        token_in_stripe(5, &ctr, tok, h);
        assert_int_equal(trk_sess_insert(&g->shm, h, "alice", g->link.fp,
                                         now + 3600 * 1000), 0);
    }
    /* two sessions only tdb knows, in that stripe: one created long ago,
     * one just now */
    memset(&s, 0, sizeof(s));
    snprintf(s.user, sizeof(s.user), "alice");
    snprintf(s.node_addr, sizeof(s.node_addr), "127.0.0.1:7000");
    memcpy(s.fp, g->link.fp, TS_FP_B);
    assert_int_equal(trk_store_begin(g->st), 0);
    token_in_stripe(5, &ctr, tok, old_h);
    s.created_ms = (uint64_t) ts_wall_ms() - 10 * 5000;
    assert_int_equal(trk_session_put(g->st, old_h, &s), 0);
    token_in_stripe(5, &ctr, tok, new_h);
    s.created_ms = (uint64_t) ts_wall_ms();
    assert_int_equal(trk_session_put(g->st, new_h, &s), 0);
    assert_int_equal(trk_store_commit(g->st), 0);
    /* the new one still works (served from tdb, not cached) */
    assert_int_equal(list_groups(g, tok, m, sizeof(m)), TS_OK);
    assert_int_equal(trk_sess_lookup(&g->shm, new_h, now, 5000, 0, m,
                                     sizeof(m)), 0);
    /* the leader's housekeeping: the old uncachable one goes, the new
     * one stays (it has a session timeout of its own to show up) */
    trk_housekeep(&g->env, ts_now_ms() + 2 * TS_HOUSEKEEP_MS);
    assert_int_equal(trk_session_get(g->st, old_h, &s), 1);
    assert_int_equal(trk_session_get(g->st, new_h, &s), 0);
}


/* Snapshot entries (blob key, blob value) of every replicated record. */
static int
snap_rec(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
         void *arg)
{
    ts_wbuf_t *b = arg;

    ts_put_blob(b, k, (uint32_t) kl);
    ts_put_blob(b, v, (uint32_t) vl);
    return b->err ? -1 : 0;
}


static int
count_rec(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
          void *arg)
{
    (void) k;
    (void) kl;
    (void) v;
    (void) vl;
    (*(uint32_t *) arg)++;
    return 0;
}


static void
test_snapshot_drops_deleted_sessions(void **state)
{
    gx_t             *g = *state;
    _Atomic uint64_t  hb;
    trk_store_t      *b;
    trk_rec_t         rec;
    trk_vv_t          vv;
    ts_wbuf_t         pl, out, env_b;
    uint8_t           tok[TS_TOKEN_B], h[32];
    uint32_t          n = 0;
    char              path[160], err[256], key[80], hex[65], m[256];

    create_user(g, "alice");
    assert_int_equal(login(g, "alice", "pw", "127.0.0.1:7000", tok, m,
                           sizeof(m)), TS_OK);
    assert_int_equal(ts_sha256(tok, sizeof(tok), h), 0);
    assert_int_equal(trk_sess_lookup(&g->shm, h, ts_now_ms(), 5000, 0, m,
                                     sizeof(m)), 1);
    /* tracker 2 has the session too and ends it (a logout there) */
    snprintf(path, sizeof(path), "%s/peer.tdb", g->dir);
    b = trk_store_open(path, 1, 1, err, sizeof(err));
    assert_non_null(b);
    assert_true(trk_epoch_get(b, 1) != 0);
    atomic_init(&hb, atomic_load(&g->shm.stats->hlc) + (1ull << 20));
    trk_store_set_origin(b, 2, (void *) &hb, NULL);
    ts_hex(h, 32, hex);
    snprintf(key, sizeof(key), "s/%s", hex);
    trk_rec_init(&rec);
    assert_int_equal(trk_kv_rec(g->st, key, strlen(key), &rec), 0);
    assert_int_equal(trk_store_begin(b), 0);
    assert_int_equal(trk_kv_merge(b, key, strlen(key), &rec), 0);
    assert_int_equal(trk_store_commit(b), 0);
    trk_rec_free(&rec);
    assert_int_equal(trk_store_begin(b), 0);
    assert_int_equal(trk_session_del(b, h), 0);
    assert_int_equal(trk_store_commit(b), 0);

    /* its snapshot arrives here over a link proving tracker 2 */
    ts_wbuf_init(&env_b);
    assert_int_equal(trk_each_replicated(b, count_rec, &n), 0);
    assert_int_equal(trk_each_replicated(b, snap_rec, &env_b), 0);
    assert_int_equal(trk_vv_load(b, &vv), 0);
    ts_wbuf_init(&pl);
    ts_wbuf_init(&out);
    ts_put_u8(&pl, 2);
    ts_put_u8(&pl, 1);
    ts_put_u32(&pl, n);
    ts_put_raw(&pl, env_b.data, env_b.len);
    trk_vv_encode(&pl, &vv);
    g->link.tracker = 2;
    assert_int_equal(req(g, TS_MSG_SYNC_SNAPSHOT, &pl, &out, m, sizeof(m)),
                     TS_OK);
    g->link.tracker = 0;
    /* gone from tdb and from the cache at once, not at housekeeping */
    assert_int_equal(trk_sess_lookup(&g->shm, h, ts_now_ms(), 5000, 0, m,
                                     sizeof(m)), 0);
    assert_int_equal(list_groups(g, tok, m, sizeof(m)), TS_ERR_AUTH);
    trk_store_close(b);
    ts_wbuf_free(&pl);
    ts_wbuf_free(&out);
    ts_wbuf_free(&env_b);
}


/* ---- STATUS ------------------------------------------------------------ */

static void
test_status_needs_tracker_certificate(void **state)
{
    gx_t      *g = *state;
    ts_wbuf_t  pl, out;
    char       m[256];

    if (!ts_tls_enabled()) {
        skip();
    }
    ts_wbuf_init(&pl);
    ts_wbuf_init(&out);
    /* a node certificate, or none: refused, no database read */
    assert_int_equal(req(g, TS_MSG_STATUS, &pl, &out, m, sizeof(m)),
                     TS_ERR_AUTH);
    assert_non_null(strstr(m, "tracker certificate"));
    g->env.link = NULL;
    assert_int_equal(req(g, TS_MSG_STATUS, &pl, &out, m, sizeof(m)),
                     TS_ERR_AUTH);
    g->env.link = &g->link;
    g->link.tracker = 2;
    assert_int_equal(req(g, TS_MSG_STATUS, &pl, &out, m, sizeof(m)), TS_OK);
    ts_wbuf_free(&pl);
    ts_wbuf_free(&out);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_login_needs_certificate,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_without_fingerprint,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_cache_needs_same_bytes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel_wrong_logins_limited,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_kdf_work_per_address, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_throttle_keeps_refusing_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_ipv6_per_prefix,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_per_user_capped,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_uncached_sessions_expire,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_snapshot_drops_deleted_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_status_needs_tracker_certificate, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
