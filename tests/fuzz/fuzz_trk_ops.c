/*
 * fuzz_trk_ops.c -- libFuzzer target: the tracker's request handling end
 * to end (trk_ops_handle and every registered handler: accounts, groups,
 * files, STATUS, SYNC_*), on a real tdb store and a real tracker shm
 * segment.
 *
 * Set-up, once per process (fz_tmpdir): a PKI (CA + tracker 1, for the
 * FILE_INFO ticket signer and a verifier), a tracker shm segment (created
 * under /tessera-trk-<1..1000> and unlinked at once, so nothing stays in
 * /dev/shm), and a template store built through trk_ops_handle itself:
 * users alice, bob, carol (password "pw") logged in from three nodes
 * with three certificate fingerprints; group g1 (owner alice, member
 * bob, carol pending) with f1.bin shared by alice (complete) and bob
 * (partial); group g2 (alice).  Each input starts from a fresh copy of
 * that template (restored record by record in one tdb transaction, so a
 * crash replays exactly) and an emptied session cache and login
 * throttle table.
 *
 * Input: a sequence of up to 32 requests, each
 *   u8 type, u8 flags, u16 len (big endian), len bytes of payload
 * (the last one takes what is left).  flags:
 *   bits 0-1  0 = an anonymous link; k = the link of user k's node
 *             (1 alice, 2 bob, 3 carol), with that session's token put
 *             before the payload
 *   bits 2-4  request id = 0x1000 + this (so reply-cache hits happen)
 *   bit 5     no token (LOGIN and CREATE_USER over a node's link)
 *   bit 6     the link shows no client certificate
 *   bit 7     the link's certificate proves tracker 2 (SYNC_* from 2)
 * type 0 is not a request: it runs a housekeeping pass 10 session
 * timeouts in the future (sessions expire, reply cache ages).
 * Login and create_user run their KDF job in line (1 iteration).
 *
 * Oracles: sanitizers; no request leaves a transaction open; every
 * reply parses as a reply head and fits a
 * frame; an OK FILE_INFO body parses to its last byte and its ticket, if
 * any, verifies for the link's fingerprint.
 *
 * Locking: single-threaded.  Crash behaviour: files only under the temp
 * dir; the shm name is unlinked right after creation.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_buf.h"
#include "ts_clock.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "ts_shm.h"
#include "ts_ticket.h"
#include "ts_tls.h"
#include "trk_files.h"
#include "trk_oplog.h"
#include "trk_ops.h"
#include "trk_shm.h"
#include "trk_store.h"
#include "trk_sync.h"
#include "fz_util.h"

#define USERS_N     3
#define REQS_MAX_N  32

static const char *const users[USERS_N] = { "alice", "bob", "carol" };
/* user k's node, on its link's address (link_for: 127.0.0.<k+1>) */
static const char *const addrs[USERS_N] = {
    "127.0.0.2:7001", "127.0.0.3:7002", "127.0.0.4:7003"
};

static trk_shm_t             shm;
static trk_env_t             env;
static trk_link_t            lnk;
static ts_ticket_verifier_t *verifier;
static trk_store_t          *work;      /* the store, open for good */
static ts_wbuf_t             tmpl;      /* its template records: (blob
                                           key, blob value) pairs */
static uint8_t               tokens[USERS_N][TS_TOKEN_B];
static uint8_t               fps[USERS_N][TS_FP_B];


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
die(const char *what, const char *err)
{
    char buf[512];

    snprintf(buf, sizeof(buf), "fuzz_trk_ops set-up: %s: %s", what,
             err ? err : "");
    fz_fail(__FILE__, __LINE__, buf);
}


static void
link_for(int user, int anon, int tracker)
{
    memset(&lnk, 0, sizeof(lnk));
    snprintf(lnk.addr, sizeof(lnk.addr), "127.0.0.%d", user + 1);
    if (user > 0 && !anon) {
        memcpy(lnk.fp, fps[user - 1], TS_FP_B);
        lnk.has_fp = 1;
    }
    lnk.tracker = tracker;
    env.link = &lnk;
}


