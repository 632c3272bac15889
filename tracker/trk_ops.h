/*
 * trk_ops.h -- tracker request handlers and their dispatch table.
 *
 * One entry per message type: {type, needs_login, is_write, handler}.
 * The dispatcher (trk_ops_handle) does what every handler needs:
 *   - is_write: opens ONE tdb transaction, answers from the reply cache
 *     when the same request -- same id AND the same bytes (a hash of the
 *     whole payload, token included: a genuine retry is byte-identical)
 *     -- was already served (and does nothing else), runs the handler,
 *     stores the reply under the request id and hash, commits, and only
 *     then returns the reply to be sent;
 *   - needs_login: reads the token (raw TS_TOKEN_B bytes at the start of
 *     the payload), finds the session (shm cache, else tdb), rejects an
 *     unknown or expired one with TS_ERR_AUTH and refreshes its heartbeat.
 * A handler reads its fields from rq->in, writes its OK body to rq->body
 * and returns a ts_status_t (text in rq->msg on error).  It must check
 * everything before it writes, so an error leaves tdb unchanged.
 *
 * Extending: each domain file has its own table and registers it with
 * trk_ops_register(): accounts, presence, groups and STATUS through
 * trk_ops_init() (trk_accounts.c, trk_presence.c, trk_groups.c,
 * trk_status.c), files (trk_files.c) and SYNC_* (trk_sync.c) from a
 * function marked __attribute__((constructor)).  This header also holds
 * the helpers the handlers share (trk_ops_fail, trk_ops_msg, ...).
 *
 * create_user and login (trk_accounts.c, trk_kdf.c) run PBKDF2 off the
 * event loop: their handlers return TRK_OP_DEFER with a trk_kdf_job_t; a
 * KDF thread runs trk_kdf_run(); the event loop then calls
 * trk_ops_finish().  Before a
 * job is queued its attempt is reserved in the shm throttle table (per
 * user, per address, KDF jobs in progress per address, create_users per
 * address), so concurrent attempts count at once; trk_ops_finish() or
 * trk_kdf_job_abort() settles the reservations.
 *
 * The link: before each trk_ops_handle() the worker points
 * env->link at what it knows of the connection the request came on --
 * peer address, the fingerprint of its TLS client certificate, the
 * tracker id that certificate proves.  LOGIN stores the fingerprint in
 * the session, every logged-in request must come over a link with the
 * same fingerprint (a token is bound to its node identity), FILE_INFO
 * signs the download ticket for it, SYNC_* require the tracker id.
 * env->link NULL (unit tests) = an anonymous link.
 *
 * Locking: called from a worker's event-loop thread only (the tdb handle
 * is not thread-safe); trk_kdf_run() touches nothing but its job.
 */
#ifndef TRK_OPS_H_INCLUDED
#define TRK_OPS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "ts_config.h"
#include "ts_buf.h"
#include "ts_proto.h"
#include "ts_claim.h"
#include "ts_crypto.h"
#include "ts_ticket.h"
#include "trk_store.h"
#include "trk_shm.h"

/* What the worker knows about the connection a request came on. */
typedef struct {
    char     addr[64];              /* peer IP address, no port */
    uint8_t  fp[TS_FP_B];           /* client certificate fingerprint */
    int      has_fp;                /* 0: no certificate (fp zeros) */
    int      tracker;               /* CA-proven tracker id, else 0 */
    int      admin;                 /* CA-proven admin certificate */
    int      authed;                /* set by trk_ops: a login or a
                                       valid token was seen here */
    int      close_after;           /* set by trk_ops: close the link
                                       once this reply is sent */
    char     user[TS_ID_MAX_B + 1]; /* set with authed: whose token */
} trk_link_t;

typedef struct {
    int          tracker_id;
    trk_store_t *st;
    trk_shm_t   *shm;
    uint32_t     kdf_iterations;
    int64_t      session_timeout_ms;
    int          workers_n;
    ts_owner_t   me;
    /* the link and the download tickets */
    trk_link_t          *link;          /* the request's link, or NULL */
    ts_ticket_signer_t  *signer;        /* FILE_INFO tickets; NULL: none */
    int64_t              ticket_ttl_ms;
    trk_thr_cfg_t        thr_user;      /* failed logins per user */
    trk_thr_cfg_t        thr_addr;      /* failed logins per address */
    trk_thr_cfg_t        thr_kdf;       /* KDF jobs in progress per
                                           address (pending only) */
    trk_thr_cfg_t        thr_create;    /* create_users per address */
    int                  group_commit;  /* writes join the worker's batch
                                           (trk_store_sub_begin) */
} trk_env_t;

typedef struct {
    uint8_t   type;
    uint64_t  reqid;
    char      user[TS_ID_MAX_B + 1];
    char      password[TS_PASSWORD_MAX_B + 1];
    char      node_addr[TRK_ADDR_MAX_B];
    trk_user_t rec;             /* create: new record; login: stored one */
    int       user_found;
    uint8_t   out[TS_KDF_HASH_B];
    int       kdf_err;
    /* the link the login came on (copied: it may be gone) */
    char      addr[64];
    uint8_t   fp[TS_FP_B];
    int       logged_in;            /* set by trk_ops_finish on success */
    uint8_t   req_hash[TS_SHA256_B]; /* create_user: reply cache key */
    unsigned  held;                 /* throttle reservations to settle */
    int       ran;                  /* set by trk_kdf_run() */
} trk_kdf_job_t;

