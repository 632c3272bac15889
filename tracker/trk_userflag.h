/*
 * trk_userflag.h -- whether an operator disabled an account (the flag of
 * the user record, trk_codec.h TRK_USER_F_DISABLED; set and cleared by
 * trk_admin_act.c), for the checks of login, the session check and the
 * housekeeper.
 *
 * Locking: one thread per trk_store_t (a read, in or outside the
 * caller's transaction).  Crash behaviour: reads only.
 */
#ifndef TRK_USERFLAG_H_INCLUDED
#define TRK_USERFLAG_H_INCLUDED

#include "trk_store.h"

/* What a disabled account's login and requests are told (%s: user). */
#define TRK_USER_DISABLED_MSG \
    "account '%s' is disabled by an operator of this tracker cluster"

/* 1 if user's account is disabled, 0 if not (or no such user), -1 on a
 * database error. */
int trk_user_disabled(trk_store_t *st, const char *user);

#endif
