/*
 * trk_start.h -- the tracker's start-up checks (supervisor, before any
 * fork) and `tracker --init-pki`.
 */
#ifndef TRK_START_H_INCLUDED
#define TRK_START_H_INCLUDED

#include "trk_opts.h"

/* tracker --init-pki tracker_info.txt: creates the CA and every
 * tracker's certificate under dir, prints what it wrote.  Exit code. */
int  trk_start_init_pki(const char *info, const char *dir);
/* Everything before the supervisor runs: this tracker's address, the
 * data directory and database, the PKI, the open files limit, the
 * listen socket and the shm segment (stats filled), the op tables.  0,
 * or the exit code (logged). */
int  trk_start_setup(trk_config_t *cfg, const trk_opts_t *o);
/* Unmaps and unlinks the shm segment, closes the listen socket. */
void trk_start_teardown(trk_config_t *cfg);
/* The tier-2 reset: with every worker stopped, a new segment made the
 * way start-up makes it (epoch and HLC read back from tracker.tdb; the
 * workers reload sessions from it).  0 or -1 (logged). */
int  trk_start_shm_rebuild(trk_config_t *cfg);

#endif
