/*
 * test_trk_store.c -- cmocka tests of the tracker's store, records and
 * account/group rules (tracker/trk_store.c, trk_records.c, trk_groups.c)
 * on a real tdb file in a fresh temp directory.
 *
 * Covers: user create/duplicate, password verify, group create, join /
 * accept / reject / leave incl. owner succession by join order and
 * dissolution, reply-cache idempotency (through trk_ops_handle), a
 * cancelled transaction leaving nothing, reopen keeping every commit, and
 * corrupt record bytes decoding as errors.  No locks or shm beyond what
 * trk_ops needs (an anonymous session table is not required: the write
 * requests tested do not log in).
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
#include <fcntl.h>
#include <tdb.h>

#include "ts_buf.h"
#include "ts_crypto.h"
#include "ts_proto.h"
#include "trk_ops.h"
#include "trk_store.h"

#include "trk_fixture.h"


static int
setup(void **state)
{
    return fx_setup(state, "/tmp/test_trk_store.XXXXXX");
}


static trk_user_t
make_user(const char *pw, uint32_t iters)
{
    trk_user_t u;

    memset(&u, 0, sizeof(u));
    assert_int_equal(ts_random(u.salt, sizeof(u.salt)), 0);
    u.iterations = iters;
    assert_int_equal(ts_pbkdf2_sha1(pw, strlen(pw), u.salt, sizeof(u.salt),
                                    iters, u.hash, sizeof(u.hash)), 0);
    u.created_ms = 1234;
    return u;
}


/* Runs one rule in its own committed transaction. */
#define TXN(fx, expr) ({                                       \
    ts_status_t s_;                                            \
    assert_int_equal(trk_store_begin((fx)->st), 0);            \
    s_ = (expr);                                               \
    assert_int_equal(trk_store_commit((fx)->st), 0);           \
    s_; })


static void
test_user_create_duplicate_verify(void **state)
{
    fx_t       *fx = *state;
    trk_user_t  u, got;

    u = make_user("secret", 1000);
    assert_int_equal(TXN(fx, trk_do_create_user(fx->st, "alice", &u, msg,
                                                sizeof(msg))), TS_OK);
    assert_int_equal(TXN(fx, trk_do_create_user(fx->st, "alice", &u, msg,
                                                sizeof(msg))),
                     TS_ERR_EXISTS);
    assert_string_equal(msg, "user 'alice' already exists");
    assert_int_equal(TXN(fx, trk_do_create_user(fx->st, "bad/id", &u, msg,
                                                sizeof(msg))),
                     TS_ERR_BADREQ);

    assert_int_equal(trk_user_get(fx->st, "alice", &got), 0);
    assert_int_equal(got.iterations, 1000);
    assert_true(trk_password_ok(&got, "secret"));
    assert_false(trk_password_ok(&got, "Secret"));
    assert_false(trk_password_ok(&got, ""));
    assert_int_equal(trk_user_get(fx->st, "nobody", &got), 1);
}


static void
list_requests(fx_t *fx, const char *who, const char *g, ts_status_t want,
              int n, const char **names)
{
    ts_wbuf_t  b;
    ts_rbuf_t  r;
    char       u[TS_ID_MAX_B + 1];
    int        i;

    ts_wbuf_init(&b);
    assert_int_equal(trk_do_list_requests(fx->st, who, g, &b, msg,
                                          sizeof(msg)), want);
    if (want == TS_OK) {
        ts_rbuf_init(&r, b.data, b.len);
        assert_int_equal(ts_get_u32(&r), n);
        for (i = 0; i < n; i++) {
            assert_int_equal(ts_get_str(&r, u, sizeof(u)), 0);
            assert_string_equal(u, names[i]);
        }
        assert_int_equal(ts_rbuf_end(&r), 0);
    }
    ts_wbuf_free(&b);
}


static void
check_group(fx_t *fx, const char *g, const char *owner, uint32_t nmembers)
{
    trk_group_t grp;

    assert_int_equal(trk_group_get(fx->st, g, &grp), 0);
    assert_string_equal(grp.owner, owner);
    assert_int_equal(grp.nmembers, nmembers);
    trk_group_free(&grp);
}


