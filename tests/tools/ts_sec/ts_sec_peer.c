/*
 * ts_sec_peer.c -- the peer command of the ts_sec security test tool:
 * plays a downloader against a node's uploader port (TLS with a node
 * identity, pinned or not, or plaintext), sends PEER_AUTH with the
 * ticket given, then PEER_MAP or a run of PEER_GETs, pipelined as the
 * real downloader does, and prints one result line (see ts_sec.c's
 * header for its form and the exit codes).
 *
 * Locking: single-threaded.  Crash behaviour: every network wait has a
 * deadline (--timeout-ms); nothing persists.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_buf.h"
#include "ts_config.h"
#include "ts_crypto.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "ts_ticket.h"
#include "ts_tls.h"

#include "ts_sec.h"


static int
sec_send(ts_conn_t *c, uint8_t type, uint64_t reqid, ts_wbuf_t *b,
    int tmo)
{
    if (b->err) {
        return -1;
    }
    return ts_conn_send_frame(c, type, 0, reqid, b->data, (uint32_t) b->len,
                              tmo);
}


/* One reply: its status into *st (message to stderr as "what: msg"),
 * *payload (malloc'd) and *rb positioned after the head.  0, or -1 (the
 * link failed). */
static int
sec_recv(ts_conn_t *c, uint8_t want_type, uint64_t reqid, const char *what,
    ts_status_t *st, uint8_t **payload, ts_rbuf_t *rb, int tmo)
{
    ts_frame_hdr_t  h;
    char            msg[TS_STR_MAX_B + 1];

    *payload = NULL;
    if (ts_conn_recv_frame(c, &h, payload, TS_FRAME_MAX_B, tmo) != 0) {
        fprintf(stderr, "%s: no reply (%s)\n", what,
                errno == ETIMEDOUT ? "timeout" : strerror(errno));
        return -1;
    }
    if (h.type != want_type || !(h.flags & TS_FF_REPLY) || h.reqid != reqid)
    {
        fprintf(stderr, "%s: unexpected frame type %u reqid %" PRIu64 "\n",
                what, h.type, h.reqid);
        return -1;
    }
    ts_rbuf_init(rb, *payload, h.len);
    if (ts_reply_parse(rb, st, msg, sizeof(msg)) != 0) {
        fprintf(stderr, "%s: malformed reply\n", what);
        return -1;
    }
    if (*st != TS_OK) {
        fprintf(stderr, "%s: %s\n", what, msg);
    }
    return 0;
}


/* PEER_MAP (i < 0, reqid 2) or the i-th PEER_GET (chunk get_idx + i,
 * reqid 2 + i).  0 or -1. */
static int
sec_send_req(ts_conn_t *c, const sec_opts_t *o, long i, int tmo)
{
    ts_wbuf_t  b;
    int        rc;

    ts_wbuf_init(&b);
    ts_put_str(&b, o->group);
    ts_put_str(&b, o->name);
    if (i >= 0) {
        ts_put_u32(&b, (uint32_t) (o->get_idx + i));
        if (o->ranged) {
            ts_put_u32(&b, o->roff);
            ts_put_u32(&b, o->rlen);
        }
    }
    rc = sec_send(c, i >= 0 ? TS_MSG_PEER_GET : TS_MSG_PEER_MAP,
                  2 + (uint64_t) (i >= 0 ? i : 0), &b, tmo);
    if (rc != 0) {
        fprintf(stderr, "request: send failed: %s\n", strerror(errno));
    }
    ts_wbuf_free(&b);
    return rc;
}


/* what the peer command prints on its result line */
typedef struct {
    const char  *auth;          /* status names, "-" or "closed" */
    const char  *map;
    const char  *get;
    uint64_t     total;         /* chunk bytes received */
    char         sha_hex[2 * TS_SHA1_B + 1];
} sec_peer_res_t;


/* Checks the peer options; decodes --expect-fp into efp and --ticket
 * into *ticket (malloc'd, *tlen bytes; NULL if none).  0 or
 * SEC_EX_USAGE. */
static int
sec_peer_args(const sec_opts_t *o, uint8_t *efp, uint8_t **ticket,
    size_t *tlen)
{
    char      ip[64];
    uint16_t  port;

    *ticket = NULL;
    *tlen = 0;
    if (o->addr == NULL || o->group == NULL || o->name == NULL
        || (!o->plain && !o->no_cert && o->cert_dir == NULL)
        || ts_parse_hostport(o->addr, ip, sizeof(ip), &port) != 0)
    {
        sec_usage(stderr);
        return SEC_EX_USAGE;
    }
    if (o->expect_fp != NULL
        && sec_hex_arg(o->expect_fp, efp, TS_FP_B, "--expect-fp") != 0)
    {
        return SEC_EX_USAGE;
    }
    if (o->ticket_hex != NULL) {
        *tlen = strlen(o->ticket_hex) / 2;
        *ticket = malloc(*tlen + 1);
        if (*ticket == NULL || *tlen == 0 || *tlen > TS_TICKET_MAX_B
            || sec_hex_arg(o->ticket_hex, *ticket, *tlen, "--ticket") != 0)
        {
            free(*ticket);
            *ticket = NULL;
            return SEC_EX_USAGE;
        }
    }
    return 0;
}


