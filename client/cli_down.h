/*
 * cli_down.h -- the agent's download entries (cli_down.c).  Internal to
 * the agent: commands use cli_agent.h.
 *
 * Locking: every function is called with cli_agent.mu held.
 * Crash behaviour: cli_down.c.
 */
#ifndef CLI_DOWN_H_INCLUDED
#define CLI_DOWN_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "node_shm.h"
#include "cli_state.h"
#include "cli_finfo.h"
#include "cli_dlview.h"
#include "cli_agent_priv.h"

/* ---- done bitmaps --------------------------------------------------- */
/* The node's done bitmap of download idx into out (bitmap bytes). */
void     cli_down_bitmap_from_shm(ts_shm_t *shm, int idx, uint32_t nchunks,
                                  uint8_t *out);
void     cli_down_bitmap_fill(uint8_t *bm, uint32_t nchunks);
int      cli_down_bitmap_any(const uint8_t *bm, uint32_t nchunks);
uint64_t cli_down_chunk_len(uint64_t size, uint32_t nchunks, uint32_t c);

/* ---- entries -------------------------------------------------------- */
cli_dlent_t *cli_down_find(const char *group, const char *name);
/* 1 while e is running or paused: the name and dest are taken. */
int          cli_down_busy(const cli_dlent_t *e);
cli_dlent_t *cli_down_by_serial(uint64_t serial);
/* Takes rec's arrays.  NULL when out of memory. */
cli_dlent_t *cli_down_new(cli_dl_rec_t *rec);
/* Frees e (out of shm first); cli_down_drop also takes it off the list. */
void         cli_down_free(cli_dlent_t *e);
void         cli_down_drop(cli_dlent_t *e);
/* qsort order by (group, name); cli_state_dls callback adding an entry */
int          cli_down_cmp(const void *a, const void *b);
void         cli_down_load(void *arg, cli_dl_rec_t *r);

/* Puts a running entry into the node's table: done from the record,
 * maybe = the rest of an existing .part (a regular file, never through a
 * symlink).  With no .part and the finished file already at dest, the
 * entry is finished instead (idx stays -1).  0, or -1 (table full). */
int  cli_down_publish(cli_dlent_t *e);
/* A finished download becomes a share; both records in one transaction. */
void cli_down_finish(cli_dlent_t *e, ts_shm_t *shm);
/* Fails e with why (persisted; STOP_SHARE if it was advertised). */
void cli_down_fail(cli_dlent_t *e, ts_shm_t *shm, const char *why);

/* ---- new downloads -------------------------------------------------- */
int          cli_down_check(const char *group, const char *name,
                            const char *dest, char *err, size_t errsz);
int          cli_down_rec_init(cli_dl_rec_t *rec, const char *group,
                               const char *name, const char *dest,
                               const cli_finfo_t *fi, char *err,
                               size_t errsz);
cli_dlent_t *cli_down_start(cli_dl_rec_t *rec, char *err, size_t errsz);

/* ---- steering (cancel, pause, resume, retry, the source timeout) ---- */
/* Fails every running download no source served a chunk for
 * cli_agent.source_timeout_ms (CLI_EXIT_TIMEOUT). */
void cli_down_timeouts(int64_t now);
/* No user loaded: every download record of node.tdb as a view (*rows
 * malloc()ed).  0, or -1 (cli_dlctl.c). */
int  cli_dlctl_stored(cli_dlview_t **rows, int *n);

#endif
