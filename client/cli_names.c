/*
 * cli_names.c -- the group and file names of the last listings, for tab
 * completion (see cli_names.h).
 *
 * Each kind is a ring of CLI_NAMES_MAX_N malloc'd names; noting a name
 * already held is a no-op, so a repeated listing does not push others
 * out.  A lookup is a linear scan: a thousand short strings, once per
 * Tab key.
 *
 * Locking: cli_names_mu around every access.  Crash behaviour: memory
 * only; a new CLI starts empty.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cli_names.h"

typedef struct {
    char    *name[CLI_NAMES_MAX_N];
    size_t   next;                  /* the slot the next name takes */
} cli_names_ring_t;

static cli_names_ring_t  cli_names[2];
static pthread_mutex_t   cli_names_mu = PTHREAD_MUTEX_INITIALIZER;


/* A name one can type as one word: printable ASCII or UTF-8 bytes, no
 * blank, quote, backslash or escape the listing would have added. */
static int
cli_names_plain(const char *s)
{
    const unsigned char  *p = (const unsigned char *) s;

    if (*p == '\0') {
        return 0;
    }
    for (; *p != '\0'; p++) {
        if (*p <= ' ' || *p == '"' || *p == '\'' || *p == '\\'
            || *p == 0x7f)
        {
            return 0;
        }
    }
    return 1;
}


void
cli_names_note(cli_names_kind_t kind, const char *name)
{
    cli_names_ring_t  *r;
    size_t             i;
    char              *copy;

    if ((kind != CLI_NAMES_GROUP && kind != CLI_NAMES_FILE) || name == NULL
        || !cli_names_plain(name) || strlen(name) > 255)
    {
        return;
    }
    r = &cli_names[kind];
    pthread_mutex_lock(&cli_names_mu);
    for (i = 0; i < CLI_NAMES_MAX_N; i++) {
        if (r->name[i] != NULL && strcmp(r->name[i], name) == 0) {
            pthread_mutex_unlock(&cli_names_mu);
            return;
        }
    }
    if ((copy = strdup(name)) != NULL) {
        free(r->name[r->next]);
        r->name[r->next] = copy;
        r->next = (r->next + 1) % CLI_NAMES_MAX_N;
    }
    pthread_mutex_unlock(&cli_names_mu);
}


char *
cli_names_match(cli_names_kind_t kind, const char *prefix, size_t idx)
{
    cli_names_ring_t  *r;
    size_t             i, n = strlen(prefix), seen = 0;
    char              *out = NULL;

    if (kind != CLI_NAMES_GROUP && kind != CLI_NAMES_FILE) {
        return NULL;
    }
    r = &cli_names[kind];
    pthread_mutex_lock(&cli_names_mu);
    for (i = 0; i < CLI_NAMES_MAX_N; i++) {
        if (r->name[i] != NULL && strncmp(r->name[i], prefix, n) == 0
            && seen++ == idx)
        {
            out = strdup(r->name[i]);
            break;
        }
    }
    pthread_mutex_unlock(&cli_names_mu);
    return out;
}


int
cli_names_arg_kind(const char *cmd, int argi)
{
    /* commands whose first argument is a group, and of those, the ones
     * whose second is a file of it */
    static const char  *group_first[] = {
        "join_group", "leave_group", "list_requests", "accept_request",
        "reject_request", "list_files", "download_file", "stop_share",
        "cancel", "pause", "resume", "retry", "download_info", "peers",
        NULL
    };
    static const char  *file_second[] = {
        "download_file", "stop_share", "cancel", "pause", "resume",
        "retry", "download_info", "peers", NULL
    };
    int  i;

    if (strcmp(cmd, "upload_file") == 0) {
        return argi == 2 ? CLI_NAMES_GROUP : -1;
    }
    for (i = 0; argi == 1 && group_first[i] != NULL; i++) {
        if (strcmp(cmd, group_first[i]) == 0) {
            return CLI_NAMES_GROUP;
        }
    }
    for (i = 0; argi == 2 && file_second[i] != NULL; i++) {
        if (strcmp(cmd, file_second[i]) == 0) {
            return CLI_NAMES_FILE;
        }
    }
    return -1;
}
