/*
 * trk_worker.c -- one tracker request worker: an epoll loop over the
 * shared listen socket and its client connections, plus KDF thread(s).
 *
 * Purpose: accept connections (EPOLLEXCLUSIVE on the socket every worker
 * inherited), run the TLS handshake of each (role TRACKER_SERVER: this
 * tracker's certificate; a client certificate is asked for, optional),
 * assemble request frames (header first; the length is checked against
 * TS_FRAME_MAX_B before any buffer grows, and buffers grow only as bytes
 * really arrive), run each request through trk_ops in order, and queue
 * the replies.  Requests may be pipelined; a connection whose login or
 * create_user waits for the KDF is simply not read until it is done.
 * Each request sees its link (trk_link_t: peer address, client
 * certificate fingerprint, proven tracker id) through env.link.
 *
 * TLS and the event loop: ts_conn_read/ts_conn_write drive the handshake
 * and may want the other direction (ts_conn_want) -- the epoll mask
 * follows; decrypted bytes buffered inside TLS (ts_conn_pending) are not
 * seen by epoll, so such a connection goes on a ready list that is
 * served before the next epoll_wait (with a zero timeout).  A plaintext
 * client or garbage fails the handshake: the connection is closed, and
 * nothing else happens.
 *
 * Caps (checked at accept, counters in shm per worker slot, summed over
 * the slots): connections in all (--max-conns), from one address
 * (--max-conns-per-addr), and not logged in (--max-unauth: no LOGIN, no
 * valid token and no tracker certificate seen on the link yet).  Over a
 * cap the new connection is closed at once.  The supervisor raised the
 * open files limit and clamped the caps to it; if accept4() still fails
 * with EMFILE/ENFILE (or ENOBUFS/ENOMEM) the listening socket leaves the
 * epoll set for TS_TRK_ACCEPT_PAUSE_MS (as nginx does) instead of
 * waking the loop at once again, and the failure is logged at most once
 * a second.
 *
 * Fairness and memory: one connection runs at most TS_TRK_REQS_PER_TURN_N
 * requests per loop turn (the rest waits on the ready list, unread, so
 * timers and other connections come first); before login a frame may be
 * at most TS_TRK_UNAUTH_FRAME_MAX_B (a bigger one must start with a
 * valid token of a logged-in request type); the replies queued in this
 * worker are summed, and above --worker-out-max connections that have
 * replies queued are not read until it drops (backpressure).
 *
 * Deadlines (checked every TS_TRK_TICK_MS): the TLS handshake must finish
 * within --handshake-ms (TS_TLS_HANDSHAKE_MS); a connection must log in
 * (or show a valid token or a tracker certificate) within
 * --login-timeout (TS_TRK_LOGIN_MS), whatever it sends meanwhile; a
 * frame begun must complete within --frame-timeout
 * (TS_TRK_FRAME_TIMEOUT_MS) of the time we read from the link (also
 * while replies are queued); a connection with nothing to do is closed
 * after TS_TRK_IDLE_TIMEOUT_MS; a peer that does not read its replies
 * (no write progress for the frame timeout, replies queued without a
 * break for TS_TRK_OUT_DRAIN_MS, or more than TS_TRK_OUT_MAX_B queued)
 * is dropped.  Bad input closes that connection only.
 *
 * Locking: the event loop is single-threaded and owns the tdb handle and
 * every connection.  KDF threads share only the job queues (one mutex +
 * condition variable) and an eventfd that wakes the loop; they compute
 * PBKDF2 over their job and touch nothing else.
 *
 * Crash behaviour: a dead worker's connections see RST and clients retry
 * (on another worker or tracker) with the same request id; its tdb
 * transaction, if any, never happened; its shm stripe locks are robust and
 * repaired; the supervisor frees its slot and claims, zeroes its
 * connection counters, and forks a new one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ts_log.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "ts_ticket.h"
#include "ts_tls.h"
#include "trk_ops.h"
#include "trk_store.h"
#include "trk_worker.h"

typedef struct conn_s {
    ts_conn_t  *c;
    int         fd;
    uint32_t    idx;
    uint64_t    id;             /* unique per worker: jobs find their conn */
    char        peer[72];
    trk_link_t  link;           /* filled when the handshake is done */
    int         ready;          /* handshake done, link filled */
    int64_t     acc_ms;         /* accepted (handshake deadline) */
    uint32_t    bucket;         /* address bucket of the shm counters */
    int         unauth;         /* counted as not logged in */
    int         rwant;          /* last read EAGAIN: 2 = wants writable */
    int         wwant;          /* last write EAGAIN: 1 = wants readable */
    int         queued;         /* on the ready list */
    int         backlog;        /* whole frames wait for the next turn */
    struct conn_s *next_ready;
    uint8_t    *in;
    size_t      in_len;
    size_t      in_cap;
    ts_wbuf_t   out;
    size_t      out_off;
    int64_t     last_ms;        /* last request answered (or accept) */
    int64_t     frame_ms;       /* a partial frame began; 0 = none */
    int64_t     wprog_ms;       /* last write progress while output queued */
    int64_t     drain_ms;       /* output queued since; 0 = none queued */
    uint32_t    ev;             /* epoll mask in force */
    int         job_pending;
    int         eof;
    int         dead;           /* closed; freed after the epoll batch */
    void       *next_dead;
} conn_t;

