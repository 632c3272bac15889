/*
 * cli_session.h -- the client's login session and its heartbeat thread.
 *
 * The session is the user id and the 16-byte token of the last good
 * login.  While logged in a detached heartbeat thread sends
 * TS_MSG_HEARTBEAT every TS_HEARTBEAT_MS on its own cli_rpc_t; when a
 * tracker answers TS_ERR_AUTH the session is dropped and
 * "session expired; log in again" is logged on stderr.
 *
 * Locking: s->mu guards every field; s->cond wakes the heartbeat thread
 * early.  Each login/logout bumps s->gen; a heartbeat thread serves one
 * generation and exits (freeing its own context) as soon as gen moves
 * on, so ending a session never waits for a slow heartbeat.  The
 * cli_session_t must outlive the process's threads (keep it static).
 * Crash behaviour: nothing persistent; a dead client's session simply
 * times out on the tracker (--session-timeout).
 */
#ifndef CLI_SESSION_H_INCLUDED
#define CLI_SESSION_H_INCLUDED

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "ts_config.h"
#include "ts_trackers.h"

typedef struct {
    pthread_mutex_t  mu;
    pthread_cond_t   cond;          /* CLOCK_MONOTONIC */
    int              logged_in;
    char             user[TS_ID_MAX_B + 1];
    uint8_t          tok[TS_TOKEN_B];
    uint64_t         gen;
    ts_trackers_t    trk;
    int              heartbeat_ms;  /* TS_HEARTBEAT_MS unless a test sets it */
    int              threads;       /* heartbeat threads still running */
    char             save_path[4200]; /* "" or <state>/session: the
                                       session is saved there while it
                                       lasts (cli_sessfile.h) */
} cli_session_t;

int  cli_session_init(cli_session_t *s, const ts_trackers_t *trk);
/* Records a login and starts its heartbeat, first talking to tracker
 * index `prefer` (the one that accepted the login).  0 or -1. */
int  cli_session_start(cli_session_t *s, const char *user,
                       const uint8_t tok[TS_TOKEN_B], int prefer);
/* Ends the local session and its heartbeat; returns 1 if one was live. */
int  cli_session_end(cli_session_t *s);
/* 1 and copies (user may be NULL) if logged in, else 0. */
int  cli_session_get(cli_session_t *s, char *user, size_t usersz,
                     uint8_t tok[TS_TOKEN_B]);
/* A command got TS_ERR_AUTH with token tok: drop the session if it is
 * still the one holding that token. */
void cli_session_lost(cli_session_t *s, const uint8_t tok[TS_TOKEN_B]);
/* After cli_session_end(): waits up to timeout_ms for heartbeat threads
 * to finish (one may be inside a request).  Returns how many are left;
 * if any, the caller should leave with _exit() so that library exit
 * handlers (OpenSSL's) do not run under a live thread. */
int  cli_session_wait_threads(cli_session_t *s, int timeout_ms);
/* From now on the session is saved in path while it lasts. */
void cli_session_persist(cli_session_t *s, const char *path);
/* Drops the session locally but keeps its saved copy (the process is
 * going away and the next agent resumes it). */
void cli_session_forget(cli_session_t *s);

#endif
