/*
 * trk_worker.c -- one tracker request worker (role "trk-worker"): its
 * set-up and its event loop.
 *
 * Purpose: open this worker's tdb handle, TLS context and ticket signer,
 * start its KDF threads (trk_kdfq.c), and run one event loop (ts_ev) over
 * the shared listen socket (accept: trk_wconn.c), its client connections
 * (frames and replies: trk_wio.c), the KDF eventfd, the supervisor's
 * stop fd and the tick timer.  The write requests of one loop turn share
 * one tdb transaction; at the end of the turn it is committed (one
 * fsync) and only then are the turn's replies sent (trk_wbatch.c).
 * Connections whose TLS layer holds
 * decrypted bytes, or whose whole frames wait for their next turn, are
 * on the loop's again list, served before it next sleeps.
 *
 * Deadlines (checked every TS_TRK_TICK_MS): the TLS handshake must finish
 * within --handshake-ms (TS_TLS_HANDSHAKE_MS); a connection must log in
 * (or show a valid token or a tracker certificate) within
 * --login-timeout (TS_TRK_LOGIN_MS), whatever it sends meanwhile; a
 * frame begun must complete within --frame-timeout
 * (TS_TRK_FRAME_TIMEOUT_MS) of the time we read from the link (also
 * while replies are queued, and while it waits for input budget; an
 * admitted frame's clock restarts; one that holds input budget others
 * wait for must not stall for TS_TRK_IN_STALL_MS); a connection with
 * nothing to do is closed after TS_TRK_IDLE_TIMEOUT_MS; a peer that does
 * not read its replies (no write progress for the frame timeout, replies
 * queued without a break for TS_TRK_OUT_DRAIN_MS) is dropped.  The tick also beats the
 * worker's slot and runs the housekeeper when this worker holds its
 * claim.
 *
 * Locking: the event loop is single-threaded and owns the tdb handle and
 * every connection.  KDF threads share only the job queues (trk_kdfq.c)
 * and touch nothing else.
 *
 * Crash behaviour: a dead worker's connections see RST and clients retry
 * (on another worker or tracker) with the same request id; its tdb
 * transaction, if any, never happened; its shm stripe locks are robust and
 * repaired; the supervisor frees its slot and claims, zeroes its
 * connection counters, and forks a new one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_clock.h"
#include "ts_ev.h"
#include "ts_log.h"
#include "ts_ticket.h"
#include "ts_tls.h"
#include "trk_kdfq.h"
#include "trk_ops.h"
#include "trk_store.h"
#include "trk_wbatch.h"
#include "trk_wconn.h"
#include "trk_wio.h"
#include "trk_worker.h"


/* KDF results: finish each request on the loop thread. */
static void
kdf_drain(void)
{
    trk_kdfq_item_t *it, *list;
    trk_wconn_t     *c;
    int              live;

    list = trk_kdfq_take();
    while (list != NULL) {
        it = list;
        list = it->next;
        trk_kdfq_release(it);

        c = trk_wk.conns[it->idx];
        live = (c != NULL && c->id == it->cid);
        trk_wk.env.link = live ? &c->link : NULL;
        trk_ops_finish(&trk_wk.env, it->job, live, &trk_wk.scratch);
        trk_wk.env.link = NULL;
        trk_metrics_note(trk_wk.env.shm->reqs, it->job->type,
                         trk_wk.scratch.data, trk_wk.scratch.len,
                         ts_now_us() - it->t0_us);
        if (live) {
            if (it->job->logged_in) {
                trk_wconn_authed(c);
                if (trk_wadm_user(c, it->job->user) != 0) {
                    /* over --max-conns-per-user: the answer, then the
                     * link closes */
                    c->link.close_after = 1;
                }
            }
            c->job_pending = 0;
            if (trk_wio_reply(c, it->job->reqid, &trk_wk.scratch) == 0) {
                if (c->link.close_after) {
                    c->eof = 1;         /* nothing more is read */
                    c->in_len = 0;
                    c->frame_ms = 0;
                    trk_win_release(c);
                }
                (void) trk_wio_process(c);
            }
        }
        trk_kdf_job_free(it->job);
        free(it);
    }
}