typedef struct kjob_s {
    struct kjob_s  *next;
    trk_kdf_job_t  *job;
    uint32_t        idx;
    uint64_t        cid;
} kjob_t;

typedef struct {
    pthread_mutex_t  mu;
    pthread_cond_t   cv;
    kjob_t          *q_head, *q_tail;
    kjob_t          *d_head, *d_tail;
    int              queued;
    int              stop;
    int              evfd;
    pthread_t        th[TS_TRK_KDF_THREADS_N];
    int              nth;
} kdf_pool_t;

/* epoll tags for the non-connection fds */
static char tag_listen, tag_stop, tag_kdf;

static const trk_config_t *cfg;
static trk_env_t           env;
static ts_tls_t           *server_tls;
static trk_conns_sh_t     *my_counts;     /* this worker slot's counters */
static conn_t             *ready_list;    /* TLS bytes pending, see top */
static int64_t             refuse_log_ms;
static uint8_t             rbuf[TS_TRK_READ_CHUNK_B];  /* every read */
static uint32_t            refused_n;
static conn_t             *conns[TS_TRK_CONNS_PER_WORKER_N];
static conn_t             *dead_list;
static uint32_t            nconns;
static uint64_t            next_cid = 1;
static int                 ep = -1;
static kdf_pool_t          pool;
static ts_wbuf_t           scratch;
static uint64_t            out_total;     /* reply bytes queued, all conns */
static int                 bp_on;         /* out_total over the cap */
static int                 listen_on = 1; /* listening socket in epoll */
static int64_t             accept_resume_ms;
static int64_t             accept_log_ms;
static uint32_t            accept_fails_n;


/* ---- KDF threads ---------------------------------------------------- */

static void *
kdf_thread(void *arg)
{
    kjob_t   *kj;
    uint64_t  one = 1;

    (void) arg;
    for (;;) {
        pthread_mutex_lock(&pool.mu);
        while (pool.q_head == NULL && !pool.stop) {
            pthread_cond_wait(&pool.cv, &pool.mu);
        }
        if (pool.stop) {
            pthread_mutex_unlock(&pool.mu);
            return NULL;
        }
        kj = pool.q_head;
        pool.q_head = kj->next;
        if (pool.q_head == NULL) {
            pool.q_tail = NULL;
        }
        pthread_mutex_unlock(&pool.mu);

        trk_kdf_run(kj->job);

        pthread_mutex_lock(&pool.mu);
        kj->next = NULL;
        if (pool.d_tail != NULL) {
            pool.d_tail->next = kj;
        } else {
            pool.d_head = kj;
        }
        pool.d_tail = kj;
        pthread_mutex_unlock(&pool.mu);
        if (write(pool.evfd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
            ts_err("write(eventfd) failed: %s", strerror(errno));
        }
    }
}


static int
kdf_pool_start(void)
{
    int i, rc;

    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.cv, NULL);
    pool.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pool.evfd < 0) {
        ts_err("eventfd() failed: %s", strerror(errno));
        return -1;
    }
    for (i = 0; i < TS_TRK_KDF_THREADS_N; i++) {
        rc = pthread_create(&pool.th[i], NULL, kdf_thread, NULL);
        if (rc != 0) {
            ts_err("pthread_create() failed: %s", strerror(rc));
            return -1;
        }
        pool.nth++;
    }
    return 0;
}


static void
kdf_pool_stop(void)
{
    kjob_t *kj, *next;
    int     i;

    pthread_mutex_lock(&pool.mu);
    pool.stop = 1;
    pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    for (i = 0; i < pool.nth; i++) {
        pthread_join(pool.th[i], NULL);
    }
    for (kj = pool.q_head; kj != NULL; kj = next) {
        next = kj->next;
        trk_kdf_job_abort(&env, kj->job);
        free(kj);
    }
    for (kj = pool.d_head; kj != NULL; kj = next) {
        next = kj->next;
        trk_kdf_job_abort(&env, kj->job);
        free(kj);
    }
    pool.q_head = pool.d_head = NULL;
}


