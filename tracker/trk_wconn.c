/*
 * trk_wconn.c -- a request worker's connections: accept, the state of
 * each, the caps, the worker's state (trk_wk).
 *
 * Purpose: accept connections (EPOLLEXCLUSIVE on the socket every worker
 * inherited), check each against the caps -- connections in all
 * (--max-conns), from one address (--max-conns-per-addr), not logged in
 * (--max-unauth and --max-unauth-per-addr: no LOGIN, no valid token and
 * no tracker certificate seen on the link yet; at these caps the oldest
 * idle such link goes instead, trk_wadm.c), and this worker's share of
 * the open files limit -- and close one over a cap at once; count them
 * in this worker slot's shm counters (summed over the slots by whoever
 * checks a cap); note who is on the other end once the TLS handshake is
 * done (the link: peer address, client certificate fingerprint, proven
 * tracker id); and close them.  If accept4() fails with EMFILE/ENFILE (or
 * ENOBUFS/ENOMEM) the listening socket leaves the epoll set for
 * TS_TRK_ACCEPT_PAUSE_MS (as nginx does) instead of waking the loop at
 * once again.  Refusals and accept failures are logged at most once per
 * TS_TRK_LOG_EVERY_MS.
 *
 * Locking: the worker's event-loop thread only.  The shm counters are
 * lock-free atomics written only by this worker (its slot).
 *
 * Crash behaviour: a dead worker's connections see RST and clients
 * retry; the supervisor zeroes its slot's counters (trk_conns_reset).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_log.h"
#include "trk_wconn.h"

trk_wk_t  trk_wk = { .next_cid = 1 };

static ts_ev_io_cb  conn_io_cb;     /* every connection's fd */

static int64_t   refuse_log_ms;
static uint32_t  refused_n;
static int64_t   accept_resume_ms;
static int64_t   accept_log_ms;
static uint32_t  accept_fails_n;


void
trk_wconn_close(trk_wconn_t *c, const char *why)
{
    if (why != NULL) {
        ts_debug("closing connection from %s: %s", c->peer, why);
    }
    ts_ev_del(trk_wk.ev, &c->io);
    trk_wk.conns[c->idx] = NULL;
    trk_wk.nconns--;
    atomic_fetch_sub(&trk_wk.my_counts->total, 1);
    atomic_fetch_sub(&trk_wk.my_counts->addr[c->bucket], 1);
    trk_wadm_unauth_drop(c);
    trk_wadm_user_drop(c);
    trk_win_release(c);
    ts_conn_free(c->c);
    c->c = NULL;
    free(c->in);
    c->in = NULL;
    trk_wk.out_total -= c->out.len - c->out_off;
    ts_wbuf_free(&c->out);
    c->out_off = 0;
    c->dead = 1;
    c->next_dead = trk_wk.dead_list;
    trk_wk.dead_list = c;
}


/* The link has logged in (or is a proven tracker): it no longer counts
 * against the not-logged-in cap. */
void
trk_wconn_authed(trk_wconn_t *c)
{
    trk_wadm_unauth_drop(c);
    c->promoted = 0;
}


/* c runs again before the loop sleeps: TLS holds bytes epoll will not
 * report. */
void
trk_wconn_queue(trk_wconn_t *c)
{
    if (!c->dead) {
        ts_ev_again(trk_wk.ev, &c->io);
    }
}


void
trk_wconn_free_dead(void)
{
    trk_wconn_t *c;

    while (trk_wk.dead_list != NULL) {
        c = trk_wk.dead_list;
        trk_wk.dead_list = c->next_dead;
        free(c);
    }
}


/* The handshake just finished: who is on the other end. */
void
trk_wconn_on_ready(trk_wconn_t *c)
{
    c->ready = 1;
    c->link.has_fp = ts_conn_peer_fp(c->c, c->link.fp) == 0;
    c->link.tracker = ts_conn_peer_tracker(c->c);
    c->link.admin = ts_conn_peer_admin(c->c);
    c->last_ms = ts_now_ms();
    if (c->link.tracker > 0 || c->link.admin) {
        trk_wconn_authed(c);         /* a peer tracker (CA-signed cert) */
    }
    ts_debug("TLS with %s up (%s%s)", c->peer,
             c->link.tracker > 0 ? "tracker certificate"
             : c->link.has_fp ? "node certificate" : "no certificate",
             ts_conn_is_tls(c->c) ? "" : ", plain build");
}


/* Logs refused connections, at most once per TS_TRK_LOG_EVERY_MS (a
 * flood must not flood the log too). */
static void
refused(const char *ip, const char *why)
{
    int64_t now = ts_now_ms();

    refused_n++;
    if (now - refuse_log_ms >= TS_TRK_LOG_EVERY_MS) {
        ts_warn("refused %u connection(s) since the last report (last "
                "from %s: %s)", refused_n, ip[0] ? ip : "?", why);
        refuse_log_ms = now;
        refused_n = 0;
    }
}


static void accept_some(void);


/* The listening socket is readable. */
static void
on_listen(ts_ev_t *ev, ts_ev_io_t *io, uint32_t events)
{
    accept_some();
}


/* The listening socket in or out of this worker's loop (it is
 * registered with EPOLLEXCLUSIVE, which EPOLL_CTL_MOD refuses: delete
 * and add). */