/* An OK FILE_INFO body: parses to the end; its ticket verifies. */
static void
check_file_info(ts_rbuf_t *r)
{
    uint8_t        sha1[20], fp[TS_FP_B];
    char           s[TS_STR_MAX_B + 1], err[256];
    uint32_t       nchunks, nsrc, i, tlen;
    const uint8_t *tk;
    ts_ticket_t    t;

    (void) ts_get_u64(r);
    (void) ts_get_raw(r, sha1, sizeof(sha1));
    nchunks = ts_get_u32(r);
    FZ_CHECK(!r->err && (size_t) nchunks * 20 <= ts_rbuf_left(r));
    r->off += (size_t) nchunks * 20;
    nsrc = ts_get_u32(r);
    for (i = 0; i < nsrc && !r->err; i++) {
        (void) ts_get_str(r, s, sizeof(s));
        (void) ts_get_u8(r);
        (void) ts_get_u32(r);
        (void) ts_get_raw(r, fp, sizeof(fp));
    }
    tk = ts_get_blob(r, &tlen, TS_TICKET_MAX_B);
    FZ_CHECK(tk != NULL && ts_rbuf_end(r) == 0);
    if (tlen > 0) {
        FZ_CHECK(lnk.has_fp || !ts_tls_enabled());
        if (ts_ticket_verify(verifier, tk, tlen, ts_wall_ms(),
                             lnk.has_fp ? lnk.fp : NULL, &t, err,
                             sizeof(err)) != 0)
        {
            fz_fail(__FILE__, __LINE__, err);
        }
    }
}


/* One request; the reply (if any) must be a well-formed reply. */
static ts_status_t
request(uint8_t type, uint64_t reqid, const uint8_t *p, uint32_t n,
        ts_wbuf_t *out)
{
    trk_kdf_job_t *job = NULL;
    trk_do_t       d;
    ts_rbuf_t      r;
    ts_status_t    st = TS_ERR_INTERNAL;
    char           msg[TS_STR_MAX_B + 1];

    ts_wbuf_reset(out);
    d = trk_ops_handle(&env, type, reqid, p, n, out, &job);
    if (d == TRK_DO_DEFER) {
        FZ_CHECK(job != NULL);
        trk_kdf_run(job);
        trk_ops_finish(&env, job, 1, out);
        trk_kdf_job_free(job);
        d = TRK_DO_REPLY;
    } else {
        FZ_CHECK(job == NULL);
    }
    if (d != TRK_DO_REPLY) {
        return TS_ERR_BADREQ;
    }
    FZ_CHECK(!out->err && out->len <= TS_FRAME_MAX_B);
    ts_rbuf_init(&r, out->data, out->len);
    FZ_CHECK(ts_reply_parse(&r, &st, msg, sizeof(msg)) == 0);
    if (st == TS_OK && type == TS_MSG_FILE_INFO) {
        check_file_info(&r);
    }
    return st;
}


/* Set-up helper: a request from user k (0 = anonymous) that must work. */
static void
setup_req(int k, uint8_t type, ts_wbuf_t *pl, ts_wbuf_t *out)
{
    static uint64_t reqid = 0x100000;
    ts_status_t     st;

    link_for(k, 0, 0);
    st = request(type, reqid++, pl->data, (uint32_t) pl->len, out);
    if (st != TS_OK) {
        die(ts_msg_name(type), ts_status_name(st));
    }
}


static void
tok_put(ts_wbuf_t *pl, int k)
{
    ts_wbuf_reset(pl);
    ts_put_raw(pl, tokens[k - 1], TS_TOKEN_B);
}


