/*
 * trk_userflag.c -- the disabled flag of an account, read from its user
 * record (see trk_userflag.h).
 *
 * Purpose: one cheap read (the u/ record through the store's envelope
 * layer) used where a request must be refused for a disabled account:
 * a login's transaction, a session found only in tdb, a session about
 * to enter the session cache.
 *
 * Locking: the caller's thread and store.  Crash behaviour: reads only.
 */
#include "trk_userflag.h"


int
trk_user_disabled(trk_store_t *st, const char *user)
{
    trk_user_t u;
    int        rc;

    rc = trk_user_get(st, user, &u);
    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }
    return u.disabled ? 1 : 0;
}