typedef struct {
    trk_env_t     *env;
    uint8_t        type;
    uint64_t       reqid;
    ts_rbuf_t      in;                      /* fields after the token */
    uint8_t        tok_hash[TS_SHA256_B];   /* sha256(token), if logged in */
    uint8_t        req_hash[TS_SHA256_B];   /* trk_req_hash() of the request
                                               (writes and create_user) */
    char           user[TS_ID_MAX_B + 1];   /* the logged-in user */
    ts_wbuf_t      body;                    /* OK body */
    char           msg[TRK_MSG_B];
    int            drop_session;            /* after commit: shm remove */
    trk_kdf_job_t *job;                     /* set with TRK_OP_DEFER */
} trk_req_t;

#define TRK_OP_DEFER  1000      /* handler result: KDF job queued */

typedef int (*trk_handler_pt)(trk_req_t *rq);

typedef struct {
    uint8_t         type;
    uint8_t         needs_login;
    uint8_t         is_write;
    trk_handler_pt  handler;
} trk_op_t;

/* Adds (or replaces) entries; 0, or -1 for a type out of range. */
int  trk_ops_register(const trk_op_t *ops, size_t n);
/* Registers the account, presence, group and status handlers (the file
 * and SYNC_* handlers register themselves at start-up). */
void trk_ops_init(void);
/* The default login throttle settings (TS_LOGIN_* in ts_config.h). */
void trk_ops_thr_defaults(trk_thr_cfg_t *user, trk_thr_cfg_t *addr);
/* The default caps on KDF work per address: jobs in progress
 * (TS_TRK_KDF_ADDR_N) and create_users (TS_TRK_CREATE_ADDR_N). */
void trk_ops_kdf_defaults(trk_thr_cfg_t *kdf, trk_thr_cfg_t *create);

typedef enum {
    TRK_DO_REPLY = 0,   /* send out as a REPLY frame */
    TRK_DO_DEFER = 1,   /* *job must run in a KDF thread */
    TRK_DO_CLOSE = 2    /* not a request: drop the connection */
} trk_do_t;

/* Handles one request; out gets the reply payload. */
trk_do_t trk_ops_handle(trk_env_t *env, uint8_t type, uint64_t reqid,
                        const uint8_t *payload, uint32_t len, ts_wbuf_t *out,
                        trk_kdf_job_t **job);
/* In a KDF thread. */
void trk_kdf_run(trk_kdf_job_t *job);
/* After the KDF: commits what the request does and fills out.  When
 * deliver is 0 (the connection is gone) a login creates no session. */
void trk_ops_finish(trk_env_t *env, trk_kdf_job_t *job, int deliver,
                    ts_wbuf_t *out);
void trk_kdf_job_free(trk_kdf_job_t *job);
/* A job that will never run (queue full, shutdown): settles its throttle
 * reservations as not failed, then frees it. */
void trk_kdf_job_abort(trk_env_t *env, trk_kdf_job_t *job);

/* 1 if requests of this type write (their reply waits for the commit). */
int trk_ops_is_write(uint8_t type);

/* A frame bigger than the not-logged-in limit arrived on a link that has
 * not logged in: 1 if it is a logged-in request type and the token at the
 * start of payload (len bytes of it so far, at least TS_TOKEN_B) is a
 * valid session for env->link (which is then marked authed), else 0. */
int trk_ops_preauth(trk_env_t *env, uint8_t type, const uint8_t *payload,
                    uint32_t len);

/* The node address of a LOGIN: strict "a.b.c.d:PORT" or "[v6]:PORT"
 * (PORT 1..65535, decimal, no leading zero), whose IP must equal peer,
 * the address the connection comes from (an IPv4-mapped IPv6 address
 * counts as IPv4).  0 with canon = the address re-printed from its
 * binary form; -1 bad syntax; -2 another IP than peer (or peer unknown);
 * why gets the reason. */
int trk_node_addr_check(const char *s, const char *peer, char *canon,
                        size_t canonsz, char *why, size_t whysz);

/* ---- for the domain handlers ----------------------------------------- */
#define TRK_MALFORMED  "malformed request"
#define TRK_DB_FAIL    "tracker database error"
#define TRK_BAD_USER_ID \
    "invalid user id (use 1..64 characters of A-Z a-z 0-9 . _ -)"
#define TRK_BAD_GROUP_ID \
    "invalid group id (use 1..64 characters of A-Z a-z 0-9 . _ -)"

/* Reads one id string field into dst (TS_ID_MAX_B + 1 bytes): 0 ok, -1
 * malformed field, -2 a well-formed string that is no valid id. */
int  trk_ops_get_id(ts_rbuf_t *in, char *dst);
/* Writes the user-visible text of an error into msg; returns st. */
ts_status_t trk_ops_fail(char *msg, size_t msgsz, ts_status_t st,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The error text of rq's reply. */
void trk_ops_msg(trk_req_t *rq, const char *m);
/* out := the REPLY payload of rq with status st (body when TS_OK). */
void trk_ops_reply(ts_wbuf_t *out, trk_req_t *rq, ts_status_t st);
/* 1 if fp is all zeros in a TLS build: a session without a node identity,
 * never accepted. */
int  trk_ops_fp_missing(const uint8_t fp[TS_FP_B]);
/* Puts session h (record s, just read from tdb) into the shm cache and
 * re-reads the record after the insert, so a concurrent delete is not
 * undone: 0 cached (or the cache is full), -1 gone. */
int  trk_ops_cache_session(trk_env_t *env, const uint8_t h[32],
                           const trk_session_t *s, int64_t now);

/* The op tables of the domains, registered by trk_ops_init(). */
void trk_accounts_register(void);       /* trk_accounts.c */
void trk_presence_register(void);       /* trk_presence.c */
void trk_groups_register(void);         /* trk_groups.c */
void trk_status_register(void);         /* trk_status.c */

/* One housekeeping pass if it is due and no other worker runs one. */
void trk_housekeep(trk_env_t *env, int64_t now_ms);

#endif