static void
build_template(const char *dir)
{
    char         path[600], err[256];
    ts_wbuf_t    pl, out;
    ts_rbuf_t    r;
    ts_status_t  st;
    char         msg[TS_STR_MAX_B + 1];
    uint8_t      sha1[20], hashes[40], bm = 0x01;
    trk_store_t *st0;
    int          k;

    snprintf(path, sizeof(path), "%s/template.tdb", dir);
    st0 = trk_store_open(path, 1, 1, err, sizeof(err));
    if (st0 == NULL) {
        die("trk_store_open", err);
    }
    if (trk_epoch_get(st0, 1) == 0) {
        die("trk_epoch_get", "");
    }
    trk_store_set_origin(st0, 1, (void *) &shm.stats->hlc,
                         (void *) &shm.stats->op_wake);
    env.st = st0;
    ts_wbuf_init(&pl);
    ts_wbuf_init(&out);
    for (k = 0; k < USERS_N; k++) {
        memset(fps[k], 0xa0 + k, TS_FP_B);
        ts_wbuf_reset(&pl);
        ts_put_str(&pl, users[k]);
        ts_put_str(&pl, "pw");
        setup_req(0, TS_MSG_CREATE_USER, &pl, &out);
        ts_put_str(&pl, addrs[k]);
        setup_req(k + 1, TS_MSG_LOGIN, &pl, &out);
        ts_rbuf_init(&r, out.data, out.len);
        if (ts_reply_parse(&r, &st, msg, sizeof(msg)) != 0
            || ts_get_raw(&r, tokens[k], TS_TOKEN_B) != 0)
        {
            die("login reply", msg);
        }
    }
    tok_put(&pl, 1);
    ts_put_str(&pl, "g1");
    setup_req(1, TS_MSG_CREATE_GROUP, &pl, &out);
    tok_put(&pl, 1);
    ts_put_str(&pl, "g2");
    setup_req(1, TS_MSG_CREATE_GROUP, &pl, &out);
    tok_put(&pl, 2);
    ts_put_str(&pl, "g1");
    setup_req(2, TS_MSG_JOIN_GROUP, &pl, &out);
    tok_put(&pl, 3);
    ts_put_str(&pl, "g1");
    setup_req(3, TS_MSG_JOIN_GROUP, &pl, &out);
    tok_put(&pl, 1);
    ts_put_str(&pl, "g1");
    ts_put_str(&pl, "bob");
    setup_req(1, TS_MSG_ACCEPT_REQUEST, &pl, &out);

    memset(sha1, 0x11, sizeof(sha1));
    memset(hashes, 0x22, sizeof(hashes));
    tok_put(&pl, 1);
    ts_put_str(&pl, "g1");
    ts_put_str(&pl, "f1.bin");
    ts_put_u64(&pl, TS_CHUNK_B + 10);
    ts_put_raw(&pl, sha1, sizeof(sha1));
    ts_put_u32(&pl, 2);
    ts_put_raw(&pl, hashes, sizeof(hashes));
    setup_req(1, TS_MSG_UPLOAD_FILE, &pl, &out);
    tok_put(&pl, 2);
    ts_put_str(&pl, "g1");
    ts_put_str(&pl, "f1.bin");
    ts_put_u8(&pl, 0);
    ts_put_blob(&pl, &bm, 1);
    setup_req(2, TS_MSG_HAVE_CHUNKS, &pl, &out);
    /* the ticket path works in the template already */
    tok_put(&pl, 2);
    ts_put_str(&pl, "g1");
    ts_put_str(&pl, "f1.bin");
    setup_req(2, TS_MSG_FILE_INFO, &pl, &out);

    ts_wbuf_free(&pl);
    ts_wbuf_free(&out);
    fz_tdb_save(trk_store_tdb(st0), &tmpl);
    work = st0;
}


