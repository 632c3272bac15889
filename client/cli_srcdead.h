/*
 * cli_srcdead.h -- the agent's memory of one download's sources
 * (cli_srcdead.c): which never answered (left out, with a doubling
 * backoff, and named in FILE_INFO's exclusion tail so the tracker lists
 * others) and which served verified chunks since the last HAVE_CHUNKS
 * (named in its served-by tail, so the tracker can prefer them for
 * everyone).
 *
 * Locking: every function is called with cli_agent.mu held.  Crash
 * behaviour: nothing persistent; a restarted agent starts with an empty
 * memory.
 */
#ifndef CLI_SRCDEAD_H_INCLUDED
#define CLI_SRCDEAD_H_INCLUDED

#include <stdint.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "node_shm.h"
#include "cli_finfo.h"

typedef struct {
    char     addr[64];
    uint8_t  fp[TS_FP_B];
    int64_t  until_ms;          /* monotonic: left out until then */
    int      level;             /* deaths in a row: the backoff doubles */
} cli_dead_t;

typedef struct {
    char     addr[64];          /* what shm slot j held when last seen */
    uint8_t  fp[TS_FP_B];
    uint64_t chunks;            /* its chunk count already reported */
} cli_served_t;

typedef struct cli_srcmem {
    int           ndead;
    cli_dead_t    dead[TS_CLI_SRC_DEAD_N];
    cli_served_t  served[TS_NODE_SOURCES_N];
} cli_srcmem_t;

/* Looks at download d's sources in shm: one with TS_CLI_SRC_DEAD_ERRORS_N
 * consecutive failures, or dropped for bad data, becomes dead (its shm
 * entry GONE, so the downloaders leave it); one that served again is
 * forgotten.  Returns 1 when a source just died (ask the tracker again
 * soon), else 0.  *m is allocated on first use (NULL: out of memory,
 * nothing remembered). */
int  cli_srcdead_scan(cli_srcmem_t **m, node_dl_sh_t *d, int64_t now);
/* Drops from fi the sources that are dead now. */
void cli_srcdead_filter(const cli_srcmem_t *m, cli_finfo_t *fi, int64_t now);
/* FILE_INFO's tail: u32 n, n x str addr of the dead sources (nothing
 * when none). */
void cli_srcdead_put_excl(const cli_srcmem_t *m, ts_wbuf_t *b, int64_t now);
/* HAVE_CHUNKS' tail: u32 n, n x (str addr, raw fp) of the sources that
 * gave us chunks since the last call (nothing when none). */
void cli_srcdead_put_served(cli_srcmem_t **m, node_dl_sh_t *d,
                            ts_wbuf_t *b);

#endif
