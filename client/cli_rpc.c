/*
 * cli_rpc.c -- tracker RPC with failover for the client (see cli_rpc.h).
 *
 * One logical request = one request id.  An attempt sends the frame on
 * the persistent connection (connecting first if needed) and reads
 * frames until the reply carrying that id arrives; frames with another
 * id are late replies to an abandoned attempt and are dropped.  When an
 * attempt fails (connect error, timeout, EOF, protocol error, or a
 * TS_ERR_BUSY reply) the connection is closed and the next tracker of
 * the list is tried after a short, doubling pause.  A reused connection
 * that turns out to be dead (the tracker closed it while idle, or because
 * it did not log in within the tracker's login deadline -- e.g. after a
 * create_user and a long pause) is reopened to the same tracker without
 * counting as a failure: before a request goes out on a kept connection
 * it is checked for a pending EOF (nothing else may arrive on an idle
 * link), and one that fails anyway is reopened once.
 * Connections are TLS (cli_rpc.h): a tracker whose handshake fails (not
 * signed by our CA, a certificate without the tracker role) fails the
 * attempt like an unreachable one, with the reason logged once per
 * address until it answers again.  Which tracker answered is learnt from
 * its certificate (rpc->known_id, per address, for the log lines), so a
 * list in any order, or a subset of the cluster, works.
 *
 * Locking: rpc->mu serialises calls on one instance.
 * Crash behaviour: nothing persistent; see cli_rpc.h.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_crypto.h"
#include "ts_log.h"
#include "ts_clock.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "ts_tls.h"
#include "cli_rpc.h"


/* the process-wide TLS context (read-only once set) */
static ts_tls_t           *cli_rpc_tls;
/* 1 = a handshake failure of tracker i was logged (until one succeeds) */
static _Atomic int         cli_rpc_hs_logged[TS_TRACKERS_MAX_N];


int
cli_rpc_tls_init(const char *crt, const char *key, const char *ca,
                 char *err, size_t errsz)
{
    cli_rpc_tls = ts_tls_ctx_new(TS_TLS_TRACKER_CLIENT, crt, key, ca, err,
                                 errsz);
    return cli_rpc_tls != NULL ? 0 : -1;
}


void
cli_rpc_tls_free(void)
{
    if (cli_rpc_tls != NULL) {
        ts_tls_ctx_free(cli_rpc_tls);
        cli_rpc_tls = NULL;
    }
}



int
cli_rpc_init(cli_rpc_t *rpc, const ts_trackers_t *trk, int prefer)
{
    memset(rpc, 0, sizeof(*rpc));
    if (pthread_mutex_init(&rpc->mu, NULL) != 0) {
        return -1;
    }
    rpc->trk = *trk;
    if (rpc->trk.n < 0 || rpc->trk.n > TS_TRACKERS_MAX_N) {
        rpc->trk.n = 0;
    }
    rpc->cur = (prefer >= 0 && prefer < rpc->trk.n) ? prefer : 0;
    rpc->conn = NULL;
    rpc->next_reqid = ts_random_u64();
    if (rpc->next_reqid == 0) {
        rpc->next_reqid = 1;
    }
    rpc->log_failover = 1;
    return 0;
}


void
cli_rpc_destroy(cli_rpc_t *rpc)
{
    cli_rpc_disconnect(rpc);
    pthread_mutex_destroy(&rpc->mu);
}


static void
cli_rpc_close_locked(cli_rpc_t *rpc)
{
    if (rpc->conn != NULL) {
        ts_conn_free(rpc->conn);
        rpc->conn = NULL;
    }
}


/* "tracker K (ip:port)" when the link proved tracker K, else
 * "tracker ip:port", for log lines */
static void
cli_rpc_name(const ts_tracker_addr_t *a, int id, char *out, size_t outsz)
{
    if (id > 0) {
        snprintf(out, outsz, "tracker %d (%s:%u)", id, a->ip,
                 (unsigned) a->port);
    } else {
        snprintf(out, outsz, "tracker %s:%u", a->ip, (unsigned) a->port);
    }
}