static int
kdf_submit(conn_t *c, trk_kdf_job_t *job)
{
    kjob_t *kj;

    pthread_mutex_lock(&pool.mu);
    if (pool.queued >= TS_TRK_KDF_QUEUE_N) {
        pthread_mutex_unlock(&pool.mu);
        return -1;
    }
    kj = calloc(1, sizeof(*kj));
    if (kj == NULL) {
        pthread_mutex_unlock(&pool.mu);
        return -1;
    }
    kj->job = job;
    kj->idx = c->idx;
    kj->cid = c->id;
    if (pool.q_tail != NULL) {
        pool.q_tail->next = kj;
    } else {
        pool.q_head = kj;
    }
    pool.q_tail = kj;
    pool.queued++;
    pthread_cond_signal(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    return 0;
}


/* ---- connections ---------------------------------------------------- */

static void
conn_close(conn_t *c, const char *why)
{
    if (why != NULL) {
        ts_debug("closing connection from %s: %s", c->peer, why);
    }
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    conns[c->idx] = NULL;
    nconns--;
    atomic_fetch_sub(&my_counts->total, 1);
    atomic_fetch_sub(&my_counts->addr[c->bucket], 1);
    if (c->unauth) {
        c->unauth = 0;
        atomic_fetch_sub(&my_counts->unauth, 1);
    }
    ts_conn_free(c->c);
    c->c = NULL;
    free(c->in);
    c->in = NULL;
    out_total -= c->out.len - c->out_off;
    ts_wbuf_free(&c->out);
    c->out_off = 0;
    c->dead = 1;
    c->next_dead = dead_list;
    dead_list = c;
}


/* The link has logged in (or is a proven tracker): it no longer counts
 * against the not-logged-in cap. */
static void
conn_authed(conn_t *c)
{
    if (c->unauth) {
        c->unauth = 0;
        atomic_fetch_sub(&my_counts->unauth, 1);
    }
}


/* Puts c on the ready list: TLS holds bytes epoll will not report. */
static void
conn_queue(conn_t *c)
{
    if (!c->queued && !c->dead) {
        c->queued = 1;
        c->next_ready = ready_list;
        ready_list = c;
    }
}


static void
free_dead(void)
{
    conn_t *c;

    while (dead_list != NULL) {
        c = dead_list;
        dead_list = c->next_dead;
        free(c);
    }
}


/* Reply bytes queued on c. */
static size_t
out_pending(const conn_t *c)
{
    return c->out.len - c->out_off;
}


/* Backpressure: the worker holds more queued replies than
 * --worker-out-max, and c is one of the connections they wait on. */
static int
backpressured(const conn_t *c)
{
    return out_total > cfg->worker_out_max && out_pending(c) > 0;
}


/* 1 if we read from c (and run its requests) now; 0 while it waits for
 * its KDF job, its queued replies, its next turn, or has ended. */
static int
conn_reading(const conn_t *c)
{
    return !c->eof && !c->job_pending && !c->backlog
           && out_pending(c) < TS_TRK_OUT_SOFT_B && !backpressured(c);
}


static void
conn_update_events(conn_t *c)
{
    struct epoll_event e;
    uint32_t           want;
    int                reading;

    want = 0;
    reading = !c->ready || conn_reading(c);
    if (reading) {
        /* TLS may need to write to go on reading (handshake) */
        want |= c->rwant == 2 ? EPOLLOUT : EPOLLIN;
        if (c->ready && ts_conn_pending(c->c) > 0) {
            conn_queue(c);
        }
    }
    if (c->out.len > c->out_off) {
        want |= c->wwant == 1 ? EPOLLIN : EPOLLOUT;
    }
    if (want == c->ev) {
        return;
    }
    memset(&e, 0, sizeof(e));
    e.events = want;
    e.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) == 0) {
        c->ev = want;
    } else {
        ts_err("epoll_ctl() failed: %s", strerror(errno));
    }
}


/* Writes what it can.  -1: the connection was closed. */
static int
conn_flush(conn_t *c)
{
    ssize_t n;

    while (c->out.len > c->out_off) {
        n = ts_conn_write(c->c, c->out.data + c->out_off,
                          c->out.len - c->out_off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                /* TLS may need to read before it can write on */
                c->wwant = errno == EAGAIN && ts_conn_is_tls(c->c)
                           && ts_conn_want(c->c) == 1 ? 1 : 0;
                break;
            }
            conn_close(c, "write failed");
            return -1;
        }
        c->wwant = 0;
        c->out_off += (size_t) n;
        out_total -= (uint64_t) n;
        c->wprog_ms = ts_now_ms();
    }
    if (c->out_off == c->out.len) {
        ts_wbuf_reset(&c->out);
        c->out_off = 0;
        c->drain_ms = 0;
        if (c->out.cap > TS_TRK_OUT_SOFT_B) {
            ts_wbuf_free(&c->out);
            ts_wbuf_init(&c->out);
        }
    }
    return 0;
}


/* Queues one REPLY frame with payload p.  -1: the connection was closed. */
static int
conn_reply(conn_t *c, uint64_t reqid, const ts_wbuf_t *p)
{
    uint8_t        hdr[TS_FRAME_HDR_B];
    ts_frame_hdr_t h;

    if (c->out.len - c->out_off + TS_FRAME_HDR_B + p->len > TS_TRK_OUT_MAX_B) {
        conn_close(c, "peer does not read its replies");
        return -1;
    }
    if (c->out.len == c->out_off) {
        c->wprog_ms = ts_now_ms();
        c->drain_ms = c->wprog_ms;
    }
    h.type = TS_MSG_REPLY;
    h.flags = TS_FF_REPLY;
    h.len = (uint32_t) p->len;
    h.reqid = reqid;
    ts_frame_hdr_encode(hdr, &h);
    {
        size_t before = c->out.len;

        ts_put_raw(&c->out, hdr, sizeof(hdr));
        ts_put_raw(&c->out, p->data, p->len);
        out_total += c->out.len - before;
    }
    if (c->out.err) {
        conn_close(c, "out of memory");
        return -1;
    }
    c->last_ms = ts_now_ms();
    if (conn_flush(c) != 0) {
        return -1;
    }
    if (out_total > cfg->worker_out_max && !bp_on) {
        bp_on = 1;
        ts_warn("%llu bytes of replies queued in this worker (over "
                "--worker-out-max %llu): connections with queued replies "
                "are not read until it drops",
                (unsigned long long) out_total,
                (unsigned long long) cfg->worker_out_max);
    }
    return 0;
}


