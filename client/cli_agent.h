/*
 * cli_agent.h -- the CLI process's background agent: it joins the node's
 * data plane (shm), node.tdb and the trackers.
 *
 * The agent thread (its own cli_rpc_t, so the prompt never waits behind
 * it) runs every TS_NODE_PERSIST_MS:
 *   - newly verified chunks of each download -> node.tdb (one
 *     transaction) and HAVE_CHUNKS to the tracker (partial source);
 *   - every TS_NODE_SRC_REFRESH_MS: FILE_INFO -> node_dl_set_sources;
 *   - DONE -> a share (node_share_add, persisted with the download in one
 *     transaction, HAVE_CHUNKS complete=1); FAILED -> persisted with its
 *     reason; a STALE share -> STOP_SHARE, dropped, warning on stderr;
 *   - each FILE_INFO reply carries a download ticket: it replaces the
 *     one in shm when that has less than TS_TICKET_RENEW_MS (or half its
 *     lifetime) left, and FILE_INFO comes early enough for that.  A
 *     FILE_INFO refused with TS_ERR_PERM (the user left or was removed
 *     from the group) fails the download: "not permitted: ...".
 * Commands (cli_files.c) and the login/logout hooks (cli_cmds.c) go
 * through the functions below.
 *
 * Locking: one mutex guards the agent's download list, node.tdb and
 * every write the CLI makes into the node's shm (the CLI is the single
 * writer of share and download text fields).  No network I/O is done
 * while it is held, so a command never waits for a tracker behind it.
 * Crash behaviour: node.tdb holds shares and downloads (done bitmaps
 * written at most TS_NODE_PERSIST_MS behind the workers); after a kill
 * the next login rebuilds shm from it, and chunks not recorded as
 * verified are re-hashed from the .part ("maybe"), never trusted.
 */
#ifndef CLI_AGENT_H_INCLUDED
#define CLI_AGENT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "ts_buf.h"
#include "ts_tls.h"
#include "cli_cmds.h"
#include "cli_state.h"

/* ---- FILE_INFO replies ---------------------------------------------- */
typedef struct {
    char     addr[64];
    int      complete;
    uint8_t  fp[TS_FP_B];       /* its certificate fingerprint */
} cli_src_t;

typedef struct {
    uint64_t    size;
    uint8_t     sha1[20];
    uint32_t    nchunks;
    uint8_t    *hashes;         /* nchunks x 20 (malloc) */
    int         nsrc;           /* kept: at most TS_NODE_SOURCES_N */
    cli_src_t   src[TS_NODE_SOURCES_N];
    uint32_t    ticket_len;     /* 0: the tracker gave none */
    uint8_t     ticket[TS_TICKET_MAX_B];    /* ts_ticket.h wire form */
} cli_finfo_t;

/* Parses a FILE_INFO OK body to its last byte (sources with their
 * fingerprints, then the ticket blob); 0, or -1 (nothing to free).
 * Complete sources are kept first when there are too many. */
int  cli_finfo_parse(ts_rbuf_t *r, cli_finfo_t *fi);
void cli_finfo_free(cli_finfo_t *fi);

/* A file name for output: as is, or in "..." with \" and \\ escapes when
 * it holds blanks, quotes or backslashes. */
void cli_quote_name(const char *name, char *out, size_t outsz);

/* ---- life cycle (main thread) ------------------------------------- */
/* Opens node.tdb in state_dir and remembers ctx (ctx->ext is set).
 * stop_check: returns 1 when the CLI was asked to stop (signals). */
int  cli_agent_init(cli_ctx_t *ctx, const char *state_dir,
                    int (*stop_check)(void));
int  cli_agent_start(void);         /* the thread; 0 or -1 */
/* Joins the thread, writes the last bitmaps, closes node.tdb. */
void cli_agent_stop(void);
/* Non-TTY end of input: waits until no download of this node is running
 * (DONE or FAILED; paused ones do not count), or stop_check().
 * Returns the number of downloads that failed during this run. */
int  cli_agent_wait_downloads(void);
int  cli_agent_failures(void);

/* ---- hooks (cli_cmds.c) ------------------------------------------- */
/* After a good login: loads this user's shares and downloads (another
 * user's are dropped from shm first) or resumes them; clears paused. */
void cli_agent_login(const char *user);
/* Before logout: persists, sets paused, pauses the downloads. */
void cli_agent_logout(void);

/* ---- file commands (cli_files.c) ---------------------------------- */
/* Publishes and persists a share.  0, or -1 (share table full). */
int  cli_agent_share_add(const cli_share_rec_t *r);
/* Stops serving (group, name) and forgets it: 0, or 1 if not shared. */
int  cli_agent_share_stop(const char *group, const char *name);
/* Refuses a second running download of (group, name) or of dest:
 * 0, or -1 with the reason in err. */
int  cli_agent_dl_check(const char *group, const char *name,
                        const char *dest, char *err, size_t errsz);
/* Creates a download's .part, exclusively (O_EXCL, never through a
 * symlink), durably (fsync of the directory), and gives its identity.
 * 0, or -1 with the reason in err ("'<part>' already exists"). */
int  cli_agent_part_create(const char *part, node_fid_t *id, char *err,
                           size_t errsz);
/* Removes a .part made by cli_agent_part_create, only if the name still
 * is that file. */
void cli_agent_part_unlink(const char *part, const node_fid_t *id);
/* Adds a download (rec filled: arrays allocated, done zero) into shm with
 * fi's sources and persists it.  Takes rec's arrays in every case.
 * 0, or -1 with the reason in err. */
int  cli_agent_dl_start(cli_dl_rec_t *rec, const cli_finfo_t *fi,
                        char *err, size_t errsz);
/* show_downloads */
void cli_agent_show(cli_ctx_t *ctx);

#endif