static void
test_group_rules(void **state)
{
    fx_t       *fx = *state;
    char        no[TS_ID_MAX_B + 1];
    const char *bcd[] = { "bob", "carol", "dave" };
    const char *dave[] = { "dave" };
    trk_group_t grp;

    assert_int_equal(TXN(fx, trk_do_create_group(fx->st, "alice", "g1", msg,
                                                 sizeof(msg))), TS_OK);
    assert_int_equal(TXN(fx, trk_do_create_group(fx->st, "bob", "g1", msg,
                                                 sizeof(msg))),
                     TS_ERR_EXISTS);
    assert_string_equal(msg, "group 'g1' already exists");
    check_group(fx, "g1", "alice", 1);

    assert_int_equal(TXN(fx, trk_do_join_group(fx->st, "bob", "nog", msg,
                                               sizeof(msg))),
                     TS_ERR_NOTFOUND);
    assert_string_equal(msg, "no such group 'nog'");
    assert_int_equal(TXN(fx, trk_do_join_group(fx->st, "alice", "g1", msg,
                                               sizeof(msg))), TS_ERR_STATE);
    assert_string_equal(msg, "already a member of 'g1'");
    assert_int_equal(TXN(fx, trk_do_join_group(fx->st, "bob", "g1", msg,
                                               sizeof(msg))), TS_OK);
    assert_int_equal(TXN(fx, trk_do_join_group(fx->st, "bob", "g1", msg,
                                               sizeof(msg))), TS_ERR_STATE);
    assert_string_equal(msg, "a request to join 'g1' is already pending");
    assert_int_equal(TXN(fx, trk_do_join_group(fx->st, "carol", "g1", msg,
                                               sizeof(msg))), TS_OK);
    assert_int_equal(TXN(fx, trk_do_join_group(fx->st, "dave", "g1", msg,
                                               sizeof(msg))), TS_OK);

    /* owner only; non-members are told so */
    list_requests(fx, "bob", "g1", TS_ERR_PERM, 0, NULL);
    assert_string_equal(msg, "not a member of 'g1'");
    list_requests(fx, "alice", "g1", TS_OK, 3, bcd);

    /* accept carol first, then bob: join order is accept order */
    assert_int_equal(TXN(fx, trk_do_accept(fx->st, "alice", "g1", "carol",
                                           1, msg, sizeof(msg))), TS_OK);
    assert_int_equal(TXN(fx, trk_do_accept(fx->st, "carol", "g1", "bob",
                                           1, msg, sizeof(msg))),
                     TS_ERR_PERM);
    assert_string_equal(msg, "only the owner of 'g1' can do that");
    assert_int_equal(TXN(fx, trk_do_accept(fx->st, "alice", "g1", "bob",
                                           1, msg, sizeof(msg))), TS_OK);
    assert_int_equal(TXN(fx, trk_do_accept(fx->st, "alice", "g1", "bob",
                                           1, msg, sizeof(msg))),
                     TS_ERR_NOTFOUND);
    assert_string_equal(msg, "no pending request from 'bob' for 'g1'");
    list_requests(fx, "alice", "g1", TS_OK, 1, dave);
    check_group(fx, "g1", "alice", 3);

    /* reject */
    assert_int_equal(TXN(fx, trk_do_accept(fx->st, "alice", "g1", "dave", 0,
                                           msg, sizeof(msg))), TS_OK);
    list_requests(fx, "alice", "g1", TS_OK, 0, NULL);
    check_group(fx, "g1", "alice", 3);

    /* leaving: non-member, plain member, owner succession, dissolution */
    assert_int_equal(TXN(fx, trk_do_leave_group(fx->st, "dave", "g1", no,
                                                sizeof(no), msg,
                                                sizeof(msg))), TS_ERR_PERM);
    assert_string_equal(msg, "not a member of 'g1'");
    assert_int_equal(TXN(fx, trk_do_join_group(fx->st, "erin", "g1", msg,
                                               sizeof(msg))), TS_OK);
    assert_int_equal(TXN(fx, trk_do_leave_group(fx->st, "alice", "g1", no,
                                                sizeof(no), msg,
                                                sizeof(msg))), TS_OK);
    assert_string_equal(no, "carol");      /* joined before bob */
    check_group(fx, "g1", "carol", 2);
    assert_int_equal(TXN(fx, trk_do_leave_group(fx->st, "bob", "g1", no,
                                                sizeof(no), msg,
                                                sizeof(msg))), TS_OK);
    assert_string_equal(no, "");
    check_group(fx, "g1", "carol", 1);
    assert_int_equal(TXN(fx, trk_do_leave_group(fx->st, "carol", "g1", no,
                                                sizeof(no), msg,
                                                sizeof(msg))), TS_OK);
    assert_string_equal(no, "-");
    assert_int_equal(trk_group_get(fx->st, "g1", &grp), 1);
    /* erin's pending request went with the group */
    assert_int_equal(TXN(fx, trk_do_join_group(fx->st, "erin", "g1", msg,
                                               sizeof(msg))),
                     TS_ERR_NOTFOUND);
}


