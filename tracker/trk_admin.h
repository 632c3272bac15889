/*
 * trk_admin.h -- operator commands run as `tracker` modes: backup and
 * restore of tracker.tdb (trk_admin_backup.c).
 *
 * Each returns the process exit code (0 ok, 1 failed, 2 bad usage) after
 * printing what it did on stdout or why it failed on stderr.
 */
#ifndef TRK_ADMIN_H_INCLUDED
#define TRK_ADMIN_H_INCLUDED

/* --backup FILE: a consistent copy of <data dir>/tracker.tdb (the
 * default dir ./tsr-tracker-<id> when data_dir is NULL). */
int trk_backup_cmd(const char *data_dir, int id, const char *file);
/* --restore FILE: FILE (a --backup) becomes <data dir>/tracker.tdb of a
 * fresh data directory. */
int trk_restore_cmd(const char *data_dir, int id, const char *file);

#endif
