/*
 * node.h -- a client node's data plane: the node supervisor with its
 * uploader and downloader workers, and the CLI-side calls that publish
 * shares and downloads into the node's shm segment (node_shm.h).
 *
 * Process tree:  client (CLI) -> node supervisor -> uploader x U,
 *                                                   downloader x D,
 *                                                   agent x 1,
 *                                                   node-http x 0..1
 * The CLI creates the segment and the listening socket, then forks the
 * supervisor (which inherits both); unless opts.detached, the supervisor
 * dies with the CLI (PR_SET_PDEATHSIG) and takes its workers with it.
 * The agent (opts.agent_main, given by the client layer) holds the
 * node's tracker session and serves its control socket.
 */
#ifndef NODE_H_INCLUDED
#define NODE_H_INCLUDED

#include <stdint.h>
#include <sys/types.h>
#include "ts_shm.h"
#include "ts_sup.h"
#include "node_shm.h"

typedef struct {
    char        ip[64];
    uint16_t    port;
    int         uploaders;      /* 0 = TS_NODE_UPLOADERS_N */
    int         downloaders;    /* 0 = TS_NODE_DOWNLOADERS_N */
    int         ticket_wait_ms; /* 0 = TS_NODE_UNAUTH_MS: an uploader link
                                   must hold a valid ticket within this */
    int         slow_chunk_ms;  /* 0 = TS_DL_GET_SLOW_MS: a chunk reply
                                   slower than this is given up when
                                   another source has the chunk */
    uint64_t    max_up_Bps;     /* node-wide upload cap, bytes/s; 0 = none */
    uint64_t    max_down_Bps;   /* node-wide download cap; 0 = none */
    char        crt_path[4096]; /* node certificate (PEM, state dir) */
    char        key_path[4096]; /* node key (PEM, state dir) */
    char        ca_path[4096];  /* cluster CA (PEM): ticket issuers */
    char        log_path[4096]; /* "": the node logs on the CLI's stderr;
                                   else it appends to this file (0600) */
    ts_worker_main_pt agent_main; /* the agent role's main (one process:
                                   the tracker session, the control
                                   socket); NULL = none */
    ts_worker_main_pt http_main; /* the node-http role's main (one
                                   process: the HTTP endpoint, reading
                                   shm only); NULL = none */
    int         close_fd;       /* an fd of the CLI's the node must not
                                   keep (the user's stderr); 0 = none */
    int         detached;       /* 1: the node outlives the process that
                                   started it (no PR_SET_PDEATHSIG) and
                                   unlinks its own segment at the end */
} node_opts_t;

typedef struct {
    ts_shm_t    shm;
    pid_t       sup_pid;
    int         listen_fd;
    node_opts_t opts;           /* copied by node_start: workers reach
                                   crt_path/key_path/ca_path here */
} node_t;

/* Creates the segment (replacing a stale one), binds ip:port, forks the
 * supervisor.  0, or -1 after logging why (port in use, ...). */
int  node_start(node_t *n, const node_opts_t *o);
/* Graceful stop: SIGTERM to the supervisor, bounded wait, then SIGKILL;
 * unlinks the segment. */
void node_stop(node_t *n);
/* 1 while the supervisor runs. */
int  node_alive(const node_t *n);

/* Worker entry points (ts_sup roles).  ctx->arg is the node_t * of the
 * supervisor (its shm is mapped, listen_fd is the shared listening
 * socket).  Before main() the supervisor's on_child_init has already
 * assigned node_slots()[ctx->slot] to ts_owner_make(getpid(),
 * ctx->generation) (state STARTING); a worker calls ts_slot_set_active()
 * and ts_worker_ready() when its init is done, and ts_slot_beat() now
 * and then.  Uploaders keep slot counter[0] = their queued GETs,
 * counter[1] = their active uploads (reclaim subtracts them from
 * node_stats). */
int  up_main(const ts_worker_ctx_t *ctx);
int  dl_main(const ts_worker_ctx_t *ctx);

/* Supervisor on_exit: frees every claim of the dead owner (chunk claims,
 * map refresh claims, finalize claims -> download back to ACTIVE) and
 * undoes its in-flight counts.  Lock-free. */
void node_reclaim(const ts_shm_t *shm, ts_owner_t dead);

/* Drops every share and download entry from the segment (a restarted
 * agent republishes them from node.tdb).  Single writer: the agent. */
void node_pub_clear(ts_shm_t *s);

/* ---- bandwidth caps (node_rate.c) ---------------------------------- */
typedef struct {
    uint64_t    up_Bps;         /* caps, 0 = unlimited */
    uint64_t    down_Bps;
    uint64_t    up_total_B;     /* bytes sent / received so far (grants) */
    uint64_t    down_total_B;
    int64_t     at_ns;          /* when read (monotonic) */
} node_rate_now_t;