static void
test_list_groups_sorted(void **state)
{
    fx_t      *fx = *state;
    ts_wbuf_t  b;
    ts_rbuf_t  r;
    char       g[TS_ID_MAX_B + 1], o[TS_ID_MAX_B + 1];

    TXN(fx, trk_do_create_group(fx->st, "zed", "zz", msg, sizeof(msg)));
    TXN(fx, trk_do_create_group(fx->st, "amy", "aa", msg, sizeof(msg)));
    TXN(fx, trk_do_create_group(fx->st, "amy", "mm", msg, sizeof(msg)));
    ts_wbuf_init(&b);
    assert_int_equal(trk_do_list_groups(fx->st, NULL, &b, msg, sizeof(msg)),
                     TS_OK);
    ts_rbuf_init(&r, b.data, b.len);
    assert_int_equal(ts_get_u32(&r), 3);
    ts_get_str(&r, g, sizeof(g));
    ts_get_str(&r, o, sizeof(o));
    assert_string_equal(g, "aa");
    assert_string_equal(o, "amy");
    assert_int_equal(ts_get_u32(&r), 1);
    ts_get_str(&r, g, sizeof(g));
    ts_get_str(&r, o, sizeof(o));
    assert_string_equal(g, "mm");
    (void) ts_get_u32(&r);
    ts_get_str(&r, g, sizeof(g));
    assert_string_equal(g, "zz");
    ts_wbuf_reset(&b);
    assert_int_equal(trk_do_list_groups(fx->st, "zed", &b, msg, sizeof(msg)),
                     TS_OK);
    ts_rbuf_init(&r, b.data, b.len);
    assert_int_equal(ts_get_u32(&r), 1);
    ts_wbuf_free(&b);
}


static void
test_cancel_leaves_nothing(void **state)
{
    fx_t       *fx = *state;
    trk_user_t  u = make_user("x", 10), got;
    trk_group_t grp;

    TXN(fx, trk_do_create_group(fx->st, "alice", "g1", msg, sizeof(msg)));

    assert_int_equal(trk_store_begin(fx->st), 0);
    assert_int_equal(trk_do_create_user(fx->st, "bob", &u, msg,
                                        sizeof(msg)), TS_OK);
    assert_int_equal(trk_do_join_group(fx->st, "bob", "g1", msg,
                                       sizeof(msg)), TS_OK);
    assert_int_equal(trk_do_create_group(fx->st, "bob", "g2", msg,
                                         sizeof(msg)), TS_OK);
    /* visible inside the transaction ... */
    assert_int_equal(trk_user_get(fx->st, "bob", &got), 0);
    trk_store_cancel(fx->st);

    /* ... and gone after the cancel, also after a reopen */
    fx_reopen(fx);
    assert_int_equal(trk_user_get(fx->st, "bob", &got), 1);
    assert_int_equal(trk_group_get(fx->st, "g2", &grp), 1);
    assert_int_equal(trk_group_get(fx->st, "g1", &grp), 0);
    assert_int_equal(grp.npending, 0);
    trk_group_free(&grp);
}


