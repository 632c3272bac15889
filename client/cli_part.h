/*
 * cli_part.h -- a download's .part file and its finished file on disk
 * (see cli_part.c for the rules).
 *
 * Locking: none of its own.  Crash behaviour: cli_part.c.
 */
#ifndef CLI_PART_H_INCLUDED
#define CLI_PART_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "node.h"
#include "cli_state.h"

/* 1 if r->dest is the finished file (its own inode, size and SHA1). */
int  cli_part_dest_is_done(const cli_dl_rec_t *r);
/* Creates a download's .part, exclusively (O_EXCL, never through a
 * symlink), durably (fsync of the directory), and gives its identity.
 * 0, or -1 with the reason in err ("'<part>' already exists"). */
int  cli_part_create(const char *part, node_fid_t *id, char *err,
                     size_t errsz);
/* Removes a .part made by cli_part_create, only if the name still is
 * that file. */
void cli_part_unlink(const char *part, const node_fid_t *id);
/* Removes it durably (directory fsynced), only if the name still is that
 * file and (max_b >= 0) it holds at most max_b bytes: 1 removed, 0 not
 * there or kept, -1 unlink failed. */
int  cli_part_remove(const char *part, const node_fid_t *id, int64_t max_b);
/* Reopens the .part of a download being put back: 1 (there, its size
 * in *have), 0 (made anew), -1 (the reason in why). */
int  cli_part_reopen(cli_dl_rec_t *r, uint64_t *have, int *dirty,
                     char *why, size_t whysz);
/* 1 if part is path + ".part" */
int  cli_part_of(const char *path, const char *part);

#endif
