/*
 * cli_session.c -- login state and heartbeat thread (see cli_session.h).
 *
 * The heartbeat thread is detached and owns only its small context (the
 * generation it serves, a copy of the token, its own cli_rpc_t).  It
 * sleeps on s->cond until the next beat or until s->gen changes; it
 * never holds s->mu across network I/O.  All signals are blocked in it
 * so SIGINT/SIGTERM always reach the main thread's poll().
 *
 * With a save path (cli_session_persist) the session is written to
 * <state>/session at every start and removed when it ends or a tracker
 * says it expired, so a restarted agent can resume it (cli_daemon.c).
 *
 * Locking: s->mu for the fields (and the saved file); the thread's rpc
 * is private to it.  Crash behaviour: the saved session outlives a
 * killed process on purpose; the tracker still ends it when no
 * heartbeat comes for its timeout.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ts_config.h"
#include "ts_log.h"
#include "ts_proto.h"
#include "cli_rpc.h"
#include "cli_sessfile.h"
#include "cli_session.h"

typedef struct {
    cli_session_t  *s;
    uint64_t        gen;
    uint8_t         tok[TS_TOKEN_B];
    int             prefer;
} cli_hb_ctx_t;


int
cli_session_init(cli_session_t *s, const ts_trackers_t *trk)
{
    pthread_condattr_t  ca;

    memset(s, 0, sizeof(*s));
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        return -1;
    }
    if (pthread_condattr_init(&ca) != 0) {
        return -1;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&s->cond, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        return -1;
    }
    pthread_condattr_destroy(&ca);
    s->trk = *trk;
    s->heartbeat_ms = TS_HEARTBEAT_MS;
    return 0;
}


static void
cli_deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long) (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}


/* A heartbeat thread ends: cli_session_wait_threads may return. */
static void
cli_heartbeat_gone(cli_session_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->threads--;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}


static void *
cli_heartbeat_main(void *arg)
{
    cli_hb_ctx_t     *hb = arg;
    cli_session_t    *s = hb->s;
    cli_rpc_t         rpc;
    cli_reply_t       rep;
    struct timespec   dl;
    int               r, down, ms;

    if (cli_rpc_init(&rpc, &s->trk, hb->prefer) != 0) {
        ts_err("heartbeat: cannot set up its tracker link");
        free(hb);
        cli_heartbeat_gone(s);
        return NULL;
    }
    down = 0;

    pthread_mutex_lock(&s->mu);
    for ( ;; ) {
        ms = s->heartbeat_ms > 0 ? s->heartbeat_ms : TS_HEARTBEAT_MS;
        cli_deadline_in(&dl, ms);
        while (s->gen == hb->gen) {
            r = pthread_cond_timedwait(&s->cond, &s->mu, &dl);
            if (r == ETIMEDOUT) {
                break;
            }
        }
        if (s->gen != hb->gen) {
            break;
        }
        pthread_mutex_unlock(&s->mu);

        /* try each tracker once per beat; the next beat tries again */
        r = cli_rpc_call_ex(&rpc, TS_MSG_HEARTBEAT, hb->tok, TS_TOKEN_B,
                            &rep, s->trk.n > 0 ? s->trk.n : 1, 0);

        pthread_mutex_lock(&s->mu);
        if (s->gen != hb->gen) {
            cli_reply_free(&rep);
            break;
        }
        if (r != 0) {
            if (!down) {
                ts_warn("heartbeat failed: %s", rep.msg);
                down = 1;
            }
        } else if (rep.status == TS_ERR_AUTH) {
            s->logged_in = 0;
            s->gen++;
            cli_sessfile_remove(s->save_path);
            pthread_cond_broadcast(&s->cond);
            ts_warn("session expired; log in again");
            cli_reply_free(&rep);
            break;
        } else {
            if (rep.status != TS_OK) {
                ts_warn("heartbeat refused: %s", rep.msg[0] ? rep.msg
                        : ts_status_name(rep.status));
            } else if (down) {
                ts_info("heartbeat ok again");
            }
            down = 0;
        }
        cli_reply_free(&rep);
    }
    pthread_mutex_unlock(&s->mu);

    cli_rpc_destroy(&rpc);
    free(hb);
    cli_heartbeat_gone(s);
    return NULL;
}