static void
test_reopen_keeps_commits(void **state)
{
    fx_t          *fx = *state;
    trk_user_t     u = make_user("pw", 10), got;
    trk_session_t  s, sg;
    uint8_t        h[32], rh[32], rh2[32];
    ts_wbuf_t      b;
    trk_counts_t   c;

    trk_req_hash(TS_MSG_JOIN_GROUP, "request", 7, rh);
    trk_req_hash(TS_MSG_JOIN_GROUP, "requesT", 7, rh2);
    memset(&s, 0, sizeof(s));
    snprintf(s.user, sizeof(s.user), "alice");
    snprintf(s.node_addr, sizeof(s.node_addr), "127.0.0.1:9");
    s.created_ms = 77;
    memset(h, 0xab, sizeof(h));
    TXN(fx, trk_do_create_user(fx->st, "alice", &u, msg, sizeof(msg)));
    TXN(fx, trk_do_create_group(fx->st, "alice", "g1", msg, sizeof(msg)));
    TXN(fx, trk_do_join_group(fx->st, "bob", "g1", msg, sizeof(msg)));
    assert_int_equal(trk_store_begin(fx->st), 0);
    assert_int_equal(trk_session_put(fx->st, h, &s), 0);
    assert_int_equal(trk_reply_put(fx->st, 42, TS_MSG_JOIN_GROUP, rh, "ab",
                                   2, 1000), 0);
    assert_int_equal(trk_store_commit(fx->st), 0);

    fx_reopen(fx);
    assert_int_equal(trk_user_get(fx->st, "alice", &got), 0);
    assert_true(trk_password_ok(&got, "pw"));
    check_group(fx, "g1", "alice", 1);
    list_requests(fx, "alice", "g1", TS_OK, 1, (const char *[]) { "bob" });
    assert_int_equal(trk_session_get(fx->st, h, &sg), 0);
    assert_string_equal(sg.user, "alice");
    assert_string_equal(sg.node_addr, "127.0.0.1:9");
    ts_wbuf_init(&b);
    assert_int_equal(trk_reply_get(fx->st, 42, TS_MSG_JOIN_GROUP, rh, &b),
                     0);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, "ab", 2);
    /* same id, other type: not this request's reply */
    assert_int_equal(trk_reply_get(fx->st, 42, TS_MSG_LEAVE_GROUP, rh, &b),
                     1);
    /* same id, other bytes: not this request's reply either */
    assert_int_equal(trk_reply_get(fx->st, 42, TS_MSG_JOIN_GROUP, rh2, &b),
                     1);
    ts_wbuf_free(&b);
    assert_int_equal(trk_store_count(fx->st, &c), 0);
    assert_int_equal(c.users, 1);
    assert_int_equal(c.groups, 1);
    assert_int_equal(c.sessions, 1);
    assert_int_equal(c.replies, 1);

    /* expiry of old replies, and session delete */
    assert_int_equal(trk_store_expire_replies(fx->st, 999), 0);
    assert_int_equal(trk_store_expire_replies(fx->st, 1001), 1);
    assert_int_equal(trk_store_begin(fx->st), 0);
    assert_int_equal(trk_session_del(fx->st, h), 0);
    assert_int_equal(trk_store_commit(fx->st), 0);
    assert_int_equal(trk_session_get(fx->st, h, &sg), 1);
}


/* The write path of trk_ops: a request repeated with the same id is
 * answered from the reply cache and applied once. */