/* The TLS context of a peer link: no certificate (--no-cert) or DIR's
 * node identity, made if missing.  NULL on failure (reported). */
static ts_tls_t *
sec_peer_tls(const sec_opts_t *o)
{
    ts_tls_t  *tls = NULL;
    char       crt[SEC_PATH_B], key[SEC_PATH_B], err[512] = "";

    if (o->no_cert) {
        tls = ts_tls_ctx_new(TS_TLS_PEER_CLIENT, NULL, NULL, NULL, err,
                             sizeof(err));
    } else if (ts_pki_ensure_node(o->cert_dir, NULL, err, sizeof(err)) == 0) {
        snprintf(crt, sizeof(crt), "%s/node.crt", o->cert_dir);
        snprintf(key, sizeof(key), "%s/node.key", o->cert_dir);
        tls = ts_tls_ctx_new(TS_TLS_PEER_CLIENT, crt, key, NULL, err,
                             sizeof(err));
    }
    if (tls == NULL) {
        fprintf(stderr, "ts_sec: %s\n", err);
    }
    return tls;
}


/* Connects to --addr and completes the handshake (TLS unless --plain,
 * pinned to efp if given), then idles --idle-ms.  0 with *cp set; 1 if
 * there is no link (reported); SEC_EX_HANDSHAKE if the handshake failed
 * (*cp set, to be freed). */
static int
sec_peer_link(const sec_opts_t *o, ts_tls_t *tls, const uint8_t *efp,
    ts_conn_t **cp)
{
    char      ip[64];
    uint16_t  port;
    int       fd;

    *cp = NULL;
    (void) ts_parse_hostport(o->addr, ip, sizeof(ip), &port);
    fd = ts_net_connect(ip, port, o->timeout_ms);
    if (fd < 0) {
        fprintf(stderr, "ts_sec: connect %s: %s\n", o->addr, strerror(errno));
        return 1;
    }
    *cp = o->plain ? ts_conn_new(fd)
                   : ts_conn_new_tls(fd, tls, 0,
                                     o->expect_fp != NULL ? efp : NULL);
    if (*cp == NULL) {
        fprintf(stderr, "ts_sec: out of memory\n");
        return 1;
    }
    if (ts_conn_handshake(*cp, o->timeout_ms) != 0) {
        fprintf(stderr, "handshake: %s (%s)\n", strerror(errno),
                ts_tls_last_error());
        return SEC_EX_HANDSHAKE;
    }
    if (o->idle_ms > 0) {
        usleep((useconds_t) o->idle_ms * 1000u);
    }
    return 0;
}


/* Sends, pipelined as the downloader does, PEER_AUTH (if a ticket is
 * given) then the PEER_MAP or the first GETs (at most SEC_WINDOW_N in
 * flight); *sent: the GETs sent.  0, or -1 with res saying which send
 * failed. */
static int
sec_peer_send_all(ts_conn_t *c, const sec_opts_t *o, const uint8_t *ticket,
    size_t tlen, long *sent, sec_peer_res_t *res)
{
    ts_wbuf_t  b;
    int        rc;

    if (ticket != NULL) {
        ts_wbuf_init(&b);
        ts_put_blob(&b, ticket, (uint32_t) tlen);
        rc = sec_send(c, TS_MSG_PEER_AUTH, 1, &b, o->timeout_ms);
        ts_wbuf_free(&b);
        if (rc != 0) {
            fprintf(stderr, "auth: send failed: %s\n", strerror(errno));
            res->auth = "closed";
            return -1;
        }
    }
    if (o->get_idx < 0) {
        if (sec_send_req(c, o, -1, o->timeout_ms) != 0) {
            res->map = "closed";
            return -1;
        }
        return 0;
    }
    for (*sent = 0; *sent < o->count && *sent < SEC_WINDOW_N; (*sent)++) {
        if (sec_send_req(c, o, *sent, o->timeout_ms) != 0) {
            res->get = "closed";
            return -1;
        }
    }
    return 0;
}


/* Reads the PEER_MAP reply and checks its body.  0 or -1. */
static int
sec_peer_read_map(ts_conn_t *c, const sec_opts_t *o, sec_peer_res_t *res)
{
    ts_rbuf_t       rb;
    ts_status_t     st;
    uint8_t        *payload = NULL;
    const uint8_t  *data;
    uint32_t        len = 0, n;
    int             rc = 0;

    if (sec_recv(c, TS_MSG_REPLY, 2, "map", &st, &payload, &rb,
                 o->timeout_ms) != 0)
    {
        res->map = "closed";
        free(payload);
        return -1;
    }
    res->map = ts_status_name(st);
    if (st == TS_OK) {
        (void) ts_get_u32(&rb);                 /* load */
        n = ts_get_u32(&rb);                    /* nchunks */
        data = ts_get_blob(&rb, &len, (n + 7) / 8);
        if (data == NULL || ts_rbuf_end(&rb) != 0) {
            fprintf(stderr, "map: malformed body\n");
            res->map = "malformed";
            rc = -1;
        } else {
            fprintf(stderr, "map: %u chunks\n", n);
        }
    }
    free(payload);
    return rc;
}