static void
conn_busy_reply(conn_t *c, uint64_t reqid)
{
    ts_wbuf_reset(&scratch);
    ts_reply_begin(&scratch, TS_ERR_BUSY, "tracker busy; try again");
    (void) conn_reply(c, reqid, &scratch);
}


/* Runs the complete frames in the input buffer, in order, until one must
 * wait or TS_TRK_REQS_PER_TURN_N have run (the rest goes on the ready
 * list for the next loop turn).  -1: the connection was closed. */
static int
conn_process(conn_t *c)
{
    ts_frame_hdr_t  h;
    trk_kdf_job_t  *job;
    trk_do_t        what;
    size_t          flen;
    int             ran = 0, ok;

    c->backlog = 0;
    while (!c->job_pending && out_pending(c) < TS_TRK_OUT_SOFT_B
           && !backpressured(c))
    {
        if (c->in_len < TS_FRAME_HDR_B) {
            break;
        }
        if (ts_frame_hdr_decode(c->in, &h, TS_FRAME_MAX_B) != 0) {
            ts_info("bad frame header from %s", c->peer);
            conn_close(c, NULL);
            return -1;
        }
        if (h.flags & TS_FF_REPLY) {
            ts_info("unexpected reply frame from %s", c->peer);
            conn_close(c, NULL);
            return -1;
        }
        if (c->unauth && h.len > TS_TRK_UNAUTH_FRAME_MAX_B) {
            /* before login frames are small (LOGIN, CREATE_USER); a big
             * one must be a logged-in request with a valid token for
             * this link, e.g. an upload on a new link after a failover */
            if (c->in_len < TS_FRAME_HDR_B + TS_TOKEN_B) {
                break;
            }
            env.link = &c->link;
            ok = trk_ops_preauth(&env, h.type, c->in + TS_FRAME_HDR_B,
                                 (uint32_t) (c->in_len - TS_FRAME_HDR_B));
            env.link = NULL;
            if (!ok) {
                ts_info("%s: %u-byte %s frame before login", c->peer,
                        (unsigned) h.len, ts_msg_name(h.type));
                conn_close(c, NULL);
                return -1;
            }
            conn_authed(c);
        }
        flen = TS_FRAME_HDR_B + (size_t) h.len;
        if (c->in_len < flen) {
            break;
        }
        if (ran == TS_TRK_REQS_PER_TURN_N) {
            /* fair share used: timers and the other connections first */
            c->backlog = 1;
            conn_queue(c);
            break;
        }
        ran++;
        env.link = &c->link;
        what = trk_ops_handle(&env, h.type, h.reqid, c->in + TS_FRAME_HDR_B,
                              h.len, &scratch, &job);
        env.link = NULL;
        if (c->link.authed) {
            conn_authed(c);
        }
        ts_debug("%s %s reqid %016llx", c->peer, ts_msg_name(h.type),
                 (unsigned long long) h.reqid);
        memmove(c->in, c->in + flen, c->in_len - flen);
        c->in_len -= flen;
        c->frame_ms = c->in_len > 0 ? ts_now_ms() : 0;
        if (what == TRK_DO_CLOSE) {
            ts_info("unexpected %s frame from %s", ts_msg_name(h.type),
                    c->peer);
            conn_close(c, NULL);
            return -1;
        }
        if (what == TRK_DO_DEFER) {
            if (kdf_submit(c, job) != 0) {
                trk_kdf_job_abort(&env, job);
                conn_busy_reply(c, h.reqid);
                if (c->dead) {
                    return -1;
                }
                continue;
            }
            c->job_pending = 1;
            break;
        }
        if (conn_reply(c, h.reqid, &scratch) != 0) {
            return -1;
        }
        if (c->link.close_after) {
            /* e.g. SYNC_* without the tracker certificate: the reply
             * goes out, then the link closes; nothing more is read */
            c->eof = 1;
            c->in_len = 0;
            c->frame_ms = 0;
            break;
        }
    }
    if (c->eof && !c->job_pending && !c->backlog && c->out.len == c->out_off)
    {
        conn_close(c, "peer closed");
        return -1;
    }
    conn_update_events(c);
    return 0;
}