int
cli_rpc_current_id(cli_rpc_t *rpc)
{
    int  id;

    pthread_mutex_lock(&rpc->mu);
    id = rpc->conn != NULL ? rpc->known_id[rpc->cur] : 0;
    pthread_mutex_unlock(&rpc->mu);
    return id;
}


void
cli_rpc_disconnect(cli_rpc_t *rpc)
{
    pthread_mutex_lock(&rpc->mu);
    cli_rpc_close_locked(rpc);
    pthread_mutex_unlock(&rpc->mu);
}


int
cli_rpc_current(cli_rpc_t *rpc)
{
    int  cur;

    pthread_mutex_lock(&rpc->mu);
    cur = rpc->cur;
    pthread_mutex_unlock(&rpc->mu);
    return cur;
}


void
cli_reply_free(cli_reply_t *rep)
{
    free(rep->payload);
    rep->payload = NULL;
    rep->len = 0;
    ts_rbuf_init(&rep->body, NULL, 0);
}


static void
cli_sleep_ms(int ms)
{
    struct timespec  ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long) (ms % 1000) * 1000000L;
    /* an interrupting signal only shortens the pause */
    (void) nanosleep(&ts, NULL);
}


/*
 * Reads frames until the reply to reqid arrives or the deadline passes.
 * 0 with rep filled, or -1 with errno.
 */
static int
cli_rpc_wait_reply(cli_rpc_t *rpc, uint64_t reqid, int64_t deadline,
                   cli_reply_t *rep)
{
    ts_frame_hdr_t   h;
    uint8_t         *pl;
    int64_t          left;
    ts_status_t      st;

    for ( ;; ) {
        left = deadline - ts_now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        pl = NULL;
        if (ts_conn_recv_frame(rpc->conn, &h, &pl, TS_FRAME_MAX_B,
                               (int) left) != 0)
        {
            return -1;
        }
        if (h.type != TS_MSG_REPLY || h.reqid != reqid) {
            ts_debug("dropping stale frame type %u id %llu (want %llu)",
                     (unsigned) h.type, (unsigned long long) h.reqid,
                     (unsigned long long) reqid);
            free(pl);
            continue;
        }

        ts_rbuf_init(&rep->body, pl, h.len);
        if (ts_reply_parse(&rep->body, &st, rep->msg, sizeof(rep->msg))
            != 0)
        {
            free(pl);
            ts_rbuf_init(&rep->body, NULL, 0);
            errno = EPROTO;
            return -1;
        }
        rep->status = st;
        rep->payload = pl;
        rep->len = h.len;
        return 0;
    }
}


/*
 * Opens the link to tracker index cur: TCP, then the TLS handshake within
 * the attempt's deadline.  0, or -1 with errno and why (a handshake
 * failure is logged once per tracker until one succeeds).
 */