/* The deadlines of one connection (see the top of the file); resume:
 * backpressure just ended.  Closes c if one has passed. */
static void
conn_deadlines(trk_wconn_t *c, int64_t now, int resume)
{
    const trk_config_t *cfg = trk_wk.cfg;

    if (!c->ready) {
        if (now - c->acc_ms > cfg->handshake_ms) {
            ts_info("dropping %s: TLS handshake not done in %lld ms",
                    c->peer, (long long) cfg->handshake_ms);
            trk_wconn_close(c, NULL);
        }
        return;
    }
    if (c->out.len > c->out_off) {
        if (now - c->wprog_ms > cfg->frame_ms) {
            ts_info("dropping %s: it does not read its replies", c->peer);
            trk_wconn_close(c, NULL);
            return;
        }
        if (c->drain_ms != 0 && now - c->drain_ms > TS_TRK_OUT_DRAIN_MS) {
            ts_info("dropping %s: replies queued for %lld ms without a "
                    "break", c->peer, (long long) TS_TRK_OUT_DRAIN_MS);
            trk_wconn_close(c, NULL);
            return;
        }
    }
    /* no login (nor token, nor tracker certificate) in time: whatever
     * else it sent, the link goes (a login in its KDF may finish) */
    if (c->unauth && !c->job_pending && now - c->acc_ms > cfg->login_ms) {
        ts_info("dropping %s: not logged in within %lld ms", c->peer,
                (long long) cfg->login_ms);
        trk_wconn_close(c, NULL);
        return;
    }
    if (c->in_len > 0 && c->frame_ms != 0) {
        if (!trk_wio_reading(c) && !c->in_wait) {
            /* we are not reading it: its frame's clock restarts (but a
             * frame waiting for input budget keeps its clock) */
            c->frame_ms = now;
        } else if (now - c->frame_ms > cfg->frame_ms) {
            ts_info("dropping %s: frame not completed in %lld ms",
                    c->peer, (long long) cfg->frame_ms);
            trk_wconn_close(c, NULL);
            return;
        } else if (trk_win_stalled(c, now)) {
            ts_info("dropping %s: its frame holds input budget others "
                    "wait for and sent nothing for %d ms", c->peer,
                    TS_TRK_IN_STALL_MS);
            trk_wconn_close(c, NULL);
            return;
        }
    }
    if (resume && c->in_len >= TS_FRAME_HDR_B && !c->backlog) {
        c->backlog = 1;
        trk_wconn_queue(c);
    }
    if (c->job_pending || c->out.len > c->out_off) {
        return;
    }
    if (c->in_len == 0 && now - c->last_ms > TS_TRK_IDLE_TIMEOUT_MS) {
        trk_wconn_close(c, "idle");
        return;
    }
    if (c->eof && c->in_len > 0 && !c->backlog) {
        trk_wconn_close(c, "peer closed inside a frame");
    }
}


/* Every TS_TRK_TICK_MS: backpressure, the accept pause, the deadlines,
 * the slot's heartbeat, the housekeeper. */
static void
tick(ts_slot_sh_t *slot, int64_t now)
{
    uint32_t  i;
    int       resume;

    /* backpressure over: connections with whole frames waiting run them
     * (each also gets its EPOLLIN back from trk_wio_process) */
    resume = trk_wk.bp_on && trk_wk.out_total <= trk_wk.cfg->worker_out_max;
    if (resume) {
        trk_wk.bp_on = 0;
        ts_info("replies queued in this worker down to %llu bytes: "
                "reading every connection again",
                (unsigned long long) trk_wk.out_total);
    }
    trk_wconn_accept_resume(now);
    for (i = 0; i < TS_TRK_CONNS_PER_WORKER_N; i++) {
        if (trk_wk.conns[i] != NULL) {
            conn_deadlines(trk_wk.conns[i], now, resume);
        }
    }
    ts_slot_beat(slot);
    if (atomic_load(&slot->state) != TS_SLOT_ACTIVE
        && atomic_load(&slot->owner) == trk_wk.env.me)
    {
        ts_slot_set_active(slot, trk_wk.env.me);
    }
    trk_housekeep(&trk_wk.env, now);
}