/* The handshake just finished: who is on the other end. */
static void
conn_on_ready(conn_t *c)
{
    c->ready = 1;
    c->link.has_fp = ts_conn_peer_fp(c->c, c->link.fp) == 0;
    c->link.tracker = ts_conn_peer_tracker(c->c);
    c->last_ms = ts_now_ms();
    if (c->link.tracker > 0) {
        conn_authed(c);         /* a peer tracker (CA-signed cert) */
    }
    ts_debug("TLS with %s up (%s%s)", c->peer,
             c->link.tracker > 0 ? "tracker certificate"
             : c->link.has_fp ? "node certificate" : "no certificate",
             ts_conn_is_tls(c->c) ? "" : ", plain build");
}


static void
conn_read(conn_t *c)
{
    ts_frame_hdr_t  h;
    uint8_t        *nb;
    size_t          need, ncap, flen;
    ssize_t         n;

    if (c->ready && !conn_reading(c)) {
        conn_update_events(c);
        return;
    }
    /* read into the worker's buffer, keep only what arrived: an idle
     * connection holds no input buffer, one in the middle of a frame
     * holds that frame's bytes so far (a header is checked against
     * TS_FRAME_MAX_B as soon as it is whole, in conn_process) */
    n = ts_conn_read(c->c, rbuf, sizeof(rbuf));
    if (!c->ready && ts_conn_ready(c->c)) {
        conn_on_ready(c);
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            c->rwant = errno == EAGAIN && ts_conn_is_tls(c->c)
                       && ts_conn_want(c->c) == 2 ? 2 : 0;
            conn_update_events(c);
            return;
        }
        if (!c->ready) {
            ts_info("TLS handshake with %s failed: %s", c->peer,
                    ts_tls_last_error()[0] ? ts_tls_last_error()
                                           : strerror(errno));
            conn_close(c, NULL);
            return;
        }
        conn_close(c, "read failed");
        return;
    }
    c->rwant = 0;
    if (n == 0 && !c->ready) {
        conn_close(c, "closed during the TLS handshake");
        return;
    }
    if (n == 0) {
        c->eof = 1;
    } else {
        need = c->in_len + (size_t) n;
        if (need > c->in_cap) {
            /* doubling, but never past the frame being assembled (once
             * its header is known) plus this read */
            ncap = c->in_cap * 2 > need ? c->in_cap * 2 : need;
            if (c->in_len >= TS_FRAME_HDR_B
                && ts_frame_hdr_decode(c->in, &h, TS_FRAME_MAX_B) == 0)
            {
                flen = TS_FRAME_HDR_B + (size_t) h.len;
                if (ncap > flen && flen >= need) {
                    ncap = flen;
                } else if (ncap > need && flen < need) {
                    ncap = need;
                }
            }
            nb = realloc(c->in, ncap);
            if (nb == NULL) {
                conn_close(c, "out of memory");
                return;
            }
            c->in = nb;
            c->in_cap = ncap;
        }
        memcpy(c->in + c->in_len, rbuf, (size_t) n);
        if (c->in_len == 0) {
            c->frame_ms = ts_now_ms();
        }
        c->in_len += (size_t) n;
    }
    if (conn_process(c) != 0) {
        return;
    }
    if (c->in_len == 0 && c->in != NULL) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
}


/* Which cap a new connection from bucket would break, or NULL. */
static const char *
over_cap(uint32_t bucket)
{
    uint32_t total, in_bucket, unauth;

    trk_conns_sum(env.shm, bucket, &total, &in_bucket, &unauth);
    if (total >= cfg->conns_max) {
        return "connection cap of the tracker";
    }
    if (in_bucket >= cfg->conns_addr) {
        return "connection cap per address";
    }
    if (unauth >= cfg->unauth_max) {
        return "cap on connections not logged in";
    }
    return NULL;
}


/* Logs refused connections, at most once a second (a flood must not
 * flood the log too). */
static void
refused(const char *ip, const char *why)
{
    int64_t now = ts_now_ms();

    refused_n++;
    if (now - refuse_log_ms >= 1000) {
        ts_warn("refused %u connection(s) since the last report (last "
                "from %s: %s)", refused_n, ip[0] ? ip : "?", why);
        refuse_log_ms = now;
        refused_n = 0;
    }
}


/* The listening socket in or out of this worker's epoll set (it was
 * added with EPOLLEXCLUSIVE, which EPOLL_CTL_MOD refuses: DEL and ADD). */
static void
listen_poll(int on)
{
    struct epoll_event e;

    if (on == listen_on) {
        return;
    }
    memset(&e, 0, sizeof(e));
    e.events = EPOLLIN | EPOLLEXCLUSIVE;
    e.data.ptr = &tag_listen;
    if (epoll_ctl(ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, cfg->listen_fd,
                  on ? &e : NULL) != 0)
    {
        ts_err("epoll_ctl(listen, %s) failed: %s", on ? "add" : "del",
               strerror(errno));
        return;
    }
    listen_on = on;
}


/* accept4() failed for want of descriptors or memory: the pending
 * connection stays queued, so polling on would spin.  Stop polling the
 * listening socket for a while (connections wait in the backlog or go to
 * another worker); log at most once a second. */