static void
test_reply_cache_idempotent(void **state)
{
    fx_t           *fx = *state;
    trk_env_t       env;
    trk_shm_t       shm;
    trk_stats_sh_t  stats;
    ts_wbuf_t       req, out1, out2;
    trk_kdf_job_t  *job;
    trk_user_t      u;
    trk_counts_t    c;

    memset(&env, 0, sizeof(env));
    memset(&shm, 0, sizeof(shm));
    memset(&stats, 0, sizeof(stats));
    shm.stats = &stats;
    env.st = fx->st;
    env.shm = &shm;
    env.kdf_iterations = 100;
    env.session_timeout_ms = 1000;
    trk_ops_init();

    /* create_user: prepare, KDF, finish -- then replay the same id */
    ts_wbuf_init(&req);
    ts_wbuf_init(&out1);
    ts_wbuf_init(&out2);
    ts_put_str(&req, "alice");
    ts_put_str(&req, "pw");
    assert_int_equal(trk_ops_handle(&env, TS_MSG_CREATE_USER, 7, req.data,
                                    (uint32_t) req.len, &out1, &job),
                     TRK_DO_DEFER);
    trk_kdf_run(job);
    trk_ops_finish(&env, job, 1, &out1);
    trk_kdf_job_free(job);
    assert_int_equal(trk_user_get(fx->st, "alice", &u), 0);
    assert_true(trk_password_ok(&u, "pw"));

    /* same request id again: the stored reply (OK), not "exists", and
     * straight from the reply cache (no KDF) */
    assert_int_equal(trk_ops_handle(&env, TS_MSG_CREATE_USER, 7, req.data,
                                    (uint32_t) req.len, &out2, &job),
                     TRK_DO_REPLY);
    assert_null(job);
    assert_int_equal(out1.len, out2.len);
    assert_memory_equal(out1.data, out2.data, out1.len);

    /* a new id is a new request: now it exists */
    assert_int_equal(trk_ops_handle(&env, TS_MSG_CREATE_USER, 8, req.data,
                                    (uint32_t) req.len, &out2, &job),
                     TRK_DO_REPLY);
    assert_int_not_equal(out1.len, out2.len);

    /* a cached write reply is answered before any session check: a
     * retried logout or join must not fail because the first one ran --
     * but only to a byte-identical retry (the reply cache is keyed by
     * id and a hash of the whole request, token included) */
    ts_wbuf_reset(&req);
    ts_put_raw(&req, "0123456789abcdef", 16);
    ts_put_str(&req, "g1");
    {
        uint8_t rh[32];

        trk_req_hash(TS_MSG_JOIN_GROUP, req.data, req.len, rh);
        assert_int_equal(trk_store_begin(fx->st), 0);
        assert_int_equal(trk_do_create_group(fx->st, "alice", "g1", msg,
                                             sizeof(msg)), TS_OK);
        assert_int_equal(trk_reply_put(fx->st, 9, TS_MSG_JOIN_GROUP, rh,
                                       out1.data, out1.len, 5), 0);
        assert_int_equal(trk_store_commit(fx->st), 0);
    }
    assert_int_equal(trk_ops_handle(&env, TS_MSG_JOIN_GROUP, 9, req.data,
                                    (uint32_t) req.len, &out2, &job),
                     TRK_DO_REPLY);
    assert_int_equal(out2.len, out1.len);
    assert_memory_equal(out2.data, out1.data, out1.len);
    /* (the same id with other bytes: test_trk_guard.c) */
    check_group(fx, "g1", "alice", 1);
    assert_int_equal(trk_store_count(fx->st, &c), 0);
    assert_int_equal(c.users, 1);

    /* not a message type at all: the connection is to be closed */
    assert_int_equal(trk_ops_handle(&env, 58, 1, NULL, 0, &out2, &job),
                     TRK_DO_CLOSE);
    assert_int_equal(trk_ops_handle(&env, TS_MSG_REPLY, 1, NULL, 0, &out2,
                                    &job), TRK_DO_CLOSE);
    ts_wbuf_free(&req);
    ts_wbuf_free(&out1);
    ts_wbuf_free(&out2);
}