static void
make_shm(void)
{
    char name[64];
    int  port, i;

    /* ports 1..1000: no real tracker listens there, so no real segment
     * has that name; the name goes away as soon as it is mapped */
    port = 1 + getpid() % 1000;
    for (i = 0; i < 1000; i++, port = port % 1000 + 1) {
        if (trk_shm_create(&shm, (uint16_t) port) == 0) {
            trk_shm_name(name, sizeof(name), (uint16_t) port);
            (void) ts_shm_unlink(name);
            return;
        }
        if (errno != EBUSY) {
            die("trk_shm_create", strerror(errno));
        }
    }
    die("trk_shm_create", "every name busy");
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir;
    char        pki[600], crt[700], key[700], ca[700], err[256];

    (void) argc;
    (void) argv;
    fz_quiet();
    dir = fz_tmpdir();
    snprintf(pki, sizeof(pki), "%s/pki", dir);
    if (ts_pki_ensure_ca(pki, err, sizeof(err)) != 0
        || ts_pki_ensure_tracker(pki, 1, "127.0.0.1", err, sizeof(err)) != 0)
    {
        die("pki", err);
    }
    snprintf(crt, sizeof(crt), "%s/tracker-1.crt", pki);
    snprintf(key, sizeof(key), "%s/tracker-1.key", pki);
    snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
    make_shm();
    atomic_store(&shm.stats->ntrackers, 3);
    atomic_store(&shm.stats->epoch, 0x5eed);
    atomic_store(&shm.stats->leader, 1);

    trk_ops_init();
    trk_files_init();
    trk_sync_init();
    memset(&env, 0, sizeof(env));
    env.tracker_id = 1;
    env.shm = &shm;
    env.kdf_iterations = 1;
    env.session_timeout_ms = TS_SESSION_TIMEOUT_MS;
    env.workers_n = 1;
    env.me = ts_owner_make(getpid(), 1);
    env.ticket_ttl_ms = TS_TICKET_TTL_MS;
    trk_ops_thr_defaults(&env.thr_user, &env.thr_addr);
    trk_ops_kdf_defaults(&env.thr_kdf, &env.thr_create);
    env.signer = ts_ticket_signer_new(1, crt, key, err, sizeof(err));
    if (env.signer == NULL) {
        die("ts_ticket_signer_new", err);
    }
    verifier = ts_ticket_verifier_new(ca, err, sizeof(err));
    if (verifier == NULL) {
        die("ts_ticket_verifier_new", err);
    }
    build_template(dir);
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in_t        in;
    ts_wbuf_t      pl, out;
    const uint8_t *p;
    size_t         n;
    uint8_t        type, flags;
    int            i, k;

    /* the same starting state for every input */
    fz_tdb_restore(trk_store_tdb(work), &tmpl);
    memset(shm.sess, 0, sizeof(*shm.sess) * TS_SESSIONS_SHM_N);
    memset(shm.thr, 0, sizeof(*shm.thr) * TS_THROTTLE_SLOTS_N);
    env.st = work;
    ts_wbuf_init(&pl);
    ts_wbuf_init(&out);

    fz_in_init(&in, data, size);
    for (i = 0; i < REQS_MAX_N && fz_left(&in) >= 2; i++) {
        type = fz_u8(&in);
        flags = fz_u8(&in);
        p = fz_take(&in, fz_u16(&in), &n);
        k = flags & 3;
        link_for(k, flags & 0x40, (flags & 0x80) ? 2 : 0);
        if (type == 0) {
            trk_housekeep(&env, ts_now_ms() + 10 * TS_SESSION_TIMEOUT_MS);
            continue;
        }
        ts_wbuf_reset(&pl);
        if (k > 0 && !(flags & 0x20)) {
            ts_put_raw(&pl, tokens[k - 1], TS_TOKEN_B);
        }
        ts_put_raw(&pl, p, n);
        FZ_CHECK(!pl.err);
        (void) request(type, 0x1000 + ((flags >> 2) & 7), pl.data,
                       (uint32_t) pl.len, &out);
        /* every request ends its transaction, whatever happened */
        FZ_CHECK(!trk_store_in_txn(work));
    }

    ts_wbuf_free(&pl);
    ts_wbuf_free(&out);
    return 0;
}