/* The request environment, the TLS context, the ticket signer and this
 * slot's connection counters.  0 or -1 (logged). */
static int
worker_setup(const ts_worker_ctx_t *ctx, trk_store_t *st)
{
    const trk_config_t *cfg = trk_wk.cfg;
    trk_env_t          *env = &trk_wk.env;
    char                err[512];

    /* writes are stamped by the shared HLC and wake the sync process */
    trk_store_set_origin(st, cfg->id, (void *) &cfg->shm.stats->hlc,
                         (void *) &cfg->shm.stats->op_wake);
    trk_ops_init();
    env->tracker_id = cfg->id;
    env->st = st;
    env->shm = (trk_shm_t *) &cfg->shm;
    env->kdf_iterations = cfg->kdf_iterations;
    env->session_timeout_ms = cfg->session_timeout_ms;
    env->workers_n = cfg->workers;
    env->ticket_ttl_ms = cfg->ticket_ttl_ms;
    env->group_commit = !cfg->no_group_commit;
    trk_ops_thr_defaults(&env->thr_user, &env->thr_addr);
    env->thr_user.limit = cfg->login_fails_user;
    env->thr_addr.limit = cfg->login_fails_addr;
    trk_ops_kdf_defaults(&env->thr_kdf, &env->thr_create);
    env->thr_kdf.limit = cfg->kdf_per_addr;
    env->thr_create.limit = cfg->create_per_addr;
    ts_wbuf_init(&trk_wk.scratch);

    /* this slot's connection counters start from nothing (a predecessor
     * in the slot may have died with connections open) */
    trk_conns_reset(env->shm, ctx->slot);
    trk_wk.my_counts = &env->shm->conns[ctx->slot];
    trk_wk.server_tls = ts_tls_ctx_new(TS_TLS_TRACKER_SERVER, cfg->crt_path,
                                       cfg->key_path, cfg->ca_path, err,
                                       sizeof(err));
    if (trk_wk.server_tls == NULL) {
        ts_err("cannot set up TLS: %s", err);
        return -1;
    }
    env->signer = ts_ticket_signer_new((uint32_t) cfg->id, cfg->crt_path,
                                       cfg->key_path, err, sizeof(err));
    if (env->signer == NULL) {
        ts_err("cannot load the ticket signing key: %s", err);
        return -1;
    }
    return 0;
}


/* The KDF threads finished jobs. */
static void
on_kdf(ts_ev_t *ev, ts_ev_io_t *io, uint32_t events)
{
    kdf_drain();
}


static void
on_tick(ts_ev_t *ev, ts_ev_timer_t *t)
{
    tick(t->data, ts_now_ms());
    if (ts_ev_timer_in(ev, t, TS_TRK_TICK_MS) != 0) {
        ts_err("cannot re-arm the worker's tick: out of memory");
    }
}


/* The event loop: the listen socket, the stop fd, the KDF eventfd, the
 * tick, and the KDF threads.  0 or -1 (logged). */
