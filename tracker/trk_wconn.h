/*
 * trk_wconn.h -- a request worker's state and its connections (inside
 * the worker: trk_worker.c, trk_wio.c and trk_wconn.c share it).
 *
 * One worker per process: its state is the one trk_wk, owned by the
 * event-loop thread.
 */
#ifndef TRK_WCONN_H_INCLUDED
#define TRK_WCONN_H_INCLUDED

#include <stdint.h>
#include "ts_buf.h"
#include "ts_config.h"
#include "ts_ev.h"
#include "ts_net.h"
#include "ts_tls.h"
#include "trk_opts.h"
#include "trk_ops.h"

typedef struct trk_wconn_s {
    ts_conn_t  *c;
    ts_ev_io_t  io;             /* its fd in the worker's loop */
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
    int         backlog;        /* whole frames wait for the next turn */
    uint8_t    *in;
    size_t      in_len;
    size_t      in_cap;
    ts_wbuf_t   out;
    size_t      out_off;
    int64_t     last_ms;        /* last request answered (or accept) */
    int64_t     frame_ms;       /* a partial frame began; 0 = none */
    int64_t     wprog_ms;       /* last write progress while output queued */
    int64_t     drain_ms;       /* output queued since; 0 = none queued */
    int         job_pending;
    int         eof;
    int         dead;           /* closed; freed after the epoll batch */
    struct trk_wconn_s *next_dead;
} trk_wconn_t;

typedef struct {
    const trk_config_t *cfg;
    trk_env_t           env;
    ts_tls_t           *server_tls;
    trk_conns_sh_t     *my_counts;    /* this worker slot's counters */
    trk_wconn_t        *conns[TS_TRK_CONNS_PER_WORKER_N];
    trk_wconn_t        *dead_list;
    uint32_t            nconns;
    uint64_t            next_cid;
    ts_ev_t            *ev;           /* the event loop */
    ts_ev_io_t          listen_io;
    ts_ev_io_t          kdf_io;       /* the KDF threads' eventfd */
    ts_ev_timer_t       tick_timer;
    ts_wbuf_t           scratch;      /* every reply payload */
    uint64_t            out_total;    /* reply bytes queued, all conns */
    int                 bp_on;        /* out_total over the cap */
    int                 listen_on;    /* listening socket in the loop */
} trk_wk_t;

extern trk_wk_t trk_wk;

/* Closes c (epoll, counters, buffers); it is freed by
 * trk_wconn_free_dead after the epoll batch.  why: debug log or NULL. */
void trk_wconn_close(trk_wconn_t *c, const char *why);
/* The link has logged in (or is a proven tracker): it no longer counts
 * against the not-logged-in cap. */
void trk_wconn_authed(trk_wconn_t *c);
/* Runs c's io callback again before the loop sleeps (events 0): TLS
 * holds bytes epoll will not report, or whole frames wait for its next
 * turn. */
void trk_wconn_queue(trk_wconn_t *c);
/* Frees the connections closed in this round. */
void trk_wconn_free_dead(void);
/* The handshake just finished: who is on the other end. */
void trk_wconn_on_ready(trk_wconn_t *c);
/* Puts the listening socket into the loop; each accepted connection's
 * fd gets on_io as its callback (with the connection as io->data).  0
 * or -1 (logged). */
int  trk_wconn_listen_start(ts_ev_io_cb on_io);
/* The listening socket in (1) or out (0) of this worker's loop. */
void trk_wconn_listen_poll(int on);
/* Polls the listening socket again once an accept pause is over. */
void trk_wconn_accept_resume(int64_t now);

#endif