static void
accept_pause(int err)
{
    int64_t now = ts_now_ms();

    accept_fails_n++;
    if (now - accept_log_ms >= 1000) {
        ts_warn("accept4() failed: %s (%u time(s) since the last report, "
                "%u connections here); not accepting for %d ms",
                strerror(err), accept_fails_n, nconns,
                TS_TRK_ACCEPT_PAUSE_MS);
        accept_log_ms = now;
        accept_fails_n = 0;
    }
    listen_poll(0);
    accept_resume_ms = now + TS_TRK_ACCEPT_PAUSE_MS;
}


static void
accept_some(void)
{
    struct sockaddr_storage  ss;
    struct epoll_event       e;
    socklen_t                sl;
    conn_t                  *c;
    char                     ip[INET6_ADDRSTRLEN];
    const char              *why;
    uint32_t                 i, bucket;
    int                      fd, k, one = 1;

    for (k = 0; k < 64; k++) {
        sl = sizeof(ss);
        fd = accept4(cfg->listen_fd, (struct sockaddr *) &ss, &sl,
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
        if (nconns >= cfg->conns_per_worker) {
            refused("", "connection limit of this worker (open files "
                    "limit)");
            close(fd);
            continue;
        }
        /* TLS writes one record per write(2): without this a reply's
         * short last record would wait for the previous one's ACK */
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        ip[0] = '\0';
        if (ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((const struct sockaddr_in *) &ss)->sin_addr,
                      ip, sizeof(ip));
        } else if (ss.ss_family == AF_INET6) {
            inet_ntop(AF_INET6,
                      &((const struct sockaddr_in6 *) &ss)->sin6_addr, ip,
                      sizeof(ip));
        }
        bucket = trk_addr_bucket(env.shm, ip);
        why = over_cap(bucket);
        if (why != NULL) {
            refused(ip, why);
            close(fd);
            continue;
        }
        for (i = 0; i < TS_TRK_CONNS_PER_WORKER_N && conns[i] != NULL; i++) {
            /* find a free index */
        }
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->c = ts_conn_new_tls(fd, server_tls, 0, NULL);
        if (c->c == NULL) {
            free(c);            /* fd closed by ts_conn_new_tls */
            continue;
        }
        c->fd = fd;
        c->idx = i;
        c->id = next_cid++;
        c->last_ms = ts_now_ms();
        c->acc_ms = c->last_ms;
        c->bucket = bucket;
        snprintf(c->link.addr, sizeof(c->link.addr), "%s", ip);
        ts_wbuf_init(&c->out);
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *) &ss;
            inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
            snprintf(c->peer, sizeof(c->peer), "%s:%u", ip,
                     (unsigned) ntohs(a->sin_port));
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *) &ss;
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
            snprintf(c->peer, sizeof(c->peer), "[%s]:%u", ip,
                     (unsigned) ntohs(a->sin6_port));
        } else {
            snprintf(c->peer, sizeof(c->peer), "?");
        }
        memset(&e, 0, sizeof(e));
        e.events = EPOLLIN;
        e.data.ptr = c;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) != 0) {
            ts_err("epoll_ctl() failed: %s", strerror(errno));
            ts_conn_free(c->c);
            ts_wbuf_free(&c->out);
            free(c);
            continue;
        }
        c->ev = EPOLLIN;
        conns[i] = c;
        nconns++;
        c->unauth = 1;
        atomic_fetch_add(&my_counts->total, 1);
        atomic_fetch_add(&my_counts->addr[bucket], 1);
        atomic_fetch_add(&my_counts->unauth, 1);
        ts_debug("connection from %s", c->peer);
        if (!ts_conn_is_tls(c->c)) {
            conn_on_ready(c);   /* plain build: nothing to negotiate */
        }
    }
}


/* KDF results: finish each request on the loop thread. */
static void
kdf_drain(void)
{
    kjob_t   *kj, *list;
    conn_t   *c;
    uint64_t  v;
    int       live;

    if (read(pool.evfd, &v, sizeof(v)) < 0 && errno != EAGAIN) {
        ts_err("read(eventfd) failed: %s", strerror(errno));
    }
    pthread_mutex_lock(&pool.mu);
    list = pool.d_head;
    pool.d_head = pool.d_tail = NULL;
    pthread_mutex_unlock(&pool.mu);

    while (list != NULL) {
        kj = list;
        list = kj->next;
        pthread_mutex_lock(&pool.mu);
        pool.queued--;
        pthread_mutex_unlock(&pool.mu);

        c = conns[kj->idx];
        live = (c != NULL && c->id == kj->cid);
        env.link = live ? &c->link : NULL;
        trk_ops_finish(&env, kj->job, live, &scratch);
        env.link = NULL;
        if (live) {
            if (kj->job->logged_in) {
                conn_authed(c);
            }
            c->job_pending = 0;
            if (conn_reply(c, kj->job->reqid, &scratch) == 0) {
                (void) conn_process(c);
            }
        }
        trk_kdf_job_free(kj->job);
        free(kj);
    }
}