static int
loop_setup(ts_slot_sh_t *slot)
{
    trk_wk.ev = ts_ev_new();
    if (trk_wk.ev == NULL) {
        ts_err("epoll_create1() failed: %s", strerror(errno));
        return -1;
    }
    if (trk_kdfq_start() != 0 || trk_wconn_listen_start(trk_wio_on_io) != 0)
    {
        return -1;
    }
    if (ts_ev_set_stop_fd(trk_wk.ev, ts_worker_stop_fd()) != 0) {
        ts_err("epoll_ctl(stop) failed: %s", strerror(errno));
        return -1;
    }
    if (ts_ev_add(trk_wk.ev, &trk_wk.kdf_io, trk_kdfq_fd(), EPOLLIN, on_kdf,
                  NULL) != 0)
    {
        ts_err("epoll_ctl(eventfd) failed: %s", strerror(errno));
        return -1;
    }
    ts_ev_timer_init(&trk_wk.tick_timer, on_tick, slot);
    if (ts_ev_timer_in(trk_wk.ev, &trk_wk.tick_timer, TS_TRK_TICK_MS) != 0) {
        ts_err("cannot arm the worker's tick: out of memory");
        return -1;
    }
    return 0;
}


/* Until the supervisor stops us (or dies).  Connections closed in a
 * turn are freed after it. */
static void
loop(const ts_worker_ctx_t *ctx)
{
    int64_t t0;
    int     batch;

    while (!ts_ev_stopped(trk_wk.ev)) {
        if (ts_ev_run_once(trk_wk.ev, TS_TRK_TICK_MS) != 0) {
            ts_err("epoll_wait() failed: %s", strerror(errno));
            break;
        }
        /* the turn's writes become durable, then their replies go */
        batch = trk_store_batch_pending(trk_wk.env.st);
        t0 = batch ? ts_now_us() : 0;
        trk_wbatch_end(trk_wio_send, trk_wio_settle);
        if (batch) {
            trk_metrics_commit(trk_wk.env.shm->reqs, ts_now_us() - t0);
        }
        trk_wconn_free_dead();
        if (ts_worker_stopping() || ts_worker_orphaned(ctx)) {
            break;
        }
    }
}


int
trk_worker_main(const ts_worker_ctx_t *ctx)
{
    ts_slot_sh_t *slot;
    trk_store_t  *st;
    char          err[512];
    uint32_t      i;

    trk_wk.cfg = ctx->arg;
    trk_wk.env.me = ts_owner_make(getpid(), ctx->generation);
    slot = &trk_wk.cfg->shm.slots[ctx->slot];
    if (atomic_load(&slot->owner) != trk_wk.env.me) {
        ts_slot_assign(slot, trk_wk.env.me, TRK_ROLE_WORKER);
    }
    st = trk_store_open(trk_wk.cfg->db_path, 0, trk_wk.cfg->nosync, err,
                        sizeof(err));
    if (st == NULL) {
        ts_err("%s", err);
        return 1;
    }
    if (worker_setup(ctx, st) != 0 || loop_setup(slot) != 0) {
        return 1;
    }
    ts_worker_ready(ctx);
    ts_slot_set_active(slot, trk_wk.env.me);
    ts_debug("worker %d ready", ctx->slot);

    loop(ctx);

    trk_wbatch_end(trk_wio_send, trk_wio_settle);
    atomic_store(&slot->state, TS_SLOT_STOPPING);
    for (i = 0; i < TS_TRK_CONNS_PER_WORKER_N; i++) {
        if (trk_wk.conns[i] != NULL) {
            trk_wconn_close(trk_wk.conns[i], NULL);
        }
    }
    trk_wconn_free_dead();
    ts_ev_timer_cancel(trk_wk.ev, &trk_wk.tick_timer);
    ts_ev_del(trk_wk.ev, &trk_wk.kdf_io);
    trk_wconn_listen_poll(0);
    trk_kdfq_stop(&trk_wk.env);
    ts_ticket_signer_free(trk_wk.env.signer);
    ts_tls_ctx_free(trk_wk.server_tls);
    trk_store_close(st);
    ts_wbuf_free(&trk_wk.scratch);
    ts_ev_free(trk_wk.ev);
    ts_debug("worker %d stopped", ctx->slot);
    return 0;
}
