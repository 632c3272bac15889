/*
 * cli_agent.h -- the CLI process's background agent, as its users see
 * it: the one way in for the commands (cli_cmds.c, cli_files.c), for
 * cli_main.c, and for the control API that is to drive a node from
 * several CLIs and HTTP.  Nothing of the agent's entries, locks or
 * tracker link shows through: the operations (login state, shares,
 * downloads) take the agent's lock themselves and may be called from
 * any thread; the life cycle belongs to the main thread.  Results are
 * copies (cli_dlview_t) and an operation's failure comes back as text
 * in err, so another front end can present them its own way (the agent
 * itself writes only log lines and the changed-share warning, to
 * stderr).
 *
 * What the agent does: it joins the node's data plane (shm), node.tdb
 * and the trackers.  Its thread (its own cli_rpc_t, so the prompt never
 * waits behind it) runs every TS_NODE_PERSIST_MS:
 *   - newly verified chunks of each download -> node.tdb (one
 *     transaction) and HAVE_CHUNKS to the tracker (partial source);
 *   - every TS_NODE_SRC_REFRESH_MS: FILE_INFO -> fresh sources, and a
 *     new download ticket before the old one runs out;
 *   - DONE -> a share (persisted with the download in one transaction,
 *     HAVE_CHUNKS complete=1); FAILED -> persisted with its reason; a
 *     share changed on disk -> STOP_SHARE, dropped, warning on stderr.
 * Where each part lives: cli_agent_priv.h.
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

#include "cli_ctx.h"
#include "cli_rec.h"
#include "cli_finfo.h"
#include "cli_dlview.h"

/* ---- life cycle (main thread) ------------------------------------- */
/* Opens node.tdb in state_dir and remembers ctx.
 * stop_check: returns 1 when the CLI was asked to stop (signals). */
int  cli_agent_init(cli_ctx_t *ctx, const char *state_dir,
                    int (*stop_check)(void));
int  cli_agent_start(void);         /* the thread; 0 or -1 */
/* Joins the thread, writes the last bitmaps, closes node.tdb. */
void cli_agent_stop(void);
/* 1 once cli_agent_init succeeded (commands then keep it informed). */
int  cli_agent_ready(void);
/* Non-TTY end of input: waits until no download of this node is running
 * (DONE or FAILED; paused ones do not count) and the tracker heard the
 * last reports (at most TS_CLI_REPORT_GRACE_MS more), or stop_check().
 * Returns the number of downloads that failed during this run. */
int  cli_agent_wait_downloads(void);
int  cli_agent_failures(void);

/* ---- login state (after a login, before a logout) ------------------ */
/* After a good login: loads this user's shares and downloads (another
 * user's are dropped from shm first) or resumes them; clears paused. */
void cli_agent_login(const char *user);
/* Before logout: persists, sets paused, pauses the downloads. */
void cli_agent_logout(void);

/* ---- shares --------------------------------------------------------- */
/* Publishes and persists a share.  0, or -1 (share table full). */
int  cli_agent_share_add(const cli_share_rec_t *r);
/* Stops serving (group, name) and forgets it: 0, or 1 if not shared. */
int  cli_agent_share_stop(const char *group, const char *name);

/* ---- downloads ------------------------------------------------------ */
/* Starts downloading (group, name) to dest (a full path) with fi, the
 * tracker's FILE_INFO answer (not taken).  Refuses a second running
 * download of the name or of dest (or of its .part), creates dest.part
 * exclusively, puts the download into shm with fi's sources and ticket
 * and persists it.  0, or -1 with the reason in err (nothing left on
 * disk). */
int  cli_agent_download(const char *group, const char *name,
                        const char *dest, const cli_finfo_t *fi,
                        char *err, size_t errsz);
/* Every download of the logged-in user (running, paused, done, failed),
 * sorted by group and name at login, newer ones after: *rows is
 * malloc()ed (NULL when *n is 0), the caller frees it.  0, or -1 when
 * out of memory. */
int  cli_agent_downloads(cli_dlview_t **rows, int *n);

/* ---- steering downloads (cli_dlctl.c) ------------------------------- */
/* --source-timeout: a running download no source served a chunk for
 * secs fails (0: TS_CLI_SOURCE_TIMEOUT_S). */
void cli_agent_set_source_timeout(int secs);
/* Cancel, pause, resume or retry (op: cli_dlop_t, cli_dlsm.h) the
 * download (group, name) of the loaded user.  CLI_EXIT_OK (also when it
 * already was so), or a class of cli_exit.h with the reason in err. */
int  cli_agent_dl_steer(const char *group, const char *name, int op,
                        char *err, size_t errsz);
/* download_info: the view of (group, name) and up to max of its sources
 * (*n of them) with their counters.  CLI_EXIT_OK, or CLI_EXIT_NOT_FOUND
 * with the reason in err. */
int  cli_agent_dl_peers(const char *group, const char *name,
                        cli_dlview_t *v, cli_peerview_t *rows, int max,
                        int *n, char *err, size_t errsz);
/* The class (cli_exit.h) of the last download failure of this run, 0
 * when none failed. */
int  cli_agent_fail_class(void);

#endif