/* Reads connections whose TLS layer holds decrypted bytes; those that
 * still hold some go on a fresh list.  Must run before free_dead(): the
 * list may name connections closed in this round. */
static void
serve_ready(void)
{
    conn_t *c, *next;

    c = ready_list;
    ready_list = NULL;
    for (; c != NULL; c = next) {
        next = c->next_ready;
        c->queued = 0;
        c->next_ready = NULL;
        if (!c->dead && c->backlog) {
            /* its next share of requests */
            if (conn_process(c) != 0 || c->backlog) {
                continue;
            }
        }
        if (!c->dead) {
            conn_read(c);
        }
    }
}


static void
tick(const ts_worker_ctx_t *ctx, ts_slot_sh_t *slot, int64_t now)
{
    conn_t   *c;
    uint32_t  i;
    int       resume;

    /* backpressure over: connections with whole frames waiting run them
     * (each also gets its EPOLLIN back from conn_process) */
    resume = bp_on && out_total <= cfg->worker_out_max;
    if (resume) {
        bp_on = 0;
        ts_info("replies queued in this worker down to %llu bytes: "
                "reading every connection again",
                (unsigned long long) out_total);
    }
    if (!listen_on && now >= accept_resume_ms) {
        listen_poll(1);
    }
    for (i = 0; i < TS_TRK_CONNS_PER_WORKER_N; i++) {
        c = conns[i];
        if (c == NULL) {
            continue;
        }
        if (!c->ready) {
            if (now - c->acc_ms > cfg->handshake_ms) {
                ts_info("dropping %s: TLS handshake not done in %lld ms",
                        c->peer, (long long) cfg->handshake_ms);
                conn_close(c, NULL);
            }
            continue;
        }
        if (c->out.len > c->out_off) {
            if (now - c->wprog_ms > cfg->frame_ms) {
                ts_info("dropping %s: it does not read its replies", c->peer);
                conn_close(c, NULL);
                continue;
            }
            if (c->drain_ms != 0 && now - c->drain_ms > TS_TRK_OUT_DRAIN_MS) {
                ts_info("dropping %s: replies queued for %lld ms without a "
                        "break", c->peer, (long long) TS_TRK_OUT_DRAIN_MS);
                conn_close(c, NULL);
                continue;
            }
        }
        /* no login (nor token, nor tracker certificate) in time: whatever
         * else it sent, the link goes (a login in its KDF may finish) */
        if (c->unauth && !c->job_pending && now - c->acc_ms > cfg->login_ms) {
            ts_info("dropping %s: not logged in within %lld ms", c->peer,
                    (long long) cfg->login_ms);
            conn_close(c, NULL);
            continue;
        }
        if (c->in_len > 0 && c->frame_ms != 0) {
            if (!conn_reading(c)) {
                /* we are not reading it: its frame's clock restarts */
                c->frame_ms = now;
            } else if (now - c->frame_ms > cfg->frame_ms) {
                ts_info("dropping %s: frame not completed in %lld ms",
                        c->peer, (long long) cfg->frame_ms);
                conn_close(c, NULL);
                continue;
            }
        }
        if (resume && c->in_len >= TS_FRAME_HDR_B && !c->backlog) {
            c->backlog = 1;
            conn_queue(c);
        }
        if (c->job_pending || c->out.len > c->out_off) {
            continue;
        }
        if (c->in_len == 0 && now - c->last_ms > TS_TRK_IDLE_TIMEOUT_MS) {
            conn_close(c, "idle");
            continue;
        }
        if (c->eof && c->in_len > 0 && !c->backlog) {
            conn_close(c, "peer closed inside a frame");
        }
    }
    ts_slot_beat(slot);
    if (atomic_load(&slot->state) != TS_SLOT_ACTIVE
        && atomic_load(&slot->owner) == env.me)
    {
        ts_slot_set_active(slot, env.me);
    }
    (void) ctx;
    trk_housekeep(&env, now);
}


