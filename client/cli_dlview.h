/*
 * cli_dlview.h -- one download as the agent shows it to a command (and,
 * later, to the control API): a copy, so that nothing of the agent's
 * entries leaks past cli_agent.h.
 *
 * Locking: none (plain values).  Crash behaviour: memory only.
 */
#ifndef CLI_DLVIEW_H_INCLUDED
#define CLI_DLVIEW_H_INCLUDED

#include <limits.h>
#include <stdint.h>

#include "ts_config.h"

typedef enum {
    CLI_DLV_DONE = 1,       /* finished: dest holds the file */
    CLI_DLV_FAILED,         /* error says why */
    CLI_DLV_PAUSED,         /* logged out, or paused in the node */
    CLI_DLV_DENIED,         /* peers refuse the ticket; a new one comes */
    CLI_DLV_WAITING,        /* no source has a chunk we need */
    CLI_DLV_RUNNING         /* bps and eta_s are meaningful */
} cli_dlv_state_t;

typedef struct {
    cli_dlv_state_t  state;
    char             group[TS_ID_MAX_B + 1];
    char             name[TS_NAME_MAX_B + 1];
    char             dest[PATH_MAX];
    char             error[256];        /* CLI_DLV_FAILED */
    int              pct;               /* 0..100; 100 only when finished */
    double           bps;               /* over the sample window */
    double           eta_s;             /* -1: unknown */
    uint64_t         bytes;             /* verified so far */
    uint64_t         size;              /* the whole file */
    int              serving;           /* sources with our GETs now */
    int              sources;           /* sources listed and usable */
    int              held;              /* not running: nobody logged in */
    int              fail_cls;          /* cli_exit_t of a failure in
                                           this run, 0 = none */
} cli_dlview_t;

/* One source of a download as download_info shows it. */
typedef enum {
    CLI_PEER_LISTED = 1,    /* listed by the tracker, nothing from it yet */
    CLI_PEER_SERVING,       /* gave us chunks, still listed */
    CLI_PEER_GONE,          /* no longer listed by the tracker */
    CLI_PEER_DEAD,          /* did not answer: left out for a while */
    CLI_PEER_DROPPED        /* sent bad data: never asked again */
} cli_peer_state_t;

typedef struct {
    char              addr[64];
    char              fp[17];           /* first 8 bytes of its certificate
                                           fingerprint, hex */
    cli_peer_state_t  state;
    int               complete;         /* has every chunk */
    uint64_t          chunks;           /* verified chunks it gave us */
    uint64_t          rate_bps;         /* measured (EWMA) */
    uint32_t          load;             /* its own last reported load */
    uint32_t          inflight;         /* our GETs to it now */
    uint32_t          bad;              /* chunks that failed SHA1 */
} cli_peerview_t;

#endif
