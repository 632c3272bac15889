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

/* The lists a connection may be on (its index in lprev/lnext). */
enum {
    TRK_WL_UNAUTH = 0,          /* not logged in, by accept time */
    TRK_WL_WAIT   = 1,          /* waiting for input budget, FIFO */
    TRK_WL_N_
};

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
    /* admission (trk_wadm.c) and the input budget (trk_win.c) */
    struct trk_wconn_s *lprev[TRK_WL_N_];   /* on the worker's lists */
    struct trk_wconn_s *lnext[TRK_WL_N_];
    int         on_list[TRK_WL_N_];
    int         has_user;       /* counted under user / ubucket */
    uint32_t    ubucket;
    char        user[TS_ID_MAX_B + 1];
    size_t      in_resv;        /* budget reserved for the head frame */
    size_t      in_need;        /* waiting: what the head frame needs */
    int         in_wait;        /* on the wait list, not read */
    int64_t     in_prog_ms;     /* last input bytes arrived */
    uint32_t    in_ukey;        /* waiting or reserved: counted under
                                   this user bucket (trk_win.c) */
    int         in_counted;
    int         fp_checked;     /* its certificate was looked up */
    int         promoted;       /* shows a live session's certificate:
                                   out of the pool, small frames only
                                   until a token is seen */
} trk_wconn_t;

/* A worker's list of connections, oldest first. */
typedef struct {
    trk_wconn_t *head;
    trk_wconn_t *tail;
} trk_wlist_t;

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
    trk_wlist_t         lists[TRK_WL_N_];
    uint64_t            in_total;     /* input budget reserved, all conns */
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

/* ---- admission (trk_wadm.c) ---- */
void trk_wl_push(int list, trk_wconn_t *c);
void trk_wl_remove(int list, trk_wconn_t *c);
/* A new connection from address bucket: NULL if it may come in (an idle
 * connection not logged in may have been closed to make room), else
 * which cap refuses it. */
const char *trk_wadm_admit(uint32_t bucket);
/* c counts as not logged in (accept) / no longer (login, close). */
void trk_wadm_unauth_add(trk_wconn_t *c);
void trk_wadm_unauth_drop(trk_wconn_t *c);
/* A token or login of user was seen on c: c counts under that user.  0,
 * or -1 if the user is at --max-conns-per-user (c is not counted; the
 * caller closes it). */
int  trk_wadm_user(trk_wconn_t *c, const char *user);
/* c no longer counts under its user (close). */
void trk_wadm_user_drop(trk_wconn_t *c);

/* ---- input budget (trk_win.c) ---- */
/* Bytes the next read of c may take (0: none now). */
size_t trk_win_room(const trk_wconn_t *c);
/* The head frame of c is flen bytes: 1 it may be read (reserved, or
 * small), 0 it waits for budget (c not read meanwhile), -1 c was closed
 * (over --conn-in-max). */
int  trk_win_reserve(trk_wconn_t *c, size_t flen);
/* 1 if c holds a reservation while others wait, and its frame has not
 * moved for TS_TRK_IN_STALL_MS (the caller closes it). */
int  trk_win_stalled(const trk_wconn_t *c, int64_t now);
/* The head frame of c was consumed, or c closes: its reservation goes
 * back and waiting connections that now fit are admitted. */
void trk_win_release(trk_wconn_t *c);

#endif
