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
} cli_dlview_t;

#endif
