/*
 * cli_files.h -- the client's file commands (upload_file, list_files,
 * download_file, show_downloads, stop_share) as one command table for
 * cli_cmds_register().
 *
 * Locking: commands run on the main thread (cli_cmds.h).
 * Crash behaviour: see cli_files.c and cli_agent.h.
 */
#ifndef CLI_FILES_H_INCLUDED
#define CLI_FILES_H_INCLUDED

#include "cli_cmds.h"

extern const cli_cmd_t  cli_files_cmds[];

#endif
