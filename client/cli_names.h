/*
 * cli_names.h -- the group and file names of the last listings, for tab
 * completion at the prompt.
 *
 * The listing commands (list_groups, list_my_groups, list_files,
 * show_downloads) pass every row they print through cli_out_json_row();
 * that notes its "group" and "name" fields here.  The prompt's completer
 * then offers those names for the argument of a command that takes a
 * group or a file.
 *
 * Locking: one mutex (a listing may run on the control socket's thread
 * while the prompt completes).  Memory: at most CLI_NAMES_MAX_N names of
 * each kind, the oldest dropped first.  Crash behaviour: memory only.
 */
#ifndef CLI_NAMES_H_INCLUDED
#define CLI_NAMES_H_INCLUDED

#include <stddef.h>

#define CLI_NAMES_MAX_N   1024      /* names kept per kind */

typedef enum {
    CLI_NAMES_GROUP = 0,
    CLI_NAMES_FILE  = 1
} cli_names_kind_t;

/* Notes one name; names holding blanks, quotes or anything the escaper
 * changed are left out (they cannot be typed as one plain word). */
void  cli_names_note(cli_names_kind_t kind, const char *name);
/* The idx-th noted name of kind that starts with prefix (idx counts only
 * those), as a malloc'd copy, or NULL past the last. */
char *cli_names_match(cli_names_kind_t kind, const char *prefix,
                      size_t idx);
/* What the argument at position argi (1 = first after the command) of
 * command cmd names: CLI_NAMES_GROUP, CLI_NAMES_FILE, or -1 (anything
 * else: a path, a user, a new name). */
int   cli_names_arg_kind(const char *cmd, int argi);

#endif