static void
test_corrupt_records(void **state)
{
    fx_t        *fx = *state;
    trk_user_t   u = make_user("p", 10), ud;
    trk_group_t  g, gd;
    trk_member_t m[2];
    trk_session_t sd;
    ts_wbuf_t    b;
    size_t       i, cut;
    uint8_t     *bad;

    (void) fx;
    /* good round trips */
    ts_wbuf_init(&b);
    trk_user_encode(&b, &u);
    assert_int_equal(trk_user_decode(b.data, b.len, &ud), 0);
    assert_memory_equal(ud.hash, u.hash, sizeof(u.hash));
    /* every truncation and one extra byte fail */
    for (cut = 0; cut < b.len; cut++) {
        assert_int_equal(trk_user_decode(b.data, cut, &ud), -1);
    }
    ts_put_u8(&b, 0);
    assert_int_equal(trk_user_decode(b.data, b.len, &ud), -1);

    memset(&g, 0, sizeof(g));
    memset(m, 0, sizeof(m));
    snprintf(g.owner, sizeof(g.owner), "alice");
    snprintf(m[0].user, sizeof(m[0].user), "alice");
    snprintf(m[1].user, sizeof(m[1].user), "bob");
    m[0].seq = 1;
    m[1].seq = 2;
    g.members = m;
    g.nmembers = 2;
    g.pending = NULL;
    g.npending = 0;
    g.next_join_seq = 3;
    ts_wbuf_reset(&b);
    trk_group_encode(&b, &g);
    assert_int_equal(trk_group_decode(b.data, b.len, &gd), 0);
    assert_int_equal(gd.nmembers, 2);
    assert_string_equal(gd.members[1].user, "bob");
    trk_group_free(&gd);
    for (cut = 0; cut < b.len; cut++) {
        assert_int_equal(trk_group_decode(b.data, cut, &gd), -1);
    }
    /* flip every byte: must never crash; a decode that still succeeds
     * must give a well-formed group */
    bad = malloc(b.len);
    for (i = 0; i < b.len; i++) {
        memcpy(bad, b.data, b.len);
        bad[i] ^= 0xff;
        if (trk_group_decode(bad, b.len, &gd) == 0) {
            assert_true(gd.nmembers >= 1);
            assert_true(ts_valid_id(gd.owner));
            trk_group_free(&gd);
        }
    }
    /* a huge member count is refused before allocation */
    memcpy(bad, b.data, b.len);
    {
        size_t off = 2 + 2 + strlen("alice") + 8;
        bad[off] = 0x7f;
        assert_int_equal(trk_group_decode(bad, b.len, &gd), -1);
    }
    free(bad);
    /* owner not a member */
    snprintf(g.owner, sizeof(g.owner), "zed");
    ts_wbuf_reset(&b);
    trk_group_encode(&b, &g);
    assert_int_equal(trk_group_decode(b.data, b.len, &gd), -1);
    /* wrong kind byte: a user record is not a session */
    ts_wbuf_reset(&b);
    trk_user_encode(&b, &u);
    assert_int_equal(trk_session_decode(b.data, b.len, &sd), -1);
    ts_wbuf_free(&b);
}


/* A record corrupted on disk is an error for the request, not a crash. */
static void
test_corrupt_on_disk(void **state)
{
    fx_t               *fx = *state;
    struct tdb_context *tdb;
    trk_user_t          u;
    trk_group_t         g;
    TDB_DATA            k, v;
    char                no[TS_ID_MAX_B + 1];
    char                err[256];
    static const char   junk[] = "G\001\000\005alice\377\377";

    u = make_user("pw", 10);
    TXN(fx, trk_do_create_user(fx->st, "alice", &u, msg, sizeof(msg)));
    TXN(fx, trk_do_create_group(fx->st, "alice", "g1", msg, sizeof(msg)));

    /* scribble over both records with tdb directly */
    trk_store_close(fx->st);
    tdb = tdb_open(fx->path, 0, TDB_DEFAULT, O_RDWR, 0600);
    assert_non_null(tdb);
    v.dptr = (unsigned char *) junk;
    v.dsize = sizeof(junk) - 1;
    k.dptr = (unsigned char *) "g/g1";
    k.dsize = 4;
    assert_int_equal(tdb_store(tdb, k, v, TDB_REPLACE), 0);
    k.dptr = (unsigned char *) "u/alice";
    k.dsize = 7;
    assert_int_equal(tdb_store(tdb, k, v, TDB_REPLACE), 0);
    tdb_close(tdb);
    fx->st = trk_store_open(fx->path, 0, 1, err, sizeof(err));
    assert_non_null(fx->st);

    assert_int_equal(trk_user_get(fx->st, "alice", &u), -1);
    assert_int_equal(trk_group_get(fx->st, "g1", &g), -1);
    assert_int_equal(TXN(fx, trk_do_join_group(fx->st, "bob", "g1", msg,
                                               sizeof(msg))),
                     TS_ERR_INTERNAL);
    assert_int_equal(TXN(fx, trk_do_leave_group(fx->st, "alice", "g1", no,
                                                sizeof(no), msg,
                                                sizeof(msg))),
                     TS_ERR_INTERNAL);
    assert_int_equal(TXN(fx, trk_do_create_user(fx->st, "alice", &u, msg,
                                                sizeof(msg))),
                     TS_ERR_INTERNAL);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_user_create_duplicate_verify,
                                        setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_group_rules, setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_list_groups_sorted, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_leaves_nothing, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_commits, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_reply_cache_idempotent, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_records, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_on_disk, setup,
                                        fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
