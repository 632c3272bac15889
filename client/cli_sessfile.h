/*
 * cli_sessfile.h -- the node's saved tracker session (<state>/session):
 * what lets a restarted agent go on without a new login.
 *
 * The file holds the user, the session token, the heartbeat period and
 * the tracker last used, as text.  It is written to a temporary file
 * (0600), fsynced and renamed over the old one on every login, and
 * removed at logout or when a tracker says the session is gone.  The
 * token is as secret as node.key beside it, in the same 0700 directory.
 *
 * Locking: none (callers serialise: the session's mutex).  Crash
 * behaviour: a crash during a write leaves the old file or the new one,
 * never a mix; a file that does not parse is ignored (and replaced by
 * the next login).
 */
#ifndef CLI_SESSFILE_H_INCLUDED
#define CLI_SESSFILE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "ts_config.h"

typedef struct {
    char      user[TS_ID_MAX_B + 1];
    uint8_t   tok[TS_TOKEN_B];
    int       heartbeat_ms;
    int       tracker;          /* index in tracker_info.txt, 0-based */
} cli_sessfile_t;

/* 0, or -1 with errno (the old file, if any, stays). */
int   cli_sessfile_save(const char *path, const cli_sessfile_t *f);
/* 0 with *f filled; -1 when there is no file or it does not parse. */
int   cli_sessfile_load(const char *path, cli_sessfile_t *f);
void  cli_sessfile_remove(const char *path);

#endif