int
trk_worker_main(const ts_worker_ctx_t *ctx)
{
    struct epoll_event  e, evs[64];
    ts_slot_sh_t       *slot;
    trk_store_t        *st;
    conn_t             *c;
    char                err[512];
    int64_t             now, last_tick;
    uint32_t            i;
    int                 n, k, stop;

    cfg = ctx->arg;
    env.me = ts_owner_make(getpid(), ctx->generation);
    slot = &cfg->shm.slots[ctx->slot];
    if (atomic_load(&slot->owner) != env.me) {
        ts_slot_assign(slot, env.me, TRK_ROLE_WORKER);
    }

    st = trk_store_open(cfg->db_path, 0, cfg->nosync, err, sizeof(err));
    if (st == NULL) {
        ts_err("%s", err);
        return 1;
    }
    /* K1: writes are stamped by the shared HLC and wake the sync process */
    trk_store_set_origin(st, cfg->id, (void *) &cfg->shm.stats->hlc,
                         (void *) &cfg->shm.stats->op_wake);
    trk_ops_init();
    env.tracker_id = cfg->id;
    env.st = st;
    env.shm = (trk_shm_t *) &cfg->shm;
    env.kdf_iterations = cfg->kdf_iterations;
    env.session_timeout_ms = cfg->session_timeout_ms;
    env.workers_n = cfg->workers;
    env.ticket_ttl_ms = cfg->ticket_ttl_ms;
    trk_ops_thr_defaults(&env.thr_user, &env.thr_addr);
    env.thr_user.limit = cfg->login_fails_user;
    env.thr_addr.limit = cfg->login_fails_addr;
    trk_ops_kdf_defaults(&env.thr_kdf, &env.thr_create);
    env.thr_kdf.limit = cfg->kdf_per_addr;
    env.thr_create.limit = cfg->create_per_addr;
    ts_wbuf_init(&scratch);

    /* this slot's connection counters start from nothing (a predecessor
     * in the slot may have died with connections open) */
    trk_conns_reset(env.shm, ctx->slot);
    my_counts = &env.shm->conns[ctx->slot];
    server_tls = ts_tls_ctx_new(TS_TLS_TRACKER_SERVER, cfg->crt_path,
                                cfg->key_path, cfg->ca_path, err,
                                sizeof(err));
    if (server_tls == NULL) {
        ts_err("cannot set up TLS: %s", err);
        return 1;
    }
    env.signer = ts_ticket_signer_new((uint32_t) cfg->id, cfg->crt_path,
                                      cfg->key_path, err, sizeof(err));
    if (env.signer == NULL) {
        ts_err("cannot load the ticket signing key: %s", err);
        return 1;
    }

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        ts_err("epoll_create1() failed: %s", strerror(errno));
        return 1;
    }
    if (kdf_pool_start() != 0) {
        return 1;
    }
    memset(&e, 0, sizeof(e));
    e.events = EPOLLIN | EPOLLEXCLUSIVE;
    e.data.ptr = &tag_listen;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, cfg->listen_fd, &e) != 0) {
        ts_err("epoll_ctl(listen) failed: %s", strerror(errno));
        return 1;
    }
    e.events = EPOLLIN;
    e.data.ptr = &tag_stop;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, ts_worker_stop_fd(), &e) != 0) {
        ts_err("epoll_ctl(stop) failed: %s", strerror(errno));
        return 1;
    }
    e.data.ptr = &tag_kdf;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, pool.evfd, &e) != 0) {
        ts_err("epoll_ctl(eventfd) failed: %s", strerror(errno));
        return 1;
    }

    ts_worker_ready(ctx);
    ts_slot_set_active(slot, env.me);
    ts_debug("worker %d ready", ctx->slot);

    stop = 0;
    last_tick = ts_now_ms();
    while (!stop) {
        /* bytes waiting inside TLS: look again at once */
        n = epoll_wait(ep, evs, 64, ready_list != NULL ? 0 : TS_TRK_TICK_MS);
        if (n < 0 && errno != EINTR) {
            ts_err("epoll_wait() failed: %s", strerror(errno));
            break;
        }
        for (k = 0; k < n; k++) {
            if (evs[k].data.ptr == &tag_listen) {
                accept_some();
            } else if (evs[k].data.ptr == &tag_stop) {
                stop = 1;
            } else if (evs[k].data.ptr == &tag_kdf) {
                kdf_drain();
            } else {
                c = evs[k].data.ptr;
                /* an earlier event of this batch may have closed it (it
                 * is freed only after the batch) */
                if (c->dead) {
                    continue;
                }
                if (evs[k].events & (EPOLLERR | EPOLLHUP)
                    && !(evs[k].events & EPOLLIN))
                {
                    conn_close(c, "socket error");
                    continue;
                }
                if (!c->ready) {
                    conn_read(c);       /* drives the handshake */
                    continue;
                }
                if ((evs[k].events & EPOLLOUT)
                    || ((evs[k].events & EPOLLIN) && c->wwant == 1))
                {
                    if (c->out.len > c->out_off && conn_flush(c) != 0) {
                        continue;
                    }
                    if (conn_process(c) != 0) {
                        continue;
                    }
                }
                if ((evs[k].events & EPOLLIN)
                    || ((evs[k].events & EPOLLOUT) && c->rwant == 2))
                {
                    conn_read(c);
                }
            }
        }
        serve_ready();
        free_dead();
        if (ts_worker_stopping() || ts_worker_orphaned(ctx)) {
            stop = 1;
        }
        now = ts_now_ms();
        if (now - last_tick >= TS_TRK_TICK_MS) {
            last_tick = now;
            tick(ctx, slot, now);
        }
    }

    atomic_store(&slot->state, TS_SLOT_STOPPING);
    for (i = 0; i < TS_TRK_CONNS_PER_WORKER_N; i++) {
        if (conns[i] != NULL) {
            conn_close(conns[i], NULL);
        }
    }
    free_dead();
    kdf_pool_stop();
    ts_ticket_signer_free(env.signer);
    ts_tls_ctx_free(server_tls);
    trk_store_close(st);
    ts_wbuf_free(&scratch);
    close(ep);
    ts_debug("worker %d stopped", ctx->slot);
    return 0;
}
