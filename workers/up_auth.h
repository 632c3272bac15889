/*
 * up_auth.h -- the uploader's per-link authorization table: which
 * (group, name) a peer link may MAP/GET, and until when, after it showed
 * a valid download ticket (TS_MSG_PEER_AUTH).  Header-only (static
 * functions) so a unit test can use it without the worker's objects.
 *
 * Entries hold the full group and file name (never a hash: a chosen name
 * must not collide with another group's file) and the ticket's expiry in
 * wall-clock ms.  A renewed ticket for the same file extends its entry;
 * a new file takes a free or expired entry, else evicts the entry that
 * expires first (the peer re-sends that ticket if it still needs it).
 *
 * Locking: a table belongs to one link of one worker (no sharing).
 * Crash behaviour: nothing persistent; a new link starts empty.
 */
#ifndef UP_AUTH_H_INCLUDED
#define UP_AUTH_H_INCLUDED

#include <stdint.h>
#include <string.h>

#include "ts_config.h"

typedef struct {
    int64_t  expires_ms;                /* wall clock; 0 = free */
    char     group[TS_ID_MAX_B + 1];
    char     name[TS_NAME_MAX_B + 1];
} up_auth_ent_t;

typedef struct {
    up_auth_ent_t  e[TS_UP_AUTH_N];
} up_auth_tab_t;


static inline void
up_auth_init(up_auth_tab_t *t)
{
    memset(t, 0, sizeof(*t));
}


/* Remembers (group, name) until expires_ms.  Strings longer than their
 * fields are refused (never truncated: a prefix would authorize another
 * name).  0, or -1 when refused. */
static inline int
up_auth_put(up_auth_tab_t *t, const char *group, const char *name,
    int64_t expires_ms, int64_t now_ms)
{
    up_auth_ent_t  *e, *victim = NULL;
    size_t          gl = strlen(group), nl = strlen(name);
    int             i;

    if (gl == 0 || gl > TS_ID_MAX_B || nl == 0 || nl > TS_NAME_MAX_B
        || expires_ms <= now_ms)
    {
        return -1;
    }
    for (i = 0; i < TS_UP_AUTH_N; i++) {
        e = &t->e[i];
        if (e->expires_ms != 0 && strcmp(e->group, group) == 0
            && strcmp(e->name, name) == 0)
        {
            if (expires_ms > e->expires_ms) {
                e->expires_ms = expires_ms;
            }
            return 0;
        }
    }
    for (i = 0; i < TS_UP_AUTH_N; i++) {
        e = &t->e[i];
        if (e->expires_ms <= now_ms) {          /* free or expired */
            victim = e;
            break;
        }
        if (victim == NULL || e->expires_ms < victim->expires_ms) {
            victim = e;
        }
    }
    memcpy(victim->group, group, gl + 1);
    memcpy(victim->name, name, nl + 1);
    victim->expires_ms = expires_ms;
    return 0;
}


/* The latest expiry of any entry (wall clock ms), 0 if none: the link
 * holds some valid ticket until then. */
static inline int64_t
up_auth_until(const up_auth_tab_t *t)
{
    int64_t  m = 0;
    int      i;

    for (i = 0; i < TS_UP_AUTH_N; i++) {
        if (t->e[i].expires_ms > m) {
            m = t->e[i].expires_ms;
        }
    }
    return m;
}


/* 1 if (group, name) has an unexpired entry at now_ms, else 0. */
static inline int
up_auth_ok(const up_auth_tab_t *t, const char *group, const char *name,
    int64_t now_ms)
{
    const up_auth_ent_t  *e;
    int                   i;

    for (i = 0; i < TS_UP_AUTH_N; i++) {
        e = &t->e[i];
        if (e->expires_ms > now_ms && strcmp(e->group, group) == 0
            && strcmp(e->name, name) == 0)
        {
            return 1;
        }
    }
    return 0;
}

#endif