void
trk_wconn_listen_poll(int on)
{
    if (on == trk_wk.listen_on) {
        return;
    }
    if (!on) {
        ts_ev_del(trk_wk.ev, &trk_wk.listen_io);
    } else if (ts_ev_add(trk_wk.ev, &trk_wk.listen_io, trk_wk.cfg->listen_fd,
                         EPOLLIN | EPOLLEXCLUSIVE, on_listen, NULL) != 0)
    {
        ts_err("epoll_ctl(listen, add) failed: %s", strerror(errno));
        return;
    }
    trk_wk.listen_on = on;
}


/* accept4() failed for want of descriptors or memory: the pending
 * connection stays queued, so polling on would spin.  Stop polling the
 * listening socket for a while (connections wait in the backlog or go to
 * another worker); log at most once per TS_TRK_LOG_EVERY_MS. */
static void
accept_pause(int err)
{
    int64_t now = ts_now_ms();

    accept_fails_n++;
    if (now - accept_log_ms >= TS_TRK_LOG_EVERY_MS) {
        ts_warn("accept4() failed: %s (%u time(s) since the last report, "
                "%u connections here); not accepting for %d ms",
                strerror(err), accept_fails_n, trk_wk.nconns,
                TS_TRK_ACCEPT_PAUSE_MS);
        accept_log_ms = now;
        accept_fails_n = 0;
    }
    trk_wconn_listen_poll(0);
    accept_resume_ms = now + TS_TRK_ACCEPT_PAUSE_MS;
}


/* "a.b.c.d" into ip, "a.b.c.d:port" or "[v6]:port" into peer. */
static void
peer_names(const struct sockaddr_storage *ss, char *ip, size_t ipsz,
           char *peer, size_t peersz)
{
    const struct sockaddr_in  *a4 = (const struct sockaddr_in *) ss;
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *) ss;

    ip[0] = '\0';
    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &a4->sin_addr, ip, (socklen_t) ipsz);
        snprintf(peer, peersz, "%s:%u", ip, (unsigned) ntohs(a4->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &a6->sin6_addr, ip, (socklen_t) ipsz);
        snprintf(peer, peersz, "[%s]:%u", ip,
                 (unsigned) ntohs(a6->sin6_port));
    } else {
        snprintf(peer, peersz, "?");
    }
}


/* A new connection fd from ss: checked against the caps, set up, in the
 * epoll set and counted -- or closed. */
static void
accept_one(int fd, const struct sockaddr_storage *ss)
{
    trk_wconn_t        *c;
    char                ip[INET6_ADDRSTRLEN], peer[72];
    const char         *why;
    uint32_t            i, bucket;
    int                 one = 1;

    if (trk_wk.nconns >= trk_wk.cfg->conns_per_worker) {
        refused("", "connection limit of this worker (open files "
                "limit)");
        close(fd);
        return;
    }
    /* TLS writes one record per write(2): without this a reply's
     * short last record would wait for the previous one's ACK */
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    peer_names(ss, ip, sizeof(ip), peer, sizeof(peer));
    bucket = trk_addr_bucket(trk_wk.env.shm, ip);
    why = trk_wadm_admit(bucket);
    if (why != NULL) {
        refused(ip, why);
        close(fd);
        return;
    }
    for (i = 0; i < TS_TRK_CONNS_PER_WORKER_N && trk_wk.conns[i] != NULL;
         i++)
    {
        /* find a free index */
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->c = ts_conn_new_tls(fd, trk_wk.server_tls, 0, NULL);
    if (c->c == NULL) {
        free(c);            /* fd closed by ts_conn_new_tls */
        return;
    }
    c->fd = fd;
    c->idx = i;
    c->id = trk_wk.next_cid++;
    c->last_ms = ts_now_ms();
    c->acc_ms = c->last_ms;
    c->bucket = bucket;
    snprintf(c->link.addr, sizeof(c->link.addr), "%s", ip);
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    ts_wbuf_init(&c->out);
    if (ts_ev_add(trk_wk.ev, &c->io, fd, EPOLLIN, conn_io_cb, c) != 0) {
        ts_err("epoll_ctl() failed: %s", strerror(errno));
        ts_conn_free(c->c);
        ts_wbuf_free(&c->out);
        free(c);
        return;
    }
    trk_wk.conns[i] = c;
    trk_wk.nconns++;
    atomic_fetch_add(&trk_wk.my_counts->total, 1);
    atomic_fetch_add(&trk_wk.my_counts->addr[bucket], 1);
    trk_wadm_unauth_add(c);
    ts_debug("connection from %s", c->peer);
    if (!ts_conn_is_tls(c->c)) {
        trk_wconn_on_ready(c);  /* plain build: nothing to negotiate */
    }
}


static void
accept_some(void)
{
    struct sockaddr_storage  ss;
    socklen_t                sl;
    int                      fd, k;

    for (k = 0; k < TS_TRK_ACCEPT_BATCH_N; k++) {
        sl = sizeof(ss);
        fd = accept4(trk_wk.cfg->listen_fd, (struct sockaddr *) &ss, &sl,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                return;
            }
            if (errno == ECONNABORTED || errno == EPROTO
                || errno == EPERM)
            {
                continue;       /* that connection is gone: the next */
            }
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM, ...: no busy loop */
            accept_pause(errno);
            return;
        }
        accept_one(fd, &ss);
    }
}


void
trk_wconn_accept_resume(int64_t now)
{
    if (!trk_wk.listen_on && now >= accept_resume_ms) {
        trk_wconn_listen_poll(1);
    }
}


int
trk_wconn_listen_start(ts_ev_io_cb on_io)
{
    conn_io_cb = on_io;
    trk_wconn_listen_poll(1);
    return trk_wk.listen_on ? 0 : -1;
}
