/*
 * test_tls.c -- unit tests for ts_tls (PKI files, the four link roles and
 * their identity checks, TLS through the frame and sendfile paths) and
 * ts_ticket (sign, parse, verify; forged, expired, other identity,
 * tampered, wrong issuer), over real loopback sockets.
 *
 * Locking: the server end of each link runs in a thread of its own with
 * its own ts_conn_t; tls contexts are shared read-only.
 * Crash behaviour: files live in a mkdtemp directory removed at the end;
 * every wait is bounded by a deadline.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "ts_crypto.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "ts_ticket.h"
#include "ts_tls.h"

static char dir[200], dir2[256], nodea[256], nodeb[256];
static int  t_cli_tracker;      /* the client's ts_conn_peer_tracker */
static char path_buf[8][512];
static int  path_i;

static const char *
P(const char *d, const char *f)
{
    char *p = path_buf[path_i++ % 8];

    snprintf(p, 512, "%s/%s", d, f);
    return p;
}

static int
setup(void **state)
{
    char err[256];

    (void) state;
    snprintf(dir, sizeof(dir), "/tmp/tsr-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(dir2, sizeof(dir2), "%s/other", dir);
    snprintf(nodea, sizeof(nodea), "%s/nodea", dir);
    snprintf(nodeb, sizeof(nodeb), "%s/nodeb", dir);
    assert_int_equal(ts_pki_ensure_ca(dir, err, sizeof(err)), 0);
    assert_int_equal(ts_pki_ensure_tracker(dir, 1, "127.0.0.1", err,
                                           sizeof(err)), 0);
    assert_int_equal(ts_pki_ensure_tracker(dir, 2, "127.0.0.1", err,
                                           sizeof(err)), 0);
    /* a second, unrelated CA with its own "tracker 2" */
    assert_int_equal(ts_pki_ensure_ca(dir2, err, sizeof(err)), 0);
    assert_int_equal(ts_pki_ensure_tracker(dir2, 2, "127.0.0.1", err,
                                           sizeof(err)), 0);
    assert_int_equal(ts_pki_ensure_node(nodea, NULL, err, sizeof(err)), 0);
    assert_int_equal(ts_pki_ensure_node(nodeb, NULL, err, sizeof(err)), 0);
    return 0;
}

static int
teardown(void **state)
{
    char cmd[PATH_MAX + 16];

    (void) state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* ---- a loopback pair with the server end in a thread ----------------- */

typedef struct {
    int        fd;
    ts_tls_t  *t;
    int        hs_rc, hs_errno;
    int        peer_tracker;
    int        has_fp;
    uint8_t    fp[TS_FP_B];
    int        echo;            /* echo one frame back */
} srv_t;

static void *
srv_run(void *arg)
{
    srv_t          *s = arg;
    ts_conn_t      *c = ts_conn_new_tls(s->fd, s->t, 0, NULL);
    ts_frame_hdr_t  h;
    uint8_t        *p = NULL;

    s->hs_rc = ts_conn_handshake(c, 3000);
    s->hs_errno = errno;
    if (s->hs_rc == 0) {
        s->peer_tracker = ts_conn_peer_tracker(c);
        s->has_fp = ts_conn_peer_fp(c, s->fp) == 0;
        if (s->echo && ts_conn_recv_frame(c, &h, &p, TS_FRAME_MAX_B, 3000)
                       == 0)
        {
            ts_conn_send_frame(c, h.type, TS_FF_REPLY, h.reqid, p, h.len,
                               3000);
            free(p);
        }
    }
    ts_conn_free(c);
    return NULL;
}

static void
pair(int *cfd, int *sfd)
{
    struct sockaddr_in sa;
    socklen_t          sl = sizeof(sa);
    int                lfd;
    struct pollfd      pfd;

    lfd = ts_net_listen("127.0.0.1", 0, 4);
    assert_true(lfd >= 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *) &sa, &sl), 0);
    *cfd = ts_net_connect("127.0.0.1", ntohs(sa.sin_port), 2000);
    assert_true(*cfd >= 0);
    pfd.fd = lfd;
    pfd.events = POLLIN;
    assert_int_equal(poll(&pfd, 1, 2000), 1);
    *sfd = accept(lfd, NULL, NULL);
    assert_true(*sfd >= 0);
    close(lfd);
}

