/*
 * trk_fixture.h -- the tdb fixture of the tracker store tests
 * (test_trk_store.c, test_trk_files.c): every test gets a fresh tracker
 * store (trk_store_open, tracker 1) in a new temp dir, closed and
 * removed after it.  Header-only, every helper static inline: the
 * Makefile compiles each tests/unit/test_trk_*.c alone with the tracker
 * objects.
 *
 * Locking: single-threaded; a test runs its writes in transactions like
 * the dispatcher does.  Crash behaviour: a test that crashes leaves its
 * temp dir under /tmp.
 */
#ifndef TRK_FIXTURE_H_INCLUDED
#define TRK_FIXTURE_H_INCLUDED

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "trk_store.h"

typedef struct {
    char         dir[64];
    char         path[128];     /* <dir>/tracker.tdb */
    trk_store_t *st;
} fx_t;

/* the message of the last rule's reply */
static char msg[TRK_MSG_B];

/* cmocka set-up: a new store in a new dir made from tmpl (a mkdtemp
 * template), as *state. */
static inline int
fx_setup(void **state, const char *tmpl)
{
    fx_t *fx;
    char  err[256];

    fx = calloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "%s", tmpl);
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/tracker.tdb", fx->dir);
    fx->st = trk_store_open(fx->path, 1, 1, err, sizeof(err));
    assert_non_null(fx->st);
    *state = fx;
    return 0;
}

/* cmocka teardown: closes the store and removes its file and dir. */
static inline int
fx_teardown(void **state)
{
    fx_t *fx = *state;

    trk_store_close(fx->st);
    unlink(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

#endif