/* Sets the node-wide caps in bytes/s (0 = unlimited, -1 = leave as is);
 * takes effect for every worker at once.  0, or -1 (no such table). */
int  node_rate_set(const ts_shm_t *s, int64_t up_Bps, int64_t down_Bps);
/* The caps and the byte counters now.  0 or -1. */
int  node_rate_get(const ts_shm_t *s, node_rate_now_t *out);
/* A link's share of a cap: bytes reserved in the bucket, not yet used,
 * the time they may be used from, and the cap they were reserved at. */
typedef struct {
    size_t      left_B;
    int64_t     due_ns;         /* monotonic */
    uint64_t    at_Bps;
} node_rate_credit_t;
/* Gives c's unused bytes back to b (a link that closes or starts over). */
void node_rate_credit_drop(ts_rate_sh_t *b, node_rate_credit_t *c);
/* Makes sure c holds credit: with none (or when the cap changed while c
 * waited) reserves `want` bytes, at most TS_RATE_SLICE_B under a cap.
 * 0: c->left_B bytes may be used now; else the ns to wait for them. */
int64_t node_rate_credit(ts_rate_sh_t *b, node_rate_credit_t *c,
                         size_t want, int64_t now_ns);
/* A bucket's wait (ns, > 0) as a timer delay in ms: rounded up, at most
 * TS_RATE_WAIT_MAX_MS so a raised cap is seen soon. */
int  node_rate_wait_ms(int64_t wait_ns);

/* ---- CLI side: publish into shm (single writer: the CLI process) ---- */
/* Returns the share index, or -1 (table full). */
int  node_share_add(ts_shm_t *s, const char *group, const char *name,
                    const char *path, uint64_t size, int64_t mtime_ns,
                    uint32_t nchunks);
void node_share_remove(ts_shm_t *s, int idx);
int  node_share_find(const ts_shm_t *s, const char *group, const char *name);

/* Adds a download (state ACTIVE).  part_id: the .part the CLI created
 * for it (workers open nothing else; NULL or zero = any regular file).
 * hashes: nchunks x 20 bytes.  done / maybe: optional bitmaps (nchunks
 * bits, LSB first) restored from node.tdb.  Returns the index or -1. */
int  node_dl_add(ts_shm_t *s, const char *group, const char *name,
                 const char *dest, const char *part,
                 const node_fid_t *part_id, uint64_t size,
                 uint32_t nchunks, const uint8_t file_sha1[20],
                 const uint8_t *hashes, const uint8_t *done,
                 const uint8_t *maybe);
/* Replaces the source list: addrs[i] "ip:port", complete[i] 0/1, fps:
 * n x TS_FP_B certificate fingerprints (NULL = all zero).  A source is
 * (addr, fp): sources no longer listed become GONE; new ones LIVE; known
 * ones keep stats. */
void node_dl_set_sources(ts_shm_t *s, int idx, const char *const *addrs,
                         const int *complete, const uint8_t *fps, int n);
/* Replaces download idx's ticket (len <= TS_TICKET_MAX_B; expires_ms is
 * wall clock) and bumps its generation, so every downloader re-sends it
 * (PEER_AUTH) on its links; clears `denied`.  0 or -1. */
int  node_dl_set_ticket(ts_shm_t *s, int idx, const void *ticket,
                        size_t len, int64_t expires_ms);
void node_dl_remove(ts_shm_t *s, int idx);    /* frees the entry */

/* fsync of the directory holding path, so a name made, renamed or
 * removed there is durable (errors ignored: best effort). */
void node_fsync_dir_of(const char *path);
/* The identity of an open file (node_fid_t); 0 or -1. */
int  node_fid_of(int fd, node_fid_t *id);
/* 1 if a is b: same device and inode, and same birth time where both
 * have one. */
int  node_fid_eq(const node_fid_t *a, const node_fid_t *b);
/* Opens a download's file, the .part or the final file it was renamed
 * to, never through a symlink (O_NOFOLLOW added to flags, never
 * O_CREAT), and only if it is a regular file that is the .part the CLI
 * created (node_fid_eq with id; NULL or zero: any regular file).  The
 * fd, or -1 with errno ENOENT (not there), ESTALE (another file has taken
 * the name) or open(2)'s. */
int  node_open_part(const char *path, int flags, const node_fid_t *id);

/* The seqlock readers (node_share_snapshot, node_dl_snapshot,
 * node_dl_ticket) are declared in node_shm.h, included above. */

#endif