/* connects client ctx ct to a server of ctx st; returns the client's
 * handshake rc, fills *s with the server's view */
static int
link_once(ts_tls_t *ct, int expect_tracker, const uint8_t *expect_fp,
          ts_tls_t *st, srv_t *s, int *cli_errno)
{
    pthread_t   th;
    int         cfd, sfd, rc;
    ts_conn_t  *c;
    ts_frame_hdr_t h;
    uint8_t    *p = NULL;

    pair(&cfd, &sfd);
    memset(s, 0, sizeof(*s));
    s->fd = sfd;
    s->t = st;
    s->echo = 1;
    assert_int_equal(pthread_create(&th, NULL, srv_run, s), 0);
    c = ts_conn_new_tls(cfd, ct, expect_tracker, expect_fp);
    assert_non_null(c);
    rc = ts_conn_handshake(c, 3000);
    *cli_errno = errno;
    t_cli_tracker = ts_conn_peer_tracker(c);
    if (rc == 0) {
        /* a round trip proves data flows both ways */
        if (ts_conn_send_frame(c, TS_MSG_STATUS, 0, 7, "ping", 4, 3000) != 0
            || ts_conn_recv_frame(c, &h, &p, 64, 3000) != 0)
        {
            rc = -2;
            *cli_errno = errno;
        } else {
            assert_int_equal(h.len, 4);
            assert_memory_equal(p, "ping", 4);
            free(p);
        }
    }
    ts_conn_free(c);
    pthread_join(th, NULL);
    return rc;
}

static ts_tls_t *
ctx(ts_tls_role_t role, const char *crt, const char *key, const char *ca)
{
    char      err[256];
    ts_tls_t *t = ts_tls_ctx_new(role, crt, key, ca, err, sizeof(err));

    if (t == NULL) {
        fail_msg("ctx: %s", err);
    }
    return t;
}

/* ---- tests ----------------------------------------------------------- */