/* One PEER_DATA reply (for GET number got): checks it names the chunk
 * asked for and adds an OK chunk to h and res->total.  0 or -1. */
static int
sec_peer_read_chunk(ts_conn_t *c, const sec_opts_t *o, long got,
    ts_sha1_t *h, int *get_bad, sec_peer_res_t *res)
{
    ts_rbuf_t     rb;
    ts_status_t   st;
    uint8_t      *payload = NULL;
    uint32_t      len;
    int           rc = -1;

    if (sec_recv(c, TS_MSG_PEER_DATA, 2 + (uint64_t) got, "get", &st,
                 &payload, &rb, o->timeout_ms) != 0)
    {
        res->get = "closed";
        goto out;
    }
    if (!*get_bad) {
        res->get = ts_status_name(st);
        *get_bad = st != TS_OK;
    }
    (void) ts_get_u32(&rb);                     /* load */
    if (ts_get_u32(&rb) != (uint32_t) (o->get_idx + got)) {
        fprintf(stderr, "get: reply for another chunk\n");
        res->get = "malformed";
        goto out;
    }
    if (st == TS_OK) {
        len = ts_get_u32(&rb);
        if (rb.err || ts_rbuf_left(&rb) != len
            || ts_sha1_update(h, rb.p + rb.off, len) != 0)
        {
            fprintf(stderr, "get: malformed body\n");
            res->get = "malformed";
            goto out;
        }
        res->total += len;
    }
    rc = 0;
out:
    free(payload);
    return rc;
}


/* Reads the --count chunk replies, sending a further GET after each
 * while some are left (the window stays full); res->sha_hex: the SHA1
 * over the chunks received.  0 or -1. */
static int
sec_peer_read_gets(ts_conn_t *c, const sec_opts_t *o, long sent,
    sec_peer_res_t *res)
{
    ts_sha1_t  *h;
    uint8_t     sha[TS_SHA1_B];
    long        got;
    int         get_bad = 0, rc = -1;

    h = ts_sha1_new();
    if (h == NULL) {
        fprintf(stderr, "ts_sec: out of memory\n");
        return -1;
    }
    for (got = 0; got < o->count; got++) {
        if (sec_peer_read_chunk(c, o, got, h, &get_bad, res) != 0) {
            goto out;
        }
        if (sent < o->count) {
            if (sec_send_req(c, o, sent, o->timeout_ms) != 0) {
                res->get = "closed";
                goto out;
            }
            sent++;
        }
    }
    if (res->total > 0 && ts_sha1_final(h, sha) == 0) {
        ts_hex(sha, sizeof(sha), res->sha_hex);
    }
    rc = 0;
out:
    ts_sha1_free(h);
    return rc;
}


int
sec_peer(const sec_opts_t *o)
{
    sec_peer_res_t  res = { "-", "-", "-", 0, "-" };
    ts_tls_t       *tls = NULL;
    ts_conn_t      *c = NULL;
    ts_rbuf_t       rb;
    ts_status_t     st;
    uint8_t         efp[TS_FP_B], *ticket = NULL, *payload = NULL;
    size_t          tlen;
    long            sent = 0;
    int             rc;

    rc = sec_peer_args(o, efp, &ticket, &tlen);
    if (rc != 0) {
        return rc;
    }
    if (!o->plain) {
        tls = sec_peer_tls(o);
        if (tls == NULL) {
            free(ticket);
            return 1;
        }
    }
    rc = sec_peer_link(o, tls, efp, &c);
    if (rc == 1) {
        goto out;                       /* no link: no result line */
    }
    if (rc != 0) {
        goto done;
    }
    rc = 1;
    if (sec_peer_send_all(c, o, ticket, tlen, &sent, &res) != 0) {
        goto done;
    }
    if (ticket != NULL) {
        if (sec_recv(c, TS_MSG_REPLY, 1, "auth", &st, &payload, &rb,
                     o->timeout_ms) != 0)
        {
            res.auth = "closed";
            free(payload);
            goto done;
        }
        res.auth = ts_status_name(st);
        free(payload);
    }
    if (o->get_idx < 0 ? sec_peer_read_map(c, o, &res) == 0
                       : sec_peer_read_gets(c, o, sent, &res) == 0)
    {
        rc = 0;
    }

done:
    printf("auth=%s map=%s get=%s bytes=%llu sha1=%s\n", res.auth, res.map,
           res.get, (unsigned long long) res.total, res.sha_hex);
out:
    free(ticket);
    ts_conn_free(c);
    ts_tls_ctx_free(tls);
    return rc;
}