int
cli_session_start(cli_session_t *s, const char *user,
                  const uint8_t tok[TS_TOKEN_B], int prefer)
{
    cli_hb_ctx_t    *hb;
    pthread_t        th;
    pthread_attr_t   attr;
    sigset_t         all, old;
    int              r;

    hb = calloc(1, sizeof(*hb));
    if (hb == NULL) {
        return -1;
    }

    pthread_mutex_lock(&s->mu);
    s->gen++;
    pthread_cond_broadcast(&s->cond);
    s->logged_in = 1;
    snprintf(s->user, sizeof(s->user), "%s", user);
    memcpy(s->tok, tok, TS_TOKEN_B);
    if (s->save_path[0] != '\0') {
        cli_sessfile_t  f;

        memset(&f, 0, sizeof(f));
        snprintf(f.user, sizeof(f.user), "%s", user);
        memcpy(f.tok, tok, TS_TOKEN_B);
        f.heartbeat_ms = s->heartbeat_ms;
        f.tracker = prefer < 0 ? 0 : prefer;
        if (cli_sessfile_save(s->save_path, &f) != 0) {
            ts_warn("cannot save the session in %s: %s", s->save_path,
                    strerror(errno));
        }
    }
    hb->s = s;
    hb->gen = s->gen;
    memcpy(hb->tok, tok, TS_TOKEN_B);
    hb->prefer = prefer;
    s->threads++;
    pthread_mutex_unlock(&s->mu);

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* the thread inherits this mask: signals stay with the main thread */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&th, &attr, cli_heartbeat_main, hb);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);

    if (r != 0) {
        ts_err("pthread_create() failed: %s", strerror(r));
        free(hb);
        pthread_mutex_lock(&s->mu);
        s->threads--;
        pthread_mutex_unlock(&s->mu);
        /* the session is valid; it will just expire without beats */
        return -1;
    }
    return 0;
}


int
cli_session_end(cli_session_t *s)
{
    int  was;

    pthread_mutex_lock(&s->mu);
    was = s->logged_in;
    s->logged_in = 0;
    s->gen++;
    memset(s->tok, 0, sizeof(s->tok));
    cli_sessfile_remove(s->save_path);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    return was;
}


void
cli_session_forget(cli_session_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->logged_in = 0;
    s->gen++;
    memset(s->tok, 0, sizeof(s->tok));
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
}


void
cli_session_persist(cli_session_t *s, const char *path)
{
    pthread_mutex_lock(&s->mu);
    snprintf(s->save_path, sizeof(s->save_path), "%s", path);
    pthread_mutex_unlock(&s->mu);
}


int
cli_session_get(cli_session_t *s, char *user, size_t usersz,
                uint8_t tok[TS_TOKEN_B])
{
    int  in;

    pthread_mutex_lock(&s->mu);
    in = s->logged_in;
    if (in) {
        if (user != NULL && usersz > 0) {
            snprintf(user, usersz, "%s", s->user);
        }
        if (tok != NULL) {
            memcpy(tok, s->tok, TS_TOKEN_B);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return in;
}


void
cli_session_lost(cli_session_t *s, const uint8_t tok[TS_TOKEN_B])
{
    pthread_mutex_lock(&s->mu);
    if (s->logged_in && memcmp(s->tok, tok, TS_TOKEN_B) == 0) {
        s->logged_in = 0;
        s->gen++;
        memset(s->tok, 0, sizeof(s->tok));
        cli_sessfile_remove(s->save_path);
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->mu);
}


int
cli_session_wait_threads(cli_session_t *s, int timeout_ms)
{
    struct timespec  dl;
    int              left;

    cli_deadline_in(&dl, timeout_ms);
    pthread_mutex_lock(&s->mu);
    while (s->threads > 0) {
        if (pthread_cond_timedwait(&s->cond, &s->mu, &dl) == ETIMEDOUT) {
            break;
        }
    }
    left = s->threads;
    pthread_mutex_unlock(&s->mu);
    return left;
}