static void
test_pki_idempotent(void **state)
{
    uint8_t     a[TS_FP_B], b[TS_FP_B];
    char        err[256];
    struct stat st;

    (void) state;
    assert_int_equal(ts_pki_ensure_node(nodea, a, err, sizeof(err)), 0);
    assert_int_equal(ts_pki_ensure_node(nodea, b, err, sizeof(err)), 0);
    assert_memory_equal(a, b, TS_FP_B);
    assert_int_equal(ts_pki_cert_fp(P(nodea, "node.crt"), b), 0);
    assert_memory_equal(a, b, TS_FP_B);
    assert_int_equal(ts_pki_cert_fp(P(nodeb, "node.crt"), b), 0);
    assert_memory_not_equal(a, b, TS_FP_B);
    /* keys are private */
    assert_int_equal(stat(P(nodea, "node.key"), &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    assert_int_equal(stat(P(dir, "ca.key"), &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    /* a second ensure keeps the CA */
    assert_int_equal(ts_pki_cert_fp(P(dir, "ca.crt"), a), 0);
    assert_int_equal(ts_pki_ensure_ca(dir, err, sizeof(err)), 0);
    assert_int_equal(ts_pki_cert_fp(P(dir, "ca.crt"), b), 0);
    assert_memory_equal(a, b, TS_FP_B);
    /* a tracker certificate cannot be issued without the CA key */
    {
        char d3[PATH_MAX], cmd[2 * PATH_MAX + 32];

        snprintf(d3, sizeof(d3), "%s/nokey", dir);
        assert_int_equal(mkdir(d3, 0700), 0);
        snprintf(cmd, sizeof(cmd), "cp '%s/ca.crt' '%s/'", dir, d3);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(ts_pki_ensure_tracker(d3, 3, "127.0.0.1", err,
                                               sizeof(err)), -1);
        assert_non_null(strstr(err, "ca.key"));
    }
}

/* Private keys others can read are refused, as ssh does; a temp file
 * planted where a new key is written (a symlink to a file of the
 * attacker's) is never written through. */
static void
test_pki_key_modes(void **state)
{
    char        err[512], d[256], tmp[512], bait[512];
    ts_tls_t   *t;
    struct stat st;
    int         fd;

    (void) state;
    assert_int_equal(chmod(P(nodea, "node.key"), 0644), 0);
    assert_int_equal(ts_pki_ensure_node(nodea, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "chmod 600"));
    t = ts_tls_ctx_new(TS_TLS_PEER_SERVER, P(nodea, "node.crt"),
                       P(nodea, "node.key"), NULL, err, sizeof(err));
    assert_null(t);
    assert_non_null(strstr(err, "chmod 600"));
    assert_int_equal(chmod(P(nodea, "node.key"), 0600), 0);
    assert_int_equal(ts_pki_ensure_node(nodea, NULL, err, sizeof(err)), 0);
    t = ts_tls_ctx_new(TS_TLS_PEER_SERVER, P(nodea, "node.crt"),
                       P(nodea, "node.key"), NULL, err, sizeof(err));
    assert_non_null(t);
    ts_tls_ctx_free(t);
    /* the CA key too, when a tracker certificate must be issued */
    assert_int_equal(chmod(P(dir, "ca.key"), 0640), 0);
    assert_int_equal(ts_pki_ensure_tracker(dir, 7, "127.0.0.1", err,
                                           sizeof(err)), -1);
    assert_non_null(strstr(err, "chmod 600"));
    assert_int_equal(chmod(P(dir, "ca.key"), 0600), 0);

    /* a planted temp file (this process writes <key>.tmp.<pid>) */
    snprintf(d, sizeof(d), "%s/nodec", dir);
    assert_int_equal(mkdir(d, 0700), 0);
    snprintf(bait, sizeof(bait), "%s/bait", dir);
    fd = open(bait, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    assert_true(fd >= 0);
    close(fd);
    snprintf(tmp, sizeof(tmp), "%s/node.key.tmp.%ld", d, (long) getpid());
    assert_int_equal(symlink(bait, tmp), 0);
    assert_int_equal(ts_pki_ensure_node(d, NULL, err, sizeof(err)), 0);
    assert_int_equal(stat(bait, &st), 0);
    assert_int_equal(st.st_size, 0);            /* nothing written there */
    assert_int_equal(lstat(P(d, "node.key"), &st), 0);
    assert_true(S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
}

static void
test_client_to_tracker(void **state)
{
    ts_tls_t *st, *ct;
    srv_t     s;
    uint8_t   fp[TS_FP_B];
    int       e;

    (void) state;
    st = ctx(TS_TLS_TRACKER_SERVER, P(dir, "tracker-1.crt"),
             P(dir, "tracker-1.key"), P(dir, "ca.crt"));
    ct = ctx(TS_TLS_TRACKER_CLIENT, P(nodea, "node.crt"),
             P(nodea, "node.key"), P(dir, "ca.crt"));
    assert_int_equal(link_once(ct, 1, NULL, st, &s, &e), 0);
    assert_int_equal(s.hs_rc, 0);
    assert_int_equal(s.peer_tracker, 0);        /* a node, not a tracker */
    assert_true(s.has_fp);
    assert_int_equal(ts_pki_cert_fp(P(nodea, "node.crt"), fp), 0);
    assert_memory_equal(s.fp, fp, TS_FP_B);

    /* dialling "tracker 2" but reaching tracker 1: refused */
    assert_int_equal(link_once(ct, 2, NULL, st, &s, &e), -1);
    assert_int_equal(e, EPERM);
    ts_tls_ctx_free(ct);

    /* a client that trusts another CA refuses our tracker */
    ct = ctx(TS_TLS_TRACKER_CLIENT, NULL, NULL, P(dir2, "ca.crt"));
    assert_int_equal(link_once(ct, 1, NULL, st, &s, &e), -1);
    assert_int_equal(e, EPERM);
    ts_tls_ctx_free(ct);

    /* no client certificate at all is fine for a tracker (STATUS) */
    ct = ctx(TS_TLS_TRACKER_CLIENT, NULL, NULL, P(dir, "ca.crt"));
    assert_int_equal(link_once(ct, 1, NULL, st, &s, &e), 0);
    assert_false(s.has_fp);
    ts_tls_ctx_free(ct);
    ts_tls_ctx_free(st);
}

static void
test_tracker_to_tracker(void **state)
{
    ts_tls_t *st, *ct;
    srv_t     s;
    int       e;

    (void) state;
    st = ctx(TS_TLS_TRACKER_SERVER, P(dir, "tracker-1.crt"),
             P(dir, "tracker-1.key"), P(dir, "ca.crt"));
    ct = ctx(TS_TLS_TRACKER_CLIENT, P(dir, "tracker-2.crt"),
             P(dir, "tracker-2.key"), P(dir, "ca.crt"));
    assert_int_equal(link_once(ct, 1, NULL, st, &s, &e), 0);
    assert_int_equal(s.peer_tracker, 2);
    ts_tls_ctx_free(ct);
    /* "tracker 2" from another CA: a link, but not a tracker */
    ct = ctx(TS_TLS_TRACKER_CLIENT, P(dir2, "tracker-2.crt"),
             P(dir2, "tracker-2.key"), P(dir, "ca.crt"));
    assert_int_equal(link_once(ct, 1, NULL, st, &s, &e), 0);
    assert_int_equal(s.peer_tracker, 0);
    ts_tls_ctx_free(ct);
    ts_tls_ctx_free(st);
}

static void
test_peer_pinning(void **state)
{
    ts_tls_t *st, *ct;
    srv_t     s;
    uint8_t   fa[TS_FP_B], fb[TS_FP_B], bad[TS_FP_B];
    int       e;

    (void) state;
    assert_int_equal(ts_pki_cert_fp(P(nodea, "node.crt"), fa), 0);
    assert_int_equal(ts_pki_cert_fp(P(nodeb, "node.crt"), fb), 0);
    st = ctx(TS_TLS_PEER_SERVER, P(nodea, "node.crt"), P(nodea, "node.key"),
             NULL);
    ct = ctx(TS_TLS_PEER_CLIENT, P(nodeb, "node.crt"), P(nodeb, "node.key"),
             NULL);
    assert_int_equal(link_once(ct, 0, fa, st, &s, &e), 0);
    assert_true(s.has_fp);
    assert_memory_equal(s.fp, fb, TS_FP_B);
    /* the server is not who the tracker said */
    memcpy(bad, fa, TS_FP_B);
    bad[5] ^= 1;
    assert_int_equal(link_once(ct, 0, bad, st, &s, &e), -1);
    assert_int_equal(e, EPERM);
    assert_non_null(strstr(ts_tls_last_error(), "fingerprint"));
    ts_tls_ctx_free(ct);
    /* a downloader without a certificate is refused by the uploader */
    ct = ctx(TS_TLS_PEER_CLIENT, NULL, NULL, NULL);
    link_once(ct, 0, fa, st, &s, &e);
    assert_int_equal(s.hs_rc, -1);
    ts_tls_ctx_free(ct);
    ts_tls_ctx_free(st);
}

static void
test_plaintext_to_tls(void **state)
{
    ts_tls_t      *st;
    srv_t          s;
    pthread_t      th;
    int            cfd, sfd;
    uint8_t        hdr[TS_FRAME_HDR_B];
    ts_frame_hdr_t h = { TS_MSG_STATUS, 0, 0, 1 };

    (void) state;
    st = ctx(TS_TLS_TRACKER_SERVER, P(dir, "tracker-1.crt"),
             P(dir, "tracker-1.key"), P(dir, "ca.crt"));
    pair(&cfd, &sfd);
    memset(&s, 0, sizeof(s));
    s.fd = sfd;
    s.t = st;
    assert_int_equal(pthread_create(&th, NULL, srv_run, &s), 0);
    ts_frame_hdr_encode(hdr, &h);
    assert_int_equal(write(cfd, hdr, sizeof(hdr)), (ssize_t) sizeof(hdr));
    pthread_join(th, NULL);
    assert_int_equal(s.hs_rc, -1);
    assert_true(s.hs_errno == EPROTO || s.hs_errno == ECONNRESET);
    close(cfd);
    ts_tls_ctx_free(st);
}

typedef struct {
    int       fd;
    ts_tls_t *t;
    size_t    n;
    uint8_t  *got;
    int       rc;
} sink_t;

static void *
sink_run(void *arg)
{
    sink_t    *k = arg;
    ts_conn_t *c = ts_conn_new_tls(k->fd, k->t, 0, NULL);

    k->rc = ts_conn_handshake(c, 3000) == 0
            && ts_conn_read_full(c, k->got, k->n, 10000) == 0 ? 0 : -1;
    ts_conn_free(c);
    return NULL;
}

/* The file is sent in grants of varying size (as the upload cap hands
 * them out) into a small socket buffer, so batches of records stop half
 * sent; a frame written between two chunks must arrive between them. */
static void
test_sendfile_over_tls(void **state)
{
    static const char mark[] = "--between two chunks--";
    ts_tls_t     *st, *ct;
    sink_t        k;
    pthread_t     th;
    int           cfd, sfd, ffd, small = 32 * 1024;
    size_t        n = 3u * 1024 * 1024 + 12345, half = n / 2 + 777, grant;
    size_t        ml = sizeof(mark) - 1, put = 0;
    uint8_t      *data = malloc(n);
    off_t         off = 0;
    ssize_t       w;
    ts_conn_t    *c;
    struct pollfd pfd;

    (void) state;
    assert_non_null(data);
    assert_int_equal(ts_random(data, n), 0);
    ffd = open(P(dir, "blob"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(ffd >= 0);
    assert_int_equal(write(ffd, data, n), (ssize_t) n);
    st = ctx(TS_TLS_PEER_SERVER, P(nodea, "node.crt"), P(nodea, "node.key"),
             NULL);
    ct = ctx(TS_TLS_PEER_CLIENT, P(nodeb, "node.crt"), P(nodeb, "node.key"),
             NULL);
    pair(&cfd, &sfd);
    assert_int_equal(setsockopt(cfd, SOL_SOCKET, SO_SNDBUF, &small,
                                sizeof(small)), 0);
    k.fd = sfd;
    k.t = st;
    k.n = n + ml;
    k.got = malloc(k.n);
    assert_non_null(k.got);
    assert_int_equal(pthread_create(&th, NULL, sink_run, &k), 0);
    c = ts_conn_new_tls(cfd, ct, 0, NULL);
    assert_int_equal(ts_conn_handshake(c, 3000), 0);
    assert_int_equal(ts_net_set_nonblock(cfd, 1), 0);
    while ((size_t) off < n || put < ml) {
        if ((size_t) off == half && put < ml) {
            w = ts_conn_write(c, mark + put, ml - put);
            put += w > 0 ? (size_t) w : 0;
        } else {
            grant = 1000 + (size_t) off % 70001;
            if (grant > ((size_t) off < half ? half : n) - (size_t) off) {
                grant = ((size_t) off < half ? half : n) - (size_t) off;
            }
            w = ts_conn_sendfile(c, ffd, &off, grant);
            assert_true(w <= (ssize_t) grant);
        }
        if (w > 0) {
            continue;
        }
        assert_int_equal(w, -1);
        assert_int_equal(errno, EAGAIN);
        pfd.fd = cfd;
        pfd.events = ts_conn_want(c) == 2 ? POLLOUT : POLLIN;
        assert_true(poll(&pfd, 1, 5000) == 1);
    }
    pthread_join(th, NULL);
    assert_int_equal(k.rc, 0);
    assert_memory_equal(k.got, data, half);
    assert_memory_equal(k.got + half, mark, ml);
    assert_memory_equal(k.got + half + ml, data + half, n - half);
    ts_conn_free(c);
    close(ffd);
    free(k.got);
    free(data);
    ts_tls_ctx_free(ct);
    ts_tls_ctx_free(st);
}

static void
test_tickets(void **state)
{
    ts_ticket_signer_t   *s1, *s2x, *sbad;
    ts_ticket_verifier_t *v;
    ts_ticket_t           t, out;
    ts_wbuf_t             b;
    char                  err[256];
    int64_t               now = ts_wall_ms();
    uint8_t               fa[TS_FP_B], fb[TS_FP_B];
    size_t                i;

    (void) state;
    assert_int_equal(ts_pki_cert_fp(P(nodea, "node.crt"), fa), 0);
    assert_int_equal(ts_pki_cert_fp(P(nodeb, "node.crt"), fb), 0);
    s1 = ts_ticket_signer_new(1, P(dir, "tracker-1.crt"),
                              P(dir, "tracker-1.key"), err, sizeof(err));
    assert_non_null(s1);
    /* tracker 1's key claiming to be tracker 2 */
    s2x = ts_ticket_signer_new(2, P(dir, "tracker-1.crt"),
                               P(dir, "tracker-1.key"), err, sizeof(err));
    assert_non_null(s2x);
    /* a tracker of another CA */
    sbad = ts_ticket_signer_new(2, P(dir2, "tracker-2.crt"),
                                P(dir2, "tracker-2.key"), err, sizeof(err));
    assert_non_null(sbad);
    v = ts_ticket_verifier_new(P(dir, "ca.crt"), err, sizeof(err));
    assert_non_null(v);

    memset(&t, 0, sizeof(t));
    snprintf(t.group, sizeof(t.group), "g1");
    snprintf(t.name, sizeof(t.name), "a file.bin");
    memcpy(t.fp, fa, TS_FP_B);
    t.issued_ms = (uint64_t) now;
    t.expires_ms = (uint64_t) now + 60000;
    ts_wbuf_init(&b);
    assert_int_equal(ts_ticket_sign(s1, &t, &b), 0);
    assert_true(b.len <= TS_TICKET_MAX_B);
    /* good, twice (the second from the cache) */
    for (i = 0; i < 2; i++) {
        if (ts_ticket_verify(v, b.data, b.len, now, fa, &out, err,
                             sizeof(err)) != 0)
        {
            fail_msg("verify: %s", err);
        }
        assert_string_equal(out.name, "a file.bin");
        assert_int_equal(out.issuer, 1);
    }
    /* another identity presenting it */
    assert_int_equal(ts_ticket_verify(v, b.data, b.len, now, fb, &out, err,
                                      sizeof(err)), -1);
    assert_non_null(strstr(err, "another identity"));
    /* expired */
    assert_int_equal(ts_ticket_verify(v, b.data, b.len, now + 60000, fa,
                                      &out, err, sizeof(err)), -1);
    assert_string_equal(err, "expired");
    /* every single-byte change is refused */
    for (i = 0; i < b.len; i += 7) {
        b.data[i] ^= 0x20;
        assert_int_equal(ts_ticket_verify(v, b.data, b.len, now, fa, &out,
                                          err, sizeof(err)), -1);
        b.data[i] ^= 0x20;
    }
    /* truncated */
    assert_int_equal(ts_ticket_verify(v, b.data, b.len - 1, now, fa, &out,
                                      err, sizeof(err)), -1);
    /* wrong issuer id for the certificate */
    ts_wbuf_reset(&b);
    assert_int_equal(ts_ticket_sign(s2x, &t, &b), 0);
    assert_int_equal(ts_ticket_verify(v, b.data, b.len, now, fa, &out, err,
                                      sizeof(err)), -1);
    assert_non_null(strstr(err, "forged"));
    /* signed by a key the cluster CA never certified */
    ts_wbuf_reset(&b);
    assert_int_equal(ts_ticket_sign(sbad, &t, &b), 0);
    assert_int_equal(ts_ticket_verify(v, b.data, b.len, now, fa, &out, err,
                                      sizeof(err)), -1);
    assert_non_null(strstr(err, "forged"));
    /* a bad name never parses */
    snprintf(t.name, sizeof(t.name), "../etc");
    ts_wbuf_reset(&b);
    assert_int_equal(ts_ticket_sign(s1, &t, &b), 0);
    assert_int_equal(ts_ticket_parse(b.data, b.len, &out, NULL, NULL, NULL,
                                     NULL, NULL), -1);
    ts_wbuf_free(&b);
    ts_ticket_verifier_free(v);
    ts_ticket_signer_free(s1);
    ts_ticket_signer_free(s2x);
    ts_ticket_signer_free(sbad);
}

/* ---- trust: any tracker of the CA, by its certificate ----------------- */

/* A certificate of the CA in dir (CN cn, extensions ext, one per line)
 * as <dir>/<name>.crt/.key, made with the openssl tool: the shapes a
 * CA key holder could sign that ts_pki never issues. */
static void
mk_cert(const char *name, const char *cn, const char *ext)
{
    char  cmd[4 * PATH_MAX];
    FILE *f;

    f = fopen(P(dir, "x.ext"), "w");
    assert_non_null(f);
    fputs(ext, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && openssl req -new -newkey ed25519 -nodes -keyout "
             "%s.key -out x.csr -subj '/O=Tessera/CN=%s' >/dev/null 2>&1 && "
             "openssl x509 -req -in x.csr -CA ca.crt -CAkey ca.key "
             "-set_serial 77 -days 2 -extfile x.ext -out %s.crt "
             ">/dev/null 2>&1 && chmod 600 %s.key", dir, name, cn, name,
             name);
    assert_int_equal(system(cmd), 0);
}

#define EXT_LEAF "basicConstraints=critical,CA:FALSE\n" \
                 "keyUsage=critical,digitalSignature\n"

/* ts_pki_tracker_cert_id: the chain to the CA, then the tracker role */
static void
test_tracker_role(void **state)
{
    static const struct {
        const char *name, *cn, *ext, *why;
    } bad[] = {
        { "rolenode", "tessera-node", EXT_LEAF
          "extendedKeyUsage=serverAuth,clientAuth\n"
          "subjectAltName=DNS:tessera-node\n", "without the tracker role" },
        { "badsan", "tessera-tracker-3", EXT_LEAF
          "extendedKeyUsage=serverAuth,clientAuth\n"
          "subjectAltName=DNS:tessera-tracker-4\n", "subjectAltName" },
        { "subca", "tessera-tracker-6", "basicConstraints=critical,CA:TRUE\n"
          "keyUsage=critical,keyCertSign,digitalSignature\n"
          "subjectAltName=DNS:tessera-tracker-6\n", "a CA certificate" },
        { "cliuse", "tessera-tracker-5", EXT_LEAF
          "extendedKeyUsage=clientAuth\n"
          "subjectAltName=DNS:tessera-tracker-5\n", "server" },
    };
    char   why[256], crt[PATH_MAX];
    size_t i;

    (void) state;
    assert_int_equal(ts_pki_tracker_cert_id(P(dir, "tracker-1.crt"),
                                            P(dir, "ca.crt"), why,
                                            sizeof(why)), 1);
    assert_int_equal(ts_pki_tracker_cert_id(P(dir, "tracker-2.crt"),
                                            P(dir, "ca.crt"), why,
                                            sizeof(why)), 2);
    /* another cluster's tracker 2, a node's self-signed certificate, the
     * CA itself */
    assert_int_equal(ts_pki_tracker_cert_id(P(dir2, "tracker-2.crt"),
                                            P(dir, "ca.crt"), why,
                                            sizeof(why)), 0);
    assert_non_null(strstr(why, "not issued by this cluster's CA"));
    assert_int_equal(ts_pki_tracker_cert_id(P(nodea, "node.crt"),
                                            P(dir, "ca.crt"), why,
                                            sizeof(why)), 0);
    assert_non_null(strstr(why, "self-signed"));
    assert_int_equal(ts_pki_tracker_cert_id(P(dir, "ca.crt"),
                                            P(dir, "ca.crt"), why,
                                            sizeof(why)), 0);
    assert_non_null(strstr(why, "a CA certificate"));
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mk_cert(bad[i].name, bad[i].cn, bad[i].ext);
        snprintf(crt, sizeof(crt), "%s/%s.crt", dir, bad[i].name);
        why[0] = '\0';
        assert_int_equal(ts_pki_tracker_cert_id(crt, P(dir, "ca.crt"), why,
                                                sizeof(why)), 0);
        if (strstr(why, bad[i].why) == NULL) {
            fail_msg("%s: %s", bad[i].name, why);
        }
    }
}

/* client -> "tracker" handshakes with expect_tracker 0 (any tracker);
 * the odd certificates are the ones test_tracker_role made */
static void
test_client_any_tracker(void **state)
{
    static const struct {
        const char *d, *crt, *key, *why;
    } bad[] = {
        { NULL, "rolenode.crt", "rolenode.key", "without the tracker role" },
        { NULL, "subca.crt", "subca.key", "a CA certificate" },
        { NULL, "badsan.crt", "badsan.key", "subjectAltName" },
        { NULL, "cliuse.crt", "cliuse.key", "rejected" },
        { "b", "node.crt", "node.key", "self-signed" },
        { "2", "tracker-2.crt", "tracker-2.key", "not issued by this" },
    };
    ts_tls_t   *st, *ct;
    srv_t       s;
    size_t      i;
    const char *d;
    int         e;

    (void) state;
    ct = ctx(TS_TLS_TRACKER_CLIENT, P(nodea, "node.crt"),
             P(nodea, "node.key"), P(dir, "ca.crt"));
    st = ctx(TS_TLS_TRACKER_SERVER, P(dir, "tracker-2.crt"),
             P(dir, "tracker-2.key"), P(dir, "ca.crt"));
    assert_int_equal(link_once(ct, 0, NULL, st, &s, &e), 0);
    assert_int_equal(t_cli_tracker, 2);         /* learnt, not dialled */
    /* a link that dialled tracker 1 and reached tracker 2 is refused */
    assert_int_equal(link_once(ct, 1, NULL, st, &s, &e), -1);
    assert_int_equal(e, EPERM);
    assert_non_null(strstr(ts_tls_last_error(),
                           "it is tracker 2, not tracker 1"));
    ts_tls_ctx_free(st);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        d = bad[i].d == NULL ? dir : bad[i].d[0] == 'b' ? nodeb : dir2;
        st = ctx(TS_TLS_TRACKER_SERVER, P(d, bad[i].crt), P(d, bad[i].key),
                 P(dir, "ca.crt"));
        assert_int_equal(link_once(ct, 0, NULL, st, &s, &e), -1);
        assert_int_equal(e, EPERM);
        assert_int_equal(t_cli_tracker, 0);
        if (strstr(ts_tls_last_error(), bad[i].why) == NULL) {
            fail_msg("%s: %s", bad[i].crt, ts_tls_last_error());
        }
        ts_tls_ctx_free(st);
    }
    ts_tls_ctx_free(ct);
    /* server side: a dialling tracker is known by its role for client
     * use (cliuse is a tracker 5 certificate for client use only) */
    st = ctx(TS_TLS_TRACKER_SERVER, P(dir, "tracker-1.crt"),
             P(dir, "tracker-1.key"), P(dir, "ca.crt"));
    ct = ctx(TS_TLS_TRACKER_CLIENT, P(dir, "cliuse.crt"),
             P(dir, "cliuse.key"), P(dir, "ca.crt"));
    assert_int_equal(link_once(ct, 1, NULL, st, &s, &e), 0);
    assert_int_equal(s.peer_tracker, 5);
    ts_tls_ctx_free(ct);
    ct = ctx(TS_TLS_TRACKER_CLIENT, P(dir, "rolenode.crt"),
             P(dir, "rolenode.key"), P(dir, "ca.crt"));
    assert_int_equal(link_once(ct, 1, NULL, st, &s, &e), 0);
    assert_int_equal(s.peer_tracker, 0);        /* a link, not a tracker */
    ts_tls_ctx_free(ct);
    ts_tls_ctx_free(st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pki_idempotent),
        cmocka_unit_test(test_pki_key_modes),
        cmocka_unit_test(test_client_to_tracker),
        cmocka_unit_test(test_tracker_to_tracker),
        cmocka_unit_test(test_peer_pinning),
        cmocka_unit_test(test_plaintext_to_tls),
        cmocka_unit_test(test_sendfile_over_tls),
        cmocka_unit_test(test_tickets),
        cmocka_unit_test(test_tracker_role),
        cmocka_unit_test(test_client_any_tracker),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