static int
cli_rpc_open(cli_rpc_t *rpc, int64_t deadline, char *why, size_t whysz)
{
    const ts_tracker_addr_t  *t = &rpc->trk.t[rpc->cur];
    int64_t                   left;
    int                       fd, err, hs_ms;

    fd = ts_net_connect(t->ip, t->port, TS_RPC_CONNECT_MS);
    if (fd < 0) {
        return -1;
    }
    if (cli_rpc_tls == NULL) {
        rpc->conn = ts_conn_new(fd);
    } else {
        /* any tracker of our cluster CA: its certificate says which one
         * (a line of tracker_info.txt is only an address) */
        rpc->conn = ts_conn_new_tls(fd, cli_rpc_tls, 0, NULL);
    }
    if (rpc->conn == NULL) {
        /* ts_conn_new* closed fd already */
        errno = ENOMEM;
        return -1;
    }
    left = deadline - ts_now_ms();
    hs_ms = left < TS_TLS_HANDSHAKE_MS ? (int) left : TS_TLS_HANDSHAKE_MS;
    if (hs_ms <= 0) {
        cli_rpc_close_locked(rpc);
        errno = ETIMEDOUT;
        return -1;
    }
    if (ts_conn_handshake(rpc->conn, hs_ms) != 0) {
        err = errno;
        if (err == EPERM) {
            snprintf(why, whysz, "TLS: not a tracker of our cluster%s%s",
                     ts_tls_last_error()[0] ? ": " : "",
                     ts_tls_last_error());
        } else if (err == ETIMEDOUT) {
            snprintf(why, whysz, "TLS handshake timed out");
        } else {
            snprintf(why, whysz, "TLS handshake failed: %s",
                     ts_tls_last_error()[0] ? ts_tls_last_error()
                                            : strerror(err));
        }
        rpc->known_id[rpc->cur] = 0;
        if (atomic_exchange(&cli_rpc_hs_logged[rpc->cur], 1) == 0) {
            ts_warn("tracker %s:%u (line %d of the tracker list): %s",
                    t->ip, (unsigned) t->port, t->line, why);
        }
        cli_rpc_close_locked(rpc);
        errno = err;
        return -1;
    }
    rpc->known_id[rpc->cur] = ts_conn_peer_tracker(rpc->conn);
    if (atomic_exchange(&cli_rpc_hs_logged[rpc->cur], 0) != 0) {
        ts_info("tracker %s:%u answers again (tracker %d)", t->ip,
                (unsigned) t->port, rpc->known_id[rpc->cur]);
    } else {
        ts_debug("connected to tracker %d at %s:%u",
                 rpc->known_id[rpc->cur], t->ip, (unsigned) t->port);
    }
    return 0;
}


/*
 * 1 if the kept connection has something to read while no request is out:
 * the tracker closed it (EOF, reset or a TLS alert) -- e.g. its login
 * deadline passed after a create_user -- so it is reopened before use.
 */
static int
cli_rpc_stale(ts_conn_t *c)
{
    struct pollfd  p;

    if (ts_conn_pending(c) > 0) {
        return 1;
    }
    p.fd = ts_conn_fd(c);
    p.events = POLLIN;
    p.revents = 0;
    return poll(&p, 1, 0) > 0;
}


/*
 * One attempt against rpc->cur.  0 = a reply arrived, -1 = this tracker
 * failed (errno says how; why may say more).
 */
static int
cli_rpc_attempt(cli_rpc_t *rpc, uint8_t type, uint64_t reqid,
                const void *payload, uint32_t len, int timeout_ms,
                cli_reply_t *rep, char *why, size_t whysz)
{
    const ts_tracker_addr_t  *t;
    int64_t                   deadline, left;
    int                       fresh, round, err;

    t = &rpc->trk.t[rpc->cur];
    deadline = ts_now_ms() + timeout_ms;

    for (round = 0; round < 2; round++) {
        fresh = 0;
        if (rpc->conn != NULL && cli_rpc_stale(rpc->conn)) {
            ts_debug("connection to tracker %s:%u was closed by the "
                     "tracker; reopening", t->ip, (unsigned) t->port);
            cli_rpc_close_locked(rpc);
        }
        if (rpc->conn == NULL) {
            if (cli_rpc_open(rpc, deadline, why, whysz) != 0) {
                return -1;
            }
            fresh = 1;
        }

        left = deadline - ts_now_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (ts_conn_send_frame(rpc->conn, type, 0, reqid, payload, len,
                               (int) left) == 0
            && cli_rpc_wait_reply(rpc, reqid, deadline, rep) == 0)
        {
            return 0;
        }

        err = errno;
        cli_rpc_close_locked(rpc);
        /* an idle connection the tracker has closed: reopen it once */
        if (fresh || err == ETIMEDOUT || err == EPROTO) {
            errno = err;
            return -1;
        }
        ts_debug("connection to tracker %s:%u went stale (%s); reopening",
                 t->ip, (unsigned) t->port, strerror(err));
    }
    errno = ECONNRESET;
    return -1;
}


int
cli_rpc_call_ex(cli_rpc_t *rpc, uint8_t type, const void *payload,
                uint32_t len, cli_reply_t *rep, int attempts, int timeout_ms)
{
    uint64_t                  reqid;
    int                       attempt, pause_ms, have_busy, err, from;
    const ts_tracker_addr_t  *a, *b;
    char                      why[320], an[96];

    memset(rep, 0, sizeof(*rep));
    rep->status = TS_ERR_INTERNAL;
    ts_rbuf_init(&rep->body, NULL, 0);

    if (timeout_ms <= 0) {
        timeout_ms = (type == TS_MSG_CREATE_USER || type == TS_MSG_LOGIN)
                     ? TS_RPC_KDF_TIMEOUT_MS : TS_RPC_TIMEOUT_MS;
    }
    if (attempts < 1) {
        attempts = 1;
    }

    pthread_mutex_lock(&rpc->mu);

    if (rpc->trk.n == 0) {
        pthread_mutex_unlock(&rpc->mu);
        snprintf(rep->msg, sizeof(rep->msg), "no trackers configured");
        return -1;
    }

    reqid = rpc->next_reqid++;
    pause_ms = TS_CLI_RPC_PAUSE_FIRST_MS;
    have_busy = 0;
    why[0] = '\0';

    for (attempt = 0; attempt < attempts; attempt++) {
        if (attempt > 0) {
            cli_sleep_ms(pause_ms);
            pause_ms *= 2;
            if (pause_ms > TS_CLI_RPC_PAUSE_MAX_MS) {
                pause_ms = TS_CLI_RPC_PAUSE_MAX_MS;
            }
        }

        cli_reply_t  cur;
        char         tlswhy[320];

        memset(&cur, 0, sizeof(cur));
        tlswhy[0] = '\0';
        if (cli_rpc_attempt(rpc, type, reqid, payload, len, timeout_ms,
                            &cur, tlswhy, sizeof(tlswhy)) == 0)
        {
            if (cur.status != TS_ERR_BUSY) {
                cli_reply_free(rep);
                *rep = cur;
                /* the body cursor points into cur.payload, now ours */
                pthread_mutex_unlock(&rpc->mu);
                return 0;
            }
            cli_reply_free(rep);
            *rep = cur;
            have_busy = 1;
            snprintf(why, sizeof(why), "busy");
        } else {
            err = errno;
            if (tlswhy[0] != '\0') {
                snprintf(why, sizeof(why), "%s", tlswhy);
            } else {
                snprintf(why, sizeof(why), "%s", err == ETIMEDOUT
                         ? "no answer in time" : strerror(err));
            }
        }

        /* fail over to the next tracker, wrapping around */
        cli_rpc_close_locked(rpc);
        from = rpc->cur;
        rpc->cur = (rpc->cur + 1) % rpc->trk.n;
        if (attempt + 1 < attempts && rpc->log_failover) {
            a = &rpc->trk.t[from];
            b = &rpc->trk.t[rpc->cur];
            cli_rpc_name(a, rpc->known_id[from], an, sizeof(an));
            if (strcmp(why, "busy") == 0) {
                ts_info("%s busy; trying %s:%u", an, b->ip,
                        (unsigned) b->port);
            } else {
                ts_info("%s unreachable; trying %s:%u (%s)", an, b->ip,
                        (unsigned) b->port, why);
            }
        }
    }

    pthread_mutex_unlock(&rpc->mu);

    if (have_busy) {
        /* every tracker that answered was busy: report the last answer */
        if (rep->msg[0] == '\0') {
            snprintf(rep->msg, sizeof(rep->msg), "tracker busy; try again");
        }
        return 0;
    }
    snprintf(rep->msg, sizeof(rep->msg), "no tracker reachable (%s)", why);
    return -1;
}


int
cli_rpc_call(cli_rpc_t *rpc, uint8_t type, const void *payload,
             uint32_t len, cli_reply_t *rep)
{
    return cli_rpc_call_ex(rpc, type, payload, len, rep, TS_RPC_ATTEMPTS_N,
                           0);
}
